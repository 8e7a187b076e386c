package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// rowPeakRSS is the table's last row: the server's resident set
// high-water mark over its whole run, in MiB.
const rowPeakRSS = "peak RSS"

// results are every round's measurements, by target and step.
type results struct {
	targets []target
	steps   []step
	rates   map[cellKey][]float64
	cpu     map[cellKey][]float64
	db      map[cellKey][]float64 // the local PostgreSQL's CPU seconds, for targets on it
	errs    map[cellKey][]string
}

// cellKey names a measurement; step "" is the target's run as a whole
// (it did not start, or it exited).
type cellKey struct{ target, step string }

func newResults(targets []target, steps []step) *results {
	return &results{targets: targets, steps: steps,
		rates: map[cellKey][]float64{}, cpu: map[cellKey][]float64{}, db: map[cellKey][]float64{}, errs: map[cellKey][]string{}}
}

// addDatabase records the CPU seconds the local PostgreSQL spent on a
// step of target.
func (r *results) addDatabase(target, step string, seconds float64) {
	k := cellKey{target, step}
	r.db[k] = append(r.db[k], seconds)
}

func (r *results) add(target, step string, rate, cpu float64) {
	k := cellKey{target, step}
	r.rates[k] = append(r.rates[k], rate)
	r.cpu[k] = append(r.cpu[k], cpu)
}

func (r *results) fail(target, step string, err error) {
	k := cellKey{target, step}
	r.errs[k] = append(r.errs[k], err.Error())
}

func (r *results) failures() int {
	n := 0
	for _, e := range r.errs {
		n += len(e)
	}
	return n
}

// median of the values; NaN for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// bestPeer is the best of the peers' medians for a row: the highest, or
// with lowerBetter the lowest. NaN when no peer has a value.
func (r *results) bestPeer(vals map[cellKey][]float64, step string, lowerBetter bool) (best float64, who string) {
	best = math.NaN()
	for _, t := range r.targets {
		m := median(vals[cellKey{t.name, step}])
		if t.us || math.IsNaN(m) {
			continue
		}
		if math.IsNaN(best) || (lowerBetter && m < best) || (!lowerBetter && m > best) {
			best, who = m, t.name
		}
	}
	return best, who
}

// render is the report: the rates table (with peak RSS), the CPU table,
// the replica scaling table if measured, and the errors.
func (r *results) render(header string, scaling *scalingResults) string {
	var b strings.Builder
	b.WriteString(header)
	var us []target
	for _, t := range r.targets {
		if t.us {
			us = append(us, t)
		}
	}
	cols := func(title string, unit bool) {
		b.WriteString("| " + title)
		if unit {
			b.WriteString(" | unit")
		}
		for _, t := range r.targets {
			b.WriteString(" | " + t.name)
		}
		b.WriteString(" | best peer")
		for _, t := range us {
			b.WriteString(" | " + t.name + " / best")
		}
		b.WriteString(" |\n|---")
		if unit {
			b.WriteString("|---")
		}
		b.WriteString(strings.Repeat("|--:", len(r.targets)+1+len(us)) + "|\n")
	}
	// A ratio of two values both below floor says nothing (CPU seconds
	// count in ticks of 10 ms): it is left out.
	row := func(vals map[cellKey][]float64, step, label, unit string, lowerBetter bool, floor float64) {
		b.WriteString("| " + label)
		if unit != "" {
			b.WriteString(" | " + unit)
		}
		for _, t := range r.targets {
			b.WriteString(" | " + r.cell(vals, t.name, step))
		}
		best, who := r.bestPeer(vals, step, lowerBetter)
		if who == "" {
			b.WriteString(" | –")
		} else {
			b.WriteString(" | " + who)
		}
		for _, t := range us {
			m := median(vals[cellKey{t.name, step}])
			if max(m, best) < floor {
				b.WriteString(" | –")
				continue
			}
			b.WriteString(" | " + ratio(m, best))
		}
		b.WriteString(" |\n")
	}

	b.WriteString("\n## Rates, medians: higher is better; peak RSS lower\n\n")
	cols("step", true)
	for _, s := range r.steps {
		row(r.rates, s.name, s.name, s.unit, false, 0)
	}
	row(r.rates, rowPeakRSS, rowPeakRSS, "MiB", true, 0)
	b.WriteString("\n\"us / best\": our median over the best peer's. Above 1 is ahead on a rate;\n" +
		"below 1 is ahead on peak RSS and on CPU seconds (left out under 0.1 s).\n")

	b.WriteString("\n## Server CPU seconds per step (user + system), medians: lower is better\n\n")
	cols("step", false)
	for _, s := range r.steps {
		row(r.cpu, s.name, s.name, "", true, 0.1)
	}
	r.renderDatabase(&b)
	b.WriteString(scaling.render())
	b.WriteString(r.renderErrors(scaling))
	return b.String()
}

// renderDatabase is the table of the local PostgreSQL's CPU seconds per
// step, for the targets on it: the database's own, and with the
// server's, against the best peer's server (whose process does it all).
func (r *results) renderDatabase(b *strings.Builder) {
	var on []target
	for _, t := range r.targets {
		if len(r.db) > 0 && t.database {
			on = append(on, t)
		}
	}
	if len(on) == 0 {
		return
	}
	b.WriteString("\n## PostgreSQL's CPU seconds per step (its processes on this machine), medians: lower is better\n\n| step")
	for _, t := range on {
		b.WriteString(" | " + t.name + ": PostgreSQL | " + t.name + ": server + PostgreSQL")
	}
	b.WriteString(" | best peer's server")
	for _, t := range on {
		b.WriteString(" | " + t.name + " (server + PostgreSQL) / best")
	}
	b.WriteString(" |\n|---" + strings.Repeat("|--:", 3*len(on)+1) + "|\n")
	for _, s := range r.steps {
		b.WriteString("| " + s.name)
		sums := make([]float64, len(on))
		for i, t := range on {
			k := cellKey{t.name, s.name}
			db, srv := median(r.db[k]), median(r.cpu[k])
			sums[i] = db + srv
			b.WriteString(" | " + r.cell(r.db, t.name, s.name) + " | " + number(sums[i]))
		}
		best, who := r.bestPeer(r.cpu, s.name, true)
		if who == "" {
			b.WriteString(" | –")
		} else {
			b.WriteString(" | " + number(best) + " (" + who + ")")
		}
		for _, sum := range sums {
			if math.IsNaN(best) || max(sum, best) < 0.1 {
				b.WriteString(" | –")
				continue
			}
			b.WriteString(" | " + ratio(sum, best))
		}
		b.WriteString(" |\n")
	}
}

// cell is a median, marked when some rounds failed, or "error".
func (r *results) cell(vals map[cellKey][]float64, target, step string) string {
	v := vals[cellKey{target, step}]
	errs := len(r.errs[cellKey{target, step}])
	switch {
	case len(v) == 0 && errs > 0:
		return "error"
	case len(v) == 0:
		return "–"
	case errs > 0:
		return fmt.Sprintf("%s (%d failed)", number(median(v)), errs)
	}
	return number(median(v))
}

func (r *results) renderErrors(scaling *scalingResults) string {
	var lines []string
	for _, t := range r.targets {
		for _, s := range append([]string{""}, append(stepNames(r.steps), rowPeakRSS)...) {
			for _, e := range r.errs[cellKey{t.name, s}] {
				where := t.name
				if s != "" {
					where += ", " + s
				}
				lines = append(lines, fmt.Sprintf("- %s: %s", where, e))
			}
		}
	}
	if scaling != nil {
		for _, e := range scaling.errs {
			lines = append(lines, "- replicas: "+e)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n## Errors\n\n" + strings.Join(lines, "\n") + "\n"
}

func stepNames(steps []step) []string {
	var names []string
	for _, s := range steps {
		names = append(names, s.name)
	}
	return names
}

// number prints a measurement with three significant digits or so, and
// thousands separated.
func number(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 1000:
		s := fmt.Sprintf("%.0f", v)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(us, best float64) string {
	if math.IsNaN(us) || math.IsNaN(best) || best == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", us/best)
}

// header describes the run: when, on what, with which sizes.
func header(cfg config, skipped []string, took time.Duration, loadStart string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# bench-peers, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	fmt.Fprintf(&b, "- artifactstore commit %s; %s; %d CPUs; %s/%s\n",
		strings.TrimSpace(string(commit)), runtime.Version(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- load average at the start %s, at the end %s (above 1 on 2 CPUs: other work shared them)\n", loadStart, loadAverage())
	fmt.Fprintf(&b, "- rounds: %d, servers interleaved, each on fresh storage; client and servers on loopback; took %s\n",
		cfg.rounds, took.Round(time.Second))
	fmt.Fprintf(&b, "- sizes: large blob %d MiB in %d chunks; %d small blobs of %d KiB; %d manifests; %d tag listings; %d clients; %d layers of %d MiB\n",
		cfg.bigSize/mib, cfg.chunks, cfg.blobs, cfg.blobSize/kib, cfg.manifests, cfg.lists, cfg.clients, cfg.layers, cfg.layerSize/mib)
	for _, s := range skipped {
		fmt.Fprintf(&b, "- **%s**\n", s)
	}
	return b.String()
}

// loadAverage is the 1-minute load average, from /proc/loadavg.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
