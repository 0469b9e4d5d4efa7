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

PLUGINS := $(notdir $(wildcard cmd/hotpath-*))
CT_PKG := github.com/hotpath/hotpath/plugins/ct

build:
	@mkdir -p $(BIN)/demo
	$(GO) build -o $(BIN)/hotpath ./cmd/hotpath
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/$$p ./cmd/$$p"; $(GO) build -o $(BIN)/$$p ./cmd/$$p || exit 1; done
	@# The demo upgrades ct to a second build and shows a broken build rolled back.
	$(GO) build -ldflags "-X $(CT_PKG).Version=0.2.0" -o $(BIN)/demo/hotpath-ct-0.2.0 ./cmd/hotpath-ct
	$(GO) build -ldflags "-X $(CT_PKG).Version=0.3.0-broken" -o $(BIN)/demo/faultyct ./internal/faultyct

# Regenerates the committed BPF objects and Go bindings (needs clang) and the
# Go of the plugin protocol (needs protoc).
generate: deps
	$(GO) generate ./core/abi ./core/plugin/... ./supervisor ./plugins/... ./internal/...

test: deps build
	$(GO) vet $(PKGS)
	HOTPATH_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) $(PKGS)

demo: deps build
	$(BIN)/hotpath demo --bin $(CURDIR)/$(BIN)

# Prints one table of ratios against baselines measured in the same run and
# writes it to bench/results/<date>.md. About five minutes.
bench: deps build
	$(GO) run ./bench/cmd/bench --bin $(CURDIR)/$(BIN) --out bench/results/$$(date +%F).md

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
