#!/usr/bin/env bash
# Membership churn under load, on processes (scripts/cluster.sh): what the
# chart e2e does on Kubernetes, faster. Three brokers and two spares, a
# topic of 6 partitions x 3 replicas, the `numbered` producer (SDK
# defaults, balanced), POST /cluster/rebalance every second (as the
# operator does), a rolling restart, 3 -> 5, drain and remove 4 and 3, a
# restart of broker 1; then `numbered verify` reads every partition back.
#
#   scripts/membership-churn.sh [DIR]     exit status: the verify's
#
# Needs the release broker (IGGY_BROKER_BIN to use another) and
# `cargo build --release -p iggy-broker --example numbered`. It found a
# leader elected with an empty log (a replica removed and re-added within
# one leader epoch reused the leader's stale progress): 3 runs in 3 lost a
# partition before the fix, 0 in 3 after.
set -u
cd "$(dirname "$0")/.."
D=${1:-/tmp/rp}; scripts/cluster.sh down $D 2>/dev/null; rm -rf $D
export IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR=3
out=$(CLUSTER_SPARE=2 scripts/cluster.sh up 3 $D) || { echo "$out"; exit 1; }
echo "$out"
ip() { echo "$out" | awk -v n="$1" '$2==n {print $0}' | sed -E 's/.* http ([^ ]+) .*/\1/'; }
tcp0=$(echo "$out" | awk '$2==0' | sed -E 's/.* tcp ([^ ]+) .*/\1/')
h0=$(ip 0)
tok() { curl -s -XPOST http://$1/users/login -H 'content-type: application/json' -d '{"username":"iggy","password":"iggy"}' | jq -r .access_token.token; }
api() { local h=$1; shift; local m=$1; shift; local p=$1; shift; curl -s -X$m "http://$h$p" -H "Authorization: Bearer $(tok $h)" -H 'content-type: application/json' "$@"; }
api $h0 POST /streams -d '{"name":"e2e"}' >/dev/null
api $h0 POST /streams/e2e/topics -d '{"name":"numbered","partitions_count":6,"compression_algorithm":"none","message_expiry":0,"max_topic_size":0,"replication_factor":3}' ; echo
N=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}/release/examples/numbered
rm -f $D/acked $D/stop
$N produce "iggy://iggy:iggy@$tcp0" e2e numbered $D/acked $D/stop > $D/producer.log 2>&1 &
P=$!
# the operator's rebalance, every second
( while [ ! -f $D/stop ]; do api $h0 POST /cluster/rebalance -d '{"max_moves":4}' >/dev/null 2>&1; sleep 1; done ) &
sleep 3
restart() { scripts/cluster.sh kill $1 $D >/dev/null 2>&1 || true; scripts/cluster.sh start $1 $D >/dev/null; }
term_restart() { local pid; pid=$(cat $D/node-$1/pid); kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 0.05; done; scripts/cluster.sh start $1 $D > /dev/null; }
for n in 2 1 0; do term_restart $n; echo "restarted $n, acked $(wc -l < $D/acked)"; sleep 2; done
scripts/cluster.sh start 3 $D >/dev/null; scripts/cluster.sh start 4 $D >/dev/null; echo "started 3,4"; sleep 8
for n in 4 3; do
  h=$h0
  api $h POST /cluster/nodes/$n/drain >/dev/null
  for i in $(seq 1 100); do
    held=$(api $h GET /cluster/partitions | jq "[.[] | select(any(.replicas[]; . == $n) or ((.reassigning // []) | any(. == $n)))] | length")
    [ "$held" = 0 ] && break; sleep 0.3
  done
  api $h DELETE /cluster/nodes/$n; echo
  pid=$(cat $D/node-$n/pid); kill -TERM $pid
  sleep 2
done
term_restart 1; echo "restarted 1 again, acked $(wc -l < $D/acked)"
sleep 5
touch $D/stop; wait $P
tail -2 $D/producer.log
api $h0 GET /cluster/partitions | jq -c '.[] | [.partition_id,.replicas,.leader,.leader_epoch,.in_sync,.committed]'
$N verify "iggy://iggy:iggy@$tcp0" e2e numbered $D/acked
status=$?
echo "verify exit $status"
scripts/cluster.sh down $D
exit $status
