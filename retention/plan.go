package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Snapshot is the state Plan decides on: the repositories as they are (or
// were) at Now. Names are unique within their list.
type Snapshot struct {
	Now          time.Time
	Repositories []Repository
}

// Repository is one repository's tags, manifests and native versions.
type Repository struct {
	Name      string
	Tags      []Tag
	Manifests []Manifest
	Versions  []Version
}

// Tag is a tag and the manifest it points at. Pushed is when it was last
// set (created or moved); LastPulled is zero if it never was pulled.
type Tag struct {
	Name       string
	Digest     string
	Pushed     time.Time
	LastPulled time.Time
	Version    bool // the tag of the native version of the same name, not a /v2/ tag
}

// Manifest is a manifest the repository holds. Subject is the digest of
// the manifest it refers to (signatures, SBOMs), empty if none; Children
// are an index's manifests. Size is what the caller counts it to hold.
type Manifest struct {
	Digest     string
	Pushed     time.Time
	LastPulled time.Time
	Subject    string
	Children   []string
	Size       int64
}

// Version is a native version and Digest its derived OCI manifest.
type Version struct {
	Name       string
	Digest     string
	Published  time.Time
	LastPulled time.Time
	Size       int64
}

// Deletion is one thing Plan deletes, the policy and rule that delete it,
// and why, for people.
type Deletion struct {
	Repo   string `json:"repository"`
	Kind   string `json:"kind"`   // KindTag, KindManifest or KindVersion
	Name   string `json:"name"`   // the tag or version name, or the manifest digest
	Digest string `json:"digest"` // the manifest (a version's derived one)
	Policy string `json:"policy"`
	Rule   string `json:"rule"` // RuleTags, RuleVersions, RuleUntagged or RuleSubject
	Reason string `json:"reason"`
	Size   int64  `json:"size"` // the snapshot's size of a manifest or version; 0 for a tag
}

// Kinds of Deletion.
const (
	KindTag      = "tag"
	KindManifest = "manifest"
	KindVersion  = "version"
)

// Rules a Deletion is attributed to.
const (
	RuleTags     = "tags"
	RuleVersions = "versions"
	RuleUntagged = "untagged"
	RuleSubject  = "subject"
)

// Plan decides what the Set's policies delete from snap, following the
// rules of the package comment. It depends on nothing but its inputs, so
// the same call serves a dry run now and a simulation of a past moment.
// Deletions come per repository (by name) in an order the caller can apply
// one by one: tags by name, then manifests (every index before its
// children, every referrer before its subject, otherwise by digest), then
// versions by name.
func (s *Set) Plan(snap Snapshot) []Deletion {
	repos := slices.Clone(snap.Repositories)
	slices.SortFunc(repos, func(a, b Repository) int { return strings.Compare(a.Name, b.Name) })
	var out []Deletion
	for _, r := range repos {
		if ps := s.applicable(r.Name); len(ps) > 0 {
			out = append(out, planRepo(ps, r, snap.Now)...)
		}
	}
	return out
}

// item is a tag or version as the keep rules see it.
type item struct {
	name, digest string
	pushed       time.Time
	pulled       time.Time // zero: never pulled
}

// verdict is why an item goes: the first taking-part policy and its reason.
type verdict struct {
	policy, reason string
}

// decide applies the keep rules that rules picks from each policy to
// items: an item any taking-part policy keeps stays; spared items stay
// too. It returns the verdicts of the items that go, by index.
func decide(ps []*compiled, rules func(*compiled) *keepRules, items []item, spared func(item) bool, now time.Time) map[int]verdict {
	var taking []*compiled
	for _, c := range ps {
		if rules(c) != nil {
			taking = append(taking, c)
		}
	}
	if len(taking) == 0 {
		return nil
	}
	kept := make([]bool, len(items))
	for _, c := range taking {
		for i, keep := range keeps(rules(c), items, now) {
			kept[i] = kept[i] || keep
		}
	}
	out := map[int]verdict{}
	for i, it := range items {
		if !kept[i] && !spared(it) {
			out[i] = verdict{taking[0].name, reason(rules(taking[0]), it)}
		}
	}
	return out
}

// keeps reports, per item, whether one of r's rules keeps it.
func keeps(r *keepRules, items []item, now time.Time) []bool {
	out := make([]bool, len(items))
	if r.last > 0 {
		for _, i := range ranked(r, items)[:min(r.last, len(items))] {
			out[i] = true
		}
	}
	for i, it := range items {
		out[i] = out[i] || matchAny(r.keep, it.name) ||
			(r.youngerThan > 0 && now.Sub(it.pushed) <= r.youngerThan) ||
			(r.pulledWithin > 0 && !it.pulled.IsZero() && now.Sub(it.pulled) <= r.pulledWithin)
	}
	return out
}

// ranked returns the items' indexes, most recent first by r's order (pull
// time, or push time for the never pulled; or push time), ties by name.
func ranked(r *keepRules, items []item) []int {
	at := func(it item) time.Time {
		if r.byPull && !it.pulled.IsZero() {
			return it.pulled
		}
		return it.pushed
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(at(items[b]).Compare(at(items[a])), strings.Compare(items[a].name, items[b].name))
	})
	return idx
}

// reason says which of r's rules did not keep it.
func reason(r *keepRules, it item) string {
	var why []string
	if r.last > 0 {
		by := ByPush
		if r.byPull {
			by = ByPull
		}
		why = append(why, fmt.Sprintf("not among the last %d by %s", r.last, by))
	}
	if r.pulledWithin > 0 {
		last := "never pulled"
		if !it.pulled.IsZero() {
			last = "last pulled " + stamp(it.pulled)
		}
		why = append(why, fmt.Sprintf("not pulled within %s (%s)", r.src.KeepPulledWithin, last))
	}
	if r.youngerThan > 0 {
		why = append(why, fmt.Sprintf("pushed %s (older than %s)", stamp(it.pushed), r.src.KeepYoungerThan))
	}
	if len(r.keep) > 0 {
		why = append(why, "matches none of "+strings.Join(r.keep, ", "))
	}
	return strings.Join(why, "; ")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// later returns the later of a and b (zero is never).
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
