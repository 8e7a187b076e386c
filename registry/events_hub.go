package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// Event stream tuning.
const (
	streamPage      = 500     // events per read of the log for streams
	streamPageBytes = 1 << 20 // and their bound in bytes (eventlog.Query.MaxBytes)
	// streamBuffer bounds the bytes of events waiting for one live
	// subscriber. One that falls this far behind is dropped: its stream
	// ends, and it resumes from its last id with Last-Event-ID.
	streamBuffer = 1 << 20
	// hubBudget bounds the bytes of distinct frames waiting in all the
	// subscribers' queues together (frames are shared, so one event read
	// by many costs it once). Past it, the subscriber furthest behind is
	// dropped, so open streams cannot pin streamBuffer each.
	hubBudget      = 64 << 20
	keepAlive      = 15 * time.Second
	streamFallback = 5 * time.Second // re-read even without a wake-up, in case one was lost
	streamRetry    = time.Second     // after a failed read of the log
	writeTimeout   = 30 * time.Second
)

// errStreamsStopped ends streams when the server shuts down.
var errStreamsStopped = errors.New("event streams stopped")

// hub follows the event log once per Registry and feeds every live
// subscriber from memory, so a commit costs one read of the log however
// many streams are open, and a subscriber costs a writer nothing.
//
// Invariants, under mu:
//   - Every event up to pos has been offered to every subscriber in subs;
//     events after pos will be. A stream joins subs only once it has
//     written everything up to pos that matches it (its after >= pos), so
//     it sees every event exactly once, in order.
//   - The follower goroutine runs while running is set; it stops when
//     subs is empty and nobody is joining, and a join starts a new one.
//   - A subscriber holds at most streamBuffer bytes of frames; offering it
//     more drops it instead, so no subscriber ever makes the follower (or
//     a writer) wait.
type hub struct {
	log    *eventlog.Log
	logger *slog.Logger
	stop   <-chan struct{} // closed by Registry.StopStreams
	max    int             // open streams allowed (Options.MaxEventStreams)

	open   atomic.Int64 // streams open, joined or catching up
	reads  atomic.Int64 // queries of the log made for streams
	pinned atomic.Int64 // bytes of distinct frames in subscribers' queues
	budget int64        // hubBudget; tests lower it

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	joining int           // streams waiting for ready
	running bool          // a follower goroutine runs
	ready   chan struct{} // closed once the running follower has set pos (or err)
	err     error         // why the follower behind ready could not start
	pos     int64
	kick    chan struct{} // (1) a subscriber left: the follower checks whether to stop
}

func newHub(l *eventlog.Log, logger *slog.Logger, stop <-chan struct{}, max int) *hub {
	return &hub{log: l, logger: logger, stop: stop, max: max, budget: hubBudget, subs: map[*subscriber]struct{}{}, kick: make(chan struct{}, 1)}
}

// frame is one event as every stream writes it, encoded once.
type frame struct {
	seq  int64
	typ  eventlog.Type
	repo string
	data []byte       // "id: …\nevent: …\ndata: …\n\n"
	refs atomic.Int32 // queues holding it (hub.pinned counts it once)
}

func encodeFrame(e eventlog.Event) *frame {
	data, _ := json.Marshal(toJSON(e, maxInlinePayload))
	return &frame{seq: e.Seq, typ: e.Type, repo: e.Repo,
		data: fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data)}
}

// subscriber is one live stream's place in the hub.
type subscriber struct {
	pinned  *atomic.Int64 // the hub's
	repo    string
	types   map[eventlog.Type]bool // nil: every type
	visible func(repo string) bool // the caller may see this repository's events

	// after is the last sequence number the stream has written (or
	// skipped); set before it joins and constant afterwards.
	after int64

	mu      sync.Mutex
	queue   []*frame
	bytes   int
	dropped bool
	wake    chan struct{} // (1) the queue has frames
	gone    chan struct{} // closed when the hub drops the subscriber
}

func newSubscriber(q eventlog.Query, visible func(string) bool) *subscriber {
	s := &subscriber{repo: q.Repo, after: q.After, visible: visible, wake: make(chan struct{}, 1), gone: make(chan struct{})}
	if len(q.Types) > 0 {
		s.types = map[eventlog.Type]bool{}
		for _, t := range q.Types {
			s.types[eventlog.Type(t)] = true
		}
	}
	return s
}

func (s *subscriber) wants(f *frame) bool {
	return f.seq > s.after && (s.repo == "" || s.repo == f.repo) && (s.types == nil || s.types[f.typ]) && s.visible(f.repo)
}

// offer queues f for the subscriber, or reports false when its buffer is
// full (the hub then drops it).
func (s *subscriber) offer(f *frame) bool {
	if !s.wants(f) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytes+len(f.data) > streamBuffer {
		return false
	}
	s.queue = append(s.queue, f)
	s.bytes += len(f.data)
	if f.refs.Add(1) == 1 {
		s.pinned.Add(int64(len(f.data)))
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// take empties the queue.
func (s *subscriber) take() []*frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue, s.bytes = nil, 0
	s.unpin(q)
	return q
}

// unpin releases the queue's hold on its frames.
func (s *subscriber) unpin(q []*frame) {
	for _, f := range q {
		if f.refs.Add(-1) == 0 {
			s.pinned.Add(-int64(len(f.data)))
		}
	}
}

// oldest is the sequence number of the first frame waiting, or 0.
func (s *subscriber) oldest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return 0
	}
	return s.queue[0].seq
}

// drop ends the subscription and frees what it held.
func (s *subscriber) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dropped {
		s.dropped = true
		s.unpin(s.queue)
		s.queue, s.bytes = nil, 0
		close(s.gone)
	}
}

// acquire counts a new stream in, unless max are open.
func (h *hub) acquire() bool {
	if h.open.Add(1) > int64(h.max) {
		h.open.Add(-1)
		return false
	}
	return true
}

func (h *hub) release() { h.open.Add(-1) }

// join adds s to the live subscribers if it has caught up with the hub
// (s.after >= pos), starting the follower if none runs. false: s is
// behind and must read from the log itself first.
func (h *hub) join(ctx context.Context, s *subscriber) (bool, error) {
	for {
		select {
		case <-h.stop:
			return false, errStreamsStopped
		default:
		}
		h.mu.Lock()
		if !h.running {
			h.running, h.err, h.ready = true, nil, make(chan struct{})
			go h.follow(h.ready)
		}
		ready := h.ready
		h.joining++
		h.mu.Unlock()
		var err error
		select {
		case <-ready:
		case <-ctx.Done():
			err = ctx.Err()
		case <-h.stop:
			err = errStreamsStopped
		}
		h.mu.Lock()
		h.joining--
		switch {
		case err != nil:
		case h.ready != ready:
			h.mu.Unlock()
			continue // that follower stopped meanwhile; start another
		case h.err != nil:
			err = h.err
		case s.after >= h.pos:
			s.pinned = &h.pinned
			h.subs[s] = struct{}{}
			h.mu.Unlock()
			return true, nil
		}
		h.mu.Unlock()
		return false, err
	}
}

// leave removes s, and lets the follower stop when it was the last.
func (h *hub) leave(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	idle := len(h.subs) == 0
	h.mu.Unlock()
	s.drop()
	if idle {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
}

// stopIfIdle reports whether the follower may stop (nobody subscribed or
// joining); if so it marks it stopped, so the next join starts another.
func (h *hub) stopIfIdle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) > 0 || h.joining > 0 {
		return false
	}
	h.running, h.ready = false, nil
	return true
}

// follow is the one reader of the log: it reads each new page once,
// encodes each event once, and offers it to every live subscriber.
func (h *hub) follow(ready chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	h.reads.Add(1)
	head, err := h.log.Head(ctx)
	h.mu.Lock()
	h.pos, h.err = head, err
	if err != nil {
		// Joiners waiting on ready see err; the next join starts afresh.
		h.running = false
	}
	close(ready)
	h.mu.Unlock()
	if err != nil {
		h.logger.Error("event stream: read the log head", "err", err)
		return
	}
	defer func() {
		h.mu.Lock()
		if h.ready == ready {
			h.running, h.ready = false, nil
		}
		h.mu.Unlock()
	}()
	for first := true; ; first = false {
		if !first && h.stopIfIdle() {
			return
		}
		changed := h.log.Changed() // before reading, so no commit slips between
		h.reads.Add(1)
		page, err := h.log.Read(ctx, eventlog.Query{After: h.position(), Limit: streamPage, MaxBytes: streamPageBytes, MaxPayload: maxInlinePayload})
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if h.stopIfIdle() {
				return // nobody to tell (a log closed after its last stream, say)
			}
			h.logger.Error("event stream: read the log", "err", err)
			changed = nil // retry after streamRetry
		default:
			h.publish(page)
			if page.More {
				continue
			}
		}
		if !h.wait(changed) {
			return
		}
	}
}

func (h *hub) position() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos
}

// publish offers a page's events to every subscriber, dropping those whose
// buffer is full, and moves pos past the page.
func (h *hub) publish(page eventlog.Page) {
	frames := make([]*frame, len(page.Events))
	for i, e := range page.Events {
		frames[i] = encodeFrame(e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range frames {
		for s := range h.subs {
			if !s.offer(f) {
				delete(h.subs, s)
				s.drop()
			}
		}
		h.trim()
	}
	h.pos = page.Next
}

// trim drops the subscribers furthest behind until the frames waiting in
// all queues fit hubBudget. h.mu is held.
func (h *hub) trim() {
	for h.pinned.Load() > h.budget {
		var worst *subscriber
		var at int64
		for s := range h.subs {
			if o := s.oldest(); o > 0 && (worst == nil || o < at) {
				worst, at = s, o
			}
		}
		if worst == nil {
			return
		}
		delete(h.subs, worst)
		worst.drop()
	}
}

// wait returns when the log may have grown (changed nil: after a pause to
// retry a failed read), a subscriber left, or a fallback interval passed;
// false when streams are being stopped.
func (h *hub) wait(changed <-chan struct{}) bool {
	d := streamFallback
	if changed == nil {
		d = streamRetry
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-h.kick:
	case <-h.stop:
		return false
	}
	return true
}
