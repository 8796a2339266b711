#!/bin/bash
# Crash-loop back-off: a child that dies young again and again is
# replaced after growing delays, so only a handful are started, and the
# other jobs keep serving.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_gdlua --max_attempts 0 "$FIXTURES/crashloop" # the poison job must keep killing
wait_for "a worker for Test::Crash::die" 10 has_workers Test::Crash::die
wait_for "a worker for Test::Crash::ok" 10 has_workers Test::Crash::ok

gm -b -f Test::Crash::die -s >/dev/null 2>&1 || fail "cannot submit the background job"
wait_for "the first death" 5 log_has "Test::Crash::die exited with status 3 after "
wait_for "the back-off to reach 400 ms" 5 log_has "Test::Crash::die: 4 process(es) died young in a row; next start in 400 ms"
log_has "Test::Crash::die: 2 process(es) died young in a row; next start in 100 ms" || fail "no 100 ms back-off"
log_has "Test::Crash::die: 3 process(es) died young in a row; next start in 200 ms" || fail "no 200 ms back-off"

# Count over 3 s from the first death, by the log's own time stamps. The
# master writes every line counted here, in time order: once it has
# written one stamped past the window, the window is complete.
first=$(log_ms "Test::Crash::die exited with status 3 after ")
[[ -n $first ]] || fail "no time stamp on the first death"
end=$((first + 3000))
master_past() {
    log_with_ms | awk -v end="$end" -v pid="[$GDLUA_PID]" '$1 > end && $4 == pid { found = 1; exit }
                                                           END { exit !found }'
}
wait_for "a line of the master's stamped 3 s after the first death" 20 master_past
log_with_ms | awk -v end="$end" '$1 <= end' >"$TMP/window.log"
starts=$(GDLUA_LOG=$TMP/window.log starts_of Test::Crash::die)
deaths=$(grep -cF "Test::Crash::die exited with status 3 after " "$TMP/window.log")
echo "in 3 s from the first death: $starts starts, $deaths deaths of Test::Crash::die"
((starts >= 4)) || fail "only $starts starts: a dead child was not replaced"
((starts <= 10)) || fail "$starts starts within 3 s: no back-off"
((deaths >= starts - 1 && deaths <= starts)) || fail "$deaths deaths for $starts starts"
# Only the first death is replaced at once; each later one is followed by
# a back-off line (the last may be cut off by the window's end).
read -r backoffs replaced_at_once < <(awk '
    /Test::Crash::die exited with status 3 after / { pending = 1; next }
    /Test::Crash::die: job .* has killed [0-9]+ process/ { next }
    /Test::Crash::die: [0-9]+ process\(es\) died young in a row; next start in / { if (pending) b++; pending = 0; next }
    /Test::Crash::die/ { if (pending) now++; pending = 0 }
    END { print b + 0, now + 0 }' "$TMP/window.log")
assert_eq "deaths replaced without back-off" 1 "$replaced_at_once"
((backoffs >= deaths - 2)) || fail "only $backoffs back-offs for $deaths deaths"

# The healthy job is unaffected: one process, still serving.
out=$(gm -f Test::Crash::ok x) || fail "Test::Crash::ok failed during the crash loop"
assert_eq "healthy job result" "ok x" "$out"
assert_eq "starts of the healthy job" 1 "$(starts_of Test::Crash::ok)"
alive "$GDLUA_PID" || fail "the master died"

pass
