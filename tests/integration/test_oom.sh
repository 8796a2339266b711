#!/bin/bash
# Out of memory in a job: LuaJIT calls no error handler then, yet the
# client gets a message that says so, the log says it too, and the process
# is replaced (it may keep what it grabbed); the pool serves on.
source "$(dirname "$0")/lib.sh" "$@"

if [[ -n ${GDLUA_SANITIZED:-} ]]; then
    # ASan reserves terabytes of address space: no limit on it can be set.
    echo "SKIP $TEST_NAME: the address-space limit does not work under ASan"
    pass
fi

start_gearmand
# A 1 GB address-space limit for gdlua and its children (about 110 MB of it
# mapped at start): the job runs out after some 900 MB, not 3 GB, of page
# faults, which on a loaded machine took most of the test's minute.
ulimit -S -v 1000000
start_gdlua "$FIXTURES/oom"
ulimit -S -v unlimited
wait_for "a worker for Test::Eat::eat" 10 has_workers Test::Eat::eat
eater=$(worker_pids_for Test::Eat::eat)

timeout 60 "$GDLUA" call Test::Eat::eat --server "127.0.0.1:$PORT" </dev/null >"$TMP/eat.out" 2>"$TMP/eat.err"
assert_eq "eat: exit status" 1 "$?"
assert_eq "eat: stderr" "gdlua call: Test::Eat::eat: not enough memory; the process will be replaced" \
    "$(cat "$TMP/eat.err")"
assert_not_contains "log" "$(cat "$GDLUA_LOG")" "(null)"
wait_for "the process that ran out of memory replaced" 10 log_has "stop $eater Test::Eat::eat: recycled"
wait_for "$eater gone" 10 dead "$eater"
wait_for "a new worker for Test::Eat::eat" 10 has_workers Test::Eat::eat
assert_eq "the other job" "ok y" "$(gm -f Test::Eat::ok y)"
pass
