package retention_test

import (
	"fmt"
	"time"

	"github.com/artifact-store/artifact-store/retention"
)

func ExampleSet_Plan() {
	p, err := retention.Parse([]byte(`
name: default
repositories: ["team/**"]
tags:
  keepLast: 2
  keep: ["v*"]
untagged:
  deleteAfter: 7d
immutableTags: ["v*"]
`))
	if err != nil {
		panic(err)
	}
	set, err := retention.Compile([]retention.Policy{p})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return now.AddDate(0, 0, -d) }
	snap := retention.Snapshot{Now: now, Repositories: []retention.Repository{{
		Name: "team/app",
		Tags: []retention.Tag{
			{Name: "main", Digest: "sha256:aa", Pushed: day(1)},
			{Name: "pr-7", Digest: "sha256:bb", Pushed: day(3)},
			{Name: "pr-6", Digest: "sha256:cc", Pushed: day(9)},
			{Name: "v1.0", Digest: "sha256:dd", Pushed: day(60)},
		},
		Manifests: []retention.Manifest{
			{Digest: "sha256:aa", Pushed: day(1), Size: 1200},
			{Digest: "sha256:bb", Pushed: day(3), Size: 1100},
			{Digest: "sha256:cc", Pushed: day(9), Size: 1000},
			{Digest: "sha256:dd", Pushed: day(60), Size: 900},
			{Digest: "sha256:ee", Pushed: day(9), Size: 300, Subject: "sha256:cc"}, // a signature of pr-6
			{Digest: "sha256:ff", Pushed: day(30), Size: 800},                      // pushed by digest, never tagged
		},
	}}}
	for _, d := range set.Plan(snap) {
		fmt.Printf("%s %s %s (%s/%s): %s\n", d.Repo, d.Kind, d.Name, d.Policy, d.Rule, d.Reason)
	}
	_, immutable := set.ImmutableTag("team/app", "v1.0")
	fmt.Println("v1.0 immutable:", immutable)
	// Output:
	// team/app tag pr-6 (default/tags): not among the last 2 by push; matches none of v*
	// team/app manifest sha256:ee (default/subject): its subject sha256:cc was removed
	// team/app manifest sha256:ff (default/untagged): untagged, pushed 2026-01-30T00:00:00Z (older than 7d)
	// team/app manifest sha256:cc (default/tags): its last tag pr-6 was removed
	// v1.0 immutable: true
}
