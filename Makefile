# deployer: `make demo` runs the main job, `make test` runs every test. Both prepare
# the machine first (scripts/setup.sh: packages, Docker engine, base image, toolchain).

GO      ?= go
BIN     := bin/deployer
GOFILES := $(shell find . -name '*.go' -not -path './.toolchain/*')

.PHONY: all setup build image demo test lint unit e2e bench bench-cache bench-pool bench-compile bench-hardhat clean

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
test: setup lint
	$(GO) test -count=1 -timeout 40m ./...

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

# Benchmarks print the baseline and ours side by side, with the ratio.
bench: bench-cache bench-pool bench-compile bench-hardhat

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
