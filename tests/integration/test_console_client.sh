#!/bin/bash
# gdlua-console against two gdlua instances: each reply line prefixed with
# host:port, pipes through the shell, exit status for scripts.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
start_console_gdlua "$FIXTURES/console"
FIRST=$CONSOLE_PORT
for attempt in 1 2 3 4 5; do
    SECOND_PORT=$(free_port)
    "$GDLUA" --server "127.0.0.1:$PORT" --console_port "$SECOND_PORT" --logfile "$TMP/gdlua2.log" \
        "$FIXTURES/console" </dev/null >>"$GDLUA_OUT" 2>&1 &
    SECOND=$!
    EXTRA_PIDS+=("$SECOND")
    await_console "$SECOND" "$SECOND_PORT" "$TMP/gdlua2.log" && break
    kill_wait "$SECOND" 10
    SECOND=
done
[[ -n $SECOND ]] || fail "could not start the second gdlua's console on a free port"

client() { "$GDLUA_CONSOLE" --server "127.0.0.1:$FIRST" --server "127.0.0.1:$SECOND_PORT" "$@"; }

out=$(client -c status) || fail "status through the client failed"
for p in "$FIRST" "$SECOND_PORT"; do
    assert_eq "lines from $p" 3 "$(grep -c "^127.0.0.1:$p> " <<<"$out")"
    grep -q "^127.0.0.1:$p> Con::Jobs::a          1   2  " <<<"$out" || fail "status row from $p: $out"
    grep -qx "127.0.0.1:$p> \\." <<<"$out" || fail "no closing line from $p"
done

# An ERR answer makes the exit status non-zero.
client -c "show nope" >"$TMP/out" && fail "show nope exited 0"
assert_eq "ERR lines" 2 "$(grep -c '> ERR invalid_job_name: nope$' "$TMP/out")"

# cmd | shell-command
out=$(client -c "status | grep -c long_name") || fail "pipe failed"
assert_eq "piped" 2 "$out"

# Commands on a non-terminal stdin, as a script.
out=$(printf 'version\nset_processes Con::Jobs::long_name 1 2\nquit\nstatus\n' | client) || fail "script failed"
assert_eq "script: version lines" 2 "$(grep -c '> gdlua ' <<<"$out")"
assert_eq "script: OK lines" 2 "$(grep -c '> OK$' <<<"$out")"
assert_eq "script stops at quit" 0 "$(grep -c 'Con::Jobs::a ' <<<"$out")"

# A server that is not there: non-zero, the other still answers.
out=$("$GDLUA_CONSOLE" --server "127.0.0.1:$FIRST" --server "127.0.0.1:$(free_port)" -c version 2>&1) &&
    fail "an unreachable server did not fail the run"
assert_contains "the reachable one answered" "$out" "127.0.0.1:$FIRST> gdlua "
assert_contains "the unreachable one is named" "$out" "cannot connect"
"$GDLUA_CONSOLE" --bogus 2>/dev/null && fail "a bad option exited 0"
"$GDLUA_CONSOLE" --help | grep -q '^usage: gdlua-console' || fail "no usage"
kill_wait "$SECOND" 10
pass
