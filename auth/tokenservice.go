package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ServeToken is the token service (the Docker registry token protocol):
//
//	GET  /auth/token?service=S&scope=repository:NAME:ACTIONS[&scope=…][&offline_token=true]
//	     with Basic credentials, or none for an anonymous token;
//	POST /auth/token  (application/x-www-form-urlencoded) grant_type=password
//	     (username, password) or grant_type=refresh_token (refresh_token),
//	     service, scope (space separated), access_type=offline for a
//	     refresh token.
//
// The token's access claims are what was asked for, narrowed to what the
// policy grants the caller now; asking for more is not an error (docker
// asks for pull,push and pushes only if push came back).
func (a *Authenticator) ServeToken(w http.ResponseWriter, r *http.Request) {
	if err := a.serveToken(w, r); err != nil {
		var te *ThrottledError
		switch {
		case errors.As(err, &te):
			w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter.Seconds())+1))
			tokenError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", err.Error())
		case errors.Is(err, ErrBadCredentials):
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, a.opts.Service))
			tokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication failed: unknown user, wrong password, or an invalid refresh token")
		default:
			tokenError(w, http.StatusBadRequest, "UNSUPPORTED", err.Error())
		}
	}
}

func (a *Authenticator) serveToken(w http.ResponseWriter, r *http.Request) error {
	var (
		p       Principal
		scopes  []string
		offline bool
		err     error
	)
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		if err := a.checkService(q.Get("service")); err != nil {
			return err
		}
		for _, sc := range q["scope"] {
			// A challenge may name several scopes in one, space
			// separated; clients pass it on as they got it.
			scopes = append(scopes, strings.Fields(sc)...)
		}
		offline = q.Get("offline_token") == "true"
		if p, err = a.Authenticate(r); err != nil {
			return err
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return fmt.Errorf("read the form: %v", err)
		}
		f := r.PostForm
		if err := a.checkService(f.Get("service")); err != nil {
			return err
		}
		scopes = strings.Fields(f.Get("scope"))
		offline = f.Get("access_type") == "offline"
		switch f.Get("grant_type") {
		case "password":
			if p, err = a.password(r, f.Get("username"), f.Get("password")); err != nil {
				return err
			}
		case "refresh_token":
			if p, err = a.tokens.verify(f.Get("refresh_token"), kindRefresh); err != nil {
				return fmt.Errorf("%w: %v", ErrBadCredentials, err)
			}
			// A refresh token outlives a password change or removal: the
			// account must still exist.
			if users := a.users.Load(); p.Via == MethodPassword && (users == nil || !users.Has(p.Name)) {
				return fmt.Errorf("%w: the account no longer exists", ErrBadCredentials)
			}
			if p.Via == MethodAPIKey {
				// ... and a key must still be live.
				if p, err = a.keyPrincipal(r.Context(), p.KeyID, nil); err != nil {
					return err
				}
			} else {
				p = Principal{Name: p.Name, Method: p.Via, Also: p.Also}
			}
		default:
			return fmt.Errorf("grant_type must be password or refresh_token")
		}
	default:
		return fmt.Errorf("use GET or POST")
	}
	if len(scopes) > 64 {
		return fmt.Errorf("at most 64 scopes per token")
	}
	access, err := a.grant(p, scopes)
	if err != nil {
		return err
	}
	tok, exp, err := a.tokens.issue(kindAccess, p, access, a.opts.TokenTTL)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	out := map[string]any{
		"token": tok, "access_token": tok,
		"expires_in": int(time.Until(exp).Seconds()), "issued_at": now.Format(time.RFC3339),
	}
	if r.Method == http.MethodPost {
		out["scope"] = strings.Join(scopes, " ")
	}
	if offline && p.Authenticated() {
		ref, _, err := a.tokens.issue(kindRefresh, p, nil, a.opts.RefreshTTL)
		if err != nil {
			return err
		}
		out["refresh_token"] = ref
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

func (a *Authenticator) checkService(s string) error {
	if s != "" && s != a.opts.Service {
		return fmt.Errorf("this token service is for service %q, not %q", a.opts.Service, s)
	}
	return nil
}

// grant turns requested scopes into access claims: for each repository
// scope, the requested actions the policy grants p. Other resource types
// (registry:catalog:*) get nothing: catalog answers are filtered by pull
// instead.
func (a *Authenticator) grant(p Principal, scopes []string) ([]Access, error) {
	pol := a.policy.Load()
	var out []Access
	for _, s := range scopes {
		typ, rest, ok := strings.Cut(s, ":")
		i := strings.LastIndex(rest, ":")
		if !ok || i < 0 {
			return nil, fmt.Errorf("scope %q: write type:name:actions", s)
		}
		name, actions := rest[:i], strings.Split(rest[i+1:], ",")
		if typ != "repository" {
			continue
		}
		if !a.opts.ValidName(name) {
			return nil, fmt.Errorf("scope %q: not a valid repository name", s)
		}
		var got []string
		for _, act := range actions {
			want := []string{act}
			if act == "*" {
				want = []string{ActionPull, ActionPush, ActionDelete}
			}
			for _, w := range want {
				if pol.policyAllows(p, name, w) && !slices.Contains(got, w) {
					got = append(got, w)
				}
			}
		}
		out = append(out, Access{Type: "repository", Name: name, Actions: got})
	}
	return out, nil
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
