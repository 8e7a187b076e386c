package registry

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// Upload sessions are recorded with their first bytes, not when they are
// opened (ADR 0018). A POST hands out an id that is valid on its own: it
// names the repository and the time it expires, and is signed with a
// key every replica shares (eventlog.SharedKey). Until a request brings
// bytes, a session is nothing but that id: no event, no row, no staging
// file. The common small push (POST, then a PUT ?digest= carrying the
// whole blob) then costs one append instead of two.
//
// Invariants:
//   - A session is open when the log holds its upload.started and no end,
//     or when its id verifies for the repository, has not expired, and
//     the log has no end for it. The expiry is in the id, so every replica
//     agrees on it whatever its own --upload-ttl. The end events of a
//     session carry that expiry plus idSkew (eventlog.SessionEnd), so the
//     log remembers an ended id for as long as any replica whose clock is
//     off by less than idSkew would accept it; and the log refuses an
//     upload.started for an ended id.
//   - A session is recorded, and its staging file made, under its lease,
//     after the check that it is still open: two requests cannot both
//     start it, and none starts one that has just ended.
//   - An id that verifies for one repository does not verify for another.

// sessionKeyPurpose names the shared key that signs session ids.
const sessionKeyPurpose = "upload-session-ids"

// Parts of an id, in bytes, before hex: expiry (Unix seconds, big
// endian), random, then the first idMACLen bytes of HMAC-SHA256 over the
// repository and both. The expiry comes first so that ids sort by when
// they expire: the ended_uploads view, keyed by id, then takes each
// push's end near the ids of the pushes just before it, in the same few
// pages, rather than on a random page of its index.
const (
	idTimeLen = 8
	idRandLen = 16
	idMACLen  = 16
	idLen     = 2 * (idTimeLen + idRandLen + idMACLen)
)

// Ids minted before their expiry came first (random, then expiry) are
// signed under idDomainV1; their sessions last minutes, so an upgrade
// with pushes in flight finishes them. Ids minted since are signed under
// idDomain, so that neither layout's bytes verify as the other's.
const (
	idDomain   = "artifactstore upload session v2\x00"
	idDomainV1 = "artifactstore upload session\x00"
)

// idSkew is how far replicas' clocks may differ: the log remembers an
// ended id this long past its expiry.
const idSkew = time.Minute

// sessionIDs mints and verifies session ids with the log's shared key,
// fetched on first use and kept.
type sessionIDs struct {
	log *eventlog.Log
	mu  sync.Mutex
	key []byte
}

func (s *sessionIDs) keyFor(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		k, err := s.log.SharedKey(ctx, sessionKeyPurpose)
		if err != nil {
			return nil, err
		}
		s.key = k
	}
	return s.key, nil
}

func idMAC(key []byte, domain, repo string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write([]byte(repo))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)[:idMACLen]
}

// mint returns a new id for a session of repo that expires at expires.
func (s *sessionIDs) mint(ctx context.Context, repo string, expires time.Time) (string, error) {
	key, err := s.keyFor(ctx)
	if err != nil {
		return "", err
	}
	b := make([]byte, idTimeLen+idRandLen, idTimeLen+idRandLen+idMACLen)
	binary.BigEndian.PutUint64(b, uint64(expires.Unix()))
	rand.Read(b[idTimeLen:])
	return hex.EncodeToString(append(b, idMAC(key, idDomain, repo, b)...)), nil
}

// expiry returns when id, minted for repo, expires, and false when it is
// not an id minted for repo (another repository's, an id of the format
// before ADR 0018, or made up).
func (s *sessionIDs) expiry(ctx context.Context, repo, id string) (time.Time, bool, error) {
	if len(id) != idLen {
		return time.Time{}, false, nil
	}
	b, err := hex.DecodeString(id)
	if err != nil {
		return time.Time{}, false, nil
	}
	key, err := s.keyFor(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	body, mac := b[:idTimeLen+idRandLen], b[idTimeLen+idRandLen:]
	var at []byte // the expiry's bytes, by the layout the id verifies under
	switch {
	case hmac.Equal(mac, idMAC(key, idDomain, repo, body)):
		at = body[:idTimeLen]
	case hmac.Equal(mac, idMAC(key, idDomainV1, repo, body)):
		at = body[idRandLen:]
	default:
		return time.Time{}, false, nil
	}
	return time.Unix(int64(binary.BigEndian.Uint64(at)), 0), true, nil
}

// unrecordedTTL is how long an id is valid without a record: as long as
// a recorded session may stay without a byte (the janitor's rule).
func (r *Registry) unrecordedTTL() time.Duration {
	return min(r.opts.UploadTTL, emptyUploadTTL)
}

// uploadSession is an open upload session of a repository.
type uploadSession struct {
	id       string
	recorded bool // the log holds its upload.started; it may have staged bytes
	// end is what the session's end event says of its id: when the id
	// stops verifying (zero for an id that never verified on its own).
	end eventlog.SessionEnd
}

// newSession mints the id of a new, unrecorded session of repo.
func (r *Registry) newSession(ctx context.Context, repo string) (string, error) {
	return r.ids.mint(ctx, repo, time.Now().Add(r.unrecordedTTL()))
}

// sessionEnd is what the end of session id of repo says of its id: how
// long the log must remember the end, while some replica could still
// accept the id; and when the id expires (zero when it never verified).
func (r *Registry) sessionEnd(ctx context.Context, repo, id string) (eventlog.SessionEnd, time.Time, error) {
	expires, minted, err := r.ids.expiry(ctx, repo, id)
	if err != nil || !minted {
		return eventlog.SessionEnd{}, time.Time{}, err
	}
	if remember := expires.Add(idSkew); remember.After(time.Now()) {
		return eventlog.SessionEnd{IDExpires: remember.UnixNano()}, expires, nil
	}
	return eventlog.SessionEnd{}, expires, nil
}

// sessionUnknown is the answer for an id that is no open session of repo.
func sessionUnknown(repo, id string) error {
	return errorf(CodeBlobUploadUnknown, "upload %s is not open in repository %s (it finished, was cancelled or expired)", id, repo)
}

// session returns the open upload session id of repo, recorded or not.
func (r *Registry) session(ctx context.Context, repo, id string) (uploadSession, error) {
	unknown := sessionUnknown(repo, id)
	s := uploadSession{id: id}
	end, expires, err := r.sessionEnd(ctx, repo, id)
	if err != nil {
		return s, err
	}
	s.end = end
	u, err := r.log.Upload(ctx, id)
	switch {
	case err == nil && u.Repo == repo:
		s.recorded = true
		return s, nil
	case err == nil, errors.Is(err, eventlog.ErrUploadEnded):
		return s, unknown
	case !errors.Is(err, eventlog.ErrNotFound):
		return s, err
	}
	// Never recorded: open while its id verifies and has not expired.
	if !time.Now().Before(expires) {
		return s, unknown
	}
	return s, nil
}

// record makes s a recorded session, with an empty staging file, before
// its first bytes: within the caps on open sessions, which count recorded
// ones. The caller holds its lease.
func (r *Registry) record(ctx context.Context, repo string, s *uploadSession) error {
	if s.recorded {
		return nil
	}
	if err := r.checkUploadCaps(ctx, repo); err != nil {
		return err
	}
	if err := r.blobs.CreateUpload(ctx, s.id); err != nil {
		// A crash between a CreateUpload and its upload.started leaves the
		// staging area behind, and the id stays valid: under the lease,
		// with no record in the log, it is no one's. Start it afresh.
		if _, serr := r.blobs.UploadSize(ctx, s.id); serr != nil {
			return err
		}
		if err := r.blobs.AbortUpload(ctx, s.id); err != nil {
			return err
		}
		if err := r.blobs.CreateUpload(ctx, s.id); err != nil {
			return err
		}
	}
	_, err := r.log.Append(ctx, eventlog.New(eventlog.TypeUploadStarted, repo, eventlog.UploadStarted{ID: s.id}))
	if errors.Is(err, eventlog.ErrConflict) {
		// Ended meanwhile, by a request whose lease had lapsed.
		err = sessionUnknown(repo, s.id)
	}
	if err != nil {
		r.blobs.AbortUpload(context.WithoutCancel(ctx), s.id)
		return err
	}
	s.recorded = true
	return nil
}

// openCounts keeps the open-session counts a POST's early check of the
// caps read (OpenUploads), for up to openCountsFor and only while this
// process appends nothing that may change them (Log.UploadsChanged):
// after a recording or an end here the next POST asks again, so one
// server answers as if it asked every time; another replica's recordings
// show within the second. Bounded: cleared when it holds openCountsMax
// repositories.
type openCounts struct {
	mu     sync.Mutex
	counts map[string]openCount
}

type openCount struct {
	gen           uint64 // Log.UploadsChanged when read
	at            time.Time
	inRepo, total int
}

const (
	openCountsFor = time.Second
	openCountsMax = 1024
)

func (c *openCounts) get(repo string, gen uint64, now time.Time) (inRepo, total int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.counts[repo]
	if !ok || n.gen != gen || now.Sub(n.at) >= openCountsFor || now.Before(n.at) {
		return 0, 0, false
	}
	return n.inRepo, n.total, true
}

func (c *openCounts) put(repo string, gen uint64, now time.Time, inRepo, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil || len(c.counts) >= openCountsMax {
		c.counts = make(map[string]openCount)
	}
	c.counts[repo] = openCount{gen, now, inRepo, total}
}
