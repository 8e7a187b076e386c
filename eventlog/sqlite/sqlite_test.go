package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/eventlogtest"
)

func TestContract(t *testing.T) {
	for _, exclusive := range []bool{false, true} { // true: lookups cached
		t.Run(map[bool]string{false: "shared", true: "exclusive"}[exclusive], func(t *testing.T) {
			eventlogtest.Run(t, func(t *testing.T) *eventlog.Log {
				l, err := Open(context.Background(), filepath.Join(t.TempDir(), "log.db"), Options{Exclusive: exclusive})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				return l
			})
		})
	}
}

// TestTamperDetected edits a stored event behind the log's back and expects
// VerifyChain to name it.
func TestTamperDetected(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "t", Digest: "sha256:00"})); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE events SET payload = '{"tag":"evil","digest":"sha256:00"}' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, bad, err := l.VerifyChain(ctx)
	if err != nil || len(bad) != 1 || bad[0].Seq != 2 {
		t.Fatalf("VerifyChain = %v, %v; want one error at event 2", bad, err)
	}
	if _, err := l.Replay(ctx); err == nil || !strings.Contains(err.Error(), "event 2") {
		t.Fatalf("Replay of a tampered log: %v; want a refusal naming event 2", err)
	}
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l, _ := Open(ctx, path, Options{})
	l.Append(ctx, eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "t", Digest: "sha256:00"}))
	l.Close()
	l, err := Open(ctx, path, Options{}) // migrations must be a no-op the second time
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if d, err := l.Tag(ctx, "r", "t"); err != nil || d != "sha256:00" {
		t.Fatalf("tag after reopen = %q, %v", d, err)
	}
}

// TestConnectionsBoundTheirCache: every pooled connection, not only the
// first, has its page cache bounded (each keeps its own, outside the Go
// heap, so the default multiplied by a busy pool's size showed in the
// server's resident memory).
func TestConnectionsBoundTheirCache(t *testing.T) {
	ctx := context.Background()
	db, err := connect(ctx, filepath.Join(t.TempDir(), "log.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var conns []*sql.Conn
	for range 4 { // held at once: four distinct connections
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for i, c := range conns {
		var kib int
		if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&kib); err != nil {
			t.Fatal(err)
		}
		if kib != -cacheKiB {
			t.Errorf("connection %d: cache_size %d, want %d (KiB, negative)", i, kib, -cacheKiB)
		}
	}
}

// TestCheckpointsInBackground: the log's pages reach the database file
// without the committer checkpointing them (its own threshold is far
// above what is appended here): while commits go on, and for the last
// few of them once the log has been quiet.
func TestCheckpointsInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	next := 0
	push := func(blobs, each int) {
		for range blobs {
			next++
			key := fmt.Sprintf("sha256:%064x", next)
			content := bytes.Repeat([]byte{byte(next)}, each)
			if _, err := l.Append(ctx, eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: key, BLAKE3: "blake3:" + key[7:], Size: int64(each), Content: content})); err != nil {
				t.Fatal(err)
			}
		}
	}
	// grows waits until the file holds at least want bytes more than from.
	grows := func(what string, from, want int64) int64 {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if s := size(); s >= from+want {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: database file %d bytes, %d before, 20 s after the appends: not checkpointed", what, size(), from)
			}
		}
	}
	// 200 commits of 8 KiB of content (in the event and in contents): some
	// 800 pages, below both thresholds of SQLite's own checkpoints. All
	// but the commits since the last checkpoint reach the file.
	start := size()
	push(200, 8<<10)
	after := grows("while commits go on", start, 2*(200-checkpointCommits)*8<<10)
	// Fewer commits than a checkpoint waits for, then quiet.
	push(checkpointCommits/2, 64<<10)
	grows("once quiet", after, 2*(checkpointCommits/2)*64<<10)
}
