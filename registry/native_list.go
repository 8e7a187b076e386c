package registry

import (
	"net/http"
	"strconv"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/gorilla/mux"
)

// versionJSON is a version in lists.
type versionJSON struct {
	Repository   string            `json:"repository"`
	Version      string            `json:"version"`
	Sequence     int64             `json:"sequence"` // of the event that last set it; the list cursor
	Tagged       string            `json:"tagged"`   // when that was, RFC 3339
	Digest       string            `json:"digest"`   // the OCI manifest on /v2/
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Native       bool              `json:"native"` // published through /api/v1/ (immutable)
	NativeDigest string            `json:"nativeDigest,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func versionOf(v eventlog.Version) versionJSON {
	return versionJSON{
		Repository: v.Repo, Version: v.Version, Sequence: v.Seq, Tagged: v.Time.Format("2006-01-02T15:04:05Z"),
		Digest: v.Manifest.Digest, MediaType: v.Manifest.MediaType, ArtifactType: v.Manifest.ArtifactType,
		Native: v.NativeSHA256 != "", NativeDigest: v.NativeSHA256, Annotations: v.Manifest.Annotations,
	}
}

// maxSearchAnnotations bounds the annotation filters of one query: each is
// a condition of the query the database runs, and databases bound those
// (SQLite's expression depth and variables), so thousands would fail there.
const maxSearchAnnotations = 32

// versionQuery reads n, before, artifactType and annotation=key=value.
func versionQuery(req *http.Request) (eventlog.VersionQuery, error) {
	v, err := queryValues(req)
	if err != nil {
		return eventlog.VersionQuery{}, err
	}
	q := eventlog.VersionQuery{Limit: 100, ArtifactType: v.Get("artifactType"), Repo: v.Get("repository")}
	if s := v.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			return q, errorf(CodePaginationInvalid, "n must be between 1 and %d, got %q", maxPage, s).withStatus(http.StatusBadRequest)
		}
		q.Limit = n
	}
	if s := v.Get("before"); s != "" {
		b, err := strconv.ParseInt(s, 10, 64)
		if err != nil || b < 1 {
			return q, errorf(CodePaginationInvalid, "before must be a sequence number from a previous page, got %q", s).withStatus(http.StatusBadRequest)
		}
		q.Before = b
	}
	if err := textParam("artifactType", q.ArtifactType); err != nil {
		return q, err
	}
	if n := len(v["annotation"]); n > maxSearchAnnotations {
		return q, errorf(CodeUnsupported, "at most %d annotation filters may be given at once, got %d", maxSearchAnnotations, n).withStatus(http.StatusBadRequest)
	}
	ann, err := annotationParams(v["annotation"])
	q.Annotations = ann
	return q, err
}

// writeVersions answers a page of versions, newest first, with a Link to
// the next page when there may be one.
func (r *Registry) writeVersions(w http.ResponseWriter, req *http.Request, q eventlog.VersionQuery, extra map[string]any) error {
	want := q.Limit
	q.Limit++
	vs, err := r.pullableVersions(req, q)
	if err != nil {
		return err
	}
	out := []versionJSON{}
	for i, v := range vs {
		if i == want {
			next := req.URL.Query()
			next.Set("before", strconv.FormatInt(out[len(out)-1].Sequence, 10))
			next.Set("n", strconv.Itoa(want))
			w.Header().Set("Link", "<"+req.URL.Path+"?"+next.Encode()+`>; rel="next"`)
			break
		}
		out = append(out, versionOf(v))
	}
	extra["versions"] = out
	return writeJSON(w, "application/json", extra)
}

// pullableVersions reads up to q.Limit versions the caller may pull,
// reading past the ones it may not in batches, so that pages stay full
// and the "before" cursor stays true.
func (r *Registry) pullableVersions(req *http.Request, q eventlog.VersionQuery) ([]eventlog.Version, error) {
	if r.auth == nil {
		return r.log.Versions(req.Context(), q)
	}
	want := q.Limit
	q.Limit = max(want, 256)
	var out []eventlog.Version
	for len(out) < want {
		vs, err := r.log.Versions(req.Context(), q)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if len(out) < want && r.allowed(req, v.Repo, auth.ActionPull) {
				out = append(out, v)
			}
		}
		if len(vs) < q.Limit {
			break
		}
		q.Before = vs[len(vs)-1].Seq
	}
	return out, nil
}

// listVersions lists a repository's versions, newest first: those
// published natively and those pushed by OCI clients (every tag).
func (r *Registry) listVersions(w http.ResponseWriter, req *http.Request) error {
	repo := mux.Vars(req)["name"]
	q, err := versionQuery(req)
	if err != nil {
		return err
	}
	if err := r.requireRepository(req.Context(), repo); err != nil {
		return err
	}
	q.Repo = repo
	return r.writeVersions(w, req, q, map[string]any{"repository": repo})
}

// searchVersions finds versions across repositories (or in one, with
// ?repository=) by artifact type and annotations.
func (r *Registry) searchVersions(w http.ResponseWriter, req *http.Request) error {
	q, err := versionQuery(req)
	if err != nil {
		return err
	}
	if q.Repo != "" {
		if err := ValidateName(q.Repo); err != nil {
			return err
		}
	}
	return r.writeVersions(w, req, q, map[string]any{})
}

// listRepositories lists repositories in byte order, like /v2/_catalog.
func (r *Registry) listRepositories(w http.ResponseWriter, req *http.Request) error {
	return r.repositoryPage(w, req, "/api/v1/repositories")
}
