package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testIssuer is an OIDC provider on loopback: a discovery document and a
// JWKS with an RSA and an ECDSA key. No real provider can run here; this
// one serves the same documents over real HTTP, and signs with real keys.
type testIssuer struct {
	url     string
	rsaKey  *rsa.PrivateKey
	ecKey   *ecdsa.PrivateKey
	fetches int
}

func newTestIssuer(t *testing.T) *testIssuer {
	ti := &testIssuer{}
	ti.rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	ti.ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ti.url = srv.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": ti.url, "jwks_uri": ti.url + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		ti.fetches++
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &ti.rsaKey.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
			{Key: &ti.ecKey.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		}})
	})
	return ti
}

func (ti *testIssuer) sign(t *testing.T, alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (ti *testIssuer) claims(mutate func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": ti.url, "aud": "artifactstore", "sub": "repo:org/app:ref:refs/heads/main",
		"repository": "org/app", "exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix()}
	if mutate != nil {
		mutate(c)
	}
	return c
}

func TestExternalIssuer(t *testing.T) {
	ti := newTestIssuer(t)
	is, err := NewIssuer(IssuerConfig{Name: "github", Issuer: ti.url, Discovery: true, Audience: "artifactstore",
		SubjectClaim: "repository", Leeway: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	issuers := []*Issuer{is}
	rs := func(mutate func(map[string]any)) string {
		return ti.sign(t, jose.RS256, ti.rsaKey, (&jose.SignerOptions{}).WithHeader("kid", "rsa-1"), ti.claims(mutate))
	}
	p, err := verifyExternal(context.Background(), issuers, rs(nil))
	if err != nil || p.Name != "github:org/app" || p.Method != MethodIssuer || !p.Authenticated() {
		t.Fatalf("a good token: %+v %v", p, err)
	}
	pubPEM := func() []byte {
		der, _ := x509.MarshalPKIXPublicKey(&ti.rsaKey.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	seg := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	for name, tok := range map[string]string{
		"other audience":            rs(func(c map[string]any) { c["aud"] = "someone-else" }),
		"expired":                   rs(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"no exp":                    rs(func(c map[string]any) { delete(c, "exp") }),
		"not yet valid":             rs(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }),
		"issued in future":          rs(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }),
		"unknown issuer":            rs(func(c map[string]any) { c["iss"] = "https://evil.example" }),
		"no subject claim":          rs(func(c map[string]any) { delete(c, "repository") }),
		"alg not pinned":            ti.sign(t, jose.ES256, ti.ecKey, (&jose.SignerOptions{}).WithHeader("kid", "ec-1"), ti.claims(nil)),
		"HS256 with the public key": ti.sign(t, jose.HS256, pubPEM, (&jose.SignerOptions{}).WithHeader("kid", "rsa-1"), ti.claims(nil)),
		"alg none":                  seg(map[string]string{"alg": "none", "kid": "rsa-1"}) + "." + seg(ti.claims(nil)) + ".",
		"embedded jwk":              ti.sign(t, jose.RS256, stranger, (&jose.SignerOptions{EmbedJWK: true}), ti.claims(nil)),
		"jku header":                ti.sign(t, jose.RS256, stranger, (&jose.SignerOptions{}).WithHeader("kid", "rsa-1").WithHeader("jku", ti.url+"/keys"), ti.claims(nil)),
		"kid is a path":             ti.sign(t, jose.RS256, stranger, (&jose.SignerOptions{}).WithHeader("kid", "../../../etc/passwd"), ti.claims(nil)),
		"stranger's key":            ti.sign(t, jose.RS256, stranger, (&jose.SignerOptions{}).WithHeader("kid", "rsa-1"), ti.claims(nil)),
	} {
		if p, err := verifyExternal(context.Background(), issuers, tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
	// Unknown kids do not make the registry fetch the keys on every
	// request.
	before := ti.fetches
	for range 5 {
		verifyExternal(context.Background(), issuers, ti.sign(t, jose.RS256, stranger, (&jose.SignerOptions{}).WithHeader("kid", "rotated"), ti.claims(nil)))
	}
	if ti.fetches > before+1 {
		t.Errorf("5 unknown kids fetched the keys %d times", ti.fetches-before)
	}
	// Pinned algorithms refuse HMAC and none at configuration.
	for _, alg := range []string{"HS256", "none"} {
		if _, err := NewIssuer(IssuerConfig{Name: "x", Issuer: "i", JWKSURL: "http://127.0.0.1:1", Audience: "a", Algorithms: []string{alg}}); err == nil {
			t.Errorf("algorithm %s accepted in a configuration", alg)
		}
	}
}

// TestExternalIssuerFileAndAccess: keys from a JWKS file, and a Docker
// token server's access claims narrowing what the policy grants.
func TestExternalIssuerFileAndAccess(t *testing.T) {
	ti := newTestIssuer(t)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ti.ecKey.PublicKey, KeyID: "ec-1"}}})
	file := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(file, set, 0o600)
	is, err := NewIssuer(IssuerConfig{Name: "tokens", Issuer: ti.url, JWKSFile: file, Audience: "artifactstore",
		Algorithms: []string{"ES256"}, AccessClaims: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := ti.sign(t, jose.ES256, ti.ecKey, (&jose.SignerOptions{}).WithHeader("kid", "ec-1"), ti.claims(func(c map[string]any) {
		c["sub"] = "ci-bot"
		c["access"] = []map[string]any{{"type": "repository", "name": "ci/app", "actions": []string{"pull", "push"}}}
	}))
	p, err := verifyExternal(context.Background(), []*Issuer{is}, tok)
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := NewPolicy(PolicyFile{Rules: []RuleFile{{Subjects: []string{"tokens:ci-bot"}, Repositories: []string{"ci/**"}, Actions: []string{ActionPull, ActionPush, ActionDelete}}}})
	if !pol.Allowed(p, "ci/app", ActionPush) || pol.Allowed(p, "ci/app", ActionDelete) || pol.Allowed(p, "ci/other", ActionPull) {
		t.Fatalf("access claims do not narrow the policy: %+v", p)
	}
}
