#!/usr/bin/env bash
# A real local control plane: etcd, kube-apiserver and kube-controller-manager
# (serviceaccount-token and serviceaccount controllers) on free loopback ports.
#
#   hack/local-cluster.sh up [--name NAME] [--key FILE] [--issuer URL] [--audit]
#                            [--kcm-arg ARG]... [-- EXTRA_APISERVER_FLAGS...]
#   hack/local-cluster.sh down [--name NAME]
#
# State lives in .local-cluster/NAME/ (LOCAL_CLUSTER_ROOT overrides the
# parent): certificates, the signing key, logs, pids, `env` (SERVER, ISSUER,
# KUBECONFIG, SIGNING_KEY, PUBLIC_KEY, CA_FILE, ETCD, and AUDIT_LOG with
# --audit) and `kubeconfig` (0600, admin).
# --audit makes kube-apiserver write every request at level Metadata (JSON
# lines) to NAME/audit.log: the policy has to exist before kube-apiserver
# starts and the folder is made here, so the script writes it, not the caller.
# `up` prints the kubeconfig path as the LAST line of stdout; progress goes to
# stderr. `up` on a NAME that is running fails; `down` stops exactly the
# processes recorded for NAME and removes its folder.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${LOCAL_CLUSTER_ROOT:-${REPO}/.local-cluster}"
log() { echo "local-cluster[${NAME}]: $*" >&2; }
die() { log "$*"; exit 1; }

cmd="${1:-}"
[[ -n "${cmd}" ]] && shift
NAME=default KEY="" ISSUER="" AUDIT=0 KCM_ARGS=() API_ARGS=()
while (($#)); do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --key) KEY="$2"; shift 2 ;;
    --issuer) ISSUER="$2"; shift 2 ;;
    --audit) AUDIT=1; shift ;;
    --kcm-arg) KCM_ARGS+=("$2"); shift 2 ;;
    --) shift; API_ARGS=("$@"); break ;;
    *) echo "local-cluster: unknown argument $1; see the header of $0" >&2; exit 2 ;;
  esac
done
[[ "${NAME}" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] || { echo "local-cluster: bad --name ${NAME}" >&2; exit 2; }
DIR="${ROOT}/${NAME}"

# Our processes carry DIR in their command line; a recycled pid does not. A
# process that ends while tr reads its cmdline is simply not running (quiet).
ours() { [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "${DIR}/"; }

stop_all() {
  [[ -f "${DIR}/pids" ]] || return 0
  local pids=() p
  while read -r p; do [[ -n "$p" ]] && ours "$p" && pids+=("$p"); done <"${DIR}/pids"
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 100); do
    local alive=0
    for p in "${pids[@]}"; do ours "$p" && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  for p in "${pids[@]}"; do ours "$p" && kill -KILL "$p" 2>/dev/null || true; done
}

down() {
  if [[ ! -d "${DIR}" ]]; then
    log "not running"
    return 0
  fi
  stop_all
  rm -rf "${DIR}"
  log "stopped"
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 30000))
    if ! ss -ltnH "sport = :${p}" 2>/dev/null | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

wait_for() { # what timeout-seconds command...
  local what="$1" t="$2"; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then return 1; fi
    sleep 0.2
  done
}

certs() {
  local d="${DIR}/pki"
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=local-cluster-ca-${NAME}" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"$d/apiserver.ext"
  openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 7 \
    -extfile "$d/apiserver.ext" -out "$d/apiserver.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" -keyout "$d/admin.key" -out "$d/admin.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
  openssl x509 -req -in "$d/admin.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 7 \
    -extfile "$d/client.ext" -out "$d/admin.crt" 2>/dev/null
  if [[ -n "${KEY}" ]]; then
    [[ -r "${KEY}" ]] || die "--key ${KEY} is not readable"
    openssl pkey -in "${KEY}" -out "$d/sa.key" 2>/dev/null || die "--key ${KEY} is not a PEM private key (RSA or EC)"
  else
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
  fi
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  chmod 600 "$d"/*.key
}

kubeconfig() { # file server
  local b64="base64 -w0"
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: bound-token-${NAME}
  cluster:
    server: $2
    certificate-authority-data: $($b64 <"${DIR}/pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 <"${DIR}/pki/admin.crt")
    client-key-data: $($b64 <"${DIR}/pki/admin.key")
contexts:
- name: bound-token-${NAME}
  context:
    cluster: bound-token-${NAME}
    user: admin
    namespace: default
current-context: bound-token-${NAME}
KC
  chmod 600 "$1"
}

start() { # logname command...
  local name="$1"; shift
  setsid "$@" >"${DIR}/logs/${name}.log" 2>&1 </dev/null &
  echo $! >>"${DIR}/pids"
}

fail_up() {
  log "$1"
  local f
  for f in "${DIR}"/logs/*.log; do
    [[ -f "$f" ]] || continue
    echo "---- last lines of $(basename "$f")" >&2
    tail -n 15 "$f" >&2
  done
  stop_all
  rm -rf "${DIR}"
  exit 1
}

up() {
  if [[ -f "${DIR}/pids" ]]; then
    local p
    while read -r p; do
      if [[ -n "$p" ]] && ours "$p"; then die "already running; stop it with: $0 down --name ${NAME}"; fi
    done <"${DIR}/pids"
    rm -rf "${DIR}"
  fi
  local bin
  bin="$("${REPO}/hack/build-controlplane.sh" | tail -n1)"
  for b in etcd kube-apiserver kube-controller-manager; do
    [[ -x "${bin}/${b}" ]] || die "missing ${bin}/${b}; run hack/build-controlplane.sh"
  done
  mkdir -p "${ROOT}" "${DIR}/logs" "${DIR}/etcd"
  chmod 700 "${ROOT}" "${DIR}" "${DIR}/etcd"
  : >"${DIR}/pids"
  local start_s=$SECONDS
  certs

  local attempt
  for attempt in 1 2 3; do
    ETCD_PORT="$(free_port)"; PEER_PORT="$(free_port)"; API_PORT="$(free_port)"
    [[ "${ETCD_PORT}" != "${PEER_PORT}" && "${PEER_PORT}" != "${API_PORT}" && "${ETCD_PORT}" != "${API_PORT}" ]] || continue
    rm -rf "${DIR}/etcd"/*
    start etcd "${bin}/etcd" --name "${NAME}" --data-dir "${DIR}/etcd" \
      --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
      --listen-peer-urls "http://127.0.0.1:${PEER_PORT}" --initial-advertise-peer-urls "http://127.0.0.1:${PEER_PORT}" \
      --initial-cluster "${NAME}=http://127.0.0.1:${PEER_PORT}" --log-level warn --quota-backend-bytes 2147483648
    if wait_for etcd 20 curl -fsS "http://127.0.0.1:${ETCD_PORT}/health"; then break; fi
    log "etcd did not start on ports ${ETCD_PORT}/${PEER_PORT} (attempt ${attempt})"
    stop_all; : >"${DIR}/pids"
    ((attempt < 3)) || fail_up "etcd failed to start"
  done

  SERVER="https://127.0.0.1:${API_PORT}"
  [[ -n "${ISSUER}" ]] || ISSUER="${SERVER}"
  local audit_args=() audit_log=""
  if ((AUDIT)); then
    audit_log="${DIR}/audit.log"
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n' >"${DIR}/audit-policy.yaml"
    # The log backend's default mode is blocking (NewAuditOptions in
    # k8s.io/apiserver/pkg/server/options/audit.go): an event is written
    # before the response is sent, so a test can read it right after.
    audit_args=(--audit-policy-file "${DIR}/audit-policy.yaml" --audit-log-path "${audit_log}")
  fi
  start kube-apiserver "${bin}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${API_PORT}" \
    --tls-cert-file "${DIR}/pki/apiserver.crt" --tls-private-key-file "${DIR}/pki/apiserver.key" \
    --client-ca-file "${DIR}/pki/ca.crt" \
    --service-account-issuer "${ISSUER}" \
    --service-account-key-file "${DIR}/pki/sa.pub" \
    --service-account-signing-key-file "${DIR}/pki/sa.key" \
    --api-audiences "${ISSUER}" \
    --authorization-mode Node,RBAC \
    --service-cluster-ip-range 10.0.0.0/24 \
    --disable-admission-plugins ServiceAccount \
    --enable-priority-and-fairness=false \
    --cert-dir "${DIR}/pki" \
    "${audit_args[@]}" "${API_ARGS[@]}"
  kubeconfig "${DIR}/kubeconfig" "${SERVER}"
  local curl_admin=(curl -fsS --cacert "${DIR}/pki/ca.crt" --cert "${DIR}/pki/admin.crt" --key "${DIR}/pki/admin.key")
  wait_for apiserver 60 "${curl_admin[@]}" "${SERVER}/readyz" || fail_up "kube-apiserver not ready within 60s"

  start kube-controller-manager "${bin}/kube-controller-manager" \
    --kubeconfig "${DIR}/kubeconfig" \
    --controllers serviceaccount-token,serviceaccount \
    --service-account-private-key-file "${DIR}/pki/sa.key" \
    --root-ca-file "${DIR}/pki/ca.crt" \
    --leader-elect=false --secure-port 0 --use-service-account-credentials=false \
    "${KCM_ARGS[@]}"
  # The default ServiceAccount appears only when the controllers run.
  wait_for kcm 60 "${curl_admin[@]}" "${SERVER}/api/v1/namespaces/default/serviceaccounts/default" ||
    fail_up "kube-controller-manager did not create the default ServiceAccount within 60s"

  cat >"${DIR}/env" <<ENV
SERVER=${SERVER}
ISSUER=${ISSUER}
KUBECONFIG=${DIR}/kubeconfig
SIGNING_KEY=${DIR}/pki/sa.key
PUBLIC_KEY=${DIR}/pki/sa.pub
CA_FILE=${DIR}/pki/ca.crt
ETCD=http://127.0.0.1:${ETCD_PORT}
AUDIT_LOG=${audit_log}
ENV
  log "up in $((SECONDS - start_s))s: ${SERVER}, issuer ${ISSUER}"
  echo "${DIR}/kubeconfig"
}

case "${cmd}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down [--name NAME] ...; see the header of $0" >&2; exit 2 ;;
esac
