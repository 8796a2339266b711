#!/bin/bash
# A burst of 20 slow jobs on a job with max_processes 5: exactly 5
# processes run (never more), every job completes, and after
# max_idle_time the job is back to min_processes (0).
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua --interval 1 "$FIXTURES/scale"
wait_for "the sentinel registers Scale::Jobs::slow" 10 bash -c "gearadmin -h 127.0.0.1 -p $PORT --workers | grep -q ':wake : .*Scale::Jobs::slow'"

slow_job() { [[ $(gm -f Scale::Jobs::slow 0.5) =~ ^[0-9]+$ ]]; }
clients=()
for i in $(seq 20); do
    spawn_bg pid slow_job
    clients+=("$pid")
done
# Sample the process count while the burst runs.
most=0
deadline=$(($(now_ms) + 30000))
while (($(now_ms) < deadline)); do
    n=$(children_of "$GDLUA_PID" | wc -l)
    ((n > most)) && most=$n
    running=0
    for c in "${clients[@]}"; do alive "$c" && running=$((running + 1)); done
    ((running == 0)) && break
    sleep 0.02
done
ok=0
for c in "${clients[@]}"; do
    wait "$c" && ok=$((ok + 1))
done
assert_eq "jobs completed" 20 "$ok"
assert_eq "most processes seen" 5 "$most"
(($(starts_of Scale::Jobs::slow) <= 5)) || fail "started $(starts_of Scale::Jobs::slow) processes for max 5"
wait_for "back to no process after max_idle_time" 10 no_children
assert_eq "stop lines" 5 "$(log_count_re '\] stop [0-9]+ Scale::Jobs::slow: idle')"
pass
