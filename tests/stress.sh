#!/bin/bash
# stress.sh: the flake hunt. Runs the whole suite (tests/run.sh, one pass
# at a time) N times in a row for each pass, with a CPU hog on every
# core the whole time, and reports each run's failures by test name, then
# how often each test failed:
#
#   bash tests/stress.sh [-n N] [gcc|asan]...     (default: -n 10 gcc asan)
#
# Run k is gcc's k-th run, then asan's. The hogs are shell loops, one per
# core (GDLUA_STRESS_HOGS sets how many; 0: none), stopped by pid at the
# end. GDLUA_CTEST_ARGS and GDLUA_CMAKE_ARGS go to run.sh (e.g.
# GDLUA_CTEST_ARGS="-R dashboard" to hammer one test). Each run's output
# is kept in BUILD/stress/PASS-K.log. Exits 1 if any run failed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=10
passes=()
while (($#)); do
    case $1 in
    -n)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || {
            echo "usage: $0 [-n N] [gcc|asan]..." >&2
            exit 2
        }
        RUNS=$2
        shift
        ;;
    gcc | asan) passes+=("$1") ;;
    *)
        echo "usage: $0 [-n N] [gcc|asan]..." >&2
        exit 2
        ;;
    esac
    shift
done
((${#passes[@]})) || passes=(gcc asan)

HOGS=()
stop_hogs() {
    local p
    for p in "${HOGS[@]-}"; do
        [[ -n $p ]] || continue
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    HOGS=()
}
trap stop_hogs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
nhogs=${GDLUA_STRESS_HOGS:-$(nproc)}
for ((i = 0; i < nhogs; i++)); do
    (while :; do :; done) &
    HOGS+=("$!")
done
echo "==== stress.sh: $RUNS run(s) of ${passes[*]}, $nhogs CPU hog(s) (pids ${HOGS[*]-none})" >&2

declare -A failed_count=() # "PASS TEST" -> failed runs
declare -A bad_runs=()     # PASS -> failed runs
lines=()
start=$SECONDS
for ((run = 1; run <= RUNS; run++)); do
    for pass in "${passes[@]}"; do
        case $pass in
        gcc) build=$ROOT/build ;;
        asan) build=$ROOT/build-asan ;;
        esac
        mkdir -p "$build/stress"
        log=$build/stress/$pass-$run.log
        t0=$SECONDS
        rc=0
        bash "$ROOT/tests/run.sh" "$pass" >"$log" 2>&1 || rc=$?
        # ctest's list after "The following tests FAILED:", e.g.
        # "	 25 - integration.daemon (Failed)".
        names=$(awk '/^The following tests FAILED:/ { on = 1; next }
            on && /^[[:space:]]*[0-9]+ - / { sub(/^[[:space:]]*[0-9]+ - /, ""); print; next }
            on { on = 0 }' "$log")
        total=$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 | awk '{ print $NF }')
        if grep -q "BUILD FAILED" "$log"; then
            names="BUILD FAILED"
        elif ((rc != 0)) && [[ -z $names ]]; then
            names="run.sh exited $rc (no ctest summary)"
        fi
        if [[ -n $names ]]; then
            bad_runs[$pass]=$((${bad_runs[$pass]:-0} + 1))
            while IFS= read -r n; do
                key="$pass ${n% (*}"
                failed_count[$key]=$((${failed_count[$key]:-0} + 1))
            done <<<"$names"
            line="$pass run $run/$RUNS: FAILED in $((SECONDS - t0)) s: $(paste -sd',' <<<"$names" | sed 's/,/, /g') (log: $log)"
        else
            line="$pass run $run/$RUNS: passed, ${total:-?} tests, in $((SECONDS - t0)) s"
        fi
        lines+=("$line")
        echo "==== $line" >&2
    done
done
stop_hogs

echo "==== stress.sh: $((SECONDS - start)) s in all, $nhogs CPU hog(s)" >&2
printf '  %s\n' "${lines[@]}" >&2
status=0
for pass in "${passes[@]}"; do
    echo "  $pass: $RUNS run(s), $((RUNS - ${bad_runs[$pass]:-0})) green, ${bad_runs[$pass]:-0} with failures" >&2
    ((${bad_runs[$pass]:-0} == 0)) || status=1
done
for key in "${!failed_count[@]}"; do
    echo "    ${failed_count[$key]}x $key"
done | LC_ALL=C sort -k2 >&2
exit "$status"
