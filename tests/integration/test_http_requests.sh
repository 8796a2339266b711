#!/bin/bash
# Raw requests to the HTTP endpoint, as curl would not send them: what
# crashed the master (a target with braces, two spaces), bare-LF line
# ends, every refusal of the request-head check answered at once (the
# client keeping its side open), pipelined requests answered in order
# and framed by their Content-Length, keep-alive and its end (Connection:
# close, HTTP/1.0).
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
echo "s3cret-token" >"$TMP/token"
start_http_gdlua --loglevel debug --http_token "$TMP/token" "$FIXTURES/http"
AUTH=(-H "Authorization: Bearer s3cret-token")

# raw [rawconn.py ARGS...] < REQUEST: the bytes gdlua answers.
raw() {
    python3 "$HERE/rawconn.py" "$HTTP_PORT" "$@"
}
# status_lines: the status line of each reply in stdin, CR dropped.
status_lines() {
    LC_ALL=C tr -d '\r' | LC_ALL=C grep -a '^HTTP/1\.1 [0-9][0-9][0-9] '
}

# What crashed the master (evhttp_uri_parse returned NULL and on_request
# freed it): a target with braces, two spaces. Answered without a token
# (nothing is routed before the token is checked), the master serving on.
out=$(printf 'GET /a{b} HTTP/1.1\r\nHost: x\r\n\r\n' | raw | status_lines)
assert_eq "GET /a{b}" "HTTP/1.1 404 Not Found" "$out"
out=$(printf 'GET  /metrics  HTTP/1.1\r\nHost: x\r\n\r\n' | raw | status_lines)
assert_eq "GET with two spaces" "HTTP/1.1 400 Bad Request" "$out"
out=$(printf 'GET /metrics{x} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n\r\n' | raw | status_lines)
assert_eq "GET /metrics{x} with the token" "HTTP/1.1 404 Not Found" "$out"
alive "$GDLUA_PID" || fail "the master died of a request"
assert_eq "served after them" 200 "$(http_status GET /metrics "${AUTH[@]}")"

# Bare LF line ends are accepted.
printf 'GET /metrics HTTP/1.1\nHost: x\nAuthorization: Bearer s3cret-token\n\n' | raw >"$TMP/lf" ||
    fail "a bare-LF request: the connection was not closed cleanly (status $?)"
assert_eq "a bare-LF request" "HTTP/1.1 200 OK" "$(status_lines <"$TMP/lf" | head -1)"
grep -aq '^gdlua_jobs_total{' "$TMP/lf" || fail "a bare-LF request: no metrics in $(head -c 300 "$TMP/lf")"

# Refused at once, the client keeping its side open: gdlua answers and
# closes before its head deadline could (that would close without a
# word, logged at debug level), whatever follows the head. One process
# sends them all, a connection each.
cat >"$TMP/refused.py" <<'PY'
import socket, sys
port = int(sys.argv[1])
long = b"a" * 3000
cases = [
    ("CONNECT", "405 Method Not Allowed", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    ("CONNECT, its line only", "405 Method Not Allowed", b"CONNECT example.com:443 HTTP/1.1\r\n"),
    ("DELETE", "405 Method Not Allowed", b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("an unknown method", "501 Not Implemented", b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("a 3000-byte URI", "414 URI Too Long", b"GET /" + long + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("a 3000-byte URI, unfinished", "414 URI Too Long", b"GET /" + long),
    ("a chunked GET", "411 Length Required",
     b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
    ("a GET with a body", "413 Content Too Large", b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel"),
    ("HTTP/1.1 without Host", "400 Bad Request", b"GET /metrics HTTP/1.1\r\n\r\n"),
    ("HTTP/2.0", "505 HTTP Version Not Supported", b"GET / HTTP/2.0\r\n\r\n"),
    ("a folded header", "400 Bad Request", b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"),
    ("a space before a colon", "400 Bad Request", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("a NUL in a header", "400 Bad Request", b"GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n"),
    ("a lone CR", "400 Bad Request", b"GET / HTTP/1.1\rHost: x\r\n\r\n"),
    ("an absolute URI", "400 Bad Request", b"GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("a TLS hello", "400 Bad Request", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    ("a head over 8 KiB", "431 Request Header Fields Too Large", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + long * 3 + b"\r\n"),
]
bad = 0
for desc, want, request in cases:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(request)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        data += b" <no end within 20 s>"
    except ConnectionResetError:
        data += b" <reset>"
    s.close()
    first = data.split(b"\r\n", 1)[0].decode("latin-1")
    if first != "HTTP/1.1 " + want or not data.endswith(b"\n"):
        print("%s: want %r, got %r" % (desc, want, data[:120]))
        bad += 1
    elif want.startswith("405") and b"\r\nAllow: GET, HEAD\r\n" not in data:
        print("%s: no Allow header in %r" % (desc, data[:300]))
        bad += 1
sys.exit(bad)
PY
out=$(python3 "$TMP/refused.py" "$HTTP_PORT" 2>&1) || fail "refused requests: $out"
log_has "http: closing a connection that sent no whole request in time" &&
    fail "a refused request was closed by the deadline, not answered at once"

# Pipelined requests are answered in order on one connection, each with
# its Content-Length; HEAD gets GET's headers without a body.
get_len=$(printf 'GET /status.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\nConnection: close\r\n\r\n' |
    raw | LC_ALL=C tr -d '\r' | sed -n 's/^Content-Length: //p')
printf '%s' 'GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n\r\n' \
    'HEAD /dygraph.min.js HTTP/1.1\r\nHost: x\r\n\r\n' 'GET /nope HTTP/1.1\nHost: x\n\n' \
    'GET /status.json HTTP/1.0\r\nAuthorization: Bearer s3cret-token\r\n\r\n' 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' |
    xargs -0 printf '%b' | raw >"$TMP/pipelined" || fail "pipelined: not closed cleanly"
assert_eq "pipelined: the replies, in order" \
    "$(printf 'HTTP/1.1 200 OK\nHTTP/1.1 200 OK\nHTTP/1.1 404 Not Found\nHTTP/1.1 200 OK')" \
    "$(status_lines <"$TMP/pipelined")"
python3 - "$TMP/pipelined" "$get_len" <<'PY' || fail "pipelined replies are not framed by their Content-Length"
import json, sys
data, want = open(sys.argv[1], "rb").read(), int(sys.argv[2])
bodies = []
while data:
    head, _, data = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = dict(l.split(b": ", 1) for l in lines[1:])
    n = int(fields[b"Content-Length"])
    if lines[0].startswith(b"HTTP/1.1 200") and fields[b"Content-Type"].startswith(b"text/javascript"):
        n = 0  # HEAD: no body
        assert int(fields[b"Content-Length"]) > 100000, fields
    bodies.append((lines[0], fields, data[:n]))
    data = data[n:]
assert len(bodies) == 4, [b[0] for b in bodies]
assert b"gdlua_jobs_total" in bodies[0][2]
assert bodies[2][2].startswith(b"404 Not Found"), bodies[2][2]
doc = json.loads(bodies[3][2])  # HTTP/1.0 without keep-alive: the last one answered
assert len(bodies[3][2]) in range(want - 200, want + 200), (len(bodies[3][2]), want)
assert bodies[3][1][b"Connection"] == b"close", bodies[3][1]
PY
# "Connection: close" is honoured: what follows it is not answered.
out=$(printf 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n' |
    raw --keep-open | status_lines)
assert_eq "Connection: close" "HTTP/1.1 404 Not Found" "$out"
# HTTP/1.0 with keep-alive stays open for the next request.
out=$(printf 'GET /nope HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /nope HTTP/1.0\r\n\r\n' | raw --keep-open |
    LC_ALL=C tr -d '\r' | grep -a -E '^(HTTP/1.1 |Connection: )')
assert_eq "HTTP/1.0 keep-alive" "$(printf 'HTTP/1.1 404 Not Found\nConnection: keep-alive\nHTTP/1.1 404 Not Found\nConnection: close')" "$out"

# What crashed the master, again without --http_token (the crash did not
# depend on it): a master that asks for no token routes every request.
kill_wait "$GDLUA_PID" 10
start_http_gdlua "$FIXTURES/http"
out=$(printf 'GET /a{b} HTTP/1.1\r\nHost: x\r\n\r\n' | raw | status_lines)
assert_eq "GET /a{b}, no token" "HTTP/1.1 404 Not Found" "$out"
out=$(printf 'GET  /metrics  HTTP/1.1\r\nHost: x\r\n\r\n' | raw | status_lines)
assert_eq "GET with two spaces, no token" "HTTP/1.1 400 Bad Request" "$out"
alive "$GDLUA_PID" || fail "the master (no token) died of a request"
assert_eq "served after them, no token" 200 "$(http_status GET /metrics)"

pass
