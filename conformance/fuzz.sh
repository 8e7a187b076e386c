#!/usr/bin/env bash
# Runs one fuzz target for FUZZTIME:
#
#   conformance/fuzz.sh PACKAGE TARGET FUZZTIME
#
# A failure the fuzzer found (a crasher, written under testdata/fuzz)
# fails at once. The Go fuzzing engine can also fail a run that found
# nothing with "context deadline exceeded" when a worker is slow to stop
# as the time runs out on a loaded machine (golang/go#56238): only that,
# with no new crasher, is run again, once.
set -uo pipefail
pkg=$1 target=$2 fuzztime=$3
for attempt in 1 2; do
  out=$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" 2>&1)
  rc=$?
  echo "$out"
  [ $rc -eq 0 ] && exit 0
  if [ $attempt -eq 1 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
    echo "fuzz.sh: $target stopped with the engine's deadline error and no failing input: running it once more"
    continue
  fi
  exit $rc
done
