#!/usr/bin/env bash
# Put this VM's memory in a known state before a producer benchmark.
#
# The machine is a Firecracker VM whose balloon driver reports freed guest
# memory to the host ("free page reporting"); touching reported memory again
# costs a host fault per page, so writes into the page cache run at ~0.5 GB/s
# into reported memory and ~5.8 GB/s into memory the host still backs (see
# docs/benchmarks.md, "Noise"). Producer workloads are bound by that copy, so
# their results depend on which kind of memory the page cache happens to get.
#
#   scripts/bench-memory.sh backed    stop reporting, then touch every free page
#                                     once (a tmpfs filled and emptied), so the
#                                     page cache gets host-backed memory
#   scripts/bench-memory.sh reported  report free memory again (the boot
#                                     setting; freed pages go back to the host
#                                     after a few seconds)
#   scripts/bench-memory.sh status    print the setting and a 2 GB dd's rate
#
# Needs root and /sys/module/page_reporting (other machines: nothing to do).
set -euo pipefail
params=/sys/module/page_reporting/parameters
boot_order=${PAGE_REPORTING_ORDER:-9}
[ -w "$params/page_reporting_order" ] || { echo "no writable $params/page_reporting_order: nothing to do here" >&2; exit 1; }

dd_rate() {
  # A new file: ext4 starts writing back a file truncated on open (dd's
  # O_TRUNC on an existing one, even empty; "auto_da_alloc") when it is
  # closed, inside dd's timing, which more than halves the rate.
  local d
  d=$(mktemp -d /tmp/bench-memory.XXXXXX)
  dd if=/dev/zero of="$d/f" bs=1M count=2048 2>&1 | awk -F', ' 'END { print $NF }'
  rm -rf "$d"
}

case "${1:-status}" in
  backed)
    # An order above the allocator's largest never qualifies: nothing more
    # is reported from now on.
    echo 11 >"$params/page_reporting_order"
    fill=$(mktemp -d /tmp/bench-memory-fill.XXXXXX)
    mount -t tmpfs -o size=100% tmpfs "$fill"
    trap 'umount "$fill"; rmdir "$fill"' EXIT
    free_mb=$(awk '/^MemAvailable/ { print int($2 / 1024) - 1024 }' /proc/meminfo)
    echo "touching ${free_mb} MB of free memory once..." >&2
    dd if=/dev/zero of="$fill/f" bs=1M count="$free_mb" status=none || true
    rm -f "$fill/f"
    ;;
  reported)
    echo "$boot_order" >"$params/page_reporting_order"
    ;;
  status) ;;
  *)
    echo "usage: $0 backed|reported|status" >&2
    exit 2
    ;;
esac
echo "page_reporting_order $(cat "$params/page_reporting_order") (reported so far: $(($(cat "$params/reported_kib") / 1048576)) GB); page-cache write: $(dd_rate)"
