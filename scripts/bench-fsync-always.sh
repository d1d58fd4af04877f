#!/usr/bin/env bash
# Issue 17's fsync `always` bar, measured the way docs/benchmarks.md reports
# it: ROUNDS rounds of
#   dd (1 GiB of 1 MiB O_DSYNC writes) / pinned producer (fsync `always`) / dd
# on the filesystem of the broker's data directory (scripts/bench.sh makes
# it under /tmp), each producer run divided by the mean of the two dd
# rates around it: this VM's disk moves ±12 % between runs, so a ratio to a
# dd from another minute says little. Prints one line per round and the
# median ratio.
#   scripts/bench-fsync-always.sh ROUNDS [extra iggy-broker-bench flags]
# IGGY_BROKER_BIN runs another broker binary (as scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?usage: scripts/bench-fsync-always.sh ROUNDS [iggy-broker-bench flags]}
shift
scratch=$(mktemp -d /tmp/iggy-bench-fsync.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# MB/s (10^6 bytes) of one dd; dd's own summary line, recomputed from its
# byte count and seconds so that the unit is always the same.
dd_rate() {
  dd if=/dev/zero of="$scratch/dd" bs=1M count=1024 oflag=dsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "s,") printf "%.0f\n", $1 / $i / 1e6 }'
  rm -f "$scratch/dd"
}
ratios=()
for round in $(seq 1 "$rounds"); do
  before=$(dd_rate)
  scripts/bench.sh --workload pinned-producer --producers 2 --consumers 2 --streams 2 \
    --batches 500 "$@" >"$scratch/run" 2>&1
  line=$(grep '^pinned producer' "$scratch/run") || {
    cat "$scratch/run" >&2
    exit 1
  }
  after=$(dd_rate)
  rate=$(awk '{ print $3 }' <<<"$line")
  p99=$(awk '{ for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1) }' <<<"$line")
  ratio=$(awk -v r="$rate" -v a="$before" -v b="$after" 'BEGIN { printf "%.1f", 100 * r / ((a + b) / 2) }')
  ratios+=("$ratio")
  echo "round $round: dd $before MB/s | pinned producer $rate MB/s, p99 $p99 ms | dd $after MB/s | $ratio % of dd"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "median %.1f %% of dd (%s-%s %%) over %d rounds; the bar: 80 %%\n", m, v[1], v[NR], NR }'
