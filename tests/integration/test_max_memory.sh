#!/bin/bash
# max_memory bounds a running job (README "Timeouts and poison jobs"): the
# master reads a busy process's RSS every 20 ms; past the limit it kills
# the process and marks the job, so the next process fails it to its
# client with the figures, and a replacement serves on. Jobs that
# allocate until stopped, in Lua (a compiled loop) and in C, and a paced
# one, whose figure says how far past the limit a process got: RSS is
# measured, not timed.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

F=Test::Grow

start_gearmand
start_console_gdlua "$FIXTURES/max_memory"
for f in lua c paced ok; do
    wait_for "a worker for $F::$f" 10 has_workers "$F::$f"
done

# run_out JOB: the job fails to its client with the memory message, its
# process is killed and replaced, and gearmand keeps no copy of it.
# Prints the RSS (MiB) the master saw when it killed the process. The
# replacement fails the job, and publishes its failure after answering
# the client: wait until the console counts it.
run_out() {
    local job=$F::$1 runner rc err rss
    runner=$(worker_pids_for "$job")
    timeout 60 "$GDLUA" call "$job" --server "127.0.0.1:$PORT" <<<"x" >"$TMP/$1.out" 2>"$TMP/$1.err"
    rc=$?
    err=$(cat "$TMP/$1.err")
    assert_eq "$1: exit status ($err)" 1 "$rc"
    [[ $err =~ ^"gdlua call: $job: job used "([0-9]+)" MiB, past max_memory 100 MiB; its process was killed, not run again"$ ]] ||
        fail "$1: stderr: $err"
    rss=${BASH_REMATCH[1]}
    log_has "stop $runner $job: job H:" || fail "$1: process $runner was not the one stopped"
    log_has_re "stop $runner $(re_quote "$job"): job H:[^ ]+: RSS $rss MiB is past max_memory 100 MiB; killing it" ||
        fail "$1: no kill line for $rss MiB"
    wait_for "$1: process $runner gone" 10 dead "$runner"
    wait_for "$1: a new worker" 10 has_workers "$job"
    [[ $(worker_pids_for "$job") != "$runner" ]] || fail "$1: process $runner still serves"
    wait_for "$1: the failure counted" 10 failed_is "$job" 1
    assert_eq "$1: jobs left at gearmand" 0 "$(gadmin --status | awk -F'\t' -v f="$job" '$1 == f { print $2 }')"
    echo "$rss"
}

lua=$(run_out lua) || exit 1
c=$(run_out c) || exit 1
paced=$(run_out paced) || exit 1
echo "RSS when killed, max_memory 100 MiB: Lua loop $lua MiB, C loop $c MiB, paced (200 MiB/s) $paced MiB"
# At 200 MiB/s, 200 MiB would mean the master looked half a second late.
((paced < 200)) || fail "the paced job got to $paced MiB before it was stopped"

# Counted as recycles, not crashes, and as failed jobs; the pools serve on.
cons_one json | python3 -c '
import json, sys
jobs = {j["name"]: j for j in json.load(sys.stdin)["jobs"]}
for f in ("lua", "c", "paced"):
    j = jobs["Test::Grow::" + f]
    assert j["restarts"] == {"crash": 0, "killed": 0, "timeout": 0, "recycle": 1}, (f, j["restarts"])
    assert j["failed"] == 1 and j["done"] == 0 and j["poisoned"] == 0, (f, j)
' || fail "json: $(cons_one json)"
assert_eq "a job beside them" "ok y" "$(gm -f $F::ok y)"
assert_eq "crash back-offs" 0 "$(log_count "died young")"
pass
