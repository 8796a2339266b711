#!/bin/bash
# Signals an operator may send: SIGUSR1 reopens the log file (master and
# children, for logrotate); SIGUSR2, SIGALRM and the like are logged and
# ignored by the master and its children; a job's print() and io.write
# reach gdlua's stdout; a process asked to stop that does not is SIGKILLed
# after --stop_timeout.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
start_console_gdlua --stop_timeout 1 --shutdown_timeout 2 "$FIXTURES/signals"
wait_for "two workers for Test::Talk::talk" 10 has_workers Test::Talk::talk 2
wait_for "a worker for Test::Talk::stuck" 10 has_workers Test::Talk::stuck
record_children
kids_before=$(children_of "$GDLUA_PID" | sort | tr '\n' ' ')

# Harmless signals: the master and every child stay; each is logged.
for sig in USR2 ALRM VTALRM PROF XFSZ PWR; do
    kill -s "$sig" "$GDLUA_PID"
    for p in $(children_of "$GDLUA_PID"); do kill -s "$sig" "$p"; done
done
wait_for "the master to log SIGPWR" 10 log_has_re "\(signal $(kill -l PWR)\): ignored"
for sig in USR2 ALRM VTALRM PROF XFSZ; do
    log_has_re "\(signal $(kill -l "$sig")\): ignored" || fail "SIG$sig not logged"
done
alive "$GDLUA_PID" || fail "the master died of a signal"
assert_eq "children after the signals" "$kids_before" "$(children_of "$GDLUA_PID" | sort | tr '\n' ' ')"

# print() and io.write from jobs reach gdlua's stdout.
assert_eq "job result" "said one" "$(gm -f Test::Talk::talk one)"
wait_for "the printed line on stdout" 10 grep -qx "printed one" "$GDLUA_OUT"

# SIGUSR1 after logrotate moved the file: master and children write to a
# new file at the old path, not to the moved one.
mv "$GDLUA_LOG" "$TMP/rotated.log"
kill -USR1 "$GDLUA_PID"
wait_for "a new log file with the reopen line" 10 log_has "SIGUSR1: log file reopened"
for w in two three four; do gm -f Test::Talk::talk "$w" >/dev/null; done
wait_for "children log to the new file" 10 log_has "logged four"
grep -qF "logged four" "$TMP/rotated.log" && fail "a child still logs to the rotated file"
wait_for "one child's line in the new file" 10 log_has "logged two"

# A console kill of a process stuck in a loop: it is listed as stopping,
# then SIGKILLed after --stop_timeout 1, and gone.
spawn_bg client gm -f Test::Talk::stuck x
stuck_busy() {
    cons_one json | python3 -c '
import json, sys
job = next(j for j in json.load(sys.stdin)["jobs"] if j["name"] == "Test::Talk::stuck")
sys.exit(0 if any(p["state"] == "busy" for p in job["procs"]) else 1)'
}
wait_for "the stuck job to run" 10 stuck_busy
stuck=$(worker_pids_for Test::Talk::stuck)
assert_eq "console kill" "OK" "$(cons_one "kill $stuck")"
cons_one json | python3 -c '
import json, sys
job = next(j for j in json.load(sys.stdin)["jobs"] if j["name"] == "Test::Talk::stuck")
assert [p["pid"] for p in job["procs"] if p["stopping"]] == [int(sys.argv[1])], job
' "$stuck" || fail "the killed process is not listed as stopping"
wait_for "the stuck process SIGKILLed" 10 dead "$stuck"
log_has "process $stuck Test::Talk::stuck: still running --stop_timeout after it was asked to stop; sending SIGKILL" ||
    fail "no SIGKILL line for $stuck"

# Shutdown flushes what jobs wrote without a newline (the stuck job, handed
# to the replacement, is ended by --shutdown_timeout).
kill -TERM "$GDLUA_PID"
wait_gdlua 20
assert_eq "exit status" 0 "$GDLUA_STATUS"
grep -qF "partial one" "$GDLUA_OUT" || fail "io.write output without a newline lost: $(cat "$GDLUA_OUT")"
pass
