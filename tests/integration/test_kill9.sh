#!/bin/bash
# kill -9 of a busy child: the master replaces it, gearmand hands the job
# to the replacement, and the client still gets the result. The job runs
# until the test creates $SLOW_PID_FILE.go, so it is still running when
# it is killed and when the test looks at its second run.
source "$(dirname "$0")/lib.sh"

export SLOW_PID_FILE=$TMP/slow.pid

start_gearmand
start_gdlua "$FIXTURES/kill9"
wait_for "a worker for Test::Slow::slow" 10 has_workers Test::Slow::slow
first=$(children_of "$GDLUA_PID")
record_children

spawn_bg client gm -f Test::Slow::slow x >"$TMP/client.out" 2>"$TMP/client.err"
wait_for "the slow job to start" 10 test -s "$SLOW_PID_FILE"
busy=$(cat "$SLOW_PID_FILE")
assert_eq "pid running the job" "$first" "$busy"
rm -f "$SLOW_PID_FILE"
kill -9 "$busy" || fail "cannot kill $busy"

# The master notices and starts another child.
wait_for "the master to log the kill" 10 log_has "process $busy Test::Slow::slow killed by signal 9 "
has_new_child() {
    local p
    for p in $(children_of "$GDLUA_PID"); do
        [[ $p != "$busy" ]] && return 0
    done
    return 1
}
wait_for "a replacement child" 10 has_new_child
record_children
second=$(children_of "$GDLUA_PID")
[[ $second =~ ^[0-9]+$ ]] || fail "expected one child, got: $second"
dead "$busy" || fail "killed child $busy still exists"
assert_eq "start lines for the replacement $second" 1 "$(starts_of Test::Slow::slow "$second")"

# The job is run again by the replacement and the client gets its result.
wait_for "the job to run again" 10 test -s "$SLOW_PID_FILE"
assert_eq "pid running the requeued job" "$second" "$(cat "$SLOW_PID_FILE")"
touch "$SLOW_PID_FILE.go"
wait_for "the client to finish" 15 dead "$client"
wait "$client"
rc=$?
assert_eq "client exit status (stderr: $(cat "$TMP/client.err"))" 0 "$rc"
assert_eq "client result" "done" "$(cat "$TMP/client.out")"

assert_eq "processes started" 2 "$(starts_of Test::Slow::slow)"
alive "$GDLUA_PID" || fail "the master died"

pass
