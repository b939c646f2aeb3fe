#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
# from the pinned modules under hack/, and kwok (KWOK_VERSION, installed from the
# Go module proxy), into a version-keyed cache outside git. Builds only what is
# missing, so repeated runs cost nothing. Prints the bin folder as the last line.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# KUBE_VERSION picks the release: 1.37 (the current one, the default) or 1.34
# (the oldest we support). Each release is a go.mod pair of its own in
# hack/controlplane and hack/etcd, used through `go build -modfile`, so the
# main packages are shared and each release pins its own dependencies.
KUBE_VERSION="${KUBE_VERSION:-1.37}"
case "${KUBE_VERSION}" in
  1.37) K8S_MODFILE=go.mod; ETCD_MODFILE=go.mod ;;
  1.34) K8S_MODFILE=go.1.34.mod; ETCD_MODFILE=go.3.6.mod ;;
  *)
    echo "build-controlplane: KUBE_VERSION=${KUBE_VERSION} is not supported; use 1.37 or 1.34" >&2
    exit 2
    ;;
esac
K8S_VERSION="$(grep -oE 'k8s\.io/kubernetes v[0-9][^ ]*' "${HACK_DIR}/controlplane/${K8S_MODFILE}" | head -1 | cut -d' ' -f2)"
ETCD_VERSION="$(grep -oE 'go\.etcd\.io/etcd/server/v3 v[0-9][^ ]*' "${HACK_DIR}/etcd/${ETCD_MODFILE}" | head -1 | cut -d' ' -f2)"
if [[ -z "${K8S_VERSION}" || -z "${ETCD_VERSION}" ]]; then
  echo "build-controlplane: cannot read pinned versions from hack/*/go*.mod" >&2
  exit 2
fi

CACHE_ROOT="${BOUND_TOKEN_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/kubectl-bound-token}"
# RECIPE changes when the way binaries are built changes, so stale caches
# are not reused.
RECIPE=2
BIN_DIR="${CACHE_ROOT}/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-r${RECIPE}/bin"
mkdir -p "${BIN_DIR}"

# Build into a temp name and rename so an interrupted build never leaves a
# half-written binary that later runs would trust.
# Without these the servers report v0.0.0-master and clients cannot tell
# which features they have.
MINOR="$(echo "${K8S_VERSION}" | cut -d. -f2)"
K8S_LDFLAGS="-X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${MINOR} -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${MINOR}"

build() {
  local dir="$1" modfile="$2" pkg="$3" out="$4"
  if [[ -x "${BIN_DIR}/${out}" ]]; then
    return 0
  fi
  echo "build-controlplane: building ${out} (${dir}, first run only; kube-apiserver takes ~5 min)" >&2
  local start=$SECONDS
  (cd "${HACK_DIR}/${dir}" && CGO_ENABLED=0 go build -modfile="${modfile}" -trimpath -ldflags="-s -w ${K8S_LDFLAGS}" -o "${BIN_DIR}/.${out}.tmp" "${pkg}")
  mv -f "${BIN_DIR}/.${out}.tmp" "${BIN_DIR}/${out}"
  echo "build-controlplane: ${out} built in $((SECONDS - start))s" >&2
}

build etcd "${ETCD_MODFILE}" . etcd
build controlplane "${K8S_MODFILE}" ./kube-apiserver kube-apiserver
build controlplane "${K8S_MODFILE}" ./kube-controller-manager kube-controller-manager
build controlplane "${K8S_MODFILE}" ./kube-scheduler kube-scheduler
build controlplane "${K8S_MODFILE}" ./kubectl kubectl

# kwok simulates nodes for hack/local-cluster.sh --workloads. Its go.mod has no
# replace directives, so `go install MODULE@VERSION` builds it from the proxy
# with its own pinned dependencies (k8s.io/* v0.36), outside every go.mod of
# this repository. The binary's name carries its version (this folder is keyed
# by the Kubernetes and etcd versions only); `kwok` links to the pinned one.
# hack/local-cluster.sh reads the stage files from the module cache of the
# version `go version -m` finds in the binary, so they always match it.
KWOK_VERSION=v0.8.0
if [[ ! -x "${BIN_DIR}/kwok-${KWOK_VERSION}" ]]; then
  echo "build-controlplane: building kwok ${KWOK_VERSION} (first run only; ~2 min)" >&2
  start=$SECONDS
  tmp="$(mktemp -d "${BIN_DIR}/.kwok.XXXXXX")"
  CGO_ENABLED=0 GOBIN="${tmp}" go install -trimpath -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  mv -f "${tmp}/kwok" "${BIN_DIR}/kwok-${KWOK_VERSION}"
  rmdir "${tmp}"
  echo "build-controlplane: kwok built in $((SECONDS - start))s" >&2
fi
if [[ "$(readlink "${BIN_DIR}/kwok" 2>/dev/null)" != "kwok-${KWOK_VERSION}" ]]; then
  ln -sfn "kwok-${KWOK_VERSION}" "${BIN_DIR}/.kwok.link"
  mv -fT "${BIN_DIR}/.kwok.link" "${BIN_DIR}/kwok"
fi

echo "${BIN_DIR}"
