package registry

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/retention"
	"github.com/gorilla/mux"
)

// The lifecycle surface of /api/v1/: retention policies, their plan, runs
// and history, the simulation, restores, storage accounting and on-demand
// collections. Everything but restore and storage needs admin on every
// repository (open when authentication is off, like the rest).

// authorizeAdmin admits a caller with admin on every repository.
func (r *Registry) authorizeAdmin(w http.ResponseWriter, req *http.Request, what string) error {
	if r.allowedEverywhere(req, auth.ActionAdmin) {
		return nil
	}
	if p := principal(req); !p.Authenticated() {
		w.Header().Set("WWW-Authenticate", r.auth.Challenge(req, ""))
		return errorf(CodeUnauthorized, "authentication required to %s", what)
	}
	return errorf(CodeDenied, "%s may not %s: that needs admin on every repository", principal(req).Name, what)
}

// policyView is a policy as the API shows it.
type policyView struct {
	Name   string          `json:"name"`
	Policy json.RawMessage `json:"policy"`
}

// listPolicies lists the retention policies in force.
func (r *Registry) listPolicies(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "read retention policies"); err != nil {
		return err
	}
	raw, _, err := r.log.Policies(req.Context())
	if err != nil {
		return err
	}
	out := []policyView{}
	for _, name := range sortedKeys(raw) {
		out = append(out, policyView{Name: name, Policy: json.RawMessage(raw[name])})
	}
	return writeJSON(w, "application/json", map[string]any{"policies": out})
}

// getPolicy answers one policy.
func (r *Registry) getPolicy(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "read retention policies"); err != nil {
		return err
	}
	name := mux.Vars(req)["policy"]
	raw, _, err := r.log.Policies(req.Context())
	if err != nil {
		return err
	}
	p, ok := raw[name]
	if !ok {
		return errorf(CodePolicyUnknown, "there is no retention policy %q", name)
	}
	return writeJSON(w, "application/json", json.RawMessage(p))
}

// maxPolicyBody bounds a policy document.
const maxPolicyBody = 64 << 10

// putPolicy sets a policy from a YAML or JSON body; its name is the URL's.
func (r *Registry) putPolicy(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "set retention policies"); err != nil {
		return err
	}
	name := mux.Vars(req)["policy"]
	p, err := readPolicy(req.Body, name)
	if err != nil {
		return err
	}
	if p.Name != name {
		return errorf(CodePolicyInvalid, "the policy is named %q in its body and %q in the URL", p.Name, name)
	}
	if err := r.SetPolicy(req.Context(), p); err != nil {
		return err
	}
	b, _ := json.Marshal(p)
	return writeJSON(w, "application/json", json.RawMessage(b))
}

// readPolicy parses a policy body; a body without a name gets name.
func readPolicy(body io.Reader, name string) (retention.Policy, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxPolicyBody+1))
	if err != nil {
		return retention.Policy{}, errorf(CodePolicyInvalid, "reading the policy: %v", err)
	}
	if len(b) > maxPolicyBody {
		return retention.Policy{}, errorf(CodePolicyInvalid, "a policy is at most %d bytes", maxPolicyBody).withStatus(http.StatusRequestEntityTooLarge)
	}
	p, err := retention.ParseNamed(b, name)
	if err != nil {
		return p, errorf(CodePolicyInvalid, "%v", err)
	}
	return p, nil
}

// deletePolicy removes a policy.
func (r *Registry) deletePolicy(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "remove retention policies"); err != nil {
		return err
	}
	if err := r.RemovePolicy(req.Context(), mux.Vars(req)["policy"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// policyHistory lists every change to the policies, oldest first, with
// who made it.
func (r *Registry) policyHistory(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "read retention policies"); err != nil {
		return err
	}
	type change struct {
		Seq    int64           `json:"seq"`
		Time   time.Time       `json:"time"`
		Actor  string          `json:"actor,omitempty"`
		Change string          `json:"change"` // "set" or "removed"
		Name   string          `json:"name"`
		Policy json.RawMessage `json:"policy,omitempty"`
	}
	out := []change{}
	q := eventlog.Query{Types: []string{string(eventlog.TypePolicySet), string(eventlog.TypePolicyRemoved)}, Limit: 1000}
	for {
		page, err := r.log.Read(req.Context(), q)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			c := change{Seq: e.Seq, Time: e.Time, Actor: e.Actor.Name}
			if e.Type == eventlog.TypePolicySet {
				var p eventlog.PolicySet
				if err := e.Decode(&p); err != nil {
					return err
				}
				c.Change, c.Name, c.Policy = "set", p.Name, json.RawMessage(p.Policy)
			} else {
				var p eventlog.PolicyRemoved
				if err := e.Decode(&p); err != nil {
					return err
				}
				c.Change, c.Name = "removed", p.Name
			}
			out = append(out, c)
		}
		if !page.More {
			break
		}
		q.After = page.Next
	}
	return writeJSON(w, "application/json", map[string]any{"changes": out})
}

// retentionPlan answers what the policies delete now (a dry run).
func (r *Registry) retentionPlan(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "plan retention"); err != nil {
		return err
	}
	if err := r.FlushPulls(req.Context()); err != nil {
		return err
	}
	plan, err := r.PlanRetention(req.Context(), time.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, "application/json", plan)
}

// retentionRun applies the policies now.
func (r *Registry) retentionRun(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "run retention"); err != nil {
		return err
	}
	plan, err := r.ApplyRetention(req.Context(), time.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, "application/json", plan)
}

// retentionSimulate runs the policy in the body (or, with none, the
// policies in force) over the last ?days= of history, a ?step= apart.
func (r *Registry) retentionSimulate(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "simulate retention"); err != nil {
		return err
	}
	v, err := queryValues(req)
	if err != nil {
		return err
	}
	days, err := strconv.Atoi(v.Get("days"))
	if err != nil || days <= 0 || days > 3660 {
		return errorf(CodePolicyInvalid, "give ?days=N, the history to simulate over: 1 to 3660 days")
	}
	step := 24 * time.Hour
	if s := v.Get("step"); s != "" {
		if step, err = time.ParseDuration(s); err != nil || step < time.Minute {
			return errorf(CodePolicyInvalid, "step must be a duration of at least 1m, e.g. 24h; got %q", s)
		}
	}
	to := time.Now()
	from := to.Add(-time.Duration(days) * 24 * time.Hour)
	if to.Sub(from)/step > 10_000 {
		return errorf(CodePolicyInvalid, "%d days at steps of %s is more than 10000 steps; take a longer step", days, step)
	}
	set, err := r.Policies(req.Context())
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxPolicyBody+1))
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		p, err := readPolicy(strings.NewReader(string(body)), "proposed")
		if err != nil {
			return err
		}
		if set, err = retention.Compile([]retention.Policy{p}); err != nil {
			return errorf(CodePolicyInvalid, "%v", err)
		}
	}
	sim, err := r.Simulate(req.Context(), set, from, to, step)
	if err != nil {
		return err
	}
	return writeJSON(w, "application/json", sim)
}

// retentionTrash lists what retention deleted that can still be restored.
func (r *Registry) retentionTrash(w http.ResponseWriter, req *http.Request) error {
	v, err := queryValues(req)
	if err != nil {
		return err
	}
	repo := v.Get("repository")
	if repo == "" {
		if err := r.authorizeAdmin(w, req, "list restorable deletions"); err != nil {
			return err
		}
	} else {
		if err := ValidateName(repo); err != nil {
			return err
		}
		if err := r.authorize(w, req, repo, auth.ActionPull); err != nil {
			return err
		}
	}
	type item struct {
		Repo    string    `json:"repository"`
		Kind    string    `json:"kind"`
		Name    string    `json:"name"`
		Digest  string    `json:"digest"`
		Policy  string    `json:"policy"`
		Seq     int64     `json:"seq"`
		Deleted time.Time `json:"deleted"`
		Until   time.Time `json:"restorableUntil"`
	}
	var all []eventlog.TrashItem
	versions := map[string]bool{} // repo@version deleted as a native version
	cutoff := time.Now().Add(-r.opts.RetentionUndo)
	err = r.log.Trash(req.Context(), repo, func(it eventlog.TrashItem) error {
		if it.Deleted.After(cutoff) {
			all = append(all, it)
			if it.Kind == eventlog.TrashVersion {
				versions[it.Repo+"@"+it.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := []item{}
	for _, it := range all {
		if it.Kind == eventlog.TrashTag && versions[it.Repo+"@"+it.Name] {
			continue // restored with its version
		}
		out = append(out, item{it.Repo, it.Kind, it.Name, it.Digest, it.Policy, it.Seq, it.Deleted, it.Deleted.Add(r.opts.RetentionUndo)})
	}
	return writeJSON(w, "application/json", map[string]any{"items": out})
}

// restoreRequest names what to restore.
type restoreRequest struct {
	Repository string `json:"repository"`
	Kind       string `json:"kind"` // tag, manifest or version
	Name       string `json:"name"`
}

// retentionRestore restores a deletion; it needs admin on the repository.
func (r *Registry) retentionRestore(w http.ResponseWriter, req *http.Request) error {
	var rr restoreRequest
	dec := json.NewDecoder(io.LimitReader(req.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rr); err != nil {
		return errorf(CodeUnsupported, "the body must be JSON {\"repository\", \"kind\", \"name\"}: %v", err).withStatus(http.StatusBadRequest)
	}
	if err := ValidateName(rr.Repository); err != nil {
		return err
	}
	switch rr.Kind {
	case eventlog.TrashTag, eventlog.TrashManifest, eventlog.TrashVersion:
	default:
		return errorf(CodeUnsupported, "kind must be tag, manifest or version, not %q", rr.Kind).withStatus(http.StatusBadRequest)
	}
	if err := r.authorize(w, req, rr.Repository, auth.ActionAdmin); err != nil {
		return err
	}
	restored, err := r.Restore(req.Context(), rr.Repository, rr.Kind, rr.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, "application/json", map[string]any{"repository": rr.Repository, "restored": restored})
}

// storage answers the bytes each repository holds, unique to it and
// shared with others, filtered to the repositories the caller may pull.
func (r *Registry) storage(w http.ResponseWriter, req *http.Request) error {
	var out []eventlog.RepoStorage
	err := r.log.Storage(req.Context(), func(s eventlog.RepoStorage) error {
		if r.allowed(req, s.Repo, auth.ActionPull) {
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if out == nil {
		out = []eventlog.RepoStorage{}
	}
	return writeJSON(w, "application/json", map[string]any{"repositories": out})
}

// collect runs one garbage collection now (?dryRun=true lists only;
// ?grace=D spares what is younger, default the server's --gc-grace).
func (r *Registry) collect(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeAdmin(w, req, "collect garbage"); err != nil {
		return err
	}
	v, err := queryValues(req)
	if err != nil {
		return err
	}
	opts := GCOptions{Grace: r.opts.GCGrace, DryRun: v.Get("dryRun") == "true"}
	if s := v.Get("grace"); s != "" {
		if opts.Grace, err = time.ParseDuration(s); err != nil || opts.Grace < 0 {
			return errorf(CodeUnsupported, "grace must be a duration such as 1h or 0s, got %q", s).withStatus(http.StatusBadRequest)
		}
	}
	rep, err := r.CollectGarbage(req.Context(), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, "application/json", rep)
}
