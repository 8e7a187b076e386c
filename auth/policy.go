package auth

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Policy grants actions on repositories to principals. It is immutable
// once built; a reload builds a new one.
//
// A rule applies to a principal when one of its subjects names it:
//
//	alice            the user (or token subject) alice
//	group:ops        a member of the group ops (groups: in the file)
//	anonymous        everyone, with credentials or without
//	authenticated    every principal that proved an identity
//	cn:build-agent   a client certificate's identity (also dns:, uri:, email:)
//
// and to a repository when one of its globs matches the name: "*" matches
// within one path segment, "**" any number of whole segments (none
// included), as in "team/**" or "**/cache". "admin" implies every action.
type Policy struct {
	rules    []rule
	memberOf map[string][]string // user -> groups
}

type rule struct {
	subjects []string
	repos    []Glob
	actions  []string
}

// PolicyFile is a policy's file form (YAML).
type PolicyFile struct {
	Groups map[string][]string `yaml:"groups"`
	Rules  []RuleFile          `yaml:"rules"`
}

// RuleFile is one rule of a PolicyFile.
type RuleFile struct {
	Subjects     []string `yaml:"subjects"`
	Repositories []string `yaml:"repositories"`
	Actions      []string `yaml:"actions"`
}

// DefaultPolicy is the policy of `serve --htpasswd` without --policy:
// every authenticated user may pull, push and delete everywhere; nobody
// else may do anything.
func DefaultPolicy() *Policy {
	p, err := NewPolicy(PolicyFile{Rules: []RuleFile{{
		Subjects: []string{"authenticated"}, Repositories: []string{"**"},
		Actions: []string{ActionPull, ActionPush, ActionDelete},
	}}})
	if err != nil {
		panic(err) // a constant policy: never
	}
	return p
}

// LoadPolicy reads a policy file. Unknown keys are errors, so that a
// misspelt "repositores" cannot silently grant nothing (or everything).
func LoadPolicy(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var f PolicyFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("policy %s: %w", file, err)
	}
	p, err := NewPolicy(f)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", file, err)
	}
	return p, nil
}

// NewPolicy checks and compiles f.
func NewPolicy(f PolicyFile) (*Policy, error) {
	p := &Policy{memberOf: map[string][]string{}}
	for g, members := range f.Groups {
		if g == "" || strings.ContainsAny(g, ": ") {
			return nil, fmt.Errorf("group %q: a group name is a word without ':' or spaces", g)
		}
		for _, m := range members {
			p.memberOf[m] = append(p.memberOf[m], g)
		}
	}
	for i, rf := range f.Rules {
		if len(rf.Subjects) == 0 || len(rf.Repositories) == 0 || len(rf.Actions) == 0 {
			return nil, fmt.Errorf("rule %d: subjects, repositories and actions are all required", i+1)
		}
		r := rule{subjects: rf.Subjects}
		for _, s := range rf.Subjects {
			if g, ok := strings.CutPrefix(s, "group:"); ok {
				if _, known := f.Groups[g]; !known {
					return nil, fmt.Errorf("rule %d: subject %q names a group the file does not define", i+1, s)
				}
			}
		}
		for _, a := range rf.Actions {
			switch a {
			case ActionPull, ActionPush, ActionDelete, ActionAdmin:
			default:
				return nil, fmt.Errorf("rule %d: unknown action %q (pull, push, delete, admin)", i+1, a)
			}
			r.actions = append(r.actions, a)
		}
		for _, pat := range rf.Repositories {
			g, err := CompileGlob(pat)
			if err != nil {
				return nil, fmt.Errorf("rule %d: %w", i+1, err)
			}
			r.repos = append(r.repos, g)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Allowed reports whether pr may do action on repository repo. For a
// bearer token, the token must grant it too.
func (p *Policy) Allowed(pr Principal, repo, action string) bool {
	if pr.Method == MethodToken && !grants(pr.Access, repo, action) {
		return false
	}
	return p.policyAllows(pr, repo, action)
}

// policyAllows is the policy's own answer, without a token's narrowing:
// what the token service may put in a token.
func (p *Policy) policyAllows(pr Principal, repo, action string) bool {
	if pr.key != nil && pr.key.allows(repo, action) {
		return true
	}
	for _, r := range p.rules {
		if !p.names(r.subjects, pr) {
			continue
		}
		if !slices.Contains(r.actions, action) && !slices.Contains(r.actions, ActionAdmin) {
			continue
		}
		for _, g := range r.repos {
			if g.Match(repo) {
				return true
			}
		}
	}
	return false
}

// AllowedEverywhere reports whether pr holds action on every repository
// (a rule whose globs include "**"): what registry-wide operations, such
// as reading events that belong to no repository, require.
func (p *Policy) AllowedEverywhere(pr Principal, action string) bool {
	if pr.Method == MethodToken {
		return false // tokens grant named repositories only
	}
	if pr.key != nil && pr.key.everywhere(action) {
		return true
	}
	for _, r := range p.rules {
		if !p.names(r.subjects, pr) || (!slices.Contains(r.actions, action) && !slices.Contains(r.actions, ActionAdmin)) {
			continue
		}
		for _, g := range r.repos {
			if g.pattern == "**" {
				return true
			}
		}
	}
	return false
}

// names reports whether one of subjects names pr.
func (p *Policy) names(subjects []string, pr Principal) bool {
	for _, s := range subjects {
		switch {
		case s == Anonymous:
			// What anonymous callers may do, everyone may: logging in
			// never loses access.
			return true
		case pr.KeyID != "":
			// An API key (or its token) holds its own grants, and
			// only anonymous's beside them.
			continue
		case s == "authenticated":
			if pr.Authenticated() {
				return true
			}
		case strings.HasPrefix(s, "group:"):
			if pr.Authenticated() && slices.Contains(p.memberOf[pr.Name], s[len("group:"):]) {
				return true
			}
		default:
			if pr.Authenticated() && (s == pr.Name || slices.Contains(pr.Also, s)) {
				return true
			}
		}
	}
	return false
}
