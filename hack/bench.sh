#!/usr/bin/env bash
# make bench: our offline verify against the floor a user could reach by hand
# (raw signature verification with the same key), measured side by side in one
# `go test -bench` run, printed as ratios. Target: raw/ours >= 0.90.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"
COUNT="${BENCH_COUNT:-5}"
out="$(go test ./pkg/jwt -run '^$' -bench '^Benchmark(VerifyRS256|RawRSAVerify|VerifyES256|RawECDSAVerify)$' -benchtime "${BENCH_TIME:-1s}" -count "${COUNT}" -benchmem)"
echo "${out}" | grep -E '^Benchmark' >&2
echo "${out}" | awk '
  /^Benchmark/ {
    name=$1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    for (i = 2; i <= NF; i++) if ($(i+1) == "ns/op") { sum[name] += $i; n[name]++ }
  }
  END {
    printf "\n%-28s %12s %12s %8s\n", "offline verify vs raw", "ours ns/op", "raw ns/op", "raw/ours"
    split("RS256:RawRSAVerify ES256:RawECDSAVerify", pairs, " ")
    bad = 0
    for (p in pairs) {
      split(pairs[p], kv, ":"); ours = "Verify" kv[1]; raw = kv[2]
      if (!n[ours] || !n[raw]) { printf "missing benchmark %s or %s\n", ours, raw; bad = 1; continue }
      o = sum[ours] / n[ours]; r = sum[raw] / n[raw]
      printf "%-28s %12.0f %12.0f %8.2f%s\n", kv[1], o, r, r / o, (r / o < 0.90 ? "  BELOW TARGET 0.90" : "")
    }
    exit bad
  }'
