package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pushSmall pushes a small image (a config and a layer) as repo:tag over
// /v2/ (images_test.go).
func pushSmall(t *testing.T, s *server, repo, tag string) image {
	t.Helper()
	im := newImage(repo, []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","tag":%q}`, tag)), random(t, 3000))
	if err := pushImage(http.DefaultClient, s.url(""), im, tag); err != nil {
		t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
	return im
}

// get answers the status and body of a GET.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	r := request(t, "GET", url, nil, "Accept: application/vnd.oci.image.manifest.v1+json")
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, b
}

// tableRows are the first n cells of each row of the table that out
// prints under a header line starting with header: the lines, up to the
// first that is not one, whose columns start where the header's do.
func tableRows(out, header string, n int) []string {
	lines := strings.Split(out, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, header) })
	if i < 0 {
		return nil
	}
	var starts []int // of columns 2 to n in the header
	for _, m := range regexp.MustCompile(`  +\S`).FindAllStringIndex(lines[i], n-1) {
		starts = append(starts, m[1]-1)
	}
	var rows []string
	for _, l := range lines[i+1:] {
		for _, at := range starts {
			if len(l) <= at || l[at-2:at] != "  " || l[at] == ' ' {
				slices.Sort(rows)
				return rows
			}
		}
		rows = append(rows, strings.Join(strings.Fields(l)[:n], " "))
	}
	slices.Sort(rows)
	return rows
}

// TestRetentionCommands: a policy set from a file with "retention set"
// plans, runs, lists its deletions in the trash, and "restore" brings a tag
// back whole; storage and history show what happened; a bad policy file is
// refused with the server's message.
func TestRetentionCommands(t *testing.T) {
	s := start(t, t.TempDir(), freeAddr(t))
	server := s.url("")
	// cli runs a command with --server before its arguments.
	cli := func(args ...string) (string, string, error) {
		t.Helper()
		n := 1
		if args[0] == "retention" {
			n = 2
		}
		return client(t, slices.Concat(args[:n], []string{"--server", server}, args[n:])...)
	}
	v1 := pushSmall(t, s, "team/app", "v1")
	v2 := pushSmall(t, s, "team/app", "v2")
	v3 := pushSmall(t, s, "team/app", "v3")
	pushSmall(t, s, "other/x", "latest") // no policy reaches it

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("name: keep-last\nrepositories: [\"team/**\"]\ntags:\n  keepLast: 1\n"), 0o644)
	out, errOut, err := cli("retention", "set", policy)
	if err != nil || !strings.HasPrefix(out, "set retention policy keep-last on team/**: tags: keep last 1\n") {
		t.Fatalf("retention set: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	if out, _, err := cli("retention", "list"); err != nil || !regexp.MustCompile(`(?m)^keep-last\s+team/\*\*\s+tags: keep last 1$`).MatchString(out) {
		t.Errorf("retention list: %v\n%s", err, out)
	}

	// The plan: the two older tags, and their manifests with them.
	want := []string{
		"team/app manifest " + v1.digest, "team/app manifest " + v2.digest,
		"team/app tag v1", "team/app tag v2",
	}
	slices.Sort(want)
	out, errOut, err = cli("retention", "plan")
	if got := tableRows(out, "REPOSITORY", 3); err != nil || !slices.Equal(got, want) || !strings.Contains(out, "\ntotal: 4 deletions, freeing ") {
		t.Fatalf("retention plan: %v\nrows %q, want %q\nstdout %s\nstderr %s", err, got, want, out, errOut)
	}
	if !regexp.MustCompile(`team/app\s+tag\s+v1\s+keep-last\s+tags\s+0 B\s+not among the last 1 by push`).MatchString(out) {
		t.Errorf("retention plan does not show the policy, rule, bytes and reason of v1:\n%s", out)
	}

	out, errOut, err = cli("retention", "run")
	if got := tableRows(out, "REPOSITORY", 3); err != nil || !slices.Equal(got, want) || !strings.Contains(out, "deleted 4 of 4 planned deletions") {
		t.Fatalf("retention run: %v\nrows %q, want %q\nstdout %s\nstderr %s", err, got, want, out, errOut)
	}
	for _, ref := range []string{"v1", "v2", v1.digest, v2.digest} {
		if code, _ := get(t, s.url("/v2/team/app/manifests/"+ref)); code != http.StatusNotFound {
			t.Errorf("manifest %s after the run: %d, want 404", ref, code)
		}
	}
	if code, b := get(t, s.url("/v2/team/app/manifests/v3")); code != http.StatusOK || !bytes.Equal(b, v3.manifest) {
		t.Errorf("the kept v3 after the run: %d", code)
	}

	out, _, err = cli("retention", "trash", "--repo", "team/app")
	if got := tableRows(out, "DELETED", 4); err != nil || len(got) != 4 || !strings.Contains(out, "artifactstore restore team/app:v1\n") ||
		!strings.Contains(out, "artifactstore restore team/app@"+v2.digest+"\n") {
		t.Fatalf("retention trash: %v\n%s", err, out)
	}

	// Restoring the tag brings its manifest back with it, blobs and all.
	out, errOut, err = cli("restore", "team/app:v1")
	if err != nil || out != "restored manifest team/app@"+v1.digest+"\nrestored tag team/app:v1 -> "+v1.digest+"\n" {
		t.Fatalf("restore: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	if code, b := get(t, s.url("/v2/team/app/manifests/v1")); code != http.StatusOK || !bytes.Equal(b, v1.manifest) {
		t.Fatalf("v1 after the restore: %d %s", code, b)
	}
	for _, blob := range [][]byte{v1.config, v1.layers[0]} {
		if code, b := get(t, s.url("/v2/team/app/blobs/"+sha(blob))); code != http.StatusOK || !bytes.Equal(b, blob) {
			t.Errorf("blob %s of v1 after the restore: %d, %d bytes", sha(blob), code, len(b))
		}
	}
	if _, errOut, err := cli("restore", "team/app:v1"); err == nil || !strings.Contains(errOut, "404 Not Found: DELETION_UNKNOWN: team/app has no tag \"v1\" deleted by retention") {
		t.Errorf("restoring twice: %v %s", err, errOut)
	}
	for _, args := range [][]string{{"team/app"}, {"team/app:v1", "--version", "1.0"}, {"team/app:v1", "team/app:v2"}} {
		if _, errOut, err := cli(append([]string{"restore"}, args...)...); err == nil || !strings.Contains(errOut, "REPO:TAG, REPO@DIGEST or REPO --version V") {
			t.Errorf("restore %q: %v %s", args, err, errOut)
		}
	}
	if out, _, _ := cli("retention", "trash"); strings.Contains(out, "team/app:v1\n") || !strings.Contains(out, "team/app:v2\n") {
		t.Errorf("the trash after restoring v1 still lists it, or no longer v2:\n%s", out)
	}

	// Storage counts the blobs each repository holds: other/x an image's
	// config, layer and manifest; team/app the configs and layers of its
	// three images, linked until a collection, and the manifests of v1
	// and v3.
	out, _, err = cli("storage")
	if got := tableRows(out, "REPOSITORY", 2); err != nil || !slices.Equal(got, []string{"other/x 3", "team/app 8"}) {
		t.Errorf("storage: %v, rows %q, want other/x 3 and team/app 8\n%s", err, got, out)
	}

	out, _, err = cli("retention", "history")
	if err != nil || !regexp.MustCompile(`(?m)^\S+\s+\d+\s+set\s+keep-last\s+anonymous\s+on team/\*\*: tags: keep last 1$`).MatchString(out) {
		t.Errorf("retention history: %v\n%s", err, out)
	}

	out, _, err = cli("retention", "simulate", "--days", "1", "--step", "1h", policy)
	if err != nil || !regexp.MustCompile(`(?m)^\d+ deletions?, \d+ pulled again afterwards \(25 steps of 1h0m0s from `).MatchString(out) {
		t.Errorf("retention simulate: %v\n%s", err, out)
	}

	// A misspelt rule is refused by the server, whose message is shown.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("repositories: [\"team/**\"]\ntags:\n  keeplast: 1\n"), 0o644)
	if _, errOut, err := cli("retention", "set", bad); err == nil || !strings.Contains(errOut, "400 Bad Request: POLICY_INVALID: ") || !strings.Contains(errOut, "field keeplast not found") {
		t.Errorf("retention set of a bad policy: %v\n%s", err, errOut)
	}

	if out, _, err := cli("retention", "remove", "keep-last"); err != nil || out != "removed retention policy keep-last\n" {
		t.Errorf("retention remove: %v %q", err, out)
	}
	if _, errOut, err := cli("retention", "show", "keep-last"); err == nil || !strings.Contains(errOut, "POLICY_UNKNOWN: there is no retention policy \"keep-last\"") {
		t.Errorf("retention show of a removed policy: %v %s", err, errOut)
	}
}

// TestRestoreVersionCommand: a native version a policy (set from a JSON
// file) deleted is listed in the trash with the restore that brings the
// version back, not only its tag, and "restore REPO --version V" does.
func TestRestoreVersionCommand(t *testing.T) {
	s := start(t, t.TempDir(), freeAddr(t))
	server := s.url("")
	for _, v := range []string{"1.0", "2.0"} {
		if r := request(t, "PUT", s.url("/api/v1/repositories/tools/cli/-/versions/"+v+"/files/notes.txt"), strings.NewReader("notes of "+v)); r.StatusCode != http.StatusCreated {
			t.Fatalf("publish %s: %d", v, r.StatusCode)
		}
	}
	policy := filepath.Join(t.TempDir(), "versions.json")
	os.WriteFile(policy, []byte("{\n\t\"name\": \"last-version\",\n\t\"repositories\": [\"tools/**\"],\n\t\"versions\": {\"keepLast\": 1}\n}\n"), 0o644)
	if out, errOut, err := client(t, "retention", "set", "--server", server, policy); err != nil || !strings.HasPrefix(out, "set retention policy last-version on tools/**: versions: keep last 1\n") {
		t.Fatalf("retention set: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := client(t, "retention", "run", "--server", server); err != nil || !regexp.MustCompile(`tools/cli\s+version\s+1.0\s+last-version\s+versions\s`).MatchString(out) {
		t.Fatalf("retention run: %v\n%s%s", err, out, errOut)
	}
	out, _, err := client(t, "retention", "trash", "--server", server)
	if err != nil || !regexp.MustCompile(`(?m)\s+tools/cli\s+version\s+1.0\s.*artifactstore restore tools/cli --version 1.0$`).MatchString(out) ||
		regexp.MustCompile(`tools/cli\s+tag\s`).MatchString(out) {
		t.Fatalf("retention trash: %v\n%s", err, out)
	}
	out, errOut, err := client(t, "restore", "--server", server, "tools/cli", "--version", "1.0")
	if err != nil || !strings.Contains(out, "restored version tools/cli 1.0 (manifest sha256:") {
		t.Fatalf("restore --version: %v\n%s%s", err, out, errOut)
	}
	code, b := get(t, s.url("/api/v1/repositories/tools/cli/-/versions/1.0/files/notes.txt"))
	if code != http.StatusOK || string(b) != "notes of 1.0" {
		t.Errorf("a file of the restored version: %d %q", code, b)
	}
}
