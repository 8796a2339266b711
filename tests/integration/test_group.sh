#!/bin/bash
# process_group: the functions of a group are served by the same process.
source "$(dirname "$0")/lib.sh"

check=$(timeout 20 "$GDLUA" --check "$FIXTURES/group" 2>/dev/null) || fail "--check failed: $check"
assert_eq "--check listing" \
    'Test::Group::g min=1 max=3 functions=Test::Group::a,Test::Group::b title="gdlua: worker Test::Group::g"|Test::Group::solo min=1 max=1 functions=Test::Group::solo title="gdlua: worker Test::Group::solo"' \
    "$(printf '%s\n' "$check" | paste -sd'|')"

start_gearmand
start_gdlua "$FIXTURES/group"
for f in Test::Group::a Test::Group::b Test::Group::solo; do
    wait_for "a worker for $f" 10 has_workers "$f"
done
assert_eq "workers for Test::Group::a" 1 "$(workers_for Test::Group::a)"
assert_eq "workers for Test::Group::b" 1 "$(workers_for Test::Group::b)"

pa=$(gm -f Test::Group::a -s) || fail "Test::Group::a failed"
pb=$(gm -f Test::Group::b -s) || fail "Test::Group::b failed"
ps_=$(gm -f Test::Group::solo -s) || fail "Test::Group::solo failed"
[[ $pa =~ ^[0-9]+$ ]] || fail "Test::Group::a returned '$pa', not a pid"
assert_eq "pid serving a and b" "$pa" "$pb"
[[ $pa != "$ps_" ]] || fail "the solo job ran in the group's process $pa"

kids=$(children_of "$GDLUA_PID" | LC_ALL=C sort -n | paste -sd' ')
assert_eq "children of the master (group + solo)" \
    "$(printf '%s\n' "$pa" "$ps_" | LC_ALL=C sort -n | paste -sd' ')" "$kids"
assert_eq "processes started" 2 "$(log_count "] start ")"
assert_eq "start lines for the group" 1 "$(starts_of Test::Group::g "$pa")"
assert_eq "start lines for the solo job" 1 "$(starts_of Test::Group::solo "$ps_")"

# gearmand sees one gdlua child, that pid, registered for both functions.
assert_eq "children registered for Test::Group::a" "$pa" "$(worker_pids_for Test::Group::a | paste -sd' ')"
assert_eq "children registered for Test::Group::b" "$pa" "$(worker_pids_for Test::Group::b | paste -sd' ')"
assert_eq "children registered for Test::Group::solo" "$ps_" "$(worker_pids_for Test::Group::solo | paste -sd' ')"

pass
