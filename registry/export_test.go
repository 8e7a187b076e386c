package registry

import (
	"fmt"
	"time"

	"github.com/gorilla/mux"
)

// CrashGCAt makes collections stop at stage ("unlinked", "condemned",
// "deleting": half the batch's bytes deleted, "deleted") with an error, as
// a kill there would; "" runs them whole again.
func (r *Registry) CrashGCAt(stage string) {
	if stage == "" {
		r.gcCrash = nil
		return
	}
	r.gcCrash = func(s string) error {
		if s == stage {
			return fmt.Errorf("simulated crash at %s", s)
		}
		return nil
	}
}

// PauseGCAt makes collections call fn when they reach stage
// ("reads flushed": the reads noted so far are in the log and the mark is
// about to begin), then go on.
func (r *Registry) PauseGCAt(stage string, fn func()) {
	r.gcCrash = func(s string) error {
		if s == stage {
			fn()
		}
		return nil
	}
}

// Route is one entry of the route table, for tests: its path template as
// written in routes (variables with their patterns; a repository route's
// without them, as its name) and its methods.
type Route struct {
	Path    string
	Methods []string
}

// Routes lists the route table that serves requests, in order.
func (r *Registry) Routes() ([]Route, error) {
	m, ok := r.handler.(*mux.Router)
	if !ok {
		if m, ok = r.routes().(*mux.Router); !ok {
			return nil, fmt.Errorf("the handler is a %T, not a *mux.Router: teach Routes in export_test.go to unwrap it", r.handler)
		}
	}
	var out []Route
	err := m.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil { // a repository route (repopath.go): named by its template
			if tpl = route.GetName(); tpl == "" {
				return err
			}
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s: %w (every route must list its methods)", tpl, err)
		}
		out = append(out, Route{Path: tpl, Methods: methods})
		return nil
	})
	return out, err
}

// StreamReads counts the queries of the event log made for event streams:
// the one follower's reads, and those of streams catching up.
func (r *Registry) StreamReads() int64 { return r.hub.reads.Load() }

// StreamSubscribers counts the streams the follower feeds live.
func (r *Registry) StreamSubscribers() int {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	return len(r.hub.subs)
}

// SetStreamBudget lowers the bytes the event hub lets its subscribers'
// queues hold together, for tests.
func (r *Registry) SetStreamBudget(n int64) { r.hub.budget = n }

// StreamsPinned is the bytes the hub's queues hold now.
func (r *Registry) StreamsPinned() int64 { return r.hub.pinned.Load() }

// ForgetReadiness drops the cached readiness answer, so the next /readyz
// checks again.
func (r *Registry) ForgetReadiness() {
	r.ready.mu.Lock()
	r.ready.at = time.Time{}
	r.ready.mu.Unlock()
}

// ForgetManifests empties the cache of manifest bytes, so that the next
// read goes to where they are stored (a test that damages them there).
func (r *Registry) ForgetManifests() { r.manifests.forget() }
