#!/bin/bash
# begin and end hooks run around every job, in order, and end runs even
# when the job fails; the client of a failing job gets the failure and
# the message.
source "$(dirname "$0")/lib.sh"

export HOOK_LOG=$TMP/hooks.log
: >"$HOOK_LOG"

start_gearmand
start_gdlua "$FIXTURES/hooks"
for f in Test::Hooks::ok Test::Hooks::fails Test::Finish::run; do
    wait_for "a worker for $f" 10 has_workers "$f"
done

# Success: begin, job, end.
out=$(gm -f Test::Hooks::ok one) || fail "Test::Hooks::ok failed"
assert_eq "ok result" "ok:one" "$out"
assert_eq "hooks around a successful job" \
    "begin Test::Hooks::ok one|job one|end Test::Hooks::ok one" "$(paste -sd'|' "$HOOK_LOG")"

# Failure: begin, job-fail, end still runs; the client sees the message.
: >"$HOOK_LOG"
if gm -f Test::Hooks::fails two >"$TMP/fail.out" 2>"$TMP/fail.err"; then
    fail "a failing job succeeded: stdout '$(cat "$TMP/fail.out")'"
fi
err=$(cat "$TMP/fail.err")
assert_contains "client stderr for a failing job" "$err" "hook test failure two"
assert_contains "client stderr for a failing job" "$err" "Job failed"
assert_eq "stdout of a failing job" "" "$(cat "$TMP/fail.out")"
assert_eq "hooks around a failing job" \
    "begin Test::Hooks::fails two|job-fail two|end Test::Hooks::fails two" "$(paste -sd'|' "$HOOK_LOG")"

# The same child goes on: begin/job/end again after the failure.
: >"$HOOK_LOG"
out=$(gm -f Test::Hooks::ok three) || fail "Test::Hooks::ok failed after a failing job"
assert_eq "ok result after failure" "ok:three" "$out"
assert_eq "hooks after a failure" \
    "begin Test::Hooks::ok three|job three|end Test::Hooks::ok three" "$(paste -sd'|' "$HOOK_LOG")"

# The end hook spelled "finish".
: >"$HOOK_LOG"
out=$(gm -f Test::Finish::run four) || fail "Test::Finish::run failed"
assert_eq "finish result" "four" "$out"
assert_eq "hooks with W.finish" "fbegin four|fjob four|ffinish four" "$(paste -sd'|' "$HOOK_LOG")"

pass
