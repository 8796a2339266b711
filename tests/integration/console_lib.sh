# console_lib.sh: helpers for the console tests, on top of lib.sh.

CONSOLE_PORT=
GDLUA_CONSOLE=$(dirname "$GDLUA")/gdlua-console

# start_console_gdlua ARGS...: gdlua with its console on a free port. A
# port taken between the pick and gdlua's bind (tests run in parallel) is
# logged by gdlua; then it is stopped and started on another port.
start_console_gdlua() {
    local attempt
    for ((attempt = 0; attempt < 5; attempt++)); do
        CONSOLE_PORT=$(free_port) || fail "no free port"
        start_gdlua --console_port "$CONSOLE_PORT" "$@"
        wait_for "the console listens or gives up" 10 \
            grep -qE "console on 127.0.0.1:$CONSOLE_PORT|console: cannot listen on 127.0.0.1:$CONSOLE_PORT:" "$GDLUA_LOG"
        log_has "console on 127.0.0.1:$CONSOLE_PORT" && return 0
        kill_wait "$GDLUA_PID" 10
        GDLUA_PID=
    done
    fail "could not start gdlua's console on a free port"
}

# cons CMD...: sends each CMD on one connection and prints the replies
# byte for byte (\r kept), each up to and including its "." line.
cons() {
    local fd line cmd
    exec {fd}<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT" || fail "cannot connect to the console"
    for cmd in "$@"; do
        printf '%s\r\n' "$cmd" >&$fd
        while IFS= read -r -t 10 line <&$fd; do
            printf '%s\n' "$line"
            [[ $line == $'.\r' ]] && break
        done
    done
    exec {fd}>&-
}

# cons_one CMD: the reply lines of one command without the final "." and
# without \r.
cons_one() {
    cons "$1" | tr -d '\r' | sed '$d'
}
