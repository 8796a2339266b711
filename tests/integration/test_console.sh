#!/bin/bash
# The console's commands and replies, byte for byte: Gearman::Driver's
# formats (\r\n line ends, a "." closing each reply, its ERR strings),
# and the commands beyond it. Changes take effect at once.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
# No process is stopped for idling while the test runs (the default 10 s
# would stop Con::Jobs::a's first process, $pid below, once a second one
# started by set_min_processes idles).
start_console_gdlua --max_idle_time 3600 "$FIXTURES/console"
wait_for "Con::Jobs::a has its process" 10 has_workers Con::Jobs::a

# status before any job: names padded to the longest, numbers right-aligned
# to their column, never-times as 1970, two spaces between fields.
expected=$'Con::Jobs::a          1   2  1  1970-01-01T00:00:00  1970-01-01T00:00:00  \r\nCon::Jobs::long_name  0  12  0  1970-01-01T00:00:00  1970-01-01T00:00:00  \r\n.\r'
assert_eq "status" "$expected" "$(cons status)"

# A failing job: last run and last error set, first line of the message.
# The process answers the client first, then publishes the job's
# counters and last error in its slot: wait for the console to have it.
# The last run is the job's start, the last error its end: the same
# second, or a later one if the job crossed a second's boundary.
gm -f Con::Jobs::long_name fail >/dev/null 2>&1 && fail "the failing job succeeded"
error_shown() {
    cons_one status | grep '^Con::Jobs::long_name' | grep -q '  ERROR: '
}
wait_for "the console to show the failure" 10 error_shown
line=$(cons_one status | grep '^Con::Jobs::long_name')
[[ $line =~ ^Con::Jobs::long_name\ \ 0\ \ 12\ \ [01]\ \ ([0-9T:-]{19})\ \ ([0-9T:-]{19})\ \ ERROR:\ it\ failed$ ]] ||
    fail "status after a failure: '$line'"
[[ ${BASH_REMATCH[1]} != 1970-01-01T00:00:00 && ! ${BASH_REMATCH[2]} < "${BASH_REMATCH[1]}" ]] ||
    fail "last run / last error times: '$line'"

# show: the same fields unpadded, then one pid a line.
pid=$(worker_pids_for Con::Jobs::a)
expected=$'Con::Jobs::a  1  2  1  1970-01-01T00:00:00  1970-01-01T00:00:00  \r\n'"$pid"$'\r\n.\r'
assert_eq "show" "$expected" "$(cons 'show Con::Jobs::a')"

# Every error string.
check() { assert_eq "$1" "$2"$'\r\n.\r' "$(cons "$1")"; }
check "show nope" "ERR invalid_job_name: nope"
check "set_min_processes nope 1" "ERR invalid_job_name: nope"
# Gearman::Driver 0.02's replies, byte for byte (Con::Jobs::a is min 1,
# max 2): a value that is not all digits is "must be >= 0"; set_processes
# checks MIN's form, then MAX's, then their order.
for v in -1 ten x 1.5 +1 '' 0x1; do
    [[ -z $v ]] && continue
    check "set_min_processes Con::Jobs::a $v" "ERR invalid_value: min_processes must be >= 0"
    check "set_max_processes Con::Jobs::a $v" "ERR invalid_value: max_processes must be >= 0"
    check "set_processes Con::Jobs::a $v 2" "ERR invalid_value: min_processes must be >= 0"
    check "set_processes Con::Jobs::a 1 $v" "ERR invalid_value: max_processes must be >= 0"
done
check "set_processes Con::Jobs::a ten ten" "ERR invalid_value: min_processes must be >= 0"
check "set_processes Con::Jobs::a 5 ten" "ERR invalid_value: max_processes must be >= 0"
check "set_min_processes Con::Jobs::a 3" "ERR invalid_value: min_processes must be smaller than max_processes"
check "set_max_processes Con::Jobs::a 0" "ERR invalid_value: max_processes must be greater than min_processes"
check "set_processes Con::Jobs::a 3 2" "ERR invalid_value: max_processes must be greater than min_processes"
check "set_processes Con::Jobs::a 5 1" "ERR invalid_value: max_processes must be greater than min_processes"
# gdlua's own refusal: above the process limit (1024, as for attributes).
check "set_max_processes Con::Jobs::a 1025" "ERR invalid_value: max_processes must be <= 1024"
check "set_processes Con::Jobs::a 0 100000" "ERR invalid_value: max_processes must be <= 1024"
check "set_min_processes Con::Jobs::a 99999999999999999999" "ERR invalid_value: min_processes must be <= 1024"
# None of the refusals changed anything; equal values are accepted.
assert_eq "show after refusals" "Con::Jobs::a  1  2  1" "$(cons_one 'show Con::Jobs::a' | head -1 | cut -d' ' -f1-7)"
check "set_min_processes Con::Jobs::a 2" "OK"
check "set_max_processes Con::Jobs::a 2" "OK"
check "set_processes Con::Jobs::a 1 2" "OK"
check "kill 1" "ERR invalid_value: the given PID(s) do not belong to us"
check "kill $pid 1" "ERR invalid_value: the given PID(s) do not belong to us"
check "kill abc" "ERR invalid_value: the given PID(s) do not belong to us"
check "killall" "ERR invalid_value: no job_names given"
check "killall nope" "ERR invalid_job_name: nope"
check "frobnicate now" "ERR unknown_command: frobnicate"
check "show" "ERR missing_argument: usage: show JOB"
check "set_processes Con::Jobs::a 1" "ERR missing_argument: usage: set_processes JOB MIN MAX"
check "version 2" "ERR too_many_arguments: usage: version"
check "version" "gdlua $("$GDLUA" --version | cut -d' ' -f2)"
alive "$pid" || fail "a failed kill killed $pid"

# help comes from the command table: one line a command.
help=$(cons_one help)
for c in status show set_min_processes set_max_processes set_processes kill killall reload stats json version help auth quit shutdown; do
    grep -q "^$c\\b" <<<"$help" || fail "help lacks $c: $help"
done
assert_eq "help lines" 15 "$(wc -l <<<"$help")"
# The README's command list is this help, verbatim.
readme=$(awk '/^## Management console/ {on = 1} on && /^```$/ {n++; next} on && n == 1 {print}' "$REPO/README.md")
assert_eq "README's console commands" "$help" "$readme"

# set_processes starts processes now; show lists the new pids.
check "set_processes Con::Jobs::long_name 3 12" "OK"
wait_for "3 processes for long_name" 10 has_workers Con::Jobs::long_name 3
shown=$(cons_one 'show Con::Jobs::long_name' | tail -n +2 | sort -n | tr '\n' ' ')
real=$(worker_pids_for Con::Jobs::long_name | sort -n | tr '\n' ' ')
assert_eq "show lists the new pids" "$real" "$shown"
assert_eq "show lists 3 pids" 3 "$(wc -w <<<"$shown")"

# Lowering max stops idle surplus processes now.
check "set_processes Con::Jobs::long_name 0 1" "OK"
wait_for "down to 1 process" 10 bash -c "[[ \$(gearadmin -h 127.0.0.1 -p $PORT --workers | grep -c ':[0-9]* : Con::Jobs::long_name') == 1 ]]"
log_has_re "stop [0-9]+ Con::Jobs::long_name: above max 1" || fail "no 'above max' stop line"

# kill: the process stops and is replaced (min 1).
check "kill $pid" "OK"
wait_for "$pid replaced" 10 bash -c "p=\$(gearadmin -h 127.0.0.1 -p $PORT --workers | awk '/: Con::Jobs::a\$/ {n=split(\$3,a,\":\"); print a[n]}'); [[ -n \$p && \$p != $pid ]]"
dead "$pid" || wait_for "$pid gone" 10 dead "$pid"
# killall *: every process of every job is replaced.
before=$(worker_pids_for Con::Jobs::a)
check "killall *" "OK"
wait_for "killall replaced Con::Jobs::a" 10 bash -c "p=\$(gearadmin -h 127.0.0.1 -p $PORT --workers | awk '/: Con::Jobs::a\$/ {n=split(\$3,a,\":\"); print a[n]}'); [[ -n \$p && \$p != $before ]]"

# stats and json.
stats=$(cons_one stats)
# Every column but JOB is right-aligned to its widest cell: a value wider
# than its title (a P99_MS of 100 ms or more, on a loaded machine) puts
# more than two spaces before the title.
[[ $(head -1 <<<"$stats") =~ ^JOB\ +PROCESSES\ +BUSY\ +JOBS\ +DONE\ +FAILED\ +TIMEOUTS\ +POISONED\ +RETRIES\ +LIMITED\ +LASTRUN\ +LASTERROR\ +MEAN_MS\ +P99_MS$ ]] ||
    fail "stats header: $(head -1 <<<"$stats")"
[[ $(grep '^Con::Jobs::long_name' <<<"$stats") =~ ^Con::Jobs::long_name\ +[0-9]+\ +0\ +0/[0-9]+\ +0\ +1\  ]] ||
    fail "stats row: $stats"
json=$(cons_one json)
assert_contains "json" "$json" '"name":"Con::Jobs::long_name","min_processes":0,"max_processes":1,'
assert_contains "json" "$json" '"failed":1,'
assert_contains "json" "$json" '"last_error_message":"it failed"'
[[ $json == '{"version":"'*']}' ]] || fail "json document: $json"
# A busy process shows the handle of the job it runs (the job holds until
# the test has seen it).
spawn_bg slowpid gm -b -f Con::Jobs::long_name "hold $TMP/release"
busy_handle() {
    cons_one json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
job = next(j for j in doc["jobs"] if j["name"] == "Con::Jobs::long_name")
busy = [p for p in job["procs"] if p["state"] == "busy" and p["handle"].startswith("H:")]
sys.exit(0 if busy else 1)'
}
wait_for "json shows Con::Jobs::long_name busy with a handle" 15 busy_handle
: >"$TMP/release"
# The document parses, and each process of Con::Jobs::a shows its state.
python3 -c '
import json, sys
doc = json.loads(sys.argv[1])
job = next(j for j in doc["jobs"] if j["name"] == "Con::Jobs::a")
assert job["pids"] == [p["pid"] for p in job["procs"] if not p["stopping"]], job
assert job["stopping"] == sum(p["stopping"] for p in job["procs"]), job
assert all(p["state"] in ("starting", "idle", "busy", "recycle") for p in job["procs"]), job
assert job["processes"] == len(job["pids"]), job
assert all(p["for_ms"] >= 0 for p in job["procs"]), job
assert all(k in job for k in ("done", "failed", "busy_us", "last_run", "last_error")), job
' "$json" || fail "json: $json"

# quit answers nothing and closes.
assert_eq "quit" "" "$(cons quit)"
# shutdown answers nothing; gdlua exits 0.
assert_eq "shutdown" "" "$(cons shutdown)"
wait_gdlua 20
assert_eq "exit status after shutdown" 0 "$GDLUA_STATUS"
pass
