#!/bin/bash
# The console under bad input: 200 connections at once while jobs run,
# a line over 4 KiB, binary garbage, a client that never reads, one that
# sends nothing. Each is answered or closed; the master keeps serving
# jobs and other consoles.
source "$(dirname "$0")/lib.sh" "$@"
source "$HERE/console_lib.sh"

start_gearmand
start_console_gdlua "$FIXTURES/console"
wait_for "Con::Jobs::a has its process" 10 has_workers Con::Jobs::a

# Jobs keep running in the background throughout.
job_loop() {
    local i
    for ((i = 0; i < 40; i++)); do
        [[ $(gm -f Con::Jobs::a "job $i") == "job $i" ]] || return 1
    done
}
spawn_bg jobs job_loop

# A client that sends nothing, held open all along.
exec {silent}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"

# 200 connections at once, then a command on each.
fds=()
for ((i = 0; i < 200; i++)); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT" || fail "connection $i refused"
    fds+=("$fd")
done
for fd in "${fds[@]}"; do printf 'version\r\n' >&$fd; done
answered=0
for fd in "${fds[@]}"; do
    IFS= read -r -t 10 line <&$fd && [[ $line == "gdlua "* ]] && IFS= read -r -t 10 dot <&$fd &&
        [[ $dot == $'.\r' ]] && answered=$((answered + 1))
done
assert_eq "answers on 200 connections" 200 "$answered"
for fd in "${fds[@]}"; do exec {fd}>&-; done

# A line over 4 KiB: refused, connection closed.
exec {fd}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
head -c 5000 /dev/zero | tr '\0' 'x' >&$fd
printf '\r\n' >&$fd 2>/dev/null
reply=$(timeout 10 cat <&$fd | tr -d '\r')
exec {fd}>&-
assert_eq "oversized line" $'ERR line_too_long: at most 4096 bytes\n.' "$reply"

# Binary garbage: an unknown command, echoed printable and short.
exec {fd}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
printf '\x01\x02\xff\xfegarbage\x7f rest\r\nversion\r\n' >&$fd
IFS= read -r -t 10 line <&$fd
assert_eq "binary garbage" $'ERR unknown_command: ????garbage?\r' "$line"
IFS= read -r -t 10 line <&$fd
IFS= read -r -t 10 line <&$fd
[[ $line == "gdlua "* ]] || fail "the connection did not survive garbage: '$line'"
exec {fd}>&-

# A client that never reads: dropped once its replies pile up; the master
# goes on answering others meanwhile.
exec {greedy}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
flood() { local i; for ((i = 0; i < 20000; i++)); do printf 'help\r\n'; done >&$greedy 2>/dev/null; }
spawn_bg flooder flood
wait_for "the non-reading client is dropped" 30 log_has "console: dropping a client that does not read its replies"
exec {greedy}>&-

assert_eq "another console still answers" "gdlua $("$GDLUA" --version | cut -d' ' -f2)" "$(cons_one version)"
wait "$jobs" || fail "jobs failed while the console was abused"
assert_eq "jobs served meanwhile" "after" "$(gm -f Con::Jobs::a after)"
alive "$GDLUA_PID" || fail "gdlua died"
exec {silent}>&-
pass
