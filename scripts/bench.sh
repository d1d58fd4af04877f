#!/usr/bin/env bash
# Start a release broker on a scratch directory and run iggy-bench against it.
# Extra arguments go to iggy-bench (see `iggy-bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
data=$(mktemp -d /tmp/iggy-bench.XXXXXX)
port=${IGGY_BENCH_PORT:-18090}
env IGGY_SYSTEM_PATH="$data" IGGY_TCP_ADDRESS="127.0.0.1:$port" IGGY_HTTP_ADDRESS=127.0.0.1:0 ${BENCH_BROKER_ENV:-} \
  "$target/release/iggy-broker" --with-default-root-credentials >"$data/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  [ -f "$data/runtime/current_config.toml" ] && break
  sleep 0.1
done
"$target/release/iggy-bench" --address "127.0.0.1:$port" "$@"
