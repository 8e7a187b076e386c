package registry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/registry"
)

// TestRequestsInFlightOverHTTP2: HTTP/2 carries many requests on one
// connection, so bounding connections does not bound what a client
// holds. With MaxRequestsPerClient 2, a client whose two event streams
// are open on its one connection is answered 429 TOOMANYREQUESTS, with
// Retry-After, on that same connection; once a stream ends it is served
// again.
func TestRequestsInFlightOverHTTP2(t *testing.T) {
	l := backends[0].open(t)
	t.Cleanup(func() { l.Close() })
	fsb, err := blobfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Options{Log: l, Blobs: blobstore.New(fsb), UploadTTL: time.Hour, MaxRequestsPerClient: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(reg)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := srv.Client()

	stream := func() (*http.Response, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
		}
		end := func() { cancel(); resp.Body.Close() }
		t.Cleanup(end) // before srv.Close, which waits for open requests
		return resp, end
	}
	get := func() (*http.Response, string) {
		resp, err := client.Get(srv.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}

	_, endFirst := stream()
	_, endSecond := stream()
	defer endSecond()
	resp, body := get()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		errCodeOf(body) != "TOOMANYREQUESTS" {
		t.Fatalf("a third request in flight: %s over %s (Retry-After %q) %s, want 429 TOOMANYREQUESTS over HTTP/2 with Retry-After",
			resp.Status, resp.Proto, resp.Header.Get("Retry-After"), body)
	}
	endFirst()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body = get()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a stream ended: %s %s, want 200", resp.Status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errCodeOf(body string) string {
	return response{body: []byte(body)}.errCode()
}
