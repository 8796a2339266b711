#!/bin/bash
# bootstrap.sh: installs the Debian packages gdlua needs (only those
# missing; as root, or through sudo) and builds gdlua into build/ (or
# $GDLUA_BUILD), configured with $GDLUA_CMAKE_ARGS. Used by
# examples/demo.sh and tests/run.sh (once per build); prints the build
# directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${GDLUA_BUILD:-$ROOT/build}
PACKAGES="build-essential cmake pkg-config libgearman-dev gearman-job-server gearman-tools
          libluajit2-5.1-dev libevent-dev libedit-dev libvips-dev libdeflate-dev
          libjpeg62-turbo-dev libimagequant-dev libcgif-dev libimager-perl procps clang libclang-rt-14-dev
          libsystemd-dev libcurl4-openssl-dev python3 groff-base dpkg-dev file libjs-dygraphs prometheus chromium chromium-driver curl"

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
