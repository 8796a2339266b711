#!/bin/bash
# gdlua's client side: examples/fib_sum.lua against examples/jobs, "gdlua
# call" (exact bytes, the job's error, exit statuses), a job that calls
# other jobs through gdlua.client (defaulting to gdlua's own --server
# list), task-set callbacks, order and failures from a "gdlua run"
# script, background jobs and status, the refusal of calls while the
# master loads modules, and several job servers: jobs spread over them
# in turn (by unique id when given), a server down or killed -9 mid-job
# is failed over.
source "$(dirname "$0")/lib.sh"

unset GEARMAN_SERVERS # the defaults under test must not come from here

CLI=$FIXTURES/client

# ---- a call at load time (in the master) is refused -----------------------
timeout 20 "$GDLUA" --check "$CLI/loadcall" >"$TMP/check.out" 2>"$TMP/check.err"
rc=$?
assert_eq "--check loadcall: exit status" 1 "$rc"
assert_eq "--check loadcall: jobs listed" "" "$(cat "$TMP/check.out")"
assert_contains "--check loadcall: log" "$(cat "$TMP/check.err")" "module Client::LoadCall not loaded: "
assert_contains "--check loadcall: log" "$(cat "$TMP/check.err")" "gdlua.client: calls run in worker processes"

export SLEEPY_START_FILE=$TMP/sleepy.start     # Client::Jobs::sleepy has started
export SLEEPY_RELEASE_FILE=$TMP/sleepy.release # it runs until this exists
export SLEEPY_DONE_FILE=$TMP/sleepy.done       # it has ended
export CLIENT_ENDED=$TMP/ended # callbacks.lua's fast jobs seen to end, for Client::Jobs::slow
start_gearmand
start_gdlua --console_port 0 "$CLI/serve" "$REPO/examples/jobs"
for f in Client::Jobs::echo Client::Jobs::unique Client::Jobs::fail Client::Jobs::progress \
    Client::Jobs::slow Client::Jobs::fast Client::Jobs::sleepy \
    Client::Fan::square Client::Fan::fanout Client::Fan::fanout_shared GDExamples::Fib::fib; do
    wait_for "a worker for $f" 10 has_workers "$f"
done

printf 'x' >"$TMP/x" # a one-byte workload

# gcall ARGS... < IN: gdlua call against our gearmand (unless ARGS name a
# server); sets CALL_RC, and the result and stderr in $TMP/call.out/.err.
gcall() {
    timeout 20 "$GDLUA" call "$@" >"$TMP/call.out" 2>"$TMP/call.err"
    CALL_RC=$?
}

# ---- 1. examples/fib_sum.lua -------------------------------------------------
# The sum of fib(1) .. fib(19), with fib(0) = fib(1) = 1.
fib=(1 1)
expected=0
for ((n = 1; n < 20; n++)); do
    ((n >= 2)) && fib[n]=$((fib[n - 1] + fib[n - 2]))
    expected=$((expected + fib[n]))
done
assert_eq "sum of fib(1..19) computed here" 17709 "$expected"
out=$(timeout 20 "$GDLUA" run "$REPO/examples/fib_sum.lua" --num 20 --server "127.0.0.1:$PORT" 2>"$TMP/fibsum.err")
rc=$?
assert_eq "fib_sum --num 20: exit status ($(cat "$TMP/fibsum.err"))" 0 "$rc"
assert_eq "fib_sum --num 20" "$expected" "$out"

timeout 20 "$GDLUA" run "$REPO/examples/fib_sum.lua" --num x --server "127.0.0.1:$PORT" \
    >"$TMP/fibsum.out" 2>"$TMP/fibsum.err"
rc=$?
assert_eq "fib_sum --num x: exit status" 2 "$rc"
assert_eq "fib_sum --num x: stdout" "" "$(cat "$TMP/fibsum.out")"
assert_contains "fib_sum --num x: stderr" "$(cat "$TMP/fibsum.err")" "fib_sum: --num must be a whole number >= 2"

# ---- 2. gdlua call ------------------------------------------------------------
# Binary bytes, exactly.
printf 'a\0b\n\xff\r\n\x01end' >"$TMP/bin.in"
assert_eq "binary workload size" 11 "$(stat -c %s "$TMP/bin.in")"
gcall Client::Jobs::echo --server "127.0.0.1:$PORT" <"$TMP/bin.in"
assert_eq "call echo binary: exit status ($(cat "$TMP/call.err"))" 0 "$CALL_RC"
cmp "$TMP/bin.in" "$TMP/call.out" >/dev/null ||
    fail "call echo binary: result differs: $(od -c "$TMP/call.out" | head -3)"
assert_eq "call echo binary: stderr" "" "$(cat "$TMP/call.err")"

# Every byte value, through a pipe from printf.
printf "$(printf '\\%03o' {0..255})" >"$TMP/allbytes"
printf "$(printf '\\%03o' {0..255})" | timeout 20 "$GDLUA" call Client::Jobs::echo --server "127.0.0.1:$PORT" \
    >"$TMP/allbytes.out" 2>"$TMP/call.err"
rc=$?
assert_eq "call echo all bytes: exit status ($(cat "$TMP/call.err"))" 0 "$rc"
assert_eq "call echo all bytes: size" 256 "$(stat -c %s "$TMP/allbytes.out")"
cmp "$TMP/allbytes" "$TMP/allbytes.out" >/dev/null || fail "call echo all bytes: result differs"

# --unique reaches the job.
gcall Client::Jobs::unique --server "127.0.0.1:$PORT" --unique 'my-unique-42' <"$TMP/x"
assert_eq "call --unique: exit status ($(cat "$TMP/call.err"))" 0 "$CALL_RC"
assert_eq "call --unique: job.unique" "my-unique-42" "$(cat "$TMP/call.out")"

# Without --server: $GEARMAN_SERVERS.
printf 'env' | GEARMAN_SERVERS=127.0.0.1:$PORT timeout 20 "$GDLUA" call Client::Jobs::echo \
    >"$TMP/call.out" 2>"$TMP/call.err"
rc=$?
assert_eq "call via GEARMAN_SERVERS: exit status ($(cat "$TMP/call.err"))" 0 "$rc"
assert_eq "call via GEARMAN_SERVERS" "env" "$(cat "$TMP/call.out")"

# A failing job: exit 1, its message on stderr, nothing on stdout.
printf 'boom' | timeout 20 "$GDLUA" call Client::Jobs::fail --server "127.0.0.1:$PORT" \
    >"$TMP/call.out" 2>"$TMP/call.err"
rc=$?
assert_eq "call failing job: exit status" 1 "$rc"
assert_eq "call failing job: stderr" "gdlua call: Client::Jobs::fail: failed on purpose: boom" "$(cat "$TMP/call.err")"
assert_eq "call failing job: stdout bytes" 0 "$(stat -c %s "$TMP/call.out")"

# The GDExamples module's own message.
printf 'x' | timeout 20 "$GDLUA" call GDExamples::Fib::fib --server "127.0.0.1:$PORT" \
    >"$TMP/call.out" 2>"$TMP/call.err"
rc=$?
assert_eq "call fib x: exit status" 1 "$rc"
assert_eq "call fib x: stderr" \
    'gdlua call: GDExamples::Fib::fib: workload must be a whole number from 0 to 90, got "x"' "$(cat "$TMP/call.err")"

# No server listening: exit 1 with a message.
dead_port=$(free_port) || fail "no free port"
gcall Client::Jobs::echo --server "127.0.0.1:$dead_port" --timeout 5000 <"$TMP/x"
assert_eq "call with no server: exit status ($(cat "$TMP/call.err"))" 1 "$CALL_RC"
assert_contains "call with no server: stderr" "$(cat "$TMP/call.err")" "gdlua call: Client::Jobs::echo: "
assert_contains "call with no server: stderr" "$(cat "$TMP/call.err")" "GEARMAN_COULD_NOT_CONNECT"
assert_eq "call with no server: stdout bytes" 0 "$(stat -c %s "$TMP/call.out")"

# --timeout: a job that outlasts it fails the call, before the job ends.
# The job runs until the test releases it, after these checks (a job of
# a fixed length could end before a slow call's exit).
gcall Client::Jobs::sleepy --server "127.0.0.1:$PORT" --timeout 200 <"$TMP/x"
[[ -e $SLEEPY_DONE_FILE ]] && fail "call --timeout 200 returned only after the held job had ended"
assert_eq "call --timeout 200 on a held job: exit status ($(cat "$TMP/call.err"))" 1 "$CALL_RC"
assert_contains "call --timeout: stderr" "$(cat "$TMP/call.err")" "gdlua call: Client::Jobs::sleepy: "
assert_contains "call --timeout: stderr" "$(cat "$TMP/call.err")" \
    "Client::Jobs::sleepy timed out after 200 ms on 127.0.0.1:$PORT: "
assert_contains "call --timeout: stderr" "$(cat "$TMP/call.err")" "; the job is withdrawn: gearmand will not start it for this call"
# Released, a job that had started runs to its end (its result unread);
# one that had not is dropped unrun (test_client_errors.sh checks that),
# and any started after this point ends at once.
touch "$SLEEPY_RELEASE_FILE"
if [[ -e $SLEEPY_START_FILE ]]; then
    wait_for "the released sleepy job to end" 10 test -e "$SLEEPY_DONE_FILE"
fi

# Usage errors: exit 2 and the usage line.
usage_case() {
    local desc=$1
    shift
    gcall "$@" <"$TMP/x"
    assert_eq "call $desc: exit status" 2 "$CALL_RC"
    assert_contains "call $desc: stderr" "$(cat "$TMP/call.err")" "usage: gdlua call FUNCTION"
    assert_eq "call $desc: stdout bytes" 0 "$(stat -c %s "$TMP/call.out")"
}
usage_case "with no function"
usage_case "with two functions" Client::Jobs::echo Client::Jobs::fail --server "127.0.0.1:$PORT"
usage_case "with an unknown option" Client::Jobs::echo --bogus x --server "127.0.0.1:$PORT"
usage_case "with --server lacking its value" Client::Jobs::echo --server
usage_case "with --timeout abc" Client::Jobs::echo --timeout abc --server "127.0.0.1:$PORT"
usage_case "with --timeout -1" Client::Jobs::echo --timeout -1 --server "127.0.0.1:$PORT"
gcall Client::Jobs::echo --server "127.0.0.1:99999" <"$TMP/x"
assert_eq "call --server 127.0.0.1:99999: exit status" 2 "$CALL_RC"
assert_contains "call --server 127.0.0.1:99999: stderr" "$(cat "$TMP/call.err")" "gdlua call: --server: "

# ---- 3. a job that calls five other jobs ----------------------------------------
gcall Client::Fan::fanout --server "127.0.0.1:$PORT" --timeout 20000 <"$TMP/x"
assert_eq "fanout: exit status ($(cat "$TMP/call.err"))" 0 "$CALL_RC"
assert_eq "fanout: joined squares" "1,4,9,16,25" "$(cat "$TMP/call.out")"
gcall Client::Fan::fanout_shared --server "127.0.0.1:$PORT" --timeout 20000 <"$TMP/x"
assert_eq "fanout_shared: exit status ($(cat "$TMP/call.err"))" 0 "$CALL_RC"
assert_eq "fanout_shared: joined squares" "1,4,9,16,25" "$(cat "$TMP/call.out")"
# Twice, so the same processes call again.
gcall Client::Fan::fanout --server "127.0.0.1:$PORT" --timeout 20000 <"$TMP/x"
assert_eq "fanout again: exit status ($(cat "$TMP/call.err"))" 0 "$CALL_RC"
assert_eq "fanout again: joined squares" "1,4,9,16,25" "$(cat "$TMP/call.out")"

# ---- 4. task sets from a gdlua run script ------------------------------------------
(cd "$TMP" && timeout 30 "$GDLUA" run "$CLI/callbacks.lua" "$PORT") >"$TMP/cb.out" 2>"$TMP/cb.err"
rc=$?
cb=$(cat "$TMP/cb.out")
assert_eq "callbacks.lua: exit status ($(cat "$TMP/cb.err"); output: $cb)" 0 "$rc"
assert_eq "callbacks.lua: stderr" "" "$(cat "$TMP/cb.err")"

# field KEY: the value the script printed for KEY.
field() {
    awk -v k="$1" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); found = 1 }
                   END { if (!found) print "<missing>" }' "$TMP/cb.out"
}
assert_eq "progress: results" 1 "$(field progress.n)"
assert_eq "progress: result" "progress p" "$(field progress.result)"
assert_eq "progress: failed when all succeed" nil "$(field progress.failed)"
assert_eq "progress: callbacks" "status 1/2; data chunk; warning careful" "$(field progress.events)"

assert_eq "mixed: results" 5 "$(field mixed.n)"
assert_eq "mixed: results in submission order" "slow after 2,fast a,false,fast b,false" "$(field mixed.results)"
# The two fast jobs share one process; which of them gearmand hands out
# first is up to libgearman (it sends a task set's jobs last first), but
# both end before the slow one (which waits until the client has seen
# them end).
ended=$(field mixed.ended)
[[ $ended == "fast a,fast b,slow after 2" || $ended == "fast b,fast a,slow after 2" ]] ||
    fail "mixed: the jobs should end fast, fast, slow; got '$ended'"
assert_eq "mixed: failed" "3:failed on purpose: first|5:failed on purpose: second" "$(field mixed.failed)"

assert_eq "empty task set: results" 0 "$(field empty.n)"
assert_eq "empty task set: failed" nil "$(field empty.failed)"

assert_eq "c:call result" called "$(field call.result)"
assert_eq "c:call error" nil "$(field call.err)"
assert_eq "c:call of a failing job: result" nil "$(field fail.result)"
assert_eq "c:call of a failing job: message" "failed on purpose: by call" "$(field fail.err)"
assert_eq "c:call with opts.unique" the-unique-id "$(field unique.result)"

handle=$(field bg.handle)
[[ $handle =~ ^H:.+ ]] || fail "c:background: handle '$handle' does not look like H:..."
assert_eq "c:background: its server" "127.0.0.1:$PORT" "$(field bg.server)"
assert_eq "c:status at that server: known" true "$(field bg.known_there)"
assert_eq "c:status at a server not the client's" \
    "gdlua.client: 127.0.0.1:1 is not one of this client's servers" "$(field bg.elsewhere)"
assert_eq "c:status of a queued job: known" true "$(field bg.known)"
assert_eq "c:status of a queued job: running" false "$(field bg.running)"
assert_eq "gearmand queues it" 1 "$(gadmin --status | awk -F'\t' '$1 == "Client::Nobody::queued" { print $2 }')"
assert_eq "c:background of a served job: handle" true "$(field bg2.ok)"
assert_eq "c:status once it ran: known" false "$(field bg2.known)"
assert_eq "c:status of a bogus handle: known" false "$(field bogus.known)"

assert_eq "client.new{servers = \"h:p\"}" "via string" "$(field string.result)"
assert_eq "client.new{servers = 5} raises" false "$(field servers5.ok)"
assert_eq "client.new{servers = 5}: message" \
    'gdlua.client.new: servers must be a "host:port" string or a list of them' "$(field servers5.err)"
assert_eq "client.new{servers = {s, 7}} raises" false "$(field servers7.ok)"
assert_eq "client.new{servers = {s, 7}}: message" \
    'gdlua.client.new: servers[2] must be a "host:port" string' "$(field servers7.err)"
assert_eq "bad priority raises" false "$(field badprio.ok)"
assert_contains "bad priority message" "$(field badprio.err)" 'gdlua.client: priority must be "normal", "high" or "low", got urgent'
assert_eq "nothing left behind after a bad option" alone "$(field afterbad.result)"
assert_eq "close from a callback is refused" true "$(field closeincb.failed)"
assert_eq "the client still works" open "$(field afterclose.result)"
assert_eq "callbacks.lua ran to its end" ok "$(field end)"

# The jobs' failures are logged by gdlua, and it is still serving.
log_has "failed on purpose: first" || fail "the log lacks the failing job's message"
alive "$GDLUA_PID" || fail "gdlua is gone"

# ---- several job servers: failover --------------------------------------------------
# Two more gearmand, B and C (A, the first, serves what the checks above
# and below use), and a gdlua master serving both with the failover fixture.
A_PORT=$PORT
A_PID=$GEARMAND_PID
start_gearmand
B_PORT=$PORT
B_PID=$GEARMAND_PID
start_gearmand
C_PORT=$PORT
C_PID=$GEARMAND_PID
EXTRA_PIDS+=("$B_PID" "$C_PID")
PORT=$A_PORT
GEARMAND_PID=$A_PID
export FAILOVER_MARKS=$TMP/marks
export FAILOVER_RELEASE=$TMP/failover.release # the "once" job runs until it exists
: >"$FAILOVER_MARKS"
spawn_bg FAILOVER_GDLUA "$GDLUA" --server "127.0.0.1:$B_PORT,127.0.0.1:$C_PORT" --logfile "$TMP/failover.log" \
    --console_port 0 "$CLI/failover" </dev/null >>"$GDLUA_OUT" 2>&1
registered_on() { # PORT FUNC N: N gdlua processes registered there for FUNC
    (($(timeout 5 gearadmin -h 127.0.0.1 -p "$1" --workers 2>/dev/null |
        grep -cE "^[0-9-]+ [^ ]+ gdlua:[^ ]*:[0-9]+ : .*$2") >= $3))
}
wait_for "two failover processes on B" 10 registered_on "$B_PORT" Client::Failover::marked 2
wait_for "two failover processes on C" 10 registered_on "$C_PORT" Client::Failover::marked 2

dead_port=$(free_port) || fail "no free port"
# A server that refuses connections: the next one takes the job.
for i in 1 2 3 4; do
    printf 'via B %s' "$i" | timeout 20 "$GDLUA" call Client::Failover::marked --server "127.0.0.1:$dead_port" \
        --server "127.0.0.1:$B_PORT" >"$TMP/call.out" 2>"$TMP/call.err"
    rc=$?
    assert_eq "call with a dead first server ($i): exit status ($(cat "$TMP/call.err"))" 0 "$rc"
    assert_eq "call with a dead first server ($i)" "marked via B $i" "$(cat "$TMP/call.out")"
done
# None answers: the error says how many were tried and the last one's error.
printf 'x' | timeout 20 "$GDLUA" call Client::Failover::marked --server "127.0.0.1:$dead_port" \
    --server "127.0.0.1:$(free_port)" >"$TMP/call.out" 2>"$TMP/call.err"
rc=$?
assert_eq "call with no server up: exit status" 1 "$rc"
assert_contains "call with no server up: stderr" "$(cat "$TMP/call.err")" "no job server answered (2 tried); 127.0.0.1:"
assert_contains "call with no server up: stderr" "$(cat "$TMP/call.err")" "GEARMAN_COULD_NOT_CONNECT"

# The job server running a foreground job is killed -9: the client submits
# it to the other, where it runs again (gearmand cannot hand the client
# the result it lost), and the call returns its result. The job is held
# until that server is dead ($FAILOVER_RELEASE): however slow the steps
# before the kill are, it still runs there when it dies.
: >"$FAILOVER_MARKS"
spawn_bg FAILOVER_RUN bash -c "exec timeout 60 '$GDLUA' run '$CLI/failover.lua' $B_PORT $C_PORT '$TMP/restarted' >'$TMP/failover.out' 2>'$TMP/failover.err'"
marks() { wc -l <"$FAILOVER_MARKS"; }
wait_for "the failover job to start" 20 eval '(($(marks) >= 1))'
running_on() { # PORT: gearmand there has Client::Failover::marked running
    timeout 5 gearadmin -h 127.0.0.1 -p "$1" --status 2>/dev/null |
        awk -F'\t' '$1 == "Client::Failover::marked" && $3 > 0 { found = 1 } END { exit !found }'
}
if running_on "$B_PORT"; then
    victim=$B_PID victim_port=$B_PORT survivor=$C_PORT
elif running_on "$C_PORT"; then
    victim=$C_PID victim_port=$C_PORT survivor=$B_PORT
else
    fail "neither B nor C runs the failover job: $(cat "$FAILOVER_MARKS")"
fi
kill -KILL "$victim"
wait "$victim" 2>/dev/null
touch "$FAILOVER_RELEASE"
wait_for "the calls with a server down" 30 grep -q '^down.ok=' "$TMP/failover.out"
start_gearmand "$victim_port"
EXTRA_PIDS+=("$GEARMAND_PID")
PORT=$A_PORT
GEARMAND_PID=$A_PID
wait_for "the failover master to serve the restarted server" 10 registered_on "$victim_port" Client::Failover::marked 1
touch "$TMP/restarted"
wait_for "the failover client to end" 30 dead "$FAILOVER_RUN"
wait "$FAILOVER_RUN"
rc=$?
fo() { awk -v k="$1" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); found = 1 }
                      END { if (!found) print "<missing>" }' "$TMP/failover.out"; }
assert_eq "failover.lua: exit status ($(cat "$TMP/failover.err"))" 0 "$rc"
assert_eq "background jobs without a unique id: to B" 10 "$(fo spread.b)"
assert_eq "background jobs without a unique id: to C" 10 "$(fo spread.c)"
assert_eq "background jobs with one unique id: one server" one "$(fo same.server)"
assert_eq "background jobs with one unique id: coalesced" true "$(fo same.handle)"
assert_eq "the call whose server died: its result" "marked once" "$(fo call.result)"
assert_eq "the call whose server died: no error" nil "$(fo call.err)"
assert_eq "the job ran twice (once on each server)" 2 "$(grep -c '^once ' "$FAILOVER_MARKS")"
assert_eq "task sets with a server down, answered" 50 "$(fo down.ok)"
for i in 1 2 3 4 5 6; do
    assert_eq "task set $i of the same client once the server is back" "marked again-${i}a,marked again-${i}b" \
        "$(fo "again.$i")"
done
# The master serving both keeps serving the one left.
printf 'after' | timeout 20 "$GDLUA" call Client::Failover::marked --server "127.0.0.1:$survivor" \
    >"$TMP/call.out" 2>"$TMP/call.err"
assert_eq "the survivor serves on" "marked after" "$(cat "$TMP/call.out")"
kill_wait "$FAILOVER_GDLUA" 10

# ---- an empty workload ---------------------------------------------------------------
# Last, so a failure here leaves every check above run. libgearman refuses
# a non-NULL workload of size 0 ("add_task(GEARMAN_INVALID_ARGUMENT)
# invalid workload"); an empty workload is valid gearman ("gearman -f F"
# with empty stdin sends one) and must reach the job.
out=$(printf '' | gm -f Client::Jobs::echo) || fail "gearman -f with an empty workload failed"
assert_eq "gearman -f echo of an empty workload" "" "$out"
assert_eq "c:call(fn, \"\"): result" "<>" "$(field emptycall.result)"
assert_eq "c:call(fn, \"\"): error" nil "$(field emptycall.err)"
gcall Client::Jobs::echo --server "127.0.0.1:$PORT" </dev/null
assert_eq "call echo of an empty workload: exit status ($(cat "$TMP/call.err"))" 0 "$CALL_RC"
assert_eq "call echo of an empty workload: bytes back" 0 "$(stat -c %s "$TMP/call.out")"

pass
