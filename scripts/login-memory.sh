#!/usr/bin/env bash
# Resident memory of a release broker before and after 40 HTTP logins, 8 at
# a time in 5 rounds 11 s apart (idle blocking threads exit in between, so
# checks land on new threads): how docs/soak.md measured the Argon2
# allocator fix. Argument: the broker binary (default: the release build).
set -u
bin=${1:-$HOME/.cache/iggy-k8s/target/release/iggy-broker}
data=$(mktemp -d)
env IGGY_SYSTEM_PATH=$data IGGY_TCP_ADDRESS=127.0.0.1:18290 IGGY_QUIC_ENABLED=false IGGY_WEBSOCKET_ENABLED=false IGGY_HTTP_ADDRESS=127.0.0.1:13290 $bin --with-default-root-credentials > $data/log 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:13290/readyz >/dev/null && break; sleep 0.1; done
echo "before: $(grep VmRSS /proc/$pid/status)"
for round in $(seq 5); do
  pids=(); for i in $(seq 8); do curl -s -XPOST -H 'Content-Type: application/json' -d '{"username":"iggy","password":"iggy"}' 127.0.0.1:13290/users/login >/dev/null & pids+=($!); done
  wait "${pids[@]}"
  sleep 11    # let idle blocking threads exit so new ones (new arenas) come
done
echo "after:  $(grep VmRSS /proc/$pid/status)"
kill $pid; wait $pid 2>/dev/null; rm -rf $data
