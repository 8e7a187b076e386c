package registry

import (
	"context"
	"fmt"

	"github.com/artifact-store/artifact-store/eventlog"
)

// manifestProblems reports every manifest that can no longer be pulled
// whole: a blob it recorded as needed is no longer linked into its
// repository, no longer in the blobs view, or among damaged, the blobs
// whose stored bytes Verify found missing or wrong (keyed by sha256).
func manifestProblems(ctx context.Context, log *eventlog.Log, damaged map[string]bool) ([]string, error) {
	var out []string
	err := log.ManifestRefs(ctx, func(r eventlog.ManifestRef) error {
		if r.Child {
			if !r.Linked {
				out = append(out, fmt.Sprintf("index %s@%s: names manifest %s, which the repository no longer holds; the index cannot be pulled whole", r.Repo, r.Digest, r.SHA256))
			}
			return nil
		}
		var why string
		switch {
		case !r.Committed:
			why = "which the log does not record"
		case !r.Linked:
			why = "which the repository no longer links"
		case damaged[r.SHA256]:
			why = "whose stored bytes are missing or damaged"
		default:
			return nil
		}
		out = append(out, fmt.Sprintf("manifest %s@%s: needs blob %s, %s; the manifest cannot be pulled", r.Repo, r.Digest, r.SHA256, why))
		return nil
	})
	return out, err
}
