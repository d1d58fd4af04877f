#!/usr/bin/env bash
# Cluster measurements for docs/benchmarks.md (release builds, this host):
#
#  1. metadata write latency: iggy-broker-bench --metadata-ops (create OPS topics, one
#     at a time) against a standalone broker, then against a 3-broker cluster
#     through its metadata leader and through a follower;
#  2. metadata leader failover: KILLS times, kill -9 the metadata leader and
#     time until every survivor names the same new leader (metrics polled
#     every 10 ms), then restart the killed broker; min / median / max;
#  3. produce/consume throughput on 3 brokers with replication factor 1 and
#     then 3 (iggy-broker-bench's workload, BATCHES batches per producer, through
#     the metadata leader; the SDK forwards nothing, the brokers do).
#
# SECTIONS (default "metadata failover replication"), OPS (default 500),
# KILLS (default 20), BATCHES (default 50); IGGY_* variables reach the
# brokers.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
OPS=${OPS:-500}
KILLS=${KILLS:-20}
BATCHES=${BATCHES:-50}
SECTIONS=${SECTIONS:-metadata failover replication}
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
cargo build --release --locked -p iggy-broker --bins >&2
# IGGY_BROKER_BIN set outside compares another build.
export IGGY_BROKER_BIN="${IGGY_BROKER_BIN:-$target/release/iggy-broker}"
work=$(mktemp -d /tmp/iggy-cluster-bench.XXXXXX)
cleanup() {
  scripts/cluster.sh down "$work/cluster" 2>/dev/null || true
  [ -n "${standalone:-}" ] && kill "$standalone" 2>/dev/null && wait "$standalone" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }

tcp_of() { awk -v id="$1" '$2 == id {print $6}' "$work/nodes"; }
http_of() { awk -v id="$1" '$2 == id {print $10}' "$work/nodes"; }
leader_seen_by() {
  curl -fsS --max-time 1 "http://$(http_of "$1")/metrics" 2>/dev/null |
    awk '$1 == "iggy_broker_metadata_leader" {print $2}'
}

if has metadata; then
echo "== metadata write latency (create topic, $OPS ops)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
IGGY_SYSTEM_PATH="$work/standalone" IGGY_TCP_ADDRESS="127.0.0.1:$port" IGGY_HTTP_ADDRESS=127.0.0.1:0 \
  IGGY_QUIC_ENABLED=false IGGY_WEBSOCKET_ENABLED=false \
  "$IGGY_BROKER_BIN" --with-default-root-credentials >"$work/standalone.log" 2>&1 &
standalone=$!
for _ in $(seq 1 100); do [ -f "$work/standalone/runtime/current_config.toml" ] && break; sleep 0.1; done
printf 'standalone:            '
"$target/release/iggy-broker-bench" --address "127.0.0.1:$port" --metadata-ops "$OPS"
kill "$standalone"; wait "$standalone" 2>/dev/null || true; standalone=

fi

scripts/cluster.sh up 3 "$work/cluster" >"$work/nodes"
if has metadata; then
leader=$(leader_seen_by 0)
follower=$(( (leader + 1) % 3 ))
printf '3 brokers, via leader:   '
"$target/release/iggy-broker-bench" --address "$(tcp_of "$leader")" --metadata-ops "$OPS" --stream bench-leader
printf '3 brokers, via follower: '
"$target/release/iggy-broker-bench" --address "$(tcp_of "$follower")" --metadata-ops "$OPS" --stream bench-follower

fi

if has failover; then
echo "== metadata leader failover ($KILLS kills of the leader, 3 brokers)"
times=()
for ((k = 1; k <= KILLS; k++)); do
  old=$(leader_seen_by 0)
  [ -n "$old" ] && [ "$old" != "-1" ] || old=$(leader_seen_by 1)
  start=$(now_ms)
  scripts/cluster.sh kill "$old" "$work/cluster"
  while :; do
    seen=()
    for id in 0 1 2; do
      [ "$id" = "$old" ] && continue
      seen+=("$(leader_seen_by "$id")")
    done
    if [ "${seen[0]}" = "${seen[1]}" ] && [ -n "${seen[0]}" ] && [ "${seen[0]}" != "-1" ] && [ "${seen[0]}" != "$old" ]; then
      break
    fi
    if [ $(($(now_ms) - start)) -gt 30000 ]; then echo "no new leader after 30 s" >&2; exit 1; fi
    sleep 0.01
  done
  took=$(($(now_ms) - start))
  times+=("$took")
  echo "kill $k: leader $old -> ${seen[0]} in $took ms"
  scripts/cluster.sh start "$old" "$work/cluster" >/dev/null
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
count=${#times[@]}
min=$(echo "$sorted" | head -1)
max=$(echo "$sorted" | tail -1)
median=$(echo "$sorted" | sed -n "$(( (count + 1) / 2 ))p")
echo "failover over $count kills: min $min ms, median $median ms, max $max ms"
fi
scripts/cluster.sh down "$work/cluster"

if has replication; then
for factor in 1 3; do
  echo "== produce/consume, 3 brokers, replication factor $factor ($BATCHES batches per producer)"
  rm -rf "$work/cluster"
  IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR=$factor scripts/cluster.sh up 3 "$work/cluster" >"$work/nodes"
  leader=$(leader_seen_by 0)
  "$target/release/iggy-broker-bench" --address "$(tcp_of "$leader")" --batches "$BATCHES" --stream "bench-rf$factor"
  scripts/cluster.sh down "$work/cluster"
done
fi
