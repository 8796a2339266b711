# shellcheck shell=bash
# lib.sh: shared helpers for gdlua's integration tests.
#
# Sourced by every tests/integration/test_<name>.sh, which gets the gdlua
# binary as $1. Each test runs its own gearmand on a free port and its own
# gdlua, in a private temp dir; an EXIT trap stops by pid (never by name)
# everything the test started and removes the temp dir.
#
# Synchronisation is by polling a condition with a deadline (wait_for),
# never by a fixed sleep.
#
# Sanitizer reports (an ASan/UBSan build) fail the test: every process the
# test starts writes its reports to $TMP/sanitizer.PID (log_path), and
# pass() and the EXIT trap, once everything is stopped, fail the test when
# such a file or any other output file under $TMP (gdlua's log and output,
# whatever a test captured) holds a report.

set -u

if [[ $# -lt 1 || -z ${1:-} ]]; then
    echo "usage: $0 PATH/TO/gdlua" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "FAIL $(basename "$0" .sh): gdlua binary '$1' is not executable" >&2
    exit 1
fi
GDLUA=$(readlink -f "$1")
TEST_NAME=$(basename "$0" .sh)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES=$HERE/fixtures
REPO=$(cd "$HERE/../.." && pwd)
GEARMAND=/usr/sbin/gearmand
GEARMAND_ARGS=() # extra arguments for start_gearmand (e.g. a persistent queue)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gdlua-it.$TEST_NAME.XXXXXX") || exit 1
GDLUA_LOG=$TMP/gdlua.log
GDLUA_OUT=$TMP/gdlua.out # gdlua's stdout and stderr
PORT=
GEARMAND_PID=
GDLUA_PID=
GDLUA_STATUS= # gdlua's exit status once wait_gdlua reaped it
CHILD_PIDS=()  # every gdlua child pid seen (record_children)
EXTRA_PIDS=()  # background helpers (clients) started by the test

# A report goes to $SANITIZER_LOG.PID instead of stderr, from gdlua, its
# children, gdlua run/call and gdlua-console alike (the options are
# inherited; a later log_path wins over one set by the caller). The known
# harmless leaks are suppressed (ctest sets the same; the caller's own
# LSAN_OPTIONS come after, so they win).
SANITIZER_LOG=$TMP/sanitizer
SANITIZER_RE='runtime error:|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer'
SANITIZER_REPORTED=
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SANITIZER_LOG"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SANITIZER_LOG"
export LSAN_OPTIONS="suppressions=$REPO/tests/sanitizer/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

# ---- time and output ------------------------------------------------------

now_ms() {
    local t=${EPOCHREALTIME//[!0-9]/} # the radix character depends on the locale
    echo $((t / 1000))
}

log_tail() {
    local f=${1:-$GDLUA_LOG} n=${2:-40}
    if [[ -s $f ]]; then
        echo "---- last $n lines of $(basename "$f") ----"
        tail -n "$n" "$f"
        echo "----"
    else
        echo "---- $(basename "$f"): empty or missing ----"
    fi
}

# fail MESSAGE...: ends the test (the EXIT trap cleans up).
fail() {
    {
        echo "FAIL $TEST_NAME: $*"
        log_tail "$GDLUA_LOG"
        [[ -s $GDLUA_OUT ]] && log_tail "$GDLUA_OUT" 20
    } >&2
    exit 1
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
    if [[ "$2" != "$3" ]]; then
        fail "$1: expected '$2', got '$3'"
    fi
}

# assert_contains DESC HAYSTACK NEEDLE
assert_contains() {
    if [[ "$2" != *"$3"* ]]; then
        fail "$1: expected to find '$3' in: $2"
    fi
}

# assert_not_contains DESC HAYSTACK NEEDLE
assert_not_contains() {
    if [[ "$2" == *"$3"* ]]; then
        fail "$1: did not expect '$3' in: $2"
    fi
}

# ---- processes --------------------------------------------------------------

alive() {
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null
}

# A pid that is gone or a zombie counts as dead.
dead() {
    local st
    alive "$1" || return 0
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
    [[ $st == Z* ]]
}

# children_of PID: the worker processes of a gdlua master (its loaders
# and their spare processes, "gdlua: loader N" and "gdlua: spare N", left
# out).
children_of() {
    ps -o pid=,args= --ppid "$1" 2>/dev/null | awk '$2 != "gdlua:" || ($3 != "loader" && $3 != "spare") { print $1 }'
}

# no_children: the gdlua under test has no worker process.
no_children() {
    [[ -z $(children_of "$GDLUA_PID") ]]
}

# loaders_of PID: a gdlua master's loaders (gdl_loader.c).
loaders_of() {
    ps -o pid=,args= --ppid "$1" 2>/dev/null | awk '$2 == "gdlua:" && $3 == "loader" { print $1 }'
}

# Remembers the current children of gdlua so cleanup (and tests) can
# check them later even once the master is gone.
record_children() {
    local p
    [[ -n $GDLUA_PID ]] || return 0
    for p in $(ps -o pid= --ppid "$GDLUA_PID" 2>/dev/null); do
        [[ " ${CHILD_PIDS[*]-} " == *" $p "* ]] || CHILD_PIDS+=("$p")
    done
}

# Only signal a recorded child while it still runs the gdlua binary
# (guards against pid reuse after it died; titles can be anything).
is_gdlua_proc() {
    [[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$GDLUA" ]]
}

# kill_wait PID TIMEOUT_S: SIGTERM, then SIGKILL after the deadline.
kill_wait() {
    local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    while ! dead "$pid" && (($(now_ms) < deadline)); do
        sleep 0.05
    done
    if ! dead "$pid"; then
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# stop_all: stops everything the test started (idempotent). gdlua gets
# SIGTERM first, so a sanitized master runs its exit-time (leak) checks.
stop_all() {
    local p
    record_children
    if [[ -n $GDLUA_PID ]]; then
        kill_wait "$GDLUA_PID" 5
        GDLUA_PID=
    fi
    for p in "${CHILD_PIDS[@]-}"; do
        [[ -n $p ]] || continue
        if alive "$p" && is_gdlua_proc "$p"; then
            kill -KILL "$p" 2>/dev/null
        fi
    done
    for p in "${EXTRA_PIDS[@]-}"; do
        [[ -n $p ]] || continue
        if alive "$p" && is_gdlua_proc "$p"; then
            kill_wait "$p" 5 # another gdlua master the test started
        elif alive "$p"; then
            kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    EXTRA_PIDS=()
    if [[ -n $GEARMAND_PID ]]; then
        kill_wait "$GEARMAND_PID" 5
        GEARMAND_PID=
    fi
}

# sanitizer_reports: the files under $TMP holding a sanitizer report. Text
# files only (no images or binaries), but the log_path files and gdlua's
# log and output are read even if a stray byte makes them look binary.
sanitizer_reports() {
    {
        grep -rlIE -- "$SANITIZER_RE" "$TMP"
        grep -laE -- "$SANITIZER_RE" "$GDLUA_LOG" "$GDLUA_OUT" "$SANITIZER_LOG".*
    } 2>/dev/null | LC_ALL=C sort -u
}

# check_sanitizers: returns 1, printing each report (once), if there is any.
check_sanitizers() {
    local f files
    files=$(sanitizer_reports)
    [[ -z $files ]] && return 0
    if [[ -z $SANITIZER_REPORTED ]]; then
        SANITIZER_REPORTED=1
        {
            echo "FAIL $TEST_NAME: sanitizer report(s) in: $(printf '%s\n' "$files" | sed "s|^$TMP/||" | paste -sd' ')"
            while IFS= read -r f; do
                echo "---- $(basename "$f") ----"
                if [[ $f == "$SANITIZER_LOG".* ]]; then
                    head -n 80 "$f"
                else
                    grep -aE -m 3 -B 2 -A 30 -- "$SANITIZER_RE" "$f" | head -n 80
                fi
            done <<<"$files"
            echo "----"
        } >&2
    fi
    return 1
}

cleanup() {
    local rc=$?
    trap - EXIT
    stop_all
    release_ports
    if ! check_sanitizers && ((rc == 0)); then
        rc=1
    fi
    if [[ -n ${KEEP_TMP:-} ]]; then
        echo "$TEST_NAME: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- waiting ----------------------------------------------------------------

# wait_for DESC TIMEOUT_S CMD...: polls CMD every 50 ms until it succeeds;
# fails the test with DESC when the deadline passes, or at once when the
# gdlua under test has exited (unless WAIT_ALLOW_EXIT=1).
wait_for() {
    local desc=$1 timeout=$2 deadline
    shift 2
    deadline=$(($(now_ms) + ${timeout%.*} * 1000))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [[ ${WAIT_ALLOW_EXIT:-0} != 1 && -n $GDLUA_PID ]] && dead "$GDLUA_PID"; then
            wait "$GDLUA_PID" 2>/dev/null
            fail "gdlua (pid $GDLUA_PID) exited with status $? while waiting for: $desc"
        fi
        if (($(now_ms) >= deadline)); then
            fail "timed out after ${timeout}s waiting for: $desc"
        fi
        sleep 0.05
    done
}

# hold_for DESC SECONDS CMD...: CMD must keep succeeding for SECONDS
# (checked every 50 ms); fails the test at the first time it does not.
# For "stays up" checks, not for synchronisation.
hold_for() {
    local desc=$1 secs=$2 deadline
    shift 2
    deadline=$(($(now_ms) + ${secs%.*} * 1000))
    while (($(now_ms) < deadline)); do
        "$@" >/dev/null 2>&1 || fail "no longer true: $desc"
        sleep 0.05
    done
}

# ---- gearmand ---------------------------------------------------------------

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# listens_on PID PORT: PID holds a socket listening on 127.0.0.1:PORT
# (from /proc: a port some other process took does not count).
listens_on() {
    local hex inode fd
    printf -v hex '%04X' "$2"
    inode=$(awk -v a="0100007F:$hex" '$2 == a && $4 == "0A" { print $10; exit }' /proc/net/tcp 2>/dev/null)
    [[ -n $inode ]] || return 1
    for fd in /proc/"$1"/fd/*; do
        [[ $(readlink "$fd" 2>/dev/null) == "socket:[$inode]" ]] && return 0
    done
    return 1
}

# Ports. Tests run in parallel (ctest -j, and other checkouts' suites on
# the same machine), so a port one test chose must not be chosen by
# another before it binds it, or while it holds it unbound on purpose
# (test_serverdown's server that is down); nor may it be a port the kernel
# hands to outgoing connections (ip_local_port_range): a gearmand that
# cannot bind waits 22 s before it gives up. free_port picks below that
# range, skips a port any TCP socket uses, and claims it with a directory
# under $PORT_CLAIMS (mkdir is atomic) holding the test's pid; the test's
# claims go at exit, and a claim of a dead test is cleared once old.
PORT_CLAIMS=${TMPDIR:-/tmp}/gdlua-it.ports
mkdir -p "$PORT_CLAIMS" 2>/dev/null
chmod 1777 "$PORT_CLAIMS" 2>/dev/null # shared by every user's tests, like /tmp
read -r PORT_EPHEMERAL_LO PORT_EPHEMERAL_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
    { PORT_EPHEMERAL_LO=32768 PORT_EPHEMERAL_HI=60999; }
if ((PORT_EPHEMERAL_LO - 10000 >= 2000)); then
    PORT_LO=10000 PORT_N=$((PORT_EPHEMERAL_LO - 10000))
elif ((65535 - PORT_EPHEMERAL_HI >= 2000)); then
    PORT_LO=$((PORT_EPHEMERAL_HI + 1)) PORT_N=$((65535 - PORT_EPHEMERAL_HI))
else
    PORT_LO=20000 PORT_N=40000 # no room outside: the ephemeral range it is
fi

# port_used PORT: some TCP socket (any state, IPv4 or IPv6) has PORT as
# its local port.
port_used() {
    local hex
    printf -v hex ':%04X' "$1"
    awk -v p="$hex" 'substr($2, length($2) - 4) == p { found = 1; exit } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# claim_port PORT: claims PORT for this test; fails if another has it.
claim_port() {
    local d=$PORT_CLAIMS/$1 owner
    if ! mkdir "$d" 2>/dev/null; then
        owner=$(cat "$d/pid" 2>/dev/null)
        # A test killed outright (a ctest timeout) leaves its claims.
        if [[ -n $owner ]] && ! kill -0 "$owner" 2>/dev/null && [[ -n $(find "$d" -maxdepth 0 -mmin +10) ]]; then
            rm -rf "$d"
        fi
        return 1
    fi
    echo "$$" >"$d/pid"
}

# release_ports: gives up this test's claims (at exit).
release_ports() {
    local d
    for d in "$PORT_CLAIMS"/*/; do
        [[ $(cat "$d/pid" 2>/dev/null) == "$$" ]] && rm -rf "$d"
    done
    return 0
}

# free_port: a port no socket uses and no other test claimed, now claimed
# by this one.
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((PORT_LO + (RANDOM * 32768 + RANDOM) % PORT_N))
        if ! port_used "$p" && claim_port "$p"; then
            echo "$p"
            return 0
        fi
    done
    echo "no free port found in $PORT_LO-$((PORT_LO + PORT_N - 1))" >&2
    return 1
}

# start_gearmand [PORT]: a fresh gearmand on PORT (default: a free port, set
# in $PORT), in the background. Retries with another port when gearmand
# dies at start (another process took the port first).
start_gearmand() {
    local want=${1:-} attempt deadline
    for ((attempt = 0; attempt < 8; attempt++)); do
        PORT=${want:-$(free_port)} || fail "no free port"
        "$GEARMAND" -L 127.0.0.1 -p "$PORT" -t 0 --log-file="$TMP/gearmand.log" "${GEARMAND_ARGS[@]}" \
            </dev/null >>"$TMP/gearmand.out" 2>&1 &
        GEARMAND_PID=$!
        deadline=$(($(now_ms) + 10000))
        while (($(now_ms) < deadline)); do
            if dead "$GEARMAND_PID"; then
                break
            fi
            if port_open "$PORT" &&
                [[ $(timeout 5 gearadmin -h 127.0.0.1 -p "$PORT" --getpid 2>/dev/null | tr -d '[:space:]') == "$GEARMAND_PID" ]]; then
                return 0
            fi
            sleep 0.05
        done
        kill -KILL "$GEARMAND_PID" 2>/dev/null
        wait "$GEARMAND_PID" 2>/dev/null
        GEARMAND_PID=
        if [[ -n $want ]]; then
            # A fixed port: it may still be in TIME_WAIT or taken; retry it.
            sleep 0.2
        fi
    done
    fail "could not start gearmand (last port $PORT); $(tail -n 5 "$TMP/gearmand.log" "$TMP/gearmand.out" 2>/dev/null)"
}

# gadmin ARGS...: gearadmin against our gearmand.
gadmin() {
    timeout 10 gearadmin -h 127.0.0.1 -p "$PORT" "$@"
}

# workers_for FUNC: how many workers gearmand lists for FUNC (0 if unknown).
workers_for() {
    gadmin --status 2>/dev/null |
        awk -F'\t' -v f="$1" '$1 == f { n = $4; found = 1 } END { print (found ? n + 0 : 0) }'
}

# worker_pids_for FUNC: pids of the gdlua children gearmand lists as
# workers for FUNC ("gearadmin --workers": "FD IP ID : FUNC..."; a child's
# id ends in ":PID", gdlua's own wake-up connection ends in ":wake").
worker_pids_for() {
    gadmin --workers 2>/dev/null | awk -v f="$1" '
        $3 ~ /^gdlua:.*:[0-9]+$/ {
            for (i = 5; i <= NF; i++)
                if ($i == f) { n = split($3, p, ":"); print p[n]; break }
        }'
}

# has_workers FUNC [N]: at least N (default 1) gdlua children are
# registered with gearmand for FUNC.
has_workers() {
    (($(worker_pids_for "$1" | wc -l) >= ${2:-1}))
}

# gm ARGS...: the gearman CLI against our gearmand, with a timeout.
gm() {
    timeout 20 gearman -h 127.0.0.1 -p "$PORT" "$@"
}

# ---- gdlua ------------------------------------------------------------------

# start_gdlua ARGS...: gdlua in the background against our gearmand.
start_gdlua() {
    [[ -n $PORT ]] || fail "start_gdlua: no gearmand port set"
    # No console unless the test asks for one (a later --console_port wins):
    # parallel tests would race for the default port.
    "$GDLUA" --server "127.0.0.1:$PORT" --logfile "$GDLUA_LOG" --console_port 0 "$@" \
        </dev/null >>"$GDLUA_OUT" 2>&1 &
    GDLUA_PID=$!
    GDLUA_STATUS=
    WAIT_ALLOW_EXIT=0
}

# wait_gdlua TIMEOUT_S: waits for gdlua to exit by itself; sets GDLUA_STATUS.
wait_gdlua() {
    WAIT_ALLOW_EXIT=1 wait_for "gdlua (pid $GDLUA_PID) to exit" "$1" dead "$GDLUA_PID"
    wait "$GDLUA_PID"
    GDLUA_STATUS=$?
    GDLUA_PID=
}

# log_count PATTERN: how many gdlua log lines contain the fixed string.
log_count() {
    grep -cF -- "$1" "$GDLUA_LOG" 2>/dev/null || true
}

log_has() {
    grep -qF -- "$1" "$GDLUA_LOG" 2>/dev/null
}

# log_count_re / log_has_re ERE: the same with an extended regexp.
log_count_re() {
    grep -cE -- "$1" "$GDLUA_LOG" 2>/dev/null || true
}

log_has_re() {
    grep -qE -- "$1" "$GDLUA_LOG" 2>/dev/null
}

# log_with_ms [FILE]: each line of the log (default gdlua's) that starts
# with gdlua's time stamp ([YYYY-MM-DDTHH:MM:SS.mmm], UTC) as "MS LINE",
# MS the stamp in ms since the epoch: for time windows measured by the
# log's own clock rather than by when the test looked.
log_with_ms() {
    TZ=UTC awk '
        /^\[[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9]\]/ {
            t = mktime(substr($0, 2, 4) " " substr($0, 7, 2) " " substr($0, 10, 2) " " \
                substr($0, 13, 2) " " substr($0, 16, 2) " " substr($0, 19, 2))
            printf "%.0f %s\n", t * 1000 + substr($0, 22, 3), $0
        }' "${1:-$GDLUA_LOG}" 2>/dev/null
}

# log_ms ERE [FILE]: the time stamp (ms) of the first log line matching
# ERE; nothing if none does.
log_ms() {
    log_with_ms "${2:-}" | grep -E -m 1 -- "$1" | cut -d' ' -f1
}

# re_quote STRING: STRING as a literal in an extended regexp.
re_quote() {
    printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'
}

# starts_of JOB [PID]: how many "start PID JOB" lines the log has.
starts_of() {
    log_count_re "\] start ${2:-[0-9]+} $(re_quote "$1")( \\(|:|\$)"
}

# spawn_bg PIDVAR CMD...: runs CMD in the background, records its pid for
# cleanup and in the variable PIDVAR.
spawn_bg() {
    local var=$1
    shift
    "$@" &
    EXTRA_PIDS+=($!)
    printf -v "$var" '%s' "$!"
}

# gm_submit NAME FUNC WORKLOAD: a gearman client in the background (killed
# after 90 s); its output goes to $TMP/out.NAME, its exit status to
# $TMP/rc.NAME, written once it has ended (gm_answered NAME).
gm_submit() {
    (
        timeout 90 gearman -h 127.0.0.1 -p "$PORT" -f "$2" "$3" >"$TMP/out.$1" 2>&1
        echo $? >"$TMP/rc.$1.tmp" && mv "$TMP/rc.$1.tmp" "$TMP/rc.$1"
    ) &
    EXTRA_PIDS+=($!)
}
gm_answered() {
    [[ -s $TMP/rc.$1 ]]
}

# ---- running in the foreground ------------------------------------------------

# run_cmd CMD...: CMD in the foreground, stdin /dev/null, in $RUN_DIR if
# set, killed after 30 s (a hang fails the test instead of stalling the
# suite); sets RUN_RC, RUN_OUT and RUN_ERR (kept in $TMP/run.out and
# $TMP/run.err).
run_cmd() {
    (cd "${RUN_DIR:-.}" && exec timeout 30 "$@" </dev/null >"$TMP/run.out" 2>"$TMP/run.err")
    RUN_RC=$?
    RUN_OUT=$(cat "$TMP/run.out")
    RUN_ERR=$(cat "$TMP/run.err")
}

# run ARGS...: gdlua ARGS through run_cmd.
run() {
    run_cmd "$GDLUA" "$@"
}

# ---- the test HTTP server (tests/lua/httpd.py) ------------------------------

HTTPD_PID=
HTTPD_PORT=

httpd_up() {
    [[ -s $TMP/httpd.ports ]]
}

# start_httpd: tests/lua/httpd.py on free loopback ports (the kernel picks
# them); sets HTTPD_PORT (HTTP) and HTTPD_PID. It exits with the test, and
# cleanup stops it by its pid.
start_httpd() {
    rm -f "$TMP/httpd.ports"
    spawn_bg HTTPD_PID python3 "$REPO/tests/lua/httpd.py" "$TMP/httpd.ports" "$$"
    wait_for "the test HTTP server to listen" 30 httpd_up
    read -r HTTPD_PORT _ _ <"$TMP/httpd.ports"
}

# ---- the load client (fixtures/load/load.lua) ----------------------------------

LOAD_PID=
LOAD_RESULT=

# start_load FUNCTION [SETSIZE]: the load client in the background against
# our gearmand: "job K" to FUNCTION in task sets of SETSIZE (default 50),
# every result checked, until stop_load.
start_load() {
    rm -f "$TMP/load.stop" "$TMP/load.progress"
    spawn_bg LOAD_PID "$GDLUA" run "$FIXTURES/load/load.lua" "$1" "127.0.0.1:$PORT" \
        "$TMP/load.stop" "$TMP/load.progress" "${2:-50}" >"$TMP/load.out" 2>&1
}

# load_checked [N]: the load client has checked more than N (default 0)
# results.
load_checked() {
    [[ -s $TMP/load.progress ]] && (($(cat "$TMP/load.progress") > ${1:-0}))
}

# load_count: how many results the load client has checked so far.
load_count() {
    cat "$TMP/load.progress" 2>/dev/null || echo 0
}

# stop_load [TIMEOUT_S]: asks the load client to stop after its current
# set and waits for it (default 30 s); fails the test unless it exited 0.
# LOAD_RESULT: its last line, "ok COUNT" or "ok COUNT VERSIONS".
stop_load() {
    local rc
    touch "$TMP/load.stop"
    WAIT_ALLOW_EXIT=1 wait_for "the load client to finish" "${1:-30}" dead "$LOAD_PID"
    wait "$LOAD_PID"
    rc=$?
    LOAD_RESULT=$(tail -1 "$TMP/load.out")
    assert_eq "load client exit status ($(cat "$TMP/load.out"))" 0 "$rc"
}

# shared_copy DIR: prints the path of a copy of DIR under $TMP that any
# user may read, for a test whose gdlua drops to another user (--user
# nobody): the checkout may sit where only its owner can enter (a clone
# in /root, mode 700). $TMP becomes traversable, not listable, by others.
# Fails the test unless nobody can read the copy (a $TMPDIR below such a
# directory).
shared_copy() {
    local dst
    dst=$TMP/shared.$(basename "$1")
    cp -R "$1" "$dst" || fail "shared_copy: cannot copy $1"
    chmod -R a+rX "$dst"
    chmod a+x "$TMP"
    if [[ $(id -u) == 0 ]] && ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$dst" -a -x "$dst"; then
        fail "shared_copy: nobody cannot reach $dst (is TMPDIR=${TMPDIR:-} below a private directory?)"
    fi
    echo "$dst"
}

# pass: stops everything, then passes unless a sanitizer reported.
pass() {
    stop_all
    check_sanitizers || exit 1
    echo "PASS $TEST_NAME"
    exit 0
}

# ---- the HTTP endpoint -------------------------------------------------------

HTTP_PORT=

# http_ready PID PORT: gdlua PID listens on 127.0.0.1:PORT and answers
# HTTP there (any status: a token may be required).
http_ready() {
    listens_on "$1" "$2" && curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$2/" 2>/dev/null
}

# start_http_gdlua ARGS...: gdlua with --http_bind on a free port
# ($HTTP_PORT). A port taken between the pick and gdlua's bind (tests run
# in parallel) is logged by gdlua, which serves on without HTTP: it is
# stopped and started on another port.
start_http_gdlua() {
    local attempt
    for ((attempt = 0; attempt < 5; attempt++)); do
        HTTP_PORT=$(free_port) || fail "no free port"
        start_gdlua --http_bind "127.0.0.1:$HTTP_PORT" "$@"
        wait_for "gdlua's HTTP on port $HTTP_PORT to answer or give up" 10 \
            eval "http_ready $GDLUA_PID $HTTP_PORT || log_has 'http: cannot listen on 127.0.0.1:$HTTP_PORT:'"
        http_ready "$GDLUA_PID" "$HTTP_PORT" && return 0
        kill_wait "$GDLUA_PID" 10
        GDLUA_PID=
    done
    fail "could not start gdlua's HTTP endpoint on a free port"
}

# metric_is LINE: /metrics has exactly this sample line. A process
# publishes a job's outcome after answering its client, so a test waits
# for the count it asserts (wait_for ... metric_is LINE).
metric_is() {
    curl -s --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics" | grep -qxF "$1"
}

# http_get PATH [CURL-ARGS...]: the body of GET PATH; fails the test unless
# the status is 200.
http_get() {
    local path=$1 code
    shift
    code=$(curl -s --max-time 10 -o "$TMP/http.body" -w '%{http_code}' "$@" "http://127.0.0.1:$HTTP_PORT$path") ||
        fail "GET $path: curl failed"
    [[ $code == 200 ]] || fail "GET $path: status $code: $(head -c 300 "$TMP/http.body")"
    cat "$TMP/http.body"
}

# http_status METHOD PATH [CURL-ARGS...]: the status code only.
http_status() {
    local method=(-X "$1") path=$2
    [[ $1 == HEAD ]] && method=(--head)
    shift 2
    curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${method[@]}" "$@" "http://127.0.0.1:$HTTP_PORT$path"
}
