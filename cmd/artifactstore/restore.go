package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/artifact-store/artifact-store/client"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/registry"
)

const restoreUsage = `usage: artifactstore restore [flags] REPO:TAG | REPO@DIGEST | REPO --version V

Brings back a tag, a manifest or a native version that a retention policy
deleted, within the server's undo window (artifactstore retention trash
lists what can be restored). What it needs that retention deleted too (a
tag's manifest, an index's images, signatures and SBOMs of a manifest)
comes back with it. Needs admin on the repository: give a user in
ARTIFACTSTORE_USER (or --user) and its password in ARTIFACTSTORE_PASSWORD.

`

// restore asks the server to restore one deletion made by retention.
func restore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ExitOnError)
	c := apiFlags(fs, "a user name with admin on the repository")
	version := fs.String("version", "", "restore this native version of REPO")
	fs.Usage = func() { fmt.Fprint(fs.Output(), restoreUsage); fs.PrintDefaults() }
	pos := parseInterspersed(fs, args)
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("give one REPO:TAG, REPO@DIGEST or REPO --version V")
	}
	repo, kind, name, err := restoreTarget(pos[0], *version)
	if err != nil {
		return err
	}
	body := map[string]string{"repository": repo, "kind": kind, "name": name}
	out, err := c.do(ctx, http.MethodPost, "/api/v1/retention/restore", body, http.StatusOK)
	if err != nil {
		return err
	}
	var r struct {
		Repository string
		Restored   []registry.Restored
	}
	if err := decode(out, &r); err != nil {
		return err
	}
	for _, it := range r.Restored {
		switch it.Kind {
		case "tag":
			fmt.Printf("restored tag %s:%s -> %s\n", r.Repository, it.Name, it.Digest)
		case "version":
			fmt.Printf("restored version %s %s (manifest %s)\n", r.Repository, it.Name, it.Digest)
		default:
			fmt.Printf("restored %s %s@%s\n", it.Kind, r.Repository, it.Name)
		}
	}
	// The policies that deleted it still apply at the next run.
	fmt.Fprintln(os.Stderr, `"artifactstore retention plan" shows what the next retention run would delete, now that it is back.`)
	return nil
}

// restoreTarget reads what to restore. Repository names hold neither ':'
// nor '@', so the first of either ends the name.
func restoreTarget(ref, version string) (repo, kind, name string, err error) {
	i := strings.IndexAny(ref, ":@")
	switch {
	case version != "" && i >= 0:
		return "", "", "", fmt.Errorf("%q and --version %s: give one of REPO:TAG, REPO@DIGEST or REPO --version V", ref, version)
	case version != "":
		return ref, "version", version, nil
	case i < 0:
		return "", "", "", fmt.Errorf("%q names no tag, digest or version: give REPO:TAG, REPO@DIGEST or REPO --version V", ref)
	case ref[i] == '@':
		return ref[:i], "manifest", ref[i+1:], nil
	}
	return ref[:i], "tag", ref[i+1:], nil
}

// restoreArgs are the restore arguments that bring back a trash item.
func restoreArgs(repo, kind, name string) string {
	switch kind {
	case "tag":
		return repo + ":" + name
	case "manifest":
		return repo + "@" + name
	}
	return repo + " --version " + name
}

// storageReport prints what each repository holds (/api/v1/storage).
func storageReport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("storage", flag.ExitOnError)
	c := apiFlags(fs, "user name")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: artifactstore storage [flags]

The bytes each repository you may pull holds: in all, unique to it (what
deleting it would free) and shared with other repositories (stored once).

`)
		fs.PrintDefaults()
	}
	if pos := parseInterspersed(fs, args); len(pos) != 0 {
		fs.Usage()
		return fmt.Errorf("storage takes no arguments, got %q", pos)
	}
	out, err := c.do(ctx, http.MethodGet, "/api/v1/storage", nil, http.StatusOK)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(out)
	}
	var s struct{ Repositories []eventlog.RepoStorage }
	if err := decode(out, &s); err != nil {
		return err
	}
	if len(s.Repositories) == 0 {
		fmt.Println("no repositories you may pull hold anything")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tBLOBS\tSIZE\tUNIQUE\tSHARED")
	for _, r := range s.Repositories {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Repo, r.Blobs, client.FormatSize(r.Bytes), client.FormatSize(r.UniqueBytes), client.FormatSize(r.SharedBytes))
	}
	return tw.Flush()
}
