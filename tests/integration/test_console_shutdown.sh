#!/bin/bash
# The console at the master's end: a client waiting for a reload's answer
# when SIGTERM comes gets "ERR reload_failed: shutting down", and the
# reply to a line it sent after "reload", before the connection closes
# (the master closes its connections as it stops listening, at once: what
# they have queued is written first, not dropped).
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

JOBS=$TMP/jobs
mkdir -p "$JOBS/Sd"
# A module whose load hangs while $TMP/hold exists: the first load
# passes, a reload started after the file is made waits.
cat >"$JOBS/Sd/Hold.lua" <<LUA
local gdlua = require "gdlua"
while true do
  local f = io.open("$TMP/hold")
  if not f then break end
  f:close()
end
local W = gdlua.worker()
W:job("echo", { min_processes = 1, max_processes = 1 }, function(self, job, workload)
  return workload
end)
return W
LUA

start_gearmand
start_console_gdlua "$JOBS"
wait_for "a worker for Sd::Hold::echo" 10 has_workers Sd::Hold::echo
VERSION="gdlua $("$GDLUA" --version | cut -d' ' -f2)"

touch "$TMP/hold"
printf 'reload\r\nversion\r\n' |
    python3 "$HERE/rawconn.py" "$CONSOLE_PORT" --keep-open >"$TMP/reload.out" &
client=$!
EXTRA_PIDS+=("$client")
wait_for "the reload's loader" 10 log_has "console: reload"
wait_for "a second loader" 10 eval '(($(loaders_of "$GDLUA_PID" | wc -l) == 2))'
kill -TERM "$GDLUA_PID"
WAIT_ALLOW_EXIT=1 wait_for "gdlua to exit" 20 dead "$GDLUA_PID"
wait "$GDLUA_PID"
GDLUA_PID=
wait "$client" || fail "the waiting client: not closed cleanly (status $?): $(cat "$TMP/reload.out")"
rm -f "$TMP/hold"
assert_eq "the waiting client's answers" \
    "$(printf 'ERR reload_failed: shutting down\n.\n%s\n.' "$VERSION")" "$(tr -d '\r' <"$TMP/reload.out")"
pass
