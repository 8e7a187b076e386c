# artifact-store: make targets a newcomer can guess.
GO      ?= go
BIN     := bin/artifactstore
TOOLS   := $(CURDIR)/tools
ADDR    ?= 127.0.0.1:5000
DATA    ?= ./data
export CGO_ENABLED = 0

.PHONY: all build run test race fuzz conformance e2e ui-test bench bench-peers abuse soak soak-short lint tools clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/artifactstore

## run: start the server on embedded defaults (SQLite log and blobs under ./data)
run: build
	$(BIN) serve --addr $(ADDR) --data $(DATA)

## test: the README's test command: unit and HTTP tests, on SQLite and, when
## ARTIFACTSTORE_TEST_POSTGRES names a server, on PostgreSQL too; the S3
## tests run when versitygw is found (ARTIFACTSTORE_TEST_VERSITYGW, PATH or
## tools/, which `make tools` fills)
test:
	@test -n "$$ARTIFACTSTORE_TEST_POSTGRES" || echo "*** ARTIFACTSTORE_TEST_POSTGRES is not set: the PostgreSQL tests will be SKIPPED ***"
	$(GO) test ./...

## race: the registry and eventlog packages under the race detector (needs cgo)
race:
	CGO_ENABLED=1 $(GO) test -race ./registry/... ./eventlog/...

## fuzz: each fuzz target briefly (FUZZTIME=10s by default)
FUZZTIME ?= 10s
fuzz:
	conformance/fuzz.sh ./digest FuzzParse $(FUZZTIME)
	conformance/fuzz.sh ./manifests FuzzParse $(FUZZTIME)
	conformance/fuzz.sh ./manifests FuzzCBORRoundTrip $(FUZZTIME)
	conformance/fuzz.sh ./manifests FuzzCanonicalJSON $(FUZZTIME)
	conformance/fuzz.sh ./registry FuzzReference $(FUZZTIME)

## conformance: the OCI distribution-spec conformance suite, six times: spec
## 1.1 and dev+sparse, each on one server, on two PostgreSQL replicas behind
## a proxy (when ARTIFACTSTORE_TEST_POSTGRES is set) and with blobs in S3
conformance: build
	TOOLS=$(TOOLS) conformance/oci.sh $(BIN)

## e2e: real clients (oras, crane, skopeo) against a live server
e2e: build
	TOOLS=$(TOOLS) conformance/e2e.sh $(BIN)

## ui-test: the web UI in a real browser (Debian's chromium, which it
## requires): the pages show what the test pushed, a push appears on the
## live page within a second and survives a dropped stream, no console
## errors; screenshots in results/ui
ui-test:
	UI_TEST_REQUIRED=1 $(GO) test -count=1 -v -run TestUI ./conformance/ui/

## bench: benchmarks, including the 1 GiB push/pull with peak RSS
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

## bench-peers: issue 11's workload against artifactstore and CNCF Distribution
## (v3, and Debian's 2.8 when installed) in interleaved rounds: a table of
## medians and ratios, also in results/bench-peers.md. BENCH_SMALL=1 for tiny
## sizes; BENCH_POSTGRES=postgres://... adds PostgreSQL and the replica run
bench-peers: build
	TOOLS=$(TOOLS) conformance/bench-peers.sh $(BIN)

## abuse: the real server under bounded hostile loads (stalled bodies,
## 10,000 sessions, 1,000 subscribers, large event pages): its memory and
## descriptors, and an unrelated client's latency against idle
abuse: build
	$(GO) test ./cmd/artifactstore -run '^$$' -bench '^Benchmark(Abuse|ConnectionFlood|StreamFlood)$$' -benchtime 1x -v

## soak: real servers (one on SQLite, two replicas on one PostgreSQL
## database) collecting garbage and applying a retention policy every
## second under concurrent pushes, tag moves, deletes, restores and pulls
## for SOAK_DURATION; then every acknowledged image must pull whole, verify
## be clean and replay agree. soak-short: 20 seconds
SOAK_DURATION ?= 2m
soak:
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test ./cmd/artifactstore -run '^TestSoak$$' -count 1 -v -timeout 60m

soak-short:
	$(MAKE) soak SOAK_DURATION=20s

## tools: the test servers and clients, built from the Go module proxy into tools/
tools:
	@test -x $(TOOLS)/versitygw || GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	@test -x $(TOOLS)/staticcheck || GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	@test -x $(TOOLS)/staticcheck || GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(TOOLS)/staticcheck ./...

clean:
	rm -rf bin results
