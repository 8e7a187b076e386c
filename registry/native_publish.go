package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
	"github.com/gorilla/mux"
)

// publishResult is the answer to a publish.
type publishResult struct {
	Repository   string `json:"repository"`
	Version      string `json:"version"`
	Digest       string `json:"digest"`       // sha256 of the canonical CBOR manifest
	BLAKE3       string `json:"blake3"`       // blake3 of the same bytes
	OCIDigest    string `json:"ociDigest"`    // the derived OCI manifest on /v2/
	ArtifactType string `json:"artifactType"` // as derived
	Files        int    `json:"files"`
}

// putVersion publishes a version from a native manifest, as JSON or as
// canonical CBOR, whose files were uploaded beforehand through /v2/ upload
// sessions of the same repository.
func (r *Registry) putVersion(w http.ResponseWriter, req *http.Request) error {
	repo, version := mux.Vars(req)["name"], mux.Vars(req)["version"]
	if err := manifests.ValidVersion(version); err != nil {
		return errorf(CodeManifestInvalid, "%v", err)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, manifests.MaxSize+1))
	if err != nil {
		return errorf(CodeManifestInvalid, "reading the manifest: %v", err)
	}
	if len(body) > manifests.MaxSize {
		return errorf(CodeManifestInvalid, "manifest is larger than %d bytes", manifests.MaxSize).withStatus(http.StatusRequestEntityTooLarge)
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	var n *manifests.Native
	createdGiven := true
	switch ct {
	case manifests.MediaTypeCBOR:
		if n, err = manifests.DecodeNative(body); err != nil {
			return errorf(CodeManifestInvalid, "%v", err)
		}
	case "application/json", "":
		n = &manifests.Native{}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(n); err != nil {
			return errorf(CodeManifestInvalid, "manifest is not valid JSON for format version 1: %v", err)
		}
		if dec.More() {
			return errorf(CodeManifestInvalid, "trailing data after the manifest's JSON object")
		}
		if err := exactKeys(body); err != nil {
			return errorf(CodeManifestInvalid, "%v", err)
		}
		if n.Repository == "" {
			n.Repository = repo
		}
		if n.Version == "" {
			n.Version = version
		}
		if n.Created == "" {
			createdGiven = false
			n.Created = manifests.FormatCreated(time.Now())
		}
		n.Normalize()
	default:
		return errorf(CodeManifestInvalid, "Content-Type %q: send application/json or application/cbor", ct).withStatus(http.StatusUnsupportedMediaType)
	}
	if n.Repository != repo || n.Version != version {
		return errorf(CodeManifestInvalid, "the manifest names %s:%s but was sent to %s:%s", n.Repository, n.Version, repo, version)
	}
	if err := n.Validate(); err != nil {
		return manifestError(err)
	}
	return r.publish(w, req, n, createdGiven, nil)
}

// putFile publishes a version of one file from the request body: what
// `curl -T FILE URL` does. The media type is the Content-Type, or a guess
// from the path's extension (see fileMediaType); ?artifactType= and
// ?annotation=key=value add to the manifest.
func (r *Registry) putFile(w http.ResponseWriter, req *http.Request) error {
	ctx := req.Context()
	repo, version, path := mux.Vars(req)["name"], mux.Vars(req)["version"], mux.Vars(req)["path"]
	if err := manifests.ValidVersion(version); err != nil {
		return errorf(CodeManifestInvalid, "%v", err)
	}
	if err := manifests.ValidPath(path); err != nil {
		return errorf(CodePathInvalid, "%v", err)
	}
	q := req.URL.Query()
	ann, err := annotationParams(q["annotation"])
	if err != nil {
		return err
	}
	if err := textParam("artifactType", q.Get("artifactType")); err != nil {
		return err
	}
	var expect digest.Digest
	if s := q.Get("digest"); s != "" {
		if expect, err = parseDigest(s); err != nil {
			return err
		}
	}
	mediaType, err := fileMediaType(req.Header.Get("Content-Type"), path)
	if err != nil {
		return err
	}
	fence := r.log.Observed()
	ds, content, err := r.ingestBody(ctx, req.Body, req.ContentLength, expect)
	if err != nil {
		return uploadError(err)
	}
	// The file's events go into the version's own append: a refused
	// publish (409) records nothing, and its bytes are GC's.
	link := commitEvents(repo, ds, content, fence)
	n := &manifests.Native{
		ManifestVersion: manifests.NativeVersion1, Repository: repo, Version: version,
		ArtifactType: q.Get("artifactType"), Annotations: ann, Created: manifests.FormatCreated(time.Now()),
		Files: []manifests.File{{Path: path, Size: ds.Size, MediaType: mediaType, SHA256: ds.SHA256.String(), BLAKE3: ds.BLAKE3.String()}},
	}
	if err := n.Validate(); err != nil {
		return errorf(CodeManifestInvalid, "%v", err)
	}
	return r.publish(w, req, n, false, link)
}

// exactKeys refuses JSON keys that encoding/json would have matched to a
// field ignoring case ("Files" for "files"): the CBOR form is strict, and
// the JSON form must not accept what CBOR refuses.
func exactKeys(body []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return err
	}
	check := func(where string, m map[string]json.RawMessage, allowed ...string) error {
		for k := range m {
			ok := false
			for _, a := range allowed {
				ok = ok || k == a
			}
			if !ok {
				return fmt.Errorf("%s: unknown key %q (keys are case-sensitive: %s)", where, k, strings.Join(allowed, ", "))
			}
		}
		return nil
	}
	if err := check("manifest", top, "manifestVersion", "repository", "version", "artifactType", "files", "annotations", "created", "subject"); err != nil {
		return err
	}
	var files []map[string]json.RawMessage
	if raw, ok := top["files"]; ok && json.Unmarshal(raw, &files) == nil {
		for i, f := range files {
			if err := check(fmt.Sprintf("files[%d]", i), f, "path", "size", "mediaType", "sha256", "blake3"); err != nil {
				return err
			}
		}
	}
	var subject map[string]json.RawMessage
	if raw, ok := top["subject"]; ok && json.Unmarshal(raw, &subject) == nil {
		return check("subject", subject, "mediaType", "digest", "size")
	}
	return nil
}

// fileMediaType is the Content-Type a client sent, or, since curl -T sends
// none, a guess from the file name's extension, or application/octet-stream.
// A Content-Type that is not UTF-8 text is refused: the manifest stores it
// as CBOR text, which must be UTF-8.
func fileMediaType(contentType, name string) (string, error) {
	if !validText(contentType) {
		return "", errorf(CodeManifestInvalid, "Content-Type %q is not UTF-8 text; it becomes the file's media type: send one like application/pdf, or none to have it guessed from the file name", contentType)
	}
	// curl sends form-urlencoded for --data: a file's type is never that.
	if contentType != "" && contentType != "application/x-www-form-urlencoded" {
		return contentType, nil
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		base, _, _ := strings.Cut(t, ";")
		return base, nil
	}
	return manifests.DefaultFileMediaType, nil
}

// manifestError answers a manifest Validate refused: PATH_INVALID when two
// paths conflict, MANIFEST_INVALID otherwise.
func manifestError(err error) error {
	if errors.Is(err, manifests.ErrPathConflict) {
		return errorf(CodePathInvalid, "%v", err)
	}
	return errorf(CodeManifestInvalid, "%v", err)
}

// annotationParams reads key=value pairs, within the limits a native
// version's annotations have (checked here, before a publish stores any
// byte).
func annotationParams(params []string) (map[string]string, error) {
	var out map[string]string
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || !validText(p) {
			return nil, errorf(CodeManifestInvalid, "annotation %q: write key=value, UTF-8 text without NUL", p)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	if err := manifests.CheckNativeAnnotations(out); err != nil {
		return nil, errorf(CodeManifestInvalid, "%v", err)
	}
	return out, nil
}

// publish records a validated native manifest: its canonical bytes and
// the derived OCI manifest become blobs, then one append records them, the
// derived manifest and its tag, and the version. pre are events recording
// the files' bytes, when the request itself brought them (they are then
// not yet linked, and go first in the same append). Versions are immutable:
// the same manifest again is a no-op (200), a different one a 409. When
// the client did not choose the creation time, the existing version's is
// used for the comparison.
func (r *Registry) publish(w http.ResponseWriter, req *http.Request, n *manifests.Native, createdGiven bool, pre []eventlog.Event) error {
	ctx, repo := req.Context(), n.Repository
	if pre == nil {
		if err := r.checkFiles(ctx, repo, n); err != nil {
			return err
		}
	}
	existing, err := r.log.Version(ctx, repo, n.Version)
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
	case err != nil:
		return err
	case existing.NativeSHA256 == "":
		return errorf(CodeVersionExists, "%s:%s already exists as a tag pushed over /v2/; choose another version", repo, n.Version)
	default:
		old, err := r.nativeManifest(ctx, existing)
		if err != nil {
			return err
		}
		if !createdGiven {
			n.Created = old.Created
		}
		if !sameManifest(old, n) {
			return errorf(CodeVersionExists, "%s:%s is already published with different content (%s); versions are immutable: publish a new version", repo, n.Version, existing.NativeSHA256)
		}
		return writeJSONStatus(w, http.StatusOK, resultOf(n, existing.NativeSHA256, existing.NativeBLAKE3, existing.Manifest.Digest))
	}
	cb, err := n.Encode()
	if err != nil {
		return errorf(CodeManifestInvalid, "%v", err)
	}
	oci, err := n.DeriveOCI()
	if err != nil {
		return err
	}
	fence := r.log.Observed()
	nds, nc, err := r.ingestBytes(ctx, cb, "")
	if err != nil {
		return err
	}
	ods, oc, err := r.ingestBytes(ctx, oci, "")
	if err != nil {
		return err
	}
	cds, cc, err := r.ingestBytes(ctx, manifests.EmptyConfig(), "")
	if err != nil {
		return err
	}
	evs := pre
	for _, c := range []struct {
		ds      blobstore.Digests
		content []byte
		repo    string
	}{{nds, nc, ""}, {ods, oc, ""}, {cds, cc, repo}} {
		evs = append(evs, commitEvents(c.repo, c.ds, c.content, fence)...)
	}
	put := eventlog.ManifestPut{Digest: ods.SHA256.String(), SHA256: ods.SHA256.String(), MediaType: manifests.MediaTypeImageManifest,
		ArtifactType: n.ArtifactType, Size: ods.Size}
	if put.ArtifactType == "" {
		put.ArtifactType = manifests.DefaultArtifactType
	}
	if m, err := manifests.Parse(manifests.MediaTypeImageManifest, oci); err == nil {
		put.Annotations = m.Annotations()
	}
	if n.Subject != nil {
		put.Subject = n.Subject.Digest
	}
	// What a pull of the derived manifest needs: its empty config and the
	// files, all linked into repo (by checkFiles, or by pre in this
	// append), and kept linked while the version exists.
	put.Blobs, put.Complete = []string{cds.SHA256.String()}, true
	for _, f := range n.Files {
		if !slices.Contains(put.Blobs, f.SHA256) {
			put.Blobs = append(put.Blobs, f.SHA256)
		}
	}
	// The version before its tag: version.published is refused if a /v2/
	// push took the tag name meanwhile, and once it is recorded no tag.set
	// can move the tag. Either way exactly one of two racing writers wins.
	evs = append(evs,
		eventlog.New(eventlog.TypeManifestPut, repo, put),
		eventlog.New(eventlog.TypeVersionPublished, repo, eventlog.VersionPublished{
			Version: n.Version, NativeSHA256: nds.SHA256.String(), NativeBLAKE3: nds.BLAKE3.String(), NativeSize: nds.Size, OCIDigest: put.Digest,
		}),
		eventlog.New(eventlog.TypeTagSet, repo, eventlog.TagSet{Tag: n.Version, Digest: put.Digest}))
	if err := r.appendCommitted(ctx, evs...); errors.Is(err, eventlog.ErrConflict) {
		return errorf(CodeVersionExists, "%s:%s was published or pushed over /v2/ meanwhile by another request; versions are immutable: publish a new version", repo, n.Version)
	} else if errors.Is(err, eventlog.ErrReferenceMissing) {
		return errorf(CodeManifestBlobUnknown, "%v; upload it again", err)
	} else if err != nil {
		return err
	}
	w.Header().Set("Location", versionURL(repo, n.Version))
	return writeJSONStatus(w, http.StatusCreated, resultOf(n, nds.SHA256.String(), nds.BLAKE3.String(), put.Digest))
}

func resultOf(n *manifests.Native, sha, b3, oci string) publishResult {
	at := n.ArtifactType
	if at == "" {
		at = manifests.DefaultArtifactType
	}
	return publishResult{Repository: n.Repository, Version: n.Version, Digest: sha, BLAKE3: b3, OCIDigest: oci, ArtifactType: at, Files: len(n.Files)}
}

// sameManifest compares two manifests by their canonical bytes.
func sameManifest(a, b *manifests.Native) bool {
	x, err1 := a.Encode()
	y, err2 := b.Encode()
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// checkFiles refuses a manifest whose files were not uploaded to repo, or
// whose digests or sizes do not match the uploaded bytes.
func (r *Registry) checkFiles(ctx context.Context, repo string, n *manifests.Native) error {
	for _, f := range n.Files {
		b, err := r.log.LinkedBlob(ctx, repo, f.SHA256)
		if errors.Is(err, eventlog.ErrNotFound) {
			e := errorf(CodeManifestBlobUnknown, "file %s: blob %s was never uploaded to %s; upload it first (POST /v2/%s/blobs/uploads/)", f.Path, f.SHA256, repo, repo)
			e.Detail = map[string]string{"path": f.Path, "digest": f.SHA256}
			return e
		}
		if err != nil {
			return err
		}
		if b.BLAKE3 != f.BLAKE3 || b.Size != f.Size {
			return errorf(CodeDigestInvalid, "file %s: the uploaded bytes of %s have blake3 %s and size %d, the manifest says %s and %d",
				f.Path, f.SHA256, b.BLAKE3, b.Size, f.BLAKE3, f.Size)
		}
	}
	return nil
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
