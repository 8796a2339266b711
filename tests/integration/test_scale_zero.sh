#!/bin/bash
# Scaling from zero: with min_processes 0 no process runs until work
# arrives; the first job is served (by a process forked on the wake-up),
# and after max_idle_time the job is back to no process.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua --interval 1 "$FIXTURES/scale"
# Only the wake-up sentinel is registered for the function.
wait_for "the sentinel registers Scale::Jobs::echo" 10 bash -c "[[ \$(gearadmin -h 127.0.0.1 -p $PORT --workers | grep -c ':wake : .*Scale::Jobs::echo') == 1 ]]"
assert_eq "no process before work" "" "$(children_of "$GDLUA_PID")"

out=$(gm -f Scale::Jobs::echo "from zero") || fail "echo from zero failed: $out"
assert_eq "first result" "from zero" "$out"
log_has_re "\] start [0-9]+ Scale::Jobs::echo: queue 1, busy 0" || fail "no start line with its reason"
assert_eq "one process started" 1 "$(starts_of Scale::Jobs::echo)"

# Idle for max_idle_time (1 s): stopped, down to min 0.
wait_for "the idle process is stopped" 10 log_has_re "\] stop [0-9]+ Scale::Jobs::echo: idle [0-9]+ s"
wait_for "no process left" 10 no_children

# And again from zero.
out=$(gm -f Scale::Jobs::echo "again") || fail "second echo failed"
assert_eq "second result" "again" "$out"
assert_eq "a second start" 2 "$(starts_of Scale::Jobs::echo)"
pass
