package registry_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type sseEvent struct {
	id, event string
	data      map[string]any
}

// openStream opens an SSE stream and delivers its events on a channel.
func openStream(t testing.TB, url string, headers ...string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return sseEvents(resp.Body)
}

// sseEvents parses a stream's events onto a channel, closed (and body
// closed) when the stream ends.
func sseEvents(body io.ReadCloser) <-chan sseEvent {
	out := make(chan sseEvent, 1000)
	go func() {
		defer body.Close()
		defer close(out)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &ev.data)
			case line == "" && ev.id != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

func next(t testing.TB, ch <-chan sseEvent, within time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return sseEvent{}
}

func TestEventsPage(t *testing.T) { forBackends(t, testEventsPage) }

func testEventsPage(t *testing.T, b backend) {
	s := b.server(t)
	s.pushImage("a", "v1", "")
	s.pushImage("b", "v1", "")
	var page struct {
		Events []struct {
			Seq        int64
			Type       string
			Repository string
			Payload    map[string]any
			Hash       string
		}
		Next int64
	}
	r := s.do("GET", "/api/v1/events?after=0&limit=2", nil)
	expect(t, r, 200)
	json.Unmarshal(r.body, &page)
	if len(page.Events) != 2 || page.Events[0].Seq != 1 || page.Next != 2 || !strings.HasPrefix(page.Events[0].Hash, "blake3:") {
		t.Fatalf("first page: %s", r.body)
	}
	r = s.do("GET", "/api/v1/events?after=0&repository=b&type=tag.set,manifest.put", nil)
	json.Unmarshal(r.body, &page)
	if len(page.Events) != 2 || page.Events[0].Type != "manifest.put" || page.Events[1].Payload["tag"] != "v1" {
		t.Fatalf("filtered page: %s", r.body)
	}
	for _, e := range page.Events {
		if e.Repository != "b" {
			t.Fatalf("filter let through %s", e.Repository)
		}
	}
	expect(t, s.do("GET", "/api/v1/events?after=-1", nil), 400)
	expect(t, s.do("GET", "/api/v1/events?limit=0", nil), 400)
	expect(t, s.do("GET", "/api/v1/events?repository=Bad", nil), 400, "NAME_INVALID")
}

func TestEventStream(t *testing.T) { forBackends(t, testEventStream) }

func testEventStream(t *testing.T, b backend) {
	s := b.server(t)
	s.pushBlob("r", []byte("before"))
	// From the start: the history first, then live events.
	all := openStream(t, s.url+"/api/v1/events?after=0")
	// Without a starting point: only what happens from now on.
	live := openStream(t, s.url+"/api/v1/events?type=tag.set")
	ev := next(t, all, 5*time.Second)
	if ev.id != "1" || ev.event != "blob.committed" {
		t.Fatalf("first event %+v", ev)
	}
	next(t, all, 5*time.Second) // blob.linked
	s.pushImage("r", "v1", "")
	got := next(t, live, 5*time.Second)
	if got.event != "tag.set" || got.data["repository"] != "r" {
		t.Fatalf("live event %+v", got)
	}
	// Resume after the live event with Last-Event-ID: nothing repeats.
	s.pushImage("r", "v2", "")
	resumed := openStream(t, s.url+"/api/v1/events?type=tag.set", "Last-Event-ID: "+got.id)
	if ev := next(t, resumed, 5*time.Second); ev.data["payload"].(map[string]any)["tag"] != "v2" {
		t.Fatalf("resumed stream started with %+v", ev)
	}
}

// TestStalledConsumerDoesNotBlockWriters opens a stream nobody reads and
// pushes far more than a socket buffer of events through the registry.
func TestStalledConsumerDoesNotBlockWriters(t *testing.T) {
	s := newServer(t)
	req, _ := http.NewRequest("GET", s.url+"/api/v1/events?after=0", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	big := fmt.Sprintf(`,"annotations":{"pad":%q}`, strings.Repeat("x", 40_000))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			s.pushImage("r", fmt.Sprintf("t%d", i), big)
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("writers stalled behind an unread event stream")
	}
}

// TestStreamShowsAnchor: a stream opens with the log's anchor, as an
// "anchor" event without an id, whose hash is that of the anchored event.
func TestStreamShowsAnchor(t *testing.T) {
	s := newServer(t)
	s.pushImage("r", "1", "")
	a, err := s.reg.WriteAnchor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+"/api/v1/events?after=0", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() && len(lines) < 6 {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) < 3 || lines[1] != "event: anchor" || !strings.HasPrefix(lines[2], "data: ") {
		t.Fatalf("the stream does not open with the anchor: %q", lines)
	}
	var got struct {
		Seq  int64
		Hash string
	}
	if err := json.Unmarshal([]byte(lines[2][6:]), &got); err != nil || got.Seq != a.Seq || got.Hash != "blake3:"+a.Hash {
		t.Fatalf("anchor event %s (%v), want seq %d hash %s", lines[2], err, a.Seq, a.Hash)
	}
	page := s.do("GET", fmt.Sprintf("/api/v1/events?after=%d&limit=1", a.Seq-1), nil)
	if !strings.Contains(string(page.body), `"hash":"blake3:`+a.Hash+`"`) {
		t.Fatalf("the anchored event's hash is not the anchor's: %s", page.body)
	}
}

// TestEventPageHead: a page names the log's head, so that a reader can
// show recent events and then follow the stream from there.
func TestEventPageHead(t *testing.T) {
	s := newServer(t)
	s.pushBlob("head/app", []byte("one"))
	s.pushBlob("head/app", []byte("two"))
	head, err := s.log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := s.do("GET", "/api/v1/events?limit=1", nil)
	expect(t, r, http.StatusOK)
	var page struct {
		Events     []json.RawMessage
		Next, Head int64
	}
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Events) != 1 || page.Next != 1 || page.Head != head {
		t.Fatalf("page %s (%v); want one event, next 1 and head %d", r.body, err, head)
	}
}
