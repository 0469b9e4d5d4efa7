# hotpath — `make demo` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
# Tests share namespaces, bpffs mounts and the two CPUs: run packages one by one.
TEST_FLAGS ?= -p 1 -count=1 -timeout 15m

.PHONY: all build generate test demo lint deps bench clean

all: build

deps:
	@scripts/deps.sh

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/hotpath ./cmd/hotpath
	$(GO) build -o $(BIN)/hotpath-ct ./cmd/hotpath-ct

# Regenerates the committed BPF objects and Go bindings (needs clang).
generate: deps
	$(GO) generate ./core/abi ./supervisor ./plugins/...

test: deps build
	$(GO) vet $(PKGS)
	HOTPATH_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) $(PKGS)

demo: deps build
	$(BIN)/hotpath demo --bin $(CURDIR)/$(BIN)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
