#!/bin/bash
# Restarts under a steady load lose nothing: SIGTERM of gdlua (in-flight
# jobs finish and are answered, gdlua exits 0), then SIGKILL of the next
# gdlua's master (its children stop after their job, PR_SET_PDEATHSIG),
# each followed by a new gdlua on the same directory. The load client
# checks every result; jobs sent while no gdlua runs wait in gearmand.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua "$FIXTURES/storm/serve"
wait_for "two echo workers" 10 has_workers Storm::Echo::echo 2
start_load Storm::Echo::echo
wait_for "the load to run" 10 load_checked 500

# 1. SIGTERM: a clean stop under load.
record_children
first=$GDLUA_PID
kill -TERM "$first"
wait_gdlua 30
assert_eq "exit status after SIGTERM under load" 0 "$GDLUA_STATUS"
for p in "${CHILD_PIDS[@]}"; do dead "$p" || fail "child $p of the stopped gdlua still runs"; done
alive "$LOAD_PID" || fail "the load client ended: $(cat "$TMP/load.out")"

# 2. A new gdlua serves the waiting jobs; then its master is SIGKILLed.
before=$(load_count)
start_gdlua "$FIXTURES/storm/serve"
wait_for "two echo workers again" 10 has_workers Storm::Echo::echo 2
wait_for "the load to go on" 10 load_checked $((before + 500))
record_children
mapfile -t kids < <(children_of "$GDLUA_PID")
((${#kids[@]} == 2)) || fail "expected 2 children, got ${#kids[@]}"
kill -KILL "$GDLUA_PID"
wait "$GDLUA_PID" 2>/dev/null
GDLUA_PID=
for p in "${kids[@]}"; do
    wait_for "child $p to stop after its master died" 10 dead "$p"
done

# 3. And another one: the load finishes with every result right.
before=$(load_count)
start_gdlua "$FIXTURES/storm/serve"
wait_for "two echo workers a third time" 10 has_workers Storm::Echo::echo 2
wait_for "the load to go on again" 10 load_checked $((before + 500))
assert_eq "a job through the third gdlua" "x" "$(gm -f Storm::Echo::echo x)"
stop_load
[[ $LOAD_RESULT =~ ^ok\ [1-9][0-9]*$ ]] || fail "load client: $(cat "$TMP/load.out")"
echo "load client: $LOAD_RESULT"
pass
