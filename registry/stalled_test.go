//go:build linux

package registry_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/registry"
)

// TestAnswerStalled: an answer written whole (a manifest, a tag list),
// not only a blob's body, is cut when its client accepts none of it for
// the body idle timeout. Before, such a write had no deadline at all: a
// client that advertised no room to receive held the handler, its
// connection and the answer's bytes for as long as it kept the
// connection open. The client here asks the kernel for the smallest
// receive buffer, so that the server's write waits on it, as it would on
// a client across a network that stops reading.
func TestAnswerStalled(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.BodyIdleTimeout = 300 * time.Millisecond })
	big := `,"annotations":{"padding":"` + strings.Repeat("x", 3<<20) + `"}`
	m, _ := s.pushImage("r", "big", big)
	u, _ := url.Parse(s.url)
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	for _, c := range []struct{ name, path string }{
		{"manifest", "/v2/r/manifests/big"},
		{"manifest by digest", "/v2/r/manifests/" + sha256Of(m)},
	} {
		conn, err := dialer.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n", c.path, u.Host)
		time.Sleep(2 * time.Second) // not reading: the server's write waits on a full window
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			continue // cut before the headers arrived whole: cut all the same
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		conn.Close()
		if n >= int64(len(m)) {
			t.Errorf("%s: a client that stopped reading for 2 s still got all %d bytes; want the answer cut after 300 ms", c.name, n)
		}
	}
	r := s.do("GET", "/v2/r/manifests/big", nil, "Accept: application/vnd.oci.image.manifest.v1+json")
	if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, m) { // and the next pull is whole
		t.Fatalf("a pull after the cut ones: %d, %d bytes", r.StatusCode, len(r.body))
	}
}
