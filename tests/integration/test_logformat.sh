#!/bin/bash
# --logformat json: every line is one JSON object (json.loads) with time,
# level, pid, job (the pool in a child, null in the master) and, for a
# line written while a job runs, its handle; job text of any bytes stays
# valid JSON. The default stays text. --loglayout lays text lines out as
# Gearman::Driver's (Log::Log4perl's) pattern does, %d{FORMAT} too. Bad
# values are refused, saying what is accepted. gdlua.log joins its values
# as print does and takes a table of fields (JSON keys, key=value in
# text); a text line from a job names its job.
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
"$GDLUA" --loglayout '%d{HH:nn}' "$FIXTURES/http" >"$TMP/bad.out" 2>&1
assert_eq "exit status for %d{HH:nn}" 2 "$?"
assert_eq "message for %d{HH:nn}" "gdlua: --loglayout '%d{HH:nn}': %d{HH:nn}: nn is not a date field gdlua knows (FORMAT: yyyy yy MM MMM dd HH mm ss SSS, or ISO8601, ABSOLUTE or DATE)" \
    "$(cat "$TMP/bad.out")"
"$GDLUA" --loglayout '%-5x %m' "$FIXTURES/http" >"$TMP/bad.out" 2>&1
assert_eq "exit status for %-5x" 2 "$?"
assert_eq "message for %-5x" "gdlua: --loglayout '%-5x %m': %-5x is not a conversion gdlua knows; it knows %c %d %d{FORMAT} %H %m %n %p %P %r %% (FORMAT: yyyy yy MM MMM dd HH mm ss SSS, or ISO8601, ABSOLUTE or DATE)" \
    "$(cat "$TMP/bad.out")"
"$GDLUA" --loglayout '%m%n' --logformat json "$FIXTURES/http" >"$TMP/bad.out" 2>&1
assert_eq "exit status for --loglayout with json" 2 "$?"
: >"$GDLUA_LOG"
start_gearmand
start_gdlua --loglayout "[%d] %d{yyyy-MM-dd'T'HH:mm:ss.SSS} %-5p %P@%H %c %r 100%%: %.12m" "$FIXTURES/http"
wait_for "a worker for Web::Jobs::say" 10 has_workers Web::Jobs::say
say_pid=$(worker_pids_for Web::Jobs::say)
assert_eq "say" ok "$(gm -f Web::Jobs::say "laid out")"
wait_for "the say line in the log" 10 log_has "said: "
stop_all
host=$(re_quote "$(hostname)")
line=$(grep -F "said: " "$GDLUA_LOG")
[[ $line =~ ^\[([0-9]{4})/([0-9]{2})/([0-9]{2})\ ([0-9]{2}:[0-9]{2}:[0-9]{2})\]\ ([0-9-]{10})T([0-9:]{8})\.[0-9]{3}\ WARN\ \ $say_pid@$host\ Web::Jobs::say\ [0-9]+\ 100%:\ said:\ laid\ o$ ]] ||
    fail "laid-out job line: '$line'"
# %d{...} writes the same time as %d (the seconds may tick between them).
assert_eq "%d{yyyy-MM-dd} and %d" "${BASH_REMATCH[1]}-${BASH_REMATCH[2]}-${BASH_REMATCH[3]}" "${BASH_REMATCH[5]}"
grep -qE "^\[[0-9/: ]{19}\] [0-9-]{10}T[0-9:.]{12} INFO  [0-9]+@$host gdlua [0-9]+ 100%: module Web:" "$GDLUA_LOG" ||
    fail "laid-out master line: $(head -1 "$GDLUA_LOG")"
assert_eq "one line a line" 0 "$(grep -cvE '^\[[0-9]{4}/' "$GDLUA_LOG")"

# ---- gdlua.log: values joined as print joins them; a table of fields -------
# serve_lines FORMAT...: runs gdlua on the logformat fixture, sends each
# job once, and stops; the log is left in $GDLUA_LOG.
serve_lines() {
    : >"$GDLUA_LOG"
    start_gearmand
    start_gdlua "$@" "$FIXTURES/logformat"
    for f in joined fields reserved pi; do
        wait_for "a worker for Log::Lines::$f" 10 has_workers "Log::Lines::$f"
    done
    assert_eq "joined" ok "$(gm -f Log::Lines::joined w1)"
    assert_eq "fields" ok "$(gm -f Log::Lines::fields "a b")"
    gm -f Log::Lines::reserved x >"$TMP/reserved.out" 2>&1 && fail "a field named pid was taken"
    assert_contains "a field named pid" "$(cat "$TMP/reserved.out")" \
        'gdlua.log: field name "pid" is a key of the line'"'"'s own (time, level, pid, job, handle, msg)'
    # A number result in its shortest round-trip form, not %.17g's 3.1415899999999999.
    assert_eq "a number result" 3.14159 "$(gm -f Log::Lines::pi x)"
    wait_for "the reserved job's error in the log" 10 log_has 'is a key of the line'
    LINES_JOINED=$(worker_pids_for Log::Lines::joined)
    LINES_FIELDS=$(worker_pids_for Log::Lines::fields)
    stop_all
}

serve_lines --logformat json
python3 - "$GDLUA_LOG" "$LINES_JOINED" "$LINES_FIELDS" <<'PY' || fail "json fields: $(grep -F Lines "$GDLUA_LOG" | head -c 3000)"
import json, sys

docs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
joined, fields = int(sys.argv[2]), int(sys.argv[3])
j = [d for d in docs if d["pid"] == joined and d["msg"].startswith("joined:")]
assert len(j) == 1, j
assert j[0]["msg"] == "joined:\tw1\t3.14159\tnil\ttrue", repr(j[0]["msg"])
assert j[0]["job"] == "Log::Lines::joined" and j[0]["handle"].startswith("H:"), j[0]
f = [d for d in docs if d["pid"] == fields and "user" in d]
assert len(f) == 1, f
f = f[0]
assert f["msg"] == "fields:" and f["level"] == "info" and f["job"] == "Log::Lines::fields", f
assert f["user"] == 1 and type(f["user"]) is int and f["ratio"] == 0.1 and f["ok"] is True, f
assert f["name"] == "a b" and f["bad"] == "nan", f
assert list(f)[-5:] == ["bad", "name", "ok", "ratio", "user"], list(f)  # after msg, by name
w = [d for d in docs if d["pid"] == fields and "quote" in d]
assert len(w) == 1 and w[0]["msg"] == "" and w[0]["level"] == "warn", w
assert w[0]["quote"] == 'say "hi"' and w[0]["empty"] == "", w[0]
PY

serve_lines
handle='H:[^ ]+'
log_has_re "INFO \[$LINES_JOINED\] Log::Lines::joined: job $handle: joined:	w1	3\.14159	nil	true\$" ||
    fail "text: joined line: $(grep -F 'joined:' "$GDLUA_LOG")"
log_has_re "INFO \[$LINES_FIELDS\] Log::Lines::fields: job $handle: fields: bad=nan name=\"a b\" ok=true ratio=0\.1 user=1\$" ||
    fail "text: fields line: $(grep -F 'fields:' "$GDLUA_LOG")"
log_has_re "WARN \[$LINES_FIELDS\] Log::Lines::fields: job $handle: empty=\"\" quote=\"say \\\\\"hi\\\\\"\"\$" ||
    fail "text: fields only: $(grep -F 'quote=' "$GDLUA_LOG")"
pass
