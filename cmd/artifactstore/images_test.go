package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
)

// Helpers of the tests that drive real servers from many goroutines: they
// return errors instead of failing the test, and open the event log of a
// stopped server (or of replicas, beside them) to read what happened.

// image is an OCI image as a client pushes it: its blobs, then its
// manifest, which names them.
type image struct {
	repo     string
	digest   string
	manifest []byte
	config   []byte
	layers   [][]byte
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// newImage makes an image of config and layers in repo.
func newImage(repo string, config []byte, layers ...[]byte) image {
	var descs []byte
	for i, l := range layers {
		if i > 0 {
			descs = append(descs, ',')
		}
		descs = fmt.Appendf(descs, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}`, sha(l), len(l))
	}
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		ociManifest, sha(config), len(config), descs)
	return image{repo: repo, digest: sha(m), manifest: m, config: config, layers: layers}
}

// blobs returns the image's config and layers by digest.
func (img image) blobs() map[string][]byte {
	out := map[string][]byte{sha(img.config): img.config}
	for _, l := range img.layers {
		out[sha(l)] = l
	}
	return out
}

// reply is an answer of the server, read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// errorCode is the first registry error code of the reply, if any.
func (r reply) errorCode() string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(r.body, &e) == nil && len(e.Errors) > 0 {
		return e.Errors[0].Code
	}
	return ""
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// call sends one request and reads the whole answer.
func call(c *http.Client, method, url string, body []byte, headers ...string) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}, err
}

// pushImage pushes img's blobs (monolithic POSTs) and its manifest under
// tag on the server at base (http://host:port).
func pushImage(c *http.Client, base string, img image, tag string) error {
	for d, p := range img.blobs() {
		r, err := call(c, "POST", base+"/v2/"+img.repo+"/blobs/uploads/?digest="+d, p)
		if err != nil {
			return err
		}
		if r.status != http.StatusCreated {
			return fmt.Errorf("push blob %s: %s", d, r)
		}
	}
	r, err := call(c, "PUT", base+"/v2/"+img.repo+"/manifests/"+tag, img.manifest, "Content-Type", ociManifest)
	if err != nil {
		return err
	}
	if r.status != http.StatusCreated {
		return fmt.Errorf("push manifest %s:%s: %s", img.repo, tag, r)
	}
	return nil
}

// pullImage pulls img by digest and compares every byte.
func pullImage(c *http.Client, base string, img image) error {
	r, err := call(c, "GET", base+"/v2/"+img.repo+"/manifests/"+img.digest, nil, "Accept", ociManifest)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK || !bytes.Equal(r.body, img.manifest) {
		return fmt.Errorf("pull manifest %s@%s: %d, %d bytes (want %d)", img.repo, img.digest, r.status, len(r.body), len(img.manifest))
	}
	for d, p := range img.blobs() {
		r, err := call(c, "GET", base+"/v2/"+img.repo+"/blobs/"+d, nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK || !bytes.Equal(r.body, p) {
			return fmt.Errorf("pull blob %s of %s@%s: %d, %d bytes (want %d)", d, img.repo, img.digest, r.status, len(r.body), len(p))
		}
	}
	return nil
}

// openLog opens the event log of a data directory (SQLite, its server
// stopped) or of a PostgreSQL database (dsn set), to read what happened.
func openLog(t testing.TB, data, dsn string) *eventlog.Log {
	t.Helper()
	var l *eventlog.Log
	var err error
	if dsn != "" {
		l, err = postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: 2, LockConns: 1})
	} else {
		l, err = sqlite.Open(context.Background(), filepath.Join(data, "eventlog.db"), sqlite.Options{})
	}
	if err != nil {
		t.Fatalf("open the event log: %v", err)
	}
	return l
}

// countEvents counts the events of each type after seq.
func countEvents(t testing.TB, l *eventlog.Log, after int64) map[eventlog.Type]int {
	t.Helper()
	n := map[eventlog.Type]int{}
	if err := l.Events(context.Background(), after, func(e eventlog.Event) error { n[e.Type]++; return nil }); err != nil {
		t.Fatalf("read the event log: %v", err)
	}
	return n
}
