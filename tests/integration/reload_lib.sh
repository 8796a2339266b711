# shellcheck shell=bash
# reload_lib.sh: the reload tests' module (fixtures/reload/Echo.lua.in),
# written to $ECHO (under $JOBS, the directory gdlua serves) as each
# reload is to load it. Sourced after lib.sh.

JOBS=$TMP/jobs
ECHO=$JOBS/Rl/Echo.lua
mkdir -p "$JOBS/Rl"

# write_echo VERSION [MIN [LOADCODE]]: Rl/Echo.lua as the next load reads
# it: it answers "vVERSION:...", keeps MIN (default 2) echo processes and
# runs LOADCODE when loaded.
write_echo() {
    local code=${3:-}
    sed -e "s/@VERSION@/$1/g" -e "s/@MIN@/${2:-2}/" "$FIXTURES/reload/Echo.lua.in" |
        awk -v code="$code" '{ if ($0 == "@LOADCODE@") print code; else print }' >"$ECHO.tmp"
    mv "$ECHO.tmp" "$ECHO"
}

# answers VERSION: Rl::Echo::echo is served by VERSION's code.
answers() {
    [[ $(gm -f Rl::Echo::echo probe) == "v$1:probe" ]]
}

generation_serves() {
    log_has "generation $1 serves "
}
