package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/gorilla/mux"
)

// maxPage bounds one page of a list; a larger n gets this many entries and
// a Link to the rest, as the spec allows.
const maxPage = 1000

// page reads the n and last pagination parameters.
func page(req *http.Request) (n int, last string, err error) {
	q := req.URL.Query()
	n = maxPage
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", errorf(CodePaginationInvalid, "n must be a non-negative integer, got %q", s).withStatus(http.StatusBadRequest)
		}
		n = min(v, maxPage)
	}
	last = q.Get("last")
	return n, last, textParam("last", last)
}

// list answers one page of names. It asks the view for n+1 entries so it
// knows whether to send a Link header to the next page.
func writeList(w http.ResponseWriter, path string, n int, items []string, body map[string]any, key string) error {
	if len(items) > n {
		items = items[:n]
		w.Header().Set("Link", nextLink(path, n, items[len(items)-1]))
	}
	body[key] = items
	return writeJSON(w, "application/json", body)
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// catalog lists repositories in byte order.
// Spec: (extension) #listing-repositories in the Docker registry API; the
// OCI spec reserves /v2/_catalog.
func (r *Registry) catalog(w http.ResponseWriter, req *http.Request) error {
	return r.repositoryPage(w, req, "/v2/_catalog")
}

// repositoryPage answers one page of repository names (n, last).
func (r *Registry) repositoryPage(w http.ResponseWriter, req *http.Request, path string) error {
	n, last, err := page(req)
	if err != nil {
		return err
	}
	repos := []string{}
	if n > 0 {
		if repos, err = r.pullableRepositories(req, last, n+1); err != nil {
			return err
		}
	}
	return writeList(w, path, n, repos, map[string]any{}, "repositories")
}

// pullableRepositories lists up to n repositories after last that the
// caller may pull, reading the view in batches past the ones it may not,
// so that pages stay full and "last" stays a true cursor.
func (r *Registry) pullableRepositories(req *http.Request, last string, n int) ([]string, error) {
	if r.auth == nil {
		return r.log.Repositories(req.Context(), last, n)
	}
	out := []string{}
	batch := max(n, 256)
	for len(out) < n {
		names, err := r.log.Repositories(req.Context(), last, batch)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if len(out) < n && r.allowed(req, name, auth.ActionPull) {
				out = append(out, name)
			}
		}
		if len(names) < batch {
			break
		}
		last = names[len(names)-1]
	}
	return out, nil
}

// tagsList lists a repository's tags in byte order.
// Spec: #listing-tags
func (r *Registry) tagsList(w http.ResponseWriter, req *http.Request) error {
	repo := mux.Vars(req)["name"]
	n, last, err := page(req)
	if err != nil {
		return err
	}
	if err := r.requireRepository(req.Context(), repo); err != nil {
		return err
	}
	tags := []string{}
	if n > 0 {
		if tags, err = r.log.Tags(req.Context(), repo, last, n+1); err != nil {
			return err
		}
	}
	return writeList(w, "/v2/"+repo+"/tags/list", n, tags, map[string]any{"name": repo}, "tags")
}

// requireRepository answers NAME_UNKNOWN for a repository that never held
// content.
func (r *Registry) requireRepository(ctx context.Context, repo string) error {
	ok, err := r.log.RepositoryExists(ctx, repo)
	if err == nil && !ok {
		err = errorf(CodeNameUnknown, "repository %s does not exist", repo)
	}
	return err
}
