package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
)

// VerifyReport is what Verify found.
type VerifyReport struct {
	Events   int64    // events whose chain links were checked
	Blobs    int      // blobs re-hashed
	Orphans  int      // stored blobs no event names (GC's work, not damage)
	Problems []string // damage: each a sentence naming what is wrong
}

// Verify checks the event log's hash chain and re-hashes every blob the
// views name with SHA-256 and BLAKE3, in the store of its recorded tier
// (cold may be nil when there is no tiering), comparing against the
// recorded digests and size.
func Verify(ctx context.Context, log *eventlog.Log, store, cold *blobstore.Store) (VerifyReport, error) {
	var rep VerifyReport
	n, breaks, err := log.VerifyChain(ctx)
	if err != nil {
		return rep, fmt.Errorf("read event log: %w", err)
	}
	rep.Events = n
	for _, b := range breaks {
		rep.Problems = append(rep.Problems, "event log: "+b.Error()+brokenEvent(ctx, log, b.Seq))
	}
	known := make(map[string]bool)
	damaged := make(map[string]bool) // sha256 keys whose bytes are missing or wrong
	problems := len(rep.Problems)
	err = log.Blobs(ctx, func(b eventlog.Blob) error {
		defer func() {
			if len(rep.Problems) > problems {
				damaged[b.SHA256] = true
				problems = len(rep.Problems)
			}
		}()
		known[b.SHA256] = true
		rep.Blobs++
		in, other := store, cold
		if b.Tier == eventlog.TierCold && cold != nil {
			in, other = cold, store
		}
		got, err := in.Rehash(ctx, digest.Digest(b.SHA256))
		if errors.Is(err, blobstore.ErrNotFound) && other != nil {
			// Moved (and swept) since this listing began: look where it went.
			if got, err = other.Rehash(ctx, digest.Digest(b.SHA256)); err == nil {
				in = other
			}
		}
		switch {
		case errors.Is(err, blobstore.ErrNotFound):
			rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: recorded in the %s tier but missing from its store", b.SHA256, b.Tier))
		case err != nil:
			return fmt.Errorf("read blob %s: %w", b.SHA256, err)
		case got.SHA256.String() != b.SHA256:
			rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: content now hashes to %s (corrupted)", b.SHA256, got.SHA256))
		case got.BLAKE3.String() != b.BLAKE3:
			rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: BLAKE3 is %s, recorded %s", b.SHA256, got.BLAKE3, b.BLAKE3))
		case got.Size != b.Size:
			rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: size is %d, recorded %d", b.SHA256, got.Size, b.Size))
		case b.SHA512 != "":
			// Recorded for a client that addressed it by sha512: check that too.
			if d, err := sha512Of(ctx, in, b.SHA256); err != nil {
				return err
			} else if d != b.SHA512 {
				rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: sha512 is %s, recorded %s", b.SHA256, d, b.SHA512))
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	mp, err := manifestProblems(ctx, log, damaged)
	if err != nil {
		return rep, err
	}
	rep.Problems = append(rep.Problems, mp...)
	for _, st := range []*blobstore.Store{store, cold} {
		if st == nil {
			continue
		}
		if err := st.Walk(ctx, func(key digest.Digest) error {
			if !known[key.String()] {
				rep.Orphans++
			}
			return nil
		}); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// brokenEvent shows the payload of a broken event as JSON, for the report.
func brokenEvent(ctx context.Context, log *eventlog.Log, seq int64) string {
	p, err := log.Read(ctx, eventlog.Query{After: seq - 1, Limit: 1})
	if err != nil || len(p.Events) == 0 || p.Events[0].Seq != seq {
		return ""
	}
	e := p.Events[0]
	return fmt.Sprintf(" (%s %s %s)", e.Type, e.Repo, payloadJSON(e.Payload))
}

func sha512Of(ctx context.Context, s *blobstore.Store, key string) (string, error) {
	f, err := s.Open(ctx, digest.Digest(key))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := digest.SHA512.New()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA512, h.Sum(nil)).String(), nil
}
