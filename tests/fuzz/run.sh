#!/bin/bash
# run.sh [SECONDS [TARGET]]: builds a fuzzer with clang (libFuzzer, ASan,
# UBSan, no recovery) and runs it for SECONDS (default 20) on a copy of its
# corpus: TARGET console (default; corpus/), http (corpus_http/) or png
# (corpus_png/). Fails if libFuzzer does (a crash, a leak, a sanitizer report) or
# if its log has a sanitizer report anyway.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${FUZZ_BUILD:-$HERE/../../build-fuzz}
cmake -S "$HERE" -B "$BUILD" -DCMAKE_C_COMPILER=clang >/dev/null
TARGET=${2:-console}
SEEDS=$HERE/corpus
[ "$TARGET" = console ] || SEEDS=$HERE/corpus_$TARGET
cmake --build "$BUILD" -j"$(nproc)" --target "fuzz_$TARGET" >/dev/null
CORPUS=$(mktemp -d)
trap 'rm -rf "$CORPUS"' EXIT
cp "$SEEDS"/* "$CORPUS"/
if ! "$BUILD/fuzz_$TARGET" -max_total_time="${1:-20}" -max_len=8192 -print_final_stats=1 "$CORPUS" \
    >"$CORPUS/fuzz.log" 2>&1 ||
    grep -qaE 'runtime error:|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer' "$CORPUS/fuzz.log"; then
    cat "$CORPUS/fuzz.log"
    echo "0 passed, 1 failed"
    exit 1
fi
tail -n 6 "$CORPUS/fuzz.log"
echo "1 passed, 0 failed"
