#!/usr/bin/env bash
# bench-peers: issue 11's fixed workload against artifactstore and its
# peers in the same run, a table of medians and ratios at the end (also
# written to results/bench-peers.md). The measuring is in Go
# (conformance/benchpeers); this script installs what it runs:
#
#   - CNCF Distribution v3, pinned, built from the Go module proxy into $TOOLS
#   - oras, as the e2e script does (lib.sh)
#   - skopeo from Debian
#   - Debian's docker-registry (Distribution 2.8) when installed or, as
#     root, installable; otherwise that peer is skipped, loudly
#   - zot only when BENCH_ZOT names a binary: zot is not in the Go module
#     proxy, so this script cannot install it; build it from its own
#     sources where you can (its Makefile's binary-minimal target)
#
#   conformance/bench-peers.sh [path/to/artifactstore]
#
# Sizes, counts and rounds: BENCH_* variables (docs/operations.md,
# "Measuring against peers"); BENCH_SMALL=1 for a quick try;
# BENCH_BASELINE=path/to/an/earlier/artifactstore measures that build too,
# in the same rounds, to tell what a change did.
set -euo pipefail
BIN=${1:-$(dirname "$0")/../bin/artifactstore}
if [ -d "$(dirname "$BIN")" ]; then BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN"); fi
[ -x "$BIN" ] || { echo "bench-peers: no server binary at $BIN (run make build)"; exit 1; }
cd "$(dirname "$0")/.."
TOOLS=${TOOLS:-$PWD/tools}
DISTRIBUTION_VERSION=v3.1.2
. conformance/lib.sh

ensure_oras
if ! "$TOOLS/registry" --version 2>/dev/null | grep -q "distribution/v3 ${DISTRIBUTION_VERSION}"; then
  echo "== installing CNCF Distribution $DISTRIBUTION_VERSION into $TOOLS"
  GOBIN="$TOOLS" go install "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
fi
if ! command -v skopeo > /dev/null; then
  echo "== installing skopeo (Debian)"
  apt_install skopeo || echo "*** skopeo could not be installed: its steps are SKIPPED ***"
fi
if ! command -v docker-registry > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing docker-registry, Distribution 2.8 (Debian)"
    apt_install docker-registry || true
  fi
  command -v docker-registry > /dev/null ||
    echo "*** Debian's docker-registry (Distribution 2.8) is not installed (apt-get install docker-registry, as root): that peer is SKIPPED ***"
fi

load=$(cut -d' ' -f1 /proc/loadavg)
echo "== bench-peers: load average $load on $(nproc) CPUs"
exec go run ./conformance/benchpeers \
  --artifactstore "$BIN" \
  --baseline "${BENCH_BASELINE:-}" \
  --distribution "$TOOLS/registry" \
  --docker-registry "$(command -v docker-registry || true)" \
  --zot "${BENCH_ZOT:-}" \
  --oras "$ORAS" \
  --skopeo "$(command -v skopeo || true)" \
  --out results/bench-peers.md
