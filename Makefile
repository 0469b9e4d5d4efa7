# hotpath — `make demo` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
# Tests share namespaces, bpffs mounts and the two CPUs: run packages one by one.
TEST_FLAGS ?= -p 1 -count=1 -timeout 15m

.PHONY: all build generate test test-socklb fuzz chaos demo lint deps bench clean install

all: build

deps:
	@scripts/deps.sh

PLUGINS := $(notdir $(wildcard cmd/hotpath-*))
CT_PKG := github.com/hotpath/hotpath/plugins/ct
# The out-of-tree plugin example: its own module, built and tested on its own.
EXAMPLE := examples/leastconn

build:
	@mkdir -p $(BIN)/demo
	$(GO) build -o $(BIN)/hotpath ./cmd/hotpath
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/$$p ./cmd/$$p"; $(GO) build -o $(BIN)/$$p ./cmd/$$p || exit 1; done
	@# The demo upgrades ct to a second build and shows a broken build rolled back.
	$(GO) build -ldflags "-X $(CT_PKG).Version=0.2.0" -o $(BIN)/demo/hotpath-ct-0.2.0 ./cmd/hotpath-ct
	$(GO) build -ldflags "-X $(CT_PKG).Version=0.3.0-broken" -o $(BIN)/demo/faultyct ./internal/faultyct
	@# ... and migrates the CT maps to a build writing CT value layout 2 and back.
	$(GO) build -ldflags "-X $(CT_PKG).Version=0.4.0-layout2 -X $(CT_PKG).CTLayout=2" -o $(BIN)/demo/hotpath-ct-layout2 ./cmd/hotpath-ct
	cd $(EXAMPLE) && $(GO) build -o $(CURDIR)/$(BIN)/hotpath-leastconn .

# Regenerates the committed BPF objects and Go bindings (needs clang) and the
# Go of the plugin protocol (needs protoc).
generate: deps
	$(GO) generate ./core/abi ./core/entry ./core/plugin/... ./plugins/... ./internal/...
	cd $(EXAMPLE) && $(GO) generate ./...

test: deps build
	$(GO) vet $(PKGS)
	cd $(EXAMPLE) && $(GO) vet ./...
	HOTPATH_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) $(PKGS)
	cd $(EXAMPLE) && $(GO) test $(TEST_FLAGS) ./...
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# The other half of the socket LB test matrix: every privileged test of the
# packages whose tests start supervisors through internal/e2e (found by go
# list, so a new one is included), again with the lb plugin's socket LB on.
# make test runs them with it off, and runs the tests whose traffic socket
# LB translates in both modes (e2e.Modes). Here a test that takes its mode
# from HOTPATH_SOCKLB and still had connections translated at the socket
# fails: make test would check it in one mode only (internal/e2e/sockguard.go).
E2E := github.com/hotpath/hotpath/internal/e2e
SOCKLB_PKGS = $(shell $(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | \
	awk '{ for (i = 2; i <= NF; i++) if ($$i == "$(E2E)") { print $$1; break } }')
test-socklb: deps build
	HOTPATH_SOCKLB=on HOTPATH_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) -run Privileged $(SOCKLB_PKGS)

# A short run of every fuzz target (their seed corpora run in `go test`).
FUZZTIME ?= 3s
fuzz: deps
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# The chaos test for as long as CHAOS_DURATION, half of it in each socket LB
# mode (make test runs ~60 s of it).
# HOTPATH_CHAOS_SEED replays a run.
CHAOS_DURATION ?= 10m
chaos: deps build
	HOTPATH_BIN=$(CURDIR)/$(BIN) HOTPATH_CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -count=1 -v -timeout 0 -run '^TestPrivilegedChaos$$' ./supervisor/

demo: deps build
	$(GO) run ./demo/cmd/demo --bin $(CURDIR)/$(BIN)

# Prints one table of ratios against baselines measured in the same run and
# writes it to bench/results/<date>.md. About twenty minutes on a 2-vCPU VM.
# bench/ciliummaglev is its own module (Cilium's pkg/maglev, timed beside ours);
# the hotpath module never depends on Cilium.
bench: deps build
	cd bench/ciliummaglev && $(GO) build -o $(CURDIR)/$(BIN)/ciliummaglev .
	$(GO) run ./bench/cmd/bench --bin $(CURDIR)/$(BIN) --out bench/results/$$(date +%F).md

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	cd $(EXAMPLE) && $(GO) vet ./...

# Installs the binaries, the systemd unit and an example config (never over
# an existing one) under $(DESTDIR)$(PREFIX).
PREFIX ?= /usr/local
UNITDIR ?= /lib/systemd/system
SYSCONFDIR ?= /etc
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/hotpath
	install -m 0755 $(BIN)/hotpath $(addprefix $(BIN)/,$(PLUGINS)) $(DESTDIR)$(PREFIX)/bin/
	sed 's|@BINDIR@|$(PREFIX)/bin|g' deploy/hotpath.service > $(DESTDIR)$(UNITDIR)/hotpath.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hotpath.service
	test -e $(DESTDIR)$(SYSCONFDIR)/hotpath/hotpath.json || \
		sed 's|/usr/local/bin|$(PREFIX)/bin|g' deploy/hotpath.json > $(DESTDIR)$(SYSCONFDIR)/hotpath/hotpath.json

clean:
	rm -rf $(BIN)
