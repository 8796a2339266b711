#!/bin/bash
# bench_faults.sh GDLUA [--quick]: how long faults take to reach a client,
# measured on a real gearmand: a poison job's client gets its failure; a
# hung job's client gets its timeout failure (interpreted Lua, and a
# compiled loop that needs SIGKILL); a job for a pool with no process is
# served after gearmand comes back from an outage (p50 over 5 restarts);
# jobs failed during 10 reloads under a steady load.
# Prints a table; --quick does one round of each and checks the results,
# never the timings.
source "$(dirname "$0")/../integration/lib.sh" "$1"
# In a sanitizer build the poison job's segfault must stay a SIGSEGV (as
# in test_poison.sh).
export ASAN_OPTIONS="$ASAN_OPTIONS:handle_segv=0"
QUICK=${2:-}
ROUNDS=5
[[ $QUICK == --quick ]] && ROUNDS=1

# ms_of CMD...: runs CMD, prints its wall time in ms; its status in $RC.
ms_of() {
    local t0
    t0=$(now_ms)
    "$@" >"$TMP/cmd.out" 2>"$TMP/cmd.err"
    RC=$?
    echo $(($(now_ms) - t0))
}
call() { timeout 60 "$GDLUA" call "$1" --server "127.0.0.1:$PORT" </dev/null; }

start_gearmand
start_gdlua --console_port 0 "$FIXTURES/poison" "$FIXTURES/timeout" "$FIXTURES/console"
for f in Test::Poison::segv Test::Hang::interp Test::Hang::spin; do
    wait_for "a worker for $f" 10 has_workers "$f"
done

poison_ms=$(ms_of call Test::Poison::segv)
grep -q "killed its process 3 times" "$TMP/cmd.err" || fail "poison: $(cat "$TMP/cmd.err")"
interp_ms=$(ms_of call Test::Hang::interp)
grep -q "job timed out after 0.5 s" "$TMP/cmd.err" || fail "interp timeout: $(cat "$TMP/cmd.err")"
wait_for "a worker for Test::Hang::spin" 10 has_workers Test::Hang::spin
spin_ms=$(ms_of call Test::Hang::spin)
grep -q "job timed out after 0.5 s; its process was killed" "$TMP/cmd.err" || fail "spin timeout: $(cat "$TMP/cmd.err")"

# gearmand down 3 s, back on the same port: time to the first result of
# Con::Jobs::long_name (min_processes 0: its process starts on demand).
served() { [[ $(timeout 5 gearman -h 127.0.0.1 -p "$PORT" -f Con::Jobs::long_name 0 2>/dev/null) =~ ^[0-9]+$ ]]; }
back=()
for ((r = 0; r < ROUNDS; r++)); do
    kill_wait "$GEARMAND_PID" 5
    GEARMAND_PID=
    hold_for "gdlua up while gearmand is down" 3 alive "$GDLUA_PID"
    start_gearmand "$PORT"
    t0=$(now_ms)
    wait_for "a job served after gearmand's return" 30 served
    back+=($(($(now_ms) - t0)))
done
p50=$(printf '%s\n' "${back[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
worst=$(printf '%s\n' "${back[@]}" | sort -n | tail -1)

# 10 reloads (SIGHUP) under a steady echo load: every result checked by
# the load client (lib.sh's start_load), which stops at the first failure.
kill_wait "$GDLUA_PID" 10
GDLUA_PID=
source "$(dirname "$0")/../integration/reload_lib.sh"
write_echo 1
start_gdlua --console_port 0 "$JOBS"
wait_for "two echo workers" 10 has_workers Rl::Echo::echo 2
start_load Rl::Echo::echo 20
wait_for "the load to get results" 10 load_checked
for v in $(seq 2 11); do
    write_echo "$v"
    kill -HUP "$GDLUA_PID"
    wait_for "generation $v" 10 generation_serves "$v"
done
stop_load 60
[[ $LOAD_RESULT =~ ^ok\ ([0-9]+)\  ]] || fail "load client: $(cat "$TMP/load.out")"
reload_jobs=${BASH_REMATCH[1]}

printf '%-62s %10s\n' "fault" "ms"
printf '%-62s %10s\n' "poison job (3 segfaults): until its client gets the failure" "$poison_ms"
printf '%-62s %10s\n' "timeout 0.5 s, interpreted loop: until the client's failure" "$interp_ms"
printf '%-62s %10s\n' "timeout 0.5 s, compiled loop (SIGKILL after 1 s): same" "$spin_ms"
printf '%-62s %10s\n' "gearmand back after 3 s down: first job served again, p50" "$p50"
printf '%-62s %10s\n' "gearmand back after 3 s down: first job served again, worst" "$worst"
echo "rounds: $ROUNDS (${back[*]} ms)${QUICK:+, quick: results checked, timings not}"
echo "10 reloads under load: $reload_jobs jobs answered, 0 failed, 0 lost"
pass
