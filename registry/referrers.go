package registry

import (
	"net/http"

	"github.com/artifact-store/artifact-store/manifests"
	"github.com/gorilla/mux"
	godigest "github.com/opencontainers/go-digest"
)

// referrers lists the manifests whose subject is the given digest, as an
// OCI image index, optionally filtered by artifactType. An unknown subject
// (or repository) has an empty list, not a 404: referrers may be pushed
// before their subject.
// Spec: #listing-referrers
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request) error {
	repo := mux.Vars(req)["name"]
	d, err := parseDigest(mux.Vars(req)["digest"])
	if err != nil {
		return err
	}
	at := req.URL.Query().Get("artifactType")
	if err := textParam("artifactType", at); err != nil {
		return err
	}
	ms, err := r.log.Referrers(req.Context(), repo, d.String(), at)
	if err != nil {
		return err
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
