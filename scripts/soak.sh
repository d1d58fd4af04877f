#!/usr/bin/env bash
# Start a release broker on a scratch directory with retention every few
# seconds and 1 MiB segments, and run iggy-soak against it for SECONDS
# (first argument, default 3600) with a sample every SAMPLE seconds (second
# argument, default 60). Extra arguments go to iggy-soak. Results of the
# long run are recorded in docs/soak.md.
#
#   scripts/soak.sh 3600 60    # the one-hour run (make soak)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
sample=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
cargo build --release --locked -p iggy-broker --bin iggy-broker --bin iggy-soak
data=$(mktemp -d /tmp/iggy-soak.XXXXXX)
port=${IGGY_SOAK_PORT:-18190}
env IGGY_SYSTEM_PATH="$data" IGGY_TCP_ADDRESS="127.0.0.1:$port" IGGY_QUIC_ENABLED=false \
  IGGY_WEBSOCKET_ENABLED=false IGGY_HTTP_ADDRESS=127.0.0.1:0 IGGY_RETENTION_INTERVAL=5s \
  IGGY_TOPIC_SEGMENT_SIZE="1 MiB" \
  "$target/release/iggy-broker" --with-default-root-credentials >"$data/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  [ -f "$data/runtime/current_config.toml" ] && break
  kill -0 "$broker" 2>/dev/null || { cat "$data/broker.log"; exit 1; }
  sleep 0.1
done
"$target/release/iggy-soak" --address "127.0.0.1:$port" --pid "$broker" \
  --seconds "$seconds" --sample-seconds "$sample" "$@"
