#!/bin/bash
# Job timeouts: a job running past its pool's timeout (the attribute, else
# --timeout) is failed to its client with a message naming the timeout,
# its process is replaced at once, and gearmand never runs it again.
# Interpreted Lua code is interrupted in place (the process lives to exit
# cleanly); a job stuck in C or in a loop LuaJIT compiled is SIGKILLed
# after a grace, and the requeued job is failed unrun by the next process.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua --timeout 0.7 "$FIXTURES/timeout"
for f in spin interp sleep quick default; do
    wait_for "a worker for Test::Hang::$f" 10 has_workers "Test::Hang::$f"
done

# gcall FUNC: gdlua call against our gearmand; sets RC, OUT, ERR.
gcall() {
    timeout 30 "$GDLUA" call "$1" --server "127.0.0.1:$PORT" <<<"${2:-x}" >"$TMP/call.out" 2>"$TMP/call.err"
    RC=$?
    OUT=$(cat "$TMP/call.out")
    ERR=$(cat "$TMP/call.err")
}

# Interpreted Lua in a loop: interrupted; the client gets the timeout from
# the process itself, which then exits (no SIGKILL); a replacement serves.
interp_pid=$(worker_pids_for Test::Hang::interp)
gcall Test::Hang::interp
assert_eq "interp: exit status ($ERR)" 1 "$RC"
[[ $ERR =~ ^gdlua\ call:\ Test::Hang::interp:\ .*Hang\.lua:[0-9]+:\ job\ timed\ out\ after\ 0\.5\ s$ ]] ||
    fail "interp: stderr '$ERR'"
wait_for "the interrupted process to exit" 10 dead "$interp_pid"
log_has "stop $interp_pid Test::Hang::interp: job H:" || fail "no stop line for $interp_pid"
assert_eq "SIGKILLs for the interrupted process" 0 "$(log_count "process $interp_pid Test::Hang::interp: still running")"
wait_for "a new worker for Test::Hang::interp" 10 has_workers Test::Hang::interp

# A compiled loop: SIGKILL after the grace, the job failed unrun by the
# next process.
spin_pid=$(worker_pids_for Test::Hang::spin)
gcall Test::Hang::spin
assert_eq "spin: exit status ($ERR)" 1 "$RC"
assert_eq "spin: stderr" \
    "gdlua call: Test::Hang::spin: job timed out after 0.5 s; its process was killed, not run again" "$ERR"
wait_for "the spinning process to die" 10 dead "$spin_pid"

# C (gdlua.sleep) cannot be interrupted: SIGKILL after the grace; the
# requeued job is failed by the next process without running it.
sleep_pid=$(worker_pids_for Test::Hang::sleep)
gcall Test::Hang::sleep 60
assert_eq "sleep: exit status ($ERR)" 1 "$RC"
assert_eq "sleep: stderr" \
    "gdlua call: Test::Hang::sleep: job timed out after 0.5 s; its process was killed, not run again" "$ERR"
log_has "process $sleep_pid Test::Hang::sleep: still running 1000 ms after its job timed out; sending SIGKILL" ||
    fail "no SIGKILL line for $sleep_pid"
wait_for "the sleeping process to die" 10 dead "$sleep_pid"

# --timeout for a pool without its own; a job that ends in time is fine.
gcall Test::Hang::default 60
assert_eq "default: exit status ($ERR)" 1 "$RC"
assert_contains "default: stderr" "$ERR" "job timed out after 0.7 s"
gcall Test::Hang::quick y
assert_eq "quick: result ($ERR)" "quick y" "$OUT"
assert_eq "quick: starts" 1 "$(starts_of Test::Hang::quick)"

# Everything serves again.
for f in spin interp sleep default; do
    wait_for "a worker for Test::Hang::$f again" 10 has_workers "Test::Hang::$f"
done
alive "$GDLUA_PID" || fail "the master died"
pass
