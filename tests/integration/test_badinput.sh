#!/bin/bash
# Bad input gets a clear message, loses nothing, and the process serves
# on: error() with a value that is not a message, a 64 MiB workload and
# result, an empty workload; invalid option values and script
# directories fail at start with a message and a non-zero exit.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua "$FIXTURES/badinput/serve"
wait_for "a worker for Test::Bad::raise" 10 has_workers Test::Bad::raise
wait_for "a worker for Test::Bad::echo" 10 has_workers Test::Bad::echo
raiser=$(worker_pids_for Test::Bad::raise)

call() { # FUNC WORKLOAD-FILE: sets RC, ERR; the result in $TMP/out
    timeout 60 "$GDLUA" call "$1" --server "127.0.0.1:$PORT" <"$2" >"$TMP/out" 2>"$TMP/err"
    RC=$?
    ERR=$(cat "$TMP/err")
}
for v in table nil; do
    printf '%s' "$v" >"$TMP/in"
    call Test::Bad::raise "$TMP/in"
    assert_eq "error($v): exit status" 1 "$RC"
    assert_eq "error($v): message" \
        "gdlua call: Test::Bad::raise: the job raised an error with a $v value, not a message (error($v)); raise a string" \
        "$ERR"
done
printf 'number' >"$TMP/in"
call Test::Bad::raise "$TMP/in"
[[ $ERR =~ ^gdlua\ call:\ Test::Bad::raise:\ .*Bad\.lua:[0-9]+:\ 42$ ]] || fail "error(42): message '$ERR'"
printf 'tostring' >"$TMP/in"
call Test::Bad::raise "$TMP/in"
assert_eq "error with __tostring: message" "gdlua call: Test::Bad::raise: custom" "$ERR"
assert_eq "the same process serves on" "$raiser" "$(worker_pids_for Test::Bad::raise)"

# An empty workload, and a 64 MiB one echoed back byte for byte.
: >"$TMP/empty"
call Test::Bad::echo "$TMP/empty"
assert_eq "empty workload: exit status ($ERR)" 0 "$RC"
assert_eq "empty workload: result bytes" 0 "$(stat -c %s "$TMP/out")"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$TMP/big"
call Test::Bad::echo "$TMP/big"
assert_eq "64 MiB workload: exit status ($ERR)" 0 "$RC"
cmp -s "$TMP/big" "$TMP/out" || fail "64 MiB workload: the result differs ($(stat -c %s "$TMP/out") bytes)"
rm -f "$TMP/big" "$TMP/out"
assert_eq "processes that died" 0 "$(log_count_re "\] process [0-9]+ .* (killed by|exited with)")"

# At start: each bad value named, exit 2; each bad directory named, exit 1.
start_fails() { # WANT-STATUS WANT-TEXT ARGS...
    local want=$1 text=$2 out rc
    shift 2
    out=$(timeout 20 "$GDLUA" --server "127.0.0.1:$PORT" --console_port 0 "$@" 2>&1)
    rc=$?
    assert_eq "gdlua $*: exit status" "$want" "$rc"
    assert_contains "gdlua $*: message" "$out" "$text"
}
start_fails 2 "gdlua: --interval: '-1' is not a whole number from 0 to 86400" --interval -1 "$FIXTURES/badinput/serve"
start_fails 2 "gdlua: --max_idle_time: 'abc' is not a whole number" --max_idle_time abc "$FIXTURES/badinput/serve"
start_fails 2 "gdlua: --console_port: '99999' is not a whole number from 0 to 65535" --console_port 99999 \
    "$FIXTURES/badinput/serve"
start_fails 2 "gdlua: --server: bad port 'notaport' for server host" --server host:notaport "$FIXTURES/badinput/serve"
start_fails 2 "gdlua: --timeout: 'nan' is not a number of seconds" --timeout nan "$FIXTURES/badinput/serve"
start_fails 1 "cannot read script directory $TMP/missing: No such file or directory" "$TMP/missing"
: >"$TMP/afile"
start_fails 1 "cannot read script directory $TMP/afile: Not a directory" "$TMP/afile"
pass
