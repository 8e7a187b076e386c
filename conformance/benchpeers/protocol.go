package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// The OCI distribution requests of the steps, each checking the status
// the specification gives for success.

// do sends a request and returns the response if its status is want; any
// other status is an error that quotes the start of the body.
func (w *workload) do(ctx context.Context, method, target string, body io.Reader, size int64, want int, headers ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, w.resolve(target), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %d, want %d: %s", method, req.URL.Path, resp.StatusCode, want, bytes.TrimSpace(msg))
	}
	return resp, nil
}

// done drains and closes a response, so that its connection is reused.
func done(resp *http.Response) {
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// resolve makes a path or a Location header absolute against the server.
func (w *workload) resolve(target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target
	}
	base, _ := url.Parse(w.base)
	ref, err := url.Parse(target)
	if err != nil {
		return w.base + target
	}
	return base.ResolveReference(ref).String()
}

// withDigest adds ?digest= (or &digest=) to an upload location.
func withDigest(location, digest string) string {
	sep := "?"
	if strings.Contains(location, "?") {
		sep = "&"
	}
	return location + sep + "digest=" + url.QueryEscape(digest)
}

// startUpload opens an upload session in repo and returns its location.
func (w *workload) startUpload(ctx context.Context, repo string) (string, error) {
	resp, err := w.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/", nil, 0, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	done(resp)
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("POST /v2/%s/blobs/uploads/: no Location", repo)
	}
	return loc, nil
}

// pushBlob uploads a blob monolithically: POST, then one PUT ?digest=
// with the bytes.
func (w *workload) pushBlob(ctx context.Context, repo string, body io.Reader, size int64, digest string) error {
	loc, err := w.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	resp, err := w.do(ctx, "PUT", withDigest(loc, digest), body, size, http.StatusCreated, "Content-Type", "application/octet-stream")
	if err != nil {
		return err
	}
	done(resp)
	return nil
}

// checkBlob asks for the blob's size (HEAD) and compares it.
func (w *workload) checkBlob(ctx context.Context, repo, digest string, size int64) error {
	resp, err := w.do(ctx, "HEAD", "/v2/"+repo+"/blobs/"+digest, nil, 0, http.StatusOK)
	if err != nil {
		return err
	}
	done(resp)
	if resp.ContentLength != size {
		return fmt.Errorf("HEAD %s: %d bytes, want %d", digest, resp.ContentLength, size)
	}
	return nil
}

// getBlob fetches a blob and checks its bytes against want.
func (w *workload) getBlob(ctx context.Context, repo string, want smallBlob) error {
	resp, err := w.do(ctx, "GET", "/v2/"+repo+"/blobs/"+want.digest, nil, 0, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(want.data))+1))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want.data) {
		return fmt.Errorf("GET blob %s: %d bytes, not the ones pushed", want.digest, len(got))
	}
	return nil
}

// putManifest PUTs an image manifest under a tag.
func (w *workload) putManifest(ctx context.Context, repo, tag string, m []byte) error {
	resp, err := w.do(ctx, "PUT", "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(m), int64(len(m)), http.StatusCreated, "Content-Type", mediaTypeManifest)
	if err != nil {
		return err
	}
	done(resp)
	return nil
}

// getManifest GETs a manifest by tag and checks that its bytes hash to
// digest.
func (w *workload) getManifest(ctx context.Context, repo, tag, digest string) error {
	resp, err := w.do(ctx, "GET", "/v2/"+repo+"/manifests/"+tag, nil, 0, http.StatusOK, "Accept", mediaTypeManifest)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(resp.Body, 4*mib)); err != nil {
		return err
	}
	if got := hexDigest(h); got != digest {
		return fmt.Errorf("GET manifest %s:%s: %s, want %s", repo, tag, got, digest)
	}
	return nil
}

// nextLink is the target of a Link header's rel="next", if any.
var nextLink = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// listTags lists every tag of repo, following Link headers, and returns
// how many there are.
func (w *workload) listTags(ctx context.Context, repo string) (int, error) {
	next, n := "/v2/"+repo+"/tags/list", 0
	for page := 0; next != ""; page++ {
		if page == 10_000 {
			return n, fmt.Errorf("tags list of %s: more than 10,000 pages", repo)
		}
		resp, err := w.do(ctx, "GET", next, nil, 0, http.StatusOK)
		if err != nil {
			return n, err
		}
		var body struct{ Tags []string }
		err = jsonDecode(resp.Body, &body)
		done(resp)
		if err != nil {
			return n, fmt.Errorf("tags list of %s: %w", repo, err)
		}
		n += len(body.Tags)
		next = ""
		if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			next = m[1]
		}
	}
	return n, nil
}

// jsonDecode decodes a JSON body of at most 64 MiB.
func jsonDecode(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, 64*mib)).Decode(v)
}
