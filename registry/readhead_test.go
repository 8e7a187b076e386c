package registry

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadHead: what readHead returns depends on the body, never on the
// size it declares: a body shorter than declared comes back as it is
// (its digest then fails to match), a longer one is read on up to the
// bound, and a read error is an error, not a short body.
func TestReadHead(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10)   // 100 bytes
	large := bytes.Repeat([]byte("0123456789"), 1e3) // 10,000: the buffer grows
	for _, c := range []struct {
		name      string
		body      []byte
		size, max int64
		want      int
	}{
		{"as declared", body, 100, 1000, 100},
		{"empty", nil, 0, 1000, 0},
		{"shorter than declared", body[:40], 100, 1000, 40},
		{"longer than declared", body, 30, 1000, 100},
		{"longer than declared, past the bound", body, 30, 50, 50},
		{"undeclared", body, -1, 1000, 100},
		{"undeclared, past the bound", body, -1, 50, 50},
		{"declared past the bound", body, 100, 50, 50},
		{"larger than the first buffer", large, 10_000, 20_000, 10_000},
		{"larger than the first buffer, longer than declared", large, 5_000, 20_000, 10_000},
		{"larger than the first buffer, shorter than declared", large[:6_000], 10_000, 20_000, 6_000},
	} {
		// One byte per read, so that every loop runs more than once.
		got, err := readHead(iotest.OneByteReader(bytes.NewReader(c.body)), c.size, c.max)
		if err != nil || !bytes.Equal(got, c.body[:c.want]) {
			t.Errorf("%s: %d bytes, %v; want the first %d of the body", c.name, len(got), err, c.want)
		}
	}
	// What a request holds before its bytes arrive does not follow the
	// size it declares.
	if got, _ := readHead(bytes.NewReader(body[:10]), 60_000, 65_537); cap(got) > headStart {
		t.Errorf("a body that declares 60,000 bytes and sends 10: a buffer of %d bytes, want at most %d", cap(got), headStart)
	}
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(body[:40]), iotest.ErrReader(boom))
	if got, err := readHead(r, 100, 1000); !errors.Is(err, boom) {
		t.Errorf("a body that fails after 40 bytes: %d bytes, %v; want the error", len(got), err)
	}
}
