package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const keysUsage = `usage: artifactstore keys <create|list|revoke> [flags]

  create --name NAME --repo GLOB [--repo GLOB]... --actions pull,push [--expires 90d|TIME]
         make an API key for a robot; the key is printed once, on stdout
  list   every key: id, name, status, expiry, grants, who made it
  revoke ID
         end a key at once (and every token issued to it)

Managing keys needs admin on every repository: give a user in
ARTIFACTSTORE_USER (or --user) and its password in ARTIFACTSTORE_PASSWORD.
`

// keys manages the API keys of a server (/api/v1/keys).
func keys(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, keysUsage)
		return fmt.Errorf("give create, list or revoke")
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ExitOnError)
	c := keysClient{apiFlags(fs, "an admin's user name")}
	fs.Usage = func() { fmt.Fprint(fs.Output(), keysUsage); fs.PrintDefaults() }
	switch args[0] {
	case "create":
		name := fs.String("name", "", "the key's name: its principal is key:NAME in the audit trail")
		var repos stringList
		fs.Var(&repos, "repo", "a repository glob the key may use (repeat for more): team/app, team/*, team/**")
		actions := fs.String("actions", "pull", "what the key may do there, comma separated: pull, push, delete")
		expires := fs.String("expires", "90d", "when the key stops working: a lifetime (90d, 720h; at most 365d) or an RFC 3339 time")
		fs.Parse(args[1:])
		exp, err := keyExpiry(*expires, time.Now())
		if err != nil {
			return err
		}
		return c.create(ctx, *name, repos, strings.Split(*actions, ","), exp)
	case "list":
		fs.Parse(args[1:])
		return c.list(ctx)
	case "revoke":
		fs.Parse(args[1:])
		if fs.NArg() != 1 {
			fs.Usage()
			return fmt.Errorf("give the id of the key to revoke (artifactstore keys list)")
		}
		return c.revoke(ctx, fs.Arg(0))
	}
	fmt.Fprint(os.Stderr, keysUsage)
	return fmt.Errorf("unknown keys command %q", args[0])
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// keyExpiry reads --expires: a lifetime in days (90d) or as a Go
// duration (720h), or a time in RFC 3339.
func keyExpiry(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return time.Time{}, fmt.Errorf("--expires %q: write a number of days such as 90d", s)
		}
		return now.Add(time.Duration(n) * 24 * time.Hour), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires %q: give a lifetime (90d, 720h) or an RFC 3339 time", s)
	}
	return t, nil
}

// keysClient manages /api/v1/keys.
type keysClient struct{ apiClient }

// shownKey is a key as the server answers it.
type shownKey struct {
	ID, Name, Key, Status, CreatedBy string
	Repositories, Actions            []string
	Expires                          time.Time
}

// create prints the new key alone on stdout, so that a script can take
// it (KEY=$(artifactstore keys create …)); what it is goes to stderr.
func (c keysClient) create(ctx context.Context, name string, repos, actions []string, exp time.Time) error {
	body := map[string]any{"name": name, "repositories": repos, "actions": actions, "expires": exp.UTC().Format(time.RFC3339)}
	out, err := c.do(ctx, http.MethodPost, "/api/v1/keys", body, http.StatusCreated)
	if err != nil {
		return err
	}
	var k shownKey
	if err := json.Unmarshal(out, &k); err != nil || k.Key == "" {
		return fmt.Errorf("the server's answer has no key: %v", err)
	}
	fmt.Println(k.Key)
	fmt.Fprintf(os.Stderr, "made API key %s (%s): %s on %s, until %s.\nThis is the only time the key is shown: use it as the password, with any user name.\n",
		k.ID, k.Name, strings.Join(k.Actions, ","), strings.Join(k.Repositories, " "), k.Expires.Format(time.RFC3339))
	return nil
}

func (c keysClient) list(ctx context.Context) error {
	out, err := c.do(ctx, http.MethodGet, "/api/v1/keys", nil, http.StatusOK)
	if err != nil {
		return err
	}
	var l struct {
		Keys      []shownKey
		Truncated bool
	}
	if err := json.Unmarshal(out, &l); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tEXPIRES\tACTIONS\tREPOSITORIES\tCREATED BY")
	for _, k := range l.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Status, k.Expires.Format(time.RFC3339),
			strings.Join(k.Actions, ","), strings.Join(k.Repositories, " "), k.CreatedBy)
	}
	tw.Flush()
	if l.Truncated {
		fmt.Println("(only the oldest keys are shown)")
	}
	return nil
}

func (c keysClient) revoke(ctx context.Context, id string) error {
	if _, err := c.do(ctx, http.MethodDelete, "/api/v1/keys/"+id, nil, http.StatusNoContent); err != nil {
		return err
	}
	fmt.Printf("revoked %s\n", id)
	return nil
}
