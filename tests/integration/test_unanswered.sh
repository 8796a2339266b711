#!/bin/bash
# A job's answer that is never sent (README "Timeouts and poison jobs"):
#   - a job that closes its process's descriptors cannot answer; gearmand
#     hands it to the next process, for ever unless counted. The slot
#     keeps its handle until the answer is sent, the process exits, and
#     the master counts the attempt: after --max_attempts (3) the next
#     process fails it to its client, and the deaths back off as a crash
#     loop meanwhile;
#   - a process asked to stop while its job runs still sends the job's
#     answer, a large one too, and the job runs once.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

F=Test::Answer

start_gearmand
start_console_gdlua "$FIXTURES/unanswered"
wait_for "a worker for $F::closefds" 10 has_workers $F::closefds
wait_for "a worker for $F::big" 10 has_workers $F::big

# ---- closed descriptors: an attempt per process, then failed unrun ---------------
timeout 30 "$GDLUA" call $F::closefds --server "127.0.0.1:$PORT" <<<"x" >"$TMP/closefds.out" 2>"$TMP/closefds.err"
rc=$?
assert_eq "closefds call: exit status ($(cat "$TMP/closefds.err"))" 1 "$rc"
assert_eq "closefds call: stderr" \
    "gdlua call: $F::closefds: job killed its process 3 times (last: answer not sent, exit status 1); not run again" \
    "$(cat "$TMP/closefds.err")"
assert_eq "processes that exited before answering" 3 "$(log_count_re "\] process [0-9]+ $F::closefds exited with status 1 ")"
log_has "$F::closefds: 2 process(es) died young in a row; next start in 100 ms" || fail "no crash-loop back-off"
wait_for "a worker for $F::closefds again" 10 has_workers $F::closefds
# gearmand holds no copy of it any more.
queued=$(gadmin --status | awk -F'\t' -v f=$F::closefds '$1 == f { print $2 }')
assert_eq "closefds jobs left at gearmand" 0 "$queued"

# ---- a stop while the job runs: its large answer is sent, the job runs once ------
mkdir "$TMP/big"
spawn_bg client gm -f $F::big "$TMP/big" >"$TMP/big.out"
wait_for "the big job to run" 10 test -s "$TMP/big/runs"
runner=$(cat "$TMP/big/runs")
assert_eq "console kill of the busy process" OK "$(cons_one "kill $runner")"
wait_for "the master to ask it to stop" 5 log_has "stop $runner $F::big: console"
touch "$TMP/big/go"
wait_for "the big job's answer" 30 dead "$client"
assert_eq "bytes of the answer" $((32 * 1024 * 1024)) "$(wc -c <"$TMP/big.out")"
assert_eq "runs of the big job" "$runner" "$(cat "$TMP/big/runs")"
wait_for "process $runner to exit" 10 dead "$runner"
assert_not_contains "log" "$(cat "$GDLUA_LOG")" "$F::big: job H:"
assert_eq "the stopped process's deaths" 0 "$(log_count_re "\] process $runner .*(killed by|exited with status)")"
pass
