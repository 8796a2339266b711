#!/bin/bash
# Delayed jobs: c:background(fn, workload, {at = EPOCH}) raises a clear
# error and submits nothing (gearmand 1.1.20 holds a SUBMIT_JOB_EPOCH job
# until its time but wakes no sleeping worker then: README, "Delayed
# jobs"), rather than running the job now.
source "$(dirname "$0")/lib.sh"

start_gearmand
(cd "$TMP" && timeout 30 "$GDLUA" run "$FIXTURES/delayed/at.lua" "$PORT") >"$TMP/at.out" 2>"$TMP/at.err" ||
    fail "at.lua failed: $(cat "$TMP/at.err")"
field() { sed -n "s/^$1=//p" "$TMP/at.out"; }
assert_eq "background with at" false "$(field at.ok)"
assert_contains "its error" "$(field at.err)" "gdlua.client: background: at (a delayed job) is not supported"
[[ $(field now.handle) =~ ^H: ]] || fail "background without at: '$(field now.handle)'"
# Only the job without at was submitted.
queued=$(gadmin --status | awk -F'\t' '$1 == "Test::Delayed::nobody" { print $2 }')
assert_eq "jobs queued for Test::Delayed::nobody" 1 "$queued"
pass
