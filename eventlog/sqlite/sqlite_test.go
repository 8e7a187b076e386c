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
// above what is appended here), so the background checkpoints run.
func TestCheckpointsInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const blobs, size = 200, 8 << 10 // 1.6 MiB of content: some 400 pages, below both thresholds
	for i := range blobs {
		key := fmt.Sprintf("sha256:%064x", i+1)
		content := bytes.Repeat([]byte{byte(i)}, size)
		if _, err := l.Append(ctx, eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: key, BLAKE3: "blake3:" + key[7:], Size: size, Content: content})); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= start.Size()+2*blobs*size { // in the events and in contents
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes (%d at the start) 20 s after appending %d bytes of content twice: nothing checkpointed it", fi.Size(), start.Size(), blobs*size)
		}
	}
}
