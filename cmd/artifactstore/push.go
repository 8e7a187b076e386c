package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/artifact-store/artifact-store/client"
)

func clientFlags(fs *flag.FlagSet) *string {
	return fs.String("server", env("ARTIFACTSTORE_SERVER", "http://127.0.0.1:5000"), "server URL (env ARTIFACTSTORE_SERVER)")
}

// annotations is a repeatable key=value flag.
type annotations map[string]string

func (a annotations) String() string { return "" }

func (a annotations) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: write key=value", s)
	}
	a[k] = v
	return nil
}

func push(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	server := clientFlags(fs)
	artifactType := fs.String("artifact-type", "", "media type of the artifact (default "+`"application/vnd.artifactstore.artifact.v1")`)
	ann := annotations{}
	fs.Var(ann, "annotation", "key=value to annotate the version with (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: artifactstore push [flags] REPO:VERSION FILE[=PATH]...

Uploads the files and publishes them as the version REPO:VERSION. A file is
published under its base name, or under PATH when given as FILE=PATH. An
interrupted push resumes where it stopped when run again. Flags go before
REPO:VERSION.

`)
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() < 2 {
		fs.Usage()
		os.Exit(2)
	}
	repo, version, err := client.ParseReference(fs.Arg(0))
	if err != nil {
		return err
	}
	c, err := client.New(*server)
	if err != nil {
		return err
	}
	res, err := c.Push(ctx, repo, version, fs.Args()[1:], client.PushOptions{ArtifactType: *artifactType, Annotations: ann})
	if err != nil {
		return err
	}
	verb := "published"
	if !res.Published {
		verb = "already published, identical:"
	}
	fmt.Printf("%s %s:%s (%d files)\n  digest %s\n  blake3 %s\n  oci    %s\n", verb, repo, version, len(res.Files), res.Digest, res.BLAKE3, res.OCIDigest)
	return nil
}

func pull(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pull", flag.ExitOnError)
	server := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: artifactstore pull [flags] REPO:VERSION [DIR]

Downloads the files of REPO:VERSION into DIR (default "."), each checked
against both digests of the manifest before it is put in place. Files
already there with the same bytes are left alone. Flags go before
REPO:VERSION.

`)
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		os.Exit(2)
	}
	repo, version, err := client.ParseReference(fs.Arg(0))
	if err != nil {
		return err
	}
	dir := "."
	if fs.NArg() == 2 {
		dir = fs.Arg(1)
	}
	c, err := client.New(*server)
	if err != nil {
		return err
	}
	res, err := c.Pull(ctx, repo, version, dir)
	if err != nil {
		return err
	}
	fmt.Printf("pulled %s:%s (%d files) into %s\n  digest %s\n", repo, version, len(res.Files), dir, res.Digest)
	return nil
}
