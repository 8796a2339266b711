#!/bin/bash
# run.sh: the whole test suite on a fresh Debian bookworm machine:
# installs what is missing, then builds gdlua and runs every test (ctest)
# twice, once per build:
#   gcc    build/       gcc, warnings are errors (GDLUA_WERROR)
#   asan   build-asan/  clang, warnings are errors, ASan+UBSan (GDLUA_SANITIZE):
#                       any sanitizer report fails the test it came from
#
#   bash tests/run.sh [gcc|asan]...     (default: gcc asan)
#
# GDLUA_CMAKE_ARGS adds CMake arguments to each build, GDLUA_CTEST_ARGS
# ctest arguments to each run (e.g. "-R console" or "-LE image"),
# GDLUA_TEST_JOBS sets ctest's parallelism (default 2). Exits 1 if a
# build or a test failed in any pass.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${GDLUA_TEST_JOBS:-2}
passes=("$@")
((${#passes[@]})) || passes=(gcc asan)
for pass in "${passes[@]}"; do
    case $pass in
    gcc | asan) ;;
    *)
        echo "usage: $0 [gcc|asan]..." >&2
        exit 2
        ;;
    esac
done

status=0
summary=()
start=$SECONDS
for pass in "${passes[@]}"; do
    case $pass in
    gcc)
        build=$ROOT/build
        args="-DCMAKE_C_COMPILER=gcc -DGDLUA_WERROR=ON -DGDLUA_SANITIZE=OFF"
        ;;
    asan)
        build=$ROOT/build-asan
        args="-DCMAKE_C_COMPILER=clang -DGDLUA_WERROR=ON -DGDLUA_SANITIZE=ON"
        ;;
    esac
    t0=$SECONDS
    echo "==== $pass: building in $build" >&2
    if ! GDLUA_BUILD=$build GDLUA_CMAKE_ARGS="$args ${GDLUA_CMAKE_ARGS:-}" \
        bash "$ROOT/cmake/bootstrap.sh" test >/dev/null; then
        summary+=("$pass: BUILD FAILED after $((SECONDS - t0)) s")
        status=1
        continue
    fi
    echo "==== $pass: ctest -j$JOBS in $build" >&2
    # shellcheck disable=SC2086 # GDLUA_CTEST_ARGS is a list of arguments
    if (cd "$build" && ctest --output-on-failure --timeout 300 -j"$JOBS" ${GDLUA_CTEST_ARGS:-}); then
        summary+=("$pass: passed in $((SECONDS - t0)) s")
    else
        summary+=("$pass: FAILED in $((SECONDS - t0)) s (log: $build/Testing/Temporary/LastTest.log)")
        status=1
    fi
done
echo "==== run.sh: $((SECONDS - start)) s in all" >&2
printf '  %s\n' "${summary[@]}" >&2
exit "$status"
