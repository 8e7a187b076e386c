package retention

import (
	"fmt"
	"slices"
	"strings"
)

// cause says why manifest d, which no longer stands, goes. Checked in
// this order: the derived manifest of a deleted version goes with it
// (not emitted); a referrer goes with its subject; a manifest a deleted
// tag, version tag or index held goes with them; anything else went by the
// untagged rules (a referrer whose subject is absent under rule "subject").
func (pl *repoPlan) cause(d string) cause {
	if c, done := pl.causes[d]; done {
		return c
	}
	c := pl.find(pl.manifests[d]) // recursion ends: the graph is acyclic
	pl.causes[d] = c
	return c
}

func (pl *repoPlan) find(m *Manifest) cause {
	if v, ok := pl.goneVers[m.Digest]; ok {
		return cause{policy: v.Policy, rule: RuleVersions, reason: "its version " + v.Name + " was removed"}
	}
	if pl.manifests[m.Subject] != nil {
		s := pl.cause(m.Subject)
		return cause{s.policy, RuleSubject, "its subject " + m.Subject + " was removed", true}
	}
	if pl.heldPre[m.Digest] {
		// Something held it and all its holders went: one of them says why.
		if tags := pl.goneTags[m.Digest]; len(tags) > 0 {
			what := "tag " + tags[0] + " was"
			if len(tags) > 1 {
				what = "tags " + strings.Join(tags, ", ") + " were"
			}
			return cause{pl.tagPolicy[tags[0]], RuleTags, "its last " + what + " removed", true}
		}
		if v, ok := pl.verTags[m.Digest]; ok { // a tag that disagrees with its version
			return cause{v.Policy, RuleVersions, "the tag of its version " + v.Name + " was removed", true}
		}
		for _, p := range pl.parents[m.Digest] {
			if pl.heldPre[p] && !pl.alive[p] {
				pc := pl.cause(p)
				return cause{pc.policy, pc.rule, "its index " + p + " was removed", true}
			}
		}
	}
	v, _ := pl.untaggedVerdict(m) // it stood alone before, so this is why it goes
	if m.Subject != "" {
		return cause{v.policy, RuleSubject, fmt.Sprintf("its subject %s is not in the repository; %s", m.Subject, v.reason), true}
	}
	return cause{v.policy, RuleUntagged, "untagged, " + v.reason, true}
}

// next returns what must go after d: its children and its subject.
func (pl *repoPlan) next(d string) []string {
	m := pl.manifests[d]
	if m.Subject == "" {
		return m.Children
	}
	return append(slices.Clone(m.Children), m.Subject)
}

// acyclic reports whether no manifest reaches itself through children and
// subjects, as digests guarantee; Plan relies on it.
func (pl *repoPlan) acyclic() bool {
	const visiting, done = 1, 2
	state := map[string]int{}
	var visit func(d string) bool
	visit = func(d string) bool {
		if pl.manifests[d] == nil || state[d] == done {
			return true
		}
		if state[d] == visiting {
			return false
		}
		state[d] = visiting
		for _, n := range pl.next(d) {
			if !visit(n) {
				return false
			}
		}
		state[d] = done
		return true
	}
	for d := range pl.manifests {
		if !visit(d) {
			return false
		}
	}
	return true
}

// order returns the manifests that no longer stand, each index before its
// children and each referrer before its subject (the order the log accepts
// deletions in), in rounds sorted by digest.
func (pl *repoPlan) order() []string {
	dead := map[string]bool{}
	for d := range pl.manifests {
		if !pl.alive[d] {
			dead[d] = true
		}
	}
	before := map[string]int{} // how many dead manifests must go first
	for d := range dead {
		for _, n := range pl.next(d) {
			if dead[n] {
				before[n]++
			}
		}
	}
	var out, ready []string
	for d := range dead {
		if before[d] == 0 {
			ready = append(ready, d)
		}
	}
	for len(ready) > 0 { // ends with every dead manifest: the graph is acyclic
		slices.Sort(ready)
		out = append(out, ready...)
		var next []string
		for _, d := range ready {
			for _, n := range pl.next(d) {
				if dead[n] {
					if before[n]--; before[n] == 0 {
						next = append(next, n)
					}
				}
			}
		}
		ready = next
	}
	return out
}
