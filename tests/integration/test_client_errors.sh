#!/bin/bash
# Client errors in words. A call to a function no worker has registered
# says so once its timeout passes (the client asks the server's status),
# and withdraws the job: a worker registered later does not run it. The
# timeouts are finite by default: `gdlua call` 30 s, a job's client
# --client_timeout, and never past the calling job's own timeout (the job
# is then failed by its timeout in words, its process not killed). A job
# calling its own pool while its only process is busy (the self-call
# deadlock) is told the workers are all busy and why it waits for itself,
# and the log warns once, before the wait, naming the pool's bound; a
# self-call its pool has room for is not warned about.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
# gdlua call's default timeout, 30 s: run beside the rest, checked last.
spawn_bg default_pid bash -c 'exec timeout 120 "$0" call No::Such::quiet --server "$1" <<<x >"$2/default.out" 2>"$2/default.err"' \
    "$GDLUA" "127.0.0.1:$PORT" "$TMP"

"$GDLUA" call No::Such::fn --server "127.0.0.1:$PORT" --timeout 300 <<<"x" >"$TMP/call.out" 2>"$TMP/call.err"
assert_eq "gdlua call No::Such::fn: exit status" 1 "$?"
assert_eq "gdlua call No::Such::fn: stderr" \
    "gdlua call: No::Such::fn: no worker has registered No::Such::fn on 127.0.0.1:$PORT (waited 300 ms); the job is withdrawn: gearmand will not run it for this call" \
    "$(cat "$TMP/call.err")"

# Withdrawn: gearmand counts the job until a worker asks for work, then
# drops it unrun. The worker runs jobs one at a time, in order, so once a
# later job's result is back, the withdrawn one would have run before it.
spawn_bg worker_pid gearman -h 127.0.0.1 -p "$PORT" -w -f No::Such::fn -- sh -c "cat >>'$TMP/ran'; echo ok"
wait_for "gearmand to drop the withdrawn job" 10 \
    bash -c '[[ $(timeout 10 gearadmin -h 127.0.0.1 -p '"$PORT"' --status | grep -F No::Such::fn) == "No::Such::fn	0	0	1" ]]'
assert_eq "a later job's result" ok "$("$GDLUA" call No::Such::fn --server "127.0.0.1:$PORT" --timeout 20000 <<<later)"
assert_eq "the jobs the worker ran" later "$(cat "$TMP/ran")"

start_gdlua --client_timeout 0.3 "$FIXTURES/client_errors"
for f in Self::me Wait::default Wait::capped; do
    wait_for "a worker for Test::$f" 10 has_workers "Test::$f"
done
wait_for "two workers for Test::Two::me" 10 has_workers Test::Two::me 2

assert_eq "a self-call with room" "inner done" \
    "$("$GDLUA" call Test::Two::me --server "127.0.0.1:$PORT" --timeout 20000 < <(printf '127.0.0.1:%s' "$PORT"))"

# A job's client without a timeout: --client_timeout.
assert_eq "a job's call without a timeout" \
    "no worker has registered No::Such::other on 127.0.0.1:$PORT (waited 300 ms); the job is withdrawn: gearmand will not run it for this call" \
    "$("$GDLUA" call Test::Wait::default --server "127.0.0.1:$PORT" --timeout 20000 < <(printf '127.0.0.1:%s' "$PORT"))"

# A client timeout past the job's own: the call gives up with the job's
# time, and the job fails by its timeout, in the interpreter: its process
# exits by itself, never SIGKILLed (as it would be waiting in libgearman).
# (The job logs the call's error, but its timeout may interrupt it first.)
capped_pid=$(worker_pids_for Test::Wait::capped)
"$GDLUA" call Test::Wait::capped --server "127.0.0.1:$PORT" --timeout 20000 < <(printf '127.0.0.1:%s' "$PORT") \
    >"$TMP/capped.out" 2>"$TMP/capped.err"
assert_eq "the capped call: exit status" 1 "$?"
[[ $(cat "$TMP/capped.err") =~ ^gdlua\ call:\ Test::Wait::capped:\ .*Wait\.lua:[0-9]+:\ job\ timed\ out\ after\ 0\.4\ s$ ]] ||
    fail "the capped call: stderr '$(cat "$TMP/capped.err")'"
wait_for "the capped job's process to exit" 10 dead "$capped_pid"
assert_eq "SIGKILLs for the capped job's process" 0 "$(log_count "process $capped_pid Test::Wait::capped: still running")"
if log_has "capped call: "; then
    log_has_re "capped call: no worker has registered No::Such::third on 127\.0\.0\.1:$PORT \(waited [0-9]+ ms, all its calling job's timeout left\); the job is withdrawn" ||
        fail "the capped call's error: $(log_tail)"
fi

"$GDLUA" call Test::Self::me --server "127.0.0.1:$PORT" --timeout 20000 < <(printf '127.0.0.1:%s' "$PORT") \
    >"$TMP/self.out" 2>"$TMP/self.err"
assert_eq "the self-call: exit status" 1 "$?"
assert_eq "the self-call: stderr" \
    "gdlua call: Test::Self::me: Test::Self::me timed out after 300 ms on 127.0.0.1:$PORT: 1 worker(s) registered, 2 job(s) in its queue, 1 of them running; the job is withdrawn: gearmand will not start it for this call (every worker is busy: a job calling its own pool while every process of it is busy waits for itself)" \
    "$(cat "$TMP/self.err")"
warning="Test::Self::me: a job calls Test::Self::me, a function of its own pool, while all 1 of the pool's processes (max_processes 1) are busy: none can take it until one finishes, so the call waits for a worker elsewhere or its timeout (300 ms); give the pool a max_processes above the depth of its self-calls (warned once per process)"
"$GDLUA" call Test::Self::me --server "127.0.0.1:$PORT" --timeout 20000 < <(printf '127.0.0.1:%s' "$PORT") \
    >/dev/null 2>&1
assert_eq "self-call warnings after two self-calls" 1 "$(log_count "$warning")"
assert_eq "self-call warnings in all" 1 "$(log_count "a function of its own pool")"

wait_for "gdlua call with its default timeout to end" 80 dead "$default_pid"
assert_eq "gdlua call's default timeout" \
    "gdlua call: No::Such::quiet: no worker has registered No::Such::quiet on 127.0.0.1:$PORT (waited 30000 ms); the job is withdrawn: gearmand will not run it for this call" \
    "$(cat "$TMP/default.err")"

pass
