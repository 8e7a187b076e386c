package eventlogtest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testRetentionViews: policies, pulls, the trash a retention deletion
// fills and a re-creation or purge empties, the guards on retention
// deletions and fixed tags, and replay of all of it.
func testRetentionViews(t *testing.T, l *eventlog.Log) {
	ctx := context.Background()
	m1, m2 := sha(0xb1), sha(0xb2)
	put := func(d string) eventlog.Event {
		return eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{Digest: d, SHA256: d, MediaType: "m", Size: 1, Complete: true})
	}
	tagSet := func(tag, d string, fixed bool) eventlog.Event {
		return eventlog.New(eventlog.TypeTagSet, "r", eventlog.TagSet{Tag: tag, Digest: d, Fixed: fixed})
	}
	mustAppend(t, l, committed(m1), committed(m2), put(m1), put(m2), tagSet("a", m1, false),
		eventlog.New(eventlog.TypePolicySet, "", eventlog.PolicySet{Name: "p", Policy: `{"name":"p"}`}),
		eventlog.New(eventlog.TypeManifestPulled, "r", eventlog.ManifestPulled{Pulls: []eventlog.Pull{{Digest: m1, Time: 5}}}),
		eventlog.New(eventlog.TypeManifestPulled, "r", eventlog.ManifestPulled{Pulls: []eventlog.Pull{{Digest: m1, Time: 3}}}))
	if _, err := l.Append(ctx, tagSet("a", m2, true)); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("moving a fixed tag: %v, want ErrConflict", err)
	}
	mustAppend(t, l, tagSet("a", m1, true)) // the same manifest again
	mark, _ := l.Head(ctx)
	why := eventlog.Retention{Policy: "p", Rule: "tags", Reason: "old", Mark: mark}
	if _, err := l.Append(ctx, eventlog.New(eventlog.TypeManifestDeleted, "r", eventlog.ManifestDeleted{Digest: m1, Retention: why})); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("retention deleting a tagged manifest: %v, want ErrConflict", err)
	}
	if _, err := l.Append(ctx, eventlog.New(eventlog.TypeTagDeleted, "r", eventlog.TagDeleted{Tag: "gone", Retention: why})); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("retention deleting a missing tag: %v, want ErrNotFound", err)
	}
	mustAppend(t, l, eventlog.New(eventlog.TypeTagDeleted, "r", eventlog.TagDeleted{Tag: "a", Retention: why}),
		eventlog.New(eventlog.TypeManifestDeleted, "r", eventlog.ManifestDeleted{Digest: m1, Retention: why}),
		eventlog.New(eventlog.TypeManifestDeleted, "r", eventlog.ManifestDeleted{Digest: m2})) // a client's: not restorable
	var trash []string
	l.Trash(ctx, "r", func(it eventlog.TrashItem) error { trash = append(trash, it.Kind+" "+it.Name); return nil })
	if !reflect.DeepEqual(trash, []string{"tag a", "manifest " + m1}) && !reflect.DeepEqual(trash, []string{"manifest " + m1, "tag a"}) {
		t.Fatalf("trash %v, want the tag and manifest retention deleted", trash)
	}
	live, replayed := dumpAndReplay(t, l)
	for _, v := range []string{"retention_policies", "manifest_pulls", "retention_trash", "trash_blobs", "tags"} {
		if !reflect.DeepEqual(live[v], replayed[v]) {
			t.Fatalf("view %s live %v, replayed %v", v, live[v], replayed[v])
		}
	}
	if len(live["manifest_pulls"]) != 1 || len(live["retention_policies"]) != 1 {
		t.Fatalf("pulls %v, policies %v", live["manifest_pulls"], live["retention_policies"])
	}
	// Put again, the manifest leaves the trash; a purge empties the rest.
	mustAppend(t, l, put(m1))
	trash = nil
	l.Trash(ctx, "r", func(it eventlog.TrashItem) error { trash = append(trash, it.Kind+" "+it.Name); return nil })
	if !reflect.DeepEqual(trash, []string{"tag a"}) {
		t.Fatalf("after the manifest was put again: trash %v, want only the tag", trash)
	}
	head, _ := l.Head(ctx)
	mustAppend(t, l, eventlog.New(eventlog.TypeTrashPurged, "", eventlog.TrashPurged{Through: head}),
		eventlog.New(eventlog.TypePolicyRemoved, "", eventlog.PolicyRemoved{Name: "p"}))
	trash = nil
	l.Trash(ctx, "", func(it eventlog.TrashItem) error { trash = append(trash, it.Kind+" "+it.Name); return nil })
	if ps, _, _ := l.Policies(ctx); len(trash) != 0 || len(ps) != 0 {
		t.Fatalf("after a put and a purge: trash %v, policies %v", trash, ps)
	}
}
