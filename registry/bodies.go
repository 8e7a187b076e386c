package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// errBodyStalled is the error a request body gives once it has made no
// progress for Options.BodyIdleTimeout.
var errBodyStalled = errors.New("the request body stalled")

// idleBody cuts a request body that makes no progress: before each read it
// moves the connection's read deadline idle into the future, so a client
// that goes quiet mid-body ends its request after idle, whatever the body's
// total length, and a slow but steady client is never cut.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b idleBody) Read(p []byte) (int, error) {
	// Errors: the connection cannot take deadlines (HTTP/1 and HTTP/2 in
	// net/http both can); the read below then blocks as before.
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil, err == io.EOF:
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w for more than %s", errBodyStalled, b.idle)
	default:
		// The body ended early (io.ErrUnexpectedEOF from net/http) or the
		// connection broke: the client's doing, marked as such here so
		// that no other unexpected EOF passes for it.
		err = fmt.Errorf("%w: %w", errBodyCut, err)
	}
	return n, err
}

// errBodyCut is the error of a request body that ended before its
// announced length or whose connection broke.
var errBodyCut = errors.New("the request body was cut off")

// withIdleBody guards req's body, if it has one, with the idle timeout.
func (r *Registry) withIdleBody(w http.ResponseWriter, req *http.Request) {
	if req.Body == nil || req.Body == http.NoBody {
		return
	}
	req.Body = idleBody{req.Body, http.NewResponseController(w), r.opts.BodyIdleTimeout}
}

// leaseWait is how long a request waits for another request on the same
// upload session to finish before it gives up (409).
const leaseWait = 2 * time.Second

// statusWait is how long an upload's status waits for a request working
// on the session to end (uploadStatus).
const statusWait = time.Second

// leaseTTL is how long an upload lease lasts without renewal: longer than
// the body idle timeout, so that a holder still receiving bytes renews it
// in time, and a holder that died frees the session soon after.
func (r *Registry) leaseTTL() time.Duration {
	return max(2*r.opts.BodyIdleTimeout, 10*time.Second)
}

// leaseSession takes the lease of id and checks that id is an open
// session of repo. The check comes under the lease, once: the request
// that held the lease before may have finished or cancelled the session,
// or recorded it. A lease taken for an id that is no session is given
// back at once. No lock or connection is held while the caller waits on
// the client; the caller renews the lease while bytes flow (leasedBody)
// and ends with Release.
func (r *Registry) leaseSession(ctx context.Context, repo, id string) (*eventlog.Lease, uploadSession, error) {
	ls, err := r.log.LeaseUpload(ctx, id, r.leaseTTL(), leaseWait)
	if errors.Is(err, eventlog.ErrBusy) {
		if _, err := r.session(ctx, repo, id); err != nil {
			return nil, uploadSession{}, err // no session of this repository: say so, not busy
		}
		e := errorf(CodeBlobUploadInvalid, "another request is working on upload %s; retry when it has finished (GET %s shows its progress)", id, uploadURL(repo, id)).withStatus(http.StatusConflict)
		return nil, uploadSession{}, e
	}
	if err != nil {
		return nil, uploadSession{}, err
	}
	s, err := r.session(ctx, repo, id)
	if err != nil {
		ls.Release()
		return nil, s, err
	}
	return ls, s, nil
}

// keepLease renews ls in the background until the returned stop is
// called: for work under a lease that reads no body (a commit that
// assembles or re-reads a large upload), so the lease does not lapse
// while it runs.
func keepLease(ctx context.Context, ls *eventlog.Lease) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ls.TTL() / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				ls.Renew(context.WithoutCancel(ctx))
			}
		}
	}()
	return func() { close(done) }
}

// leasedBody renews an upload lease while a body keeps delivering bytes,
// and stops the body when the lease is lost (it expired while the body
// stalled and another request took the session).
type leasedBody struct {
	io.Reader
	ctx   context.Context
	lease *eventlog.Lease
	next  time.Time
}

func newLeasedBody(ctx context.Context, r io.Reader, ls *eventlog.Lease) *leasedBody {
	return &leasedBody{Reader: r, ctx: ctx, lease: ls, next: time.Now().Add(ls.TTL() / 3)}
}

func (b *leasedBody) Read(p []byte) (int, error) {
	if time.Now().After(b.next) {
		if err := b.lease.Renew(b.ctx); err != nil {
			return 0, err
		}
		b.next = time.Now().Add(b.lease.TTL() / 3)
	}
	return b.Reader.Read(p)
}
