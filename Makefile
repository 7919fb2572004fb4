# The project's commands. `make test` is the test command of the README and
# of CI (.ci/run); `make run` runs the node.

GO ?= go
# golangci-lint is pinned and comes from the Go module proxy.
GOLANGCI_LINT_VERSION := v2.15.0
TOOLS_BIN := $(shell $(GO) env GOPATH)/bin
GOLANGCI_LINT := $(TOOLS_BIN)/golangci-lint
# Mailpit is the real SMTP server of the e-mail tests (internal/mailpit).
MAILPIT_VERSION := v1.33.1

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# Arguments for `make run`, e.g. make run ARGS='--listen 127.0.0.1:9090'.
ARGS ?=

.PHONY: agejs help run test fmt-check vet lint build check-asyncapi check-openapi check-goldens check-hsds examples clean mailpit

## help: list the targets
help:
	@sed -n 's/^## //p' Makefile

## run: start a node (embedded NATS + HTTP) with its data in ./data
run:
	$(GO) run ./cmd/invictus serve $(ARGS)

## test: gofmt check, go vet, and every test with the race detector
## (a package may take longer than go test's 10 minutes on a loaded machine)
test: fmt-check vet mailpit
	$(GO) test -race -timeout 30m ./...

## mailpit: install the SMTP server of the e-mail tests if it is missing
mailpit:
	@if ! command -v mailpit >/dev/null 2>&1 && [ ! -x "$(TOOLS_BIN)/mailpit" ]; then \
		echo "installing mailpit $(MAILPIT_VERSION) into $(TOOLS_BIN)"; \
		GOBIN="$(TOOLS_BIN)" $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION); \
	fi

## fmt-check: fail if a Go file is not gofmt-formatted
fmt-check:
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*' \
		-not -path '*/testdata/*' -not -path './vendor/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt -w needed on:"; echo "$$files"; exit 1; fi

## vet: go vet on every package
vet:
	$(GO) vet ./...

## lint: golangci-lint with .golangci.yml (installs the pinned version if missing)
lint:
	@if ! "$(GOLANGCI_LINT)" version 2>/dev/null | grep -q "version $(GOLANGCI_LINT_VERSION:v%=%) "; then \
		echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(TOOLS_BIN)"; \
		GOBIN="$(TOOLS_BIN)" $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi
	"$(GOLANGCI_LINT)" run ./...

## build: build bin/invictus with the version and commit stamped in
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/invictus ./cmd/invictus

## check-asyncapi: validate schemas/asyncapi.yaml with @asyncapi/parser (needs node and npm)
check-asyncapi:
	scripts/check-asyncapi.sh

## check-openapi: lint the bundled OpenAPI document (invictus openapi) with @redocly/cli (needs node and npm)
check-openapi:
	scripts/check-openapi.sh

## check-goldens: validate the golden examples with Ajv, default options (needs node and npm)
check-goldens:
	scripts/check-goldens.sh

## check-hsds: validate the demo directory's HSDS 3.0 export against the Open Referral schemas in ../shared/data/hsds-3.0 (skips without them)
check-hsds:
	bash scripts/check-hsds.sh

## examples: run examples/node against a demo node it starts (needs node and npm)
examples:
	bash examples/node/run.sh

clean:
	rm -rf bin

## agejs: rebuild adapters/web/static/age.js (age-encryption, pinned in scripts/agejs) with esbuild; the result is committed
agejs:
	./scripts/build-agejs.sh
