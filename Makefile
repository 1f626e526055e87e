# Atlas in Go. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/atlasgo/atlas/internal/version.Version=$(VERSION)
export CGO_ENABLED := 0

.PHONY: help build web run test test-fresh test-go test-python test-fuzz test-web bench worker-image worker-image-torch clean

help: ## list targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: web ## build bin/atlas-server (with the web GUI when npm is present), bin/foundations and the Python SDK wheel
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/atlas-server ./cmd/atlas-shim ./cmd/foundations
	python3 scripts/python-wheel.py bin >/dev/null

web: ## build the web GUI into web/dist, embedded by atlas-server (skipped without npm)
	web/build.sh

run: build ## build, start atlas-server with its defaults, and submit a sample job the first time
	@scripts/run.sh

test: ## set up what the tests need and run every test
	scripts/test-setup.sh
	$(MAKE) build
	$(MAKE) test-go test-python test-fuzz test-web

test-fresh: ## run `CI=true make test` in a clean clone of HEAD with a fresh HOME, TMPDIR and caches, as a new machine would
	scripts/test-fresh.sh

test-web: ## browser tests of the web GUI (Chromium, playwright-core) against bin/atlas-server
	web/test.sh --no-build

test-fuzz: ## run every Go fuzz target for a bounded number of inputs
	FUZZTIME=$${FUZZTIME:-20000x} FUZZTIME_FuzzExtract=$${FUZZTIME_FuzzExtract:-3000x} scripts/fuzz.sh

test-go: ## Go unit and end-to-end tests (the PostgreSQL store's and the S3 blob store's against throwaway servers)
	ATLAS_EXECUTOR=process scripts/postgres-test.sh scripts/s3-server.sh $(GO) test -count=1 -timeout 20m ./...

test-python: ## Python SDK tests against a real atlas-server
	ATLAS_EXECUTOR=process ATLAS_SERVER_BIN=$(CURDIR)/bin/atlas-server FOUNDATIONS_BIN=$(CURDIR)/bin/foundations \
		python3 -m unittest discover -s python/tests -t python -v

worker-image: ## build the Docker worker atlas-ce/worker:latest (Python, ML stack) from Debian packages, if out of date
	scripts/worker-image.sh latest

worker-image-torch: ## build atlas-ce/worker:torch: the same plus PyTorch (CPU only), if out of date
	scripts/worker-image.sh torch

bench: build ## run the benchmarks (figures in bench/README.md)
	bench/run.sh

clean: ## remove build output
	rm -rf bin
