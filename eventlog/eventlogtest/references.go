package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testManifestNamingManyBlobs: a manifest naming 10,000 blobs (the most
// manifests.Parse accepts) is checked and recorded inside the append in a
// few statements, so it holds the committer briefly; one blob missing
// among them refuses the whole append; the blobs stay protected.
func testManifestNamingManyBlobs(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	const n = 10_000
	blobs := make([]string, n)
	var evs []eventlog.Event
	for i := range blobs {
		blobs[i] = fmt.Sprintf("sha256:%064x", i+1)
		evs = append(evs,
			eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: blobs[i], BLAKE3: fmt.Sprintf("blake3:%064x", i+1), Size: 1}),
			eventlog.New(eventlog.TypeBlobLinked, "big", eventlog.BlobLinked{SHA256: blobs[i]}))
	}
	for len(evs) > 0 {
		k := min(len(evs), 2000)
		if _, err := l.Append(ctx, evs[:k]...); err != nil {
			t.Fatal(err)
		}
		evs = evs[k:]
	}
	put := func(digest string, names []string) error {
		_, err := l.Append(ctx, committed(digest), eventlog.New(eventlog.TypeManifestPut, "big", eventlog.ManifestPut{
			Digest: digest, SHA256: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1, Blobs: names}))
		return err
	}
	missing := append(append([]string{}, blobs[:n-1]...), fmt.Sprintf("sha256:%064x", n+5))
	if err := put(fmt.Sprintf("sha256:%064x", 1<<40), missing); !errors.Is(err, eventlog.ErrReferenceMissing) {
		t.Fatalf("a put naming a blob the repository lacks: %v", err)
	}
	start := time.Now()
	if err := put(fmt.Sprintf("sha256:%064x", 1<<41), blobs); err != nil {
		t.Fatal(err)
	}
	t.Logf("manifest.put naming %d blobs committed in %v", n, time.Since(start))
	_, err := l.Append(ctx, eventlog.New(eventlog.TypeBlobUnlinked, "big", eventlog.BlobUnlinked{SHA256: blobs[n-1]}))
	if !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("unlinking a blob the manifest needs: %v", err)
	}
}

// testNativeTagGuarded: a native version's tag is not deleted, nor its
// derived manifest, while the version exists, whatever the API checked
// before the append; after the version, both go.
func testNativeTagGuarded(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	d := fmt.Sprintf("sha256:%064x", 7)
	mustAppend(t, l, committed(d),
		eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1}),
		eventlog.New(eventlog.TypeVersionPublished, "r", eventlog.VersionPublished{Version: "1.0", NativeSHA256: d, NativeBLAKE3: "blake3:00", NativeSize: 1, OCIDigest: d}),
		eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "1.0", Digest: d}))
	for _, e := range []eventlog.Event{
		eventlog.New(eventlog.TypeTagDeleted, "r", eventlog.TagDeleted{Tag: "1.0"}),
		eventlog.New(eventlog.TypeManifestDeleted, "r", eventlog.ManifestDeleted{Digest: d}),
	} {
		if _, err := l.Append(ctx, e); !errors.Is(err, eventlog.ErrConflict) {
			t.Fatalf("%s of a native version: %v", e.Type, err)
		}
	}
	mustAppend(t, l,
		eventlog.New(eventlog.TypeVersionDeleted, "r", eventlog.VersionDeleted{Version: "1.0"}),
		eventlog.New(eventlog.TypeTagDeleted, "r", eventlog.TagDeleted{Tag: "1.0"}),
		eventlog.New(eventlog.TypeManifestDeleted, "r", eventlog.ManifestDeleted{Digest: d}))
}
