#!/usr/bin/env bash
# Runs the official OCI distribution-spec conformance suite against a fresh
# artifactstore server, twice: spec 1.1 defaults, then OCI_VERSION=dev with
# sparse manifests. Fails unless every test passes and none is skipped.
#
#   conformance/oci.sh [path/to/artifactstore]
#
# The conformance tool is built from the Go module proxy, pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin/artifactstore}
TOOLS=${TOOLS:-$PWD/tools}
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
if [ ! -x "$TOOLS/conformance" ]; then
  GOBIN="$TOOLS" go install "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION"
fi
. conformance/lib.sh

run_suite() { # name, extra server flags, then env assignments for the tool
  local name=$1 flags=$2; shift 2
  local dir; dir=$(mktemp -d)
  start_server "$dir" $flags
  local results="$PWD/results/conformance-$name"
  rm -rf "$results"; mkdir -p "$results"
  echo "== OCI conformance ($name) against $ADDR"
  set +e
  (cd "$dir" && env OCI_REGISTRY="$ADDR" OCI_TLS=disabled OCI_RESULTS_DIR="$results" \
     OCI_REPO1=conformance/repo1 OCI_REPO2=conformance/repo2 OCI_LOG=error "$@" "$TOOLS/conformance") > "$results/stdout.txt" 2>&1
  local rc=$?
  set -e
  stop_server
  rm -rf "$dir"
  check_results "$name" "$results" "$rc" "$MAX_DISABLED"
}

check_results() {
  local name=$1 results=$2 rc=$3 max_disabled=$4
  # The tool's text report has one line per test: "<path>: <Status>".
  count() { grep -c ": $1\$" "$results/stdout.txt" || true; }
  local pass fail errs skip disabled
  pass=$(count Pass); fail=$(count Fail); errs=$(count Error); skip=$(count Skip); disabled=$(count Disabled)
  echo "conformance $name: $pass passed, $fail failed, $errs errors, $skip skipped, $disabled disabled by the tool's configuration (tool exit $rc)"
  if [ "$rc" != 0 ] || [ "$fail" != 0 ] || [ "$errs" != 0 ] || [ "$skip" != 0 ] || [ "$disabled" -gt "$max_disabled" ] || [ "$pass" -lt 100 ]; then
    grep -E ': (Fail|Error|Skip)$' "$results/stdout.txt" | head -40
    grep -B2 -A10 '<failure\|<error' "$results/junit.xml" | head -80
    exit 1
  fi
}

# Spec 1.1 defaults leave upload cancel untested: its two tests show as
# Disabled. The dev run tests everything.
MAX_DISABLED=2 run_suite v1.1 "" OCI_VERSION=1.1
MAX_DISABLED=0 run_suite dev-sparse "--allow-sparse-manifests" OCI_VERSION=dev OCI_DATA_SPARSE=true
echo "conformance: all passed"
