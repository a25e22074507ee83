# GRPCChatter: run `make help` for the list of targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

BIN        := $(CURDIR)/bin
TOOLS      := $(BIN)/tools
export PATH := $(TOOLS):$(PATH)

.PHONY: help
help: ## Show this list of targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/auth, bin/chat and bin/chatter
	go build -o $(BIN)/ ./services/auth/cmd/auth ./services/chat/cmd/chat ./pkg/cmd/chatter

.PHONY: test
test: ## Run every workspace module's tests with -race
	scripts/test.sh

.PHONY: lint
lint: tools ## go vet, gofmt, buf lint and a check that generated code is current
	scripts/lint.sh

.PHONY: generate
generate: tools ## Regenerate the protobuf Go code from proto/
	cd proto && buf generate

.PHONY: run
run: build ## Start auth and chat, wait until both answer (addresses: env or .env.local; Ctrl-C stops both)
	scripts/run.sh

.PHONY: run-cluster
run-cluster: build tools ## Start 3 NATS nodes, auth and 3 chat instances sharing rooms (Ctrl-C stops all)
	scripts/run-cluster.sh

.PHONY: bench
bench: ## Run the load generator and write docs/BENCHMARKS.md
	scripts/bench.sh

.PHONY: up
up: ## Start PostgreSQL, auth, a 3-node NATS cluster and 2 chat instances (needs Docker with compose)
	scripts/compose.sh up -d --build

.PHONY: down
down: ## Stop the compose deployment
	scripts/compose.sh down

.PHONY: tools
tools: $(TOOLS)/buf ## Build the pinned tools (buf, protoc plugins, nats-server) into bin/tools

$(TOOLS)/buf: tools/go.mod tools/go.sum
	cd tools && GOWORK=off go build -o $(TOOLS)/ tool
	@touch $@

.PHONY: clean
clean: ## Remove built binaries (keeps data/)
	rm -rf $(BIN)
