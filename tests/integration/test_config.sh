#!/bin/bash
# --config FILE (and Gearman::Driver's --configfile): a Lua file returning
# options and per-job overrides. The overrides show in --check and in
# what is served; the command line wins over the file; every kind of
# error names the file, the key and the value (or the line), and exits 2;
# the file runs without io and os; an override naming no loaded job is a
# warning.
source "$(dirname "$0")/lib.sh"

CONF=$FIXTURES/config
cd "$TMP" || fail "cannot cd to $TMP"

# run ARGS...: gdlua in the foreground; sets RUN_RC, RUN_OUT, RUN_ERR.
run() {
    timeout 20 "$GDLUA" "$@" </dev/null >"$TMP/run.out" 2>"$TMP/run.err"
    RUN_RC=$?
    RUN_OUT=$(cat "$TMP/run.out")
    RUN_ERR=$(cat "$TMP/run.err")
}

# conf NAME LUA: writes the config file $TMP/NAME.lua.
conf() {
    printf '%s\n' "$2" >"$TMP/$1.lua"
}

# expect_error DESC MESSAGE LUA: a config file holding LUA makes gdlua
# exit 2 with "gdlua: MESSAGE" as a line of stderr, nothing on stdout.
expect_error() {
    conf bad "$3"
    run --config bad.lua --check "$CONF"
    assert_eq "$1: exit status (stderr: $RUN_ERR)" 2 "$RUN_RC"
    grep -qxF -- "gdlua: $2" "$TMP/run.err" || fail "$1: no line 'gdlua: $2' in stderr: $RUN_ERR"
    assert_eq "$1: stdout" "" "$RUN_OUT"
}

line_a='Test::Conf::a min=%s max=%s%s functions=Test::Conf::a title="gdlua: worker Test::Conf::a"'
line_b='Test::Conf::b min=%s max=%s timeout=%s functions=Test::Conf::b title="gdlua: worker Test::Conf::b"'

# ---- without a config file, the module's own attributes -------------------
run --check "$CONF"
assert_eq "--check without --config: exit status" 0 "$RUN_RC"
assert_eq "--check without --config" "$(printf "$line_a" 1 2 '')|$(printf "$line_b" 0 1 5)" \
    "$(paste -sd'|' "$TMP/run.out")"

# ---- per-job overrides, dirs and options from the file ----------------------
conf good "-- every kind of value
local dir = \"$CONF\"
return {
  dirs = { dir },
  loglevel = \"warn\",
  logfile = \"$TMP/file.log\",
  interval = 2,
  timeout = 1.5,
  no_wakeups = true,
  server = { \"127.0.0.1:1\", \"127.0.0.1:2\" },
  namespaces = \"Test\",
  jobs = {
    [\"Test::Conf::a\"] = { min_processes = 3, max_idle_time = 7, max_jobs = 100 },
    [\"Test::Conf::b\"] = { max_processes = 4, timeout = 0.25, max_memory = 512, max_attempts = 2 },
    [\"No::Such::job\"] = { max_processes = 8 },
  },
}"
run --config good.lua --check
assert_eq "--check with the file's dirs: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
# min_processes 3 above the module's max 2 raises max too.
assert_eq "--check with overrides" \
    "$(printf "$line_a" 3 3 ' max_idle_time=7 max_jobs=100')|Test::Conf::b min=0 max=4 timeout=0.25 max_attempts=2 max_memory=512 functions=Test::Conf::b title=\"gdlua: worker Test::Conf::b\"" \
    "$(paste -sd'|' "$TMP/run.out")"
assert_eq "nothing on stderr: the file's logfile is used" "" "$RUN_ERR"
grep -qF 'WARN' "$TMP/file.log" || fail "no warning in the file's log"
grep -qF 'INFO' "$TMP/file.log" && fail "the file's loglevel warn is not used: $(cat "$TMP/file.log")"
grep -qF 'good.lua: jobs["No::Such::job"]: no such job is loaded; its overrides are ignored' "$TMP/file.log" ||
    fail "no warning for the override of a job not loaded: $(cat "$TMP/file.log")"

# Gearman::Driver's --configfile is the same option.
run --configfile good.lua --check
assert_eq "--configfile: exit status" 0 "$RUN_RC"
assert_eq "--configfile: the same pools" "$(printf "$line_a" 3 3 ' max_idle_time=7 max_jobs=100')" \
    "$(head -n 1 "$TMP/run.out")"

# The command line wins: its loglevel, logfile and directories.
mkdir -p "$TMP/other/Test" && cp "$CONF/Test/Conf.lua" "$TMP/other/Test/Other.lua"
run --config good.lua --loglevel info --logfile "$TMP/cli.log" --check "$TMP/other"
assert_eq "command line over the file: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
assert_eq "the command line's directory, not the file's" \
    "Test::Other::a Test::Other::b" "$(cut -d' ' -f1 "$TMP/run.out" | paste -sd' ')"
[[ -s $TMP/cli.log ]] || fail "the command line's --logfile is not used"
grep -qF 'INFO' "$TMP/cli.log" || fail "the command line's --loglevel info is not used: $(cat "$TMP/cli.log")"
grep -qF 'no such job is loaded' "$TMP/cli.log" || fail "no warning in the command line's log"

# ---- errors: file, key and value --------------------------------------------
expect_error "unknown key" 'bad.lua: unknown key max_idel_time (= 10)' 'return { max_idel_time = 10 }'
expect_error "not a name" 'bad.lua: unknown key 1 (= "x"): keys are option names' 'return { "x" }'
expect_error "string for a number" 'bad.lua: interval: expected a number, got "5"' 'return { interval = "5" }'
expect_error "number for a flag" 'bad.lua: no_wakeups: expected true or false, got 1' 'return { no_wakeups = 1 }'
expect_error "number for a string" 'bad.lua: logfile: expected a string, got 3' 'return { logfile = 3 }'
expect_error "table for a string" 'bad.lua: console_bind: expected a string, got a table' 'return { console_bind = {} }'
expect_error "bad list item" 'bad.lua: lib[2]: expected a string, got true' 'return { lib = { "a", true } }'
expect_error "bad server" "bad.lua: server: bad port '0' for server 127.0.0.1 (1..65535)" \
    'return { server = "127.0.0.1:0" }'
expect_error "below bounds" 'bad.lua: max_spawn_rate = 0: out of bounds (1..1000000)' 'return { max_spawn_rate = 0 }'
expect_error "above bounds" 'bad.lua: console_port = 65536: out of bounds (0..65535)' 'return { console_port = 65536 }'
expect_error "fraction" 'bad.lua: shutdown_timeout = 1.5: not a whole number (0..86400)' \
    'return { shutdown_timeout = 1.5 }'
expect_error "duration bounds" 'bad.lua: timeout = -0.5: out of bounds (0..86400)' 'return { timeout = -0.5 }'
expect_error "bad level" "bad.lua: loglevel: unknown level 'loud': error, warn, info or debug (default: info)" \
    'return { loglevel = "loud" }'
expect_error "help" 'bad.lua: help: not in a config file' 'return { help = true }'
expect_error "config in config" 'bad.lua: config: not in a config file' 'return { config = "x.lua" }'
expect_error "job key" 'bad.lua: jobs["Test::Conf::a"]: unknown key max_procs (= 2); the keys are min_processes, max_processes, max_idle_time, timeout, max_attempts, max_jobs, max_memory' \
    'return { jobs = { ["Test::Conf::a"] = { max_procs = 2 } } }'
expect_error "job value type" 'bad.lua: jobs["Test::Conf::a"].timeout: expected a number, got "30"' \
    'return { jobs = { ["Test::Conf::a"] = { timeout = "30" } } }'
expect_error "job bounds" 'bad.lua: jobs["Test::Conf::a"].max_processes = 1025: out of bounds (0..1024)' \
    'return { jobs = { ["Test::Conf::a"] = { max_processes = 1025 } } }'
expect_error "job bounds from the option" 'bad.lua: jobs["Test::Conf::a"].max_attempts = -1: out of bounds (0..1000000)' \
    'return { jobs = { ["Test::Conf::a"] = { max_attempts = -1 } } }'
expect_error "job fraction" 'bad.lua: jobs["Test::Conf::a"].min_processes = 1.5: not a whole number (0..1024)' \
    'return { jobs = { ["Test::Conf::a"] = { min_processes = 1.5 } } }'
expect_error "job min above max" 'bad.lua: jobs["Test::Conf::a"]: max_processes must be >= min_processes (got 1 < 2)' \
    'return { jobs = { ["Test::Conf::a"] = { min_processes = 2, max_processes = 1 } } }'
expect_error "job not a table" 'bad.lua: jobs["Test::Conf::a"]: expected a table of attributes, got 8' \
    'return { jobs = { ["Test::Conf::a"] = 8 } }'
expect_error "jobs not a table" 'bad.lua: jobs: expected a table of jobs by name, got "x"' 'return { jobs = "x" }'
expect_error "not a table" 'bad.lua: must return a table of options, not nil' 'local x = 1'
expect_error "syntax error" "bad.lua:3: '}' expected (to close '{' at line 1) near '<eof>'" \
    "$(printf 'return {\n  interval = 1')"
expect_error "runtime error" "bad.lua:2: boom" "$(printf 'local x = 1\nerror(\"boom\")')"
expect_error "no os" "bad.lua:1: attempt to index global 'os' (a nil value)" 'return { logfile = os.getenv("HOME") }'
expect_error "no io" "bad.lua:1: attempt to index global 'io' (a nil value)" 'io.open("/etc/passwd")'
expect_error "no require" "bad.lua:1: attempt to call global 'require' (a nil value)" 'require "gdlua"'
expect_error "no dofile" "bad.lua:1: attempt to call global 'dofile' (a nil value)" 'dofile "/etc/passwd"'
# Several errors: each is reported.
conf bad 'return { interval = "x", max_jobs = -1 }'
run --config bad.lua --check "$CONF"
assert_eq "two errors: exit status" 2 "$RUN_RC"
assert_eq "two errors: lines" 2 "$(grep -c '^gdlua: bad.lua: ' "$TMP/run.err")"
run --config missing.lua --check "$CONF"
assert_eq "missing file: exit status" 2 "$RUN_RC"
assert_contains "missing file: message" "$RUN_ERR" "missing.lua"
# An override that leaves max below the module's min: an error at load.
conf bad 'return { jobs = { ["Test::Conf::a"] = { max_processes = 0 } } }'
run --config bad.lua --check "$CONF"
assert_eq "override max below the module's min: --check exit status" 1 "$RUN_RC"
assert_contains "override max below the module's min: message" "$RUN_ERR" \
    'bad.lua: jobs["Test::Conf::a"]: max_processes must be >= min_processes (got 0 < 1); the job keeps its own attributes'
assert_eq "override max below min: the module's attributes kept" "$(printf "$line_a" 1 2 '')" "$(head -n 1 "$TMP/run.out")"

# ---- the example config (dist/gdlua.conf.lua) --------------------------------
EXAMPLE=$REPO/dist/gdlua.conf.lua
run --config "$EXAMPLE" --check "$REPO/examples/jobs"
assert_eq "the example config: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
grep -qE '^GDExamples::Fib::fib min=1 max=2 ' "$TMP/run.out" || fail "the example's override is not applied: $RUN_OUT"
# It shows every option a file may set (most commented out).
for o in $("$GDLUA" --help | grep -oE '^  --[a-z_]+' | sed 's/^  --//'); do
    case $o in help | version | config | configfile) continue ;; esac
    grep -qE -- "^ *(-- )?$o = " "$EXAMPLE" || fail "the example config does not show $o"
done

# ---- serving from the file alone ---------------------------------------------
start_gearmand
conf serve "return {
  server = \"127.0.0.1:$PORT\",
  console_port = 0,
  dirs = { \"$CONF\" },
  jobs = { [\"Test::Conf::a\"] = { min_processes = 2 } },
}"
"$GDLUA" --config "$TMP/serve.lua" --logfile "$GDLUA_LOG" </dev/null >>"$GDLUA_OUT" 2>&1 &
GDLUA_PID=$!
wait_for "2 workers for Test::Conf::a (the override's min_processes)" 10 has_workers Test::Conf::a 2
out=$(gm -f Test::Conf::b <<<"hello") || fail "Test::Conf::b failed"
assert_eq "Test::Conf::b served" "hello" "$out"
record_children
assert_eq "processes started for Test::Conf::a" 2 "$(starts_of Test::Conf::a)"

pass
