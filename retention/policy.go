package retention

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/artifact-store/artifact-store/auth"
)

// Policy is one retention policy as written (YAML or JSON, same field
// names). Its JSON encoding is its canonical form: fields in this order,
// empty ones omitted, durations as the user spelled them ("90d" stays
// "90d"), so a policy shown back reads as it was written.
type Policy struct {
	Name          string     `yaml:"name" json:"name"`
	Repositories  []string   `yaml:"repositories" json:"repositories"`
	Tags          *KeepRules `yaml:"tags,omitempty" json:"tags,omitempty"`
	Untagged      *Untagged  `yaml:"untagged,omitempty" json:"untagged,omitempty"`
	Versions      *KeepRules `yaml:"versions,omitempty" json:"versions,omitempty"`
	ImmutableTags []string   `yaml:"immutableTags,omitempty" json:"immutableTags,omitempty"`
}

// KeepRules says which tags (or native versions) to keep; the rest go.
// The rules are OR'ed: an item any rule keeps is kept. Zero values are
// rules not set.
type KeepRules struct {
	KeepLast         int      `yaml:"keepLast,omitempty" json:"keepLast,omitempty"`
	By               string   `yaml:"by,omitempty" json:"by,omitempty"` // ByPush (default) or ByPull
	KeepPulledWithin Duration `yaml:"keepPulledWithin,omitempty" json:"keepPulledWithin,omitempty"`
	KeepYoungerThan  Duration `yaml:"keepYoungerThan,omitempty" json:"keepYoungerThan,omitempty"`
	Keep             []string `yaml:"keep,omitempty" json:"keep,omitempty"`
}

// Orders of KeepRules.KeepLast.
const (
	ByPush = "push"
	ByPull = "pull" // never pulled counts as pulled when pushed
)

// Untagged says when manifests nothing reaches are deleted.
type Untagged struct {
	DeleteAfter Duration `yaml:"deleteAfter" json:"deleteAfter"`
}

// Duration is a duration as written: Go syntax ("36h", "90m", "1h30m")
// or whole days ("90d"). It is kept as text so that a policy reads back
// as written; Value parses it.
type Duration string

// Value parses d. The empty Duration is 0 (a rule not set).
func (d Duration) Value() (time.Duration, error) {
	s := strings.TrimSpace(string(d))
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > int64((1<<63-1)/(24*time.Hour)) {
			return 0, fmt.Errorf("%q is not a duration: days are a whole number, as in 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write 36h, 90m, 1h30m or 90d", s)
	}
	return v, nil
}

// Parse reads one policy from YAML or JSON (a document starting with
// '{'), refusing unknown fields, and validates it.
func Parse(data []byte) (Policy, error) { return ParseNamed(data, "") }

// ParseNamed is Parse for a document that may leave the name out (an API
// whose URL names the policy): the policy gets name if it has none.
func ParseNamed(data []byte, name string) (Policy, error) {
	var p Policy
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return p, errors.New("empty policy: write at least name and repositories")
	}
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return p, fmt.Errorf("policy: %w", err)
		}
		if dec.More() {
			return p, errors.New("policy: one JSON object per policy")
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(trimmed))
		dec.KnownFields(true) // a misspelt "keeplast" must not silently keep nothing
		if err := dec.Decode(&p); err != nil {
			return p, fmt.Errorf("policy: %w", err)
		}
		if err := dec.Decode(new(any)); err != io.EOF {
			return p, errors.New("policy: one YAML document per policy")
		}
	}
	if p.Name == "" {
		p.Name = name
	}
	return p, p.Validate()
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Validate checks p, naming the field at fault in its error.
func (p Policy) Validate() error {
	_, err := compile(p)
	return err
}

// compiled is a valid policy ready to evaluate.
type compiled struct {
	name      string
	repos     []auth.Glob
	tags      *keepRules
	versions  *keepRules
	untagged  *untaggedRule
	immutable []string // tag patterns
}

type keepRules struct {
	last         int
	byPull       bool
	pulledWithin time.Duration
	youngerThan  time.Duration
	keep         []string
	src          KeepRules // a copy, for reasons in the user's spelling
}

type untaggedRule struct {
	after time.Duration
	src   Duration
}

func compile(p Policy) (*compiled, error) {
	if !nameRE.MatchString(p.Name) {
		return nil, fmt.Errorf("policy name %q: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", p.Name)
	}
	fail := func(field string, err error) error { return fmt.Errorf("policy %s: %s: %w", p.Name, field, err) }
	c := &compiled{name: p.Name}
	if len(p.Repositories) == 0 {
		return nil, fail("repositories", errors.New("required: at least one glob, such as team/** or **"))
	}
	for i, pat := range p.Repositories {
		g, err := auth.CompileGlob(pat)
		if err != nil {
			return nil, fail(fmt.Sprintf("repositories[%d]", i), err)
		}
		c.repos = append(c.repos, g)
	}
	var err error
	if c.tags, err = compileKeep(p.Tags); err != nil {
		return nil, fail("tags", err)
	}
	if c.versions, err = compileKeep(p.Versions); err != nil {
		return nil, fail("versions", err)
	}
	if p.Untagged != nil {
		after, err := p.Untagged.DeleteAfter.Value()
		switch {
		case err != nil:
			return nil, fail("untagged.deleteAfter", err)
		case after <= 0:
			return nil, fail("untagged.deleteAfter", errors.New("required: a positive duration, such as 24h"))
		}
		c.untagged = &untaggedRule{after: after, src: p.Untagged.DeleteAfter}
	}
	if err := checkTagPatterns(p.ImmutableTags); err != nil {
		return nil, fail("immutableTags", err)
	}
	c.immutable = slices.Clone(p.ImmutableTags) // a Set does not change with its caller's slices
	if c.tags == nil && c.versions == nil && c.untagged == nil && len(c.immutable) == 0 {
		return nil, fmt.Errorf("policy %s: no rule: set tags, untagged, versions or immutableTags", p.Name)
	}
	return c, nil
}

// compileKeep checks a tags or versions block; nil stays nil (no block).
func compileKeep(k *KeepRules) (*keepRules, error) {
	if k == nil {
		return nil, nil
	}
	r := &keepRules{last: k.KeepLast, keep: slices.Clone(k.Keep), src: *k}
	if k.KeepLast < 0 {
		return nil, fmt.Errorf("keepLast: must not be negative (got %d)", k.KeepLast)
	}
	switch k.By {
	case "", ByPush:
	case ByPull:
		r.byPull = true
	default:
		return nil, fmt.Errorf("by: %q is neither push nor pull", k.By)
	}
	if k.By != "" && k.KeepLast == 0 {
		return nil, errors.New("by: orders keepLast, which is not set")
	}
	for _, d := range []struct {
		field string
		src   Duration
		dst   *time.Duration
	}{{"keepPulledWithin", k.KeepPulledWithin, &r.pulledWithin}, {"keepYoungerThan", k.KeepYoungerThan, &r.youngerThan}} {
		v, err := d.src.Value()
		if err == nil && v < 0 {
			err = fmt.Errorf("must not be negative (got %s)", d.src)
		}
		if err == nil && v == 0 && d.src != "" {
			err = fmt.Errorf("%s keeps nothing: remove it or give a positive duration", d.src)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.field, err)
		}
		*d.dst = v
	}
	if err := checkTagPatterns(k.Keep); err != nil {
		return nil, fmt.Errorf("keep: %w", err)
	}
	if r.last == 0 && r.pulledWithin == 0 && r.youngerThan == 0 && len(r.keep) == 0 {
		return nil, errors.New("no rule: set keepLast, keepPulledWithin, keepYoungerThan or keep (or remove the block)")
	}
	return r, nil
}

// checkTagPatterns checks path.Match patterns over tag names.
func checkTagPatterns(pats []string) error {
	for i, pat := range pats {
		if _, err := path.Match(pat, ""); err != nil || pat == "" {
			return fmt.Errorf("[%d] %q is not a pattern: write one like v* or release-?", i, pat)
		}
		if strings.Contains(pat, "/") {
			return fmt.Errorf("[%d] %q can never match: tags contain no '/'", i, pat)
		}
	}
	return nil
}
