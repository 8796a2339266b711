#!/bin/bash
# Job text (error messages carry workload data) is shown safely: control
# characters and invalid UTF-8 escaped as \xHH, cut at character
# boundaries, the console's framing and json intact, and no newline in a
# message can forge a log line.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
start_console_gdlua "$FIXTURES/jobtext"
wait_for "a worker for Test::Text::fail" 10 has_workers Test::Text::fail

# fail_with BYTES (printf format): the job fails with exactly these bytes.
# The process answers the client first and then publishes the job's
# counters and last error in its slot, so the console may not show the
# failure the moment the client has it: wait until it counts this one.
FAILS=0
fail_with() {
    printf "$1" | timeout 20 "$GDLUA" call Test::Text::fail --server "127.0.0.1:$PORT" >/dev/null 2>&1
    [[ $? == 1 ]] || fail "the job did not fail for: $1"
    FAILS=$((FAILS + 1))
    wait_for "the console to count failure $FAILS" 10 failed_is Test::Text::fail "$FAILS"
}
# last_message: the status line's message, after "ERROR: ".
last_message() {
    cons_one status | grep '^Test::Text::fail' | sed 's/.*  ERROR: //'
}

fail_with 'red \033[31malert\033[0m'
assert_eq "ANSI escapes" 'red \x1b[31malert\x1b[0m' "$(last_message)"
fail_with 'one\r\n.\r\ntwo'
assert_eq "CRLF and a dot line: the first line only" 'one\x0d' "$(last_message)"
fail_with 'bad \377\376 utf8 \303'
assert_eq "invalid UTF-8" 'bad \xff\xfe utf8 \xc3' "$(last_message)"

# 200 x "é" (400 bytes): cut at a character boundary to fit the 256 bytes
# kept (GDL_ERROR_MAX, NUL included): 127 "é", 254 bytes; and json stays
# valid. Counted in bytes (wc -c): bash's ${#msg} counts characters in a
# UTF-8 locale but bytes in the C one, and the caller's locale is either
# (gdlua itself never reads it).
fail_with "$(printf '\303\251%.0s' {1..200})"
msg=$(last_message)
bytes=$(printf '%s' "$msg" | wc -c)
assert_eq "bytes of the cut message ($msg)" 254 "$bytes"
[[ $msg =~ ^(é)+$ ]] || fail "cut mid-character: $msg"
cons_one json | python3 -c '
import json, sys
doc = json.loads(sys.stdin.buffer.read().decode("utf-8"))
job = next(j for j in doc["jobs"] if j["name"] == "Test::Text::fail")
assert set(job["last_error_message"]) == {"é"}, job["last_error_message"]
' || fail "json not valid after a long UTF-8 message"

# A message that tries to forge a log line stays inside its own entry.
fail_with 'x\n[2026-01-01T00:00:00.000] ERROR [1] forged'
wait_for "the forged text in the log" 10 log_has "forged"
assert_eq "log lines starting with the forged text" 0 \
    "$(grep -c '^\[2026-01-01T00:00:00.000\] ERROR \[1\] forged' "$GDLUA_LOG")"
log_has_re "$(printf '^\t\\[2026-01-01T00:00:00.000\\] ERROR \\[1\\] forged')" ||
    fail "the continuation line is not indented"
pass
