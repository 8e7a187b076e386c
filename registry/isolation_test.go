package registry_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
)

// native is the native API URL of a repository's sub-resource.
func native(repo, rest string) string { return "/api/v1/repositories/" + repo + "/-/" + rest }

// titledManifest is an OCI image manifest with cfg as config and one
// layer of the given media type and digest, titled name.
func titledManifest(cfg, layerType, layer string, size int, name string) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":%d,"annotations":{"org.opencontainers.image.title":%q}}]}`,
		ociManifest, cfg, layerType, layer, size, name))
}

// TestRepositoryServesOnlyItsOwnBytes: a manifest in repository a that
// names a blob only repository b holds, by any digest and with any layer
// type that lets the put through, never makes a serve b's bytes.
func TestRepositoryServesOnlyItsOwnBytes(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		for _, sparse := range []bool{false, true} {
			t.Run(fmt.Sprintf("sparse=%v", sparse), func(t *testing.T) {
				s := b.server(t, func(o *registry.Options) { o.AllowSparse = sparse })
				secret := randomBytes(t, 70_000) // over the small-blob path
				s.pushBlob("victim", secret)
				cfg := s.pushBlob("attacker", []byte("{}"))
				layerTypes := []string{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}
				if sparse {
					layerTypes = append(layerTypes, "application/vnd.oci.image.layer.v1.tar")
				}
				for i, lt := range layerTypes {
					for j, d := range []string{sha256Of(secret), blake3Of(secret)} {
						tag := fmt.Sprintf("v%d-%d", i, j)
						m := titledManifest(cfg, lt, d, len(secret), "secret.bin")
						expect(t, s.do("PUT", "/v2/attacker/manifests/"+tag, m, "Content-Type: "+ociManifest), http.StatusCreated)
						expect(t, s.do("GET", native("attacker", "versions/"+tag+"/files/secret.bin"), nil), http.StatusNotFound, "FILE_UNKNOWN")
						expect(t, s.do("GET", native("attacker", "versions/"+tag+"/files/secret.bin"), nil, "Range: bytes=0-9"), http.StatusNotFound, "FILE_UNKNOWN")
						files := s.do("GET", native("attacker", "versions/"+tag+"/files"), nil)
						expect(t, files, http.StatusOK)
						if strings.Contains(string(files.body), "secret.bin") || strings.Contains(string(files.body), blake3Of(secret)) {
							t.Fatalf("the file list names bytes the repository does not hold: %s", files.body)
						}
					}
				}
				for _, d := range []string{sha256Of(secret), blake3Of(secret), sha512Of(secret)} {
					expect(t, s.do("GET", "/v2/attacker/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
					expect(t, s.do("HEAD", "/v2/attacker/blobs/"+d, nil), http.StatusNotFound)
					expect(t, s.do("GET", "/v2/attacker/blobs/"+d, nil, "Range: bytes=0-9"), http.StatusNotFound, "BLOB_UNKNOWN")
					expect(t, s.do("GET", native("attacker", "blobs/"+d), nil), http.StatusNotFound, "BLOB_UNKNOWN")
				}
				// The owner still reads its bytes.
				r := s.do("GET", "/v2/victim/blobs/"+sha256Of(secret), nil)
				expect(t, r, http.StatusOK)
				if string(r.body) != string(secret) {
					t.Fatal("the owner's blob changed")
				}
			})
		}
	})
}

// TestMountWithoutFrom: a mount names its source; without from, only a
// blob the target already holds is mounted, anything else falls back to
// an upload session and links nothing.
func TestMountWithoutFrom(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		secret := randomBytes(t, 1000)
		d := s.pushBlob("victim", secret)
		r := s.do("POST", "/v2/attacker/blobs/uploads/?mount="+d, nil)
		expect(t, r, http.StatusAccepted)
		if !strings.Contains(r.Header.Get("Location"), "/v2/attacker/blobs/uploads/") {
			t.Fatalf("fallback Location %q", r.Header.Get("Location"))
		}
		expect(t, s.do("GET", "/v2/attacker/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
		// By its BLAKE3 digest too.
		expect(t, s.do("POST", "/v2/attacker/blobs/uploads/?mount="+blake3Of(secret), nil), http.StatusAccepted)
		expect(t, s.do("GET", "/v2/attacker/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
		// A blob the target holds mounts without from: 201.
		own := s.pushBlob("attacker", []byte("mine"))
		r = s.do("POST", "/v2/attacker/blobs/uploads/?mount="+own, nil)
		expect(t, r, http.StatusCreated)
		if r.Header.Get("Docker-Content-Digest") != own {
			t.Fatalf("Docker-Content-Digest %q", r.Header.Get("Docker-Content-Digest"))
		}
		// Naming the source mounts it.
		expect(t, s.do("POST", "/v2/friend/blobs/uploads/?mount="+d+"&from=victim", nil), http.StatusCreated)
		expect(t, s.do("GET", "/v2/friend/blobs/"+d, nil), http.StatusOK)
		// A source that does not hold it: fallback.
		expect(t, s.do("POST", "/v2/other/blobs/uploads/?mount="+d+"&from=attacker", nil), http.StatusAccepted)
		expect(t, s.do("GET", "/v2/other/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

// TestBlobDeleteRefusedWhileReferenced: a blob a manifest in the same
// repository needs (a tagged image's layer, a native version's file) is
// not deleted; once the manifest is gone, it is.
func TestBlobDeleteRefusedWhileReferenced(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		m, md := s.pushImage("app", "1", "")
		var parsed struct {
			Config struct{ Digest string }
			Layers []struct{ Digest string }
		}
		mustJSON(t, m, &parsed)
		layer := parsed.Layers[0].Digest
		for _, d := range []string{layer, parsed.Config.Digest} {
			r := s.do("DELETE", "/v2/app/blobs/"+d, nil)
			expect(t, r, http.StatusConflict, "DENIED")
			if !strings.Contains(string(r.body), md) {
				t.Fatalf("the refusal does not name the manifest that uses the blob: %s", r.body)
			}
		}
		expect(t, s.do("GET", "/v2/app/manifests/1", nil, "Accept: "+ociManifest), http.StatusOK)
		expect(t, s.do("GET", "/v2/app/blobs/"+layer, nil), http.StatusOK)
		// The same layer in another repository is that repository's own.
		expect(t, s.do("POST", "/v2/other/blobs/uploads/?mount="+layer+"&from=app", nil), http.StatusCreated)
		expect(t, s.do("DELETE", "/v2/other/blobs/"+layer, nil), http.StatusAccepted)
		// Deleting the manifest frees the blob.
		expect(t, s.do("DELETE", "/v2/app/manifests/"+md, nil), http.StatusAccepted)
		expect(t, s.do("DELETE", "/v2/app/blobs/"+layer, nil), http.StatusAccepted)
		expect(t, s.do("GET", "/v2/app/blobs/"+layer, nil), http.StatusNotFound)

		// A native version's file: immutable on both surfaces.
		data := randomBytes(t, 5000)
		pub := s.do("PUT", native("tools", "versions/1.0/files/tool.bin"), data)
		expect(t, pub, http.StatusCreated)
		oci := decodePublished(t, pub).OCIDigest
		expect(t, s.do("DELETE", "/v2/tools/blobs/"+sha256Of(data), nil), http.StatusConflict, "DENIED")
		expect(t, s.do("DELETE", "/v2/tools/blobs/"+blake3Of(data), nil), http.StatusConflict, "DENIED")
		expect(t, s.do("GET", "/v2/tools/manifests/1.0", nil, "Accept: "+ociManifest), http.StatusOK)
		expect(t, s.do("GET", "/v2/tools/blobs/"+sha256Of(data), nil), http.StatusOK)
		expect(t, s.do("DELETE", "/v2/tools/manifests/"+oci, nil), http.StatusConflict, "DENIED")
		// Deleting the version releases its file.
		expect(t, s.do("DELETE", native("tools", "versions/1.0"), nil), http.StatusNoContent)
		expect(t, s.do("GET", "/v2/tools/manifests/1.0", nil), http.StatusNotFound)
		expect(t, s.do("DELETE", "/v2/tools/blobs/"+sha256Of(data), nil), http.StatusAccepted)
	})
}

// TestDeleteRacesManifestPut: a layer delete and a manifest put naming it,
// racing, never leave a manifest whose layer is gone.
func TestDeleteRacesManifestPut(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		cfg := s.pushBlob("race", []byte("{}"))
		wins := map[string]int{}
		defer func() { t.Logf("wins: %v", wins) }()
		for i := range 25 {
			layer := randomBytes(t, 100)
			d := s.pushBlob("race", layer)
			m := titledManifest(cfg, "application/vnd.oci.image.layer.v1.tar", d, len(layer), "f")
			var put, del response
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				put = s.do("PUT", fmt.Sprintf("/v2/race/manifests/t%d", i), m, "Content-Type: "+ociManifest)
			}()
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i%4) * time.Millisecond) // vary who goes first
				del = s.do("DELETE", "/v2/race/blobs/"+d, nil)
			}()
			wg.Wait()
			switch {
			case put.StatusCode == http.StatusCreated && del.StatusCode == http.StatusConflict:
				wins["put"]++
				expect(t, s.do("GET", "/v2/race/blobs/"+d, nil), http.StatusOK)
			case put.StatusCode == http.StatusBadRequest && put.errCode() == "MANIFEST_BLOB_UNKNOWN" && del.StatusCode == http.StatusAccepted:
				wins["delete"]++
				expect(t, s.do("GET", fmt.Sprintf("/v2/race/manifests/t%d", i), nil), http.StatusNotFound)
			default:
				t.Fatalf("round %d: put %d %s, delete %d %s", i, put.StatusCode, put.body, del.StatusCode, del.body)
			}
		}
	})
}

// TestTagPutRacesPublish: a /v2/ tag push and a native publish of the same
// name, racing: exactly one wins, the other gets 409, and what is served
// is the winner's.
func TestTagPutRacesPublish(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		cfg := s.pushBlob("both", []byte("{}"))
		layer := randomBytes(t, 100)
		ld := s.pushBlob("both", layer)
		m := titledManifest(cfg, "application/vnd.oci.image.layer.v1.tar", ld, len(layer), "f")
		md := sha256Of(m)
		wins := map[string]int{}
		for i := range 25 {
			v := fmt.Sprintf("%d.0", i)
			var put, pub response
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i%6) * 4 * time.Millisecond) // vary who goes first: a publish stores more
				put = s.do("PUT", "/v2/both/manifests/"+v, m, "Content-Type: "+ociManifest)
			}()
			go func() {
				defer wg.Done()
				pub = s.do("PUT", native("both", "versions/"+v+"/files/native.txt"), []byte("native "+v))
			}()
			wg.Wait()
			got := s.do("GET", "/v2/both/manifests/"+v, nil, "Accept: "+ociManifest)
			expect(t, got, http.StatusOK)
			switch {
			case put.StatusCode == http.StatusCreated && pub.StatusCode == http.StatusConflict:
				wins["v2"]++
				if got.Header.Get("Docker-Content-Digest") != md {
					t.Fatalf("round %d: /v2/ won but the tag points at %s", i, got.Header.Get("Docker-Content-Digest"))
				}
			case pub.StatusCode == http.StatusCreated && put.StatusCode == http.StatusConflict:
				wins["native"]++
				if got.Header.Get("Docker-Content-Digest") != decodePublished(t, pub).OCIDigest {
					t.Fatalf("round %d: the publish won but the tag points at %s", i, got.Header.Get("Docker-Content-Digest"))
				}
				expect(t, s.do("GET", native("both", "versions/"+v+"/files/native.txt"), nil), http.StatusOK)
			default:
				t.Fatalf("round %d: /v2/ put %d %s, publish %d %s", i, put.StatusCode, put.body, pub.StatusCode, pub.body)
			}
		}
		t.Logf("wins: %v", wins)
	})
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// TestVerifyReportsManifestsMissingBlobs: a manifest whose layer's bytes
// are gone, or whose layer is no longer linked (a database edited by hand:
// the API refuses it), is reported by verify.
func TestVerifyReportsManifestsMissingBlobs(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		layer := randomBytes(t, registry.DefaultInlineMax+1) // a file in the store
		md := s.pushLayers("app", "1", layer).digest
		rep, err := registry.Verify(context.Background(), s.log, s.blobs, registry.VerifyOptions{Scratch: scratchLog(t)})
		if err != nil || len(rep.Problems) != 0 {
			t.Fatalf("clean store: %v %v", rep.Problems, err)
		}
		if err := s.blobs.Delete(context.Background(), digest.Digest(sha256Of(layer))); err != nil {
			t.Fatal(err)
		}
		rep, err = registry.Verify(context.Background(), s.log, s.blobs, registry.VerifyOptions{Scratch: scratchLog(t)})
		if err != nil || !anyContains(rep.Problems, md, "missing or damaged") {
			t.Fatalf("verify after losing a layer's bytes: %v %v", rep.Problems, err)
		}
	})
	t.Run("unlinked by hand", func(t *testing.T) {
		s, path := sqliteServerAt(t)
		m, md := s.pushImage("app", "1", "")
		var parsed struct{ Layers []struct{ Digest string } }
		mustJSON(t, m, &parsed)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`DELETE FROM blob_links WHERE repo = 'app' AND sha256 = ?`, parsed.Layers[0].Digest); err != nil {
			t.Fatal(err)
		}
		rep, err := registry.Verify(context.Background(), s.log, s.blobs, registry.VerifyOptions{Scratch: scratchLog(t)})
		if err != nil || !anyContains(rep.Problems, md, "no longer links") {
			t.Fatalf("verify after unlinking a needed layer by hand: %v %v", rep.Problems, err)
		}
	})
}

func anyContains(lines []string, subs ...string) bool {
	for _, l := range lines {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestIndexKeepsItsChildren: a manifest an index in the same repository
// names is not deleted while the index exists (409), and verify reports an
// index whose child is gone (a database edited by hand).
func TestIndexKeepsItsChildren(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		m, md := s.pushImage("app", "amd64", "")
		ix := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}`, ociIndex, ociManifest, md, len(m)))
		expect(t, s.do("PUT", "/v2/app/manifests/latest", ix, "Content-Type: "+ociIndex), http.StatusCreated)
		r := s.do("DELETE", "/v2/app/manifests/"+md, nil)
		expect(t, r, http.StatusConflict, "DENIED")
		if !strings.Contains(string(r.body), sha256Of(ix)) {
			t.Fatalf("the refusal does not name the index: %s", r.body)
		}
		expect(t, s.do("GET", "/v2/app/manifests/"+md, nil, "Accept: "+ociManifest), http.StatusOK)
		// Deleting the tag alone leaves the index, which still holds it.
		expect(t, s.do("DELETE", "/v2/app/manifests/amd64", nil), http.StatusAccepted)
		expect(t, s.do("DELETE", "/v2/app/manifests/"+md, nil), http.StatusConflict, "DENIED")
		expect(t, s.do("DELETE", "/v2/app/manifests/"+sha256Of(ix), nil), http.StatusAccepted)
		expect(t, s.do("DELETE", "/v2/app/manifests/"+md, nil), http.StatusAccepted)
	})
	t.Run("verify", func(t *testing.T) {
		s, path := sqliteServerAt(t)
		m, md := s.pushImage("app", "amd64", "")
		ix := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d}]}`, ociIndex, ociManifest, md, len(m)))
		expect(t, s.do("PUT", "/v2/app/manifests/latest", ix, "Content-Type: "+ociIndex), http.StatusCreated)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`DELETE FROM manifests WHERE repo = 'app' AND digest = ?`, md); err != nil {
			t.Fatal(err)
		}
		rep, err := registry.Verify(context.Background(), s.log, s.blobs, registry.VerifyOptions{Scratch: scratchLog(t)})
		if err != nil || !anyContains(rep.Problems, "index app@"+sha256Of(ix), md, "no longer holds") {
			t.Fatalf("verify after deleting an index's child by hand: %v %v", rep.Problems, err)
		}
	})
}

// sqliteServerAt is a server on SQLite at a path the test knows, for tests
// that edit the database by hand, as an attacker or a careless operator.
func sqliteServerAt(t *testing.T) (*testServer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return serveOnFS(t, l), path
}
