package retention

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// repoPlan decides one repository: which tags and versions go by their
// keep rules, then which manifests no longer stand.
type repoPlan struct {
	ps        []*compiled // the policies that apply, by name
	now       time.Time
	manifests map[string]*Manifest
	parents   map[string][]string // child -> indexes naming it, sorted
	referrers map[string][]string // subject -> manifests referring to it
	heldPre   map[string]bool     // held before the plan, by roots, indexes and subjects
	alive     map[string]bool     // standing after it
	goneTags  map[string][]string // digest -> deleted /v2/ tags pointing at it, by name
	tagPolicy map[string]string   // deleted tag -> its policy
	goneVers  map[string]Deletion // digest -> the first deleted version deriving it
	verTags   map[string]Deletion // digest -> the deleted version whose tag named it
	causes    map[string]cause    // memo of cause
}

// cause is why a manifest stops standing; emit is false for a deleted
// version's derived manifest, which the version's deletion takes.
type cause struct {
	policy, rule, reason string
	emit                 bool
}

func planRepo(ps []*compiled, r Repository, now time.Time) []Deletion {
	pl := &repoPlan{ps: ps, now: now, manifests: map[string]*Manifest{}, parents: map[string][]string{},
		referrers: map[string][]string{}, goneTags: map[string][]string{}, tagPolicy: map[string]string{},
		goneVers: map[string]Deletion{}, verTags: map[string]Deletion{}, causes: map[string]cause{}}
	for i := range r.Manifests {
		m := &r.Manifests[i]
		if _, dup := pl.manifests[m.Digest]; !dup {
			pl.manifests[m.Digest] = m
		}
	}
	for d, m := range pl.manifests {
		for _, c := range m.Children {
			pl.parents[c] = append(pl.parents[c], d)
		}
		if m.Subject != "" {
			pl.referrers[m.Subject] = append(pl.referrers[m.Subject], d)
		}
	}
	for _, ds := range pl.parents {
		slices.Sort(ds)
	}
	if !pl.acyclic() {
		return nil // digests cannot form a cycle: this snapshot is not a repository's
	}

	tags, versions := pl.decideTags(r.Name, r.Tags), pl.decideVersions(r.Name, r.Versions)
	pre, post := pl.roots(r, versions)
	pl.heldPre = pl.live(pre, nil)
	// A manifest stands alone when nothing held it before the plan, it
	// refers to no subject in the repository, and the untagged rules
	// spare it; whatever stood only by a holder the plan removes falls.
	pl.alive = pl.live(post, func(m *Manifest) bool {
		_, old := pl.untaggedVerdict(m)
		return !pl.heldPre[m.Digest] && pl.manifests[m.Subject] == nil && !old
	})

	out := tags
	for _, d := range pl.order() {
		m := pl.manifests[d]
		if c := pl.cause(d); c.emit {
			out = append(out, Deletion{Repo: r.Name, Kind: KindManifest, Name: d, Digest: d,
				Policy: c.policy, Rule: c.rule, Reason: c.reason, Size: m.Size})
		}
	}
	return append(out, versions...)
}

// roots returns the digests the repository's tags and versions name before
// the plan and after it. A version's tag goes with its version.
func (pl *repoPlan) roots(r Repository, goneVersions []Deletion) (pre, post []string) {
	gone := map[string]Deletion{} // deleted versions by name
	for _, v := range goneVersions {
		gone[v.Name] = v
	}
	for _, t := range r.Tags {
		pre = append(pre, t.Digest)
		v, versionGone := gone[t.Name]
		_, tagGone := pl.tagPolicy[t.Name]
		switch {
		case t.Version && versionGone:
			if w, seen := pl.verTags[t.Digest]; !seen || v.Name < w.Name {
				pl.verTags[t.Digest] = v
			}
		case !t.Version && tagGone:
		default:
			post = append(post, t.Digest)
		}
	}
	for _, v := range r.Versions {
		pre = append(pre, v.Digest)
		if _, versionGone := gone[v.Name]; !versionGone {
			post = append(post, v.Digest)
		}
	}
	return pre, post
}

// decideTags applies the tags rules to the /v2/ tags, sparing immutable
// ones, and returns the deletions by tag name.
func (pl *repoPlan) decideTags(repo string, tags []Tag) []Deletion {
	var items []item
	for _, t := range tags {
		if !t.Version { // a version's tag is the versions rules' business
			items = append(items, item{t.Name, t.Digest, t.Pushed, later(t.LastPulled, pl.pulled(t.Digest))})
		}
	}
	immutable := func(it item) bool {
		return slices.ContainsFunc(pl.ps, func(c *compiled) bool { return matchAny(c.immutable, it.name) })
	}
	var out []Deletion
	for i, v := range decide(pl.ps, func(c *compiled) *keepRules { return c.tags }, items, immutable, pl.now) {
		it := items[i]
		out = append(out, Deletion{Repo: repo, Kind: KindTag, Name: it.name, Digest: it.digest,
			Policy: v.policy, Rule: RuleTags, Reason: v.reason})
		pl.goneTags[it.digest] = append(pl.goneTags[it.digest], it.name)
		pl.tagPolicy[it.name] = v.policy
	}
	slices.SortFunc(out, func(a, b Deletion) int { return strings.Compare(a.Name, b.Name) })
	for _, names := range pl.goneTags {
		slices.Sort(names)
	}
	return out
}

// decideVersions applies the versions rules and returns the deletions by
// version name.
func (pl *repoPlan) decideVersions(repo string, versions []Version) []Deletion {
	var items []item
	for _, v := range versions {
		items = append(items, item{v.Name, v.Digest, v.Published, later(v.LastPulled, pl.pulled(v.Digest))})
	}
	// A version's name is its tag: immutableTags spare it as they spare a
	// /v2/ tag (a client may not delete it either).
	immutable := func(it item) bool {
		return slices.ContainsFunc(pl.ps, func(c *compiled) bool { return matchAny(c.immutable, it.name) })
	}
	var out []Deletion
	for i, vd := range decide(pl.ps, func(c *compiled) *keepRules { return c.versions }, items, immutable, pl.now) {
		out = append(out, Deletion{Repo: repo, Kind: KindVersion, Name: items[i].name, Digest: items[i].digest,
			Policy: vd.policy, Rule: RuleVersions, Reason: vd.reason, Size: versions[i].Size})
	}
	slices.SortFunc(out, func(a, b Deletion) int { return strings.Compare(a.Name, b.Name) })
	for _, d := range out {
		if _, seen := pl.goneVers[d.Digest]; !seen {
			pl.goneVers[d.Digest] = d
		}
	}
	return out
}

func (pl *repoPlan) pulled(digest string) time.Time {
	if m := pl.manifests[digest]; m != nil {
		return m.LastPulled
	}
	return time.Time{}
}

// untaggedVerdict reports whether the untagged rules delete m were nothing
// to hold it: every taking-part policy finds it older than its deleteAfter.
func (pl *repoPlan) untaggedVerdict(m *Manifest) (verdict, bool) {
	var first *compiled
	for _, c := range pl.ps {
		if c.untagged == nil {
			continue
		}
		if pl.now.Sub(m.Pushed) <= c.untagged.after {
			return verdict{}, false
		}
		if first == nil {
			first = c
		}
	}
	if first == nil {
		return verdict{}, false
	}
	return verdict{first.name, fmt.Sprintf("pushed %s (older than %s)", stamp(m.Pushed), first.untagged.src)}, true
}

// live returns the manifests that stand: those roots name, those
// standalone says may stand alone, and, transitively, the children of a
// standing index and the referrers of a standing subject.
func (pl *repoPlan) live(roots []string, standalone func(*Manifest) bool) map[string]bool {
	queue := slices.Clone(roots)
	if standalone != nil {
		for d, m := range pl.manifests {
			if standalone(m) {
				queue = append(queue, d)
			}
		}
	}
	alive := map[string]bool{}
	for len(queue) > 0 {
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		m := pl.manifests[d]
		if m == nil || alive[d] {
			continue
		}
		alive[d] = true
		queue = append(queue, m.Children...)
		queue = append(queue, pl.referrers[d]...)
	}
	return alive
}
