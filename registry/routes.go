package registry

import (
	"net/http"
	"strings"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/gorilla/mux"
)

// routes is the whole route table of the server. Repository names contain
// slashes, so {name} matches greedily and handlers validate it.
//
// Spec: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#endpoints
func (r *Registry) routes() http.Handler {
	m := mux.NewRouter()
	// Keep paths as sent: cleaning would turn "a/../b" into another
	// repository instead of the NAME_INVALID the client deserves.
	m.SkipClean(true)
	// Repository routes: "/v2/{name:.+}" and a suffix, matched without a
	// regular expression (repopath.go); named by their templates.
	repo := func(suffix string, methods ...string) *mux.Route {
		p := newRepoPath(suffix)
		return m.NewRoute().MatcherFunc(p.matcher).Methods(methods...).Name(routeName(p.template))
	}

	// Pulls first: mux tries routes in order, and these are most requests.
	repo("/blobs/{digest}", http.MethodGet, http.MethodHead).Handler(r.named(auth.ActionPull, r.getBlob))
	repo("/manifests/{reference}", http.MethodGet, http.MethodHead).Handler(r.named(auth.ActionPull, r.getManifest))

	m.Handle("/v2/", r.handle(r.apiVersion)).Methods(http.MethodGet, http.MethodHead)
	m.Handle("/v2/_catalog", r.handle(r.catalog)).Methods(http.MethodGet)

	repo("/tags/list", http.MethodGet).Handler(r.named(auth.ActionPull, r.tagsList))
	repo("/referrers/{digest}", http.MethodGet).Handler(r.named(auth.ActionPull, r.referrers))

	repo("/manifests/{reference}", http.MethodPut).Handler(r.named(auth.ActionPush, r.putManifest))
	repo("/manifests/{reference}", http.MethodDelete).Handler(r.named(auth.ActionDelete, r.deleteManifest))

	repo("/blobs/uploads/", http.MethodPost).Handler(r.named(auth.ActionPush, r.startUpload))
	repo("/blobs/uploads/{uuid}", http.MethodGet).Handler(r.named(auth.ActionPush, r.uploadStatus))
	repo("/blobs/uploads/{uuid}", http.MethodPatch).Handler(r.named(auth.ActionPush, r.patchUpload))
	repo("/blobs/uploads/{uuid}", http.MethodPut).Handler(r.named(auth.ActionPush, r.finishUpload))
	repo("/blobs/uploads/{uuid}", http.MethodDelete).Handler(r.named(auth.ActionPush, r.cancelUpload))

	repo("/blobs/{digest}", http.MethodDelete).Handler(r.named(auth.ActionDelete, r.deleteBlob))

	// The native API. A "-" path segment separates the repository from
	// what follows: the name grammar starts and ends every component with
	// [a-z0-9], so no repository has a "-" component, and the first "/-/"
	// (non-greedy {name}) is where the name ends, whatever the version or
	// file path holds. Without it, repository "a/versions/1/files" and
	// version 1 of "a" would share URLs.
	const repoAPI = "/api/v1/repositories/{name:.+?}/" + nativeSeparator
	if r.auth != nil {
		m.Handle(auth.TokenPath, noted(http.HandlerFunc(r.auth.ServeToken))).Methods(http.MethodGet, http.MethodPost)
	}
	m.Handle("/api/v1/openapi.json", r.handle(r.openAPI)).Methods(http.MethodGet)
	m.Handle("/api/v1/whoami", r.handle(r.whoami)).Methods(http.MethodGet)
	m.Handle("/api/v1/events", r.handle(r.events)).Methods(http.MethodGet)
	m.Handle("/api/v1/events/{seq}", r.handle(r.getEvent)).Methods(http.MethodGet)
	m.Handle("/api/v1/search", r.handle(r.searchVersions)).Methods(http.MethodGet)
	m.Handle("/api/v1/history", r.handle(r.history)).Methods(http.MethodGet)
	m.Handle("/api/v1/keys", r.handle(r.createKey)).Methods(http.MethodPost)
	m.Handle("/api/v1/keys", r.handle(r.listKeys)).Methods(http.MethodGet)
	m.Handle("/api/v1/keys/{id}", r.handle(r.revokeKey)).Methods(http.MethodDelete)
	m.Handle("/api/v1/repositories", r.handle(r.listRepositories)).Methods(http.MethodGet)
	m.Handle("/api/v1/storage", r.handle(r.storage)).Methods(http.MethodGet)
	m.Handle("/api/v1/gc", r.handle(r.collect)).Methods(http.MethodPost)
	m.Handle("/api/v1/retention/policies", r.handle(r.listPolicies)).Methods(http.MethodGet)
	m.Handle("/api/v1/retention/policies/{policy}", r.handle(r.getPolicy)).Methods(http.MethodGet)
	m.Handle("/api/v1/retention/policies/{policy}", r.handle(r.putPolicy)).Methods(http.MethodPut)
	m.Handle("/api/v1/retention/policies/{policy}", r.handle(r.deletePolicy)).Methods(http.MethodDelete)
	m.Handle("/api/v1/retention/history", r.handle(r.policyHistory)).Methods(http.MethodGet)
	m.Handle("/api/v1/retention/plan", r.handle(r.retentionPlan)).Methods(http.MethodGet)
	m.Handle("/api/v1/retention/run", r.handle(r.retentionRun)).Methods(http.MethodPost)
	m.Handle("/api/v1/retention/simulate", r.handle(r.retentionSimulate)).Methods(http.MethodPost)
	m.Handle("/api/v1/retention/trash", r.handle(r.retentionTrash)).Methods(http.MethodGet)
	m.Handle("/api/v1/retention/restore", r.handle(r.retentionRestore)).Methods(http.MethodPost)
	m.Handle(repoAPI+"/versions", r.named(auth.ActionPull, r.listVersions)).Methods(http.MethodGet)
	m.Handle(repoAPI+"/versions/{version}", r.named(auth.ActionPull, r.getVersion)).Methods(http.MethodGet, http.MethodHead)
	m.Handle(repoAPI+"/versions/{version}", r.named(auth.ActionPush, r.putVersion)).Methods(http.MethodPut)
	m.Handle(repoAPI+"/versions/{version}", r.named(auth.ActionDelete, r.deleteVersion)).Methods(http.MethodDelete)
	m.Handle(repoAPI+"/versions/{version}/files", r.named(auth.ActionPull, r.listFiles)).Methods(http.MethodGet)
	m.Handle(repoAPI+"/versions/{version}/files/{path:.+}", r.named(auth.ActionPull, r.getFile)).Methods(http.MethodGet, http.MethodHead)
	m.Handle(repoAPI+"/versions/{version}/files/{path:.+}", r.named(auth.ActionPush, r.putFile)).Methods(http.MethodPut)
	m.Handle(repoAPI+"/blobs/{digest}", r.named(auth.ActionPull, r.getNativeBlob)).Methods(http.MethodGet, http.MethodHead)

	m.PathPrefix("/ui/").Handler(noted(r.ui())).Methods(http.MethodGet, http.MethodHead)
	m.Handle("/ui", noted(http.HandlerFunc(toUI))).Methods(http.MethodGet, http.MethodHead)
	m.Handle("/", noted(http.HandlerFunc(toUI))).Methods(http.MethodGet, http.MethodHead)
	m.Handle("/healthz", r.quiet(r.healthz)).Methods(http.MethodGet, http.MethodHead)
	m.Handle("/readyz", r.quiet(r.readyz)).Methods(http.MethodGet, http.MethodHead)
	if r.opts.ServeMetrics && r.opts.Metrics != nil {
		m.Handle("/metrics", r.quiet(r.serveMetrics)).Methods(http.MethodGet)
	}

	m.NotFoundHandler = r.handle(noEndpoint)
	m.MethodNotAllowedHandler = r.handle(func(w http.ResponseWriter, req *http.Request) error {
		// RFC 9110 §15.5.6: a 405 lists the methods the resource has.
		w.Header().Set("Allow", strings.Join(allowedMethods(m, req), ", "))
		return errorf(CodeUnsupported, "%s is not supported on %s", req.Method, req.URL.Path)
	})
	// Metrics and the request log name routes by their templates.
	m.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if t, err := rt.GetPathTemplate(); err == nil {
			rt.Name(routeName(t))
		}
		return nil
	})
	return m
}

// handlerFunc is a handler that returns its error for handle to write.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts fn: common headers before, the error envelope after.
func (r *Registry) handle(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		rec := recorderOf(w)
		rec.noteRoute(req)
		r.withIdleBody(w, req)
		err := checkQuery(req)
		if err == nil {
			req, err = r.authenticate(w, req)
			if p := principal(req); rec != nil && err == nil && p.Method != auth.MethodAnonymous {
				rec.principal = p.Name // logged once there is one
			}
		}
		if err == nil {
			err = fn(w, req)
		}
		if err != nil {
			writeError(w, req, r.logger, err)
		}
	})
}

// named is handle for routes under a repository name, which it validates
// and then authorizes for action: the one place a repository route's
// permission is decided, before any lookup, so that a repository the
// caller may not use answers alike whether or not it exists.
func (r *Registry) named(action string, fn handlerFunc) http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		repo := mux.Vars(req)["name"]
		if err := ValidateName(repo); err != nil {
			return err
		}
		if err := r.authorize(w, req, repo, action); err != nil {
			return err
		}
		return fn(w, req)
	})
}

// apiVersion answers the version check. With authentication on, a
// request without credentials gets the challenge: that is how clients
// learn where to log in.
// Spec: #determining-support
func (r *Registry) apiVersion(w http.ResponseWriter, req *http.Request) error {
	if r.auth != nil && req.Header.Get("Authorization") == "" && principal(req).Method != auth.MethodCert {
		w.Header().Set("WWW-Authenticate", r.auth.Challenge(req, ""))
		return errorf(CodeUnauthorized, "authentication required: log in (docker login, oras login, ...) with your credentials")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.Write([]byte("{}"))
	return nil
}
