#!/bin/bash
# The job object: its fields; status, data and warnings reach the client
# while the job runs (seen with the gearman CLI and, exactly and in order,
# with fixtures/jobapi/client.c); a job object kept past its call raises;
# return values of each type reach the client as documented.
#
# Usage: test_jobapi.sh PATH/TO/gdlua PATH/TO/jobapi_client
source "$(dirname "$0")/lib.sh"

[[ -n ${2:-} && -x $2 ]] || fail "usage: $0 PATH/TO/gdlua PATH/TO/jobapi_client (build the jobapi_client target)"
CLIENT=$(readlink -f "$2")
FIXTURE=$FIXTURES/jobapi/Test/JobApi.lua

# client FUNCTION WORKLOAD [UNIQUE]: the C client; its event lines on
# stdout, its exit status as the function's.
client() {
    timeout 20 "$CLIENT" 127.0.0.1 "$PORT" "Test::JobApi::$1" "${@:2}"
}

# line_of TEXT: the fixture's line number holding TEXT.
line_of() {
    grep -nF -- "$1" "$FIXTURE" | head -n 1 | cut -d: -f1
}

start_gearmand
start_gdlua "$FIXTURES/jobapi"
for f in fields workload progress edges badstatus keep returns; do
    wait_for "a worker for Test::JobApi::$f" 10 has_workers "Test::JobApi::$f"
done

# ---- fields ----------------------------------------------------------------------
out=$(gm -f Test::JobApi::fields -u myunique hello) || fail "fields job failed"
IFS='|' read -r workload handle unique fname same <<<"$out"
assert_eq "job.workload" hello "$workload"
[[ $handle =~ ^H:[^:]+:[0-9]+$ ]] || fail "job.handle: expected H:HOST:N, got '$handle' (in '$out')"
assert_eq "job.unique (gearman -u)" myunique "$unique"
assert_eq "job.function_name" Test::JobApi::fields "$fname"
assert_eq "job.workload == workload" true "$same"

# Without -u, libgearman makes up a unique id (a UUID); the job sees it.
out=$(gm -f Test::JobApi::fields x) || fail "fields job without -u failed"
IFS='|' read -r _ handle2 unique2 _ _ <<<"$out"
[[ $unique2 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] ||
    fail "job.unique without -u: expected a UUID, got '$unique2'"
[[ $handle2 =~ ^H: && $handle2 != "$handle" ]] || fail "job.handle of a second job: '$handle2' (first '$handle')"

# The C client's unique and workload arrive as well.
out=$(client fields "with space" c-unique-1) || fail "fields via the C client failed: $out"
assert_eq "fields via the C client" "complete with space|" "${out%%H:*}"
assert_contains "fields via the C client" "$out" "|c-unique-1|Test::JobApi::fields|true"

# job.workload byte for byte: NUL, newline, high bytes.
printf 'a\0b\n\xff\x01z' >"$TMP/bin"
gm -f Test::JobApi::workload <"$TMP/bin" >"$TMP/bin.out" || fail "workload job failed"
cmp "$TMP/bin" "$TMP/bin.out" >/dev/null || fail "job.workload of binary data differs: $(od -c "$TMP/bin.out" | head -3)"
gm -f Test::JobApi::workload -s >"$TMP/empty.out" || fail "workload job with an empty workload failed"
assert_eq "job.workload empty: bytes back" 0 "$(stat -c %s "$TMP/empty.out")"

# ---- status, data, warning: as the gearman CLI shows them --------------------------
# Data and the result go to stdout as they come (write(2)), warnings to
# stderr; status lines are printf()ed as "N% Complete", so with stdout
# redirected they come out at exit, after everything else.
gm -f Test::JobApi::progress w1 >"$TMP/progress.out" 2>"$TMP/progress.err" || fail "progress job failed: $(cat "$TMP/progress.err")"
assert_eq "progress: CLI stdout" \
    "chunk-one;chunk-two;done true,true,true,true,true,true25% Complete
75% Complete
100% Complete" "$(cat "$TMP/progress.out")"
assert_eq "progress: CLI stderr (the warning)" "careful: w1" "$(cat "$TMP/progress.err")"

# ---- the same, exactly and in order, with the C client -------------------------------
out=$(client progress w2) || fail "progress via the C client failed (status $?): $out"
assert_eq "progress: packets in order" \
    "status 1/4|data chunk-one;|warning careful: w2|status 3/4|data chunk-two;|status 4/4|complete done true,true,true,true,true,true" \
    "$(paste -sd'|' <<<"$out")"

out=$(client edges x) || fail "edges via the C client failed (status $?): $out"
assert_eq "edges: packets in order" \
    'status 0/4294967295|data bin\x00ary\xff|status 4294967295/4294967295|warning |complete edges' \
    "$(paste -sd'|' <<<"$out")"

# An out-of-range status is an error that fails the job: negative, NaN
# (which no comparison rejects, and whose conversion to an integer is
# undefined), infinite, too large. The process serves on.
badstatus_pid=$(worker_pids_for Test::JobApi::badstatus)
# Each case: workload=the call in the fixture=what the message says it got.
for c in 'negative=job:status(-1, 4)=-1 and 4' 'nan_numerator=job:status(0 / 0, 4)=nan and 4' \
    'nan_denominator=job:status(1, 0 / 0)=1 and nan' 'inf=job:status(1 / 0, 4)=inf and 4' \
    'neg_inf=job:status(1, -1 / 0)=1 and -inf' 'huge_nan=job:status(1e300, 0 / 0)=1e+300 and nan' \
    'above=job:status(4294967296, 4294967296)=4294967296 and 4294967296'; do
    IFS='=' read -r case call got <<<"$c"
    out=$(client badstatus "$case")
    rc=$?
    assert_eq "badstatus $case: client exit status (output: $out)" 1 "$rc"
    assert_contains "badstatus $case: the warning" "$out" \
        "JobApi.lua:$(line_of "$call"): status: numerator and denominator must be from 0 to 2^32-1, got $got"
    assert_eq "badstatus $case: status packets sent" 0 "$(grep -c '^status ' <<<"$out")"
    assert_eq "badstatus $case: last packet" fail "$(tail -n 1 <<<"$out")"
done
assert_eq "the process serving badstatus after the failures" "$badstatus_pid" \
    "$(worker_pids_for Test::JobApi::badstatus)"
out=$(client edges x) || fail "edges after the bad status calls (status $?): $out"
assert_eq "edges after the bad status calls" complete "$(tail -n 1 <<<"$out" | cut -d' ' -f1)"

# ---- a job object kept past its call --------------------------------------------------
keep_pid=$(worker_pids_for Test::JobApi::keep)
assert_eq "keep: stored" "stored true" "$(gm -f Test::JobApi::keep store)"
for use in field method; do
    case $use in
    field) line=$(line_of 'KEPT_JOB.workload') ;;
    method) line=$(line_of 'KEPT_JOB:data("late")') ;;
    esac
    if gm -f Test::JobApi::keep "$use" >"$TMP/keep.out" 2>"$TMP/keep.err"; then
        fail "using a kept job object ($use) succeeded: '$(cat "$TMP/keep.out")'"
    fi
    err=$(cat "$TMP/keep.err")
    assert_contains "kept job object, $use: client stderr" "$err" \
        "Test/JobApi.lua:$line: job object used after its job finished"
    assert_contains "kept job object, $use: client stderr" "$err" "Job failed"
    assert_eq "kept job object, $use: stdout" "" "$(cat "$TMP/keep.out")"
done
log_has "job object used after its job finished" || fail "the failure is not in the log"
# It does not crash the process: the same one goes on, and a finished
# job object still prints.
assert_eq "tostring of a finished job object" "gdlua.job (finished)" "$(gm -f Test::JobApi::keep tostring)"
assert_eq "the process serving keep" "$keep_pid" "$(worker_pids_for Test::JobApi::keep)"

# ---- return values ----------------------------------------------------------------------
# expect_result CASE TEXT: job "returns" with workload CASE answers TEXT.
expect_result() {
    local out
    out=$(gm -f Test::JobApi::returns "$1" 2>"$TMP/returns.err") || fail "returns $1 failed: $(cat "$TMP/returns.err")"
    assert_eq "result of $1" "$2" "$out"
}
expect_result true true
expect_result false false
expect_result 2^53-1 9007199254740991
expect_result 'neg(2^53-1)' -9007199254740991
# Fractions in the shortest form that reads back the same (not %.17g's).
expect_result 0.1 0.1
expect_result 1/3 0.3333333333333333
expect_result neg2.5 -2.5
expect_result 2^51+0.5 2251799813685248.5
gm -f Test::JobApi::returns nil >"$TMP/nil.out" || fail "returns nil failed"
assert_eq "nil result: bytes back" 0 "$(stat -c %s "$TMP/nil.out")"

# A table, a function or a coroutine fails the job with a message saying
# what it returned and what to return.
for t in table function coroutine; do
    if gm -f Test::JobApi::returns "$t" >"$TMP/bad.out" 2>"$TMP/bad.err"; then
        fail "returning a $t succeeded: '$(cat "$TMP/bad.out")'"
    fi
    err=$(cat "$TMP/bad.err")
    lua_type=${t/coroutine/thread}
    assert_contains "returning a $t: client stderr" "$err" \
        "job returned a $lua_type; return a string, a number or nil (or use an encode attribute)"
    assert_contains "returning a $t: client stderr" "$err" "Job failed"
    log_has "job returned a $lua_type; return a string" || fail "returning a $t: not in the log"
done

# Integers from 2^53 up: exactly, without an exponent (README: "a number
# as text (integers exactly, without an exponent)"). All cases are tried
# before failing, so the message lists every wrong one.
wrong=()
for c in 2^53=9007199254740992 2^53+2=9007199254740994 2^60=1152921504606846976 \
    neg2^63=-9223372036854775808 1e20=100000000000000000000; do
    out=$(gm -f Test::JobApi::returns "${c%%=*}" 2>&1) || fail "returns ${c%%=*} failed: $out"
    [[ $out == "${c#*=}" ]] || wrong+=("${c%%=*}: expected '${c#*=}', got '$out'")
done
((${#wrong[@]} == 0)) || fail "integers from 2^53 up: $(printf '%s; ' "${wrong[@]}")"

pass
