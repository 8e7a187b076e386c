package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
	"github.com/artifact-store/artifact-store/retention"
)

// setPolicy sets a retention policy (YAML) through the API.
func (s *testServer) setPolicy(name, yaml string, headers ...string) {
	s.t.Helper()
	expect(s.t, s.do("PUT", "/api/v1/retention/policies/"+name, []byte(yaml), headers...), http.StatusOK)
}

// plan answers GET /api/v1/retention/plan.
func (s *testServer) plan() registry.RetentionPlan {
	s.t.Helper()
	r := s.do("GET", "/api/v1/retention/plan", nil)
	expect(s.t, r, http.StatusOK)
	var p registry.RetentionPlan
	if err := json.Unmarshal(r.body, &p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// run answers POST /api/v1/retention/run.
func (s *testServer) runRetention() registry.RetentionPlan {
	s.t.Helper()
	r := s.do("POST", "/api/v1/retention/run", nil)
	expect(s.t, r, http.StatusOK)
	var p registry.RetentionPlan
	if err := json.Unmarshal(r.body, &p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// items renders a plan's deletions as "kind repo name rule", sorted:
// the plan's own order (tags, then manifests, referrers first) is
// retention's to test.
func items(p registry.RetentionPlan) []string {
	var out []string
	for _, it := range p.Items {
		out = append(out, it.Kind+" "+it.Repo+" "+it.Name+" "+it.Rule)
	}
	slices.Sort(out)
	return out
}

// deletionsRecorded lists the deletions the log recorded with a policy,
// as items does.
func (s *testServer) deletionsRecorded() []string {
	s.t.Helper()
	var out []string
	err := s.log.Events(context.Background(), 0, func(e eventlog.Event) error {
		var why eventlog.Retention
		var kind, name string
		switch e.Type {
		case eventlog.TypeTagDeleted:
			var p eventlog.TagDeleted
			e.Decode(&p)
			kind, name, why = "tag", p.Tag, p.Retention
		case eventlog.TypeManifestDeleted:
			var p eventlog.ManifestDeleted
			e.Decode(&p)
			kind, name, why = "manifest", p.Digest, p.Retention
		case eventlog.TypeVersionDeleted:
			var p eventlog.VersionDeleted
			e.Decode(&p)
			kind, name, why = "version", p.Version, p.Retention
		default:
			return nil
		}
		if why.Policy != "" {
			out = append(out, kind+" "+e.Repo+" "+name+" "+why.Rule)
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestRetentionPolicies: policies are set, shown, listed with their
// history (who, when) and removed through the API; bad ones are refused
// with a message naming the problem.
func TestRetentionPolicies(t *testing.T) {
	s := newServer(t)
	s.setPolicy("team", "repositories: [\"team/**\"]\ntags:\n  keepLast: 3\nimmutableTags: [\"v*\"]\n")
	r := s.do("GET", "/api/v1/retention/policies/team", nil)
	expect(t, r, 200)
	if !strings.Contains(string(r.body), `"keepLast":3`) || !strings.Contains(string(r.body), `"name":"team"`) {
		t.Fatalf("policy read back as %s", r.body)
	}
	for _, bad := range []struct{ body, want string }{
		{"repositories: [\"a\"]\ntags:\n  keepLast: -1\n", "keepLast"},
		{"repositories: [\"a\"]\ntags: {}\n", "tags"},
		{"repositories: [\"a\"]\nuntagged:\n  deleteAfter: soon\n", "deleteAfter"},
		{"repositories: [\"a\"]\nbogus: 1\n", "bogus"},
		{"name: other\nrepositories: [\"a\"]\ntags:\n  keepLast: 1\n", "URL"},
	} {
		r := s.do("PUT", "/api/v1/retention/policies/team", []byte(bad.body))
		expect(t, r, 400, "POLICY_INVALID")
		if !strings.Contains(string(r.body), bad.want) {
			t.Errorf("policy %q refused with %s, which does not name %q", bad.body, r.body, bad.want)
		}
	}
	s.setPolicy("team", "repositories: [\"team/**\"]\ntags:\n  keepLast: 5\n")
	expect(t, s.do("DELETE", "/api/v1/retention/policies/team", nil), 204)
	expect(t, s.do("DELETE", "/api/v1/retention/policies/team", nil), 404, "POLICY_UNKNOWN")
	r = s.do("GET", "/api/v1/retention/history", nil)
	expect(t, r, 200)
	var h struct {
		Changes []struct{ Change, Name, Actor string }
	}
	json.Unmarshal(r.body, &h)
	var got []string
	for _, c := range h.Changes {
		got = append(got, c.Change+" "+c.Name)
	}
	if !slices.Equal(got, []string{"set team", "set team", "removed team"}) {
		t.Fatalf("history %v", got)
	}
	r = s.do("GET", "/api/v1/retention/policies", nil)
	if expect(t, r, 200); !strings.Contains(string(r.body), `"policies":[]`) {
		t.Fatalf("policies after removal: %s", r.body)
	}
}

// TestRetentionRunEqualsPlan: keep the last 2 tags by push. The dry run
// lists the two oldest tags and their images with the bytes they free;
// the run records exactly those deletions, each naming its policy and
// rule; the deleted images are gone, the kept ones pull whole; a restore
// within the undo window brings one back whole; once the window closes
// the collector frees what the other held.
func TestRetentionRunEqualsPlan(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t, func(o *registry.Options) { o.RetentionUndo = 2 * time.Second })
		ctx := context.Background()
		var imgs []image
		for i := range 4 {
			imgs = append(imgs, s.pushLayers("app", fmt.Sprintf("t%d", i), randomBytes(t, 1000*(i+1))))
		}
		s.pushLayers("other", "t0", randomBytes(t, 500)) // no policy applies
		s.setPolicy("app", "repositories: [app]\ntags:\n  keepLast: 2\n")
		plan := s.plan()
		want := sorted("tag app t0 tags", "tag app t1 tags", "manifest app "+imgs[0].digest+" tags", "manifest app "+imgs[1].digest+" tags")
		if got := items(plan); !slices.Equal(got, want) {
			t.Fatalf("plan %v, want %v", got, want)
		}
		var wantFree int64
		for _, img := range imgs[:2] {
			wantFree += int64(len(img.manifest))
			for _, p := range img.blobs {
				wantFree += int64(len(p))
			}
		}
		if plan.Frees != wantFree {
			t.Fatalf("plan frees %d bytes, want %d", plan.Frees, wantFree)
		}
		run := s.runRetention()
		if run.Applied != 4 || run.Skipped != 0 || !slices.Equal(s.deletionsRecorded(), want) {
			t.Fatalf("run applied %d, skipped %d; recorded %v", run.Applied, run.Skipped, s.deletionsRecorded())
		}
		for _, img := range imgs[:2] {
			expect(t, s.do("GET", "/v2/app/manifests/"+img.digest, nil), 404, "MANIFEST_UNKNOWN")
		}
		for _, img := range imgs[2:] {
			s.pullsWhole(img)
		}
		if again := s.plan(); len(again.Items) != 0 {
			t.Fatalf("a second plan deletes %v", items(again))
		}
		// Within the undo window the collector keeps what the deletions need.
		rep, err := s.reg.CollectGarbage(ctx, registry.GCOptions{})
		if err != nil || len(rep.Swept) != 0 {
			t.Fatalf("collection within the undo window swept %v (%v)", digestsOf(rep.Swept), err)
		}
		r := s.do("POST", "/api/v1/retention/restore", []byte(`{"repository":"app","kind":"tag","name":"t1"}`))
		expect(t, r, 200)
		if !strings.Contains(string(r.body), imgs[1].digest) {
			t.Fatalf("restore answered %s", r.body)
		}
		s.pullsWhole(imgs[1])
		if d, _ := s.log.Tag(ctx, "app", "t1"); d != imgs[1].digest {
			t.Fatalf("t1 restored to %q", d)
		}
		expect(t, s.do("POST", "/api/v1/retention/restore", []byte(`{"repository":"app","kind":"tag","name":"t1"}`)), 404, "DELETION_UNKNOWN")
		// Restored, t1 keeps its push time: the next plan judges it as
		// before (the oldest of three), not as the newest.
		if got, want := items(s.plan()), sorted("tag app t1 tags", "manifest app "+imgs[1].digest+" tags"); !slices.Equal(got, want) {
			t.Fatalf("plan after the restore %v, want %v", got, want)
		}
		// Past the window: t0 is no longer restorable, and its bytes go.
		time.Sleep(2100 * time.Millisecond)
		expect(t, s.do("POST", "/api/v1/retention/restore", []byte(`{"repository":"app","kind":"tag","name":"t0"}`)), 404, "DELETION_UNKNOWN")
		rep, err = s.reg.CollectGarbage(ctx, registry.GCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var wantSwept []string
		wantSwept = append(wantSwept, imgs[0].digest)
		for d := range imgs[0].blobs {
			wantSwept = append(wantSwept, d)
		}
		slices.Sort(wantSwept)
		if got := digestsOf(rep.Swept); !slices.Equal(got, wantSwept) {
			t.Fatalf("after the window the collector swept %v, want t0's image %v", got, wantSwept)
		}
		s.pullsWhole(imgs[1])
		s.verifyClean()
	})
}

// TestRetentionPullsAndReferrers: a tag pulled within the duration is
// kept; an image's signature goes with it and comes back with it.
func TestRetentionPullsAndReferrers(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	old := s.pushLayers("app", "old", randomBytes(t, 700))
	used := s.pushLayers("app", "used", randomBytes(t, 800))
	fresh := s.pushLayers("app", "fresh", randomBytes(t, 900))
	sig := s.pushReferrer("app", old)
	expect(t, s.do("GET", "/v2/app/manifests/used", nil), 200)
	if err := s.reg.FlushPulls(ctx); err != nil {
		t.Fatal(err)
	}
	s.setPolicy("app", "repositories: [app]\ntags:\n  keepPulledWithin: 1h\n  keep: [fresh]\n")
	plan := s.plan()
	want := sorted("tag app old tags", "manifest app "+old.digest+" tags", "manifest app "+sig+" subject")
	if got := items(plan); !slices.Equal(got, want) {
		t.Fatalf("plan %v, want %v (used was pulled, fresh is kept by pattern)", got, want)
	}
	s.runRetention()
	expect(t, s.do("GET", "/v2/app/manifests/"+sig, nil), 404, "MANIFEST_UNKNOWN")
	s.pullsWhole(used)
	s.pullsWhole(fresh)
	expect(t, s.do("POST", "/api/v1/retention/restore", []byte(`{"repository":"app","kind":"tag","name":"old"}`)), 200)
	s.pullsWhole(old)
	r := s.do("GET", "/v2/app/referrers/"+old.digest, nil)
	if expect(t, r, 200); !strings.Contains(string(r.body), sig) {
		t.Fatalf("the signature did not come back with its subject: %s", r.body)
	}
}

func sorted(ss ...string) []string {
	slices.Sort(ss)
	return ss
}

// pushReferrer pushes an untagged artifact whose subject is img and
// returns its digest.
func (s *testServer) pushReferrer(repo string, img image) string {
	s.t.Helper()
	empty := []byte("{}")
	s.pushBlob(repo, empty)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}}`,
		sha256Of(empty), sha256Of(empty), img.digest, len(img.manifest)))
	d := sha256Of(m)
	expect(s.t, s.do("PUT", "/v2/"+repo+"/manifests/"+d, m, "Content-Type: application/vnd.oci.image.manifest.v1+json"), 201)
	return d
}

// TestRetentionUntaggedAndVersions: untagged manifests go after their
// duration; native versions beyond the last one go, and come back.
func TestRetentionUntaggedAndVersions(t *testing.T) {
	s := newServer(t)
	img := s.pushLayers("app", "tmp", randomBytes(t, 300))
	expect(t, s.do("DELETE", "/v2/app/manifests/tmp", nil), 202) // untagged now
	for _, v := range []string{"1.0", "1.1", "1.2"} {
		expect(t, s.do("PUT", "/api/v1/repositories/tools/-/versions/"+v+"/files/a.txt", []byte("v"+v)), 201)
	}
	s.setPolicy("all", "repositories: [\"**\"]\nuntagged:\n  deleteAfter: 1s\nversions:\n  keepLast: 1\n")
	if got := items(s.plan()); !slices.Equal(got, []string{"version tools 1.0 versions", "version tools 1.1 versions"}) {
		t.Fatalf("plan before the untagged manifest is 1s old: %v", got)
	}
	time.Sleep(1100 * time.Millisecond)
	run := s.runRetention()
	want := sorted("manifest app "+img.digest+" untagged", "version tools 1.0 versions", "version tools 1.1 versions")
	if got := items(run); !slices.Equal(got, want) || run.Applied != 3 {
		t.Fatalf("run %v (applied %d), want %v", got, run.Applied, want)
	}
	expect(t, s.do("GET", "/api/v1/repositories/tools/-/versions/1.0", nil), 404, "VERSION_UNKNOWN")
	r := s.do("GET", "/api/v1/retention/trash?repository=tools", nil)
	expect(t, r, 200)
	var trash struct{ Items []struct{ Kind, Name string } }
	json.Unmarshal(r.body, &trash)
	var listed []string
	for _, it := range trash.Items {
		listed = append(listed, it.Kind+" "+it.Name)
	}
	if !slices.Contains(listed, "version 1.0") || !slices.Contains(listed, "version 1.1") || slices.Contains(listed, "tag 1.0") || slices.Contains(listed, "tag 1.1") {
		t.Fatalf("trash lists %v: want the versions, not their tags", listed)
	}
	// Asking for the version's tag restores the version.
	expect(t, s.do("POST", "/api/v1/retention/restore", []byte(`{"repository":"tools","kind":"tag","name":"1.0"}`)), 200)
	r = s.do("GET", "/api/v1/repositories/tools/-/versions/1.0/files/a.txt", nil)
	if expect(t, r, 200); string(r.body) != "v1.0" {
		t.Fatalf("restored file reads %q", r.body)
	}
}

// TestImmutableTags: a tag an immutable pattern matches can be created
// and pushed again with the same manifest, but not moved or deleted, by
// digest or by tag, on /v2/ and /api/v1/ alike, except by an admin.
func TestImmutableTags(t *testing.T) {
	newAuth := authSetup(t)
	s := newServer(t, func(o *registry.Options) { o.Auth = newAuth() })
	alice, root := basic("alice", "alice-pw"), basic("root", "root-pw")
	s.setPolicy("rel", "repositories: [\"team/**\"]\nimmutableTags: [\"v*\"]\n", root)
	push := func(tag, cred string, body []byte) response {
		return s.do2("PUT", "/v2/team/app/manifests/"+tag, body, "Content-Type: application/vnd.oci.image.manifest.v1+json", cred)
	}
	a, _ := s.pushSmallImage("team/app", "v1", "a", alice)
	b, bd := s.pushSmallImage("team/app", "latest", "b", alice)
	expect(t, push("v1", alice, a), 201) // the same manifest again
	r := push("v1", alice, b)
	expect(t, r, 409, "DENIED")
	if !strings.Contains(string(r.body), "immutable") || !strings.Contains(string(r.body), `policy \"rel\"`) {
		t.Fatalf("refusal says %s", r.body)
	}
	expect(t, s.do2("DELETE", "/v2/team/app/manifests/v1", nil, alice), 409, "DENIED")
	expect(t, s.do2("DELETE", "/v2/team/app/manifests/"+sha256Of(a), nil, alice), 409, "DENIED")
	expect(t, s.do2("PUT", "/v2/team/app/manifests/"+bd+"?tag=v2", b, "Content-Type: application/vnd.oci.image.manifest.v1+json", alice), 201)
	expect(t, s.do2("PUT", "/api/v1/repositories/team/app/-/versions/v9/files/f", []byte("x"), alice), 201)
	expect(t, s.do2("DELETE", "/api/v1/repositories/team/app/-/versions/v9", nil, alice), 409, "DENIED")
	// An admin may.
	expect(t, push("v1", root, b), 201)
	expect(t, s.do2("DELETE", "/v2/team/app/manifests/v1", nil, root), 202)
	expect(t, s.do2("DELETE", "/api/v1/repositories/team/app/-/versions/v9", nil, root), 204)
}

// TestSimulation runs a proposed policy over the history the test made:
// each tag is deleted at the first step after a newer one was pushed,
// and the one pulled after that is reported as pulled again.
func TestSimulation(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.Scratch = scratchOpener(t) })
	ctx := context.Background()
	start := time.Now().Add(-time.Millisecond)
	var imgs []image
	var pushed []time.Time
	for i := range 3 {
		imgs = append(imgs, s.pushLayers("app", fmt.Sprintf("t%d", i), randomBytes(t, 100)))
		pushed = append(pushed, s.tagSetTime("app", fmt.Sprintf("t%d", i)))
		time.Sleep(60 * time.Millisecond)
	}
	expect(t, s.do("GET", "/v2/app/manifests/t0", nil), 200)
	if err := s.reg.FlushPulls(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := retention.Parse([]byte("name: last\nrepositories: [app]\ntags:\n  keepLast: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := retention.Compile([]retention.Policy{p})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := s.reg.Simulate(ctx, set, start, time.Now(), 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]registry.SimulatedDeletion{}
	for _, d := range sim.Deletions {
		got[d.Kind+" "+d.Name] = d
	}
	for i, img := range imgs[:2] {
		for _, key := range []string{fmt.Sprintf("tag t%d", i), "manifest " + img.digest} {
			d, ok := got[key]
			if !ok {
				t.Fatalf("simulation %+v does not delete %s", sim, key)
			}
			if !d.At.After(pushed[i+1]) || d.At.After(pushed[i+1].Add(20*time.Millisecond)) {
				t.Fatalf("%s deleted at %v, want the first step after t%d was pushed at %v", key, d.At, i+1, pushed[i+1])
			}
			if (d.PulledAfter != nil) != (i == 0) {
				t.Fatalf("%s pulled again: %v; only t0 was pulled after", key, d.PulledAfter)
			}
		}
	}
	if len(sim.Deletions) != 4 || sim.PulledAgain != 2 {
		t.Fatalf("%d deletions, %d pulled again; want 4 and 2: %+v", len(sim.Deletions), sim.PulledAgain, sim.Deletions)
	}
	// The API runs the same over the last days, against a proposed policy.
	r := s.do("POST", "/api/v1/retention/simulate?days=1&step=1m", []byte("repositories: [app]\ntags:\n  keepLast: 1\n"))
	expect(t, r, 200)
	var api registry.Simulation
	json.Unmarshal(r.body, &api)
	if len(api.Deletions) != 4 {
		t.Fatalf("the API simulation deletes %d: %s", len(api.Deletions), r.body)
	}
}

// pushSmallImage pushes an image with a config naming n (so that n makes
// it distinct) under ref, with the given Authorization header.
func (s *testServer) pushSmallImage(repo, ref, n, authz string) ([]byte, string) {
	s.t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","n":%q}`, n))
	d := sha256Of(cfg)
	expect(s.t, s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, cfg, authz), http.StatusCreated)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, ociManifest, d, len(cfg)))
	expect(s.t, s.do("PUT", "/v2/"+repo+"/manifests/"+ref, m, authz, "Content-Type: "+ociManifest), http.StatusCreated)
	return m, sha256Of(m)
}

// scratchOpener opens scratch logs for simulations in the test's
// temporary directory.
func scratchOpener(t *testing.T) func(context.Context) (*eventlog.Log, func(), error) {
	return func(ctx context.Context) (*eventlog.Log, func(), error) {
		l, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "scratch.db"), sqlite.Options{})
		if err != nil {
			return nil, nil, err
		}
		return l, func() { l.Close() }, nil
	}
}

// tagSetTime is the time of the event that last set repo:tag.
func (s *testServer) tagSetTime(repo, tag string) time.Time {
	s.t.Helper()
	var at time.Time
	s.log.Events(context.Background(), 0, func(e eventlog.Event) error {
		var p eventlog.TagSet
		if e.Type == eventlog.TypeTagSet && e.Repo == repo && e.Decode(&p) == nil && p.Tag == tag {
			at = e.Time
		}
		return nil
	})
	return at
}

// TestStorageAccounting: bytes per repository, unique and shared.
func TestStorageAccounting(t *testing.T) {
	s := newServer(t)
	shared := randomBytes(t, 5000)
	a := s.pushLayers("a", "v1", shared, randomBytes(t, 1000))
	b := s.pushLayers("b", "v1", shared)
	r := s.do("GET", "/api/v1/storage", nil)
	expect(t, r, 200)
	var st struct{ Repositories []eventlog.RepoStorage }
	json.Unmarshal(r.body, &st)
	if len(st.Repositories) != 2 {
		t.Fatalf("storage %s", r.body)
	}
	total := func(img image) (n int64) {
		n = int64(len(img.manifest))
		for _, p := range img.blobs {
			n += int64(len(p))
		}
		return n
	}
	for i, img := range []image{a, b} {
		got := st.Repositories[i]
		if got.Bytes != total(img) || got.SharedBytes != 5000 || got.UniqueBytes != total(img)-5000 {
			t.Fatalf("%s: %+v; want %d bytes, 5000 shared", img.repo, got, total(img))
		}
	}
}

// TestRetentionOnReplicas: two replicas applying the same policies at
// once record each deletion once.
func TestRetentionOnReplicas(t *testing.T) {
	proxy, direct := replicas(t, 2)
	for i := range 5 {
		proxy.pushLayers("app", fmt.Sprintf("t%d", i), randomBytes(t, 100))
	}
	proxy.setPolicy("app", "repositories: [app]\ntags:\n  keepLast: 1\n")
	want := items(proxy.plan())
	done := make(chan registry.RetentionPlan, 2)
	for _, s := range direct {
		go func() {
			p, err := s.reg.ApplyRetention(context.Background(), time.Now())
			if err != nil {
				t.Error(err)
			}
			done <- p
		}()
	}
	applied := (<-done).Applied + (<-done).Applied
	if got := direct[0].deletionsRecorded(); !slices.Equal(got, want) || applied != len(want) {
		t.Fatalf("recorded %v (%d applied), want each of %v once", got, applied, want)
	}
}
