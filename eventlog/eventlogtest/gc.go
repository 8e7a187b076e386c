package eventlogtest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testCollectorOrdering walks the collector's window (eventlog/gc.go) and
// checks every refusal that keeps a sweep from deleting bytes an event
// names, then that replay rebuilds the tombstones.
func testCollectorOrdering(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	x, y, z := sha(0xa1), sha(0xa2), sha(0xa3)
	fenced := func(key string, fence int64) eventlog.Event {
		e := committed(key)
		e.Fence = fence
		return e
	}
	mustAppend(t, l, committed(x), committed(y), link("r", x), link("r", y))
	mark, _ := l.Head(ctx)
	condemn := func(keys ...string) error {
		_, err := l.Append(ctx, eventlog.New(eventlog.TypeGCCondemned, "", eventlog.GCCondemned{Run: "t", Mark: mark, Blobs: keys}))
		return err
	}
	if err := condemn(x); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("condemning a linked blob: %v, want ErrConflict", err)
	}
	mustAppend(t, l, unlink("r", x), unlink("r", y))
	if err := condemn(x); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("condemning a blob unlinked after the mark: %v, want ErrConflict", err)
	}
	mark, _ = l.Head(ctx)          // a collection marks after its unlinks
	mustAppend(t, l, committed(z)) // after the mark
	if err := condemn(x, z); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("condemning a blob committed after the mark: %v, want ErrConflict", err)
	}
	if _, err := l.Append(ctx, eventlog.New(eventlog.TypeGCSwept, "", eventlog.GCSwept{Run: "t", Blobs: []string{x}})); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("sweeping a blob never condemned: %v, want ErrConflict", err)
	}
	before, _ := l.Head(ctx)
	if err := condemn(x); err != nil {
		t.Fatal(err)
	}
	if err := condemn(x); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("condemning a condemned blob again: %v, want ErrConflict", err)
	}
	// Condemned: gone from the views, and nothing may record or use it.
	if _, err := l.Blob(ctx, x); !isNotFound(err) {
		t.Fatalf("a condemned blob is still in the view: %v", err)
	}
	after, _ := l.Head(ctx)
	for name, evs := range map[string][]eventlog.Event{
		"blob.committed, any fence": {fenced(x, after)},
		"blob.linked":               {link("r", x)},
		"manifest.put of its bytes": {eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: x, SHA256: x, MediaType: "m", Size: 1})},
	} {
		if _, err := l.Append(ctx, evs...); !errors.Is(err, eventlog.ErrFenced) && !errors.Is(err, eventlog.ErrReferenceMissing) {
			t.Fatalf("%s of a condemned blob: %v, want it refused", name, err)
		}
	}
	if got, err := l.Condemned(ctx); err != nil || !reflect.DeepEqual(got, []string{x}) {
		t.Fatalf("Condemned = %v, %v", got, err)
	}
	swept := mustAppend(t, l, eventlog.New(eventlog.TypeGCSwept, "", eventlog.GCSwept{Run: "t", Blobs: []string{x}, Bytes: 1}))[0].Seq
	// Swept: a writer that read the log before the sweep ended may hold
	// bytes the sweep deleted; one that read it after may not.
	for _, fence := range []int64{before, after, swept - 1} {
		if _, err := l.Append(ctx, fenced(x, fence)); !errors.Is(err, eventlog.ErrFenced) {
			t.Fatalf("blob.committed fenced at %d, before the sweep at %d: %v, want ErrFenced", fence, swept, err)
		}
	}
	mustAppend(t, l, fenced(x, swept), link("r", x))
	if b, err := l.Blob(ctx, x); err != nil || b.SHA256 != x {
		t.Fatalf("recommitted after the sweep: %+v, %v", b, err)
	}
	if got, _ := l.Condemned(ctx); len(got) != 0 {
		t.Fatalf("Condemned after the sweep = %v", got)
	}
	// y is unused; an orphan (bytes no event named) is condemned alike.
	orphan := sha(0xa4)
	if still, err := l.StillUnused(ctx, mark, []string{x, y, orphan}); err != nil || !reflect.DeepEqual(still, []string{y, orphan}) {
		t.Fatalf("StillUnused = %v, %v; want y and the orphan", still, err)
	}
	if err := condemn(y, orphan); err != nil {
		t.Fatal(err)
	}
	live, replayed := dumpAndReplay(t, l)
	if !reflect.DeepEqual(live["blob_tombstones"], replayed["blob_tombstones"]) || len(live["blob_tombstones"]) != 3 {
		t.Fatalf("tombstones live %v, replayed %v", live["blob_tombstones"], replayed["blob_tombstones"])
	}
}

func link(repo, key string) eventlog.Event {
	return eventlog.New(eventlog.TypeBlobLinked, repo, eventlog.BlobLinked{SHA256: key})
}

func unlink(repo, key string) eventlog.Event {
	return eventlog.New(eventlog.TypeBlobUnlinked, repo, eventlog.BlobUnlinked{SHA256: key})
}
