package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testReadBoundedBySize: MaxBytes ends a page by size, Next continues it
// without a gap, MaxPayload leaves big payloads out (Event has them
// whole), and a single event larger than the bound still makes a page.
func testReadBoundedBySize(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	pad := func(n int) map[string]string { return map[string]string{"pad": strings.Repeat("x", n)} }
	// The manifests' bytes first, so that the puts are events 13 to 24.
	var bytes []eventlog.Event
	for i := 1; i <= 12; i++ {
		bytes = append(bytes, committed(sha(i)))
	}
	mustAppend(t, l, bytes...)
	const base = 12
	for i := 1; i <= 12; i++ {
		size := 1000
		if i == 5 {
			size = 50_000 // the one big payload
		}
		mustAppend(t, l, eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: sha(i), SHA256: sha(i), MediaType: "m", Size: 1, Annotations: pad(size)}))
	}
	// Each small event costs about 1 KiB + EventOverhead: 3 fit in 3 KiB.
	var seen []int64
	after := int64(base)
	for pages := 0; pages < 20 && after < base+12; pages++ {
		p, err := l.Read(ctx, eventlog.Query{After: after, Limit: 100, MaxBytes: 3 << 10, MaxPayload: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) == 0 || len(p.Events) > 4 {
			t.Fatalf("page after %d: %d events, want 1 to 4", after, len(p.Events))
		}
		for _, e := range p.Events {
			seen = append(seen, e.Seq)
			if e.Seq == base+5 {
				if e.Payload != nil || e.PayloadSize < 50_000 {
					t.Fatalf("big payload: %d bytes read, size %d; want it left out with its size", len(e.Payload), e.PayloadSize)
				}
			} else if int64(len(e.Payload)) != e.PayloadSize || e.PayloadSize < 1000 {
				t.Fatalf("event %d: payload %d bytes, size %d", e.Seq, len(e.Payload), e.PayloadSize)
			}
		}
		if p.More != (p.Next < base+12) {
			t.Fatalf("page after %d: More %v with Next %d of 12", after, p.More, p.Next)
		}
		after = p.Next
	}
	for i, s := range seen {
		if s != int64(base+i+1) {
			t.Fatalf("pages gave %v: a gap or a repeat", seen)
		}
	}
	if len(seen) != 12 {
		t.Fatalf("pages gave %d of 12 events", len(seen))
	}
	// Without MaxPayload, a page bound below one event still holds one.
	p, err := l.Read(ctx, eventlog.Query{After: base + 4, Limit: 100, MaxBytes: 1})
	if err != nil || len(p.Events) != 1 || p.Events[0].Seq != base+5 || len(p.Events[0].Payload) < 50_000 || p.Next != base+5 || !p.More {
		t.Fatalf("tiny bound: %d events, next %d, more %v, %v", len(p.Events), p.Next, p.More, err)
	}
	e, err := l.Event(ctx, base+5)
	if err != nil || e.Seq != base+5 || len(e.Payload) < 50_000 || int64(len(e.Payload)) != e.PayloadSize || len(e.Hash) != 32 {
		t.Fatalf("Event(5) = seq %d, %d bytes, %v", e.Seq, len(e.Payload), err)
	}
	if _, err := l.Event(ctx, base+13); !isNotFound(err) {
		t.Fatalf("Event(%d): %v, want ErrNotFound", base+13, err)
	}
}

// testReferrerPages walks a subject's referrers page by page, by count and
// by size, and checks every one comes exactly once, in digest order.
func testReferrerPages(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	const n = 25
	for i := 0; i < n; i++ {
		ann := map[string]string{"i": fmt.Sprint(i)}
		if i%5 == 0 {
			ann["pad"] = strings.Repeat("y", 2000)
		}
		at := "a/x"
		if i%2 == 1 {
			at = "a/y"
		}
		mustAppend(t, l, committed(sha(100+i)), eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: sha(100 + i), SHA256: sha(100 + i), MediaType: "m", Size: 1, Subject: sha(1), ArtifactType: at, Annotations: ann}))
	}
	walk := func(q eventlog.ReferrersQuery) []string {
		var got []string
		for pages := 0; pages <= n; pages++ {
			ms, more, err := l.Referrers(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) > q.Limit {
				t.Fatalf("page of %d, limit %d", len(ms), q.Limit)
			}
			for _, m := range ms {
				got = append(got, m.Digest)
			}
			if !more {
				return got
			}
			if len(ms) == 0 {
				t.Fatal("an empty page says more follow")
			}
			q.After = ms[len(ms)-1].Digest
		}
		t.Fatalf("no end after %d pages", n+1)
		return nil
	}
	check := func(got []string, want func(i int) bool) {
		t.Helper()
		var exp []string
		for i := 0; i < n; i++ {
			if want(i) {
				exp = append(exp, sha(100+i))
			}
		}
		if strings.Join(got, ",") != strings.Join(exp, ",") {
			t.Fatalf("walked %d referrers %v, want %d", len(got), got, len(exp))
		}
	}
	check(walk(eventlog.ReferrersQuery{Repo: "r", Subject: sha(1), Limit: 4}), func(int) bool { return true })
	check(walk(eventlog.ReferrersQuery{Repo: "r", Subject: sha(1), Limit: 100, MaxBytes: 3000}), func(int) bool { return true })
	check(walk(eventlog.ReferrersQuery{Repo: "r", Subject: sha(1), ArtifactType: "a/y", Limit: 3}), func(i int) bool { return i%2 == 1 })
	if ms, more, err := l.Referrers(ctx, eventlog.ReferrersQuery{Repo: "r", Subject: sha(1), Limit: n}); err != nil || len(ms) != n || more {
		t.Fatalf("exact page: %d, more %v, %v", len(ms), more, err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, eventlog.ErrNotFound) }
