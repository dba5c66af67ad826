# smtpcap — see README.md. `make demo` and `make test` are the quick start.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/smtpcap
PKGS  := ./...

# Debian packages the build, the tests and the lab need. The build needs
# only Go, gcc and libpcap; the tests add tshark & co (tcpreplay: the live
# replay test, as root); the lab (and the tests as root, which regenerate
# the lab) add Postfix, swaks, iptables ...
DEB_BUILD := libpcap-dev gcc
DEB_TEST  := tshark tcpdump tcpreplay zstd gzip
DEB_BROWSER := chromium# the case report test opens report.html in headless Chromium (skipped without it)
DEB_LAB   := postfix swaks libnet-ssleay-perl libio-socket-inet6-perl iproute2 iptables conntrack openssl procps python3
DEB_ROOT_TEST := $(if $(filter 0,$(shell id -u)),$(DEB_LAB))

.PHONY: all deps deps-build deps-test deps-lab build test hostile demo bench fuzz golden lab vet clean

all: build

# deps-* install what is missing with apt-get when run as root; otherwise
# they print the exact command to run.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if ! command -v $(GO) >/dev/null; then echo "Go is required (go1.25 or newer): https://go.dev/dl/"; exit 1; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$missing >/dev/null || exit 1; \
	else \
	  echo "missing Debian packages:$$missing"; \
	  echo "run: sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$$missing"; \
	  exit 1; \
	fi
endef

deps-build:
	$(call install_missing,$(DEB_BUILD))
deps-test: deps-build
	$(call install_missing,$(DEB_TEST) $(DEB_BROWSER) $(DEB_ROOT_TEST))
deps-lab: deps-build
	$(call install_missing,$(DEB_TEST) $(DEB_LAB))
deps: deps-lab

build: deps-build
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/smtpcap

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# test runs every test; as root with network namespaces it also regenerates
# the lab in a temporary folder and checks the analyzer on the fresh captures.
test: deps-test vet
	@echo "== verdict accuracy on the committed lab captures (scenario x capture point) =="
	@$(GO) test -count=1 -run 'TestLabCaptures$$' -v ./cmd/smtpcap 2>&1 | sed -n '/accuracy:/,/^--- /p' | sed '$$d'
	$(GO) test -count=1 -timeout 30m $(PKGS)
	@echo "== per-packet cost with 10 .. 100,000 open connections (a benchmark: it must stay flat) =="
	$(GO) test -count=1 -run '^$$' -bench 'OpenConnections' -benchtime 200000x ./reassembly

# hostile runs the hostile-input suite alone (make test runs it too): the
# inputs of testdata/hostile/gen through the binary, peak RSS measured.
hostile: deps-build
	$(GO) test -count=1 -run 'TestHostileInputs|TestSecretsNeverLeave|TestOutputCannotAttackTheReader|TestEvasionIsVisible|TestCaptureStartsInsideDATA|TestSignalsStopAtOnce' -v ./cmd/smtpcap

demo: build
	$(BIN) analyze -r testdata/lab/captures/all-server.pcapng --esa-log testdata/lab/captures/mail.current

golden:
	$(GO) test -count=1 $(PKGS) -update

FUZZTIME ?= 20s
fuzz:
	$(GO) test ./smtpstate -run '^$$' -fuzz '^FuzzConn$$' -fuzztime $(FUZZTIME)
	$(GO) test ./smtpstate -run '^$$' -fuzz '^FuzzMsgID$$' -fuzztime $(FUZZTIME)
	$(GO) test ./smtpstate/esalog -run '^$$' -fuzz '^FuzzParseLine$$' -fuzztime $(FUZZTIME)
	$(GO) test ./smtpstate/esalog -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./capture -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME)
	$(GO) test ./reassembly -run '^$$' -fuzz '^FuzzFrame$$' -fuzztime $(FUZZTIME)
	$(GO) test ./reassembly -run '^$$' -fuzz '^FuzzFlows$$' -fuzztime $(FUZZTIME)

bench: build deps-test
	testdata/bench/bench.sh $(BIN)

# lab regenerates the committed lab captures, logs and expectations (root).
lab: build deps-lab
	testdata/lab/lab.sh --out testdata/lab/captures

clean:
	rm -rf bin .bench testdata/lab/out
