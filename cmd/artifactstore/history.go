package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// history prints every change of a repository's tags (or one tag), with
// who made it, from the server's event log; with --at, also what the tag
// pointed to at that time.
func history(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("history", flag.ExitOnError)
	c := apiFlags(fs, "user name")
	at := fs.String("at", "", "an RFC 3339 time: also print what the tag pointed to then")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: artifactstore history [flags] REPO[:TAG]")
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("give one REPO or REPO:TAG")
	}
	repo, tag, _ := strings.Cut(fs.Arg(0), ":")
	q := url.Values{"repository": {repo}}
	if tag != "" {
		q.Set("tag", tag)
	}
	if *at != "" {
		q.Set("at", *at)
	}
	body, err := c.do(ctx, http.MethodGet, "/api/v1/history?"+q.Encode(), nil, http.StatusOK)
	if err != nil {
		return err
	}
	var h struct {
		Changes []struct {
			Seq    int64
			Time   time.Time
			Event  string
			Tag    string
			Digest string
			Actor  *struct{ Name, Method, Addr string }
		}
		Truncated bool
		At        *struct {
			Time   time.Time
			Digest *string
		}
	}
	if err := decode(body, &h); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSEQ\tEVENT\tTAG\tDIGEST\tBY")
	for _, c := range h.Changes {
		by := "-"
		if c.Actor != nil {
			by = fmt.Sprintf("%s (%s, %s)", c.Actor.Name, c.Actor.Method, c.Actor.Addr)
		}
		d := c.Digest
		if d == "" {
			d = "(removed)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", c.Time.Format(time.RFC3339), c.Seq, c.Event, c.Tag, d, by)
	}
	tw.Flush()
	if h.Truncated {
		fmt.Println("(only the newest changes are shown)")
	}
	if h.At != nil {
		if h.At.Digest == nil {
			fmt.Printf("at %s: %s did not exist\n", h.At.Time.Format(time.RFC3339), fs.Arg(0))
		} else {
			fmt.Printf("at %s: %s pointed to %s\n", h.At.Time.Format(time.RFC3339), fs.Arg(0), *h.At.Digest)
		}
	}
	return nil
}
