# The two entry points a newcomer needs:
#   make demo   start a broker, produce and consume with the official SDK
#   make test   everything CI checks: formatting, lints, unit and integration tests
#
# Build products live outside the work tree so that clean clones (CI) reuse
# them; override CARGO_TARGET_DIR to build elsewhere.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/iggy-k8s/target
CARGO ?= cargo

.PHONY: test fmt-check lint unit-and-integration demo bench build release

test: fmt-check lint unit-and-integration

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit-and-integration:
	$(CARGO) test --workspace --locked

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --release --locked -p iggy-broker

demo: release
	scripts/demo.sh

bench: release
	scripts/bench.sh
