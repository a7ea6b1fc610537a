# Local cluster and deployment targets. The Makefile includes this file
# (`include deploy/local.mk`); it uses the Makefile's GO and BIN.
#
#   make images   busybox.tar and nginx.tar (from Debian packages) in $(BIN)/images
#   make up       build, then start a cluster on this machine (root): NODES=2
#   make down     remove every trace of it
#   make local-status
LOCAL_STATE ?= /var/lib/skiff-local
NODES ?= 2

.PHONY: images deploy-tools up down local-status

images:
	$(GO) run ./deploy/images --out $(BIN)/images

# deploy-tools are the binaries install.sh and make up use besides the
# components: skiff-pki (certificates) and skiff-local (the local cluster).
deploy-tools:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/skiff-pki ./deploy/pki
	$(GO) build -o $(BIN)/skiff-local ./deploy/local

up: build deploy-tools images
	$(BIN)/skiff-local up --nodes $(NODES) --state-dir $(LOCAL_STATE) --bin-dir $(BIN) --image-dir $(BIN)/images

down:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/skiff-local ./deploy/local
	$(BIN)/skiff-local down --state-dir $(LOCAL_STATE)

local-status:
	$(GO) build -o $(BIN)/skiff-local ./deploy/local
	$(BIN)/skiff-local status --state-dir $(LOCAL_STATE)
