#!/bin/bash
# SIGTERM while a job runs: the job finishes and its client gets the
# result, every child exits, and gdlua exits 0. With a short
# --shutdown_timeout a job that runs too long is killed. The job runs
# until the test creates $SLOW_PID_FILE.go: it is still running whenever
# the test looks, however slow the machine.
source "$(dirname "$0")/lib.sh"

export SLOW_PID_FILE=$TMP/slow.pid

start_gearmand
start_gdlua "$FIXTURES/sigterm"
wait_for "a worker for Test::Slow::slow" 10 has_workers Test::Slow::slow
wait_for "2 workers for Test::Slow::idle" 10 has_workers Test::Slow::idle 2
record_children
assert_eq "children before SIGTERM" 3 "$(children_of "$GDLUA_PID" | wc -l)"

spawn_bg client gm -f Test::Slow::slow release >"$TMP/client.out" 2>"$TMP/client.err"
wait_for "the slow job to start" 10 test -s "$SLOW_PID_FILE"
busy=$(cat "$SLOW_PID_FILE")
[[ " ${CHILD_PIDS[*]} " == *" $busy "* ]] || fail "job runs in $busy, not a known child (${CHILD_PIDS[*]})"
master=$GDLUA_PID
kill -TERM "$master"
WAIT_ALLOW_EXIT=1 # gdlua is to exit by itself from here on
wait_for "the master to log SIGTERM" 5 log_has_re "\\[$master\\] .*: stopping 3 process\\(es\\) after their current job"

# The idle children stop at once; the busy one finishes its job first.
for p in "${CHILD_PIDS[@]}"; do
    [[ $p == "$busy" ]] && continue
    wait_for "idle child $p to exit" 5 dead "$p"
done
dead "$busy" && fail "the busy child $busy exited before its job was done"
touch "$SLOW_PID_FILE.go"

wait_for "the client to finish" 10 dead "$client"
wait "$client"
rc=$?
assert_eq "client exit status (stderr: $(cat "$TMP/client.err"))" 0 "$rc"
assert_eq "client result" "done after release" "$(cat "$TMP/client.out")"

wait_gdlua 10
assert_eq "gdlua exit status after SIGTERM" 0 "$GDLUA_STATUS"
for p in "${CHILD_PIDS[@]}"; do
    dead "$p" || fail "child $p still alive after gdlua exited"
done
log_has "all processes stopped; exiting" || fail "no final log line"
assert_eq "unexpected deaths" 0 "$(log_count "] process ")"
assert_eq "SIGKILL escalations" 0 "$(log_count "sending SIGKILL")"

# --shutdown_timeout 1 with a job that never ends: SIGKILL after 1 s.
rm -f "$SLOW_PID_FILE" "$SLOW_PID_FILE.go"
CHILD_PIDS=()
: >"$GDLUA_LOG"
start_gdlua --shutdown_timeout 1 "$FIXTURES/sigterm"
master=$GDLUA_PID
wait_for "2 workers for Test::Slow::idle" 10 has_workers Test::Slow::idle 2
wait_for "a worker for Test::Slow::slow" 10 has_workers Test::Slow::slow
spawn_bg client2 gm -f Test::Slow::slow never >/dev/null 2>&1
wait_for "the endless job to start" 10 test -s "$SLOW_PID_FILE"
busy=$(cat "$SLOW_PID_FILE")
record_children
kill -TERM "$master"
wait_gdlua 10
assert_eq "gdlua exit status after escalation" 0 "$GDLUA_STATUS"
log_has "1 process(es) still running after 1 s; sending SIGKILL" || fail "no SIGKILL escalation logged"
log_has "process $busy Test::Slow::slow killed by signal 9 " || fail "the busy child was not killed by SIGKILL"
# The escalation came about 1 s after the shutdown began, by the log's clock.
t_stop=$(log_ms "\\[$master\\] .*: stopping [0-9]+ process\\(es\\) after their current job")
t_kill=$(log_ms "still running after 1 s; sending SIGKILL")
[[ -n $t_stop && -n $t_kill ]] || fail "no time stamps for the shutdown ($t_stop) and the SIGKILL ($t_kill)"
elapsed=$((t_kill - t_stop))
((elapsed >= 900 && elapsed < 3000)) || fail "SIGKILL came $elapsed ms after the shutdown began, expected about 1 s"
for p in "${CHILD_PIDS[@]}"; do
    dead "$p" || fail "child $p still alive after gdlua exited"
done

pass
