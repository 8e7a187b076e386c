package registry

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/internal/logbuf"
	"github.com/artifact-store/artifact-store/internal/logfmt"
)

// BenchmarkRequestObservation is what a request costs the server for
// being observed: its request line (text, through logbuf to a file, as
// serve logs) and its metrics, measured apart from the HTTP work around
// them, whose own cost BenchmarkManifestGet measures.
func BenchmarkRequestObservation(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "requests.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lw := logbuf.New(f, 1<<20)
	defer lw.Close()
	for _, c := range []struct {
		name    string
		logger  *slog.Logger
		metrics bool
	}{
		{"none", slog.New(logfmt.NewText(lw, &slog.HandlerOptions{Level: slog.LevelWarn})), false},
		{"metrics", slog.New(logfmt.NewText(lw, &slog.HandlerOptions{Level: slog.LevelWarn})), true},
		{"log", slog.New(logfmt.NewText(lw, nil)), false},
		{"both", slog.New(logfmt.NewText(lw, nil)), true},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := &Registry{logger: c.logger}
			if c.metrics {
				r.metrics = buildMetrics()
			}
			req := httptest.NewRequest(http.MethodGet, "/v2/team/app/manifests/v1", nil)
			req.RemoteAddr = "10.0.0.7:37036"
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := &recorder{id: "5d10d372c40dec00", route: "/v2/{name}/manifests/{reference}", repo: "team/app", principal: "anonymous", status: 200, written: 1574}
					r.finish(context.Background(), rec, req, 228*time.Microsecond, nil)
				}
			})
		})
	}
}
