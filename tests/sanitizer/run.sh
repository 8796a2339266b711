#!/bin/bash
# sanitizer/run.sh CMD ARGS...: runs the test CMD with every sanitizer
# report, its own and those of any process it starts (gdlua's children
# among them), written to a private directory (ASan/UBSan log_path); fails
# when one was written, whatever CMD's exit status, and prints it.
# ctest runs the tests of a GDLUA_SANITIZE build through it, but for the
# integration tests (lib.sh does the same for each of them).
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/gdlua-san.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$dir/report"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$dir/report"
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
"$@"
rc=$?
mapfile -t reports < <(grep -laE 'runtime error:|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer' \
    "$dir"/report.* 2>/dev/null)
if ((${#reports[@]})); then
    for f in "${reports[@]}"; do
        echo "---- sanitizer report (pid ${f##*.}) ----"
        head -n 80 "$f"
    done >&2
    echo "FAIL: ${#reports[@]} sanitizer report(s) from $(basename "$1") (exit status $rc)" >&2
    exit 1
fi
exit "$rc"
