#!/bin/bash
# run.sh: the scaling policy simulated at scale (tests/sim/sim.c): builds
# the simulator if needed and prints its table for every trace, full
# length. Arguments go to the simulator (--quick, --check, --trace NAME,
# --hosts N, --servers N, --delay_ms MS, --seed N, ...; --help lists them).
#   bash tests/sim/run.sh                  # the table in README.md
#   bash tests/sim/run.sh --delay_ms 1     # the same cluster 1 ms apart
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${GDLUA_BUILD:-$ROOT/build}
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    GDLUA_BUILD=$BUILD bash "$ROOT/cmake/bootstrap.sh" >/dev/null
fi
cmake --build "$BUILD" --target gdlua_sim -j2 >&2
exec "$BUILD/tests/sim/gdlua_sim" "$@"
