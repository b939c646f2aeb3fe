#!/usr/bin/env bash
# make bench: every row of bench/rows.txt (the plugin against what a user
# would run instead, both measured in every iteration of one benchmark),
# the median of several runs, written to bench/RESULTS.md and summarised in
# the README. Rows needing a control plane start one (test/bench).
# BENCH_COUNT=N overrides the runs per row; BENCH_ROWS=REGEXP keeps some rows;
# BENCH_ROWS_FILE=bench/rows-NAME.txt runs another set into
# bench/RESULTS-NAME.md (`make bench-scale`: bench/rows-scale.txt).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"
hack/build-controlplane.sh >/dev/null
# The audit log row compares with jq, from the distribution (Debian/Ubuntu:
# apt-get install -y jq); `make test` does not need it.
if ! command -v jq >/dev/null; then
  echo "bench: jq not found (Debian/Ubuntu: apt-get install -y jq)" >&2
  exit 2
fi
exec go run ./hack/benchtable
