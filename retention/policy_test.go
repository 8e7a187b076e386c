package retention

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fullPolicy = `
name: default
repositories: ["team/**", "tools/*"]
tags:
  keepLast: 10
  by: pull
  keepPulledWithin: 720h
  keepYoungerThan: 7d
  keep: ["v*", "latest"]
untagged:
  deleteAfter: 24h
versions:
  keepLast: 5
immutableTags: ["v*"]
`

// TestParseRoundTrip: a policy reads back from its JSON form as written,
// durations in the user's spelling.
func TestParseRoundTrip(t *testing.T) {
	p, err := Parse([]byte(fullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"name":"default","repositories":["team/**","tools/*"],` +
		`"tags":{"keepLast":10,"by":"pull","keepPulledWithin":"720h","keepYoungerThan":"7d","keep":["v*","latest"]},` +
		`"untagged":{"deleteAfter":"24h"},"versions":{"keepLast":5},"immutableTags":["v*"]}`
	if string(js) != want {
		t.Errorf("JSON form:\n got %s\nwant %s", js, want)
	}
	back, err := Parse(js)
	if err != nil {
		t.Fatalf("parse the JSON form: %v", err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip: got %+v, want %+v", back, p)
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[Duration]time.Duration{
		"90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "720h": 720 * time.Hour,
		"1h30m": 90 * time.Minute, " 36h ": 36 * time.Hour, "": 0,
	} {
		if got, err := in.Value(); err != nil || got != want {
			t.Errorf("Duration(%q).Value() = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []Duration{"90", "1.5d", "d", "-d", "90x", "99999999999999d"} {
		if _, err := bad.Value(); err == nil {
			t.Errorf("Duration(%q) accepted", bad)
		}
	}
}

// TestParseErrors: each mistake is refused with an error naming the field.
func TestParseErrors(t *testing.T) {
	const head = "name: p\nrepositories: [\"**\"]\n"
	cases := map[string]struct{ doc, want string }{
		"empty":              {"", "empty policy"},
		"no name":            {"repositories: [\"**\"]\ntags: {keepLast: 1}\n", `policy name ""`},
		"bad name":           {"name: Default\nrepositories: [\"**\"]\ntags: {keepLast: 1}\n", `policy name "Default"`},
		"long name":          {"name: " + strings.Repeat("a", 65) + "\nrepositories: [\"**\"]\ntags: {keepLast: 1}\n", "1 to 64"},
		"no repositories":    {"name: p\ntags: {keepLast: 1}\n", "repositories: required"},
		"bad glob":           {"name: p\nrepositories: [\"team//x\"]\ntags: {keepLast: 1}\n", "repositories[0]: repository glob"},
		"bad ** glob":        {"name: p\nrepositories: [\"a\", \"team/x**\"]\ntags: {keepLast: 1}\n", "repositories[1]"},
		"unknown field":      {head + "tags: {keeplast: 1}\n", "field keeplast not found"},
		"unknown top field":  {head + "tag: {keepLast: 1}\n", "field tag not found"},
		"no rule at all":     {head, "no rule: set tags, untagged, versions or immutableTags"},
		"empty tags block":   {head + "tags: {}\n", "tags: no rule"},
		"empty versions":     {head + "versions: {by: push}\n", "versions: by: orders keepLast"},
		"negative keepLast":  {head + "tags: {keepLast: -1}\n", "tags: keepLast: must not be negative"},
		"bad by":             {head + "tags: {keepLast: 3, by: age}\n", `tags: by: "age" is neither push nor pull`},
		"negative duration":  {head + "tags: {keepYoungerThan: -1h}\n", "tags: keepYoungerThan: must not be negative"},
		"zero duration":      {head + "versions: {keepPulledWithin: 0s}\n", "versions: keepPulledWithin: 0s keeps nothing"},
		"bad duration":       {head + "tags: {keepPulledWithin: 30 days}\n", `tags: keepPulledWithin: "30 days" is not a duration`},
		"unitless duration":  {head + "tags: {keepYoungerThan: 90}\n", `tags: keepYoungerThan: "90" is not a duration`},
		"fractional days":    {head + "tags: {keepYoungerThan: 1.5d}\n", "days are a whole number"},
		"bad keep pattern":   {head + "tags: {keep: [\"v*\", \"[x\"]}\n", `tags: keep: [1] "[x" is not a pattern`},
		"empty keep pattern": {head + "tags: {keep: [\"\"]}\n", `tags: keep: [0] "" is not a pattern`},
		"slash in pattern":   {head + "tags: {keep: [\"a/b\"]}\n", "can never match"},
		"bad immutable":      {head + "immutableTags: [\"v[\"]\n", `immutableTags: [0] "v["`},
		"no deleteAfter":     {head + "untagged: {}\n", "untagged.deleteAfter: required"},
		"zero deleteAfter":   {head + "untagged: {deleteAfter: 0h}\n", "untagged.deleteAfter: required"},
		"bad deleteAfter":    {head + "untagged: {deleteAfter: soon}\n", `untagged.deleteAfter: "soon" is not a duration`},
		"string keepLast":    {head + "tags: {keepLast: ten}\n", "cannot unmarshal"},
		"two documents":      {head + "tags: {keepLast: 1}\n---\n" + head, "one YAML document per policy"},
		"not yaml":           {"name: [", "policy: yaml"},
		"json unknown field": {`{"name":"p","repositories":["**"],"tags":{"keepLast":1},"extra":1}`, `unknown field "extra"`},
		"json bad type":      {`{"name":"p","repositories":["**"],"tags":{"keepLast":"1"}}`, "keepLast"},
		"json two objects":   {`{"name":"p","repositories":["**"],"tags":{"keepLast":1}} {}`, "one JSON object per policy"},
	}
	for name, c := range cases {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestCompile(t *testing.T) {
	a := Policy{Name: "a", Repositories: []string{"**"}, ImmutableTags: []string{"v*"}}
	if _, err := Compile([]Policy{a, a}); err == nil || !strings.Contains(err.Error(), "policy a: defined twice") {
		t.Errorf("duplicate names: got %v", err)
	}
	if _, err := Compile([]Policy{a, {Name: "b"}}); err == nil || !strings.Contains(err.Error(), "policy b: repositories") {
		t.Errorf("an invalid policy: got %v", err)
	}
	if s, err := Compile(nil); err != nil || s.Plan(Snapshot{Repositories: []Repository{{Name: "x", Tags: []Tag{{Name: "t"}}}}}) != nil {
		t.Errorf("no policies: %v, or a plan that deletes", err)
	}
}

func TestImmutableTag(t *testing.T) {
	s := mustSet(t,
		"name: team\nrepositories: [\"team/**\"]\nimmutableTags: [\"v*\", \"release-?\"]\n",
		"name: all\nrepositories: [\"**\"]\nimmutableTags: [\"stable\"]\ntags: {keepLast: 1}\n",
	)
	cases := []struct {
		repo, tag, policy string
	}{
		{"team/app", "v1.2", "team"},
		{"team/app", "release-1", "team"},
		{"team/app", "release-10", ""},
		{"team/app", "stable", "all"},
		{"other/app", "v1.2", ""},
		{"other/app", "stable", "all"},
		{"team/app", "latest", ""},
	}
	for _, c := range cases {
		got, ok := s.ImmutableTag(c.repo, c.tag)
		if got != c.policy || ok != (c.policy != "") {
			t.Errorf("ImmutableTag(%s, %s) = %q, %v; want %q", c.repo, c.tag, got, ok, c.policy)
		}
	}
	if got := s.Applicable("team/app"); !reflect.DeepEqual(got, []string{"all", "team"}) {
		t.Errorf("Applicable(team/app) = %v", got)
	}
}

// mustSet parses and compiles YAML policies.
func mustSet(t *testing.T, docs ...string) *Set {
	t.Helper()
	var ps []Policy
	for _, d := range docs {
		p, err := Parse([]byte(d))
		if err != nil {
			t.Fatalf("parse %q: %v", d, err)
		}
		ps = append(ps, p)
	}
	s, err := Compile(ps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
