#!/bin/bash
# demo.sh: the examples end to end on a fresh Debian bookworm machine.
# Installs what is missing, builds gdlua, starts a private gearmand and
# gdlua on examples/jobs and examples/modules/jobs (loopback, free ports),
# runs both seed scenarios and the other examples, prints the results,
# and stops everything it started.
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
        for _ in $(seq 200); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.05; done
        kill -9 "${PIDS[i]}" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        port_open "$p" || { echo "$p"; return; }
    done
}
wait_until() { # SECONDS CMD...: poll CMD until it succeeds
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.05
    done
}
workers() { gearadmin -h 127.0.0.1 -p "$PORT" --workers | grep -c ":[0-9]* : $1\$" || true; }
workers_are() { [ "$(workers "$1")" = "$2" ]; } # FUNCTION N
console() { "$BUILD/gdlua-console" --server "127.0.0.1:$CPORT" -c "$1" | sed 's/^/  /'; }
run() { "$GDLUA" run "$@"; }
call() { "$GDLUA" call "$1" --server "127.0.0.1:$PORT"; }

for _ in 1 2 3 4 5; do
    PORT=$(free_port)
    /usr/sbin/gearmand -L 127.0.0.1 -p "$PORT" -t 0 --log-file="$TMP/gearmand.log" >/dev/null 2>&1 &
    GEARMAND=$!
    if wait_until 10 port_open "$PORT" && kill -0 $GEARMAND 2>/dev/null; then
        PIDS+=("$GEARMAND")
        break
    fi
    kill $GEARMAND 2>/dev/null || true
done
echo "gearmand on 127.0.0.1:$PORT"

CPORT=$(free_port)
"$GDLUA" --server "127.0.0.1:$PORT" --console_port "$CPORT" --logfile "$TMP/gdlua.log" \
    --cpath "$BUILD/examples/modules" "$ROOT/examples/jobs" "$ROOT/examples/modules/jobs" &
PIDS+=("$!")
wait_until 20 port_open "$CPORT" && wait_until 20 workers_are GDExamples::Fib::fib 1 || {
    echo "gdlua did not come up:"; cat "$TMP/gdlua.log"; exit 1; }
echo "gdlua up (console on 127.0.0.1:$CPORT):"
console status

echo
echo "jobs (gdlua call FUNCTION < workload):"
show() { printf '  %-30s %-14s -> %s\n' "$1" "$2" "$(printf '%s' "$2" | call "$1")"; }
show GDExamples::Fib::fib 30
show GDExamples::Fib::fib_lua 30
show GDExamples::Text::reverse "hello, gdlua"
show GDExamples::Text::upper "hello, gdlua"
show GDExamples::Stats::wc "a user's C module"
echo "  a failing job (the workload is not a number):"
printf 'abc' | call GDExamples::Fib::fib 2>&1 | sed 's/^/    /' || true

echo
echo "seed 1: image conversion, processes forked on demand (min 0, max 5):"
gearman -h 127.0.0.1 -p "$PORT" -f GDExamples::Convert::convert_to_jpeg <"$ROOT/examples/sample.png" >"$TMP/sample.jpg"
gearman -h 127.0.0.1 -p "$PORT" -f GDExamples::Convert::convert_to_gif <"$ROOT/examples/sample.png" >"$TMP/sample.gif"
run "$ROOT/examples/image_info.lua" "$ROOT/examples/sample.png" "$TMP/sample.jpg" "$TMP/sample.gif" |
    sed "s|$ROOT/||; s|$TMP/||; s/^/  /"
ps -o pid=,args= --ppid "${PIDS[1]}" | grep Convert | sed 's/^/  /' || true

echo
echo "seed 2: fib fan-out, fib(1..41) as one task set, summed (the seed: 66.9 s / 35.7 s on its laptops)."
echo "  GDExamples::Fib::fib_lua, the recursion in LuaJIT (gcc turns the C one into ~1 ms):"
for n in 1 2; do
    console "set_processes GDExamples::Fib::fib_lua $n $n" >/dev/null
    wait_until 20 workers_are GDExamples::Fib::fib_lua "$n"
    start=${EPOCHREALTIME//[!0-9]/}
    sum=$(run "$ROOT/examples/fib_sum.lua" --num 42 --function GDExamples::Fib::fib_lua --server "127.0.0.1:$PORT")
    ms=$(((${EPOCHREALTIME//[!0-9]/} - start) / 1000))
    printf '  %d worker process(es): sum %s in %d.%03d s\n' "$n" "$sum" $((ms / 1000)) $((ms % 1000))
done

echo
echo "concurrency: GDExamples::Fanout::fetch, one process holding up to 200 jobs, each an HTTP GET"
echo "  to a local test server answering after 100 ms:"
python3 "$ROOT/tests/lua/httpd.py" "$TMP/httpd.ports" $$ </dev/null >/dev/null 2>&1 &
PIDS+=("$!")
wait_until 20 test -s "$TMP/httpd.ports"
read -r HTTPD_PORT _ _ <"$TMP/httpd.ports"
wait_until 20 workers_are GDExamples::Fanout::fetch 1
for count in 200 1000; do
    start=${EPOCHREALTIME//[!0-9]/}
    out=$(run "$ROOT/examples/fanout.lua" --url "http://127.0.0.1:$HTTPD_PORT/delay?ms=100" --count "$count" \
        --server "127.0.0.1:$PORT")
    ms=$(((${EPOCHREALTIME//[!0-9]/} - start) / 1000))
    printf '  %s in %d.%03d s\n' "$out" $((ms / 1000)) $((ms % 1000))
done
ps -o pid=,args= --ppid "${PIDS[1]}" | grep Fanout | sed 's/^/  /' || true

echo
echo "console stats:"
console stats
echo
echo "gdlua log (last 15 lines):"
tail -n 15 "$TMP/gdlua.log" | sed 's/^/  /'
