package blobstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/digest"
)

// Store hashes and stores blobs on a Backend. It is safe for concurrent use.
//
// Upload sessions keep their running hash state in memory so that each byte
// is hashed once. BLAKE3 state cannot be serialised, so when the state is
// missing or stale (the process restarted, another replica appended, or the
// state was evicted) it is re-derived by one sequential read of the staged
// bytes.
//
// Memory does not grow with the number of open sessions: at most
// maxIdleStates hash states of sessions between requests are kept (about
// 10 KiB each), the least recently used evicted first; a state in use by a
// request is never evicted.
type Store struct {
	backend  Backend
	bufs     *bufferPool
	streams  budget                 // of the read-ahead budget, what Streams may hold (maxStreamBuffers)
	hashers  sync.Pool              // of *hasher without SHA-512, for Hash
	observer func(op Op, err error) // see SetObserver
	tracer   Tracer                 // see SetTracer

	mu     sync.Mutex
	states map[string]*uploadState
	tick   uint64 // advances on every use of a state, for eviction order
}

type uploadState struct {
	mu   sync.Mutex // serialises appends to, and the commit of, one upload
	h    *hasher
	gone bool // committed or aborted: the staging area no longer exists

	// Guarded by Store.mu:
	users   int    // requests holding or waiting for mu
	lastUse uint64 // Store.tick at the last use
}

// maxIdleStates bounds the hash states kept between requests.
const maxIdleStates = 1024

// New returns a Store over backend.
func New(backend Backend) *Store {
	return &Store{backend: backend, bufs: newBufferPool(maxReadAhead), streams: make(budget, maxStreamBuffers), states: make(map[string]*uploadState)}
}

// acquire returns the state of upload id, created empty if there is none,
// marked in use until release.
func (s *Store) acquire(id string) *uploadState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[id]
	if !ok {
		st = &uploadState{}
		s.states[id] = st
	}
	st.users++
	return st
}

// release marks st no longer in use by this request and, when too many
// states are idle, evicts the least recently used idle ones. A state is
// evicted whole (its hash forgotten): the next request re-derives it.
func (s *Store) release(st *uploadState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.users--
	s.tick++
	st.lastUse = s.tick
	if len(s.states) <= maxIdleStates {
		return
	}
	var idle []string
	for id, o := range s.states {
		if o.users == 0 {
			idle = append(idle, id)
		}
	}
	if len(idle) <= maxIdleStates {
		return
	}
	slices.SortFunc(idle, func(a, b string) int { return cmp.Compare(s.states[a].lastUse, s.states[b].lastUse) })
	for _, id := range idle[:len(idle)-maxIdleStates] {
		delete(s.states, id)
	}
}

// States reports how many upload hash states are held in memory.
func (s *Store) States() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.states)
}

// Backend returns the backend the store writes to.
func (s *Store) Backend() Backend { return s.backend }

// Stat returns the size of the blob stored under the SHA-256 key.
func (s *Store) Stat(ctx context.Context, key digest.Digest) (int64, error) {
	ctx, end := s.start(ctx, OpStat)
	n, err := s.backend.Stat(ctx, key)
	return n, end(err)
}

// Open returns the blob stored under the SHA-256 key.
func (s *Store) Open(ctx context.Context, key digest.Digest) (Blob, error) {
	ctx, end := s.start(ctx, OpOpen)
	b, err := s.backend.Open(ctx, key)
	return b, end(err)
}

// Delete removes the blob stored under the SHA-256 key.
func (s *Store) Delete(ctx context.Context, key digest.Digest) error {
	ctx, end := s.start(ctx, OpDelete)
	return end(s.backend.Delete(ctx, key))
}

// RedirectURL returns a short-lived URL that serves the blob, when the
// backend can make one (ok false otherwise).
func (s *Store) RedirectURL(ctx context.Context, key digest.Digest, ttl time.Duration) (u string, ok bool, err error) {
	r, ok := s.backend.(Redirector)
	if !ok {
		return "", false, nil
	}
	u, err = r.RedirectURL(ctx, key, ttl)
	return u, err == nil, err
}

// Walk calls fn for every stored blob.
func (s *Store) Walk(ctx context.Context, fn func(BlobInfo) error) error {
	return s.backend.Walk(ctx, fn)
}

// NewUploadID returns a fresh random upload identifier.
func NewUploadID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// Ingest stores everything r yields in one pass and returns its digests.
// When expect is non-empty the content must match it (any supported
// algorithm), and nothing is stored if it does not.
func (s *Store) Ingest(ctx context.Context, r io.Reader, expect digest.Digest) (Digests, error) {
	ctx, end := s.start(ctx, OpIngest)
	ds, err := s.ingest(ctx, r, expect)
	return ds, end(err)
}

func (s *Store) ingest(ctx context.Context, r io.Reader, expect digest.Digest) (Digests, error) {
	if p, ok := s.backend.(Putter); ok {
		// Content that fits one buffer (manifests, small blobs) is
		// hashed in memory and put in place whole.
		buf := s.bufs.get()
		defer s.bufs.put(buf)
		n, err := fill(r, *buf)
		switch {
		case err == io.EOF:
			return s.put(ctx, p, (*buf)[:n], expect)
		case err != nil:
			return Digests{}, err
		}
		r = io.MultiReader(bytes.NewReader((*buf)[:n]), r)
	}
	return s.ingestStaged(ctx, r, expect)
}

// put stores content held in memory through p, or through a staging area
// where p cannot.
func (s *Store) put(ctx context.Context, p Putter, data []byte, expect digest.Digest) (Digests, error) {
	h := newHasher(expect.Algorithm() == digest.SHA512)
	h.Write(data)
	ds := h.digests()
	if err := s.admit(ctx, ds, expect); err != nil {
		return Digests{}, err
	}
	err := p.PutBlob(ctx, ds.SHA256, data)
	if errors.Is(err, errors.ErrUnsupported) {
		return s.ingestStaged(ctx, bytes.NewReader(data), expect)
	}
	if err != nil {
		return Digests{}, err
	}
	return ds, nil
}

// ingestStaged is Ingest through a staging area.
func (s *Store) ingestStaged(ctx context.Context, r io.Reader, expect digest.Digest) (Digests, error) {
	id := "ingest-" + NewUploadID()
	if err := s.backend.CreateUpload(ctx, id); err != nil {
		return Digests{}, err
	}
	h := newHasher(expect.Algorithm() == digest.SHA512)
	_, err := s.appendFunc(true)(ctx, id, 0, feed{r, h, 0, s.bufs})
	h.wait()
	if err != nil {
		s.backend.AbortUpload(context.WithoutCancel(ctx), id)
		return Digests{}, err
	}
	return s.commit(ctx, id, h.digests(), expect)
}

// CreateUpload starts an upload session with the given id.
func (s *Store) CreateUpload(ctx context.Context, id string) error {
	ctx, end := s.start(ctx, OpCreate)
	if err := s.backend.CreateUpload(ctx, id); err != nil {
		return end(err)
	}
	st := s.acquire(id)
	st.h = newHasher(false)
	s.release(st)
	return end(nil)
}

// UploadSize returns how many bytes an upload has received.
func (s *Store) UploadSize(ctx context.Context, id string) (int64, error) {
	info, err := s.backend.StatUpload(ctx, id)
	return info.Size, err
}

// ListUploads describes every staged upload.
func (s *Store) ListUploads(ctx context.Context) ([]UploadInfo, error) {
	return s.backend.ListUploads(ctx)
}

// lock returns the upload's hash state locked, with the size of the staged
// bytes, re-deriving the state from those bytes when it does not cover
// exactly them. While the lock is held no append of this process changes
// the staged bytes. The caller ends with unlock.
func (s *Store) lock(ctx context.Context, id string) (*uploadState, int64, error) {
	st := s.acquire(id)
	st.mu.Lock()
	fail := func(err error) (*uploadState, int64, error) {
		s.unlock(st)
		return nil, 0, err
	}
	if st.gone {
		return fail(fmt.Errorf("%w: %s was committed or aborted", ErrUploadNotFound, id))
	}
	info, err := s.backend.StatUpload(ctx, id)
	if err != nil {
		return fail(err)
	}
	if st.h != nil && st.h.size == info.Size {
		return st, info.Size, nil
	}
	h := newHasher(false)
	if err := s.readUpload(ctx, id, info.Size, h); err != nil {
		return fail(fmt.Errorf("rehash upload %s: %w", id, err))
	}
	st.h = h
	return st, info.Size, nil
}

// unlock ends what lock began.
func (s *Store) unlock(st *uploadState) {
	st.mu.Unlock()
	s.release(st)
}

// readUpload copies the first size staged bytes of an upload into w.
func (s *Store) readUpload(ctx context.Context, id string, size int64, w io.Writer) error {
	rc, err := s.backend.OpenUpload(ctx, id)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	n, err := io.CopyBuffer(w, io.LimitReader(rc, size), *buf)
	if err == nil && n != size {
		err = fmt.Errorf("read %d of %d bytes", n, size)
	}
	return err
}

// appendFunc is the backend's append; when commit, one whose durability
// is left to a commit that follows at once, if the backend has it.
func (s *Store) appendFunc(commit bool) func(context.Context, string, int64, io.Reader) (int64, error) {
	if cf, ok := s.backend.(CommitFollows); ok && commit {
		return cf.AppendBeforeCommit
	}
	return s.backend.AppendUpload
}

// AppendUpload appends r to the upload, which must hold exactly offset
// bytes (ErrBadOffset otherwise), makes the bytes durable and returns the
// new size.
func (s *Store) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	return s.appendUpload(ctx, id, offset, r, false)
}

// AppendBeforeCommit is AppendUpload for the last chunk of an upload that
// the caller commits (CommitUpload) right after: backends may leave the
// bytes' durability to that commit. Until it succeeds, the new bytes must
// not be reported as stored.
func (s *Store) AppendBeforeCommit(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	return s.appendUpload(ctx, id, offset, r, true)
}

func (s *Store) appendUpload(ctx context.Context, id string, offset int64, r io.Reader, commit bool) (int64, error) {
	ctx, end := s.start(ctx, OpAppend)
	n, err := s.appendLocked(ctx, id, offset, r, commit)
	return n, end(err)
}

func (s *Store) appendLocked(ctx context.Context, id string, offset int64, r io.Reader, commit bool) (int64, error) {
	st, size, err := s.lock(ctx, id)
	if err != nil {
		return 0, err
	}
	defer s.unlock(st)
	if size != offset {
		return size, fmt.Errorf("%w: upload has %d bytes, chunk starts at %d", ErrBadOffset, size, offset)
	}
	// A copy of the state to go back to: a failed append leaves the
	// staged bytes as they were (backends cut back to offset), and the
	// next request must not have to re-read them all.
	before, snapErr := st.h.snapshot()
	n, err := s.appendFunc(commit)(ctx, id, offset, feed{r, st.h, offset, s.bufs})
	st.h.wait()
	if err == nil && n != st.h.size {
		err = fmt.Errorf("append upload %s: stored %d bytes, hashed %d", id, n, st.h.size)
	}
	if err != nil {
		st.h = nil // re-derived from the staged bytes on the next use...
		if snapErr == nil {
			if info, serr := s.backend.StatUpload(context.WithoutCancel(ctx), id); serr == nil && info.Size == before.size {
				st.h = before // ...unless they are as they were
			}
		}
		return 0, err
	}
	return n, nil
}

// CommitUpload verifies the upload against expect (sha256, sha512 or
// blake3) and, only if it matches, stores it under its SHA-256 key. On a
// mismatch the staged bytes are discarded and ErrDigestMismatch returned.
// The upload stays locked throughout, so no append can slip in between
// hashing and the commit.
func (s *Store) CommitUpload(ctx context.Context, id string, expect digest.Digest) (Digests, error) {
	ctx, end := s.start(ctx, OpCommit)
	ds, err := s.commitUpload(ctx, id, expect)
	return ds, end(err)
}

func (s *Store) commitUpload(ctx context.Context, id string, expect digest.Digest) (Digests, error) {
	st, size, err := s.lock(ctx, id)
	if err != nil {
		return Digests{}, err
	}
	defer s.unlock(st)
	ds := st.h.digests()
	if expect.Algorithm() == digest.SHA512 {
		// SHA-512 is rare; it costs one extra read rather than a third hash
		// on every upload.
		h := digest.SHA512.New()
		if err := s.readUpload(ctx, id, size, h); err != nil {
			return Digests{}, err
		}
		ds.SHA512 = digest.NewDigest(digest.SHA512, h.Sum(nil))
	}
	return s.commit(ctx, id, ds, expect)
}

// commit stores verified staged bytes under their key. Callers of the
// upload-session path hold the upload's lock; the state is marked gone
// before it is released, so an append that was waiting for the lock finds
// the upload committed instead of writing into the committed blob.
func (s *Store) commit(ctx context.Context, id string, ds Digests, expect digest.Digest) (Digests, error) {
	if err := s.admit(ctx, ds, expect); err != nil {
		s.forget(id)
		if errors.Is(err, ErrDigestMismatch) {
			s.backend.AbortUpload(context.WithoutCancel(ctx), id)
		} // otherwise the staged bytes stay: the commit may be retried
		return Digests{}, err
	}
	err := s.backend.CommitUpload(ctx, id, ds.SHA256)
	s.forget(id)
	if err != nil {
		return Digests{}, err
	}
	return ds, nil
}

// admit is what both ways of storing (a commit of staged bytes, a put of
// bytes in memory) check before the content takes its key: that it is the
// content expected, and that a damaged copy under the key is moved aside.
func (s *Store) admit(ctx context.Context, ds Digests, expect digest.Digest) error {
	if expect != "" && !ds.Matches(expect) {
		return fmt.Errorf("%w: expected %s, content is %s", ErrDigestMismatch, expect, ds.SHA256)
	}
	if err := s.replaceDamaged(ctx, ds); err != nil {
		return fmt.Errorf("replace damaged copy of %s: %w", ds.SHA256, err)
	}
	return nil
}

// AbortUpload discards an upload's staged bytes. It waits for an append
// in progress in this process but, unlike appends and commits, needs no
// hash state, so it never re-reads the staged bytes.
func (s *Store) AbortUpload(ctx context.Context, id string) error {
	ctx, end := s.start(ctx, OpAbort)
	st := s.acquire(id)
	st.mu.Lock()
	defer s.unlock(st)
	err := s.backend.AbortUpload(ctx, id)
	s.forget(id)
	return end(err)
}

// forget drops the upload's state once its staging area is gone. The
// caller holds the state's lock (when there is one), so marking it gone
// here is seen by every append that was waiting for it.
func (s *Store) forget(id string) {
	s.mu.Lock()
	if st, ok := s.states[id]; ok {
		st.gone = true
		delete(s.states, id)
	}
	s.mu.Unlock()
}

// Rehash reads the blob stored under key and returns its digests; verify
// uses it to detect bit rot.
func (s *Store) Rehash(ctx context.Context, key digest.Digest) (Digests, error) {
	b, err := s.backend.Open(ctx, key)
	if err != nil {
		return Digests{}, err
	}
	defer b.Close()
	h := newHasher(false)
	// readerOnly hides *os.File's WriteTo, which would ignore the large
	// buffer and feed the hasher 32 KiB pieces, below its parallel path.
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	if _, err := io.CopyBuffer(h, readerOnly{b}, *buf); err != nil {
		return Digests{}, err
	}
	return h.digests(), nil
}

type readerOnly struct{ io.Reader }
