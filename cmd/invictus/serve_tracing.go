package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/invictus-network/invictus/internal/tracing"
)

// Standard OpenTelemetry variables that name an OTLP endpoint: with one
// of them set (and no --otlp-endpoint), serve exports traces and the
// exporter reads the OTEL_EXPORTER_OTLP_* variables itself.
var otlpEnvEndpoints = []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// tracingFlags are serve's OpenTelemetry settings.
type tracingFlags struct {
	endpoint string
	// fromEnv is set when an OTEL_EXPORTER_OTLP_* variable names an
	// endpoint.
	fromEnv bool
}

func (f *tracingFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "otlp-endpoint", "", "export OpenTelemetry traces over OTLP/HTTP to this receiver's base URL, such as http://127.0.0.1:4318 (spans go to its /v1/traces); without it, OTEL_EXPORTER_OTLP_ENDPOINT if set, otherwise no traces")
}

// readEnv notes whether the standard variables name an endpoint.
func (f *tracingFlags) readEnv(env lookupEnv) {
	if env == nil {
		env = os.LookupEnv
	}
	for _, name := range otlpEnvEndpoints {
		if v, ok := env(name); ok && v != "" {
			f.fromEnv = true
		}
	}
}

func (f *tracingFlags) config() tracing.Config {
	host, _ := os.Hostname()
	return tracing.Config{Endpoint: f.endpoint, FromEnvironment: f.endpoint == "" && f.fromEnv,
		Service: "invictus", Version: readBuildInfo().Version, Instance: host}
}

// validate reports a malformed --otlp-endpoint as a usage error.
func (f *tracingFlags) validate() error {
	if err := f.config().Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// tracingComponent installs the tracer provider first and flushes it
// last, so that every other component's spans are exported.
type tracingComponent struct {
	flags    tracingFlags
	shutdown func(context.Context) error
}

func (c *tracingComponent) Name() string { return "tracing" }

func (c *tracingComponent) Start(ctx context.Context) error {
	shutdown, err := tracing.Start(ctx, c.flags.config())
	if err != nil {
		return &flagError{flag: "otlp-endpoint", value: c.flags.endpoint, err: err}
	}
	c.shutdown = shutdown
	return nil
}

func (c *tracingComponent) Stop(ctx context.Context) error {
	if c.shutdown == nil {
		return nil
	}
	return c.shutdown(ctx)
}

// startBenchTracing starts exporting traces to endpoint for a bench, as
// serve does; with no endpoint it changes nothing. The routing service's
// spans need its Tracer (benches set tracing.Steps).
func startBenchTracing(ctx context.Context, endpoint string, errOut io.Writer) (stop func(), err error) {
	f := tracingFlags{endpoint: endpoint}
	if err := f.validate(); err != nil {
		return nil, err
	}
	if endpoint == "" {
		return func() {}, nil
	}
	shutdown, err := tracing.Start(ctx, f.config())
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(errOut, "bench: exporting traces to", endpoint)
	return func() {
		if err := shutdown(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(errOut, "bench: traces not all exported:", err)
		}
	}, nil
}

// startAdapterTracing starts exporting the spans of an adapter run as a
// process of its own, as service (its service.name, which tells its spans
// from the node's in a trace); without an endpoint it installs the no-op
// provider. stop flushes the spans not yet sent: call it last.
func startAdapterTracing(ctx context.Context, f tracingFlags, service string, logger *slog.Logger) (stop func(), err error) {
	c := f.config()
	c.Service = service
	shutdown, err := tracing.Start(ctx, c)
	if err != nil {
		return nil, &flagError{flag: "otlp-endpoint", value: f.endpoint, err: err}
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adapterShutdownTimeout)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			logger.Warn("traces not all exported", slog.String("error", err.Error()))
		}
	}, nil
}
