package eventlogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testOpenUploadCounts: OpenUploads counts the sessions open in a
// repository and in all of them through starts, finishes, cancels and an
// end recorded twice (a session already ended counts nowhere), and
// replay rebuilds the counts exactly.
func testOpenUploadCounts(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	want := func(repo string, inRepo, total int) {
		t.Helper()
		if r, n, err := l.OpenUploads(ctx, repo); err != nil || r != inRepo || n != total {
			t.Fatalf("OpenUploads(%q) = %d, %d, %v; want %d, %d", repo, r, n, err, inRepo, total)
		}
	}
	start := func(repo, id string) eventlog.Event {
		return eventlog.New(eventlog.TypeUploadStarted, repo, eventlog.UploadStarted{ID: id})
	}
	want("a", 0, 0)
	// UploadsChanged moves with the appends that may change the counts,
	// and not with a push that ends a session never recorded.
	gen := l.UploadsChanged()
	mustAppend(t, l, unrecordedEnd("never-recorded"))
	if l.UploadsChanged() != gen {
		t.Errorf("UploadsChanged moved for the end of a session never recorded")
	}
	for i := range 5 {
		mustAppend(t, l, start("a", fmt.Sprint("a", i)))
	}
	if l.UploadsChanged() != gen+5 {
		t.Errorf("UploadsChanged after 5 upload.started: %d, want %d", l.UploadsChanged(), gen+5)
	}
	mustAppend(t, l, start("b", "b0"), start("b", "b1"), start("a/b", "ab0"))
	want("a", 5, 8)
	want("b", 2, 8)
	want("a/b", 1, 8)
	want("c", 0, 8)
	mustAppend(t, l, eventlog.New(eventlog.TypeUploadFinished, "a", eventlog.UploadFinished{ID: "a0"}),
		eventlog.New(eventlog.TypeUploadCancelled, "a", eventlog.UploadCancelled{ID: "a1", Reason: "test"}),
		eventlog.New(eventlog.TypeUploadCancelled, "b", eventlog.UploadCancelled{ID: "b0", Reason: "test"}))
	want("a", 3, 5)
	want("b", 1, 5)
	// An end recorded for a session already ended, or never started,
	// changes nothing, if the log lets it through at all.
	l.Append(ctx, eventlog.New(eventlog.TypeUploadCancelled, "a", eventlog.UploadCancelled{ID: "a1", Reason: "again"}))
	l.Append(ctx, eventlog.New(eventlog.TypeUploadCancelled, "a", eventlog.UploadCancelled{ID: "nobody", Reason: "test"}))
	want("a", 3, 5)
	live, replayed := dumpAndReplay(t, l)
	if !reflect.DeepEqual(live["upload_counts"], replayed["upload_counts"]) || len(live["upload_counts"]) != 4 {
		t.Fatalf("upload_counts live %q, replayed %q; want a row for a, b, a/b and the total", live["upload_counts"], replayed["upload_counts"])
	}
	// Every session ended: no count is left, not even the total's.
	for _, id := range []string{"a2", "a3", "a4", "b1", "ab0"} {
		mustAppend(t, l, eventlog.New(eventlog.TypeUploadCancelled, "", eventlog.UploadCancelled{ID: id, Reason: "test"}))
	}
	want("a", 0, 0)
	// A session without a repository (the library allows one) counts in
	// the total once.
	mustAppend(t, l, start("", "none"))
	want("a", 0, 1)
	mustAppend(t, l, eventlog.New(eventlog.TypeUploadFinished, "", eventlog.UploadFinished{ID: "none"}))
	want("a", 0, 0)
	live, replayed = dumpAndReplay(t, l)
	if len(live["upload_counts"]) != 0 || len(replayed["upload_counts"]) != 0 {
		t.Fatalf("upload_counts live %q, replayed %q; want none", live["upload_counts"], replayed["upload_counts"])
	}
}

// testEndedUploads: an end whose id stays valid past the event makes
// Upload answer ErrUploadEnded (an ErrNotFound) until the id expires, for
// sessions recorded or not; other ends leave a plain ErrNotFound; the ids
// expired by a later end's time are dropped; replay rebuilds the view.
func testEndedUploads(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	state := func(id string) string {
		t.Helper()
		_, err := l.Upload(ctx, id)
		switch {
		case err == nil:
			return "open"
		case errors.Is(err, eventlog.ErrUploadEnded) && errors.Is(err, eventlog.ErrNotFound):
			return "ended"
		case errors.Is(err, eventlog.ErrNotFound):
			return "unknown"
		}
		t.Fatalf("Upload(%s): %v", id, err)
		return ""
	}
	until := func(d time.Duration) eventlog.SessionEnd {
		return eventlog.SessionEnd{IDExpires: time.Now().Add(d).UnixNano()}
	}
	finish := func(id string, end eventlog.SessionEnd) eventlog.Event {
		return eventlog.New(eventlog.TypeUploadFinished, "r", eventlog.UploadFinished{ID: id, SHA256: "00", SessionEnd: end})
	}
	cancel := func(id string, end eventlog.SessionEnd) eventlog.Event {
		return eventlog.New(eventlog.TypeUploadCancelled, "r", eventlog.UploadCancelled{ID: id, Reason: "test", SessionEnd: end})
	}
	mustAppend(t, l, eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "started"}),
		eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "open"}))
	// The short-lived id must outlive the append that records it, which
	// on a loaded machine and a followed PostgreSQL log can take most of
	// a second; the wait below is for its expiry, not a fixed time.
	short := until(3 * time.Second)
	mustAppend(t, l, finish("unrecorded", until(time.Hour)), cancel("cancelled", until(time.Hour)),
		finish("started", until(time.Hour)), cancel("old", eventlog.SessionEnd{}), finish("expired", until(-time.Second)),
		finish("short", short))
	for id, want := range map[string]string{"unrecorded": "ended", "cancelled": "ended", "started": "ended", "short": "ended",
		"old": "unknown", "expired": "unknown", "open": "open", "never": "unknown"} {
		if got := state(id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if _, n, _ := l.OpenUploads(ctx, "r"); n != 1 {
		t.Errorf("open sessions: %d, want 1 (ends of unrecorded sessions count nowhere)", n)
	}
	// An ended session is not started again.
	head, _ := l.Head(ctx)
	_, err := l.Append(ctx, eventlog.New(eventlog.TypeUploadStarted, "r", eventlog.UploadStarted{ID: "unrecorded"}))
	if !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("upload.started of an ended session: %v, want ErrConflict", err)
	}
	if after, _ := l.Head(ctx); state("unrecorded") != "ended" || after != head {
		t.Fatalf("after a refused start: %s, head %d, want ended and %d", state("unrecorded"), after, head)
	}
	// An end that says the session was never recorded is refused for a
	// recorded session and an ended one, and the log is unchanged.
	for _, id := range []string{"open", "cancelled", "unrecorded"} {
		if _, err := l.Append(ctx, unrecordedEnd(id)); !errors.Is(err, eventlog.ErrUploadTaken) || !errors.Is(err, eventlog.ErrConflict) {
			t.Errorf("an unrecorded end of session %s: %v, want ErrUploadTaken (and ErrConflict)", id, err)
		}
	}
	if after, _ := l.Head(ctx); after != head || state("open") != "open" {
		t.Fatalf("after refused ends: head %d, open is %s; want %d and open", after, state("open"), head)
	}
	// Ended again, later: the first end's expiry stands.
	mustAppend(t, l, cancel("unrecorded", until(2*time.Hour)))
	live, replayed := dumpAndReplay(t, l)
	if !reflect.DeepEqual(live["ended_uploads"], replayed["ended_uploads"]) || len(live["ended_uploads"]) != 4 {
		t.Fatalf("ended_uploads live %q, replayed %q; want the 4 ended ids", live["ended_uploads"], replayed["ended_uploads"])
	}
	// Past its expiry, the next end drops the short-lived id.
	time.Sleep(time.Until(time.Unix(0, short.IDExpires)) + 10*time.Millisecond)
	mustAppend(t, l, finish("later", until(time.Hour)))
	if got := state("short"); got != "unknown" {
		t.Errorf("short, after its expiry and a later end: %s, want unknown", got)
	}
	if got := state("unrecorded"); got != "ended" {
		t.Errorf("unrecorded: %s, want ended", got)
	}
	live, replayed = dumpAndReplay(t, l)
	if !reflect.DeepEqual(live["ended_uploads"], replayed["ended_uploads"]) || len(live["ended_uploads"]) != 4 {
		t.Fatalf("ended_uploads live %q, replayed %q; want 4 rows", live["ended_uploads"], replayed["ended_uploads"])
	}
}

// testSharedKey: SharedKey makes one 32-byte key per purpose, the same for
// every caller, including callers racing to make it.
func testSharedKey(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := l.SharedKey(ctx, "a")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Fatalf("keys %x, want one 32-byte key", keys)
		}
	}
	again, err := l.SharedKey(ctx, "a")
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("again: %x, %v; want %x", again, err, keys[0])
	}
	other, err := l.SharedKey(ctx, "b")
	if err != nil || len(other) != 32 || bytes.Equal(other, keys[0]) {
		t.Fatalf("another purpose: %x, %v; want a key of its own", other, err)
	}
	// Replay rebuilds views; keys are not one.
	if _, err := l.Replay(ctx); err != nil {
		t.Fatal(err)
	}
	if k, err := l.SharedKey(ctx, "a"); err != nil || !bytes.Equal(k, keys[0]) {
		t.Fatalf("after replay: %x, %v; want %x", k, err, keys[0])
	}
}
