package registry

import (
	"net/url"
	"strconv"
)

// Location paths, built in one place. They are relative to the host the
// client used, which every client resolves against its request URL.

func blobURL(repo, d string) string { return "/v2/" + repo + "/blobs/" + d }

func uploadURL(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

func manifestURL(repo, ref string) string { return "/v2/" + repo + "/manifests/" + ref }

// nextLink is the RFC 8288 Link header of a paginated list.
func nextLink(path string, n int, last string) string {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	return "<" + path + "?" + q.Encode() + `>; rel="next"`
}

// versionURL is a native version's URL; "/-/" ends the repository name
// (see routes).
func versionURL(repo, version string) string {
	return repositoriesPrefix + repo + "/" + nativeSeparator + "/versions/" + version
}
