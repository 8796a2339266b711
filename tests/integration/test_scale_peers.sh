#!/bin/bash
# Two gdlua instances on one job server share a backlog: 10 jobs with
# max_processes 10 each must not start 20 processes. Each instance counts
# the other through gearmand's "workers" client ids (gdlua:HOST:PID:...).
source "$(dirname "$0")/lib.sh" "$@"

start_gearmand
start_gdlua --interval 1 "$FIXTURES/scale"
"$GDLUA" --server "127.0.0.1:$PORT" --logfile "$TMP/gdlua2.log" --console_port 0 --interval 1 "$FIXTURES/scale" \
    </dev/null >>"$GDLUA_OUT" 2>&1 &
SECOND=$!
EXTRA_PIDS+=("$SECOND")
wait_for "both sentinels register Scale::Jobs::wide" 10 bash -c "[[ \$(gearadmin -h 127.0.0.1 -p $PORT --workers | grep -c ':wake : .*Scale::Jobs::wide') == 2 ]]"

for i in $(seq 10); do
    gm -b -f Scale::Jobs::wide 3 -s >/dev/null || fail "submitting job $i failed"
done
most=0
deadline=$(($(now_ms) + 30000))
while (($(now_ms) < deadline)); do
    n=$(( $(children_of "$GDLUA_PID" | wc -l) + $(children_of "$SECOND" | wc -l) ))
    ((n > most)) && most=$n
    left=$(gadmin --status | awk -F'\t' '$1 == "Scale::Jobs::wide" { print $2 }')
    [[ $left == 0 ]] && break
    sleep 0.02
done
assert_eq "backlog drained" 0 "$left"
first=$(grep -cE '\] start [0-9]+ Scale::Jobs::wide' "$GDLUA_LOG")
second=$(grep -cE '\] start [0-9]+ Scale::Jobs::wide' "$TMP/gdlua2.log")
echo "processes: most $most at once; started $first + $second"
((most <= 12)) || fail "$most processes at once for 10 jobs (20 would be doubling)"
((first + second <= 12)) || fail "started $first + $second processes for 10 jobs"
((first >= 1 && second >= 1)) || fail "one instance took no share ($first + $second)"
kill_wait "$SECOND" 10
pass
