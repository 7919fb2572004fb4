package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// Defaults of the directory and org commands.
const (
	directoryNATSURLDefault = "nats://" + natsjs.ListenDefault
	directoryTimeoutDefault = 5 * time.Minute
)

// Directory file formats of the CLI.
const (
	formatHSDS = "hsds" // Open Referral HSDS 3.0 JSON
	formatJSON = "json" // the directory's own JSON: {"organisations": [...], "services": [...]}
	formatCSV  = directory.FormCSV
	formatYAML = directory.FormYAML
)

// storeFlags are the flags of the commands that read or write the stored
// directory or the tokens: the data directory of a node (running or
// stopped), or the NATS URL of a running server.
type storeFlags struct {
	natsURL string
	creds   string
	data    string
	timeout time.Duration
	logs    *logFlags
	tls     *natsTLSFlags
}

func addStoreFlags(cmd *cobra.Command) *storeFlags {
	f := &storeFlags{}
	fl := cmd.Flags()
	fl.StringVar(&f.natsURL, "nats-url", directoryNATSURLDefault, "NATS URL of a running server (ignored with --data)")
	addCredsFlag(fl, &f.creds, "credentials: an nkey seed file (such as DATA/keys/admin.nk) or a NATS .creds file; with --data, default DATA/keys/admin.nk")
	fl.StringVar(&f.data, "data", "", "data directory of a node: connect to the node running on it (DIR/node.json), or open its store in process when none runs")
	fl.DurationVar(&f.timeout, "timeout", directoryTimeoutDefault, "how long the whole command may take")
	f.tls = addNATSTLSFlags(fl)
	f.logs = addLogFlags(cmd)
	return f
}

// connect connects to NATS as the flags say: with --data to the node
// running on it, or to its store opened in process when none runs (see
// connectData); otherwise to --nats-url with --creds. name is the
// connection name. release lets the connection (and the in-process server)
// go.
func (f *storeFlags) connect(ctx context.Context, logger *slog.Logger, name string) (nc *nats.Conn, release func(), err error) {
	tlsOpts, err := f.tls.options()
	if err != nil {
		return nil, nil, err
	}
	if f.data != "" {
		dc, err := connectData(ctx, f.data, f.creds, name, logger, tlsOpts...)
		if err != nil {
			return nil, nil, err
		}
		if dc.running {
			logger.Debug("connected to the running node", slog.String("data", f.data), slog.String("nats", dc.nc.ConnectedAddr()))
		} else {
			logger.Debug("opened the data directory in process", slog.String("data", f.data))
		}
		return dc.nc, dc.close, nil
	}
	opts := append([]nats.Option{nats.Name(name), nats.Timeout(natsConnectTimeout)}, tlsOpts...)
	if f.creds != "" {
		opt, err := natsCredsOption(f.creds)
		if err != nil {
			return nil, nil, &flagError{flag: "creds", value: f.creds, err: err}
		}
		opts = append(opts, opt)
	}
	nc, err = nats.Connect(f.natsURL, opts...)
	if err != nil {
		if f.creds == "" && errors.Is(err, nats.ErrAuthorization) {
			return nil, nil, usageError{fmt.Errorf("no credentials given: %s accepts no connection without them; give --creds FILE, the administrator's nkey seed file (DATA/keys/admin.nk on the node), or --data DIR on the node's machine", redactURLs(f.natsURL))}
		}
		return nil, nil, &flagError{flag: "nats-url", value: redactURLs(f.natsURL), err: err}
	}
	return nc, func() {
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
	}, nil
}

// run connects as the flags say (see connect), with the connection
// named name, and runs fn on the connection, all within --timeout; the
// connection is let go after. logger logs as --log-level says.
func (f *storeFlags) run(ctx context.Context, errOut io.Writer, name string, fn func(ctx context.Context, nc *nats.Conn, logger *slog.Logger) error) error {
	if f.timeout <= 0 {
		return usageError{fmt.Errorf("--timeout %s: must be positive", f.timeout)}
	}
	logger, err := f.logs.logger(errOut)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	nc, release, err := f.connect(ctx, logger, name)
	if err != nil {
		return err
	}
	defer release()
	return fn(ctx, nc, logger)
}

// ensureDirectoryBucket creates the streams and the bucket when the bucket
// is missing (a fresh data directory); an existing bucket is left as is.
func ensureDirectoryBucket(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.KeyValue(ctx, natsjs.BucketDirectory)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{})
	}
	return err
}

// withStore runs fn with the directory store (see run); the bucket is
// created if missing.
func (f *storeFlags) withStore(cmd *cobra.Command, errOut io.Writer, fn func(ctx context.Context, s *natsjs.DirectoryStore) error) error {
	return f.run(cmd.Context(), errOut, "invictus cli", func(ctx context.Context, nc *nats.Conn, logger *slog.Logger) error {
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		if err := ensureDirectoryBucket(ctx, js); err != nil {
			return err
		}
		store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{Logger: logger})
		if err != nil {
			return err
		}
		return fn(ctx, store)
	})
}

// detectFormat returns the format named by flag, or guessed from the file
// name and content: .csv, .yaml/.yml, and for .json (or anything else) the
// directory's own JSON when it is an object with "organisations" or
// "services", HSDS otherwise.
func detectFormat(flag, name string, data []byte) (string, error) {
	switch strings.ToLower(flag) {
	case formatHSDS, formatJSON, formatCSV, formatYAML:
		return strings.ToLower(flag), nil
	case "yml":
		return formatYAML, nil
	case "":
	default:
		return "", usageError{fmt.Errorf("--format %q: want hsds, json, csv or yaml", flag)}
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return formatCSV, nil
	case ".yaml", ".yml":
		return formatYAML, nil
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) == nil {
		if _, ok := probe["organisations"]; ok {
			return formatJSON, nil
		}
		if _, ok := probe["services"]; ok && probe["name"] == nil {
			return formatJSON, nil
		}
	}
	return formatHSDS, nil
}

// readDirectoryFile reads and parses a directory file ("-" is stdin). The
// result is valid, or the error is a *directory.ValidationError listing
// every problem.
func readDirectoryFile(name, format string, stdin io.Reader) (*directory.Directory, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	format, err = detectFormat(format, name, data)
	if err != nil {
		return nil, err
	}
	var d *directory.Directory
	switch format {
	case formatHSDS:
		d, err = directory.ImportHSDS(data)
	case formatCSV, formatYAML:
		d, err = directory.ImportForm(bytes.NewReader(data), format)
	case formatJSON:
		d = &directory.Directory{}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err = dec.Decode(d); err != nil {
			return nil, &directory.ValidationError{Problems: []directory.Problem{{Code: events.CodeMalformedJSON, Message: err.Error()}}}
		}
		err = d.Validate()
	}
	if err != nil {
		return nil, err
	}
	d.Sort()
	return d, nil
}

// printProblems writes every problem of a validation error, one a line,
// and returns a short error for the exit status; other errors pass.
func printProblems(w io.Writer, name string, err error) error {
	var ve *directory.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	seen := make(map[directory.Problem]bool, len(ve.Problems))
	for _, p := range ve.Problems {
		if seen[p] {
			continue // a form row repeats one problem for each day of a range
		}
		seen[p] = true
		where := p.Pointer
		if where == "" {
			where = "(file)"
		}
		fmt.Fprintf(w, "%s: %s: %s [%s]\n", name, where, p.Message, p.Code)
	}
	return fmt.Errorf("%s: %d problem(s)", name, len(seen))
}

func newDirectoryCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "directory",
		Short: "Import, export, validate and count the directory of organisations and services",
		Long: "The directory holds the organisations of the network and the services they offer.\n" +
			"It lives in the KV bucket 'directory' of the node's JetStream. With --data DIR\n" +
			"the commands connect to the node running on DIR (found in DIR/node.json, as the\n" +
			"administrator of DIR/keys/admin.nk), or open DIR's store in process when no node\n" +
			"runs; otherwise they connect to --nats-url. validate needs no server.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newDirectoryImportCmd(out, errOut),
		newDirectoryExportCmd(out, errOut),
		newDirectoryValidateCmd(out),
		newDirectoryStatsCmd(out, errOut),
	)
	return cmd
}

func newDirectoryImportCmd(out, errOut io.Writer) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import organisations and services from HSDS JSON, the CSV/YAML form or directory JSON",
		Long: "Import reads FILE ('-' for stdin), validates it as a whole and writes every\n" +
			"organisation, then every service: new records are created, changed ones updated\n" +
			"with compare-and-set, equal ones left alone. Records not in FILE are kept.\n" +
			"Nothing is written when FILE has a problem; every problem is printed.\n" +
			"The format follows the extension (.csv, .yaml, .json: HSDS or directory JSON)\n" +
			"unless --format says it.",
		Example: "  invictus directory import orgs.json\n" +
			"  invictus directory import --format csv --data ./data form.csv\n" +
			"  invictus directory import --nats-url nats://hub:4222 export.json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&format, "format", "", "file format: hsds, json, csv or yaml (default: by extension and content)")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		d, err := readDirectoryFile(args[0], format, cmd.InOrStdin())
		if err != nil {
			return printProblems(errOut, args[0], err)
		}
		return sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
			total := len(d.Organisations) + len(d.Services)
			step := max(total/10, 1)
			res, err := s.ImportDirectory(ctx, d, func(done, total int) {
				if total >= 1000 && (done%step == 0) {
					fmt.Fprintf(errOut, "imported %d of %d records\n", done, total)
				}
			})
			if err != nil {
				return printProblems(errOut, args[0], err)
			}
			_, err = fmt.Fprintf(out, "imported %d organisations and %d services: %d created, %d updated, %d unchanged (revision %d)\n",
				len(d.Organisations), len(d.Services), res.Created, res.Updated, res.Unchanged, res.Revision)
			return err
		})
	}
	return cmd
}

func newDirectoryExportCmd(out, errOut io.Writer) *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the directory as HSDS 3.0 JSON or directory JSON",
		Long: "Export writes the whole stored directory to stdout or to -o FILE: HSDS 3.0 JSON\n" +
			"(an array of organization objects with their services; project codes travel as\n" +
			"attributes), or the directory's own JSON with --format json. An HSDS export\n" +
			"imported again gives the same directory.",
		Example: "  invictus directory export -o directory.hsds.json\n" +
			"  invictus directory export --format json --data ./data > directory.json",
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&format, "format", formatHSDS, "hsds or json")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if format != formatHSDS && format != formatJSON {
			return usageError{fmt.Errorf("--format %q: want hsds or json", format)}
		}
		return sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
			d, rev, err := s.Load(ctx)
			if err != nil {
				return err
			}
			var data []byte
			if format == formatHSDS {
				data, err = directory.ExportHSDS(d)
			} else {
				data, err = json.MarshalIndent(d, "", "  ")
			}
			if err != nil {
				return err
			}
			if !bytes.HasSuffix(data, []byte("\n")) {
				data = append(data, '\n')
			}
			if output == "" {
				_, err = out.Write(data)
				return err
			}
			if err := os.WriteFile(output, data, 0o644); err != nil {
				return &flagError{flag: "output", value: output, err: err}
			}
			_, err = fmt.Fprintf(errOut, "exported %d organisations and %d services at revision %d to %s\n",
				len(d.Organisations), len(d.Services), rev, output)
			return err
		})
	}
	return cmd
}

func newDirectoryValidateCmd(out io.Writer) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a directory file and print every problem (no server needed)",
		Long: "Validate reads FILE ('-' for stdin) as import would and prints every problem\n" +
			"with where it is (a JSON pointer, or the row and column of a form) and a code.\n" +
			"The exit status is 1 when there is a problem, 0 otherwise.",
		Example: "  invictus directory validate form.csv\n" +
			"  invictus directory validate --format hsds export.json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&format, "format", "", "file format: hsds, json, csv or yaml (default: by extension and content)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		d, err := readDirectoryFile(args[0], format, cmd.InOrStdin())
		if err != nil {
			return printProblems(out, args[0], err)
		}
		_, err = fmt.Fprintf(out, "%s: valid: %d organisations, %d services\n", args[0], len(d.Organisations), len(d.Services))
		return err
	}
	return cmd
}

// directoryStats is the result of `directory stats`.
type directoryStats struct {
	Revision      uint64                   `json:"revision"`
	Organisations int                      `json:"organisations"`
	Services      int                      `json:"services"`
	Countries     map[string]*countryStats `json:"countries"`
	// Needs counts active services per need code, in total and by country.
	Needs map[string]map[string]int `json:"needs"`
	// Unoffered are the need codes of the taxonomy no active service
	// offers anywhere; UnofferedIn those no active service offers in each
	// country (of the countries the directory serves).
	Unoffered   []string            `json:"unoffered,omitempty"`
	UnofferedIn map[string][]string `json:"unoffered_in,omitempty"`
}

type countryStats struct {
	Organisations int            `json:"organisations"`
	Services      int            `json:"services"`
	Active        int            `json:"active"`
	Capacity      map[string]int `json:"capacity"` // active services by capacity status
}

// statsOf counts d by country and need. A service counts in each of its
// area's countries, an organisation in its own.
func statsOf(d *directory.Directory, rev uint64) directoryStats {
	st := directoryStats{Revision: rev, Organisations: len(d.Organisations), Services: len(d.Services),
		Countries: map[string]*countryStats{}, Needs: map[string]map[string]int{}}
	country := func(cc string) *countryStats {
		c, ok := st.Countries[cc]
		if !ok {
			c = &countryStats{Capacity: map[string]int{}}
			st.Countries[cc] = c
		}
		return c
	}
	for _, o := range d.Organisations {
		country(o.Country).Organisations++
	}
	for i := range d.Services {
		s := &d.Services[i]
		for _, cc := range s.Area.Countries {
			c := country(cc)
			c.Services++
			if s.Active() {
				c.Active++
				c.Capacity[s.Capacity.Status]++
			}
		}
		if !s.Active() {
			continue
		}
		for _, n := range s.Needs {
			m, ok := st.Needs[n]
			if !ok {
				m = map[string]int{}
				st.Needs[n] = m
			}
			m["total"]++
			for _, cc := range s.Area.Countries {
				m[cc]++
			}
		}
	}
	for _, n := range events.Needs {
		if st.Needs[n]["total"] == 0 {
			st.Unoffered = append(st.Unoffered, n)
		}
		for cc := range st.Countries {
			if st.Needs[n][cc] == 0 {
				if st.UnofferedIn == nil {
					st.UnofferedIn = map[string][]string{}
				}
				st.UnofferedIn[cc] = append(st.UnofferedIn[cc], n)
			}
		}
	}
	return st
}

// writeStatsTable prints the counts as two tables: per country, then per
// need with a column per country.
func writeStatsTable(w io.Writer, st directoryStats) error {
	ccs := make([]string, 0, len(st.Countries))
	for cc := range st.Countries {
		ccs = append(ccs, cc)
	}
	slices.Sort(ccs)
	fmt.Fprintf(w, "directory at revision %d: %d organisations, %d services\n\n", st.Revision, st.Organisations, st.Services)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "country\torganisations\tservices\tactive\taccepting\twaitlist\tfull\t\n")
	for _, cc := range ccs {
		c := st.Countries[cc]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", cc, c.Organisations, c.Services, c.Active,
			c.Capacity[events.CapacityAccepting], c.Capacity[events.CapacityWaitlist], c.Capacity[events.CapacityFull])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprint(tw, "need\ttotal\t")
	for _, cc := range ccs {
		fmt.Fprintf(tw, "%s\t", cc)
	}
	fmt.Fprint(tw, "\n")
	needs := slices.Clone(events.Needs)
	for n := range st.Needs {
		if !slices.Contains(needs, n) {
			needs = append(needs, n)
		}
	}
	for _, n := range needs {
		m := st.Needs[n]
		fmt.Fprintf(tw, "%s\t%d\t", n, m["total"])
		for _, cc := range ccs {
			fmt.Fprintf(tw, "%d\t", m[cc])
		}
		fmt.Fprint(tw, "\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The gaps: need codes nothing offers, anywhere or in a country.
	fmt.Fprintln(w)
	if len(st.Unoffered) > 0 {
		fmt.Fprintf(w, "Offered by no service anywhere: %s\n", strings.Join(st.Unoffered, ", "))
	}
	for _, cc := range ccs {
		if miss := st.UnofferedIn[cc]; len(miss) > len(st.Unoffered) {
			fmt.Fprintf(w, "Offered by no service in %s: %s\n", cc, strings.Join(miss, ", "))
		}
	}
	if len(st.UnofferedIn) == 0 {
		fmt.Fprintln(w, "Every need code is offered in every country.")
	}
	return nil
}

func newDirectoryStatsCmd(out, errOut io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count organisations and services per country and active services per need",
		Long: "Stats reads the stored directory and prints, per country, the organisations,\n" +
			"the services whose area includes it (active ones by capacity status), and per\n" +
			"need the active services that offer it, in total and per country. It flags the\n" +
			"need codes that no active service offers, anywhere or in a country.",
		Example: "  invictus directory stats\n" +
			"  invictus directory stats --json --data ./data",
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
			d, rev, err := s.Load(ctx)
			if err != nil {
				return err
			}
			st := statsOf(d, rev)
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeStatsTable(out, st)
		})
	}
	return cmd
}

// addCredsFlag registers --creds, the NATS credentials flag of every
// command that connects as someone, with --nats-creds, its former name on
// the administrators' commands, as a hidden alias.
func addCredsFlag(fl *pflag.FlagSet, dst *string, usage string) {
	fl.StringVar(dst, "creds", *dst, usage)
	fl.StringVar(dst, "nats-creds", *dst, usage)
	_ = fl.MarkHidden("nats-creds")
}
