#!/bin/bash
# /metrics in Prometheus' text format, checked by promtool, and its values
# against known traffic: N jobs done, failures, a timeout, a poison job,
# the restarts they and a kill and a recycling caused, the duration
# histogram, processes, the server; /status.json is the console's json;
# README's list of metrics is the endpoint's.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

N=7
start_gearmand
start_console_http_gdlua "$FIXTURES/http"
for f in echo fail slow say crash recycle; do
    wait_for "a worker for Web::Jobs::$f" 10 has_workers "Web::Jobs::$f"
done

# Each outcome is waited for before the test goes on (metric_is): the
# echo process is killed below, and an outcome not yet published would
# be lost with it.
for ((i = 0; i < N; i++)); do
    assert_eq "echo $i" "hi $i" "$(gm -f Web::Jobs::echo "hi $i")"
done
wait_for "echo's $N jobs counted" 10 metric_is "gdlua_jobs_total{job=\"Web::Jobs::echo\",outcome=\"done\"} $N"
for i in 1 2; do
    gm -f Web::Jobs::fail "x" >/dev/null 2>&1 && fail "the failing job succeeded"
done
wait_for "fail's 2 failures counted" 10 metric_is 'gdlua_jobs_total{job="Web::Jobs::fail",outcome="failed"} 2'
slow_pid=$(worker_pids_for Web::Jobs::slow)
gm -f Web::Jobs::slow "x" >/dev/null 2>&1 && fail "the slow job succeeded"
wait_for "the timed-out process $slow_pid to exit" 10 dead "$slow_pid"
wait_for "a new worker for Web::Jobs::slow" 10 has_workers Web::Jobs::slow
# The crashing job kills 3 processes, the fourth fails it unrun.
gm -f Web::Jobs::crash "x" >/dev/null 2>&1 && fail "the crashing job succeeded"
wait_for "the poison job counted" 10 metric_is 'gdlua_jobs_total{job="Web::Jobs::crash",outcome="poisoned"} 1'
# An idle process killed from outside; one recycled after max_jobs 2.
echo_pid=$(worker_pids_for Web::Jobs::echo)
kill -KILL "$echo_pid"
for i in 1 2; do assert_eq "recycle $i" r "$(gm -f Web::Jobs::recycle x)"; done
restarts() {
    metric_is "gdlua_restarts_total{job=\"Web::Jobs::$1\",reason=\"$2\"} $3"
}
wait_for "the killed echo process counted" 10 restarts echo killed 1
wait_for "the recycled process counted" 10 restarts recycle recycle 1
wait_for "the crashes counted" 10 restarts crash crash 3
for f in echo crash recycle; do
    wait_for "a worker for Web::Jobs::$f again" 10 has_workers "Web::Jobs::$f"
done
# The queue gauges are the last poll's: one taken while a job waited
# (the poison job for its fourth process, a recycled job's second run
# for the process to grab it) still says 1 until the next poll. Every
# job has been answered, so the next poll finds every queue empty.
queues_empty() {
    local m
    m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics") || return 1
    grep -q '^gdlua_queued_jobs{' <<<"$m" && ! grep '^gdlua_queued_jobs{' <<<"$m" | grep -qv ' 0$'
}
wait_for "a poll that shows every queue empty" 10 queues_empty

# Prometheus' own linter: format, names, HELP and TYPE of every family.
metrics=$(http_get /metrics)
lint=$(promtool check metrics <<<"$metrics" 2>&1) || fail "promtool check metrics: $lint"
code=$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$HTTP_PORT/metrics")
assert_eq "Content-Type" "text/plain; version=0.0.4; charset=utf-8" "$code"

# The values: a small parser of the text format (no label value here has
# a comma or a brace).
cat >"$TMP/check_metrics.py" <<'PY'
import re, sys

n, version, port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
samples, types = {}, {}
for line in sys.stdin.read().splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        types[name] = kind
        continue
    if line.startswith("#") or not line:
        continue
    m = re.fullmatch(r'(\w+)(?:\{(.*)\})? (\S+)', line)
    assert m, line
    labels = tuple(sorted(tuple(kv.split("=", 1)) for kv in m.group(2).split(","))) if m.group(2) else ()
    labels = tuple((k, v.strip('"')) for k, v in labels)
    key = (m.group(1), labels)
    assert key not in samples, "duplicate " + line
    samples[key] = float(m.group(3))

def get(name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]

def expect(what, want, got):
    assert want == got, "%s: expected %r, got %r" % (what, want, got)

# Every counter of the table, every outcome of every job.
jobs = ["Web::Jobs::echo", "Web::Jobs::fail", "Web::Jobs::slow", "Web::Jobs::say", "Web::Jobs::crash",
        "Web::Jobs::recycle"]
want = {"Web::Jobs::echo": {"done": n}, "Web::Jobs::fail": {"failed": 2}, "Web::Jobs::slow": {"timeout": 1},
        "Web::Jobs::crash": {"poisoned": 1}, "Web::Jobs::recycle": {"done": 2}}
for j in jobs:
    for outcome in ("done", "failed", "timeout", "poisoned"):
        expect("jobs_total %s %s" % (j, outcome), want.get(j, {}).get(outcome, 0),
               get("gdlua_jobs_total", job=j, outcome=outcome))
expect("type of jobs_total", "counter", types["gdlua_jobs_total"])
assert get("gdlua_last_run_timestamp_seconds", job="Web::Jobs::echo") > 1.7e9
expect("echo's last error", 0, get("gdlua_last_error_timestamp_seconds", job="Web::Jobs::echo"))
assert get("gdlua_last_error_timestamp_seconds", job="Web::Jobs::fail") > 1.7e9

# The histogram: cumulative, bounds rising, +Inf = _count = jobs ended.
expect("type of the histogram", "histogram", types["gdlua_job_duration_seconds"])
for j, ended in (("Web::Jobs::echo", n), ("Web::Jobs::fail", 2), ("Web::Jobs::slow", 1), ("Web::Jobs::say", 0),
                 ("Web::Jobs::crash", 1), ("Web::Jobs::recycle", 2)):
    buckets = sorted((float(dict(l)["le"]), v) for (name, l), v in samples.items()
                     if name == "gdlua_job_duration_seconds_bucket" and dict(l)["job"] == j)
    expect("buckets of " + j, 14, len(buckets))
    expect("last bound", float("inf"), buckets[-1][0])
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "not cumulative: %r" % buckets
    expect("+Inf of " + j, ended, counts[-1])
    expect("_count of " + j, ended, get("gdlua_job_duration_seconds_count", job=j))
    assert buckets[0][0] == 64e-6 and buckets[-2][0] == 1073.741824, buckets
# The timed-out job ran at least its 0.3 s timeout: no bucket below it.
expect("slow below 0.262144 s", 0, get("gdlua_job_duration_seconds_bucket", job="Web::Jobs::slow", le="0.262144"))
assert get("gdlua_job_duration_seconds_sum", job="Web::Jobs::slow") >= 0.3

# Processes: one serving each job (min 1), none stopping; the limits.
for j in jobs:
    states = {s: get("gdlua_processes", job=j, state=s) for s in ("starting", "idle", "busy", "recycle", "stopping")}
    expect("processes of " + j, 1, states["idle"] + states["busy"] + states["starting"])
    expect("stopping of " + j, 0, states["stopping"])
    expect("min of " + j, 1, get("gdlua_min_processes", job=j))
expect("max of echo", 2, get("gdlua_max_processes", job="Web::Jobs::echo"))

# Restarts: the timed-out job's process, the crashes, the kill, the
# recycling; nothing else.
want = {("Web::Jobs::slow", "timeout"): 1, ("Web::Jobs::crash", "crash"): 3, ("Web::Jobs::echo", "killed"): 1,
        ("Web::Jobs::recycle", "recycle"): 1}
for j in jobs:
    for reason in ("crash", "killed", "timeout", "recycle"):
        want_r = want.get((j, reason), 0)
        expect("restarts %s %s" % (j, reason), want_r, get("gdlua_restarts_total", job=j, reason=reason))

# The server, its queues; the build.
server = "127.0.0.1:" + port
expect("server_up", 1, get("gdlua_server_up", server=server))
assert get("gdlua_server_last_poll_timestamp_seconds", server=server) > 1.7e9
for j in jobs:
    expect("queue of " + j, 0, get("gdlua_queued_jobs", job=j, server=server))
build = [l for (name, l) in samples if name == "gdlua_build_info"]
expect("one build_info", 1, len(build))
expect("version", version, dict(build[0])["version"])
PY
python3 "$TMP/check_metrics.py" "$N" "$("$GDLUA" --version | cut -d' ' -f2)" "$PORT" <<<"$metrics" ||
    fail "metrics values (above)"

# /status.json is the console's json: the same document but for the
# times that pass (for_ms).
status=$(http_get /status.json)
code=$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$HTTP_PORT/status.json")
assert_eq "Content-Type of status.json" "application/json" "$code"
python3 - "$status" "$(cons_one json)" "$N" <<'PY' || fail "status.json: $status"
import json, sys

def settled(doc):
    doc = json.loads(doc)
    for j in doc["jobs"]:
        for p in j["procs"]:
            del p["for_ms"]
    return doc

http, console, n = settled(sys.argv[1]), settled(sys.argv[2]), int(sys.argv[3])
assert http == console, "differs:\n%r\n%r" % (http, console)
jobs = {j["name"]: j for j in http["jobs"]}
assert jobs["Web::Jobs::echo"]["done"] == n, jobs
assert jobs["Web::Jobs::slow"]["timeouts"] == 1 and jobs["Web::Jobs::slow"]["failed"] == 0, jobs
assert jobs["Web::Jobs::slow"]["restarts"] == {"crash": 0, "killed": 0, "timeout": 1, "recycle": 0}, jobs
assert jobs["Web::Jobs::fail"]["last_error_message"].startswith('bad "input" \\ \\x01\\xff x'), jobs
PY

# README's list of metrics is the endpoint's, family for family, in order.
served=$(awk '/^# TYPE / { print $3, $4 }' <<<"$metrics")
documented=$(awk '/^## / { on = /^## HTTP endpoint/ }
    on && /^\| `gdlua_/ { split($0, c, "|"); gsub(/[ `]/, "", c[2]); gsub(/ /, "", c[3]); print c[2], c[3] }' "$REPO/README.md")
assert_eq "README's metrics" "$served" "$documented"

# The console's stats has the timeouts column.
stats=$(cons_one stats)
assert_eq "stats TIMEOUTS of slow" 1 \
    "$(awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "TIMEOUTS") c = i } $1 == "Web::Jobs::slow" { print $c }' <<<"$stats")"
pass
