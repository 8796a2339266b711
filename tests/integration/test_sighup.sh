#!/bin/bash
# SIGHUP: the master reloads the code (test_reload.sh has the rest) and
# keeps running; a new process replaces the old one, which exits by
# itself (no deaths). A child ignores a SIGHUP of its own.
source "$(dirname "$0")/lib.sh"

generation_serves() {
    log_has "generation $1 serves "
}

start_gearmand
start_gdlua "$FIXTURES/sighup"
wait_for "a worker for Test::Hup::pid" 10 has_workers Test::Hup::pid
first=$(gm -f Test::Hup::pid -s) || fail "job failed before SIGHUP"
[[ $first =~ ^[0-9]+$ ]] || fail "job returned '$first', not a pid"

kill -HUP "$GDLUA_PID" || fail "cannot send SIGHUP"
wait_for "the master to log SIGHUP" 5 log_has_re "\\[$GDLUA_PID\\] .*SIGHUP: loading the modules again"
wait_for "generation 2 to serve" 10 generation_serves 2
alive "$GDLUA_PID" || fail "the master died on SIGHUP"
wait_for "the first process to exit" 10 dead "$first"
wait_for "a worker for Test::Hup::pid after SIGHUP" 10 has_workers Test::Hup::pid
child=$(gm -f Test::Hup::pid -s) || fail "job failed after SIGHUP"
[[ $child =~ ^[0-9]+$ && $child != "$first" ]] || fail "job returned '$child' after SIGHUP (first process $first)"

# A second SIGHUP, the same.
kill -HUP "$GDLUA_PID"
wait_for "generation 3 to serve" 10 generation_serves 3
wait_for "the second process to exit" 10 dead "$child"
child=$(gm -f Test::Hup::pid -s) || fail "job failed after the second SIGHUP"

# SIGHUP to a child: ignored, the same child serves on.
kill -HUP "$child" || fail "cannot send SIGHUP to child $child"
out=$(gm -f Test::Hup::pid -s) || fail "job failed after a child's SIGHUP"
assert_eq "pid serving after the child's SIGHUP" "$child" "$out"
alive "$child" || fail "child $child died on SIGHUP"
assert_eq "process deaths" 0 "$(log_count_re "\] process [0-9]+ .*(killed by|exited with status [1-9])")"
alive "$GDLUA_PID" || fail "the master is gone"

pass
