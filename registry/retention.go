package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/retention"
)

// Retention: the policies live in the log (eventlog/retention.go); this
// file reads them, plans what they delete from the views, applies a plan
// as deletion events that name their policy and rule, and restores what a
// plan deleted within the undo window. The collector then frees the bytes
// (gc.go), except those a restorable deletion still needs.

// retentionCache holds the compiled policies, reloaded when the policies
// view changes (checked at most every policyRecheck).
type retentionCache struct {
	mu      sync.Mutex
	set     *retention.Set
	seq     int64 // the last policy event the set reflects
	n       int
	checked time.Time
}

// policyRecheck bounds how stale another replica's policy change may be
// when a tag is checked for immutability.
const policyRecheck = time.Second

// Policies returns the retention policies in force, as read at most
// policyRecheck ago (what a tag write checks against).
func (r *Registry) Policies(ctx context.Context) (*retention.Set, error) {
	return r.policies(ctx, policyRecheck)
}

// policies returns the policies, read again unless the cached set was
// checked within maxAge (0: always read; a plan must see a policy just
// set on another replica).
func (r *Registry) policies(ctx context.Context, maxAge time.Duration) (*retention.Set, error) {
	c := &r.retention
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set != nil && time.Since(c.checked) < maxAge {
		return c.set, nil
	}
	raw, seq, err := r.log.Policies(ctx)
	if err != nil {
		return nil, err
	}
	if c.set != nil && seq == c.seq && len(raw) == c.n {
		c.checked = time.Now()
		return c.set, nil
	}
	var ps []retention.Policy
	for name, text := range raw {
		p, err := retention.Parse([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("retention policy %s as recorded: %w", name, err)
		}
		ps = append(ps, p)
	}
	set, err := retention.Compile(ps)
	if err != nil {
		return nil, err
	}
	c.set, c.seq, c.n, c.checked = set, seq, len(raw), time.Now()
	return set, nil
}

// policyCount is how many policies the cached set holds.
func (r *Registry) policyCount() int {
	r.retention.mu.Lock()
	defer r.retention.mu.Unlock()
	return r.retention.n
}

// forgetPolicies makes the next Policies read the view.
func (r *Registry) forgetPolicies() {
	r.retention.mu.Lock()
	r.retention.set = nil
	r.retention.mu.Unlock()
}

// SetPolicy records policy p (checked), replacing one of the same name.
func (r *Registry) SetPolicy(ctx context.Context, p retention.Policy) error {
	if err := p.Validate(); err != nil {
		return errorf(CodePolicyInvalid, "%v", err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = r.log.Append(ctx, eventlog.New(eventlog.TypePolicySet, "", eventlog.PolicySet{Name: p.Name, Policy: string(b)}))
	r.forgetPolicies()
	return err
}

// RemovePolicy records that the policy name no longer applies.
func (r *Registry) RemovePolicy(ctx context.Context, name string) error {
	raw, _, err := r.log.Policies(ctx)
	if err != nil {
		return err
	}
	if _, ok := raw[name]; !ok {
		return errorf(CodePolicyUnknown, "there is no retention policy %q", name)
	}
	_, err = r.log.Append(ctx, eventlog.New(eventlog.TypePolicyRemoved, "", eventlog.PolicyRemoved{Name: name}))
	r.forgetPolicies()
	return err
}

// PlanItem is one deletion of a plan and the bytes it frees: the blobs
// that nothing else keeps once the plan is applied, counted at the first
// deletion that needs them.
type PlanItem struct {
	retention.Deletion
	Frees int64 `json:"frees"`
	// Skipped, set by ApplyRetention, says why the deletion was not
	// recorded (the item changed since the plan).
	Skipped string `json:"skipped,omitempty"`
}

// RetentionPlan is what the policies delete at a log position.
type RetentionPlan struct {
	At    time.Time  `json:"at"`
	Mark  int64      `json:"mark"` // the log position the plan read
	Items []PlanItem `json:"items"`
	Frees int64      `json:"frees"` // bytes, once collected
	// Applied and Skipped are set by ApplyRetention: deletions recorded,
	// and deletions refused because the item changed since the plan.
	Applied int `json:"applied,omitempty"`
	Skipped int `json:"skipped,omitempty"`
}

// PlanRetention lists what the policies delete now, without deleting.
func (r *Registry) PlanRetention(ctx context.Context, now time.Time) (RetentionPlan, error) {
	plan := RetentionPlan{At: now.UTC(), Items: []PlanItem{}}
	set, err := r.policies(ctx, 0)
	if err != nil {
		return plan, err
	}
	if plan.Mark, err = r.log.Head(ctx); err != nil {
		return plan, err
	}
	if r.policyCount() == 0 {
		return plan, nil // no policies: nothing to read
	}
	snap, err := snapshotOf(ctx, r.log, now)
	if err != nil {
		return plan, err
	}
	dels := set.Plan(snap)
	frees, err := r.freedBy(ctx, snap, dels)
	if err != nil {
		return plan, err
	}
	for i, d := range dels {
		plan.Items = append(plan.Items, PlanItem{Deletion: d, Frees: frees[i]})
		plan.Frees += frees[i]
	}
	return plan, nil
}

// snapshotOf reads the retention state of log at now.
func snapshotOf(ctx context.Context, log *eventlog.Log, now time.Time) (retention.Snapshot, error) {
	snap := retention.Snapshot{Now: now}
	err := log.RetentionState(ctx, func(st eventlog.RepoState) error {
		repo := retention.Repository{Name: st.Name}
		for _, t := range st.Tags {
			repo.Tags = append(repo.Tags, retention.Tag{Name: t.Name, Digest: t.Digest, Pushed: t.Set, Version: t.Version})
		}
		for _, m := range st.Manifests {
			repo.Manifests = append(repo.Manifests, retention.Manifest{Digest: m.Digest, Pushed: m.Put, LastPulled: m.LastPulled,
				Subject: m.Subject, Children: m.Children, Size: m.Size})
		}
		for _, v := range st.Versions {
			repo.Versions = append(repo.Versions, retention.Version{Name: v.Name, Digest: v.Digest, Published: v.Published, Size: v.Size})
		}
		snap.Repositories = append(snap.Repositories, repo)
		return nil
	})
	return snap, err
}

// freedBy returns, for each deletion, the bytes of blobs that every user
// of which the plan deletes (counted once, at the first such deletion).
func (r *Registry) freedBy(ctx context.Context, snap retention.Snapshot, dels []retention.Deletion) ([]int64, error) {
	out := make([]int64, len(dels))
	if len(dels) == 0 {
		return out, nil
	}
	// A version's deletion takes its derived manifest (a user of both)
	// unless a /v2/ tag or an index still holds it (deletionEvents).
	derived := map[string]string{} // repo@version -> digest
	for _, repo := range snap.Repositories {
		held := map[string]bool{}
		for _, t := range repo.Tags {
			if !t.Version {
				held[t.Digest] = true
			}
		}
		for _, m := range repo.Manifests {
			for _, c := range m.Children {
				held[c] = true
			}
		}
		for _, v := range repo.Versions {
			if !held[v.Digest] {
				derived[repo.Name+"@"+v.Name] = v.Digest
			}
		}
	}
	first := map[string]int{} // user -> index of the deletion that removes it
	for i, d := range dels {
		switch d.Kind {
		case retention.KindManifest:
			first["m:"+d.Repo+"@"+d.Name] = i
		case retention.KindVersion:
			first["v:"+d.Repo+"@"+d.Name] = i
			if dg, ok := derived[d.Repo+"@"+d.Name]; ok {
				if _, seen := first["m:"+d.Repo+"@"+dg]; !seen {
					first["m:"+d.Repo+"@"+dg] = i
				}
			}
		}
	}
	users := map[string][]string{}
	sizes := map[string]int64{}
	err := r.log.BlobUsers(ctx, func(u eventlog.BlobUser) error {
		users[u.SHA256] = append(users[u.SHA256], u.User)
		sizes[u.SHA256] = u.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	for sha, us := range users {
		at := -1
		for _, u := range us {
			i, ok := first[u]
			if !ok {
				at = -1
				break
			}
			if at < 0 || i < at {
				at = i
			}
		}
		if at >= 0 {
			out[at] += sizes[sha]
		}
	}
	return out, nil
}

// ApplyRetention plans and records the plan's deletions, one append each,
// each naming its policy and rule. A deletion the log refuses because its
// item changed since the plan (a tag moved or set again, a manifest tagged
// again) is skipped: the next pass judges the item as it is then.
func (r *Registry) ApplyRetention(ctx context.Context, now time.Time) (RetentionPlan, error) {
	ctx = systemActor(ctx, "retention")
	r.retentionMu.Lock()
	defer r.retentionMu.Unlock()
	unlock, err := r.log.LockRetention(ctx)
	if err != nil {
		return RetentionPlan{}, err
	}
	defer unlock()
	if err := r.FlushPulls(ctx); err != nil {
		return RetentionPlan{}, err
	}
	plan, err := r.PlanRetention(ctx, now)
	if err != nil {
		return plan, err
	}
	for i := range plan.Items {
		it := &plan.Items[i]
		evs, err := r.deletionEvents(ctx, plan.Mark, it.Deletion)
		if err == nil {
			_, err = r.log.Append(ctx, evs...)
		}
		switch {
		case err == nil:
			plan.Applied++
		case errors.Is(err, eventlog.ErrConflict), errors.Is(err, eventlog.ErrNotFound):
			plan.Skipped++
			it.Skipped = err.Error()
			r.logger.InfoContext(ctx, "retention: skipped a deletion; the item changed since the plan", "repo", it.Repo, "kind", it.Kind, "name", it.Name, "err", err)
		default:
			return plan, err
		}
	}
	if plan.Applied > 0 {
		r.logger.InfoContext(ctx, "retention applied", "deleted", plan.Applied, "skipped", plan.Skipped, "frees", plan.Frees)
	}
	return plan, nil
}

// deletionEvents are the events of one planned deletion.
func (r *Registry) deletionEvents(ctx context.Context, mark int64, d retention.Deletion) ([]eventlog.Event, error) {
	why := eventlog.Retention{Policy: d.Policy, Rule: d.Rule, Reason: d.Reason, Mark: mark}
	switch d.Kind {
	case retention.KindTag:
		return []eventlog.Event{eventlog.New(eventlog.TypeTagDeleted, d.Repo, eventlog.TagDeleted{Tag: d.Name, Retention: why})}, nil
	case retention.KindManifest:
		return []eventlog.Event{eventlog.New(eventlog.TypeManifestDeleted, d.Repo, eventlog.ManifestDeleted{Digest: d.Name, Retention: why})}, nil
	case retention.KindVersion:
		// As a client's delete of the version does: the version, its tag,
		// and its derived manifest unless /v2/ tags still name it.
		evs := []eventlog.Event{
			eventlog.New(eventlog.TypeVersionDeleted, d.Repo, eventlog.VersionDeleted{Version: d.Name, Retention: why}),
			eventlog.New(eventlog.TypeTagDeleted, d.Repo, eventlog.TagDeleted{Tag: d.Name, Retention: why}),
		}
		tags, err := r.log.TagsOf(ctx, d.Repo, d.Digest)
		if err != nil {
			return nil, err
		}
		indexes, err := r.log.IndexesOf(ctx, d.Repo, d.Digest)
		if err != nil {
			return nil, err
		}
		if len(tags) <= 1 && len(indexes) == 0 {
			evs = append(evs, eventlog.New(eventlog.TypeManifestDeleted, d.Repo, eventlog.ManifestDeleted{Digest: d.Digest, Retention: why}))
		}
		return evs, nil
	}
	return nil, fmt.Errorf("retention: unknown deletion kind %q", d.Kind)
}

// RunRetention applies the policies every interval until ctx is done.
func (r *Registry) RunRetention(ctx context.Context, interval time.Duration) {
	r.every(ctx, interval, "retention", func(ctx context.Context, now time.Time) error {
		_, err := r.ApplyRetention(ctx, now)
		return err
	}, nil)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
