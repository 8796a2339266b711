#!/bin/bash
# Recycling, and its bounds (README "Recycling"):
#   - max_jobs 3: a process takes at most 4 jobs (max_jobs + 1: one more
#     while its replacement starts), and exits after the 4th even when no
#     replacement comes: the master is stopped (SIGSTOP) so none can;
#   - past max_memory after a job, it takes no further job at all;
#   - many jobs, one at a time and in bursts over several processes:
#     counts per pid, none above the bound, every job answered, no
#     recycle taken for a crash.
# Stopping the master makes the races of the old design certain instead
# of rare: a process that served on until the master stopped it would
# serve every job sent meanwhile.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

F=Test::Recycle

# over_bound FILE BOUND: the pids in FILE (one answer a line) that
# answered more than BOUND jobs, with their counts.
over_bound() {
    sort "$1" | uniq -c | awk -v b="$2" '$1 > b { print $2 " (" $1 " jobs)" }'
}

# stopped PID: the process is stopped (SIGSTOP), not just sleeping.
stopped() {
    [[ $(ps -o stat= -p "$1" 2>/dev/null) == T* ]]
}

# rss_mib PID: the process's resident set in MiB.
rss_mib() {
    echo $(($(awk '{ print $2 }' "/proc/$1/statm") * $(getconf PAGESIZE) / 1048576))
}

# pending PID: a background client has not been answered yet.
pending() {
    alive "$1" && ! dead "$1"
}

start_gearmand
start_console_gdlua "$FIXTURES/recycle/jobs"
for f in pid pool hoard; do
    wait_for "a worker for $F::$f" 10 has_workers "$F::$f"
done
wait_for "two workers for $F::pool" 10 has_workers "$F::pool" 2

# ---- max_jobs + 1, with no replacement possible ---------------------------------
first=$(worker_pids_for $F::pid)
kill -STOP "$GDLUA_PID"
wait_for "the master to be stopped" 5 stopped "$GDLUA_PID"
for i in 1 2 3 4; do
    got=$(gm -f $F::pid x) || { kill -CONT "$GDLUA_PID"; fail "job $i failed"; }
    [[ $got == "$first" ]] || { kill -CONT "$GDLUA_PID"; fail "job $i answered by '$got', not $first"; }
done
# The 5th is not for it: it exits after its 4th, replacement or not.
spawn_bg fifth gm -f $F::pid x >"$TMP/fifth.out"
wait_for "process $first to exit after 4 jobs" 10 dead "$first"
pending "$fifth" || { kill -CONT "$GDLUA_PID"; fail "the 5th job was answered with the master stopped: $(cat "$TMP/fifth.out")"; }
kill -CONT "$GDLUA_PID"
wait_for "the 5th job's answer" 15 dead "$fifth"
got=$(cat "$TMP/fifth.out")
[[ $got =~ ^[0-9]+$ && $got != "$first" ]] || fail "the 5th job answered '$got' (the first process was $first)"
log_has "$F::pid: served 3 jobs (max_jobs); to be replaced" || fail "no max_jobs line"

# ---- max_memory: no job after the one that passed it ----------------------------
# The first job keeps the process 8 MiB under the limit, the second
# takes it 8 MiB past it.
hoarder=$(worker_pids_for $F::hoard)
base=$(rss_mib "$hoarder")
((base < 30)) || fail "process $hoarder starts with $base MiB of RSS: no room under max_memory 40"
assert_eq "hoard job 1 ($((32 - base)) MiB kept)" "$hoarder" "$(gm -f $F::hoard $((32 - base)))"
kill -STOP "$GDLUA_PID"
wait_for "the master to be stopped" 5 stopped "$GDLUA_PID"
got=$(gm -f $F::hoard 16) || { kill -CONT "$GDLUA_PID"; fail "hoard job 2 failed"; }
[[ $got == "$hoarder" ]] || { kill -CONT "$GDLUA_PID"; fail "hoard job 2 answered by '$got', not $hoarder"; }
spawn_bg third gm -f $F::hoard 1 >"$TMP/third.out"
wait_for "process $hoarder to exit once past max_memory" 10 dead "$hoarder"
pending "$third" || { kill -CONT "$GDLUA_PID"; fail "hoard job 3 was answered with the master stopped: $(cat "$TMP/third.out")"; }
kill -CONT "$GDLUA_PID"
wait_for "hoard job 3's answer" 15 dead "$third"
got=$(cat "$TMP/third.out")
[[ $got =~ ^[0-9]+$ && $got != "$hoarder" ]] || fail "hoard job 3 answered '$got' (the first process was $hoarder)"
log_has_re "$F::hoard: RSS [0-9]+ MiB is over max_memory 40 MiB; to be replaced" || fail "no max_memory line"

# ---- many jobs: the bound holds per pid ----------------------------------------
# One at a time, one process: each answers 3 or 4 jobs, never more (the
# first had answered the 5th job above, the last one is still serving:
# they may have fewer here).
seq 1 90 >"$TMP/lines"
gm -N -f $F::pid <"$TMP/lines" >"$TMP/seq.out" || fail "the sequential jobs failed"
assert_eq "sequential answers" 90 "$(grep -cE '^[0-9]+$' "$TMP/seq.out")"
over=$(over_bound <(cat "$TMP/fifth.out" "$TMP/seq.out") 4)
[[ -z $over ]] || fail "processes above max_jobs + 1 (sequential): $over"
short=$(grep -vxe "$(head -1 "$TMP/seq.out")" -e "$(tail -1 "$TMP/seq.out")" "$TMP/seq.out" | sort | uniq -c |
    awk '$1 < 3 { print $2 " (" $1 " jobs)" }')
[[ -z $short ]] || fail "processes replaced before max_jobs 3: $short"
echo "sequential: $(sort -u "$TMP/seq.out" | wc -l) processes for 90 jobs"

# In bursts of 12 over 2 to 4 processes.
"$GDLUA" run "$FIXTURES/recycle/burst.lua" "127.0.0.1:$PORT" $F::pool 300 12 >"$TMP/burst.out" 2>&1 ||
    fail "the burst client failed: $(tail -3 "$TMP/burst.out")"
assert_eq "burst answers" 300 "$(grep -cE '^[0-9]+$' "$TMP/burst.out")"
over=$(over_bound "$TMP/burst.out" 4)
[[ -z $over ]] || fail "processes above max_jobs + 1 (bursts): $over"
echo "bursts: $(sort -u "$TMP/burst.out" | wc -l) processes for 300 jobs," \
    "$(sort "$TMP/burst.out" | uniq -c | awk '$1 == 4' | wc -l) of them took the extra job"

# Recycles are neither crashes nor deaths, and the json counts them.
assert_eq "crash back-offs" 0 "$(log_count "died young")"
assert_eq "processes that died" 0 "$(log_count_re "\] process [0-9]+ .*(killed by|exited with status [1-9])")"
cons_one json | python3 -c '
import json, sys
jobs = {j["name"]: j for j in json.load(sys.stdin)["jobs"]}
for name in ("Test::Recycle::pid", "Test::Recycle::pool", "Test::Recycle::hoard"):
    r = jobs[name]["restarts"]
    assert r["crash"] == 0 and r["killed"] == 0 and r["recycle"] >= 1, (name, r)
' || fail "json restarts: $(cons_one json)"
pass
