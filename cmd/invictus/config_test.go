package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// fakeEnv is an environment for the configuration layer.
func fakeEnv(vars map[string]string) lookupEnv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// configPrint runs `config print args` with env and returns the exit
// code, standard output and standard error.
func configPrint(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	cmd := newConfigCmdWith(&out, &errOut, fakeEnv(env))
	cmd.SetArgs(append([]string{"print"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	err := cmd.Execute()
	if err == nil {
		return exitOK, out.String(), errOut.String()
	}
	fmt.Fprintf(&errOut, "invictus: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage, out.String(), errOut.String()
	}
	return exitError, out.String(), errOut.String()
}

// writeConfig writes a YAML configuration file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "invictus.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, `
listen: 127.0.0.1:7001
data: /from/file
nats-url: nats://invictus:hunter2@nats-1:4222,nats://invictus:hunter2@nats-2:4222
log-level: warn
shutdown-timeout: 45s
demo: true
simulate-rate: 30
`)
	env := map[string]string{
		"INVICTUS_LISTEN":    "127.0.0.1:7002",
		"INVICTUS_DATA":      "/from/env",
		"INVICTUS_LOG_LEVEL": "", // empty: unset
	}
	code, out, errOut := configPrint(t, env, "--config", file, "--listen", "127.0.0.1:7003", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got map[string]setting
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	want := map[string]setting{
		"listen":           {Value: "127.0.0.1:7003", Source: sourceFlag},                  // flag beats env and file
		"data":             {Value: "/from/env", Source: sourceEnv, From: "INVICTUS_DATA"}, // env beats file
		"log-level":        {Value: "warn", Source: sourceFile, From: file},                // an empty variable does not count
		"shutdown-timeout": {Value: "45s", Source: sourceFile, From: file},                 // a duration
		"demo":             {Value: "true", Source: sourceFile, From: file},                // a boolean
		"simulate-rate":    {Value: "30", Source: sourceFile, From: file},                  // a number
		"addr-file":        {Value: "", Source: sourceDefault},                             // nobody sets it
		"nats-listen":      {Value: serveNATSListenDefault, Source: sourceDefault},         // the default
		"config":           {Value: file, Source: sourceFlag},                              // where the file came from
		"nats-url":         {Value: "nats://invictus:REDACTED@nats-1:4222,nats://invictus:REDACTED@nats-2:4222", Source: sourceFile, From: file},
	}
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("%s = %+v, want %+v", name, g, w)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("the password is printed:\n%s", out)
	}
	if _, ok := got["json"]; ok {
		t.Errorf("print's own --json is listed as a setting")
	}

	// The table says the same, with the variable and the file.
	code, out, _ = configPrint(t, env, "--config", file, "--listen", "127.0.0.1:7003")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		rows[f[0]] = strings.Join(f[1:], " ")
	}
	for name, want := range map[string]string{
		"SETTING":   "VALUE SOURCE",
		"data":      "/from/env env INVICTUS_DATA",
		"listen":    "127.0.0.1:7003 flag",
		"log-level": "warn file " + file,
		"addr-file": "default",
		"nats-url":  "nats://invictus:REDACTED@nats-1:4222,nats://invictus:REDACTED@nats-2:4222 file " + file,
	} {
		if rows[name] != want {
			t.Errorf("row %s = %q, want %q:\n%s", name, rows[name], want, out)
		}
	}
}

func TestConfigFileFromEnvironment(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, "listen: 127.0.0.1:7010\n")
	code, out, errOut := configPrint(t, map[string]string{"INVICTUS_CONFIG": file}, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got map[string]setting
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got["listen"] != (setting{Value: "127.0.0.1:7010", Source: sourceFile, From: file}) ||
		got["config"] != (setting{Value: file, Source: sourceEnv, From: "INVICTUS_CONFIG"}) {
		t.Errorf("listen %+v config %+v", got["listen"], got["config"])
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string // YAML, when not empty
		env  map[string]string
		args []string
		code int
		want string
	}{
		{name: "unknown key", file: "lisen: 127.0.0.1:1\n", code: exitUsage, want: `unknown key "lisen"`},
		{name: "bad value in the file", file: "shutdown-timeout: soon\n", code: exitUsage, want: `shutdown-timeout: "soon"`},
		{name: "a list for one value", file: "listen: [a, b]\n", code: exitUsage, want: "listen: want a single value, not a list"},
		{name: "a mapping", file: "listen: {host: a}\n", code: exitUsage, want: "listen: want a single value, not a mapping"},
		{name: "not a mapping", file: "- listen\n", code: exitUsage, want: "not a YAML mapping"},
		{name: "the config key", file: "config: other.yaml\n", code: exitUsage, want: `unknown key "config"`},
		{name: "bad value in the environment", env: map[string]string{"INVICTUS_DEMO": "maybe"}, code: exitUsage, want: `INVICTUS_DEMO="maybe"`},
		{name: "missing file", args: []string{"--config", "/nonexistent/invictus.yaml"}, code: exitError, want: "--config /nonexistent/invictus.yaml: open "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeConfig(t, tt.file))
			}
			code, _, errOut := configPrint(t, tt.env, args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tt.code, tt.want, errOut)
			}
		})
	}
}

func TestConfigRedaction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    setting
		want string
	}{
		{setting{Value: "nats://s3cr3t@nats:4222"}, "nats://REDACTED@nats:4222"},
		{setting{Value: "nats://user:pw@nats:4222"}, "nats://user:REDACTED@nats:4222"},
		{setting{Value: "nats://nats:4222"}, "nats://nats:4222"},
		{setting{Value: "127.0.0.1:8080"}, "127.0.0.1:8080"},
		{setting{Value: "inv_abc", secret: true}, redacted},
		{setting{Value: "", secret: true}, ""},
	}
	for _, tt := range tests {
		if got := tt.s.shown(); got != tt.want {
			t.Errorf("shown(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}

	// A flag marked secret is redacted wherever its value comes from.
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("webhook-secret", "", "")
	markSecret(fs, "webhook-secret")
	settings, err := layerConfig(fs, fakeEnv(map[string]string{"INVICTUS_WEBHOOK_SECRET": "whsec_abc"}))
	if err != nil {
		t.Fatal(err)
	}
	if s := settings["webhook-secret"]; s.Value != "whsec_abc" || s.shown() != redacted || s.Source != sourceEnv {
		t.Errorf("secret setting %+v shown as %q", s, s.shown())
	}
}

// TestServeReadsConfiguration shows that serve itself takes its settings
// from the file and the environment, and that a flag beats both.
func TestServeReadsConfiguration(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	taken, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	// From the file: the taken port is the one serve tries.
	file := writeConfig(t, "nats-listen: "+addr+"\n")
	code, _, errOut := runArgs(t, "serve", "--config", file, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	if want := "invictus: --nats-listen " + addr + ": address already in use (--nats-listen was set in " + file + ")"; code != exitError || !strings.Contains(errOut, want) {
		t.Errorf("serve with the file: exit %d, want %d and %q:\n%s", code, exitError, want, errOut)
	}

	// From the environment, over the file.
	var out, eOut syncBuffer
	cmd := newServeCmdWith(&out, &eOut, fakeEnv(map[string]string{"INVICTUS_LISTEN": addr, "INVICTUS_CONFIG": writeConfig(t, "listen: 127.0.0.1:0\n")}))
	cmd.SetArgs([]string{"--data", t.TempDir(), "--nats-listen", "127.0.0.1:0"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err = cmd.ExecuteContext(t.Context())
	if want := "--listen " + addr + ": address already in use (--listen was set by INVICTUS_LISTEN)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("serve with INVICTUS_LISTEN: %v, want %q", err, want)
	}

	// A flag beats the environment: serve starts.
	p := serveInProcess(t, fakeEnv(map[string]string{"INVICTUS_LISTEN": addr}), "--data", t.TempDir())
	if code, rep := getJSON(t, "http://"+p.HTTP+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %+v", code, rep)
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, p.errOut)
	}
}
