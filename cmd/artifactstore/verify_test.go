package main_test

import (
	"bytes"
	"database/sql"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	_ "modernc.org/sqlite" // to edit the data directory's database by hand
)

// TestVerifyExitCodes: verify exits 0 on a clean store and 1 with a
// PROBLEM line for a view edited by hand and for a log that lost the head
// the server anchored at shutdown.
func TestVerifyExitCodes(t *testing.T) {
	data, addr := t.TempDir(), freeAddr(t)
	s := start(t, data, addr)
	blob := random(t, 3000)
	if r := request(t, "POST", s.url("/v2/v/blobs/uploads/?digest="+sha(blob)), bytes.NewReader(blob)); r.StatusCode != 201 {
		t.Fatalf("push: %d", r.StatusCode)
	}
	s.cmd.Process.Signal(syscall.SIGTERM) // anchors the head (event 2) on the way out
	s.cmd.Wait()

	exitCode := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("verify did not run: %v", err)
		}
		return 0
	}
	out, err := run(t, "verify", "--data", data)
	if exitCode(err) != 0 || !strings.Contains(out, "anchor: event 2 ") || !strings.Contains(out, "views at event 2; 0 problems") {
		t.Fatalf("verify of a clean store: %v\n%s", err, out)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "eventlog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO blob_links (repo, sha256, seq) VALUES ('other', '` + sha(blob) + `', 2)`); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "verify", "--data", data)
	if exitCode(err) != 1 || !strings.Contains(out, "PROBLEM: view blob_links (repo=other sha256="+sha(blob)+")") {
		t.Fatalf("verify of a hand-made link: %v\n%s", err, out)
	}

	// Drop the last event, then rebuild the views from what is left: the
	// chain and the views agree, only the anchor knows.
	if _, err := db.Exec(`DELETE FROM events WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "replay", "--data", data); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	out, err = run(t, "verify", "--data", data)
	if exitCode(err) != 1 || !strings.Contains(out, "names event 2") || !strings.Contains(out, "the log ends at event 1") || !strings.Contains(out, "1 problems") {
		t.Fatalf("verify of a log that lost its anchored head: %v\n%s", err, out)
	}
}
