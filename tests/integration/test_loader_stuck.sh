#!/bin/bash
# A loader that stops answering (SIGSTOP: as stuck as a loader can be)
# while a job waits for a process: the master waits for its answer at
# most 5 s (SPAWN_TIMEOUT_MS, gdl_loader.c), then says so, kills it,
# loads the modules again and serves the job from the new generation.
# The stopped loader's spare goes with it, and every process left is one
# the master started and logged.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua --interval 1 "$FIXTURES/scale"
wait_for "the sentinel registers Scale::Jobs::echo" 20 bash -c \
    "[[ \$(gearadmin -h 127.0.0.1 -p $PORT --workers | grep -c ':wake : .*Scale::Jobs::echo') == 1 ]]"
loader=$(loaders_of "$GDLUA_PID")
[[ $loader =~ ^[0-9]+$ ]] || fail "not one loader: '$loader'"
assert_eq "no process before work" "" "$(children_of "$GDLUA_PID")"

kill -STOP "$loader"
gm_submit stuck Scale::Jobs::echo "past a stuck loader"
wait_for "the master gives the stopped loader up" 30 \
    log_has "loader 1 ($loader): the loader did not answer in 5000 ms; loading the modules again"
wait_for "the stopped loader killed and reaped" 20 dead "$loader"
wait_for "the job answered" 60 gm_answered stuck
assert_eq "the job's exit status" 0 "$(cat "$TMP/rc.stuck")"
assert_eq "the job's result" "past a stuck loader" "$(cat "$TMP/out.stuck")"
log_has_re "generation 2 serves [0-9]+ job" || fail "no 'generation 2 serves' in the log"
assert_eq "the job's starts" 1 "$(starts_of Scale::Jobs::echo)"

# Every worker process is one the master logged as started (a process
# the stopped loader forked unseen would serve outside the master's
# count and limits).
for pid in $(children_of "$GDLUA_PID"); do
    starts_of Scale::Jobs::echo "$pid" | grep -qx 1 || fail "process $pid runs, but the master never started it"
done
pass
