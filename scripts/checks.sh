# Sourced by the shell test suites (scripts/chart-check.sh, e2e/chart.sh):
# TAP-style "ok - ..." / "not ok - ..." lines and the closing
# "NAME: N passed, M failed" line that .ci/run adds up.
passed=0 failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
check() { # DESCRIPTION COMMAND...: ok when the command succeeds
  local what=$1 out; shift
  if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what"; echo "$out" | tail -30 | sed 's/^/    /'; fi
}
equal() { # DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: expected '$2', got '$3'"; fi
}
summary() { # SUITE NAME: print the totals; succeed when nothing failed
  echo "$1: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}
