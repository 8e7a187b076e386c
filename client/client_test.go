package client

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/manifests"
)

func TestNew(t *testing.T) {
	tests := []struct {
		url  string
		ok   bool
		base string
	}{
		{"http://127.0.0.1:5000", true, "http://127.0.0.1:5000"},
		{"https://store.example/prefix/", true, "https://store.example/prefix"},
		{"127.0.0.1:5000", false, ""},
		{"ftp://host", false, ""},
		{"http://", false, ""},
		{"http://host/?x=1", false, ""},
	}
	for _, tt := range tests {
		c, err := New(tt.url)
		if (err == nil) != tt.ok || (err == nil && c.base.String() != tt.base) {
			t.Errorf("New(%q) = %v, %v", tt.url, c, err)
		}
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		ref, repo, version string
	}{
		{"team/app:1.2.0", "team/app", "1.2.0"},
		{"a:b:c", "a:b", "c"}, // the server refuses the name
		{"app", "", ""},
		{"app:", "", ""},
		{":v1", "", ""},
		{"host:5000/app", "", ""},
		{"app:-bad", "", ""},
	}
	for _, tt := range tests {
		repo, version, err := ParseReference(tt.ref)
		if repo != tt.repo || version != tt.version || (err == nil) != (tt.repo != "") {
			t.Errorf("ParseReference(%q) = %q, %q, %v", tt.ref, repo, version, err)
		}
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in   string
		n    int64
		good bool
	}{
		{"0-0", 0, true}, // nothing, or one byte: a chunk from 0 finds out
		{"0-1023", 1024, true},
		{"bytes=0-9", 10, true},
		{"", 0, false},
		{"5-9", 0, false},
		{"0-x", 0, false},
	}
	for _, tt := range tests {
		if n, ok := parseRange(tt.in); n != tt.n || ok != tt.good {
			t.Errorf("parseRange(%q) = %d, %v", tt.in, n, ok)
		}
	}
}

func TestCheckReprDigest(t *testing.T) {
	p := []byte("hello")
	f := manifests.File{Path: "h", SHA256: digest.FromBytes(digest.SHA256, p).String(), BLAKE3: digest.FromBytes(digest.BLAKE3, p).String()}
	b64 := func(d string) string {
		raw, _ := hex.DecodeString(digest.Digest(d).Hex())
		return ":" + base64.StdEncoding.EncodeToString(raw) + ":"
	}
	good := "sha-256=" + b64(f.SHA256) + ", blake3=" + b64(f.BLAKE3)
	tests := []struct {
		field string
		ok    bool
	}{
		{"", true},
		{good, true},
		{"sha-512=:AAAA:, blake3=" + b64(f.BLAKE3), true}, // unknown algorithms are ignored
		{"SHA-256=" + b64(f.SHA256) + ",blake3=" + b64(f.BLAKE3), true},
		{"sha-256=:" + strings.Repeat("A", 43) + "=:", false},
		{"sha-256=" + b64(f.SHA256) + ", blake3=" + b64(f.SHA256), false},
	}
	for _, tt := range tests {
		err := checkReprDigest(tt.field, f)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrMismatch)) {
			t.Errorf("checkReprDigest(%q) = %v", tt.field, err)
		}
	}
}
