package registry_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkManifestPut measures manifest PUT + tag with 16 concurrent
// clients, each PUT a distinct manifest (so each is a new blob, a new
// manifest and a tag move: the full write path).
func BenchmarkManifestPut(b *testing.B) {
	s := newServer(b)
	cfg := s.pushBlob("bench", []byte("{}"))
	const clients = 16
	var next atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"annotations":{"n":"%d"}}`, cfg, i)
				req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v2/bench/manifests/t%d", s.url, i%100), bytes.NewReader([]byte(m)))
				req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					b.Errorf("PUT: %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
}

// BenchmarkManifestGet measures manifest GET by tag with 16 clients.
func BenchmarkManifestGet(b *testing.B) {
	s := newServer(b)
	s.pushImage("bench", "v1", "")
	benchGets(b, s.url+"/v2/bench/manifests/v1")
}

// BenchmarkSmallBlobGet measures 1 KiB blob GETs with 16 clients.
func BenchmarkSmallBlobGet(b *testing.B) {
	s := newServer(b)
	d := s.pushBlob("bench", make([]byte, 1024))
	benchGets(b, s.url+"/v2/bench/blobs/"+d)
}

func benchGets(b *testing.B, url string) {
	const clients = 16
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("GET: %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
