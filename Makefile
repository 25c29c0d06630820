# keyshift: the two commands are `make demo` and `make test`.
# Cargo's target dir lives outside the clone so CI rebuilds incrementally.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/keyshift/target
CARGO ?= cargo
SEEDS ?= 10000
SEED ?=
# The virtualenv with moto's server (the local AWS) and cargo-lambda (the local Lambda
# runtime). Pinned to the versions the contract suite was checked against.
VENV ?= $(CURDIR)/.venv
export KEYSHIFT_VENV := $(VENV)
PYTHON ?= python3
PY_PACKAGES = "moto[server]==5.2.5" "cargo-lambda==1.9.2"

.PHONY: test demo venv unit sim sim-test control lint fmt clippy sim-demo

## make demo: a real rotation on this machine: moto's server as AWS, the release binary
## under `cargo lambda watch`, a consumer fleet on the real SDK, a live label timeline.
demo: venv
	$(CARGO) build --release -p keyshift-local --bin keyshift-demo
	$(CARGO_TARGET_DIR)/release/keyshift-demo

## The timeline of one simulated rotation with no faults (no emulator needed).
sim-demo:
	$(CARGO) build --release -p keyshift-sim
	$(CARGO_TARGET_DIR)/release/keyshift-sim --seed 1 --class none | grep -v 'FAILED consumer'

venv: $(VENV)/.installed

$(VENV)/.installed:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_PACKAGES)
	touch $@

## make test: everything CI runs.
test: lint unit sim-test

## Unit, property and integration tests of every crate, the contract suite against the
## in-memory model and moto's server, and the rotation through `cargo lambda watch`.
unit: venv
	$(CARGO) test --workspace --all-targets

## The simulation report: make sim SEEDS=10000 (or SEED=n to replay one seed with its trace).
sim:
	$(CARGO) build --release -p keyshift-sim
	@if [ -n "$(SEED)" ]; then $(CARGO_TARGET_DIR)/release/keyshift-sim --seed $(SEED); \
	else $(CARGO_TARGET_DIR)/release/keyshift-sim --seeds $(SEEDS); fi

## The one-step control: must report failed consumer operations.
control:
	$(CARGO) build --release -p keyshift-sim
	$(CARGO_TARGET_DIR)/release/keyshift-sim --control --seeds 500

## The simulation tests CI runs (500+ seeds, the control) in release mode.
sim-test:
	$(CARGO) test --release -p keyshift-sim

lint: fmt clippy

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
