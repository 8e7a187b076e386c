package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The configuration file is YAML, one key per flag of serve, named as the
// flag without its dashes:
//
//	addr: 0.0.0.0:5000
//	db: postgres://registry@db.internal/registry
//	upload-ttl: 24h
//
// A flag the command line gives, or whose ARTIFACTSTORE_* variable is set,
// keeps that value: the file is the base, the environment overrides it,
// flags override both. docs/artifactstore.yaml is a complete example.

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", env("ARTIFACTSTORE_CONFIG", ""), "read settings from this YAML file, one key per flag (\"upload-ttl: 24h\"); flags and ARTIFACTSTORE_* variables override it; SIGHUP re-reads it (env ARTIFACTSTORE_CONFIG)")
}

// envNames are the environment variables a flag's usage names: "(env A, B)".
var envNames = regexp.MustCompile(`\(env ([A-Z0-9_, ]+)\)`)

// fromEnvironment reports whether one of the variables named in fl's
// usage is set (non-empty), so that it, not the file, decides fl.
func fromEnvironment(fl *flag.Flag) bool {
	m := envNames.FindStringSubmatch(fl.Usage)
	if m == nil {
		return false
	}
	for _, name := range strings.Split(m[1], ",") {
		if os.Getenv(strings.TrimSpace(name)) != "" {
			return true
		}
	}
	return false
}

// applyConfigFile sets fs's flags from the YAML file at path (nothing when
// path is empty), except those the command line or the environment set.
// It returns what the file set, by flag name. An unknown key, a value the
// flag refuses, or a list or map where a value belongs is an error naming
// the file and line.
func applyConfigFile(fs *flag.FlagSet, path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return map[string]string{}, nil // empty file: all defaults
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the configuration is a map of settings (key: value), not a %s", path, top.Line, kindName(top))
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { onCommandLine[fl.Name] = true })
	set := map[string]string{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		fl := fs.Lookup(k.Value)
		if fl == nil || k.Value == "config" {
			return nil, fmt.Errorf("%s:%d: unknown setting %q: the keys are the flags of \"artifactstore serve -h\", without dashes", path, k.Line, k.Value)
		}
		if _, dup := set[k.Value]; dup {
			return nil, fmt.Errorf("%s:%d: %q is set twice", path, k.Line, k.Value)
		}
		value, err := scalar(v)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, v.Line, k.Value, err)
		}
		set[k.Value] = value
		if onCommandLine[k.Value] || fromEnvironment(fl) {
			continue
		}
		if err := fs.Set(k.Value, value); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %q is not %s", path, v.Line, k.Value, value, want(fl, err))
		}
	}
	return set, nil
}

// scalar is a setting's value as the flag reads it; a list is joined with
// commas (token-key takes several files).
func scalar(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("a list of values, not of %ss", kindName(c))
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	case yaml.AliasNode:
		return scalar(n.Alias)
	}
	return "", fmt.Errorf("a value, not a %s", kindName(n))
}

// want describes the values fl takes, for an error about another.
func want(fl *flag.Flag, err error) string {
	switch name, _ := flag.UnquoteUsage(fl); name {
	case "duration":
		return "a duration, such as 90s, 15m or 24h"
	case "int":
		return "a whole number"
	case "":
		return "true or false"
	}
	return fmt.Sprintf("valid: %v", err)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// value is a setting's effective value as text.
func (f *serveFlags) value(name string) string { return f.fs.Lookup(name).Value.String() }

// secret settings are masked wherever the configuration is printed.
var secret = map[string]bool{"s3-secret-key": true, "s3-access-key": true}

// masked is fl's value as it may be printed: secrets starred, a database
// URL's password hidden.
func masked(name, value string) string {
	switch {
	case value == "":
		return value
	case secret[name]:
		return "********"
	case name == "db" || name == "otlp-endpoint":
		// A URL's password may be in its user part or its query
		// (password=, sslpassword=): both are hidden.
		u, err := url.Parse(value)
		if err != nil {
			return "********" // unparsable: may hold anything
		}
		if u.RawQuery != "" {
			q := u.Query()
			for k := range q {
				if sensitiveParam(k) {
					q.Set(k, "xxxxx")
				}
			}
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return value
}

// sensitiveParam reports whether a URL query parameter may hold a secret
// (password=, sslpassword=, token=, ...).
func sensitiveParam(name string) bool {
	l := strings.ToLower(name)
	for _, w := range []string{"pass", "secret", "token", "key"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// source says where fl's effective value came from.
func (f *serveFlags) source(fl *flag.Flag) string {
	_, inFile := f.fromFile[fl.Name]
	switch {
	case f.onCommandLine[fl.Name]:
		return "flag"
	case fromEnvironment(fl):
		return "environment"
	case inFile:
		return "file"
	}
	return "default"
}

// effective prints every setting of serve as YAML, secrets masked, each
// with where its value came from.
func (f *serveFlags) effective() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# the effective configuration of artifactstore serve: defaults, then the file, then ARTIFACTSTORE_* variables, then flags\n")
	f.fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name == "config" {
			return
		}
		fmt.Fprintf(&b, "%s: %s # %s\n", fl.Name, strconv.Quote(masked(fl.Name, fl.Value.String())), f.source(fl))
	})
	return b.String()
}

// configCmd is "artifactstore config check FILE": it reads FILE as serve
// would (with the environment over it), checks every setting, and prints
// the effective configuration with secrets masked. Nothing is opened.
func configCmd(args []string) error {
	if len(args) != 2 || args[0] != "check" {
		return fmt.Errorf("usage: artifactstore config check FILE")
	}
	f := newServeFlags(flag.ContinueOnError)
	if err := f.parse([]string{"--config", args[1]}); err != nil {
		return err
	}
	fmt.Print(f.effective())
	return nil
}

// reload re-reads the configuration file with the command line and the
// environment as they were at start, applies each changed setting that
// apply has a function for (those a running server can change), and logs
// every change: applied, or kept until a restart. level is the log level
// in force, so that a change of it is logged where it will be seen.
func (f *serveFlags) reload(args []string, apply map[string]func(next *serveFlags), level func() slog.Level, logger *slog.Logger) {
	if *f.config == "" {
		return
	}
	next := newServeFlags(flag.ContinueOnError)
	next.fs.SetOutput(new(bytes.Buffer))
	if err := next.parse(args); err != nil {
		logger.Error("configuration not reloaded: the file has an error; the running configuration stays", "file", *f.config, "err", err)
		return
	}
	changed := 0
	next.fs.VisitAll(func(fl *flag.Flag) {
		was, now := f.value(fl.Name), next.value(fl.Name)
		if was == now {
			return
		}
		changed++
		fn, ok := apply[fl.Name]
		if !ok {
			logger.Warn("configuration change needs a restart; the running value stays", "setting", fl.Name, "running", masked(fl.Name, was), "file", masked(fl.Name, now))
			return
		}
		// A change of the log level is said at the higher of the two
		// levels, so that it is seen whichever way the level moved.
		at := max(slog.LevelInfo, level())
		fn(next)
		at = max(at, level())
		f.fs.Set(fl.Name, now)
		logger.Log(context.Background(), at, "configuration changed", "setting", fl.Name, "from", masked(fl.Name, was), "to", masked(fl.Name, now))
	})
	if changed == 0 {
		logger.Info("configuration reloaded: nothing changed", "file", *f.config)
	}
}
