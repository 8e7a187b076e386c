package eventlog

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	_ "modernc.org/sqlite"
)

// TestCommitterKeepsItsConnection: with CommitterSetup, group commits run
// on one connection set up once (SQLite: statement journals in memory),
// while the pool's connections keep SQLite's default (temporary files on
// disk, so that a large sort does not grow the heap).
func TestCommitterKeepsItsConnection(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "log.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	setup := "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000" // as eventlog/sqlite's, two statements
	l, err := Open(ctx, db, Dialect{Name: "sqlite", CommitterSetup: setup}, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	for w := range 8 { // concurrent, so that groups hold several appends, each behind a savepoint
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := l.Append(ctx, New(TypeTagSet, fmt.Sprintf("r%d", w), TagSet{Tag: fmt.Sprint(i), Digest: fmt.Sprintf("sha256:%064x", i)})); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tags`).Scan(&n); err != nil || n != 160 {
		t.Fatalf("tags = %d, %v; want 160", n, err)
	}
	first := l.committerConn
	if first == nil {
		t.Fatal("the committer keeps no connection of its own")
	}
	var store int
	if err := first.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&store); err != nil || store != 2 {
		t.Fatalf("committer's connection: temp_store %d, %v; want 2 (MEMORY)", store, err)
	}
	var pages int
	if err := first.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil || pages != 10000 {
		t.Fatalf("committer's connection: wal_autocheckpoint %d, %v; want 10000 (the setup's second statement)", pages, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&store); err != nil || store != 0 {
		t.Fatalf("a pool connection: temp_store %d, %v; want 0 (the default)", store, err)
	}
	if _, err := l.Append(ctx, New(TypeTagSet, "r0", TagSet{Tag: "again", Digest: fmt.Sprintf("sha256:%064x", 1)})); err != nil {
		t.Fatal(err)
	}
	if l.committerConn != first {
		t.Fatal("the committer took another connection for its next group")
	}
}

// TestGroupWithoutSavepointsUntilOneFails: a group
// holding a failing append still records the others, and only them
// (the attempt without savepoints is abandoned, the group run again with
// them); the groups after it take savepoints from the start for a while.
func TestGroupWithoutSavepointsUntilOneFails(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "log.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, db, Dialect{Name: "sqlite"}, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tag := func(name string) []Event {
		return []Event{New(TypeTagSet, "r", TagSet{Tag: name, Digest: fmt.Sprintf("sha256:%064x", 1)})}
	}
	bad := []Event{tag("half")[0], {Type: "no.such.type", Repo: "r", Payload: []byte("{}")}}
	// One group (AppendEach commits its batches together), all good: no
	// failure, nothing to isolate later.
	if _, errs := l.AppendEach(ctx, tag("a"), tag("b")); errs[0] != nil || errs[1] != nil {
		t.Fatalf("good group: %v", errs)
	}
	if l.isolateNext != 0 {
		t.Fatalf("after a good group, %d groups to isolate; want 0", l.isolateNext)
	}
	outs, errs := l.AppendEach(ctx, tag("c"), bad, tag("d"))
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("group with a failing append: errors %v; want only the second", errs)
	}
	if outs[0][0].Seq != 3 || outs[2][0].Seq != 4 {
		t.Fatalf("good appends of the group recorded as %d and %d; want 3 and 4", outs[0][0].Seq, outs[2][0].Seq)
	}
	tags, err := l.Tags(ctx, "r", "", -1)
	if err != nil || len(tags) != 4 {
		t.Fatalf("tags %v, %v; want a, b, c, d (nothing of the failed append)", tags, err)
	}
	if l.isolateNext != isolateAfterFailure {
		t.Fatalf("after a failure, %d groups to isolate; want %d", l.isolateNext, isolateAfterFailure)
	}
	if _, errs := l.AppendEach(ctx, tag("e"), tag("f")); errs[0] != nil || errs[1] != nil {
		t.Fatalf("good group after: %v", errs)
	}
	if l.isolateNext != isolateAfterFailure-1 {
		t.Fatalf("a group later, %d groups to isolate; want %d", l.isolateNext, isolateAfterFailure-1)
	}
}
