#!/bin/bash
# Slow and many HTTP clients: a head trickled a byte at a time is closed
# at its deadline (10 s after the connection was accepted: bytes arriving
# do not extend it), and the master's descriptors come back; a client
# that does not read its replies is closed 30 s after they were queued;
# at the limit of 512 connections a new one is served by closing the
# oldest that has not sent a whole request, not one kept alive between
# requests.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_http_gdlua --loglevel debug "$FIXTURES/http"
wait_for "a worker for Web::Jobs::echo" 10 has_workers Web::Jobs::echo
fds() { ls "/proc/$GDLUA_PID/fd" | wc -l; }
before=$(fds)

# A client asking for the dashboard's library (131 KB) 100 times with a
# small receive buffer, reading nothing: its replies cannot be written
# (more than the kernel's socket buffers take: tcp_wmem is at most 4 MB).
# It runs meanwhile; its end is looked for last.
cat >"$TMP/nonreader.py" <<'PY'
import socket, sys
# From 127.0.0.2: so many client ports (ephemeral ones)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(SRC)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /dygraph.min.js HTTP/1.1\r\nHost: x\r\n\r\n" * 100)
print("sent", flush=True)
sys.stdin.read()
PY
mkfifo "$TMP/nonreader.in"
python3 "$TMP/nonreader.py" "$HTTP_PORT" <"$TMP/nonreader.in" >"$TMP/nonreader.out" &
EXTRA_PIDS+=($!)
exec {nonreader}>"$TMP/nonreader.in"
wait_for "the client not reading to send its requests" 10 grep -q sent "$TMP/nonreader.out"

# 50 connections each sending its head a byte every 0.3 s, which would
# take over a minute: each must be closed by gdlua while still sending.
cat >"$TMP/trickle.py" <<'PY'
import select, socket, sys, time
# From 127.0.0.2: so many client ports (ephemeral ones)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)

port = int(sys.argv[1])
head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 300 + b"\r\n\r\n"
conns = {socket.create_connection(("127.0.0.1", port), source_address=SRC): 0 for _ in range(50)}
closed = 0
while conns:
    for s in list(conns):
        readable, _, _ = select.select([s], [], [], 0)
        try:
            if readable and s.recv(4096) == b"":
                raise ConnectionResetError
            s.send(head[conns[s]:conns[s] + 1])
            conns[s] += 1
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
            del conns[s]
            continue
        if conns[s] == len(head):
            sys.exit("a trickled head was completed: nothing closed it")
    time.sleep(0.3)
print("closed", closed)
PY
out=$(python3 "$TMP/trickle.py" "$HTTP_PORT" 2>&1) || fail "trickled heads: $out"
assert_eq "trickled heads" "closed 50" "$out"
fds_back() { (($(fds) <= before)); }
wait_for "the master's descriptors back to $before, the reader's aside" 10 eval '(($(fds) <= before + 1))'
assert_eq "served after the trickle" 200 "$(http_status GET /metrics)"

# The table full: the client not reading, a connection kept alive after
# a request, then 510 that have sent part of a head. A new one is served:
# the oldest partial head is closed for it, the kept-alive one still
# serves.
cat >"$TMP/full.py" <<'PY'
import socket, sys
# From 127.0.0.2: so many client ports (ephemeral ones)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)

port, others = int(sys.argv[1]), int(sys.argv[2])
req = b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n"

def reply(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < n:
        body += s.recv(65536)
    return head.split(b"\r\n")[0]

def closed(s):
    s.settimeout(0.5)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True

kept = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=SRC)
kept.sendall(req)
assert reply(kept) == b"HTTP/1.1 200 OK"
partial = []
for i in range(511 - others):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=SRC)
    s.sendall(b"GET /metr")
    partial.append(s)
new = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=SRC)
new.sendall(req)
got = reply(new)
assert got == b"HTTP/1.1 200 OK", "the 513th connection: %r" % got
assert closed(partial[0]), "the oldest partial head is still open"
assert not closed(partial[1]), "the second oldest was closed too"
assert not closed(partial[-1]), "the newest partial head was closed"
kept.sendall(req)
assert reply(kept) == b"HTTP/1.1 200 OK", "the kept-alive connection was closed"
print("ok")
PY
out=$(python3 "$TMP/full.py" "$HTTP_PORT" 1 2>&1) || fail "a full table: $out"
assert_eq "a full table" ok "$out"
assert_eq "served after the full table" 200 "$(http_status GET /metrics)"

wait_for "the client not reading closed" 50 log_has "http: closing a connection that does not read its replies"
exec {nonreader}>&-
wait_for "the master's descriptors back to $before" 20 fds_back
pass
