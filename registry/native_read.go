package registry

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
	"github.com/gorilla/mux"
	godigest "github.com/opencontainers/go-digest"
)

// version looks up the route's version.
func (r *Registry) version(ctx context.Context, repo, version string) (eventlog.Version, error) {
	if manifests.ValidVersion(version) != nil {
		return eventlog.Version{}, errorf(CodeVersionUnknown, "%s has no version %q (not a valid version name)", repo, version)
	}
	v, err := r.log.Version(ctx, repo, version)
	if errors.Is(err, eventlog.ErrNotFound) {
		return v, errorf(CodeVersionUnknown, "%s has no version %q", repo, version)
	}
	return v, err
}

// nativeManifest returns a version's native manifest: the published one,
// or for a version pushed by an OCI client, the one its titled layers
// describe.
func (r *Registry) nativeManifest(ctx context.Context, v eventlog.Version) (*manifests.Native, error) {
	if v.NativeSHA256 != "" {
		b, err := r.readBlob(ctx, v.NativeSHA256, v.NativeSize)
		if err != nil {
			return nil, err
		}
		n, err := manifests.DecodeNative(b)
		if err != nil {
			// Its bytes match its digest: this server wrote something it
			// cannot read back, a server fault, never the client's.
			return nil, fmt.Errorf("stored native manifest %s does not decode: %v", v.NativeSHA256, err)
		}
		return n, nil
	}
	b, err := r.readBlob(ctx, v.Manifest.SHA256, v.Manifest.Size)
	if err != nil {
		return nil, err
	}
	m, err := manifests.Parse(v.Manifest.MediaType, b)
	if err != nil {
		// Accepted once, so a server fault now (%v: not the client's
		// MANIFEST_INVALID).
		return nil, fmt.Errorf("stored manifest %s does not parse: %v", v.Manifest.Digest, err)
	}
	return manifests.NativeFromOCI(v.Repo, v.Version, m, v.Time, func(d godigest.Digest) (string, string, bool) {
		// Only what the repository holds: a layer naming another
		// repository's blob is not a file of this version.
		b, err := r.log.LinkedBlob(ctx, v.Repo, d.String())
		return b.SHA256, b.BLAKE3, err == nil
	}), nil
}

// versionManifest looks up a version and its native manifest.
func (r *Registry) versionManifest(ctx context.Context, repo, version string) (eventlog.Version, *manifests.Native, error) {
	v, err := r.version(ctx, repo, version)
	if err != nil {
		return v, nil, err
	}
	n, err := r.nativeManifest(ctx, v)
	return v, n, err
}

// readBlob reads a small stored blob (a manifest) whole and checks it
// against its key: a manifest is read whole anyway, so hashing it costs
// little, and bytes rotted in storage are refused as damaged (500), never
// served or parsed as if a client had sent them.
func (r *Registry) readBlob(ctx context.Context, key string, size int64) ([]byte, error) {
	return r.readStored(ctx, key, size, true, nil)
}

// readManifest is readBlob for a manifest row, whose bytes its lookup
// brought along when the log keeps them.
func (r *Registry) readManifest(ctx context.Context, m eventlog.Manifest) ([]byte, error) {
	return r.readStored(ctx, m.SHA256, m.Size, true, m.Content)
}

// readStored is readBlob; note says whether the read is a client's, which
// the tiering policy and the collector's grace count. It needs no blobs
// view row: size is the one recorded with the manifest or version, checked
// on open as for any blob, so damaged bytes are never served as whole.
// Manifests are looked for in the log first, where they are kept since
// ADR 0016 (kept, when the caller's lookup brought the bytes along);
// openAnywhere falls back to the stores for older ones.
func (r *Registry) readStored(ctx context.Context, key string, size int64, note bool, kept []byte) ([]byte, error) {
	stored := eventlog.Blob{SHA256: key, Tier: eventlog.TierInline, Size: size, Content: kept}
	if b, ok := r.manifests.get(key); ok && int64(len(b)) == size {
		if note {
			r.noteRead(stored)
		}
		return b, nil
	}
	var f blobstore.Blob
	var err error
	if note {
		f, err = r.openBlob(ctx, stored) // openContent takes kept, checked as any row
	} else {
		f, err = r.openAnywhere(ctx, stored)
	}
	if err != nil {
		return nil, recordedButUnreadable(key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, manifests.MaxSize+1))
	if err != nil {
		return nil, recordedButUnreadable(key, err)
	}
	if got := digest.FromBytes(digest.SHA256, b).String(); got != key {
		r.logger.ErrorContext(ctx, "damaged manifest refused", "blob", key, "now_hashes_to", got)
		return nil, damaged(key, "its content no longer matches its digest")
	}
	if note { // a client's read; a collection's would evict what clients use
		r.manifests.add(key, b)
	}
	return b, nil
}

// getVersion returns a version's manifest: the RFC 8785 JSON projection,
// or with "Accept: application/cbor" the canonical CBOR bytes, whose
// SHA-256 is the ETag.
func (r *Registry) getVersion(w http.ResponseWriter, req *http.Request) error {
	ctx, repo := req.Context(), mux.Vars(req)["name"]
	v, n, err := r.versionManifest(ctx, repo, mux.Vars(req)["version"])
	if err != nil {
		return err
	}
	cb, err := encodeView(v, n)
	if err != nil {
		return err
	}
	// The native digest is the SHA-256 of the canonical CBOR. The two
	// representations need validators of their own (RFC 9110 §8.8.3): a
	// cache holding one revalidates with its ETag, and a shared ETag would
	// have it serve the JSON to a request for CBOR.
	native := digest.FromBytes(digest.SHA256, cb).String()
	etag := `"` + native + `"`
	body, ct := cb, manifests.MediaTypeCBOR
	if !strings.Contains(req.Header.Get("Accept"), manifests.MediaTypeCBOR) {
		if body, err = manifests.MarshalJCS(n); err != nil {
			return err
		}
		ct, etag = "application/json", `"`+native+`+jcs"`
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Native-Digest", native)
	h.Set("Vary", "Accept")
	h.Set("OCI-Digest", v.Manifest.Digest)
	if inm := req.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		r.notePull(repo, v.Manifest.Digest) // a version's pull is its derived manifest's
		w.Write(body)
	}
	return nil
}

// encodeView returns the canonical bytes of a version's manifest. A native
// version's are the published ones; a version pushed over /v2/ may have no
// titled layers at all, which publishing would refuse, so its synthesized
// manifest is encoded as it is.
func encodeView(v eventlog.Version, n *manifests.Native) ([]byte, error) {
	if v.NativeSHA256 != "" {
		return n.Encode()
	}
	return manifests.EncodeCBOR(n)
}

// listFiles lists a version's files.
func (r *Registry) listFiles(w http.ResponseWriter, req *http.Request) error {
	ctx, repo := req.Context(), mux.Vars(req)["name"]
	v, n, err := r.versionManifest(ctx, repo, mux.Vars(req)["version"])
	if err != nil {
		return err
	}
	files := n.Files
	if files == nil {
		files = []manifests.File{}
	}
	return writeJSON(w, "application/json", map[string]any{"repository": repo, "version": v.Version, "files": files})
}

// getFile serves one file of a version by its path.
func (r *Registry) getFile(w http.ResponseWriter, req *http.Request) error {
	ctx, repo, p := req.Context(), mux.Vars(req)["name"], mux.Vars(req)["path"]
	v, n, err := r.versionManifest(ctx, repo, mux.Vars(req)["version"])
	if err != nil {
		return err
	}
	for _, f := range n.Files {
		if f.Path == p {
			if req.Method != http.MethodHead {
				r.notePull(repo, v.Manifest.Digest) // a file's pull is its version's
			}
			// Through the repository's own links, whatever the manifest
			// says: a descriptor naming bytes this repository does not
			// hold (another repository's blob) is not served here.
			lookup := r.log.LinkedBlob
			if req.Method == http.MethodGet {
				lookup = r.log.LinkedBlobForRead
			}
			b, err := lookup(ctx, repo, f.SHA256)
			if errors.Is(err, eventlog.ErrNotFound) {
				return errorf(CodeFileUnknown, "%s:%s names file %q, but its bytes (%s) are not in repository %s", repo, v.Version, p, f.SHA256, repo)
			}
			if err != nil {
				return err
			}
			return r.serveFile(w, req, b, f.MediaType, path.Base(p))
		}
	}
	return errorf(CodeFileUnknown, "%s:%s has no file %q (GET .../-/versions/%s/files lists them)", repo, v.Version, p, v.Version)
}

// getNativeBlob serves any blob of a repository by its sha256, sha512 or
// blake3 digest.
func (r *Registry) getNativeBlob(w http.ResponseWriter, req *http.Request) error {
	repo, _, b, err := r.routeBlob(req)
	if err != nil {
		return err
	}
	if err := r.relyOn(req.Context(), repo, b); err != nil {
		return err
	}
	return r.serveFile(w, req, b, "application/octet-stream", "")
}

// serveFile streams a blob with Range and conditional requests; the ETag
// is its SHA-256 digest and Repr-Digest (RFC 9530) carries both digests of
// the whole representation, also on partial responses.
func (r *Registry) serveFile(w http.ResponseWriter, req *http.Request, b eventlog.Blob, mediaType, filename string) error {
	if err := checkRange(w, req, b.Size); err != nil {
		return err
	}
	f, err := r.openBlob(req.Context(), b)
	if err != nil {
		return recordedButUnreadable(b.SHA256, err)
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", mediaType)
	// A file is whatever its publisher sent, under the type they chose:
	// a browser opening it must not run it as a page of this origin.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("ETag", `"`+b.SHA256+`"`)
	h.Set("Repr-Digest", reprDigest(b))
	h.Set("Cache-Control", "max-age=31536000, immutable")
	if filename != "" {
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filename))
	}
	if plainRequest(req) && r.streamed(w, req, b) {
		return nil
	}
	http.ServeContent(w, req, "", time.Time{}, f)
	return nil
}

// reprDigest is the RFC 9530 Repr-Digest field value: a structured
// dictionary of byte sequences. "sha-256" is the registered name; BLAKE3
// has no registered name yet, so it goes under "blake3".
func reprDigest(b eventlog.Blob) string {
	return fmt.Sprintf("sha-256=:%s:, blake3=:%s:", b64(digest.Digest(b.SHA256).Hex()), b64(digest.Digest(b.BLAKE3).Hex()))
}

func b64(hexs string) string {
	raw, _ := hex.DecodeString(hexs)
	return base64.StdEncoding.EncodeToString(raw)
}

// deleteVersion removes a version: its tag and, for a native version, its
// derived manifest and the version record, in one append. Blobs stay for
// GC.
func (r *Registry) deleteVersion(w http.ResponseWriter, req *http.Request) error {
	ctx, repo := req.Context(), mux.Vars(req)["name"]
	v, err := r.version(ctx, repo, mux.Vars(req)["version"])
	if err != nil {
		return err
	}
	if _, err := r.denyImmutable(req, repo, v.Version, ""); err != nil {
		return err
	}
	var evs []eventlog.Event
	if v.NativeSHA256 != "" {
		// The version first: while it exists, its tag and derived
		// manifest are immutable (Append refuses to remove them).
		evs = append(evs, eventlog.New(eventlog.TypeVersionDeleted, repo, eventlog.VersionDeleted{Version: v.Version}))
	}
	evs = append(evs, eventlog.New(eventlog.TypeTagDeleted, repo, eventlog.TagDeleted{Tag: v.Version}))
	if v.NativeSHA256 != "" {
		// The derived manifest goes too, unless /v2/ clients tagged it
		// under other names, which they may keep.
		tags, err := r.log.TagsOf(ctx, repo, v.Manifest.Digest)
		if err != nil {
			return err
		}
		if len(tags) <= 1 {
			evs = append(evs, eventlog.New(eventlog.TypeManifestDeleted, repo, eventlog.ManifestDeleted{Digest: v.Manifest.Digest}))
		}
	}
	if _, err := r.log.Append(ctx, evs...); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
