#!/bin/bash
# Process titles: children show "gdlua: worker JOB" (or what a
# process_name hook returns), the master "gdlua: master DIR...".
source "$(dirname "$0")/lib.sh"

# title PID: the process's command line, NULs as spaces, trailing ones cut.
title() {
    tr '\0' ' ' <"/proc/$1/cmdline" | sed 's/ *$//'
}

start_gearmand
start_gdlua "$REPO/examples/jobs" "$FIXTURES/title"
wait_for "a worker for GDExamples::Fib::fib" 10 has_workers GDExamples::Fib::fib
wait_for "a worker for Test::Titled::named" 10 has_workers Test::Titled::named

fib=$(worker_pids_for GDExamples::Fib::fib | head -1)
[[ -n $fib ]] || fail "no child for GDExamples::Fib::fib"
t=$(title "$fib")
[[ $t == "gdlua: worker GDExamples::Fib::fib"* ]] || fail "title of the fib child $fib: '$t'"
assert_eq "title of the fib child" "gdlua: worker GDExamples::Fib::fib" "$t"
assert_eq "comm of the fib child" "worker GDExampl" "$(cat "/proc/$fib/comm")"

named=$(gm -f Test::Titled::named -s) || fail "Test::Titled::named failed"
[[ $named =~ ^[0-9]+$ ]] || fail "job returned '$named', not a pid"
assert_eq "title from the process_name hook" \
    "custom Test::Titled::named (from gdlua: worker)" "$(title "$named")"
assert_eq "comm from the process_name hook" "custom Test::Ti" "$(cat "/proc/$named/comm")"

check=$(timeout 20 "$GDLUA" --check "$FIXTURES/title" 2>/dev/null) || fail "--check failed: $check"
assert_eq "--check listing" \
    'Test::Titled::named min=1 max=1 functions=Test::Titled::named title="custom Test::Titled::named (from gdlua: worker)"' \
    "$check"

assert_eq "master title" "gdlua: master $REPO/examples/jobs $FIXTURES/title" "$(title "$GDLUA_PID")"

pass
