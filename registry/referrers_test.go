package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
)

// linkNext is the target of a Link: <...>; rel="next" header, or "".
var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// walkReferrers follows a referrers list from path through its Link
// headers and returns every digest in order, and the pages' sizes.
func walkReferrers(t *testing.T, s *testServer, path string, filtered bool) (digests []string, pages []int) {
	t.Helper()
	for len(pages) < 100 {
		r := s.do("GET", path, nil)
		expect(t, r, http.StatusOK)
		if filtered != (r.Header.Get("OCI-Filters-Applied") == "artifactType") {
			t.Fatalf("%s: OCI-Filters-Applied %q", path, r.Header.Get("OCI-Filters-Applied"))
		}
		var ix struct {
			Manifests []struct{ Digest string }
		}
		if err := json.Unmarshal(r.body, &ix); err != nil {
			t.Fatal(err)
		}
		for _, m := range ix.Manifests {
			digests = append(digests, m.Digest)
		}
		pages = append(pages, len(ix.Manifests))
		link := r.Header.Get("Link")
		if link == "" {
			return digests, pages
		}
		m := linkNext.FindStringSubmatch(link)
		if m == nil {
			t.Fatalf("Link %q", link)
		}
		path = m[1]
	}
	t.Fatal("no end after 100 pages")
	return nil, nil
}

// TestReferrersPagination: a subject's referrers come in pages linked by
// Link headers, bounded by n and by size, each once, and the artifactType
// filter holds on every page.
func TestReferrersPagination(t *testing.T) { forBackends(t, testReferrersPagination) }

func testReferrersPagination(t *testing.T, b backend) {
	s := b.server(t)
	_, subject := s.pushImage("r", "base", "")
	empty := s.pushBlob("r", []byte("{}"))
	var all, sboms []string
	for i := 0; i < 25; i++ {
		at := "application/spdx+json"
		if i%3 != 0 {
			at = "application/vnd.dev.sig"
		}
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":1},"annotations":{"i":"%d"}}`,
			ociManifest, at, empty, ociManifest, subject, i))
		expect(t, s.do("PUT", "/v2/r/manifests/"+sha256Of(m), m, "Content-Type: "+ociManifest), http.StatusCreated)
		all = append(all, sha256Of(m))
		if i%3 == 0 {
			sboms = append(sboms, sha256Of(m))
		}
	}
	sort.Strings(all)
	sort.Strings(sboms)
	got, pages := walkReferrers(t, s, "/v2/r/referrers/"+subject+"?n=4", false)
	if strings.Join(got, ",") != strings.Join(all, ",") || len(pages) != 7 || pages[0] != 4 || pages[6] != 1 {
		t.Fatalf("walked %d referrers in pages %v; want the 25 in digest order, 4 a page", len(got), pages)
	}
	got, pages = walkReferrers(t, s, "/v2/r/referrers/"+subject+"?n=3&artifactType=application/spdx%2Bjson", true)
	if strings.Join(got, ",") != strings.Join(sboms, ",") || len(pages) != 3 {
		t.Fatalf("walked %d sboms in pages %v, want %d", len(got), pages, len(sboms))
	}
	// Without n, one page holds them all and has no Link.
	if got, pages = walkReferrers(t, s, "/v2/r/referrers/"+subject, false); len(got) != 25 || len(pages) != 1 {
		t.Fatalf("unpaginated: %d in pages %v", len(got), pages)
	}
	r := s.do("GET", "/v2/r/referrers/"+subject+"?n=0", nil)
	expect(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"manifests":[]`) || r.Header.Get("Link") != "" {
		t.Fatalf("n=0: %s, Link %q", r.body, r.Header.Get("Link"))
	}
	expect(t, s.do("GET", "/v2/r/referrers/"+subject+"?n=x", nil), http.StatusBadRequest, "PAGINATION_NUMBER_INVALID")

	// Referrers with large annotations (1 MiB each, in values small
	// enough for PostgreSQL's annotation index): a page ends by size.
	other := fmt.Sprintf("sha256:%064x", 7)
	big := map[string]string{}
	for k := 0; k < 256; k++ {
		big[fmt.Sprintf("k%03d", k)] = strings.Repeat("a", 4096)
	}
	for i := 0; i < 6; i++ {
		d := fmt.Sprintf("sha256:%064x", 100+i)
		if _, err := s.log.Append(context.Background(), committedEvent(d), eventlog.New(eventlog.TypeManifestPut, "r", eventlog.ManifestPut{
			Digest: d, SHA256: d, MediaType: ociManifest, Size: 1, Subject: other, Annotations: big,
		})); err != nil {
			t.Fatal(err)
		}
	}
	got, pages = walkReferrers(t, s, "/v2/r/referrers/"+other, false)
	if len(got) != 6 || len(pages) < 2 || pages[0] > 5 {
		t.Fatalf("6 referrers of 1 MiB each came in pages %v", pages)
	}
}
