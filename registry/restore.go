package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// Restoring what retention deleted. A deletion stays restorable for the
// undo window (Options.RetentionUndo): its row in the retention_trash view
// names the event that had created the item, whose payload a restore
// appends again, and the collector keeps every blob that needs. A restore
// is one append: the item and everything it needs that retention also
// deleted (a tag's manifest, an index's children, a version's derived
// manifest) and the referrers (signatures, SBOMs) that were deleted with
// it, or nothing.

// Restored is one item a restore brought back.
type Restored struct {
	Kind   string `json:"kind"` // "tag", "manifest" or "version"
	Name   string `json:"name"` // the tag, manifest digest or version
	Digest string `json:"digest"`
}

// Restore brings back repo's item of kind ("tag", "manifest", "version")
// called name, which a retention policy deleted within the undo window. A
// restored tag or version keeps its original push time, so the next plan
// judges it as before rather than as the newest. Asking for the tag of a
// native version restores the version.
func (r *Registry) Restore(ctx context.Context, repo, kind, name string) ([]Restored, error) {
	trash := map[string]eventlog.TrashItem{}
	cutoff := time.Now().Add(-r.opts.RetentionUndo)
	err := r.log.Trash(ctx, repo, func(it eventlog.TrashItem) error {
		if it.Deleted.After(cutoff) {
			trash[it.Kind+" "+it.Name] = it
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rs := &restore{r: r, repo: repo, trash: trash, done: map[string]bool{}}
	if v, ok := trash[eventlog.TrashVersion+" "+name]; ok && kind == eventlog.TrashTag {
		kind = v.Kind // a native version's tag comes back with its version
	}
	it, ok := trash[kind+" "+name]
	if !ok {
		return nil, errorf(CodeDeletedUnknown, "%s has no %s %q deleted by retention in the last %s (the undo window); see GET /api/v1/retention/trash", repo, kind, name, r.opts.RetentionUndo)
	}
	if err := rs.item(ctx, it); err != nil {
		return nil, err
	}
	if _, err := r.log.Append(ctx, rs.evs...); errors.Is(err, eventlog.ErrReferenceMissing) {
		return nil, errorf(CodeDeletedUnknown, "%s %s of %s can no longer be restored: %v", kind, name, repo, err)
	} else if err != nil {
		return nil, err
	}
	return rs.out, nil
}

// restore gathers the events of one restore.
type restore struct {
	r     *Registry
	repo  string
	trash map[string]eventlog.TrashItem
	done  map[string]bool
	evs   []eventlog.Event
	out   []Restored
}

func (rs *restore) item(ctx context.Context, it eventlog.TrashItem) error {
	key := it.Kind + " " + it.Name
	if rs.done[key] {
		return nil
	}
	rs.done[key] = true
	switch it.Kind {
	case eventlog.TrashTag:
		if err := rs.needManifest(ctx, it.Digest); err != nil {
			return err
		}
		rs.evs = append(rs.evs, eventlog.New(eventlog.TypeTagSet, rs.repo, eventlog.TagSet{Tag: it.Name, Digest: it.Digest, Restores: it.PutSeq}))
	case eventlog.TrashManifest:
		var p eventlog.ManifestPut
		if err := rs.created(ctx, it, eventlog.TypeManifestPut, &p); err != nil {
			return err
		}
		for _, c := range p.Manifests {
			if err := rs.needManifest(ctx, c); err != nil {
				return err
			}
		}
		rs.evs = append(rs.evs, eventlog.New(eventlog.TypeManifestPut, rs.repo, p))
		rs.out = append(rs.out, Restored{Kind: it.Kind, Name: it.Name, Digest: it.Digest})
		return rs.referrers(ctx, it.Digest)
	case eventlog.TrashVersion:
		if err := rs.needManifest(ctx, it.Digest); err != nil {
			return err
		}
		var p eventlog.VersionPublished
		if err := rs.created(ctx, it, eventlog.TypeVersionPublished, &p); err != nil {
			return err
		}
		p.Restores = it.PutSeq // the version keeps its publication time
		rs.evs = append(rs.evs,
			eventlog.New(eventlog.TypeVersionPublished, rs.repo, p),
			eventlog.New(eventlog.TypeTagSet, rs.repo, eventlog.TagSet{Tag: it.Name, Digest: it.Digest, Restores: it.PutSeq}))
		rs.done[eventlog.TrashTag+" "+it.Name] = true
	default:
		return errorf(CodeDeletedUnknown, "unknown kind %q: restore a tag, manifest or version", it.Kind)
	}
	rs.out = append(rs.out, Restored{Kind: it.Kind, Name: it.Name, Digest: it.Digest})
	return nil
}

// needManifest restores digest first if retention deleted it; a manifest
// that is neither there nor restorable makes the restore fail.
func (rs *restore) needManifest(ctx context.Context, digest string) error {
	if rs.done[eventlog.TrashManifest+" "+digest] {
		return nil
	}
	_, err := rs.r.log.Manifest(ctx, rs.repo, digest)
	if err == nil {
		return nil
	}
	if !errors.Is(err, eventlog.ErrNotFound) {
		return err
	}
	it, ok := rs.trash[eventlog.TrashManifest+" "+digest]
	if !ok {
		return errorf(CodeDeletedUnknown, "manifest %s of %s is gone and not restorable (deleted by a client, or past the undo window)", digest, rs.repo)
	}
	return rs.item(ctx, it)
}

// referrers restores the manifests retention deleted whose subject is
// digest: they lived and died with it.
func (rs *restore) referrers(ctx context.Context, digest string) error {
	for _, it := range rs.trash {
		if it.Kind != eventlog.TrashManifest || rs.done[eventlog.TrashManifest+" "+it.Name] {
			continue
		}
		var p eventlog.ManifestPut
		if err := rs.created(ctx, it, eventlog.TypeManifestPut, &p); err != nil {
			return err
		}
		if p.Subject == digest {
			if err := rs.item(ctx, it); err != nil {
				return err
			}
		}
	}
	return nil
}

// created decodes the event that had created a trash item.
func (rs *restore) created(ctx context.Context, it eventlog.TrashItem, t eventlog.Type, p any) error {
	e, err := rs.r.log.Event(ctx, it.PutSeq)
	if err != nil {
		return err
	}
	if e.Type != t || e.Repo != rs.repo {
		return fmt.Errorf("restore %s %s: event %d is a %s of %q, not a %s", it.Kind, it.Name, it.PutSeq, e.Type, e.Repo, t)
	}
	return e.Decode(p)
}
