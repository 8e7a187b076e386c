package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Token kinds, in the "typ" of our claims: an access token carries access
// claims for one request scope; a refresh token only says who, and buys
// new access tokens (the OAuth2 refresh_token grant docker uses).
const (
	kindAccess  = "access"
	kindRefresh = "refresh"
)

// claims are a token's claims beyond the registered ones.
type claims struct {
	Kind   string   `json:"typ"`
	Via    string   `json:"amr"` // how the subject authenticated
	Access []Access `json:"access,omitempty"`
	Key    string   `json:"key,omitempty"` // the API key the subject used, checked on every use
}

// ErrBadToken is returned for a token that is not one of ours, is
// expired or not yet valid, or is malformed.
var ErrBadToken = errors.New("invalid token")

// tokens issues and verifies this registry's tokens.
type tokens struct {
	keys    *KeySet
	issuer  string
	service string // the audience
	ttl     time.Duration
	leeway  time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cachedToken // verified tokens until they expire
}

type cachedToken struct {
	p   Principal
	exp time.Time
}

const maxCachedTokens = 10_000

// issue signs a token of kind for subject.
func (t *tokens) issue(kind string, p Principal, access []Access, ttl time.Duration) (string, time.Time, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: t.keys.signer},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", t.keys.kid))
	if err != nil {
		return "", time.Time{}, err
	}
	now := t.now()
	exp := now.Add(ttl)
	var jti [16]byte
	rand.Read(jti[:])
	subject := p.Name
	if !p.Authenticated() {
		subject = ""
	}
	std := jwt.Claims{
		Issuer: t.issuer, Subject: subject, Audience: jwt.Audience{t.service},
		Expiry: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
		ID: hex.EncodeToString(jti[:]),
	}
	via := p.Method
	if p.Method == MethodToken {
		via = p.Via
	}
	if access == nil {
		access = []Access{}
	}
	s, err := jwt.Signed(signer).Claims(std).Claims(claims{Kind: kind, Via: via, Access: access, Key: p.KeyID}).Serialize()
	return s, exp, err
}

// verify checks a token of kind and returns its principal. Only ES256
// with one of our kids is accepted; a header that carries its own key
// (jwk, x5c, x5u, jku) is refused outright.
func (t *tokens) verify(raw, kind string) (Principal, error) {
	sum := sha256.Sum256([]byte(raw))
	now := t.now()
	if kind == kindAccess {
		t.mu.Lock()
		c, ok := t.cache[sum]
		t.mu.Unlock()
		if ok && now.Before(c.exp) {
			return c.p, nil
		}
	}
	tok, err := parseToken(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Principal{}, err
	}
	h := tok.Headers[0]
	pub, ok := t.keys.public[h.KeyID]
	if !ok {
		return Principal{}, fmt.Errorf("%w: unknown key", ErrBadToken)
	}
	var std jwt.Claims
	var c claims
	if err := tok.Claims(pub, &std, &c); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: t.issuer, AnyAudience: jwt.Audience{t.service}, Time: now}, t.leeway); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if c.Kind != kind || std.Expiry == nil {
		return Principal{}, fmt.Errorf("%w: not an %s token", ErrBadToken, kind)
	}
	p := Principal{Name: std.Subject, Method: MethodToken, Via: c.Via, Access: c.Access, KeyID: c.Key}
	if std.Subject == "" {
		p.Name, p.Via = Anonymous, MethodAnonymous
	}
	if kind == kindAccess {
		t.remember(sum, p, std.Expiry.Time(), now)
	}
	return p, nil
}

// remember caches a verified token until it expires, bounded: when full,
// expired entries go, and if none had, the cache starts again empty.
func (t *tokens) remember(sum [32]byte, p Principal, exp, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cache == nil {
		t.cache = map[[32]byte]cachedToken{}
	}
	if len(t.cache) >= maxCachedTokens {
		for k, c := range t.cache {
			if !now.Before(c.exp) {
				delete(t.cache, k)
			}
		}
		if len(t.cache) >= maxCachedTokens {
			clear(t.cache)
		}
	}
	t.cache[sum] = cachedToken{p, exp.Add(t.leeway)}
}

// parseToken parses a compact JWS signed with one of algs, refusing what
// no token of ours or of a trusted issuer may carry: several signatures,
// or a header that brings its own key (jwk, x5c, x5u, jku), which would
// let the token choose the key that verifies it.
func parseToken(raw string, algs []jose.SignatureAlgorithm) (*jwt.JSONWebToken, error) {
	tok, err := jwt.ParseSigned(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: one signature expected", ErrBadToken)
	}
	h := tok.Headers[0]
	if h.JSONWebKey != nil {
		return nil, fmt.Errorf("%w: keys embedded in the header are not accepted", ErrBadToken)
	}
	for _, k := range []string{"x5c", "x5u", "jku", "jwk"} {
		if _, ok := h.ExtraHeaders[jose.HeaderKey(k)]; ok {
			return nil, fmt.Errorf("%w: header %s is not accepted", ErrBadToken, k)
		}
	}
	return tok, nil
}
