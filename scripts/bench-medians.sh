#!/usr/bin/env bash
# Run upstream's workload shapes (`--workload all`) ROUNDS times with the
# benchmark's tuned connections (nodelay) and with the SDK's defaults,
# interleaved, each on a fresh broker (scripts/bench.sh), and print the
# median throughput and p99 of every workload. One run alone is not a
# verdict on this machine: consecutive runs differ by up to 2x (see
# docs/benchmarks.md, "Noise").
#   scripts/bench-medians.sh ROUNDS [extra iggy-broker-bench flags]
# BENCH_BROKER_ENV is passed on (e.g. "IGGY_TOPIC_FSYNC=never").
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?usage: scripts/bench-medians.sh ROUNDS [iggy-broker-bench flags]}
shift
out=$(mktemp -d /tmp/iggy-bench-medians.XXXXXX)
shape=(--workload all --producers 2 --consumers 2 --streams 2 --batches 500)
for round in $(seq 1 "$rounds"); do
  for mode in nodelay sdk-defaults; do
    flags=()
    [ "$mode" = sdk-defaults ] && flags=(--sdk-defaults)
    scripts/bench.sh "${shape[@]}" "${flags[@]}" "$@" >"$out/$mode.$round" 2>&1
    echo "round $round $mode: $(grep -c 'MB/s' "$out/$mode.$round") lines" >&2
  done
done
# Each result line: "<workload name>   <MB/s> MB/s ... p99 <ms> ...".
for mode in nodelay sdk-defaults; do
  echo "== $mode: median of $rounds rounds (MB/s, p99 ms)"
  cat "$out/$mode".* | awk '
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
      for (k = 1; k <= n; k++) printf "%-45s %9s MB/s  p99 %6s   (runs:%s)\n", names[k], median(rate[names[k]]), median(p99[names[k]]), rate[names[k]]
    }'
done
echo "(raw results in $out)"
