#!/bin/bash
# Results reach the client exactly: echo is byte-exact (binary, empty,
# large workloads), numbers print as integers, nil is an empty result, and
# the GDExamples fib module computes the right numbers.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_gdlua "$FIXTURES/results" "$REPO/examples/jobs"
for f in Test::Results::echo Test::Results::length Test::Results::big Test::Results::nothing \
    GDExamples::Fib::fib GDExamples::Fib::fib_lua; do
    wait_for "a worker for $f" 10 has_workers "$f"
done

# Plain text.
out=$(gm -f Test::Results::echo 'hello, world') || fail "echo job failed"
assert_eq "echo of text" "hello, world" "$out"

# Binary-ish: NUL, newline, high bytes, every byte value.
printf "$(printf '\\%03o' {0..255})" >"$TMP/allbytes"
printf 'a\0b\n\xff\r\n' >>"$TMP/allbytes"
assert_eq "fixture size" 263 "$(stat -c %s "$TMP/allbytes")"
gm -f Test::Results::echo <"$TMP/allbytes" >"$TMP/allbytes.out" || fail "echo of binary failed"
cmp "$TMP/allbytes" "$TMP/allbytes.out" >/dev/null ||
    fail "echo of binary differs: $(cmp "$TMP/allbytes" "$TMP/allbytes.out" 2>&1; od -c "$TMP/allbytes.out" | head -5)"

# A larger random workload.
head -c 200000 /dev/urandom >"$TMP/random"
gm -f Test::Results::echo <"$TMP/random" >"$TMP/random.out" || fail "echo of 200 kB failed"
cmp "$TMP/random" "$TMP/random.out" >/dev/null ||
    fail "echo of 200 kB differs ($(stat -c %s "$TMP/random.out") bytes back)"
out=$(gm -f Test::Results::length <"$TMP/random") || fail "length job failed"
assert_eq "length of 200 kB workload" 200000 "$out"

# Empty workload (the CLI cannot send '' as an argument; use stdin / -s).
out=$(gm -f Test::Results::length </dev/null) || fail "length of empty workload failed"
assert_eq "length of empty workload" 0 "$out"
gm -f Test::Results::echo -s >"$TMP/empty.out" || fail "echo of empty workload failed"
assert_eq "echo of empty workload: bytes back" 0 "$(stat -c %s "$TMP/empty.out")"

# Numbers.
out=$(gm -f Test::Results::big -s) || fail "big job failed"
assert_eq "2^40 as integer" 1099511627776 "$out"
out=$(gm -f Test::Results::fraction -s) || fail "fraction job failed"
assert_eq "0.5" 0.5 "$out"
out=$(gm -f Test::Results::yes -s) || fail "boolean job failed"
assert_eq "true" true "$out"

# nil: empty output, success.
gm -f Test::Results::nothing x >"$TMP/nil.out" 2>"$TMP/nil.err" || fail "nil job failed: $(cat "$TMP/nil.err")"
assert_eq "nil result: bytes back" 0 "$(stat -c %s "$TMP/nil.out")"

# GDExamples::Fib from examples/jobs.
out=$(gm -f GDExamples::Fib::fib 30) || fail "fib 30 failed"
assert_eq "fib 30" 1346269 "$out"
out=$(gm -f GDExamples::Fib::fib_lua 25) || fail "fib_lua 25 failed"
assert_eq "fib_lua 25" 121393 "$out"
out=$(gm -f GDExamples::Fib::fib 0) || fail "fib 0 failed"
assert_eq "fib 0" 1 "$out"
out=$(gm -f GDExamples::Fib::fib_lua 1) || fail "fib_lua 1 failed"
assert_eq "fib_lua 1" 1 "$out"
out=$(gm -f GDExamples::Fib::fib 2) || fail "fib 2 failed"
assert_eq "fib 2" 2 "$out"

# A bad workload fails the job; the client sees the module's message.
if gm -f GDExamples::Fib::fib 'x' >"$TMP/bad.out" 2>"$TMP/bad.err"; then
    fail "fib x succeeded: $(cat "$TMP/bad.out")"
fi
assert_contains "fib x: client stderr" "$(cat "$TMP/bad.err")" 'workload must be a whole number from 0 to 90, got "x"'

pass
