package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
	"github.com/gorilla/mux"
)

// Bounds of what one answer of the event API holds.
const (
	maxEventPage = 1000 // events in a JSON page (limit)
	// maxEventPageBytes bounds a JSON page's encoded events: events are
	// added while the page is below it, and at least one is, so a reader
	// always progresses.
	maxEventPageBytes = 4 << 20
	// maxInlinePayload is the largest payload shown in pages and streams,
	// as stored (canonical CBOR) and as shown (JSON). A larger one is
	// shown as a payloadRef to GET /api/v1/events/{seq}, which has it
	// whole; the log does not even read it for a page.
	maxInlinePayload = 64 << 10
	// maxEventTypes bounds the type filter, so a query stays a small one.
	maxEventTypes = 64
)

// eventJSON is how an event looks on /api/v1/events.
type eventJSON struct {
	Seq        int64           `json:"seq"`
	Time       time.Time       `json:"time"`
	Type       eventlog.Type   `json:"type"`
	Repository string          `json:"repository,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	PayloadRef *payloadRef     `json:"payloadRef,omitempty"` // instead of Payload, when that is large
	Actor      *eventlog.Actor `json:"actor,omitempty"`      // who made the change; none on events older than actors
	Hash       string          `json:"hash"`
	PrevHash   string          `json:"prevHash"`
}

// payloadRef stands for a payload too large to show inline.
type payloadRef struct {
	// Href is the event's own URL, which answers it whole (with the same
	// hash, which covers the payload).
	Href string `json:"href"`
	// Size is the payload's size as recorded (canonical CBOR), in bytes.
	Size int64 `json:"size"`
}

// toJSON shows e; a payload larger than inline bytes (or left out by the
// log's read) is shown as a payloadRef. inline 0 shows every payload.
func toJSON(e eventlog.Event, inline int) eventJSON {
	j := eventJSON{
		Seq: e.Seq, Time: e.Time, Type: e.Type, Repository: e.Repo,
		Hash: fmt.Sprintf("blake3:%x", e.Hash), PrevHash: fmt.Sprintf("blake3:%x", e.PrevHash),
	}
	if !e.Actor.IsZero() {
		a := e.Actor
		j.Actor = &a
	}
	if e.Payload != nil {
		j.Payload = payloadJSON(e.Payload)
	}
	if e.Payload == nil || (inline > 0 && len(j.Payload) > inline) {
		j.Payload = nil
		j.PayloadRef = &payloadRef{Href: eventURL(e.Seq), Size: max(e.PayloadSize, int64(len(e.Payload)))}
	}
	return j
}

// payloadJSON shows a payload (canonical CBOR, or JSON in old logs) as
// RFC 8785 JSON.
func payloadJSON(p []byte) json.RawMessage {
	if len(p) > 0 && p[0] == '{' && json.Valid(p) {
		return json.RawMessage(p)
	}
	j, err := manifests.CBORToJSON(p)
	if err != nil {
		// Never the case for payloads this code wrote; show what is there.
		j, _ = json.Marshal(map[string]string{"undecodableCBOR": fmt.Sprintf("%x", p)})
	}
	return json.RawMessage(j)
}

func eventURL(seq int64) string { return "/api/v1/events/" + strconv.FormatInt(seq, 10) }

// eventQuery reads after (or Last-Event-ID), limit, repository and type.
// ok reports whether a starting point was given at all.
func eventQuery(req *http.Request) (q eventlog.Query, ok bool, err error) {
	v, err := queryValues(req)
	if err != nil {
		return q, false, err
	}
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
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			if len(q.Types) == maxEventTypes {
				return q, ok, errorf(CodeUnsupported, "at most %d event types may be asked for at once (type=a,b,...); ask without type and filter, or in several requests", maxEventTypes).withStatus(http.StatusBadRequest)
			}
			if err := textParam("type", t); err != nil {
				return q, ok, err
			}
			q.Types = append(q.Types, t)
		}
	}
	return q, ok, nil
}

// events serves the event log: a JSON page for pollers, or with
// "Accept: text/event-stream" a Server-Sent Events stream that follows the
// log live (streamEvents). Stream ids are sequence numbers: reconnecting
// with Last-Event-ID resumes exactly after the last event received.
func (r *Registry) events(w http.ResponseWriter, req *http.Request) error {
	q, given, err := eventQuery(req)
	if err != nil {
		return err
	}
	if strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
		return r.streamEvents(w, req, q, given)
	}
	q.MaxBytes, q.MaxPayload = maxEventPageBytes, maxInlinePayload
	// The head is read first: every event up to it is in this page or a
	// later one, so a reader that starts its live stream after head misses
	// nothing (the web UI shows a page of recent events, then follows).
	head, err := r.log.Head(req.Context())
	if err != nil {
		return err
	}
	page, err := r.log.Read(req.Context(), q)
	if err != nil {
		return err
	}
	if r.auth != nil {
		// Hidden events are skipped, not stopped at: next still moves
		// past them, so a reader never rescans what it may not see.
		visible := r.eventVisible(req)
		kept := page.Events[:0]
		for _, e := range page.Events {
			if visible(e.Repo) {
				kept = append(kept, e)
			}
		}
		page.Events = kept
	}
	return writeEventPage(w, page, head)
}

// eventVisible returns whether the request's caller may see an event of
// a repository: one it may pull, or, for events of no repository (a blob
// committed, moved between tiers), only a caller who may pull everywhere.
func (r *Registry) eventVisible(req *http.Request) func(repo string) bool {
	if r.auth == nil {
		return func(string) bool { return true }
	}
	everywhere := r.allowedEverywhere(req, auth.ActionPull)
	return func(repo string) bool {
		if repo == "" {
			return everywhere
		}
		return r.allowed(req, repo, auth.ActionPull)
	}
}

// writeEventPage writes {"events": [...], "next": N, "head": H} one event at a time,
// so a page is never held twice in memory. Events are added while the
// encoded page is below maxEventPageBytes (at least one is); next is the
// last one written when the page stops early, so nothing is skipped.
func writeEventPage(w http.ResponseWriter, page eventlog.Page, head int64) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, `{"events":[`); err != nil {
		return nil // the client is gone; the status is sent
	}
	next, size := page.Next, 0
	for i, e := range page.Events {
		b, err := json.Marshal(toJSON(e, maxInlinePayload))
		if err != nil {
			return nil // cannot happen: every field is plain or valid JSON
		}
		if i > 0 && size+len(b) > maxEventPageBytes {
			next = page.Events[i-1].Seq
			break
		}
		if i > 0 {
			io.WriteString(w, ",")
		}
		if _, err := w.Write(b); err != nil {
			return nil
		}
		size += len(b) + 1
	}
	fmt.Fprintf(w, `],"next":%d,"head":%d}`, next, head)
	return nil
}

// getEvent answers one event whole, however large its payload: the
// target of a payloadRef.
func (r *Registry) getEvent(w http.ResponseWriter, req *http.Request) error {
	s := mux.Vars(req)["seq"]
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil || seq < 1 {
		return errorf(CodeEventUnknown, "no event %q: events are named by their sequence number, a positive integer", s)
	}
	e, err := r.log.Event(req.Context(), seq)
	if errors.Is(err, eventlog.ErrNotFound) || err == nil && !r.eventVisible(req)(e.Repo) {
		return errorf(CodeEventUnknown, "no event %d in the log", seq)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, "application/json", toJSON(e, 0))
}
