# opes-milter: the two commands a user needs are `make run` and `make test`.
SHELL      := /bin/bash
GO         ?= go
BIN        := bin
CONFIG     ?= contrib/opes-milter.toml
FUZZTIME   ?= 30s
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

# Packages tested by `go test -race`; the real-peer tests in ./e2e run separately with -p 1.
UNIT_PKGS   = $(shell $(GO) list ./... | grep -v '/e2e$$')

.PHONY: all build run test unit e2e lint deps fuzz bench miltertest clean

all: build

# VERSION and REVISION reach `opes-milter version` when the toolchain records
# no VCS information (GOFLAGS=-buildvcs=false, a source tarball).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/opes-milter/opes-milter/cmd/internal/cli.linkVersion=$(VERSION) \
            -X github.com/opes-milter/opes-milter/cmd/internal/cli.linkRevision=$(REVISION)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# run: the bridge and the reference callout server on loopback with the shipped
# example config, in the foreground; Ctrl-C stops both.
run: build
	@set -m; trap 'kill $$cpid $$mpid 2>/dev/null; wait' INT TERM EXIT; \
	$(BIN)/opes-callout run -config $(CONFIG) & cpid=$$!; \
	$(BIN)/opes-milter run -config $(CONFIG) & mpid=$$!; \
	wait -n $$cpid $$mpid

# test: everything: install the real peers if missing, lint, unit tests with
# the race detector (fuzz seed corpora included), the real-MTA end-to-end
# suite, and the miltertest script against `make run`.
test: deps lint unit e2e miltertest

deps:
	bash .ci/install-peers.sh

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@latest

unit:
	$(GO) test -race -count=1 -timeout 300s $(UNIT_PKGS)

e2e: build
	$(GO) test -p 1 -count=1 -timeout 480s ./e2e/

miltertest: build
	bash .ci/miltertest.sh

# fuzz: run every fuzz target for FUZZTIME each (the seed corpora also run in `make unit`).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./ocp/...
	$(BIN)/opes-bench run $(BENCHFLAGS)

clean:
	rm -rf $(BIN)

# soak: SOAK (default 10m) of steady load, SOAK_RATE messages per second,
# through a real Postfix, opes-milter and opes-callout on loopback
# (e2e/soak_test.go, build tag soak, not part of `make test`): resident
# memory and goroutines must stay flat after the warm-up and every message
# must be delivered or refused.
SOAK         ?= 10m
SOAK_RATE    ?= 10
SOAK_TIMEOUT ?= 40m
.PHONY: soak
soak: build
	OPES_SOAK=$(SOAK) OPES_SOAK_RATE=$(SOAK_RATE) $(GO) test -tags soak -count=1 -v -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' ./e2e/
