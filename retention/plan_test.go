package retention

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// daysAgo is now minus d days.
func daysAgo(d float64) time.Time { return now.Add(-time.Duration(d * float64(24*time.Hour))) }

// tag is a /v2/ tag pushed d days ago, pointing at manifest "m-<name>".
func tag(name string, d float64) Tag {
	return Tag{Name: name, Digest: "m-" + name, Pushed: daysAgo(d)}
}

// img is a manifest pushed d days ago.
func img(digest string, d float64) Manifest {
	return Manifest{Digest: digest, Pushed: daysAgo(d), Size: 100}
}

// images are the manifests of tags, pushed when the tags were.
func images(tags ...Tag) []Manifest {
	var ms []Manifest
	for _, t := range tags {
		ms = append(ms, Manifest{Digest: t.Digest, Pushed: t.Pushed, Size: 100})
	}
	return ms
}

func pulled(t Tag, d float64) Tag { t.LastPulled = daysAgo(d); return t }

func referrer(digest, subject string, d float64) Manifest {
	m := img(digest, d)
	m.Subject = subject
	return m
}

func index(digest string, d float64, children ...string) Manifest {
	m := img(digest, d)
	m.Children = children
	return m
}

// brief is how the tests read a plan: "kind name policy/rule".
func brief(ds []Deletion) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s %s/%s", d.Kind, d.Name, d.Policy, d.Rule))
	}
	return out
}

const (
	keepLast2     = "name: p\nrepositories: [\"team/**\"]\ntags: {keepLast: 2}\n"
	untagged1d    = "name: u\nrepositories: [\"team/**\"]\nuntagged: {deleteAfter: 1d}\n"
	youngTagsOnly = "name: p\nrepositories: [\"team/**\"]\ntags: {keepYoungerThan: 7d}\n"
)

func TestPlan(t *testing.T) {
	a, b, c := tag("a", 1), tag("b", 2), tag("c", 3)
	cases := []struct {
		name     string
		policies []string
		repo     Repository
		want     []string
	}{{
		name:     "keepLast by push: the oldest tag and its image go",
		policies: []string{keepLast2},
		repo:     Repository{Tags: []Tag{c, a, b}, Manifests: images(a, b, c)},
		want:     []string{"tag c p/tags", "manifest m-c p/tags"},
	}, {
		name:     "keepLast by push ignores pulls",
		policies: []string{keepLast2},
		repo:     Repository{Tags: []Tag{a, pulled(b, 0.1), c}, Manifests: images(a, b, c)},
		want:     []string{"tag c p/tags", "manifest m-c p/tags"},
	}, {
		name:     "keepLast by pull: the never pulled rank by push",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\ntags: {keepLast: 2, by: pull}\n"},
		// b pulled an hour ago ranks first, a (never pulled, pushed 1d) next.
		repo: Repository{Tags: []Tag{a, pulled(b, 0.04), pulled(c, 5)}, Manifests: images(a, b, c)},
		want: []string{"tag c p/tags", "manifest m-c p/tags"},
	}, {
		name:     "keepLast by pull counts pulls of the manifest by digest",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\ntags: {keepLast: 1, by: pull}\n"},
		repo: Repository{Tags: []Tag{a, c}, Manifests: []Manifest{
			img("m-a", 1), {Digest: "m-c", Pushed: daysAgo(3), LastPulled: daysAgo(0.5)}}},
		want: []string{"tag a p/tags", "manifest m-a p/tags"},
	}, {
		name:     "keepPulledWithin: the never pulled and the long unpulled go",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\ntags: {keepPulledWithin: 720h}\n"},
		repo:     Repository{Tags: []Tag{pulled(a, 10), pulled(b, 40), c}, Manifests: images(a, b, c)},
		want:     []string{"tag b p/tags", "tag c p/tags", "manifest m-b p/tags", "manifest m-c p/tags"},
	}, {
		name:     "keepYoungerThan",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\ntags: {keepYoungerThan: 2d}\n"},
		repo:     Repository{Tags: []Tag{a, b, c}, Manifests: images(a, b, c)},
		want:     []string{"tag c p/tags", "manifest m-c p/tags"},
	}, {
		name:     "keep patterns",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\ntags: {keep: [\"v*\", latest]}\n"},
		repo: Repository{Tags: []Tag{tag("v1.0", 90), tag("latest", 90), tag("dev", 1)},
			Manifests: images(tag("v1.0", 90), tag("latest", 90), tag("dev", 1))},
		want: []string{"tag dev p/tags", "manifest m-dev p/tags"},
	}, {
		name:     "rules are OR'ed within a policy",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\ntags: {keepLast: 1, keep: [\"c\"], keepPulledWithin: 1d}\n"},
		repo:     Repository{Tags: []Tag{a, pulled(b, 0.5), c, tag("d", 4)}, Manifests: images(a, b, c, tag("d", 4))},
		want:     []string{"tag d p/tags", "manifest m-d p/tags"},
	}, {
		name: "keeps are a union across policies; the first by name takes the blame",
		policies: []string{
			"name: zeta\nrepositories: [\"team/**\"]\ntags: {keep: [\"v*\"]}\n",
			"name: alpha\nrepositories: [\"**\"]\ntags: {keepLast: 1}\n",
		},
		repo: Repository{Tags: []Tag{a, tag("v1", 30), c}, Manifests: images(a, tag("v1", 30), c)},
		want: []string{"tag c alpha/tags", "manifest m-c alpha/tags"},
	}, {
		name: "a policy that does not match the repository takes no part",
		policies: []string{
			"name: other\nrepositories: [\"other/**\"]\ntags: {keepLast: 1}\nuntagged: {deleteAfter: 1h}\n",
		},
		repo: Repository{Tags: []Tag{a, b, c}, Manifests: append(images(a, b, c), img("loose", 30))},
	}, {
		name: "a policy without a tags block does not keep tags",
		policies: []string{
			keepLast2,
			"name: q\nrepositories: [\"**\"]\nversions: {keepLast: 100}\n",
		},
		repo: Repository{Tags: []Tag{a, b, c}, Manifests: images(a, b, c)},
		want: []string{"tag c p/tags", "manifest m-c p/tags"},
	}, {
		name: "immutable tags are spared, from any applicable policy",
		policies: []string{
			"name: p\nrepositories: [\"team/**\"]\ntags: {keepLast: 1}\nimmutableTags: [\"v*\"]\n",
			"name: q\nrepositories: [\"team/app\"]\nimmutableTags: [\"stable\"]\n",
		},
		repo: Repository{Tags: []Tag{a, tag("v1", 50), tag("stable", 50), c},
			Manifests: images(a, tag("v1", 50), tag("stable", 50), c)},
		want: []string{"tag c p/tags", "manifest m-c p/tags"},
	}, {
		name:     "immutable names spare native versions from the versions rules",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\nversions: {keepLast: 1}\nimmutableTags: [\"1.*\"]\n"},
		repo: Repository{
			Tags: []Tag{{Name: "1.0", Digest: "d1", Pushed: daysAgo(3), Version: true}, {Name: "2.0", Digest: "d2", Pushed: daysAgo(2), Version: true},
				{Name: "3.0", Digest: "d3", Pushed: daysAgo(1), Version: true}},
			Manifests: []Manifest{img("d1", 3), img("d2", 2), img("d3", 1)},
			Versions: []Version{{Name: "1.0", Digest: "d1", Published: daysAgo(3)}, {Name: "2.0", Digest: "d2", Published: daysAgo(2)},
				{Name: "3.0", Digest: "d3", Published: daysAgo(1)}},
		},
		want: []string{"version 2.0 p/versions"},
	}, {
		name:     "a version's tag is not the tags rules' business",
		policies: []string{youngTagsOnly},
		repo: Repository{
			Tags:      []Tag{{Name: "1.0", Digest: "m-v1", Pushed: daysAgo(30), Version: true}, c},
			Manifests: []Manifest{img("m-v1", 30), img("m-c", 3)},
			Versions:  []Version{{Name: "1.0", Digest: "m-v1", Published: daysAgo(30)}},
		},
	}, {
		name:     "a deleted tag's manifest stays while another tag points at it",
		policies: []string{youngTagsOnly},
		repo: Repository{Tags: []Tag{{Name: "old", Digest: "m", Pushed: daysAgo(30)}, {Name: "new", Digest: "m", Pushed: daysAgo(1)}},
			Manifests: []Manifest{img("m", 30)}},
		want: []string{"tag old p/tags"},
	}, {
		name:     "a deleted tag's manifest stays while a tagged index holds it",
		policies: []string{youngTagsOnly},
		repo: Repository{Tags: []Tag{{Name: "old", Digest: "m", Pushed: daysAgo(30)}, {Name: "multi", Digest: "ix", Pushed: daysAgo(1)}},
			Manifests: []Manifest{img("m", 30), index("ix", 1, "m")}},
		want: []string{"tag old p/tags"},
	}, {
		name:     "a deleted tag's manifest stays while a version derives it",
		policies: []string{youngTagsOnly},
		repo: Repository{Tags: []Tag{{Name: "old", Digest: "m", Pushed: daysAgo(30)}, {Name: "2.0", Digest: "m", Pushed: daysAgo(30), Version: true}},
			Manifests: []Manifest{img("m", 30)}, Versions: []Version{{Name: "2.0", Digest: "m", Published: daysAgo(30)}}},
		want: []string{"tag old p/tags"},
	}, {
		name:     "a deleted tag takes its index and the children nothing else holds, index first",
		policies: []string{youngTagsOnly},
		repo: Repository{Tags: []Tag{{Name: "old", Digest: "ix", Pushed: daysAgo(30)}, {Name: "amd64", Digest: "c2", Pushed: daysAgo(1)}},
			Manifests: []Manifest{img("c1", 30), img("c2", 30), index("ix", 30, "c1", "c2")}},
		want: []string{"tag old p/tags", "manifest ix p/tags", "manifest c1 p/tags"},
	}, {
		name:     "untagged: old loose manifests go, young ones stay",
		policies: []string{untagged1d},
		repo:     Repository{Tags: []Tag{a}, Manifests: []Manifest{img("m-a", 30), img("old", 2), img("young", 0.5)}},
		want:     []string{"manifest old u/untagged"},
	}, {
		name:     "untagged: no untagged block, loose manifests stay",
		policies: []string{keepLast2},
		repo:     Repository{Manifests: []Manifest{img("old", 300)}},
	}, {
		name:     "untagged: children of a tagged index stand, transitively",
		policies: []string{untagged1d},
		repo: Repository{Tags: []Tag{{Name: "t", Digest: "ix1", Pushed: daysAgo(30)}},
			Manifests: []Manifest{index("ix1", 30, "ix2"), index("ix2", 30, "leaf"), img("leaf", 30)}},
	}, {
		name:     "untagged: children of a young untagged index stand, transitively",
		policies: []string{untagged1d},
		repo:     Repository{Manifests: []Manifest{index("ix1", 0.5, "ix2"), index("ix2", 30, "leaf"), img("leaf", 30)}},
	}, {
		name:     "untagged: an old untagged index goes with its old children, index first",
		policies: []string{untagged1d},
		repo:     Repository{Manifests: []Manifest{index("ix1", 5, "ix2"), index("ix2", 30, "leaf"), img("leaf", 30), img("young", 0.5)}},
		want:     []string{"manifest ix1 u/untagged", "manifest ix2 u/untagged", "manifest leaf u/untagged"},
	}, {
		name: "untagged: the longest deleteAfter of the taking-part policies wins",
		policies: []string{untagged1d,
			"name: q\nrepositories: [\"**\"]\nuntagged: {deleteAfter: 10d}\n"},
		repo: Repository{Manifests: []Manifest{img("m5", 5), img("m20", 20)}},
		want: []string{"manifest m20 q/untagged"},
	}, {
		name:     "referrers: a signature of a standing subject stays, though untagged and old",
		policies: []string{untagged1d},
		repo:     Repository{Tags: []Tag{a}, Manifests: []Manifest{img("m-a", 30), referrer("sig", "m-a", 30), referrer("sigsig", "sig", 30)}},
	}, {
		name:     "referrers: a signature of a young untagged subject stays",
		policies: []string{untagged1d},
		repo:     Repository{Manifests: []Manifest{img("m", 0.5), referrer("sig", "m", 30)}},
	}, {
		name:     "referrers: a deleted subject takes its referrers, transitively, referrers first",
		policies: []string{keepLast2, untagged1d},
		repo: Repository{Tags: []Tag{a, b, c},
			Manifests: append(images(a, b, c), referrer("sbom", "m-c", 0.1), referrer("sig", "m-c", 0.1), referrer("sigsig", "sig", 0.1))},
		want: []string{"tag c p/tags", "manifest sbom p/subject", "manifest sigsig p/subject", "manifest sig p/subject", "manifest m-c p/tags"},
	}, {
		name:     "referrers: an untagged subject's deletion takes them too",
		policies: []string{untagged1d},
		repo:     Repository{Manifests: []Manifest{img("m", 5), referrer("sig", "m", 0.1)}},
		want:     []string{"manifest sig u/subject", "manifest m u/untagged"},
	}, {
		name:     "referrers: a subject not in the repository, once older than deleteAfter",
		policies: []string{untagged1d},
		repo:     Repository{Manifests: []Manifest{referrer("orphan", "gone", 2), referrer("early", "gone", 0.5), referrer("sig", "orphan", 0.5)}},
		want:     []string{"manifest sig u/subject", "manifest orphan u/subject"},
	}, {
		name:     "referrers: a subject not in the repository, without an untagged block",
		policies: []string{keepLast2},
		repo:     Repository{Manifests: []Manifest{referrer("orphan", "gone", 200)}},
	}, {
		name:     "referrers: a tagged referrer stands though its subject goes",
		policies: []string{youngTagsOnly},
		repo: Repository{Tags: []Tag{{Name: "old", Digest: "m", Pushed: daysAgo(30)}, {Name: "sig", Digest: "sig", Pushed: daysAgo(1)}},
			Manifests: []Manifest{img("m", 30), referrer("sig", "m", 1)}},
		want: []string{"tag old p/tags", "manifest m p/tags"},
	}, {
		name:     "versions: the oldest go; their derived manifests are not listed, their referrers are",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\nversions: {keepLast: 1}\nuntagged: {deleteAfter: 100d}\n"},
		repo: Repository{
			Tags:      []Tag{{Name: "1", Digest: "d1", Pushed: daysAgo(3), Version: true}, {Name: "2", Digest: "d2", Pushed: daysAgo(1), Version: true}},
			Manifests: []Manifest{img("d1", 3), img("d2", 1), referrer("sbom1", "d1", 3)},
			Versions: []Version{{Name: "1", Digest: "d1", Published: daysAgo(3), Size: 7},
				{Name: "2", Digest: "d2", Published: daysAgo(1), Size: 7}},
		},
		want: []string{"manifest sbom1 p/subject", "version 1 p/versions"},
	}, {
		name: "versions: keep rules by pull, pattern and age, union across policies",
		policies: []string{
			"name: p\nrepositories: [\"team/**\"]\nversions: {keepLast: 1, by: pull, keep: [\"*-lts\"]}\n",
			"name: q\nrepositories: [\"team/*\"]\nversions: {keepYoungerThan: 2d}\n",
		},
		repo: Repository{
			Manifests: []Manifest{img("d1", 30), img("d2", 20), img("d3", 10), img("d4", 1)},
			Versions: []Version{
				{Name: "1-lts", Digest: "d1", Published: daysAgo(30)},
				{Name: "2", Digest: "d2", Published: daysAgo(20), LastPulled: daysAgo(0.1)},
				{Name: "3", Digest: "d3", Published: daysAgo(10)},
				{Name: "4", Digest: "d4", Published: daysAgo(1)},
			},
		},
		want: []string{"version 3 p/versions"},
	}, {
		name:     "versions: a version's tag that names another manifest takes it along",
		policies: []string{"name: p\nrepositories: [\"team/**\"]\nversions: {keepLast: 1}\n"},
		repo: Repository{
			Tags:      []Tag{{Name: "1", Digest: "dx", Pushed: daysAgo(3), Version: true}},
			Manifests: []Manifest{img("d1", 3), img("dx", 3), img("d2", 1)},
			Versions: []Version{{Name: "1", Digest: "d1", Published: daysAgo(3)},
				{Name: "2", Digest: "d2", Published: daysAgo(1)}},
		},
		want: []string{"manifest dx p/versions", "version 1 p/versions"},
	}, {
		name:     "a snapshot with a reference cycle, which digests cannot form, loses nothing",
		policies: []string{keepLast2, untagged1d},
		repo: Repository{Tags: []Tag{a, b, c},
			Manifests: append(images(a, b, c), index("x", 30, "y"), referrer("y", "x", 30), img("loose", 30))},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.repo.Name = "team/app"
			got := brief(mustSet(t, c.policies...).Plan(Snapshot{Now: now, Repositories: []Repository{c.repo}}))
			if !slices.Equal(got, c.want) {
				t.Errorf("plan:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestPlanReasons: what a person reads about each deletion.
func TestPlanReasons(t *testing.T) {
	s := mustSet(t, "name: p\nrepositories: [\"**\"]\n"+
		"tags: {keepLast: 1, keepPulledWithin: 720h, keepYoungerThan: 7d, keep: [\"v*\", latest]}\n"+
		"untagged: {deleteAfter: 1d}\n")
	repo := Repository{Name: "r",
		Tags: []Tag{tag("new", 1), pulled(tag("old", 40), 31), {Name: "dup1", Digest: "m-dup", Pushed: daysAgo(50)}, {Name: "dup2", Digest: "m-dup", Pushed: daysAgo(50)}},
		Manifests: []Manifest{img("m-new", 1), img("m-old", 40), img("m-dup", 50), index("ix", 40, "child"), img("child", 40),
			referrer("sig", "m-old", 40), referrer("orphan", "sha256:gone", 3)},
	}
	want := map[string]string{
		"old":    "not among the last 1 by push; not pulled within 720h (last pulled 2026-01-29T00:00:00Z); pushed 2026-01-20T00:00:00Z (older than 7d); matches none of v*, latest",
		"dup1":   "not among the last 1 by push; not pulled within 720h (never pulled); pushed 2026-01-10T00:00:00Z (older than 7d); matches none of v*, latest",
		"m-old":  "its last tag old was removed",
		"m-dup":  "its last tags dup1, dup2 were removed",
		"sig":    "its subject m-old was removed",
		"ix":     "untagged, pushed 2026-01-20T00:00:00Z (older than 1d)",
		"dup2":   "not among the last 1 by push; not pulled within 720h (never pulled); pushed 2026-01-10T00:00:00Z (older than 7d); matches none of v*, latest",
		"child":  "untagged, pushed 2026-01-20T00:00:00Z (older than 1d)",
		"orphan": "its subject sha256:gone is not in the repository; pushed 2026-02-26T00:00:00Z (older than 1d)",
	}
	for _, d := range s.Plan(Snapshot{Now: now, Repositories: []Repository{repo}}) {
		if d.Reason != want[d.Name] {
			t.Errorf("%s %s: reason %q, want %q", d.Kind, d.Name, d.Reason, want[d.Name])
		}
		if wantSize := map[string]int64{KindTag: 0, KindManifest: 100}[d.Kind]; d.Size != wantSize || d.Repo != "r" {
			t.Errorf("%s %s: size %d repo %q", d.Kind, d.Name, d.Size, d.Repo)
		}
		if d.Kind == KindTag && d.Digest != "m-"+strings.TrimRight(d.Name, "12") {
			t.Errorf("tag %s: digest %s", d.Name, d.Digest)
		}
	}
}

// TestPlanDeterministic: the same state in any order plans the same.
func TestPlanDeterministic(t *testing.T) {
	s := mustSet(t, keepLast2, untagged1d, "name: q\nrepositories: [\"**\"]\nversions: {keepLast: 1}\ntags: {keep: [\"v*\"]}\n")
	var repos []Repository
	for r := range 3 {
		repo := Repository{Name: fmt.Sprintf("team/r%d", 2-r)}
		for i := range 8 {
			tg := tag(fmt.Sprintf("t%d", i), float64(i%4)) // equal times: ties by name
			repo.Tags = append(repo.Tags, tg)
			repo.Manifests = append(repo.Manifests, images(tg)[0], referrer(fmt.Sprintf("sig%d", i), tg.Digest, 3), img(fmt.Sprintf("loose%d", i), float64(i)))
			repo.Versions = append(repo.Versions, Version{Name: fmt.Sprintf("v%d", i), Digest: fmt.Sprintf("loose%d", i), Published: daysAgo(float64(i % 2))})
		}
		repo.Manifests = append(repo.Manifests, index("ix", 9, "loose7", "loose6"))
		repos = append(repos, repo)
	}
	want := s.Plan(Snapshot{Now: now, Repositories: repos})
	if len(want) < 20 {
		t.Fatalf("a plan of %d deletions tests little", len(want))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(repos)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for i := range shuffled {
			r := &shuffled[i]
			r.Tags, r.Manifests, r.Versions = slices.Clone(r.Tags), slices.Clone(r.Manifests), slices.Clone(r.Versions)
			rng.Shuffle(len(r.Tags), func(i, j int) { r.Tags[i], r.Tags[j] = r.Tags[j], r.Tags[i] })
			rng.Shuffle(len(r.Manifests), func(i, j int) { r.Manifests[i], r.Manifests[j] = r.Manifests[j], r.Manifests[i] })
			rng.Shuffle(len(r.Versions), func(i, j int) { r.Versions[i], r.Versions[j] = r.Versions[j], r.Versions[i] })
		}
		if got := s.Plan(Snapshot{Now: now, Repositories: shuffled}); !reflect.DeepEqual(got, want) {
			t.Fatalf("a shuffled snapshot plans differently:\n got %q\nwant %q", brief(got), brief(want))
		}
	}
}

// TestPlanPast: Plan reads the time from the snapshot only, so a past
// moment's snapshot simulates the policies then.
func TestPlanPast(t *testing.T) {
	s := mustSet(t, youngTagsOnly)
	repo := Repository{Name: "team/app", Tags: []Tag{tag("t", 10)}, Manifests: []Manifest{img("m-t", 10)}}
	if got := s.Plan(Snapshot{Now: daysAgo(5), Repositories: []Repository{repo}}); got != nil {
		t.Errorf("five days ago the tag was 5 days old, yet: %q", brief(got))
	}
	if got := brief(s.Plan(Snapshot{Now: now, Repositories: []Repository{repo}})); len(got) != 2 {
		t.Errorf("now the tag is 10 days old, yet: %q", got)
	}
}
