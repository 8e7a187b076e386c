package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/eventlogtest"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
)

func TestContract(t *testing.T) {
	for _, follow := range []bool{false, true} { // true: lookups cached
		t.Run(map[bool]string{false: "plain", true: "follow"}[follow], func(t *testing.T) {
			eventlogtest.Run(t, func(t *testing.T) *eventlog.Log {
				l, err := Open(context.Background(), pgtest.DSN(t), Options{Follow: follow})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				return l
			})
		})
	}
}

// TestFollowingReplica: a replica that keeps blob lookups answers what
// another replica appended, once that append has returned.
func TestFollowingReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	var ls []*eventlog.Log
	for _, follow := range []bool{false, true} {
		l, err := Open(context.Background(), dsn, Options{Follow: follow})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, l)
	}
	eventlogtest.RunFollowing(t, ls[0], ls[1])
}

// TestMigrationsIdempotent opens the same schema twice, as two replicas
// starting together would.
func TestMigrationsIdempotent(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	errs := make(chan error, 2)
	logs := make(chan *eventlog.Log, 2)
	for i := 0; i < 2; i++ {
		go func() {
			l, err := Open(ctx, dsn, Options{})
			errs <- err
			logs <- l
		}()
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if l := <-logs; l != nil {
			defer l.Close()
		}
	}
}

// TestReaderNeverMissesAcrossReplicas: two handles on one database, as two
// replicas, append concurrently while a third follows the log.
func TestReaderNeverMissesAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	var ls []*eventlog.Log
	for i := 0; i < 3; i++ {
		l, err := Open(context.Background(), dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, l)
	}
	eventlogtest.RunOrdering(t, ls[:2], ls[2])
}

// TestNotifyReachesOtherReplica: an append on one handle wakes a reader
// waiting on another, through LISTEN/NOTIFY.
func TestNotifyReachesOtherReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	time.Sleep(200 * time.Millisecond) // let b's listener connect
	ch := b.Changed()
	start := time.Now()
	if _, err := a.Append(context.Background(), eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "t", Digest: "sha256:00"})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Logf("woken %v after the append", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("an append on one replica did not reach the other within a second")
	}
}

// TestEveryTextColumnIsC holds the schema to one collation (migration
// 0017): a join comparing a "C" column with one in the database's default
// collation cannot use the default one's index, and reads its whole table.
func TestEveryTextColumnIsC(t *testing.T) {
	ctx, dsn := context.Background(), pgtest.DSN(t)
	l, err := Open(ctx, dsn, Options{}) // applies the migrations
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name, COALESCE(collation_name, '(the database default)')
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, column, collation string
		if err := rows.Scan(&table, &column, &collation); err != nil {
			t.Fatal(err)
		}
		t.Errorf(`%s.%s has collation %s, not "C": declare it TEXT COLLATE "C"`, table, column, collation)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestPayloadsCompressedWithLz4: payloads and kept content stored after
// migration 0019 are compressed with lz4 where the server has it, pglz
// (the default) where it has not.
func TestPayloadsCompressedWithLz4(t *testing.T) {
	ctx, dsn := context.Background(), pgtest.DSN(t)
	l, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	content := bytes.Repeat([]byte(`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"},`), 200) // JSON compresses
	key := fmt.Sprintf("sha256:%064x", 0x1234)
	out, err := l.Append(ctx, eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: key, BLAKE3: "blake3:" + key[7:], Size: int64(len(content)), Content: content}))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := "pglz"
	var lz4 bool
	if err := db.QueryRowContext(ctx, `SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'`).Scan(&lz4); err == nil && lz4 {
		want = "lz4"
	}
	var payload, kept sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT pg_column_compression(payload) FROM events WHERE seq = $1`, out[0].Seq).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT pg_column_compression(bytes) FROM contents WHERE sha256 = $1`, key).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if payload.String != want || kept.String != want {
		t.Fatalf("the event's payload is compressed with %q, the kept content with %q; want %s", payload.String, kept.String, want)
	}
}

// leaseTerm is the follow lease's term in the tests: short, so that
// taking it away and its quiet time (15 terms) take seconds.
const leaseTerm = 300 * time.Millisecond

// openFollowing opens a followed log on dsn with the tests' lease term.
func openFollowing(t *testing.T, dsn string) *eventlog.Log {
	t.Helper()
	l, err := Open(context.Background(), dsn, Options{Follow: true, FollowLeaseTerm: leaseTerm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitHeld waits until l's trust in the lease is want, for at most within.
func waitHeld(t *testing.T, l *eventlog.Log, want bool, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); l.FollowLeaseHeld() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("follow lease held: %v after %v, want %v", !want, within, want)
		}
	}
}

// TestFollowLease: a replica alone takes the follow lease and answers
// lookups from memory without a round; an append by another process
// takes the lease away and waits out its term, so that a lookup on the
// holder asked after that append returned shows it; once the other
// process is quiet, the replica takes the lease again, and catches up on
// what was appended while it did not hold it.
func TestFollowLease(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a := openFollowing(t, dsn)
	b, err := Open(ctx, dsn, Options{}) // as "artifactstore gc" opens it
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	manifest := func(i int) string { return fmt.Sprintf("sha256:%064x", 0xf000+i) }
	put := func(l *eventlog.Log, i int) {
		t.Helper()
		d := manifest(i)
		if _, err := l.Append(ctx,
			eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: d, BLAKE3: "blake3:" + d[7:], Size: 2, Content: []byte("{}")}),
			eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2}),
			eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: "latest", Digest: d})); err != nil {
			t.Fatal(err)
		}
	}
	tagged := func(want int) {
		t.Helper()
		if m, err := a.TaggedManifest(ctx, "r", "latest"); err != nil || m.Digest != manifest(want) {
			t.Fatalf("latest on the holder: %s, %v; want %s", m.Digest, err, manifest(want))
		}
	}

	waitHeld(t, a, true, 10*time.Second)
	put(a, 1)
	tagged(1)
	before := a.LookupStats()
	for range 50 {
		tagged(1)
	}
	if st := a.LookupStats(); st.Rounds != before.Rounds || st.Memory != before.Memory+50 {
		t.Fatalf("50 lookups on the lease holder: %d rounds and %d from memory, want 0 and 50", st.Rounds-before.Rounds, st.Memory-before.Memory)
	}

	// Another process moves the tag: once its append returns, the holder
	// no longer trusts its memory, and its lookup shows the move.
	put(b, 2)
	if a.FollowLeaseHeld() {
		t.Fatal("an append by another process returned while the lease was still trusted")
	}
	tagged(2)

	// While the lease is not held, another move; the holder looks nothing
	// up, takes the lease again once the quiet time has passed, and
	// answers the move from memory.
	put(b, 3)
	waitHeld(t, a, true, 20*leaseTerm+10*time.Second)
	before = a.LookupStats()
	tagged(3)
	if st := a.LookupStats(); st.Rounds != before.Rounds {
		t.Fatalf("a lookup on the lease holder made %d rounds, want 0", st.Rounds-before.Rounds)
	}
	put(b, 4)
	tagged(4)
}

// TestFollowLeaseGivenUpOnForeignNotify: a process of a version without
// the lease appends without taking it away, and announces its append with
// an empty payload; the holder, hearing of an append not its own, stops
// answering from memory and does not take the lease again at once.
func TestFollowLeaseGivenUpOnForeignNotify(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a := openFollowing(t, dsn)
	waitHeld(t, a, true, 10*time.Second)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Announced until heard: the holder's listening connection may not be
	// up yet, and a notification sent before it is lost.
	for deadline := time.Now().Add(10 * time.Second); a.FollowLeaseHeld(); time.Sleep(100 * time.Millisecond) {
		if _, err := db.ExecContext(ctx, `SELECT pg_notify('`+channel+`', '')`); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease is still trusted after an append it did not make was announced")
		}
	}
	var holder string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := db.QueryRowContext(ctx, `SELECT holder FROM follow_lease`).Scan(&holder); err != nil {
			t.Fatal(err)
		}
		if holder == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease is still held by %q after an append it did not make was announced", holder)
		}
	}
	time.Sleep(3 * leaseTerm) // the keeper renews every term/4: it would have taken it back by now
	if a.FollowLeaseHeld() {
		t.Fatal("the lease was taken again within the quiet time after a foreign append")
	}
}

// TestFollowLeaseSecondReplica: a second replica starting makes the holder
// give the lease back before its Open returns, so its appends need not
// wait out a term; the first replica sees them.
func TestFollowLeaseSecondReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a := openFollowing(t, dsn)
	waitHeld(t, a, true, 10*time.Second)
	c := openFollowing(t, dsn)
	if a.FollowLeaseHeld() || c.FollowLeaseHeld() {
		t.Fatalf("with two replicas open, the lease is trusted by the first: %v, the second: %v; want neither", a.FollowLeaseHeld(), c.FollowLeaseHeld())
	}
	d := fmt.Sprintf("sha256:%064x", 0xf100)
	if _, err := c.Append(ctx, eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: d, BLAKE3: "blake3:" + d[7:], Size: 2, Content: []byte("{}")}),
		eventlog.New(eventlog.TypeBlobLinked, "r", eventlog.BlobLinked{SHA256: d})); err != nil {
		t.Fatal(err)
	}
	if b, err := a.LinkedBlobForRead(ctx, "r", d); err != nil || b.SHA256 != d {
		t.Fatalf("a blob the second replica pushed, on the first: %+v, %v", b, err)
	}
}
