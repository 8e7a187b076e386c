package main

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

// TestRender: the table shows medians, the best peer, and our ratio to it
// (highest rate, lowest RSS and CPU); failures show as such and are listed.
func TestRender(t *testing.T) {
	steps := []step{{name: "push", unit: unitMBps}, {name: "pull", unit: unitOps}}
	r := newResults([]target{{name: "ours", us: true}, {name: "peerA"}, {name: "peerB"}}, steps)
	for _, v := range []struct{ ours, a, b float64 }{{100, 40, 50}, {300, 60, 55}, {200, 50, 45}} {
		r.add("ours", "push", v.ours, 2)
		r.add("peerA", "push", v.a, 1)
		r.add("peerB", "push", v.b, 4)
	}
	r.add("ours", "pull", 1500, 0.5)
	r.add("ours", "pull", 1500, 0.5)
	r.fail("ours", "pull", errors.New("GET: 500"))
	r.fail("peerA", "pull", errors.New("GET: 404"))
	r.add("peerB", "pull", 1000, 0.01)
	r.add("ours", rowPeakRSS, 30, 0)
	r.add("peerA", rowPeakRSS, 90, 0)
	r.add("peerB", rowPeakRSS, 60, 0)
	out := r.render("# header\n", nil)
	for _, want := range []string{
		"| push | MB/s | 200 | 50.0 | 50.0 | peerA | 4.00 |",
		"| pull | ops/s | 1,500 (1 failed) | error | 1,000 | peerB | 1.50 |",
		"| peak RSS | MiB | 30.0 | 90.0 | 60.0 | peerB | 0.50 |",
		"| push | 2.00 | 1.00 | 4.00 | peerA | 2.00 |",
		"| pull | 0.50 (1 failed) | error | 0.01 | peerB | 50.00 |",
		"- ours, pull: GET: 500",
		"- peerA, pull: GET: 404",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if r.failures() != 2 {
		t.Errorf("failures() = %d, want 2", r.failures())
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{1234567: "1,234,567", 5241.4: "5,241", 544: "544", 12.34: "12.3", 0.456: "0.46"} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	c, err := loadConfig(env())
	if err != nil || c.bigSize != 1<<30 || c.chunks != 64 || c.blobs != 2000 || c.manifests != 1000 || c.clients != 8 || c.rounds != 3 {
		t.Errorf("defaults: %+v, %v; want issue 11's workload", c, err)
	}
	c, err = loadConfig(env("BENCH_SMALL", "1", "BENCH_ROUNDS", "5", "BENCH_REPLICAS", "1, 3"))
	if err != nil || c.bigSize != 16<<20 || c.rounds != 5 || len(c.replicas) != 2 || c.replicas[1] != 3 {
		t.Errorf("small: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"BENCH_ROUNDS", "0"}, {"BENCH_BIG_MIB", "x"}, {"BENCH_REPLICAS", "1,0"}, {"BENCH_BIG_MIB", "1", "BENCH_CHUNKS", "2000000"}} {
		if _, err := loadConfig(env(bad...)); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

// TestProcessStats reads the CPU time and peak RSS of a process that
// spins, then sleeps.
func TestProcessStats(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo done; sleep 10")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	p := &process{cmd: cmd}
	buf := make([]byte, 5)
	out.Read(buf) // "done": the loop is over
	cpu, err := p.cpu()
	if err != nil || cpu < 10*time.Millisecond || cpu > time.Minute {
		t.Errorf("cpu() = %v, %v; want the loop's time", cpu, err)
	}
	rss, err := p.peakRSS()
	if err != nil || rss < 100<<10 || rss > 1<<30 {
		t.Errorf("peakRSS() = %d, %v", rss, err)
	}
}

// TestRenderDatabase: for targets on a local PostgreSQL the report adds
// the database's CPU seconds per step, and their sum with the server's
// against the best peer's server.
func TestRenderDatabase(t *testing.T) {
	steps := []step{{name: "push", unit: unitOps}}
	r := newResults([]target{{name: "ours"}, {name: "ours-pg", us: true, database: true}, {name: "peer"}}, steps)
	r.targets[0].us = true
	for _, v := range []float64{1.0, 1.2, 1.1} {
		r.add("ours", "push", 900, 1.0)
		r.add("ours-pg", "push", 500, v)
		r.addDatabase("ours-pg", "push", 2*v)
		r.add("peer", "push", 300, 5)
	}
	out := r.render("# header\n", nil)
	for _, want := range []string{
		"| step | ours-pg: PostgreSQL | ours-pg: server + PostgreSQL | best peer's server | ours-pg (server + PostgreSQL) / best |",
		"| push | 2.20 | 3.30 | 5.00 (peer) | 0.66 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if none := newResults([]target{{name: "ours", us: true}}, steps).render("", nil); strings.Contains(none, "PostgreSQL's CPU") {
		t.Errorf("a run without PostgreSQL shows its table:\n%s", none)
	}
}

func TestLocalDatabase(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://postgres@127.0.0.1:5432/test":            true,
		"postgres://postgres@localhost/test":                 true,
		"postgres://postgres@[::1]:5432/test":                true,
		"postgres://postgres@/test?host=/var/run/postgresql": true,
		"postgres://postgres@db.example:5432/test":           false,
		"postgres://postgres@10.0.0.7/test":                  false,
		"postgres://postgres@x/test?host=db.example":         false,
	} {
		if got := localDatabase(dsn); got != want {
			t.Errorf("localDatabase(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// TestDatabaseCPU reads the CPU time of this machine's PostgreSQL, which
// the tests' database is (ARTIFACTSTORE_TEST_POSTGRES on loopback).
func TestDatabaseCPU(t *testing.T) {
	dsn := os.Getenv("ARTIFACTSTORE_TEST_POSTGRES")
	if dsn == "" || !localDatabase(dsn) {
		t.Skip("no local PostgreSQL (ARTIFACTSTORE_TEST_POSTGRES)")
	}
	d, err := databaseCPU()
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 {
		t.Fatalf("database CPU %v, want some: a running server has used some", d)
	}
}
