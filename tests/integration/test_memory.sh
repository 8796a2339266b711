#!/bin/bash
# Memory a process shares with its loader (issue 11): a module's load
# garbage is collected before fork, so a fresh process's Lua heap holds
# only what the module keeps; an echo process with the image module
# loaded stays under 1 MiB private dirty after 1000 jobs; and the GC
# still runs in a process: the heap stays small while jobs make about
# 170 MiB of garbage.
source "$(dirname "$0")/lib.sh" "$@"

F=Test::Memory

# private_dirty PID: kB of the process's memory that is its own (written
# since fork, or allocated there).
private_dirty() {
    awk '/^Private_Dirty:/ { print $2 }' "/proc/$1/smaps_rollup"
}

start_gearmand
start_gdlua "$FIXTURES/memory"
wait_for "a worker for $F::echo" 10 has_workers $F::echo
wait_for "a worker for $F::heap" 10 has_workers $F::heap

# The module keeps ~2000 small tables (about 100 KiB of Lua heap with the
# standard libraries) and drops 100,000 as it loads; without the loader's
# full cycle a fresh process inherits megabytes of that garbage.
heap=$(gm -f $F::heap x) || fail "heap failed"
echo "a fresh process's Lua heap: $heap KiB"
[[ $heap =~ ^[0-9]+$ ]] || fail "heap answered '$heap'"
((heap < 512)) || fail "a fresh process's Lua heap is $heap KiB: the load garbage was not collected before fork"

echo_pid=$(worker_pids_for $F::echo | head -1)
seq 1 1000 >"$TMP/lines"
gm -N -f $F::echo <"$TMP/lines" >"$TMP/echo.out" || fail "echo jobs failed"
assert_eq "echo answers" "$(seq 1 1000 | tr -d '\n')" "$(cat "$TMP/echo.out")"
assert_eq "the echo process served them all" "$echo_pid" "$(worker_pids_for $F::echo | head -1)"
pd=$(private_dirty "$echo_pid")
echo "private dirty of the echo process after 1000 jobs: $pd kB"
if [[ ${GDLUA_SANITIZED:-} == 1 ]]; then
    echo "SKIP the private dirty bound in a sanitizer build (GDLUA_SANITIZED=1): ASan's shadow memory is private"
else
    ((pd <= 1024)) || fail "the echo process has $pd kB private dirty after 1000 jobs, over 1 MiB"
fi

# 50 jobs, each making ~3.5 MiB of garbage (20,000 tables, each in a cycle
# with itself), in the same process: the GC keeps up.
for ((i = 1; i <= 50; i++)); do
    heap=$(gm -f $F::heap churn) || fail "churn $i failed"
done
echo "the Lua heap after 50 churning jobs: $heap KiB"
((heap < 16384)) || fail "the Lua heap grew to $heap KiB over 50 churning jobs: is the GC running?"
pass
