package auth

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestCheckRemembersOnlySuccesses: a password bcrypt accepted is taken
// again without it, a wrong one never is, and another user's is not.
func TestCheckRemembersOnlySuccesses(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	file := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(file, []byte("alice:"+string(hash)+"\nbob:"+string(hash)+"\n"), 0o600)
	u, err := LoadHtpasswd(file)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if !u.Check("alice", "pw") {
			t.Fatal("alice's password refused")
		}
		if u.Check("alice", "pw2") || u.Check("alice", "") || u.Check("carol", "pw") {
			t.Fatal("a wrong password or an unknown user was accepted")
		}
	}
	if len(u.verified) != 1 {
		t.Errorf("%d remembered successes, want 1 (alice's)", len(u.verified))
	}
	if !u.Check("bob", "pw") || len(u.verified) != 2 {
		t.Errorf("bob: remembered %d", len(u.verified))
	}
}
