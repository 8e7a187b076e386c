package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// The periodic server-side tasks the soak runs on every server. A task is
// its serve flags, the time it needs after the load to finish what the
// load left it, and the figures it reports; adding one is adding an entry.

// soakTask is a periodic server-side task the soak runs on every server.
type soakTask struct {
	name  string
	flags []string // what turns it on in serve
	// settle is how long after the load stops the task needs, at least,
	// to do everything the load left it; settled then says whether it has
	// on a target, and if not, what is left. It is asked until it has, or
	// a minute more has passed.
	settle  time.Duration
	settled func(t *testing.T, g *soakTarget) (left string, done bool)
	// figures reports what the task did on a target, read from its event
	// log through the API; an error if it did nothing at all.
	figures func(c *http.Client, base string, stopped time.Time) (string, error)
	// load, when set, is the task's own load on a target, run beside the
	// clients until deadline: what it did, and the failures it saw.
	load func(t *testing.T, g *soakTarget, deadline time.Time) (ops map[string]int, failures []string)
}

const (
	soakGCInterval = time.Second
	soakGCGrace    = 5 * time.Second
)

var soakTasks = []soakTask{{
	name:  "gc",
	flags: []string{"--gc-interval", soakGCInterval.String(), "--gc-grace", soakGCGrace.String()},
	// Garbage made as the load stops is past the grace after it, and the
	// next collection or two remove it.
	settle:  soakGCGrace + 2*soakGCInterval,
	settled: gcSettled,
	figures: gcFigures,
}}

// gcSettled reports what is left for the collectors of a target: unused
// blobs and links, and stored bytes no event names (as verify counts them).
func gcSettled(t *testing.T, g *soakTarget) (string, bool) {
	l := openLog(t, g.data, g.dsn())
	defer l.Close()
	ctx := context.Background()
	var blobs, links int
	if err := l.UnusedBlobs(ctx, math.MaxInt64, func(eventlog.Blob) error { blobs++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.UnusedLinks(ctx, func(eventlog.UnusedLink) error { links++; return nil }); err != nil {
		t.Fatal(err)
	}
	stored := storedBlobs(filepath.Join(g.data, "blobs"))
	unrecorded, err := l.Unrecorded(ctx, stored)
	if err != nil {
		t.Fatal(err)
	}
	left := fmt.Sprintf("%d unused blobs, %d unused links, %d stored blobs no event names", blobs, links, len(unrecorded))
	return left, blobs+links+len(unrecorded) == 0
}

// gcFigures reads what the collectors of a target did from its event
// log: collections that swept (and of those, the ones after the load
// stopped), blobs condemned and swept, bytes freed, links removed.
func gcFigures(c *http.Client, base string, stopped time.Time) (string, error) {
	runs, late := map[string]bool{}, map[string]bool{}
	var condemned, swept, unlinked int
	var freed int64
	err := readEvents(c, base, []string{"gc.condemned", "gc.swept", "blob.unlinked"}, func(e soakEvent) error {
		var p struct {
			Run   string
			Blobs []string
			Bytes int64
		}
		if e.Type != "blob.unlinked" {
			if err := json.Unmarshal(e.Payload, &p); err != nil {
				return fmt.Errorf("event %d (%s): %w", e.Seq, e.Type, err)
			}
		}
		switch e.Type {
		case "gc.condemned":
			condemned += len(p.Blobs)
		case "gc.swept":
			runs[p.Run] = true
			if e.Time.After(stopped) {
				late[p.Run] = true
			}
			swept += len(p.Blobs)
			freed += p.Bytes
		case "blob.unlinked":
			if e.Actor.Name == "artifactstore:gc" {
				unlinked++
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if swept == 0 {
		return "", fmt.Errorf("no collection swept anything (%d links removed)", unlinked)
	}
	return fmt.Sprintf("%d collections swept %d blobs (%d condemned), freed %d bytes (%.1f MiB), removed %d links; %d of those collections after the load stopped",
		len(runs), swept, condemned, freed, float64(freed)/(1<<20), unlinked, len(late)), nil
}

// soakEvent is an event as /api/v1/events shows it, as far as figures
// need.
type soakEvent struct {
	Seq        int64
	Time       time.Time
	Type       string
	Payload    json.RawMessage
	PayloadRef *struct{ Href string }
	Actor      struct{ Name string }
}

// readEvents calls fn for every event of the given types the server at
// base shows, in order, fetching payloads too large for a page.
func readEvents(c *http.Client, base string, types []string, fn func(soakEvent) error) error {
	var after int64
	for {
		r, err := call(c, "GET", base+"/api/v1/events?limit=1000&type="+strings.Join(types, ",")+"&after="+strconv.FormatInt(after, 10), nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("events: %s", r)
		}
		var page struct {
			Events []soakEvent
			Next   int64
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		for _, e := range page.Events {
			if e.PayloadRef != nil {
				r, err := call(c, "GET", base+e.PayloadRef.Href, nil)
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("%s: %s", e.PayloadRef.Href, r)
				}
				if err == nil {
					err = json.Unmarshal(r.body, &e)
				}
				if err != nil {
					return err
				}
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page.Events) == 0 || page.Next <= after {
			return nil
		}
		after = page.Next
	}
}
