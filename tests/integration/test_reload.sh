#!/bin/bash
# Reload with no downtime (gdl_loader.c, gdl_master.c's generations):
# SIGHUP and the console's `reload` load the script directory again in a
# new loader while the running code serves on.
#   - 10 reloads under a steady load: no job fails or is lost, each new
#     version serves, the old processes finish and exit (no deaths), and
#     the console answers `status` throughout;
#   - a job running across a reload is answered by the code that ran it;
#   - a reload that fails (syntax error, os.exit at load, a loader killed
#     mid-load) is answered ERR with the first error, and the running
#     processes serve on, untouched;
#   - a module added is started, one removed is drained, changed limits
#     apply;
#   - the serving loader killed: another loads, nothing stops serving.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/console_lib.sh"
source "$(dirname "$0")/reload_lib.sh"

status_answers() {
    cons_one status | grep -q '^Rl::Echo::echo '
}

slow_running() {
    gadmin --status | awk -F'\t' '$1 == "Rl::Echo::slow" && $3 == 1' | grep -q .
}

extra_drained() {
    (($(workers_for Rl::Extra::extra) == 0))
}

export RELOAD_RELEASE=$TMP/slow.release # Rl::Echo::slow runs until it exists
start_gearmand
write_echo 1
start_console_gdlua "$JOBS"
wait_for "two echo workers" 10 has_workers Rl::Echo::echo 2
answers 1 || fail "version 1 does not answer"
[[ $(loaders_of "$GDLUA_PID" | wc -l) == 1 ]] || fail "expected one loader, got: $(loaders_of "$GDLUA_PID")"

# ---- 10 reloads under load ----------------------------------------------------
start_load Rl::Echo::echo 20
wait_for "the load to get results" 10 load_checked
# A job held until the last reload is done, so it spans all 10 (one of a
# fixed length could end before them, and the check below would pass
# without a job running across a reload).
spawn_bg slow gm -f Rl::Echo::slow x >"$TMP/slow.out" 2>"$TMP/slow.err"
wait_for "the slow job to run" 10 slow_running
for v in $(seq 2 11); do
    write_echo "$v"
    if ((v % 2)); then
        assert_eq "reload $v: the console's answer" "OK generation $v: 2 job(s)" "$(cons_one reload)"
    else
        kill -HUP "$GDLUA_PID"
    fi
    wait_for "generation $v" 10 generation_serves "$v"
    status_answers || fail "status did not answer after reload $v"
    wait_for "version $v to answer" 10 answers "$v"
done
slow_running || fail "the slow job is not running after the last reload"
touch "$RELOAD_RELEASE"
wait_for "more results after the last reload" 10 load_checked "$(load_count)"
stop_load
echo "load client across 10 reloads: $LOAD_RESULT"
[[ $LOAD_RESULT =~ ^ok\ [1-9][0-9]*\ 1(,[0-9]+)*,11$ ]] || fail "load client did not see versions 1 to 11: $LOAD_RESULT"

# The slow job began under version 1 and was answered by it.
wait_for "the slow job's answer" 15 dead "$slow"
assert_eq "slow job across the reloads" "v1 released x" "$(cat "$TMP/slow.out")"
assert_eq "processes that died" 0 "$(log_count_re "\] process [0-9]+ .*(killed by|exited with status [1-9])")"
assert_eq "failed reloads" 0 "$(log_count "reload failed")"
wait_for "only generation 11's processes left" 15 bash -c \
    "[[ \$(ps -o args= --ppid $GDLUA_PID | grep -c 'gdlua: worker') == 3 ]]"
[[ $(loaders_of "$GDLUA_PID" | wc -l) == 1 ]] || fail "old loaders left: $(loaders_of "$GDLUA_PID")"

# ---- reloads that fail: the running code serves on -------------------------------
pids_before=$(children_of "$GDLUA_PID" | sort -n | paste -sd' ')
echo 'this is not Lua (' >>"$ECHO"
out=$(cons_one reload)
assert_contains "failed reload's answer" "$out" "ERR reload_failed: 1 module(s) failed to load; the first: module Rl::Echo not loaded: $ECHO:"
[[ $out =~ Echo\.lua:[0-9]+: ]] || fail "no file:line in: $out"
log_has_re "ERROR \[$GDLUA_PID\] reload failed: .*generation 11 serves on" || fail "the failed reload is not logged"
answers 11 || fail "version 11 stopped answering after a failed reload"
assert_eq "processes after a failed reload" "$pids_before" "$(children_of "$GDLUA_PID" | sort -n | paste -sd' ')"

write_echo 12 2 'os.exit(0)'
out=$(cons_one reload)
assert_contains "reload of a module calling os.exit" "$out" "ERR reload_failed: 1 module(s) failed to load; the first: module Rl::Echo not loaded"
answers 11 || fail "version 11 stopped answering after os.exit at load"

# A load that hangs: status answers meanwhile; the loader killed, the
# waiting console gets the reason.
write_echo 12 2 "while io.open('$TMP/hold') do end"
touch "$TMP/hold"
(exec 3<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT" && printf 'reload\r\n' >&3 && timeout 20 cat <&3 >"$TMP/reload.out") &
EXTRA_PIDS+=($!)
wait_for "a second loader" 10 bash -c "(( \$(ps -o args= --ppid $GDLUA_PID | grep -c 'gdlua: loader') == 2 ))"
status_answers || fail "status did not answer while a reload was loading"
answers 11 || fail "version 11 did not answer while a reload was loading"
# The newest generation's loader (by its title's number: pids wrap).
hung=$(ps -o pid=,args= --ppid "$GDLUA_PID" | awk '$2 == "gdlua:" && $3 == "loader" { print $4, $1 }' |
    sort -n | tail -1 | cut -d' ' -f2)
[[ -n $hung ]] || fail "no loading loader found: $(ps -o pid=,args= --ppid "$GDLUA_PID")"
kill -9 "$hung"
wait_for "the waiting console's answer" 10 grep -q $'^\\.\r$' "$TMP/reload.out"
assert_contains "answer to a reload whose loader was killed" "$(cat "$TMP/reload.out")" \
    "ERR reload_failed: the loader killed by signal 9"
rm -f "$TMP/hold"
answers 11 || fail "version 11 stopped answering after the loader was killed"
assert_eq "processes after three failed reloads" "$pids_before" "$(children_of "$GDLUA_PID" | sort -n | paste -sd' ')"

# ---- pools that appear and vanish; changed limits ---------------------------------
cp "$FIXTURES/reload/Extra.lua" "$JOBS/Rl/Extra.lua"
write_echo 13 3
kill -HUP "$GDLUA_PID"
wait_for "Rl::Extra::extra served" 10 has_workers Rl::Extra::extra 1
assert_eq "the new job's answer" "extra x" "$(gm -f Rl::Extra::extra x)"
wait_for "3 echo workers (min_processes 3)" 10 has_workers Rl::Echo::echo 3
answers 13 || fail "version 13 does not answer"
rm "$JOBS/Rl/Extra.lua"
out=$(cons_one reload)
[[ $out =~ ^OK\ generation\ [0-9]+:\ 2\ job\(s\)$ ]] || fail "reload without Extra: console answered: $out"
wait_for "Rl::Extra::extra drained" 10 extra_drained
assert_not_contains "status after Extra is gone" "$(cons_one status)" "Rl::Extra"
log_has_re "stop [0-9]+ Rl::Extra::extra: reloaded: its job is gone" || fail "the vanished job's process was not stopped"

# ---- the serving loader killed: another loads, service goes on --------------------
write_echo 15 3
old=$(loaders_of "$GDLUA_PID")
kill -9 "$old"
wait_for "a new loader" 10 bash -c "l=\$(ps -o pid=,args= --ppid $GDLUA_PID | awk '/gdlua: loader/ {print \$1}'); [[ -n \$l && \$l != $old ]]"
log_has_re "loader [0-9]+ \($old\): killed by signal 9 .*; loading the modules again" || fail "the lost loader is not logged"
wait_for "version 15 to answer" 10 answers 15

# ---- the spare killed: the next start forks another ----------------------------------
spare_of() {
    ps -o pid=,args= --ppid "$GDLUA_PID" | awk '$2 == "gdlua:" && $3 == "spare" { print $1 }'
}
has_spare() { [[ -n $(spare_of) ]]; }
wait_for "a spare process" 10 has_spare
spare=$(spare_of)
kill -9 "$spare"
wait_for "the spare to be gone" 5 dead "$spare"
assert_eq "set_processes after the spare was killed" "OK" "$(cons_one "set_processes Rl::Echo::echo 4 4")"
wait_for "4 echo workers" 10 has_workers Rl::Echo::echo 4
assert_eq "failed starts" 0 "$(log_count "cannot start a process")"
assert_eq "processes that died, at the end" 0 "$(log_count_re "\] process [0-9]+ .*(killed by|exited with status [1-9])")"
pass
