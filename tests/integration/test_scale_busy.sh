#!/bin/bash
# Scale-down stops only idle processes, chosen by each process's own idle
# time: a process running a long job is never stopped by its idling
# sibling's timeout.
source "$(dirname "$0")/lib.sh" "$@"

export SCALE_PIDFILE=$TMP/pid
export SCALE_RELEASE=$TMP/release # the long job runs until it exists
start_gearmand
start_gdlua --interval 1 "$FIXTURES/scale"
wait_for "the sentinel registers Scale::Jobs::slow" 10 bash -c "gearadmin -h 127.0.0.1 -p $PORT --workers | grep -q ':wake : .*Scale::Jobs::slow'"

# The long job is held until its sibling has been stopped and the checks
# below are done: a job of a fixed length could end first under load
# (before the sibling's spawn, its job, its idle second and its stop).
long_job() { gm -f Scale::Jobs::slow held >"$TMP/long.out"; }
spawn_bg long long_job
wait_for "the long job runs" 10 bash -c "ls $SCALE_PIDFILE.* >/dev/null 2>&1"
long_pid=$(cat "$SCALE_PIDFILE".*)
rm -f "$SCALE_PIDFILE".*
# A second, short job needs a second process (the first is busy).
short_pid=$(gm -f Scale::Jobs::slow 0.1) || fail "short job failed"
[[ $short_pid != "$long_pid" ]] || fail "the short job ran in the busy process"
# The short job's process idles past max_idle_time and is stopped ...
wait_for "the idle sibling is stopped" 10 log_has "] stop $short_pid Scale::Jobs::slow: idle"
# ... while the busy one goes on and answers.
alive "$long_pid" || fail "the busy process $long_pid is gone"
log_has "] stop $long_pid " && fail "the busy process was stopped"
touch "$SCALE_RELEASE"
wait "$long" || fail "the long job failed"
assert_eq "the long job's result is its process" "$long_pid" "$(cat "$TMP/long.out")"
wait_for "the long job's process stops once idle" 10 log_has "] stop $long_pid Scale::Jobs::slow: idle"
pass
