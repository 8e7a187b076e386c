package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
)

// principalKey is the request context key of the caller's auth.Principal.
type principalKey struct{}

// principal returns who the request comes from; with authentication off,
// everyone is an anonymous principal that may do everything.
func principal(req *http.Request) auth.Principal {
	p, ok := req.Context().Value(principalKey{}).(auth.Principal)
	if !ok {
		return auth.Principal{Name: auth.Anonymous, Method: auth.MethodAnonymous}
	}
	return p
}

// whoami answers who the caller is and whether credentials are asked
// for at all: the web UI's question before it offers a sign-in.
func (r *Registry) whoami(w http.ResponseWriter, req *http.Request) error {
	p := principal(req)
	return writeJSON(w, "application/json", map[string]any{"name": p.Name, "method": p.Method, "authentication": r.auth != nil})
}

// authenticate records who req comes from in its context, as the
// principal the handlers authorize and as the actor of every event they
// append (one derived request, on the hot path of every call). Wrong
// credentials are refused here, on every route (401 with the challenge),
// rather than treated as anonymous; a client that failed too often gets
// 429 until it may try again.
func (r *Registry) authenticate(w http.ResponseWriter, req *http.Request) (*http.Request, error) {
	p := auth.Principal{Name: auth.Anonymous, Method: auth.MethodAnonymous}
	if r.auth != nil {
		var err error
		p, err = r.auth.Authenticate(req)
		var te *auth.ThrottledError
		switch {
		case errors.As(err, &te):
			w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter.Seconds())+1))
			return req, errorf(CodeTooManyRequests, "%v", te)
		case errors.Is(err, auth.ErrBadCredentials):
			w.Header().Set("WWW-Authenticate", r.auth.Challenge(req, ""))
			return req, errorf(CodeUnauthorized, "authentication failed: unknown user, wrong password, or an invalid or expired token")
		case err != nil:
			return req, err
		}
	}
	ctx := context.WithValue(req.Context(), principalKey{}, p)
	return req.WithContext(eventlog.WithActor(ctx, actorOf(p, req.RemoteAddr))), nil
}

// actorOf is the actor a principal's events record: who, how they
// authenticated, and from which address (the peer's, never a header).
func actorOf(p auth.Principal, remoteAddr string) eventlog.Actor {
	method := p.Method
	if method == auth.MethodToken {
		method = "token(" + p.Via + ")"
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return eventlog.Actor{Name: p.Name, Method: method, Addr: host}
}

// systemActor marks the events of the server's own work (expiring
// uploads, moving blobs between tiers), unless ctx already names who
// asked for it.
func systemActor(ctx context.Context, task string) context.Context {
	if !eventlog.ActorFrom(ctx).IsZero() {
		return ctx
	}
	return eventlog.WithActor(ctx, eventlog.Actor{Name: "artifactstore:" + task, Method: "system"})
}

// allowed reports whether the request's caller may do action on repo
// (always, with authentication off).
func (r *Registry) allowed(req *http.Request, repo, action string) bool {
	return r.auth == nil || r.auth.Allowed(principal(req), repo, action)
}

// allowedEverywhere reports whether the caller holds action on every
// repository: what seeing events of no repository requires.
func (r *Registry) allowedEverywhere(req *http.Request, action string) bool {
	return r.auth == nil || r.auth.AllowedEverywhere(principal(req), action)
}

// authorize refuses a request that may not do action on repo: 401 with a
// challenge naming the scope it needs when the caller has not
// authenticated (so that a client logs in, or fetches a token for that
// scope), 403 DENIED when it has. Which one never depends on whether the
// repository exists.
func (r *Registry) authorize(w http.ResponseWriter, req *http.Request, repo, action string) error {
	if r.allowed(req, repo, action) {
		return nil
	}
	p := principal(req)
	if !p.Authenticated() || p.Method == auth.MethodToken && !tokenGrants(p, repo, action) {
		actions := []string{action}
		if action == auth.ActionPush {
			actions = []string{auth.ActionPull, auth.ActionPush}
		}
		w.Header().Set("WWW-Authenticate", r.auth.Challenge(req, auth.Scope(repo, actions...)))
		return errorf(CodeUnauthorized, "authentication required to %s %s", action, repo)
	}
	return errorf(CodeDenied, "%s may not %s %s", p.Name, action, repo)
}

// tokenGrants reports whether a token's own claims name action on repo: a
// token that lacks it is asked to fetch one for that scope (401), as
// clients expect; one that has it but the policy now refuses is 403.
func tokenGrants(p auth.Principal, repo, action string) bool {
	for _, a := range p.Access {
		if a.Type == "repository" && a.Name == repo {
			for _, x := range a.Actions {
				if x == action {
					return true
				}
			}
		}
	}
	return false
}

// tokenNames reports whether a token's claims name repo at all (asked for
// by the client, whatever the policy then granted).
func tokenNames(p auth.Principal, repo string) bool {
	for _, a := range p.Access {
		if a.Type == "repository" && a.Name == repo {
			return true
		}
	}
	return false
}
