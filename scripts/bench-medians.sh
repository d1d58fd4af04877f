#!/usr/bin/env bash
# Run upstream's workload shapes (`--workload all`) ROUNDS times with the
# benchmark's tuned connections (nodelay) and with the SDK's defaults,
# interleaved, each on a fresh broker (scripts/bench.sh), and print the
# median throughput and p99 of every workload. One run alone is not a
# verdict on this machine: consecutive runs differ by up to 2x (see
# docs/benchmarks.md, "Noise").
#   scripts/bench-medians.sh ROUNDS [extra iggy-broker-bench flags]
# BENCH_BROKER_ENV is passed on (e.g. "IGGY_TOPIC_FSYNC=never").
#
# With iperf3 installed, every round also measures loopback TCP (one
# stream, as the machine of upstream's figures did: 1,775 MB/s there), and
# each median is printed as a ratio to upstream's figure scaled by the
# median loopback rate of this sitting (issue 17's comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?usage: scripts/bench-medians.sh ROUNDS [iggy-broker-bench flags]}
shift
out=$(mktemp -d /tmp/iggy-bench-medians.XXXXXX)
shape=(--workload all --producers 2 --consumers 2 --streams 2 --batches 500)
iperf_port=${IGGY_BENCH_IPERF_PORT:-18099}
# One 5 s iperf3 stream over loopback; prints MB/s (10^6 bytes).
loopback_rate() {
  iperf3 -s -1 -p "$iperf_port" >/dev/null 2>&1 &
  local server=$!
  for _ in $(seq 1 100); do
    ss -Hltn "sport = :$iperf_port" | grep -q . && break
    sleep 0.05
  done
  iperf3 -c 127.0.0.1 -p "$iperf_port" -t 5 -f m | awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") print $i / 8 }'
  wait "$server"
}
for round in $(seq 1 "$rounds"); do
  if command -v iperf3 >/dev/null; then
    loopback_rate >"$out/loopback.$round"
    echo "round $round loopback: $(cat "$out/loopback.$round") MB/s" >&2
  fi
  for mode in nodelay sdk-defaults; do
    flags=()
    [ "$mode" = sdk-defaults ] && flags=(--sdk-defaults)
    scripts/bench.sh "${shape[@]}" "${flags[@]}" "$@" >"$out/$mode.$round" 2>&1
    echo "round $round $mode: $(grep -c 'MB/s' "$out/$mode.$round") lines" >&2
  done
done
# Each result line: "<workload name>   <MB/s> MB/s ... p99 <ms> ...".
loopback=$(cat "$out"/loopback.* 2>/dev/null | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
if [ -n "$loopback" ]; then
  echo "== loopback (iperf3, one stream): median $loopback MB/s of $(cat "$out"/loopback.* | tr '\n' ' ')-> upstream's figures x $(awk -v l="$loopback" 'BEGIN { printf "%.2f", l / 1775 }')"
fi
for mode in nodelay sdk-defaults; do
  echo "== $mode: median of $rounds rounds (MB/s, p99 ms; ratio to upstream's figure scaled by loopback)"
  cat "$out/$mode".* | awk -v loopback="${loopback:-0}" '
    / MB\/s/ && !/loopback ceiling/ && !/^\(seed/ {
      name = $0; sub(/ +[0-9.]+ MB\/s.*/, "", name)
      for (i = 1; i <= NF; i++) {
        if ($i == "MB/s") { rate[name] = rate[name] " " $(i - 1) }
        if ($i == "p99") { p99[name] = p99[name] " " $(i + 1) }
      }
      if (!(name in order)) { order[name] = ++n; names[n] = name }
    }
    function median(list,   v, k, t, m) {
      m = split(list, v, " ")
      for (k = 1; k <= m; k++) for (t = k + 1; t <= m; t++) if (v[t] + 0 < v[k] + 0) { x = v[k]; v[k] = v[t]; v[t] = x }
      if (m == 0) return "-"
      return (m % 2) ? v[(m + 1) / 2] : sprintf("%.2f", (v[m / 2] + v[m / 2 + 1]) / 2)
    }
    END {
      # Upstream iggy-server 0.8.0 under its own iggy-bench, on a machine
      # whose loopback ran 1,775 MB/s (issue 17).
      upstream["pinned producer"] = 887
      upstream["pinned consumer"] = 1146
      upstream["pinned producer and consumer (sum)"] = 1034
      upstream["balanced producer"] = 839
      upstream["balanced consumer group"] = 1118
      upstream["end-to-end producing consumer (both ways)"] = 1161
      for (k = 1; k <= n; k++) {
        m = median(rate[names[k]])
        ratio = ""
        if (loopback > 0 && names[k] in upstream) ratio = sprintf("%.2fx", m / (upstream[names[k]] * loopback / 1775))
        printf "%-45s %9s MB/s %6s  p99 %6s   (runs:%s)\n", names[k], m, ratio, median(p99[names[k]]), rate[names[k]]
      }
    }'
done
echo "(raw results in $out)"
