package registry_test

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/artifact-store/artifact-store/registry"
)

// TestReplayAfterHTTPTraffic drives random pushes, tags, re-tags and
// deletes through the HTTP API, then rebuilds the views from the log and
// checks both the views and what clients see are unchanged.
func TestReplayAfterHTTPTraffic(t *testing.T) { forBackends(t, testReplayAfterHTTPTraffic) }

func testReplayAfterHTTPTraffic(t *testing.T, b backend) {
	s := b.server(t)
	rng := rand.New(rand.NewSource(7))
	repos := []string{"a", "b/c"}
	var digests []string
	for i := 0; i < 60; i++ {
		repo := repos[rng.Intn(len(repos))]
		switch op := rng.Intn(6); {
		case op < 2 || len(digests) == 0:
			_, d := s.pushImage(repo, fmt.Sprintf("t%d", rng.Intn(5)), "")
			digests = append(digests, repo+"@"+d)
		case op == 2:
			ref := digests[rng.Intn(len(digests))]
			r := s.do("GET", "/v2/"+ref[:len(ref)-72]+"/manifests/"+ref[len(ref)-71:], nil)
			if r.StatusCode == 200 {
				s.do("PUT", "/v2/"+repo+"/manifests/"+fmt.Sprintf("t%d", rng.Intn(5)), r.body, "Content-Type: "+ociManifest)
			}
		case op == 3:
			s.do("DELETE", "/v2/"+repo+"/manifests/"+fmt.Sprintf("t%d", rng.Intn(5)), nil)
		case op == 4:
			ref := digests[rng.Intn(len(digests))]
			s.do("DELETE", "/v2/"+ref[:len(ref)-72]+"/manifests/"+ref[len(ref)-71:], nil)
		case op == 5:
			s.pushBlob(repo, randomBytes(t, 10))
			loc := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil).Header.Get("Location")
			s.do("PATCH", loc, []byte("abandoned"))
		}
	}
	seen := func() map[string]string {
		out := map[string]string{}
		for _, repo := range repos {
			out[repo+" tags"] = string(s.do("GET", "/v2/"+repo+"/tags/list", nil).body)
			for i := 0; i < 5; i++ {
				r := s.do("GET", fmt.Sprintf("/v2/%s/manifests/t%d", repo, i), nil)
				out[fmt.Sprintf("%s t%d", repo, i)] = fmt.Sprint(r.StatusCode, r.Header.Get("Docker-Content-Digest"))
			}
		}
		out["catalog"] = string(s.do("GET", "/v2/_catalog", nil).body)
		return out
	}
	before, views := seen(), dump(t, s)
	// The views a replay would build are the live ones: verify agrees.
	if rep, err := registry.Verify(t.Context(), s.log, s.blobs, registry.VerifyOptions{Scratch: scratchLog(t)}); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("verify after random traffic: %v %q", err, rep.Problems)
	}
	if n, err := s.log.Replay(t.Context()); err != nil || n == 0 {
		t.Fatalf("replay: %d events, %v", n, err)
	}
	if after := dump(t, s); !reflect.DeepEqual(views, after) {
		t.Fatalf("views differ after replay:\nbefore %v\nafter  %v", views, after)
	}
	if after := seen(); !reflect.DeepEqual(before, after) {
		t.Fatalf("clients see different state after replay:\nbefore %v\nafter  %v", before, after)
	}
}

func dump(t *testing.T, s *testServer) map[string][]string {
	d, err := s.log.Dump(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
