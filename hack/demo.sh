#!/usr/bin/env bash
# make demo: the whole job on one local control plane (hack/local-cluster.sh
# --workloads, objects stored as JSON so that they can be backdated), in a
# few minutes:
#   1. create, decode, verify and doctor a bound token, and a signing key;
#   2. a cluster that has tracked legacy token use for a year: three legacy
#      token Secrets made two years old (one used by an outside client, one
#      read by a Deployment, one unused), the migrate audit with its verdicts
#      and the cleaner's forecast, switch of the Deployment, the guard
#      installed, migrate --apply, the unused token presented by a client
#      the evidence missed: refused once, healed by the guard inside
#      kube-apiserver, accepted at the next request, and the audit's
#      restored-on-use; restore of the rest from the backup;
#   3. rotate issuer and wait against the simulated OpenShift
#      kube-apiserver operator (hack/openshift-sim: OpenShift's own CRDs and
#      the simulator the e2e suite tests against).
# Every step prints one line saying what it shows, the command, its output
# and its exit code; a step whose exit code is not the expected one stops
# the demo with exit 1. test/e2e/demo runs it to its end.
#
# Environment: PLUGIN (default bin/kubectl-bound_token), DEMO_CLUSTER (the
# cluster's name, default demo), KEEP_CLUSTER=1 leaves the cluster running
# (stop it with `hack/local-cluster.sh down --name demo`).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"
PLUGIN="${PLUGIN:-${REPO}/bin/kubectl-bound_token}"
NAME="${DEMO_CLUSTER:-demo}"
[[ -x "${PLUGIN}" && "$(basename "${PLUGIN}")" == kubectl-bound_token ]] ||
  { echo "demo: no ${PLUGIN}; run 'make build' first (or set PLUGIN to a kubectl-bound_token binary)" >&2; exit 2; }
KUBECTL="$("${REPO}/hack/build-controlplane.sh" | tail -n1)/kubectl"
export PATH="$(dirname "${PLUGIN}"):$(dirname "${KUBECTL}"):${PATH}"

WORK="$(mktemp -d)"
chmod 700 "${WORK}"
export WORK
SIM_PID="" BUILD_PID=""
# Stops what the demo started, by pid: the helper build, the simulator, the cluster.
cleanup() {
  [[ -z "${BUILD_PID}" ]] || kill -TERM "${BUILD_PID}" 2>/dev/null || true
  [[ -z "${SIM_PID}" ]] || kill -TERM "${SIM_PID}" 2>/dev/null || true
  rm -rf "${WORK}"
  [[ "${KEEP_CLUSTER:-}" == 1 ]] || "${REPO}/hack/local-cluster.sh" down --name "${NAME}"
}
trap cleanup EXIT

# The helper programs reuse the e2e framework (test/e2e/framework) and the
# simulated operator (test/sim/kasoperator); built while the cluster starts.
go build -o "${WORK}/bin/" ./hack/oldcluster ./hack/openshift-sim &
BUILD_PID=$!
# --audit: migrate --audit-log names who used each token.
# On 1.34 the guard's admission policy needs the MutatingAdmissionPolicy gate
# and the v1beta1 API together (v1 and on by default from 1.36).
POLICY_ARGS=()
[[ "${KUBE_VERSION:-1.37}" == 1.34 ]] && POLICY_ARGS=(--feature-gates=MutatingAdmissionPolicy=true --runtime-config=admissionregistration.k8s.io/v1beta1=true)
KUBECONFIG="$("${REPO}/hack/local-cluster.sh" up --name "${NAME}" --workloads --audit -- \
  --storage-media-type=application/json "${POLICY_ARGS[@]}" | tail -n1)"
export KUBECONFIG
wait "${BUILD_PID}" || { echo "demo: building hack/oldcluster and hack/openshift-sim failed" >&2; exit 1; }
BUILD_PID=""
# shellcheck disable=SC1091
source "$(dirname "${KUBECONFIG}")/env"
export KUBECONFIG SERVER CA_FILE AUDIT_LOG

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }
# expect CODE "what it shows" "command": runs the command, prints exit=N and
# stops the demo unless N is CODE.
expect() {
  local want="$1" rc=0
  step "$2" "$3"
  bash -o pipefail -c "$3" || rc=$?
  echo "exit=${rc}"
  if [[ "${rc}" != "${want}" ]]; then
    echo "demo: that step exited ${rc}, expected ${want}" >&2
    exit 1
  fi
}
# until_ok SECONDS "what" command...: polls a condition every half second.
until_ok() {
  local t="$1" what="$2"; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || { echo "demo: ${what} not within ${t}s" >&2; return 1; }
    sleep 0.5
  done
}
export -f until_ok
# token_kubeconfig SECRET: a kubeconfig (0600) that authenticates with the
# legacy token of shop/SECRET and nothing else, as an outside client would;
# the token never appears on a command line.
token_kubeconfig() {
  local token
  token="$(kubectl -n shop get secret "$1" -o jsonpath='{.data.token}' | base64 -d)"
  (umask 077; cat >"${WORK}/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "${SERVER}", certificate-authority: "${CA_FILE}"}}]
users: [{name: "$1", user: {token: "${token}"}}]
contexts: [{name: demo, context: {cluster: demo, user: "$1"}}]
current-context: demo
KC
  )
  echo "${WORK}/$1.kubeconfig"
}
# legacy_secret SA: the ServiceAccount SA and its legacy token Secret
# SA-token, listed in its .secrets as the token controller did before 1.24
# (kube-controller-manager's cleaner touches only listed ones), once the
# token controller has filled it.
legacy_secret() {
  kubectl -n shop create serviceaccount "$1" >/dev/null
  kubectl -n shop create -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata: {name: $1-token, annotations: {kubernetes.io/service-account.name: $1}}
EOF
  kubectl -n shop patch serviceaccount "$1" -p "{\"secrets\":[{\"name\":\"$1-token\"}]}" >/dev/null
  until_ok 60 "the token controller filling $1-token" filled "$1-token"
}
filled() { [[ -n "$(kubectl -n shop get secret "$1" -o jsonpath='{.data.token}')" ]]; }
# labelled SECRET LABEL: shop/SECRET carries LABEL.
labelled() { [[ -n "$(kubectl -n shop get secret "$1" -o go-template="{{index .metadata.labels \"$2\"}}")" ]]; }
whoami_as() { kubectl --kubeconfig "$(token_kubeconfig "$1")" auth whoami; }
rejected() { ! whoami_as "$1"; }
export -f legacy_secret filled labelled token_kubeconfig whoami_as rejected

echo
echo "### 1. A bound token: create, decode, verify, doctor"
expect 0 "a namespace and a ServiceAccount" "kubectl create namespace demo && kubectl -n demo create serviceaccount builder"
expect 0 "create: a 1h token for audience 'vault', written 0600" \
  "kubectl bound-token create builder -n demo --audience vault --duration 1h --output-file \${WORK}/token && ls -l \${WORK}/token | cut -d' ' -f1"
expect 0 "decode: what the token says (nothing verified yet)" "kubectl bound-token decode --token-file \${WORK}/token"
expect 0 "verify: signature against the cluster's JWKS, audience checked" \
  "kubectl bound-token verify --token-file \${WORK}/token --audience vault"
expect 1 "verify: the wrong audience is rejected" \
  "kubectl bound-token verify --token-file \${WORK}/token --audience other"
expect 0 "doctor: the token setup of a ServiceAccount, checked" "kubectl bound-token doctor -n demo --serviceaccount builder"
expect 0 "keys: a new signing key and its JWKS entry (kid as kube-apiserver computes it)" \
  "kubectl bound-token keys generate --out-dir \${WORK}/keys >/dev/null && kubectl bound-token keys jwks \${WORK}/keys/sa.pub"

echo
echo "### 2. Off legacy tokens: audit, switch, migrate, restore"
echo "This demo simulates a cluster that has tracked legacy token use for a year (kube-apiserver's tracking"
echo "start set a year back) and whose token Secrets are two years old (backdated in etcd by hack/oldcluster)."
expect 0 "three ServiceAccounts, each with a legacy token Secret listed in its .secrets (as before Kubernetes 1.24)" \
  "kubectl create namespace shop >/dev/null && for sa in ci-bot web old-job; do legacy_secret \$sa; done && kubectl -n shop get secrets"
expect 0 "a year of tracking, Secrets two years old" \
  "\${WORK}/bin/oldcluster -kubeconfig \${KUBECONFIG} -tracking-days 365 && \${WORK}/bin/oldcluster -kubeconfig \${KUBECONFIG} -age-days 730 shop/ci-bot-token shop/web-token shop/old-job-token"
expect 0 "a Deployment that reads web-token through a secret volume" \
  "kubectl -n shop apply -f - <<EOF && kubectl -n shop rollout status deployment/web --timeout=120s
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers:
      - {name: web, image: registry.invalid/web, volumeMounts: [{name: api-token, mountPath: /var/run/secrets/api}]}
      volumes:
      - {name: api-token, secret: {secretName: web-token}}
EOF"
expect 0 "an outside client (kubectl with ci-bot's token) uses it: kube-apiserver labels the Secret last-used today" \
  "whoami_as ci-bot-token && until_ok 30 'the last-used label' labelled ci-bot-token kubernetes.io/legacy-token-last-used &&
  kubectl -n shop get secret ci-bot-token -L kubernetes.io/legacy-token-last-used"
expect 0 "migrate: the audit, with a verdict per Secret, the cleaner's forecast (-o wide) and who used each token (audit log)" \
  "kubectl bound-token migrate -n shop -o wide --audit-log \${AUDIT_LOG}"
expect 0 "switch: the plan for the Deployment that reads a legacy token (a diff; nothing changes)" \
  "kubectl bound-token switch -n shop"
expect 0 "switch --apply: back up, move the Deployment onto a projected token, follow its rollout" \
  "kubectl bound-token switch -n shop --apply --yes --backup-dir \${WORK}/switch-backup"
expect 0 "guard install: a MutatingAdmissionPolicy that restores, at its first refused use, a Secret migrate invalidated for clean-up (proved to act)" \
  "kubectl bound-token guard install --yes"
expect 0 "migrate --apply: back up, then invalidate only the Secrets provably unused (ci-bot's token is kept), each guarded for 90 days" \
  "kubectl bound-token migrate -n shop --apply --yes --backup-dir \${WORK}/migrate-backup"
expect 1 "a yearly job the evidence missed presents old-job's token: refused once, and kube-apiserver's own last-used write runs the guard" \
  "sleep 2; whoami_as old-job-token"
expect 0 "the job's next request is accepted: the guard removed invalid-since and recorded the restore on the Secret" \
  "until_ok 15 'the guard restoring it' whoami_as old-job-token && whoami_as old-job-token && kubectl -n shop get secret old-job-token -o go-template='restored on {{index .metadata.annotations \"bound-token.kubectl.io/restored-on-use\"}} by {{index .metadata.annotations \"bound-token.kubectl.io/restored-by\"}}{{\"\\n\"}}'"
expect 0 "migrate: the audit says restored-on-use and where to look for the client (the audit log)" \
  "kubectl bound-token migrate -n shop --audit-log \${AUDIT_LOG}"
expect 0 "restore: the rest back from the backup, valid again, our marks removed" \
  "kubectl bound-token restore --from \${WORK}/migrate-backup"
expect 0 "web's old token is accepted again" \
  "until_ok 30 'the token accepted' whoami_as web-token; whoami_as web-token"

echo
echo "### 3. OpenShift: change the service-account issuer and follow the kube-apiserver rollout"
echo "hack/openshift-sim installs OpenShift's own CRDs and runs the simulated kube-apiserver operator of the e2e suite."
step "the simulated operator, at revision 7 on three nodes" "\${WORK}/bin/openshift-sim -kubeconfig \${KUBECONFIG} &"
"${WORK}/bin/openshift-sim" -kubeconfig "${KUBECONFIG}" >"${WORK}/sim.log" 2>&1 &
SIM_PID=$!
until_ok 120 "openshift-sim ready" grep -qx ready "${WORK}/sim.log" || { cat "${WORK}/sim.log" >&2; exit 1; }
cat "${WORK}/sim.log"
expect 0 "rotate: back up, change spec.serviceAccountIssuer, wait for the rollout on every node" \
  "kubectl bound-token rotate issuer https://oidc.example.com/demo --yes --timeout 2m --backup \${WORK}/authentication-cluster.yaml"
expect 0 "wait: the rollout is done (what to run after a change made by hand)" "kubectl bound-token wait --timeout 1m"
step "stop the simulated operator" "kill -TERM \$SIM_PID; wait \$SIM_PID"
kill -TERM "${SIM_PID}"
rc=0
wait "${SIM_PID}" || rc=$?
SIM_PID=""
tail -n +2 "${WORK}/sim.log"
echo "exit=${rc}"
[[ "${rc}" == 0 ]] || { echo "demo: openshift-sim exited ${rc}" >&2; exit 1; }
echo
echo "demo done."
