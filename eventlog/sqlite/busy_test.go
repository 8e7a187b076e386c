package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// TestBusyIsUnavailable: another process holding the database's write lock
// past the busy timeout makes appends fail with ErrUnavailable (nothing
// recorded), and they succeed again once the lock is released.
func TestBusyIsUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := Open(ctx, path, Options{BusyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tag := eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "t", Digest: "sha256:00"})
	if _, err := l.Append(ctx, tag); err != nil {
		t.Fatal(err)
	}

	// The other "process": a connection of its own holding the write lock.
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, tag); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("append while another process holds the lock: %v, want ErrUnavailable", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, tag); err != nil {
		t.Fatalf("append after the lock was released: %v", err)
	}
	if head, err := l.Head(ctx); err != nil || head != 2 {
		t.Fatalf("head = %d (%v), want 2: the refused append must have left nothing", head, err)
	}
}
