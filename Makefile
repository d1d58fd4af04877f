# The two entry points a newcomer needs:
#   make demo   a local Kubernetes, the operator installed with its Helm
#               chart, an IggyCluster, messages flowing through its client
#               Service with the official iggy SDK
#   make test   everything CI checks: formatting, lints, generated CRDs, the
#               chart's static checks, unit and integration tests, a short
#               fuzzing run of every decoder, the
#               local-Kubernetes smoke test, the operator's tests against its
#               API server, the chart end to end with a real Prometheus, and
#               a TLS cluster through a CA rotation under load
#
# Build products live outside the work tree so that clean clones (CI) reuse
# them; override CARGO_TARGET_DIR to build elsewhere. The Kubernetes parts
# need root (they run containerd, the kubelet and kube-proxy on this host).

export CARGO_TARGET_DIR ?= $(HOME)/.cache/iggy-k8s/target
CARGO ?= cargo

.PHONY: soak fuzz fuzz-short test fmt-check lint crd-check chart-check crds unit-and-integration e2e e2e-tls-modes demo demo-local bench bench-medians bench-fsync-always chaos upgrade-test build release k8s-up k8s-down

test: fmt-check lint crd-check chart-check unit-and-integration fuzz-short e2e

fmt-check:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path broker/fuzz/Cargo.toml -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

# crds/ (and its copy in the chart) is generated from the Rust types; CI
# fails when either drifts.
crds:
	$(CARGO) run --quiet --locked -p iggy-operator -- crdgen --out crds
	cp crds/*.yaml charts/iggy-operator/crds/

crd-check:
	@tmp=$$(mktemp -d) && $(CARGO) run --quiet --locked -p iggy-operator -- crdgen --out $$tmp \
	  && diff -ru crds $$tmp && diff -ru charts/iggy-operator/crds $$tmp && echo "crds/ is up to date" \
	  || { echo "crds/ or charts/iggy-operator/crds is out of date: run 'make crds' and commit the result"; exit 1; }

# helm lint, helm template | kubeconform, values schema, alert rules and
# dashboard (builds pinned helm/kubeconform on first use).
chart-check:
	scripts/chart-check.sh

# The cluster tests run real brokers through scripts/cluster.sh and cut
# them off with iptables (root).
unit-and-integration:
	scripts/test-deps.sh
	$(CARGO) test --workspace --locked
	$(CARGO) test --manifest-path broker/fuzz/Cargo.toml --locked

# Bring the local cluster up, smoke-test it, run the operator's tests against
# its API server, install/test/upgrade/uninstall the chart with a real
# Prometheus scraping a broker, run a TLS cluster through a CA rotation
# under load, and tear it down again.
e2e:
	$(CARGO) build --locked -p iggy-operator --features apiserver-tests --tests
	e2e/k8s.sh up
	e2e/smoke.sh || { e2e/k8s.sh down; exit 1; }
	KUBECONFIG=$${E2E_STATE:-/var/lib/iggy-e2e}/admin.kubeconfig \
	  $(CARGO) test --locked -p iggy-operator --features apiserver-tests --test apiserver -- --test-threads 1 \
	  || { e2e/k8s.sh down; exit 1; }
	e2e/chart.sh || { e2e/k8s.sh down; exit 1; }
	e2e/tls.sh || { e2e/k8s.sh down; exit 1; }
	e2e/k8s.sh down

# spec.tls modes CertManager, against a real cert-manager (its controllers
# and webhook built from its Go module), and Secret (a user's wildcard
# certificate, replaced in place); not in make test (cert-manager's build
# takes minutes cold; make test covers both modes against the API server).
e2e-tls-modes:
	e2e/k8s.sh up
	e2e/tls-modes.sh || { e2e/k8s.sh down; exit 1; }
	e2e/k8s.sh down

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --release --locked -p iggy-broker

demo:
	e2e/demo.sh

# The broker alone on this host, without Kubernetes.
demo-local: release
	scripts/demo.sh

bench: release
	scripts/bench.sh

# Upstream's six workloads over both SDK generations (the 0.10 one needs the
# `legacy-bench` feature), medians of 5 interleaved runs each, fsync `never`
# as in docs/benchmarks.md. Producer figures depend on this VM's memory
# state: run `scripts/bench-memory.sh backed` first to pin it.
bench-medians:
	$(CARGO) build --release --locked -p iggy-broker --features legacy-bench --bins
	BENCH_BROKER_ENV="IGGY_TOPIC_FSYNC=never" scripts/bench-medians.sh 5
	BENCH_BROKER_ENV="IGGY_TOPIC_FSYNC=never" scripts/bench-medians.sh 5 --sdk 0.10

# Issue 17's fsync `always` bar: 8 rounds of dd / pinned producer / dd, each
# run as a percentage of the dd rates around it (same caveat on memory).
bench-fsync-always: release
	scripts/bench-fsync-always.sh 8

# Every decoder of outside bytes under libFuzzer (broker/fuzz, nightly):
# `make fuzz-short` (part of make test) runs each target for 10 s from the
# committed corpus on an unoptimised build (about 6 minutes cold, plus
# installing cargo-fuzz once); `make fuzz` for FUZZ_SECONDS (default 1800)
# each on an optimised build, merging new inputs into the corpus; results
# go in docs/fuzzing.md. `unit-and-integration` replays the corpus and
# every regression input on stable.
fuzz-short:
	scripts/fuzz.sh 10 --dev

fuzz:
	scripts/fuzz.sh $${FUZZ_SECONDS:-1800} --keep

# An hour of steady producers, a churning consumer group and retention
# against a release broker, its memory and open files sampled every minute
# (docs/soak.md); make test runs a 30-second slice (broker/tests/soak.rs).
soak:
	scripts/soak.sh $${SOAK_SECONDS:-3600} 60

# A cluster with one broker on an older build (OLD_REF; default the last
# build before StoreConsumerOffsets, a metadata command it cannot read)
# and two on this one, then all on this one
# (broker/tests/upgrade.rs). Builds that broker once (debug, its own target
# directory); not part of make test.
upgrade-test:
	scripts/upgrade-test.sh $${OLD_REF:-97c80bb}

# The long runs of the fault checker and of membership churn (make test
# runs 4 rounds of faults and 6 of churn, seed 1): SEED, ROUNDS and
# CHURN_ROUNDS choose them; results go in docs/chaos.md.
chaos:
	scripts/test-deps.sh
	IGGY_FAULT_SEED=$${SEED:-1} IGGY_FAULT_ROUNDS=$${ROUNDS:-200} \
	  $(CARGO) test --locked -p iggy-broker --test faults -- --nocapture
	IGGY_CHURN_SEED=$${SEED:-1} IGGY_CHURN_ROUNDS=$${CHURN_ROUNDS:-100} \
	  $(CARGO) test --locked -p iggy-broker --test churn -- --nocapture

k8s-up:
	e2e/k8s.sh up

k8s-down:
	e2e/k8s.sh down
