package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.yaml.in/yaml/v3"
)

// MethodIssuer is how a principal authenticated with a token of an
// external issuer (an OIDC provider, a CI system's workload identity, a
// Docker token server in front of the registry).
const MethodIssuer = "issuer"

// IssuerConfig trusts one external token issuer.
type IssuerConfig struct {
	// Name names the issuer in logs and is the default principal prefix.
	Name string `yaml:"name"`
	// Issuer is the exact "iss" its tokens carry.
	Issuer string `yaml:"issuer"`
	// Keys come from one of: OIDC discovery (Issuer +
	// /.well-known/openid-configuration names the JWKS), a JWKS URL, or
	// a JWKS file.
	Discovery bool   `yaml:"discovery"`
	JWKSURL   string `yaml:"jwks_url"`
	JWKSFile  string `yaml:"jwks_file"`
	// Audience is required in "aud".
	Audience string `yaml:"audience"`
	// Algorithms are the only ones accepted (pinned). Default RS256.
	// HMAC algorithms and "none" are never accepted.
	Algorithms []string `yaml:"algorithms"`
	// SubjectClaim names the claim that identifies the caller (default
	// "sub"); for GitHub Actions, "repository" maps a workflow to its
	// repository.
	SubjectClaim string `yaml:"subject_claim"`
	// Prefix is put before the claim's value to make the principal's name,
	// as policies name it. Default Name + ":".
	Prefix string `yaml:"prefix"`
	// AccessClaims honours a Docker token server's "access" claims: the
	// token then narrows what the policy grants, as ours do.
	AccessClaims bool `yaml:"access_claims"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s.
	Leeway time.Duration `yaml:"leeway"`
}

// IssuersFile is the --issuers file's form (YAML).
type IssuersFile struct {
	Issuers []IssuerConfig `yaml:"issuers"`
}

// LoadIssuers reads and checks an issuers file.
func LoadIssuers(file string) ([]*Issuer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var f IssuersFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("issuers %s: %w", file, err)
	}
	var out []*Issuer
	for _, c := range f.Issuers {
		is, err := NewIssuer(c)
		if err != nil {
			return nil, fmt.Errorf("issuers %s: %w", file, err)
		}
		out = append(out, is)
	}
	return out, nil
}

// allowedAlgorithms are the asymmetric algorithms an issuer may pin.
var allowedAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Issuer verifies one external issuer's tokens.
type Issuer struct {
	cfg  IssuerConfig
	algs []jose.SignatureAlgorithm
	http *http.Client
	now  func() time.Time

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time // when keys were last fetched (URL or discovery)
}

// NewIssuer checks c and, for a JWKS file, loads its keys.
func NewIssuer(c IssuerConfig) (*Issuer, error) {
	if c.Name == "" || c.Issuer == "" || c.Audience == "" {
		return nil, errors.New("issuer: name, issuer and audience are required")
	}
	sources := 0
	for _, set := range []bool{c.Discovery, c.JWKSURL != "", c.JWKSFile != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, fmt.Errorf("issuer %s: give exactly one of discovery, jwks_url, jwks_file", c.Name)
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{string(jose.RS256)}
	}
	if c.SubjectClaim == "" {
		c.SubjectClaim = "sub"
	}
	if c.Prefix == "" {
		c.Prefix = c.Name + ":"
	}
	if c.Leeway <= 0 {
		c.Leeway = 30 * time.Second
	}
	is := &Issuer{cfg: c, http: &http.Client{Timeout: 10 * time.Second}, now: time.Now}
	for _, a := range c.Algorithms {
		alg := jose.SignatureAlgorithm(a)
		if !slices.Contains(allowedAlgorithms, alg) {
			return nil, fmt.Errorf("issuer %s: algorithm %q is not accepted (asymmetric algorithms only: RS*, PS*, ES*, EdDSA)", c.Name, a)
		}
		is.algs = append(is.algs, alg)
	}
	if c.JWKSFile != "" {
		data, err := os.ReadFile(c.JWKSFile)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &is.keys); err != nil {
			return nil, fmt.Errorf("issuer %s: %s: %w", c.Name, c.JWKSFile, err)
		}
	}
	return is, nil
}

// refetchEvery bounds how often an unknown kid makes us fetch the keys.
const refetchEvery = time.Minute

// key returns the public key for kid, fetching the issuer's keys when it
// has none yet or does not know kid (at most once per refetchEvery).
func (is *Issuer) key(ctx context.Context, kid string) (any, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if k := findKey(is.keys, kid); k != nil {
		return k, nil
	}
	if is.cfg.JWKSFile != "" || is.now().Sub(is.fetched) < refetchEvery {
		return nil, fmt.Errorf("%w: issuer %s has no key %q", ErrBadToken, is.cfg.Name, kid)
	}
	is.fetched = is.now()
	set, err := is.fetchKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: fetch keys: %w", is.cfg.Name, err)
	}
	is.keys = set
	if k := findKey(is.keys, kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: issuer %s has no key %q", ErrBadToken, is.cfg.Name, kid)
}

// findKey looks kid up in set; a token without kid matches a set of one.
// kid is only ever compared, never used as a path or URL.
func findKey(set jose.JSONWebKeySet, kid string) any {
	if kid == "" {
		if len(set.Keys) == 1 && set.Keys[0].IsPublic() {
			return set.Keys[0].Key
		}
		return nil
	}
	for _, k := range set.Keys {
		if k.KeyID == kid && k.IsPublic() {
			return k.Key
		}
	}
	return nil
}

func (is *Issuer) fetchKeys(ctx context.Context) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	url := is.cfg.JWKSURL
	if is.cfg.Discovery {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := is.getJSON(ctx, strings.TrimSuffix(is.cfg.Issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return set, err
		}
		if doc.Issuer != is.cfg.Issuer || doc.JWKSURI == "" {
			return set, fmt.Errorf("discovery document names issuer %q and jwks_uri %q", doc.Issuer, doc.JWKSURI)
		}
		url = doc.JWKSURI
	}
	err := is.getJSON(ctx, url, &set)
	return set, err
}

func (is *Issuer) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := is.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// verify checks raw as one of this issuer's tokens and returns its
// principal.
func (is *Issuer) verify(ctx context.Context, tok *jwt.JSONWebToken) (Principal, error) {
	h := tok.Headers[0]
	if !slices.Contains(is.algs, jose.SignatureAlgorithm(h.Algorithm)) {
		return Principal{}, fmt.Errorf("%w: issuer %s does not sign with %s", ErrBadToken, is.cfg.Name, h.Algorithm)
	}
	key, err := is.key(ctx, h.KeyID)
	if err != nil {
		return Principal{}, err
	}
	var std jwt.Claims
	var claims map[string]any
	if err := tok.Claims(key, &std, &claims); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if std.Expiry == nil {
		return Principal{}, fmt.Errorf("%w: no exp", ErrBadToken)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: is.cfg.Issuer, AnyAudience: jwt.Audience{is.cfg.Audience}, Time: is.now()}, is.cfg.Leeway); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	sub, _ := claims[is.cfg.SubjectClaim].(string)
	if sub == "" {
		return Principal{}, fmt.Errorf("%w: no %q claim", ErrBadToken, is.cfg.SubjectClaim)
	}
	p := Principal{Name: is.cfg.Prefix + sub, Method: MethodIssuer}
	if is.cfg.AccessClaims {
		raw, _ := json.Marshal(claims["access"])
		var access []Access
		if err := json.Unmarshal(raw, &access); err != nil {
			return Principal{}, fmt.Errorf("%w: access claims: %v", ErrBadToken, err)
		}
		p = Principal{Name: p.Name, Method: MethodToken, Via: MethodIssuer, Access: access}
	}
	return p, nil
}

// verifyExternal finds the issuer a token names and verifies it there.
func verifyExternal(ctx context.Context, issuers []*Issuer, raw string) (Principal, error) {
	algs := []jose.SignatureAlgorithm{}
	for _, is := range issuers {
		algs = append(algs, is.algs...)
	}
	tok, err := parseToken(raw, algs)
	if err != nil {
		return Principal{}, err
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	for _, is := range issuers {
		if is.cfg.Issuer == unverified.Issuer {
			return is.verify(ctx, tok)
		}
	}
	return Principal{}, fmt.Errorf("%w: no trusted issuer %q", ErrBadToken, unverified.Issuer)
}
