#!/usr/bin/env bash
# Builds the Argo Rollouts controller (github.com/argoproj/argo-rollouts
# cmd/rollouts-controller, the version hack/rollouts-controller/go.mod pins)
# into a version-keyed cache outside git, for the e2e tests that run it
# against the local control plane (test/e2e/framework, rollouts.go). Builds
# only when the binary is missing, so repeated runs cost nothing. Prints the
# binary's path as the last line.
#
# The build runs in hack/rollouts-controller, a module of its own whose
# go.mod requires argo-rollouts and carries its replace block verbatim (a
# dependency's replace directives are ignored; only the main module's
# count), so the controller is linked against the k8s.io/* v0.34.5 it is
# released with, and the project's go.mod never requires any of it.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MOD_DIR="${HACK_DIR}/rollouts-controller"
VERSION="$(grep -oE '^\s*(require )?github\.com/argoproj/argo-rollouts v[0-9][^ ]*' "${MOD_DIR}/go.mod" | head -1 | awk '{print $NF}' || true)"
if [[ -z "${VERSION}" ]]; then
  echo "build-rollouts-controller: cannot read the pinned argo-rollouts version from hack/rollouts-controller/go.mod" >&2
  exit 2
fi

CACHE_ROOT="${BOUND_TOKEN_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/kubectl-bound-token}"
# Keyed by the version only: a change to the way it is built below must
# change this folder's name too, or stale binaries are reused.
BIN_DIR="${CACHE_ROOT}/argo-rollouts-${VERSION}/bin"
OUT="${BIN_DIR}/rollouts-controller"
mkdir -p "${BIN_DIR}"

if [[ ! -x "${OUT}" ]]; then
  echo "build-rollouts-controller: building rollouts-controller ${VERSION} (first run only; ~4 min on 2 cores from a cold module cache)" >&2
  start=$SECONDS
  # The version its own Makefile stamps (argo-rollouts Makefile, LDFLAGS;
  # utils/version/version.go): `rollouts-controller --version` and its
  # start-up log then say v1.10.1+unknown instead of v99.99.99+unknown.
  # GOWORK=off: a go.work above the repository must not pull this module
  # in. -mod=readonly (on the command line, so it overrides an inherited
  # GOFLAGS=-mod=mod): go.sum must already hold every checksum; a stale one
  # fails here instead of being rewritten. Build into a temp name of its
  # own (two test packages may build at once) and rename, so an interrupted
  # build never leaves a half-written binary that later runs would trust.
  tmp="$(mktemp "${BIN_DIR}/.rollouts-controller.XXXXXX")"
  (cd "${MOD_DIR}" && CGO_ENABLED=0 GOWORK=off go build -mod=readonly -trimpath \
    -ldflags="-s -w -X github.com/argoproj/argo-rollouts/utils/version.version=${VERSION#v}" \
    -o "${tmp}" github.com/argoproj/argo-rollouts/cmd/rollouts-controller) || {
    rm -f "${tmp}"
    echo "build-rollouts-controller: go build of argo-rollouts ${VERSION} cmd/rollouts-controller failed (in ${MOD_DIR})" >&2
    exit 1
  }
  chmod 0755 "${tmp}"
  mv -f "${tmp}" "${OUT}"
  echo "build-rollouts-controller: rollouts-controller built in $((SECONDS - start))s" >&2
fi

echo "${OUT}"
