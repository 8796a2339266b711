#!/bin/bash
# --pidfile, started at the same instant: of three gdluas on one pidfile
# exactly one runs and the others exit 2 naming it, 10 times; of two
# with --daemonize one command exits 0 (its daemon serves) and the other
# 2, 10 times. Half the rounds start on a stale file naming a live pid.
source "$(dirname "$0")/lib.sh"

IDLE=$FIXTURES/pidfile
ROUNDS=10 # of three at once
PAIRS=10  # daemonized
cd "$TMP" || fail "cannot cd to $TMP"

# A daemon is not the test's child: one the test was stopped before it
# could record it (during a pair) is found by its pidfile.
stop_raced() {
    local p
    p=$(cat "$TMP/drace.pid" 2>/dev/null)
    if [[ $p =~ ^[0-9]+$ ]] && alive "$p" && is_gdlua_proc "$p"; then
        kill_wait "$p" 10
    fi
}
trap 'rc=$?; stop_raced; (exit $rc); cleanup' EXIT

pidfile_is() {
    [[ $(cat "$1" 2>/dev/null) == "$2" ]]
}

start_gearmand

# ---- starts at the same instant: exactly one runs -----------------------------------
# Three at once (the race's window is narrow: three make it likelier
# than two to open, as the code before the lock showed under load).
running() {
    local p n=0
    for p in "$@"; do
        dead "$p" || n=$((n + 1))
    done
    echo "$n"
}
for ((i = 0; i < ROUNDS; i++)); do
    ((i % 2)) && echo 1 >race.pid # a stale file, or none
    starts=()
    for s in a b c; do
        "$GDLUA" --server "127.0.0.1:$PORT" --console_port 0 --pidfile race.pid --logfile "$TMP/race.$s.log" \
            "$IDLE" </dev/null >"$TMP/race.$s.out" 2>&1 &
        starts+=($!)
    done
    EXTRA_PIDS=("${starts[@]}")
    wait_for "round $i: all but one start to give up" 20 eval '(($(running "${starts[@]}") <= 1))'
    winner=
    for s in 0 1 2; do
        p=${starts[s]}
        if ! dead "$p"; then
            winner=$p
            continue
        fi
        wait "$p"
        assert_eq "round $i: start $p's exit status" 2 "$?"
    done
    [[ -n $winner ]] || fail "round $i: no start is running"
    for s in a b c; do
        [[ $(cat "$TMP/race.$s.out") == "" ]] && continue
        assert_eq "round $i: a loser's message" \
            "gdlua: --pidfile race.pid: process $winner is running (is gdlua running already?)" \
            "$(cat "$TMP/race.$s.out")"
    done
    wait_for "round $i: the winner's pid in the pidfile" 10 pidfile_is race.pid "$winner"
    kill_wait "$winner" 10
    wait_for "round $i: the pidfile to be removed" 5 test ! -e race.pid
done
EXTRA_PIDS=()

# The same daemonized: the commands exit 0 (the daemon serves) and 2.
for ((i = 0; i < PAIRS; i++)); do
    ((i % 2)) && echo 1 >drace.pid
    "$GDLUA" --daemonize --server "127.0.0.1:$PORT" --console_port 0 --pidfile drace.pid \
        --logfile "$TMP/drace.a.log" "$IDLE" </dev/null >"$TMP/drace.a.out" 2>&1 &
    a=$!
    "$GDLUA" --daemonize --server "127.0.0.1:$PORT" --console_port 0 --pidfile drace.pid \
        --logfile "$TMP/drace.b.log" "$IDLE" </dev/null >"$TMP/drace.b.out" 2>&1 &
    b=$!
    wait "$a"
    ra=$?
    wait "$b"
    rb=$?
    daemon=$(cat drace.pid 2>/dev/null)
    GDLUA_PID=$daemon
    [[ $daemon =~ ^[0-9]+$ ]] && alive "$daemon" && is_gdlua_proc "$daemon" ||
        fail "daemonized pair $i: the pidfile names '$daemon', no running gdlua"
    case $ra$rb in
    02) out=$TMP/drace.b.out ;;
    20) out=$TMP/drace.a.out ;;
    *) fail "daemonized pair $i: exit statuses $ra and $rb, not 0 and 2" ;;
    esac
    assert_eq "daemonized pair $i: the loser's message" \
        "gdlua: --pidfile drace.pid: process $daemon is running (is gdlua running already?)" "$(cat "$out")"
    kill_wait "$daemon" 10
    GDLUA_PID=
    wait_for "daemonized pair $i: the pidfile to be removed" 5 test ! -e drace.pid
done

pass
