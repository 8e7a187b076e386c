package registry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// streamEvents writes events as they are committed until the client goes
// away, it falls streamBuffer behind, or the server shuts down.
//
// A stream that starts behind the hub (an old after or Last-Event-ID)
// first reads the log itself, a bounded page at a time at its own pace,
// then joins the hub, which feeds it from memory. A live stream that
// stops reading is dropped when its buffer fills; it never slows writers
// or other streams, and its last id resumes it exactly.
func (r *Registry) streamEvents(w http.ResponseWriter, req *http.Request, q eventlog.Query, given bool) error {
	if _, ok := w.(http.Flusher); !ok {
		return errorf(CodeUnsupported, "this connection cannot stream").withStatus(http.StatusNotAcceptable)
	}
	select {
	case <-r.stopStreams:
		return errorf(CodeUnavailable, "the server is shutting down; retry on another replica, or later")
	default:
	}
	if !r.hub.acquire() {
		return errorf(CodeUnavailable, "this server already serves its limit of %d event streams; retry later, or poll pages of /api/v1/events", r.hub.max)
	}
	defer r.hub.release()
	ctx := req.Context()
	if !given {
		// A new stream without a starting point shows what happens from
		// now on.
		r.hub.reads.Add(1)
		head, err := r.log.Head(ctx)
		if err != nil {
			return err
		}
		q.After = head
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	ownDeadlines(w) // each write sets its own (sseWriter)
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), req: req}
	if sw.write([]byte("retry: 2000\n\n")) != nil || sw.flush() != nil {
		return nil
	}
	var anchored Anchor
	if r.writeAnchor(sw, &anchored) != nil {
		return nil
	}
	// Headers are sent: from here on, failures end the stream (logged),
	// and the client resumes from its last id.
	s, err := r.catchUp(ctx, sw, q)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, errStreamsStopped) && !errors.Is(err, errClientGone) {
			r.logger.ErrorContext(ctx, "event stream", "err", err)
		}
		return nil
	}
	defer r.hub.leave(s)
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	for {
		select {
		case <-s.wake:
			for _, f := range s.take() {
				if sw.write(f.data) != nil {
					return nil
				}
			}
			if sw.flush() != nil {
				return nil
			}
		case <-s.gone:
			return nil // too far behind: the client resumes with Last-Event-ID
		case <-ticker.C:
			if r.writeAnchor(sw, &anchored) != nil {
				return nil
			}
			if sw.write([]byte(": keep-alive\n\n")) != nil || sw.flush() != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		case <-r.stopStreams:
			return nil
		}
	}
}

// catchUp writes the stream's events from the log, a bounded page at a
// time, until it can join the hub; it returns the joined subscriber.
func (r *Registry) catchUp(ctx context.Context, sw *sseWriter, q eventlog.Query) (*subscriber, error) {
	q.Limit, q.MaxBytes, q.MaxPayload = streamPage, streamPageBytes, maxInlinePayload
	visible := r.eventVisible(sw.req)
	for {
		s := newSubscriber(q, visible)
		joined, err := r.hub.join(ctx, s)
		if joined || err != nil {
			return s, err
		}
		r.hub.reads.Add(1)
		page, err := r.log.Read(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			if !visible(e.Repo) {
				continue
			}
			if sw.write(encodeFrame(e).data) != nil {
				return nil, errClientGone
			}
		}
		if sw.flush() != nil {
			return nil, errClientGone
		}
		q.After = page.Next
	}
}

// writeAnchor sends the log's anchor (Anchor) as an "anchor" event when it
// differs from *sent, the one this stream last showed. Anchor events carry
// no id, so they never move a client's Last-Event-ID: resuming is by log
// events alone. A follower compares an anchor's hash with the event of
// that seq it received to know the log it follows is the anchored one.
func (r *Registry) writeAnchor(sw *sseWriter, sent *Anchor) error {
	a, ok := r.Anchor()
	if !ok || a == *sent {
		return nil
	}
	*sent = a
	data, err := json.Marshal(map[string]any{"seq": a.Seq, "hash": "blake3:" + a.Hash, "time": a.Time})
	if err != nil {
		return err
	}
	if err := sw.write([]byte("event: anchor\ndata: " + string(data) + "\n\n")); err != nil {
		return err
	}
	return sw.flush()
}

// errClientGone ends a stream whose client stopped reading or left.
var errClientGone = errors.New("event stream client gone")

// sseWriter writes to a stream with a deadline per write, so that a
// client that stops reading cannot hold its handler (and the server's
// shutdown) for longer than writeTimeout.
type sseWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	req *http.Request // the stream's request: who is watching
}

func (sw *sseWriter) write(p []byte) error {
	sw.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := sw.w.Write(p)
	return err
}

func (sw *sseWriter) flush() error {
	sw.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return sw.rc.Flush()
}

// StopStreams ends every event stream, so that a graceful shutdown is not
// held open by long-lived connections. Register it with
// http.Server.RegisterOnShutdown.
func (r *Registry) StopStreams() {
	r.stopOnce.Do(func() { close(r.stopStreams) })
}
