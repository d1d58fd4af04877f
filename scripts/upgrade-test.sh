#!/usr/bin/env bash
# Run broker/tests/upgrade.rs: a cluster with brokers of this build and of
# an older one (git ref REF, default in the Makefile's upgrade-test).
#   scripts/upgrade-test.sh REF
# The older broker is built once from `git archive REF` in its own source
# and target directories under the target directory ($CARGO_TARGET_DIR or
# ~/.cache/iggy-k8s/target, in upgrade/<commit>/), kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:?usage: scripts/upgrade-test.sh GIT_REF}
commit=$(git rev-parse --verify "$ref^{commit}")
base=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
old="$base/upgrade/$commit"
binary="$old/target/debug/iggy-broker"
if [ ! -x "$binary" ]; then
  rm -rf "$old/src"
  mkdir -p "$old/src"
  git archive "$commit" | tar -x -C "$old/src"
  (cd "$old/src" && CARGO_TARGET_DIR="$old/target" cargo build --locked -p iggy-broker --bin iggy-broker)
fi
echo "older broker: $ref ($commit)" >&2
IGGY_OLD_BROKER_BIN="$binary" cargo test --locked -p iggy-broker --test upgrade -- --ignored --nocapture
