# keyshift: the two commands are `make demo` and `make test`.
# Cargo's target dir lives outside the clone so CI rebuilds incrementally.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/keyshift/target
CARGO ?= cargo
SEEDS ?= 10000
SEED ?=
# Many-secrets worlds (50 secrets through one executor) in the `make sim` report.
WORLDS ?= 20
# Extra flags for keyshift-sim, e.g. SIM_ARGS="--copy-abandons holder --class none".
SIM_ARGS ?=
# Seeds per engine-behaviour combination for `make sim-matrix` (SEEDS on the command line
# wins): 144 combinations x 100 seeds is about two minutes on two cores.
MATRIX_SEEDS = $(if $(filter command line,$(origin SEEDS)),$(SEEDS),100)
# The virtualenv with moto's server (the local AWS) and cargo-lambda (the local Lambda
# runtime). Pinned to the versions the contract suite was checked against.
VENV ?= $(CURDIR)/.venv
export KEYSHIFT_VENV := $(VENV)
PYTHON ?= python3
PY_PACKAGES = "moto[server]==5.2.5" "cargo-lambda==1.9.2"
# The template checkers in a virtualenv of their own: aws-sam-cli pins a boto3 that
# conflicts with moto's.
SAM_VENV ?= $(CURDIR)/.venv-sam
SAM_PACKAGES = "aws-sam-cli==1.170.0" "cfn-lint==1.58.0"
# sam and cfn-lint run offline: no credentials, no profile, no telemetry, a region for
# the rules that need one.
OFFLINE_AWS = env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0
LAMBDA_BIN = keyshift-rotation
# The Cargo profile of the deployed bootstrap (Cargo.toml: opt-level s, fat LTO, one codegen
# unit, stripped).
LAMBDA_PROFILE = bootstrap
ARM64_TARGET = aarch64-unknown-linux-gnu

.PHONY: bench bench-keys bench-envelope package-check bench-migrate bench-migrate-kms fuzz fuzz-ci fuzz-build cargo-fuzz fuzz-envelope test demo demo-postgres postgres venv sam-venv unit sim sim-matrix sim-replicas sim-test control lint fmt clippy doc-check template-lint \
	sim-demo build build-x86 sam-build sam-build-x86 measure-bootstrap deploy aws-check aws-check-offline

## make demo: a real rotation on this machine: moto's server as AWS, the release binary
## under `cargo lambda watch`, a keyshift-client fleet on the real SDK, a live label timeline.
demo: venv
	$(CARGO) build --release -p keyshift-local --bin keyshift-demo
	$(CARGO_TARGET_DIR)/release/keyshift-demo

## make demo-postgres: database credentials on a real PostgreSQL 15 (installed when
## missing), two rotations with alternating users, a fleet logging in and querying.
demo-postgres: venv postgres
	$(CARGO) build --release -p keyshift-local --bin keyshift-demo-postgres
	$(CARGO_TARGET_DIR)/release/keyshift-demo-postgres

## The timeline of one simulated rotation with no faults (no emulator needed).
sim-demo:
	$(CARGO) build --release -p keyshift-sim
	$(CARGO_TARGET_DIR)/release/keyshift-sim --seed 1 --class none --combination 0 | grep -v 'FAILED consumer'

venv: $(VENV)/.installed

$(VENV)/.installed:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_PACKAGES)
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check $(SAM_PACKAGES)
	touch $@

sam-venv: $(SAM_VENV)/.installed

## make test: everything CI runs.
test: postgres lint package-check unit sim-test sam-build-x86 aws-check-offline fuzz-ci

## Every published crate (keyshift, -client, -keys, -envelope, -postgres, -lambda, -cli;
## the others are `publish = false`) packages and builds from its package alone, with
## complete metadata, its LICENSE and README, and no cargo warning. The verification
## builds the packaged crates with their own features: about 6 CPU-minutes on a cold
## target dir, half a minute on a warm one.
package-check:
	CARGO="$(CARGO)" PYTHON="$(PYTHON)" bash tools/package-check.sh

## PostgreSQL 15 for the database-credential tests and `make demo-postgres`: the
## machine's Debian package, installed when missing (the tests start their own server,
## as the `postgres` system user, on a free port, and stop it).
PG_BIN ?= /usr/lib/postgresql/15/bin
postgres:
	@if [ -x $(PG_BIN)/initdb ] && id postgres >/dev/null 2>&1; then echo "PostgreSQL 15: $(PG_BIN)"; \
	else echo "installing PostgreSQL 15 (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql-15 >/dev/null; \
	fi

## make build: the Lambda artefact as deployed: an arm64 (Graviton) `bootstrap` for
## provided.al2023, cross-compiled by cargo-lambda with zig (both come with `make venv`).
## Needs the Rust standard library for aarch64-unknown-linux-gnu (rustup adds it).
build: venv
	@if ! rustup target list --installed 2>/dev/null | grep -qx $(ARM64_TARGET); then \
	  echo "make build: adding the Rust target $(ARM64_TARGET)"; \
	  rustup target add $(ARM64_TARGET) || { \
	    echo "make build: cannot build for arm64: the Rust standard library for $(ARM64_TARGET) is missing and 'rustup target add $(ARM64_TARGET)' failed (no rustup, or no network to static.rust-lang.org). Install that target, or use 'make build-x86' and deploy with Architectures: [x86_64]." >&2; \
	    exit 1; }; \
	fi
	PATH="$(VENV)/bin:$$PATH" $(CARGO) lambda build --profile $(LAMBDA_PROFILE) --arm64 --manifest-path crates/keyshift-lambda/Cargo.toml --bin $(LAMBDA_BIN)
	@ls -l $(CARGO_TARGET_DIR)/lambda/$(LAMBDA_BIN)/bootstrap
	@file $(CARGO_TARGET_DIR)/lambda/$(LAMBDA_BIN)/bootstrap 2>/dev/null || true

## The x86-64 bootstrap, built as `make build` builds the arm64 one (the `bootstrap`
## profile); CI runs it. The emulator tests build and run the plain release binary.
build-x86:
	$(CARGO) build --profile $(LAMBDA_PROFILE) -p keyshift-lambda --bin $(LAMBDA_BIN)
	mkdir -p $(CARGO_TARGET_DIR)/lambda-x86_64/$(LAMBDA_BIN)
	cp $(CARGO_TARGET_DIR)/$(LAMBDA_PROFILE)/$(LAMBDA_BIN) $(CARGO_TARGET_DIR)/lambda-x86_64/$(LAMBDA_BIN)/bootstrap
	@ls -l $(CARGO_TARGET_DIR)/lambda-x86_64/$(LAMBDA_BIN)/bootstrap

## make measure-bootstrap: the x86-64 bootstrap's zip size, cold start (process start to
## its first request to a local Runtime API) and peak memory, beside the AWS Python
## rotation template's start (import boto3 and its client); README, "Size and cold start".
## RUNS runs each; BOOTSTRAP=path measures a binary you built instead.
RUNS ?= 20
BOOTSTRAP ?=
measure-bootstrap: venv
	$(PYTHON) tools/bootstrap-size/measure.py --profile $(LAMBDA_PROFILE) --runs $(RUNS) \
	  $(if $(BOOTSTRAP),--bootstrap $(BOOTSTRAP))

## make sam-build: the deploy path as `sam deploy` ships it: `sam build` of template.yaml
## (BuildMethod rust-cargolambda: `cargo lambda build --release`) into .aws-sam/build, for
## SAM_ARCHITECTURE (the template's `Architecture`, default arm64; CI builds x86_64, the
## one standard library it has). SAM cannot be given a Cargo profile, so the `release`
## profile is given the `bootstrap` profile's settings for this build only (the same four
## lines as [profile.bootstrap] in Cargo.toml; tools/cargo-lambda-sam.toml stops
## cargo-lambda from replacing them with its own), in a target dir of its own so that the
## plain release build the emulator tests run is not rebuilt. Offline: no credentials.
SAM_ARCHITECTURE ?= arm64
SAM_TARGET_DIR ?= $(HOME)/.cache/keyshift/sam-target
SAM_BUILD_DIR ?= .aws-sam/build
SAM_LEAN = CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_STRIP=symbols
sam-build: venv sam-venv
	$(OFFLINE_AWS) $(SAM_LEAN) CARGO_LAMBDA_GLOBAL=$(CURDIR)/tools/cargo-lambda-sam.toml \
	  CARGO_TARGET_DIR=$(SAM_TARGET_DIR) PATH="$(VENV)/bin:$$PATH" \
	  $(SAM_VENV)/bin/sam build --template template.yaml --build-dir $(SAM_BUILD_DIR) \
	  --parameter-overrides Architecture=$(SAM_ARCHITECTURE)
	@ls -l $(SAM_BUILD_DIR)/RotationFunction/bootstrap
	@file $(SAM_BUILD_DIR)/RotationFunction/bootstrap 2>/dev/null || true

## The SAM artefact for x86_64, in CI (the arm64 standard library cannot be installed
## there): proves that `sam build` works and what it ships.
sam-build-x86:
	$(MAKE) sam-build SAM_ARCHITECTURE=x86_64 SAM_BUILD_DIR=$(SAM_TARGET_DIR)/sam-build-x86_64

## make deploy: `make sam-build`, then `sam deploy` with samconfig.toml (stack `keyshift`,
## the template's defaults); give your own values as
## DEPLOY_PARAMS="SecretNamePrefix=orders/ GapSeconds=7200" (README, "Deploying").
## Needs AWS credentials and a Region.
DEPLOY_PARAMS ?=
deploy: sam-build
	$(SAM_VENV)/bin/sam deploy --template-file $(SAM_BUILD_DIR)/template.yaml \
	  --parameter-overrides "Architecture=$(SAM_ARCHITECTURE) $(DEPLOY_PARAMS)"

## Unit, property and integration tests of every crate, and the end-to-end suites of the
## repository (tests/, sharing tests/support: moto's server, the function under `cargo
## lambda watch`, the consumer fleet): the contract suite against the in-memory model and
## moto's server (tests/contract.rs), the rotations through `cargo lambda watch`, the
## client, the envelope and the `keyshift` CLI against both (tests/cli_emulator.rs), and
## the check that every reference to a document or section resolves
## (tests/doc_references.rs). --workspace runs each suite once, the root package's
## included.
unit: venv
	$(CARGO) test --workspace --all-targets

## The simulation report: make sim SEEDS=10000 (or SEED=n to replay one seed with its trace,
## its engine behaviours included). Each seed picks its fault class and engine-behaviour
## combination, so 10000 seeds run each of the 144 combinations about 69 times; WORLDS
## many-secrets worlds come on top.
sim:
	$(CARGO) build --release -p keyshift-sim
	@if [ -n "$(SEED)" ]; then $(CARGO_TARGET_DIR)/release/keyshift-sim --seed $(SEED) $(SIM_ARGS); \
	else $(CARGO_TARGET_DIR)/release/keyshift-sim --seeds $(SEEDS) --worlds $(WORLDS) $(SIM_ARGS); fi

## The thorough matrix: SEEDS seeds for EACH of the 144 engine-behaviour combinations
## (default 100 each; 10000 each would take hours, see the README).
sim-matrix:
	$(CARGO) build --release -p keyshift-sim
	$(CARGO_TARGET_DIR)/release/keyshift-sim --matrix --seeds $(MATRIX_SEEDS) $(SIM_ARGS)

## Replica Regions trailing the primary (opt-in; the core does not handle replicas yet,
## so this is expected to fail).
sim-replicas:
	$(CARGO) build --release -p keyshift-sim
	$(CARGO_TARGET_DIR)/release/keyshift-sim --replicas --seeds $(SEEDS) $(SIM_ARGS)

## The consumer client's hot path beside aws_secretsmanager_caching's cache hit, and the
## AWS requests each makes per hour (counted on the wire in front of moto's server).
bench: venv
	$(CARGO) run --release -p keyshift-bench --features aws-caching

## What the stock kinds cost here: key generation per kind, testSecret's check, a JWT
## signed and verified per algorithm, AES-256-GCM sealing (aws-lc-rs, one thread).
bench-keys:
	$(CARGO) run --release -p keyshift-bench --bin keyshift-keys-bench

## Envelope encryption (crates/keyshift-envelope): seal and open of 100-byte values with
## a cached data key on one thread, and a 500-value deployment decrypted the legacy way
## (one KMS call per value, moto's KMS) against one unwrap plus local opens.
bench-envelope: venv
	$(CARGO) run --release -p keyshift-envelope --example envelope-bench

## The migration tool (crates/keyshift-migrate) on a real PostgreSQL 15 (installed when
## missing): MIGRATE_VALUES legacy values over MIGRATE_ENVS environments (skewed sizes),
## the application writing random rows throughout, steps 1 to 4 and verify; elapsed,
## rows/s and unwraps per step. 3,000,000 / 30,000 is the full size the README reports.
MIGRATE_VALUES ?= 300000
MIGRATE_ENVS ?= 3000
bench-migrate: postgres
	$(CARGO) run --release -p keyshift-migrate --example migrate-bench -- --values $(MIGRATE_VALUES) --envs $(MIGRATE_ENVS)

## The same steps with the KEK in KMS (moto's KMS, legacy values one KMS Encrypt each):
## KMS calls per step and per value before and after, and one KMS call's measured cost.
MIGRATE_KMS_VALUES ?= 30000
MIGRATE_KMS_ENVS ?= 300
bench-migrate-kms: postgres venv
	$(CARGO) run --release -p keyshift-migrate --example kms-migrate-bench -- --values $(MIGRATE_KMS_VALUES) --envs $(MIGRATE_KMS_ENVS)

## Fuzzing (fuzz/, cargo-fuzz and libFuzzer; README, "Fuzzing"): one target per parser
## of outside input. Always the stable toolchain with RUSTC_BOOTSTRAP=1, which takes
## cargo-fuzz's nightly-only flags, so CI and every machine build alike with no nightly;
## cargo-fuzz is installed when missing. -s none: the code forbids unsafe, so
## AddressSanitizer would only slow the build; -O -a: optimised, with debug assertions
## and overflow checks. Builds and crash artefacts go under $(CARGO_TARGET_DIR)/fuzz.
FUZZ_TARGETS ?= envelope event time decide tags secret_value client_keys cli legacy
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 10
# One input taking this long is a failure (a timeout), as is a process over this memory.
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB ?= 2048
FUZZ_DIR = $(CARGO_TARGET_DIR)/fuzz
FUZZ = cd $(CURDIR)/fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_DIR) $(CARGO) fuzz
FUZZ_BUILD = -s none -O -a
FUZZ_FLAGS = -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=$(FUZZ_RSS_MB) -max_len=8192 -print_final_stats=1

cargo-fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz-build: cargo-fuzz
	$(FUZZ) build $(FUZZ_BUILD)

## make fuzz: each target for FUZZ_SECONDS from the committed corpus. New inputs that
## reach new code are added to fuzz/corpus/<target>/ in the clone: minimise before
## committing (README, "Fuzzing"). A crash stops the run and leaves its input in
## $(FUZZ_DIR)/artifacts/<target>/.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p $(FUZZ_DIR)/artifacts/$$t; \
	  ( $(FUZZ) run $(FUZZ_BUILD) $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) \
	      -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ ) || exit 1; \
	done

## What `make test` runs: each target for FUZZ_CI_SECONDS on a copy of the committed
## corpus (the clone stays clean); any crash, panic, timeout or out-of-memory fails it.
fuzz-ci: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz-ci $$t ($(FUZZ_CI_SECONDS) s)"; \
	  rm -rf $(FUZZ_DIR)/ci-corpus/$$t; mkdir -p $(FUZZ_DIR)/ci-corpus/$$t $(FUZZ_DIR)/artifacts/$$t; \
	  cp fuzz/corpus/$$t/* $(FUZZ_DIR)/ci-corpus/$$t/; \
	  ( $(FUZZ) run $(FUZZ_BUILD) $$t $(FUZZ_DIR)/ci-corpus/$$t -- -max_total_time=$(FUZZ_CI_SECONDS) $(FUZZ_FLAGS) \
	      -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ ) || exit 1; \
	done

## The envelope ciphertext parser alone (it used to be the only target).
fuzz-envelope:
	$(MAKE) fuzz FUZZ_TARGETS=envelope

## make aws-check: on a real AWS account (skipped without credentials), settles what the
## rotation engine does that AWS does not document (README, "Settling the engine's
## undocumented behaviours on your account: make aws-check"). Opt in:
## KEYSHIFT_AWS_CHECK=1 AWS_PROFILE=... make aws-check
aws-check: venv
	$(VENV)/bin/python tools/aws-check/aws_check.py

## What CI checks of it, offline and in seconds: it compiles, its unit tests pass (the skip
## path, the probe against a fake Secrets Manager, the report, the clean-up, the IAM lists,
## a whole run against a toy AWS), and without the opt-in it skips.
aws-check-offline: venv
	$(VENV)/bin/python -m py_compile tools/aws-check/aws_check.py
	$(VENV)/bin/python -m unittest discover -s tools/aws-check -p 'test_*.py'
	env -u KEYSHIFT_AWS_CHECK $(VENV)/bin/python tools/aws-check/aws_check.py

## The one-step control: must report failed consumer operations.
control:
	$(CARGO) build --release -p keyshift-sim
	$(CARGO_TARGET_DIR)/release/keyshift-sim --control --seeds 500

## The simulation tests CI runs in release mode: 504 baseline seeds, a few seeds of every
## engine-behaviour combination, each switch alone, fifty secrets through one executor,
## the control, and 280 seeds of operator requests (emergency, cancel, redrive at every
## phase; the emergency failure window, with and without refresh-on-miss). Tests that today's core fails are #[ignore]d with the hardening they need
## (run them with: cargo test --release -p keyshift-sim -- --ignored).
sim-test:
	$(CARGO) test --release -p keyshift-sim

## Formatting, clippy, and the template: cfn-lint, `sam validate --lint` and samconfig.toml
## against the template (tools/samconfig-check.py), offline.
## (The template's IAM review is a cargo test: crates/keyshift-lambda/tests/template.rs.)
lint: fmt clippy doc-check template-lint

## The published crates' documentation as docs.rs builds it (all features), with every
## rustdoc warning an error: a broken or ambiguous intra-doc link, a public item's doc
## linking a private one.
PUBLISHED_CRATES := keyshift-core keyshift-client keyshift-keys keyshift-envelope keyshift-postgres keyshift-lambda keyshift-cli
doc-check:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --all-features --keep-going $(PUBLISHED_CRATES:%=-p %)

template-lint: sam-venv
	$(OFFLINE_AWS) $(SAM_VENV)/bin/cfn-lint template.yaml
	$(OFFLINE_AWS) $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	$(OFFLINE_AWS) $(SAM_VENV)/bin/python tools/samconfig-check.py

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p keyshift-bench --all-targets --features aws-caching -- -D warnings
