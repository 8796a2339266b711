#!/bin/bash
# JSON is valid UTF-8 whatever the names hold: a job named "utf8-ÿ\255#"
# (the byte 255 is not UTF-8) is the text utf8-ÿ\xff# in /status.json,
# /history.json and the console's json, as in /metrics' label; so is a
# failing job's message. The history has a sample as soon as the pools
# serve, after a reload too.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
start_console_http_gdlua "$FIXTURES/utf8"
NAME=$'Web::Utf8::utf8-\xc3\xbf\xff#'
wait_for "a worker for the UTF-8 job" 10 has_workers "$NAME"
wait_for "a worker for Web::Utf8::fail" 10 has_workers Web::Utf8::fail
gm -f Web::Utf8::fail x >/dev/null 2>&1
wait_for "the failure counted" 10 eval "curl -s http://127.0.0.1:$HTTP_PORT/metrics | grep -q 'gdlua_jobs_total{job=\"Web::Utf8::fail\",outcome=\"failed\"} 1'"

curl -s "http://127.0.0.1:$HTTP_PORT/status.json" >"$TMP/status.json"
curl -s "http://127.0.0.1:$HTTP_PORT/history.json" >"$TMP/history.json"
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" >"$TMP/metrics"
cons json | tr -d '\r' | sed '$d' >"$TMP/console.json"
cat >"$TMP/check.py" <<'PY'
import json, re, sys
tmp = sys.argv[1]
want = "Web::Utf8::utf8-\u00ff\\xff#"  # the byte 255 as the text \xff
docs = {}
for name in ("status.json", "history.json", "console.json"):
    raw = open("%s/%s" % (tmp, name), "rb").read()
    docs[name] = json.loads(raw.decode("utf-8"))  # strict: invalid UTF-8 fails here
for name in ("status.json", "console.json", "history.json"):
    names = [j["name"] for j in docs[name]["jobs"]]
    assert want in names, (name, names)
fail = [j for j in docs["status.json"]["jobs"] if j["name"] == "Web::Utf8::fail"][0]
assert fail["last_error_message"] == "bad \\xff\\xfe byte", fail["last_error_message"]
# /metrics: the same text in its label, where \ is written \\.
labels = set()
for line in open("%s/metrics" % tmp, "rb").read().decode("utf-8").splitlines():
    m = re.match(r'gdlua_processes\{job="((?:[^"\\]|\\.)*)"', line)
    if m:
        labels.add(re.sub(r"\\(.)", r"\1", m.group(1)))
assert want in labels, labels
print("ok")
PY
out=$(python3 "$TMP/check.py" "$TMP" 2>&1) || fail "JSON: $out"
assert_eq "JSON" ok "$out"

# A sample is taken when the pools are installed: right after a reload
# has answered, the history has one, from before the answer came.
samples_before() { # MS: the history's samples, all taken before MS
    python3 -c '
import json, sys, urllib.request
doc = json.load(urllib.request.urlopen("http://127.0.0.1:%s/history.json" % sys.argv[1]))
t = doc["times"]
assert len(t) >= 1 and t[0] <= int(sys.argv[2]), (t, sys.argv[2])
assert doc["jobs"] and all(len(j["processes"]) == len(t) for j in doc["jobs"]), doc
' "$HTTP_PORT" "$1"
}
reply=$(cons reload | tr -d '\r')
answered=$(now_ms)
assert_contains "reload" "$reply" "OK"
out=$(samples_before "$answered" 2>&1) || fail "no history sample right after the reload: $out"
pass
