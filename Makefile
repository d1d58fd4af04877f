# The two entry points a newcomer needs:
#   make demo   a local Kubernetes, the broker on it, messages flowing through
#               its client Service with the official iggy SDK
#   make test   everything CI checks: formatting, lints, unit and integration
#               tests, and the local-Kubernetes smoke test
#
# Build products live outside the work tree so that clean clones (CI) reuse
# them; override CARGO_TARGET_DIR to build elsewhere. The Kubernetes parts
# need root (they run containerd, the kubelet and kube-proxy on this host).

export CARGO_TARGET_DIR ?= $(HOME)/.cache/iggy-k8s/target
CARGO ?= cargo

.PHONY: test fmt-check lint unit-and-integration e2e-smoke demo demo-local bench build release k8s-up k8s-down

test: fmt-check lint unit-and-integration e2e-smoke

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit-and-integration:
	$(CARGO) test --workspace --locked

# Bring the local cluster up, smoke-test it, and tear it down again.
e2e-smoke:
	e2e/k8s.sh up
	e2e/smoke.sh || { e2e/k8s.sh down; exit 1; }
	e2e/k8s.sh down

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --release --locked -p iggy-broker

demo: release
	e2e/demo.sh

# The broker alone on this host, without Kubernetes.
demo-local: release
	scripts/demo.sh

bench: release
	scripts/bench.sh

k8s-up:
	e2e/k8s.sh up

k8s-down:
	e2e/k8s.sh down
