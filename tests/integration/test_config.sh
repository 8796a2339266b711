#!/bin/bash
# --config FILE (and Gearman::Driver's --configfile): a Lua file returning
# options and per-job overrides. The overrides show in --check and in
# what is served; the command line wins over the file; every kind of
# error names the file, the key and the value (or the line), and exits 2;
# the file runs without io and os; an override naming no loaded job is a
# warning when serving and an error for --check (exit 1).
source "$(dirname "$0")/lib.sh"

CONF=$FIXTURES/config
cd "$TMP" || fail "cannot cd to $TMP"

# conf NAME LUA: writes the config file $TMP/NAME.lua.
conf() {
    printf '%s\n' "$2" >"$TMP/$1.lua"
}

# expect_errors DESC MESSAGE...: $TMP/bad.lua makes gdlua exit 2 with
# exactly these lines on stderr ("gdlua: MESSAGE" each, in any order),
# nothing on stdout.
expect_errors() {
    local desc=$1 m
    shift
    run --config bad.lua --check "$CONF"
    assert_eq "$desc: exit status (stderr: $RUN_ERR)" 2 "$RUN_RC"
    for m in "$@"; do
        grep -qxF -- "gdlua: $m" "$TMP/run.err" || fail "$desc: no line 'gdlua: $m' in stderr: $RUN_ERR"
    done
    assert_eq "$desc: lines on stderr" "$#" "$(wc -l <"$TMP/run.err")"
    assert_eq "$desc: stdout" "" "$RUN_OUT"
}

line_a='Test::Conf::a min=%s max=%s%s functions=Test::Conf::a title="gdlua: worker Test::Conf::a"'
line_b='Test::Conf::b min=%s max=%s timeout=%s functions=Test::Conf::b title="gdlua: worker Test::Conf::b"'

# ---- without a config file, the module's own attributes -------------------
run --check "$CONF"
assert_eq "--check without --config: exit status" 0 "$RUN_RC"
assert_eq "--check without --config" "$(printf "$line_a" 1 2 '')|$(printf "$line_b" 0 1 5)" \
    "$(paste -sd'|' "$TMP/run.out")"

# ---- per-job overrides, dirs and options from the file ----------------------
conf good "-- every kind of value, in a state without io, os and file loading
assert(not (io or os or package or require or dofile or loadfile or newproxy or xpcall), 'not sandboxed')
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
    [\"Test::Conf::b\"] = { max_processes = 4, timeout = 0.25, max_memory = 512, max_attempts = 2, concurrency = 50 },
    [\"No::Such::job\"] = { max_processes = 8 },
  },
}"
run --config good.lua --check
# 1: the override of No::Such::job names no loaded job (the jobs are listed).
assert_eq "--check with the file's dirs: exit status (stderr: $RUN_ERR)" 1 "$RUN_RC"
# min_processes 3 above the module's max 2 raises max too.
assert_eq "--check with overrides" \
    "$(printf "$line_a" 3 3 ' max_idle_time=7 max_jobs=100')|Test::Conf::b min=0 max=4 timeout=0.25 max_attempts=2 max_memory=512 concurrency=50 functions=Test::Conf::b title=\"gdlua: worker Test::Conf::b\"" \
    "$(paste -sd'|' "$TMP/run.out")"
assert_eq "nothing on stderr: the file's logfile is used" "" "$RUN_ERR"
grep -qF 'INFO' "$TMP/file.log" && fail "the file's loglevel warn is not used: $(cat "$TMP/file.log")"
grep -qF 'ERROR' "$TMP/file.log" || fail "no error in the file's log"
grep -qF 'good.lua: jobs["No::Such::job"]: no such job is loaded; its overrides are ignored' "$TMP/file.log" ||
    fail "no error for the override of a job not loaded: $(cat "$TMP/file.log")"

# Gearman::Driver's --configfile is the same option.
run --configfile good.lua --check
assert_eq "--configfile: exit status" 1 "$RUN_RC"
assert_eq "--configfile: the same pools" "$(printf "$line_a" 3 3 ' max_idle_time=7 max_jobs=100')" \
    "$(head -n 1 "$TMP/run.out")"

# The command line wins: its loglevel, logfile and directories.
mkdir -p "$TMP/other/Test" && cp "$CONF/Test/Conf.lua" "$TMP/other/Test/Other.lua"
run --config good.lua --loglevel info --logfile "$TMP/cli.log" --check "$TMP/other"
assert_eq "command line over the file: exit status (stderr: $RUN_ERR)" 1 "$RUN_RC"
assert_eq "the command line's directory, not the file's" \
    "Test::Other::a Test::Other::b" "$(cut -d' ' -f1 "$TMP/run.out" | paste -sd' ')"
[[ -s $TMP/cli.log ]] || fail "the command line's --logfile is not used"
grep -qF 'INFO' "$TMP/cli.log" || fail "the command line's --loglevel info is not used: $(cat "$TMP/cli.log")"
grep -qF 'no such job is loaded' "$TMP/cli.log" || fail "no error in the command line's log"

# ---- errors: file, key and value --------------------------------------------
# Every error of a file is reported, each on a line of its own: one file
# holds many (a process each would be slow under sanitizers).
conf bad 'return {
  max_idel_time = 10,
  "x",
  interval = "5",
  no_wakeups = 1,
  logfile = 3,
  console_bind = {},
  lib = { "a", true },
  server = "127.0.0.1:0",
  max_spawn_rate = 0,
  console_port = 65536,
  shutdown_timeout = 1.5,
  timeout = -0.5,
  loglevel = "loud",
  help = true,
  config = "x.lua",
  jobs = "x",
}'
expect_errors "top-level errors" \
    'bad.lua: unknown key max_idel_time (= 10)' \
    'bad.lua: unknown key 1 (= "x"): keys are option names' \
    'bad.lua: interval: expected a number, got "5"' \
    'bad.lua: no_wakeups: expected true or false, got 1' \
    'bad.lua: logfile: expected a string, got 3' \
    'bad.lua: console_bind: expected a string, got a table' \
    'bad.lua: lib[2]: expected a string, got true' \
    "bad.lua: server: bad port '0' for server 127.0.0.1 (1..65535)" \
    'bad.lua: max_spawn_rate = 0: out of bounds (1..1000000)' \
    'bad.lua: console_port = 65536: out of bounds (0..65535)' \
    'bad.lua: shutdown_timeout = 1.5: not a whole number (0..86400)' \
    'bad.lua: timeout = -0.5: out of bounds (0..86400)' \
    "bad.lua: loglevel: unknown level 'loud': error, warn, info or debug (default: info)" \
    'bad.lua: help: not in a config file' \
    'bad.lua: config: not in a config file' \
    'bad.lua: jobs: expected a table of jobs by name, got "x"'
conf bad 'return { jobs = {
  A = { max_procs = 2 },
  B = { timeout = "30" },
  C = { max_processes = 1025 },
  D = { max_attempts = -1 },
  E = { min_processes = 1.5 },
  F = { min_processes = 2, max_processes = 1 },
  G = 8,
  H = { concurrency = 0 },
  I = { concurrency = 10001 },
  {},
} }'
expect_errors "job errors" \
    'bad.lua: jobs["A"]: unknown key max_procs (= 2); the keys are min_processes, max_processes, max_idle_time, timeout, max_attempts, max_jobs, max_memory, concurrency' \
    'bad.lua: jobs["B"].timeout: expected a number, got "30"' \
    'bad.lua: jobs["C"].max_processes = 1025: out of bounds (0..1024)' \
    'bad.lua: jobs["D"].max_attempts = -1: out of bounds (0..1000000)' \
    'bad.lua: jobs["E"].min_processes = 1.5: not a whole number (0..1024)' \
    'bad.lua: jobs["F"]: max_processes must be >= min_processes (got 1 < 2)' \
    'bad.lua: jobs["G"]: expected a table of attributes, got 8' \
    'bad.lua: jobs["H"].concurrency = 0: out of bounds (1..10000)' \
    'bad.lua: jobs["I"].concurrency = 10001: out of bounds (1..10000)' \
    'bad.lua: jobs: expected job names as keys, got 1'
conf bad 'local x = 1'
expect_errors "not a table" 'bad.lua: must return a table of options, not nil'
conf bad "$(printf 'return {\n  dirs = { "d" }\n  interval = 1,\n}')"
expect_errors "syntax error" "bad.lua:3: '}' expected (to close '{' at line 1) near 'interval'"
conf bad "$(printf 'local x = 1\nerror("boom")')"
expect_errors "runtime error" "bad.lua:2: boom"
conf bad 'return { logfile = os.getenv("HOME") }'
expect_errors "no os" "bad.lua:1: attempt to index global 'os' (a nil value)"
rm -f "$TMP/bad.lua"
expect_errors "missing file" "cannot open bad.lua: No such file or directory"
# An override that leaves max below the module's min: an error at load.
conf bad 'return { jobs = { ["Test::Conf::a"] = { max_processes = 0 } } }'
run --config bad.lua --check "$CONF"
assert_eq "override max below the module's min: --check exit status" 1 "$RUN_RC"
assert_contains "override max below the module's min: message" "$RUN_ERR" \
    'bad.lua: jobs["Test::Conf::a"]: max_processes must be >= min_processes (got 0 < 1); the job keeps its own attributes'
assert_eq "override max below min: the module's attributes kept" "$(printf "$line_a" 1 2 '')" "$(head -n 1 "$TMP/run.out")"

# ---- limits: a file that never ends, swells or loads bytecode ------------------
# Each stops with the file and the cause, exit 2, however the file
# catches the error; nothing is left running.
loop_msg='more than 10000000 instructions, the limit for a config file (a loop that never ends?)'
mem_msg='bad.lua: more than 64 MiB of memory, the limit for a config file'
conf bad 'while true do end'
expect_errors "an endless loop" "bad.lua:1: $loop_msg"
conf bad "$(printf 'local n = 0\nwhile true do\n  pcall(function() while true do n = n + 1 end end)\nend')"
expect_errors "an endless loop that catches the limit's error" "bad.lua:3: $loop_msg"
conf bad 'coroutine.wrap(function() while true do end end)()'
expect_errors "an endless loop in a coroutine" "bad.lua:1: $loop_msg"
conf bad 'return setmetatable({}, { __index = function() while true do end end })'
expect_errors "an endless __index of the returned table" "bad.lua:1: $loop_msg"
conf bad 'local t = {} while true do t[#t + 1] = {} end'
expect_errors "a table that grows without end" "$mem_msg"
conf bad 'local s = ("x"):rep(2 ^ 30) return {}'
expect_errors "one string of 1 GiB" "$mem_msg"
conf bad 'pcall(string.rep, "x", 2 ^ 28) return { interval = 2 }'
expect_errors "a memory error the file caught" "$mem_msg"
# Bytecode (not memory-safe in LuaJIT): load and loadstring are text only,
# whatever mode is asked for, and the file itself must be text.
conf bad 'return { interval = assert(load(string.dump(function() return 2 end)))() }'
expect_errors "load(string.dump(f))" "bad.lua:1: attempt to load chunk with wrong mode"
conf bad 'return { interval = assert(loadstring(string.dump(function() return 2 end)))() }'
expect_errors "loadstring(string.dump(f))" "bad.lua:1: attempt to load chunk with wrong mode"
conf bad 'return { interval = assert(load(string.dump(function() return 2 end), "f", "b"))() }'
expect_errors "load(string.dump(f), name, \"b\")" "bad.lua:1: attempt to load chunk with wrong mode"
conf dump 'local f = io.open(arg[1], "wb") f:write(string.dump(loadstring("return { interval = 2 }"))) f:close()'
"$GDLUA" run "$TMP/dump.lua" "$TMP/bad.lua" || fail "cannot write a bytecode file"
expect_errors "a bytecode file" "bad.lua: is LuaJIT bytecode: a config file must be Lua text"
# Text still loads, with its environment.
conf good2 "return { dirs = { \"$CONF\" }, interval = assert(load('return n', 'x', 'b', { n = 4 }))() }"
run --config good2.lua --check
assert_eq "load of text with an environment: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
# (The CPU time limit: test_config_cpu.sh.)

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
  jobs = { [\"Test::Conf::a\"] = { min_processes = 2 }, [\"No::Such::job\"] = { max_processes = 8 } },
}"
"$GDLUA" --config "$TMP/serve.lua" --logfile "$GDLUA_LOG" </dev/null >>"$GDLUA_OUT" 2>&1 &
GDLUA_PID=$!
wait_for "2 workers for Test::Conf::a (the override's min_processes)" 10 has_workers Test::Conf::a 2
out=$(gm -f Test::Conf::b <<<"hello") || fail "Test::Conf::b failed"
assert_eq "Test::Conf::b served" "hello" "$out"
record_children
assert_eq "processes started for Test::Conf::a" 2 "$(starts_of Test::Conf::a)"
# Serving, an override naming no loaded job is a warning (--check fails on it).
log_has_re 'WARN \[[0-9]+\] .*serve\.lua: jobs\["No::Such::job"\]: no such job is loaded; its overrides are ignored' ||
    fail "no warning for the override of a job not loaded: $(cat "$GDLUA_LOG")"

# A reload reads the file in a new loader: an endless loop fails the
# reload at once (not after the 120 s load timeout); the code serves on.
conf serve 'while true do end'
kill -HUP "$GDLUA_PID"
wait_for "the reload to fail" 20 log_has "reload failed: cannot read the configuration again: $TMP/serve.lua:1: $loop_msg"
out=$(gm -f Test::Conf::b <<<"again") || fail "Test::Conf::b failed after the failed reload"
assert_eq "Test::Conf::b after the failed reload" "again" "$out"

pass
