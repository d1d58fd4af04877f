#!/usr/bin/env bash
# The demo: start a broker with default settings on a scratch data directory,
# produce and consume messages with the official iggy SDK, print how to
# connect, and stop the broker again.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
data=$(mktemp -d /tmp/iggy-demo.XXXXXX)
port=${IGGY_DEMO_PORT:-8090}

echo "==> starting iggy-broker on 127.0.0.1:$port (data in $data)"
IGGY_SYSTEM_PATH="$data" IGGY_TCP_ADDRESS="127.0.0.1:$port" IGGY_HTTP_ADDRESS=127.0.0.1:0 \
  "$target/release/iggy-broker" --with-default-root-credentials >"$data/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -f "$data/runtime/current_config.toml" ] && break
  kill -0 $broker 2>/dev/null || { cat "$data/broker.log"; exit 1; }
  sleep 0.1
done

echo "==> producing and consuming with the iggy 0.11 SDK"
cargo run --quiet --release --locked -p iggy-broker --example produce_consume -- "iggy://iggy:iggy@127.0.0.1:$port"

cat <<TXT

==> The broker speaks the Iggy 0.11 binary protocol. Connect any official SDK:
      iggy://iggy:iggy@127.0.0.1:$port
    Rust:  IggyClient::from_connection_string("iggy://iggy:iggy@127.0.0.1:$port")
    Run it yourself:  $target/release/iggy-broker --with-default-root-credentials
TXT
