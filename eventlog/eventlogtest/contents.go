package eventlogtest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
)

// withContent is a blob.committed that carries its bytes (ADR 0016).
func withContent(key string, content []byte) eventlog.Event {
	return eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: key, BLAKE3: "blake3:" + key[7:], Size: int64(len(content)), Content: content})
}

// testContentInTheLog: content a blob.committed carries is the blob, tier
// inline, until a collection condemns it; a commit with content makes
// the tier inline, one without leaves it; a commit that carries its bytes needs no fence; replay rebuilds
// the contents view.
func testContentInTheLog(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	a, h, c := sha(0xc1), sha(0xc2), sha(0xc3)
	body := []byte(`{"schemaVersion":2}`)
	mustAppend(t, l, withContent(a, body), link("r", a))
	if b, err := l.LinkedBlob(ctx, "r", a); err != nil || b.Tier != eventlog.TierInline || b.Size != int64(len(body)) || b.Content != nil {
		t.Fatalf("a blob committed with its content: %+v, %v; want tier inline, and no bytes from a lookup of the row", b, err)
	}
	if b, err := l.LinkedBlobForRead(ctx, "r", a); err != nil || !bytes.Equal(b.Content, body) {
		t.Fatalf("LinkedBlobForRead: %+v, %v; want the bytes", b, err)
	}
	if got, err := l.Content(ctx, a); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Content = %q, %v", got, err)
	}
	if _, err := l.Content(ctx, h); !isNotFound(err) {
		t.Fatalf("Content of a blob never committed: %v, want ErrNotFound", err)
	}
	// The same bytes carried again are recorded without them: the log
	// keeps content once. Different bytes under the key (a row damaged by
	// hand, here a writer's mistake) are written again.
	out := mustAppend(t, l, withContent(a, body), link("r", a))
	if n := out[0].CarriedContent(); n != 0 {
		t.Fatalf("content the log keeps was recorded again: %d bytes", n)
	}
	if b, err := l.LinkedBlobForRead(ctx, "r", a); err != nil || b.Tier != eventlog.TierInline || !bytes.Equal(b.Content, body) {
		t.Fatalf("after a commit of kept content: %+v, %v; want tier inline and the bytes", b, err)
	}
	other := bytes.ToUpper(body)
	if out := mustAppend(t, l, withContent(a, other)); out[0].CarriedContent() != len(other) {
		t.Fatalf("different bytes under a kept key were not recorded: %d bytes", out[0].CarriedContent())
	}
	mustAppend(t, l, withContent(a, body))
	// A later commit without the bytes keeps the tier; one with them
	// makes it inline, whatever it was.
	mustAppend(t, l, committed(a), committed(h))
	if b, err := l.Blob(ctx, h); err != nil || b.Tier != eventlog.TierHot {
		t.Fatalf("a blob committed without content: %+v, %v; want tier hot", b, err)
	}
	mustAppend(t, l, withContent(h, body[:1]))
	for key, want := range map[string]string{a: eventlog.TierInline, h: eventlog.TierInline} {
		if b, err := l.Blob(ctx, key); err != nil || b.Tier != want {
			t.Fatalf("tier of %s after a second commit: %+v, %v; want %s", key, b, err, want)
		}
	}
	// A manifest put as the registry appends it, its bytes carried, a
	// blob it names linked and a tag set: the group's checks ask about
	// every kind of row at once, the content among them; carried again,
	// the kept bytes are found and not recorded twice.
	m, mbody, layer := sha(0xc4), []byte(`{"schemaVersion":2,"n":4}`), sha(0xc5)
	mustAppend(t, l, withContent(layer, []byte("layer")), link("r", layer))
	for i := range 2 {
		out := mustAppend(t, l, withContent(m, mbody),
			eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: m, SHA256: m, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(mbody)), Blobs: []string{layer}}),
			eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "v4", Digest: m}))
		if want := []int{len(mbody), 0}[i]; out[0].CarriedContent() != want {
			t.Fatalf("manifest put %d carried %d bytes, want %d", i+1, out[0].CarriedContent(), want)
		}
	}
	// Content whose length is not the recorded size is refused whole.
	bad := eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: c, BLAKE3: "blake3:" + c[7:], Size: 5, Content: []byte("abc")})
	if _, err := l.Append(ctx, bad, link("r", c)); err == nil {
		t.Fatal("a blob.committed whose content is shorter than its size was recorded")
	}
	if _, err := l.Blob(ctx, c); !isNotFound(err) {
		t.Fatalf("the refused append left a blob: %v", err)
	}
	// Content in the log has no copy in a store for tiering to move.
	if _, err := l.Append(ctx, eventlog.New(eventlog.TypeBlobTiered, "", eventlog.BlobTiered{SHA256: a, Tier: eventlog.TierCold})); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("tiering content kept in the log: %v, want ErrConflict", err)
	}
	// A collection takes the content with the blob; a commit that
	// carries the bytes again is not fenced by the sweep, one without is.
	mustAppend(t, l, unlink("r", a))
	mark, _ := l.Head(ctx)
	mustAppend(t, l, eventlog.New(eventlog.TypeGCCondemned, "", eventlog.GCCondemned{Run: "t", Mark: mark, Blobs: []string{a}}))
	if _, err := l.Content(ctx, a); !isNotFound(err) {
		t.Fatalf("content of a condemned blob: %v, want ErrNotFound", err)
	}
	if _, err := l.Append(ctx, withContent(a, body)); !errors.Is(err, eventlog.ErrFenced) {
		t.Fatalf("content of a blob being collected: %v, want ErrFenced", err)
	}
	mustAppend(t, l, eventlog.New(eventlog.TypeGCSwept, "", eventlog.GCSwept{Run: "t", Blobs: []string{a}}))
	stale := committed(a)
	stale.Fence = mark
	if _, err := l.Append(ctx, stale); !errors.Is(err, eventlog.ErrFenced) {
		t.Fatalf("a commit without content fenced before the sweep: %v, want ErrFenced", err)
	}
	again := withContent(a, body)
	again.Fence = mark
	mustAppend(t, l, again, link("r", a))
	if got, err := l.Content(ctx, a); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("content committed again after the sweep: %q, %v", got, err)
	}
	live, replayed := dumpAndReplay(t, l)
	if !reflect.DeepEqual(live, replayed) || len(live["contents"]) != 4 {
		t.Fatalf("contents live %q, replayed %q", live["contents"], replayed["contents"])
	}
}
