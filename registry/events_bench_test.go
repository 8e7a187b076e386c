package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendIdleSubscribers measures the latency of an unrelated
// write (a small monolithic blob push: one append of two events) while
// many Server-Sent Events subscribers wait on the event stream. Each
// subscriber reads everything it is sent, so none of them is slow; what is
// measured is what following the log costs the writers. "all" subscribers
// follow every event (each commit is delivered to each of them: the
// sockets' cost is in the figure); "other" ones follow another
// repository, so the commit concerns none of them.
func BenchmarkAppendIdleSubscribers(b *testing.B) {
	for _, be := range backends {
		for _, subs := range []int{0, 100, 1000} {
			for _, filter := range []string{"all", "other"} {
				if subs == 0 && filter == "other" {
					continue
				}
				b.Run(fmt.Sprintf("%s/subscribers=%d/%s", be.name, subs, filter), func(b *testing.B) {
					q := ""
					if filter == "other" {
						q = "?repository=other"
					}
					benchAppendSubscribers(b, be.server(b), subs, q)
				})
			}
		}
	}
}

func benchAppendSubscribers(b *testing.B, s *testServer, subs int, query string) {
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	b.Cleanup(func() { cancel(); readers.Wait() })
	client := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < subs; i++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/events"+query, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("subscriber %d: status %d", i, resp.StatusCode)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer resp.Body.Close()
			io.Copy(io.Discard, resp.Body)
		}()
	}
	writer := &http.Client{Transport: &http.Transport{}}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := []byte(fmt.Sprintf("blob %d of %s", i, b.Name()))
		start := time.Now()
		resp, err := writer.Post(s.url+"/v2/bench/blobs/uploads/?digest="+sha256Of(p), "application/octet-stream", bytes.NewReader(p))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("push: %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
