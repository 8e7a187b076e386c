package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/manifests"
)

// PushOptions is what a push adds to the manifest besides its files.
type PushOptions struct {
	ArtifactType string            // a media type; the server's default when empty
	Annotations  map[string]string // keys must not be empty
}

// Push uploads files and publishes them as repo:version.
//
// Each file is given as LOCAL, published under its base name, or as
// LOCAL=PATH, published under PATH (relative, "/"-separated, without "."
// or ".." parts). An argument that names an existing file is always taken
// whole, so a local name may contain "="; otherwise it is split at its last
// "=", so PATH cannot. Every file gets the media type
// application/octet-stream.
//
// Files already in the repository are not sent again. An interrupted
// upload is resumed, by this call when it can (see WithRetries) or by the
// next Push of the same file to the same repository (see WithStateDir).
// Versions are immutable: publishing the same files again returns the
// existing version (Result.Published false); different files under an
// existing version fail with the server's VERSION_EXISTS error.
func (c *Client) Push(ctx context.Context, repo, version string, files []string, opts PushOptions) (Result, error) {
	res := Result{Repository: repo, Version: version}
	if err := manifests.ValidVersion(version); err != nil {
		return res, err
	}
	specs, err := parseFileArgs(files)
	if err != nil {
		return res, err
	}
	for k := range opts.Annotations {
		if k == "" {
			return res, errors.New("annotation keys must not be empty")
		}
	}
	n := &manifests.Native{
		ManifestVersion: manifests.NativeVersion1, Repository: repo, Version: version,
		ArtifactType: opts.ArtifactType, Annotations: opts.Annotations,
	}
	for _, s := range specs {
		fr, err := c.pushFile(ctx, repo, s)
		if err != nil {
			return res, fmt.Errorf("push %s: %w", s.local, err)
		}
		res.Files = append(res.Files, fr)
		n.Files = append(n.Files, manifests.File{
			Path: fr.Path, Size: fr.Size, MediaType: manifests.DefaultFileMediaType, SHA256: fr.SHA256, BLAKE3: fr.BLAKE3,
		})
	}
	n.Normalize()
	return res, c.publish(ctx, n, &res)
}

// fileSpec is one file to push.
type fileSpec struct{ local, path string }

// parseFileArgs reads LOCAL and LOCAL=PATH arguments and checks them all
// before anything is sent.
func parseFileArgs(args []string) ([]fileSpec, error) {
	if len(args) == 0 {
		return nil, errors.New("no files to push")
	}
	var specs []fileSpec
	seen := map[string]string{}
	for _, a := range args {
		s := fileSpec{local: a}
		if _, err := os.Stat(a); err != nil {
			if i := strings.LastIndexByte(a, '='); i >= 0 {
				s.local, s.path = a[:i], a[i+1:]
				if s.path == "" {
					return nil, fmt.Errorf("%q: nothing after =; write LOCAL=PATH", a)
				}
			}
		}
		if s.path == "" {
			s.path = filepath.Base(s.local)
		}
		if err := manifests.ValidPath(s.path); err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		st, err := os.Stat(s.local)
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", s.local)
		}
		if prev, dup := seen[s.path]; dup {
			return nil, fmt.Errorf("%s and %s would both be %q; name one with LOCAL=PATH", prev, s.local, s.path)
		}
		seen[s.path] = s.local
		specs = append(specs, s)
	}
	return specs, nil
}

// pushFile hashes one file and, unless the repository has its bytes
// already, uploads them.
func (c *Client) pushFile(ctx context.Context, repo string, s fileSpec) (FileResult, error) {
	f, err := os.Open(s.local)
	if err != nil {
		return FileResult{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FileResult{}, err
	}
	fr := FileResult{Path: s.path, Local: s.local, Size: st.Size()}
	if err := c.hashFile(ctx, f, &fr); err != nil {
		return fr, err
	}
	var exists bool
	err = c.retry(ctx, func() (err error) {
		exists, err = c.blobExists(ctx, repo, fr.SHA256)
		return err
	})
	if err != nil {
		return fr, err
	}
	if exists {
		fr.Skipped = true
		c.progress.line("exists  %s  %s, already in %s", fr.Path, size(fr.Size), repo)
		return fr, nil
	}
	tr := c.progress.start(fr.Path, fr.Size)
	mounted, err := c.upload(ctx, repo, f, &fr, tr)
	fr.Transferred = tr.moved.Load()
	switch {
	case err != nil:
		tr.finish("")
	case mounted:
		fr.Skipped = true
		tr.finish(fmt.Sprintf("linked  %s  %s, already on the server", fr.Path, size(fr.Size)))
	case fr.Resumed > 0:
		tr.finish(fmt.Sprintf("pushed  %s  %s, resumed at %s, %s", fr.Path, size(fr.Size), size(fr.Resumed), tr.timing()))
	default:
		tr.finish(fmt.Sprintf("pushed  %s  %s %s", fr.Path, size(fr.Size), tr.timing()))
	}
	return fr, err
}

// hashFile computes the SHA-256 and BLAKE3 digests of f in one read.
func (c *Client) hashFile(ctx context.Context, f *os.File, fr *FileResult) error {
	sha, b3 := digest.SHA256.New(), digest.BLAKE3.New()
	tr := c.progress.start("hashing "+fr.Path, fr.Size)
	defer tr.finish("")
	n, err := io.Copy(io.MultiWriter(sha, b3, tr), ctxReader{ctx, io.NewSectionReader(f, 0, fr.Size)})
	if err != nil {
		return err
	}
	if n != fr.Size {
		return fmt.Errorf("read %d bytes of %d: the file changed while it was read", n, fr.Size)
	}
	fr.SHA256 = digest.NewDigest(digest.SHA256, sha.Sum(nil)).String()
	fr.BLAKE3 = digest.NewDigest(digest.BLAKE3, b3.Sum(nil)).String()
	return nil
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// upload sends the bytes of f through an upload session of repo and
// commits them; mounted reports that the server linked a copy it had in
// another repository instead. It resumes a session remembered from an
// earlier run, and after a failed request asks the server how much it
// holds and goes on from there.
func (c *Client) upload(ctx context.Context, repo string, f io.ReaderAt, fr *FileResult, tr *transfer) (mounted bool, err error) {
	statePath := c.statePath(repo, fr.SHA256)
	var (
		loc    string
		offset int64
		known  bool // whether offset is what the server holds
	)
	if s, ok := loadState(statePath); ok && s.Server == c.base.String() && s.Repository == repo && s.SHA256 == fr.SHA256 && s.Size == fr.Size {
		loc = s.Location
	}
	resuming := loc != ""
	failures := 0
	for {
		var err error
		switch {
		case loc == "":
			loc, mounted, err = c.startUpload(ctx, repo, fr.SHA256)
			if err == nil && mounted {
				return true, nil
			}
			if err == nil {
				offset, known = 0, true
				tr.set(0)
				c.saveState(statePath, uploadState{Server: c.base.String(), Repository: repo, SHA256: fr.SHA256,
					Size: fr.Size, Location: loc, Local: fr.Local, Started: time.Now().UTC()})
			}
		case !known:
			offset, err = c.uploadStatus(ctx, loc)
			if err == nil {
				known = true
				tr.set(offset)
				if resuming {
					fr.Resumed, resuming = offset, false
				}
				continue
			}
			if hasStatus(err, http.StatusNotFound) {
				// The session is gone: committed by a PUT whose answer
				// was lost, or cancelled, or expired.
				removeState(statePath)
				loc = ""
				if ok, herr := c.blobExists(ctx, repo, fr.SHA256); herr == nil && ok {
					return false, nil
				}
				resuming = false
				continue // a new session
			}
		case offset < fr.Size:
			var next string
			n := min(c.chunkSize, fr.Size-offset)
			next, offset, err = c.patch(ctx, loc, f, offset, n, tr)
			if err == nil {
				failures = 0
				if next != loc {
					loc = next
					c.saveState(statePath, uploadState{Server: c.base.String(), Repository: repo, SHA256: fr.SHA256,
						Size: fr.Size, Location: loc, Local: fr.Local, Started: time.Now().UTC()})
				}
				continue
			}
			if hasStatus(err, http.StatusRequestedRangeNotSatisfiable) {
				// The server holds another count than we thought: its
				// answer says how many, or the status will.
				offset, known = received(err)
				tr.set(offset)
				if failures++; failures > c.retries {
					return false, fmt.Errorf("giving up after %d attempts: %w", failures, err)
				}
				continue
			}
		default:
			err = c.commit(ctx, loc, fr.SHA256)
			if err == nil {
				removeState(statePath)
				return false, nil
			}
			var e *Error
			if errors.As(err, &e) && e.Code == "DIGEST_INVALID" {
				return false, fmt.Errorf("the server received other bytes than were hashed (did the file change while it was pushed?): %w", err)
			}
		}
		if err == nil {
			continue
		}
		session404 := loc != "" && hasStatus(err, http.StatusNotFound)
		if !session404 && !retryable(ctx, err) {
			return false, err
		}
		if failures++; failures > c.retries {
			return false, fmt.Errorf("giving up after %d attempts: %w", failures, err)
		}
		if werr := c.wait(ctx, failures, err); werr != nil {
			return false, werr
		}
		known = false
	}
}

// received reads the byte count of a 416 answer to a chunk.
func received(err error) (int64, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusRequestedRangeNotSatisfiable {
		return 0, false
	}
	var d struct {
		Received *int64 `json:"received"`
	}
	if json.Unmarshal(e.Detail, &d) != nil || d.Received == nil {
		return 0, false
	}
	return *d.Received, true
}

// blobExists asks whether repo holds a blob.
// HEAD /v2/<repo>/blobs/<digest>: 200 or 404.
func (c *Client) blobExists(ctx context.Context, repo, d string) (bool, error) {
	req, err := c.newRequest(ctx, http.MethodHead, c.url("/v2/"+escapePath(repo)+"/blobs/"+d), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.do(req, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	drain(resp)
	return resp.StatusCode == http.StatusOK, nil
}

// startUpload opens an upload session, or links the blob from another
// repository of the server when it has one.
// POST /v2/<repo>/blobs/uploads/?mount=<digest>: 201 linked, 202 Location.
func (c *Client) startUpload(ctx context.Context, repo, d string) (loc string, mounted bool, err error) {
	req, err := c.newRequest(ctx, http.MethodPost, c.url("/v2/"+escapePath(repo)+"/blobs/uploads/?mount="+d), nil)
	if err != nil {
		return "", false, err
	}
	resp, err := c.do(req, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return "", false, err
	}
	drain(resp)
	if resp.StatusCode == http.StatusCreated {
		return "", true, nil
	}
	loc, err = c.resolve(resp.Header.Get("Location"))
	return loc, false, err
}

// uploadStatus asks how many bytes an upload session holds.
// GET <location>: 204, Range: 0-<last>.
func (c *Client) uploadStatus(ctx context.Context, loc string) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.do(req, http.StatusNoContent, http.StatusOK)
	if err != nil {
		return 0, err
	}
	drain(resp)
	n, ok := parseRange(resp.Header.Get("Range"))
	if !ok {
		return 0, fmt.Errorf("GET %s: the answer has no valid Range (%q)", loc, resp.Header.Get("Range"))
	}
	return n, nil
}

// patch sends bytes [offset, offset+n) of f and returns the session's
// location and size after it.
// PATCH <location>, Content-Range: <first>-<last>: 202.
func (c *Client) patch(ctx context.Context, loc string, f io.ReaderAt, offset, n int64, tr *transfer) (string, int64, error) {
	body := &sendReader{r: io.NewSectionReader(f, offset, n), tr: tr}
	req, err := c.newRequest(ctx, http.MethodPatch, loc, body)
	if err != nil {
		return loc, offset, err
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+n-1))
	resp, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return loc, offset, err
	}
	drain(resp)
	end := offset + n
	if got, ok := parseRange(resp.Header.Get("Range")); ok && got > 0 {
		end = got
	}
	if l := resp.Header.Get("Location"); l != "" {
		if loc, err = c.resolve(l); err != nil {
			return loc, offset, err
		}
	}
	return loc, end, nil
}

// sendReader is a chunk's body: it reports progress and marks read errors
// of the local file, which retrying does not cure.
type sendReader struct {
	r  io.Reader
	tr *transfer
}

func (s *sendReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.tr.add(int64(n))
	if err != nil && err != io.EOF {
		err = &localError{err}
	}
	return n, err
}

// commit closes a session; the server checks the digest.
// PUT <location>?digest=<sha256>: 201.
func (c *Client) commit(ctx context.Context, loc, d string) error {
	u, err := url.Parse(loc)
	if err != nil {
		return &localError{err}
	}
	q := u.Query()
	q.Set("digest", d)
	u.RawQuery = q.Encode()
	req, err := c.newRequest(ctx, http.MethodPut, u.String(), http.NoBody)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// publish sends the manifest.
// PUT /api/v1/repositories/<repo>/-/versions/<version>: 201 or 200.
func (c *Client) publish(ctx context.Context, n *manifests.Native, res *Result) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return c.retry(ctx, func() error {
		req, err := c.newRequest(ctx, http.MethodPut, c.url(c.versionPath(n.Repository, n.Version)), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.do(req, http.StatusCreated, http.StatusOK)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			Digest       string `json:"digest"`
			BLAKE3       string `json:"blake3"`
			OCIDigest    string `json:"ociDigest"`
			ArtifactType string `json:"artifactType"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
		}
		res.Digest, res.BLAKE3, res.OCIDigest, res.ArtifactType = out.Digest, out.BLAKE3, out.OCIDigest, out.ArtifactType
		res.Published = resp.StatusCode == http.StatusCreated
		return nil
	})
}

// retry runs a request until it succeeds, fails for good, or has failed
// 1+retries times.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(ctx, err) {
			return err
		}
		if attempt > c.retries {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		if werr := c.wait(ctx, attempt, err); werr != nil {
			return werr
		}
	}
}

// uploadState is the state file of an unfinished upload: enough to find
// the session again. It is written when the session opens and removed when
// it commits or turns out to be gone.
type uploadState struct {
	Server     string    `json:"server"`
	Repository string    `json:"repository"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	Location   string    `json:"location"` // absolute URL of the session
	Local      string    `json:"local"`    // the file, for a person reading this
	Started    time.Time `json:"started"`
}

// statePath names the state file of an upload of a blob to a repository
// of this server, or "" when state is not kept.
func (c *Client) statePath(repo, sha string) string {
	if c.stateDir == "" {
		return ""
	}
	key := digest.FromBytes(digest.SHA256, []byte(c.base.String()+"\n"+repo+"\n"+sha)).Hex()
	return filepath.Join(c.stateDir, key[:32]+".json")
}

func loadState(path string) (uploadState, bool) {
	var s uploadState
	if path == "" {
		return s, false
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &s) != nil || s.Location == "" {
		return s, false
	}
	return s, true
}

// saveState writes a state file. Failing to is not fatal: the upload goes
// on, only a later run cannot resume it.
func (c *Client) saveState(path string, s uploadState) {
	if path == "" {
		return
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := writeFileAtomic(path, b); err != nil {
		c.progress.line("warning: cannot remember the upload for a later resume: %v", err)
	}
}

// writeFileAtomic replaces path with b: a temporary file, then a rename.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func removeState(path string) {
	if path != "" {
		os.Remove(path)
	}
}
