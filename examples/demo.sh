#!/bin/bash
# demo.sh: the examples end to end on a fresh Debian bookworm machine.
# Installs what is missing, builds gdlua, starts a private gearmand and
# gdlua on examples/jobs (loopback, a free port), submits jobs, prints
# their results, and stops everything it started.
#   bash examples/demo.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(bash "$ROOT/cmake/bootstrap.sh")
GDLUA=$BUILD/gdlua
TMP=$(mktemp -d)
PIDS=()

cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.05; done
        kill -9 "${PIDS[i]}" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_until() { # SECONDS CMD...: poll CMD until it succeeds
    local end=$((SECONDS + $1)); shift
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.05
    done
}

for _ in $(seq 20); do
    PORT=$((20000 + RANDOM % 40000))
    port_free "$PORT" || continue
    /usr/sbin/gearmand -L 127.0.0.1 -p "$PORT" -t 0 --log-file="$TMP/gearmand.log" >/dev/null 2>&1 &
    GEARMAND=$!
    if wait_until 10 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && exit 1 || exit 0" &&
        kill -0 $GEARMAND 2>/dev/null; then
        PIDS+=("$GEARMAND")
        break
    fi
    kill $GEARMAND 2>/dev/null || true
done
echo "gearmand on 127.0.0.1:$PORT"

"$GDLUA" --server "127.0.0.1:$PORT" --logfile "$TMP/gdlua.log" "$ROOT/examples/jobs" &
PIDS+=("$!")
wait_until 20 bash -c "[ \"\$(gearadmin -h 127.0.0.1 -p $PORT --status | awk -F'\t' '\$1 == \"GDExamples::Fib::fib\" {print \$4}')\" = 1 ]" || {
    echo "gdlua did not come up:"; cat "$TMP/gdlua.log"; exit 1; }
echo "gdlua up:"
ps -o pid=,args= --ppid "${PIDS[1]}" | sed 's/^/  /'

call() { printf '  %-28s %-10s -> %s\n' "$1" "$2" "$(timeout 60 gearman -h 127.0.0.1 -p "$PORT" -f "$1" -- "$2")"; }
echo "jobs:"
call GDExamples::Fib::fib 30
call GDExamples::Fib::fib_lua 30
call GDExamples::Text::reverse "hello, gdlua"
call GDExamples::Text::upper "hello, gdlua"

echo "seed 2, fan-out: fib(1..24) as concurrent jobs, summed"
sum=0
clients=()
for n in $(seq 1 24); do
    timeout 60 gearman -h 127.0.0.1 -p "$PORT" -f GDExamples::Fib::fib -- "$n" > "$TMP/fib.$n" &
    clients+=("$!")
done
wait "${clients[@]}"
for n in $(seq 1 24); do sum=$((sum + $(cat "$TMP/fib.$n"))); done
echo "  sum = $sum"

echo "a failing job (the workload is not a number):"
timeout 60 gearman -h 127.0.0.1 -p "$PORT" -f GDExamples::Fib::fib -- "abc" 2>&1 | sed 's/^/  /' || true
echo "gearmand status:"
gearadmin -h 127.0.0.1 -p "$PORT" --status | sed 's/^/  /'
echo "gdlua log:"
sed 's/^/  /' "$TMP/gdlua.log"
