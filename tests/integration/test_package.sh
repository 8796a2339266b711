#!/bin/bash
# cpack -G DEB: the package builds from this build tree; it holds the
# expected paths, all below /usr; its Depends names the package of every
# library the binaries need (readelf's NEEDED, found by ldd, owned per
# dpkg -S); unpacked into a scratch root (dpkg -x), its gdlua --check
# loads the installed examples (also through the installed example
# config), its gdlua-console --help works, and its man pages render
# without a warning and list every option and console command.
#
# Usage: test_package.sh PATH/TO/gdlua BUILD_DIR
source "$(dirname "$0")/lib.sh"

[[ -n ${2:-} && -f $2/CPackConfig.cmake ]] || fail "usage: $0 PATH/TO/gdlua BUILD_DIR (with CPackConfig.cmake)"
BUILD=$(readlink -f "$2")
for tool in cpack dpkg-deb dpkg-shlibdeps readelf ldd groff; do
    command -v "$tool" >/dev/null || fail "$tool is missing (cmake/bootstrap.sh installs it)"
done

# The package and its unpacked tree live outside $TMP, whose every text
# file lib.sh reads for sanitizer reports: they are not any process's output.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gdlua-package.XXXXXX") || fail "cannot make a work directory"
trap 'rc=$?; rm -rf "$WORK"; (exit "$rc"); cleanup' EXIT

cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$WORK/pkg" >"$TMP/cpack.out" 2>&1 ||
    fail "cpack failed: $(tail -n 20 "$TMP/cpack.out")"
debs=("$WORK"/pkg/*.deb)
assert_eq "packages built" 1 "${#debs[@]}"
DEB=${debs[0]}
[[ -s $DEB ]] || fail "no package in $WORK/pkg: $(ls "$WORK/pkg")"

version=$(sed -nE 's/^project\(gdlua VERSION ([0-9]+\.[0-9]+\.[0-9]+).*/\1/p' "$REPO/CMakeLists.txt")
assert_eq "Package" gdlua "$(dpkg-deb -f "$DEB" Package)"
assert_eq "Version" "$version" "$(dpkg-deb -f "$DEB" Version)"
assert_eq "Architecture" "$(dpkg --print-architecture)" "$(dpkg-deb -f "$DEB" Architecture)"

# ---- what it holds ------------------------------------------------------------------
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' | grep -v '^$' >"$TMP/contents"
for path in /usr/bin/gdlua /usr/bin/gdlua-console \
    /usr/include/gdlua/gdlua_module.h \
    /usr/lib/cmake/Gdlua/GdluaConfig.cmake /usr/lib/cmake/Gdlua/GdluaConfigVersion.cmake \
    /usr/lib/systemd/system/gdlua.service \
    /usr/share/man/man1/gdlua.1 /usr/share/man/man1/gdlua-console.1 \
    /usr/share/gdlua/lua/gdlua/init.lua /usr/share/gdlua/lua/gdlua/cli.lua \
    /usr/share/gdlua/examples/gdlua.conf.lua /usr/share/gdlua/examples/gdlua.logrotate \
    /usr/share/gdlua/examples/prometheus.yml \
    /usr/share/gdlua/examples/jobs/GDExamples/Fib.lua /usr/share/gdlua/examples/jobs/GDExamples/Text.lua \
    /usr/share/gdlua/examples/jobs/GDExamples/Convert.lua /usr/share/gdlua/examples/fib_sum.lua \
    /usr/share/gdlua/examples/modules/textstats.c /usr/share/gdlua/examples/modules/CMakeLists.txt; do
    grep -qxF -- "$path" "$TMP/contents" || fail "the package lacks $path; it holds: $(paste -sd' ' "$TMP/contents")"
done
outside=$(grep -vE '^/usr(/|$)' "$TMP/contents")
assert_eq "paths outside /usr" "" "$outside"
grep -qE '^/usr/local' "$TMP/contents" && fail "the package installs below /usr/local"

ROOT=$WORK/root
dpkg-deb -x "$DEB" "$ROOT" || fail "dpkg-deb -x failed"
BIN=$ROOT/usr/bin

# ---- Depends: the package of every library the binaries need -------------------------------
depends=$(dpkg-deb -f "$DEB" Depends)
# the package names, alternatives included
names=" $(tr ',|' '\n\n' <<<"$depends" | sed -E 's/\(.*\)//; s/ //g' | grep -v '^$' | paste -sd' ') "
for want in libgearman8 libluajit2-5.1-2 libevent-2.1-7 libvips42 libdeflate0 libjpeg62-turbo libimagequant0 libedit2 libsystemd0 libc6; do
    [[ $names == *" $want "* ]] || fail "Depends lacks $want: $depends"
done
for prog in gdlua gdlua-console; do
    for lib in $(readelf -d "$BIN/$prog" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p'); do
        path=$(ldd "$BIN/$prog" | awk -v l="$lib" '$1 == l { print $3 }')
        [[ -n $path ]] || continue # the dynamic loader itself
        pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
        [[ -n $pkg ]] || pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
        [[ -n $pkg ]] || fail "$prog needs $lib ($path), which no package owns"
        [[ $names == *" $pkg "* ]] || fail "$prog needs $lib from $pkg, which Depends lacks: $depends"
    done
done

# ---- the installed programs -----------------------------------------------------------
EX=$ROOT/usr/share/gdlua/examples
timeout 20 "$BIN/gdlua" --check "$EX/jobs" >"$TMP/check.out" 2>"$TMP/check.err" ||
    fail "installed gdlua --check on the installed examples failed: $(cat "$TMP/check.err")"
assert_eq "jobs of the installed examples" \
    "GDExamples::Convert::convert_to_jpeg GDExamples::Convert::convert_to_gif GDExamples::Fanout::fetch GDExamples::Fib::fib GDExamples::Fib::fib_lua GDExamples::Text::text" \
    "$(cut -d' ' -f1 "$TMP/check.out" | paste -sd' ')"
timeout 20 "$BIN/gdlua" --config "$EX/gdlua.conf.lua" --check "$EX/jobs" >"$TMP/check.out" 2>"$TMP/check.err" ||
    fail "installed gdlua --check with the example config failed: $(cat "$TMP/check.err")"
grep -qE '^GDExamples::Fib::fib min=1 max=2 ' "$TMP/check.out" ||
    fail "the example config's override is not applied: $(cat "$TMP/check.out")"
out=$(timeout 10 "$BIN/gdlua-console" --help) || fail "installed gdlua-console --help failed"
assert_eq "gdlua-console --help" "usage: gdlua-console [--server HOST[:PORT]]... [--token FILE] [-c COMMAND]" \
    "$(head -n 1 <<<"$out")"
assert_eq "installed gdlua --version" "gdlua $version" "$(timeout 10 "$BIN/gdlua" --version)"

# ---- the unit -----------------------------------------------------------------------------
unit=$ROOT/usr/lib/systemd/system/gdlua.service
for line in 'Type=notify' 'ExecStart=/usr/bin/gdlua --config /etc/gdlua/gdlua.conf.lua' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'WatchdogSec=30s'; do
    grep -qxF -- "$line" "$unit" || fail "the unit lacks '$line'"
done

# ---- man pages ------------------------------------------------------------------------------
MAN=$ROOT/usr/share/man/man1
render() {
    groff -man -Tascii -P-cbou -rLL=200n -ww "$1" 2>"$TMP/groff.err"
}
for page in gdlua gdlua-console; do
    render "$MAN/$page.1" >"$TMP/$page.txt" || fail "groff failed on $page.1"
    assert_eq "groff's warnings on $page.1" "" "$(cat "$TMP/groff.err")"
    for section in NAME SYNOPSIS DESCRIPTION OPTIONS "SEE ALSO"; do
        grep -qx "$section" "$TMP/$page.txt" || fail "$page.1 has no $section section"
    done
done
for o in $("$BIN/gdlua" --help | grep -oE '^  --[a-z_]+' | sed 's/^  //'); do
    grep -qE -- "^ +$o( |\$)" "$TMP/gdlua.txt" || fail "gdlua.1 does not list $o"
done
for k in min_processes max_processes max_idle_time timeout max_attempts max_jobs max_memory; do
    grep -qE -- "^ +$k " "$TMP/gdlua.txt" || fail "gdlua.1 does not list the job key $k"
done
# gdlua-console.1's commands: those the README lists (checked against the console's help by test_console).
commands=$(awk '/^status +one line per job/ { on = 1 } on && /^```/ { exit } on { print $1 }' "$REPO/README.md")
[[ $(wc -w <<<"$commands") -ge 14 ]] || fail "cannot read the console commands from the README: $commands"
for c in $commands; do
    grep -qE -- "^ +$c( |\$)" "$TMP/gdlua-console.txt" || fail "gdlua-console.1 does not list the command $c"
done
for o in --server --token -c --help; do
    grep -qE -- "^ +$o( |\$)" "$TMP/gdlua-console.txt" || fail "gdlua-console.1 does not list $o"
done

pass
