#!/bin/bash
# tcp_redis: a pure-Lua protocol library from Debian on gdlua.tcp, in a
# concurrent pool, against a real redis-server: lua-redis (redis-lua
# 2.0.5, written for LuaSocket) given a gdlua.tcp socket. 20 jobs wait in
# BLPOP in one process at once (redis counts 20 blocked clients, which
# jobs run one at a time cannot reach), then the test pushes each job its
# value and checks every answer.
source "$(dirname "$0")/lib.sh" "$@"

command -v redis-server >/dev/null || fail "redis-server is missing (bash cmake/bootstrap.sh test installs it)"
[[ -r /usr/share/lua/5.1/redis.lua ]] || fail "lua-redis is missing (bash cmake/bootstrap.sh test installs it)"

REDIS_PORT=$(free_port) || fail "no free port"
export REDIS_PORT
spawn_bg REDIS_PID redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$TMP" --logfile "$TMP/redis.log"
rcli() {
    timeout 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@" 2>/dev/null | tr -d '\r'
}
redis_up() {
    [[ $(rcli ping) == PONG ]]
}
blocked_is() {
    [[ $(rcli info clients | grep '^blocked_clients:') == "blocked_clients:$1" ]]
}
wait_for "redis-server to answer" 20 redis_up

start_gearmand
start_gdlua "$FIXTURES/tcp_redis"
wait_for "a worker for Redis::Jobs::pop" 20 has_workers Redis::Jobs::pop
pop_pid=$(worker_pids_for Redis::Jobs::pop | sort -u)
[[ $pop_pid =~ ^[0-9]+$ ]] || fail "one process serves Redis::Jobs::pop: '$pop_pid'"

for i in $(seq 20); do gm_submit "$i" Redis::Jobs::pop "k$i"; done
wait_for "20 jobs waiting in BLPOP at once" 30 blocked_is 20
assert_eq "processes serving the jobs" "$pop_pid" "$(worker_pids_for Redis::Jobs::pop | sort -u)"

for i in $(seq 20); do
    assert_eq "RPUSH list:k$i" 1 "$(rcli rpush "list:k$i" "val$i")"
done
all_answered() {
    local i
    for i in $(seq 20); do
        gm_answered "$i" || return 1
    done
}
wait_for "the 20 clients to be answered" 30 all_answered
for i in $(seq 20); do
    assert_eq "job k$i's exit status and answer" "0 k$i: set v-k$i, popped list:k$i val$i" \
        "$(cat "$TMP/rc.$i") $(cat "$TMP/out.$i")"
done
blocked_is 0 || fail "redis still has blocked clients: $(rcli info clients)"
alive "$pop_pid" || fail "the process serving the jobs died"
pass
