#!/bin/bash
# Out of descriptors (a master started with `ulimit -n 64`): console
# connections that each ran a command hold every descriptor. accept()
# failing is warned about once per listener, accepts are paused and
# tried again by a timer: the master does not spin (its CPU time stays
# low), serves the connections it has, and once descriptors are free
# again accepts the console's and HTTP's waiting connections.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
# listening: both ports answer (0), or gdlua gave one up (1): tests run
# in parallel, a port free at the pick may be taken by the bind.
listening() {
    if console_ready "$GDLUA_PID" "$CONSOLE_PORT" && http_ready "$GDLUA_PID" "$HTTP_PORT"; then
        return 0
    fi
    log_has "cannot listen on" && return 1
    return 2
}
for ((attempt = 0; attempt < 5; attempt++)); do
    CONSOLE_PORT=$(free_port)
    HTTP_PORT=$(free_port)
    (
        ulimit -n 64
        exec "$GDLUA" --server "127.0.0.1:$PORT" --logfile "$GDLUA_LOG" --console_port "$CONSOLE_PORT" \
            --http_bind "127.0.0.1:$HTTP_PORT" "$FIXTURES/console"
    ) </dev/null >>"$GDLUA_OUT" 2>&1 &
    GDLUA_PID=$!
    wait_for "the console and HTTP to answer, or a port given up" 10 eval 'listening; (($? < 2))'
    listening && break
    kill_wait "$GDLUA_PID" 10
    mv "$GDLUA_LOG" "$GDLUA_LOG.$attempt"
done
listening || fail "could not start gdlua on free ports"
wait_for "Con::Jobs::a has its process" 10 has_workers Con::Jobs::a
VERSION="gdlua $("$GDLUA" --version | cut -d' ' -f2)"

# The hog: 100 console connections, each sending "version"; those gdlua
# accepts answer and stay (a connection that has run a command idles 5
# minutes), the rest wait in the backlog. It reports how many were
# answered, then runs "status" on one of them when asked (a line on its
# stdin) and closes them all when stdin ends.
mkfifo "$TMP/hog.in"
cat >"$TMP/hog.py" <<'PY'
import select, socket, sys, time
# From 127.0.0.2: so many client ports (ephemeral, in free_port's range)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)

port = int(sys.argv[1])
conns = []
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", port), source_address=SRC)
    s.sendall(b"version\r\n")
    conns.append(s)
answered = []
deadline = time.time() + 20
while time.time() < deadline and len(answered) < 100:
    readable, _, _ = select.select([s for s in conns if s not in answered], [], [], 1)
    if not readable and answered:
        break
    for s in readable:
        data = s.recv(4096)
        if data.endswith(b".\r\n"):
            answered.append(s)
print("answered", len(answered), flush=True)
sys.stdin.readline()
s = answered[0]
s.sendall(b"status\r\n")
data = b""
while not data.endswith(b".\r\n"):
    data += s.recv(4096)
print(data.decode().splitlines()[0].split()[0], flush=True)
sys.stdin.read()
PY
python3 "$TMP/hog.py" "$CONSOLE_PORT" <"$TMP/hog.in" >"$TMP/hog.out" 2>&1 &
hog=$!
EXTRA_PIDS+=("$hog")
exec {hogin}>"$TMP/hog.in"
wait_for "the console out of descriptors" 20 log_has "console: cannot accept connections: Too many open files"
wait_for "the hog to count its answers" 20 grep -q '^answered' "$TMP/hog.out"
n=$(sed -n 's/^answered //p' "$TMP/hog.out")
((n > 10 && n < 64)) || fail "connections answered out of descriptors: $n"

# An HTTP request now waits in the backlog (it is answered later).
python3 "$HERE/rawconn.py" "$HTTP_PORT" --timeout 60 <<<$'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' \
    >"$TMP/waiting.http" {hogin}>&- & # the hog's stdin ends when this shell closes it
waiting=$!
EXTRA_PIDS+=("$waiting")
wait_for "HTTP out of descriptors" 20 log_has "http: cannot accept connections: Too many open files"

# Not spinning: over 2 s, the master uses under a tenth of a CPU (100
# ticks a second); a loop retrying accept() would use it all.
ticks() { awk '{ print $14 + $15 }' "/proc/$GDLUA_PID/stat"; }
t0=$(ticks)
hold_for "the master alive while out of descriptors" 2 alive "$GDLUA_PID"
t1=$(ticks)
(((t1 - t0) < 20)) || fail "the master used $((t1 - t0)) ticks in 2 s out of descriptors: spinning"
assert_eq "warned once" 1 "$(log_count "console: cannot accept connections")"
assert_eq "warned once (http)" 1 "$(log_count "http: cannot accept connections")"

# The connections it has are served meanwhile.
echo >&$hogin
wait_for "status on a held connection" 10 grep -q '^Con::Jobs::a$' "$TMP/hog.out"

# Descriptors free again: the waiting connections are accepted.
exec {hogin}>&-
wait "$hog"
wait_for "HTTP accepting again" 20 log_has "http: accepting connections again"
wait "$waiting" || fail "the waiting HTTP request: status $?"
assert_eq "the waiting HTTP request" "HTTP/1.1 200 OK" "$(head -1 "$TMP/waiting.http" | tr -d '\r')"
assert_eq "a new console connection" "$VERSION" "$(cons_one version)"
log_has "console: accepting connections again" || fail "no log line: console accepting again"
grep -q 'Error from accept' "$GDLUA_OUT" && fail "libevent's own accept warnings: $(grep -c 'Error from accept' "$GDLUA_OUT")"
alive "$GDLUA_PID" || fail "gdlua died"
pass
