# console_lib.sh: helpers for the console tests, on top of lib.sh.

CONSOLE_PORT=
GDLUA_CONSOLE=$(dirname "$GDLUA")/gdlua-console

# console_ready PID PORT: gdlua PID listens on 127.0.0.1:PORT and its
# console answers there ("version" gets "gdlua ...", or the demand for a
# token when it has one).
console_ready() {
    listens_on "$1" "$2" || return 1
    (
        exec 3<>"/dev/tcp/127.0.0.1/$2" || exit 1
        printf 'version\r\n' >&3
        IFS= read -r -t 5 line <&3 || exit 1
        [[ $line == "gdlua "* || $line == "ERR auth_required"* ]]
    ) 2>/dev/null
}

# console_settled PID PORT LOG: the console answers, or LOG has gdlua's
# message that it could not bind PORT (it serves on without a console).
console_settled() {
    console_ready "$1" "$2" || grep -qF "console: cannot listen on 127.0.0.1:$2:" "$3" 2>/dev/null
}

# await_console PID PORT LOG: waits until the console of gdlua PID on PORT
# answers (returns 0) or gdlua gave the port up (returns 1).
await_console() {
    wait_for "gdlua $1's console on port $2 to answer or give up" 10 console_settled "$@"
    console_ready "$1" "$2"
}

# start_console_gdlua ARGS...: gdlua with its console on a free port. A
# port taken between the pick and gdlua's bind (tests run in parallel):
# gdlua is stopped and started on another port. $STARTER starts it
# (start_gdlua unless set).
start_console_gdlua() {
    local attempt
    for ((attempt = 0; attempt < 5; attempt++)); do
        CONSOLE_PORT=$(free_port) || fail "no free port"
        "${STARTER:-start_gdlua}" --console_port "$CONSOLE_PORT" "$@"
        await_console "$GDLUA_PID" "$CONSOLE_PORT" "$GDLUA_LOG" && return 0
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

# failed_is JOB N: the console counts N failed jobs of JOB (its json). A
# process publishes a job's outcome after answering its client, so a
# test waits for the count (wait_for ... failed_is JOB N).
failed_is() {
    [[ $(cons_one json | python3 -c '
import json, sys
doc = json.loads(sys.stdin.buffer.read().decode("utf-8"))
print(next(j["failed"] for j in doc["jobs"] if j["name"] == sys.argv[1]))
' "$1") == "$2" ]]
}

# start_console_http_gdlua ARGS...: the same with --http_bind on a free
# port too ($HTTP_PORT; start_http_gdlua picks it again if it is taken).
start_console_http_gdlua() {
    STARTER=start_http_gdlua start_console_gdlua "$@"
}
