#!/bin/bash
# The console at the master's end: a client waiting for a reload's answer
# when SIGTERM comes gets "ERR reload_failed: shutting down", and the
# reply to a line it sent after "reload", before the connection closes
# (the master closes its connections as it stops listening, at once: what
# they have queued is written first, not dropped); so do 511 others. With
# the 512 waiting, the table is full of connections that cannot be closed
# for a new one: the 513th is refused "ERR too_many_connections".
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

JOBS=$TMP/jobs
mkdir -p "$JOBS/Sd"
# A module whose load hangs while $TMP/hold exists: the first load
# passes, a reload started after the file is made waits.
cat >"$JOBS/Sd/Hold.lua" <<LUA
local gdlua = require "gdlua"
while true do
  local f = io.open("$TMP/hold")
  if not f then break end
  f:close()
end
local W = gdlua.worker()
W:job("echo", { min_processes = 1, max_processes = 1 }, function(self, job, workload)
  return workload
end)
return W
LUA

start_gearmand
start_console_gdlua "$JOBS"
wait_for "a worker for Sd::Hold::echo" 10 has_workers Sd::Hold::echo
VERSION="gdlua $("$GDLUA" --version | cut -d' ' -f2)"

touch "$TMP/hold"
printf 'reload\r\nversion\r\n' |
    python3 "$HERE/rawconn.py" "$CONSOLE_PORT" --keep-open >"$TMP/reload.out" &
client=$!
EXTRA_PIDS+=("$client")
wait_for "the reload's loader" 10 log_has "console: reload"
wait_for "a second loader" 10 eval '(($(loaders_of "$GDLUA_PID" | wc -l) == 2))'

# 511 more connections wait for the reload: the table is full of
# connections that cannot be closed for a new one, which is refused.
# Then SIGTERM: every waiting one is answered before it is closed.
cat >"$TMP/full.py" <<'PY'
import os, signal, socket, sys, time
# From 127.0.0.2: so many client ports (ephemeral ones)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)
port, pid, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def until_closed(s):
    data = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return data + b"<reset>"
        except socket.timeout:
            return data + b"<open>"
        if not chunk:
            return data
        data += chunk

waiting = []
for _ in range(511):
    s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=SRC)
    s.sendall(b"reload\r\n")
    waiting.append(s)
deadline = time.time() + 20
while open(log, "rb").read().count(b"console: reload\n") < 512:
    if time.time() > deadline:
        sys.exit("the 511 reloads were not all received")
    time.sleep(0.05)
new = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=SRC)
refused = until_closed(new)
os.kill(pid, signal.SIGTERM)
answers = {}
for s in waiting:
    got = until_closed(s)
    answers[got] = answers.get(got, 0) + 1
print("refused %r" % refused)
for got, n in sorted(answers.items()):
    print("%d %r" % (n, got))
PY
out=$(python3 "$TMP/full.py" "$CONSOLE_PORT" "$GDLUA_PID" "$GDLUA_LOG" 2>&1) || fail "a full table: $out"
assert_eq "a full table of waiting connections, then SIGTERM" \
    "$(printf '%s\n' "refused b'ERR too_many_connections\\r\\n.\\r\\n'" \
        "511 b'ERR reload_failed: shutting down\\r\\n.\\r\\n'")" "$out"
WAIT_ALLOW_EXIT=1 wait_for "gdlua to exit" 20 dead "$GDLUA_PID"
wait "$GDLUA_PID"
GDLUA_PID=
wait "$client" || fail "the waiting client: not closed cleanly (status $?): $(cat "$TMP/reload.out")"
rm -f "$TMP/hold"
assert_eq "the waiting client's answers" \
    "$(printf 'ERR reload_failed: shutting down\n.\n%s\n.' "$VERSION")" "$(tr -d '\r' <"$TMP/reload.out")"
pass
