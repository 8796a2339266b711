#!/bin/bash
# Descriptors. A master started with a soft limit of 256 and a hard one
# of 400 cannot hold both tables (512 + 512) and its own descriptors: it
# raises its soft limit to 400, lowers each cap to 136 (400 less 128 kept
# for itself, halved), says so, and its children get 256 back. With 300
# console and 300 HTTP connections held, it accepts a new connection of
# each (an idle one closed for it), a burst of 120 accepted at once (each
# evicting one, whose descriptor is closed at once), and loads a reload:
# it never runs out.
# Then its limit is lowered to 64 while it runs (prlimit): console
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
        ulimit -Sn 256 && ulimit -Hn 400 || exit 1
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
fds() { ls "/proc/$GDLUA_PID/fd" | wc -l; }
soft_limit() { awk '/^Max open files/ { print $4 }' "/proc/$1/limits"; }

# ---- the tables fit in the limit ----
assert_eq "the master's soft limit" 400 "$(soft_limit "$GDLUA_PID")"
assert_eq "a child's soft limit" 256 "$(soft_limit "$(worker_pids_for Con::Jobs::a | head -1)")"
for who in console http; do
    log_has "$who: at most 136 connections, not 512: the descriptor limit is 400 (ulimit -n), and 128 are kept" ||
        fail "no log line for $who's lowered cap"
done
cat >"$TMP/held.py" <<'PY'
import socket, sys
# From 127.0.0.2: so many client ports (ephemeral ones)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)
cport, hport = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(300):
    s = socket.create_connection(("127.0.0.1", cport), timeout=10, source_address=SRC)
    s.sendall(b"version\r\n")
    held.append(s)
for _ in range(300):
    s = socket.create_connection(("127.0.0.1", hport), timeout=10, source_address=SRC)
    s.sendall(b"GET /metr")
    held.append(s)
print("held", flush=True)
# A burst: 120 more console connections while the master is stopped
# (they wait in its backlog of 128), accepted in one go once it runs,
# each closing an idle one for it.
sys.stdin.readline()
for _ in range(120):
    s = socket.create_connection(("127.0.0.1", cport), timeout=10, source_address=SRC)
    s.sendall(b"version\r\n")
    held.append(s)
print("burst", flush=True)
sys.stdin.read()
PY
mkfifo "$TMP/held.in"
python3 "$TMP/held.py" "$CONSOLE_PORT" "$HTTP_PORT" <"$TMP/held.in" >"$TMP/held.out" 2>&1 &
EXTRA_PIDS+=($!)
exec {heldin}>"$TMP/held.in"
wait_for "600 connections held" 20 grep -q held "$TMP/held.out"
assert_eq "a new console connection" "$VERSION" "$(cons_one version)"
assert_contains "a reload while the tables are full" "$(cons_one reload)" "OK generation 2"
assert_eq "a new HTTP connection" 200 "$(http_status GET /metrics)"
# The burst: every connection it evicts gives its descriptor back at
# once, not when libevent finishes freeing it after the accepts.
kill -STOP "$GDLUA_PID"
echo burst >&$heldin
wait_for "120 connections waiting in the backlog" 20 grep -q burst "$TMP/held.out"
kill -CONT "$GDLUA_PID"
assert_eq "a new console connection after the burst" "$VERSION" "$(cons_one version)"
(($(fds) <= 400 - 64)) || fail "$(fds) descriptors open with the tables full"
grep -q 'Too many open files' "$GDLUA_LOG" "$GDLUA_OUT" &&
    fail "out of descriptors with the tables full: $(grep -h 'Too many open files' "$GDLUA_LOG" "$GDLUA_OUT" | head -3)"
exec {heldin}>&-
wait_for "the held connections closed" 20 eval '(($(fds) < 50))'

# ---- out of descriptors all the same ----
prlimit --pid "$GDLUA_PID" --nofile=64:400 || fail "prlimit failed"

# The hog: 100 console connections, each sending "version"; those gdlua
# accepts answer and stay (a connection that has run a command idles 5
# minutes), the rest wait in the backlog. It reports how many were
# answered, then runs "status" on one of them when asked (a line on its
# stdin) and closes them all when stdin ends.
mkfifo "$TMP/hog.in"
cat >"$TMP/hog.py" <<'PY'
import select, socket, sys, time
# From 127.0.0.2: so many client ports (ephemeral ones)
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
