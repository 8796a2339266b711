#!/bin/bash
# /healthz: 200 "ok" while every pool has its min_processes serving and
# every job server answers the master's polls; 503 and a line per reason
# otherwise: a job server killed (then 200 again once it is back), a pool
# below its minimum (crash-looping). The route is open; the reasons are
# listed only to a request with the token.
source "$(dirname "$0")/lib.sh"

echo "s3cret-health" >"$TMP/token"
start_gearmand
start_http_gdlua --interval 1 --max_attempts 0 --http_token "$TMP/token" "$FIXTURES/healthz"

# health_is CODE [CURL-ARGS]: /healthz answers CODE (its body in $TMP/h.body).
health_is() {
    local code=$1
    shift
    [[ $(curl -s --max-time 5 -o "$TMP/h.body" -w '%{http_code}' "$@" "http://127.0.0.1:$HTTP_PORT/healthz") == "$code" ]]
}
AUTH=(-H "Authorization: Bearer s3cret-health")

wait_for "/healthz to answer 200" 15 health_is 200
assert_eq "healthy body" "ok" "$(cat "$TMP/h.body")"
health_is 200 "${AUTH[@]}" || fail "with the token: $(cat "$TMP/h.body")"
assert_eq "/metrics still needs the token" 401 "$(http_status GET /metrics)"
assert_eq "HEAD /healthz" 200 "$(http_status HEAD /healthz)"

# The job server dies: 503, naming it.
{
    kill -KILL "$GEARMAND_PID"
    wait "$GEARMAND_PID"
} 2>/dev/null
GEARMAND_PID=
wait_for "/healthz to answer 503 with gearmand gone" 15 health_is 503 "${AUTH[@]}"
assert_eq "the reasons with gearmand gone" "server 127.0.0.1:$PORT: not answering the status polls" \
    "$(cat "$TMP/h.body")"
health_is 503 || fail "without the token: not 503: $(cat "$TMP/h.body")"
assert_eq "the body without the token" "unhealthy: 1 reason(s); send the token (--http_token) to see them" \
    "$(cat "$TMP/h.body")"

# Back: 200.
start_gearmand "$PORT"
wait_for "/healthz to answer 200 with gearmand back" 15 health_is 200
assert_eq "healthy body again" "ok" "$(cat "$TMP/h.body")"

# A pool below its minimum: every process of Test::Health::die dies.
wait_for "a worker for Test::Health::die" 10 has_workers Test::Health::die
gm -b -f Test::Health::die -s >/dev/null 2>&1 || fail "cannot submit the background job"
wait_for "/healthz to answer 503 in the crash loop" 15 health_is 503 "${AUTH[@]}"
body=$(cat "$TMP/h.body")
assert_eq "the reasons in the crash loop" "job Test::Health::die: 0 of min_processes 1 serving" "$body"
out=$(gm -f Test::Health::ok x) || fail "the healthy job failed"
assert_eq "the healthy job's result" "ok x" "$out"
alive "$GDLUA_PID" || fail "the master died"

pass
