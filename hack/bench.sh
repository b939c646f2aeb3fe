#!/usr/bin/env bash
# make bench: offline verify against the floor a user could reach by hand (raw
# signature verification with the same key). BenchmarkVerifyVsRaw alternates
# both on every iteration, so a neighbour's load hits both alike; the median
# of ROUNDS runs is printed. Target: raw/ours >= 0.90.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"
go test ./pkg/jwt -run '^$' -bench '^BenchmarkVerifyVsRaw$' -benchtime "${BENCH_TIME:-2s}" -count "${BENCH_ROUNDS:-7}" |
  tee /dev/stderr | awk '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  /^BenchmarkVerifyVsRaw\// {
    alg = $1; sub(/^BenchmarkVerifyVsRaw\//, "", alg); sub(/-[0-9]+$/, "", alg)
    for (i = 2; i < NF; i++) {
      if ($(i+1) == "ours-ns/op") ours[alg, ++no[alg]] = $i
      if ($(i+1) == "raw-ns/op") raw[alg, ++nr[alg]] = $i
      if ($(i+1) == "raw/ours") ratio[alg, ++nq[alg]] = $i
    }
    algs[alg] = 1
  }
  END {
    printf "\noffline verify vs raw signature check, interleaved, median of runs\n"
    printf "%-8s %12s %12s %9s\n", "alg", "ours ns/op", "raw ns/op", "raw/ours"
    for (alg in algs) {
      n = nq[alg]
      for (i = 1; i <= n; i++) { o[i] = ours[alg, i]; r[i] = raw[alg, i]; q[i] = ratio[alg, i] }
      m = median(q, n)
      printf "%-8s %12.0f %12.0f %9.2f%s\n", alg, median(o, n), median(r, n), m, (m < 0.90 ? "  BELOW TARGET 0.90" : "")
    }
  }'

# wait vs the documented `oc get ...; sleep 10` loop: how soon each notices the
# final status write of a simulated rollout, on a real control plane (needs
# `make controlplane`). Target: wait-max-ms < 1000.
echo
echo "wait vs a 10 s poll loop, ${WAIT_ROLLOUTS:-100} simulated rollouts on a real kube-apiserver"
go test ./test/e2e/rotate -run '^$' -bench '^BenchmarkWaitNoticesFinalStatus$' -benchtime "${WAIT_ROLLOUTS:-100}x" -count 1 |
  grep -E '^(Benchmark|ok|FAIL|---)'
