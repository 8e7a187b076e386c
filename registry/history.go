package registry

import (
	"net/http"
	"slices"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
)

// historyTypes are the events that move, remove or create tags.
var historyTypes = []string{
	string(eventlog.TypeTagSet), string(eventlog.TypeTagDeleted), string(eventlog.TypeManifestDeleted),
	string(eventlog.TypeVersionPublished), string(eventlog.TypeVersionDeleted),
}

// maxHistory bounds the changes one answer lists (the newest are kept).
const maxHistory = 10_000

// tagChange is one change of a tag, as the history lists it.
type tagChange struct {
	Seq    int64           `json:"seq"`
	Time   time.Time       `json:"time"`
	Event  eventlog.Type   `json:"event"`
	Tag    string          `json:"tag"`
	Digest string          `json:"digest,omitempty"` // what the tag points to after the change; empty: removed
	Actor  *eventlog.Actor `json:"actor,omitempty"`
}

// history answers every change of a repository's tags and versions (or
// of one tag), oldest first, with who made it, from the hash-chained log;
// with ?at=TIME also what the tag pointed to at that time.
//
//	GET /api/v1/history?repository=R[&tag=T][&at=RFC3339]
func (r *Registry) history(w http.ResponseWriter, req *http.Request) error {
	v, err := queryValues(req)
	if err != nil {
		return err
	}
	repo, tag := v.Get("repository"), v.Get("tag")
	if repo == "" {
		return errorf(CodeNameInvalid, "give ?repository=NAME (and optionally &tag=TAG, &at=TIME)")
	}
	if err := ValidateName(repo); err != nil {
		return err
	}
	if tag != "" {
		if err := ValidateTag(tag); err != nil {
			return err
		}
	}
	var at time.Time
	if s := v.Get("at"); s != "" {
		if at, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return errorf(CodeUnsupported, "at must be an RFC 3339 time such as 2026-12-01T12:00:00Z, got %q", s).withStatus(http.StatusBadRequest)
		}
	}
	if err := r.authorize(w, req, repo, auth.ActionPull); err != nil {
		return err
	}
	changes, err := r.tagChanges(req, repo, tag)
	if err != nil {
		return err
	}
	out := map[string]any{"repository": repo, "changes": changes}
	if tag != "" {
		out["tag"] = tag
	}
	if len(changes) > maxHistory {
		out["changes"], out["truncated"] = changes[len(changes)-maxHistory:], true
	}
	if !at.IsZero() {
		state := map[string]any{"time": at, "digest": nil}
		for _, c := range changes {
			if c.Time.After(at) {
				break
			}
			if tag == "" || c.Tag == tag {
				state["digest"], state["seq"] = nilIfEmpty(c.Digest), c.Seq
			}
		}
		out["at"] = state
	}
	return writeJSON(w, "application/json", out)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// tagChanges reads the repository's tag events from the log, a page at a
// time, and turns them into changes of tags: a manifest.deleted removes
// every tag that pointed at it then, which the log records once.
func (r *Registry) tagChanges(req *http.Request, repo, tag string) ([]tagChange, error) {
	q := eventlog.Query{Repo: repo, Types: historyTypes, Limit: 1000, MaxBytes: 8 << 20}
	current := map[string]string{} // tag -> digest, as the log unfolds
	changes := []tagChange{}
	add := func(e eventlog.Event, t, d string) {
		if tag != "" && t != tag {
			return
		}
		c := tagChange{Seq: e.Seq, Time: e.Time, Event: e.Type, Tag: t, Digest: d}
		if !e.Actor.IsZero() {
			a := e.Actor
			c.Actor = &a
		}
		changes = append(changes, c)
		if len(changes) > 2*maxHistory {
			changes = append(changes[:0], changes[len(changes)-maxHistory:]...)
		}
	}
	for {
		page, err := r.log.Read(req.Context(), q)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			switch e.Type {
			case eventlog.TypeTagSet:
				var p eventlog.TagSet
				if err := e.Decode(&p); err != nil {
					return nil, err
				}
				current[p.Tag] = p.Digest
				add(e, p.Tag, p.Digest)
			case eventlog.TypeTagDeleted:
				var p eventlog.TagDeleted
				if err := e.Decode(&p); err != nil {
					return nil, err
				}
				delete(current, p.Tag)
				add(e, p.Tag, "")
			case eventlog.TypeManifestDeleted:
				var p eventlog.ManifestDeleted
				if err := e.Decode(&p); err != nil {
					return nil, err
				}
				var gone []string
				for t, d := range current {
					if d == p.Digest {
						gone = append(gone, t)
					}
				}
				slices.Sort(gone)
				for _, t := range gone {
					delete(current, t)
					add(e, t, "")
				}
			case eventlog.TypeVersionPublished:
				var p eventlog.VersionPublished
				if err := e.Decode(&p); err != nil {
					return nil, err
				}
				add(e, p.Version, p.OCIDigest)
			case eventlog.TypeVersionDeleted:
				var p eventlog.VersionDeleted
				if err := e.Decode(&p); err != nil {
					return nil, err
				}
				add(e, p.Version, "")
			}
		}
		if !page.More {
			return changes, nil
		}
		q.After = page.Next
	}
}
