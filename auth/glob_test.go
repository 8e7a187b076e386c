package auth

import "testing"

// TestGlob: the exported glob names exactly the repositories the policy
// documents, and refuses patterns it cannot mean.
func TestGlob(t *testing.T) {
	matches := []struct {
		pattern, repo string
		want          bool
	}{
		{"team/**", "team/app", true},
		{"team/**", "team/a/b/c", true},
		{"team/**", "team", true}, // ** matches no segment too
		{"team/**", "teams/app", false},
		{"team/*", "team/app", true},
		{"team/*", "team/a/b", false}, // * stays within one segment
		{"**/cache", "x/y/cache", true},
		{"**/cache", "cache", true},
		{"**/cache", "x/cache/y", false},
		{"a/*/c", "a/b/c", true},
		{"a/b?", "a/bc", true},
		{"**", "anything/at/all", true},
	}
	for _, m := range matches {
		g, err := CompileGlob(m.pattern)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", m.pattern, err)
		}
		if got := g.Match(m.repo); got != m.want {
			t.Errorf("%q.Match(%q) = %v, want %v", m.pattern, m.repo, got, m.want)
		}
		if g.String() != m.pattern {
			t.Errorf("String() = %q, want %q", g.String(), m.pattern)
		}
	}
	for _, bad := range []string{"", "/team", "team/", "a//b", "team/a**", "team/[x"} {
		if _, err := CompileGlob(bad); err == nil {
			t.Errorf("CompileGlob(%q) accepted", bad)
		}
	}
	if (Glob{}).Match("x") {
		t.Error("the zero Glob matches a repository")
	}
}
