package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
)

// TestPullsReadTheirRowsOnly: the lookups a pull makes (a manifest by tag,
// by digest, a blob, a subject's referrers, a page of tags) read the rows
// they answer with, not the repository's every manifest or blob, however
// PostgreSQL plans them. Their statements are prepared, and forced here to
// the generic plan a prepared statement settles on, with the tables
// analyzed as autovacuum does once they grow; the server's own statistics
// count the index and table entries the lookups read. The tag lookup once
// joined a "C" column to one in the default collation, and read every
// manifest of the repository on each pull (migration 0017). Before a
// table's first statistics a generic plan can still misjudge a join (the
// referrers page reads the repository's manifests then); the tag lookup,
// which every pull by tag makes, is a subquery so that it cannot.
func TestPullsReadTheirRowsOnly(t *testing.T) {
	const manifests, pulls = 400, 50
	ctx, base := context.Background(), pgtest.DSN(t)
	var b [6]byte
	rand.Read(b[:])
	app := "pulls_" + hex.EncodeToString(b[:])
	// Forced generic plans, named connections (the stats are read once
	// they have all ended: a backend flushes its counts when it exits).
	dsn := base + "&plan_cache_mode=force_generic_plan&application_name=" + app

	digest := func(i int) string { return fmt.Sprintf("sha256:%064x", 0x7000+i) }
	subject := func(i int) string { return fmt.Sprintf("sha256:%064x", 0x9000+i) }
	l, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range manifests {
		d, body := digest(i), []byte(fmt.Sprintf(`{"n":%d}`, i))
		if _, err := l.Append(ctx,
			eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: d, BLAKE3: "blake3:" + d[7:], Size: int64(len(body)), Content: body}),
			eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), Subject: subject(i)}),
			eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: fmt.Sprint("t", i), Digest: d}),
			eventlog.New(eventlog.TypeBlobLinked, "r", eventlog.BlobLinked{SHA256: d})); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Statistics, as autovacuum gathers them once a table has grown.
	if _, err := db.ExecContext(ctx, `ANALYZE manifests, tags, contents, blob_digests, blobs, blob_links, events, referrers`); err != nil {
		t.Fatal(err)
	}
	before := readCounts(t, db, app)

	l, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pulls {
		if m, err := l.TaggedManifestForRead(ctx, "r", fmt.Sprint("t", i)); err != nil || m.Digest != digest(i) {
			t.Fatalf("tag t%d: %s, %v", i, m.Digest, err)
		}
		if m, err := l.ManifestForRead(ctx, "r", digest(i)); err != nil || m.Digest != digest(i) {
			t.Fatalf("manifest %d: %s, %v", i, m.Digest, err)
		}
		if b, err := l.LinkedBlobForRead(ctx, "r", digest(i)); err != nil || b.SHA256 != digest(i) {
			t.Fatalf("blob %d: %s, %v", i, b.SHA256, err)
		}
		if refs, _, err := l.Referrers(ctx, eventlog.ReferrersQuery{Repo: "r", Subject: subject(i)}); err != nil || len(refs) != 1 || refs[0].Digest != digest(i) {
			t.Fatalf("referrers of %d: %+v, %v", i, refs, err)
		}
	}
	// Five pages of ten tags, from the middle of the list.
	last := "t200"
	for range 5 {
		page, err := l.Tags(ctx, "r", last, 10)
		if err != nil || len(page) != 10 {
			t.Fatalf("tags after %s: %v, %v", last, page, err)
		}
		last = page[len(page)-1]
	}
	l.Close()
	after := readCounts(t, db, app)

	const lookups = 4*pulls + 5
	for _, table := range []string{"manifests", "tags", "contents", "blob_digests", "blobs", "blob_links", "events", "referrers"} {
		read := after[table] - before[table]
		t.Logf("%d lookups read %d entries of %s", lookups, read, table)
		// Each lookup reads about one entry of each table it touches (an
		// index entry and its row; a referrers page asks twice); a scan
		// reads the whole table.
		if limit := int64(4 * lookups); read > limit {
			t.Errorf("%d lookups read %d entries of %s (at most %d expected; the table has %d rows or more): a lookup is scanning it",
				lookups, read, table, limit, manifests)
		}
	}
}

// readCounts waits until no connection named app is open (each flushes its
// statistics as it exits) and returns, per table of the test's schema, the
// index and table entries read so far.
func readCounts(t *testing.T, db *sql.DB, app string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var open int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections named %s still open", open, app)
		}
	}
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_setting('search_path')`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT relname, COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) + COALESCE(
			(SELECT SUM(idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = s.relid), 0)
		FROM pg_stat_user_tables s WHERE schemaname = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplayAnalyzes: views rebuilt by Replay are analyzed at once, so
// that the planner does not meet tables it knows nothing of (a few rows,
// below what sets autovacuum going, are enough to tell).
func TestReplayAnalyzes(t *testing.T) {
	ctx, dsn := context.Background(), pgtest.DSN(t)
	l, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 30
	for i := range n {
		d := fmt.Sprintf("sha256:%064x", 0xa000+i)
		if _, err := l.Append(ctx,
			eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: d, BLAKE3: "blake3:" + d[7:], Size: 1}),
			eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1}),
			eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: fmt.Sprint("t", i), Digest: d})); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func(table string) float64 {
		var r float64
		if err := db.QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, table).Scan(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := rows("manifests"); r >= 0 {
		t.Fatalf("manifests has statistics before the replay (%v rows): the test cannot tell", r)
	}
	if got, err := l.Replay(ctx); err != nil || got != 3*n {
		t.Fatalf("replay: %d events, %v", got, err)
	}
	for _, table := range []string{"manifests", "tags", "blobs"} {
		if r := rows(table); r != n {
			t.Errorf("after the replay the planner counts %v rows in %s, want %d", r, table, n)
		}
	}
}

// TestGroupCommitsReadTheirRowsOnly: a group commit's checks (its facts
// query, the guards) read the rows they ask about, however many the views
// hold. The committer has PostgreSQL use each statement's generic plan
// (the dialect's GroupSetup): left to choose, it planned the facts query
// of every group naming five blobs or more anew at each execution, which
// cost the serial chain more than running it. A generic plan that scanned
// a table would make every group's cost grow with the registry; this
// counts what groups of eight pushes and eight manifest puts read, on
// tables with statistics as autovacuum leaves them.
func TestGroupCommitsReadTheirRowsOnly(t *testing.T) {
	const existing, groups, perGroup = 4000, 10, 8
	ctx, base := context.Background(), pgtest.DSN(t)
	var b [6]byte
	rand.Read(b[:])
	app := "groups_" + hex.EncodeToString(b[:])
	dsn := base + "&application_name=" + app
	digest := func(i int) string { return fmt.Sprintf("sha256:%064x", 0x5000+i) }
	expires := time.Now().Add(time.Hour).UnixNano()
	push := func(i int) []eventlog.Event {
		d, body := digest(i), []byte(fmt.Sprintf(`blob %d`, i))
		return []eventlog.Event{
			eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: d, BLAKE3: "blake3:" + d[7:], Size: int64(len(body)), Content: body}),
			eventlog.New(eventlog.TypeBlobLinked, "r", eventlog.BlobLinked{SHA256: d}),
			eventlog.New(eventlog.TypeUploadFinished, "r", eventlog.UploadFinished{ID: fmt.Sprintf("%016x-%d", expires, i), SHA256: d,
				SessionEnd: eventlog.SessionEnd{IDExpires: expires}, Unrecorded: true}),
		}
	}
	put := func(i, blob int) []eventlog.Event {
		d, body := fmt.Sprintf("sha256:%064x", 0x9000+i), []byte(fmt.Sprintf(`{"n":%d}`, i))
		return []eventlog.Event{
			eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: d, BLAKE3: "blake3:" + d[7:], Size: int64(len(body)), Content: body}),
			eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), Blobs: []string{digest(blob)}}),
			eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: fmt.Sprint("t", i), Digest: d}),
		}
	}
	appendGroups := func(l *eventlog.Log, from, n int) {
		for g := range n {
			var batches [][]eventlog.Event
			for k := range perGroup {
				i := from + g*perGroup + k
				batches = append(batches, push(i), put(i, i))
			}
			if _, errs := l.AppendEach(ctx, batches...); errors.Join(errs...) != nil {
				t.Fatal(errors.Join(errs...))
			}
		}
	}
	l, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendGroups(l, 0, existing/perGroup)
	l.Close()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables := []string{"blob_tombstones", "contents", "uploads", "ended_uploads", "blob_links", "versions", "blobs", "manifests", "tags"}
	if _, err := db.ExecContext(ctx, `ANALYZE `+strings.Join(tables, ", ")); err != nil {
		t.Fatal(err)
	}
	before := readCounts(t, db, app)

	l, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendGroups(l, existing, groups)
	l.Close()
	after := readCounts(t, db, app)

	const appends = 2 * groups * perGroup
	for _, table := range tables {
		read := after[table] - before[table]
		t.Logf("%d appends in %d groups read %d entries of %s", appends, groups, read, table)
		// Each append asks about a few keys of a table it touches (the
		// facts query, a guard, an upsert's conflict check); a scan reads
		// the whole table, which holds at least existing rows.
		if limit := int64(4 * appends); read > limit {
			t.Errorf("%d appends read %d entries of %s (at most %d expected; the table has %d rows or more): a group commit is scanning it",
				appends, read, table, limit, existing)
		}
	}
}
