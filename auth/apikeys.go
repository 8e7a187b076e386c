package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// API keys are credentials for robots: a key is
//
//	ask_<id>_<secret>
//
// where id is 16 lower-case hex characters (8 random bytes; it names the
// key in lists, events and revocations) and secret is 32 random bytes in
// base64url without padding (43 characters). It is shown once, when it is
// made; what is kept is the SHA-256 of the secret's bytes (a 256-bit
// random secret needs no slow hash: there is nothing to guess), compared
// in constant time.
//
// A key is given as the password of Basic credentials, with any user
// name, on every route and at the token service. Its principal is
// "key:<name>" (method MethodAPIKey) and it may do exactly what the key
// grants — its repository globs and actions, never admin — plus what the
// policy grants anonymous callers (everyone may); no other rule of the
// policy applies to it. A key is looked up on every use, and so is the
// key of a token issued to one, so expiry and revocation take effect at
// once, on every replica that reads the same database.

// MethodAPIKey is how a principal authenticated with an API key.
const MethodAPIKey = "apikey"

// Key lifetimes: a key has an expiry, at most MaxKeyLifetime after it is
// made; DefaultKeyLifetime when none is asked for.
const (
	DefaultKeyLifetime = 90 * 24 * time.Hour
	MaxKeyLifetime     = 365 * 24 * time.Hour
)

const (
	apiKeyPrefix = "ask_"
	keyIDLen     = 16 // hex characters
	keySecretLen = 43 // base64url characters of 32 bytes
	keyLen       = len(apiKeyPrefix) + keyIDLen + 1 + keySecretLen
)

// Key is an API key as the registry stores it: never its secret.
type Key struct {
	ID           string
	Name         string
	Hash         []byte // SHA-256 of the secret's bytes
	Repositories []string
	Actions      []string
	Expires      time.Time
	Revoked      bool
}

// KeyLookup finds a key by id: ErrKeyNotFound when there is none. The
// registry supplies it from its views (SetKeyLookup).
type KeyLookup func(ctx context.Context, id string) (Key, error)

// ErrKeyNotFound: no key has that id.
var ErrKeyNotFound = errors.New("no such API key")

// NewKey is a key just made: Text is shown to its owner once; ID and Hash
// are what is kept.
type NewKey struct {
	ID   string
	Text string
	Hash []byte
}

// GenerateKey makes a new random key.
func GenerateKey() (NewKey, error) {
	var id [keyIDLen / 2]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return NewKey{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return NewKey{}, err
	}
	sum := sha256.Sum256(secret[:])
	k := NewKey{ID: hex.EncodeToString(id[:]), Hash: sum[:]}
	k.Text = apiKeyPrefix + k.ID + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	return k, nil
}

// IsKey reports whether s has the form of an API key (not whether it is
// one). A password of this form is checked as a key, never against the
// htpasswd users.
func IsKey(s string) bool { return strings.HasPrefix(s, apiKeyPrefix) }

// ValidKeyID reports whether id has the form of a key id.
func ValidKeyID(id string) bool {
	if len(id) != keyIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseKey splits a key into its id and the SHA-256 of its secret.
func parseKey(s string) (id string, sum [32]byte, err error) {
	if len(s) != keyLen || !IsKey(s) || s[len(apiKeyPrefix)+keyIDLen] != '_' {
		return "", sum, errors.New("malformed API key: expected ask_<16 hex>_<43 base64url>")
	}
	id = s[len(apiKeyPrefix) : len(apiKeyPrefix)+keyIDLen]
	secret, derr := base64.RawURLEncoding.Strict().DecodeString(s[len(apiKeyPrefix)+keyIDLen+1:])
	if !ValidKeyID(id) || derr != nil || len(secret) != 32 {
		return "", sum, errors.New("malformed API key: expected ask_<16 hex>_<43 base64url>")
	}
	return id, sha256.Sum256(secret), nil
}

// CheckKeyGrants checks what a key is to grant: at least one repository
// glob (the policy's syntax) and actions among pull, push and delete.
// Keys never hold admin: a leaked robot key must not mint other keys or
// reach registry-wide operations beyond reading.
func CheckKeyGrants(repos, actions []string) error {
	_, err := compileKeyGrant(repos, actions)
	return err
}

// keyGrant is what a key may do, compiled.
type keyGrant struct {
	repos   []Glob
	actions []string
}

func compileKeyGrant(repos, actions []string) (*keyGrant, error) {
	if len(repos) == 0 || len(repos) > 64 {
		return nil, errors.New("an API key needs 1 to 64 repository globs")
	}
	if len(actions) == 0 {
		return nil, errors.New("an API key needs at least one action (pull, push, delete)")
	}
	g := &keyGrant{}
	for _, a := range actions {
		switch a {
		case ActionPull, ActionPush, ActionDelete:
		case ActionAdmin:
			return nil, errors.New("an API key cannot hold admin: manage keys with a user's credentials")
		default:
			return nil, fmt.Errorf("unknown action %q (pull, push, delete)", a)
		}
		if !slices.Contains(g.actions, a) {
			g.actions = append(g.actions, a)
		}
	}
	for _, r := range repos {
		c, err := CompileGlob(r)
		if err != nil {
			return nil, err
		}
		g.repos = append(g.repos, c)
	}
	return g, nil
}

func (g *keyGrant) allows(repo, action string) bool {
	if !slices.Contains(g.actions, action) {
		return false
	}
	for _, r := range g.repos {
		if r.Match(repo) {
			return true
		}
	}
	return false
}

// everywhere reports whether the key holds action on every repository.
func (g *keyGrant) everywhere(action string) bool {
	if !slices.Contains(g.actions, action) {
		return false
	}
	for _, r := range g.repos {
		if r.pattern == "**" {
			return true
		}
	}
	return false
}

// SetKeyLookup makes the authenticator accept API keys found by fn. An
// authenticator serves one registry's keys; without a lookup every key
// is refused.
func (a *Authenticator) SetKeyLookup(fn KeyLookup) { a.keyLookup.Store(&fn) }

// apiKey authenticates a Basic password that has the form of a key;
// failures count against the client like wrong passwords.
func (a *Authenticator) apiKey(ctx context.Context, client, text string) (Principal, error) {
	id, sum, err := parseKey(text)
	if err != nil {
		a.limiter.Fail(client)
		return Principal{}, fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	p, err := a.keyPrincipal(ctx, id, &sum)
	switch {
	case err == nil:
		a.limiter.Succeed(client)
	case errors.Is(err, ErrBadCredentials):
		a.limiter.Fail(client)
	}
	// Any other error is the lookup's (the database is down): the
	// server's failure, not the client's.
	return p, err
}

// keyPrincipal looks key id up and returns its principal if the key is
// live (not revoked, not expired) and, when sum is given, its secret
// matches. Every refusal is ErrBadCredentials; other errors are the
// lookup's.
func (a *Authenticator) keyPrincipal(ctx context.Context, id string, sum *[32]byte) (Principal, error) {
	lookup := a.keyLookup.Load()
	if lookup == nil {
		return Principal{}, fmt.Errorf("%w: API keys are not accepted here", ErrBadCredentials)
	}
	k, err := (*lookup)(ctx, id)
	if errors.Is(err, ErrKeyNotFound) {
		return Principal{}, fmt.Errorf("%w: unknown API key", ErrBadCredentials)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up API key %s: %w", id, err)
	}
	if sum != nil && subtle.ConstantTimeCompare(sum[:], k.Hash) != 1 {
		return Principal{}, fmt.Errorf("%w: wrong API key secret", ErrBadCredentials)
	}
	switch {
	case k.Revoked:
		return Principal{}, fmt.Errorf("%w: API key %s is revoked", ErrBadCredentials, id)
	case !a.tokens.now().Before(k.Expires):
		return Principal{}, fmt.Errorf("%w: API key %s expired at %s", ErrBadCredentials, id, k.Expires.UTC().Format(time.RFC3339))
	}
	g, err := compileKeyGrant(k.Repositories, k.Actions)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: API key %s: %v", ErrBadCredentials, id, err)
	}
	return Principal{Name: "key:" + k.Name, Method: MethodAPIKey, KeyID: k.ID, key: g}, nil
}

// checkTokenKey: a token issued to an API key is good only while the key
// is: the key is looked up on every use, and p gets its grants.
func (a *Authenticator) checkTokenKey(ctx context.Context, p Principal) (Principal, error) {
	if p.Method != MethodToken || p.Via != MethodAPIKey {
		return p, nil
	}
	k, err := a.keyPrincipal(ctx, p.KeyID, nil)
	if err != nil {
		return Principal{}, err
	}
	p.Name, p.key = k.Name, k.key
	return p, nil
}
