# opes-milter: the two commands a user needs are `make run` and `make test`.
SHELL      := /bin/bash
GO         ?= go
BIN        ?= bin
CONFIG     ?= contrib/opes-milter.toml
FUZZTIME   ?= 30s
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

# Packages tested by `go test -race`; the real-peer tests in ./e2e run separately with -p 1.
UNIT_PKGS   = $(shell $(GO) list ./... | grep -v '/e2e$$')

.PHONY: all build run test unit e2e lint deps fuzz bench miltertest clean man install uninstall deb package-test

all: build

# VERSION and REVISION reach `opes-milter version` when the toolchain records
# no VCS information (GOFLAGS=-buildvcs=false, a source tarball).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/opes-milter/opes-milter/cmd/internal/cli.linkVersion=$(VERSION) \
            -X github.com/opes-milter/opes-milter/cmd/internal/cli.linkRevision=$(REVISION)

# GOBUILDENV: environment for go build, EXTRA_LDFLAGS more linker flags (the
# .deb builds with CGO_ENABLED=0, -trimpath and without symbol tables).
GOBUILDENV    ?=
GOBUILDFLAGS  ?=
EXTRA_LDFLAGS ?=

build:
	$(GOBUILDENV) $(GO) build $(GOBUILDFLAGS) -ldflags '$(LDFLAGS) $(EXTRA_LDFLAGS)' -o $(BIN)/ ./cmd/...

# --- install -----------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: both daemons in $(PREFIX)/bin,
# their manual pages (generated from the same text as "help"), the systemd
# units generated for $(PREFIX)/bin, the sysusers entries, the documents, and
# the example configuration in /etc/opes-milter/ unless one is there (mode
# 0640: run systemd-sysusers, then chgrp opes-milter on it).
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCDIR      ?= $(PREFIX)/share/doc/opes-milter
SYSCONFDIR  ?= /etc
# NOCONFIG=1 leaves the configuration out (the .deb ships it as a conffile).
NOCONFIG    ?=
MAN         := $(BIN)/man

man: build
	mkdir -p $(MAN)
	$(BIN)/opes-milter help -man > $(MAN)/opes-milter.8
	$(BIN)/opes-callout help -man > $(MAN)/opes-callout.8

install: man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BIN)/opes-milter $(BIN)/opes-callout $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MAN)/opes-milter.8 $(MAN)/opes-callout.8 $(DESTDIR)$(MANDIR)/man8/
	for u in opes-milter.service opes-callout.service; do \
	  sed 's|@BINDIR@|$(BINDIR)|g' contrib/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 contrib/systemd/opes-milter.sysusers $(DESTDIR)$(SYSUSERSDIR)/opes-milter.conf
	install -m 0644 README.md CHANGELOG.md LICENSE $(DESTDIR)$(DOCDIR)/
	if [ -z "$(NOCONFIG)" ] && [ ! -e $(DESTDIR)$(SYSCONFDIR)/opes-milter/opes-milter.toml ]; then \
	  install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/opes-milter && \
	  install -m 0640 contrib/opes-milter.toml $(DESTDIR)$(SYSCONFDIR)/opes-milter/opes-milter.toml; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/opes-milter $(DESTDIR)$(BINDIR)/opes-callout \
	  $(DESTDIR)$(MANDIR)/man8/opes-milter.8 $(DESTDIR)$(MANDIR)/man8/opes-callout.8 \
	  $(DESTDIR)$(UNITDIR)/opes-milter.service $(DESTDIR)$(UNITDIR)/opes-callout.service \
	  $(DESTDIR)$(SYSUSERSDIR)/opes-milter.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/opes-milter/ (your configuration)"

# --- the .deb ------------------------------------------------------------------
# make deb: build/opes-milter_VERSION_ARCH.deb with nFPM from a staged
# "make install PREFIX=/usr" (packaging/nfpm.yaml); make package-test installs
# it with dpkg into a scratch root, runs the installed binaries' check and
# removes it again (.ci/package-test.sh).
NFPM        ?= $(shell $(GO) env GOPATH)/bin/nfpm
NFPM_VERSION := v2.48.0
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/+/; s/-/./g'); \
	if [ -n "$$v" ]; then echo "$$v"; else echo "0.0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null).$$(git rev-parse --short HEAD 2>/dev/null)"; fi)
PKG_ROOT    := build/deb/root

$(NFPM):
	$(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

deb: $(NFPM)
	rm -rf build/deb
	$(MAKE) --no-print-directory install BIN=build/deb/bin GOBUILDENV=CGO_ENABLED=0 GOBUILDFLAGS=-trimpath \
	  EXTRA_LDFLAGS='-s -w' PREFIX=/usr \
	  DESTDIR=$(CURDIR)/$(PKG_ROOT) NOCONFIG=1
	mkdir -p build
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH=$$($(GO) env GOARCH) PKG_ROOT=$(PKG_ROOT) \
	  $(NFPM) package --config packaging/nfpm.yaml --packager deb --target build/

package-test: deb
	bash .ci/package-test.sh

# run: the bridge and the reference callout server on loopback with the shipped
# example config, in the foreground; Ctrl-C stops both.
run: build
	@set -m; trap 'kill $$cpid $$mpid 2>/dev/null; wait' INT TERM EXIT; \
	$(BIN)/opes-callout run -config $(CONFIG) & cpid=$$!; \
	$(BIN)/opes-milter run -config $(CONFIG) & mpid=$$!; \
	wait -n $$cpid $$mpid

# test: everything: install the real peers if missing, lint, unit tests with
# the race detector (fuzz seed corpora included), the real-MTA end-to-end
# suite, the miltertest script against `make run`, and the .deb round trip
# (build, install into a scratch root with dpkg, check, remove).
test: deps lint unit e2e miltertest package-test

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
	rm -rf $(BIN) build

# soak: SOAK (default 10m) of steady load, SOAK_RATE messages per second,
# through a real Postfix, opes-milter and opes-callout on loopback
# (e2e/soak_test.go, build tag soak, not part of `make test`): resident
# memory and goroutines must stay flat after the warm-up and every message
# must be delivered or refused. Then 3,000 messages from smtp-source through
# six rolling restarts of a set of three opes-callout servers
# (TestPoolRollingRestart): none tempfailed, none lost, every one adapted.
SOAK         ?= 10m
SOAK_RATE    ?= 10
SOAK_TIMEOUT ?= 40m
.PHONY: soak
soak: build
	OPES_SOAK=$(SOAK) OPES_SOAK_RATE=$(SOAK_RATE) $(GO) test -tags soak -count=1 -v -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' ./e2e/
	OPES_SOAK=$(SOAK) $(GO) test -count=1 -v -timeout $(SOAK_TIMEOUT) -run '^TestPoolRollingRestart$$' ./e2e/
