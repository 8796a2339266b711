#!/bin/bash
# systemd's notifications without systemd: a unix datagram socket stands
# for it (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID as systemd sets them
# for Type=notify with WatchdogSec=). READY=1 comes once, only after the
# pool's 3 minimum processes are up (started one a second by
# --max_spawn_rate 1); WATCHDOG=1 comes again and again; STATUS= carries
# the processes, the jobs done and failed and the serving generation
# (test_deploy_failures.sh: a reload's outcome); STOPPING=1 on SIGTERM.
source "$(dirname "$0")/lib.sh"

SOCK=$TMP/notify.sock
OUT=$TMP/notify.out
: >"$OUT"

count() {
    grep -cxF -- "$1" "$OUT"
}

has_line() {
    grep -qxF -- "$1" "$OUT"
}

has_re() {
    grep -qE -- "$1" "$OUT"
}

at_least() {
    (($(count "$1") >= $2))
}

start_gearmand
spawn_bg RECEIVER python3 "$FIXTURES/notify/receiver.py" "$SOCK" "$OUT"
wait_for "the notify socket" 10 test -S "$SOCK"

# WATCHDOG_PID is gdlua's own pid: the subshell's, kept by exec.
(
    export NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=400000 WATCHDOG_PID=$BASHPID
    exec "$GDLUA" --server "127.0.0.1:$PORT" --logfile "$GDLUA_LOG" --console_port 0 --max_spawn_rate 1 \
        "$FIXTURES/notify" </dev/null >>"$GDLUA_OUT" 2>&1
) &
GDLUA_PID=$!

wait_for "READY=1" 20 has_line READY=1
# Whenever READY=1 came, the third process had started before it.
assert_eq "processes started when READY=1 arrived" 3 "$(starts_of Test::Notify::g)"
assert_eq "the master's children when READY=1 arrived" 3 "$(children_of "$GDLUA_PID" | wc -l)"
third=$(grep -nE "\\] start [0-9]+ Test::Notify::g" "$GDLUA_LOG" | sed -n 3p | cut -d: -f1)
ready=$(grep -nF "systemd: ready, every job has its minimum processes" "$GDLUA_LOG" | cut -d: -f1)
[[ -n $third && -n $ready ]] || fail "no third start ($third) or no ready line ($ready) in the log"
((ready > third)) || fail "the ready line ($ready) comes before the third start ($third)"
log_has "systemd: watchdog every 200 ms" || fail "the watchdog period is not half of WATCHDOG_USEC"

# Watchdog pings keep coming (every 200 ms).
wait_for "10 WATCHDOG=1" 20 at_least WATCHDOG=1 10

# Jobs done and failed show in STATUS= within a few seconds.
for i in 1 2 3 4 5; do
    out=$(gm -f Test::Notify::ok -s) || fail "job $i failed"
    assert_eq "job $i" ok "$out"
done
gm -f Test::Notify::fail -s >/dev/null 2>&1
want="STATUS=serving; processes 3, busy 0, pools 1; jobs done 5, failed 1; generation 1"
wait_for "$want" 10 has_line "$want"
has_re '^STATUS=(starting|serving); processes [0-9]+, busy [0-9]+, pools 1; jobs done [0-9]+, failed [0-9]+; generation 1$' ||
    fail "STATUS= lines do not have the form expected: $(grep STATUS "$OUT" | head -3)"
bad=$(grep -vxE 'READY=1|WATCHDOG=1|STOPPING=1|STATUS=(starting|serving|stopping); processes [0-9]+, busy [0-9]+, pools 1; jobs done [0-9]+, failed [0-9]+; generation 1' "$OUT")
assert_eq "lines of no known form" "" "$bad"
assert_eq "READY=1 sent" 1 "$(count READY=1)"

# SIGTERM: STOPPING=1, then gdlua exits 0.
record_children
kill -TERM "$GDLUA_PID"
wait_gdlua 20
assert_eq "exit status after SIGTERM" 0 "$GDLUA_STATUS"
wait_for "STOPPING=1" 5 has_line STOPPING=1
assert_eq "READY=1 sent, in all" 1 "$(count READY=1)"

pass
