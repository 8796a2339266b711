#!/bin/bash
# --config: a file stuck in one C call that never returns (a pattern that
# backtracks for ages), where no instruction hook runs, is ended by the
# config file's CPU time limit: exit 2 with the file and the cause. Apart
# from test_config.sh: 2 s of CPU can take many more of wall time on a
# loaded machine.
source "$(dirname "$0")/lib.sh"

cd "$TMP" || fail "cannot cd to $TMP"
printf '%s\n' 'string.find(("a"):rep(40), ("a*"):rep(40) .. "b") return {}' >bad.lua
timeout 50 "$GDLUA" --config bad.lua --check "$FIXTURES/config" </dev/null >"$TMP/run.out" 2>"$TMP/run.err"
rc=$?
assert_eq "exit status (stderr: $(cat "$TMP/run.err"))" 2 "$rc"
assert_eq "stderr" "gdlua: bad.lua: more than 2 s of CPU time, the limit for a config file (a call that never \
returns, such as a pattern that backtracks?)" "$(cat "$TMP/run.err")"
assert_eq "stdout" "" "$(cat "$TMP/run.out")"
pass
