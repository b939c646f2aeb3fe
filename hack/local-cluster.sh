#!/usr/bin/env bash
# A real local control plane: etcd, kube-apiserver and kube-controller-manager
# (serviceaccount-token and serviceaccount controllers) on free loopback ports.
#
#   hack/local-cluster.sh up [--name NAME] [--key FILE] [--issuer URL] [--audit] [--workloads]
#                            [--signing-endpoint SOCKET] [--kcm-arg ARG]... [-- EXTRA_APISERVER_FLAGS...]
#   hack/local-cluster.sh down [--name NAME]
#
# State lives in .local-cluster/NAME/ (LOCAL_CLUSTER_ROOT overrides the
# parent): certificates, the signing key, logs, pids, `env` (SERVER, ISSUER,
# KUBECONFIG, SIGNING_KEY, PUBLIC_KEY, CA_FILE, ETCD, WORKLOADS, KWOK_NODES, and
# AUDIT_LOG with --audit) and `kubeconfig` (0600, admin).
# --audit makes kube-apiserver write every request at level Metadata (JSON
# lines) to NAME/audit.log: the policy has to exist before kube-apiserver
# starts and the folder is made here, so the script writes it, not the caller.
#
# --workloads (opt-in, a few seconds more) makes pods run: kube-controller-manager
# also runs the workload controllers, root-ca-cert-publisher and nodelifecycle;
# the ServiceAccount admission plugin is on; kube-scheduler runs; kwok simulates
# the fake Nodes this script creates (KWOK_NODES, annotated
# kwok.x-k8s.io/node=fake), with its "fast" node and pod stages: pods become
# Running and Ready, Job pods Succeeded, deleted pods go away. kwok mounts no
# volumes and mints no tokens.
#
# KUBE_VERSION (1.37, the default, or 1.34) selects the release, built by
# hack/build-controlplane.sh; `env` records it.
#
# --signing-endpoint SOCKET makes kube-apiserver sign and verify service-account
# tokens through an external signer (ExternalServiceAccountTokenSigner) listening
# on that Unix socket, instead of the key files: kube-apiserver refuses the two
# together (pkg/controlplane/apiserver/options/validation.go,
# validateServiceAccountTokenSigningConfig). kube-controller-manager still signs
# legacy token Secrets with the key (SIGNING_KEY): those verify only if the
# signer's FetchKeys also returns its public key. The signer must be listening
# before `up`.
#
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
NAME=default KEY="" ISSUER="" AUDIT=0 WORKLOADS=0 SIGNING_ENDPOINT="" KCM_ARGS=() API_ARGS=()
while (($#)); do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --key) KEY="$2"; shift 2 ;;
    --signing-endpoint) SIGNING_ENDPOINT="$2"; shift 2 ;;
    --issuer) ISSUER="$2"; shift 2 ;;
    --audit) AUDIT=1; shift ;;
    --kcm-arg) KCM_ARGS+=("$2"); shift 2 ;;
    --workloads) WORKLOADS=1; shift ;;
    --) shift; API_ARGS=("$@"); break ;;
    *) echo "local-cluster: unknown argument $1; see the header of $0" >&2; exit 2 ;;
  esac
done
[[ "${NAME}" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] || { echo "local-cluster: bad --name ${NAME}" >&2; exit 2; }
DIR="${ROOT}/${NAME}"

# Our processes carry DIR in their command line; a recycled pid does not. A
# process that ends between the -r test and the read is simply not running
# (quiet: redirections apply left to right, so 2>/dev/null comes before the
# < that can fail, or bash prints "No such file or directory").
ours() { [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "${DIR}/"; }

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
  if ((WORKLOADS)); then
    # kube-scheduler as the user the bootstrap RBAC policy binds to the
    # system:kube-scheduler and system:volume-scheduler ClusterRoles
    # (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go,
    # ClusterRoleBindings: user.KubeScheduler = "system:kube-scheduler").
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=system:kube-scheduler" \
      -keyout "$d/scheduler.key" -out "$d/scheduler.csr" 2>/dev/null
    openssl x509 -req -in "$d/scheduler.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 7 \
      -extfile "$d/client.ext" -out "$d/scheduler.crt" 2>/dev/null
  fi
  if [[ -n "${KEY}" ]]; then
    [[ -r "${KEY}" ]] || die "--key ${KEY} is not readable"
    openssl pkey -in "${KEY}" -out "$d/sa.key" 2>/dev/null || die "--key ${KEY} is not a PEM private key (RSA or EC)"
  else
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
  fi
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  chmod 600 "$d"/*.key
}

kubeconfig() { # file server [user: the pki/USER.crt and .key; admin by default]
  local b64="base64 -w0" user="${3:-admin}"
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: bound-token-${NAME}
  cluster:
    server: $2
    certificate-authority-data: $($b64 <"${DIR}/pki/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $($b64 <"${DIR}/pki/${user}.crt")
    client-key-data: $($b64 <"${DIR}/pki/${user}.key")
contexts:
- name: bound-token-${NAME}
  context:
    cluster: bound-token-${NAME}
    user: ${user}
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

# start_env: start with extra environment (VAR=VALUE... -- command...).
start_env() {
  local name="$1"; shift
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  setsid env "${envs[@]}" "$@" >"${DIR}/logs/${name}.log" 2>&1 </dev/null &
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
  local need=(etcd kube-apiserver kube-controller-manager)
  ((WORKLOADS)) && need+=(kube-scheduler kwok kubectl)
  for b in "${need[@]}"; do
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

  # The ServiceAccount admission plugin is on by default
  # (pkg/kubeapiserver/options/plugins.go, DefaultOffAdmissionPlugins). The
  # default mode turns it off: without it, pods need no ServiceAccount and get
  # no kube-api-access volume. --workloads keeps it, as a real cluster does.
  local ADMISSION_ARGS=(--disable-admission-plugins ServiceAccount)
  ((WORKLOADS)) && ADMISSION_ARGS=()
  local issuer_given="${ISSUER}"
  local audit_args=() audit_log=""
  if ((AUDIT)); then
    audit_log="${DIR}/audit.log"
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n' >"${DIR}/audit-policy.yaml"
    # The log backend's default mode is blocking (NewAuditOptions in
    # k8s.io/apiserver/pkg/server/options/audit.go): an event is written
    # before the response is sent, so a test can read it right after.
    audit_args=(--audit-policy-file "${DIR}/audit-policy.yaml" --audit-log-path "${audit_log}")
  fi
  # 1.37 refuses a loopback --advertise-address with an endpoint reconciler
  # (pkg/controlplane/instance.go, Complete.New: "cannot use public IP ...
  # with endpoint reconciler"; the lease reconciler's ValidateIP rejects
  # 127.0.0.0/8); the none reconciler accepts any (reconcilers/none.go). It
  # only stops the apiserver writing its own address into the default
  # namespace's kubernetes Endpoints, which nothing here reads.
  local sa_args=(--service-account-key-file "${DIR}/pki/sa.pub" --service-account-signing-key-file "${DIR}/pki/sa.key")
  [[ -n "${SIGNING_ENDPOINT}" ]] && sa_args=(--service-account-signing-endpoint "${SIGNING_ENDPOINT}")
  local curl_admin=(curl -fsS --cacert "${DIR}/pki/ca.crt" --cert "${DIR}/pki/admin.crt" --key "${DIR}/pki/admin.key")
  # free_port only finds a port free when it looks: another cluster starting
  # at the same moment (e2e packages run in parallel) can take it before
  # kube-apiserver binds it. Then kube-apiserver exits at once ("bind:
  # address already in use") and starts again on another port.
  local api_attempt ready end
  for api_attempt in 1 2 3; do
    SERVER="https://127.0.0.1:${API_PORT}"
    ISSUER="${issuer_given:-${SERVER}}"
    start kube-apiserver "${bin}/kube-apiserver" \
      --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${API_PORT}" \
      --endpoint-reconciler-type none \
      --tls-cert-file "${DIR}/pki/apiserver.crt" --tls-private-key-file "${DIR}/pki/apiserver.key" \
      --client-ca-file "${DIR}/pki/ca.crt" \
      --service-account-issuer "${ISSUER}" \
      "${sa_args[@]}" \
      --api-audiences "${ISSUER}" \
      --authorization-mode Node,RBAC \
      --service-cluster-ip-range 10.0.0.0/24 \
      "${ADMISSION_ARGS[@]}" \
      --enable-priority-and-fairness=false \
      --cert-dir "${DIR}/pki" \
      "${audit_args[@]}" "${API_ARGS[@]}"
    ready=0
    end=$((SECONDS + 60))
    while ((SECONDS < end)); do
      if "${curl_admin[@]}" "${SERVER}/readyz" >/dev/null 2>&1; then ready=1; break; fi
      grep -q 'bind: address already in use' "${DIR}/logs/kube-apiserver.log" 2>/dev/null && break
      sleep 0.2
    done
    ((ready)) && break
    grep -q 'bind: address already in use' "${DIR}/logs/kube-apiserver.log" 2>/dev/null && ((api_attempt < 3)) ||
      fail_up "kube-apiserver not ready within 60s"
    log "port ${API_PORT} was taken before kube-apiserver bound it (attempt ${api_attempt}); trying another"
    API_PORT="$(free_port)"
  done
  kubeconfig "${DIR}/kubeconfig" "${SERVER}"

  # --controllers takes the names or aliases of
  # cmd/kube-controller-manager/app (NewControllerDescriptors; aliases in
  # apps.go, batch.go, core.go, certificates.go, v1.34): deployment,
  # replicaset, statefulset, daemonset (apps.go), job, cronjob (batch.go),
  # garbagecollector, nodelifecycle, replicationcontroller (core.go), root-ca-cert-publisher
  # (certificates.go; publishes ConfigMap kube-root-ca.crt in every namespace).
  # nodelifecycle removes the node.kubernetes.io/not-ready:NoSchedule taint the
  # TaintNodesByCondition admission plugin puts on every new Node
  # (plugin/pkg/admission/nodetaint/admission.go, Admit) once kwok makes the
  # Node Ready (pkg/controller/nodelifecycle, doNoScheduleTaintingPass).
  local controllers=serviceaccount-token,serviceaccount
  ((WORKLOADS)) && controllers+=,deployment,replicaset,replicationcontroller,statefulset,daemonset,job,cronjob,garbagecollector,root-ca-cert-publisher,nodelifecycle
  start kube-controller-manager "${bin}/kube-controller-manager" \
    --kubeconfig "${DIR}/kubeconfig" \
    --controllers "${controllers}" \
    --service-account-private-key-file "${DIR}/pki/sa.key" \
    --root-ca-file "${DIR}/pki/ca.crt" \
    --leader-elect=false --secure-port 0 --use-service-account-credentials=false \
    "${KCM_ARGS[@]}"
  # The default ServiceAccount appears only when the controllers run.
  wait_for kcm 60 "${curl_admin[@]}" "${SERVER}/api/v1/namespaces/default/serviceaccounts/default" ||
    fail_up "kube-controller-manager did not create the default ServiceAccount within 60s"

  ((WORKLOADS)) && workloads "${bin}" "${curl_admin[@]}"

  cat >"${DIR}/env" <<ENV
WORKLOADS=${WORKLOADS}
KWOK_NODES=${KWOK_NODES}
SERVER=${SERVER}
ISSUER=${ISSUER}
KUBECONFIG=${DIR}/kubeconfig
SIGNING_KEY=${DIR}/pki/sa.key
PUBLIC_KEY=${DIR}/pki/sa.pub
CA_FILE=${DIR}/pki/ca.crt
ETCD=http://127.0.0.1:${ETCD_PORT}
KUBE_VERSION=${KUBE_VERSION:-1.37}
AUDIT_LOG=${audit_log}
ENV
  log "up in $((SECONDS - start_s))s: ${SERVER}, issuer ${ISSUER}"
  echo "${DIR}/kubeconfig"
}

# The fake nodes kwok manages; kwok is started with
# --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake (kwok
# pkg/kwok/cmd/root.go, NewCommand: "Nodes that match the annotation selector
# will be watched and managed"), so it touches these and no other Node, and
# only the pods bound to them.
KWOK_NODES=""
KWOK_NODE_ANNOTATION=kwok.x-k8s.io/node=fake

workloads() { # bin curl_admin...
  local bin="$1"; shift
  local curl_admin=("$@")
  local t0=$SECONDS
  kubeconfig "${DIR}/scheduler.kubeconfig" "${SERVER}" scheduler
  # --secure-port 0: no serving (and no port to collide with another cluster).
  start kube-scheduler "${bin}/kube-scheduler" \
    --kubeconfig "${DIR}/scheduler.kubeconfig" \
    --leader-elect=false --secure-port 0

  # kwok reads its Stages from --config files; the "fast" ones ship in its
  # module under kustomize/stage/node/fast (node-initialize.yaml) and
  # kustomize/stage/pod/fast (pod-ready, pod-complete, pod-delete; see their
  # kustomization.yaml). They are read from the module cache of the version
  # built into the binary, so stages and binary always match.
  local kver kdir
  kver="$(go version -m "${bin}/kwok" | awk '$1 == "mod" && $2 == "sigs.k8s.io/kwok" { print $3 }')"
  [[ -n "${kver}" ]] || fail_up "cannot read the kwok module version from ${bin}/kwok"
  kdir="$(go mod download -json "sigs.k8s.io/kwok@${kver}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -n "${kdir}" && -d "${kdir}/kustomize/stage/pod/fast" ]] || fail_up "cannot find sigs.k8s.io/kwok@${kver} in the module cache"
  local stages=() f
  for f in node/fast/node-initialize pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    [[ -r "${kdir}/kustomize/stage/${f}.yaml" ]] || fail_up "missing kwok stage ${kdir}/kustomize/stage/${f}.yaml"
    stages+=(--config "${kdir}/kustomize/stage/${f}.yaml")
  done
  # HOME is the cluster's folder: kwok also loads ~/.kwok/kwok.yaml when it
  # exists (pkg/config/flags.go, loadConfig), which would mix in a user's own
  # stages. Leases every 10 s (duration 40 s, renewed at a quarter: kwok
  # pkg/kwok/controllers/controller.go, initNodeLeaseController) keep the Nodes
  # healthy for nodelifecycle. Pod IPs from a range apart from the services'.
  mkdir -p "${DIR}/kwok-home"
  start_env kwok HOME="${DIR}/kwok-home" -- "${bin}/kwok" \
    --kubeconfig "${DIR}/kubeconfig" \
    --manage-nodes-with-annotation-selector "${KWOK_NODE_ANNOTATION}" \
    --node-lease-duration-seconds 40 \
    --cidr 10.244.0.0/16 \
    "${stages[@]}"

  local n
  for n in kwok-node-0 kwok-node-1; do
    "${curl_admin[@]}" -o /dev/null -X POST -H 'Content-Type: application/json' "${SERVER}/api/v1/nodes" --data-binary @- <<NODE ||
{"apiVersion":"v1","kind":"Node","metadata":{"name":"${n}",
 "annotations":{"${KWOK_NODE_ANNOTATION%%=*}":"${KWOK_NODE_ANNOTATION#*=}"},
 "labels":{"kubernetes.io/hostname":"${n}","kubernetes.io/os":"linux","type":"kwok"}}}
NODE
      fail_up "cannot create Node ${n}"
    KWOK_NODES="${KWOK_NODES:+${KWOK_NODES},}${n}"
  done
  # Ready (kwok's node-initialize stage) and untainted (nodelifecycle).
  nodes_ready() {
    local out
    out="$("${bin}/kubectl" --kubeconfig "${DIR}/kubeconfig" get nodes -l type=kwok -o \
      'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}/{.spec.taints}{"\n"}{end}')" || return 1
    [[ "$(grep -c '=True/$' <<<"${out}")" == 2 ]]
  }
  wait_for nodes 60 nodes_ready || fail_up "the kwok Nodes did not become Ready and untainted within 60s"
  wait_for root-ca 30 "${curl_admin[@]}" "${SERVER}/api/v1/namespaces/default/configmaps/kube-root-ca.crt" ||
    fail_up "root-ca-cert-publisher did not publish kube-root-ca.crt within 30s"
  local p
  while read -r p; do
    [[ -z "$p" ]] || ours "$p" || fail_up "a process of the cluster exited during start-up (pid $p)"
  done <"${DIR}/pids"
  log "workloads rig (kube-scheduler, kwok, nodes ${KWOK_NODES}) ready in $((SECONDS - t0))s"
}

case "${cmd}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down [--name NAME] ...; see the header of $0" >&2; exit 2 ;;
esac
