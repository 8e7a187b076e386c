package registry_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/artifact-store/artifact-store/"

// allowedImports is the project's import direction: cmd -> registry ->
// {auth, eventlog, blobstore, manifests, retention}, with digest as the leaf vocabulary
// and migrations as embedded data; internal/lru is a leaf container the
// caches of eventlog and registry share. Backends import their domain package; no
// library imports a backend. auth (TLS, identities) imports nothing of the
// project, so that registry and cmd can both use it; retention (pure policy
// decisions) only auth, for its repository globs.
var allowedImports = map[string][]string{
	"digest":                   {},
	"migrations":               {},
	"blobstore":                {"digest"},
	"blobstore/fs":             {"blobstore", "digest"},
	"blobstore/s3":             {"blobstore", "digest"},
	"blobstore/s3/s3test":      {},
	"blobstore/blobstoretest":  {"blobstore", "digest"},
	"manifests":                {"digest"},
	"eventlog":                 {"migrations", "internal/lru"},
	"eventlog/sqlite":          {"eventlog"},
	"eventlog/postgres":        {"eventlog"},
	"eventlog/postgres/pgtest": {},
	"eventlog/eventlogtest":    {"eventlog"},
	"auth":                     {},
	"internal/logbuf":          {},
	"internal/logfmt":          {},
	"internal/lru":             {},
	"retention":                {"auth"},
	"registry":                 {"auth", "blobstore", "digest", "eventlog", "internal/lru", "manifests", "retention"},
	"client":                   {"digest", "manifests", "registry"},
}

// ociModules confines the OCI libraries to the packages that handle OCI
// documents (ADR 0005): image-spec's types in manifests, which parses and
// derives them, and registry, which serves them; go-digest's Digest also in
// digest, which converts it to the store's own type (FromOCI). The store
// below them (blobstore, eventlog) and the native client speak the project's
// digest package and plain strings.
var ociModules = map[string][]string{
	"github.com/opencontainers/image-spec/": {"manifests", "registry"},
	"github.com/opencontainers/go-digest":   {"digest", "manifests", "registry"},
}

// metricsModules confines Prometheus and OpenTelemetry to the package that
// defines the server's metrics and spans, and to cmd: the libraries below
// report through their own small hooks (eventlog.Observer and Tracer,
// blobstore.Store.SetObserver and SetTracer) and stay usable without them.
var metricsModules = map[string][]string{
	"github.com/prometheus/": {"registry"},
	"go.opentelemetry.io/":   {"registry"},
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		allowed, known := allowedImports[pkg]
		if strings.HasPrefix(pkg, "cmd/") || strings.HasPrefix(pkg, "conformance") {
			continue // cmd wires everything
		}
		if !known {
			t.Errorf("package %s has no entry in allowedImports: decide where it sits", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			for mod, users := range ociModules {
				if (imp == mod || strings.HasPrefix(imp, mod)) && !slices.Contains(users, pkg) {
					t.Errorf("%s imports %s; only %v may (ADR 0005)", pkg, imp, users)
				}
			}
			for mod, users := range metricsModules {
				if strings.HasPrefix(imp, mod) && !slices.Contains(users, pkg) {
					t.Errorf("%s imports %s; only %v (and cmd) may", pkg, imp, users)
				}
			}
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			ok := false
			for _, a := range allowed {
				ok = ok || a == dep
			}
			if !ok {
				t.Errorf("%s imports %s, against the import direction", pkg, dep)
			}
		}
	}
}
