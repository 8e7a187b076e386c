package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Retention in the soak: every server applies a policy every second to
// soakRetRepo, where a client of its own pushes a new tag every few
// hundred milliseconds (now and then an untagged manifest) and restores
// the latest deletion now and then, while the collectors run as for the
// rest of the load. At the end the policy must have nothing left to
// delete, every tag left must pull whole, and no request may have met a
// 5xx other than a 503.

const soakRetRepo = "soak-ret/app"

// soakRetPolicy keeps the last 2 tags by push and deletes untagged
// manifests once 2s old.
const soakRetPolicy = "repositories: [\"soak-ret/**\"]\ntags:\n  keepLast: 2\nuntagged:\n  deleteAfter: 2s\n"

var retentionTask = soakTask{
	name:    "retention",
	flags:   []string{"--retention-interval", soakGCInterval.String()},
	settle:  3 * time.Second, // untagged manifests pass deleteAfter, then one run
	settled: retentionSettled,
	figures: retentionFigures,
	load:    retentionLoad,
}

func init() { soakTasks = append(soakTasks, retentionTask) }

// retentionLoad sets the policy, then pushes and restores until deadline;
// it returns the failures it saw and what it did.
func retentionLoad(t *testing.T, g *soakTarget, deadline time.Time) (ops map[string]int, failures []string) {
	c := &http.Client{Timeout: 30 * time.Second}
	ops = map[string]int{}
	fail := func(format string, args ...any) {
		failures = append(failures, "retention load on "+g.name+": "+fmt.Sprintf(format, args...))
	}
	r, err := call(c, "PUT", g.base()+"/api/v1/retention/policies/soak", []byte(soakRetPolicy))
	if err != nil || r.status != http.StatusOK {
		fail("set the policy: %v %s", err, r)
		return ops, failures
	}
	for i := 0; time.Now().Before(deadline); i++ {
		img := newImage(soakRetRepo, fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","ret":%d,"target":%q}`, i, g.name), soakLayers[i%len(soakLayers)])
		tag := fmt.Sprintf("r%d", i)
		if i%5 == 4 {
			tag = img.digest // untagged
		}
		switch err := pushImage(c, g.base(), img, tag); {
		case err == nil:
			ops["push"]++
		case strings.Contains(err.Error(), " 503 "):
			ops["push retried"]++
		default:
			fail("push %s: %v", tag, err)
		}
		if i%7 == 6 {
			ops[restoreLatest(c, g.base(), fail)]++
		}
		time.Sleep(150 * time.Millisecond)
	}
	return ops, failures
}

// restoreLatest restores the latest tag retention deleted, if any, and
// says what happened: a restore may lose to the next run or the undo
// window, never with a 5xx.
func restoreLatest(c *http.Client, base string, fail func(string, ...any)) string {
	r, err := call(c, "GET", base+"/api/v1/retention/trash?repository="+soakRetRepo, nil)
	if err != nil || r.status != http.StatusOK {
		fail("trash: %v %s", err, r)
		return "trash failed"
	}
	var trash struct{ Items []struct{ Kind, Name string } }
	json.Unmarshal(r.body, &trash)
	name := ""
	for _, it := range trash.Items {
		if it.Kind == "tag" {
			name = it.Name
		}
	}
	if name == "" {
		return "nothing to restore"
	}
	r, err = call(c, "POST", base+"/api/v1/retention/restore", fmt.Appendf(nil, `{"repository":%q,"kind":"tag","name":%q}`, soakRetRepo, name))
	switch {
	case err != nil || r.status >= 500 && r.status != http.StatusServiceUnavailable:
		fail("restore %s: %v %s", name, err, r)
		return "restore failed"
	case r.status == http.StatusOK:
		return "restore"
	}
	return "restore refused"
}

// retentionSettled: the policy has nothing left to delete, at most the 2
// newest tags remain, and each pulls whole.
func retentionSettled(t *testing.T, g *soakTarget) (string, bool) {
	c := &http.Client{Timeout: 30 * time.Second}
	r, err := call(c, "GET", g.base()+"/api/v1/retention/plan", nil)
	if err != nil || r.status != http.StatusOK {
		return fmt.Sprintf("plan: %v %s", err, r), false
	}
	var plan struct{ Items []json.RawMessage }
	json.Unmarshal(r.body, &plan)
	r, err = call(c, "GET", g.base()+"/v2/"+soakRetRepo+"/tags/list", nil)
	if err != nil || r.status != http.StatusOK {
		return fmt.Sprintf("tags: %v %s", err, r), false
	}
	var tags struct{ Tags []string }
	json.Unmarshal(r.body, &tags)
	if len(plan.Items) > 0 || len(tags.Tags) > 2 {
		return fmt.Sprintf("%d deletions planned, %d tags", len(plan.Items), len(tags.Tags)), false
	}
	for _, tag := range tags.Tags {
		if err := pullTag(c, g.base(), soakRetRepo, tag); err != nil {
			t.Errorf("%s: a tag retention kept does not pull: %v", g.name, err)
		}
	}
	return "", true
}

// pullTag pulls repo:tag's manifest and every blob it names, checking
// their digests.
func pullTag(c *http.Client, base, repo, tag string) error {
	r, err := call(c, "GET", base+"/v2/"+repo+"/manifests/"+tag, nil, "Accept", ociManifest)
	if err != nil || r.status != http.StatusOK {
		return fmt.Errorf("manifest %s:%s: %v %s", repo, tag, err, r)
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(r.body, &m); err != nil {
		return err
	}
	for _, d := range append([]string{m.Config.Digest}, func() (ds []string) {
		for _, l := range m.Layers {
			ds = append(ds, l.Digest)
		}
		return ds
	}()...) {
		r, err := call(c, "GET", base+"/v2/"+repo+"/blobs/"+d, nil)
		if err != nil || r.status != http.StatusOK || sha(r.body) != d {
			return fmt.Errorf("blob %s of %s:%s: %v %s", d, repo, tag, err, r)
		}
	}
	return nil
}

// retentionFigures counts the deletions the policy made, by kind and rule.
func retentionFigures(c *http.Client, base string, _ time.Time) (string, error) {
	counts := map[string]int{}
	err := readEvents(c, base, []string{"tag.deleted", "manifest.deleted", "retention.purged"}, func(e soakEvent) error {
		var p struct{ Policy, Rule string }
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			return err
		}
		if p.Policy != "" {
			counts[strings.TrimSuffix(e.Type, ".deleted")+" by "+p.Rule]++
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(counts) == 0 {
		return "", fmt.Errorf("the policy deleted nothing")
	}
	return fmt.Sprintf("deletions %v", counts), nil
}
