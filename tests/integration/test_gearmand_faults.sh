#!/bin/bash
# The job server fails under load: background jobs in gearmand's sqlite
# queue all complete after gearmand restarts; while it is down the
# children wait with back-off instead of spinning; gearmand frozen
# (SIGSTOP) and thawed (SIGCONT) is recovered from without help.
source "$(dirname "$0")/lib.sh" "$@"

export MARK_DIR=$TMP/marks
mkdir -p "$MARK_DIR"
GEARMAND_ARGS=(-q libsqlite3 --libsqlite3-db "$TMP/queue.db")
N=300

marks() { find "$MARK_DIR" -type f | wc -l; }
at_least_marks() { (($(marks) >= $1)); }
# cpu_ticks PID...: utime + stime of these processes, in clock ticks.
cpu_ticks() {
    local p t=0
    for p in "$@"; do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

start_gearmand
start_gdlua "$FIXTURES/gearmand_faults/serve"
wait_for "two workers for Test::Mark::mark" 10 has_workers Test::Mark::mark 2
"$GDLUA" run "$FIXTURES/gearmand_faults/submit.lua" "127.0.0.1:$PORT" "$N" >"$TMP/submit.out" 2>&1 ||
    fail "submitting failed: $(cat "$TMP/submit.out")"
wait_for "some jobs done" 20 at_least_marks 20
(($(marks) < N)) || fail "all $N jobs were done before the fault: make them slower"

# gearmand stops with jobs queued (they are in its sqlite queue).
kill_wait "$GEARMAND_PID" 10
GEARMAND_PID=
done_before=$(marks)
mapfile -t kids < <(children_of "$GDLUA_PID")
((${#kids[@]} == 2)) || fail "expected 2 children, got ${#kids[@]}"
t0=$(cpu_ticks "${kids[@]}")
hold_for "master alive while gearmand is down" 5 alive "$GDLUA_PID"
ticks=$(($(cpu_ticks "${kids[@]}") - t0))
hz=$(getconf CLK_TCK)
echo "children's CPU during a 5 s outage: $ticks ticks (${hz}/s); $done_before of $N jobs done before it"
((ticks < hz)) || fail "the children used $ticks ticks of CPU in 5 s with the server down: a busy loop"

start_gearmand "$PORT"
wait_for "every queued job done after the restart" 60 at_least_marks "$N"
for i in $(seq 1 "$N"); do [[ -e $MARK_DIR/$i ]] || fail "job $i never ran"; done

# Frozen for 10 s, then thawed: gdlua serves again by itself.
kill -STOP "$GEARMAND_PID"
hold_for "master alive while gearmand is frozen" 10 alive "$GDLUA_PID"
kill -CONT "$GEARMAND_PID"
served() { [[ $(timeout 5 gearman -h 127.0.0.1 -p "$PORT" -f Test::Mark::mark thawed 2>/dev/null) == thawed ]]; }
wait_for "a job served after SIGCONT" 30 served
assert_eq "processes that died" 0 "$(log_count_re "\] process [0-9]+ .* (killed by|exited with)")"
pass
