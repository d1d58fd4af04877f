#!/usr/bin/env bash
# Start-up time of a broker holding GB gigabytes of messages (first
# argument, default 1): fill a scratch directory with the pinned-producer
# workload (2 producers, 2 streams, 1 MB batches, fsync never), stop the
# broker, then start it RUNS times (second argument, default 3) and time
# each from exec to its runtime file (written once every listener is up
# and the metadata is replayed and committed). Results in
# docs/benchmarks.md.
#
#   scripts/startup-time.sh 10 3
set -euo pipefail
cd "$(dirname "$0")/.."
gigabytes=${1:-1}
runs=${2:-3}
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
cargo build --release --locked -p iggy-broker --bin iggy-broker --bin iggy-broker-bench >&2
broker_bin=${IGGY_BROKER_BIN:-$target/release/iggy-broker}
data=$(mktemp -d /tmp/iggy-startup.XXXXXX)
port=${IGGY_STARTUP_PORT:-18290}
broker=""
trap '[ -n "$broker" ] && kill $broker 2>/dev/null; wait 2>/dev/null || true; rm -rf "$data"' EXIT

start() {
  rm -f "$data/runtime/current_config.toml"
  env IGGY_SYSTEM_PATH="$data" IGGY_TCP_ADDRESS="127.0.0.1:$port" IGGY_QUIC_ENABLED=false \
    IGGY_WEBSOCKET_ENABLED=false IGGY_HTTP_ADDRESS=127.0.0.1:0 IGGY_TOPIC_FSYNC=never \
    "$broker_bin" --with-default-root-credentials >>"$data/broker.log" 2>&1 &
  broker=$!
}

wait_ready() {
  for _ in $(seq 1 30000); do
    [ -f "$data/runtime/current_config.toml" ] && return 0
    kill -0 "$broker" 2>/dev/null || { tail -20 "$data/broker.log"; exit 1; }
    sleep 0.001
  done
  echo "the broker did not start within the time allowed" >&2
  exit 1
}

stop() {
  kill -TERM "$broker"
  wait "$broker"
  broker=""
}

start
wait_ready
batches=$(( gigabytes * 1000 / 2 ))
"$target/release/iggy-broker-bench" --address "127.0.0.1:$port" --workload pinned-producer \
  --producers 2 --consumers 2 --streams 2 --batches "$batches" --keep-data | grep -v '^ *[0-9.]* % of raw'
stop
echo "data directory: $(du -sh "$data" | cut -f1)"
for run in $(seq 1 "$runs"); do
  # Cold start: nothing of the data in the page cache.
  sync
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  began=$(date +%s%N)
  start
  wait_ready
  ended=$(date +%s%N)
  echo "start $run: $(( (ended - began) / 1000000 )) ms to serving"
  stop
done
