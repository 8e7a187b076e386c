package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
)

// Event stream tuning.
const (
	maxEventPage   = 1000
	streamPage     = 500
	keepAlive      = 15 * time.Second
	streamFallback = 5 * time.Second // re-read even without a wake-up, in case one was lost
	writeTimeout   = 30 * time.Second
)

// eventJSON is how an event looks on /api/v1/events.
type eventJSON struct {
	Seq        int64           `json:"seq"`
	Time       time.Time       `json:"time"`
	Type       eventlog.Type   `json:"type"`
	Repository string          `json:"repository,omitempty"`
	Payload    json.RawMessage `json:"payload"`
	Hash       string          `json:"hash"`
	PrevHash   string          `json:"prevHash"`
}

func toJSON(e eventlog.Event) eventJSON {
	return eventJSON{
		Seq: e.Seq, Time: e.Time, Type: e.Type, Repository: e.Repo, Payload: payloadJSON(e.Payload),
		Hash: fmt.Sprintf("blake3:%x", e.Hash), PrevHash: fmt.Sprintf("blake3:%x", e.PrevHash),
	}
}

// payloadJSON shows a payload (canonical CBOR, or JSON in old logs) as
// RFC 8785 JSON.
func payloadJSON(p []byte) json.RawMessage {
	if len(p) > 0 && p[0] == '{' {
		return json.RawMessage(p)
	}
	j, err := manifests.CBORToJSON(p)
	if err != nil {
		// Never the case for payloads this code wrote; show what is there.
		j, _ = json.Marshal(map[string]string{"undecodableCBOR": fmt.Sprintf("%x", p)})
	}
	return json.RawMessage(j)
}

// eventQuery reads after (or Last-Event-ID), limit, repository and type.
// ok reports whether a starting point was given at all.
func eventQuery(req *http.Request) (q eventlog.Query, ok bool, err error) {
	v := req.URL.Query()
	after := v.Get("after")
	if after == "" {
		after = req.Header.Get("Last-Event-ID")
	}
	if after != "" {
		if q.After, err = strconv.ParseInt(after, 10, 64); err != nil || q.After < 0 {
			return q, false, errorf(CodePaginationInvalid, "after must be a sequence number (a non-negative integer), got %q", after).withStatus(http.StatusBadRequest)
		}
		ok = true
	}
	q.Limit = 100
	if s := v.Get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > maxEventPage {
			return q, ok, errorf(CodePaginationInvalid, "limit must be between 1 and %d, got %q", maxEventPage, s).withStatus(http.StatusBadRequest)
		}
		q.Limit = n
	}
	if q.Repo = v.Get("repository"); q.Repo != "" {
		if err := ValidateName(q.Repo); err != nil {
			return q, ok, err
		}
	}
	for _, t := range v["type"] {
		for _, t := range strings.Split(t, ",") {
			if t = strings.TrimSpace(t); t != "" {
				if err := textParam("type", t); err != nil {
					return q, ok, err
				}
				q.Types = append(q.Types, t)
			}
		}
	}
	return q, ok, nil
}

// events serves the event log: a JSON page for pollers, or with
// "Accept: text/event-stream" a Server-Sent Events stream that follows the
// log live. Stream ids are sequence numbers: reconnecting with
// Last-Event-ID resumes exactly after the last event received.
func (r *Registry) events(w http.ResponseWriter, req *http.Request) error {
	q, given, err := eventQuery(req)
	if err != nil {
		return err
	}
	if strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
		if !given {
			// A new stream without a starting point shows what happens
			// from now on.
			if q.After, err = r.log.Head(req.Context()); err != nil {
				return err
			}
		}
		return r.streamEvents(w, req, q)
	}
	page, err := r.log.Read(req.Context(), q)
	if err != nil {
		return err
	}
	out := struct {
		Events []eventJSON `json:"events"`
		Next   int64       `json:"next"`
	}{Events: []eventJSON{}, Next: page.Next}
	for _, e := range page.Events {
		out.Events = append(out.Events, toJSON(e))
	}
	return writeJSON(w, "application/json", out)
}

// streamEvents writes events as they are committed until the client goes
// away or the server shuts down. A slow client only slows its own stream:
// writers never wait for it, and when it falls behind it is fed page by
// page from the log.
func (r *Registry) streamEvents(w http.ResponseWriter, req *http.Request, q eventlog.Query) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return errorf(CodeUnsupported, "this connection cannot stream").withStatus(http.StatusNotAcceptable)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	ctx := req.Context()
	q.Limit = streamPage
	// A consumer that stops reading must not hold its handler (and the
	// server's shutdown) forever: each write gets a deadline.
	rc := http.NewResponseController(w)
	deadline := func() { rc.SetWriteDeadline(time.Now().Add(writeTimeout)) }
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	for {
		changed := r.log.Changed() // before reading, so no commit slips between
		page, err := r.log.Read(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.logger.ErrorContext(ctx, "event stream read", "err", err)
			return nil // headers are sent: nothing more to say
		}
		deadline()
		for _, e := range page.Events {
			data, _ := json.Marshal(toJSON(e))
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data); err != nil {
				return nil // client gone
			}
		}
		flusher.Flush()
		q.After = page.Next
		if len(page.Events) == q.Limit {
			continue // behind: keep reading from the log
		}
		select {
		case <-changed:
		case <-time.After(streamFallback):
		case <-ticker.C:
			deadline()
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			flusher.Flush()
		case <-ctx.Done():
			return nil
		case <-r.stopStreams:
			return nil
		}
	}
}

// StopStreams ends every event stream, so that a graceful shutdown is not
// held open by long-lived connections. Register it with
// http.Server.RegisterOnShutdown.
func (r *Registry) StopStreams() {
	r.stopOnce.Do(func() { close(r.stopStreams) })
}
