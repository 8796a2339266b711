#!/bin/bash
# Several job servers: jobs submitted to either are served; with one of
# them killed, the other's jobs keep flowing and gdlua stays up.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
PORT_A=$PORT
GEARMAND_A=$GEARMAND_PID
EXTRA_PIDS+=("$GEARMAND_A")
start_gearmand
PORT_B=$PORT
"$GDLUA" --server "127.0.0.1:$PORT_A,127.0.0.1:$PORT_B" --logfile "$GDLUA_LOG" --console_port 0 --interval 1 \
    "$FIXTURES/scale" </dev/null >>"$GDLUA_OUT" 2>&1 &
GDLUA_PID=$!

call() { timeout 20 gearman -h 127.0.0.1 -p "$1" -f Scale::Jobs::echo "$2"; }
assert_eq "served from A" "to A" "$(call "$PORT_A" "to A")"
assert_eq "served from B" "to B" "$(call "$PORT_B" "to B")"

kill -KILL "$GEARMAND_PID"
wait "$GEARMAND_PID" 2>/dev/null
GEARMAND_PID=
for i in 1 2 3 4 5; do
    assert_eq "A after B died ($i)" "A $i" "$(call "$PORT_A" "A $i")"
done
wait_for "the dead server is logged" 10 log_has "job server 127.0.0.1:$PORT_B:"
# Idle processes go away and come back from zero through A alone.
wait_for "back to no process" 15 no_children
assert_eq "A from zero with B down" "zero" "$(call "$PORT_A" "zero")"
alive "$GDLUA_PID" || fail "gdlua died"
pass
