#!/bin/bash
# --logformat json: every line is one JSON object (json.loads) with time,
# level, pid, job (the pool in a child, null in the master) and, for a
# line written while a job runs, its handle; job text of any bytes stays
# valid JSON. The default stays text. --loglayout lays text lines out as
# Gearman::Driver's (Log::Log4perl's) pattern does. Bad values are refused.
source "$(dirname "$0")/lib.sh" "$@"

"$GDLUA" --logformat yaml "$FIXTURES/http" >"$TMP/bad.out" 2>&1
assert_eq "exit status for --logformat yaml" 2 "$?"
assert_eq "message for --logformat yaml" "gdlua: --logformat: unknown value 'yaml': write each log line as plain text or as a JSON object: text or json (default: text)" \
    "$(cat "$TMP/bad.out")"

start_gearmand
start_gdlua --logformat json "$FIXTURES/http"
for f in echo fail say; do
    wait_for "a worker for Web::Jobs::$f" 10 has_workers "Web::Jobs::$f"
done
say_pid=$(worker_pids_for Web::Jobs::say)
fail_pid=$(worker_pids_for Web::Jobs::fail)
assert_eq "say" ok "$(gm -f Web::Jobs::say $'quote " backslash \\ tab \t newline \n bell \a bad \xff\xfe end')"
gm -f Web::Jobs::fail "zz" >/dev/null 2>&1 && fail "the failing job succeeded"
wait_for "the job lines in the log" 10 log_has '"level":"error"'
wait_for "the say line in the log" 10 log_has 'said: '
assert_eq "echo" "x" "$(gm -f Web::Jobs::echo x)"
stop_all # every line written, the master's last ones too; gearmand stopped too

python3 - "$GDLUA_LOG" "$say_pid" "$fail_pid" <<'PY' || fail "json log: $(head -c 3000 "$GDLUA_LOG")"
import json, sys

path, say_pid, fail_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lines = open(path, "rb").read().split(b"\n")
assert lines[-1] == b"", "the log does not end with a newline"
docs = []
for raw in lines[:-1]:
    doc = json.loads(raw.decode("utf-8"))  # valid UTF-8 and valid JSON, each line
    assert set(doc) >= {"time", "level", "pid", "job", "msg"}, doc
    assert set(doc) <= {"time", "level", "pid", "job", "handle", "msg"}, doc
    assert doc["level"] in ("error", "warn", "info", "debug"), doc
    assert isinstance(doc["pid"], int) and doc["time"].endswith("Z") and len(doc["time"]) == 24, doc
    docs.append(doc)
master = [d for d in docs if d["msg"].startswith("gdlua ") and " serving " in d["msg"]]
assert len(master) == 1 and master[0]["job"] is None and "handle" not in master[0], master
mpid = master[0]["pid"]
assert all(d["job"] is None for d in docs if d["pid"] == mpid), "a master line with a job"
said = [d for d in docs if d["msg"].startswith("said: ")]
assert len(said) == 1, said
d = said[0]
assert d["pid"] == say_pid and d["job"] == "Web::Jobs::say" and d["level"] == "warn", d
assert d["handle"].startswith("H:"), d
assert d["msg"] == 'said: quote " backslash \\ tab \t newline \n bell \\x07 bad \\xff\\xfe end', repr(d["msg"])
failed = [d for d in docs if d["level"] == "error" and d["pid"] == fail_pid]
assert len(failed) == 1, failed
d = failed[0]
assert d["job"] == "Web::Jobs::fail" and d["handle"].startswith("H:"), d
assert 'bad "input" \\ \\x01\\xff zz\nsecond line' in d["msg"], repr(d["msg"])
assert "\nstack traceback:\n\t" in d["msg"], repr(d["msg"])
# A child's line between jobs: its job, no handle.
# (The loader's lines, module loading, have no job either.)
loaders = {int(d["msg"].split("(")[1].split(")")[0]) for d in docs if d["pid"] == mpid and d["msg"].startswith("loader ")}
assert loaders, "no loader line from the master"
assert all(d["job"] is None for d in docs if d["pid"] in loaders), "a loader line with a job"
starts = [d for d in docs if d["pid"] != mpid and d["pid"] not in loaders and "handle" not in d]
assert all(d["job"].startswith("Web::Jobs::") for d in starts), starts
PY

# The default is text, as before.
: >"$GDLUA_LOG"
start_gearmand
start_gdlua "$FIXTURES/http"
wait_for "a worker for Web::Jobs::echo" 10 has_workers Web::Jobs::echo
assert_eq "echo" "x" "$(gm -f Web::Jobs::echo x)"
grep -vqE '^\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}\] (ERROR|WARN|INFO|DEBUG) \[[0-9]+\] |^	' "$GDLUA_LOG" &&
    fail "a text line of another form: $(grep -vE '^\[[0-9]{4}-' "$GDLUA_LOG" | head -3)"
log_has "serving 6 job(s)" || fail "no start line in the text log"
stop_all

# --loglayout: Log::Log4perl's conversions, widths and precisions; a line
# ends with its newline (%n) or gets one.
"$GDLUA" --loglayout '%d{HH:mm}' "$FIXTURES/http" >"$TMP/bad.out" 2>&1
assert_eq "exit status for %d{...}" 2 "$?"
assert_eq "message for %d{...}" "gdlua: --loglayout: '%d{HH:mm}': % followed by none of %c %d %H %m %n %p %P %r %%" \
    "$(cat "$TMP/bad.out")"
"$GDLUA" --loglayout '%m%n' --logformat json "$FIXTURES/http" >"$TMP/bad.out" 2>&1
assert_eq "exit status for --loglayout with json" 2 "$?"
: >"$GDLUA_LOG"
start_gearmand
start_gdlua --loglayout '[%d] %-5p %P@%H %c %r 100%%: %.12m' "$FIXTURES/http"
wait_for "a worker for Web::Jobs::say" 10 has_workers Web::Jobs::say
say_pid=$(worker_pids_for Web::Jobs::say)
assert_eq "say" ok "$(gm -f Web::Jobs::say "laid out")"
wait_for "the say line in the log" 10 log_has "said: "
stop_all
host=$(re_quote "$(hostname)")
line=$(grep -F "said: " "$GDLUA_LOG")
[[ $line =~ ^\[[0-9]{4}/[0-9]{2}/[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\]\ WARN\ \ $say_pid@$host\ Web::Jobs::say\ [0-9]+\ 100%:\ said:\ laid\ o$ ]] ||
    fail "laid-out job line: '$line'"
grep -qE "^\[[0-9/: ]{19}\] INFO  [0-9]+@$host gdlua [0-9]+ 100%: module Web:" "$GDLUA_LOG" ||
    fail "laid-out master line: $(head -1 "$GDLUA_LOG")"
assert_eq "one line a line" 0 "$(grep -cvE '^\[[0-9]{4}/' "$GDLUA_LOG")"
pass
