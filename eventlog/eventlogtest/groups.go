package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testGroupSeesItsOwnChanges records appends together in one group commit
// (AppendEach) where a later one depends on what an earlier one changed:
// each is judged on the views as the earlier appends of its group left
// them, as if they had been appended one after another. A log that reads
// a group's answers before its first append (eventlog/facts.go) must
// notice when one of the group changes them.
func testGroupSeesItsOwnChanges(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	x, y, z, d := sha(0xb1), sha(0xb2), sha(0xb3), sha(0xb4)
	manifest := func(digest string, blobs ...string) eventlog.Event {
		return eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: digest, SHA256: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1, Blobs: blobs})
	}
	mustAppend(t, l, eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "u"}))
	mustAppend(t, l, committed(x), link("r", x), committed(z), committed(d),
		manifest(d),
		eventlog.New(eventlog.TypeVersionPublished, "r", eventlog.VersionPublished{Version: "1.0", NativeSHA256: d, NativeBLAKE3: "blake3:00", NativeSize: 1, OCIDigest: d}),
		eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "1.0", Digest: d}))
	// Repository q has a tag in retention's trash, r has none.
	mustAppend(t, l, eventlog.New(eventlog.TypeManifestPut, "q", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1}),
		eventlog.New(eventlog.TypeTagSet, "q", eventlog.TagSet{Tag: "old", Digest: d}),
		eventlog.New(eventlog.TypePolicySet, "", eventlog.PolicySet{Name: "p", Policy: `{"name":"p"}`}))
	mark, _ := l.Head(ctx)
	mustAppend(t, l, eventlog.New(eventlog.TypeTagDeleted, "q", eventlog.TagDeleted{Tag: "old", Retention: eventlog.Retention{Policy: "p", Rule: "tags", Reason: "old", Mark: mark}}))
	m1, m2, m3 := sha(0xc1), sha(0xc2), sha(0xc3)
	mark, _ = l.Head(ctx)

	for _, c := range []struct {
		name   string
		group  [][]eventlog.Event
		refuse []error // per append: nil means recorded
	}{{
		name: "a blob unlinked, then a manifest naming it",
		group: [][]eventlog.Event{
			{unlink("r", x)},
			{committed(m1), manifest(m1, x)},
		},
		refuse: []error{nil, eventlog.ErrReferenceMissing},
	}, {
		name: "a blob linked, then a manifest naming it",
		group: [][]eventlog.Event{
			{committed(y), link("r", y)},
			{committed(m2), manifest(m2, y)},
		},
		refuse: []error{nil, nil},
	}, {
		name: "a blob condemned, then committed again",
		group: [][]eventlog.Event{
			{eventlog.New(eventlog.TypeGCCondemned, "", eventlog.GCCondemned{Run: "g", Mark: mark, Blobs: []string{z}})},
			{committed(z)},
		},
		refuse: []error{nil, eventlog.ErrFenced},
	}, {
		name: "a native version published, then its tag moved",
		group: [][]eventlog.Event{
			{committed(m3), manifest(m3),
				eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "2.0", Digest: m3}),
				eventlog.New(eventlog.TypeVersionPublished, "r", eventlog.VersionPublished{Version: "2.0", NativeSHA256: m3, NativeBLAKE3: "blake3:00", NativeSize: 1, OCIDigest: m3})},
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "2.0", Digest: d})},
		},
		refuse: []error{nil, eventlog.ErrConflict},
	}, {
		name: "tags set, one of them a native version's",
		group: [][]eventlog.Event{
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "a", Digest: d})},
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "1.0", Digest: m2})},
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "b", Digest: d})},
		},
		refuse: []error{nil, eventlog.ErrConflict, nil},
	}, {
		// Where writes are pipelined (PostgreSQL) the duplicate's failed
		// write surfaces only when a later statement is sent: it must
		// still fail that append alone, and the others be recorded.
		name: "a write that fails between two good appends",
		group: [][]eventlog.Event{
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "before", Digest: d})},
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "dup", Digest: d}),
				eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "u"})},
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "after", Digest: d})},
		},
		refuse: []error{nil, errAny, nil},
	}, {
		// The same, where the failing write is followed in its append by
		// a refusal that asks the database nothing: the write's failure
		// must not take the rollback of its append, and the group, with it.
		name: "a write that fails, then a refusal, between two good appends",
		group: [][]eventlog.Event{
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "before2", Digest: d})},
			{eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "u"}),
				eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: sha(0xd1), BLAKE3: "blake3:" + sha(0xd1)[7:], Size: 5, Content: []byte("four")})},
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "after2", Digest: d})},
		},
		refuse: []error{nil, errAny, nil},
	}, {
		// A push that ends a session it says was never recorded (no
		// lease: ADR 0021) loses to an upload.started or an end of the
		// same id earlier in its group, and only to those.
		name: "sessions ended as never recorded",
		group: [][]eventlog.Event{
			{eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "g1"})},
			{unrecordedEnd("g1")},
			{unrecordedEnd("g2")},
			{unrecordedEnd("g2")},
			{unrecordedEnd("g3")},
		},
		refuse: []error{nil, eventlog.ErrUploadTaken, nil, eventlog.ErrUploadTaken, nil},
	}, {
		name: "a trashed tag set again, next to a repository with an empty trash",
		group: [][]eventlog.Event{
			{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "c", Digest: d})},
			{eventlog.New(eventlog.TypeTagSet, "q", eventlog.TagSet{Tag: "old", Digest: d})},
			{eventlog.New(eventlog.TypeTagSet, "new", eventlog.TagSet{Tag: "n", Digest: d})},
		},
		refuse: []error{nil, nil, nil},
	}} {
		_, errs := l.AppendEach(ctx, c.group...)
		for i, err := range errs {
			if want := c.refuse[i]; (want == nil) != (err == nil) || (want != nil && want != errAny && !errors.Is(err, want)) {
				t.Errorf("%s: append %d of the group: %v, want %v", c.name, i+1, err, want)
			}
		}
	}
	// An append alone whose write fails (its transaction sends its writes
	// with its commit, on PostgreSQL) leaves the log able to append, on
	// whichever connection of its pool comes next.
	for i := 0; i < 20; i++ {
		if _, err := l.Append(ctx, eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "u"})); err == nil {
			t.Fatal("a second upload.started of one id was recorded")
		}
		mustAppend(t, l, eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: fmt.Sprint("next", i), Digest: d}))
	}
	if refs := badRefs(t, l); len(refs) > 0 {
		t.Errorf("manifests name blobs their repository does not hold: %+v", refs)
	}
	for tag, want := range map[string]string{"2.0": m3, "before": d, "after": d, "dup": "", "before2": d, "after2": d} {
		if got, _ := l.Tag(ctx, "r", tag); got != want {
			t.Errorf("tag %s points at %q, want %q", tag, got, want)
		}
	}
	var trash []eventlog.TrashItem
	if err := l.Trash(ctx, "q", func(i eventlog.TrashItem) error { trash = append(trash, i); return nil }); err != nil || len(trash) != 0 {
		t.Errorf("a tag set again is still in the trash: %+v, %v", trash, err)
	}
	if repos, _ := l.Repositories(ctx, "", -1); !reflect.DeepEqual(repos, []string{"new", "q", "r"}) {
		t.Errorf("repositories = %v, want new, q, r", repos)
	}
	if got, _ := l.Tag(ctx, "r", "2.0"); got != m3 {
		t.Errorf("native version 2.0's tag points at %s, want %s", got, m3)
	}
	if _, err := l.Blob(ctx, z); !isNotFound(err) {
		t.Errorf("a blob condemned earlier in the group is in the view: %v", err)
	}
	if live, replayed := dumpAndReplay(t, l); !reflect.DeepEqual(live, replayed) {
		t.Errorf("replay disagrees with the views the groups left:\nlive     %v\nreplayed %v", live, replayed)
	}
}

// unrecordedEnd is the upload.finished of a push that ends session id in
// one request, the session never recorded.
func unrecordedEnd(id string) eventlog.Event {
	return eventlog.New(eventlog.TypeUploadFinished, "r", eventlog.UploadFinished{ID: id, SHA256: sha(0xe0),
		SessionEnd: eventlog.SessionEnd{IDExpires: time.Now().Add(time.Hour).UnixNano()}, Unrecorded: true})
}

// errAny stands for any error in an expectation.
var errAny = errors.New("any error")

// badRefs returns the manifest references whose blob is not linked.
func badRefs(t *testing.T, l *eventlog.Log) []eventlog.ManifestRef {
	t.Helper()
	var bad []eventlog.ManifestRef
	if err := l.ManifestRefs(context.Background(), func(r eventlog.ManifestRef) error {
		if !r.Linked || !r.Committed {
			bad = append(bad, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return bad
}

// testTracedAppends: a tracer sees a span per append, whether it came
// alone (Append) or in a group (AppendEach), each ended with that
// append's own outcome.
func testTracedAppends(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	var mu sync.Mutex
	var spans []string
	l.SetTracer(func(ctx context.Context, events int) (context.Context, func(error)) {
		return ctx, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			spans = append(spans, fmt.Sprintf("%d:%v", events, err != nil))
		}
	})
	defer l.SetTracer(nil)
	x := sha(0xd1)
	mustAppend(t, l, committed(x))
	_, errs := l.AppendEach(ctx, []eventlog.Event{link("r", x)}, []eventlog.Event{link("r", sha(0xd2))}, nil, []eventlog.Event{committed(sha(0xd3)), link("r", sha(0xd3))})
	if errs[0] != nil || errs[1] == nil || errs[3] != nil {
		t.Fatalf("AppendEach: %v; want the second refused (its blob was never committed)", errs)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(spans[1:])
	if want := []string{"1:false", "1:false", "1:true", "2:false"}; !reflect.DeepEqual(spans, want) {
		t.Fatalf("spans %v, want %v", spans, want)
	}
}

// testRepositoryOfRefusedAppend: an append refused in a group (rolled
// back to its savepoint) after linking a blob into a new repository
// leaves no repository behind, and a later link there creates it: the
// log must not take the refused append's repository for one it knows
// exists.
func testRepositoryOfRefusedAppend(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	k := sha(0xe1)
	mustAppend(t, l, committed(k))
	_, errs := l.AppendEach(ctx,
		[]eventlog.Event{link("ghost", k), link("ghost", sha(0xe2))}, // the second blob was never committed
		[]eventlog.Event{link("kept", k)})
	if errs[0] == nil || errs[1] != nil {
		t.Fatalf("AppendEach: %v; want the first refused, the second recorded", errs)
	}
	for _, c := range []struct {
		repo string
		want bool
	}{{"ghost", false}, {"kept", true}} {
		if ok, err := l.RepositoryExists(ctx, c.repo); err != nil || ok != c.want {
			t.Fatalf("repository %q exists: %v, %v; want %v", c.repo, ok, err, c.want)
		}
	}
	mustAppend(t, l, link("ghost", k))
	if ok, err := l.RepositoryExists(ctx, "ghost"); err != nil || !ok {
		t.Fatalf("repository ghost after a blob was linked there: %v, %v; want it", ok, err)
	}
	if names, err := l.Repositories(ctx, "", -1); err != nil || !slices.Equal(names, []string{"ghost", "kept"}) {
		t.Fatalf("repositories: %v, %v; want ghost, kept", names, err)
	}
	live, replayed := dumpAndReplay(t, l)
	if !reflect.DeepEqual(live, replayed) {
		t.Fatal("views after replay differ from the live ones")
	}
}
