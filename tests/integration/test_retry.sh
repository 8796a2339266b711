#!/bin/bash
# Retries: a failed job runs again in its process (the retries attribute,
# or error(gdlua.retry ...)) before it is failed to its client; the runs
# are counted in /metrics (gdlua_job_retries_total) and /status.json; the
# job's timeout bounds its runs and waits together; a process stopping
# while a job waits gives the job back to gearmand for another process.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_http_gdlua "$FIXTURES/retry"
for f in flaky always plain asks asks_forever slow_retry given_back; do
    wait_for "a worker for Test::Retry::$f" 10 has_workers "Test::Retry::$f"
done
runs() { [[ -f $1 ]] && wc -l <"$1" | tr -d ' ' || echo 0; }

# Two plain failures, then a success: the client sees only the result.
out=$(gm -f Test::Retry::flaky "$TMP/flaky 2") || fail "flaky failed: $out"
assert_eq "flaky's result" "ok after 3" "$out"
assert_eq "flaky's runs" 3 "$(runs "$TMP/flaky")"
assert_eq "flaky ran in one process" 1 "$(sort -u "$TMP/flaky" | wc -l)"
log_has_re "Test::Retry::flaky: job .* failed \(run 1\): .*flaky failure 1; running it again in [0-9]+ ms" ||
    fail "no retry line for flaky's first run"

# Retries run out: the last error, and how many runs, reach the client.
if gm -f Test::Retry::always "$TMP/always" >"$TMP/always.out" 2>"$TMP/always.err"; then
    fail "always succeeded: $(cat "$TMP/always.out")"
fi
assert_contains "always's failure" "$(cat "$TMP/always.err")" "always fails, run 3 (run 3 times: 2 retries)"
assert_eq "always's runs" 3 "$(runs "$TMP/always")"

# Without retries a plain error is not retried.
gm -f Test::Retry::plain "$TMP/plain" >/dev/null 2>&1 && fail "plain succeeded"
assert_eq "plain's runs" 1 "$(runs "$TMP/plain")"

# gdlua.retry without a retries attribute: granted (up to 3 by default).
out=$(gm -f Test::Retry::asks "$TMP/asks 2") || fail "asks failed: $out"
assert_eq "asks's result" "granted after 3" "$out"
gm -f Test::Retry::asks "$TMP/asks4 4" >/dev/null 2>"$TMP/asks4.err" && fail "asks 4 succeeded past 3 retries"
assert_contains "asks 4's failure" "$(cat "$TMP/asks4.err")" "not yet 4 (run 4 times: 3 retries)"
assert_eq "asks 4's runs" 4 "$(runs "$TMP/asks4")"
# ... and its own max.
gm -f Test::Retry::asks_forever "$TMP/forever" >/dev/null 2>"$TMP/forever.err" && fail "asks_forever succeeded"
assert_contains "asks_forever's failure" "$(cat "$TMP/forever.err")" "again (run 3 times: 2 retries)"
assert_eq "asks_forever's runs" 3 "$(runs "$TMP/forever")"

# The timeout covers the wait for a retry: the job fails as timed out.
gm -f Test::Retry::slow_retry "$TMP/slow" >/dev/null 2>"$TMP/slow.err" && fail "slow_retry succeeded"
assert_contains "slow_retry's failure" "$(cat "$TMP/slow.err")" \
    "job timed out after 1 s, waiting to run again after: "
assert_eq "slow_retry's runs" 1 "$(runs "$TMP/slow")"

# Counted: reruns per job in /metrics and /status.json (slow_retry never
# ran again: the timeout ended its wait). Waited for: the last two
# outcomes asserted below (the retries are counted before the answers).
for line in 'gdlua_jobs_total{job="Test::Retry::slow_retry",outcome="timeout"} 1' \
    'gdlua_jobs_total{job="Test::Retry::flaky",outcome="done"} 1'; do
    wait_for "/metrics: $line" 10 metric_is "$line"
done
metrics=$(http_get /metrics)
for pair in flaky:2 always:2 plain:0 asks:5 asks_forever:2 slow_retry:0; do
    assert_contains "gdlua_job_retries_total of ${pair%:*}" "$metrics" \
        "gdlua_job_retries_total{job=\"Test::Retry::${pair%:*}\"} ${pair#*:}"
done
assert_contains "slow_retry counted as a timeout" "$metrics" \
    'gdlua_jobs_total{job="Test::Retry::slow_retry",outcome="timeout"} 1'
assert_contains "flaky counted once, as done" "$metrics" 'gdlua_jobs_total{job="Test::Retry::flaky",outcome="done"} 1'
http_get /status.json | python3 -c '
import json, sys
d = {j["name"]: j for j in json.load(sys.stdin)["jobs"]}
assert d["Test::Retry::flaky"]["retries"] == 2, d["Test::Retry::flaky"]
' || fail "status.json has no retries count for flaky"

# Stopping a process whose job waits to run again gives the job back:
# another process runs it and the client gets its result.
first=$(worker_pids_for Test::Retry::given_back)
[[ $first =~ ^[0-9]+$ ]] || fail "no single process for given_back: $first"
spawn_bg client sh -c "timeout 30 gearman -h 127.0.0.1 -p $PORT -f Test::Retry::given_back '$TMP/back' >'$TMP/back.out' 2>&1"
wait_for "given_back's first run to fail" 10 log_has_re "Test::Retry::given_back: job .* failed \(run 1\)"
kill -TERM "$first"
wait_for "the client of given_back to end" 20 dead "$client"
wait "$client" || fail "given_back's client failed: $(cat "$TMP/back.out")"
out=$(cat "$TMP/back.out")
assert_contains "given_back's result" "$out" "second run in "
[[ $out != *"second run in $first"* ]] || fail "given_back ran again in the stopped process $first"
log_has "Test::Retry::given_back: job " || fail "no given_back line"
log_has "the process is stopping; giving the job back to the job server after 1 run(s)" ||
    fail "the stopping process did not say it gave the job back"
assert_eq "given_back's runs" 2 "$(runs "$TMP/back")"
alive "$GDLUA_PID" || fail "the master died"

pass
