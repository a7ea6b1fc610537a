# Skiff build, test and cluster targets. Everything a person or CI runs
# starts here.
SHELL := /bin/bash
GO ?= go
BIN ?= $(CURDIR)/bin
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
TOOLS := $(CURDIR)/.tools
COMMANDS := apiserver controller-manager scheduler kubelet proxy ctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/skiff-dev/skiff/internal/version.GitVersion=$(VERSION)

.PHONY: all build deps test bench proto proto-check up down lint clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./,$(COMMANDS))

# deps installs the Debian packages the tests and the local cluster use.
deps:
	bash deploy/deps.sh

# test runs every test: unit, in-process integration, and (as root) the
# end-to-end tests on real containerd, CNI and iptables.
test: deps
	$(GO) test -race -count=1 -timeout 25m ./...

# bench runs every benchmark once on this machine; docs/benchmarks.md
# records the figures. System benchmarks run one full iteration each (they
# report their own rates and ratios); micro-benchmarks run as usual.
bench: deps
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m \
		./apiserver/integration/ ./scheduler/... ./proxy/... ./kubelet/... | tee bench.out
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./apiserver/admission/ | tee -a bench.out

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# proto regenerates the committed Go code from proto/ with pinned generators.
proto: $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	PATH=$(TOOLS):$$PATH protoc -I proto \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		proto/api/*.proto

# proto-check fails when the committed generated code is stale.
proto-check: proto
	git diff --exit-code -- proto/ || { echo "generated code in proto/ is stale: run make proto and commit"; exit 1; }

# up and down (deploy/local.mk) bring a local cluster up on this machine
# and remove it again; up installs what it needs first.
include deploy/local.mk
up: deps

clean:
	rm -rf $(BIN) $(TOOLS)
