#!/bin/bash
# A reload reads the config file again (--config): its per-job overrides
# and defaults apply to the new generation; a broken file fails the
# reload with the file's error, and the running code serves on. The HTTP
# endpoint serves the new pools.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/console_lib.sh"

JOBS=$TMP/jobs
CONF=$TMP/gdlua.conf.lua
mkdir -p "$JOBS/Rl"
cp "$FIXTURES/reload/Extra.lua" "$JOBS/Rl/Extra.lua"
write_conf() {
    printf '%s\n' "$1" >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}
status_of() {
    cons_one status | awk '$1 == "Rl::Extra::extra" { print $2, $3 }'
}

start_gearmand
write_conf 'return { jobs = { ["Rl::Extra::extra"] = { max_processes = 3 } } }'
# Both ports picked again if a parallel test takes one before gdlua binds it.
start_console_http_gdlua --config "$CONF" "$JOBS"
wait_for "a worker for Rl::Extra::extra" 10 has_workers Rl::Extra::extra
assert_eq "min and max from the module and the file" "1 3" "$(status_of)"

write_conf 'return { jobs = { ["Rl::Extra::extra"] = { min_processes = 2, max_processes = 5 } } }'
out=$(cons_one reload)
[[ $out =~ ^OK\ generation\ 2:\ 1\ job\(s\)$ ]] || fail "reload: console answered: $out"
assert_eq "min and max after the reload" "2 5" "$(status_of)"
wait_for "two workers (min_processes 2 from the file)" 10 has_workers Rl::Extra::extra 2
# The HTTP endpoint follows the new pools (its history is kept per pool).
for path in metrics history.json status.json; do
    out=$(curl -sf "http://127.0.0.1:$HTTP_PORT/$path") || fail "/$path after the reload"
    assert_contains "/$path after the reload" "$out" "Rl::Extra::extra"
done

write_conf 'return { max_idle_time = -1 }'
out=$(cons_one reload)
assert_eq "reload with a broken config file" \
    "ERR reload_failed: cannot read the configuration again: $CONF: max_idle_time = -1: out of bounds (0..31536000)" "$out"
assert_eq "min and max after the failed reload" "2 5" "$(status_of)"
assert_eq "the job after the failed reload" "extra z" "$(gm -f Rl::Extra::extra z)"
pass
