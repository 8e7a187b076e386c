// Command artifactstore runs the registry and its maintenance tasks. It only
// parses flags and wires the libraries together.
//
//	artifactstore serve  --addr HOST:PORT --data DIR
//	artifactstore replay --data DIR
//	artifactstore verify --data DIR
//	artifactstore gc --data DIR [--dry-run] [--gc-grace D]
//	artifactstore migrate --db postgres://… (or --data DIR for SQLite)
//	artifactstore push --server URL REPO:VERSION FILE[=PATH]...
//	artifactstore pull --server URL REPO:VERSION [DIR]
//	artifactstore htpasswd USER < password
//	artifactstore history --server URL REPO[:TAG] [--at TIME]
//	artifactstore keys create|list|revoke --server URL ...
//	artifactstore retention set|list|show|remove|history|plan|run|simulate|trash --server URL ...
//	artifactstore restore --server URL REPO:TAG | REPO@DIGEST | REPO --version V
//	artifactstore storage --server URL
//	artifactstore config check FILE
//	artifactstore version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: artifactstore <command> [flags]

commands:
  serve      run the registry (OCI Distribution API on /v2/)
  replay     rebuild every view from the event log (server stopped)
  verify     re-hash every blob and check the event log's hash chain
  migrate    apply pending database migrations
  gc         collect garbage once: unused blobs, crash orphans, expired uploads
  tier       apply the retrieval tiering policy once, or move one blob
  push       upload files and publish them as REPO:VERSION (client)
  pull       download the files of REPO:VERSION, verified (client)
  htpasswd   print an htpasswd line (bcrypt) for a user, the password read from stdin
  history    who moved REPO[:TAG] when, and what it pointed to (--at TIME)
  keys       make, list and revoke API keys for robots (create, list, revoke)
  retention  set, list and remove retention policies; plan, run or simulate them; list what they deleted
  restore    bring back a tag, manifest or version a retention policy deleted (client)
  storage    the bytes each repository holds, unique and shared (client)
  config     check a configuration file and print the effective settings (config check FILE)
  version    print which build this is

Run "artifactstore <command> -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "replay":
		err = replay(ctx, os.Args[2:])
	case "verify":
		err = verify(ctx, os.Args[2:])
	case "migrate":
		err = migrate(ctx, os.Args[2:])
	case "tier":
		err = tier(ctx, os.Args[2:])
	case "gc":
		err = gc(ctx, os.Args[2:])
	case "push":
		err = push(ctx, os.Args[2:])
	case "pull":
		err = pull(ctx, os.Args[2:])
	case "htpasswd":
		err = htpasswd(os.Args[2:])
	case "history":
		err = history(ctx, os.Args[2:])
	case "keys":
		err = keys(ctx, os.Args[2:])
	case "retention":
		err = retentionCmd(ctx, os.Args[2:])
	case "restore":
		err = restore(ctx, os.Args[2:])
	case "storage":
		err = storageReport(ctx, os.Args[2:])
	case "config":
		err = configCmd(os.Args[2:])
	case "version", "--version":
		err = versionCmd(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "artifactstore: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "artifactstore:", err)
		os.Exit(1)
	}
}
