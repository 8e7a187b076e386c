package registry_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/registry"
)

// createdKey is the answer to a key's creation.
type createdKey struct {
	ID, Name, Key, CreatedBy, Status string
	Repositories, Actions            []string
	Expires, Created                 time.Time
}

// makeKey creates a key as root (the admin of authPolicy).
func (s *testServer) makeKey(name, repos, actions string) createdKey {
	s.t.Helper()
	body := fmt.Sprintf(`{"name":%q,"repositories":%s,"actions":%s}`, name, repos, actions)
	r := s.do("POST", "/api/v1/keys", []byte(body), basic("root", "root-pw"), "Content-Type: application/json")
	expect(s.t, r, http.StatusCreated)
	var k createdKey
	mustJSON(s.t, r.body, &k)
	return k
}

// expiredKey records a key that expired an hour ago, as an admin's
// request could not (the API refuses an expiry in the past).
func (s *testServer) expiredKey(name string) string {
	s.t.Helper()
	nk, err := auth.GenerateKey()
	if err != nil {
		s.t.Fatal(err)
	}
	ctx := eventlog.WithActor(context.Background(), eventlog.Actor{Name: "root", Method: "password"})
	if _, err := s.log.Append(ctx, eventlog.New(eventlog.TypeAPIKeyCreated, "", eventlog.APIKeyCreated{
		ID: nk.ID, Name: name, Hash: "sha256:" + hex.EncodeToString(nk.Hash), Repositories: []string{"**"},
		Actions: []string{"pull", "push", "delete"}, Expires: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
	})); err != nil {
		s.t.Fatal(err)
	}
	return nk.Text
}

var keyPattern = regexp.MustCompile(`^ask_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`)

// TestAPIKeys: an admin makes a key and sees its secret once; the key
// pushes and pulls within its globs and actions, as a Basic password and
// through the token service, and nothing else; the log records who did
// what with it and never its secret; revoking it ends the key and the
// tokens issued to it at once.
func TestAPIKeys(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		newAuth := authSetup(t)
		s := b.server(t, func(o *registry.Options) { o.Auth = newAuth() })
		root := basic("root", "root-pw")
		before := time.Now()
		r := s.do("POST", "/api/v1/keys", []byte(`{"name":"ci","repositories":["team/robot/**","tools/*"],"actions":["pull","push"]}`), root)
		expect(t, r, http.StatusCreated)
		var k createdKey
		mustJSON(t, r.body, &k)
		if !keyPattern.MatchString(k.Key) || !strings.HasPrefix(k.Key, "ask_"+k.ID+"_") || k.Name != "ci" || k.CreatedBy != "root" || k.Status != "active" {
			t.Fatalf("created key: %s", r.body)
		}
		if loc := r.Header.Get("Location"); loc != "/api/v1/keys/"+k.ID || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Location %q, Cache-Control %q", loc, r.Header.Get("Cache-Control"))
		}
		if d := k.Expires.Sub(before); d < auth.DefaultKeyLifetime-time.Minute || d > auth.DefaultKeyLifetime+time.Minute {
			t.Errorf("default expiry %s is %s away", k.Expires, d)
		}
		secret := k.Key[len("ask_")+17:]

		// As a Basic password, with any user name: push and pull within
		// the globs.
		key := basic("robot", k.Key)
		cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
		d := sha256Of(cfg)
		expect(t, s.do("POST", "/v2/team/robot/app/blobs/uploads/?digest="+d, cfg, key), http.StatusCreated)
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, ociManifest, d, len(cfg)))
		expect(t, s.do("PUT", "/v2/team/robot/app/manifests/1", m, key, "Content-Type: "+ociManifest), http.StatusCreated)
		expect(t, s.do("GET", "/v2/team/robot/app/manifests/1", nil, basic("", k.Key), "Accept: "+ociManifest), http.StatusOK)
		expect(t, s.do("PUT", "/api/v1/repositories/tools/x/-/versions/1/files/f.txt", []byte("x"), key), http.StatusCreated)
		// Outside them: 403, whatever the policy grants other principals
		// (alice may do anything under team/**).
		for _, c := range []struct{ method, path string }{
			{"DELETE", "/v2/team/robot/app/manifests/" + sha256Of(m)}, // no delete action
			{"GET", "/v2/team/app/tags/list"},                         // outside team/robot/**
			{"POST", "/v2/scratch/x/blobs/uploads/"},
			{"GET", "/api/v1/repositories/tools/x/y/-/versions"}, // * is one segment
		} {
			expect(t, s.do(c.method, c.path, nil, key), http.StatusForbidden, "DENIED")
		}
		// What anonymous callers may do, a key may too.
		expect(t, s.do("GET", "/v2/public/lib/tags/list", nil, key), http.StatusNotFound, "NAME_UNKNOWN")

		// Through the token service: GET with Basic, and the password grant.
		tok := s.token(key, "repository:team/robot/app:pull,push,delete", "repository:team/app:pull")
		expect(t, s.do("PUT", "/v2/team/robot/app/manifests/2", m, tok, "Content-Type: "+ociManifest), http.StatusCreated)
		// Asked for, not granted: the token lacks them, and a token that
		// lacks a scope is answered with a challenge for it.
		expect(t, s.do("DELETE", "/v2/team/robot/app/manifests/"+sha256Of(m), nil, tok), http.StatusUnauthorized)
		expect(t, s.do("GET", "/v2/team/app/tags/list", nil, tok), http.StatusUnauthorized)
		form := url.Values{"grant_type": {"password"}, "service": {"artifactstore"}, "username": {"robot"}, "password": {k.Key},
			"scope": {"repository:team/robot/app:pull"}, "access_type": {"offline"}}
		r = s.do("POST", auth.TokenPath, []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded")
		expect(t, r, http.StatusOK)
		var grant struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		mustJSON(t, r.body, &grant)
		posted := "Authorization: Bearer " + grant.AccessToken
		expect(t, s.do("GET", "/v2/team/robot/app/manifests/2", nil, posted, "Accept: "+ociManifest), http.StatusOK)

		// The audit trail names the key, by Basic and by token.
		var h struct {
			Changes []struct {
				Tag   string
				Actor struct{ Name, Method string }
			}
		}
		mustJSON(t, s.do("GET", "/api/v1/history?repository=team/robot/app", nil, root).body, &h)
		if len(h.Changes) != 2 || h.Changes[0].Actor != (struct{ Name, Method string }{"key:ci", "apikey"}) ||
			h.Changes[1].Actor != (struct{ Name, Method string }{"key:ci", "token(apikey)"}) {
			t.Errorf("history: %+v", h.Changes)
		}

		// The secret is in the creation answer only: not in the list, the
		// events (page and one by one) or any view of the database.
		r = s.do("GET", "/api/v1/keys", nil, root)
		expect(t, r, http.StatusOK)
		if !strings.Contains(string(r.body), `"id":"`+k.ID+`"`) || strings.Contains(string(r.body), "ask_") || strings.Contains(string(r.body), secret) {
			t.Errorf("key list: %s", r.body)
		}
		page := s.do("GET", "/api/v1/events?after=0&limit=1000", nil, root)
		if !strings.Contains(string(page.body), `"type":"apikey.created"`) || strings.Contains(string(page.body), secret) {
			t.Errorf("events page shows no apikey.created, or the secret")
		}
		noSecret := func(where string, p []byte) {
			if strings.Contains(string(p), secret) || strings.Contains(string(p), k.Key) {
				t.Errorf("%s holds the key's secret", where)
			}
		}
		if err := s.log.Events(context.Background(), 0, func(e eventlog.Event) error {
			noSecret(fmt.Sprintf("event %d", e.Seq), append(append([]byte(e.Type), e.Payload...), e.Actor.Name...))
			noSecret(fmt.Sprintf("GET event %d", e.Seq), s.do("GET", fmt.Sprintf("/api/v1/events/%d", e.Seq), nil, root).body)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		views, err := s.log.Dump(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(views["api_keys"]) != 1 {
			t.Fatalf("api_keys view: %v", views["api_keys"])
		}
		for view, rows := range views {
			noSecret("view "+view, []byte(strings.Join(rows, "\n")))
		}

		// Revoked: the key and every token issued to it, at once.
		expect(t, s.do("DELETE", "/api/v1/keys/"+k.ID, nil, root), http.StatusNoContent)
		for name, cred := range map[string]string{"Basic": key, "token": tok, "posted token": posted} {
			r := s.do("GET", "/v2/team/robot/app/manifests/2", nil, cred, "Accept: "+ociManifest)
			if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer realm=") {
				t.Errorf("%s after revocation: %d %s", name, r.StatusCode, r.body)
			}
		}
		r = s.do("GET", auth.TokenPath+"?service=artifactstore&scope=repository:team/robot/app:pull", nil, key)
		expect(t, r, http.StatusUnauthorized)
		form = url.Values{"grant_type": {"refresh_token"}, "service": {"artifactstore"}, "refresh_token": {grant.RefreshToken}}
		expect(t, s.do("POST", auth.TokenPath, []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded"), http.StatusUnauthorized)
		expect(t, s.do("DELETE", "/api/v1/keys/"+k.ID, nil, root), http.StatusNoContent) // again: nothing changes
		var list struct {
			Keys []struct{ ID, Status, RevokedBy string }
		}
		mustJSON(t, s.do("GET", "/api/v1/keys", nil, root).body, &list)
		if len(list.Keys) != 1 || list.Keys[0].Status != "revoked" || list.Keys[0].RevokedBy != "root" {
			t.Errorf("list after revocation: %+v", list.Keys)
		}
		// Its name is free again; the new key is another.
		if k2 := s.makeKey("ci", `["team/robot/**"]`, `["pull"]`); k2.ID == k.ID {
			t.Error("a new key reused the revoked one's id")
		}
		expect(t, s.do("DELETE", "/api/v1/keys/0123456789abcdef", nil, root), http.StatusNotFound, "KEY_UNKNOWN")
		expect(t, s.do("DELETE", "/api/v1/keys/not-an-id", nil, root), http.StatusNotFound, "KEY_UNKNOWN")
	})
}

// TestAPIKeysRefused: expired and malformed keys are 401 (never a 5xx);
// only an admin with a user's own credentials manages keys; requests to
// make one are checked.
func TestAPIKeysRefused(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		newAuth := authSetup(t)
		s := b.server(t, func(o *registry.Options) { o.Auth = newAuth() })
		root := basic("root", "root-pw")
		expired := s.expiredKey("old")
		live := s.makeKey("all", `["**"]`, `["pull","push","delete"]`)
		expect(t, s.do("GET", "/v2/team/app/tags/list", nil, basic("x", live.Key)), http.StatusNotFound, "NAME_UNKNOWN")
		for name, pass := range map[string]string{
			"expired":       expired,
			"garbage":       "ask_garbage",
			"bad id":        "ask_XXXXXXXXXXXXXXXX" + live.Key[20:],
			"wrong secret":  live.Key[:21] + strings.Repeat("A", 43),
			"truncated":     live.Key[:len(live.Key)-1],
			"unknown id":    "ask_0123456789abcdef" + live.Key[20:],
			"prefix only":   "ask_",
			"with newlines": live.Key[:30] + "\n" + live.Key[31:],
		} {
			for _, path := range []string{"/v2/team/app/tags/list", auth.TokenPath + "?service=artifactstore", "/api/v1/keys"} {
				if r := s.do("GET", path, nil, basic("robot", pass)); r.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s key: GET %s answered %d: %s", name, path, r.StatusCode, r.body)
				}
			}
		}

		// Managing keys needs admin everywhere, with a user's credentials.
		alice := basic("alice", "alice-pw")
		rootToken := s.token(root, "repository:team/app:pull")
		for _, c := range []struct {
			name string
			hdr  []string
			want int
		}{
			{"anonymous", nil, http.StatusUnauthorized},
			{"wrong password", []string{basic("root", "nope")}, http.StatusUnauthorized},
			{"alice", []string{alice}, http.StatusForbidden},
			{"a key for everything", []string{basic("robot", live.Key)}, http.StatusForbidden},
			{"root's token", []string{rootToken}, http.StatusForbidden},
		} {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/api/v1/keys", `{"name":"x","repositories":["**"],"actions":["pull"]}`},
				{"GET", "/api/v1/keys", ""},
				{"DELETE", "/api/v1/keys/" + live.ID, ""},
			} {
				if got := s.do(req.method, req.path, []byte(req.body), c.hdr...); got.StatusCode != c.want {
					t.Errorf("%s: %s %s answered %d, want %d: %s", c.name, req.method, req.path, got.StatusCode, c.want, got.body)
				}
			}
		}
		expect(t, s.do("GET", "/v2/team/app/tags/list", nil, basic("robot", live.Key)), http.StatusNotFound) // not revoked by any of it

		// Requests to make a key.
		future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
		for _, c := range []struct {
			body   string
			status int
		}{
			{`{"name":"a","repositories":["**"],"actions":["admin"]}`, http.StatusBadRequest},
			{`{"name":"a","repositories":["**"],"actions":["pull","write"]}`, http.StatusBadRequest},
			{`{"name":"a","repositories":[],"actions":["pull"]}`, http.StatusBadRequest},
			{`{"name":"a","repositories":["team//x"],"actions":["pull"]}`, http.StatusBadRequest},
			{`{"name":"A b","repositories":["**"],"actions":["pull"]}`, http.StatusBadRequest},
			{`{"name":"","repositories":["**"],"actions":["pull"]}`, http.StatusBadRequest},
			{`{"Name":"a","repositories":["**"],"actions":["pull"]}`, http.StatusBadRequest},
			{`{"name":"a","repositories":["**"],"actions":["pull"],"expires":"2001-01-01T00:00:00Z"}`, http.StatusBadRequest},
			{`{"name":"a","repositories":["**"],"actions":["pull"],"expires":"2999-01-01T00:00:00Z"}`, http.StatusBadRequest},
			{`{"name":"a","repositories":["**"],"actions":["pull"],"expires":"tomorrow"}`, http.StatusBadRequest},
			{`not json`, http.StatusBadRequest},
			{`{"name":"all","repositories":["**"],"actions":["pull"]}`, http.StatusConflict}, // a live key's name
			{`{"name":"a","repositories":["**"],"actions":["pull"],"expires":"` + future + `"}`, http.StatusCreated},
		} {
			r := s.do("POST", "/api/v1/keys", []byte(c.body), root)
			if r.StatusCode != c.status || c.status != http.StatusCreated && r.errCode() != "KEY_INVALID" {
				t.Errorf("%s: %d %s, want %d", c.body, r.StatusCode, r.body, c.status)
			}
		}
		expect(t, s.do("POST", "/api/v1/keys", []byte(`{"name":"big","repositories":["`+strings.Repeat("a", 70<<10)+`"],"actions":["pull"]}`), root),
			http.StatusRequestEntityTooLarge, "KEY_INVALID")
	})
}

// TestAPIKeysAuthOff: without authentication there are no keys to manage.
func TestAPIKeysAuthOff(t *testing.T) {
	s := newServer(t)
	for _, req := range []struct{ method, path string }{{"POST", "/api/v1/keys"}, {"GET", "/api/v1/keys"}, {"DELETE", "/api/v1/keys/0123456789abcdef"}} {
		r := s.do(req.method, req.path, []byte(`{"name":"a","repositories":["**"],"actions":["pull"]}`))
		expect(t, r, http.StatusNotFound, "UNSUPPORTED")
		if !strings.Contains(string(r.body), "authentication") {
			t.Errorf("%s %s: %s", req.method, req.path, r.body)
		}
	}
}

// BenchmarkManifestGetAPIKey measures manifest GETs with 16 clients by a
// user's token, and by an API key: as a Basic password and through a
// token issued to it (each looks the key up in the view per request).
func BenchmarkManifestGetAPIKey(b *testing.B) {
	s := newServer(b, func(o *registry.Options) { o.Auth = authSetup(b)() })
	userTok := s.token(basic("alice", "alice-pw"), "repository:team/bench:pull,push")
	s.pushImageAs("team/bench", "v1", userTok)
	key := basic("robot", s.makeKey("bench", `["team/**"]`, `["pull"]`).Key)
	keyTok := s.token(key, "repository:team/bench:pull")
	url := s.url + "/v2/team/bench/manifests/v1"
	b.Run("user-token", func(b *testing.B) { benchGets(b, url, userTok) })
	b.Run("key-basic", func(b *testing.B) { benchGets(b, url, key) })
	b.Run("key-token", func(b *testing.B) { benchGets(b, url, keyTok) })
}
