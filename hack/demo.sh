#!/usr/bin/env bash
# make demo: start a local control plane and show create -> decode -> verify on
# it. KEEP_CLUSTER=1 leaves the cluster running (stop it with
# `hack/local-cluster.sh down --name demo`).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLUGIN="${REPO}/bin/kubectl-bound_token"
[[ -x "${PLUGIN}" ]] || { echo "demo: run 'make build' first" >&2; exit 2; }
KUBECTL="$("${REPO}/hack/build-controlplane.sh" | tail -n1)/kubectl"

KUBECONFIG="$("${REPO}/hack/local-cluster.sh" up --name demo | tail -n1)"
export KUBECONFIG
if [[ "${KEEP_CLUSTER:-}" != 1 ]]; then
  trap '"${REPO}/hack/local-cluster.sh" down --name demo' EXIT
fi
WORK="$(mktemp -d)"
chmod 700 "${WORK}"
trap 'rm -rf "${WORK}"; [[ "${KEEP_CLUSTER:-}" == 1 ]] || "${REPO}/hack/local-cluster.sh" down --name demo' EXIT

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }
run() { step "$1" "$2"; bash -c "$2"; }
export PATH="${REPO}/bin:$(dirname "${KUBECTL}"):${PATH}"

run "a namespace and a ServiceAccount" "kubectl create namespace demo && kubectl -n demo create serviceaccount builder"
run "create: a 1h token for audience 'vault', written 0600" \
  "kubectl bound-token create builder -n demo --audience vault --duration 1h --output-file ${WORK}/token && ls -l ${WORK}/token"
run "decode: what the token says (nothing verified yet)" "kubectl bound-token decode --token-file ${WORK}/token"
run "verify: signature against the cluster's JWKS, audience checked" \
  "kubectl bound-token verify --token-file ${WORK}/token --audience vault | head -n1"
run "verify: the wrong audience is rejected (exit 1)" \
  "kubectl bound-token verify --token-file ${WORK}/token --audience other | sed -n 1,3p; echo exit=\${PIPESTATUS[0]}"
run "verify: a tampered payload is rejected (exit 1)" \
  "t=\$(cat ${WORK}/token); IFS=. read -r h p s <<<\"\$t\"; p2=\$(printf '%s' \"\$p\" | tr 'A-Za-z' 'B-ZAb-za'); printf '%s.%s.%s' \"\$h\" \"\$p2\" \"\$s\" | kubectl bound-token verify - | sed -n 1,3p; echo exit=\${PIPESTATUS[1]}"
run "a pod-bound token, checked by the cluster (TokenReview)" \
  "kubectl -n demo run web --image=registry.invalid/web --restart=Never --overrides='{\"spec\":{\"serviceAccountName\":\"builder\"}}' >/dev/null && kubectl bound-token create builder -n demo --bound-object-kind Pod --bound-object-name web --output-file ${WORK}/pod-token && kubectl bound-token verify --token-file ${WORK}/pod-token --token-review | head -n1"
run "delete the pod: the cluster rejects its token once its ~10 s auth cache expires" \
  "kubectl -n demo delete pod web --wait=false >/dev/null; for i in \$(seq 1 30); do kubectl bound-token verify --token-file ${WORK}/pod-token --token-review >/dev/null || break; sleep 1; done; kubectl bound-token verify --token-file ${WORK}/pod-token --token-review | sed -n 1,2p; echo exit=\${PIPESTATUS[0]}"
run "a kubeconfig for a CI job, authenticating as the ServiceAccount" \
  "kubectl bound-token create builder -n demo --kubeconfig-out ${WORK}/ci.kubeconfig && kubectl --kubeconfig ${WORK}/ci.kubeconfig auth whoami"
run "doctor: the token setup, checked" "kubectl bound-token doctor -n demo --serviceaccount builder || true"
run "keys: a new signing key and its JWKS entry (kid as kube-apiserver computes it)" \
  "kubectl bound-token keys generate --out-dir ${WORK}/keys && kubectl bound-token keys jwks ${WORK}/keys/sa.pub"
echo
echo "demo done."
