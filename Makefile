# keyshift: the two commands are `make demo` and `make test`.
# Cargo's target dir lives outside the clone so CI rebuilds incrementally.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/keyshift/target
CARGO ?= cargo
SEEDS ?= 10000
SEED ?=

.PHONY: test demo unit sim sim-test control lint fmt clippy

## make demo: until the emulator demo lands (issue 3), the timeline of one simulated
## rotation with no faults, step by step.
demo:
	$(CARGO) build --release -p keyshift-sim
	$(CARGO_TARGET_DIR)/release/keyshift-sim --seed 1 --class none | grep -v 'FAILED consumer'

## make test: everything CI runs.
test: lint unit sim-test

## Unit, property and integration tests of every crate.
unit:
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
