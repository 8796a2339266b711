#!/bin/bash
# prefix "" gives bare function names; a prefix method sets its own.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_gdlua "$FIXTURES/prefix"
wait_for "a worker for bare_echo" 10 has_workers bare_echo
wait_for "a worker for custom.ping" 10 has_workers custom.ping

status=$(gadmin --status) || fail "gearadmin --status failed"
names=$(printf '%s\n' "$status" | awk -F'\t' 'NF >= 4 { print $1 }' | LC_ALL=C sort | paste -sd' ')
assert_eq "functions gearmand knows" "bare_echo custom.ping" "$names"
assert_eq "workers for bare_echo" 1 "$(workers_for bare_echo)"
assert_eq "workers for the prefixed name" 0 "$(workers_for Test::Prefix::bare_echo)"

out=$(gm -f bare_echo hi) || fail "bare_echo failed"
assert_eq "bare_echo result" "bare_echo:hi" "$out"
out=$(gm -f custom.ping -s) || fail "custom.ping failed"
assert_eq "custom.ping result" "pong custom.ping" "$out"

check=$(timeout 20 "$GDLUA" --check "$FIXTURES/prefix" 2>/dev/null) || fail "--check failed: $check"
assert_eq "--check listing" \
    'bare_echo min=1 max=1 functions=bare_echo title="gdlua: worker bare_echo"|custom.ping min=1 max=1 functions=custom.ping title="gdlua: worker custom.ping"' \
    "$(printf '%s\n' "$check" | LC_ALL=C sort | paste -sd'|')"

pass
