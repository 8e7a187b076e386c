package registry_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/registry"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/crypto/bcrypt"
)

// authPolicy is the policy of the auth tests: anonymous callers (and so
// everyone) may pull public/**; alice may do anything under team/**; bob
// may pull team/app; carol may push and pull scratch/**; root is the
// admin (of API keys, too).
const authPolicy = `
rules:
  - subjects: [anonymous]
    repositories: ["public/**"]
    actions: [pull]
  - subjects: [alice]
    repositories: ["team/**"]
    actions: [pull, push, delete]
  - subjects: [bob]
    repositories: [team/app]
    actions: [pull]
  - subjects: [carol]
    repositories: ["scratch/**"]
    actions: [pull, push]
  - subjects: [root]
    repositories: ["**"]
    actions: [admin]
`

// authSetup writes an htpasswd file, the policy and a key directory, and
// returns a function that builds an authenticator over them (several
// authenticators may share the keys, as replicas do).
func authSetup(t testing.TB) func(mutate ...func(*auth.Options)) *auth.Authenticator {
	dir := t.TempDir()
	var users strings.Builder
	for _, u := range []string{"alice", "bob", "carol", "root"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&users, "%s:%s\n", u, h)
	}
	htpasswd, policy := filepath.Join(dir, "htpasswd"), filepath.Join(dir, "policy.yaml")
	os.WriteFile(htpasswd, []byte(users.String()), 0o600)
	os.WriteFile(policy, []byte(authPolicy), 0o600)
	return func(mutate ...func(*auth.Options)) *auth.Authenticator {
		u, err := auth.LoadHtpasswd(htpasswd)
		if err != nil {
			t.Fatal(err)
		}
		p, err := auth.LoadPolicy(policy)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := auth.LoadKeyDir(filepath.Join(dir, "keys"))
		if err != nil {
			t.Fatal(err)
		}
		lim := auth.NewLimiter()
		lim.SlowAfter, lim.BlockAfter = 1_000_000, 1_000_000 // TestLoginThrottled tests it
		o := auth.Options{Users: u, Policy: p, Keys: ks, Leeway: time.Millisecond, Limiter: lim,
			ValidName: func(n string) bool { return registry.ValidateName(n) == nil }}
		for _, m := range mutate {
			m(&o)
		}
		a, err := auth.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

func basic(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// token fetches a token from s's token service for the scopes.
func (s *testServer) token(cred string, scopes ...string) string {
	s.t.Helper()
	q := url.Values{"service": {"artifactstore"}, "scope": scopes}
	var hdr []string
	if cred != "" {
		hdr = append(hdr, cred)
	}
	r := s.do("GET", auth.TokenPath+"?"+q.Encode(), nil, hdr...)
	expect(s.t, r, http.StatusOK)
	var out struct{ Token string }
	if err := json.Unmarshal(r.body, &out); err != nil || out.Token == "" {
		s.t.Fatalf("token answer %s: %v", r.body, err)
	}
	return "Authorization: Bearer " + out.Token
}

// TestAuthBypass: every surface of a repository the caller may not use,
// under every kind of bad or insufficient credential, answers 401 or 403,
// never 2xx or 5xx, and alike whether or not the repository exists.
func TestAuthBypass(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		newAuth := authSetup(t)
		authn := newAuth()
		s := b.server(t, func(o *registry.Options) { o.Auth = authn })
		alice := basic("alice", "alice-pw")
		// Content: an image in team/secret and team/app, a public one.
		var secretBlob, secretManifest string
		{
			cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
			for _, repo := range []string{"team/secret", "team/app"} {
				d := sha256Of(cfg)
				expect(t, s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, cfg, alice), http.StatusCreated)
				m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, ociManifest, d, len(cfg)))
				expect(t, s.do("PUT", "/v2/"+repo+"/manifests/1", m, alice, "Content-Type: "+ociManifest), http.StatusCreated)
				secretBlob, secretManifest = d, sha256Of(m)
			}
			expect(t, s.do("PUT", "/api/v1/repositories/team/secret/-/versions/2/files/f.txt", []byte("secret"), alice), http.StatusCreated)
		}
		var expired string
		{
			// A server with 1 s tokens and the same keys issues one that
			// is expired by the time it is used.
			short := b.server(t, func(o *registry.Options) { o.Auth = newAuth(func(o *auth.Options) { o.TokenTTL = time.Second }) })
			expired = short.token(alice, "repository:team/secret:pull")
		}
		otherAudience := b.server(t, func(o *registry.Options) {
			o.Auth = newAuth(func(o *auth.Options) { o.Service = "another-registry" })
		})
		q := url.Values{"service": {"another-registry"}, "scope": {"repository:team/secret:pull"}}
		var oa struct{ Token string }
		json.Unmarshal(otherAudience.do("GET", auth.TokenPath+"?"+q.Encode(), nil, alice).body, &oa)
		forged := "Authorization: Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"artifactstore","sub":"alice","aud":"artifactstore","exp":9999999999,"typ":"access","amr":"password","access":[{"type":"repository","name":"team/secret","actions":["pull","push","delete"]}]}`)) + "."
		// Confused algorithm: HS256 keyed with the server's own public key;
		// and a token that brings its own key in the header.
		claims := map[string]any{"iss": "artifactstore", "sub": "alice", "aud": "artifactstore", "exp": time.Now().Add(time.Hour).Unix(),
			"typ": "access", "amr": "password", "access": []map[string]any{{"type": "repository", "name": "team/secret", "actions": []string{"pull", "push", "delete"}}}}
		ours := authn.JWKS().Keys[0]
		pubDER, _ := x509.MarshalPKIXPublicKey(ours.Key)
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
		signWith := func(alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions) string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Signed(signer).Claims(claims).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return "Authorization: Bearer " + tok
		}
		attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		confused := signWith(jose.HS256, pubPEM, (&jose.SignerOptions{}).WithHeader("kid", ours.KeyID))
		embedded := signWith(jose.ES256, attacker, (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", ours.KeyID))
		bobToken := s.token(basic("bob", "bob-pw"), "repository:team/app:pull", "repository:team/secret:pull,push")
		anonToken := s.token("", "repository:team/secret:pull,push,delete")
		// API keys: one revoked (with a token it got before), one expired,
		// one for other repositories.
		revokedKey := s.makeKey("revoked", `["team/**"]`, `["pull","push","delete"]`)
		revokedToken := s.token(basic("robot", revokedKey.Key), "repository:team/secret:pull,push,delete", "repository:team/nothere:pull,push,delete")
		expect(t, s.do("DELETE", "/api/v1/keys/"+revokedKey.ID, nil, basic("root", "root-pw")), http.StatusNoContent)
		expiredKey := s.expiredKey("expired")
		scratchKey := basic("robot", s.makeKey("scratch", `["scratch/**"]`, `["pull","push","delete"]`).Key)
		time.Sleep(1100 * time.Millisecond) // let the short token expire

		creds := []struct {
			name string
			hdr  []string
			want int
		}{
			{"no credentials", nil, http.StatusUnauthorized},
			{"wrong password", []string{basic("alice", "wrong")}, http.StatusUnauthorized},
			{"unknown user", []string{basic("mallory", "x")}, http.StatusUnauthorized},
			{"expired token", []string{expired}, http.StatusUnauthorized},
			{"token for another audience", []string{"Authorization: Bearer " + oa.Token}, http.StatusUnauthorized},
			{"forged alg none", []string{forged}, http.StatusUnauthorized},
			{"HS256 keyed with our public key", []string{confused}, http.StatusUnauthorized},
			{"a key embedded in the header", []string{embedded}, http.StatusUnauthorized},
			{"token for another repository", []string{bobToken}, http.StatusUnauthorized},
			{"anonymous token", []string{anonToken}, http.StatusUnauthorized},
			{"authenticated without permission", []string{basic("bob", "bob-pw")}, http.StatusForbidden},
			{"other scheme", []string{"Authorization: Digest x"}, http.StatusUnauthorized},
			{"revoked API key", []string{basic("robot", revokedKey.Key)}, http.StatusUnauthorized},
			{"token of a revoked API key", []string{revokedToken}, http.StatusUnauthorized},
			{"expired API key", []string{basic("robot", expiredKey)}, http.StatusUnauthorized},
			{"malformed API key", []string{basic("robot", "ask_0123_x")}, http.StatusUnauthorized},
			{"API key for other repositories", []string{scratchKey}, http.StatusForbidden},
		}
		type req struct{ method, path string }
		surfaces := func(repo string) []req {
			return []req{
				{"GET", "/v2/" + repo + "/blobs/" + secretBlob},
				{"HEAD", "/v2/" + repo + "/blobs/" + secretBlob},
				{"GET", "/v2/" + repo + "/manifests/1"},
				{"HEAD", "/v2/" + repo + "/manifests/1"},
				{"GET", "/v2/" + repo + "/tags/list"},
				{"GET", "/v2/" + repo + "/referrers/" + secretManifest},
				{"PUT", "/v2/" + repo + "/manifests/evil"},
				{"POST", "/v2/" + repo + "/blobs/uploads/"},
				{"DELETE", "/v2/" + repo + "/manifests/" + secretManifest},
				{"DELETE", "/v2/" + repo + "/blobs/" + secretBlob},
				{"GET", "/api/v1/repositories/" + repo + "/-/versions"},
				{"GET", "/api/v1/repositories/" + repo + "/-/versions/2"},
				{"GET", "/api/v1/repositories/" + repo + "/-/versions/2/files"},
				{"GET", "/api/v1/repositories/" + repo + "/-/versions/2/files/f.txt"},
				{"GET", "/api/v1/repositories/" + repo + "/-/blobs/" + secretBlob},
				{"PUT", "/api/v1/repositories/" + repo + "/-/versions/9/files/f.txt"},
				{"DELETE", "/api/v1/repositories/" + repo + "/-/versions/2"},
			}
		}
		existing, missing := surfaces("team/secret"), surfaces("team/nothere")
		for _, c := range creds {
			for i, r := range existing {
				got := s.do(r.method, r.path, []byte("{}"), c.hdr...)
				if got.StatusCode >= 200 && got.StatusCode < 300 || got.StatusCode >= 500 {
					t.Fatalf("%s: %s %s answered %d", c.name, r.method, r.path, got.StatusCode)
				}
				want := c.want
				if got.StatusCode != want {
					t.Errorf("%s: %s %s answered %d, want %d: %s", c.name, r.method, r.path, got.StatusCode, want, got.body)
				}
				if want == http.StatusUnauthorized && !strings.HasPrefix(got.Header.Get("WWW-Authenticate"), "Bearer realm=") {
					t.Errorf("%s: %s %s: 401 without a Bearer challenge", c.name, r.method, r.path)
				}
				// The same request on a repository that does not exist
				// answers the same: no existence oracle.
				m := s.do(missing[i].method, missing[i].path, []byte("{}"), c.hdr...)
				if m.StatusCode != got.StatusCode || m.errCode() != got.errCode() {
					t.Errorf("%s: %s answered %d %s for an existing repository and %d %s for a missing one",
						c.name, r.method, got.StatusCode, got.errCode(), m.StatusCode, m.errCode())
				}
			}
		}
		// The challenge names the scope the request needs.
		ch := s.do("POST", "/v2/team/secret/blobs/uploads/", nil).Header.Get("WWW-Authenticate")
		if !strings.Contains(ch, `scope="repository:team/secret:pull,push"`) || !strings.Contains(ch, `service="artifactstore"`) {
			t.Errorf("challenge %q", ch)
		}
		// Path variants reach the same decision, or are not names at all.
		for _, p := range []string{
			"/v2/team//secret/manifests/1", "/v2/team/./secret/manifests/1", "/v2/team/x/../secret/manifests/1",
			"/v2/Team/Secret/manifests/1", "/v2/team%2Fsecret/manifests/1", "/v2/team/secret/./manifests/1",
			"/v2/team/secret//manifests/1", "/v2//team/secret/manifests/1", "/api/v1/repositories/team/secret/-/../-/versions/2",
			"/api/v1/repositories/team%2fsecret/-/versions/2",
		} {
			for _, hdr := range [][]string{nil, {basic("bob", "bob-pw")}, {scratchKey}} {
				got := s.do("GET", p, nil, hdr...)
				if got.StatusCode < 400 || got.StatusCode >= 500 {
					t.Errorf("%s (%v): %d", p, hdr, got.StatusCode)
				}
			}
		}
		// Mount needs pull on the source: carol may push scratch/** but
		// not read team/secret, so her mount is an ordinary upload.
		carol := basic("carol", "carol-pw")
		r := s.do("POST", "/v2/scratch/x/blobs/uploads/?mount="+secretBlob+"&from=team/secret", nil, carol)
		expect(t, r, http.StatusAccepted)
		expect(t, s.do("GET", "/v2/scratch/x/blobs/"+secretBlob, nil, carol), http.StatusNotFound)
		// The ones allowed get through: alice, bob on team/app by password
		// and by token, anyone on public content.
		expect(t, s.do("GET", "/v2/team/secret/manifests/1", nil, alice, "Accept: "+ociManifest), http.StatusOK)
		expect(t, s.do("GET", "/v2/team/secret/manifests/1", nil, s.token(alice, "repository:team/secret:pull"), "Accept: "+ociManifest), http.StatusOK)
		expect(t, s.do("GET", "/v2/team/app/manifests/1", nil, basic("bob", "bob-pw"), "Accept: "+ociManifest), http.StatusOK)
		expect(t, s.do("GET", "/v2/team/app/manifests/1", nil, bobToken, "Accept: "+ociManifest), http.StatusOK)
		expect(t, s.do("POST", "/v2/public/lib/blobs/uploads/?digest="+sha256Of([]byte("pub")), []byte("pub"), alice), http.StatusForbidden)
	})
}

// TestAuthFilteredLists: catalogs, repository lists, search and events
// show only what the caller may pull, and stay correctly paginated.
func TestAuthFilteredLists(t *testing.T) {
	newAuth := authSetup(t)
	s := newServer(t, func(o *registry.Options) { o.Auth = newAuth() })
	alice := basic("alice", "alice-pw")
	for i := range 5 {
		expect(t, s.do("PUT", fmt.Sprintf("/api/v1/repositories/team/r%d/-/versions/1/files/f", i), []byte("x"), alice), http.StatusCreated)
	}
	expect(t, s.do("PUT", "/api/v1/repositories/team/app/-/versions/1/files/f", []byte("x"), alice), http.StatusCreated)
	bob := basic("bob", "bob-pw")
	for _, path := range []string{"/v2/_catalog?n=1", "/api/v1/repositories?n=1"} {
		r := s.do("GET", path, nil, bob)
		expect(t, r, http.StatusOK)
		if !strings.Contains(string(r.body), `["team/app"]`) || r.Header.Get("Link") != "" {
			t.Errorf("%s as bob: %s, Link %q", path, r.body, r.Header.Get("Link"))
		}
	}
	r := s.do("GET", "/v2/_catalog?n=2", nil, alice)
	if !strings.Contains(string(r.body), `["team/app","team/r0"]`) || r.Header.Get("Link") == "" {
		t.Errorf("catalog as alice: %s, Link %q", r.body, r.Header.Get("Link"))
	}
	r = s.do("GET", "/api/v1/search?n=1", nil, bob)
	if !strings.Contains(string(r.body), `"team/app"`) || strings.Contains(string(r.body), "team/r") {
		t.Errorf("search as bob: %s", r.body)
	}
	var page struct {
		Events []struct {
			Repository string
			Type       string
		}
	}
	r = s.do("GET", "/api/v1/events?after=0&limit=1000", nil, bob)
	mustJSON(t, r.body, &page)
	if len(page.Events) == 0 {
		t.Fatal("bob sees no events of team/app")
	}
	for _, e := range page.Events {
		if e.Repository != "team/app" {
			t.Fatalf("bob sees an event of %q (%s)", e.Repository, e.Type)
		}
	}
	// Anonymous: nothing but the challenge on /v2/, and nothing listed.
	expect(t, s.do("GET", "/v2/", nil), http.StatusUnauthorized)
	expect(t, s.do("GET", "/v2/", nil, bob), http.StatusOK)
	if r := s.do("GET", "/v2/_catalog", nil); strings.Contains(string(r.body), "team/") {
		t.Errorf("anonymous catalog: %s", r.body)
	}
}

// TestLoginThrottled: a client that keeps failing is slowed, then refused
// with 429 and Retry-After, on /v2/ and at the token service; another
// client is not.
func TestLoginThrottled(t *testing.T) {
	newAuth := authSetup(t)
	lim := auth.NewLimiter()
	lim.SlowAfter, lim.BlockAfter = 2, 4
	s := newServer(t, func(o *registry.Options) { o.Auth = newAuth(func(o *auth.Options) { o.Limiter = lim }) })
	for range 4 {
		expect(t, s.do("GET", "/v2/team/app/tags/list", nil, basic("bob", "nope")), http.StatusUnauthorized)
	}
	r := s.do("GET", "/v2/team/app/tags/list", nil, basic("bob", "bob-pw"))
	expect(t, r, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	r = s.do("GET", auth.TokenPath+"?service=artifactstore", nil, basic("bob", "bob-pw"))
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("token service while throttled: %d %v", r.StatusCode, r.Header)
	}
}

// TestMountAsksForTheSourceScope: a token fetched for the target alone is
// asked, with a challenge naming both scopes, for one that covers the
// mount's source; with it the mount links the blob.
func TestMountAsksForTheSourceScope(t *testing.T) {
	newAuth := authSetup(t)
	s := newServer(t, func(o *registry.Options) { o.Auth = newAuth() })
	alice := basic("alice", "alice-pw")
	d := sha256Of([]byte("layer"))
	expect(t, s.do("POST", "/v2/team/a/blobs/uploads/?digest="+d, []byte("layer"), alice), http.StatusCreated)
	narrow := s.token(alice, "repository:team/b:pull,push")
	r := s.do("POST", "/v2/team/b/blobs/uploads/?mount="+d+"&from=team/a", nil, narrow)
	expect(t, r, http.StatusUnauthorized)
	ch := r.Header.Get("WWW-Authenticate")
	if !strings.Contains(ch, `scope="repository:team/b:pull,push repository:team/a:pull"`) {
		t.Fatalf("challenge %q", ch)
	}
	q := url.Values{"service": {"artifactstore"}, "scope": {"repository:team/b:pull,push repository:team/a:pull"}}
	var tok struct{ Token string }
	mustJSON(t, s.do("GET", auth.TokenPath+"?"+q.Encode(), nil, alice).body, &tok)
	expect(t, s.do("POST", "/v2/team/b/blobs/uploads/?mount="+d+"&from=team/a", nil, "Authorization: Bearer "+tok.Token), http.StatusCreated)
	// carol's token names the source but the policy refuses her it: an
	// ordinary upload, not another challenge.
	carol := s.token(basic("carol", "carol-pw"), "repository:scratch/c:pull,push", "repository:team/a:pull")
	expect(t, s.do("POST", "/v2/scratch/c/blobs/uploads/?mount="+d+"&from=team/a", nil, carol), http.StatusAccepted)
	expect(t, s.do("GET", "/v2/scratch/c/blobs/"+d, nil, carol), http.StatusNotFound)
}

// TestExternalIssuerPush: a CI job's workload-identity token (an external
// issuer, mapped by its repository claim) pushes where the policy lets
// that repository push: as a bearer token, as a Basic password (what
// docker login -p sends), and exchanged at the token service.
func TestExternalIssuerPush(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1"}}})
	}))
	t.Cleanup(jwks.Close)
	is, err := auth.NewIssuer(auth.IssuerConfig{Name: "ci", Issuer: "https://ci.example", JWKSURL: jwks.URL, Audience: "artifactstore",
		Algorithms: []string{"ES256"}, SubjectClaim: "repository"})
	if err != nil {
		t.Fatal(err)
	}
	newAuth := authSetup(t)
	pol, _ := auth.NewPolicy(auth.PolicyFile{Rules: []auth.RuleFile{{Subjects: []string{"ci:org/app"}, Repositories: []string{"ci/**"}, Actions: []string{"pull", "push"}}}})
	s := newServer(t, func(o *registry.Options) {
		o.Auth = newAuth(func(o *auth.Options) { o.Issuers = []*auth.Issuer{is}; o.Policy = pol })
	})
	sign := func(repo string) string {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		now := time.Now()
		tok, _ := jwt.Signed(signer).Claims(map[string]any{"iss": "https://ci.example", "aud": "artifactstore", "sub": "job",
			"repository": repo, "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}).Serialize()
		return tok
	}
	tok := sign("org/app")
	p := []byte("built by ci")
	expect(t, s.do("POST", "/v2/ci/app/blobs/uploads/?digest="+sha256Of(p), p, "Authorization: Bearer "+tok), http.StatusCreated)
	expect(t, s.do("GET", "/v2/ci/app/blobs/"+sha256Of(p), nil, basic("github", tok)), http.StatusOK)
	ours := s.token(basic("github", tok), "repository:ci/app:pull")
	expect(t, s.do("GET", "/v2/ci/app/blobs/"+sha256Of(p), nil, ours), http.StatusOK)
	// Another repository's job may not; outside ci/** nobody may.
	expect(t, s.do("GET", "/v2/ci/app/blobs/"+sha256Of(p), nil, "Authorization: Bearer "+sign("org/other")), http.StatusForbidden)
	expect(t, s.do("GET", "/v2/team/app/tags/list", nil, "Authorization: Bearer "+tok), http.StatusForbidden)
	// The push is attributed to the job's identity.
	r := s.do("GET", "/api/v1/events?after=0&repository=ci/app", nil, "Authorization: Bearer "+tok)
	if !strings.Contains(string(r.body), `"name":"ci:org/app","method":"issuer"`) {
		t.Fatalf("events: %s", r.body)
	}
}
