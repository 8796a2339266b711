#!/bin/bash
# The job server is down when gdlua starts: the master and its child stay
# up, the child retries, and once gearmand is up on that port the job is
# served. Then gearmand restarts: the same child registers again. A job
# server whose name does not resolve is retried the same way, quietly, not
# by a crash loop; beside one that resolves, the other serves meanwhile.
source "$(dirname "$0")/lib.sh"

# registered FUNC: gearmand's status lists a worker for FUNC (whatever
# its client id).
registered() {
    (($(workers_for "$1") >= 1))
}

PORT=$(free_port) || fail "no free port"
start_gdlua "$FIXTURES/serverdown"
wait_for "the child to report the server down and retry" 10 \
    log_has_re "WARN \[[0-9]+\] Test::Late::echo: .*retrying every 100 ms or less"
record_children
child=$(children_of "$GDLUA_PID")
[[ -n $child ]] || fail "no child running"
assert_eq "children" 1 "$(wc -l <<<"$child")"

# Master and child stay up while the server is down; no restarts.
both_alive() { alive "$GDLUA_PID" && alive "$child" && ! dead "$child"; }
hold_for "master $GDLUA_PID and child $child alive with the server down" 1 both_alive
assert_eq "processes started" 1 "$(log_count "] start ")"
assert_eq "process deaths" 0 "$(log_count "] process ")"
assert_eq "children" "$child" "$(children_of "$GDLUA_PID")"

start_gearmand "$PORT"
wait_for "the child to register Test::Late::echo with the late gearmand" 10 registered Test::Late::echo
out=$(gm -f Test::Late::echo hi) || fail "job failed after gearmand came up"
assert_eq "result" "late hi from $child" "$out"
wait_for "the child's client id (gdlua:...:$child) in gearadmin --workers" 5 has_workers Test::Late::echo
assert_eq "child registered" "$child" "$(worker_pids_for Test::Late::echo)"
wait_for "the child to log the reconnect" 5 log_has "Test::Late::echo: connected to the job server again"
assert_eq "processes started" 1 "$(log_count "] start ")"
assert_eq "process deaths" 0 "$(log_count "] process ")"

# gearmand goes away and comes back on the same port: the same child
# registers again and serves.
kill_wait "$GEARMAND_PID" 5
GEARMAND_PID=
retries_logged() {
    (($(log_count_re "WARN \[$child\] Test::Late::echo: .*retrying every 100 ms or less") >= 2))
}
wait_for "the child to notice the server gone" 10 retries_logged
start_gearmand "$PORT"
wait_for "the child to register Test::Late::echo with the restarted gearmand" 10 registered Test::Late::echo
out=$(gm -f Test::Late::echo again) || fail "job failed after gearmand restarted"
assert_eq "result after the restart" "late again from $child" "$out"
wait_for "the child's client id (gdlua:...:$child) in gearadmin --workers after the restart" 5 \
    has_workers Test::Late::echo
assert_eq "processes started" 1 "$(log_count "] start ")"
assert_eq "process deaths" 0 "$(log_count "] process ")"
kill_wait "$GDLUA_PID" 10
GDLUA_PID=

# A name that does not resolve (.invalid never does, RFC 6761): the child
# lives and retries, saying why, as for a server that is down.
: >"$GDLUA_LOG"
"$GDLUA" --server no-such-host.invalid:4730 --logfile "$GDLUA_LOG" --console_port 0 "$FIXTURES/serverdown" \
    </dev/null >>"$GDLUA_OUT" 2>&1 &
GDLUA_PID=$!
wait_for "the child to report the name and retry" 10 log_has_re \
    "WARN \[[0-9]+\] Test::Late::echo: job server no-such-host\.invalid:4730: cannot resolve: .*; retrying every 100 ms or less"
record_children
child=$(children_of "$GDLUA_PID")
[[ -n $child ]] || fail "no child running with a name that does not resolve"
hold_for "master $GDLUA_PID and child $child alive with a name that does not resolve" 1 both_alive
assert_eq "processes started (no crash loop)" 1 "$(log_count "] start ")"
assert_eq "process deaths (no crash loop)" 0 "$(log_count "] process ")"
assert_eq "died young" 0 "$(log_count "died young")"
assert_eq "the child's warnings (once, then every 20th retry)" 1 \
    "$(log_count_re "WARN \[$child\] Test::Late::echo: job server no-such-host")"
log_has_re "WARN \[$GDLUA_PID\] job server no-such-host\.invalid:4730: cannot resolve: .*; polling it again in" ||
    fail "the master's poll does not word the name that does not resolve"
kill_wait "$GDLUA_PID" 10
GDLUA_PID=

# Beside a server that resolves: that one serves; the other is named once.
: >"$GDLUA_LOG"
"$GDLUA" --server "no-such-host.invalid:4730,127.0.0.1:$PORT" --logfile "$GDLUA_LOG" --console_port 0 \
    "$FIXTURES/serverdown" </dev/null >>"$GDLUA_OUT" 2>&1 &
GDLUA_PID=$!
wait_for "the child to register Test::Late::echo on the server that resolves" 10 registered Test::Late::echo
child=$(worker_pids_for Test::Late::echo)
for w in one two; do
    out=$(gm -f Test::Late::echo "$w") || fail "job $w failed beside a name that does not resolve"
    assert_eq "result beside a name that does not resolve" "late $w from $child" "$out"
done
assert_eq "the child's warning" 1 "$(log_count_re "WARN \[$child\] Test::Late::echo: job server no-such-host\.invalid:4730: cannot resolve: .*; serving the other job server\(s\) meanwhile")"
assert_eq "processes started" 1 "$(log_count "] start ")"
assert_eq "process deaths" 0 "$(log_count "] process ")"

pass
