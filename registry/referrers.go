package registry

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
	"github.com/gorilla/mux"
	godigest "github.com/opencontainers/go-digest"
)

// maxReferrersBytes bounds one page of referrers by the size of their
// annotations (each referrer's descriptor carries its manifest's): a page
// ends once they pass it, with a Link to the rest.
const maxReferrersBytes = 4 << 20

// referrers lists the manifests whose subject is the given digest, as an
// OCI image index, optionally filtered by artifactType. An unknown subject
// (or repository) has an empty list, not a 404: referrers may be pushed
// before their subject.
//
// The list is paginated as the spec asks when it "cannot be returned in a
// single manifest": at most n descriptors (default and most 1000) and
// about 4 MiB of annotations per answer, in digest order, with an RFC 8288
// Link (rel="next") to the rest; the link's last parameter is the page's
// final digest.
// Spec: #listing-referrers
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request) error {
	repo := mux.Vars(req)["name"]
	d, err := parseDigest(mux.Vars(req)["digest"])
	if err != nil {
		return err
	}
	v, err := queryValues(req)
	if err != nil {
		return err
	}
	at := v.Get("artifactType")
	if err := textParam("artifactType", at); err != nil {
		return err
	}
	n, last, err := page(req)
	if err != nil {
		return err
	}
	var ms []eventlog.Manifest
	if n > 0 {
		var more bool
		ms, more, err = r.log.Referrers(req.Context(), eventlog.ReferrersQuery{
			Repo: repo, Subject: d.String(), ArtifactType: at, After: last, Limit: n, MaxBytes: maxReferrersBytes,
		})
		if err != nil {
			return err
		}
		if more {
			q := url.Values{"n": {strconv.Itoa(n)}, "last": {ms[len(ms)-1].Digest}}
			if at != "" {
				q.Set("artifactType", at)
			}
			w.Header().Set("Link", "<"+req.URL.Path+"?"+q.Encode()+`>; rel="next"`)
		}
	}
	descs := make([]manifests.Descriptor, 0, len(ms))
	for _, m := range ms {
		descs = append(descs, manifests.Descriptor{
			MediaType: m.MediaType, Digest: godigest.Digest(m.Digest), Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		})
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	// A struct of its own: the manifests list is required even when empty.
	return writeJSON(w, manifests.MediaTypeImageIndex, struct {
		SchemaVersion int                    `json:"schemaVersion"`
		MediaType     string                 `json:"mediaType"`
		Manifests     []manifests.Descriptor `json:"manifests"`
	}{2, manifests.MediaTypeImageIndex, descs})
}
