#!/bin/bash
# The dashboard in headless Chromium: the page (and dygraphs, built into
# the binary) loads with no other server; every job appears in the table
# and has a chart; between two reads, with jobs sent in between, the
# chart has moved on (newer last sample, more jobs). A screenshot is kept
# in the build directory: test-artefacts/http_dashboard.png. With
# --http_token the page works when given the token in its URL's fragment,
# and says why it shows nothing without it.
source "$(dirname "$0")/lib.sh" "$@"

CHROMIUM=$(command -v chromium) || fail "chromium is not installed (cmake/bootstrap.sh installs it)"
ARTEFACTS=$(dirname "$GDLUA")/test-artefacts
mkdir -p "$ARTEFACTS"

start_gearmand
start_http_gdlua "$FIXTURES/http"
for f in echo fail slow say; do
    wait_for "a worker for Web::Jobs::$f" 10 has_workers "Web::Jobs::$f"
done

# history_has EXPR [CURL-ARGS...]: /history.json, as d, makes the Python
# expression EXPR true; last(JOB, FIELD) is JOB's newest sample of FIELD.
history_has() {
    local expr=$1
    shift
    curl -sf --max-time 5 "$@" "http://127.0.0.1:$HTTP_PORT/history.json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
def last(job, field):
    return next(j for j in d["jobs"] if j["name"] == job)[field][-1]
sys.exit(not eval(sys.argv[1]))' "$expr"
}

# browse OUT [ARGS...]: one headless Chromium run on the dashboard, its
# own fresh profile. --virtual-time-budget runs the page's timers in
# virtual time, which stands still while a fetch is pending: the DOM is
# dumped (or the shot taken) once the page has refreshed (every 2 virtual
# s) and drawn what the server had, in next to no real time. So no
# sample is taken while Chromium looks: the server must hold what a read
# checks before it starts (history_has), and Chromium's own messages on
# stderr (DBus, the Debian wrapper's) are kept for a failure's report
# only.
browse() {
    local out=$1 profile
    shift
    profile=$(mktemp -d "$TMP/chromium.XXXXXX")
    timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
        --user-data-dir="$profile" --virtual-time-budget=5000 "$@" "http://127.0.0.1:$HTTP_PORT/${PAGE:-}" \
        >"$out" 2>>"$TMP/chromium.err" || fail "chromium failed ($?): $(tail -5 "$TMP/chromium.err")"
}

# chart_attr DOM JOB ATTR: the chart's data-ATTR for JOB.
chart_attr() {
    grep -o "<div class=\"chart\" data-job=\"$2\"[^>]*>" "$1" | grep -o " data-$3=\"[0-9]*\"" | grep -o '[0-9]*'
}

# check_dom DOM: the page refreshed, no error shown, every job in the
# table and charted.
check_dom() {
    grep -q 'data-updates="[1-9]' "$1" || fail "the page never refreshed: $(head -c 2000 "$1")"
    grep -q '<div id="error"></div>' "$1" || fail "the page shows an error: $(grep -o '<div id="error">[^<]*' "$1")"
    for f in echo fail slow say; do
        grep -q "<tr data-job=\"Web::Jobs::$f\"><td>Web::Jobs::$f</td>" "$1" || fail "no table row for $f"
        [[ -n $(chart_attr "$1" "Web::Jobs::$f" samples) ]] || fail "no chart for $f"
    done
}

for i in 1 2 3; do gm -f Web::Jobs::echo "a $i" >/dev/null || fail "echo $i"; done
gm -f Web::Jobs::fail "x" >/dev/null 2>&1
# Its process publishes the failure after answering the client.
fail_counted() {
    curl -s --max-time 10 "http://127.0.0.1:$HTTP_PORT/status.json" | python3 -c '
import json, sys
sys.exit(next(j for j in json.load(sys.stdin)["jobs"] if j["name"] == "Web::Jobs::fail")["failed"] != 1)'
}
wait_for "the failed job counted" 10 fail_counted
# A chart needs a sample (one a second); the 3 jobs must be in the last.
wait_for "2 samples in the history, the last with 3 echo jobs" 10 \
    history_has 'len(d["times"]) >= 2 and last("Web::Jobs::echo", "jobs") == 3'
browse "$TMP/dom1.html" --dump-dom
check_dom "$TMP/dom1.html"
jobs1=$(chart_attr "$TMP/dom1.html" Web::Jobs::echo jobs)
last1=$(chart_attr "$TMP/dom1.html" Web::Jobs::echo last)
assert_eq "jobs charted, first read" 3 "$jobs1"
grep -q '<td class="text bad">bad "input" \\ \\x01\\xff x</td>' "$TMP/dom1.html" ||
    fail "the last error is not listed: $(grep -o '<table id="errors">.*</table>' "$TMP/dom1.html" | head -c 1000)"

for i in 1 2 3 4 5; do gm -f Web::Jobs::echo "b $i" >/dev/null || fail "echo b $i"; done
# The next sample includes them; it was taken after the first read.
wait_for "the history to count 8 echo jobs" 10 history_has 'last("Web::Jobs::echo", "jobs") == 8'
browse "$TMP/dom2.html" --dump-dom
check_dom "$TMP/dom2.html"
assert_eq "jobs charted, second read" 8 "$(chart_attr "$TMP/dom2.html" Web::Jobs::echo jobs)"
last2=$(chart_attr "$TMP/dom2.html" Web::Jobs::echo last)
((last2 > last1)) || fail "the chart did not move on: last sample $last1, then $last2"
((last2 - last1 < 600000)) || fail "last samples implausible: $last1, $last2"

rm -f "$ARTEFACTS/http_dashboard.png"
browse "$TMP/shot.out" --window-size=1400,1100 --screenshot="$ARTEFACTS/http_dashboard.png"
[[ $(head -c 8 "$ARTEFACTS/http_dashboard.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
    fail "no PNG screenshot at $ARTEFACTS/http_dashboard.png"

stop_all
echo "dash-token" >"$TMP/token"
start_gearmand
start_http_gdlua --http_token "$TMP/token" "$FIXTURES/http"
wait_for "a worker for Web::Jobs::echo" 10 has_workers Web::Jobs::echo
wait_for "2 samples in the history (with the token)" 10 \
    history_has 'len(d["times"]) >= 2' -H "Authorization: Bearer dash-token"
PAGE="#token=dash-token" browse "$TMP/dom3.html" --dump-dom
check_dom "$TMP/dom3.html"
browse "$TMP/dom4.html" --dump-dom
grep -q '<div id="error">Error: /status.json: 401 Unauthorized</div>' "$TMP/dom4.html" ||
    fail "without the token: $(grep -o '<div id="error">[^<]*' "$TMP/dom4.html")"
grep -q 'data-updates=' "$TMP/dom4.html" && fail "the page refreshed without the token"
pass
