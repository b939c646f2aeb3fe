# kubectl bound-token. `make test` is what CI runs (.ci/run); `make demo` shows
# the tool on a local control plane. Both build what they need.
SHELL := /usr/bin/env bash
GO ?= go
PKG := github.com/bound-token/kubectl-bound-token
BIN := bin/kubectl-bound_token
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG)/pkg/version.Version=$(VERSION) -X $(PKG)/pkg/version.Commit=$(COMMIT) -X $(PKG)/pkg/version.Date=$(DATE)
# The Kubernetes release of the local control plane (hack/build-controlplane.sh,
# hack/local-cluster.sh and the e2e framework read the same variable): 1.37, the
# current release, by default; OLDEST_KUBE_VERSION is the oldest we support.
# `make test` runs every suite on KUBE_VERSION and the release-dependent ones
# (RELEASE_SUITES) again on OLDEST_KUBE_VERSION.
KUBE_VERSION ?= 1.37
OLDEST_KUBE_VERSION := 1.34
export KUBE_VERSION
# Suites whose behaviour depends on the release: TokenRequest, verify and
# kuberc (test/e2e), legacy-token tracking and the cleaner (oldcluster),
# the verdicts built on them (migrate), switch with rollouts (switch,
# workloads), the external token signer (signer: beta in 1.34, GA in 1.36),
# the guard (guard: admission policies v1 from 1.36, v1beta1 behind a gate
# before), its fallback for clusters without them (guardwatch), and the
# 410 of an expired continue token served from etcd (paging).
RELEASE_SUITES := ./test/e2e ./test/e2e/oldcluster ./test/e2e/migrate ./test/e2e/switch ./test/e2e/workloads ./test/e2e/signer ./test/e2e/guard ./test/e2e/guardwatch ./test/e2e/paging
# Inputs per fuzz target: `make fuzz` searches longer; `make test` runs a short
# pass. A count, not a time: with a time limit, Go before 1.27 sometimes fails a
# clean run with "context deadline exceeded" as the limit ends (golang/go#75804,
# seen in CI on go1.26.8). A count never arms that deadline.
FUZZTIME ?= 300000x
SHORT_FUZZTIME ?= 30000x

GORELEASER_VERSION ?= v2.16.0
GORELEASER := $(CURDIR)/.tools/goreleaser
# krew's own `kubectl krew` and krew-index's validate-krew-manifest, pinned;
# the folder is keyed by the version so a bump rebuilds them.
KREW_VERSION ?= v0.4.3
KREW_DIR := $(CURDIR)/.tools/krew-$(KREW_VERSION)
KREW := $(KREW_DIR)/krew
VALIDATE_KREW_MANIFEST := $(KREW_DIR)/validate-krew-manifest
# smallstep's step, pinned, what `make bench` compares a one-token `verify`
# process with (`step crypto jwt verify`); v0.21.0 is the version the Go
# module proxy serves here. Built like goreleaser and krew, with the
# plugin's flags (-trimpath -s -w, no cgo).
STEP_VERSION ?= v0.21.0
STEP := $(CURDIR)/.tools/step-$(STEP_VERSION)/step

.PHONY: all build controlplane rollouts-controller test check unit e2e e2e-oldest krew fuzz bench bench-scale step demo docs tools dist manifest cluster-up cluster-down clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kubectl-bound_token

# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok of KUBE_VERSION,
# built once into a version-keyed cache (about 15 minutes on 2 cores the first time).
controlplane:
	hack/build-controlplane.sh >/dev/null

# The Argo Rollouts controller (hack/rollouts-controller/go.mod's pin), built
# once into a version-keyed cache (about 4 minutes on 2 cores from a cold
# module and build cache), for test/e2e/rollouts.
rollouts-controller:
	hack/build-rollouts-controller.sh >/dev/null

test: check unit e2e e2e-oldest krew
	$(MAKE) fuzz FUZZTIME=$(SHORT_FUZZTIME)

check:
	@out="$$(gofmt -l cmd pkg test)"; if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

unit:
	$(GO) test -count=1 ./pkg/...

# Each package under test/e2e on its own local control plane; test/e2e/demo
# runs hack/demo.sh (`make demo`) to its end, so the demo cannot rot.
e2e: controlplane rollouts-controller
	$(GO) test -count=1 -timeout 40m ./test/e2e/...

# The release-dependent suites on the oldest supported release (its own
# control plane, built once like the current one).
e2e-oldest:
	KUBE_VERSION=$(OLDEST_KUBE_VERSION) hack/build-controlplane.sh >/dev/null
	KUBE_VERSION=$(OLDEST_KUBE_VERSION) $(GO) test -count=1 -timeout 40m $(RELEASE_SUITES)

# The release archive for this machine, built by goreleaser from
# .goreleaser.yaml, rendered into a manifest, checked by validate-krew-manifest
# and installed, run and uninstalled by the real krew through kubectl's plugin
# lookup (kubectl from the control-plane build).
krew: tools
	@bin="$$(hack/build-controlplane.sh)" && \
	KREW="$(KREW)" VALIDATE_KREW_MANIFEST="$(VALIDATE_KREW_MANIFEST)" GORELEASER="$(GORELEASER)" KUBECTL="$$bin/kubectl" \
		$(GO) test -count=1 -timeout 20m ./test/krew/...

# Each target is listed first, so a fuzz test that moved or was renamed
# fails here instead of fuzzing nothing (go test -fuzz with no match exits 0).
FUZZ_TARGETS := ./pkg/jwt:FuzzDecodeVerify ./pkg/jwt:FuzzJSONReader ./pkg/backup:FuzzParseIndex \
	./pkg/openshift:FuzzParseNodeInstallerMessage ./pkg/auditlog:FuzzRead
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t#*:}; \
	  $(GO) test -list "^$$fn\$$" $$pkg | grep -qx "$$fn" || { echo "fuzz: no $$fn in $$pkg" >&2; exit 1; }; \
	  echo "$(GO) test $$pkg -run '^\$$' -fuzz '^$$fn\$$' -fuzztime $(FUZZTIME)"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME); \
	done

# Every row of bench/rows.txt into bench/RESULTS.md. The scale rows (issue
# #27: the audit at 2,000, 20,000 and 100,000 Secrets, the apply and restore
# of 20,000) are `make bench-scale`, apart because creating 100,000 Secrets
# takes minutes.
bench: controlplane
	hack/bench.sh

# bench/rows-scale.txt into bench/RESULTS-scale.md: test/scale grows one
# local control plane to 100,000 legacy token Secrets in 10,000 namespaces
# (about 20 minutes on 2 cores, 9 of them setting up).
bench-scale: controlplane
	BENCH_ROWS_FILE=bench/rows-scale.txt BENCH_TIMEOUT=120m hack/bench.sh

# Builds step once (about 5 minutes on 2 cores) and prints its path;
# test/bench runs it on demand, so `go test -bench` alone works too.
step: $(STEP)
	@echo $(STEP)
$(STEP):
	CGO_ENABLED=0 GOBIN=$(dir $(STEP)) $(GO) install -trimpath -ldflags '-s -w' github.com/smallstep/cli/cmd/step@$(STEP_VERSION)

demo: build controlplane
	hack/demo.sh

# Command reference from the cobra tree; pkg/cmd's TestDocsAreFresh fails
# when it is stale.
docs:
	$(GO) run ./hack/gendocs docs/reference

# goreleaser and krew, pinned, from the Go module proxy into .tools/ with
# `go install pkg@version`, so the project's go.mod never requires them
# (goreleaser v2.16.0 is the newest that builds with Go 1.26).
tools: $(GORELEASER) $(KREW) $(VALIDATE_KREW_MANIFEST)
$(GORELEASER):
	GOBIN=$(CURDIR)/.tools $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)
$(KREW) $(VALIDATE_KREW_MANIFEST) &:
	GOBIN=$(KREW_DIR) $(GO) install sigs.k8s.io/krew/cmd/krew@$(KREW_VERSION) sigs.k8s.io/krew/cmd/validate-krew-manifest@$(KREW_VERSION)

# Checks .goreleaser.yaml and builds every platform's archive into dist/.
dist: tools
	$(GORELEASER) check
	$(GORELEASER) release --snapshot --clean --skip=publish

# Renders plugins/bound-token.yaml (the custom krew index) for dist/ and
# checks it with krew's validate-krew-manifest (-skip-install: the archives
# are only downloadable once the release is published).
manifest: tools
	$(GO) run ./hack/render-manifest
	$(VALIDATE_KREW_MANIFEST) -skip-install -manifest plugins/bound-token.yaml

cluster-up: controlplane
	hack/local-cluster.sh up

cluster-down:
	hack/local-cluster.sh down

clean:
	rm -rf bin dist
