package registry_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
)

type historyAnswer struct {
	Changes []struct {
		Seq    int64
		Time   time.Time
		Event  string
		Tag    string
		Digest string
		Actor  *eventlog.Actor
	}
	At *struct {
		Digest *string
		Seq    int64
	}
}

// TestTagHistory: every move of a tag, with who made it and from where,
// and what the tag pointed to at a given time, from the log.
func TestTagHistory(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		newAuth := authSetup(t)
		s := b.server(t, func(o *registry.Options) { o.Auth = newAuth() })
		alice := basic("alice", "alice-pw")
		s.pushImageAs("team/app", "1", alice)
		first := s.do("GET", "/v2/team/app/manifests/1", nil, alice, "Accept: "+ociManifest).Header.Get("Docker-Content-Digest")
		time.Sleep(20 * time.Millisecond)
		between := time.Now().UTC()
		time.Sleep(20 * time.Millisecond)
		// Move the tag with a token, then delete it.
		tok := s.token(alice, "repository:team/app:pull,push,delete")
		cfg := []byte(`{"architecture":"arm64","os":"linux"}`)
		expect(t, s.do("POST", "/v2/team/app/blobs/uploads/?digest="+sha256Of(cfg), cfg, tok), http.StatusCreated)
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, ociManifest, sha256Of(cfg), len(cfg)))
		expect(t, s.do("PUT", "/v2/team/app/manifests/1", m, tok, "Content-Type: "+ociManifest), http.StatusCreated)
		expect(t, s.do("DELETE", "/v2/team/app/manifests/1", nil, alice), http.StatusAccepted)
		expect(t, s.do("PUT", "/v2/team/app/manifests/other", m, alice, "Content-Type: "+ociManifest), http.StatusCreated)

		q := url.Values{"repository": {"team/app"}, "tag": {"1"}, "at": {between.Format(time.RFC3339Nano)}}
		r := s.do("GET", "/api/v1/history?"+q.Encode(), nil, basic("bob", "bob-pw")) // bob may pull team/app
		expect(t, r, http.StatusOK)
		var h historyAnswer
		mustJSON(t, r.body, &h)
		if len(h.Changes) != 3 {
			t.Fatalf("changes of tag 1: %s", r.body)
		}
		want := []struct{ event, digest, method string }{
			{"tag.set", first, "password"}, {"tag.set", sha256Of(m), "token(password)"}, {"tag.deleted", "", "password"},
		}
		for i, w := range want {
			c := h.Changes[i]
			if c.Event != w.event || c.Digest != w.digest || c.Tag != "1" || c.Actor == nil ||
				c.Actor.Name != "alice" || c.Actor.Method != w.method || c.Actor.Addr != "127.0.0.1" {
				t.Fatalf("change %d: %+v (actor %+v), want %+v", i, c, c.Actor, w)
			}
		}
		if h.At == nil || h.At.Digest == nil || *h.At.Digest != first {
			t.Fatalf("what tag 1 pointed to at %s: %s", between, r.body)
		}
		// Without a tag: every tag of the repository.
		r = s.do("GET", "/api/v1/history?repository=team/app", nil, alice)
		mustJSON(t, r.body, &h)
		if len(h.Changes) != 4 || h.Changes[3].Tag != "other" {
			t.Fatalf("all changes: %s", r.body)
		}
		// Not without pull on the repository, and no oracle.
		expect(t, s.do("GET", "/api/v1/history?repository=team/app", nil, basic("carol", "carol-pw")), http.StatusForbidden)
		expect(t, s.do("GET", "/api/v1/history?repository=team/nothere", nil, basic("carol", "carol-pw")), http.StatusForbidden)
		expect(t, s.do("GET", "/api/v1/history?repository=team/app", nil), http.StatusUnauthorized)
		expect(t, s.do("GET", "/api/v1/history", nil, alice), http.StatusBadRequest)
		// The events show their actor too.
		r = s.do("GET", "/api/v1/events?after=0&repository=team/app&type=tag.deleted", nil, alice)
		if !strings.Contains(string(r.body), `"actor":{"name":"alice","method":"password","addr":"127.0.0.1"}`) {
			t.Fatalf("event page: %s", r.body)
		}
	})
}

// TestActorIsInTheChain: re-attributing an event breaks the hash chain;
// events written without an actor (older logs) keep verifying beside new
// ones.
func TestActorIsInTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// An event as an older server wrote it: no actor.
	if _, err := l.Append(context.Background(), eventlog.New(eventlog.TypeTagDeleted, "r", eventlog.TagDeleted{Tag: "x"})); err != nil {
		t.Fatal(err)
	}
	s := serveOnFS(t, l)
	s.pushImage("r", "1", "")
	if _, bad, err := l.VerifyChain(context.Background()); err != nil || len(bad) != 0 {
		t.Fatalf("a log mixing events with and without actors: %v %v", bad, err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE events SET actor = '{"name":"mallory","method":"password","addr":"10.0.0.1"}' WHERE seq = (SELECT MAX(seq) FROM events)`); err != nil {
		t.Fatal(err)
	}
	_, bad, err := l.VerifyChain(context.Background())
	if err != nil || len(bad) != 1 || !strings.Contains(bad[0].Reason, "hash does not match") {
		t.Fatalf("after re-attributing the last event: %v %v", bad, err)
	}
}
