package eventlog

import "testing"

func TestNumberPlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"SELECT 1":                         "SELECT 1",
		"?":                                "$1",
		"a = ? AND b IN (?, ?)":            "a = $1 AND b IN ($2, $3)",
		"??":                               "$1$2",
		"x ? ? ? ? ? ? ? ? ? ? ? y":        "x $1 $2 $3 $4 $5 $6 $7 $8 $9 $10 $11 y",
		"INSERT INTO t VALUES (?, 'é', ?)": "INSERT INTO t VALUES ($1, 'é', $2)",
	} {
		if got := numberPlaceholders(in); got != want {
			t.Errorf("numberPlaceholders(%q) = %q, want %q", in, got, want)
		}
	}
	l := &Log{dialect: Dialect{Numbered: true}}
	for range 2 { // rewritten, then from what q keeps
		if got := l.q("a = ? OR b = ?"); got != "a = $1 OR b = $2" {
			t.Fatalf("q: %q", got)
		}
	}
}

func BenchmarkQ(b *testing.B) {
	l := &Log{dialect: Dialect{Numbered: true}}
	const query = `SELECT m.digest, m.media_type, m.size, m.sha256, c.bytes FROM tags t JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest LEFT JOIN contents c ON c.sha256 = m.sha256 WHERE t.repo = ? AND t.tag = ?`
	b.Run("kept", func(b *testing.B) {
		for b.Loop() {
			l.q(query)
		}
	})
	b.Run("rewritten", func(b *testing.B) {
		for b.Loop() {
			numberPlaceholders(query)
		}
	})
}
