#!/bin/bash
# A user's own C module (examples/modules/textstats.c), built with gdlua's
# CMake helper both inside gdlua's build ($2: its directory) and as a user
# would: standalone, against gdlua installed from its build directory
# (dirname of $1) into a private prefix, with only the installed header
# (gdlua_module.h) and package (find_package(Gdlua), version-checked by
# GdluaConfigVersion.cmake); and against a source tree. The module is
# loaded from --cpath by the example job examples/modules/jobs/GDExamples/
# Stats.lua; its gdl_child_hook is checked through a real job (usage).
source "$(dirname "$0")/lib.sh" "$@"
MODDIR=$(readlink -f "${2:?usage: test_usermodule.sh GDLUA MODULE_DIR}")
BUILD=$(dirname "$GDLUA")
PREFIX=$TMP/prefix
VERSION=$("$GDLUA" --version | awk '{ print $2 }')

# Install gdlua as a user would.
cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 ||
    fail "cmake --install $BUILD failed: $(tail -5 "$TMP/install.log")"
for f in include/gdlua/gdlua_module.h lib/cmake/Gdlua/GdluaConfig.cmake lib/cmake/Gdlua/GdluaConfigVersion.cmake; do
    [[ -f $PREFIX/$f ]] || fail "cmake --install did not install $f: $(cat "$TMP/install.log")"
done

# Standalone, against the installed package only (README's commands, with
# the prefix's Gdlua_DIR).
cmake -S "$REPO/examples/modules" -B "$TMP/mod" -DGdlua_DIR="$PREFIX/lib/cmake/Gdlua" >"$TMP/cmake.log" 2>&1 ||
    fail "configuring examples/modules standalone failed: $(tail -5 "$TMP/cmake.log")"
assert_contains "the installed package's header" "$(cat "$TMP/cmake.log")" \
    "Gdlua module header: $PREFIX/include/gdlua/gdlua_module.h"
cmake --build "$TMP/mod" >>"$TMP/cmake.log" 2>&1 || fail "building it failed: $(tail -5 "$TMP/cmake.log")"
[[ -f $TMP/mod/textstats.so ]] || fail "no textstats.so from the standalone build"
# The compiler's own record of the headers it read: the installed
# gdlua_module.h, nothing from gdlua's source tree.
deps=$(cat "$TMP"/mod/CMakeFiles/textstats.dir/textstats.c.o.d 2>/dev/null) ||
    fail "no dependency file for textstats.c.o"
assert_contains "header used by the standalone build" "$deps" "$PREFIX/include/gdlua/gdlua_module.h"
assert_not_contains "headers used by the standalone build" "$deps" "$REPO/runtime"
nm -D --undefined-only "$TMP/mod/textstats.so" | grep -qw gdl_child_hook ||
    fail "textstats.so does not use gdl_child_hook"

# GdluaConfigVersion.cmake: find_package(Gdlua 0.1) takes gdlua 0.1.x,
# find_package(Gdlua 9.0) refuses it.
for want in 0.1 9.0; do
    mkdir -p "$TMP/v$want"
    printf '%s\n' 'cmake_minimum_required(VERSION 3.18)' 'project(v C)' "find_package(Gdlua $want REQUIRED)" \
        'message(STATUS "found Gdlua ${Gdlua_VERSION}")' >"$TMP/v$want/CMakeLists.txt"
    cmake -S "$TMP/v$want" -B "$TMP/v$want/build" -DGdlua_DIR="$PREFIX/lib/cmake/Gdlua" >"$TMP/v$want.log" 2>&1
    echo $? >"$TMP/v$want.rc"
done
[[ $(cat "$TMP/v0.1.rc") == 0 ]] || fail "find_package(Gdlua 0.1) refused gdlua $VERSION: $(tail -8 "$TMP/v0.1.log")"
assert_contains "find_package(Gdlua 0.1)" "$(cat "$TMP/v0.1.log")" "found Gdlua $VERSION"
[[ $(cat "$TMP/v9.0.rc") != 0 ]] || fail "find_package(Gdlua 9.0) accepted gdlua $VERSION"
assert_contains "find_package(Gdlua 9.0) refusal" "$(cat "$TMP/v9.0.log")" "version: $VERSION"

# In a source tree, GdluaConfig.cmake uses the tree's own header, also
# when an installed one sits where an installed config would look for it.
mkdir -p "$TMP/tree/a/gdlua/cmake" "$TMP/tree/a/gdlua/runtime" "$TMP/tree/include/gdlua"
cp "$REPO/cmake/GdluaConfig.cmake" "$TMP/tree/a/gdlua/cmake/"
cp "$REPO/runtime/gdlua_module.h" "$TMP/tree/a/gdlua/runtime/"
cp "$REPO/runtime/gdlua_module.h" "$TMP/tree/include/gdlua/"
cmake -S "$REPO/examples/modules" -B "$TMP/treemod" -DGdlua_DIR="$TMP/tree/a/gdlua/cmake" >"$TMP/tree.log" 2>&1 ||
    fail "configuring examples/modules against a source tree failed: $(tail -5 "$TMP/tree.log")"
assert_contains "a source tree's header" "$(cat "$TMP/tree.log")" \
    "Gdlua module header: $TMP/tree/a/gdlua/runtime/gdlua_module.h"

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
    # The group's one process read 10 + 43 bytes in two calls; the master's
    # load-time crc32 check (9 bytes) was zeroed by the child hook.
    assert_eq "usage in the worker ($dir)" "2 53" "$(gm -f GDExamples::Stats::usage </dev/null)"
    assert_eq "processes of the group ($dir)" 1 "$(children_of "$GDLUA_PID" | wc -l)"
    kill_wait "$GDLUA_PID" 10
    GDLUA_PID=
done
pass
