#!/bin/bash
# Client errors in words: a call to a function no worker has registered
# says so once its timeout passes (the client asks the server's status),
# and that the job is left queued in gearmand; a job calling its own pool
# while its only process is busy (the self-call deadlock) is told the
# workers are all busy and why it waits for itself.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
"$GDLUA" call No::Such::fn --server "127.0.0.1:$PORT" --timeout 300 <<<"x" >"$TMP/call.out" 2>"$TMP/call.err"
assert_eq "gdlua call No::Such::fn: exit status" 1 "$?"
assert_eq "gdlua call No::Such::fn: stderr" \
    "gdlua call: No::Such::fn: no worker has registered No::Such::fn on 127.0.0.1:$PORT (waited 300 ms); the job is left queued in gearmand" \
    "$(cat "$TMP/call.err")"
assert_eq "the job left queued" "No::Such::fn	1	0	0" "$(gadmin --status | grep -F No::Such::fn)"

start_gdlua "$FIXTURES/client_errors"
wait_for "a worker for Test::Self::me" 10 has_workers Test::Self::me
"$GDLUA" call Test::Self::me --server "127.0.0.1:$PORT" --timeout 20000 < <(printf '127.0.0.1:%s' "$PORT") \
    >"$TMP/self.out" 2>"$TMP/self.err"
assert_eq "the self-call: exit status" 1 "$?"
assert_eq "the self-call: stderr" \
    "gdlua call: Test::Self::me: Test::Self::me timed out after 300 ms on 127.0.0.1:$PORT: 1 worker(s) registered, 2 job(s) in its queue, 1 of them running; the job is left in gearmand (every worker is busy: a job calling its own pool while every process of it is busy waits for itself)" \
    "$(cat "$TMP/self.err")"

pass
