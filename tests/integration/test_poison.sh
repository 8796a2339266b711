#!/bin/bash
# Poison jobs: a job that kills every process taking it (a segfault, an
# os.exit) is requeued by gearmand to the next process, for ever. gdlua
# counts its deaths per handle in shared memory; after --max_attempts
# (default 3) the next process fails it to its client at once, with the
# count and the reason, and the pool serves on.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"
# In a sanitizer build the segfault must stay a SIGSEGV (ASan would catch
# it, report it and exit 1): it is what this test is about.
export ASAN_OPTIONS="$ASAN_OPTIONS:handle_segv=0"

start_gearmand
start_console_gdlua "$FIXTURES/poison"
wait_for "a worker for Test::Poison::segv" 10 has_workers Test::Poison::segv
wait_for "a worker for Test::Poison::ok" 10 has_workers Test::Poison::ok

# A foreground client gets the failure, with the deaths and the reason.
timeout 30 "$GDLUA" call Test::Poison::segv --server "127.0.0.1:$PORT" <<<"x" >"$TMP/segv.out" 2>"$TMP/segv.err"
rc=$?
assert_eq "segv call: exit status ($(cat "$TMP/segv.err"))" 1 "$rc"
assert_eq "segv call: stderr" \
    "gdlua call: Test::Poison::segv: job killed its process 3 times (last: signal 11); not run again" \
    "$(cat "$TMP/segv.err")"
assert_eq "segv: deaths logged" 3 "$(log_count_re 'Test::Poison::segv killed by signal 11 ')"

# The same for a process that exits; --max_attempts counts exits too.
timeout 30 "$GDLUA" call Test::Poison::exit --server "127.0.0.1:$PORT" <<<"x" >"$TMP/exit.out" 2>"$TMP/exit.err"
rc=$?
assert_eq "exit call: exit status ($(cat "$TMP/exit.err"))" 1 "$rc"
assert_eq "exit call: stderr" \
    "gdlua call: Test::Poison::exit: job killed its process 3 times (last: exit status 3); not run again" \
    "$(cat "$TMP/exit.err")"

# A pool's own max_attempts wins over --max_attempts.
timeout 30 "$GDLUA" call Test::Poison::once --server "127.0.0.1:$PORT" <<<"x" >"$TMP/once.out" 2>"$TMP/once.err"
assert_eq "once call: stderr" \
    "gdlua call: Test::Poison::once: job killed its process 1 times (last: exit status 4); not run again" \
    "$(cat "$TMP/once.err")"

# Both pools serve on; the healthy job was never disturbed.
wait_for "a worker for Test::Poison::segv again" 10 has_workers Test::Poison::segv
assert_eq "healthy job" "ok y" "$(gm -f Test::Poison::ok y)"
# This master's starts only: one the console helper stopped (its port was
# taken) shares the log.
assert_eq "starts of the healthy pool" 1 "$(log_count_re "\\[$GDLUA_PID\\] start [0-9]+ Test::Poison::ok:")"

# The console counts them (stats: POISONED) and json lists the handles.
poisoned_of() {
    cons_one stats | awk -v j="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "POISONED") c = i } $1 == j { print $c }'
}
# The process that fails a poison job publishes it after answering the
# client: wait until each is counted.
poisoned_is() {
    [[ $(poisoned_of "$1") == "$2" ]]
}
for j in segv exit once; do
    wait_for "stats POISONED $j 1" 10 poisoned_is "Test::Poison::$j" 1
done
assert_eq "stats POISONED ok" 0 "$(poisoned_of Test::Poison::ok)"
cons_one json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
by_handle = [a for a in doc["attempts"] if a["handle"].startswith("H:")]
by_unique = [a for a in doc["attempts"] if a["handle"].startswith("U:")]
reasons = sorted((a["deaths"], a["reason"]) for a in by_handle)
assert reasons == [(1, "exit status 4"), (3, "exit status 3"), (3, "signal 11")], reasons
# libgearman gives every job a unique id: each is counted under it too.
assert sorted((a["deaths"], a["reason"]) for a in by_unique) == reasons, doc["attempts"]
' || fail "json attempts: $(cons_one json)"
# A unique id the client chose: the job submitted again under it (a new
# handle) is failed at once, with no more deaths.
deaths_before=$(log_count_re 'Test::Poison::segv killed by signal 11 ')
for round in 1 2; do
    timeout 30 "$GDLUA" call Test::Poison::segv --unique my-poison --server "127.0.0.1:$PORT" <<<"x" \
        >"$TMP/u.out" 2>"$TMP/u.err"
    assert_eq "unique, round $round: stderr" \
        "gdlua call: Test::Poison::segv: job killed its process 3 times (last: signal 11); not run again" \
        "$(cat "$TMP/u.err")"
done
assert_eq "deaths for the job under its unique id" $((deaths_before + 3)) \
    "$(log_count_re 'Test::Poison::segv killed by signal 11 ')"

pass
