#!/usr/bin/env bash
# A login storm against one broker on this host (docs/benchmarks.md):
#   scripts/login-storm.sh [BROKER_BIN [ATTACKERS [SECONDS]]]
# starts BROKER_BIN (default: the release build) on a fresh data directory,
# runs the login_storm example (ATTACKERS clients, default 64, retrying a
# wrong password for the root user for SECONDS, default 20, while a
# logged-in client pings and new clients log in with the right password)
# and stops the broker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
broker=${1:-$target/release/iggy-broker}
attackers=${2:-64}
seconds=${3:-20}
(cd "$root" && cargo build --release --locked -p iggy-broker --example login_storm >&2)
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
env -i PATH="$PATH" RUST_LOG=warn IGGY_SYSTEM_PATH="$dir/data" IGGY_TCP_ADDRESS="127.0.0.1:$port" \
  IGGY_HTTP_ADDRESS=127.0.0.1:0 IGGY_WEBSOCKET_ADDRESS=127.0.0.1:0 IGGY_QUIC_ADDRESS=127.0.0.1:0 \
  IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy "$broker" >"$dir/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until [ -f "$dir/data/runtime/current_config.toml" ]; do
  kill -0 $pid 2>/dev/null || { cat "$dir/broker.log" >&2; exit 1; }
  sleep 0.1
done
"$target/release/examples/login_storm" "127.0.0.1:$port" iggy iggy "$attackers" "$seconds"
