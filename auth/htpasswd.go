package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Users are the accounts of an htpasswd file: "name:bcrypt-hash" lines.
// Only bcrypt is accepted ($2a$, $2b$, $2y$): the file's other formats
// (MD5-crypt, SHA-1, crypt, plain) are too weak to store, and a line using
// one is an error that names it, at start, rather than an account that
// silently never works.
type Users struct {
	hashes map[string][]byte
	// dummy is a bcrypt hash of the file's cost, compared against when the
	// user is unknown, so that unknown and known users cost the same.
	dummy []byte

	// verified remembers passwords bcrypt accepted, for verifiedFor: a
	// client sending Basic credentials with every request (the web UI,
	// scripts) must not cost a bcrypt comparison each. Keys are SHA-256
	// of name and password, never the password; only successes are kept,
	// so a guess still costs bcrypt. A reload makes new Users, and so
	// forgets them all.
	mu       sync.Mutex
	verified map[[32]byte]time.Time
}

// verifiedFor is how long an accepted password is taken without bcrypt;
// maxVerified bounds the remembered ones (when full, all are forgotten).
const (
	verifiedFor = time.Minute
	maxVerified = 4096
)

// LoadHtpasswd reads an htpasswd file.
func LoadHtpasswd(file string) (*Users, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	u := &Users{hashes: map[string][]byte{}}
	cost := bcrypt.DefaultCost
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s line %d: write name:bcrypt-hash", file, n)
		}
		if name == Anonymous || name == "authenticated" || strings.ContainsAny(name, " /") {
			return nil, fmt.Errorf("%s line %d: user name %q is reserved or not allowed", file, n, name)
		}
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil || !(strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")) {
			return nil, fmt.Errorf("%s line %d (user %s): not a bcrypt hash; only bcrypt is accepted (htpasswd -B)", file, n, name)
		}
		if _, dup := u.hashes[name]; dup {
			return nil, fmt.Errorf("%s line %d: user %s appears twice", file, n, name)
		}
		u.hashes[name] = []byte(hash)
		cost = max(cost, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if u.dummy, err = bcrypt.GenerateFromPassword([]byte("no such user"), cost); err != nil {
		return nil, err
	}
	return u, nil
}

// Check reports whether password is the user's. It takes a bcrypt
// comparison whether or not the user exists.
func (u *Users) Check(name, password string) bool {
	key := sha256.Sum256([]byte(name + "\x00" + password))
	u.mu.Lock()
	at, seen := u.verified[key]
	u.mu.Unlock()
	if seen && time.Since(at) < verifiedFor {
		return true
	}
	hash, known := u.hashes[name]
	if !known {
		hash = u.dummy
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	if known && ok {
		u.mu.Lock()
		if u.verified == nil || len(u.verified) >= maxVerified {
			u.verified = map[[32]byte]time.Time{}
		}
		u.verified[key] = time.Now()
		u.mu.Unlock()
	}
	return known && ok
}

// Has reports whether the user exists.
func (u *Users) Has(name string) bool { _, ok := u.hashes[name]; return ok }

// Len is the number of users.
func (u *Users) Len() int { return len(u.hashes) }
