package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/manifests"
)

// ErrMismatch is returned (wrapped) when downloaded bytes are not the
// bytes the manifest names: another size, another SHA-256 or BLAKE3
// digest, or a Repr-Digest header that disagrees with the manifest.
var ErrMismatch = errors.New("downloaded bytes do not match the manifest")

// Pull downloads the files of repo:version into dir, which it creates if
// needed, each at dir/<path>. A file is written to a temporary file beside
// its destination while both its digests are computed, and renamed into
// place only when both match the manifest; a mismatch removes it and fails
// with ErrMismatch. A file already there with the same bytes is left
// alone; one with other bytes is replaced. No path may lead out of dir,
// through ".." or a symbolic link.
func (c *Client) Pull(ctx context.Context, repo, version, dir string) (Result, error) {
	res := Result{Repository: repo, Version: version}
	if err := manifests.ValidVersion(version); err != nil {
		return res, err
	}
	n, err := c.manifest(ctx, repo, version, &res)
	if err != nil {
		return res, err
	}
	for _, f := range n.Files {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return res, fmt.Errorf("the manifest names %q, which would leave %s", f.Path, dir)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return res, err
	}
	defer root.Close()
	for _, f := range n.Files {
		fr, err := c.pullFile(ctx, root, repo, version, f)
		res.Files = append(res.Files, fr)
		if err != nil {
			return res, fmt.Errorf("pull %s: %w", f.Path, err)
		}
	}
	return res, nil
}

// manifest fetches and checks a version's manifest.
// GET /api/v1/repositories/<repo>/-/versions/<version>: 200, JSON.
func (c *Client) manifest(ctx context.Context, repo, version string, res *Result) (*manifests.Native, error) {
	n := &manifests.Native{}
	err := c.retry(ctx, func() error {
		*n = manifests.Native{}
		req, err := c.newRequest(ctx, http.MethodGet, c.url(c.versionPath(repo, version)), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.do(req, http.StatusOK)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(io.LimitReader(resp.Body, manifests.MaxSize+1)).Decode(n); err != nil {
			return fmt.Errorf("GET %s: reading the manifest: %w", req.URL.Path, err)
		}
		res.Digest = resp.Header.Get("Native-Digest")
		if res.Digest == "" { // a server from before Native-Digest: its ETag was the digest
			res.Digest = strings.Trim(resp.Header.Get("ETag"), `"`)
		}
		res.OCIDigest = resp.Header.Get("OCI-Digest")
		return nil
	})
	if err != nil {
		return nil, err
	}
	// ValidateView, not Validate: a version pushed over /v2/ may have no
	// files (an index); the server's view follows every other rule.
	if err := n.ValidateView(); err != nil {
		return nil, fmt.Errorf("the server sent an invalid manifest for %s:%s: %w", repo, version, err)
	}
	if n.Repository != repo || n.Version != version {
		return nil, fmt.Errorf("asked for %s:%s, the server sent the manifest of %s:%s", repo, version, n.Repository, n.Version)
	}
	res.ArtifactType = n.ArtifactType
	if res.ArtifactType == "" {
		res.ArtifactType = manifests.DefaultArtifactType
	}
	return n, nil
}

// pullFile downloads one file into root, unless it is there already.
func (c *Client) pullFile(ctx context.Context, root *os.Root, repo, version string, f manifests.File) (FileResult, error) {
	local := filepath.FromSlash(f.Path)
	fr := FileResult{Path: f.Path, Local: filepath.Join(root.Name(), local), Size: f.Size, SHA256: f.SHA256, BLAKE3: f.BLAKE3}
	same, err := c.sameFile(ctx, root, local, f)
	if err != nil {
		return fr, err
	}
	if same {
		fr.Skipped = true
		c.progress.line("same    %s  %s, already in %s", f.Path, size(f.Size), root.Name())
		return fr, nil
	}
	dir := filepath.Dir(local)
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return fr, err
	}
	tmpName := filepath.Join(dir, "."+filepath.Base(local)+".artifactstore-"+strings.ToLower(rand.Text()[:10]))
	tmp, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fr, err
	}
	kept := false
	defer func() {
		if !kept {
			tmp.Close()
			root.Remove(tmpName)
		}
	}()
	tr := c.progress.start(f.Path, f.Size)
	u := c.url(c.versionPath(repo, version) + "/files/" + escapePath(f.Path))
	err = c.download(ctx, u, tmp, f, tr)
	fr.Transferred = tr.moved.Load()
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = root.Rename(tmpName, local)
	}
	if err != nil {
		tr.finish("")
		return fr, err
	}
	kept = true
	if d, err := root.Open(dir); err == nil {
		d.Sync() // the rename, durable
		d.Close()
	}
	tr.finish(fmt.Sprintf("pulled  %s  %s %s, sha256 and blake3 verified", f.Path, size(f.Size), tr.timing()))
	return fr, nil
}

// sameFile reports whether root holds f at local already.
func (c *Client) sameFile(ctx context.Context, root *os.Root, local string, f manifests.File) (bool, error) {
	st, err := root.Stat(local)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Size() != f.Size {
		return false, nil
	}
	r, err := root.Open(local)
	if err != nil {
		return false, err
	}
	defer r.Close()
	sha, b3 := digest.SHA256.New(), digest.BLAKE3.New()
	tr := c.progress.start("checking "+f.Path, f.Size)
	defer tr.finish("")
	if _, err := io.Copy(io.MultiWriter(sha, b3, tr), ctxReader{ctx, r}); err != nil {
		return false, err
	}
	return sum(digest.SHA256, sha) == f.SHA256 && sum(digest.BLAKE3, b3) == f.BLAKE3, nil
}

func sum(a digest.Algorithm, h hash.Hash) string { return digest.NewDigest(a, h.Sum(nil)).String() }

// download writes the file at u to out and checks its size and digests. A
// transfer that breaks off is resumed with a Range request; the hashes
// carry on over the bytes already written.
// GET .../-/versions/<version>/files/<path>: 200, or 206 for a Range.
func (c *Client) download(ctx context.Context, u string, out *os.File, f manifests.File, tr *transfer) error {
	sha, b3 := digest.SHA256.New(), digest.BLAKE3.New()
	var written int64
	var etag string
	get := func() error {
		req, err := c.newRequest(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if written > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", written))
			if etag != "" {
				req.Header.Set("If-Range", etag)
			}
		}
		resp, err := c.do(req, http.StatusOK, http.StatusPartialContent)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", written)):
			return fmt.Errorf("%w: asked for bytes %d- of %s, the server sent %q", ErrMismatch, written, f.Path, resp.Header.Get("Content-Range"))
		case resp.StatusCode == http.StatusOK && written > 0:
			// The whole file instead of the rest: start over.
			if err := out.Truncate(0); err != nil {
				return &localError{err}
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return &localError{err}
			}
			sha.Reset()
			b3.Reset()
			written = 0
			tr.set(0)
		}
		if written == 0 {
			etag = resp.Header.Get("ETag")
			if err := checkReprDigest(resp.Header.Get("Repr-Digest"), f); err != nil {
				return err
			}
		}
		rest := f.Size - written
		if resp.ContentLength >= 0 && resp.ContentLength != rest {
			return fmt.Errorf("%w: %s has %d bytes, the server sends %d more after byte %d", ErrMismatch, f.Path, f.Size, resp.ContentLength, written)
		}
		n, err := io.Copy(io.MultiWriter(fileWriter{out}, sha, b3, tr), io.LimitReader(resp.Body, rest+1))
		written += n
		switch {
		case err != nil:
			return err
		case written > f.Size:
			return fmt.Errorf("%w: %s has %d bytes, the server sent more", ErrMismatch, f.Path, f.Size)
		case written < f.Size:
			return fmt.Errorf("%s: the answer ended after %d of %d bytes: %w", f.Path, written, f.Size, io.ErrUnexpectedEOF)
		}
		return nil
	}
	if err := c.retry(ctx, get); err != nil {
		return err
	}
	if gs, gb := sum(digest.SHA256, sha), sum(digest.BLAKE3, b3); gs != f.SHA256 || gb != f.BLAKE3 {
		return fmt.Errorf("%w: %s: the %d bytes received have %s and %s; the manifest says %s and %s; nothing was written",
			ErrMismatch, f.Path, written, gs, gb, f.SHA256, f.BLAKE3)
	}
	return nil
}

// fileWriter marks write errors of the download as local.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = &localError{err}
	}
	return n, err
}

// checkReprDigest compares an RFC 9530 Repr-Digest field with the
// manifest: "sha-256=:<base64>:, blake3=:<base64>:". Algorithms it does not
// know, and members it cannot read, are ignored.
func checkReprDigest(field string, f manifests.File) error {
	want := map[string]string{"sha-256": digest.Digest(f.SHA256).Hex(), "blake3": digest.Digest(f.BLAKE3).Hex()}
	for _, member := range strings.Split(field, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(member), "=")
		if !ok || len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
			continue
		}
		w, known := want[strings.ToLower(k)]
		raw, err := base64.StdEncoding.DecodeString(v[1 : len(v)-1])
		if !known || err != nil {
			continue
		}
		if got := hex.EncodeToString(raw); got != w {
			return fmt.Errorf("%w: %s: the server's Repr-Digest has %s %s, the manifest %s", ErrMismatch, f.Path, k, got, w)
		}
	}
	return nil
}
