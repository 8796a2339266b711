#!/bin/bash
# A user's own C module (examples/modules/textstats.c), built with gdlua's
# CMake helper both inside gdlua's build ($2: its directory) and as a user
# would, standalone with find_package(Gdlua); loaded from --cpath by the
# example job examples/modules/jobs/GDExamples/Stats.lua.
source "$(dirname "$0")/lib.sh" "$@"
MODDIR=$(readlink -f "${2:?usage: test_usermodule.sh GDLUA MODULE_DIR}")

# Standalone, as the README shows.
cmake -S "$REPO/examples/modules" -B "$TMP/mod" -DGdlua_DIR="$REPO/cmake" >"$TMP/cmake.log" 2>&1 ||
    fail "configuring examples/modules standalone failed: $(tail -5 "$TMP/cmake.log")"
cmake --build "$TMP/mod" >>"$TMP/cmake.log" 2>&1 || fail "building it failed: $(tail -5 "$TMP/cmake.log")"
[[ -f $TMP/mod/textstats.so ]] || fail "no textstats.so from the standalone build"

# Without --cpath the module is not found: that module alone fails.
out=$("$GDLUA" --check "$REPO/examples/modules/jobs" 2>&1) && fail "--check passed without --cpath"
assert_contains "load error" "$out" "module 'textstats' not found"

start_gearmand
cd "$TMP" # so that Lua's default ./?.so finds nothing by accident
for dir in "$MODDIR" "$TMP/mod"; do
    start_gdlua --console_port 0 --cpath "$dir" "$REPO/examples/modules/jobs"
    wait_for "GDExamples::Stats::wc is registered" 10 bash -c "gearadmin -h 127.0.0.1 -p $PORT --workers | grep -q ':wake : .*GDExamples::Stats::wc'"
    assert_eq "wc ($dir)" "1 2 10" "$(printf 'two words\n' | gm -f GDExamples::Stats::wc)"
    assert_eq "crc32 ($dir)" "414fa339" "$(gm -f GDExamples::Stats::crc32 'The quick brown fox jumps over the lazy dog')"
    kill_wait "$GDLUA_PID" 10
    GDLUA_PID=
done
pass
