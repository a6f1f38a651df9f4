# tapwars — developer targets. `make help` lists them.
GO        ?= go
TEMPL     ?= $(shell go env GOPATH)/bin/templ
TEMPL_VER := v0.3.1100
PKGS      := ./...

.PHONY: help run build test test-short generate lint bench loadtest compose-up compose-down clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

run: ## run the game on :8080 with the embedded broker and store (DATA_DIR=./data)
	$(GO) run ./cmd/tapwars

build: ## build the binary into ./tapwars
	CGO_ENABLED=0 $(GO) build -trimpath -o tapwars ./cmd/tapwars

test: ## run every test with the race detector (needs redis-server; browser tests need chromium)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short: ## skip the slow fault and browser tests
	$(GO) test -short -count=1 $(PKGS)

$(TEMPL):
	$(GO) install github.com/a-h/templ/cmd/templ@$(TEMPL_VER)

generate: $(TEMPL) ## regenerate views/*_templ.go from the .templ files
	$(TEMPL) generate -path views

lint: ## go vet, plus staticcheck from the module proxy
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 $(PKGS)

bench: ## go benchmarks (consumer apply, tap handler, hub) and a short load run
	$(GO) test -run '^$$' -bench . -benchtime 3x -benchmem ./store ./stream ./handlers ./live
	$(GO) run ./cmd/tapbench -duration 10s

compose-up: ## start Redis, Kafka and tapwars with docker compose
	docker compose -f docker-compose.dev.yml up --build

compose-down: ## stop them
	docker compose -f docker-compose.dev.yml down

clean: ## remove the binary and the embedded data
	rm -rf tapwars data
