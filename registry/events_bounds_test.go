package registry_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/registry"
)

// appendPadded appends n manifest.put events to the log, each carrying
// an annotation of pad bytes: events as large as a client's annotations
// make them, without depending on what a manifest PUT accepts. Their bytes
// are one blob, recorded by a blob.committed before the first of them.
func appendPadded(t testing.TB, s *testServer, repo string, n, pad int) {
	t.Helper()
	const bytesKey = "sha256:00000000000000000000000000000000000000000000000000000000000b17e5"
	if _, err := s.log.Blob(context.Background(), bytesKey); err != nil {
		if _, err := s.log.Append(context.Background(), committedEvent(bytesKey)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("sha256:%064x", time.Now().UnixNano()+int64(i))
		_, err := s.log.Append(context.Background(), eventlog.New(eventlog.TypeManifestPut, repo, eventlog.ManifestPut{
			Digest: d, SHA256: bytesKey, MediaType: ociManifest, Size: 1,
			Annotations: map[string]string{"pad": strings.Repeat("p", pad), "i": strconv.Itoa(i)},
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
}

// committedEvent records bytes under key: the log refuses a manifest.put
// whose bytes no blob.committed recorded.
func committedEvent(key string) eventlog.Event {
	return eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{SHA256: key, BLAKE3: "blake3:" + key[7:], Size: 1})
}

type eventPage struct {
	Events []struct {
		Seq        int64
		Type       string
		Payload    map[string]any
		PayloadRef *struct {
			Href string
			Size int64
		}
		Hash string
	}
	Next int64
}

// TestEventPageBoundedByBytes: a page of large events stays under 4 MiB,
// and continuing from next walks every event once, in order.
func TestEventPageBoundedByBytes(t *testing.T) { forBackends(t, testEventPageBoundedByBytes) }

func testEventPageBoundedByBytes(t *testing.T, b backend) {
	s := b.server(t)
	appendPadded(t, s, "big", 90, 60_000) // about 5.4 MB of events, each shown inline
	var seen []int64
	after, pages := int64(0), 0
	for ; pages < 20; pages++ {
		r := s.do("GET", fmt.Sprintf("/api/v1/events?after=%d&limit=1000", after), nil)
		expect(t, r, 200)
		if len(r.body) > 4<<20+1024 {
			t.Fatalf("a page of %d bytes", len(r.body))
		}
		var p eventPage
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if e.Type == "blob.committed" {
				continue // the manifests' bytes
			}
			if e.PayloadRef != nil || len(e.Payload["annotations"].(map[string]any)["pad"].(string)) != 60_000 {
				t.Fatalf("event %d not shown inline", e.Seq)
			}
			seen = append(seen, e.Seq)
		}
		if len(p.Events) == 0 {
			break
		}
		if p.Next != p.Events[len(p.Events)-1].Seq {
			t.Fatalf("next %d after a page ending at %d", p.Next, p.Events[len(p.Events)-1].Seq)
		}
		after = p.Next
	}
	if pages < 2 {
		t.Fatalf("5.4 MB of events came in %d page(s)", pages)
	}
	if len(seen) != 90 {
		t.Fatalf("pages gave %d of 90 events", len(seen))
	}
	for i, seq := range seen {
		if seq != int64(i+2) {
			t.Fatalf("pages gave %v: a gap or a repeat", seen)
		}
	}
}

// TestEventPayloadRef: a payload over 64 KiB is referenced, not shown, in
// pages and streams, and GET /api/v1/events/{seq} has it whole.
func TestEventPayloadRef(t *testing.T) { forBackends(t, testEventPayloadRef) }

func testEventPayloadRef(t *testing.T, b backend) {
	s := b.server(t)
	live := openStream(t, s.url+"/api/v1/events?type=manifest.put")
	s.pushImage("r", "v1", "")
	small := next(t, live, 5*time.Second)
	appendPadded(t, s, "r", 1, 100_000)
	r := s.do("GET", "/api/v1/events?type=manifest.put&after=0", nil)
	expect(t, r, 200)
	var p eventPage
	json.Unmarshal(r.body, &p)
	if len(p.Events) != 2 || p.Events[0].Payload == nil || p.Events[0].PayloadRef != nil || strconv.FormatInt(p.Events[0].Seq, 10) != small.id {
		t.Fatalf("page: %s", r.body)
	}
	big := p.Events[1]
	seq := strconv.FormatInt(big.Seq, 10)
	if big.Payload != nil || big.PayloadRef == nil || big.PayloadRef.Href != "/api/v1/events/"+seq || big.PayloadRef.Size < 100_000 {
		t.Fatalf("big event shown as %s", r.body)
	}
	whole := s.do("GET", big.PayloadRef.Href, nil)
	expect(t, whole, 200)
	var e struct {
		Seq     int64
		Hash    string
		Payload struct{ Annotations map[string]string }
	}
	if err := json.Unmarshal(whole.body, &e); err != nil || e.Seq != big.Seq || e.Hash != big.Hash || len(e.Payload.Annotations["pad"]) != 100_000 {
		t.Fatalf("whole event: seq %d, hash %s (want %s), %d bytes of pad, %v", e.Seq, e.Hash, big.Hash, len(e.Payload.Annotations["pad"]), err)
	}
	// Live, and from the log by a stream that starts behind.
	for _, stream := range []<-chan sseEvent{live, openStream(t, s.url+"/api/v1/events?type=manifest.put&after="+small.id)} {
		ev := next(t, stream, 5*time.Second)
		ref, _ := ev.data["payloadRef"].(map[string]any)
		if ev.id != seq || ev.data["payload"] != nil || ref["href"] != big.PayloadRef.Href {
			t.Fatalf("streamed big event: %+v", ev)
		}
	}
	expect(t, s.do("GET", fmt.Sprintf("/api/v1/events/%d", big.Seq+1), nil), 404, "EVENT_UNKNOWN")
	expect(t, s.do("GET", "/api/v1/events/0", nil), 404, "EVENT_UNKNOWN")
	expect(t, s.do("GET", "/api/v1/events/x", nil), 404, "EVENT_UNKNOWN")
}

// TestEventStreamFanOut: hundreds of idle subscribers all receive a new
// event, and the commit costs a handful of reads of the log, not one (or
// two) per subscriber.
func TestEventStreamFanOut(t *testing.T) { forBackends(t, testEventStreamFanOut) }

func testEventStreamFanOut(t *testing.T, b backend) {
	s := b.server(t)
	const subs = 300
	streams := make([]<-chan sseEvent, subs)
	for i := range streams {
		q := ""
		if i%2 == 1 {
			q = "?type=blob.linked" // filters apply per subscriber
		}
		streams[i] = openStream(t, s.url+"/api/v1/events"+q)
	}
	waitFor(t, func() bool { return s.reg.StreamSubscribers() == subs }, "every stream joined the live feed")
	before := s.reg.StreamReads()
	s.pushBlob("fan", []byte("one event for everyone")) // events 1 and 2
	for i, st := range streams {
		ev := next(t, st, 10*time.Second)
		want := "blob.committed"
		if i%2 == 1 {
			want = "blob.linked"
		}
		if ev.event != want {
			t.Fatalf("subscriber %d got %s %s, want %s", i, ev.id, ev.event, want)
		}
	}
	// A few reads (the follower's, and a fallback re-read or two), never
	// one per subscriber.
	if reads := s.reg.StreamReads() - before; reads < 1 || reads > 10 {
		t.Fatalf("one commit with %d subscribers cost %d reads of the log", subs, reads)
	}
}

// TestEventStreamCap: past MaxEventStreams a stream is refused with 503
// UNAVAILABLE and Retry-After; pages are still served, and a closed
// stream frees its place.
func TestEventStreamCap(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.MaxEventStreams = 2 })
	// tryStream opens a stream and returns its answer and how to close it.
	tryStream := func() (*http.Response, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, func() { cancel(); resp.Body.Close() }
	}
	first, closeFirst := tryStream()
	second, closeSecond := tryStream()
	defer closeSecond()
	if first.StatusCode != 200 || second.StatusCode != 200 {
		t.Fatalf("streams within the cap: %d, %d", first.StatusCode, second.StatusCode)
	}
	third, closeThird := tryStream()
	body := make([]byte, 512)
	n, _ := third.Body.Read(body)
	closeThird()
	if third.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body[:n]), `"UNAVAILABLE"`) {
		t.Fatalf("a stream past the cap: %d %s", third.StatusCode, body[:n])
	}
	if ra, err := strconv.Atoi(third.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", third.Header.Get("Retry-After"))
	}
	expect(t, s.do("GET", "/api/v1/events?after=0", nil), 200)
	closeFirst()
	waitFor(t, func() bool {
		resp, close := tryStream()
		defer close()
		return resp.StatusCode == 200
	}, "a closed stream's place was freed")
}

// TestTooManyFilters: thousands of type or annotation filters, or a query
// string net/url cannot read whole, are a 400 that says what to do, never
// a 500 from the database nor a filter silently dropped.
func TestTooManyFilters(t *testing.T) { forBackends(t, testTooManyFilters) }

func testTooManyFilters(t *testing.T, b backend) {
	s := b.server(t)
	s.pushImage("r", "v1", "")
	// refused checks a 400 with code and message, without printing the
	// (huge) URL.
	refused := func(what, path, message string, headers ...string) {
		t.Helper()
		r := s.do("GET", path, nil, headers...)
		if r.StatusCode != 400 || r.errCode() != "UNSUPPORTED" || !strings.Contains(string(r.body), message) {
			t.Fatalf("%s: %d %s, want 400 UNSUPPORTED with %q", what, r.StatusCode, r.body, message)
		}
	}
	many := func(key, format string, n int) string {
		v := url.Values{}
		for i := 0; i < n; i++ {
			v.Add(key, fmt.Sprintf(format, i))
		}
		return v.Encode()
	}
	refused("5,000 types", "/api/v1/events?after=0&"+many("type", "t%d", 5000), "at most 64 event types")
	refused("5,000 comma-separated types", "/api/v1/events?after=0&type="+strings.Repeat("tag.set,", 5000), "at most 64 event types")
	refused("5,000 types on a stream", "/api/v1/events?"+many("type", "t%d", 5000), "at most 64 event types", "Accept: text/event-stream")
	// Past 10,000 parameters net/url reads none: the filter must not
	// silently vanish.
	refused("20,000 types", "/api/v1/events?after=0&"+many("type", "t%d", 20_000), "cannot read the query string")
	refused("a bad escape", "/api/v1/events?after=0&type=%zz", "cannot read the query string")
	// 64 are fine.
	r := s.do("GET", "/api/v1/events?after=0&type=tag.set&"+many("type", "t%d", 63), nil)
	expect(t, r, 200)
	var p eventPage
	if json.Unmarshal(r.body, &p); len(p.Events) != 1 || p.Events[0].Type != "tag.set" {
		t.Fatalf("64 types: %s", r.body)
	}

	for _, path := range []string{"/api/v1/search?", "/api/v1/repositories/r/-/versions?"} {
		refused(path+" with 5,000 annotations", path+many("annotation", "k%d=v", 5000), "at most 32 annotation filters")
		refused(path+" with 20,000 annotations", path+many("annotation", "k%d=v", 20_000), "cannot read the query string")
	}
	expect(t, s.do("GET", "/api/v1/search?"+many("annotation", "k%d=v", 32), nil), 200)
	refused("referrers with a bad escape", "/v2/r/referrers/"+sha256Of([]byte("x"))+"?artifactType=%zz", "cannot read the query string")
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("waited 10 s, and still not: %s", what)
}

// TestSlowSubscriberDropped: a stream whose client stops reading is ended
// once its buffer is full, without holding up writers or a stream that
// reads; resuming with Last-Event-ID then gives every later event once.
func TestSlowSubscriberDropped(t *testing.T) {
	s := newServer(t)
	s.pushBlob("r", []byte("before the streams")) // events 1, 2
	reader := openStream(t, s.url+"/api/v1/events?after=0")
	// The slow client: a raw connection with a small receive buffer
	// (so the kernel does not absorb megabytes for it), never read
	// until the end.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	fmt.Fprintf(conn, "GET /api/v1/events?after=0 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	waitFor(t, func() bool { return s.reg.StreamSubscribers() == 2 }, "both streams joined")
	// Append 60 KB events until the slow stream is dropped: its buffer
	// (1 MiB) and the sockets' fill within a few dozen MB.
	var appended int
	for appended < 600 && s.reg.StreamSubscribers() == 2 {
		appendPadded(t, s, "r", 10, 60_000)
		appended += 10
	}
	if s.reg.StreamSubscribers() != 1 {
		t.Fatalf("a stream that reads nothing is still fed after %d events of 60 KB", appended)
	}
	head := int64(2 + appended)
	// The reading stream got everything, in order.
	for want := int64(1); want <= head; want++ {
		if ev := next(t, reader, 10*time.Second); ev.id != strconv.FormatInt(want, 10) {
			t.Fatalf("reading stream: event %s, want %d", ev.id, want)
		}
	}
	// The slow stream ended; what it got is a gap-free prefix.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slow stream: %v", err)
	}
	var last int64
	for ev := range sseEvents(resp.Body) {
		if ev.id != strconv.FormatInt(last+1, 10) {
			t.Fatalf("slow stream: event %s after %d", ev.id, last)
		}
		last++
	}
	if last >= head {
		t.Fatalf("the slow stream got all %d events, so it was not dropped", head)
	}
	// Resuming from its last id misses nothing and repeats nothing.
	resumed := openStream(t, s.url+"/api/v1/events", "Last-Event-ID: "+strconv.FormatInt(last, 10))
	for want := last + 1; want <= head; want++ {
		if ev := next(t, resumed, 10*time.Second); ev.id != strconv.FormatInt(want, 10) {
			t.Fatalf("resumed stream: event %s, want %d", ev.id, want)
		}
	}
	t.Logf("slow stream dropped after %d of %d events", last, head)
}

// TestStreamsShareOneBudget: subscribers that stop reading at different
// moments cannot each pin a full buffer: past the hub's budget, the one
// furthest behind is dropped, and the frames waiting stay under it.
func TestStreamsShareOneBudget(t *testing.T) {
	s := newServer(t)
	const budget = 600_000 // well under 1 MiB per subscriber
	s.reg.SetStreamBudget(budget)
	for range 4 {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		fmt.Fprintf(c, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	}
	waitFor(t, func() bool { return s.reg.StreamSubscribers() == 4 }, "the streams joined")
	for i := 0; i < 200 && s.reg.StreamSubscribers() == 4; i += 10 {
		appendPadded(t, s, "r", 10, 60_000)
		if p := s.reg.StreamsPinned(); p > budget+70_000 {
			t.Fatalf("the queues hold %d bytes, over the budget of %d", p, budget)
		}
	}
	if s.reg.StreamSubscribers() == 4 {
		t.Fatal("no stream was dropped past the budget")
	}
}
