package eventlog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Blob is a row of the blobs view.
type Blob struct {
	SHA256  string
	BLAKE3  string
	Size    int64
	Tier    string
	SHA512  string // set by Blobs only, when a client addressed the blob by sha512
	TierSeq int64  // set by Blob only: the blob.tiered event behind Tier (0: never moved)
	// Linked is set by LinkedBlob only: when the repository last linked
	// the blob (the collector's grace counts from it).
	Linked time.Time
	// Used is set by UnusedBlobs only: when an event last committed the
	// blob or stopped a use of it (the collector's grace counts from it).
	Used time.Time
	// Content is set by LinkedBlobForRead only: the bytes, when the log
	// keeps them (tier inline), so that a read needs no second query.
	Content []byte
}

// Manifest is a row of the manifests view.
type Manifest struct {
	Repo         string
	Digest       string // as pushed: sha256 or sha512
	SHA256       string // storage key of the bytes
	MediaType    string
	ArtifactType string
	Size         int64
	Subject      string
	Annotations  map[string]string
	// Content is the manifest's bytes when the log keeps them (ADR 0016),
	// set by TaggedManifestForRead and ManifestForRead: a pull needs no
	// second query.
	Content []byte
}

// Upload is a row of the uploads view: an open upload session.
type Upload struct {
	ID      string
	Repo    string
	Started time.Time
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}

// keyOf is SQL for the storage key of the digest bound to its one
// parameter. A blob's storage key is its sha256 digest, so such a digest
// is its own key; blob_digests maps the blob's other digests (blake3,
// sha512) to it, and holds no row for the key itself (migration
// 0014_blob_digests_others: one random index insert less per blob).
func keyOf(digest string) string {
	if isKey(digest) {
		return `?`
	}
	return `(SELECT sha256 FROM blob_digests WHERE digest = ?)`
}

// isKey tells a digest that is a storage key (a sha256 digest).
func isKey(digest string) bool { return strings.HasPrefix(digest, "sha256:") }

// Blob resolves any digest of a committed blob (sha256, blake3, sha512).
func (l *Log) Blob(ctx context.Context, digest string) (Blob, error) {
	var b Blob
	err := l.db.QueryRowContext(ctx, l.q(`SELECT b.sha256, b.blake3, b.size, b.tier, b.tier_seq FROM blobs b WHERE b.sha256 = `+keyOf(digest)), digest).
		Scan(&b.SHA256, &b.BLAKE3, &b.Size, &b.Tier, &b.TierSeq)
	return b, notFound(err, "blob "+digest)
}

// Content returns the bytes kept in the log for the blob stored under
// sha256 (tier inline; ADR 0016), or ErrNotFound when the log keeps none.
func (l *Log) Content(ctx context.Context, sha256 string) ([]byte, error) {
	var b []byte
	err := l.db.QueryRowContext(ctx, l.q(`SELECT bytes FROM contents WHERE sha256 = ?`), sha256).Scan(&b)
	return b, notFound(err, "content of blob "+sha256)
}

// LinkedBlob resolves any digest of a blob that repo may serve, in one
// query (the hot path of every blob GET and HEAD).
func (l *Log) LinkedBlob(ctx context.Context, repo, digest string) (Blob, error) {
	return l.linkedBlob(ctx, repo, digest, false)
}

// LinkedBlobForRead is LinkedBlob with the bytes, when the log keeps them
// (Blob.Content), for a read that serves them: no second query. Lookups
// that only need the row use LinkedBlob, so that naming a small blob many
// times (a manifest listing it as every layer) never copies its bytes.
func (l *Log) LinkedBlobForRead(ctx context.Context, repo, digest string) (Blob, error) {
	return l.linkedBlob(ctx, repo, digest, true)
}

func (l *Log) linkedBlob(ctx context.Context, repo, digest string, withContent bool) (Blob, error) {
	return lookup(ctx, l,
		func(c *blobCache) (Blob, uint64, bool) { return c.get(repo, digest, withContent) },
		func() (Blob, error) { return l.queryLinkedBlob(ctx, repo, digest, withContent) },
		func(c *blobCache, gen uint64, b Blob) { c.fill(gen, repo, digest, b) })
}

// lookup answers from l's cache when it has one and it holds the answer
// (get), else from the views (query), keeping what they answered (fill,
// with the generation get saw). A followed cache is first brought up to
// date; if it cannot be, the views answer and nothing is kept. A lookup
// whose context has ended fails, from the cache as from the views.
func lookup[T any](ctx context.Context, l *Log, get func(*blobCache) (T, uint64, bool), query func() (T, error), fill func(*blobCache, uint64, T)) (T, error) {
	var gen uint64
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	cached := l.cache != nil
	if cached && l.follow != nil && l.follow.fresh(ctx) != nil {
		cached = false
	}
	if cached {
		v, g, ok := get(l.cache)
		if ok {
			l.lookups.memory.Add(1)
			return v, nil
		}
		gen = g
	}
	l.lookups.views.Add(1)
	v, err := query()
	if err == nil && cached {
		fill(l.cache, gen, v)
	}
	return v, err
}

// LookupStats counts how the log has answered the lookups of pulls (blobs
// and manifests, by tag or digest) since it was opened: for operators, the
// share a cache answers, and what following the log costs a replica.
type LookupStats struct {
	Memory uint64 // answered from memory (a log opened Exclusive or Follow)
	Views  uint64 // answered by a query of the views
	Rounds uint64 // queries a followed log made to catch up (shared by the lookups waiting)
}

// LookupStats returns the counts so far.
func (l *Log) LookupStats() LookupStats {
	return LookupStats{Memory: l.lookups.memory.Load(), Views: l.lookups.views.Load(), Rounds: l.lookups.rounds.Load()}
}

func (l *Log) queryLinkedBlob(ctx context.Context, repo, digest string, withContent bool) (Blob, error) {
	var b Blob
	var linked int64
	content, join := `NULL`, ``
	if withContent {
		content, join = `c.bytes`, `LEFT JOIN contents c ON c.sha256 = b.sha256 AND b.tier = '`+TierInline+`'`
	}
	err := l.db.QueryRowContext(ctx, l.q(`SELECT b.sha256, b.blake3, b.size, b.tier, e.time_ns, `+content+` FROM blobs b
		JOIN blob_links k ON k.sha256 = b.sha256 AND k.repo = ?
		JOIN events e ON e.seq = k.seq `+join+`
		WHERE b.sha256 = `+keyOf(digest)), repo, digest).Scan(&b.SHA256, &b.BLAKE3, &b.Size, &b.Tier, &linked, &b.Content)
	b.Linked = time.Unix(0, linked).UTC()
	return b, notFound(err, "blob "+digest+" in "+repo)
}

// Blobs calls fn for every committed blob, in storage-key order.
func (l *Log) Blobs(ctx context.Context, fn func(Blob) error) error {
	rows, err := l.db.QueryContext(ctx, `SELECT b.sha256, b.blake3, b.size, b.tier, COALESCE(MAX(d.digest), '')
		FROM blobs b LEFT JOIN blob_digests d ON d.sha256 = b.sha256 AND d.digest LIKE 'sha512:%'
		GROUP BY b.sha256, b.blake3, b.size, b.tier ORDER BY b.sha256`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b Blob
		if err := rows.Scan(&b.SHA256, &b.BLAKE3, &b.Size, &b.Tier, &b.SHA512); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Linked reports whether repo may serve the blob stored under sha256.
func (l *Log) Linked(ctx context.Context, repo, sha256 string) (bool, error) {
	var n int
	err := l.db.QueryRowContext(ctx, l.q(`SELECT COUNT(*) FROM blob_links WHERE repo = ? AND sha256 = ?`), repo, sha256).Scan(&n)
	return n > 0, err
}

// RepositoryExists reports whether repo has ever held content.
func (l *Log) RepositoryExists(ctx context.Context, repo string) (bool, error) {
	var n int
	err := l.db.QueryRowContext(ctx, l.q(`SELECT COUNT(*) FROM repositories WHERE name = ?`), repo).Scan(&n)
	return n > 0, err
}

// Repositories lists repository names after last in byte order, at most n
// (all when n < 0).
func (l *Log) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	return l.strings(ctx, `SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?`, last, n)
}

// Tags lists repo's tags after last in byte order, at most n (all when n < 0).
func (l *Log) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	return l.strings(ctx, `SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?`, repo, last, n)
}

func (l *Log) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	if n := args[len(args)-1].(int); n < 0 {
		args[len(args)-1] = math.MaxInt32 // "all": LIMIT -1 is SQLite-only
	}
	rows, err := l.db.QueryContext(ctx, l.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// TagsOf lists the tags of repo that point at digest.
func (l *Log) TagsOf(ctx context.Context, repo, digest string) ([]string, error) {
	return l.strings(ctx, `SELECT tag FROM tags WHERE repo = ? AND digest = ? ORDER BY tag LIMIT ?`, repo, digest, -1)
}

// Tag returns the digest repo's tag points at.
func (l *Log) Tag(ctx context.Context, repo, tag string) (string, error) {
	var d string
	err := l.db.QueryRowContext(ctx, l.q(`SELECT digest FROM tags WHERE repo = ? AND tag = ?`), repo, tag).Scan(&d)
	return d, notFound(err, "tag "+tag)
}

// manifestCols are a manifest row's columns but its annotations, which
// can be megabytes (the lookups every pull makes do not read or decode
// them), from manifests m, and its bytes (scanManifestContent): with
// withContent those of the LEFT JOIN it returns, else NULL.
func manifestCols(withContent bool) (cols, join string) {
	const lean = `m.repo, m.digest, m.sha256, m.media_type, m.artifact_type, m.size, m.subject, '{}', `
	if withContent {
		return lean + `c.bytes`, `LEFT JOIN contents c ON c.sha256 = m.sha256`
	}
	return lean + `NULL`, ``
}

func scanManifest(row interface{ Scan(...any) error }) (Manifest, error) {
	var m Manifest
	var ann string
	if err := row.Scan(&m.Repo, &m.Digest, &m.SHA256, &m.MediaType, &m.ArtifactType, &m.Size, &m.Subject, &ann); err != nil {
		return m, err
	}
	var err error
	m.Annotations, err = decodeAnnotations(m.Digest, ann)
	return m, err
}

func decodeAnnotations(digest, ann string) (map[string]string, error) {
	if ann == "{}" || ann == "" {
		return nil, nil
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(ann), &out); err != nil {
		return nil, fmt.Errorf("manifest %s annotations: %w", digest, err)
	}
	return out, nil
}

// scanManifestContent scans the columns manifestCols names.
func scanManifestContent(row interface{ Scan(...any) error }) (Manifest, error) {
	var m Manifest
	var ann string
	err := row.Scan(&m.Repo, &m.Digest, &m.SHA256, &m.MediaType, &m.ArtifactType, &m.Size, &m.Subject, &ann, &m.Content)
	return m, err
}

// TaggedManifest returns the manifest repo's tag points at, in one query,
// without its annotations (Referrers and versions carry them).
func (l *Log) TaggedManifest(ctx context.Context, repo, tag string) (Manifest, error) {
	return l.taggedManifest(ctx, repo, tag, false)
}

// TaggedManifestForRead is TaggedManifest with the bytes, when the log
// keeps them (Manifest.Content), for a pull: no second query.
func (l *Log) TaggedManifestForRead(ctx context.Context, repo, tag string) (Manifest, error) {
	return l.taggedManifest(ctx, repo, tag, true)
}

func (l *Log) taggedManifest(ctx context.Context, repo, tag string, withContent bool) (Manifest, error) {
	return l.manifestLookup(ctx, manifestKey{repo, "t:" + tag}, withContent, func() (Manifest, error) {
		return l.queryTaggedManifest(ctx, repo, tag, withContent)
	})
}

// manifestLookup is lookup for the manifest lookups, by k.
func (l *Log) manifestLookup(ctx context.Context, k manifestKey, withContent bool, query func() (Manifest, error)) (Manifest, error) {
	return lookup(ctx, l,
		func(c *blobCache) (Manifest, uint64, bool) { return c.getManifest(k, withContent) },
		query,
		func(c *blobCache, gen uint64, m Manifest) { c.fillManifest(gen, k, m, withContent) })
}

func (l *Log) queryTaggedManifest(ctx context.Context, repo, tag string, withContent bool) (Manifest, error) {
	cols, join := manifestCols(withContent)
	// The tag's digest comes from a subquery rather than a join, so that
	// each table is reached by its primary key whatever the planner
	// estimates: PostgreSQL plans a prepared statement once for all
	// parameters (a generic plan), and planned the join as a scan of
	// every manifest of the repository.
	m, err := scanManifestContent(l.db.QueryRowContext(ctx, l.q(`SELECT `+cols+`
		FROM manifests m `+join+`
		WHERE m.repo = ? AND m.digest = (SELECT t.digest FROM tags t WHERE t.repo = ? AND t.tag = ?)`), repo, repo, tag))
	return m, notFound(err, "tag "+tag)
}

// Manifest returns repo's manifest pushed under digest or, failing that,
// one whose bytes answer to digest under another algorithm, without its
// annotations.
func (l *Log) Manifest(ctx context.Context, repo, digest string) (Manifest, error) {
	return l.manifest(ctx, repo, digest, false)
}

// ManifestForRead is Manifest with the bytes, when the log keeps them
// (Manifest.Content), for a pull: no second query. Lookups that only need
// the row (an index's children) use Manifest, so that an index naming
// many manifests never copies their bytes.
func (l *Log) ManifestForRead(ctx context.Context, repo, digest string) (Manifest, error) {
	return l.manifest(ctx, repo, digest, true)
}

func (l *Log) manifest(ctx context.Context, repo, digest string, withContent bool) (Manifest, error) {
	return l.manifestLookup(ctx, manifestKey{repo, "d:" + digest}, withContent, func() (Manifest, error) {
		return l.queryManifest(ctx, repo, digest, withContent)
	})
}

func (l *Log) queryManifest(ctx context.Context, repo, digest string, withContent bool) (Manifest, error) {
	cols, join := manifestCols(withContent)
	m, err := scanManifestContent(l.db.QueryRowContext(ctx, l.q(`SELECT `+cols+`
		FROM manifests m `+join+` WHERE m.repo = ? AND m.digest = ?`), repo, digest))
	if errors.Is(err, sql.ErrNoRows) {
		m, err = scanManifestContent(l.db.QueryRowContext(ctx, l.q(`SELECT `+cols+`
			FROM manifests m `+join+`
			WHERE m.repo = ? AND m.sha256 = `+keyOf(digest)+` ORDER BY m.digest LIMIT 1`), repo, digest))
	}
	return m, notFound(err, "manifest "+digest)
}

// ManifestsIn looks up many of repo's manifests by the digests they were
// pushed under, in a few queries (an index's children), without their
// annotations or bytes. Digests not found are absent from the answer:
// Manifest also tries them under other algorithms.
func (l *Log) ManifestsIn(ctx context.Context, repo string, digests []string) (map[string]Manifest, error) {
	out := make(map[string]Manifest, len(digests))
	cols, _ := manifestCols(false)
	err := l.queryIn(ctx, l.db, `SELECT `+cols+` FROM manifests m WHERE m.repo = ? AND m.digest IN (%s)`, []any{repo}, digests, func(rows *sql.Rows) error {
		m, err := scanManifestContent(rows)
		out[m.Digest] = m
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ErrUploadEnded is returned by Upload for a session that has ended while
// its id is still valid on its own (SessionEnd.IDExpires). It is an
// ErrNotFound: the session is not open.
var ErrUploadEnded = fmt.Errorf("%w: the upload session has ended", ErrNotFound)

// Upload returns an open upload session: ErrUploadEnded when it has ended
// and its id has not yet expired, ErrNotFound for any other id.
func (l *Log) Upload(ctx context.Context, id string) (Upload, error) {
	var u Upload
	var ns int64
	// One query for both: every PATCH and PUT asks. An ended row has
	// started_ns -1 and sorts after an open one (which cannot coexist
	// with it, but if it did, the open session is the answer).
	err := l.db.QueryRowContext(ctx, l.q(`SELECT id, repo, started_ns FROM uploads WHERE id = ?
		UNION ALL SELECT id, '', -1 FROM ended_uploads WHERE id = ? ORDER BY 3 DESC LIMIT 1`), id, id).Scan(&u.ID, &u.Repo, &ns)
	if err == nil && ns < 0 {
		return Upload{}, fmt.Errorf("upload %s: %w", id, ErrUploadEnded)
	}
	u.Started = time.Unix(0, ns).UTC()
	return u, notFound(err, "upload "+id)
}

// SharedKey returns the secret kept under purpose, the same for every
// process sharing the database: 32 random bytes made by whichever process
// asks first. Keys are not events (the log is readable by everyone who may
// read the event stream) and replay leaves them alone; a database restored
// without them gets new ones, which invalidates whatever the old ones
// signed.
func (l *Log) SharedKey(ctx context.Context, purpose string) ([]byte, error) {
	read := func() ([]byte, error) {
		var k []byte
		err := l.db.QueryRowContext(ctx, l.q(`SELECT secret FROM shared_keys WHERE purpose = ?`), purpose).Scan(&k)
		return k, err
	}
	k, err := read()
	if !errors.Is(err, sql.ErrNoRows) {
		return k, err
	}
	k = make([]byte, 32)
	rand.Read(k)
	if _, err := l.db.ExecContext(ctx, l.q(`INSERT INTO shared_keys (purpose, secret) VALUES (?, ?) ON CONFLICT (purpose) DO NOTHING`), purpose, k); err != nil {
		return nil, err
	}
	return read() // another process's, when it got there first
}

// Uploads lists every open upload session.
func (l *Log) Uploads(ctx context.Context) ([]Upload, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT id, repo, started_ns FROM uploads ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Upload
	for rows.Next() {
		var u Upload
		var ns int64
		if err := rows.Scan(&u.ID, &u.Repo, &ns); err != nil {
			return nil, err
		}
		u.Started = time.Unix(0, ns).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// OpenUploads counts the open upload sessions of repo and of every
// repository: two rows of upload_counts, whatever the number open.
func (l *Log) OpenUploads(ctx context.Context, repo string) (inRepo, total int, err error) {
	err = l.db.QueryRowContext(ctx, l.q(`SELECT COALESCE(SUM(CASE WHEN repo = ? THEN n ELSE 0 END), 0), COALESCE(SUM(CASE WHEN repo = '' THEN n ELSE 0 END), 0)
		FROM upload_counts WHERE repo IN (?, '')`), repo, repo).Scan(&inRepo, &total)
	return inRepo, total, err
}

// LinkedBlobs resolves many digests (any algorithm) of blobs repo may
// serve at once, in a few queries: the blobs a manifest names. Digests
// the repository does not hold are absent from the answer.
func (l *Log) LinkedBlobs(ctx context.Context, repo string, digests []string) (map[string]Blob, error) {
	out := make(map[string]Blob, len(digests))
	// Read only: these rows lack Linked, which entries carry. A followed
	// cache is not asked: being sure of it costs a query, as this one does.
	if l.cache != nil && l.follow == nil {
		var missed []string
		for _, d := range digests {
			if b, _, ok := l.cache.get(repo, d, false); ok {
				b.Linked = time.Time{} // as the query's rows: LinkedBlob's alone
				out[d] = b
			} else {
				missed = append(missed, d)
			}
		}
		if len(missed) == 0 {
			return out, nil
		}
		digests = missed
	}
	var keys, others []string // see keyOf
	for _, d := range digests {
		if isKey(d) {
			keys = append(keys, d)
		} else {
			others = append(others, d)
		}
	}
	scan := func(rows *sql.Rows) error {
		var d string
		var b Blob
		err := rows.Scan(&d, &b.SHA256, &b.BLAKE3, &b.Size, &b.Tier)
		out[d] = b
		return err
	}
	if len(keys) > 0 {
		if err := l.queryIn(ctx, l.db, `SELECT b.sha256, b.sha256, b.blake3, b.size, b.tier FROM blobs b
			JOIN blob_links k ON k.sha256 = b.sha256 AND k.repo = ?
			WHERE b.sha256 IN (%s)`, []any{repo}, keys, scan); err != nil {
			return nil, err
		}
	}
	if len(others) > 0 {
		if err := l.queryIn(ctx, l.db, `SELECT d.digest, b.sha256, b.blake3, b.size, b.tier FROM blob_digests d
			JOIN blobs b ON b.sha256 = d.sha256
			JOIN blob_links k ON k.sha256 = d.sha256 AND k.repo = ?
			WHERE d.digest IN (%s)`, []any{repo}, others, scan); err != nil {
			return nil, err
		}
	}
	return out, nil
}
