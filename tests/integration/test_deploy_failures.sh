#!/bin/bash
# A broken deploy shows outside the log: a module with a typo'd attribute
# at start is counted in /metrics (gdlua_module_load_failures) and
# /status.json while the others serve; a reload that fails on a syntax
# error is counted (gdlua_reloads_total{outcome="failed"}), the serving
# generation stays, and systemd's STATUS= says so; a reload that works
# counts as ok and moves the generation on.
source "$(dirname "$0")/lib.sh" "$@"

SOCK=$TMP/notify.sock
OUT=$TMP/notify.out
: >"$OUT"
JOBS=$TMP/jobs
mkdir -p "$JOBS/Dep"
good() {
    printf 'local W = require("gdlua").worker()\nW:job("ok", function() return "%s" end)\nreturn W\n' "$1" \
        >"$JOBS/Dep/Good.lua"
}
good v1
printf 'local W = require("gdlua").worker()\nW:job("x", { min_procesess = 1 }, function() end)\nreturn W\n' \
    >"$JOBS/Dep/Typo.lua"

metric() {
    curl -s --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics" | grep -xF -- "$1" >/dev/null
}
status_is() {
    curl -s --max-time 10 "http://127.0.0.1:$HTTP_PORT/status.json" >"$TMP/status.json" &&
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
want = json.loads(sys.argv[2])
sys.exit(0 if all(d.get(k) == v for k, v in want.items()) else 1)' "$TMP/status.json" "$1"
}
has_re() {
    grep -qE -- "$1" "$OUT"
}
lint() {
    local out
    out=$(promtool check metrics <<<"$(http_get /metrics)" 2>&1) || fail "promtool check metrics: $out"
}

start_gearmand
spawn_bg RECEIVER python3 "$FIXTURES/notify/receiver.py" "$SOCK" "$OUT"
wait_for "the notify socket" 10 test -S "$SOCK"
export NOTIFY_SOCKET=$SOCK
start_http_gdlua "$JOBS"
unset NOTIFY_SOCKET
wait_for "a worker for Dep::Good::ok" 10 has_workers Dep::Good::ok
assert_eq "the module that loaded serves" v1 "$(gm -f Dep::Good::ok x)"

# At start: one module failed, generation 1, no reload yet.
metric "gdlua_module_load_failures 1" || fail "no load failure in /metrics: $(http_get /metrics | grep -E 'generation|load|reload')"
metric "gdlua_generation 1" || fail "gdlua_generation is not 1"
metric 'gdlua_reloads_total{outcome="ok"} 0' || fail "reloads ok is not 0"
metric 'gdlua_reloads_total{outcome="failed"} 0' || fail "reloads failed is not 0"
lint
status_is '{"generation": 1, "module_load_failures": 1, "reloads": {"ok": 0, "failed": 0, "last": null}}' ||
    fail "status.json at start: $(head -c 300 "$TMP/status.json")"

# A reload with a syntax error: failed, generation 1 serves on.
printf 'local W = require("gdlua").worker(\nreturn W\n' >"$JOBS/Dep/Good.lua"
rm "$JOBS/Dep/Typo.lua"
kill -HUP "$GDLUA_PID"
wait_for "the failed reload counted" 10 metric 'gdlua_reloads_total{outcome="failed"} 1'
metric "gdlua_generation 1" || fail "the generation moved on a failed reload"
metric "gdlua_module_load_failures 1" || fail "the serving generation's failures changed on a failed reload"
lint
status_is '{"generation": 1, "reloads": {"ok": 0, "failed": 1, "last": {"ok": false, "msg": "1 module(s) failed to load; the first: module Dep::Good not loaded: '"$JOBS"'/Dep/Good.lua:2: unexpected symbol near '"'"'return'"'"'"}}}' ||
    fail "status.json after a failed reload: $(head -c 600 "$TMP/status.json")"
wait_for "STATUS= with the failed reload" 10 has_re \
    '^STATUS=serving; processes 1, busy 0, pools 1; jobs done 1, failed 0; generation 1; last reload failed: 1 module\(s\) failed to load; the first: module Dep::Good not loaded: '
assert_eq "generation 1 serves on" v1 "$(gm -f Dep::Good::ok x)"

# Fixed: the reload works, the new generation has no failure.
good v2
kill -HUP "$GDLUA_PID"
wait_for "the reload counted" 10 metric 'gdlua_reloads_total{outcome="ok"} 1'
metric 'gdlua_reloads_total{outcome="failed"} 1' || fail "the failed reload is no longer counted"
metric "gdlua_module_load_failures 0" || fail "the new generation's failures are not 0"
gen=$(http_get /metrics | sed -n 's/^gdlua_generation //p')
((gen >= 2)) || fail "gdlua_generation after the reload: $gen"
lint
status_is '{"generation": '"$gen"', "module_load_failures": 0, "reloads": {"ok": 1, "failed": 1, "last": {"ok": true, "msg": "generation '"$gen"': 1 job(s)"}}}' ||
    fail "status.json after the reload: $(head -c 600 "$TMP/status.json")"
wait_for "STATUS= with the reload" 10 has_re "; generation $gen; last reload ok: generation $gen: 1 job\\(s\\)\$"
wait_for "the new code to serve" 10 eval '[[ $(gm -f Dep::Good::ok x) == v2 ]]'

pass
