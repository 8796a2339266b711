#!/bin/bash
# rate_limit: a pool's processes together start at most rate_limit jobs,
# evenly spaced, waiting before they ask gearmand for a job. 60 jobs for
# 3 processes limited to 20/s: the starts, by the log's own time stamps,
# are at most 20 in any second, plus one for the bucket and one per
# process (each may hold a start it reserved while idle); so they span
# at least (60 - 1 - 3) / 20 s = 2.8 s (2.7 s: the stamps are whole ms of
# the wall clock, the spacing is of the monotonic one). Bounds a slow machine cannot break.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_http_gdlua --loglevel debug "$FIXTURES/ratelimit"
wait_for "3 workers for Test::Rate::limited" 10 has_workers Test::Rate::limited 3
wait_for "a worker for Test::Rate::free" 10 has_workers Test::Rate::free

seq 1 60 | gm -b -n -f Test::Rate::limited >/dev/null || fail "cannot submit the jobs"
done_count() { log_count "Test::Rate::limited: job H:"; }
wait_for "60 starts of Test::Rate::limited" 30 eval '(($(done_count) >= 60))'
out=$(gm -f Test::Rate::free x) || fail "the unlimited job failed"
assert_eq "the unlimited job's result" x "$out"

log_with_ms | awk '/ DEBUG .*Test::Rate::limited: job H:/ { print $1 }' | sort -n >"$TMP/starts"
assert_eq "starts logged" 60 "$(wc -l <"$TMP/starts" | tr -d ' ')"
read -r most span < <(awk '{ t[NR] = $1 } END {
    j = 1; most = 0
    for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= 1000) j++; if (i - j + 1 > most) most = i - j + 1 }
    print most, t[NR] - t[1] }' "$TMP/starts")
echo "60 jobs at 20/s on 3 processes: at most $most starts in a second, first to last $span ms"
((most <= 24)) || fail "$most starts within one second (limit 20/s, bound 24)"
((span >= 2700)) || fail "60 starts within $span ms: faster than 20/s"

# Counted: the waits, per job.
waits=$(http_get /metrics | awk -F' ' '$1 == "gdlua_rate_limit_waits_total{job=\"Test::Rate::limited\"}" { print $2 }')
[[ $waits =~ ^[0-9]+$ ]] && ((waits >= 50)) || fail "gdlua_rate_limit_waits_total of the limited job: '$waits'"
assert_contains "the unlimited job waited never" "$(http_get /metrics)" \
    'gdlua_rate_limit_waits_total{job="Test::Rate::free"} 0'
pass
