#!/bin/bash
# bootstrap.sh: installs the Debian packages gdlua needs (only those
# missing; as root, or through sudo) and builds gdlua into build/ (or
# $GDLUA_BUILD), configured with $GDLUA_CMAKE_ARGS; prints the build
# directory.
#
#   bash cmake/bootstrap.sh [demo|test]
#
# demo (the default; examples/demo.sh, tests/bench/run.sh): what builds
# gdlua and runs the examples: the compiler, the libraries, gearmand and
# its tools. test (tests/run.sh) adds what only the tests use: clang and
# its sanitizer runtime, Prometheus' promtool, headless Chromium, busted,
# Imager, the package tools. So the demo installs no browser.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${GDLUA_BUILD:-$ROOT/build}
DEMO_PACKAGES="build-essential cmake pkg-config libgearman-dev gearman-job-server gearman-tools
               libluajit2-5.1-dev libevent-dev libedit-dev libvips-dev libdeflate-dev
               libjpeg62-turbo-dev libimagequant-dev libsystemd-dev libcurl4-openssl-dev libjs-dygraphs procps"
TEST_PACKAGES="clang libclang-rt-14-dev libimager-perl python3 groff-base dpkg-dev file lua-busted
               prometheus chromium chromium-driver curl redis-server lua-redis"
case ${1:-demo} in
demo) PACKAGES=$DEMO_PACKAGES ;;
test) PACKAGES="$DEMO_PACKAGES $TEST_PACKAGES" ;;
*)
    echo "usage: $0 [demo|test]" >&2
    exit 2
    ;;
esac

missing=()
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "bootstrap: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${GDLUA_CMAKE_ARGS:-} >&2
cmake --build "$BUILD" -j"$(nproc)" >&2
echo "$BUILD"
