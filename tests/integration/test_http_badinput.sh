#!/bin/bash
# The HTTP endpoint under bad input: unknown paths (404, compared byte
# for byte), other methods (405, 501), a token missing or wrong (401,
# the pause after a wrong one per address), long URIs (414), hundreds
# of idle connections (others are served; they are closed after the
# head deadline); children hold none of its sockets; bad configurations
# are refused at start, a port in use is not fatal. Raw requests:
# test_http_requests.sh.
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
echo "s3cret-token" >"$TMP/token"
start_http_gdlua --http_token "$TMP/token" "$FIXTURES/http"
wait_for "a worker for Web::Jobs::echo" 10 has_workers Web::Jobs::echo
AUTH=(-H "Authorization: Bearer s3cret-token")

# Paths and methods.
assert_eq "GET /metrics with the token" 200 "$(http_status GET /metrics "${AUTH[@]}")"
assert_eq "HEAD /metrics" 200 "$(http_status HEAD /metrics "${AUTH[@]}")"
assert_eq "GET /nope" 404 "$(http_status GET /nope "${AUTH[@]}")"
assert_eq "GET /metrics/x" 404 "$(http_status GET /metrics/x "${AUTH[@]}")"
assert_eq "GET /nope without a token" 404 "$(http_status GET /nope)"
assert_eq "POST /metrics" 405 "$(http_status POST /metrics "${AUTH[@]}")"
assert_eq "DELETE /status.json" 405 "$(http_status DELETE /status.json "${AUTH[@]}")"
assert_eq "PUT /" 405 "$(http_status PUT / -d x)"
allow=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$HTTP_PORT/metrics" | tr -d '\r' | grep -i '^Allow:')
assert_eq "Allow header" "Allow: GET, HEAD" "$allow"
body=$(head -c 5000 /dev/zero | tr '\0' x)
assert_eq "POST with a 5000-byte body" 405 "$(http_status POST /metrics "${AUTH[@]}" -d "$body")"
assert_eq "GET with a 5000-byte body" 413 "$(http_status GET /metrics "${AUTH[@]}" -d "$body")"
assert_eq "a query string is ignored" 200 "$(http_status GET '/metrics?x=1' "${AUTH[@]}")"
assert_eq "PATCH" 405 "$(http_status PATCH /metrics "${AUTH[@]}")"
assert_eq "an unknown method" 501 "$(http_status BREW /metrics "${AUTH[@]}")"

# Paths are compared byte for byte: no dashboard behind "//metrics".
assert_eq "GET //metrics" 404 "$(http_status GET //metrics "${AUTH[@]}")"
assert_eq "GET //" 404 "$(http_status GET // "${AUTH[@]}")"
assert_eq "GET /%6detrics" 404 "$(http_status GET /%6detrics "${AUTH[@]}")"
assert_eq "GET /metrics/" 404 "$(http_status GET /metrics/ "${AUTH[@]}")"

# The token: none, another scheme, a wrong one: 401 with a challenge. The
# dashboard's own files hold no data: served without it.
assert_eq "no token" 401 "$(http_status GET /metrics)"
assert_eq "no token, status.json" 401 "$(http_status GET /status.json)"
assert_eq "no token, history.json" 401 "$(http_status GET /history.json)"
assert_eq "Basic" 401 "$(http_status GET /metrics -u user:s3cret-token)"
assert_eq "a prefix of the token" 401 "$(http_status GET /metrics -H "Authorization: Bearer s3cret")"
challenge=$(curl -s -D - -o /dev/null "http://127.0.0.1:$HTTP_PORT/metrics" | tr -d '\r' | grep -i '^WWW-Authenticate:')
assert_eq "challenge" 'WWW-Authenticate: Bearer realm="gdlua"' "$challenge"
assert_eq "wrong token" 401 "$(http_status GET /metrics -H "Authorization: Bearer wrong")"
log_has "http: a wrong token from 127.0.0.1; refusing its tokens for 1000 ms" || fail "no log line for the wrong token"
# After a wrong token every token from that address is refused for a
# second: the right one works again after it.
wait_for "the right token accepted again" 10 bash -c \
    "[[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret-token' http://127.0.0.1:$HTTP_PORT/metrics) == 200 ]]"
# The pause is the guesser's alone: with wrong tokens arriving from
# 127.0.0.2 all along, a scraper on 127.0.0.1 is served every time,
# while the right token from 127.0.0.2 is refused.
guess() {
    while [[ ! -e $TMP/guess.stop ]]; do
        curl -s -o /dev/null --max-time 5 --interface 127.0.0.2 -H "Authorization: Bearer guess$RANDOM" \
            "http://127.0.0.1:$HTTP_PORT/metrics"
    done
}
spawn_bg guesser guess
wait_for "wrong tokens from 127.0.0.2" 10 log_has "http: a wrong token from 127.0.0.2"
served=0
for ((i = 0; i < 20; i++)); do
    [[ $(http_status GET /metrics "${AUTH[@]}") == 200 ]] && served=$((served + 1))
done
assert_eq "scrapes served while another address guesses" 20 "$served"
# The guesser stops after its request in flight: a wrong token of its own
# sent after this point would fall into the pair's test below.
touch "$TMP/guess.stop"
wait "$guesser" 2>/dev/null
# One more wrong token from 127.0.0.2, then at once the right one: refused
# while the pause (1 s) lasts. The pair starts once the guesser's pause has
# ended (the right token accepted), so its wrong token starts a pause of
# its own: one sent while a pause lasts is refused without starting
# another, and the right token after it would be served once the old pause
# ended. Only a pair that took less than the pause from the first
# request's start to the second's end says so; a loaded machine may take
# longer, and then the pair after the next pause is tried.
right_from_guesser() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "${AUTH[@]}" \
        "http://127.0.0.1:$HTTP_PORT/metrics") == 200 ]]
}
pair=
for ((i = 0; i < 20; i++)); do
    wait_for "the guessing address's pause to end" 10 right_from_guesser
    t0=$(now_ms)
    got=$(curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.2 -H "Authorization: Bearer wrong" \
        "http://127.0.0.1:$HTTP_PORT/metrics" --next -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
        "${AUTH[@]}" "http://127.0.0.1:$HTTP_PORT/metrics")
    (($(now_ms) - t0 < 1000)) && { pair=$got; break; }
done
[[ -n $pair ]] || fail "no wrong-then-right pair took under 1 s in 20 tries"
assert_eq "a wrong token, then the right one, from the guessing address" "401 401" "$pair"
assert_eq "dashboard without a token" 200 "$(http_status GET /)"
assert_eq "dygraphs without a token" 200 "$(http_status GET /dygraph.min.js)"

# Long URIs: over 2048 bytes 414, however long. The server answers
# afterwards.
long=$(printf 'a%.0s' $(seq 3000))
assert_eq "3000-byte URI" 414 "$(http_status GET "/$long" "${AUTH[@]}")"
longer=$(printf "$long%.0s" 1 2 3 4 5 6 7)
assert_eq "21000-byte URI" 414 "$(http_status GET "/$longer" "${AUTH[@]}")"
assert_eq "served after long URIs" 200 "$(http_status GET /metrics "${AUTH[@]}")"

# 300 idle connections and one that stops mid-line: a new client is
# served at once meanwhile; a process started meanwhile holds none of the
# endpoint's sockets; all of them are closed by the server after its
# head deadline (10 s).
echo_pid=$(worker_pids_for Web::Jobs::echo)
cat >"$TMP/idle.py" <<'PY'
import http.client, os, signal, socket, sys, time
# From 127.0.0.2: so many client ports (ephemeral ones)
# must not keep a test running beside from binding one on 127.0.0.1.
SRC = ("127.0.0.2", 0)

port, master, victim = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
idle = [socket.create_connection(("127.0.0.1", port), source_address=SRC) for _ in range(300)]
partial = socket.create_connection(("127.0.0.1", port), source_address=SRC)
partial.sendall(b"GET /metr")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/metrics", headers={"Authorization": "Bearer s3cret-token"})
r = c.getresponse()
assert r.status == 200, r.status
assert b"gdlua_jobs_total" in r.read()
c.close()

def children():
    with open("/proc/%d/task/%d/children" % (master, master)) as f:
        return set(map(int, f.read().split()))

def inodes_on_port():
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port:
                    found.add("socket:[%s]" % cols[9])
    return found

# A fork while they are open: the new child must not hold them.
before = children()
os.kill(victim, signal.SIGKILL)
deadline = time.time() + 20
while time.time() < deadline:
    new = [p for p in children() - before if p != victim]
    if new:
        break
    time.sleep(0.05)
assert new, "no process started after the kill"
mine = inodes_on_port()
held = [fd for fd in os.listdir("/proc/%d/fd" % new[0])
        if os.readlink("/proc/%d/fd/%s" % (new[0], fd)) in mine]
assert not held, "child %d holds the endpoint's sockets: %r" % (new[0], held)

# The server drops every idle connection.
deadline = time.time() + 40
open_ = idle + [partial]
for s in open_:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        sys.exit("a connection still open after 40 s")
print("closed", len(open_))
PY
out=$(python3 "$TMP/idle.py" "$HTTP_PORT" "$GDLUA_PID" "$echo_pid" 2>&1) || fail "idle connections: $out"
assert_eq "idle connections closed" "closed 301" "$out"
assert_eq "served after the idle ones" 200 "$(http_status GET /metrics "${AUTH[@]}")"

# A port in use: a second gdlua logs it and serves jobs without HTTP.
"$GDLUA" --server "127.0.0.1:$PORT" --console_port 0 --logfile "$TMP/second.log" \
    --http_bind "127.0.0.1:$HTTP_PORT" "$FIXTURES/http" </dev/null >>"$TMP/second.out" 2>&1 &
EXTRA_PIDS+=($!)
second=$!
wait_for "the second gdlua to give the port up" 10 \
    grep -qF "http: cannot listen on 127.0.0.1:$HTTP_PORT: Address already in use; serving jobs without HTTP" "$TMP/second.log"
wait_for "the second gdlua serving" 10 has_workers Web::Jobs::echo 2
alive "$second" || fail "the second gdlua exited"

# Configurations refused at start, each with its reason.
refused() {
    local want=$1
    shift
    "$GDLUA" --server "127.0.0.1:$PORT" --console_port 0 "$@" "$FIXTURES/http" >"$TMP/refused.out" 2>&1
    assert_eq "exit status of $*" 1 "$?"
    assert_contains "message of $*" "$(cat "$TMP/refused.out")" "$want"
}
refused "http: refusing to listen on 0.0.0.0:1 without --http_token (or --http_insecure)" --http_bind 0.0.0.0:1
refused "http: bad --http_bind 127.0.0.1: give ADDRESS:PORT" --http_bind 127.0.0.1
refused "http: bad --http_bind 127.0.0.1:99999: give ADDRESS:PORT" --http_bind 127.0.0.1:99999
refused "http: bad --http_bind no.such.host.invalid:80" --http_bind no.such.host.invalid:80
refused "http: cannot read token file $TMP/none" --http_bind 127.0.0.1:1 --http_token "$TMP/none"
pass
