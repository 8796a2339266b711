#!/bin/bash
# A storm of deaths: kill -9 of a random child every 100 ms under a steady
# echo load. No job is lost (gearmand hands a dead child's job to
# another), and since every killed process had served jobs, none of the
# deaths feeds the crash-loop back-off: each is replaced at once, so the
# pool never waits at zero.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua "$FIXTURES/storm/serve"
wait_for "two echo workers" 10 has_workers Storm::Echo::echo 2

start_load Storm::Echo::echo
kills=0
while ((kills < 30)) && alive "$LOAD_PID"; do
    mapfile -t kids < <(children_of "$GDLUA_PID")
    if ((${#kids[@]} > 0)); then
        victim=${kids[RANDOM % ${#kids[@]}]}
        is_gdlua_proc "$victim" && kill -9 "$victim" 2>/dev/null && kills=$((kills + 1))
    fi
    sleep 0.1 # the storm's cadence, not a synchronisation
done
stop_load
echo "$kills kills; load client: $LOAD_RESULT"
[[ $LOAD_RESULT =~ ^ok\ [1-9][0-9]*$ ]] || fail "load client: $(cat "$TMP/load.out")"
assert_eq "kills made" 30 "$kills"
deaths=$(log_count_re "Storm::Echo::echo killed by signal 9 ")
((deaths >= 1)) || fail "no death logged"
assert_eq "back-offs for processes that had served" 0 "$(log_count "died young in a row")"
wait_for "the pool back at 2 processes" 10 has_workers Storm::Echo::echo 2
pass
