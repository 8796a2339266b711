#!/bin/bash
# concurrency: one process holds up to N jobs of its pool at once, each a
# task on its loop, and issue 9's guarantees hold per job. The jobs wait
# on a real HTTP server (tests/lua/httpd.py): its /barrier answers only
# once N requests wait at once, so a count that is reached proves that
# many jobs were in flight together in one process; the test itself
# makes the last request of a barrier when it wants held jobs released.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_httpd
URL=http://127.0.0.1:$HTTPD_PORT
start_gearmand
start_console_http_gdlua "$FIXTURES/concurrency"
for f in web slow once poison web2 quick; do
    wait_for "a worker for Conc::Jobs::$f" 10 has_workers "Conc::Jobs::$f"
done
main_pid=$(worker_pids_for Conc::Jobs::web)

# expect NAME RC TEXT: the client ended with RC and its output contains TEXT.
expect() {
    wait_for "client $1 to be answered" 30 gm_answered "$1"
    assert_eq "client $1: exit status ($(cat "$TMP/out.$1"))" "$2" "$(cat "$TMP/rc.$1")"
    assert_contains "client $1: output" "$(cat "$TMP/out.$1")" "$3"
}
# in_flight N: json says the main pool holds N jobs.
in_flight() {
    cons_one json | grep -qF '"name":"Conc::Jobs::main",' &&
        [[ $(cons_one json | grep -o '"name":"Conc::Jobs::main",[^]]*"jobs_in_flight":[0-9]*' | grep -o '[0-9]*$') == "$1" ]]
}
# release KEY N: the test's own request completes barrier KEY of N.
release() {
    assert_eq "barrier $1 released" "together $2" "$(curl -s --max-time 30 "$URL/barrier?n=$2&key=$1")"
}

# 20 jobs wait on the server at once in the one process of the pool.
for i in $(seq 20); do gm_submit a$i Conc::Jobs::web "$URL/barrier?n=20&key=a"; done
for i in $(seq 20); do expect a$i 0 "200 together 20"; done
assert_eq "processes of the main pool" "$main_pid" "$(worker_pids_for Conc::Jobs::web)"

# Jobs in hand are counted: json, stats and /metrics.
for i in $(seq 6); do gm_submit b$i Conc::Jobs::web "$URL/barrier?n=7&key=b"; done
wait_for "6 jobs in flight" 20 in_flight 6
json=$(cons_one json)
assert_contains "json" "$json" '"concurrency":30,"jobs_in_flight":6,"job_slots":30'
assert_contains "json: the process" "$json" "{\"pid\":$main_pid,\"state\":\"busy\","
assert_contains "json: its jobs" "$json" '"jobs":6,"concurrency":30,'
[[ $(cons_one stats | grep '^Conc::Jobs::main ') =~ ^Conc::Jobs::main\ +1\ +1\ +6/30\  ]] ||
    fail "stats row: $(cons_one stats)"
metrics=$(http_get /metrics)
assert_contains "metrics" "$metrics" 'gdlua_jobs_in_flight{job="Conc::Jobs::main"} 6'
assert_contains "metrics" "$metrics" 'gdlua_job_slots{job="Conc::Jobs::main"} 30'
release b 7
for i in $(seq 6); do expect b$i 0 "200 together 7"; done
wait_for "no job in flight" 20 in_flight 0

# A job past its timeout is failed alone, and one whose request fails
# alone: the jobs held beside them go on, in the same process.
for i in $(seq 4); do gm_submit c$i Conc::Jobs::web "$URL/barrier?n=5&key=c"; done
gm_submit hang Conc::Jobs::slow "$URL/hang"
gm_submit bad Conc::Jobs::web "$URL/status/503"
expect bad 1 "GET $URL/status/503: status 503"
expect hang 1 "job timed out after 1 s"
alive "$main_pid" || fail "the process died with its jobs"
# The two answered jobs leave the count once their process has published
# them (after their answers): the four barrier jobs are still held.
wait_for "the four barrier jobs alone in flight" 10 in_flight 4
release c 5
for i in $(seq 4); do expect c$i 0 "200 together 5"; done
assert_eq "processes of the main pool" "$main_pid" "$(worker_pids_for Conc::Jobs::web)"
assert_eq "starts of the main pool" 1 "$(starts_of Conc::Jobs::main)"

# A crash counts a death for every job the process held; gearmand hands
# them to the replacement, which answers them.
for i in $(seq 4); do gm_submit d$i Conc::Jobs::web "$URL/barrier?n=5&key=d"; done
wait_for "4 jobs in flight" 20 in_flight 4
gm_submit once Conc::Jobs::once "$TMP/once.flag"
wait_for "the crashing process to die" 20 dead "$main_pid"
expect once 0 "survived"
release d 5
for i in $(seq 4); do expect d$i 0 "200 together 5"; done
assert_eq "deaths counted, one per job held" 5 "$(log_count_re 'Conc::Jobs::main: job H:[^ ]+ has killed 1 process\(es\) \(exit status 3\)')"

# A poison job is still caught in a concurrent pool: it kills
# max_attempts processes, then the next fails it unrun.
gm_submit poison Conc::Jobs::poison x
expect poison 1 "job killed its process 2 times (last: exit status 4); not run again"

# Recycling waits for the jobs in hand: once it has taken max_jobs (2)
# the process asks to be replaced, and the master stops it once the
# replacement is ready; it exits once its held jobs are answered.
rec_pid=$(worker_pids_for Conc::Jobs::web2)
gm_submit e1 Conc::Jobs::web2 "$URL/barrier?n=3&key=e"
gm_submit e2 Conc::Jobs::web2 "$URL/barrier?n=3&key=e"
wait_for "the recycled process to be asked to stop" 20 log_has "[$rec_pid] Conc::Jobs::recycled: took 2 jobs (max_jobs); to be replaced"
wait_for "a replacement for the recycled pool" 20 eval "[[ \$(worker_pids_for Conc::Jobs::web2 | grep -vx $rec_pid) ]]"
wait_for "2 jobs held by the recycled process" 20 eval 'cons_one json | grep -qE "\{\"pid\":$rec_pid,[^}]*\"jobs\":2,"'
gm_submit q Conc::Jobs::quick 1
expect q 0 "quick 1"
alive "$rec_pid" || fail "the recycled process exited with jobs in hand"
release e 3
expect e1 0 "200 together 3"
expect e2 0 "200 together 3"
wait_for "the recycled process to exit" 20 dead "$rec_pid"

# The bound holds however many jobs wait: a process takes at most
# max_jobs + 1 (3) though its concurrency (10) has room for all 8; each
# one past its limit is replaced while it holds its jobs, so the 8 are
# held by 3 processes or more at once, none holding more than 3.
for i in $(seq 8); do gm_submit f$i Conc::Jobs::web2 "$URL/barrier?n=9&key=f"; done
recycled_jobs() { # the jobs each process of the recycled pool holds, one line per pid
    cons_one json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["jobs"]:
    if p["name"] == "Conc::Jobs::recycled":
        for w in p["procs"]:
            print(w["pid"], w["jobs"])'
}
held8() { (($(recycled_jobs | awk '{ n += $2 } END { print n + 0 }') == 8)); }
wait_for "8 jobs held by the recycled pool (now: $(recycled_jobs | paste -sd' '))" 30 held8
echo "jobs held per process: $(recycled_jobs | paste -sd' ')"
assert_eq "processes holding more than max_jobs + 1 jobs" "" "$(recycled_jobs | awk '$2 > 3' | paste -sd' ')"
release f 9
for i in $(seq 8); do expect f$i 0 "200 together 9"; done

# SIGTERM: every job in hand is finished and answered, then gdlua exits.
main_pid=$(worker_pids_for Conc::Jobs::web)
for i in $(seq 5); do gm_submit g$i Conc::Jobs::web "$URL/barrier?n=6&key=g"; done
wait_for "5 jobs in flight" 20 in_flight 5
kill -TERM "$GDLUA_PID"
wait_for "the main process to stop taking jobs" 20 log_has "[$main_pid] Conc::Jobs::main: taking no more jobs; finishing the 5 in hand"
alive "$main_pid" || fail "the process exited with jobs in hand"
release g 6
wait_gdlua 30
for i in $(seq 5); do WAIT_ALLOW_EXIT=1 expect g$i 0 "200 together 6"; done
assert_eq "gdlua's exit status" 0 "$GDLUA_STATUS"
pass
