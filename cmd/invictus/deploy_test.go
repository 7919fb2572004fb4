package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The files of deploy/ are what an operator runs; these tests load each
// with the parser its tool uses (or a strict one) and check what the
// binary must agree with: every INVICTUS_* variable is a flag of serve
// with a valid value, the NATS configuration of Kubernetes is the file
// the cluster test starts, the probes are the node's.

// deployDir is deploy/ from this package.
const deployDir = "../../deploy"

// serveFlagSet returns serve's flags, for checking settings by name.
func serveFlagSet() *pflag.FlagSet {
	var o serveOptions
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	return fs
}

// checkServeEnv fails for a variable INVICTUS_X whose flag serve lacks or
// whose value the flag refuses.
func checkServeEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	fs := serveFlagSet()
	byEnv := map[string]*pflag.Flag{}
	fs.VisitAll(func(f *pflag.Flag) { byEnv[envName(f.Name)] = f })
	n := 0
	for k, v := range env {
		if !strings.HasPrefix(k, envPrefix) {
			continue
		}
		n++
		f, ok := byEnv[k]
		if !ok {
			t.Errorf("%s: %s is no setting of invictus serve", where, k)
			continue
		}
		if err := f.Value.Set(v); err != nil {
			t.Errorf("%s: %s=%q: --%s refuses it: %v", where, k, v, f.Name, err)
		}
	}
	if n == 0 {
		t.Errorf("%s: no INVICTUS_* settings", where)
	}
}

func TestDeployCompose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(deployDir, "compose.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(deployDir)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: b}},
		Environment: types.Mapping{
			"INVICTUS_NATS_NKEY": "UAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			"NATS_SYS_NKEY":      "UBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
			"POSTGRES_PASSWORD":  "test",
		},
	}
	p, err := loader.LoadWithContext(t.Context(), details, func(o *loader.Options) { o.SetProjectName("invictus", true) })
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	want := []string{"invictus-1", "invictus-2", "mailpit", "nats-1", "nats-2", "nats-3", "postgres", "projection"}
	if got := p.ServiceNames(); !slices.Equal(sortedCopy(got), want) {
		t.Errorf("services %v, want %v", got, want)
	}
	// Without the nkeys the file says where to set them.
	delete(details.Environment, "INVICTUS_NATS_NKEY")
	if _, err := loader.LoadWithContext(t.Context(), details, func(o *loader.Options) { o.SetProjectName("invictus", true) }); err == nil ||
		!strings.Contains(err.Error(), "deploy/README.md") {
		t.Errorf("compose without INVICTUS_NATS_NKEY: %v, want an error naming deploy/README.md", err)
	}

	names := map[string]bool{}
	for _, s := range p.Services {
		switch {
		case strings.HasPrefix(s.Name, "nats-"):
			names[*s.Environment["NATS_SERVER_NAME"]] = true
			mounted := false
			for _, v := range s.Volumes {
				if v.Target == "/etc/nats/cluster.conf" {
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
					}
					mounted = true
				}
			}
			if !mounted || !slices.Contains(s.Command, "/etc/nats/cluster.conf") {
				t.Errorf("%s does not run deploy/nats/cluster.conf: %v %v", s.Name, s.Command, s.Volumes)
			}
			checkRoutes(t, s.Name, *s.Environment["NATS_ROUTES"], []string{"nats-1", "nats-2", "nats-3"})
		case strings.HasPrefix(s.Name, "invictus-"):
			env := map[string]string{}
			for k, v := range s.Environment {
				env[k] = *v
			}
			checkServeEnv(t, s.Name, env)
			if env["INVICTUS_NATS_REPLICAS"] != "3" {
				t.Errorf("%s: streams are not R3: %q", s.Name, env["INVICTUS_NATS_REPLICAS"])
			}
			if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("%s: build %+v, want deploy/Dockerfile", s.Name, s.Build)
			} else if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: %v", s.Name, err)
			}
			hc := s.HealthCheck
			if hc == nil || !slices.Contains(hc.Test, "probe") || !strings.HasSuffix(hc.Test[len(hc.Test)-1], "/readyz") {
				t.Errorf("%s: health check %+v, want invictus probe .../readyz", s.Name, hc)
			}
		case s.Name == "projection":
			// The command is the binary's: its flags parse.
			if code, _, stderr := runArgs(t, append(slices.Clone(s.Command), "--help")...); code != 0 {
				t.Errorf("projection command %v: exit %d: %s", s.Command, code, stderr)
			}
		}
	}
	if len(names) != 3 {
		t.Errorf("NATS server names %v, want three different", names)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// checkRoutes parses a NATS list of route URLs and wants one per host.
func checkRoutes(t *testing.T, where, routes string, hosts []string) {
	t.Helper()
	re := regexp.MustCompile(`nats://([a-z0-9.-]+):6222`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(routes, -1) {
		got = append(got, strings.SplitN(m[1], ".", 2)[0])
	}
	if !slices.Equal(got, hosts) || !strings.HasPrefix(routes, "[") {
		t.Errorf("%s: NATS_ROUTES %q, want a list of the routes of %v", where, routes, hosts)
	}
}

// The Kubernetes objects of deploy/k8s, as much of their API types as the
// files use; decoding with KnownFields fails on any other field, so a
// typo (readinesProbe) is an error, not a missing probe.
type (
	k8sObject struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		Spec       yaml.Node         `yaml:"spec"`
	}
	k8sMeta struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	}
	k8sService struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	k8sWorkload struct {
		ServiceName         string `yaml:"serviceName"`
		Replicas            int    `yaml:"replicas"`
		PodManagementPolicy string `yaml:"podManagementPolicy"`
		Selector            struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable int `yaml:"maxUnavailable"`
				MaxSurge       int `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     k8sPod  `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				AccessModes []string     `yaml:"accessModes"`
				Resources   k8sResources `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	}
	k8sPod struct {
		SecurityContext struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
			RunAsUser    int  `yaml:"runAsUser"`
			RunAsGroup   int  `yaml:"runAsGroup"`
			FSGroup      int  `yaml:"fsGroup"`
		} `yaml:"securityContext"`
		TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
		Containers                    []k8sContainer `yaml:"containers"`
		Volumes                       []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			Secret *struct {
				SecretName  string `yaml:"secretName"`
				DefaultMode int    `yaml:"defaultMode"`
				Items       []struct {
					Key  string `yaml:"key"`
					Path string `yaml:"path"`
				} `yaml:"items"`
			} `yaml:"secret"`
			EmptyDir *struct{} `yaml:"emptyDir"`
		} `yaml:"volumes"`
	}
	k8sContainer struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		StartupProbe    *k8sProbe    `yaml:"startupProbe"`
		ReadinessProbe  *k8sProbe    `yaml:"readinessProbe"`
		LivenessProbe   *k8sProbe    `yaml:"livenessProbe"`
		Resources       k8sResources `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	k8sProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	k8sResources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	}
)

// decodeStrict decodes node into v, refusing unknown fields.
func decodeStrict(node *yaml.Node, v any) error {
	b, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// readK8s decodes every document of the files of deploy/k8s.
func readK8s(t *testing.T) map[string]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	objs := map[string]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return objs
}

func TestDeployKubernetes(t *testing.T) {
	t.Parallel()
	objs := readK8s(t)
	for _, k := range []string{"Namespace/invictus", "ConfigMap/nats-config", "Service/nats", "StatefulSet/nats", "Deployment/invictus", "Service/invictus"} {
		if _, ok := objs[k]; !ok {
			t.Errorf("no %s in deploy/k8s", k)
		}
	}
	for k, o := range objs {
		var err error
		switch o.Kind {
		case "Service":
			var s k8sService
			err = decodeStrict(&o.Spec, &s)
		case "StatefulSet", "Deployment":
			var w k8sWorkload
			err = decodeStrict(&o.Spec, &w)
		}
		if err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}

	// The ConfigMap is cluster.conf, verbatim.
	conf, err := os.ReadFile(filepath.Join(deployDir, "nats", "cluster.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := objs["ConfigMap/nats-config"].Data["cluster.conf"]; got != string(conf) {
		t.Errorf("the ConfigMap's cluster.conf differs from deploy/nats/cluster.conf")
	}

	var nats k8sWorkload
	st := objs["StatefulSet/nats"]
	if err := decodeStrict(&st.Spec, &nats); err != nil {
		t.Fatal(err)
	}
	if nats.Replicas != 3 || len(nats.Template.Spec.Containers) != 1 {
		t.Fatalf("NATS StatefulSet: %+v", nats)
	}
	c := nats.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	checkRoutes(t, "StatefulSet/nats", env["NATS_ROUTES"], []string{"nats-0", "nats-1", "nats-2"})
	for _, v := range []string{"NATS_SERVER_NAME", "INVICTUS_NATS_NKEY", "NATS_SYS_NKEY"} {
		if _, ok := env[v]; !ok {
			t.Errorf("NATS StatefulSet: no %s, which cluster.conf needs", v)
		}
	}

	var inv k8sWorkload
	dep := objs["Deployment/invictus"]
	if err := decodeStrict(&dep.Spec, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Replicas < 2 || len(inv.Template.Spec.Containers) != 1 {
		t.Fatalf("invictus Deployment: %d replicas", inv.Replicas)
	}
	ic := inv.Template.Spec.Containers[0]
	env = map[string]string{}
	for _, e := range ic.Env {
		env[e.Name] = e.Value
	}
	checkServeEnv(t, "Deployment/invictus", env)
	if env["INVICTUS_NATS_REPLICAS"] != "3" {
		t.Errorf("invictus Deployment: streams are not R3")
	}
	for name, p := range map[string]*k8sProbe{"readiness": ic.ReadinessProbe, "startup": ic.StartupProbe, "liveness": ic.LivenessProbe} {
		want := "/readyz"
		if name == "liveness" {
			want = "/healthz"
		}
		if p == nil || p.HTTPGet.Path != want || p.HTTPGet.Port != "http" {
			t.Errorf("invictus %s probe %+v, want GET %s on port http", name, p, want)
		}
	}
	if !inv.Template.Spec.SecurityContext.RunAsNonRoot || inv.Template.Spec.SecurityContext.RunAsUser != 65532 {
		t.Errorf("invictus pods must run as the image's non-root user 65532")
	}
	if !slices.Equal(ic.Args, []string{"serve"}) {
		t.Errorf("invictus args %v", ic.Args)
	}
}

// unitFile parses a systemd unit: section.key to values.
func unitFile(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: not a unit line: %q", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeploySystemd(t *testing.T) {
	t.Parallel()
	hardening := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "DynamicUser": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallFilter": "@system-service",
	}
	for _, name := range []string{"invictus.service", "nats-server.service"} {
		u := unitFile(t, filepath.Join(deployDir, "systemd", name))
		for k, want := range hardening {
			if !slices.Contains(u["Service."+k], want) {
				t.Errorf("%s: %s=%v, want %q among them", name, k, u["Service."+k], want)
			}
		}
		if len(u["Service.ExecStart"]) != 1 || len(u["Install.WantedBy"]) != 1 {
			t.Errorf("%s: ExecStart %v WantedBy %v", name, u["Service.ExecStart"], u["Install.WantedBy"])
		}
	}

	// invictus.service runs serve with the settings file beside it, and
	// every setting in it is one serve takes.
	u := unitFile(t, filepath.Join(deployDir, "systemd", "invictus.service"))
	if got := u["Service.ExecStart"][0]; got != "/usr/local/bin/invictus serve --config /etc/invictus/invictus.yaml" {
		t.Errorf("ExecStart %q", got)
	}
	env := map[string]string{}
	for _, e := range u["Service.Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = strings.ReplaceAll(v, "%d", "/run/credentials/invictus.service")
	}
	checkServeEnv(t, "invictus.service", env)
	code, stdout, stderr := runArgs(t, "config", "print", "--config", filepath.Join(deployDir, "systemd", "invictus.yaml"))
	if code != 0 {
		t.Fatalf("config print of deploy/systemd/invictus.yaml: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"nats-replicas", "nats-url"} {
		if !regexp.MustCompile(`(?m)^` + want + `\s+\S+\s+file`).MatchString(stdout) {
			t.Errorf("config print does not show %s from the file:\n%s", want, stdout)
		}
	}
	// A NATS unit naming a configuration the repository has.
	n := unitFile(t, filepath.Join(deployDir, "systemd", "nats-server.service"))
	if !strings.HasSuffix(n["Service.ExecStart"][0], "--config /etc/nats/cluster.conf") {
		t.Errorf("nats-server.service ExecStart %q", n["Service.ExecStart"][0])
	}
}

// TestDockerfile checks what deploy/Dockerfile promises, without a
// container runtime (none runs on the machines this is tested on): the
// build command makes a static binary, and that binary runs serve as the
// image's non-root user.
func TestDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var build string
	for _, line := range strings.Split(string(b), "\n") {
		switch f := strings.Fields(line); {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case f[0] == "FROM":
			froms = append(froms, strings.Join(f[1:], " "))
		case f[0] == "USER":
			users = append(users, f[1])
		case f[0] == "RUN" && strings.Contains(line, "go build"):
			build = line
		}
	}
	if len(froms) < 2 || froms[len(froms)-1] != "scratch" {
		t.Errorf("stages %v: want a build stage and a final scratch stage", froms)
	}
	if len(users) == 0 {
		t.Fatal("no USER: the image would run as root")
	}
	uid, err := strconv.Atoi(strings.SplitN(users[len(users)-1], ":", 2)[0])
	if err != nil || uid == 0 {
		t.Fatalf("USER %s: want a numeric non-root uid (scratch has no /etc/passwd)", users[len(users)-1])
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/invictus") {
		t.Fatalf("build step %q: want CGO_ENABLED=0 go build ./cmd/invictus", build)
	}
	m := regexp.MustCompile(`go build (.*) -o /out/invictus ./cmd/invictus`).FindStringSubmatch(build)
	if m == nil {
		t.Fatalf("build step %q: not understood", build)
	}

	// The same build, here (without -trimpath, which would rebuild every
	// package rather than reuse the test's build cache): the binary is
	// static.
	dir := t.TempDir()
	bin := filepath.Join(dir, "invictus")
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%v): it would not run on scratch", p.Type)
		}
	}
	ef.Close()

	// It serves as uid 65532, with its data in a directory that user owns
	// (the image's /var/lib/invictus), and stops cleanly.
	if os.Getuid() != 0 {
		t.Skip("running as another user needs root")
	}
	// The test's temporary directories are root's, mode 0700: let the
	// user through to the binary.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	addr := filepath.Join(dir, "addr.json")
	srv := exec.Command(bin, "serve", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--addr-file", addr)
	srv.Env = []string{"PATH=/nonexistent"}
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	var stderr syncBuffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
	})
	waitFor(t, "the non-root node's addr file", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("serve as uid %d exited: %v\n%s", uid, err, stderr.String())
		default:
		}
		_, err := os.Stat(addr)
		return err == nil
	})
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "data", "nats"), &st); err != nil || st.Uid != uint32(uid) {
		t.Errorf("the store is not the non-root user's: uid %d, %v", st.Uid, err)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Errorf("serve as uid %d did not stop cleanly: %v\n%s", uid, err, stderr.String())
	}
}

// TestProbe is the image's health check: 0 for 200, 1 otherwise or when
// nothing answers.
func TestProbe(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(status.Load()))
		fmt.Fprintln(w, `{"status":"x"}`)
	}))
	defer srv.Close()
	if code, out, stderr := runArgs(t, "probe", srv.URL+"/readyz"); code != exitOK || !strings.HasPrefix(out, "200 OK") {
		t.Errorf("probe of a 200: exit %d %q %s", code, out, stderr)
	}
	status.Store(http.StatusServiceUnavailable)
	if code, out, _ := runArgs(t, "probe", srv.URL+"/readyz"); code != exitError || !strings.HasPrefix(out, "503") {
		t.Errorf("probe of a 503: exit %d %q", code, out)
	}
	if code, _, _ := runArgs(t, "probe", "http://"+freeAddr(t)+"/readyz"); code == exitOK {
		t.Error("probe of nothing: exit 0")
	}
}
