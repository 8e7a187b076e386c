package eventlogtest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// testAPIKeys: API keys are made and revoked by events, with the actor as
// their creator; a live key's name is unique and only a live key is
// revoked; replay rebuilds the view exactly.
func testAPIKeys(t *testing.T, l *eventlog.Log) {
	ctx := eventlog.WithActor(context.Background(), eventlog.Actor{Name: "alice", Method: "password", Addr: "127.0.0.1"})
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	created := func(id, name string) eventlog.Event {
		return eventlog.New(eventlog.TypeAPIKeyCreated, "", eventlog.APIKeyCreated{ID: id, Name: name, Hash: sha(1),
			Repositories: []string{"team/**", "tools/*"}, Actions: []string{"pull", "push"}, Expires: exp.Format(time.RFC3339)})
	}
	out, err := l.Append(ctx, created("00000000000000a1", "ci"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := l.APIKey(ctx, "00000000000000a1")
	want := eventlog.APIKey{ID: "00000000000000a1", Name: "ci", Hash: sha(1), Repositories: []string{"team/**", "tools/*"}, Actions: []string{"pull", "push"},
		Expires: exp, Created: out[0].Time.UTC(), CreatedBy: "alice", Seq: out[0].Seq}
	if err != nil || !reflect.DeepEqual(k, want) {
		t.Fatalf("APIKey = %+v, %v\nwant %+v", k, err, want)
	}
	if _, err := l.APIKey(ctx, "00000000000000ff"); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	// A second live key of the same name, or the same id, is refused.
	for _, e := range []eventlog.Event{created("00000000000000a2", "ci"), created("00000000000000a1", "other")} {
		if _, err := l.Append(ctx, e); !errors.Is(err, eventlog.ErrConflict) {
			t.Fatalf("duplicate key: %v", err)
		}
	}
	revoke := func(id string) eventlog.Event {
		return eventlog.New(eventlog.TypeAPIKeyRevoked, "", eventlog.APIKeyRevoked{ID: id})
	}
	rctx := eventlog.WithActor(context.Background(), eventlog.Actor{Name: "root", Method: "password"})
	rev, err := l.Append(rctx, revoke("00000000000000a1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"00000000000000a1", "00000000000000ff"} {
		if _, err := l.Append(rctx, revoke(id)); !errors.Is(err, eventlog.ErrConflict) {
			t.Fatalf("revoking %s again or unknown: %v", id, err)
		}
	}
	k, _ = l.APIKey(ctx, "00000000000000a1")
	if !k.Revoked.Equal(rev[0].Time) || k.RevokedBy != "root" {
		t.Fatalf("revoked key = %+v", k)
	}
	// The name is free again once its key is revoked.
	if _, err := l.Append(ctx, created("00000000000000a2", "ci")); err != nil {
		t.Fatal(err)
	}
	keys, err := l.APIKeys(ctx, 10)
	if err != nil || len(keys) != 2 || keys[0].ID != "00000000000000a1" || keys[1].ID != "00000000000000a2" || !keys[1].Revoked.IsZero() {
		t.Fatalf("APIKeys = %+v, %v", keys, err)
	}
	live, replayed := dumpAndReplay(t, l)
	if len(live["api_keys"]) != 2 || !reflect.DeepEqual(live["api_keys"], replayed["api_keys"]) {
		t.Fatalf("api_keys after replay:\nlive     %v\nreplayed %v", live["api_keys"], replayed["api_keys"])
	}
}
