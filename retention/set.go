package retention

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Set is a checked set of policies, ordered by name, ready to answer
// ImmutableTag and Plan. It is immutable; a policy change builds a new Set.
type Set struct {
	policies []*compiled
}

// Compile validates every policy and builds a Set. Names must be unique:
// deletions are attributed to a policy by name.
func Compile(policies []Policy) (*Set, error) {
	s := &Set{}
	for _, p := range policies {
		c, err := compile(p)
		if err != nil {
			return nil, err
		}
		s.policies = append(s.policies, c)
	}
	slices.SortFunc(s.policies, func(a, b *compiled) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(s.policies); i++ {
		if s.policies[i].name == s.policies[i-1].name {
			return nil, fmt.Errorf("policy %s: defined twice: names are unique", s.policies[i].name)
		}
	}
	return s, nil
}

// Applicable returns the names of the policies that apply to repo (one of
// their globs matches it), in the Set's order.
func (s *Set) Applicable(repo string) []string {
	var names []string
	for _, c := range s.applicable(repo) {
		names = append(names, c.name)
	}
	return names
}

func (s *Set) applicable(repo string) []*compiled {
	var out []*compiled
	for _, c := range s.policies {
		for _, g := range c.repos {
			if g.Match(repo) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// ImmutableTag reports whether tag of repo is immutable, and by the first
// policy (by name) that makes it so: the registry refuses to move or delete
// it for anyone but an admin, and Plan never deletes it.
func (s *Set) ImmutableTag(repo, tag string) (policy string, ok bool) {
	for _, c := range s.applicable(repo) {
		if matchAny(c.immutable, tag) {
			return c.name, true
		}
	}
	return "", false
}

// matchAny reports whether name matches one of the (checked) patterns.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
