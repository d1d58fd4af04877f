#!/usr/bin/env bash
# Start a release broker on a scratch directory and run iggy-broker-bench against it.
# Extra arguments go to iggy-broker-bench (see `iggy-broker-bench --help`).
# BENCH_TLS=1 serves TCP with TLS (a throwaway CA and certificate made with
# openssl) and has the clients verify it. BENCH_TRANSPORT=quic|ws|http runs
# the clients over QUIC, WebSocket or HTTP instead of TCP (BENCH_QUIC=1 is
# BENCH_TRANSPORT=quic). IGGY_BROKER_BIN runs another broker binary (to
# compare two builds in one sitting).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
data=$(mktemp -d /tmp/iggy-broker-bench.XXXXXX)
port=${IGGY_BENCH_PORT:-18090}
quic_port=$((port + 1)) websocket_port=$((port + 2)) http_port=$((port + 3))
transport=${BENCH_TRANSPORT:-tcp}
[ "${BENCH_QUIC:-0}" = 1 ] && transport=quic
tls_env=() client_args=(--transport "$transport")
if [ "${BENCH_TLS:-0}" = 1 ]; then
  certs="$data/certs"
  mkdir -p "$certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
    -keyout "$certs/ca.key" -out "$certs/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$certs/key.pem" -out "$certs/req.csr" 2>/dev/null
  openssl x509 -req -in "$certs/req.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" -days 1 \
    -extfile <(printf "subjectAltName=DNS:localhost") -out "$certs/cert.pem" 2>/dev/null
  tls_env=(IGGY_TCP_TLS_ENABLED=true IGGY_TCP_TLS_CERT_FILE="$certs/cert.pem" IGGY_TCP_TLS_KEY_FILE="$certs/key.pem")
  client_args+=(--tls-ca-file "$certs/ca.pem")
fi
env IGGY_SYSTEM_PATH="$data" IGGY_TCP_ADDRESS="127.0.0.1:$port" IGGY_QUIC_ADDRESS="127.0.0.1:$quic_port" IGGY_WEBSOCKET_ADDRESS="127.0.0.1:$websocket_port" IGGY_HTTP_ADDRESS="127.0.0.1:$http_port" "${tls_env[@]}" ${BENCH_BROKER_ENV:-} \
  "${IGGY_BROKER_BIN:-$target/release/iggy-broker}" --with-default-root-credentials >"$data/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  [ -f "$data/runtime/current_config.toml" ] && break
  sleep 0.1
done
case $transport in
  tcp) address="127.0.0.1:$port" ;;
  quic) address="127.0.0.1:$quic_port" ;;
  ws) address="127.0.0.1:$websocket_port" ;;
  http) address="127.0.0.1:$http_port" ;;
  *) echo "BENCH_TRANSPORT must be tcp, quic, ws or http" >&2; exit 2 ;;
esac
# CPU time (clock ticks) of the broker and of the whole machine, so that two
# builds can be compared by the work they do as well as by their throughput,
# which this kind of VM moves by ±25 % between runs.
broker_ticks() { awk '{print $14 + $15}' "/proc/$broker/stat"; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
broker_before=$(broker_ticks) machine_before=$(machine_ticks)
"$target/release/iggy-broker-bench" --address "$address" "${client_args[@]}" "$@"
broker_after=$(broker_ticks) machine_after=$(machine_ticks)
echo "broker peak resident memory: $(awk '/^VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$broker/status")"
hz=$(getconf CLK_TCK)
read -r busy_before total_before <<<"$machine_before"
read -r busy_after total_after <<<"$machine_after"
awk -v b=$((broker_after - broker_before)) -v busy=$((busy_after - busy_before)) \
  -v total=$((total_after - total_before)) -v hz="$hz" \
  'BEGIN {printf "cpu: broker %.2f s, machine busy %.2f s of %.2f s (all cores)\n", b / hz, busy / hz, total / hz}'
