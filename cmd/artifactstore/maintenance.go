package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"

	"github.com/artifact-store/artifact-store/registry"
)

func replay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	sc := storeFlags(fs)
	fs.Parse(args)
	st, err := openStore(ctx, sc, exclusive)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.log.Replay(ctx)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	fmt.Printf("replayed %d events into fresh views\n", n)
	return nil
}

func verify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	sc := storeFlags(fs)
	quarantine := fs.Bool("quarantine", false, "move blobs whose bytes are damaged aside, so that they are no longer served and a push of the same content repairs them")
	scratchDir := fs.String("scratch-dir", os.TempDir(), "directory for the temporary database the views are rebuilt in (about the size of the views)")
	fs.Parse(args)
	st, err := openStore(ctx, sc, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	scratch, cleanup, err := scratchLog(ctx, *scratchDir)
	if err != nil {
		return err
	}
	defer cleanup()
	rep, err := registry.Verify(ctx, st.log, st.blobs, registry.VerifyOptions{Cold: st.cold, Scratch: scratch, Quarantine: *quarantine})
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Println("PROBLEM:", p)
	}
	if rep.Anchor != nil {
		fmt.Printf("anchor: event %d (hash %s, written %s)\n", rep.Anchor.Seq, rep.Anchor.Hash, rep.Anchor.Time.Format(time.RFC3339))
	} else {
		fmt.Println("anchor: none stored yet (a server writes one while it runs)")
	}
	if len(rep.Quarantined) > 0 {
		fmt.Printf("quarantined %d damaged blobs\n", len(rep.Quarantined))
	}
	fmt.Printf("checked %d events and %d blobs, views at event %d; %d problems; for gc: %d stored blobs no event names, %d unused blobs and links\n", rep.Events, rep.Blobs, rep.ViewsAt, len(rep.Problems), rep.Orphans, rep.Unreferenced)
	if len(rep.Problems) > 0 {
		return fmt.Errorf("verify found %d problems", len(rep.Problems))
	}
	return nil
}

// scratchLog opens an empty SQLite event log in a new temporary directory,
// removed by cleanup: verify rebuilds the views there, whatever the live
// backend, since the views' schema and projection are backend-neutral.
func scratchLog(ctx context.Context, parent string) (*eventlog.Log, func(), error) {
	dir, err := os.MkdirTemp(parent, "artifactstore-verify-")
	if err != nil {
		return nil, nil, fmt.Errorf("scratch database: %w", err)
	}
	l, err := sqlite.Open(ctx, filepath.Join(dir, "views.db"), sqlite.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("scratch database: %w", err)
	}
	return l, func() { l.Close(); os.RemoveAll(dir) }, nil
}

func migrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ExitOnError)
	sc := storeFlags(fs)
	fs.Parse(args)
	pg, err := sc.postgres()
	if err != nil {
		return err
	}
	var applied []string
	if pg {
		applied, err = postgres.Migrate(ctx, sc.db)
	} else {
		if err := os.MkdirAll(sc.data, 0o755); err != nil {
			return err
		}
		// A live server on the directory holds the lock, and keeps what
		// it reads of its views in memory (ADR 0019): a schema changed
		// under it would go unseen. Stop it first, or let it migrate at
		// its start.
		lock, lockErr := lockDir(sc.data)
		if lockErr != nil {
			return lockErr
		}
		defer lock.Close()
		applied, err = sqlite.Migrate(ctx, sc.sqlitePath())
	}
	for _, a := range applied {
		fmt.Println("applied", a)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Println("schema is up to date")
	}
	return nil
}
