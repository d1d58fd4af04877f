# Sourced by the shell test suites (scripts/chart-check.sh and, through e2e/lib.sh, the e2e suites):
# TAP-style "ok - ..." / "not ok - ..." lines and the closing
# "NAME: N passed, M failed" line that .ci/run adds up.
passed=0 failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
check() { # DESCRIPTION COMMAND...: ok when the command succeeds (and so is check)
  local what=$1 out; shift
  if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what"; echo "$out" | tail -30 | sed 's/^/    /'; return 1; fi
}
equal() { # DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: expected '$2', got '$3'"; fi
}
eventually() { # SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local limit=$1 what=$2 out; local deadline=$((SECONDS + limit)); shift 2
  until out=$("$@" 2>&1); do
    if [ $SECONDS -ge $deadline ]; then not_ok "$what (after $limit s)"; echo "$out" | tail -20 | sed 's/^/    /'; return 1; fi
    sleep 1
  done
  ok "$what"
}
summary() { # SUITE NAME: print the totals; succeed when nothing failed
  echo "$1: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}
