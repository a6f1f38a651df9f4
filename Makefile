# tapwars — developer targets. `make help` lists them.
GO              ?= go
GOBIN           := $(shell $(GO) env GOPATH)/bin
TEMPL           ?= $(GOBIN)/templ
TEMPL_VER       := v0.3.1100
# staticcheck v0.8.x understands Go 1.26 (older releases fail on it).
STATICCHECK_VER := v0.8.2
PKGS            := ./...
# "docker compose" (v2 plugin) when present, else Debian's docker-compose.
COMPOSE         ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILE    := docker-compose.dev.yml

.PHONY: help run build setup kafka-jars test test-short generate lint bench compose-config compose-up compose-down clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

run: ## run the game on :8080 with the embedded broker and store (DATA_DIR=./data)
	$(GO) run ./cmd/tapwars

build: ## build the static binary into ./tapwars
	CGO_ENABLED=0 $(GO) build -trimpath -o tapwars ./cmd/tapwars

setup: ## install what the tests need when it is missing (Debian packages, templ, Kafka jars): .ci/setup
	.ci/setup

kafka-jars: ## fetch the Apache Kafka jars the real-Kafka tests run, from Maven Central (KAFKA_JARS=dir)
	.ci/kafka-jars.sh

test: setup ## run every test with the race detector, after `make setup` (real redis-server, kfake and Apache Kafka, chromium)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short: ## skip the slow fault and browser tests
	$(GO) test -short -count=1 $(PKGS)

$(TEMPL):
	$(GO) install github.com/a-h/templ/cmd/templ@$(TEMPL_VER)

generate: $(TEMPL) ## regenerate views/*_templ.go from the .templ files
	$(TEMPL) generate

lint: ## go vet, plus staticcheck from the Go module proxy
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VER) $(PKGS)

bench: ## go benchmarks (store apply, consumer, handlers, hub), then short load runs: taps over HTTP, then over the players' WebSockets
	$(GO) test -run '^$$' -bench . -benchtime 3x -benchmem ./store ./stream ./handlers ./live
	@if [ -d cmd/tapbench ]; then $(GO) run ./cmd/tapbench -duration 10s && $(GO) run ./cmd/tapbench -mode ws -format html -duration 10s; fi

compose-config: ## validate docker-compose.dev.yml
	$(COMPOSE) -f $(COMPOSE_FILE) config -q

compose-up: ## start Redis, Kafka and tapwars with docker compose (needs a Docker engine)
	$(COMPOSE) -f $(COMPOSE_FILE) up --build

compose-down: ## stop them (add -v to drop the volumes: `make compose-down COMPOSE_DOWN_FLAGS=-v`)
	$(COMPOSE) -f $(COMPOSE_FILE) down $(COMPOSE_DOWN_FLAGS)

clean: ## remove the binary and the embedded data
	rm -rf tapwars data
