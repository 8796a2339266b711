#!/bin/bash
# Broken modules: syntax errors, errors while loading and invalid job
# attributes are logged with file:line and the reason; the good modules
# are served anyway; --check exits 1; nothing to serve is an error.
source "$(dirname "$0")/lib.sh"

BAD=$FIXTURES/badmods

# check DIR: runs gdlua --check on DIR (relative to $BAD, so messages
# carry short paths); sets CHECK_OUT (stdout), CHECK_ERR (log) and CHECK_RC.
check() {
    (cd "$BAD" && timeout 20 "$GDLUA" --check "$1" >"$TMP/check.out" 2>"$TMP/check.err")
    CHECK_RC=$?
    CHECK_OUT=$(cat "$TMP/check.out")
    CHECK_ERR=$(cat "$TMP/check.err")
}

# expect_check_error DIR MODULE MESSAGE: --check fails and names it.
expect_check_error() {
    check "$1"
    assert_eq "--check $1: exit status" 1 "$CHECK_RC"
    assert_eq "--check $1: jobs listed" "" "$CHECK_OUT"
    assert_contains "--check $1: error" "$CHECK_ERR" "ERROR"
    assert_contains "--check $1: error" "$CHECK_ERR" "module $2 not loaded: $3"
}

# ---- attributes, one fixture directory each ----
expect_check_error attr_maxmin Test::MaxMin \
    'attr_maxmin/Test/MaxMin.lua:4: job "squeezed": max_processes must be >= min_processes (got 2 < 3)'
expect_check_error attr_unknown Test::Unknown \
    'attr_unknown/Test/Unknown.lua:4: job "typo": unknown attribute min_procs = 2 (known: min_processes, max_processes, '
expect_check_error attr_negative Test::Negative \
    'attr_negative/Test/Negative.lua:4: job "minus": max_processes must be a whole number from 0 to 1024, got -1'
expect_check_error attr_type Test::Type \
    'attr_type/Test/Type.lua:4: job "grouped": process_group: expected a string, got 5'
# A wrong type is said as one, the value quoted as the config file quotes it.
expect_check_error attr_string Test::String \
    'attr_string/Test/String.lua:5: job "counted": min_processes: expected a number, got "2"'
expect_check_error name_empty Test::Empty \
    'name_empty/Test/Empty.lua:4: job: name must be a non-empty string, got an empty name'
expect_check_error attr_fraction Test::Fraction \
    'attr_fraction/Test/Fraction.lua:4: job "half": min_processes must be a whole number from 0 to 1024, got 1.5'

# ---- the mixed directory under --check: exit 1, the good job listed ----
check serve
assert_eq "--check serve: exit status" 1 "$CHECK_RC"
assert_eq "--check serve: jobs listed" \
    'Test::Good::ok min=1 max=1 functions=Test::Good::ok title="gdlua: worker Test::Good::ok"' "$CHECK_OUT"
assert_contains "--check serve" "$CHECK_ERR" \
    "module Test::Syntax not loaded: serve/Test/Syntax.lua:4: ')' expected near 'function'"
assert_contains "--check serve" "$CHECK_ERR" \
    "module Test::Runtime not loaded: serve/Test/Runtime.lua:6: attempt to call global 'no_such_function' (a nil value)"
assert_contains "--check serve" "$CHECK_ERR" \
    'module Test::MaxMin not loaded: serve/Test/MaxMin.lua:6: job "bad": max_processes must be >= min_processes (got 0 < 1)'

# ---- serving it: the good module serves, the log names each failure ----
start_gearmand
start_gdlua "$BAD/serve"
wait_for "a worker for Test::Good::ok" 10 has_workers Test::Good::ok
out=$(gm -f Test::Good::ok x) || fail "Test::Good::ok failed"
assert_eq "good module result" "good x" "$out"

log=$(cat "$GDLUA_LOG")
assert_contains "log" "$log" "module Test::Syntax not loaded: "
assert_contains "log" "$log" "Test/Syntax.lua:4: ')' expected near 'function'"
assert_contains "log" "$log" "module Test::Runtime not loaded: "
assert_contains "log" "$log" "Test/Runtime.lua:6: attempt to call global 'no_such_function' (a nil value)"
assert_contains "log" "$log" 'Test/MaxMin.lua:6: job "bad": max_processes must be >= min_processes (got 0 < 1)'
assert_contains "log" "$log" "3 module(s) failed to load; serving the other 1 job(s)"
assert_contains "log" "$log" "module Test::Good: 1 function(s) from $BAD/serve/Test/Good.lua"

# Only the good function is registered: not even the valid job of the
# module that failed validation, nor the jobs defined before a load error.
names=$(gadmin --status | awk -F'\t' 'NF >= 4 { print $1 }' | LC_ALL=C sort | paste -sd' ')
assert_eq "functions gearmand knows" "Test::Good::ok" "$names"
assert_eq "processes started" 1 "$(log_count "] start ")"

# ---- nothing loads: gdlua refuses to start ----
timeout 20 "$GDLUA" --server "127.0.0.1:$PORT" "$BAD/none" >"$TMP/none.out" 2>"$TMP/none.err"
rc=$?
assert_eq "exit status when nothing loads" 1 "$rc"
assert_contains "stderr when nothing loads" "$(cat "$TMP/none.err")" \
    "no job to serve: 1 module(s) failed to load, none defined a job"
assert_contains "stderr when nothing loads" "$(cat "$TMP/none.err")" "module Test::Syntax not loaded: "

# ---- --strict (or strict = true): one module failing refuses the start ----
# The same directory served above (Test::Good loads), now all or nothing.
echo 'return { strict = true }' >"$TMP/strict.conf.lua"
for how in "--strict" "--configfile $TMP/strict.conf.lua"; do
    # shellcheck disable=SC2086 # $how is an option and its value
    timeout 20 "$GDLUA" $how --server "127.0.0.1:$PORT" --console_port 0 "$BAD/serve" \
        >"$TMP/strict.out" 2>"$TMP/strict.err"
    rc=$?
    assert_eq "exit status with $how and a module that fails" 1 "$rc"
    assert_contains "stderr with $how" "$(cat "$TMP/strict.err")" "--strict: "
    assert_contains "stderr with $how" "$(cat "$TMP/strict.err")" " module(s) failed to load; not starting (the first: module Test::"
    assert_not_contains "stderr with $how" "$(cat "$TMP/strict.err")" "serving"
done

# A script directory that does not exist.
timeout 20 "$GDLUA" --server "127.0.0.1:$PORT" "$TMP/no/such/dir" >"$TMP/nodir.out" 2>"$TMP/nodir.err"
rc=$?
assert_eq "exit status for a missing directory" 1 "$rc"
assert_contains "stderr for a missing directory" "$(cat "$TMP/nodir.err")" \
    "cannot read script directory $TMP/no/such/dir: No such file or directory"

# Last, as it fails against the current gdlua: a load error's traceback
# must show where it happened, the module function that raised it (line 6)
# as well as the main chunk's call (line 8). (init.lua's load_error returns
# debug.traceback(msg, 2) as a tail call, so level 2 skips the raising
# frame for errors raised by the VM.)
assert_contains "load error traceback" "$log" "Test/Runtime.lua:8: in main chunk"
assert_contains "load error traceback" "$log" "Test/Runtime.lua:6: in function 'setup'"

pass
