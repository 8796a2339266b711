#!/bin/bash
# run.sh: the whole test suite on a fresh Debian bookworm machine:
# installs what is missing, builds, and runs every test with ctest.
#   bash tests/run.sh            (GDLUA_CMAKE_ARGS=-DGDLUA_SANITIZE=ON for ASan+UBSan)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(bash "$ROOT/cmake/bootstrap.sh")
cd "$BUILD"
exec ctest --output-on-failure --timeout 300
