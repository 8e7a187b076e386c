package registry

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"
	"time"
)

// TestSessionIDsSortByExpiry: ids minted in any order sort, as text, in
// the order they expire (what keeps ended_uploads' inserts together), and
// each verifies with its expiry in its own repository only.
func TestSessionIDsSortByExpiry(t *testing.T) {
	ctx := context.Background()
	s := &sessionIDs{key: []byte("a key for the test")}
	base := time.Unix(1_800_000_000, 0)
	offsets := []int{40, 3, 3, 17, 0, 255, 256, 9, 65536, 1}
	byID := map[string]time.Time{}
	var ids []string
	for _, o := range offsets {
		at := base.Add(time.Duration(o) * time.Second)
		id, err := s.mint(ctx, "r", at)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != idLen {
			t.Fatalf("id %q: %d characters, want %d", id, len(id), idLen)
		}
		ids, byID[id] = append(ids, id), at
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if byID[ids[i]].Before(byID[ids[i-1]]) {
			t.Fatalf("ids sorted as text: %s (expires %v) after %s (expires %v)", ids[i], byID[ids[i]], ids[i-1], byID[ids[i-1]])
		}
	}
	for _, id := range ids {
		at, ok, err := s.expiry(ctx, "r", id)
		if err != nil || !ok || !at.Equal(byID[id]) {
			t.Fatalf("expiry(r, %s) = %v, %v, %v; want %v", id, at, ok, err, byID[id])
		}
		if _, ok, _ := s.expiry(ctx, "other", id); ok {
			t.Fatalf("id %s of r verifies in another repository", id)
		}
		b, _ := hex.DecodeString(id)
		b[0] ^= 1 // another expiry, same signature
		if _, ok, _ := s.expiry(ctx, "r", hex.EncodeToString(b)); ok {
			t.Fatalf("id %s with its expiry changed verifies", id)
		}
	}
}

// TestSessionIDsOfTheFormerLayout: an id minted before the expiry came
// first (random, then expiry, signed under idDomainV1) still verifies,
// with its own expiry, so that pushes in flight across an upgrade finish;
// its bytes read in the new layout would give a random expiry.
func TestSessionIDsOfTheFormerLayout(t *testing.T) {
	ctx := context.Background()
	s := &sessionIDs{key: []byte("a key for the test")}
	at := time.Unix(1_800_000_123, 0)
	body := make([]byte, idRandLen+idTimeLen)
	rand.Read(body[:idRandLen])
	binary.BigEndian.PutUint64(body[idRandLen:], uint64(at.Unix()))
	id := hex.EncodeToString(append(body, idMAC(s.key, idDomainV1, "r", body)...))
	got, ok, err := s.expiry(ctx, "r", id)
	if err != nil || !ok || !got.Equal(at) {
		t.Fatalf("expiry of a former id = %v, %v, %v; want %v", got, ok, err, at)
	}
	if _, ok, _ := s.expiry(ctx, "other", id); ok {
		t.Fatal("a former id verifies in another repository")
	}
}
