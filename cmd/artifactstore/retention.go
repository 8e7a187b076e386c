package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/artifact-store/artifact-store/client"
	"github.com/artifact-store/artifact-store/registry"
	"github.com/artifact-store/artifact-store/retention"
)

const retentionUsage = `usage: artifactstore retention <command> [flags]

  set FILE     set the policy in FILE (YAML or JSON, the format of
               "go doc retention"); its name is the file's name: field,
               or else the file's base name (team-a.yaml sets team-a)
  list         the policies in force
  show NAME    one policy, as YAML to edit and set again (--json)
  remove NAME  stop applying a policy
  history      every change to the policies: when, who, what
  plan         what the policies would delete now, and the bytes freed (--json)
  run          apply the policies now, and print what was deleted (--json)
  simulate --days D [--step 24h] [FILE]
               run FILE's policy (or, without FILE, those in force) over
               the last D days of history: what it would have deleted, and
               what of that was pulled again afterwards (--json)
  trash [--repo REPO]
               what retention deleted that can still be restored, and until
               when; bring it back with "artifactstore restore"

Retention needs admin on every repository (trash --repo: pull on REPO):
give a user in ARTIFACTSTORE_USER (or --user) and its password in
ARTIFACTSTORE_PASSWORD.
`

// retentionCmd manages a server's retention policies (/api/v1/retention/).
func retentionCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, retentionUsage)
		return fmt.Errorf("give set, list, show, remove, history, plan, run, simulate or trash")
	}
	fs := flag.NewFlagSet("retention "+args[0], flag.ExitOnError)
	c := retentionClient{apiFlags(fs, "an admin's user name")}
	fs.Usage = func() { fmt.Fprint(fs.Output(), retentionUsage); fs.PrintDefaults() }
	asJSON := func() *bool { return fs.Bool("json", false, "print the server's answer as JSON") }
	// one parses the flags and the one positional argument what names.
	one := func(what string) (string, error) {
		pos := parseInterspersed(fs, args[1:])
		if len(pos) != 1 {
			fs.Usage()
			return "", fmt.Errorf("retention %s: give %s", args[0], what)
		}
		return pos[0], nil
	}
	none := func() error {
		if pos := parseInterspersed(fs, args[1:]); len(pos) != 0 {
			fs.Usage()
			return fmt.Errorf("retention %s takes no arguments, got %q", args[0], pos)
		}
		return nil
	}
	switch args[0] {
	case "set":
		file, err := one("the policy file")
		if err != nil {
			return err
		}
		return c.set(ctx, file)
	case "list":
		if err := none(); err != nil {
			return err
		}
		return c.list(ctx)
	case "show":
		j := asJSON()
		name, err := one("the policy's name")
		if err != nil {
			return err
		}
		return c.show(ctx, name, *j)
	case "remove":
		name, err := one("the policy's name")
		if err != nil {
			return err
		}
		if _, err := c.do(ctx, http.MethodDelete, "/api/v1/retention/policies/"+url.PathEscape(name), nil, http.StatusNoContent); err != nil {
			return err
		}
		fmt.Printf("removed retention policy %s\n", name)
		return nil
	case "history":
		if err := none(); err != nil {
			return err
		}
		return c.history(ctx)
	case "plan", "run":
		j := asJSON()
		if err := none(); err != nil {
			return err
		}
		return c.plan(ctx, args[0] == "run", *j)
	case "simulate":
		days := fs.Int("days", 0, "how many days of history to simulate over, up to now (required)")
		step := fs.Duration("step", 24*time.Hour, "how far apart the moments the policies are judged at are")
		j := asJSON()
		pos := parseInterspersed(fs, args[1:])
		if len(pos) > 1 || *days <= 0 {
			fs.Usage()
			return fmt.Errorf("retention simulate: give --days D and at most one policy file")
		}
		file := ""
		if len(pos) == 1 {
			file = pos[0]
		}
		return c.simulate(ctx, *days, *step, file, *j)
	case "trash":
		repo := fs.String("repo", "", "only this repository (needs pull on it instead of admin everywhere)")
		j := asJSON()
		if err := none(); err != nil {
			return err
		}
		return c.trash(ctx, *repo, *j)
	}
	fmt.Fprint(os.Stderr, retentionUsage)
	return fmt.Errorf("unknown retention command %q", args[0])
}

// retentionClient talks to /api/v1/retention/.
type retentionClient struct{ apiClient }

// policyFile reads a policy file: its bytes, the Content-Type to send
// them as, and the name it gives its policy. Only the name is read here;
// the server checks the rest, so that its message is the one shown.
func policyFile(file string) (data []byte, contentType, name string, err error) {
	data, err = os.ReadFile(file)
	if err != nil {
		return nil, "", "", err
	}
	var doc struct {
		Name string `json:"name" yaml:"name"`
	}
	// As the server does: a document starting with '{' is JSON (which is
	// not always YAML: tabs), anything else YAML.
	contentType = "application/yaml"
	if strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		contentType = "application/json"
		err = json.Unmarshal(data, &doc)
	} else {
		err = yaml.Unmarshal(data, &doc)
	}
	if err == nil && doc.Name != "" {
		return data, contentType, doc.Name, nil
	}
	base := filepath.Base(file)
	return data, contentType, strings.TrimSuffix(base, filepath.Ext(base)), nil
}

func (c retentionClient) set(ctx context.Context, file string) error {
	data, contentType, name, err := policyFile(file)
	if err != nil {
		return err
	}
	out, err := c.send(ctx, http.MethodPut, "/api/v1/retention/policies/"+url.PathEscape(name), contentType, data, http.StatusOK)
	if err != nil {
		return err
	}
	var p retention.Policy
	if err := decode(out, &p); err != nil {
		return err
	}
	fmt.Printf("set retention policy %s on %s: %s\n", p.Name, strings.Join(p.Repositories, " "), describePolicy(p))
	fmt.Println(`It applies at the server's next retention run; "artifactstore retention plan" shows what it would delete.`)
	return nil
}

func (c retentionClient) list(ctx context.Context) error {
	out, err := c.do(ctx, http.MethodGet, "/api/v1/retention/policies", nil, http.StatusOK)
	if err != nil {
		return err
	}
	var l struct {
		Policies []struct {
			Name   string
			Policy retention.Policy
		}
	}
	if err := decode(out, &l); err != nil {
		return err
	}
	if len(l.Policies) == 0 {
		fmt.Println("no retention policies: nothing is deleted by retention")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREPOSITORIES\tRULES")
	for _, p := range l.Policies {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, strings.Join(p.Policy.Repositories, " "), describePolicy(p.Policy))
	}
	return tw.Flush()
}

func (c retentionClient) show(ctx context.Context, name string, asJSON bool) error {
	out, err := c.do(ctx, http.MethodGet, "/api/v1/retention/policies/"+url.PathEscape(name), nil, http.StatusOK)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out)
	}
	var p retention.Policy
	if err := decode(out, &p); err != nil {
		return err
	}
	enc := yaml.NewEncoder(os.Stdout)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return err
	}
	return enc.Close()
}

func (c retentionClient) history(ctx context.Context) error {
	out, err := c.do(ctx, http.MethodGet, "/api/v1/retention/history", nil, http.StatusOK)
	if err != nil {
		return err
	}
	var h struct {
		Changes []struct {
			Seq                 int64
			Time                time.Time
			Actor, Change, Name string
			Policy              *retention.Policy
		}
	}
	if err := decode(out, &h); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSEQ\tCHANGE\tPOLICY\tBY\tWHAT")
	for _, ch := range h.Changes {
		by, what := ch.Actor, "-"
		if by == "" {
			by = "-"
		}
		if ch.Policy != nil {
			what = "on " + strings.Join(ch.Policy.Repositories, " ") + ": " + describePolicy(*ch.Policy)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", ch.Time.Format(time.RFC3339), ch.Seq, ch.Change, ch.Name, by, what)
	}
	return tw.Flush()
}

// plan prints what the policies delete now, or with run, applies them.
func (c retentionClient) plan(ctx context.Context, run, asJSON bool) error {
	method, path := http.MethodGet, "/api/v1/retention/plan"
	if run {
		method, path = http.MethodPost, "/api/v1/retention/run"
	}
	out, err := c.do(ctx, method, path, nil, http.StatusOK)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out)
	}
	var p registry.RetentionPlan
	if err := decode(out, &p); err != nil {
		return err
	}
	if len(p.Items) == 0 {
		fmt.Println("nothing to delete: the policies keep everything")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tKIND\tNAME\tPOLICY\tRULE\tFREES\tREASON")
	for _, it := range p.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Repo, it.Kind, it.Name, it.Policy, it.Rule, client.FormatSize(it.Frees), it.Reason)
	}
	tw.Flush()
	frees := fmt.Sprintf("%s (%d bytes)", client.FormatSize(p.Frees), p.Frees)
	if !run {
		fmt.Printf("total: %s, freeing %s once deleted and collected\n", count(len(p.Items), "deletion"), frees)
		return nil
	}
	fmt.Printf("deleted %d of %s, freeing %s when the garbage collector runs after the undo window\n", p.Applied, count(len(p.Items), "planned deletion"), frees)
	if p.Skipped > 0 {
		fmt.Printf("%d of the above were not deleted: they changed since the plan (pushed or tagged again); the next run judges them again\n", p.Skipped)
	}
	fmt.Println(`Until then "artifactstore retention trash" lists them and "artifactstore restore" brings them back.`)
	return nil
}

func (c retentionClient) simulate(ctx context.Context, days int, step time.Duration, file string, asJSON bool) error {
	var data []byte
	contentType := ""
	if file != "" {
		var err error
		if data, contentType, _, err = policyFile(file); err != nil {
			return err
		}
	}
	q := url.Values{"days": {fmt.Sprint(days)}, "step": {step.String()}}
	out, err := c.send(ctx, http.MethodPost, "/api/v1/retention/simulate?"+q.Encode(), contentType, data, http.StatusOK)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out)
	}
	var sim registry.Simulation
	if err := decode(out, &sim); err != nil {
		return err
	}
	if len(sim.Deletions) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DELETED AT\tREPOSITORY\tKIND\tNAME\tPOLICY\tRULE\tPULLED AGAIN")
		for _, d := range sim.Deletions {
			again := "-"
			if d.PulledAfter != nil {
				again = d.PulledAfter.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.At.Format(time.RFC3339), d.Repo, d.Kind, d.Name, d.Policy, d.Rule, again)
		}
		tw.Flush()
	}
	fmt.Printf("%s, %d pulled again afterwards (%d steps of %s from %s to %s)\n", count(len(sim.Deletions), "deletion"), sim.PulledAgain,
		sim.Steps, sim.Step, sim.From.Format(time.RFC3339), sim.To.Format(time.RFC3339))
	return nil
}

// trashItem is a restorable deletion as the server lists it.
type trashItem struct {
	Repository, Kind, Name, Digest, Policy string
	Seq                                    int64
	Deleted, RestorableUntil               time.Time
}

func (c retentionClient) trash(ctx context.Context, repo string, asJSON bool) error {
	path := "/api/v1/retention/trash"
	if repo != "" {
		path += "?" + url.Values{"repository": {repo}}.Encode()
	}
	out, err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out)
	}
	var t struct{ Items []trashItem }
	if err := decode(out, &t); err != nil {
		return err
	}
	if len(t.Items) == 0 {
		fmt.Println("nothing to restore")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DELETED\tREPOSITORY\tKIND\tNAME\tPOLICY\tRESTORABLE UNTIL\tRESTORE WITH")
	for _, it := range t.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\tartifactstore restore %s\n", it.Deleted.Format(time.RFC3339), it.Repository, it.Kind, it.Name,
			it.Policy, it.RestorableUntil.Format(time.RFC3339), restoreArgs(it.Repository, it.Kind, it.Name))
	}
	return tw.Flush()
}

// describePolicy says in one line what a policy keeps.
func describePolicy(p retention.Policy) string {
	var parts []string
	if p.Tags != nil {
		parts = append(parts, "tags: "+describeKeep(*p.Tags))
	}
	if p.Versions != nil {
		parts = append(parts, "versions: "+describeKeep(*p.Versions))
	}
	if p.Untagged != nil {
		parts = append(parts, "untagged: delete after "+string(p.Untagged.DeleteAfter))
	}
	if len(p.ImmutableTags) > 0 {
		parts = append(parts, "immutable tags: "+strings.Join(p.ImmutableTags, " "))
	}
	return strings.Join(parts, "; ")
}

func describeKeep(k retention.KeepRules) string {
	var rules []string
	if k.KeepLast > 0 {
		by := ""
		if k.By == retention.ByPull {
			by = " by pull"
		}
		rules = append(rules, fmt.Sprintf("keep last %d%s", k.KeepLast, by))
	}
	if k.KeepPulledWithin != "" {
		rules = append(rules, "pulled within "+string(k.KeepPulledWithin))
	}
	if k.KeepYoungerThan != "" {
		rules = append(rules, "younger than "+string(k.KeepYoungerThan))
	}
	if len(k.Keep) > 0 {
		rules = append(rules, "keep "+strings.Join(k.Keep, " "))
	}
	return strings.Join(rules, ", ")
}

// count writes "1 deletion", "3 deletions".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
