#!/bin/bash
# A job server that connects but never answers (here gearmand stopped
# with SIGSTOP, as a host cut off by a firewall that drops packets would
# be): a libgearman worker waits for its GRAB_JOB answer for good, so
# before gdlua knew of it, one such server among two held every process
# and the other server's jobs were never served. Checked:
#   - an idle admin connection is no hang: with --interval 6 the master
#     polls every 6 s, and no poll is given up after the 5 s the poll
#     timeout allows (it used to run from the last answer, not from the
#     poll: a false "no answer" and a reconnect of every process each
#     interval);
#   - B stopped: jobs sent to A are answered (the master marks B, its
#     processes serve A alone), from zero processes too, in a pool of one
#     job at a time and in a concurrent one;
#   - B continued: it answers the polls again, the processes connect to it
#     again (the concurrent one too, though it sleeps on its connections),
#     and jobs sent to B are answered.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
PORT_B=$PORT
GEARMAND_B=$GEARMAND_PID
EXTRA_PIDS+=("$GEARMAND_B") # SIGKILLed at the end, stopped or not
GEARMAND_PID=
start_gearmand
PORT_A=$PORT
EXTRA_PIDS+=("$GEARMAND_PID")
GEARMAND_PID=
start_http_gdlua --server "127.0.0.1:$PORT_B" --interval 6 "$FIXTURES/server_hung"
B=127.0.0.1:$PORT_B

# call PORT WORKLOAD [FUNCTION]: the answer of Hung::Jobs::FUNCTION (echo)
call() { timeout 60 gearman -h 127.0.0.1 -p "$1" -f "Hung::Jobs::${3:-echo}" "$2"; }
both() { # PORT WHAT WORKLOAD: both pools answer a job sent to PORT
    assert_eq "$2" "$3" "$(call "$1" "$3")"
    assert_eq "$2 (concurrent)" "c $3" "$(call "$1" "c $3" cecho)"
}
# last_poll: when the last poll of B that was answered was sent (s), from /metrics
last_poll() {
    http_get /metrics | awk -v s="$B" '$1 == "gdlua_server_last_poll_timestamp_seconds{server=\"" s "\"}" { print $2 }'
}
both "$PORT_A" "served from A" "to A"
both "$PORT_B" "served from B" "to B"

# ---- an idle admin connection is no hang ----
wait_for "a first poll of B" 10 eval '[[ -n $(last_poll) ]]'
first=$(last_poll)
wait_for "a poll of B sent 5 s or more after the first (now $(last_poll), first $first)" 30 \
    eval 'awk -v a="$(last_poll)" -v b="$first" "BEGIN { exit !(a - b >= 5) }"'
log_has "no answer within" && fail "an idle admin connection timed out: $(grep 'no answer' "$GDLUA_LOG" | head -3)"

# ---- B stops answering ----
kill -STOP "$GEARMAND_B"
both "$PORT_A" "served from A while B hangs" "A 1"
wait_for "B marked as not answering" 30 log_has "job server $B does not answer:"
for i in 2 3 4; do
    both "$PORT_A" "A while B hangs ($i)" "A $i"
done
wait_for "echo back to no process" 30 eval '! has_workers Hung::Jobs::echo'
assert_eq "A from zero while B hangs" "zero" "$(call "$PORT_A" "zero")"

# ---- B answers again ----
kill -CONT "$GEARMAND_B"
wait_for "B answering again" 30 log_has "job server $B is back:"
both "$PORT_B" "served from B again" "B again"
both "$PORT_A" "served from A again" "A again"
alive "$GDLUA_PID" || fail "gdlua died"
pass
