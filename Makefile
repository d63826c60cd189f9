# ssm-association-batcher — every command a developer, CI or `sam build` runs.
# `make help` lists the targets.

SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
# The Lambda binary, as `sam build` and deployments build it.
LAMBDA_BUILD := GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

.PHONY: help tools build build-AssociateFunction build-WorkerFunction build-ReaperFunction test test-unit demo invoke local-tables batcher lint ssm-local fuzz soak bench bench-quick clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'

tools: ## install DynamoDB Local and the Lambda Runtime Interface Emulator into .tools/
	@bash scripts/install-tools.sh

build: ## build the Lambda bootstraps for arm64 into build/{associate,worker,reaper}/bootstrap (what sam build runs)
	$(LAMBDA_BUILD) -o build/associate/bootstrap ./functions/associate
	$(LAMBDA_BUILD) -o build/worker/bootstrap ./functions/worker
	$(LAMBDA_BUILD) -o build/reaper/bootstrap ./functions/reaper

# sam build (BuildMethod: makefile) calls these with ARTIFACTS_DIR set.
build-AssociateFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/associate

build-WorkerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/worker

build-ReaperFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/reaper

# The job tests (four workers, moto SQS, DynamoDB Local behind the fault
# proxy) assert that no chunk ever waits for a visibility timeout; run beside
# another package's -race suite on 2 cores, a chunk's run was once slow
# enough to break that. They run on their own, after the rest.
JOBS_PKG := ./internal/jobs

test: tools ## run every test: unit, integration (DynamoDB Local, SSM emulator), end to end (Lambda RIE), template, brief fuzzing
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 12m $$($(GO) list $(PKGS) | grep -v '/internal/jobs$$')
	$(GO) test -race -timeout 12m $(JOBS_PKG)
	$(GO) -C bench vet ./... && $(GO) -C bench test -race ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=60000x

test-unit: ## unit tests only (no local services)
	$(GO) test -race -short $(PKGS)

demo: tools ## run the real function against the SSM emulator and DynamoDB Local and print the outcome
	$(GO) run ./cmd/demo $(ARGS)

# make invoke EVENT=events/fanout.json [FUNCTION=associate|worker|reaper] [ARGS="-v"]
invoke: tools ## run EVENT=file through FUNCTION=associate|worker|reaper as sam local invoke would, without Docker (RIE, SSM emulator, DynamoDB Local)
	@if [ -z "$(EVENT)" ]; then echo 'usage: make invoke EVENT=events/<file>.json [FUNCTION=associate|worker|reaper] [ARGS="-v"]'; exit 2; fi
	$(GO) run ./cmd/invoke -event "$(EVENT)" $(if $(FUNCTION),-function $(FUNCTION)) $(ARGS)

local-tables: tools ## for sam local invoke: DynamoDB Local on :8000 with the template's tables (and moto on :5000 with the jobs queue) until Ctrl-C
	$(GO) run ./cmd/invoke -local-tables $(ARGS)

batcher: ## build the operator's command line into build/batcher (batcher --help)
	$(GO) build -o build/batcher ./cmd/batcher

lint: ## go vet, gofmt and cfn-lint on template.yaml
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@command -v cfn-lint >/dev/null || { echo "cfn-lint is not installed: it ships with the Python tools of this machine kind (pip install cfn-lint elsewhere)"; exit 1; }
	cfn-lint template.yaml

ssm-local: ## run the SSM emulator in the foreground (flags: make ssm-local ARGS="-rate 5")
	$(GO) run ./cmd/ssm-local $(ARGS)

# make test gives each target a count of executions (a few seconds each),
# not a duration: with a duration, Go 1.26's fuzz coordinator can fail a
# clean run with "context deadline exceeded" as the time runs out
# (go.dev/issue/75804, fixed in Go 1.27); a fresh-clone .ci/run hit it once.
FUZZTIME ?= 60s
fuzz: ## run each fuzz target for FUZZTIME (default 60s; make test runs 60000 executions each)
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) -fuzzminimizetime=3s ./internal/request
	$(GO) test -run='^$$' -fuzz=FuzzValidInstanceID -fuzztime=$(FUZZTIME) -fuzzminimizetime=3s ./internal/request
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) -fuzzminimizetime=3s ./internal/event
	$(GO) test -run='^$$' -fuzz=FuzzScheduleParsers -fuzztime=$(FUZZTIME) -fuzzminimizetime=3s ./internal/ssmlocal

soak: tools ## the reliability fault matrix at a larger size (minutes)
	SOAK=1 $(GO) test -race -timeout 60m -run 'Reliability|Soak' -v ./internal/reliability

# The benchmark program is a module of its own (bench/go.mod, which replaces
# this module with ../), so that its plotting library stays out of the
# function's go.mod; it runs from bench/ and writes bench/results.json,
# bench/wall-time.png and BENCHMARKS.md at the root all the same.
BENCH := $(GO) -C bench run ./cmd/bench

bench: tools ## benchmarks: throughput against the ideal, cost per entry, cold start (writes bench/results.json, BENCHMARKS.md)
	$(BENCH) $(ARGS)
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/request ./internal/associate

bench-quick: tools ## the benchmark program at n = 1,000 only (under a minute)
	$(BENCH) -quick $(ARGS)

clean: ## remove build outputs (not .tools/)
	rm -rf build .aws-sam
