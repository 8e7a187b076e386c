package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
	"github.com/gorilla/mux"
)

// reference is a manifest reference: a tag or a digest.
type reference struct {
	tag    string
	digest digest.Digest
}

// parseReference tells tags from digests: only digests contain a colon.
func parseReference(s string) (reference, error) {
	if strings.Contains(s, ":") {
		d, err := parseDigest(s)
		return reference{digest: d}, err
	}
	return reference{tag: s}, ValidateTag(s)
}

// resolve finds the manifest a reference names in repo; forRead brings
// its bytes along when the log keeps them.
func (r *Registry) resolve(ctx context.Context, repo string, ref reference, forRead bool) (eventlog.Manifest, error) {
	tagged, byDigest := r.log.TaggedManifest, r.log.Manifest
	if forRead {
		tagged, byDigest = r.log.TaggedManifestForRead, r.log.ManifestForRead
	}
	if ref.tag != "" {
		m, err := tagged(ctx, repo, ref.tag)
		if errors.Is(err, eventlog.ErrNotFound) {
			return m, errorf(CodeManifestUnknown, "tag %q is not in repository %s", ref.tag, repo)
		}
		return m, err
	}
	m, err := byDigest(ctx, repo, ref.digest.String())
	if errors.Is(err, eventlog.ErrNotFound) {
		return m, errorf(CodeManifestUnknown, "manifest %s is not in repository %s", ref.digest, repo)
	}
	m.Digest = ref.digest.String() // answer with the digest the client asked for
	return m, err
}

// getManifest serves a manifest by tag or digest, as stored, byte for byte.
// Spec: #pulling-manifests
func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request) error {
	repo := mux.Vars(req)["name"]
	ref, err := parseReference(mux.Vars(req)["reference"])
	if err != nil {
		return err
	}
	m, err := r.resolve(req.Context(), repo, ref, req.Method == http.MethodGet)
	if err != nil {
		return err
	}
	if !accepts(req.Header.Values("Accept"), m.MediaType) {
		return errorf(CodeManifestUnknown, "manifest %s is a %s, which the request's Accept header does not list", m.Digest, m.MediaType).withStatus(http.StatusNotAcceptable)
	}
	body, err := r.readManifest(req.Context(), m)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	h.Set("Docker-Content-Digest", m.Digest)
	h.Set("ETag", `"`+m.Digest+`"`)
	if match := req.Header.Get("If-None-Match"); match != "" && strings.Contains(match, `"`+m.Digest+`"`) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		r.notePull(repo, m.Digest) // for retention's pull rules
		w.Write(body)
	}
	return nil
}

// accepts reports whether Accept header lines admit mediaType. Clients
// send several lines; no header, a wildcard, or a list naming no manifest
// type at all admits everything.
func accepts(lines []string, mediaType string) bool {
	namesManifest := false
	for _, line := range lines {
		for _, part := range strings.Split(line, ",") {
			t, _, _ := strings.Cut(part, ";")
			t = strings.TrimSpace(t)
			switch {
			case t == mediaType || t == "*/*" || t == "application/*":
				return true
			case manifests.Known(t):
				namesManifest = true
			}
		}
	}
	return !namesManifest
}

// putManifest stores a manifest under a tag or its digest, and under every
// ?tag= given.
// Spec: #pushing-manifests
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request) error {
	ctx, repo := req.Context(), mux.Vars(req)["name"]
	ref, err := parseReference(mux.Vars(req)["reference"])
	if err != nil {
		return err
	}
	tags := req.URL.Query()["tag"]
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return err
		}
	}
	if ref.tag != "" {
		tags = append([]string{ref.tag}, tags...)
	}
	for _, t := range tags {
		if err := r.denyNative(ctx, repo, t); err != nil {
			return err
		}
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, manifests.MaxSize+1))
	if err != nil {
		return errorf(CodeManifestInvalid, "reading the manifest: %v", err)
	}
	if len(body) > manifests.MaxSize {
		return errorf(CodeManifestInvalid, "manifest is larger than the limit of %d bytes", manifests.MaxSize).withStatus(http.StatusRequestEntityTooLarge)
	}
	m, err := manifests.Parse(req.Header.Get("Content-Type"), body)
	if err != nil {
		return errorf(CodeManifestInvalid, "%v", err)
	}
	d := ref.digest
	if d == "" {
		d = digest.FromBytes(digest.SHA256, body)
	} else if got := digest.FromBytes(d.Algorithm(), body); got != d {
		return errorf(CodeDigestInvalid, "the manifest's %s digest is %s, not %s as in the URL", d.Algorithm(), got, d)
	}
	fixed := map[string]bool{}
	for _, t := range tags {
		if fixed[t], err = r.denyImmutable(req, repo, t, d.String()); err != nil {
			return err
		}
	}
	refBlobs, refChildren, complete, err := r.references(ctx, repo, m)
	if err != nil {
		return err
	}
	fence := r.log.Observed()
	ds, content, err := r.ingestBytes(ctx, body, d)
	if err != nil {
		return err
	}
	evs := commitEvents("", ds, content, fence)
	put := eventlog.ManifestPut{
		Digest: d.String(), SHA256: ds.SHA256.String(), MediaType: m.MediaType,
		ArtifactType: m.EffectiveArtifactType(), Size: int64(len(body)), Annotations: m.Annotations(),
		Blobs: refBlobs, Manifests: refChildren, Complete: complete,
	}
	if sub := m.Subject(); sub != nil {
		put.Subject = sub.Digest.String()
	}
	evs = append(evs, eventlog.New(eventlog.TypeManifestPut, repo, put))
	for _, t := range tags {
		evs = append(evs, eventlog.New(eventlog.TypeTagSet, repo, eventlog.TagSet{Tag: t, Digest: d.String(), Fixed: fixed[t]}))
	}
	if err := r.appendCommitted(ctx, evs...); errors.Is(err, eventlog.ErrReferenceMissing) {
		return errorf(CodeManifestBlobUnknown, "%v; push it again", err)
	} else if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", manifestURL(repo, d.String()))
	h.Set("Docker-Content-Digest", d.String())
	if put.Subject != "" {
		h.Set("OCI-Subject", put.Subject)
	}
	for _, t := range req.URL.Query()["tag"] {
		h.Add("OCI-Tag", t)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// references resolves what a manifest names to what repo holds: the
// storage keys of its config and layers, and the digests of an index's
// children, as recorded in its manifest.put (Append then re-checks them
// inside the append, and keeps the blobs linked while the manifest
// exists). It refuses a manifest naming content the repository lacks: an
// image's config and distributable layers, an index's manifests; with
// AllowSparse only the config is required. Content a manifest names but
// need not have (non-distributable layers, sparse ones) is recorded only
// when the repository holds it, and never served from elsewhere; complete
// says whether everything named was held (and so recorded).
func (r *Registry) references(ctx context.Context, repo string, m *manifests.Manifest) (blobs, children []string, complete bool, err error) {
	complete = true
	var descs, listed []manifests.Descriptor
	if m.Image != nil {
		descs = append([]manifests.Descriptor{m.Image.Config}, m.Image.Layers...)
	} else {
		listed = m.Index.Manifests
	}
	seen := map[string]bool{}
	names := make([]string, len(descs))
	for i, d := range descs {
		names[i] = d.Digest.String()
	}
	linked, err := r.log.LinkedBlobs(ctx, repo, names) // one round trip per few hundred
	if err != nil {
		return nil, nil, false, err
	}
	for i, d := range descs {
		required := i == 0 || !r.opts.AllowSparse && !manifests.Nondistributable(d)
		b, ok := linked[d.Digest.String()]
		switch {
		case !ok:
			complete = false
			if required {
				e := errorf(CodeManifestBlobUnknown, "the manifest references blob %s (%s), which is not in repository %s: push it first", d.Digest, d.MediaType, repo)
				e.Detail = map[string]string{"digest": d.Digest.String()}
				return nil, nil, false, e
			}
		case !seen[b.SHA256]:
			seen[b.SHA256] = true
			blobs = append(blobs, b.SHA256)
		}
	}
	childNames := make([]string, len(listed))
	for i, c := range listed {
		childNames[i] = c.Digest.String()
	}
	held, err := r.log.ManifestsIn(ctx, repo, childNames) // not a round trip per child
	if err != nil {
		return nil, nil, false, err
	}
	for _, c := range listed {
		cm, ok := held[c.Digest.String()]
		var err error
		if !ok { // perhaps pushed under another algorithm's digest
			cm, err = r.log.Manifest(ctx, repo, c.Digest.String())
		}
		switch {
		case errors.Is(err, eventlog.ErrNotFound):
			complete = false
			if !r.opts.AllowSparse {
				e := errorf(CodeManifestBlobUnknown, "the index references manifest %s, which is not in repository %s: push it first", c.Digest, repo)
				e.Detail = map[string]string{"digest": c.Digest.String()}
				return nil, nil, false, e
			}
		case err != nil:
			return nil, nil, false, err
		case !seen[cm.Digest]:
			seen[cm.Digest] = true
			children = append(children, cm.Digest)
		}
	}
	return blobs, children, complete, nil
}

// deleteManifest deletes a tag, or a manifest by digest together with the
// tags that point at it.
// Spec: #deleting-tags, #deleting-manifests
func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request) error {
	ctx, repo := req.Context(), mux.Vars(req)["name"]
	ref, err := parseReference(mux.Vars(req)["reference"])
	if err != nil {
		return err
	}
	var ev eventlog.Event
	if ref.tag != "" {
		if err := r.denyNative(ctx, repo, ref.tag); err != nil {
			return err
		}
		if _, err := r.denyImmutable(req, repo, ref.tag, ""); err != nil {
			return err
		}
		if _, err := r.log.Tag(ctx, repo, ref.tag); errors.Is(err, eventlog.ErrNotFound) {
			return errorf(CodeManifestUnknown, "tag %q is not in repository %s", ref.tag, repo)
		} else if err != nil {
			return err
		}
		ev = eventlog.New(eventlog.TypeTagDeleted, repo, eventlog.TagDeleted{Tag: ref.tag})
	} else {
		m, err := r.log.Manifest(ctx, repo, ref.digest.String())
		if errors.Is(err, eventlog.ErrNotFound) {
			return errorf(CodeManifestUnknown, "manifest %s is not in repository %s", ref.digest, repo)
		} else if err != nil {
			return err
		}
		if v, ok, err := r.log.NativeVersionOf(ctx, repo, m.Digest); err != nil {
			return err
		} else if ok {
			return errorf(CodeDenied, "manifest %s is the OCI view of native version %s:%s; delete the version (DELETE %s)", m.Digest, repo, v, versionURL(repo, v)).withStatus(http.StatusConflict)
		}
		if err := r.denyImmutableManifest(req, repo, m.Digest); err != nil {
			return err
		}
		ev = eventlog.New(eventlog.TypeManifestDeleted, repo, eventlog.ManifestDeleted{Digest: m.Digest})
	}
	if _, err := r.log.Append(ctx, ev); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// denyNative refuses to move or delete a tag that is a native version:
// versions published through /api/v1/ are immutable.
func (r *Registry) denyNative(ctx context.Context, repo, tag string) error {
	native, err := r.log.NativeVersion(ctx, repo, tag)
	if err != nil {
		return err
	}
	if native {
		return errorf(CodeDenied, "tag %s is native version %s:%s, which is immutable; delete it with DELETE %s", tag, repo, tag, versionURL(repo, tag)).withStatus(http.StatusConflict)
	}
	return nil
}
