#!/bin/bash
# The console under bad input: 200 connections at once while jobs run,
# a line over 4 KiB, binary garbage, NUL bytes, a client that never
# reads, one that sends nothing (closed after 10 s), 512 idle ones (a new
# one closes the oldest), commands sent in one write with quit or a
# half-close after them (every reply written first). Each is answered or
# closed; the master keeps serving jobs and other consoles.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
start_console_gdlua "$FIXTURES/console"
wait_for "Con::Jobs::a has its process" 10 has_workers Con::Jobs::a

# Jobs keep running in the background throughout.
job_loop() {
    local i
    for ((i = 0; i < 40; i++)); do
        [[ $(gm -f Con::Jobs::a "job $i") == "job $i" ]] || return 1
    done
}
spawn_bg jobs job_loop

# A client that sends nothing, held open all along.
exec {silent}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"

# 200 connections at once, then a command on each.
fds=()
for ((i = 0; i < 200; i++)); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT" || fail "connection $i refused"
    fds+=("$fd")
done
for fd in "${fds[@]}"; do printf 'version\r\n' >&$fd; done
answered=0
for fd in "${fds[@]}"; do
    IFS= read -r -t 10 line <&$fd && [[ $line == "gdlua "* ]] && IFS= read -r -t 10 dot <&$fd &&
        [[ $dot == $'.\r' ]] && answered=$((answered + 1))
done
assert_eq "answers on 200 connections" 200 "$answered"
for fd in "${fds[@]}"; do exec {fd}>&-; done

# A line over 4 KiB: refused, connection closed.
exec {fd}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
head -c 5000 /dev/zero | tr '\0' 'x' >&$fd
printf '\r\n' >&$fd 2>/dev/null
reply=$(timeout 10 cat <&$fd | tr -d '\r')
exec {fd}>&-
assert_eq "oversized line" $'ERR line_too_long: at most 4096 bytes\n.' "$reply"

# Binary garbage: an unknown command, echoed printable and short.
exec {fd}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
printf '\x01\x02\xff\xfegarbage\x7f rest\r\nversion\r\n' >&$fd
IFS= read -r -t 10 line <&$fd
assert_eq "binary garbage" $'ERR unknown_command: ????garbage?\r' "$line"
IFS= read -r -t 10 line <&$fd
IFS= read -r -t 10 line <&$fd
[[ $line == "gdlua "* ]] || fail "the connection did not survive garbage: '$line'"
exec {fd}>&-

# A client that never reads: dropped once its replies pile up; the master
# goes on answering others meanwhile.
exec {greedy}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
flood() { local i; for ((i = 0; i < 20000; i++)); do printf 'help\r\n'; done >&$greedy 2>/dev/null; }
spawn_bg flooder flood
wait_for "the non-reading client is dropped" 30 log_has "console: dropping a client that does not read its replies"
exec {greedy}>&-

VERSION="gdlua $("$GDLUA" --version | cut -d' ' -f2)"
# raw [rawconn.py ARGS...] < LINES: the console's whole answer, \r kept.
raw() {
    python3 "$HERE/rawconn.py" "$CONSOLE_PORT" "$@"
}

# Commands and quit in one write (printf ... | nc): every reply is
# written before the connection closes, whether the client half-closes
# or keeps its side open.
out=$(printf 'status\r\nversion\r\nquit\r\n' | raw --keep-open | tr -d '\r')
assert_contains "status, version, quit in one write" "$out" "Con::Jobs::a "
assert_eq "version, then quit" "$(printf '%s\n.' "$VERSION")" "$(printf '%s\n' "$out" | tail -2)"
out=$(printf 'version\r\nquit\r\n' | raw | tr -d '\r')
assert_eq "version, quit, half-closed" "$(printf '%s\n.' "$VERSION")" "$out"
out=$(printf 'version\r\nversion\r\n' | raw | tr -d '\r')
assert_eq "two commands, then the client's end" "$(printf '%s\n.\n%s\n.' "$VERSION" "$VERSION")" "$out"
out=$(printf 'version\r\nversion' | raw | tr -d '\r')
assert_eq "a last line without its end" "$(printf '%s\n.\n%s\n.' "$VERSION" "$VERSION")" "$out"
out=$(printf 'quit\r\nversion\r\n' | raw | tr -d '\r')
assert_eq "nothing after quit" "" "$out"

# A NUL byte, at the start of a line or inside: an error, then the next
# command as usual.
out=$(printf '\0status\r\nsta\0tus\r\nversion\r\n' | raw | tr -d '\r')
assert_eq "NUL bytes" "$(printf 'ERR invalid_line: a NUL byte\n.\nERR invalid_line: a NUL byte\n.\n%s\n.' "$VERSION")" "$out"

# A connection that never sends a command is closed after 10 s (not the
# 5 minutes an idle one gets), so idle connections cannot hold the table.
closed_by_peer() { # FD: the connection was closed by gdlua
    local line
    IFS= read -r -t 0.2 line <&"$1"
    [[ $? == 1 ]] # EOF, not a timeout
}
wait_for "a silent connection closed" 30 closed_by_peer "$silent"
exec {silent}>&-

# The table full (512) of idle connections: a new one is served, and the
# oldest of those that never sent a command is closed for it, not one
# that did.
cat >"$TMP/full.py" <<'PY'
import socket, sys
# From 127.0.0.2: so many client ports (ephemeral ones)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)
port, version = int(sys.argv[1]), sys.argv[2].encode()

def reply(s):
    data = b""
    while not data.endswith(b".\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            return data + b"<EOF>"
        data += chunk
    return data

def closed(s):
    s.settimeout(0.5)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True

used = socket.create_connection(("127.0.0.1", port), source_address=SRC)
used.sendall(b"version\r\n")
assert reply(used) == version + b"\r\n.\r\n"
idle = [socket.create_connection(("127.0.0.1", port), source_address=SRC) for _ in range(511)]
# Every one accepted: a command on the last answers.
last = idle[-1]
last.sendall(b"version\r\n")
assert reply(last) == version + b"\r\n.\r\n", "the 512th connection"
new = socket.create_connection(("127.0.0.1", port), source_address=SRC)
new.sendall(b"version\r\n")
got = reply(new)
assert got == version + b"\r\n.\r\n", "the 513th connection got %r" % got
assert closed(idle[0]), "the oldest silent connection is still open"
assert not closed(idle[1]), "the second oldest was closed too"
used.sendall(b"version\r\n")
assert reply(used) == version + b"\r\n.\r\n", "the connection that had sent a command was closed"
print("ok")
PY
out=$(python3 "$TMP/full.py" "$CONSOLE_PORT" "$VERSION" 2>&1) || fail "a full table: $out"
assert_eq "a full table" ok "$out"

assert_eq "another console still answers" "$VERSION" "$(cons_one version)"
wait "$jobs" || fail "jobs failed while the console was abused"
assert_eq "jobs served meanwhile" "after" "$(gm -f Con::Jobs::a after)"
alive "$GDLUA_PID" || fail "gdlua died"
pass
