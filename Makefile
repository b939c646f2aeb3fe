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
# Inputs per fuzz target: `make fuzz` searches longer; `make test` runs a short
# pass. A count, not a time: with a time limit, Go before 1.27 sometimes fails a
# clean run with "context deadline exceeded" as the limit ends (golang/go#75804,
# seen in CI on go1.26.8). A count never arms that deadline.
FUZZTIME ?= 300000x
SHORT_FUZZTIME ?= 30000x

GORELEASER_VERSION ?= v2.16.0
GORELEASER := $(CURDIR)/.tools/goreleaser

.PHONY: all build controlplane test check unit e2e fuzz bench demo docs tools dist manifest cluster-up cluster-down clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kubectl-bound_token

# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok, built once into a
# version-keyed cache (about 8 minutes on 2 cores the first time).
controlplane:
	hack/build-controlplane.sh >/dev/null

test: check unit e2e
	$(MAKE) fuzz FUZZTIME=$(SHORT_FUZZTIME)

check:
	@out="$$(gofmt -l cmd pkg test)"; if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

unit:
	$(GO) test -count=1 ./pkg/... ./test/krew/...

e2e: controlplane
	$(GO) test -count=1 -timeout 40m ./test/e2e/...

fuzz:
	$(GO) test ./pkg/jwt -run '^$$' -fuzz '^FuzzDecodeVerify$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/jwt -run '^$$' -fuzz '^FuzzJSONReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/legacy -run '^$$' -fuzz '^FuzzParseIndex$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/openshift -run '^$$' -fuzz '^FuzzParseNodeInstallerMessage$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/auditlog -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME)

bench: controlplane
	hack/bench.sh

demo: build controlplane
	hack/demo.sh

# Command reference from the cobra tree; pkg/cmd's TestDocsAreFresh fails
# when it is stale.
docs:
	$(GO) run ./hack/gendocs docs/reference

# goreleaser, pinned, from the Go module proxy into .tools/ (v2.16.0 is the
# newest that builds with Go 1.26).
tools: $(GORELEASER)
$(GORELEASER):
	GOBIN=$(CURDIR)/.tools $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

# Checks .goreleaser.yaml and builds every platform's archive into dist/.
dist: tools
	$(GORELEASER) check
	$(GORELEASER) release --snapshot --clean --skip=publish

# Renders plugins/bound-token.yaml (the custom krew index) for dist/.
manifest:
	$(GO) run ./hack/render-manifest

cluster-up: controlplane
	hack/local-cluster.sh up

cluster-down:
	hack/local-cluster.sh down

clean:
	rm -rf bin dist
