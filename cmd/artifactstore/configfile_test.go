package main_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const exampleConfig = "../../docs/artifactstore.yaml"

// effectiveLines parses config check's output: setting -> (value, source).
func effectiveLines(t *testing.T, out string) map[string][2]string {
	t.Helper()
	line := regexp.MustCompile(`^([a-z0-9-]+): ("(?:[^"\\]|\\.)*") # (flag|environment|file|default)$`)
	got := map[string][2]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("config check printed a line that is not \"key: \\\"value\\\" # source\": %q", l)
		}
		var v string
		if err := yaml.Unmarshal([]byte(m[2]), &v); err != nil {
			t.Fatalf("value of %s: %v", m[1], err)
		}
		got[m[1]] = [2]string{v, m[3]}
	}
	return got
}

// serveFlagNames are the flags "serve -h" lists, but --config.
func serveFlagNames(t *testing.T) []string {
	out, _ := run(t, "serve", "-h")
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(out, -1) {
		if m[1] != "config" {
			names = append(names, m[1])
		}
	}
	if len(names) < 30 {
		t.Fatalf("serve -h lists %d flags:\n%s", len(names), out)
	}
	return names
}

// TestExampleConfigIsCompleteAndLoads: the documented example sets every
// setting serve has, config check accepts it, and each setting's effective
// value is the file's (secrets masked, the database password hidden).
func TestExampleConfigIsCompleteAndLoads(t *testing.T) {
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	for _, name := range serveFlagNames(t) {
		if _, ok := file[name]; !ok {
			t.Errorf("docs/artifactstore.yaml does not document %q", name)
		}
	}
	out, err := run(t, "config", "check", exampleConfig)
	if err != nil {
		t.Fatalf("config check of the example: %v\n%s", err, out)
	}
	got := effectiveLines(t, out)
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("config check did not print %s", k)
			continue
		}
		if g[1] != "file" {
			t.Errorf("%s comes from %s, want the file (is an ARTIFACTSTORE_ variable set?)", k, g[1])
		}
		want := normalize(file[k])
		switch k {
		case "s3-secret-key", "s3-access-key":
			want = "********"
		case "db":
			want = strings.Replace(want, ":change-me@", ":xxxxx@", 1)
		}
		if g[0] != want && !sameDuration(g[0], want) {
			t.Errorf("%s: effective %q, file %q", k, g[0], want)
		}
	}
	if strings.Contains(out, "change-me") || strings.Contains(out, "example-secret") || strings.Contains(out, "AKIAEXAMPLE") {
		t.Errorf("config check printed a secret:\n%s", out)
	}
}

// normalize is a YAML value as the flag's text: lists comma-joined.
func normalize(v any) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = normalize(p)
		}
		return strings.Join(parts, ",")
	case bool:
		if v {
			return "true"
		}
		return "false"
	case int:
		return strconv.Itoa(v)
	}
	return v.(string)
}

func sameDuration(a, b string) bool {
	da, err1 := time.ParseDuration(a)
	db, err2 := time.ParseDuration(b)
	return err1 == nil && err2 == nil && da == db
}

// TestConfigPrecedence: the environment overrides the file, flags
// override both.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("addr: 127.0.0.1:7001\nupload-ttl: 2h\nmax-uploads: 50\n"), 0o600)
	cmd := exec.Command(binary, "config", "check", cfg)
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_UPLOAD_TTL=3h")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := effectiveLines(t, string(out))
	if got["addr"] != [2]string{"127.0.0.1:7001", "file"} || got["upload-ttl"] != [2]string{"3h0m0s", "environment"} ||
		got["max-uploads"] != [2]string{"50", "file"} || got["gc-grace"] != [2]string{"1h0m0s", "default"} {
		t.Errorf("effective settings: addr %v, upload-ttl %v, max-uploads %v, gc-grace %v", got["addr"], got["upload-ttl"], got["max-uploads"], got["gc-grace"])
	}
}

// TestConfigErrorsNameTheLine: a bad file is refused before anything
// starts, with the file, line and setting, for serve as for config check.
func TestConfigErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ file, want string }{
		{"addr: 127.0.0.1:7001\nuploadttl: 2h\n", `:2: unknown setting "uploadttl"`},
		{"upload-ttl: soon\n", `:1: upload-ttl: "soon" is not a duration`},
		{"max-uploads: many\n", `:1: max-uploads: "many" is not a whole number`},
		{"no-migrate: perhaps\n", `:1: no-migrate: "perhaps" is not true or false`},
		{"addr:\n  host: x\n", `:2: addr: a value, not a map`},
		{"- addr\n", `:1: the configuration is a map of settings`},
		{"addr: a\naddr: b\n", `:2: "addr" is set twice`},
		{"upload-ttl: -1h\n", `--upload-ttl`},
		{"log-level: loud\n", `--log-level "loud"`},
		{"tls-key: k.pem\n", `--tls-cert and --tls-key go together`},
	} {
		cfg := filepath.Join(dir, "c.yaml")
		os.WriteFile(cfg, []byte(c.file), 0o600)
		for _, args := range [][]string{{"config", "check", cfg}, {"serve", "--data", dir, "--config", cfg}} {
			out, err := run(t, args...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("%s with %q: err %v, output %q; want it to say %q", args[0], c.file, err, out, c.want)
			}
		}
	}
}

// TestConfigReloadOnHangup: SIGHUP re-reads the file; log-level applies at
// once (the request lines stop), a setting that needs a restart is named
// in the log and keeps its value, and a broken file changes nothing.
func TestConfigReloadOnHangup(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("log-level: info\nupload-ttl: 24h\ngc-interval: 0s\n"), 0o600)
	s := startWith(t, filepath.Join(dir, "data"), freeAddr(t), "--config", cfg)
	getText(t, s.url("/v2/"))
	waitLog(t, s, "msg=request")

	hangup := func() {
		t.Helper()
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(cfg, []byte("log-level: warn\nupload-ttl: 1h\ngc-interval: 200ms\n"), 0o600)
	hangup()
	waitLog(t, s, "level=WARN msg=\"configuration changed\" setting=log-level from=info to=warn")
	waitLog(t, s, "msg=\"configuration change needs a restart; the running value stays\" setting=upload-ttl running=24h0m0s file=1h0m0s")
	waitLog(t, s, "msg=\"configuration changed\" setting=gc-interval from=0s to=200ms")
	// The collector, off at start, now runs on its new schedule.
	collected := false
	for range 100 {
		_, metrics := getText(t, s.url("/metrics"))
		if strings.Contains(metrics, `artifactstore_background_runs_total{result="ok",task="gc"}`) {
			collected = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !collected {
		t.Error("no garbage collection ran after gc-interval was set by a reload")
	}
	before := strings.Count(logsOf(s), "msg=request")
	if before == 0 {
		t.Fatal("no request lines before the reload")
	}
	for range 3 {
		getText(t, s.url("/v2/"))
	}

	os.WriteFile(cfg, []byte("log-level: [info\n"), 0o600)
	hangup()
	waitLog(t, s, "configuration not reloaded")
	getText(t, s.url("/v2/"))
	if n := strings.Count(logsOf(s), "msg=request"); n != before {
		t.Errorf("request lines after log-level warn: %d more", n-before)
	}
	if s.cmd.ProcessState != nil {
		t.Fatal("the server exited on SIGHUP")
	}
}

// logsOf reads the server's log so far.
func logsOf(s *server) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// waitLog waits up to 10 s for the server to log want.
func waitLog(t *testing.T, s *server, want string) {
	t.Helper()
	for range 100 {
		if strings.Contains(logsOf(s), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("server did not log %q:\n%s", want, logsOf(s))
}

// TestCredentialsReloadOnHangup: SIGHUP re-reads the htpasswd file: a
// removed user is refused at once, an added one is let in.
func TestCredentialsReloadOnHangup(t *testing.T) {
	dir := t.TempDir()
	line := func(user string) string {
		cmd := exec.Command(binary, "htpasswd", user)
		cmd.Stdin = strings.NewReader(user + "-pw\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	users := filepath.Join(dir, "htpasswd")
	os.WriteFile(users, []byte(line("alice")), 0o600)
	s := startWith(t, filepath.Join(dir, "data"), freeAddr(t), "--htpasswd", users)
	whoami := func(user string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url("/api/v1/whoami"), nil)
		req.SetBasicAuth(user, user+"-pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b := whoami("alice"), whoami("bob"); a != 200 || b != 401 {
		t.Fatalf("before the reload: alice %d, bob %d", a, b)
	}
	os.WriteFile(users, []byte(line("bob")), 0o600)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "msg=\"users reloaded\"")
	if a, b := whoami("alice"), whoami("bob"); a != 401 || b != 200 {
		t.Errorf("after the reload: alice %d (want 401), bob %d (want 200)", a, b)
	}
}

// TestConfigMasksURLSecrets: a database or collector URL's password, in
// its user part or its query, is never printed; a refused URL is not
// echoed either.
func TestConfigMasksURLSecrets(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("db: postgres://u:pw-one@h/db?sslmode=require&sslpassword=pw-two\notlp-endpoint: https://user:pw-three@collector:4318/v1/traces?token=pw-four\n"), 0o600)
	out, err := run(t, "config", "check", cfg)
	if err != nil || strings.Contains(out, "pw-") || !strings.Contains(out, "sslmode=require") {
		t.Errorf("config check (%v) printed:\n%s", err, out)
	}
	os.WriteFile(cfg, []byte("db: mysql://u:pw-five@h/db\n"), 0o600)
	if out, err := run(t, "config", "check", cfg); err == nil || strings.Contains(out, "pw-five") {
		t.Errorf("a refused db URL: %v %s", err, out)
	}
}
