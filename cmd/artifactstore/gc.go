package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/artifact-store/artifact-store/registry"
)

// gcFlags are the collector's settings, shared by gc and serve.
type gcFlags struct {
	grace    *time.Duration
	interval *time.Duration // serve only
}

func (g gcFlags) check() error {
	if *g.grace < 0 {
		return fmt.Errorf("--gc-grace must not be negative")
	}
	if g.interval != nil && *g.interval < 0 {
		return fmt.Errorf("--gc-interval must not be negative")
	}
	return nil
}

func graceFlag(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("gc-grace", envDuration("ARTIFACTSTORE_GC_GRACE", time.Hour), "spare blobs linked or read, and unrecorded bytes written, less than this long ago: a push completes within it (env ARTIFACTSTORE_GC_GRACE)")
}

// gc runs one collection: with SQLite the server must be stopped (the data
// directory is locked), with PostgreSQL it runs beside live replicas.
func gc(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gc", flag.ExitOnError)
	sc := storeFlags(fs)
	g := gcFlags{grace: graceFlag(fs)}
	dry := fs.Bool("dry-run", false, "list what would be removed and the bytes freed; change nothing")
	undo := fs.Duration("retention-undo", envDuration("ARTIFACTSTORE_RETENTION_UNDO", 7*24*time.Hour), "keep what retention deletions need this long, as the servers do (env ARTIFACTSTORE_RETENTION_UNDO)")
	ttl := fs.Duration("upload-ttl", envDuration("ARTIFACTSTORE_UPLOAD_TTL", 24*time.Hour), "expire upload sessions idle this long, as the servers do (env ARTIFACTSTORE_UPLOAD_TTL)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Parse(args)
	if err := g.check(); err != nil {
		return err
	}
	if *ttl <= 0 || *undo <= 0 {
		return fmt.Errorf("--upload-ttl and --retention-undo must be positive durations, e.g. 24h")
	}
	// A dry run changes nothing: it may look beside a running server.
	st, err := openStore(ctx, sc, !*dry)
	if err != nil {
		return err
	}
	defer st.Close()
	reg, err := registry.New(registry.Options{Log: st.log, Blobs: st.blobs, Cold: st.cold, UploadTTL: *ttl, RetentionUndo: *undo})
	if err != nil {
		return err
	}
	rep, err := reg.CollectGarbage(ctx, registry.GCOptions{Grace: *g.grace, DryRun: *dry})
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			return jerr
		}
		return err
	}
	verb, freed := "removed", "freed"
	if *dry {
		verb, freed = "would remove", "would free"
	}
	for _, l := range rep.Unlinked {
		fmt.Printf("unlink %s from %s (%d bytes)\n", l.Digest, l.Repo, l.Size)
	}
	for _, b := range rep.Swept {
		what := "blob"
		if b.Unrecorded {
			what = "unrecorded bytes"
		}
		fmt.Printf("sweep %s %s (%d bytes)\n", what, b.Digest, b.Size)
	}
	fmt.Printf("gc run %s at event %d: %s %d links and %d blobs, %s %d bytes; removed the staged bytes of %d expired or abandoned uploads\n",
		rep.Run, rep.Mark, verb, len(rep.Unlinked), len(rep.Swept), freed, rep.BytesFreed, rep.UploadsExpired)
	return err
}
