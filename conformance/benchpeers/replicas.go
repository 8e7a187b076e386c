package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// The replica scaling run: the manifests step through 1, 2, 4 (or
// BENCH_REPLICAS) artifactstore servers sharing one PostgreSQL schema and
// one data directory, client i's requests going to replica i mod n, so
// that every replica appends to the same log.

type scalingResults struct {
	counts []int
	rates  map[int][]float64
	errs   []string
}

func measureReplicas(ctx context.Context, cfg config, work, bin string, data *workloadData) *scalingResults {
	s := &scalingResults{counts: cfg.replicas, rates: map[int][]float64{}}
	for round := range cfg.rounds {
		for _, n := range cfg.replicas {
			if ctx.Err() != nil {
				return s
			}
			logf("== round %d/%d: artifactstore replicas on one PostgreSQL: %d", round+1, cfg.rounds, n)
			r, err := replicaRound(ctx, cfg, work, bin, data, n)
			if err != nil {
				logf("   FAILED: %v", err)
				s.errs = append(s.errs, fmt.Sprintf("%d replicas: %v", n, err))
				continue
			}
			logf("   %-40s %10.1f %s", fmt.Sprintf("%d manifest PUT + tag", cfg.manifests), r, unitOps)
			s.rates[n] = append(s.rates[n], r)
		}
	}
	return s
}

// replicaRound starts n replicas on a fresh schema and data directory,
// PUTs the manifests through them and checks that the tags are all there.
func replicaRound(ctx context.Context, cfg config, work, bin string, data *workloadData, n int) (float64, error) {
	dir, err := os.MkdirTemp(work, fmt.Sprintf("replicas%d-", n))
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	dsn, drop, err := freshSchema(ctx, cfg.postgres, bin)
	if err != nil {
		return 0, err
	}
	defer drop()
	var ws []*workload
	for i := range n {
		// Each replica's log goes to a file of its own in its own directory.
		logDir, err := os.MkdirTemp(dir, fmt.Sprintf("replica%d-", i))
		if err != nil {
			return 0, err
		}
		p, err := startServer(ctx, logDir, func(addr string) *exec.Cmd {
			return exec.Command(bin, "serve", "--data", dir, "--db", dsn, "--addr", addr)
		})
		if err != nil {
			return 0, fmt.Errorf("replica %d: %w", i, err)
		}
		defer p.stop()
		w := newWorkload(cfg, data, p.url)
		defer w.close()
		ws = append(ws, w)
	}
	m := newManifestSet(cfg.manifests, data.small[0])
	if err := m.pushBlobs(ctx, ws[0]); err != nil {
		return 0, err
	}
	rate, err := concurrently(ctx, len(m.bodies), cfg.clients, func(ctx context.Context, i int) error {
		return ws[i%n].putManifest(ctx, repoManifests, tagFor(i), m.bodies[i])
	})
	if err != nil {
		return 0, err
	}
	for i, w := range ws {
		got, err := w.listTags(ctx, repoManifests)
		if err != nil {
			return 0, fmt.Errorf("replica %d: %w", i, err)
		}
		if got != len(m.bodies) {
			return 0, fmt.Errorf("replica %d lists %d tags, want %d", i, got, len(m.bodies))
		}
	}
	return rate, nil
}

func (s *scalingResults) failures() int {
	if s == nil {
		return 0
	}
	return len(s.errs)
}

func (s *scalingResults) render() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Manifest PUT + tag through replicas sharing one PostgreSQL, medians\n\n")
	b.WriteString("| replicas | appends/s | vs 1 replica |\n|--:|--:|--:|\n")
	one := median(s.rates[1])
	for _, n := range s.counts {
		m := median(s.rates[n])
		cell := number(m)
		if len(s.rates[n]) == 0 && len(s.errs) > 0 {
			cell = "error"
		}
		fmt.Fprintf(&b, "| %d | %s | %s |\n", n, cell, ratio(m, one))
	}
	return b.String()
}
