#!/bin/bash
# run.sh [SECONDS]: builds the console fuzzer with clang (libFuzzer, ASan,
# UBSan, no recovery) and runs it for SECONDS (default 20) on a copy of the
# corpus. Fails if libFuzzer does (a crash, a leak, a sanitizer report) or
# if its log has a sanitizer report anyway.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${FUZZ_BUILD:-$HERE/../../build-fuzz}
cmake -S "$HERE" -B "$BUILD" -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
CORPUS=$(mktemp -d)
trap 'rm -rf "$CORPUS"' EXIT
cp "$HERE"/corpus/* "$CORPUS"/
if ! "$BUILD/fuzz_console" -max_total_time="${1:-20}" -max_len=8192 -print_final_stats=1 "$CORPUS" \
    >"$CORPUS/fuzz.log" 2>&1 ||
    grep -qaE 'runtime error:|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer' "$CORPUS/fuzz.log"; then
    cat "$CORPUS/fuzz.log"
    echo "0 passed, 1 failed"
    exit 1
fi
tail -n 6 "$CORPUS/fuzz.log"
echo "1 passed, 0 failed"
