package eventlogtest

import (
	"context"
	"fmt"
	"reflect"
	"testing"

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
	for i := range 5 {
		mustAppend(t, l, start("a", fmt.Sprint("a", i)))
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
