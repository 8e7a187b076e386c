package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// pushV2 stores data as a blob of repo with a monolithic /v2/ upload, as
// an OCI client would, and returns its digest.
func pushV2(t *testing.T, url, repo string, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := http.Post(url+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob push: %d", resp.StatusCode)
	}
	return d
}

func putManifestV2(t *testing.T, url, repo, ref, mediaType, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest push: %d", resp.StatusCode)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// TestPullOCIImageWithoutTitles: a container image pushed over /v2/ (no
// title annotations) is pulled by the client as its layers, each at
// blobs/sha256/<hex> and verified; an index pushed over /v2/ is a version
// with no files, which pulls as nothing rather than failing.
func TestPullOCIImageWithoutTitles(t *testing.T) {
	url := newServer(t)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	l1, l2 := randomBytes(t, 70_000), randomBytes(t, 300)
	cd, d1, d2 := pushV2(t, url, "lib/app", cfg), pushV2(t, url, "lib/app", l1), pushV2(t, url, "lib/app", l2)
	const gz = "application/vnd.oci.image.layer.v1.tar+gzip"
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":%q,"digest":%q,"size":%d},{"mediaType":%q,"digest":%q,"size":%d}]}`,
		cd, len(cfg), gz, d1, len(l1), gz, d2, len(l2))
	md := putManifestV2(t, url, "lib/app", "1.0", "application/vnd.oci.image.manifest.v1+json", m)

	dir := t.TempDir()
	res, err := newClient(t, url).Pull(t.Context(), "lib/app", "1.0", dir)
	if err != nil {
		t.Fatalf("pull of an image without titles: %v", err)
	}
	if len(res.Files) != 2 || res.OCIDigest != md {
		t.Fatalf("pulled %+v", res)
	}
	for d, want := range map[string][]byte{d1: l1, d2: l2} {
		got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d[len("sha256:"):]))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("layer %s: %v (%d bytes, want %d)", d, err, len(got), len(want))
		}
	}

	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}]}`, md, len(m))
	putManifestV2(t, url, "lib/app", "multi", "application/vnd.oci.image.index.v1+json", idx)
	empty := t.TempDir()
	res, err = newClient(t, url).Pull(t.Context(), "lib/app", "multi", empty)
	if err != nil || len(res.Files) != 0 {
		t.Fatalf("pull of an index: %d files, %v", len(res.Files), err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("pull of an index wrote %d entries", len(entries))
	}
}
