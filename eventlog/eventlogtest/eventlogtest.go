// Package eventlogtest is the contract every event log backend must pass.
// Backends call Run with a constructor for a fresh, empty log.
package eventlogtest

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// Run runs the contract against logs made by open.
func Run(t *testing.T, open func(t *testing.T) *eventlog.Log) {
	t.Run("AppendAndViews", func(t *testing.T) { testAppendAndViews(t, open(t)) })
	t.Run("ReplayEqualsLive", func(t *testing.T) { testReplayEqualsLive(t, open(t)) })
	t.Run("HashChain", func(t *testing.T) { testHashChain(t, open(t)) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, open(t)) })
	t.Run("FailedAppendIsolated", func(t *testing.T) { testFailedAppendIsolated(t, open(t)) })
	t.Run("FailedWriteIsolated", func(t *testing.T) { testFailedWriteIsolated(t, open(t)) })
	t.Run("FailedWriteInOneGroup", func(t *testing.T) { testFailedWriteInOneGroup(t, open(t)) })
	t.Run("ReadFilters", func(t *testing.T) { testReadFilters(t, open(t)) })
	t.Run("ReadBoundedBySize", func(t *testing.T) { testReadBoundedBySize(t, open(t)) })
	t.Run("ReferrerPages", func(t *testing.T) { testReferrerPages(t, open(t)) })
	t.Run("ManifestNamingManyBlobs", func(t *testing.T) { testManifestNamingManyBlobs(t, open(t)) })
	t.Run("NativeTagGuarded", func(t *testing.T) { testNativeTagGuarded(t, open(t)) })
	t.Run("APIKeys", func(t *testing.T) { testAPIKeys(t, open(t)) })
	t.Run("CollectorOrdering", func(t *testing.T) { testCollectorOrdering(t, open(t)) })
	t.Run("RetentionViews", func(t *testing.T) { testRetentionViews(t, open(t)) })
	t.Run("ChangedWakesReaders", func(t *testing.T) { testChangedWakesReaders(t, open(t)) })
	t.Run("ConcurrentReadRecords", func(t *testing.T) { testConcurrentReadRecords(t, open(t)) })
	t.Run("ContentInTheLog", func(t *testing.T) { testContentInTheLog(t, open(t)) })
	t.Run("GroupSeesItsOwnChanges", func(t *testing.T) { testGroupSeesItsOwnChanges(t, open(t)) })
	t.Run("ConcurrentLookups", func(t *testing.T) { testConcurrentLookups(t, open(t)) })
	t.Run("ManifestsIn", func(t *testing.T) { testManifestsIn(t, open(t)) })
	t.Run("LinkedBlobFollowsChanges", func(t *testing.T) { testLinkedBlobFollowsChanges(t, open(t)) })
	t.Run("LinkedBlobUnderChurn", func(t *testing.T) { testLinkedBlobUnderChurn(t, open(t)) })
	t.Run("ManifestLookupsFollowChanges", func(t *testing.T) { testManifestLookupsFollowChanges(t, open(t)) })
	t.Run("LinkedBlobsByAnyDigest", func(t *testing.T) { testLinkedBlobsByAnyDigest(t, open(t)) })
	t.Run("PutTwiceInOneAppend", func(t *testing.T) { testPutTwiceInOneAppend(t, open(t)) })
	t.Run("OpenUploadCounts", func(t *testing.T) { testOpenUploadCounts(t, open(t)) })
	t.Run("EndedUploads", func(t *testing.T) { testEndedUploads(t, open(t)) })
	t.Run("SharedKey", func(t *testing.T) { testSharedKey(t, open(t)) })
	t.Run("TracedAppends", func(t *testing.T) { testTracedAppends(t, open(t)) })
	t.Run("RepositoryOfRefusedAppend", func(t *testing.T) { testRepositoryOfRefusedAppend(t, open(t)) })
	t.Run("ReaderNeverMisses", func(t *testing.T) {
		l := open(t)
		RunOrdering(t, []*eventlog.Log{l}, l)
	})
}

func mustAppend(t *testing.T, l *eventlog.Log, evs ...eventlog.Event) []eventlog.Event {
	t.Helper()
	out, err := l.Append(context.Background(), evs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpAndReplay returns every view row before and after l replays its
// log: a test compares the views it cares about.
func dumpAndReplay(t *testing.T, l *eventlog.Log) (live, replayed map[string][]string) {
	t.Helper()
	ctx := context.Background()
	live, err := l.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Replay(ctx); err != nil {
		t.Fatal(err)
	}
	if replayed, err = l.Dump(ctx); err != nil {
		t.Fatal(err)
	}
	return live, replayed
}

func sha(i int) string { return fmt.Sprintf("sha256:%064x", i) }

// committed records bytes under key, as a blob.committed does before any
// event that needs them (a link, a manifest's bytes, a version).
func committed(key string) eventlog.Event {
	return eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: key, BLAKE3: "blake3:" + key[7:], Size: 1})
}

func testAppendAndViews(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	out := mustAppend(t, l,
		eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: sha(1), BLAKE3: "blake3:" + sha(1)[7:], Size: 10}),
		eventlog.New(eventlog.TypeBlobLinked, "a/b", eventlog.BlobLinked{SHA256: sha(1)}),
		committed(sha(2)),
		eventlog.New(eventlog.TypeManifestPut, "a/b", eventlog.ManifestPut{Digest: sha(2), SHA256: sha(2), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 5, Subject: sha(9), ArtifactType: "x/y", Annotations: map[string]string{"k": "v"}}),
		eventlog.New(eventlog.TypeTagSet, "a/b", eventlog.TagSet{Tag: "v1", Digest: sha(2)}),
	)
	if out[0].Seq != 1 || out[4].Seq != 5 {
		t.Fatalf("sequence numbers %d..%d, want 1..5", out[0].Seq, out[4].Seq)
	}
	if b, err := l.Blob(ctx, "blake3:"+sha(1)[7:]); err != nil || b.SHA256 != sha(1) || b.Size != 10 {
		t.Fatalf("blob by blake3 = %+v, %v", b, err)
	}
	if ok, _ := l.Linked(ctx, "a/b", sha(1)); !ok {
		t.Fatal("blob not linked")
	}
	if d, err := l.Tag(ctx, "a/b", "v1"); err != nil || d != sha(2) {
		t.Fatalf("tag = %q, %v", d, err)
	}
	refs, _, err := l.Referrers(ctx, eventlog.ReferrersQuery{Repo: "a/b", Subject: sha(9)})
	if err != nil || len(refs) != 1 || refs[0].Annotations["k"] != "v" || refs[0].ArtifactType != "x/y" {
		t.Fatalf("referrers = %+v, %v", refs, err)
	}
	if refs, _, _ := l.Referrers(ctx, eventlog.ReferrersQuery{Repo: "a/b", Subject: sha(9), ArtifactType: "other"}); len(refs) != 0 {
		t.Fatalf("filtered referrers = %+v", refs)
	}
	mustAppend(t, l, eventlog.New(eventlog.TypeManifestDeleted, "a/b", eventlog.ManifestDeleted{Digest: sha(2)}))
	if _, err := l.Tag(ctx, "a/b", "v1"); err == nil {
		t.Fatal("tag survived deletion of its manifest")
	}
	if refs, _, _ := l.Referrers(ctx, eventlog.ReferrersQuery{Repo: "a/b", Subject: sha(9)}); len(refs) != 0 {
		t.Fatalf("referrer survived deletion: %+v", refs)
	}
	if repos, _ := l.Repositories(ctx, "", -1); !reflect.DeepEqual(repos, []string{"a/b"}) {
		t.Fatalf("repositories = %v", repos)
	}
}

// testReplayEqualsLive drives a random sequence of pushes, tags, re-tags and
// deletes, then rebuilds the views from the log and compares.
func testReplayEqualsLive(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(42))
	repos := []string{"r/one", "r/two", "three"}
	for i := range 30 {
		mustAppend(t, l, committed(sha(1000+i)))
	}
	for i := 0; i < 400; i++ {
		repo := repos[rng.Intn(len(repos))]
		m := sha(1000 + rng.Intn(30))
		var ev eventlog.Event
		switch rng.Intn(8) {
		case 0:
			b := sha(rng.Intn(50))
			mustAppend(t, l, eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: b, BLAKE3: "blake3:" + b[7:], Size: int64(rng.Intn(1000))}))
			ev = eventlog.New(eventlog.TypeBlobLinked, repo, eventlog.BlobLinked{SHA256: b})
		case 1:
			ev = eventlog.New(eventlog.TypeBlobUnlinked, repo, eventlog.BlobUnlinked{SHA256: sha(rng.Intn(50))})
		case 2, 3:
			subj := ""
			if rng.Intn(3) == 0 {
				subj = sha(1000 + rng.Intn(30))
			}
			ev = eventlog.New(eventlog.TypeManifestPut, repo, eventlog.ManifestPut{Digest: m, SHA256: m, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 100, Subject: subj})
		case 4, 5:
			ev = eventlog.New(eventlog.TypeTagSet, repo, eventlog.TagSet{Tag: fmt.Sprintf("t%d", rng.Intn(10)), Digest: m})
		case 6:
			ev = eventlog.New(eventlog.TypeTagDeleted, repo, eventlog.TagDeleted{Tag: fmt.Sprintf("t%d", rng.Intn(10))})
		case 7:
			ev = eventlog.New(eventlog.TypeManifestDeleted, repo, eventlog.ManifestDeleted{Digest: m})
		}
		mustAppend(t, l, ev)
		if i%50 == 0 {
			id := fmt.Sprintf("up%d", i)
			mustAppend(t, l, eventlog.New(eventlog.TypeUploadStarted, repo, eventlog.UploadStarted{ID: id}))
			if rng.Intn(2) == 0 {
				mustAppend(t, l, eventlog.New(eventlog.TypeUploadCancelled, repo, eventlog.UploadCancelled{ID: id, Reason: "test"}))
			}
		}
	}
	live, err := l.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live["tags"]) == 0 || len(live["manifests"]) == 0 || len(live["blob_links"]) == 0 {
		t.Fatalf("random sequence left too little state to compare: %d tags, %d manifests", len(live["tags"]), len(live["manifests"]))
	}
	n, err := l.Replay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 400 {
		t.Fatalf("replayed %d events", n)
	}
	replayed, err := l.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(live, replayed) {
		for view := range live {
			if !reflect.DeepEqual(live[view], replayed[view]) {
				t.Errorf("view %s differs after replay:\nlive     %v\nreplayed %v", view, live[view], replayed[view])
			}
		}
	}
}

func testHashChain(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	var prev []byte
	for i := 0; i < 5; i++ {
		out := mustAppend(t, l, eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "t", Digest: sha(i)}))
		if prev != nil && string(out[0].PrevHash) != string(prev) {
			t.Fatalf("event %d does not chain to its predecessor", out[0].Seq)
		}
		prev = out[0].Hash
	}
	n, bad, err := l.VerifyChain(ctx)
	if err != nil || n != 5 || len(bad) != 0 {
		t.Fatalf("verify = %d events, %v, %v", n, bad, err)
	}
}

func testConcurrentWriters(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := l.Append(ctx, eventlog.New(eventlog.TypeTagSet, fmt.Sprintf("w%d", w), eventlog.TagSet{Tag: fmt.Sprint(i), Digest: sha(i)})); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var seqs []int64
	l.Events(ctx, 0, func(e eventlog.Event) error { seqs = append(seqs, e.Seq); return nil })
	if len(seqs) != writers*each {
		t.Fatalf("%d events, want %d", len(seqs), writers*each)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("sequence has a gap at %d: %d", i+1, s)
		}
	}
	if _, bad, _ := l.VerifyChain(ctx); len(bad) != 0 {
		t.Fatalf("chain broken under concurrency: %v", bad)
	}
}

// testFailedAppendIsolated mixes appends that cannot be applied into a
// stream of concurrent good ones: the bad ones fail alone, with nothing of
// theirs recorded, and the good ones land with gap-free sequence numbers.
func testFailedAppendIsolated(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	good, bad := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			evs := []eventlog.Event{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: fmt.Sprint(i), Digest: sha(i)})}
			if i%7 == 0 {
				// A valid first event and an unappliable second: both or neither.
				evs = append(evs, eventlog.Event{Type: "no.such.type", Repo: "r", Payload: []byte("{}")})
			}
			_, err := l.Append(ctx, evs...)
			mu.Lock()
			defer mu.Unlock()
			if (err != nil) != (i%7 == 0) {
				t.Errorf("append %d: err = %v", i, err)
			}
			if err == nil {
				good++
			} else {
				bad++
			}
		}(i)
	}
	wg.Wait()
	var seqs []int64
	l.Events(ctx, 0, func(e eventlog.Event) error { seqs = append(seqs, e.Seq); return nil })
	if len(seqs) != good {
		t.Fatalf("%d events recorded for %d good appends (%d bad)", len(seqs), good, bad)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("gap at %d: %d", i+1, s)
		}
	}
	tags, _ := l.Tags(ctx, "r", "", -1)
	if len(tags) != good {
		t.Fatalf("%d tags for %d good appends", len(tags), good)
	}
	if _, broken, _ := l.VerifyChain(ctx); len(broken) != 0 {
		t.Fatalf("chain broken: %v", broken)
	}
}

// testFailedWriteIsolated is testFailedAppendIsolated for appends that
// fail in the database rather than before it: a second upload.started of
// one id breaks the uploads view's key when its row is written. Where the
// log pipelines writes (PostgreSQL), such a failure surfaces only when the
// append's writes are sent; it must still fail that append alone.
func testFailedWriteIsolated(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	const n = 120
	var wg sync.WaitGroup
	var mu sync.Mutex
	good, dupsOK := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("u%d", i)
			if i%6 == 0 {
				id = "dup"
			}
			_, err := l.Append(ctx,
				eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: fmt.Sprint(i), Digest: sha(i)}),
				eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: id}))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				good++
				if id == "dup" {
					dupsOK++
				}
			case id != "dup":
				t.Errorf("append %d (a fresh upload id) failed: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if dupsOK != 1 {
		t.Fatalf("%d appends of upload id \"dup\" succeeded; want exactly one", dupsOK)
	}
	var seqs []int64
	l.Events(ctx, 0, func(e eventlog.Event) error { seqs = append(seqs, e.Seq); return nil })
	if len(seqs) != 2*good {
		t.Fatalf("%d events recorded for %d good appends of two events", len(seqs), good)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("gap at %d: %d", i+1, s)
		}
	}
	tags, _ := l.Tags(ctx, "r", "", -1)
	ups, _ := l.Uploads(ctx)
	if len(tags) != good || len(ups) != good {
		t.Fatalf("%d tags and %d uploads for %d good appends: a failed append left half its writes", len(tags), len(ups), good)
	}
	if _, broken, _ := l.VerifyChain(ctx); len(broken) != 0 {
		t.Fatalf("chain broken: %v", broken)
	}
}

func testReadFilters(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		repo := []string{"a", "b"}[i%2]
		mustAppend(t, l, eventlog.New(eventlog.TypeTagSet, repo, eventlog.TagSet{Tag: fmt.Sprint(i), Digest: sha(i)}))
		mustAppend(t, l, eventlog.New(eventlog.TypeTagDeleted, repo, eventlog.TagDeleted{Tag: fmt.Sprint(i)}))
	}
	if h, err := l.Head(ctx); err != nil || h != 20 {
		t.Fatalf("head = %d, %v", h, err)
	}
	p, err := l.Read(ctx, eventlog.Query{After: 0, Limit: 3})
	if err != nil || len(p.Events) != 3 || p.Events[0].Seq != 1 || p.Next != 3 {
		t.Fatalf("first page: %d events, next %d, %v", len(p.Events), p.Next, err)
	}
	p, _ = l.Read(ctx, eventlog.Query{After: 2, Repo: "b", Types: []string{string(eventlog.TypeTagSet)}})
	if len(p.Events) != 5 || p.Next != 20 {
		t.Fatalf("filtered: %d events, next %d", len(p.Events), p.Next)
	}
	for _, e := range p.Events {
		if e.Repo != "b" || e.Type != eventlog.TypeTagSet {
			t.Fatalf("filter let through %s %s", e.Repo, e.Type)
		}
	}
	p, _ = l.Read(ctx, eventlog.Query{After: 20})
	if len(p.Events) != 0 || p.Next != 20 {
		t.Fatalf("at head: %d events, next %d", len(p.Events), p.Next)
	}
}

func testChangedWakesReaders(t *testing.T, l *eventlog.Log) {
	ch := l.Changed()
	mustAppend(t, l, eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "t", Digest: sha(1)}))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("an append did not wake a waiting reader")
	}
}

// RunOrdering appends from many goroutines spread over writers (handles on
// one database, as replicas are) while a reader follows the log with Read
// from where it left off. The reader must see every event exactly once, in
// order, with no gaps: no event commits behind a reader's back.
func RunOrdering(t *testing.T, writers []*eventlog.Log, reader *eventlog.Log) {
	ctx := context.Background()
	const goroutines, each = 16, 30
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			l := writers[g%len(writers)]
			for i := 0; i < each; i++ {
				if _, err := l.Append(ctx, eventlog.New(eventlog.TypeTagSet, "o", eventlog.TagSet{Tag: fmt.Sprint(g), Digest: sha(i)})); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []int64
	after := int64(0)
	deadline := time.After(60 * time.Second)
	for len(seen) < goroutines*each {
		ch := reader.Changed()
		p, err := reader.Read(ctx, eventlog.Query{After: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			seen = append(seen, e.Seq)
		}
		after = p.Next
		if len(p.Events) > 0 {
			continue
		}
		select {
		case <-ch:
		case <-done:
		case <-time.After(50 * time.Millisecond): // other handles' commits wake only via the backend
		case <-deadline:
			t.Fatalf("reader saw %d of %d events", len(seen), goroutines*each)
		}
	}
	for i, s := range seen {
		if s != int64(i+1) {
			t.Fatalf("reader saw sequence %d at position %d: an event was missed or repeated", s, i+1)
		}
	}
}

// testConcurrentReadRecords: replicas flush the reads they noted at the
// same time, often of the same blobs; no flush may fail (a deadlock
// between two of them, on PostgreSQL, did).
func testConcurrentReadRecords(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	const flushers, rounds, blobs = 4, 10, 100
	var wg sync.WaitGroup
	for f := 0; f < flushers; f++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				reads := map[string]time.Time{}
				now := time.Now()
				for i := 0; i < blobs; i++ {
					reads[sha(i)] = now
				}
				if err := l.RecordReads(ctx, reads); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// testFailedWriteInOneGroup: appends committed together (AppendEach) where
// one fails in the database, in the middle: the group's first attempt,
// without savepoints, must not record or fail the others. Where writes
// are pipelined (PostgreSQL), the failure surfaces only when they are
// sent, after the last append of the attempt.
func testFailedWriteInOneGroup(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	started := func(id string) []eventlog.Event {
		return []eventlog.Event{eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: id})}
	}
	mustAppend(t, l, started("taken")...)
	for round := range 3 { // the later rounds: groups just after a failure
		tag := func(i int) []eventlog.Event {
			return []eventlog.Event{eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: fmt.Sprint(round, "-", i), Digest: sha(i)})}
		}
		dup := append(tag(9), started("taken")...) // its tag and a second start of one id: both or neither
		_, errs := l.AppendEach(ctx, tag(1), tag(2), dup, tag(3))
		if errs[0] != nil || errs[1] != nil || errs[2] == nil || errs[3] != nil {
			t.Fatalf("round %d: errors %v; want only the third append's", round, errs)
		}
	}
	tags, err := l.Tags(ctx, "r", "", -1)
	if err != nil || len(tags) != 9 {
		t.Fatalf("tags %v, %v; want the 9 of the good appends, none of the failed ones", tags, err)
	}
	if _, broken, _ := l.VerifyChain(ctx); len(broken) != 0 {
		t.Fatalf("chain broken: %v", broken)
	}
}
