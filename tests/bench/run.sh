#!/bin/bash
# run.sh: the benchmark, gdlua against every peer in one run on loopback
# (a private /usr/sbin/gearmand per part, free ports):
#
#   bash tests/bench/run.sh [--quick] [--build DIR] [--out DIR]
#
# Installs what is missing from Debian packages (the peers: php-gearman,
# Perl's Gearman::Worker and Imager, Celery with gevent and redis-server;
# gnuplot for the chart), builds gdlua (cmake/bootstrap.sh, into build/),
# runs the parts
#   bench_echo   echo at 1/2/4 processes: plain C, gdlua, PHP, Perl; faults
#   bench_scale  cold start from zero processes, a burst of 200 jobs
#   bench_pool   memory at 1/10/50 processes, idle cost, console, fib fan-out
#   bench_conc   I/O-bound jobs (an HTTP GET answered after 100 ms): one
#                process of concurrency 1000 against 1000 processes and
#                against Celery's gevent pool (peers/celery_conc.py)
#   bench_image  the seed's conversions on a corpus of real images: gdlua,
#                the codec floor, Imager, the seed's worker
# The image corpus (corpus.tsv: Debian packages' own images) is installed
# by corpus.sh into BUILD/bench-corpus, as the peers are (apt-get, so it
# needs the network as they do); --quick uses it if it is there and says
# what it skipped if not.
# and turns their RESULT lines into DIR/results.md, results.json and
# results.svg (collect.py, goals.tsv); DIR is bench/ at the top of the
# repository, and the README's Performance table is replaced too.
# --quick (ctest, with --build and --out) runs every part at tiny sizes:
# it checks results and counts, never timings, and leaves the README be.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=
BUILD=
OUT=$ROOT/bench
while (($#)); do
    case $1 in
    --quick) QUICK=--quick ;;
    --build)
        BUILD=$2
        shift
        ;;
    --out)
        OUT=$2
        shift
        ;;
    *)
        echo "usage: $0 [--quick] [--build DIR] [--out DIR]" >&2
        exit 2
        ;;
    esac
    shift
done

PACKAGES="php-cli php-gearman libgearman-client-perl libimager-perl gnuplot-nox python3
    python3-celery python3-gevent python3-redis redis-server"
if [[ -z $BUILD ]]; then
    missing=()
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        SUDO=
        [[ $(id -u) == 0 ]] || SUDO=sudo
        echo "run.sh: installing ${missing[*]}" >&2
        $SUDO apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    BUILD=$(bash "$ROOT/cmake/bootstrap.sh")
fi
GDLUA=$BUILD/gdlua
BIN=$BUILD/tests/bench
CORPUS=$BUILD/bench-corpus
corpus_status=0
if [[ -z $QUICK ]]; then
    bash "$HERE/corpus.sh" "$GDLUA" "$CORPUS" || corpus_status=1
fi
mkdir -p "$OUT"
RAW=$OUT/raw.txt
: >"$RAW"

# part NAME CMD...: runs one part, its output shown and kept in RAW.
status=0
part() {
    local name=$1 t0=$SECONDS
    shift
    echo "==== run.sh: $name" >&2
    if ! "$@" | tee -a "$RAW"; then
        echo "run.sh: $name FAILED" >&2
        status=1
    fi
    echo "==== run.sh: $name took $((SECONDS - t0)) s" >&2
}
t0=$SECONDS
part echo "$BIN/bench_echo" "$GDLUA" "$HERE" $QUICK
part scale "$BIN/bench_scale" "$GDLUA" "$HERE/fixtures/scale" $QUICK
part pool "$BIN/bench_pool" "$GDLUA" "$HERE" $QUICK
part conc "$BIN/bench_conc" "$GDLUA" "$HERE" $QUICK
if [[ -n $QUICK ]]; then
    part image "$BIN/bench_image" "$GDLUA" "$HERE" --corpus "$CORPUS" --quick
else
    part image "$BIN/bench_image" "$GDLUA" "$HERE" --corpus "$CORPUS" --rss 200
fi
((corpus_status == 0)) || {
    echo "run.sh: the image corpus is incomplete (corpus.sh failed above)" >&2
    status=1
}

machine="$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -sr)"
readme=()
[[ -z $QUICK && $OUT == "$ROOT/bench" ]] && readme=(--readme "$ROOT/README.md")
python3 "$HERE/collect.py" "$HERE/goals.tsv" "$RAW" "$OUT" $QUICK --machine "$machine" "${readme[@]}" || status=1
if command -v gnuplot >/dev/null; then
    (cd "$OUT" && gnuplot results.gp >results.svg) || status=1
elif [[ -z $QUICK ]]; then
    echo "run.sh: gnuplot is missing: no chart" >&2
    status=1
fi
echo "==== run.sh: $((SECONDS - t0)) s; results in $OUT${QUICK:+ (quick: figures not meaningful)}" >&2
exit $status
