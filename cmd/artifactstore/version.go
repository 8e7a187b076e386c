package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// build says which build this binary is, from what the Go toolchain
// recorded in it: the module version ("(devel)" for a build from a
// checkout) and the VCS revision it was built from.
type build struct {
	version, revision, time string
	modified                bool
}

func readBuild() build {
	b := build{version: "(unknown)", revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.version = info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

func (b build) String() string {
	s := fmt.Sprintf("artifactstore %s, revision %s", b.version, b.revision)
	if b.modified {
		s += " (with uncommitted changes)"
	}
	if b.time != "" {
		s += ", committed " + b.time
	}
	return s + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// collector is the artifactstore_build_info gauge: always 1, its labels
// say which build is running (for joins in queries and for spotting a
// fleet running mixed versions).
func (b build) collector() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "artifactstore", Name: "build_info",
		Help: "Which build is running: always 1, labelled with the version, VCS revision and Go version."},
		[]string{"version", "revision", "goversion"})
	g.WithLabelValues(b.version, b.revision, runtime.Version()).Set(1)
	return g
}

func versionCmd(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	fmt.Println(readBuild())
	return nil
}
