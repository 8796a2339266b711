#!/bin/bash
# A Lua error fails the job: the client gets the message, the child logs
# it with a traceback and keeps serving.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_gdlua "$FIXTURES/errors"
wait_for "a worker for Test::Errors::work" 10 has_workers Test::Errors::work
wait_for "a worker for Test::Errors::nil_index" 10 has_workers Test::Errors::nil_index
wait_for "a worker for Test::Errors::nested_nil" 10 has_workers Test::Errors::nested_nil

pid1=$(gm -f Test::Errors::work hello) || fail "first job failed"
[[ $pid1 =~ ^[0-9]+$ ]] || fail "job returned '$pid1', not a pid"

if gm -f Test::Errors::work fail-1 >"$TMP/fail.out" 2>"$TMP/fail.err"; then
    fail "a failing job succeeded: '$(cat "$TMP/fail.out")'"
fi
err=$(cat "$TMP/fail.err")
assert_contains "client stderr" "$err" "Errors.lua:7: kaboom fail-1 in pid $pid1"
assert_contains "client stderr" "$err" "Job failed"
# The client gets the message, not the traceback.
assert_not_contains "client stderr" "$err" "stack traceback"

# The same child serves the next job.
pid2=$(gm -f Test::Errors::work again) || fail "job after the failure failed"
assert_eq "pid serving after the failure" "$pid1" "$pid2"
alive "$pid1" || fail "child $pid1 is gone"
assert_eq "starts of Test::Errors::work" 1 "$(starts_of Test::Errors::work)"

# The log has the error with its traceback, from the child.
log_has "ERROR [$pid1] Test::Errors::work: job " || fail "no error line from child $pid1"
log_has "Test/Errors.lua:7: kaboom fail-1 in pid $pid1" ||
    fail "the log does not name file:line and message"
log_has "stack traceback:" || fail "no traceback in the log"
log_has "Errors.lua:7: in function 'explode'" || fail "the traceback lacks the explode frame"
log_has "Errors.lua:14: in function" || fail "the traceback lacks the job frame"

# A Lua runtime error (not error()) also reaches the client.
if gm -f Test::Errors::nil_index -s >"$TMP/nil.out" 2>"$TMP/nil.err"; then
    fail "nil_index succeeded: '$(cat "$TMP/nil.out")'"
fi
assert_contains "client stderr for a runtime error" "$(cat "$TMP/nil.err")" "Errors.lua:22: attempt to index local 't' (a nil value)"

# A runtime error in a helper: the traceback shows the helper's frame and
# the job's.
if gm -f Test::Errors::nested_nil -s >"$TMP/nested.out" 2>"$TMP/nested.err"; then
    fail "nested_nil succeeded: '$(cat "$TMP/nested.out")'"
fi
assert_contains "client stderr for a nested runtime error" "$(cat "$TMP/nested.err")" \
    "Errors.lua:28: attempt to index field 'missing' (a nil value)"
log_has "Test/Errors.lua:28: in function 'lookup'" || fail "the traceback lacks the helper's frame"
log_has "Test/Errors.lua:32: in function" || fail "the traceback lacks the job's frame"

# Several failures in a row do not kill the child.
for i in 1 2 3; do
    gm -f Test::Errors::work "fail-$i" >/dev/null 2>&1 && fail "fail-$i succeeded"
done
pid3=$(gm -f Test::Errors::work last) || fail "job after several failures failed"
assert_eq "pid after several failures" "$pid1" "$pid3"
assert_eq "starts of Test::Errors::work" 1 "$(starts_of Test::Errors::work)"
assert_eq "process deaths" 0 "$(log_count "] process ")"

pass
