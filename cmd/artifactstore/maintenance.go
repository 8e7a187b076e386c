package main

import (
	"context"
	"flag"
	"fmt"
	"os"

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
	fs.Parse(args)
	st, err := openStore(ctx, sc, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := registry.Verify(ctx, st.log, st.blobs, st.cold)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Println("PROBLEM:", p)
	}
	fmt.Printf("checked %d events and %d blobs; %d problems; %d unreferenced blobs (for GC)\n", rep.Events, rep.Blobs, len(rep.Problems), rep.Orphans)
	if len(rep.Problems) > 0 {
		return fmt.Errorf("verify found %d problems", len(rep.Problems))
	}
	return nil
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
