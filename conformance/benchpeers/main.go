// Command benchpeers runs the fixed workload of issue 11 against
// artifactstore and against its peers (CNCF Distribution v3, Debian's
// Distribution 2.8 when installed, zot when given) in the same run, and prints a table of
// medians and ratios. "make bench-peers" installs the peers and clients
// and runs it (conformance/bench-peers.sh).
//
// Each round starts every server afresh on an empty data directory (and a
// new PostgreSQL schema), runs every step against it, reads its peak RSS
// and stops it; rounds interleave the servers, in an order that rotates
// from round to round so that none always goes first. Client and server
// share the machine over loopback. Every loop is bounded by a count, and
// every step by a deadline.
//
// Sizes and counts come from the environment (see loadConfig); the binaries
// from flags:
//
//	benchpeers --artifactstore bin/artifactstore --distribution tools/registry \
//	  [--docker-registry /usr/bin/docker-registry] [--zot path/to/zot] --oras tools/oras --skopeo /usr/bin/skopeo \
//	  [--out results/bench-peers.md]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var bins binaries
	flag.StringVar(&bins.artifactstore, "artifactstore", "bin/artifactstore", "the artifactstore binary to measure")
	flag.StringVar(&bins.baseline, "baseline", "", "an earlier artifactstore binary, measured beside the first as baseline (and baseline-pg), to tell what a change did (empty: none)")
	flag.StringVar(&bins.distribution, "distribution", "", "CNCF Distribution v3's registry binary (empty: not measured)")
	flag.StringVar(&bins.dockerRegistry, "docker-registry", "", "Debian's docker-registry, Distribution 2.8 (empty: not measured)")
	flag.StringVar(&bins.zot, "zot", "", "a zot binary (empty: not measured)")
	flag.StringVar(&bins.oras, "oras", "", "the oras client (empty: its steps are skipped)")
	flag.StringVar(&bins.skopeo, "skopeo", "", "the skopeo client (empty: its steps are skipped)")
	out := flag.String("out", "", "also write the report, in Markdown, to this file")
	flag.Parse()

	if err := bins.resolve(); err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		os.Exit(2)
	}
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := run(ctx, cfg, bins)
	if report != "" {
		fmt.Print(report)
		if *out != "" {
			if werr := writeReport(*out, report); werr != nil {
				fmt.Fprintln(os.Stderr, "benchpeers:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		os.Exit(1)
	}
}

func writeReport(path, report string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(report), 0o644)
}

// binaries are the programs a run starts; an empty path leaves out the
// server or the steps that need it.
type binaries struct {
	artifactstore, baseline, distribution, dockerRegistry, zot string
	oras, skopeo                                               string
}

// resolve makes every path absolute, since the clients run in other
// directories, and checks that each names a program.
func (b *binaries) resolve() error {
	for _, p := range []*string{&b.artifactstore, &b.baseline, &b.distribution, &b.dockerRegistry, &b.zot, &b.oras, &b.skopeo} {
		if *p == "" {
			continue
		}
		found, err := exec.LookPath(*p)
		if err != nil {
			return err
		}
		if *p, err = filepath.Abs(found); err != nil {
			return err
		}
	}
	return nil
}

// run measures every target for cfg.rounds rounds and returns the report.
// It returns an error, with the report of what was measured, when a step
// failed on any server: a rate is only ever printed for correct answers.
func run(ctx context.Context, cfg config, bins binaries) (string, error) {
	targets, skipped := chooseTargets(cfg, bins)
	if len(targets) == 0 {
		return "", fmt.Errorf("no server to measure (BENCH_SERVERS=%q)", strings.Join(cfg.servers, ","))
	}
	for _, s := range skipped {
		logf("*** %s", s)
	}
	loadStart := loadAverage()
	if l, err := strconv.ParseFloat(loadStart, 64); err == nil && l >= 1 {
		logf("*** load average %s: other work is running; the numbers will be noisy", loadStart)
	}
	work, err := os.MkdirTemp(cfg.dir, "benchpeers-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	logf("== generating the workload's data in %s", work)
	data, err := generate(ctx, work, cfg)
	if err != nil {
		return "", fmt.Errorf("generating data: %w", err)
	}
	defer data.close()

	logf("== measuring the machine's ceiling for large pushes")
	ceil := measureCeiling(work)
	steps := workloadSteps(cfg, bins)
	res := newResults(targets, steps)
	started := time.Now()
	for round := range cfg.rounds {
		for i := range targets {
			t := targets[(i+round)%len(targets)] // rotate who goes first
			if err := ctx.Err(); err != nil {
				return "", err
			}
			logf("== round %d/%d: %s", round+1, cfg.rounds, t.name)
			measureTarget(ctx, cfg, work, data, t, steps, res)
		}
	}
	var scaling *scalingResults
	if cfg.postgres != "" && len(cfg.replicas) > 0 && bins.artifactstore != "" {
		scaling = measureReplicas(ctx, cfg, work, bins.artifactstore, data)
	}
	report := res.render(header(cfg, skipped, time.Since(started), loadStart), scaling) + ceil.render(res, steps)
	if n := res.failures() + scaling.failures(); n > 0 {
		return report, fmt.Errorf("%d measurements failed; see the errors under the table", n)
	}
	return report, ctx.Err()
}

// measureTarget runs every step once against a fresh server of target t
// and records the rates, the server CPU seconds of each step and the peak
// RSS of the run.
func measureTarget(ctx context.Context, cfg config, work string, data *workloadData, t target, steps []step, res *results) {
	dir, err := os.MkdirTemp(work, t.name+"-")
	if err != nil {
		res.fail(t.name, "", err)
		return
	}
	defer os.RemoveAll(dir)
	p, err := t.start(ctx, dir)
	if err != nil {
		res.fail(t.name, "", fmt.Errorf("starting: %w", err))
		return
	}
	defer p.stop()
	w := newWorkload(cfg, data, p.url)
	defer w.close()
	for _, s := range steps {
		before, err := p.cpu()
		if err != nil {
			res.fail(t.name, s.name, err)
			continue
		}
		var dbBefore time.Duration
		if t.database {
			if dbBefore, err = databaseCPU(); err != nil {
				res.fail(t.name, s.name, err)
				continue
			}
		}
		sctx, cancel := context.WithTimeout(ctx, s.deadline)
		rate, err := s.run(sctx, w)
		cancel()
		after, cerr := p.cpu()
		if err == nil {
			err = cerr
		}
		if err != nil {
			logf("   %-40s FAILED: %v", s.name, err)
			res.fail(t.name, s.name, err)
			if !p.alive() {
				res.fail(t.name, "", fmt.Errorf("the server exited; its log: %s", p.logTail()))
				return
			}
			continue
		}
		cpu := (after - before).Seconds()
		// The high-water mark after each step, in the log only: the step
		// that raises it is the one to look at when peak RSS grows.
		var peak float64
		if rss, err := p.peakRSS(); err == nil {
			peak = float64(rss) / (1 << 20)
		}
		if t.database {
			dbAfter, err := databaseCPU()
			if err != nil {
				res.fail(t.name, s.name, err)
				continue
			}
			db := (dbAfter - dbBefore).Seconds()
			logf("   %-40s %10.1f %-6s %6.2f CPU-s, PostgreSQL %.2f, peak %.1f MiB", s.name, rate, s.unit, cpu, db, peak)
			res.addDatabase(t.name, s.name, db)
		} else {
			logf("   %-40s %10.1f %-6s %6.2f CPU-s, peak %.1f MiB", s.name, rate, s.unit, cpu, peak)
		}
		res.add(t.name, s.name, rate, cpu)
	}
	if rss, err := p.peakRSS(); err != nil {
		res.fail(t.name, rowPeakRSS, err)
	} else {
		logf("   %-40s %10.1f MiB", rowPeakRSS, float64(rss)/(1<<20))
		res.add(t.name, rowPeakRSS, float64(rss)/(1<<20), 0)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
