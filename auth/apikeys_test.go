package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKeyFormat: keys are ask_<16 hex>_<43 base64url>, random, kept as the
// SHA-256 of the secret; anything else is malformed.
func TestKeyFormat(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ask_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`).MatchString(k.Text) {
		t.Fatalf("key %q has the wrong form", k.Text)
	}
	secret, _ := base64.RawURLEncoding.DecodeString(k.Text[len("ask_")+17:])
	if sum := sha256.Sum256(secret); string(sum[:]) != string(k.Hash) || len(secret) != 32 {
		t.Fatal("Hash is not the SHA-256 of the 32-byte secret")
	}
	id, sum, err := parseKey(k.Text)
	if err != nil || id != k.ID || string(sum[:]) != string(k.Hash) {
		t.Fatalf("parseKey(%q) = %q, %x, %v", k.Text, id, sum, err)
	}
	if k2, _ := GenerateKey(); k2.ID == k.ID || k2.Text == k.Text {
		t.Fatal("two keys are equal")
	}
	for name, bad := range map[string]string{
		"empty":          "",
		"prefix only":    "ask_",
		"short":          k.Text[:len(k.Text)-1],
		"long":           k.Text + "A",
		"upper-case id":  "ask_" + strings.ToUpper(k.ID) + k.Text[len("ask_")+16:],
		"bad separator":  k.Text[:20] + "-" + k.Text[21:],
		"not base64url":  k.Text[:len(k.Text)-1] + "+",
		"padded":         k.Text[:len(k.Text)-2] + "==",
		"non-zero tail":  k.Text[:len(k.Text)-1] + "B", // the 43rd character's 2 unused bits must be 0
		"other prefix":   "xsk_" + k.Text[4:],
		"id not hex":     "ask_zzzzzzzzzzzzzzzz" + k.Text[20:],
		"whitespace pad": " " + k.Text[1:],
	} {
		if _, _, err := parseKey(bad); err == nil {
			t.Errorf("%s: %q parsed", name, bad)
		}
	}
}

// TestKeyGrants: a key may do exactly its globs and actions, plus what
// anonymous callers may; no other policy rule applies to it, and it never
// holds admin.
func TestKeyGrants(t *testing.T) {
	pol, err := NewPolicy(PolicyFile{Rules: []RuleFile{
		{Subjects: []string{Anonymous}, Repositories: []string{"public/**"}, Actions: []string{ActionPull}},
		{Subjects: []string{"authenticated"}, Repositories: []string{"**"}, Actions: []string{ActionPull, ActionPush}},
		{Subjects: []string{"key:ci"}, Repositories: []string{"**"}, Actions: []string{ActionAdmin}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := compileKeyGrant([]string{"team/**", "tools/*"}, []string{ActionPull, ActionPush, ActionPull})
	if err != nil {
		t.Fatal(err)
	}
	key := Principal{Name: "key:ci", Method: MethodAPIKey, KeyID: "0123456789abcdef", key: g}
	for _, c := range []struct {
		repo, action string
		want         bool
	}{
		{"team/app", ActionPush, true},
		{"team/a/b", ActionPull, true},
		{"tools/x", ActionPull, true},
		{"tools/x/y", ActionPull, false}, // * is one segment
		{"team/app", ActionDelete, false},
		{"other/x", ActionPull, false}, // "authenticated" does not apply to keys
		{"public/lib", ActionPull, true},
		{"public/lib", ActionPush, false},
		{"team/app", ActionAdmin, false}, // nor a rule naming the key's principal
	} {
		if got := pol.Allowed(key, c.repo, c.action); got != c.want {
			t.Errorf("key: %s %s = %v, want %v", c.action, c.repo, got, c.want)
		}
	}
	if pol.AllowedEverywhere(key, ActionPull) {
		t.Error("a key for team/** holds pull everywhere")
	}
	all, _ := compileKeyGrant([]string{"**"}, []string{ActionPull})
	everywhere := Principal{Name: "key:all", Method: MethodAPIKey, KeyID: "0123456789abcdef", key: all}
	if !pol.AllowedEverywhere(everywhere, ActionPull) || pol.AllowedEverywhere(everywhere, ActionAdmin) || pol.AllowedEverywhere(everywhere, ActionPush) {
		t.Error("a key for ** pull: AllowedEverywhere answers wrongly")
	}
	// A key principal whose grants were not found live gets anonymous's only.
	bare := Principal{Name: "key:ci", Method: MethodAPIKey, KeyID: "0123456789abcdef"}
	if pol.Allowed(bare, "team/app", ActionPull) || !pol.Allowed(bare, "public/x", ActionPull) {
		t.Error("a key without grants")
	}
	for name, c := range map[string]struct{ repos, actions []string }{
		"admin":          {[]string{"**"}, []string{ActionAdmin}},
		"unknown action": {[]string{"**"}, []string{"write"}},
		"no actions":     {[]string{"**"}, nil},
		"no globs":       {nil, []string{ActionPull}},
		"bad glob":       {[]string{"team//x"}, []string{ActionPull}},
		"** in a part":   {[]string{"team/a**"}, []string{ActionPull}},
	} {
		if err := CheckKeyGrants(c.repos, c.actions); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// keyTable is a KeyLookup over a map: the registry's is over its views.
type keyTable struct {
	mu   sync.Mutex
	keys map[string]Key
	err  error
}

func (kt *keyTable) lookup(_ context.Context, id string) (Key, error) {
	kt.mu.Lock()
	defer kt.mu.Unlock()
	if kt.err != nil {
		return Key{}, kt.err
	}
	k, ok := kt.keys[id]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	return k, nil
}

func (kt *keyTable) add(t *testing.T, name string, expires time.Time) string {
	nk, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kt.mu.Lock()
	defer kt.mu.Unlock()
	kt.keys[nk.ID] = Key{ID: nk.ID, Name: name, Hash: nk.Hash, Repositories: []string{"team/**"}, Actions: []string{ActionPull}, Expires: expires}
	return nk.Text
}

func (kt *keyTable) revoke(id string) {
	kt.mu.Lock()
	defer kt.mu.Unlock()
	k := kt.keys[id]
	k.Revoked = true
	kt.keys[id] = k
}

func basicReq(user, pass string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.SetBasicAuth(user, pass)
	return r
}

// TestKeyAuthenticate: a key as a Basic password (any user name) is its
// principal while it is live; a wrong, unknown, revoked, expired or
// malformed key is bad credentials; a token issued to a key stops working
// when the key is revoked; a failed lookup is the server's error.
func TestKeyAuthenticate(t *testing.T) {
	a, _ := newTestAuth(t)
	kt := &keyTable{keys: map[string]Key{}}
	live := kt.add(t, "ci", time.Now().Add(time.Hour))
	// Before the registry supplies a lookup, keys are refused.
	if _, err := a.Authenticate(basicReq("ci", live)); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a key without a lookup: %v", err)
	}
	a.SetKeyLookup(kt.lookup)
	for _, user := range []string{"ci", "anything", ""} {
		p, err := a.Authenticate(basicReq(user, live))
		if err != nil || p.Name != "key:ci" || p.Method != MethodAPIKey || !p.Authenticated() || !a.Allowed(p, "team/app", ActionPull) || a.Allowed(p, "team/app", ActionPush) {
			t.Fatalf("user %q with a live key: %+v, %v", user, p, err)
		}
	}
	expired := kt.add(t, "old", time.Now().Add(-time.Second))
	other, _ := GenerateKey()
	wrongSecret := live[:21] + other.Text[21:]
	for name, pass := range map[string]string{
		"expired": expired, "unknown": other.Text, "wrong secret": wrongSecret, "malformed": "ask_nonsense",
	} {
		if p, err := a.Authenticate(basicReq("ci", pass)); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s key: %+v, %v", name, p, err)
		}
	}
	// At the token service, by GET with Basic and by the password grant;
	// the tokens name the key and carry only what it grants.
	get := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, TokenPath+"?service=artifactstore&scope=repository:team/app:pull,push&scope=repository:other/x:pull&offline_token=true", nil)
	r.SetBasicAuth("robot", live)
	a.ServeToken(get, r)
	var tok struct {
		Token        string `json:"token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(get.Body.Bytes(), &tok); get.Code != http.StatusOK || err != nil || tok.Token == "" || tok.RefreshToken == "" {
		t.Fatalf("token by GET: %d %s", get.Code, get.Body)
	}
	post := httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader("grant_type=password&service=artifactstore&username=robot&password="+live+"&scope=repository:team/app:pull"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a.ServeToken(post, r)
	if post.Code != http.StatusOK {
		t.Fatalf("token by POST: %d %s", post.Code, post.Body)
	}
	bearer := httptest.NewRequest(http.MethodGet, "/v2/team/app/tags/list", nil)
	bearer.Header.Set("Authorization", "Bearer "+tok.Token)
	p, err := a.Authenticate(bearer)
	if err != nil || p.Name != "key:ci" || p.Via != MethodAPIKey || !a.Allowed(p, "team/app", ActionPull) || a.Allowed(p, "team/app", ActionPush) || a.Allowed(p, "other/x", ActionPull) {
		t.Fatalf("the key's token: %+v, %v", p, err)
	}
	// The database is down: not the client's fault, and not anonymous.
	kt.mu.Lock()
	kt.err = errors.New("database unreachable")
	kt.mu.Unlock()
	for _, req := range []*http.Request{basicReq("ci", live), bearer} {
		if _, err := a.Authenticate(req); err == nil || errors.Is(err, ErrBadCredentials) {
			t.Errorf("lookup failure: %v", err)
		}
	}
	kt.mu.Lock()
	kt.err = nil
	kt.mu.Unlock()
	// Revoked: the key, its access token (cached as verified or not) and
	// its refresh token all stop at once.
	id, _, _ := parseKey(live)
	kt.revoke(id)
	if _, err := a.Authenticate(basicReq("ci", live)); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("revoked key by Basic: %v", err)
	}
	if _, err := a.Authenticate(bearer); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("revoked key's token: %v", err)
	}
	ref := httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader("grant_type=refresh_token&service=artifactstore&refresh_token="+tok.RefreshToken))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a.ServeToken(ref, r)
	if ref.Code != http.StatusUnauthorized {
		t.Errorf("revoked key's refresh token: %d %s", ref.Code, ref.Body)
	}
}
