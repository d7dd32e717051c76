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

# Quick benchmarks (about a minute): the hot-path Go benchmarks, then
# GetSecretValue and PutSecretValue end to end against a child server, each
# with its ceiling pass. See BENCHMARKS.md for the full figures and
# `rotor bench --help` for rotate and scale.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 300ms ./internal/keyring ./internal/auth ./internal/auth/policy ./internal/awsapi ./internal/metrics ./internal/ratelimit ./client
	$(GO) test -run '^$$' -bench 'VersionByStage|Write' -benchmem -benchtime 500x ./internal/store/sqlite
	$(GO) test -run '^$$' -bench 'GetSecretValue' -benchtime 3000x ./internal/server
	./$(BIN) bench get --duration 5s
	./$(BIN) bench put --duration 5s

clean:
	rm -rf bin
