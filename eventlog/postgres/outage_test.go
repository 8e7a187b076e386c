package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
)

// TestOutageIsUnavailable cuts the connection to the server under an open
// log, opened as a server opens it (Follow): appends, reads, lookups and
// locks fail promptly with ErrUnavailable, nothing is recorded, and once
// the server is reachable again the same log works without being
// reopened.
func TestOutageIsUnavailable(t *testing.T) {
	dsn := pgtest.DSN(t)
	p := pgtest.StartProxy(t, dsn)
	ctx := context.Background()
	const term = 400 * time.Millisecond
	l, err := Open(ctx, p.DSN(dsn), Options{Follow: true, FollowLeaseTerm: term})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tag := func(name string) eventlog.Event {
		return eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: name, Digest: "sha256:00"})
	}
	if _, err := l.Append(ctx, tag("before")); err != nil {
		t.Fatal(err)
	}
	d := fmt.Sprintf("sha256:%064x", 0x0a)
	if _, err := l.Append(ctx, eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: d, BLAKE3: "blake3:" + d[7:], Size: 2, Content: []byte("{}")}),
		eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2}),
		eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "kept", Digest: d})); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TaggedManifest(ctx, "r", "kept"); err != nil {
		t.Fatal(err)
	}
	head, err := l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p.Cut()
	start := time.Now()
	if _, err := l.Append(ctx, tag("during")); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("append with the server cut off: %v, want ErrUnavailable", err)
	}
	if _, err := l.Head(ctx); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("read with the server cut off: %v, want ErrUnavailable", err)
	}
	if _, err := l.LeaseUpload(ctx, "u", time.Minute, 0); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("upload lease with the server cut off: %v, want ErrUnavailable", err)
	}
	// A lookup it answered before: once the follow lease's term has passed
	// without a renewal, the follower cannot tell what changed.
	time.Sleep(term)
	if l.FollowLeaseHeld() {
		t.Fatal("the follow lease is still trusted a term after the server was cut off")
	}
	if _, err := l.TaggedManifest(ctx, "r", "kept"); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("manifest lookup with the server cut off: %v, want ErrUnavailable", err)
	}
	t.Logf("four failures took %v", time.Since(start))

	p.Restore(t)
	if _, err := l.Append(ctx, tag("after")); err != nil {
		t.Fatalf("append after the server came back: %v", err)
	}
	if m, err := l.TaggedManifest(ctx, "r", "kept"); err != nil || m.Digest != d {
		t.Fatalf("manifest lookup after the server came back: %s, %v", m.Digest, err)
	}
	if got, err := l.Head(ctx); err != nil || got != head+1 {
		t.Fatalf("head after recovery = %d (%v), want %d: the failed append must have left nothing", got, err, head+1)
	}
}

// TestOtherErrorsAreNotOutages: a query the server refuses is not
// classified as an outage.
func TestOtherErrorsAreNotOutages(t *testing.T) {
	l, err := Open(context.Background(), pgtest.DSN(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = l.Version(context.Background(), "r", "v")
	if !errors.Is(err, eventlog.ErrNotFound) || errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("missing row: %v", err)
	}
	if err := classify(errors.New("syntax error at or near")); errors.Is(err, eventlog.ErrUnavailable) || errors.Is(err, eventlog.ErrNoSpace) {
		t.Fatalf("a plain error was classified: %v", err)
	}
}

// TestAlteredTableIsTransient: a table altered under a running process
// (another replica's migration) fails the next use of each statement
// cached on it once, as an outage a retry gets past, and the retry works.
func TestAlteredTableIsTransient(t *testing.T) {
	ctx, dsn := context.Background(), pgtest.DSN(t)
	l, err := Open(ctx, dsn, Options{MaxConns: 1}) // one connection: the statement is cached on it
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 2 {
		if _, err := l.Tag(ctx, "r", "v1"); !errors.Is(err, eventlog.ErrNotFound) {
			t.Fatalf("tag lookup before the change: %v", err)
		}
	}
	other, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `ALTER TABLE tags ALTER COLUMN digest TYPE TEXT COLLATE "POSIX"`); err != nil {
		t.Fatal(err)
	}
	_, err = l.Tag(ctx, "r", "v1")
	if !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("first lookup after the table changed: %v, want ErrUnavailable", err)
	}
	if _, err := l.Tag(ctx, "r", "v1"); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("the retry: %v, want the tag not found", err)
	}
}
