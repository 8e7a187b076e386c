// Package client pushes native artifacts to an artifact-store server and
// pulls them back, over the server's HTTP API. It is what the
// "artifactstore push" and "artifactstore pull" commands run.
//
// A push sends each file through a /v2/ upload session of the repository,
// then publishes the version's native manifest:
//
//	hash the file: SHA-256 and BLAKE3 in one read
//	HEAD  /v2/<repo>/blobs/<sha256>                   200: already there, nothing to send
//	POST  /v2/<repo>/blobs/uploads/?mount=<sha256>    201: linked from another repository
//	                                                  202: Location of a new session
//	PATCH <location>  Content-Range: <start>-<end>    one per chunk (8 MiB); after a
//	                                                  network error or 5xx:
//	GET   <location>  -> Range: 0-<last>              resume at last+1, with backoff
//	PUT   <location>?digest=<sha256>                  201: the blob is committed
//	PUT   /api/v1/repositories/<repo>/-/versions/<version>
//	      {"manifestVersion":1, "files":[{path, size, mediaType, sha256, blake3}], …}
//	                                                  201 published, 200 identical
//	                                                  version already published
//
// The session's location is kept in a small state file (see WithStateDir)
// from the POST until the PUT, named after the server, the repository and
// the file's SHA-256; running the same push again after an interruption,
// even from a new process, resumes at the offset the server reports.
//
// A pull reads the version's manifest, then streams each file into a
// temporary file beside its destination, hashing SHA-256 and BLAKE3 as it
// writes, compares both with the manifest (and with the response's
// Repr-Digest), syncs, and renames it into place. A file whose bytes do not
// match is deleted and the pull fails. A download that breaks off goes on
// with a Range request from the bytes already written:
//
//	GET /api/v1/repositories/<repo>/-/versions/<version>      the manifest, JSON
//	GET .../-/versions/<version>/files/<path>                 200 (or 206 for
//	    Range: bytes=<written>-, If-Range: <ETag>)            a resumed one)
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/manifests"
)

// Defaults of a Client.
const (
	DefaultChunkSize = 8 << 20
	DefaultRetries   = 5
	DefaultBackoff   = 500 * time.Millisecond
	maxBackoff       = 10 * time.Second
)

// Client talks to one server. It is safe for sequential use; one Push or
// Pull at a time.
type Client struct {
	base      *url.URL
	hc        *http.Client
	chunkSize int64
	retries   int
	backoff   time.Duration
	stateDir  string
	progress  *progress
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc instead of a client of its own.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithChunkSize sets the size of each PATCH of an upload (default 8 MiB).
func WithChunkSize(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.chunkSize = n
		}
	}
}

// WithRetries sets how many times a failed request is retried (default 5)
// and the wait before the first retry, doubled for each next one up to 10 s
// (default 500 ms). Only network errors and 5xx, 408 and 429 answers are
// retried.
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *Client) { c.retries, c.backoff = max(n, 0), backoff }
}

// WithStateDir sets where unfinished uploads are remembered, so that a
// push started again resumes them. The default is artifactstore/uploads
// under os.UserCacheDir; "" turns remembering off.
func WithStateDir(dir string) Option { return func(c *Client) { c.stateDir = dir } }

// WithProgress sends progress and the one-line summary of each file to w
// (default os.Stderr). With terminal, a file still transferring after a
// second gets a progress bar, redrawn in place; the default is true when
// stderr is a terminal.
func WithProgress(w io.Writer, terminal bool) Option {
	return func(c *Client) { c.progress = newProgress(w, terminal) }
}

// New returns a client of the server at baseURL (http:// or https://, with
// an optional path prefix).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: write http://host:port or https://host", baseURL)
	}
	c := &Client{
		base: u, hc: &http.Client{}, chunkSize: DefaultChunkSize,
		retries: DefaultRetries, backoff: DefaultBackoff,
		progress: newProgress(os.Stderr, isTerminal(os.Stderr)),
	}
	if dir, err := os.UserCacheDir(); err == nil {
		c.stateDir = filepath.Join(dir, "artifactstore", "uploads")
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Result describes a pushed or pulled version.
type Result struct {
	Repository   string
	Version      string
	Digest       string // sha256 of the canonical CBOR manifest
	BLAKE3       string // blake3 of the same bytes (push only)
	OCIDigest    string // the derived OCI manifest on /v2/
	ArtifactType string
	// Published is true when a push created the version, false when the
	// identical version was already there.
	Published bool
	Files     []FileResult
}

// FileResult describes one file of a push or pull.
type FileResult struct {
	Path   string // in the artifact
	Local  string // on this machine
	Size   int64
	SHA256 string
	BLAKE3 string
	// Transferred counts the bytes sent or received for this file by this
	// call, retries included: less than Size when an upload resumed, 0
	// when the file was already there (Skipped).
	Transferred int64
	Resumed     int64 // the offset an upload resumed at
	Skipped     bool
}

// ParseReference splits "REPO:VERSION".
func ParseReference(ref string) (repo, version string, err error) {
	i := strings.LastIndexByte(ref, ':')
	if i <= 0 || i == len(ref)-1 || strings.Contains(ref[i+1:], "/") {
		return "", "", fmt.Errorf("%q: write REPOSITORY:VERSION, like team/app:1.2.0", ref)
	}
	repo, version = ref[:i], ref[i+1:]
	if err := manifests.ValidVersion(version); err != nil {
		return "", "", err
	}
	return repo, version, nil
}

// Error is an answer of the server that was not what the request wanted.
// Code, Message and Detail come from the JSON error envelope, when the
// body had one.
type Error struct {
	Method  string
	URL     string
	Status  int
	Code    string
	Message string
	Detail  json.RawMessage
}

func (e *Error) Error() string {
	u := e.URL
	if p, err := url.Parse(u); err == nil {
		u = p.RequestURI()
	}
	msg := e.Message
	if e.Code != "" {
		msg = e.Code + ": " + msg
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, u, e.Status, msg)
}

// temporary reports whether the same request may succeed later.
func (e *Error) temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// hasStatus reports whether err is an *Error with one of the statuses.
func hasStatus(err error, status ...int) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, s := range status {
		if e.Status == s {
			return true
		}
	}
	return false
}

// localError marks failures of this machine (reading a file, writing a
// download), which retrying a request does not fix.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// retryable reports whether a failed request is worth sending again.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var le *localError
	if errors.As(err, &le) || errors.Is(err, ErrMismatch) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.temporary()
	}
	return true // a network error
}

// wait says why and sleeps before retry number attempt (1, 2, …), or
// until ctx ends.
func (c *Client) wait(ctx context.Context, attempt int, cause error) error {
	d := c.backoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	c.progress.line("retry %d of %d in %s: %v", attempt, c.retries, d, cause)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// url is the absolute URL of a server path ("/v2/…"); the path must be
// escaped already.
func (c *Client) url(escapedPath string) string { return c.base.String() + escapedPath }

// resolve turns a Location header into an absolute URL.
func (c *Client) resolve(loc string) (string, error) {
	if loc == "" {
		return "", errors.New("the server sent no Location")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("the Location %q: %w", loc, err)
	}
	return c.base.ResolveReference(u).String(), nil
}

func (c *Client) versionPath(repo, version string) string {
	return "/api/v1/repositories/" + escapePath(repo) + "/-/versions/" + url.PathEscape(version)
}

// escapePath escapes each "/"-separated part of an artifact path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// newRequest builds a request; body may be nil.
func (c *Client) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, &localError{err}
	}
	return req, nil
}

// do sends req. A response whose status is in ok is returned open; any
// other becomes an *Error, its body read and closed.
func (c *Client) do(req *http.Request, ok ...int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	e := &Error{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Errors []struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		e.Code, e.Message, e.Detail = env.Errors[0].Code, env.Errors[0].Message, env.Errors[0].Detail
	} else if req.Method != http.MethodHead {
		e.Message = strings.TrimSpace(string(body))
	}
	return nil, e
}

// drain reads what is left of a response body and closes it, so the
// connection can be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// parseRange reads an upload's "Range: 0-<last>" as the number of bytes
// the server holds. "0-0" is ambiguous (nothing, or one byte); it reads as
// nothing, and a chunk sent from there is answered 416 with the true count
// if that is wrong.
func parseRange(s string) (int64, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "bytes=")
	a, b, ok := strings.Cut(s, "-")
	if !ok || a != "0" {
		return 0, false
	}
	last, err := strconv.ParseInt(b, 10, 64)
	if err != nil || last < 0 {
		return 0, false
	}
	if last == 0 {
		return 0, true
	}
	return last + 1, true
}
