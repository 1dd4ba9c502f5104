# oomscope — build, test and run. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go

.DEFAULT_GOAL := help
BIN := bin/oomscope
PKGS := ./...
# Fuzz budget per target, as an execution count: a duration (-fuzztime 20s)
# makes go1.26's fuzz coordinator fail spuriously with "context deadline
# exceeded" when the time is up (go.dev/issue/75804, fixed in go1.27).
FUZZTIME ?= 200000x
# Where `make run` keeps its checkpoint and archive.
RUN_STATE ?= $(CURDIR)/.cache/run

deps: ## install the system packages the tests need (qemu-system-x86, busybox-static, cpio) when missing
	hack/deps.sh

.PHONY: deps help build test unit lint fmt vet fuzz bench envtest-bins e2e e2e-live e2e-qemu run demo clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# What `oomscope version` prints, stamped at link time (the machine may set
# GOFLAGS=-buildvcs=false, which leaves the toolchain's VCS stamp out).
# Override any of them: make build VERSION=v1.2.3 BUILD_TIME=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null)
DIRTY ?= $(shell git rev-parse --verify -q HEAD >/dev/null 2>&1 && { git diff --quiet HEAD -- 2>/dev/null && echo false || echo true; })
BUILD_TIME ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS = -X main.version=$(VERSION) -X main.revision=$(REVISION) -X main.dirty=$(DIRTY) -X main.buildTime=$(BUILD_TIME)

build: ## build bin/oomscope (static; version, revision and build time stamped for `oomscope version`)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/oomscope

run: build ## the node daemon on its embedded default: tail /dev/kmsg, embedded NATS on 127.0.0.1:4222, archive in .cache/run, post-mortems on stdout (root)
	@mkdir -p $(RUN_STATE)
	$(BIN) run --state-dir $(RUN_STATE) --stdout -o text --log-format console

demo: build ## cause one real OOM kill in a scratch cgroup and show its report arriving on NATS and in the archive (root)
	$(BIN) demo

LIVE_TABLE := $(CURDIR)/.cache/e2e-live-table.txt

test: deps lint envtest-bins ## everything CI runs: lint, unit + kernel + envtest tests with -race, short fuzzing, the qemu kernel matrix, the short live storm side by side with cAdvisor
	@mkdir -p .cache && rm -f $(LIVE_TABLE)
	KUBEBUILDER_ASSETS=$$(hack/envtest-bins.sh | tail -n1) OOMSCOPE_E2E_LIVE_TABLE=$(LIVE_TABLE) $(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) fuzz
	OOMSCOPE_E2E_LIVE_TABLE=$(LIVE_TABLE) hack/e2e-matrix.sh
	$(MAKE) bench-live SHORT=1

unit: ## quick: unit tests only (no envtest, no live kernel, no qemu)
	$(GO) test -race -count=1 -short ./report/... ./kmsg/... ./oomparse/... ./enrich/... ./kube/... ./outbox/... ./sink/... ./archive/... ./natsd/... ./natsread/... ./daemon/... ./cmd/...

lint: fmt vet ## gofmt and go vet

fmt: ## gofmt check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet $(PKGS)

fuzz: ## run every fuzz target for FUZZTIME executions (default 200000x: 6-60 s each on the 2-core VM, cmd/oomscope FuzzDecodeHistoryReport about 6 min — its test binary links the whole daemon; about 9 minutes in all)
	@set -e; for t in $$(hack/fuzz-targets.sh); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -parallel 2 $$pkg; \
	done

bench: ## benchmarks (numbers in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem -count 3 -cpu 1 ./kmsg ./oomparse

envtest-bins: ## build kube-apiserver and etcd for envtest into .cache/envtest/bin (cached)
	hack/envtest-bins.sh >/dev/null

e2e: deps ## real kernels: live cgroup OOM kills here + the qemu kernel matrix; ends with both tables
	@mkdir -p .cache && rm -f $(LIVE_TABLE)
	OOMSCOPE_E2E_LIVE_TABLE=$(LIVE_TABLE) $(GO) test -race -count=1 ./e2e/live; rc=$$?; \
	OOMSCOPE_E2E_LIVE_TABLE=$(LIVE_TABLE) hack/e2e-matrix.sh || rc=1; exit $$rc

e2e-live: ## live OOM kills in scratch cgroups of this machine (root)
	$(GO) test -race -count=1 -v ./e2e/live

bench-live: ## live OOM storm read side by side by oomscope and cAdvisor's oomparser; writes docs/performance.md (root; SHORT=1: the CI form, < 3 min)
	cd bench && GOWORK=off $(GO) run ./cmd/stormbench $(if $(SHORT),-short) $(BENCH_LIVE_FLAGS)

e2e-qemu: ## boot Debian kernels 5.10/6.1/6.12 under qemu and run the OOM scenarios; prints the matrix
	hack/e2e-matrix.sh

clean: ## remove bin/
	rm -rf bin
