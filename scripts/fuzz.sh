#!/usr/bin/env bash
# Fuzz every target in broker/fuzz for SECONDS each (first argument,
# default 1800), starting from the committed corpus. New inputs go to a
# scratch directory (pass --keep to merge them into the committed corpus);
# a crash stops the run, leaves its input in broker/fuzz/artifacts/<target>/
# and fails. Needs the nightly toolchain (installed here) and cargo-fuzz
# (installed on first use, pinned).
#
#   scripts/fuzz.sh 10 --dev      # the short run make test does: an
#                                 # unoptimised build (half the cold build
#                                 # time of -O), corpus not touched
#   scripts/fuzz.sh 1800 --keep   # the long run recorded in docs/fuzzing.md
#   FUZZ_TARGETS="send_batch request_frame" scripts/fuzz.sh 1800 --keep
#                                 # only those targets
set -euo pipefail
seconds=${1:-1800}
mode=${2:-}
keep=""
profile=-O
case "$mode" in
  --keep) keep=--keep ;;
  --dev) profile=--dev ;;
  "") ;;
  *) echo "usage: $0 SECONDS [--keep|--dev]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../broker/fuzz"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
cargo +nightly fuzz build "$profile"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in ${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}; do
  mkdir -p "$scratch/$target" "artifacts/$target"
  echo "== $target: ${seconds}s"
  log="$scratch/$target.log"
  if ! cargo +nightly fuzz run "$profile" "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
    >"$log" 2>&1; then
    tail -40 "$log"
    echo "FAILED: $target (an input that breaks it is in broker/fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)|^Done ' "$log" || true
  if [ "$keep" = "--keep" ] && [ -n "$(ls -A "$scratch/$target")" ]; then
    cp -n "$scratch/$target"/* "corpus/$target/"
    cargo +nightly fuzz cmin "$profile" "$target" "corpus/$target" >/dev/null 2>&1
  fi
done
echo "fuzzing: every target ran ${seconds}s without a failure"
