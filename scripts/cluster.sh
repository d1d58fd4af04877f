#!/usr/bin/env bash
# A local broker cluster as processes on this host.
#
#   scripts/cluster.sh up N DIR     start nodes 0..N-1 (data and logs under DIR), return once
#                                   every node has joined and the cluster has a leader; prints
#                                   one line per node:
#                                   node <id> pid <pid> tcp <host:port> quic <host:port> http <host:port>
#                                   replica <host:port> data <dir>
#   scripts/cluster.sh kill ID DIR  SIGKILL node ID
#   scripts/cluster.sh start ID DIR restart node ID on its data and ports (or start a spare node,
#                                   which joins the cluster); waits until it is ready
#   scripts/cluster.sh launch ID DIR  the same without waiting (a test of a broker that is not
#                                   ready yet)
#   scripts/cluster.sh down DIR     stop every node this script started in DIR (and nothing else)
#
# Node i listens on its own loopback address, 127.A.B.<10+i> with A.B chosen at
# random per cluster (so iptables rules can cut one node off from the others
# while clients on 127.0.0.1 still reach it, and clusters started side by side
# never share an address), on ports chosen free at `up`; both are kept in DIR. IGGY_* variables in this script's environment are passed
# to every broker (e.g. IGGY_TOPIC_FSYNC=never); the shared secret is generated
# once per DIR unless IGGY_CLUSTER_AUTH_SHARED_SECRET is set. The broker binary
# is $IGGY_BROKER_BIN, else the release build in $CARGO_TARGET_DIR (built if
# missing). A node's output goes to DIR/node-<id>/broker.log, so this script's
# own output ends when it returns. CLUSTER_ZONES="a,a,b" gives node i the i-th
# zone (IGGY_CLUSTER_ZONE), as if the nodes ran in those failure domains.
# DIR/node-<id>/env, when present, holds KEY=VALUE lines for that node alone
# (read at every start, over everything else).
# CLUSTER_SPARE=K also gives nodes N..N+K-1 addresses and ports without starting
# them (the first N found the cluster): `start` one and it joins, as a broker
# added to a StatefulSet does. CLUSTER_TLS=1 (at `up`) turns on mutual TLS
# between the nodes: a CA is made in DIR/tls (ca.crt, the bundle every node
# trusts, and ca.key) and each node gets node-<id>.crt/.key for its address,
# signed by it, when first started; the nodes re-read all three files, so a
# test may replace them under a running cluster.
# CLUSTER_VOLUME_MIB=M (at `up`, needs root) puts each node's data directory on
# its own tmpfs of M MiB, as if each broker had its own volume: a test can fill
# one. `down` unmounts them.
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
READY_TIMEOUT=${IGGY_CLUSTER_READY_TIMEOUT:-60}

broker_bin() {
  if [ -n "${IGGY_BROKER_BIN:-}" ]; then
    echo "$IGGY_BROKER_BIN"
    return
  fi
  local target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
  if [ ! -x "$target/release/iggy-broker" ]; then
    (cd "$root" && cargo build --release --locked -p iggy-broker >&2)
  fi
  echo "$target/release/iggy-broker"
}

# Ports free for both TCP and UDP (QUIC), N of them, none repeated. Taken
# below the kernel's ephemeral range (and below Kubernetes' NodePort range,
# 30000-32767): a broker's peer clients connect from its node address on
# ephemeral ports, and one of those could otherwise be a listener port
# chosen here that the broker binds a moment later ("Address already in
# use"). Other clusters do not collide: every cluster has its own node
# addresses. A wildcard bind is the test, so a port any address uses is
# skipped.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
wanted = int(sys.argv[1])
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral = 32768
candidates = list(range(10000, min(ephemeral, 30000)))
random.shuffle(candidates)
ports, held = [], []
for port in candidates:
    if len(ports) == wanted:
        break
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t.bind(("0.0.0.0", port))
        u.bind(("0.0.0.0", port))
    except OSError:
        t.close(); u.close(); continue
    held += [t, u]
    ports.append(port)
if len(ports) < wanted:
    sys.exit(f"only {len(ports)} of {wanted} ports free below the ephemeral range")
print(" ".join(map(str, ports)))
PY
}

node_dir() { echo "$2/node-$1"; }
# The node's address; the cluster's prefix is in DIR/prefix (set by `up`).
node_ip() { echo "$(cat "$2/prefix").$((10 + $1))"; }

# The cluster's CA (CLUSTER_TLS=1), valid 30 days.
tls_ca() {
  local tls=$1/tls
  mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=local iggy cluster CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
  chmod 600 "$tls/ca.key"
}

# Node $1's certificate for its address, signed by the CA, unless it has one.
tls_node() {
  local id=$1 dir=$2 tls=$2/tls
  [ -f "$tls/node-$id.crt" ] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=node-$id" \
    -keyout "$tls/node-$id.key" -out "$tls/node-$id.csr" 2>/dev/null
  openssl x509 -req -in "$tls/node-$id.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 30 -out "$tls/node-$id.crt" -extfile <(printf '%s\n' \
      "subjectAltName=IP:$(node_ip "$id" "$dir")" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth") 2>/dev/null
  rm -f "$tls/node-$id.csr"
}

# Start node $1 of cluster $2 from its ports file, in the background.
launch() {
  local id=$1 dir=$2 bin node
  bin=$(broker_bin)
  node=$(node_dir "$id" "$dir")
  # shellcheck disable=SC1091
  . "$node/ports"
  local ip peers inherited=()
  ip=$(node_ip "$id" "$dir")
  peers=$(cat "$dir/peers")
  # Only IGGY_* settings from the caller, plus what the broker needs.
  while IFS= read -r setting; do
    inherited+=("$setting")
  done < <(env | grep -E '^IGGY_' | grep -vE '^IGGY_(BROKER_BIN|CLUSTER_READY_TIMEOUT)=' || true)
  if [ -f "$dir/tls/ca.crt" ]; then
    tls_node "$id" "$dir"
    inherited+=(IGGY_CLUSTER_TLS_ENABLED=true "IGGY_CLUSTER_TLS_CA_FILE=$dir/tls/ca.crt"
      "IGGY_CLUSTER_TLS_CERT_FILE=$dir/tls/node-$id.crt" "IGGY_CLUSTER_TLS_KEY_FILE=$dir/tls/node-$id.key"
      "IGGY_CLUSTER_TLS_RELOAD_INTERVAL=${IGGY_CLUSTER_TLS_RELOAD_INTERVAL:-500ms}")
  fi
  # Settings of this node alone (a test changing one broker's
  # configuration before restarting it), over everything above.
  if [ -f "$node/env" ]; then
    while IFS= read -r setting; do
      [ -n "$setting" ] && inherited+=("$setting")
    done <"$node/env"
  fi
  if [ -n "${CLUSTER_ZONES:-}" ]; then
    local zones
    IFS=, read -ra zones <<<"$CLUSTER_ZONES"
    inherited+=("IGGY_CLUSTER_ZONE=${zones[$id]:-}")
  fi
  (
    env -i PATH="$PATH" HOME="${HOME:-/root}" RUST_LOG="${RUST_LOG:-info,openraft=warn}" \
      "${inherited[@]}" \
      IGGY_SYSTEM_PATH="$node/data" \
      IGGY_TCP_ADDRESS="$ip:$TCP" \
      IGGY_QUIC_ADDRESS="$ip:$QUIC" \
      IGGY_HTTP_ADDRESS="$ip:$HTTP" \
      IGGY_WEBSOCKET_ADDRESS="$ip:$WEBSOCKET" \
      IGGY_CLUSTER_ENABLED=true \
      IGGY_CLUSTER_NAME="${IGGY_CLUSTER_NAME:-local}" \
      IGGY_CLUSTER_NODE_ID="$id" \
      IGGY_CLUSTER_PEERS="$peers" \
      IGGY_CLUSTER_FOUNDERS="$(cat "$dir/founders")" \
      IGGY_CLUSTER_REPLICA_ADDRESS="$ip:$REPLICA" \
      IGGY_CLUSTER_AUTH_SHARED_SECRET="$(cat "$dir/secret")" \
      IGGY_ROOT_USERNAME="${IGGY_ROOT_USERNAME:-iggy}" \
      IGGY_ROOT_PASSWORD="${IGGY_ROOT_PASSWORD:-iggy}" \
      setsid "$bin" </dev/null >>"$node/broker.log" 2>&1 &
    echo $! >"$node/pid"
  )
}

# Wait until node $1 answers /readyz (joined, caught up, leader known).
wait_ready() {
  local id=$1 dir=$2 node pid deadline
  node=$(node_dir "$id" "$dir")
  # shellcheck disable=SC1091
  . "$node/ports"
  pid=$(cat "$node/pid")
  deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 1 "http://$(node_ip "$id" "$dir"):$HTTP/readyz" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "node $id exited; last lines of $node/broker.log:" >&2
      tail -n 30 "$node/broker.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "node $id not ready after ${READY_TIMEOUT}s; last lines of $node/broker.log:" >&2
      tail -n 30 "$node/broker.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

describe() {
  local id=$1 dir=$2 node
  node=$(node_dir "$id" "$dir")
  # shellcheck disable=SC1091
  . "$node/ports"
  local ip
  ip=$(node_ip "$id" "$dir")
  echo "node $id pid $(cat "$node/pid") tcp $ip:$TCP quic $ip:$QUIC http $ip:$HTTP replica $ip:$REPLICA data $node/data"
}

# Whether the pid in node $1's pid file is a broker this script started.
running() {
  local pidfile
  pidfile="$(node_dir "$1" "$2")/pid"
  [ -f "$pidfile" ] || return 1
  local pid environ
  pid=$(cat "$pidfile")
  # The process may exit (and be reaped) between any two steps: an
  # environment that cannot be read is a broker that is not running.
  environ=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ") || return 1
  grep -qx "IGGY_SYSTEM_PATH=$(node_dir "$1" "$2")/data" <<<"$environ"
}

nodes_of() { cat "$1/nodes"; }

cmd=${1:-}
case "$cmd" in
  up)
    [ $# -eq 3 ] || usage
    n=$2
    dir=$(mkdir -p "$3" && cd "$3" && pwd)
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive number" >&2; exit 2; }
    if [ -f "$dir/nodes" ]; then
      echo "$dir already holds a cluster; use 'down' first or another DIR" >&2
      exit 1
    fi
    spare=${CLUSTER_SPARE:-0}
    [[ "$spare" =~ ^[0-9]+$ ]] || { echo "CLUSTER_SPARE must be a number" >&2; exit 2; }
    total=$((n + spare))
    read -r -a ports <<<"$(free_ports $((total * 5)))"
    echo "127.$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))" >"$dir/prefix"
    echo "$total" >"$dir/nodes"
    echo "$n" >"$dir/founders"
    if [ -n "${IGGY_CLUSTER_AUTH_SHARED_SECRET:-}" ]; then
      printf '%s' "$IGGY_CLUSTER_AUTH_SHARED_SECRET" >"$dir/secret"
    else
      head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret"
    fi
    chmod 600 "$dir/secret"
    [ "${CLUSTER_TLS:-0}" = 1 ] && tls_ca "$dir"
    peers=""
    for ((i = 0; i < total; i++)); do
      node=$(node_dir "$i" "$dir")
      mkdir -p "$node/data"
      if [ -n "${CLUSTER_VOLUME_MIB:-}" ]; then
        mount -t tmpfs -o "size=${CLUSTER_VOLUME_MIB}m" tmpfs "$node/data"
        echo "$node/data" >>"$dir/volumes"
      fi
      base=$((i * 5))
      cat >"$node/ports" <<EOF
TCP=${ports[$base]}
QUIC=${ports[$((base + 1))]}
HTTP=${ports[$((base + 2))]}
WEBSOCKET=${ports[$((base + 3))]}
REPLICA=${ports[$((base + 4))]}
EOF
      peers="$peers${peers:+,}$(node_ip "$i" "$dir"):${ports[$((base + 4))]}"
    done
    echo "$peers" >"$dir/peers"
    for ((i = 0; i < n; i++)); do launch "$i" "$dir"; done
    for ((i = 0; i < n; i++)); do wait_ready "$i" "$dir"; done
    for ((i = 0; i < n; i++)); do describe "$i" "$dir"; done
    ;;
  kill)
    [ $# -eq 3 ] || usage
    id=$2 dir=$3
    running "$id" "$dir" || { echo "node $id is not running" >&2; exit 1; }
    pid=$(cat "$(node_dir "$id" "$dir")/pid")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    ;;
  start | launch)
    [ $# -eq 3 ] || usage
    id=$2 dir=$3
    [ -f "$(node_dir "$id" "$dir")/ports" ] || { echo "no node $id in $dir" >&2; exit 1; }
    if running "$id" "$dir"; then echo "node $id is already running" >&2; exit 1; fi
    launch "$id" "$dir"
    [ "$cmd" = launch ] || wait_ready "$id" "$dir"
    describe "$id" "$dir"
    ;;
  down)
    [ $# -eq 2 ] || usage
    dir=$2
    [ -f "$dir/nodes" ] || exit 0
    n=$(nodes_of "$dir")
    pids=()
    for ((i = 0; i < n; i++)); do
      if running "$i" "$dir"; then
        pid=$(cat "$(node_dir "$i" "$dir")/pid")
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
      fi
    done
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    done
    if [ -f "$dir/volumes" ]; then
      while read -r volume; do umount "$volume"; done <"$dir/volumes"
      rm -f "$dir/volumes"
    fi
    rm -f "$dir/nodes"
    ;;
  *) usage ;;
esac
