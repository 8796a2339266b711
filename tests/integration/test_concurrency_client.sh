#!/bin/bash
# concurrency_client: in a concurrent pool, gdlua.client calls (c:call, a
# task set, a background job) wait in the calling job's coroutine, not
# holding its process. 20 jobs of one caller process each call a job that
# answers only once $CC_RELEASE exists: gearmand counting 20 of those
# running at once proves 20 calls in flight together in that one process
# (a call that blocked the process would let one through). Meanwhile the
# same process runs a task set and a background submit, and a caller past
# its own timeout fails alone. A pool of concurrency 1 calls as before.
source "$(dirname "$0")/lib.sh" "$@"

export CC_RELEASE=$TMP/release
start_gearmand
start_gdlua "$FIXTURES/concurrency_client"
for f in held square fail mark caller fan bg failover impatient single chatty single_chatty single_ok; do
    wait_for "a worker for CC::Jobs::$f" 20 has_workers "CC::Jobs::$f"
done
# The pids serving FUNC, each once (a concurrent process may have several
# worker connections).
pids_for() {
    worker_pids_for "$1" | sort -u
}
caller_pid=$(pids_for CC::Jobs::caller)
[[ $caller_pid =~ ^[0-9]+$ ]] || fail "one process serves the callers: '$caller_pid'"

# expect NAME RC TEXT: the client ended with RC and its output is TEXT
# (a failure's: begins with TEXT, the gearman tool adding "Job failed").
expect() {
    wait_for "client $1 to be answered" 60 gm_answered "$1"
    assert_eq "client $1: exit status ($(cat "$TMP/out.$1"))" "$2" "$(cat "$TMP/rc.$1")"
    if [[ $2 == 0 ]]; then
        assert_eq "client $1: output" "$3" "$(cat "$TMP/out.$1")"
    else
        [[ $(cat "$TMP/out.$1") == "$3"* ]] || fail "client $1: output: $(cat "$TMP/out.$1")"
    fi
}
# running FUNC: the jobs of FUNC gearmand counts as running.
running() {
    gadmin --status | awk -F'\t' -v f="$1" '$1 == f { n = $3 } END { print n + 0 }'
}
running_is() {
    [[ $(running "$1") == "$2" ]]
}

# 20 callers, each calling held: all 20 calls in flight at once.
for i in $(seq 20); do gm_submit c$i CC::Jobs::caller "$i"; done
wait_for "20 callers running" 30 running_is CC::Jobs::caller 20
wait_for "20 held jobs running at once, called from one process" 30 running_is CC::Jobs::held 20
assert_eq "processes serving the callers" "$caller_pid" "$(pids_for CC::Jobs::caller)"

# While they wait, the same process runs a task set and a background job.
gm_submit fan CC::Jobs::fan 3
expect fan 0 "1,4,9,false failed=no way statuses=3"
gm_submit bg CC::Jobs::bg "$TMP/marked"
wait_for "client bg to be answered" 60 gm_answered bg
assert_eq "client bg: exit status ($(cat "$TMP/out.bg"))" 0 "$(cat "$TMP/rc.bg")"
[[ $(cat "$TMP/out.bg") =~ ^queued\ H:[^\ ]+\ on\ 127\.0\.0\.1:$PORT$ ]] || fail "client bg: output: $(cat "$TMP/out.bg")"
wait_for "the background job to run" 30 test -e "$TMP/marked"

# Failover: a server that is down is passed over, in a yielding call too.
dead_port=$(free_port) || fail "no free port"
gm_submit failover CC::Jobs::failover "127.0.0.1:$dead_port,127.0.0.1:$PORT"
expect failover 0 "4,9"

# A caller past its own timeout (1 s) while its call waits is cancelled
# alone: the 20 calls stay in flight.
gm_submit late CC::Jobs::impatient late
expect late 1 "job timed out after 1 s"
alive "$caller_pid" || fail "the caller process died"
running_is CC::Jobs::caller 20 || fail "the other callers are no longer running: $(gadmin --status)"
assert_eq "processes serving the callers" "$caller_pid" "$(pids_for CC::Jobs::caller)"

# Concurrency 1: the call blocks its process as before, its wait capped
# by the job's own timeout (1 s), and the job is failed by that timeout
# (where the call was, or in the Lua after it) or answers with the capped
# call's message. Either way the call ends at its cap, so a timed-out
# job's process exits by itself, never SIGKILLed 1 s later as one still
# waiting in libgearman would be.
# capped NAME CALLEE WORKLOAD: that check for CC::Jobs::NAME calling CALLEE.
capped() {
    local pid out
    pid=$(pids_for "CC::Jobs::$1")
    gm_submit "$1" "CC::Jobs::$1" "$3"
    wait_for "client $1 to be answered" 60 gm_answered "$1"
    out="$(cat "$TMP/rc.$1") $(cat "$TMP/out.$1")"
    case $out in
    "1 job timed out after 1 s"* | "1 "*"/CC/Jobs.lua:"[0-9]*": job timed out after 1 s"*)
        wait_for "the timed-out $1 job's process to exit" 30 dead "$pid"
        assert_eq "SIGKILLs for the $1 job's process" 0 "$(log_count "process $pid CC::Jobs::$1: still running")"
        ;;
    "0 $1: nil / CC::Jobs::$2 timed out after "*" ms, all its calling job's timeout left on 127.0.0.1:$PORT: "*) ;;
    *) fail "client $1: $out" ;;
    esac
}
# The watchdog's SIGXCPU coming while libgearman waits must not start the
# wait again.
capped single held one
# A called job that sends data every 50 ms for 5 s: each chunk starts
# libgearman's wait again, so the end is checked per chunk (without that
# the call waited the 5 s and was SIGKILLed 1 s after its timeout).
capped single_chatty chatty two

gm_submit single_ok CC::Jobs::single_ok 7
expect single_ok 0 "single_ok 49"

# Released: every caller gets its own callee's answer.
touch "$CC_RELEASE"
for i in $(seq 20); do expect c$i 0 "caller got held $i"; done
assert_eq "processes serving the callers" "$caller_pid" "$(pids_for CC::Jobs::caller)"
assert_eq "caller process starts" 1 "$(starts_of CC::Jobs::callers)"
pass
