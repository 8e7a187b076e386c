package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Options configure an Authenticator.
type Options struct {
	// Users are the htpasswd accounts; nil for none.
	Users *Users
	// Policy decides; nil is DefaultPolicy.
	Policy *Policy
	// Keys sign and verify tokens. Required.
	Keys *KeySet
	// Service is the token audience and the challenge's service
	// parameter. Default "artifactstore".
	Service string
	// Realm is the token endpoint's absolute URL in challenges; empty:
	// derived from each request (scheme and Host) plus TokenPath.
	Realm string
	// TokenTTL is an access token's lifetime. Default 5 minutes.
	TokenTTL time.Duration
	// RefreshTTL is a refresh token's lifetime. Default 24 hours.
	RefreshTTL time.Duration
	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Default 30 seconds.
	Leeway time.Duration
	// ValidName reports whether a repository name is well formed; scopes
	// naming others are refused. Required.
	ValidName func(string) bool
	// Limiter slows down and refuses clients that keep failing to log in.
	// Default NewLimiter().
	Limiter *Limiter
	// Issuers are the external token issuers trusted (LoadIssuers): their
	// tokens are accepted as bearer tokens and as Basic passwords (what
	// `docker login -p $TOKEN` sends).
	Issuers []*Issuer
}

// TokenPath is where the token service answers.
const TokenPath = "/auth/token"

// Authenticator authenticates requests and authorizes them against the
// policy. It is safe for concurrent use; the policy can be swapped while
// it serves (SetPolicy).
type Authenticator struct {
	opts    Options
	policy  atomic.Pointer[Policy]
	tokens  *tokens
	limiter *Limiter

	// keyLookup finds API keys (apikeys.go); nil: none are accepted.
	keyLookup atomic.Pointer[KeyLookup]
	// users are the htpasswd accounts in force (SetUsers); nil: none.
	users atomic.Pointer[Users]
}

// New returns an Authenticator.
func New(opts Options) (*Authenticator, error) {
	if opts.Keys == nil || opts.ValidName == nil {
		return nil, errors.New("auth: Options.Keys and Options.ValidName are required")
	}
	if opts.Policy == nil {
		opts.Policy = DefaultPolicy()
	}
	if opts.Service == "" {
		opts.Service = "artifactstore"
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 5 * time.Minute
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = 24 * time.Hour
	}
	if opts.Leeway <= 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter()
	}
	a := &Authenticator{opts: opts, limiter: opts.Limiter,
		tokens: &tokens{keys: opts.Keys, issuer: opts.Service, service: opts.Service, ttl: opts.TokenTTL, leeway: opts.Leeway, now: time.Now}}
	a.policy.Store(opts.Policy)
	a.users.Store(opts.Users)
	return a, nil
}

// JWKS is the token service's public keys, for services that verify this
// registry's tokens (and for tests that forge against them).
func (a *Authenticator) JWKS() jose.JSONWebKeySet { return a.opts.Keys.JWKS() }

// SetPolicy replaces the policy (a reload). Tokens already issued keep
// their access claims, but every use is checked against the new policy
// too, so a revoked grant ends at once.
func (a *Authenticator) SetPolicy(p *Policy) { a.policy.Store(p) }

// SetUsers replaces the htpasswd accounts (a reload). A removed user's
// password stops working at once, and so do the refresh tokens issued to
// it; access tokens already issued run out within their lifetime.
func (a *Authenticator) SetUsers(u *Users) { a.users.Store(u) }

// ErrBadCredentials: credentials were given and are wrong (401).
var ErrBadCredentials = errors.New("bad credentials")

// ThrottledError: the client failed too often; retry after RetryAfter (429).
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins from this address; retry in %s", e.RetryAfter.Round(time.Second))
}

// Authenticate says who r comes from: a bearer token, Basic credentials,
// a verified client certificate, or Anonymous when it brings none.
// Wrong credentials are ErrBadCredentials (never Anonymous), and a client
// that failed too often gets a *ThrottledError before its password is
// even checked.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	p, err := a.authenticate(r)
	if err != nil {
		return p, err
	}
	return a.checkTokenKey(r.Context(), p)
}

// authenticate is Authenticate before a token issued to an API key is
// checked against the key.
func (a *Authenticator) authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		raw := strings.TrimSpace(cred)
		p, err := a.tokens.verify(raw, kindAccess)
		if err != nil && len(a.opts.Issuers) > 0 {
			p, err = verifyExternal(r.Context(), a.opts.Issuers, raw)
		}
		if err != nil {
			return Principal{}, fmt.Errorf("%w: %v", ErrBadCredentials, err)
		}
		return p, nil
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return Principal{}, fmt.Errorf("%w: malformed Basic credentials", ErrBadCredentials)
		}
		return a.password(r, user, pass)
	case h != "":
		return Principal{}, fmt.Errorf("%w: unsupported Authorization scheme", ErrBadCredentials)
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		ids := CertIdentities(r.TLS.VerifiedChains[0][0])
		if len(ids) > 0 {
			return Principal{Name: ids[0], Method: MethodCert, Also: ids}, nil
		}
	}
	return Principal{Name: Anonymous, Method: MethodAnonymous}, nil
}

// password checks Basic credentials against the htpasswd users, through
// the failure limiter.
func (a *Authenticator) password(r *http.Request, user, pass string) (Principal, error) {
	client := clientAddr(r)
	delay, retry := a.limiter.Check(client)
	if retry > 0 {
		return Principal{}, &ThrottledError{RetryAfter: retry}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return Principal{}, r.Context().Err()
		}
	}
	if IsKey(pass) {
		return a.apiKey(r.Context(), client, pass)
	}
	if len(a.opts.Issuers) > 0 && looksLikeJWT(pass) {
		p, err := verifyExternal(r.Context(), a.opts.Issuers, pass)
		if err != nil {
			a.limiter.Fail(client)
			return Principal{}, fmt.Errorf("%w: %v", ErrBadCredentials, err)
		}
		a.limiter.Succeed(client)
		return p, nil
	}
	if users := a.users.Load(); users == nil || !users.Check(user, pass) {
		a.limiter.Fail(client)
		return Principal{}, fmt.Errorf("%w: unknown user or wrong password", ErrBadCredentials)
	}
	a.limiter.Succeed(client)
	return Principal{Name: user, Method: MethodPassword}, nil
}

// clientAddr is the address failures are counted against: the peer's IP
// (forwarding headers are not trusted: any client can write them).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Allowed reports whether p may do action on repo under the current
// policy (and, for a token, the token's grants).
func (a *Authenticator) Allowed(p Principal, repo, action string) bool {
	return a.policy.Load().Allowed(p, repo, action)
}

// AllowedEverywhere reports whether p holds action on every repository.
func (a *Authenticator) AllowedEverywhere(p Principal, action string) bool {
	return a.policy.Load().AllowedEverywhere(p, action)
}

// Challenge is the WWW-Authenticate value of a 401 for r: the token
// service's realm and service, and the scope the request needs (empty
// for none).
func (a *Authenticator) Challenge(r *http.Request, scope string) string {
	realm := a.opts.Realm
	if realm == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		realm = scheme + "://" + r.Host + TokenPath
	}
	c := fmt.Sprintf(`Bearer realm=%q,service=%q`, realm, a.opts.Service)
	if scope != "" {
		c += fmt.Sprintf(`,scope=%q`, scope)
	}
	return c
}

// Scope is the token scope for actions on repo, as a challenge names it.
func Scope(repo string, actions ...string) string {
	return "repository:" + repo + ":" + strings.Join(actions, ",")
}

// looksLikeJWT reports whether a password is a compact JWS (three base64url
// parts, the header's JSON starting "ey"): an external issuer's token sent
// as a Basic password.
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "ey") && strings.Count(s, ".") == 2
}
