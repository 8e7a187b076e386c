package registry

import (
	"context"
	"errors"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/retention"
)

// Simulating policies against history: the log holds every state the
// store has been in, so a proposed policy can be run as if it had been in
// force. The log is replayed into a scratch log (Options.Scratch) step by
// step; at each step the policies plan against the state of that moment,
// and each item they would have deleted is reported once, at the first
// step that deletes it, with the first pull of it the log records after
// that step: a deletion users would have missed.

// SimulatedDeletion is an item the policies would have deleted.
type SimulatedDeletion struct {
	retention.Deletion
	At          time.Time  `json:"at"`                    // the first step that deletes it
	PulledAfter *time.Time `json:"pulledAfter,omitempty"` // its first pull after At
}

// Simulation is the result of Simulate.
type Simulation struct {
	From        time.Time           `json:"from"`
	To          time.Time           `json:"to"`
	Step        string              `json:"step"`
	Steps       int                 `json:"steps"`
	Deletions   []SimulatedDeletion `json:"deletions"`
	PulledAgain int                 `json:"pulledAgain"` // deletions pulled again later
}

// simulationBatch bounds the events held in memory between projections.
const simulationBatch = 2000

// Simulate runs set over the log's history from from to to, planning at
// every step.
func (r *Registry) Simulate(ctx context.Context, set *retention.Set, from, to time.Time, step time.Duration) (Simulation, error) {
	sim := Simulation{From: from.UTC(), To: to.UTC(), Step: step.String(), Deletions: []SimulatedDeletion{}}
	if r.opts.Scratch == nil {
		return sim, errors.New("retention simulation needs a scratch database (Options.Scratch)")
	}
	if step <= 0 || !from.Before(to) {
		return sim, errorf(CodePolicyInvalid, "a simulation needs from before to and a positive step")
	}
	scratch, cleanup, err := r.opts.Scratch(ctx)
	if err != nil {
		return sim, err
	}
	defer cleanup()
	seen := map[string]int{} // repo kind name -> index in sim.Deletions
	byDigest := map[string][]int{}
	next := from
	var batch []eventlog.Event
	flush := func() error {
		err := scratch.Project(ctx, batch)
		batch = batch[:0]
		return err
	}
	evaluate := func(at time.Time) error {
		if err := flush(); err != nil {
			return err
		}
		snap, err := snapshotOf(ctx, scratch, at)
		if err != nil {
			return err
		}
		sim.Steps++
		for _, d := range set.Plan(snap) {
			key := d.Repo + " " + d.Kind + " " + d.Name
			if _, ok := seen[key]; ok {
				continue
			}
			seen[key] = len(sim.Deletions)
			byDigest[d.Repo+"@"+d.Digest] = append(byDigest[d.Repo+"@"+d.Digest], len(sim.Deletions))
			sim.Deletions = append(sim.Deletions, SimulatedDeletion{Deletion: d, At: at.UTC()})
		}
		return nil
	}
	err = r.log.Events(ctx, 0, func(e eventlog.Event) error {
		for !e.Time.Before(next) && !next.After(to) {
			if err := evaluate(next); err != nil {
				return err
			}
			next = next.Add(step)
		}
		if e.Type == eventlog.TypeManifestPulled {
			var p eventlog.ManifestPulled
			if err := e.Decode(&p); err != nil {
				return err
			}
			for _, u := range p.Pulls {
				at := time.Unix(0, u.Time).UTC()
				for _, i := range byDigest[e.Repo+"@"+u.Digest] {
					if d := &sim.Deletions[i]; d.PulledAfter == nil && at.After(d.At) {
						d.PulledAfter = &at
						sim.PulledAgain++
					}
				}
			}
		}
		batch = append(batch, e)
		if len(batch) >= simulationBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return sim, err
	}
	for ; !next.After(to); next = next.Add(step) {
		if err := evaluate(next); err != nil {
			return sim, err
		}
	}
	return sim, nil
}
