#!/bin/bash
# The command line: --help, --version and malformed options; --namespaces
# selects modules; --lib and --cpath find Lua and C libraries (a C module
# built as a user would, fixtures/cpath/cmod.c); GEARMAN_SERVERS is used
# without --server; --logfile and --loglevel.
#
# Usage: test_options.sh PATH/TO/gdlua DIR_OF_gdltest_cmod.so
source "$(dirname "$0")/lib.sh"

[[ -n ${2:-} ]] || fail "usage: $0 PATH/TO/gdlua DIR_OF_gdltest_cmod.so"
CMOD_DIR=$(readlink -f "$2")
[[ -f $CMOD_DIR/gdltest_cmod.so ]] || fail "no gdltest_cmod.so in '$2' (build the gdltest_cmod target)"
OPT=$FIXTURES/options

# Lua's default paths start with ./?.lua and ./?.so, and ctest runs this
# script where gdltest_cmod.so is built: run from the empty temp dir so
# only --lib and --cpath can find the libraries.
cd "$TMP" || fail "cannot cd to $TMP"
unset LUA_PATH LUA_CPATH LUA_PATH_5_1 LUA_CPATH_5_1 GEARMAN_SERVERS

# lib.sh's run: gdlua in the foreground, in $OPT (which holds no library
# either, and keeps paths in messages short: Lua abbreviates long ones).
RUN_DIR=$OPT

# expect_usage_error DESC MESSAGE ARGS...: gdlua ARGS exits 2 with
# MESSAGE on stderr and nothing on stdout.
expect_usage_error() {
    local desc=$1 msg=$2
    shift 2
    run "$@"
    assert_eq "$desc: exit status (stderr: $RUN_ERR)" 2 "$RUN_RC"
    assert_contains "$desc: stderr" "$RUN_ERR" "$msg"
    assert_eq "$desc: stdout" "" "$RUN_OUT"
}

# check_line JOB MIN MAX: the --check line of a job serving one function.
check_line() {
    printf '%s min=%s max=%s functions=%s title="gdlua: worker %s"' "$1" "$2" "$3" "$1" "$1"
}

# stop_gdlua: stops the gdlua under test (SIGTERM) and forgets it.
stop_gdlua() {
    record_children
    kill_wait "$GDLUA_PID" 10
    GDLUA_PID=
}

# ---- --help and --version ----------------------------------------------------
run --help
assert_eq "--help: exit status" 0 "$RUN_RC"
assert_eq "--help: stderr" "" "$RUN_ERR"
assert_eq "--help: first line" "usage: gdlua [options] DIR..." "$(head -n 1 "$TMP/run.out")"
for o in server lib cpath namespaces loglevel logfile shutdown_timeout interval max_idle_time \
    max_spawn_rate no_wakeups check help version; do
    grep -qE -- "^  --$o( |\$)" "$TMP/run.out" || fail "--help does not list --$o: $RUN_OUT"
done
help=$RUN_OUT
# Every option --help lists is one the parser knows (and -h is --help).
listed=$(grep -oE '^  --[a-z_]+' "$TMP/run.out" | sed 's/^  --//')
[[ $(wc -w <<<"$listed") -ge 14 ]] || fail "--help lists fewer than 14 options: $listed"
for o in $listed; do
    run "--$o"
    assert_not_contains "gdlua --$o (listed by --help)" "$RUN_ERR" "unknown option"
done
run -h
assert_eq "-h: exit status" 0 "$RUN_RC"
assert_eq "-h prints --help" "$help" "$RUN_OUT"

version=$(sed -nE 's/^project\(gdlua VERSION ([0-9]+\.[0-9]+\.[0-9]+).*/\1/p' "$REPO/CMakeLists.txt")
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "cannot read the project version from CMakeLists.txt"
run --version
assert_eq "--version: exit status" 0 "$RUN_RC"
assert_eq "--version" "gdlua $version" "$RUN_OUT"
assert_eq "--version: stderr" "" "$RUN_ERR"
run -V
assert_eq "-V" "gdlua $version" "$RUN_OUT"
echo 'io.write(require("gdlua").version)' >"$TMP/version.lua"
run run "$TMP/version.lua"
assert_eq "gdlua.version in Lua" "$version" "$RUN_OUT"

# ---- malformed command lines: exit 2, naming the problem ------------------------
expect_usage_error "--foo" "gdlua: unknown option --foo" --foo "$OPT/ns"
expect_usage_error "--foo=1" "gdlua: unknown option --foo" --foo=1 "$OPT/ns"
expect_usage_error "-x" "gdlua: unknown option -x" -x "$OPT/ns"
expect_usage_error "no directory" "gdlua: no script directory given"
expect_usage_error "--check without a directory" "gdlua: no script directory given" --check
expect_usage_error "--lib without its directory" "gdlua: --lib needs a value" "$OPT/ns" --lib
expect_usage_error "--cpath without its directory" "gdlua: --cpath needs a value" "$OPT/ns" --cpath
expect_usage_error "--interval x" "gdlua: --interval: 'x' is not a whole number" --interval x "$OPT/ns"
expect_usage_error "--interval=-1" "gdlua: --interval: '-1' is not a whole number" --interval=-1 "$OPT/ns"
expect_usage_error "--max-idle-time 1.5" "gdlua: --max_idle_time: '1.5' is not a whole number" \
    --max-idle-time 1.5 "$OPT/ns"
expect_usage_error "--loglevel loud" "gdlua: --loglevel: unknown level 'loud'" --loglevel loud "$OPT/ns"
expect_usage_error "--check=1" "gdlua: --check takes no value" --check=1 "$OPT/ns"
expect_usage_error "--server with a bad port" "gdlua: --server: bad port '99999'" \
    --server 127.0.0.1:99999 "$OPT/ns"
GEARMAN_SERVERS=127.0.0.1:nope expect_usage_error "GEARMAN_SERVERS with a bad port" \
    "gdlua: GEARMAN_SERVERS: bad port 'nope'" --check "$OPT/ns"
# An empty list is refused, not read as 127.0.0.1:4730.
expect_usage_error "--server ''" "gdlua: --server: '' names no server (HOST[:PORT][,...])" --server '' "$OPT/ns"
expect_usage_error "--server ,," "gdlua: --server: ',,' names no server" --server ,, "$OPT/ns"

# --check looks each job server's name up: one that does not resolve (.invalid
# never does, RFC 6761) fails it, named, while the jobs are still listed.
run --check --server 127.0.0.1:4730,no-such-host.invalid:4731 "$OPT/env"
assert_eq "--check with a name that does not resolve: exit status" 1 "$RUN_RC"
assert_eq "--check with a name that does not resolve: jobs listed" "$(check_line Test::Env::hello 1 1)" "$RUN_OUT"
assert_contains "--check with a name that does not resolve" "$RUN_ERR" \
    "ERROR ["
assert_contains "--check with a name that does not resolve" "$RUN_ERR" \
    "job server no-such-host.invalid:4731: cannot resolve: "
assert_not_contains "--check: the name that resolves" "$RUN_ERR" "127.0.0.1:4730"

# A script directory that does not exist: a message naming it, non-zero
# (no job to serve), whether checking or serving (it exits before it
# would connect to the unused port 1).
run --check "$TMP/no-such-dir"
assert_eq "--check of a missing directory: exit status" 1 "$RUN_RC"
assert_contains "--check of a missing directory" "$RUN_ERR" "cannot read script directory $TMP/no-such-dir"
run --server 127.0.0.1:1 "$TMP/no-such-dir"
[[ $RUN_RC != 0 && $RUN_RC != 124 ]] || fail "gdlua on a missing directory: exit status $RUN_RC, expected non-zero (124: it did not exit)"
assert_contains "gdlua on a missing directory" "$RUN_ERR" "cannot read script directory $TMP/no-such-dir"

# ---- --namespaces under --check --------------------------------------------------
A_TOP=$(check_line A::top 1 1)
A_X=$(check_line A::X::x 1 1)
A_B_Y=$(check_line A::B::Y::y 1 2)
AB_Z=$(check_line AB::Z::z 1 1)
C_C=$(check_line C::c 1 1)

# check_ns DESC EXPECTED_LINES... -- ARGS...: gdlua --check ARGS lists
# exactly the expected jobs (in any order) and exits 0.
check_ns() {
    local desc=$1 want=()
    shift
    while [[ $1 != -- ]]; do
        want+=("$1")
        shift
    done
    shift
    run --check "$@"
    assert_eq "$desc: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
    assert_eq "$desc: jobs listed" "$(printf '%s\n' "${want[@]}" | sort)" "$(sort <<<"$RUN_OUT")"
}

check_ns "no --namespaces" "$A_TOP" "$A_X" "$A_B_Y" "$AB_Z" "$C_C" -- "$OPT/ns"
check_ns "--namespaces A" "$A_TOP" "$A_X" "$A_B_Y" -- --namespaces A "$OPT/ns"
for m in AB::Z C; do
    assert_not_contains "--namespaces A: log" "$RUN_ERR" "module $m"
done
check_ns "--namespaces AB" "$AB_Z" -- --namespaces AB "$OPT/ns"
check_ns "--namespaces A::B" "$A_B_Y" -- --namespaces A::B "$OPT/ns"
check_ns "--namespaces=A::X" "$A_X" -- --namespaces=A::X "$OPT/ns"
check_ns "--namespaces A::B::Y" "$A_B_Y" -- --namespaces A::B::Y "$OPT/ns"
check_ns "--namespaces C --namespaces AB" "$AB_Z" "$C_C" -- --namespaces C --namespaces AB "$OPT/ns"
run --check --namespaces Nothing "$OPT/ns"
assert_eq "--namespaces selecting nothing: exit status" 1 "$RUN_RC"
assert_eq "--namespaces selecting nothing: jobs listed" "" "$RUN_OUT"
run --check --namespaces A::X::x "$OPT/ns"
assert_eq "--namespaces naming a function, not a module: exit status" 1 "$RUN_RC"
assert_eq "--namespaces naming a function, not a module: jobs listed" "" "$RUN_OUT"

# ---- --lib and --cpath under --check ---------------------------------------------
run --check uselib
assert_eq "--check without --lib: exit status" 1 "$RUN_RC"
assert_eq "--check without --lib: jobs listed" "" "$RUN_OUT"
assert_contains "--check without --lib" "$RUN_ERR" \
    "module Test::UsesLib not loaded: uselib/Test/UsesLib.lua:4: module 'helperlib' not found"
run --check --lib "$OPT/lib" "$OPT/uselib"
assert_eq "--check with --lib: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
assert_eq "--check with --lib" "$(check_line Test::UsesLib::shout 1 1)" "$RUN_OUT"

run --check usecmod
assert_eq "--check without --cpath: exit status" 1 "$RUN_RC"
assert_eq "--check without --cpath: jobs listed" "" "$RUN_OUT"
assert_contains "--check without --cpath" "$RUN_ERR" \
    "module Test::CMod not loaded: usecmod/Test/CMod.lua:4: module 'gdltest_cmod' not found"
run --check --cpath "$CMOD_DIR" "$OPT/usecmod"
assert_eq "--check with --cpath: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
assert_eq "--check with --cpath" "$(printf '%s\n%s' "$(check_line Test::CMod::add 1 1)" \
    "$(check_line Test::CMod::greet 1 1)")" "$RUN_OUT"

# ---- a directory given with a trailing slash: paths below it without "//" ----------
run --check "$OPT/env//"
assert_eq "--check DIR//: exit status" 0 "$RUN_RC"
assert_contains "--check DIR//" "$RUN_ERR" "module Test::Env: 1 function(s) from $OPT/env/Test/Env.lua"
assert_not_contains "--check DIR//" "$RUN_ERR" "//"
run --check --lib "$OPT/lib/" uselib/
assert_eq "--check --lib DIR/ DIR/: exit status (stderr: $RUN_ERR)" 0 "$RUN_RC"
assert_contains "--check --lib DIR/ DIR/" "$RUN_ERR" "module Test::UsesLib: 1 function(s) from uselib/Test/UsesLib.lua"

# ---- --logfile and --loglevel under --check ------------------------------------------
run --check "$OPT/env"
assert_eq "--check: exit status" 0 "$RUN_RC"
assert_contains "--check logs to stderr" "$RUN_ERR" "INFO ["
assert_contains "--check logs to stderr" "$RUN_ERR" "module Test::Env: 1 function(s) from $OPT/env/Test/Env.lua"
run --check --loglevel error "$OPT/env"
assert_eq "--check --loglevel error: exit status" 0 "$RUN_RC"
assert_eq "--check --loglevel error: stderr" "" "$RUN_ERR"
assert_eq "--check --loglevel error: jobs listed" "$(check_line Test::Env::hello 1 1)" "$RUN_OUT"
echo "earlier line" >"$TMP/check.log"
run --check --logfile "$TMP/check.log" "$OPT/env"
assert_eq "--check --logfile: exit status" 0 "$RUN_RC"
assert_eq "--check --logfile: stderr" "" "$RUN_ERR"
assert_eq "--check --logfile: first line kept (append)" "earlier line" "$(head -n 1 "$TMP/check.log")"
grep -qF "INFO [" "$TMP/check.log" || fail "--check --logfile: no INFO line in the log file: $(cat "$TMP/check.log")"
grep -qF "module Test::Env: 1 function(s)" "$TMP/check.log" ||
    fail "--check --logfile: no INFO line for Test::Env in the log file: $(cat "$TMP/check.log")"

# ---- serving: --namespaces ------------------------------------------------------------
start_gearmand
start_gdlua --namespaces A "$OPT/ns"
for f in A::top A::X::x A::B::Y::y; do
    wait_for "a worker for $f" 10 has_workers "$f"
done
assert_eq "A::top" "A top 1" "$(gm -f A::top 1)"
assert_eq "A::X::x" "A::X x 2" "$(gm -f A::X::x 2)"
assert_eq "A::B::Y::y" "A::B::Y y 3" "$(gm -f A::B::Y::y 3)"
# Modules outside A were never loaded, so nothing registered their functions.
status=$(gadmin --status)
for f in AB::Z::z C::c; do
    assert_not_contains "--namespaces A: gearadmin --status" "$status" "$f"$'\t'
done
for m in AB::Z C; do
    log_has "module $m" && fail "--namespaces A: the log mentions module $m: $(grep -F "module $m" "$GDLUA_LOG")"
done
log_has "module A::B::Y: 1 function(s)" || fail "--namespaces A: module A::B::Y not logged as loaded"
stop_gdlua

# ---- serving: --lib ------------------------------------------------------------------
start_gdlua --lib "$OPT/lib" "$OPT/uselib"
wait_for "a worker for Test::UsesLib::shout" 10 has_workers Test::UsesLib::shout
assert_eq "Test::UsesLib::shout" "helperlib:HEY helperpkg" "$(gm -f Test::UsesLib::shout hey)"
stop_gdlua

# ---- serving: --cpath (a C module of the user's own) ----------------------------------
start_gdlua --cpath "$CMOD_DIR" "$OPT/usecmod"
wait_for "a worker for Test::CMod::add" 10 has_workers Test::CMod::add
wait_for "a worker for Test::CMod::greet" 10 has_workers Test::CMod::greet
assert_eq "cmod.add(40, 2)" 42 "$(gm -f Test::CMod::add '40 2')"
assert_eq "cmod.add(-50, 8)" -42 "$(printf '%s' '-50 8' | gm -f Test::CMod::add)"
assert_eq "cmod.greet" "hello, world from C" "$(gm -f Test::CMod::greet world)"
assert_eq "cmod.greet of an empty name" "hello,  from C" "$(gm -f Test::CMod::greet -s)"
stop_gdlua

# ---- serving: GEARMAN_SERVERS without --server; --logfile at the default level ---------
echo "earlier line" >"$GDLUA_LOG"
: >"$GDLUA_OUT"
GEARMAN_SERVERS=127.0.0.1:$PORT "$GDLUA" --logfile "$GDLUA_LOG" --console_port 0 "$OPT/env" </dev/null >>"$GDLUA_OUT" 2>&1 &
GDLUA_PID=$! # lib.sh's cleanup stops it
wait_for "a worker for Test::Env::hello (server from GEARMAN_SERVERS)" 10 has_workers Test::Env::hello
assert_eq "Test::Env::hello via GEARMAN_SERVERS" "env hello a" "$(gm -f Test::Env::hello a)"
assert_eq "--logfile: first line kept (append)" "earlier line" "$(head -n 1 "$GDLUA_LOG")"
log_has_re "INFO \[[0-9]+\] module Test::Env: 1 function\(s\)" || fail "no INFO line from the loader in the log file"
# The child logs "ready" (debug) before it registers with gearmand, so by
# now it would be there at debug level.
log_has " DEBUG [" && fail "DEBUG lines at the default level: $(grep -F ' DEBUG [' "$GDLUA_LOG" | head -3)"
log_has ": ready" && fail "a ready line at the default level"
assert_eq "gdlua's stdout/stderr with --logfile" "" "$(cat "$GDLUA_OUT")"
stop_gdlua

# ---- serving: --loglevel debug; --server wins over GEARMAN_SERVERS ---------------------
: >"$GDLUA_LOG"
GEARMAN_SERVERS=127.0.0.1:1 start_gdlua --loglevel debug "$OPT/env"
wait_for "a worker for Test::Env::hello (debug)" 10 has_workers Test::Env::hello
child=$(worker_pids_for Test::Env::hello | head -n 1)
wait_for "the debug ready line of child $child" 5 log_has "DEBUG [$child] Test::Env::hello: ready"
assert_eq "Test::Env::hello at debug level" "env hello b" "$(gm -f Test::Env::hello b)"
wait_for "the debug line of the job" 5 log_has_re "DEBUG \[$child\] Test::Env::hello: job H:"
# GEARMAN_SERVERS is ignored when --server is given: nothing about port 1.
log_has_re '127\.0\.0\.1:1([^0-9]|$)' &&
    fail "--server given, yet the log mentions GEARMAN_SERVERS' 127.0.0.1:1: $(grep -E '127\.0\.0\.1:1([^0-9]|$)' "$GDLUA_LOG" | head -3)"
stop_gdlua

# ---- --interval 0 with --no_wakeups: accepted, with a warning -----------------------------
: >"$GDLUA_LOG"
start_gdlua --interval 0 --no_wakeups "$OPT/env"
wait_for "the warning about --interval 0 --no_wakeups" 10 \
    log_has "--interval 0 with --no_wakeups: nothing will notice queued work"
stop_gdlua

pass
