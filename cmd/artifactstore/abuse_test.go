package main_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkAbuse runs the real server under bounded hostile loads, one
// after another, and reports what each costs the server (resident memory
// and open descriptors, read from /proc) and an unrelated client (the
// median latency of a small push and pull, against the same measure with
// the server idle). Run it with `make abuse`; nothing here is asserted:
// the figures go in the closing notes of the issues that bound these
// resources.
//
//   - idle bodies: clients that send part of a PATCH body and go quiet;
//   - sessions: thousands of open upload sessions, each with a few bytes;
//   - subscribers: idle Server-Sent Events subscribers while writes go on;
//   - large pages: a page of the event log full of large events.
func BenchmarkAbuse(b *testing.B) {
	const idle = 3 * time.Second
	// Every hostile client here is one loopback address: the per-client
	// bound would refuse most of them before they reached what each
	// phase measures (BenchmarkConnectionFlood measures that bound).
	s := startWith(b, b.TempDir(), freeAddr(b), "--body-idle-timeout", idle.String(), "--max-uploads", "20000", "--max-connections-per-client", "0")
	pid := s.cmd.Process.Pid
	client := &http.Client{Timeout: 30 * time.Second}
	report := func(phase string, base time.Duration) {
		lat := unrelatedLatency(b, client, s)
		rss, fds := procStats(b, pid)
		b.ReportMetric(rss, phase+"_rss_MiB")
		b.ReportMetric(float64(fds), phase+"_fds")
		if base > 0 {
			b.ReportMetric(float64(lat)/float64(base), phase+"_latency_x_idle")
		}
		b.Logf("%-22s rss %6.1f MiB  fds %5d  unrelated push+pull median %v", phase, rss, fds, lat)
	}
	unrelatedLatency(b, client, s) // warm up: the first requests pay for connections and caches
	base := unrelatedLatency(b, client, s)
	report("idle", 0)

	// Idle bodies: 300 PATCHes stall after 1 KiB of a 1 MiB body.
	var conns []net.Conn
	for i := range 300 {
		loc := startSession(b, client, s, fmt.Sprintf("stall/%d", i%10))
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", loc, 1<<20)
		c.Write(make([]byte, 1024))
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond)
	report("stalled_bodies", base)
	time.Sleep(idle + time.Second)
	report("after_idle_timeout", base)
	for _, c := range conns {
		c.Close()
	}

	// Sessions: 10,000 open sessions over 20 repositories, 16 bytes each.
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				loc := startSession(b, client, s, fmt.Sprintf("sessions/%d", i%20))
				send(b, client, "PATCH", s.url(loc), bytes.NewReader(make([]byte, 16)), http.StatusAccepted)
			}
		}()
	}
	for i := range 10_000 {
		work <- i
	}
	close(work)
	wg.Wait()
	report("10k_sessions", base)

	// Subscribers: 1,000 idle SSE subscribers from the head (the server's
	// cap), following another repository, then following everything (so
	// every write of the unrelated client is delivered 1,000 times).
	for _, sub := range []struct{ phase, query string }{
		{"1000_subscribers_other_repo", "?repository=elsewhere"},
		{"1000_subscribers_all_events", ""},
	} {
		var subs []io.Closer
		for range 1000 {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /api/v1/events%s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", sub.query)
			subs = append(subs, c)
		}
		time.Sleep(500 * time.Millisecond)
		report(sub.phase, base)
		for _, c := range subs {
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Large pages: 40 manifests with 1.9 MB of annotations each, then
	// pages of the whole log read by 4 clients at once.
	cfg := pushBytes(b, client, s, "pages", []byte("{}"))
	for i := range 40 {
		ann := map[string]string{}
		for k := range 190 {
			ann[fmt.Sprintf("k%d", k)] = randomText(b, 10_000)
		}
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[],"annotations":%s}`, cfg, jsonMap(ann))
		send(b, client, "PUT", s.url(fmt.Sprintf("/v2/pages/manifests/t%d", i)), strings.NewReader(m), http.StatusCreated,
			"Content-Type: application/vnd.oci.image.manifest.v1+json")
	}
	var pages sync.WaitGroup
	for range 4 {
		pages.Add(1)
		go func() {
			defer pages.Done()
			resp, err := client.Get(s.url("/api/v1/events?after=0&limit=1000"))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	pages.Wait()
	report("large_event_pages", base)
	b.Logf("peak rss %.1f MiB", peakRSS(b, pid))
}

// unrelatedLatency is the median time of a 4 KiB blob push and its pull.
func unrelatedLatency(b *testing.B, c *http.Client, s *server) time.Duration {
	var ds []time.Duration
	for range 51 {
		p := make([]byte, 4096)
		rand.Read(p)
		start := time.Now()
		d := pushBytes(b, c, s, "unrelated", p)
		send(b, c, "GET", s.url("/v2/unrelated/blobs/"+d), nil, http.StatusOK)
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func pushBytes(b *testing.B, c *http.Client, s *server, repo string, p []byte) string {
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(p))
	send(b, c, "POST", s.url("/v2/"+repo+"/blobs/uploads/?digest="+d), bytes.NewReader(p), http.StatusCreated)
	return d
}

func startSession(b *testing.B, c *http.Client, s *server, repo string) string {
	return send(b, c, "POST", s.url("/v2/"+repo+"/blobs/uploads/"), nil, http.StatusAccepted).Header.Get("Location")
}

func send(b *testing.B, c *http.Client, method, url string, body io.Reader, want int, headers ...string) *http.Response {
	req, _ := http.NewRequest(method, url, body)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d, want %d", method, url, resp.StatusCode, want)
	}
	return resp
}

// procStats reads a process's resident memory (MiB) and open descriptors.
func procStats(b *testing.B, pid int) (float64, int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var rss float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(sc.Text())[1])
			rss = float64(kb) / 1024
		}
	}
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		b.Fatal(err)
	}
	return rss, len(fds)
}

func randomText(b *testing.B, n int) string {
	p := make([]byte, n*3/4)
	rand.Read(p)
	return base64.StdEncoding.EncodeToString(p)
}

func jsonMap(m map[string]string) string {
	var sb strings.Builder
	sb.WriteString("{")
	first := true
	for k, v := range m {
		if !first {
			sb.WriteString(",")
		}
		first = false
		fmt.Fprintf(&sb, "%q:%q", k, v)
	}
	sb.WriteString("}")
	return sb.String()
}

// BenchmarkConnectionFlood opens 5,000 connections from one client that
// send nothing, first to a server without connection bounds
// (--max-connections 0 --max-connections-per-client 0), then to one with
// the defaults, and reports what each holds (descriptors, resident
// memory) and an unrelated client's latency, from another loopback
// address. Run with `make abuse`; nothing is asserted
// (TestConnectionsBounded and TestConnectionsPerClient assert the bound).
func BenchmarkConnectionFlood(b *testing.B) {
	const flood = 5_000
	other := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	for _, run := range []struct {
		name  string
		flags []string
	}{
		{"unbounded", []string{"--max-connections", "0", "--max-connections-per-client", "0"}},
		{"defaults", nil},
	} {
		s := startWith(b, b.TempDir(), freeAddr(b), run.flags...)
		pid := s.cmd.Process.Pid
		unrelatedLatency(b, other, s)
		base := unrelatedLatency(b, other, s)
		var conns []net.Conn
		for range flood {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		time.Sleep(500 * time.Millisecond)
		lat := unrelatedLatency(b, other, s)
		rss, fds := procStats(b, pid)
		b.ReportMetric(float64(fds), run.name+"_fds")
		b.ReportMetric(rss, run.name+"_rss_MiB")
		b.ReportMetric(float64(lat)/float64(base), run.name+"_latency_x_idle")
		b.Logf("%-10s %d idle connections from one client: server rss %6.1f MiB, fds %5d, unrelated push+pull median %v (idle %v)", run.name, flood, rss, fds, lat, base)
		for _, c := range conns {
			c.Close()
		}
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// BenchmarkStreamFlood is BenchmarkConnectionFlood for HTTP/2, where one
// connection carries up to 250 requests: over TLS, one client starts
// 5,000 monolithic pushes whose bodies never come (each would hold its
// handler until --body-idle-timeout), first against a server without
// bounds, then with the defaults, and reports what the server holds and
// how the requests were answered. Run with `make abuse`; nothing is
// asserted (TestRequestsPerClientOverHTTP2 asserts the bound).
func BenchmarkStreamFlood(b *testing.B) {
	const flood = 5_000
	dir := b.TempDir()
	ca := newTestCA(b, dir, "flood-ca")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.writePair(b, certFile, keyFile, serverTemplate("flood"))
	for _, run := range []struct {
		name  string
		flags []string
	}{
		{"unbounded", []string{"--max-connections", "0", "--max-connections-per-client", "0"}},
		{"defaults", nil},
	} {
		s := startWith(b, b.TempDir(), freeAddr(b), append([]string{"--tls-cert", certFile, "--tls-key", keyFile, "--body-idle-timeout", "1m"}, run.flags...)...)
		pid := s.cmd.Process.Pid
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, ForceAttemptHTTP2: true}
		c := &http.Client{Transport: tr}
		_, fdsIdle := procStats(b, pid)
		var (
			mu       sync.Mutex
			answered = map[string]int{}
			bodies   []*io.PipeWriter
			wg       sync.WaitGroup
		)
		url := "https://" + s.addr + "/v2/flood/blobs/uploads/?digest=sha256:" + strings.Repeat("0", 64)
		for range flood {
			pr, pw := io.Pipe()
			bodies = append(bodies, pw)
			req, _ := http.NewRequest("POST", url, pr)
			req.ContentLength = 64 << 10
			wg.Add(1)
			go func() {
				defer wg.Done()
				what := "error"
				if resp, err := c.Do(req); err == nil {
					what = resp.Proto + " " + resp.Status
					resp.Body.Close()
				}
				mu.Lock()
				answered[what]++
				mu.Unlock()
			}()
		}
		time.Sleep(3 * time.Second)
		rss, fds := procStats(b, pid)
		mu.Lock()
		early := fmt.Sprint(answered)
		mu.Unlock()
		b.ReportMetric(rss, run.name+"_rss_MiB")
		b.ReportMetric(float64(fds-fdsIdle), run.name+"_fds_added")
		b.Logf("%-10s %d pushes over HTTP/2 whose bodies never come: server rss %6.1f MiB, fds +%d; answered within 3 s: %s", run.name, flood, rss, fds-fdsIdle, early)
		for _, pw := range bodies {
			pw.CloseWithError(errors.New("the benchmark is over"))
		}
		wg.Wait()
		tr.CloseIdleConnections()
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}
