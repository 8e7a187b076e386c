package registry

import (
	"errors"
	"net/http"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
)

// Immutable tags. A retention policy's immutableTags patterns make the
// tags they match, in the repositories the policy applies to, fixed once
// set: a client may create such a tag and push the same manifest to it
// again, but not move it to another manifest, delete it, or delete the
// manifest it points at, on /v2/ and /api/v1/ alike. Only a principal
// with admin on the repository may, which needs authentication: an open
// server has no admins, and there nobody moves an immutable tag (an
// operator removes the policy instead).
//
// The check reads the policies and the tag before the append; the tag.set
// it allows is marked Fixed, and the log refuses it inside the append if
// the tag points elsewhere by then, so two clients creating the same
// immutable tag at once cannot both win. A tag racing a policy change may
// still be moved once: policies are a slow-moving administrative setting,
// read at most policyRecheck ago.

// denyImmutable refuses to point tag at digest ("" to delete it) when a
// policy makes the tag immutable for the caller and it points elsewhere
// now. It reports whether the tag is immutable for the caller: a tag.set
// of it is then marked Fixed, so that two clients creating it at once
// cannot both succeed (the log refuses the second inside its append).
func (r *Registry) denyImmutable(req *http.Request, repo, tag, digest string) (fixed bool, err error) {
	ctx := req.Context()
	set, err := r.Policies(ctx)
	if err != nil {
		return false, err
	}
	policy, ok := set.ImmutableTag(repo, tag)
	if !ok || r.isAdmin(req, repo) {
		return false, nil
	}
	current, err := r.log.Tag(ctx, repo, tag)
	if errors.Is(err, eventlog.ErrNotFound) {
		return true, nil // creating it is allowed
	}
	if err != nil {
		return false, err
	}
	if current == digest {
		return true, nil // the same manifest again
	}
	verb := "moved to " + digest
	if digest == "" {
		verb = "deleted"
	}
	return true, errorf(CodeDenied, "tag %s:%s is immutable (retention policy %q) and cannot be %s; only an admin of %s can, or remove the pattern from the policy", repo, tag, policy, verb, repo).withStatus(http.StatusConflict)
}

// denyImmutableManifest refuses to delete a manifest an immutable tag
// points at.
func (r *Registry) denyImmutableManifest(req *http.Request, repo, digest string) error {
	tags, err := r.log.TagsOf(req.Context(), repo, digest)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := r.denyImmutable(req, repo, t, ""); err != nil {
			return err
		}
	}
	return nil
}

// isAdmin reports whether req's caller is an authenticated admin of repo.
func (r *Registry) isAdmin(req *http.Request, repo string) bool {
	return r.auth != nil && principal(req).Method != auth.MethodAnonymous && r.allowed(req, repo, auth.ActionAdmin)
}
