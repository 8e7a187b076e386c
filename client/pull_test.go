package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

// proxy is a reverse proxy to target that lets modify change the answers
// to GETs of version files.
func proxy(t *testing.T, target string, modify func(*http.Response) error) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodGet && strings.Contains(resp.Request.URL.Path, "/files/") {
			return modify(resp)
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// brokenBody yields r, then fails.
type brokenBody struct{ r io.Reader }

func (b brokenBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errCut
	}
	return n, err
}

func (brokenBody) Close() error { return nil }

// TestPullVerifies pulls through a proxy that damages the download of one
// file: a changed byte or a Repr-Digest that disagrees fail with
// ErrMismatch and leave nothing of that file behind; a body cut off once is
// resumed with a Range request.
func TestPullVerifies(t *testing.T) {
	url := newServer(t)
	src := t.TempDir()
	a, b := []byte("small and intact\n"), randomBytes(t, 1<<20)
	c := newClient(t, url)
	if _, err := c.Push(context.Background(), "p/q", "v1", []string{writeFile(t, src, "a.txt", a), writeFile(t, src, "b.bin", b) + "=sub/b.bin"}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		modify  func(resp *http.Response, nth int64) error // nth answer for b.bin
		wantErr bool
	}{
		{"flipped byte", func(resp *http.Response, _ int64) error {
			body, err := io.ReadAll(resp.Body)
			body[len(body)/2] ^= 1
			resp.Body = io.NopCloser(bytes.NewReader(body))
			return err
		}, true},
		{"wrong Repr-Digest", func(resp *http.Response, _ int64) error {
			resp.Header.Set("Repr-Digest", "sha-256=:"+strings.Repeat("A", 43)+"=:")
			return nil
		}, true},
		{"cut off once", func(resp *http.Response, nth int64) error {
			if nth == 1 {
				resp.Body = brokenBody{io.LimitReader(resp.Body, resp.ContentLength/2)}
			}
			return nil
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gets, ranges atomic.Int64 // of b.bin
			purl := proxy(t, url, func(resp *http.Response) error {
				if !strings.HasSuffix(resp.Request.URL.Path, "/b.bin") {
					return nil
				}
				if resp.Request.Header.Get("Range") != "" {
					ranges.Add(1)
				}
				return tt.modify(resp, gets.Add(1))
			})
			dst := t.TempDir()
			res, err := newClient(t, purl).Pull(context.Background(), "p/q", "v1", dst)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(filepath.Join(dst, "sub", "b.bin"))
				// Resumed, not started over: each byte came once.
				if !bytes.Equal(got, b) || ranges.Load() != 1 || res.Files[1].Transferred != int64(len(b)) {
					t.Fatalf("after a resumed download: %d bytes, equal %v, %d Range requests, %d bytes received",
						len(got), bytes.Equal(got, b), ranges.Load(), res.Files[1].Transferred)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "sub/b.bin") {
				t.Fatalf("pull of a damaged file: %v", err)
			}
			if files := filesIn(t, dst); len(files) != 1 || files[0] != "a.txt" {
				t.Fatalf("files left after the failed pull: %v (want only the intact a.txt)", files)
			}
		})
	}
}

// TestPullStaysInDir: a symbolic link in the destination that leads out of
// it is not followed.
func TestPullStaysInDir(t *testing.T) {
	url := newServer(t)
	c := newClient(t, url)
	if _, err := c.Push(context.Background(), "r", "v1", []string{writeFile(t, t.TempDir(), "x", []byte("x")) + "=docs/x"}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "docs")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(context.Background(), "r", "v1", dst); err == nil {
		t.Fatal("pulled through a symbolic link out of the directory")
	}
	if files := filesIn(t, outside); len(files) != 0 {
		t.Fatalf("written outside the directory: %v", files)
	}
}

// TestPullUnknownVersion: the server's message comes through.
func TestPullUnknownVersion(t *testing.T) {
	url := newServer(t)
	_, err := newClient(t, url).Pull(context.Background(), "r", "nope", t.TempDir())
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code == "" || e.Message == "" {
		t.Fatalf("pull of a missing version: %#v", err)
	}
}

// filesIn lists the regular files under dir, relative and sorted.
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
