# deployer: `make demo` runs the main job, `make test` runs every test. Both prepare
# the machine first (scripts/setup.sh: packages, Docker engine, base image, toolchain).

GO      ?= go
BIN     := bin/deployer
GOFILES := $(shell find . -name '*.go' -not -path './.toolchain/*')

.PHONY: all setup build image demo test lint unit e2e fuzz faults load bench bench-all bench-cache bench-pool bench-compile bench-hardhat clean

all: build

setup:
	./scripts/setup.sh

build: $(BIN)

# Static, so that it runs in the service image as well as on the host.
$(BIN): $(GOFILES) go.mod go.sum $(shell find runner dashboard -type f)
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/deployer

# The services' image, for docker-compose.yml.
image: setup build
	docker build -t deployer:latest .

# DEMO_KEEP=1 keeps the service running afterwards, for the dashboard.
demo: setup build
	$(GO) run ./cmd/demo -bin $(BIN)

# Every test, against the real engine, anvil, forge and redis-server. Under CI=true a
# missing dependency fails the run instead of skipping.
# Then a short run of each fuzz target past its corpus, and last, alone, the faults
# that restart the machine's Docker engine. The fuzz budget here is a count, not a
# duration: Go 1.26's coordinator can fail a target with a bare "context deadline
# exceeded" when a duration runs out (go.dev/issue/75804), and a count also makes
# the run the same amount of work on a slow machine.
test: setup lint
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz FUZZTIME=20000x
	$(MAKE) faults

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }
	@./scripts/check-source.sh

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: setup
	$(GO) test -count=1 -v ./e2e/

# Each fuzz target past its corpus (testdata/fuzz), FUZZTIME each; failures found
# land in the corpus, to be committed with their fix.
FUZZTIME ?= 1m
FUZZFLAGS = -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x
fuzz:
	$(GO) test $(FUZZFLAGS) -fuzz '^FuzzDeployRequest$$' ./producer/
	$(GO) test $(FUZZFLAGS) -fuzz '^FuzzInspectArchive$$' ./projects/
	$(GO) test $(FUZZFLAGS) -fuzz '^FuzzParse$$' ./networks/

# Restarts dockerd under a running deployer: never beside other tests.
faults: setup
	$(GO) test -count=1 -tags faults -run '^TestDockerdRestartMidRun$$' -timeout 20m -v ./e2e/

# LOAD_JOBS deployments (1000) queued against two workers; prints the API's
# latencies and the workers' memory (a 50-job run is part of make test).
LOAD_JOBS ?= 1000
load: setup
	LOAD_JOBS=$(LOAD_JOBS) $(GO) test -count=1 -run '^TestLoad$$' -timeout 60m -v ./e2e/

# Benchmarks print the baseline and ours side by side, with the ratio. make bench
# runs the side-by-side comparison and writes docs/benchmarks.md; the others each
# measure one cache.
bench: setup
	$(GO) test -run '^$$' -bench '^BenchmarkSideBySide$$' -benchtime 1x -timeout 60m ./e2e/

bench-all: bench bench-cache bench-pool bench-compile bench-hardhat

bench-cache: setup
	$(GO) test -run '^$$' -bench ImageResolve -benchtime 3x ./cache/imagecache/

bench-pool: setup
	$(GO) test -run '^$$' -bench JobContainer -benchtime 20x ./pool/

bench-compile: setup
	$(GO) test -run '^$$' -bench 'WarmDeployment$$' -benchtime 10x ./e2e/

bench-hardhat: setup
	$(GO) test -run '^$$' -bench WarmHardhatDeployment -benchtime 5x ./e2e/

clean:
	rm -rf bin test-output
