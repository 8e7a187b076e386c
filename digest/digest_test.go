package digest

import (
	"errors"
	"strings"
	"testing"

	godigest "github.com/opencontainers/go-digest"
)

func TestParse(t *testing.T) {
	hex64 := strings.Repeat("a", 64)
	tests := []struct {
		in   string
		want error
	}{
		{"sha256:" + hex64, nil},
		{"blake3:" + hex64, nil},
		{"sha512:" + strings.Repeat("0", 128), nil},
		{"sha256:" + strings.Repeat("A", 64), ErrInvalid},
		{"sha256:" + hex64[:63], ErrInvalid},
		{"sha512:" + hex64, ErrInvalid},
		{"sha256", ErrInvalid},
		{":abc", ErrInvalid},
		{"sha256:", ErrInvalid},
		{"SHA256:" + hex64, ErrInvalid},
		{"sha256+:" + hex64, ErrInvalid},
		{"sha256:" + hex64[:60] + "g!!!", ErrInvalid},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", ErrUnsupported},
		{"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", ErrUnsupported},
	}
	for _, tt := range tests {
		d, err := Parse(tt.in)
		if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("Parse(%q) = %v, want %v", tt.in, err, tt.want)
		}
		if err == nil && d.String() != tt.in {
			t.Errorf("Parse(%q) round trip = %q", tt.in, d)
		}
	}
}

func TestFromBytes(t *testing.T) {
	// Known answers for the empty input.
	for a, want := range map[Algorithm]string{
		SHA256: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		BLAKE3: "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
	} {
		if got := FromBytes(a, nil); string(got) != want {
			t.Errorf("FromBytes(%s, nil) = %s, want %s", a, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("a", 64))
	f.Add("blake3:xyz")
	f.Add("a+b.c_d-e:ABC=_-")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			return
		}
		// Anything accepted must round-trip and name a supported algorithm.
		if d.String() != s || !d.Algorithm().Supported() || len(d.Hex()) != d.Algorithm().hexLen() {
			t.Fatalf("accepted bad digest %q", s)
		}
	})
}

// TestFromOCI: a digest from an OCI document enters the store's vocabulary
// by the store's rules: go-digest's own digests and blake3 (which go-digest
// cannot validate) are accepted, sha384 (which it can) is not ours.
func TestFromOCI(t *testing.T) {
	p := []byte("layer")
	if d, err := FromOCI(godigest.FromBytes(p)); err != nil || d != FromBytes(SHA256, p) {
		t.Errorf("sha256 from go-digest: %q, %v", d, err)
	}
	b3 := FromBytes(BLAKE3, p)
	if d, err := FromOCI(godigest.Digest(b3)); err != nil || d != b3 {
		t.Errorf("blake3: %q, %v", d, err)
	}
	if _, err := FromOCI(godigest.SHA384.FromBytes(p)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("sha384: %v, want ErrUnsupported", err)
	}
	if _, err := FromOCI(godigest.Digest(strings.ToUpper(string(godigest.FromBytes(p))))); !errors.Is(err, ErrInvalid) {
		t.Errorf("upper case: %v, want ErrInvalid", err)
	}
}
