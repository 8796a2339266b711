#!/bin/bash
# --daemonize, --pidfile, --user and --group: the command returns once
# the daemon serves (exit 0; 1 when its first load serves nothing or
# --strict refuses it), the daemon has left the session and the
# terminal, the pidfile holds its pid while it runs and is gone after
# SIGTERM; a second start on a held pidfile is refused, a stale one is
# taken over; as root, --user nobody --group nogroup runs the master and
# every child as nobody; unknown users and groups are refused clearly.
source "$(dirname "$0")/lib.sh"

FIX=$FIXTURES/daemon

# status_ids PID FIELD: the four ids of /proc/PID/status's Uid: or Gid:.
status_ids() {
    awk -v f="$2:" '$1 == f { print $2, $3, $4, $5 }' "/proc/$1/status"
}

# ---- refusals before anything starts ------------------------------------------
run --user gdlua-no-such-user --console_port 0 "$FIX"
assert_eq "unknown user: exit status" 2 "$RUN_RC"
assert_eq "unknown user: message" "gdlua: --user gdlua-no-such-user: no such user" "$RUN_ERR"
run --group gdlua-no-such-group --console_port 0 "$FIX"
assert_eq "unknown group: exit status" 2 "$RUN_RC"
assert_eq "unknown group: message" "gdlua: --group gdlua-no-such-group: no such group" "$RUN_ERR"

start_gearmand
PIDFILE=$TMP/gdlua.pid

# ---- --daemonize with a stale pidfile -------------------------------------------
true &
stale=$!
wait "$stale"
echo "$stale" >"$PIDFILE"
run --daemonize --pidfile "$PIDFILE" --server "127.0.0.1:$PORT" --logfile "$GDLUA_LOG" --console_port 0 "$FIX"
assert_eq "--daemonize: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
assert_eq "--daemonize: stdout" "" "$RUN_OUT"
assert_eq "--daemonize: stderr" "" "$RUN_ERR"
daemon=$(cat "$PIDFILE")
[[ $daemon =~ ^[0-9]+$ && $daemon != "$stale" ]] || fail "the pidfile holds '$daemon', not the daemon's pid"
GDLUA_PID=$daemon
alive "$daemon" || fail "the daemon $daemon named by the pidfile is not running"
is_gdlua_proc "$daemon" || fail "process $daemon is not gdlua"
# The pidfile is written once the daemon is ready: it is the master.
log_has_re "\\[$daemon\\] .*gdlua [0-9.]+ serving 1 job" || fail "process $daemon did not log the master's start"
assert_eq "the daemon's terminal" "?" "$(ps -o tty= -p "$daemon" | tr -d ' ')"
[[ $(ps -o sid= -p "$daemon" | tr -d ' ') != "$(ps -o sid= -p $$ | tr -d ' ')" ]] ||
    fail "the daemon is still in the test's session"
[[ $(ps -o ppid= -p "$daemon" | tr -d ' ') != "$$" ]] || fail "the daemon is the test's child"
assert_eq "the daemon's stdin" "/dev/null" "$(readlink "/proc/$daemon/fd/0")"
assert_eq "the daemon's stderr" "/dev/null" "$(readlink "/proc/$daemon/fd/2")"
wait_for "2 workers for Test::Who::pid" 10 has_workers Test::Who::pid 2
out=$(gm -f Test::Who::pid -s) || fail "the daemon's job failed"
[[ " $(children_of "$daemon" | paste -sd' ') " == *" $out "* ]] || fail "job served by '$out', not a child of $daemon"

# ---- a start that cannot serve fails the command ------------------------------------
# The command returns once the first load has installed the jobs: --strict
# refusing a failed module, or no job at all, is its exit status, and the
# daemon leaves no pidfile.
for c in "strict:--strict $FIXTURES/badmods/serve" "no job:$FIXTURES/badmods/none"; do
    what=${c%%:*}
    read -ra args <<<"${c#*:}"
    run --daemonize --pidfile "$TMP/refused.pid" --server "127.0.0.1:$PORT" --logfile "$TMP/refused.log" \
        --console_port 0 "${args[@]}"
    assert_eq "$what: exit status" 1 "$RUN_RC"
    assert_eq "$what: message" "gdlua: --daemonize: the daemon stopped before it served (see $TMP/refused.log)" \
        "$RUN_ERR"
    [[ ! -s $TMP/refused.pid ]] || fail "$what: the pidfile holds $(cat "$TMP/refused.pid")"
done
grep -qE -- "--strict: [0-9]+ module\(s\) failed to load; not starting" "$TMP/refused.log" ||
    fail "the --strict refusal is not in the log: $(cat "$TMP/refused.log")"
grep -q "no job to serve" "$TMP/refused.log" || fail "the empty start is not in the log: $(cat "$TMP/refused.log")"

# ---- a second start on the live pidfile is refused ----------------------------
run --pidfile "$PIDFILE" --server "127.0.0.1:$PORT" --logfile "$TMP/second.log" --console_port 0 "$FIX"
assert_eq "second start: exit status" 2 "$RUN_RC"
assert_eq "second start: message" \
    "gdlua: --pidfile $PIDFILE: process $daemon is running (is gdlua running already?)" "$RUN_ERR"
assert_eq "second start: the pidfile" "$daemon" "$(cat "$PIDFILE")"
[[ -s $TMP/second.log ]] && fail "the refused start logged: $(cat "$TMP/second.log")"

# ---- SIGTERM: the daemon exits and removes its pidfile ------------------------------
record_children
kill -TERM "$daemon"
WAIT_ALLOW_EXIT=1 wait_for "the daemon to exit" 20 dead "$daemon"
wait_for "the pidfile to be removed" 5 test ! -e "$PIDFILE"
GDLUA_PID=
for c in "${CHILD_PIDS[@]}"; do
    wait_for "child $c to exit" 10 dead "$c"
done
log_has "all processes stopped; exiting" || fail "the daemon did not log its exit"

# ---- --user nobody --group nogroup ----------------------------------------------------
if [[ $(id -u) != 0 ]]; then
    echo "$TEST_NAME: not root: --user nobody not tested" >&2
    pass
fi
# nobody writes the sanitizer's reports (log_path) and its pidfile's directory.
chmod 1777 "$TMP"
# nobody reads the modules and runs gdlua below: from copies, as the
# checkout may be private to root.
FIX=$(shared_copy "$FIX")
NOBODY_GDLUA=$(shared_copy "$GDLUA")
mkdir "$TMP/run" && chown nobody:nogroup "$TMP/run"
PIDFILE=$TMP/run/gdlua.pid
# LeakSanitizer cannot stop the threads of a process that dropped root (no
# longer dumpable): leaks are checked in the runs above, not in this one.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    start_gdlua --user nobody --group nogroup --pidfile "$PIDFILE" "$FIX"
wait_for "2 workers for Test::Who::pid as nobody" 10 has_workers Test::Who::pid 2
wait_for "the pidfile" 5 test -s "$PIDFILE"
assert_eq "pidfile as nobody" "$GDLUA_PID" "$(cat "$PIDFILE")"
assert_eq "the master's uids" "65534 65534 65534 65534" "$(status_ids "$GDLUA_PID" Uid)"
assert_eq "the master's gids" "65534 65534 65534 65534" "$(status_ids "$GDLUA_PID" Gid)"
assert_eq "the master's groups" "65534" "$(awk '$1 == "Groups:" { $1 = ""; print substr($0, 2) }' "/proc/$GDLUA_PID/status")"
kids=$(children_of "$GDLUA_PID")
assert_eq "children" 2 "$(wc -w <<<"$kids")"
for c in $kids; do
    assert_eq "child $c's uids" "65534 65534 65534 65534" "$(status_ids "$c" Uid)"
    assert_eq "child $c's gids" "65534 65534 65534 65534" "$(status_ids "$c" Gid)"
done
out=$(gm -f Test::Who::pid -s) || fail "the job failed as nobody"
[[ " $(paste -sd' ' <<<"$kids") " == *" $out "* ]] || fail "job served by '$out', not a child of $GDLUA_PID"
log_has "running as uid 65534, gid 65534" || fail "no log line for the switch to nobody"
record_children
kill_wait "$GDLUA_PID" 20
GDLUA_PID=
wait_for "the pidfile to be removed by nobody" 5 test ! -e "$PIDFILE"

# Not root: another user is refused, one's own is fine (nothing to switch).
run_as_nobody() {
    run_cmd setpriv --reuid=nobody --regid=nogroup --clear-groups "$NOBODY_GDLUA" "$@"
}
run_as_nobody --user root --console_port 0 --server "127.0.0.1:1" "$FIX"
assert_eq "not root, --user root: exit status" 2 "$RUN_RC"
assert_eq "not root, --user root: message" \
    "gdlua: --user root: only root can switch to another user or group (gdlua runs as uid 65534)" "$RUN_ERR"

pass
