package registry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/gorilla/mux"
)

// API keys for robots (auth/apikeys.go) are made and revoked here, by an
// admin, and live in the event log: apikey.created holds the key's id,
// name, grants, expiry and the SHA-256 of its secret; the secret itself
// is in the creation answer only. The authenticator looks keys up in the
// api_keys view on every use (lookupKey), so a revocation holds at once on
// every replica that shares the database.
//
//	POST   /api/v1/keys       {"name", "repositories", "actions", "expires"?}
//	GET    /api/v1/keys
//	DELETE /api/v1/keys/{id}

// maxKeysListed bounds one list answer.
const maxKeysListed = 10_000

// keyNamePattern: a key's name is part of its principal ("key:<name>")
// and of the audit trail, so it is a plain word.
var keyNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// apiKey is a key as the API shows it: never its secret, except Key in
// the creation answer.
type apiKey struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Key          string     `json:"key,omitempty"`
	Repositories []string   `json:"repositories"`
	Actions      []string   `json:"actions"`
	Expires      time.Time  `json:"expires"`
	Created      time.Time  `json:"created"`
	CreatedBy    string     `json:"createdBy"`
	Status       string     `json:"status"` // active, expired or revoked
	Revoked      *time.Time `json:"revoked,omitempty"`
	RevokedBy    string     `json:"revokedBy,omitempty"`
}

func showKey(k eventlog.APIKey, now time.Time) apiKey {
	out := apiKey{ID: k.ID, Name: k.Name, Repositories: k.Repositories, Actions: k.Actions,
		Expires: k.Expires, Created: k.Created, CreatedBy: k.CreatedBy, Status: "active"}
	switch {
	case !k.Revoked.IsZero():
		out.Status, out.Revoked, out.RevokedBy = "revoked", &k.Revoked, k.RevokedBy
	case !now.Before(k.Expires):
		out.Status = "expired"
	}
	return out
}

// authorizeKeys admits only a caller who holds admin on every repository.
// With authentication off there are no keys to manage: 404.
func (r *Registry) authorizeKeys(w http.ResponseWriter, req *http.Request) error {
	if r.auth == nil {
		return errorf(CodeUnsupported, "API keys need authentication on: start the server with --htpasswd or --policy").withStatus(http.StatusNotFound)
	}
	p := principal(req)
	if r.auth.AllowedEverywhere(p, auth.ActionAdmin) {
		return nil
	}
	if !p.Authenticated() {
		w.Header().Set("WWW-Authenticate", r.auth.Challenge(req, ""))
		return errorf(CodeUnauthorized, "authentication required to manage API keys")
	}
	return errorf(CodeDenied, "%s may not manage API keys: that needs admin on every repository (a policy rule granting admin on \"**\"), with a user's own credentials (Basic or a client certificate), not a token or a key", p.Name)
}

// keyRequest is the body of a key's creation.
type keyRequest struct {
	Name         string     `json:"name"`
	Repositories []string   `json:"repositories"`
	Actions      []string   `json:"actions"`
	Expires      *time.Time `json:"expires"`
}

// createKey makes a key and answers it, secret included, once.
func (r *Registry) createKey(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeKeys(w, req); err != nil {
		return err
	}
	kr, err := readKeyRequest(req.Body)
	if err != nil {
		return err
	}
	now := time.Now()
	exp := now.Add(auth.DefaultKeyLifetime)
	if kr.Expires != nil {
		exp = *kr.Expires
	}
	exp = exp.UTC().Truncate(time.Second)
	switch {
	case !exp.After(now):
		return errorf(CodeKeyInvalid, "expires %s is not in the future", exp.Format(time.RFC3339))
	case exp.After(now.Add(auth.MaxKeyLifetime + time.Minute)):
		return errorf(CodeKeyInvalid, "expires %s is more than a year away: a key lives at most %s; make a new one before it expires", exp.Format(time.RFC3339), auth.MaxKeyLifetime)
	}
	nk, err := auth.GenerateKey()
	if err != nil {
		return err
	}
	evs, err := r.log.Append(req.Context(), eventlog.New(eventlog.TypeAPIKeyCreated, "", eventlog.APIKeyCreated{
		ID: nk.ID, Name: kr.Name, Hash: "sha256:" + hex.EncodeToString(nk.Hash),
		Repositories: kr.Repositories, Actions: kr.Actions, Expires: exp.Format(time.RFC3339),
	}))
	if errors.Is(err, eventlog.ErrConflict) {
		return errorf(CodeKeyInvalid, "%s", publicText(err, eventlog.ErrConflict)).withStatus(http.StatusConflict)
	}
	if err != nil {
		return err
	}
	out := apiKey{ID: nk.ID, Name: kr.Name, Key: nk.Text, Repositories: kr.Repositories, Actions: kr.Actions,
		Expires: exp, Created: evs[0].Time.UTC(), CreatedBy: evs[0].Actor.Name, Status: "active"}
	w.Header().Set("Location", "/api/v1/keys/"+nk.ID)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSONStatus(w, http.StatusCreated, out)
}

// readKeyRequest reads and checks a creation body: JSON with exactly the
// known keys (case-sensitive), at most 64 KiB.
func readKeyRequest(body io.Reader) (keyRequest, error) {
	var kr keyRequest
	b, err := io.ReadAll(io.LimitReader(body, 64<<10+1))
	if err != nil {
		return kr, errorf(CodeKeyInvalid, "reading the request: %v", err)
	}
	if len(b) > 64<<10 {
		return kr, errorf(CodeKeyInvalid, "the request is larger than 64 KiB").withStatus(http.StatusRequestEntityTooLarge)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return kr, errorf(CodeKeyInvalid, `send a JSON object: {"name": "ci", "repositories": ["team/**"], "actions": ["pull", "push"], "expires": "2027-01-01T00:00:00Z"}: %v`, err)
	}
	for k := range top {
		switch k {
		case "name", "repositories", "actions", "expires":
		default:
			return kr, errorf(CodeKeyInvalid, "unknown key %q (keys are case-sensitive: name, repositories, actions, expires)", k)
		}
	}
	if err := json.Unmarshal(b, &kr); err != nil {
		return kr, errorf(CodeKeyInvalid, "%v (expires is an RFC 3339 time)", err)
	}
	if !keyNamePattern.MatchString(kr.Name) {
		return kr, errorf(CodeKeyInvalid, "name %q: give 1 to 63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit", kr.Name)
	}
	if err := auth.CheckKeyGrants(kr.Repositories, kr.Actions); err != nil {
		return kr, errorf(CodeKeyInvalid, "%v", err)
	}
	return kr, nil
}

// listKeys answers every key, oldest first, without secrets.
func (r *Registry) listKeys(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeKeys(w, req); err != nil {
		return err
	}
	keys, err := r.log.APIKeys(req.Context(), maxKeysListed+1)
	if err != nil {
		return err
	}
	out := map[string]any{}
	if len(keys) > maxKeysListed {
		keys, out["truncated"] = keys[:maxKeysListed], true
	}
	now := time.Now()
	list := make([]apiKey, len(keys))
	for i, k := range keys {
		list[i] = showKey(k, now)
	}
	out["keys"] = list
	return writeJSON(w, "application/json", out)
}

// revokeKey ends a key at once: every later request with it, or with a
// token issued to it, is refused. Revoking a revoked key changes nothing.
func (r *Registry) revokeKey(w http.ResponseWriter, req *http.Request) error {
	if err := r.authorizeKeys(w, req); err != nil {
		return err
	}
	id := mux.Vars(req)["id"]
	if !auth.ValidKeyID(id) {
		return errorf(CodeKeyUnknown, "no API key %q: keys are named by their id, 16 hex characters (artifactstore keys list)", id)
	}
	k, err := r.log.APIKey(req.Context(), id)
	if errors.Is(err, eventlog.ErrNotFound) {
		return errorf(CodeKeyUnknown, "no API key %s", id)
	}
	if err != nil {
		return err
	}
	if k.Revoked.IsZero() {
		_, err := r.log.Append(req.Context(), eventlog.New(eventlog.TypeAPIKeyRevoked, "", eventlog.APIKeyRevoked{ID: id}))
		// Conflict: a concurrent revocation won; the key is revoked.
		if err != nil && !errors.Is(err, eventlog.ErrConflict) {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// lookupKey is the authenticator's view of the keys (auth.KeyLookup).
func (r *Registry) lookupKey(ctx context.Context, id string) (auth.Key, error) {
	k, err := r.log.APIKey(ctx, id)
	if errors.Is(err, eventlog.ErrNotFound) {
		return auth.Key{}, auth.ErrKeyNotFound
	}
	if err != nil {
		return auth.Key{}, err
	}
	sum, err := hex.DecodeString(strings.TrimPrefix(k.Hash, "sha256:"))
	if err != nil || !strings.HasPrefix(k.Hash, "sha256:") {
		return auth.Key{}, fmt.Errorf("API key %s: stored hash %q is not sha256:<hex>", id, k.Hash)
	}
	return auth.Key{ID: k.ID, Name: k.Name, Hash: sum, Repositories: k.Repositories, Actions: k.Actions,
		Expires: k.Expires, Revoked: !k.Revoked.IsZero()}, nil
}
