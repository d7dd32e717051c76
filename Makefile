# Rotor — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
GO ?= go
BIN := bin/rotor
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test test-deps lint bench clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/rotor

# Runs the server on 127.0.0.1:7300 with its data in ./rotor-data.
run: build
	./$(BIN) server

# Every test: unit, storage conformance, fuzz seed corpora, end-to-end through
# the built binary with aws-sdk-go-v2 and the AWS CLI.
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# Installs what the tests need when it is missing (CI runs as root).
test-deps:
	@bash scripts/test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	staticcheck ./...

# Quick benchmarks of the hot paths (see BENCHMARKS.md for the full figures).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./internal/...

clean:
	rm -rf bin
