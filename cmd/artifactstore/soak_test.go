package main_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
)

// The soak: real servers, with their periodic server-side tasks on short
// intervals, under a bounded concurrent load for SOAK_DURATION (make soak,
// make soak-short). Skipped unless SOAK_DURATION is set.
//
//	targets  one server on SQLite; two replicas sharing one PostgreSQL
//	         database and one blob directory (each request to either)
//	tasks    periodic server-side work, each with its serve flags and its
//	         figures (soakTasks, soak_tasks_test.go); the load never waits
//	         for them
//	clients  SOAK_CLIENTS per target (default 4), each pushing images of a
//	         shared pool of layers into shared repositories under tags of
//	         its own, moving and removing its tags, deleting its images
//	         and pulling them, keeping a ledger of what was acknowledged
//	         (soak_load_test.go)
//
// At the end the load stops, every task is given time to do what the load
// left it (settle), and then: every image acknowledged and not deleted
// pulls byte for byte from every server, every tag names what its client
// last set, no client saw a failure (a 5xx other than a retryable 503, a
// manifest refused for blobs it had pushed within the grace, a failed
// pull, ...), no server logged an error, verify is clean with nothing left
// for the collector, and replay rebuilds the same views.

// soakTarget is one store and the servers that serve it.
type soakTarget struct {
	name    string
	data    string
	db      []string // --db DSN, or nothing for SQLite
	servers []*server
	next    atomic.Uint64
}

// dsn is the PostgreSQL database's, or "" for SQLite.
func (g *soakTarget) dsn() string {
	if len(g.db) == 2 {
		return g.db[1]
	}
	return ""
}

// base returns the URL of one of the target's servers, in turn.
func (g *soakTarget) base() string {
	return g.servers[g.next.Add(1)%uint64(len(g.servers))].url("")
}

func (g *soakTarget) start(t *testing.T, replicas int) {
	var flags []string
	for _, task := range soakTasks {
		flags = append(flags, task.flags...)
	}
	for range replicas {
		g.servers = append(g.servers, startWith(t, g.data, freeAddr(t), append(slices.Clone(g.db), flags...)...))
	}
}

// stop stops every server with SIGTERM and returns their error lines.
func (g *soakTarget) stop() []string {
	var errs []string
	for _, s := range g.servers {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
		for _, line := range strings.Split(s.logs.String(), "\n") {
			if strings.Contains(line, "level=ERROR") {
				errs = append(errs, line)
			}
		}
	}
	return errs
}

func TestSoak(t *testing.T) {
	duration, err := time.ParseDuration(os.Getenv("SOAK_DURATION"))
	if err != nil {
		t.Skip("the soak runs with SOAK_DURATION set (make soak, make soak-short)")
	}
	targets := startSoakTargets(t)
	var loads []*soakClient
	for _, g := range targets {
		for i := range envInt(t, "SOAK_CLIENTS", 4) {
			style := uploadAll // one resumer per target; the others alternate
			switch {
			case i == 0:
				style = resumed
			case i%2 == 1:
				style = headFirst
			}
			loads = append(loads, newSoakClient(len(loads), g, style))
		}
	}
	t.Logf("soak: %v, %d clients on %d targets, tasks every %v", duration, len(loads), len(targets), soakGCInterval)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for _, c := range loads {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(deadline) }()
	}
	var taskMu sync.Mutex
	var taskFailures []string
	for _, g := range targets {
		for _, task := range soakTasks {
			if task.load == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ops, failures := task.load(t, g, deadline)
				t.Logf("%s: %s load: %v", g.name, task.name, ops)
				taskMu.Lock()
				taskFailures = append(taskFailures, failures...)
				taskMu.Unlock()
			}()
		}
	}
	wg.Wait()
	stopped := time.Now()
	for _, f := range taskFailures {
		t.Error(f)
	}

	settleTasks(t, targets, stopped)
	for _, c := range loads {
		c.checkLedger()
	}
	reportSoak(t, targets, loads, stopped)
	for _, g := range targets {
		for _, line := range g.stop() {
			t.Errorf("server error on %s: %s", g.name, line)
		}
	}
	if t.Failed() {
		return
	}
	for _, g := range targets {
		t.Run("verify "+g.name, func(t *testing.T) { verifyCleanReplay(t, g.data, g.db) })
	}
}

// startSoakTargets starts the server on SQLite and, when PostgreSQL is
// there to test against, the two replicas.
func startSoakTargets(t *testing.T) []*soakTarget {
	targets := []*soakTarget{{name: "sqlite", data: t.TempDir()}}
	targets[0].start(t, 1)
	if os.Getenv(pgtest.EnvVar) == "" {
		t.Logf("*** %s is not set: the PostgreSQL replicas are NOT soaked ***", pgtest.EnvVar)
		return targets
	}
	pg := &soakTarget{name: "postgres (2 replicas)", data: t.TempDir(), db: []string{"--db", pgtest.DSN(t)}}
	// Migrate once, so that the replicas do not race to.
	if out, err := run(t, "migrate", "--db", pg.dsn()); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	pg.start(t, 2)
	return append(targets, pg)
}

// settleTasks waits until every task has done what the load left it on
// every target, or fails the test after a minute more than it needs.
func settleTasks(t *testing.T, targets []*soakTarget, stopped time.Time) {
	var settle time.Duration
	for _, task := range soakTasks {
		settle = max(settle, task.settle)
	}
	time.Sleep(time.Until(stopped.Add(settle)))
	for _, g := range targets {
		for _, task := range soakTasks {
			for {
				left, done := task.settled(t, g)
				if done {
					break
				}
				if time.Since(stopped) > settle+time.Minute {
					t.Errorf("%s: %s has not done what the load left it %v after the load stopped: %s", g.name, task.name, time.Since(stopped).Round(time.Second), left)
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		t.Logf("%s: every task settled %v after the load stopped", g.name, time.Since(stopped).Round(100*time.Millisecond))
	}
}

// reportSoak prints the figures of each target and fails the test on
// every failure a client saw.
func reportSoak(t *testing.T, targets []*soakTarget, loads []*soakClient, stopped time.Time) {
	hc := &http.Client{Timeout: 30 * time.Second}
	var failures []string
	for _, g := range targets {
		st := soakStats{ops: map[string]int{}}
		for _, c := range loads {
			if c.target == g {
				st.add(&c.stats)
			}
		}
		failures = append(failures, st.failures...)
		if st.ops["push"] == 0 || st.ops["delete"] == 0 {
			t.Errorf("%s: the load neither pushed nor deleted: nothing was soaked", g.name)
		}
		t.Logf("%s: operations %s", g.name, st.opsLine())
		t.Logf("%s: %d retries after a 503; MANIFEST_BLOB_UNKNOWN: %d with every blob uploaded within the grace, %d after skipping blobs a HEAD found, %d of %d resumed pushes (every blob found by a HEAD within the grace), %d past the grace (allowed)",
			g.name, st.unavailable, st.blobUnknown, st.blobUnknownSkipped, st.blobUnknownResumed, st.resumedPushes, st.blobUnknownLate)
		if n := st.blobUnknownSkipped + st.blobUnknownResumed; n > 0 {
			// A HEAD that finds a link renews it (an append, on whichever
			// replica serves it) once it is older than half the grace, and
			// the collectors' unlinks yield to that: none may be refused.
			t.Errorf("%s: %d manifests refused after a HEAD found their blobs within the grace", g.name, n)
		}
		for _, task := range soakTasks {
			fig, err := task.figures(hc, g.base(), stopped)
			if err != nil {
				t.Errorf("%s figures on %s: %v", task.name, g.name, err)
			}
			t.Logf("%s: %s: %s", g.name, task.name, fig)
		}
	}
	t.Logf("failures: %d", len(failures))
	for i, f := range failures {
		if i == 20 {
			t.Errorf("... and %d more", len(failures)-i)
			break
		}
		t.Errorf("failure: %s", f)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
