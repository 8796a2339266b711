#!/bin/bash
# --console_token: nothing but "auth TOKEN" before success; a wrong token
# closes the connection and pauses tries from its address (only its); a
# non-loopback console without a token is refused at start.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

printf 's3cret-token\n' >"$TMP/token"
start_gearmand
start_console_gdlua --console_token "$TMP/token" "$FIXTURES/console"

assert_eq "before auth" $'ERR auth_required: send auth TOKEN first\r\n.\r' "$(cons status)"
assert_eq "wrong token: answered, with the closing line" $'ERR invalid_token\r\n.\r' "$(cons 'auth nope' version)"
# Guesses are slowed: right after a wrong token every auth is refused for
# a second, the right one too; then the right one works again.
assert_eq "auth right after a wrong one" $'ERR auth_paused: a wrong token was given; try again in a second\r\n.\r' \
    "$(cons 'auth s3cret-token')"
right_token_works() { [[ $(cons 'auth s3cret-token' | head -1) == $'OK\r' ]]; }
wait_for "the pause after a wrong token to end" 10 right_token_works
log_has "console: a wrong token from 127.0.0.1; refusing its tries for 1000 ms" || fail "no log line for the wrong token"
# The pause is per address: a wrong token from 127.0.0.2 pauses 127.0.0.2
# (the right token refused from there), not 127.0.0.1. One process sends
# the three, back to back: well within the pause.
cat >"$TMP/per_address.py" <<'PY'
import socket, sys
port = int(sys.argv[1])

def auth(source, token):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.sendall(b"auth " + token + b"\r\n")
    data = b""
    while not data.endswith(b".\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode().replace("\r\n", "|")

print(auth("127.0.0.2", b"wrong"))
print(auth("127.0.0.1", b"s3cret-token"))
print(auth("127.0.0.2", b"s3cret-token"))
PY
out=$(python3 "$TMP/per_address.py" "$CONSOLE_PORT")
assert_eq "a wrong token from 127.0.0.2, then the right one from each address" \
    "$(printf '%s\n' 'ERR invalid_token|.|' 'OK|.|' 'ERR auth_paused: a wrong token was given; try again in a second|.|')" "$out"
log_has "console: a wrong token from 127.0.0.2; refusing its tries for 1000 ms" || fail "no log line for 127.0.0.2"

# A connection that does not authenticate, or leaves a line unfinished,
# is dropped (after 5 s), so idle connections cannot hold every slot.
closed_by_peer() { # FD: the connection was closed by gdlua
    local line
    IFS= read -r -t 0.2 line <&"$1"
    [[ $? == 1 ]] # EOF, not a timeout
}
exec {silent}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
wait_for "a silent unauthenticated connection dropped" 15 closed_by_peer "$silent"
exec {silent}>&-
exec {slow}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
printf 'auth s3cret-token\r\n' >&"$slow"
IFS= read -r -t 5 line <&"$slow"
assert_eq "slow client authenticated" $'OK\r' "$line"
IFS= read -r -t 5 line <&"$slow" # "."
printf 'sta' >&"$slow"
wait_for "a connection with a line left unfinished dropped" 15 closed_by_peer "$slow"
exec {slow}>&-
out=$(cons 'auth s3cret-token' version | tr -d '\r')
assert_eq "right token" $'OK\n.\ngdlua '"$("$GDLUA" --version | cut -d' ' -f2)"$'\n.' "$out"
"$GDLUA_CONSOLE" --server "127.0.0.1:$CONSOLE_PORT" --token "$TMP/token" -c status >"$TMP/out" ||
    fail "gdlua-console with the token failed: $(cat "$TMP/out")"
grep -q "^127.0.0.1:$CONSOLE_PORT> Con::Jobs::a " "$TMP/out" || fail "no status through the client: $(cat "$TMP/out")"
"$GDLUA_CONSOLE" --server "127.0.0.1:$CONSOLE_PORT" -c status >/dev/null 2>&1 &&
    fail "gdlua-console without the token succeeded"
kill_wait "$GDLUA_PID" 10
GDLUA_PID=

# Without a token, only a loopback address is allowed ...
out=$("$GDLUA" --check --console_bind 0.0.0.0 "$FIXTURES/console" 2>&1) # --check never listens
p=$(free_port)
out=$(timeout 20 "$GDLUA" --server "127.0.0.1:$PORT" --console_port "$p" --console_bind 0.0.0.0 "$FIXTURES/console" 2>&1)
rc=$?
[[ $rc != 0 && $rc != 124 ]] || fail "a console on 0.0.0.0 without a token was not refused (status $rc)"
assert_contains "refusal" "$out" "console: refusing to listen on 0.0.0.0 without --console_token (or --console_insecure)"
# ... and a token file that cannot be read is an error.
out=$(timeout 20 "$GDLUA" --server "127.0.0.1:$PORT" --console_port "$p" --console_token "$TMP/missing" "$FIXTURES/console" 2>&1)
rc=$?
[[ $rc != 0 && $rc != 124 ]] || fail "a missing token file was accepted"
assert_contains "missing token file" "$out" "cannot read token file $TMP/missing"
# A directory opens, but reading it fails: that is the cause given.
out=$(timeout 20 "$GDLUA" --server "127.0.0.1:$PORT" --console_port "$p" --console_token "$TMP" "$FIXTURES/console" 2>&1)
rc=$?
[[ $rc != 0 && $rc != 124 ]] || fail "a directory as the token file was accepted"
assert_contains "a directory as the token file" "$out" "console: cannot read token file $TMP: Is a directory"
pass
