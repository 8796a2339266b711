#!/bin/bash
# A reload asked for while one loads (README "Reloading"): deploy tools
# write files, then send SIGHUP, so the newest files must win. A SIGHUP or
# console `reload` during a load queues one more reload, started once the
# load ends; several during one load queue still one. A console waiting
# for a reload is answered when no reload is left to run, by the last one.
# The load is held (its module's load-time code waits for a file to go),
# so each HUP lands in the middle of it for sure.
#   - a load held, the module edited, SIGHUP x3 and a console reload: the
#     held load ends with the old code, the queued one loads the new, and
#     no third load follows; the console gets the queued load's answer;
#   - the held load fails: the queued one still loads the newest files;
#   - SIGTERM with a load held and one queued: gdlua exits 0, closing the
#     waiting console, and leaves no loader behind.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/console_lib.sh"
source "$(dirname "$0")/reload_lib.sh"

held() {
    echo "while io.open('$TMP/hold') do end $*"
}

loading() {
    (($(loaders_of "$GDLUA_PID" | wc -l) == 2))
}

# reload_waiting NAME: a console connection sends `reload` and keeps its
# answer in $TMP/NAME.out (once its "." line is in, the answer is whole).
reload_waiting() {
    (exec 3<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT" && printf 'reload\r\n' >&3 && timeout 60 cat <&3 >"$TMP/$1.out") &
    EXTRA_PIDS+=($!)
}

answered() {
    grep -q $'^\\.\r$' "$TMP/$1.out"
}

start_gearmand
write_echo 1 1
start_console_gdlua "$JOBS"
wait_for "an echo worker" 10 has_workers Rl::Echo::echo
answers 1 || fail "version 1 does not answer"

# ---- edits during a held load: the queued reload loads them -----------------------
write_echo 2 1 "$(held)"
touch "$TMP/hold"
kill -HUP "$GDLUA_PID"
wait_for "generation 2's loader to load" 10 loading
write_echo 3 1
for i in 1 2 3; do
    kill -HUP "$GDLUA_PID"
done
reload_waiting first
wait_for "the console's reload to be queued too" 10 \
    log_has "console reload: a reload is under way; the one queued already loads the newest files once it ends"
assert_eq "reloads queued" 1 "$(log_count "SIGHUP: a reload is under way; another loads the newest files once it ends")"
answered first && fail "the console was answered during the held load: $(cat "$TMP/first.out")"
rm "$TMP/hold"
wait_for "generation 3 to serve" 20 generation_serves 3
wait_for "version 3 to answer" 10 answers 3
wait_for "the console's answer" 10 answered first
assert_eq "the console's answer" "OK generation 3: 2 job(s)" "$(tr -d '\r' <"$TMP/first.out" | sed '$d')"
log_has "generation 2 serves " || fail "the held load did not end with its own code"
wait_for "one loader left" 10 bash -c "(( \$(ps -o args= --ppid $GDLUA_PID | grep -c 'gdlua: loader') == 1 ))"
# This master's loads (one the console helper stopped shares the log).
assert_eq "loads started" 3 "$(log_count_re "\\[$GDLUA_PID\\] loader [0-9]+ \\([0-9]+\\): loading the job modules")"

# ---- the held load fails: the queued one still loads the newest files -------------
write_echo 4 1 "$(held 'error("version 4 is broken")')"
touch "$TMP/hold"
kill -HUP "$GDLUA_PID"
wait_for "generation 4's loader to load" 10 loading
write_echo 5 1
reload_waiting second
wait_for "the console's reload to be queued" 10 \
    log_has "console reload: a reload is under way; another loads the newest files once it ends"
rm "$TMP/hold"
wait_for "the held load to fail" 20 log_has_re "reload failed: .*version 4 is broken"
wait_for "the console's answer" 20 answered second
assert_eq "the console's answer after a failed load and a queued one" "OK generation 5: 2 job(s)" \
    "$(tr -d '\r' <"$TMP/second.out" | sed '$d')"
wait_for "version 5 to answer" 10 answers 5

# ---- SIGTERM with a load held and one queued --------------------------------------
write_echo 6 1 "$(held)"
touch "$TMP/hold"
kill -HUP "$GDLUA_PID"
wait_for "generation 6's loader to load" 10 loading
read -ra loaders < <(loaders_of "$GDLUA_PID" | paste -sd' ')
kill -HUP "$GDLUA_PID"
reload_waiting third
queued_again() {
    (($(log_count "console reload: a reload is under way; the one queued already loads the newest files once it ends") == 2))
}
wait_for "the console's reload to be queued" 10 queued_again
kill -TERM "$GDLUA_PID"
wait_gdlua 20
assert_eq "gdlua's exit status" 0 "$GDLUA_STATUS"
# The console closes its connections as gdlua exits: the waiting one is
# closed, and if the answer made it out first, it is the shutdown's.
wait_for "the waiting console's connection closed" 10 dead "${EXTRA_PIDS[-1]}"
if [[ -s $TMP/third.out ]]; then
    assert_eq "the console's answer at shutdown" "ERR reload_failed: shutting down" \
        "$(tr -d '\r' <"$TMP/third.out" | sed '$d')"
fi
for l in "${loaders[@]}"; do
    wait_for "loader $l gone" 10 dead "$l"
done
rm -f "$TMP/hold"
assert_eq "processes that died" 0 "$(log_count_re "\] process [0-9]+ .*(killed by|exited with status [1-9])")"
pass
