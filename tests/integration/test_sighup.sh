#!/bin/bash
# SIGHUP: the master logs it and keeps running; the children keep
# serving. A child ignores a SIGHUP of its own.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_gdlua "$FIXTURES/sighup"
wait_for "a worker for Test::Hup::pid" 10 has_workers Test::Hup::pid
child=$(gm -f Test::Hup::pid -s) || fail "job failed before SIGHUP"
[[ $child =~ ^[0-9]+$ ]] || fail "job returned '$child', not a pid"

kill -HUP "$GDLUA_PID" || fail "cannot send SIGHUP"
wait_for "the master to log SIGHUP" 5 log_has_re "\\[$GDLUA_PID\\] .*SIGHUP"
alive "$GDLUA_PID" || fail "the master died on SIGHUP"
wait_for "a worker for Test::Hup::pid after SIGHUP" 10 has_workers Test::Hup::pid
out=$(gm -f Test::Hup::pid -s) || fail "job failed after SIGHUP"
[[ $out =~ ^[0-9]+$ ]] || fail "job returned '$out' after SIGHUP"

# A second SIGHUP, the same.
kill -HUP "$GDLUA_PID"
wait_for "the master to log the second SIGHUP" 5 test "$(log_count_re "\\[$GDLUA_PID\\] .*SIGHUP")" -ge 2
alive "$GDLUA_PID" || fail "the master died on the second SIGHUP"
wait_for "a worker for Test::Hup::pid after the second SIGHUP" 10 has_workers Test::Hup::pid
child=$(gm -f Test::Hup::pid -s) || fail "job failed after the second SIGHUP"

# SIGHUP to a child: ignored, the same child serves on.
kill -HUP "$child" || fail "cannot send SIGHUP to child $child"
out=$(gm -f Test::Hup::pid -s) || fail "job failed after a child's SIGHUP"
assert_eq "pid serving after the child's SIGHUP" "$child" "$out"
alive "$child" || fail "child $child died on SIGHUP"
assert_eq "process deaths" 0 "$(log_count "] process ")"
alive "$GDLUA_PID" || fail "the master is gone"

pass
