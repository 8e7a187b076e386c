package eventlogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testConcurrentLookups: the lookups a pull makes (a manifest by tag, by
// digest, with its bytes), many at once as a busy server makes them, each
// get their own answer: a repository's own rows, never another's, not
// found where it has none; and a tag moved is seen moved by the next
// lookup, however many others are in flight. A log that shares queries
// among lookups or keeps answers must not show it here (a batcher that
// answered from its last query failed this test, as did one that keyed
// answers by name alone).
func testConcurrentLookups(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	const n = 24
	body := func(repo string, i int) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"repo":%q,"n":%d}`, repo, i))
	}
	digest := func(repo string, i int) string {
		if repo == "a" {
			return sha(0x1000 + i)
		}
		return sha(0x2000 + i)
	}
	for _, repo := range []string{"a", "b"} {
		for i := range n {
			d, b := digest(repo, i), body(repo, i)
			mustAppend(t, l, withContent(d, b),
				eventlog.New(eventlog.TypeManifestPut, repo, eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(b))}),
				eventlog.New(eventlog.TypeTagSet, repo, eventlog.TagSet{Tag: fmt.Sprint(repo, i), Digest: d}))
		}
	}
	check := func(m eventlog.Manifest, err error, repo string, i int, what string) error {
		if err != nil || m.Repo != repo || m.Digest != digest(repo, i) || !bytes.Equal(m.Content, body(repo, i)) {
			return fmt.Errorf("%s: %s %s, %q, %v; want %s in %s with its bytes", what, m.Repo, m.Digest, m.Content, err, digest(repo, i), repo)
		}
		return nil
	}
	missing := func(err error, what string) error {
		if !errors.Is(err, eventlog.ErrNotFound) {
			return fmt.Errorf("%s: %v, want ErrNotFound", what, err)
		}
		return nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				repo, other := "a", "b"
				if (w+k)%2 == 1 {
					repo, other = other, repo
				}
				i := (w*7 + k) % n
				m, err := l.TaggedManifestForRead(ctx, repo, fmt.Sprint(repo, i))
				e := check(m, err, repo, i, "tag")
				if e == nil {
					m, err = l.ManifestForRead(ctx, repo, digest(repo, i))
					e = check(m, err, repo, i, "digest")
				}
				if e == nil { // another repository's tag and manifest
					_, err = l.TaggedManifestForRead(ctx, repo, fmt.Sprint(other, i))
					e = missing(err, "another repository's tag")
				}
				if e == nil {
					_, err = l.ManifestForRead(ctx, repo, digest(other, i))
					e = missing(err, "another repository's manifest")
				}
				if e != nil {
					errs <- e
					return
				}
			}
		}()
	}
	// A tag moved while the readers run: each lookup after the move
	// answers with where it was moved to.
	err := func() error {
		for i := range 3 * n {
			d := digest("a", i%n)
			if _, err := l.Append(ctx, eventlog.New(eventlog.TypeTagSet, "a", eventlog.TagSet{Tag: "moving", Digest: d})); err != nil {
				return err
			}
			m, err := l.TaggedManifestForRead(ctx, "a", "moving")
			if err := check(m, err, "a", i%n, fmt.Sprint("the tag after its move ", i)); err != nil {
				return err
			}
		}
		return nil
	}()
	close(stop)
	wg.Wait()
	close(errs)
	if err != nil {
		t.Fatal(err)
	}
	for err := range errs {
		t.Fatal(err)
	}
	// A lookup whose request is gone ends at once, and takes nobody's
	// answer with it.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.TaggedManifestForRead(cancelled, "a", "a1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a lookup with its context cancelled: %v, want context.Canceled", err)
	}
	m, err := l.TaggedManifestForRead(ctx, "a", "a1")
	if err := check(m, err, "a", 1, "a lookup after a cancelled one"); err != nil {
		t.Fatal(err)
	}
}

// testManifestsIn: many manifests looked up at once (an index's children)
// come back as the repository holds them, never another repository's, the
// unknown ones absent, across more digests than one statement carries.
func testManifestsIn(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	for _, repo := range []string{"a", "b"} {
		for i := range 3 {
			d := sha(0x3000 + i)
			if repo == "b" {
				d = sha(0x4000 + i)
			}
			mustAppend(t, l, committed(d),
				eventlog.New(eventlog.TypeManifestPut, repo, eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.index.v1+json", Size: int64(10 + i)}))
		}
	}
	var ask []string
	for i := range 300 {
		ask = append(ask, sha(0x5000+i)) // unknown
	}
	ask[0], ask[280], ask[299] = sha(0x3000), sha(0x3002), sha(0x4001) // a's, a's past the first statement, b's
	got, err := l.ManifestsIn(ctx, "a", ask)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("ManifestsIn(a) found %d manifests, want a's two: %+v", len(got), got)
	}
	for i, d := range map[int]string{0: sha(0x3000), 2: sha(0x3002)} {
		if m := got[d]; m.Repo != "a" || m.Digest != d || m.SHA256 != d || m.Size != int64(10+i) || m.MediaType != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("ManifestsIn(a)[%s] = %+v", d, m)
		}
	}
	if got, err := l.ManifestsIn(ctx, "a", nil); err != nil || len(got) != 0 {
		t.Fatalf("ManifestsIn(a, none) = %v, %v", got, err)
	}
}

// testPutTwiceInOneAppend: a manifest put twice in one transaction, new to
// its repository, ends with what the second put says (its side rows are
// replaced, not added to), live as after a replay.
func testPutTwiceInOneAppend(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	m, subject := sha(0x6000), sha(0x6001)
	put := func(ann map[string]string) eventlog.Event {
		return eventlog.New(eventlog.TypeManifestPut, "fresh", eventlog.ManifestPut{Digest: m, SHA256: m, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 3, Subject: subject, Annotations: ann})
	}
	mustAppend(t, l, committed(m), put(map[string]string{"first": "1"}), put(map[string]string{"second": "2"}),
		eventlog.New(eventlog.TypeTagSet, "fresh", eventlog.TagSet{Tag: "v", Digest: m}))
	refs, _, err := l.Referrers(ctx, eventlog.ReferrersQuery{Repo: "fresh", Subject: subject})
	if err != nil || len(refs) != 1 || !reflect.DeepEqual(refs[0].Annotations, map[string]string{"second": "2"}) {
		t.Fatalf("referrers after two puts = %+v, %v; want one, with the second put's annotations only", refs, err)
	}
	if repos, _ := l.Repositories(ctx, "", -1); !reflect.DeepEqual(repos, []string{"fresh"}) {
		t.Fatalf("repositories = %v", repos)
	}
	live, replayed := dumpAndReplay(t, l)
	if !reflect.DeepEqual(live, replayed) {
		t.Fatalf("views live %v, replayed %v", live, replayed)
	}
}

func testLinkedBlobFollowsChanges(t *testing.T, l *eventlog.Log) { linkedBlobFollowsChanges(t, l, l) }

// linkedBlobFollowsChanges: a blob lookup on r, asked before each change to
// what it answers, answers the change right after the append on w that
// made it (r and w are one log, or two on one database), under the blob's storage key and under its other digests: a link
// renewed (its time), a move between tiers, content committed (tier
// inline, the bytes), an unlink, a collection, a replay. A log that keeps
// answers (an Exclusive SQLite log, a Follow one) must not show it here. A push of
// small content and its link in one append is served with its bytes and
// the link's time, by the repository it was pushed to only.
func linkedBlobFollowsChanges(t *testing.T, w, r *eventlog.Log) {
	ctx := context.Background()
	h := sha(0xb1)
	alias := "blake3:" + h[7:]
	expect := func(what, repo string, want func(eventlog.Blob) bool) {
		t.Helper()
		for _, d := range []string{h, alias} {
			for _, read := range []bool{false, true} {
				lookup := r.LinkedBlob
				if read {
					lookup = r.LinkedBlobForRead
				}
				b, err := lookup(ctx, repo, d)
				if want == nil {
					if !isNotFound(err) {
						t.Fatalf("%s: lookup of %s in %s (read %v): %+v, %v; want ErrNotFound", what, d, repo, read, b, err)
					}
					continue
				}
				if err != nil || b.SHA256 != h || !want(b) || !read && b.Content != nil {
					t.Fatalf("%s: lookup of %s in %s (read %v): %+v, %v", what, d, repo, read, b, err)
				}
			}
		}
	}
	out := mustAppend(t, w, committed(h), link("r", h))
	expect("committed", "r", func(b eventlog.Blob) bool { return b.Tier == eventlog.TierHot && b.Linked.Equal(out[1].Time) })
	out = mustAppend(t, w, link("r", h))
	expect("linked again", "r", func(b eventlog.Blob) bool { return b.Linked.Equal(out[0].Time) })
	mustAppend(t, w, eventlog.New(eventlog.TypeBlobTiered, "", eventlog.BlobTiered{SHA256: h, Tier: eventlog.TierCold}))
	expect("moved cold", "r", func(b eventlog.Blob) bool { return b.Tier == eventlog.TierCold })
	body := []byte("small content")
	content := withContent(h, body)
	content.Payload = eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: h, BLAKE3: alias, Size: 1, Content: body[:1]}).Payload
	mustAppend(t, w, content)
	expect("committed with its bytes", "r", func(b eventlog.Blob) bool {
		return b.Tier == eventlog.TierInline && (b.Content == nil || bytes.Equal(b.Content, body[:1]))
	})
	mustAppend(t, w, unlink("r", h))
	expect("unlinked", "r", nil)

	// Pushed whole with its link, in another repository.
	x := sha(0xb2)
	out = mustAppend(t, w, withContent(x, body), link("s", x))
	for _, read := range []bool{false, true} {
		lookup := r.LinkedBlob
		if read {
			lookup = r.LinkedBlobForRead
		}
		b, err := lookup(ctx, "s", x)
		if err != nil || b.Tier != eventlog.TierInline || b.Size != int64(len(body)) || !b.Linked.Equal(out[1].Time) ||
			read != (b.Content != nil) || read && !bytes.Equal(b.Content, body) {
			t.Fatalf("a blob pushed whole (read %v): %+v, %v; want tier inline, its size, the link's time, its bytes to a read only", read, b, err)
		}
		if _, err := lookup(ctx, "r", x); !isNotFound(err) {
			t.Fatalf("a blob pushed to s, looked up in r (read %v): %v; want ErrNotFound", read, err)
		}
	}
	// Collected: gone, whatever was asked before.
	mustAppend(t, w, unlink("s", x))
	mark, _ := w.Head(ctx)
	mustAppend(t, w, eventlog.New(eventlog.TypeGCCondemned, "", eventlog.GCCondemned{Run: "t", Mark: mark, Blobs: []string{h, x}}))
	if _, err := r.Blob(ctx, h); !isNotFound(err) {
		t.Fatalf("a condemned blob: %v", err)
	}
	// Linked again after a replay: the rebuilt views answer.
	y := sha(0xb3)
	mustAppend(t, w, withContent(y, body), link("r", y))
	if _, err := r.LinkedBlobForRead(ctx, "r", y); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Replay(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := r.LinkedBlobForRead(ctx, "r", y); err != nil || !bytes.Equal(b.Content, body) {
		t.Fatalf("after a replay: %+v, %v", b, err)
	}
}

func testLinkedBlobUnderChurn(t *testing.T, l *eventlog.Log) { linkedBlobUnderChurn(t, l, l) }

// linkedBlobUnderChurn: lookups on r racing with appends on w that link
// and unlink a blob never leave an answer behind: once an append returns, the
// next lookup answers what it did, however many lookups were in flight
// across it (a kept answer read before the commit and kept after it would
// show here as a blob found after its unlink, or lost after its link).
func linkedBlobUnderChurn(t *testing.T, w, r *eventlog.Log) {
	ctx := context.Background()
	k := sha(0xc5)
	mustAppend(t, w, committed(k))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.LinkedBlob(ctx, "r", k)
				r.LinkedBlob(ctx, "r", "blake3:"+k[7:])
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 150 {
		ev, linked := link("r", k), true
		if i%2 == 1 {
			ev, linked = unlink("r", k), false
		}
		mustAppend(t, w, ev)
		for _, d := range []string{k, "blake3:" + k[7:]} {
			_, err := r.LinkedBlob(ctx, "r", d)
			if linked && err != nil || !linked && !isNotFound(err) {
				t.Fatalf("append %d (linked %v): lookup of %s: %v", i, linked, d, err)
			}
		}
	}
}

func testManifestLookupsFollowChanges(t *testing.T, l *eventlog.Log) {
	manifestLookupsFollowChanges(t, l, l)
}

// manifestLookupsFollowChanges: the manifest lookups of a pull on r (by
// tag, by digest, with and without the bytes), asked before each change
// to what they answer, answer the change right after the append on w that
// made it: a put with its tags, a tag moved, a tag deleted, a manifest
// deleted with the tags pointing at it, a put again without its bytes
// (the log keeps them from before), a manifest pushed under sha512 asked
// for by its sha256 digest, then put under that digest, a replay. A log
// that keeps answers (an Exclusive SQLite log, a Follow one) must not show
// it here, nor answer another repository's rows.
func manifestLookupsFollowChanges(t *testing.T, w, r *eventlog.Log) {
	ctx := context.Background()
	const mt = "application/vnd.oci.image.manifest.v1+json"
	body := func(i int) []byte { return []byte(fmt.Sprintf(`{"schemaVersion":2,"n":%d}`, i)) }
	d1, d2 := sha(0xe1), sha(0xe2)
	put := func(repo, d string, i int, withBytes bool, tags ...string) {
		t.Helper()
		var evs []eventlog.Event
		if withBytes {
			evs = append(evs, withContent(d, body(i)))
		}
		evs = append(evs, eventlog.New(eventlog.TypeManifestPut, repo, eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: mt, Size: int64(len(body(i))), ArtifactType: "x/y"}))
		for _, tag := range tags {
			evs = append(evs, eventlog.New(eventlog.TypeTagSet, repo, eventlog.TagSet{Tag: tag, Digest: d}))
		}
		mustAppend(t, w, evs...)
	}
	// expect asks r by tag (ref without a colon) or digest, each way: d
	// empty wants ErrNotFound, else manifest d with body(i).
	expect := func(what, repo, ref, d string, i int) {
		t.Helper()
		for _, read := range []bool{false, true} {
			var m eventlog.Manifest
			var err error
			switch {
			case !strings.Contains(ref, ":") && read:
				m, err = r.TaggedManifestForRead(ctx, repo, ref)
			case !strings.Contains(ref, ":"):
				m, err = r.TaggedManifest(ctx, repo, ref)
			case read:
				m, err = r.ManifestForRead(ctx, repo, ref)
			default:
				m, err = r.Manifest(ctx, repo, ref)
			}
			if d == "" {
				if !isNotFound(err) {
					t.Fatalf("%s: %s in %s (read %v): %s, %v; want ErrNotFound", what, ref, repo, read, m.Digest, err)
				}
				continue
			}
			if err != nil || m.Repo != repo || m.Digest != d || m.MediaType != mt || m.ArtifactType != "x/y" ||
				m.Size != int64(len(body(i))) || read != (m.Content != nil) || read && !bytes.Equal(m.Content, body(i)) {
				t.Fatalf("%s: %s in %s (read %v): %+v, %v; want %s, its bytes to a read only", what, ref, repo, read, m, err, d)
			}
		}
	}
	put("m", d1, 1, true, "t", "u")
	expect("put with two tags", "m", "t", d1, 1)
	expect("put with two tags", "m", "u", d1, 1)
	expect("put with two tags", "m", d1, d1, 1)
	expect("another repository", "n", "t", "", 0)
	expect("another repository", "n", d1, "", 0)
	put("m", d2, 2, true)
	mustAppend(t, w, eventlog.New(eventlog.TypeTagSet, "m", eventlog.TagSet{Tag: "t", Digest: d2}))
	expect("tag moved", "m", "t", d2, 2)
	expect("the other tag stays", "m", "u", d1, 1)
	mustAppend(t, w, eventlog.New(eventlog.TypeTagDeleted, "m", eventlog.TagDeleted{Tag: "t"}))
	expect("tag deleted", "m", "t", "", 0)
	expect("its manifest stays", "m", d2, d2, 2)
	mustAppend(t, w, eventlog.New(eventlog.TypeManifestDeleted, "m", eventlog.ManifestDeleted{Digest: d1}))
	expect("manifest deleted", "m", d1, "", 0)
	expect("its tag with it", "m", "u", "", 0)
	put("m", d1, 1, false, "u")
	expect("put again without its bytes", "m", "u", d1, 1)
	expect("put again without its bytes", "m", d1, d1, 1)

	// Pushed under sha512; asked for by its sha256 digest, it answers as
	// the row pushed, until a put under that digest answers for itself.
	long := "sha512:" + strings.Repeat("e3", 64)
	key := sha(0xe3)
	mustAppend(t, w, withContent(key, body(3)),
		eventlog.New(eventlog.TypeManifestPut, "m", eventlog.ManifestPut{Digest: long, SHA256: key, MediaType: mt, Size: int64(len(body(3))), ArtifactType: "x/y"}))
	alias := "blake3:" + key[7:]
	expect("pushed under sha512", "m", key, long, 3)
	expect("pushed under sha512, asked for by blake3", "m", alias, long, 3)
	put("m", key, 3, false)
	expect("then under sha256", "m", key, key, 3)
	expect("still under sha512", "m", long, long, 3)
	// The views answer a third digest with the first row in digest order.
	expect("then under sha256, asked for by blake3", "m", alias, key, 3)

	if _, err := r.Replay(ctx); err != nil {
		t.Fatal(err)
	}
	expect("after a replay", "m", "u", d1, 1)
}

// RunFollowing is the contract of a log opened Follow (reader) beside
// another handle on the same database (writer), as replicas are: every
// lookup on reader answers what each append on writer did once that
// append has returned, though reader keeps answers and never appended
// them.
func RunFollowing(t *testing.T, writer, reader *eventlog.Log) {
	t.Run("LinkedBlobFollowsChanges", func(t *testing.T) { linkedBlobFollowsChanges(t, writer, reader) })
	t.Run("LinkedBlobUnderChurn", func(t *testing.T) { linkedBlobUnderChurn(t, writer, reader) })
	t.Run("FarBehind", func(t *testing.T) { followFarBehind(t, writer, reader) })
	t.Run("LargeContent", func(t *testing.T) { followLargeContent(t, writer, reader) })
	t.Run("ManifestLookupsFollowChanges", func(t *testing.T) { manifestLookupsFollowChanges(t, writer, reader) })
}

// followLargeContent: content committed elsewhere, larger than a follower
// reads in its pages (16 KiB), for a blob reader had answered as a file,
// makes reader answer tier inline and the bytes, as the views do; and a
// tag moved elsewhere across manifests with annotations that large is
// answered moved.
func followLargeContent(t *testing.T, w, r *eventlog.Log) {
	ctx := context.Background()
	k := sha(0xd2)
	mustAppend(t, w, committed(k), link("large", k))
	if b, err := r.LinkedBlobForRead(ctx, "large", k); err != nil || b.Tier != eventlog.TierHot {
		t.Fatalf("committed as a file: %+v, %v", b, err)
	}
	body := bytes.Repeat([]byte{7}, 100<<10)
	mustAppend(t, w, withContent(k, body))
	b, err := r.LinkedBlobForRead(ctx, "large", k)
	if err != nil || b.Tier != eventlog.TierInline || !bytes.Equal(b.Content, body) {
		t.Fatalf("after 100 KiB of content committed elsewhere: tier %q, %d bytes, %v; want inline, the 100 KiB", b.Tier, len(b.Content), err)
	}
	// Manifests with annotations larger than a page reads, more of them
	// than a round reads alone, one tag moved across them all.
	const mt = "application/vnd.oci.image.manifest.v1+json"
	ann := map[string]string{"big": strings.Repeat("a", 20<<10)}
	for i := range 12 {
		d := sha(0xd300 + i)
		mustAppend(t, w, committed(d),
			eventlog.New(eventlog.TypeManifestPut, "large", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: mt, Size: 1, Annotations: ann}),
			eventlog.New(eventlog.TypeTagSet, "large", eventlog.TagSet{Tag: "moving", Digest: d}))
		if i%5 == 4 {
			continue // several large puts in one round
		}
		if m, err := r.TaggedManifest(ctx, "large", "moving"); err != nil || m.Digest != d {
			t.Fatalf("tag moved to a manifest with 20 KiB of annotations elsewhere (%d): %s, %v; want %s", i, m.Digest, err, d)
		}
	}
}

// followFarBehind: a reader that looked nothing up while thousands of
// events were appended elsewhere (more than a follower reads before it
// gives up reading and starts again from the head) still answers the
// last of them, an unlink of a blob it had answered before.
func followFarBehind(t *testing.T, w, r *eventlog.Log) {
	ctx := context.Background()
	k := sha(0xd1)
	mustAppend(t, w, committed(k), link("far", k))
	if _, err := r.LinkedBlob(ctx, "far", k); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		evs := make([]eventlog.Event, 500)
		for j := range evs {
			evs[j] = eventlog.New(eventlog.TypeTagSet, "far", eventlog.TagSet{Tag: fmt.Sprint(i*500 + j), Digest: sha(j)})
		}
		mustAppend(t, w, evs...)
	}
	mustAppend(t, w, unlink("far", k))
	if b, err := r.LinkedBlob(ctx, "far", k); !isNotFound(err) {
		t.Fatalf("after 6,000 events and an unlink elsewhere: %+v, %v; want ErrNotFound", b, err)
	}
	mustAppend(t, w, link("far", k))
	if _, err := r.LinkedBlob(ctx, "far", k); err != nil {
		t.Fatalf("linked again: %v", err)
	}
}

// testLinkedBlobsByAnyDigest: the lookup of many digests at once (the
// blobs a manifest names) answers each under the digest it was asked by,
// sha256 or blake3, mixed in one call, with the repository's blobs only;
// and a blob answers by blake3 in Blob and LinkedBlob as by its key,
// though blob_digests maps only the other digests to the key.
func testLinkedBlobsByAnyDigest(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	a, b, other, none := sha(0xa1), sha(0xa2), sha(0xa3), sha(0xa4)
	mustAppend(t, l, committed(a), committed(b), committed(other), link("r", a), link("r", b), link("s", other))
	asked := []string{a, "blake3:" + b[7:], other, "blake3:" + other[7:], none, "blake3:" + none[7:]}
	got, err := l.LinkedBlobs(ctx, "r", asked)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[a].SHA256 != a || got["blake3:"+b[7:]].SHA256 != b || got["blake3:"+b[7:]].BLAKE3 != "blake3:"+b[7:] {
		t.Fatalf("LinkedBlobs(r, %q) = %+v; want %s by its key and %s by its blake3 digest, nothing else", asked, got, a, b)
	}
	for _, d := range []string{b, "blake3:" + b[7:]} {
		if blob, err := l.Blob(ctx, d); err != nil || blob.SHA256 != b {
			t.Fatalf("Blob(%s) = %+v, %v", d, blob, err)
		}
		if blob, err := l.LinkedBlob(ctx, "r", d); err != nil || blob.SHA256 != b {
			t.Fatalf("LinkedBlob(r, %s) = %+v, %v", d, blob, err)
		}
	}
	if _, err := l.Blob(ctx, "blake3:"+none[7:]); !isNotFound(err) {
		t.Fatalf("Blob of a digest never committed: %v; want ErrNotFound", err)
	}
}
