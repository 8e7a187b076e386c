package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/artifact-store/artifact-store/registry"
)

func replay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	data := dataFlag(fs)
	fs.Parse(args)
	st, err := openStore(ctx, *data, exclusive)
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
	data := dataFlag(fs)
	fs.Parse(args)
	st, err := openStore(ctx, *data, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := registry.Verify(ctx, st.log, st.blobs)
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
