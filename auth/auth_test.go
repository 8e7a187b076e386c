package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/crypto/bcrypt"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bcryptLine(t *testing.T, user, pass string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

func TestHtpasswdBcryptOnly(t *testing.T) {
	good := bcryptLine(t, "alice", "s3cret") + "# comment\n\n" + bcryptLine(t, "bob", "hunter2")
	u, err := LoadHtpasswd(writeFile(t, "ok", good))
	if err != nil {
		t.Fatal(err)
	}
	if !u.Check("alice", "s3cret") || u.Check("alice", "wrong") || u.Check("carol", "s3cret") || !u.Check("bob", "hunter2") {
		t.Fatal("Check answers wrongly")
	}
	for name, content := range map[string]string{
		"md5":       good + "carol:$apr1$abcdefgh$0123456789012345678901\n",
		"sha1":      "dave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
		"plain":     bcryptLine(t, "x", "y") + "erin:plaintext\n",
		"duplicate": good + bcryptLine(t, "alice", "again"),
		"reserved":  bcryptLine(t, "anonymous", "x"),
	} {
		_, err := LoadHtpasswd(writeFile(t, name, content))
		if err == nil || !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: error %v, want one naming the line", name, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	p, err := NewPolicy(PolicyFile{
		Groups: map[string][]string{"ops": {"carol"}},
		Rules: []RuleFile{
			{Subjects: []string{Anonymous}, Repositories: []string{"public/**"}, Actions: []string{ActionPull}},
			{Subjects: []string{"alice"}, Repositories: []string{"team/*"}, Actions: []string{ActionPull, ActionPush}},
			{Subjects: []string{"group:ops"}, Repositories: []string{"**"}, Actions: []string{ActionAdmin}},
			{Subjects: []string{"authenticated"}, Repositories: []string{"**/cache"}, Actions: []string{ActionPull}},
			{Subjects: []string{"cn:builder"}, Repositories: []string{"ci/**"}, Actions: []string{ActionPush}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	anon := Principal{Name: Anonymous, Method: MethodAnonymous}
	alice := Principal{Name: "alice", Method: MethodPassword}
	carol := Principal{Name: "carol", Method: MethodPassword}
	cert := Principal{Name: "cn:builder", Method: MethodCert, Also: []string{"cn:builder", "dns:b.example"}}
	for _, c := range []struct {
		p      Principal
		repo   string
		action string
		want   bool
	}{
		{anon, "public/a", ActionPull, true},
		{anon, "public", ActionPull, true}, // ** matches no segment too
		{anon, "public/a/b/c", ActionPull, true},
		{anon, "public/a", ActionPush, false},
		{anon, "team/app", ActionPull, false},
		{anon, "x/cache", ActionPull, false}, // "authenticated" is not anonymous
		{alice, "team/app", ActionPush, true},
		{alice, "team/app/sub", ActionPush, false}, // * stays in one segment
		{alice, "team/app", ActionDelete, false},
		{alice, "a/b/cache", ActionPull, true},
		{alice, "public/a", ActionPull, true}, // what anonymous callers may do, everyone may
		{carol, "anything/at/all", ActionDelete, true},
		{carol, "anything", ActionAdmin, true},
		{cert, "ci/app", ActionPush, true},
		{cert, "ci/app", ActionPull, false},
		{Principal{Name: "alice", Method: MethodAnonymous}, "team/app", ActionPull, false}, // a name without proof
	} {
		if got := p.Allowed(c.p, c.repo, c.action); got != c.want {
			t.Errorf("%s %s %s: %v, want %v", c.p.Name, c.action, c.repo, got, c.want)
		}
	}
	if !p.AllowedEverywhere(carol, ActionPull) || p.AllowedEverywhere(alice, ActionPull) {
		t.Error("AllowedEverywhere")
	}
	for _, bad := range []PolicyFile{
		{Rules: []RuleFile{{Subjects: []string{"a"}, Repositories: []string{"x"}, Actions: []string{"write"}}}},
		{Rules: []RuleFile{{Subjects: []string{"group:nope"}, Repositories: []string{"x"}, Actions: []string{"pull"}}}},
		{Rules: []RuleFile{{Subjects: []string{"a"}, Repositories: []string{"a//b"}, Actions: []string{"pull"}}}},
		{Rules: []RuleFile{{Subjects: []string{"a"}, Repositories: []string{"a**"}, Actions: []string{"pull"}}}},
		{Rules: []RuleFile{{Subjects: []string{"a"}, Actions: []string{"pull"}}}},
	} {
		if _, err := NewPolicy(bad); err == nil {
			t.Errorf("policy %+v accepted", bad)
		}
	}
	// Unknown keys in the file are errors.
	if _, err := LoadPolicy(writeFile(t, "p.yaml", "rules:\n  - subjects: [a]\n    repositores: [x]\n    actions: [pull]\n")); err == nil {
		t.Error("a misspelt key was accepted")
	}
}

func newTestAuth(t *testing.T) (*Authenticator, string) {
	t.Helper()
	dir := t.TempDir()
	ks, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, err := LoadHtpasswd(writeFile(t, "h", bcryptLine(t, "alice", "pw")))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Users: u, Keys: ks, ValidName: func(s string) bool { return s != "" && !strings.Contains(s, "..") }})
	if err != nil {
		t.Fatal(err)
	}
	return a, dir
}

// TestTokensRefuseForgeries: only our ES256 tokens, for our audience and
// issuer, within their validity, verify.
func TestTokensRefuseForgeries(t *testing.T) {
	a, dir := newTestAuth(t)
	alice := Principal{Name: "alice", Method: MethodPassword}
	access := []Access{{Type: "repository", Name: "team/app", Actions: []string{ActionPull}}}
	good, _, err := a.tokens.issue(kindAccess, alice, access, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.tokens.verify(good, kindAccess)
	if err != nil || p.Name != "alice" || !p.Authenticated() || !grants(p.Access, "team/app", ActionPull) || grants(p.Access, "team/app", ActionPush) {
		t.Fatalf("good token: %+v %v", p, err)
	}
	// A refresh token is not an access token, and the other way round.
	ref, _, _ := a.tokens.issue(kindRefresh, alice, nil, time.Hour)
	if _, err := a.tokens.verify(ref, kindAccess); err == nil {
		t.Error("a refresh token was accepted as an access token")
	}
	if _, err := a.tokens.verify(good, kindRefresh); err == nil {
		t.Error("an access token was accepted as a refresh token")
	}

	claimsJSON := func(aud string, exp time.Time) map[string]any {
		return map[string]any{"iss": "artifactstore", "sub": "alice", "aud": aud, "exp": exp.Unix(), "nbf": time.Now().Add(-time.Minute).Unix(),
			"iat": time.Now().Unix(), "typ": kindAccess, "amr": MethodPassword, "access": access}
	}
	seg := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	sign := func(alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, c map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pubPEM := func() []byte {
		der, _ := x509.MarshalPKIXPublicKey(&a.opts.Keys.signer.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kid := a.opts.Keys.KeyID()
	cases := map[string]string{
		"alg none":                  seg(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + seg(claimsJSON("artifactstore", time.Now().Add(time.Hour))) + ".",
		"HS256 with our public key": sign(jose.HS256, pubPEM, (&jose.SignerOptions{}).WithHeader("kid", kid), claimsJSON("artifactstore", time.Now().Add(time.Hour))),
		"embedded jwk":              sign(jose.ES256, attacker, (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", kid), claimsJSON("artifactstore", time.Now().Add(time.Hour))),
		"jku header":                sign(jose.ES256, attacker, (&jose.SignerOptions{}).WithHeader("kid", kid).WithHeader("jku", "http://127.0.0.1:1/keys"), claimsJSON("artifactstore", time.Now().Add(time.Hour))),
		"kid is a path":             sign(jose.ES256, attacker, (&jose.SignerOptions{}).WithHeader("kid", "../../../dev/null"), claimsJSON("artifactstore", time.Now().Add(time.Hour))),
		"attacker's key":            sign(jose.ES256, attacker, (&jose.SignerOptions{}).WithHeader("kid", kid), claimsJSON("artifactstore", time.Now().Add(time.Hour))),
		"other audience":            sign(jose.ES256, a.opts.Keys.signer, (&jose.SignerOptions{}).WithHeader("kid", kid), claimsJSON("other-registry", time.Now().Add(time.Hour))),
		"expired":                   sign(jose.ES256, a.opts.Keys.signer, (&jose.SignerOptions{}).WithHeader("kid", kid), claimsJSON("artifactstore", time.Now().Add(-time.Hour))),
		"tampered":                  good[:strings.Index(good, ".")+1] + seg(claimsJSON("artifactstore", time.Now().Add(time.Hour))) + good[strings.LastIndex(good, "."):],
		"garbage":                   "not.a.token",
	}
	for name, tok := range cases {
		if p, err := a.tokens.verify(tok, kindAccess); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}

	// Rotation: a new key signs; tokens of the old one still verify.
	if _, err := NewKeyFile(dir); err != nil {
		t.Fatal(err)
	}
	ks2, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ks2.KeyID() == kid {
		t.Fatal("the new key does not sign")
	}
	a2, _ := New(Options{Users: a.opts.Users, Keys: ks2, ValidName: a.opts.ValidName})
	if _, err := a2.tokens.verify(good, kindAccess); err != nil {
		t.Fatalf("a token of the previous key after rotation: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter()
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for range l.SlowAfter {
		l.Fail("c")
	}
	if d, r := l.Check("c"); d == 0 || r != 0 {
		t.Fatalf("after %d failures: delay %v, retry %v", l.SlowAfter, d, r)
	}
	for range l.BlockAfter {
		l.Fail("c")
	}
	if _, r := l.Check("c"); r <= 0 {
		t.Fatal("not blocked")
	}
	if d, r := l.Check("other"); d != 0 || r != 0 {
		t.Fatal("another client is slowed")
	}
	now = now.Add(l.Window + time.Second)
	if d, r := l.Check("c"); d != 0 || r != 0 {
		t.Fatal("still limited after the window")
	}
}
