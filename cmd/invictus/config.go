package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Configuration of a command comes from four layers, the first that sets
// a value winning: its flags, the environment (INVICTUS_<FLAG_NAME>, such
// as INVICTUS_NATS_URL for --nats-url), a YAML file named by --config (or
// INVICTUS_CONFIG) whose keys are the flag names, and the flags' defaults.

// Names of the configuration layer.
const (
	// envPrefix starts every environment variable the binary reads.
	envPrefix = "INVICTUS_"
	// configFlag names the flag of the configuration file.
	configFlag = "config"
	// secretAnnotation marks a flag whose value `config print` never shows.
	secretAnnotation = "invictus_secret"
	// redacted replaces a secret in `config print`.
	redacted = "REDACTED"
)

// Sources of a setting, as `config print` names them.
const (
	sourceFlag    = "flag"
	sourceEnv     = "env"
	sourceFile    = "file"
	sourceDefault = "default"
)

// setting is the effective value of one flag and where it came from.
type setting struct {
	Value string `json:"value"`
	// Source is flag, env, file or default.
	Source string `json:"source"`
	// From names the variable or the file for env and file.
	From string `json:"from,omitempty"`
	// secret is true for a flag annotated secret.
	secret bool
}

// lookupEnv reads the environment; tests give their own.
type lookupEnv func(string) (string, bool)

// envName returns the environment variable of a flag: --nats-url is
// INVICTUS_NATS_URL.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// addConfigFlag registers --config on fs.
func addConfigFlag(fs *pflag.FlagSet) {
	fs.String(configFlag, "", "YAML file of settings: keys are flag names (env "+envName(configFlag)+")")
}

// markSecret annotates flag so that `config print` redacts its value.
func markSecret(fs *pflag.FlagSet, flag string) {
	_ = fs.SetAnnotation(flag, secretAnnotation, []string{"true"})
}

// layerConfig gives every flag of fs that the command line did not set its
// value from the environment or from the configuration file, and returns
// the effective settings by flag name. An empty environment variable counts
// as unset. It returns a usageError naming the variable, the file or the
// key when a value does not parse, the file has a key that is no flag, or
// the file cannot be read.
func layerConfig(fs *pflag.FlagSet, env lookupEnv) (map[string]setting, error) {
	if env == nil {
		env = os.LookupEnv
	}
	getenv := func(name string) (string, bool) {
		v, ok := env(name)
		return v, ok && v != ""
	}

	file, fileSource := "", sourceDefault
	if f := fs.Lookup(configFlag); f != nil {
		file = f.Value.String()
		if f.Changed {
			fileSource = sourceFlag
		} else if v, ok := getenv(envName(configFlag)); ok {
			file, fileSource = v, sourceEnv
			if err := f.Value.Set(v); err != nil {
				return nil, usageError{fmt.Errorf("%s=%q: %w", envName(configFlag), v, err)}
			}
		}
	}
	values, err := readConfigFile(fs, file)
	if err != nil {
		return nil, err
	}

	out := map[string]setting{}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		s := setting{Source: sourceDefault, secret: len(f.Annotations[secretAnnotation]) > 0}
		switch {
		case f.Name == configFlag:
			s.Source = fileSource
			if fileSource == sourceEnv {
				s.From = envName(configFlag)
			}
		case f.Changed:
			s.Source = sourceFlag
		default:
			if v, ok := getenv(envName(f.Name)); ok {
				if err := f.Value.Set(v); err != nil {
					errs = append(errs, usageError{fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)})
				}
				s.Source, s.From = sourceEnv, envName(f.Name)
			} else if v, ok := values[f.Name]; ok {
				if err := f.Value.Set(v); err != nil {
					errs = append(errs, usageError{fmt.Errorf("--config %s: %s: %q: %w", file, f.Name, v, err)})
				}
				s.Source, s.From = sourceFile, file
			}
		}
		s.Value = f.Value.String()
		out[f.Name] = s
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// readConfigFile reads the YAML file of settings (none when path is
// empty): a mapping from flag names to scalar values, or lists for the
// flags that take several values.
func readConfigFile(fs *pflag.FlagSet, path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	bad := func(format string, a ...any) error {
		return usageError{fmt.Errorf("--config %s: "+format, append([]any{path}, a...)...)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &flagError{flag: configFlag, value: path, err: err}
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, bad("not a YAML mapping of flag names to values: %w", err)
	}
	values := make(map[string]string, len(raw))
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		f := fs.Lookup(key)
		if f == nil || key == configFlag || key == "help" {
			return nil, bad("unknown key %q: the keys are the command's flag names (see invictus config print)", key)
		}
		switch v := raw[key].(type) {
		case nil:
			return nil, bad("%s has no value", key)
		case map[string]any:
			return nil, bad("%s: want a single value, not a mapping", key)
		case []any:
			if !strings.HasSuffix(f.Value.Type(), "Slice") && !strings.HasSuffix(f.Value.Type(), "Array") {
				return nil, bad("%s: want a single value, not a list", key)
			}
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			values[key] = strings.Join(parts, ",")
		default:
			values[key] = fmt.Sprint(v)
		}
	}
	return values, nil
}

// shown returns the value of s as `config print` shows it: secrets and
// the passwords and tokens of URLs redacted.
func (s setting) shown() string {
	if s.Value == "" {
		return ""
	}
	if s.secret {
		return redacted
	}
	return redactURLs(s.Value)
}

// redactURLs replaces the password (or the token, a user without a
// password) of each URL in a comma-separated list of URLs.
func redactURLs(v string) string {
	if !strings.Contains(v, "://") {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
		} else {
			u.User = url.User(redacted)
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// newConfigCmd builds `invictus config print`.
func newConfigCmd(out, errOut io.Writer) *cobra.Command {
	return newConfigCmdWith(out, errOut, os.LookupEnv)
}

func newConfigCmdWith(out, _ io.Writer, env lookupEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the effective configuration of invictus serve",
		Long: "Settings come from, in this order of precedence: flags, environment variables\n" +
			"(INVICTUS_<FLAG_NAME>, such as INVICTUS_NATS_URL for --nats-url), a YAML file\n" +
			"(--config FILE or INVICTUS_CONFIG; its keys are the flag names), then defaults.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var o serveOptions
	var asJSON bool
	printCmd := &cobra.Command{
		Use:   "print [serve flags]",
		Short: "Print each setting of invictus serve, its value and where it came from",
		Long: "Print takes the same flags as invictus serve and prints the value each setting\n" +
			"would have and its source: flag, env (the variable), file (the --config file) or\n" +
			"default. Secrets (passwords and tokens in URLs, secret flags) are redacted.",
		Example: "  INVICTUS_LISTEN=127.0.0.1:9090 invictus config print --config invictus.yaml\n" +
			"  invictus config print --json | jq -r '.listen.source'",
		Args: cobra.NoArgs,
	}
	o.addFlags(printCmd.Flags())
	printCmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON: {flag: {value, source, from}}")
	printCmd.RunE = func(cmd *cobra.Command, _ []string) error {
		settings, err := layerConfig(cmd.Flags(), env)
		if err != nil {
			return err
		}
		delete(settings, "json") // print's own flag, not a setting of serve
		return printSettings(out, settings, asJSON)
	}
	cmd.AddCommand(printCmd)
	return cmd
}

// printSettings writes settings as a table or as JSON, redacted.
func printSettings(w io.Writer, settings map[string]setting, asJSON bool) error {
	names := slices.Sorted(maps.Keys(settings))
	if asJSON {
		shown := make(map[string]setting, len(settings))
		for _, n := range names {
			s := settings[n]
			s.Value = s.shown()
			shown[n] = s
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(shown)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
	for _, n := range names {
		s := settings[n]
		src := s.Source
		if s.From != "" {
			src += " " + s.From
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, s.shown(), src)
	}
	return tw.Flush()
}
