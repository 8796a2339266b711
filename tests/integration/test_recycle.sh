#!/bin/bash
# Recycling: a process past max_jobs (or over max_memory after a job) is
# replaced, never mid-job, and the replacement is started before the old
# process is stopped, so a pool with min_processes >= 1 is never empty.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua "$FIXTURES/recycle"
wait_for "a worker for Test::Recycle::pid" 10 has_workers Test::Recycle::pid
wait_for "a worker for Test::Recycle::grow" 10 has_workers Test::Recycle::grow

# Jobs one after another until three processes have served: every job
# answered; each process serves at least 3 (max_jobs), and a few more
# while its replacement gets ready; in runs (a process never comes back).
pids=()
for ((i = 1; i <= 200; i++)); do
    pid=$(gm -f Test::Recycle::pid x) || fail "job $i failed"
    [[ $pid =~ ^[0-9]+$ ]] || fail "job $i answered '$pid'"
    pids+=("$pid")
    (($(printf '%s\n' "${pids[@]}" | sort -u | wc -l) == 3)) && break
done
echo "pids: ${pids[*]}"
read -ra runs < <(printf '%s\n' "${pids[@]}" | uniq -c | awk '{print $1}' | tr '\n' ' ')
((${#runs[@]} == 3)) || fail "no third process after ${#pids[@]} jobs: ${pids[*]}"
assert_eq "runs = distinct processes (none came back)" "${#runs[@]}" "$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)"
for r in "${runs[@]:0:${#runs[@]}-1}"; do
    ((r >= 3)) || fail "a process was replaced after $r jobs, before max_jobs 3: ${pids[*]}"
done

# The first process was stopped only after its replacement had started.
wait_for "process ${pids[0]} stopped as recycled" 10 log_has "stop ${pids[0]} Test::Recycle::pid: recycled"
stop_line=$(grep -nF "stop ${pids[0]} Test::Recycle::pid: recycled" "$GDLUA_LOG" | head -1 | cut -d: -f1)
second_start=$(grep -nE "\] start [0-9]+ Test::Recycle::pid: " "$GDLUA_LOG" | sed -n 2p | cut -d: -f1)
[[ -n $second_start ]] && ((second_start < stop_line)) ||
    fail "the replacement (log line ${second_start:-none}) did not start before the stop (line $stop_line)"
assert_eq "crash back-offs" 0 "$(log_count "died young")"

# max_memory: 16 MiB kept per job; past 40 MiB the process is replaced.
first=$(gm -f Test::Recycle::grow x) || fail "grow failed"
changed=
for ((i = 2; i <= 40; i++)); do
    p=$(gm -f Test::Recycle::grow x) || fail "grow $i failed"
    [[ $p != "$first" ]] && { changed=$i; break; }
done
[[ -n $changed ]] || fail "the growing process was never replaced"
log_has_re "Test::Recycle::grow: RSS [0-9]+ MiB is over max_memory 40 MiB; to be replaced" ||
    fail "no max_memory line"
pass
