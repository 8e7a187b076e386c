package digest

import (
	"errors"
	"strings"
	"testing"
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
