#!/bin/bash
# Finding the modules below a script directory: a dangling symlink, an
# unreadable subdirectory, symlink loops and a file linked twice. Each
# module loads once (directories and files are told apart by device and
# inode, so a loop ends and a second link is skipped); what cannot be
# read is an error naming the path and the cause, and --check exits 1.
#
# The tree is made at run time in $TMP (the links are relative, so it
# also shows what gdlua does with links inside the tree).
#
# "Unreadable" as root: root reads a chmod 000 directory (the
# capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH bypass the mode
# bits), so gdlua --check runs under `setpriv --bounding-set=-...`: still
# root, but exec'ed without those two capabilities, so opendir() of the
# chmod 000 directory fails with EACCES as it would for anyone else. Not
# root: chmod 000 suffices.
source "$(dirname "$0")/lib.sh"

# module DIR NAME JOB: a module file DIR/NAME.lua defining job JOB.
module() {
    mkdir -p "$1"
    cat >"$1/$2.lua" <<EOF
local W = require("gdlua").worker()
W:job("$3", function(self, job, workload) return "$3 " .. workload end)
return W
EOF
}

# The broken tree: everything at once.
#   jobs/QA/Real.lua                 the one module of QA
#   jobs/QA/Alias.lua -> Real.lua    the same file again: skipped
#   jobs/QA/self -> .                a loop (alone: 41 copies of QA::Real)
#   jobs/QA/up -> ..                 a second loop (both: a hang)
#   jobs/QA/Dangling.lua -> Gone.lua a dangling link: an error
#   jobs/QA/Locked/Hidden.lua        in a chmod 000 directory: an error
#   jobs/Z/Linked -> ../QA           QA reached a second time: skipped
module "$TMP/jobs/QA" Real real
module "$TMP/jobs/QA/Locked" Hidden hidden
ln -s Real.lua "$TMP/jobs/QA/Alias.lua"
ln -s . "$TMP/jobs/QA/self"
ln -s .. "$TMP/jobs/QA/up"
ln -s Gone.lua "$TMP/jobs/QA/Dangling.lua"
mkdir -p "$TMP/jobs/Z"
ln -s ../QA "$TMP/jobs/Z/Linked"
chmod 000 "$TMP/jobs/QA/Locked"

# The same without the errors: the loops and links alone are no failure.
module "$TMP/clean/QA" Real real
ln -s Real.lua "$TMP/clean/QA/Alias.lua"
ln -s . "$TMP/clean/QA/self"
ln -s .. "$TMP/clean/QA/up"

# Not root, the cleanup could not remove the locked directory's contents.
trap 'rc=$?; chmod 755 "$TMP/jobs/QA/Locked" 2>/dev/null; (exit $rc); cleanup' EXIT

DROP=()
if ((EUID == 0)); then
    DROP=(setpriv --bounding-set=-dac_override,-dac_read_search)
    "${DROP[@]}" true || fail "cannot drop CAP_DAC_OVERRIDE with setpriv (needed to make a directory unreadable for root)"
fi
if "${DROP[@]}" ls "$TMP/jobs/QA/Locked" >/dev/null 2>&1; then
    fail "the chmod 000 directory $TMP/jobs/QA/Locked is still readable: the test cannot make it unreadable"
fi

# check DIR: gdlua --check DIR from $TMP (short paths in the messages),
# without the capabilities that read any directory; sets CHECK_RC,
# CHECK_OUT (the jobs listed) and CHECK_ERR (the log).
check() {
    (cd "$TMP" && timeout 20 "${DROP[@]}" "$GDLUA" --check "$1" >"$TMP/check.out" 2>"$TMP/check.err")
    CHECK_RC=$?
    CHECK_OUT=$(cat "$TMP/check.out")
    CHECK_ERR=$(cat "$TMP/check.err")
}

# ---- the broken tree --------------------------------------------------------
check jobs
((CHECK_RC != 124)) || fail "--check jobs did not finish in 20 s (symlink loops followed?); $(head -c 2000 "$TMP/check.err")"
assert_eq "--check jobs: the jobs listed, once each" \
    'QA::Real::real min=1 max=1 functions=QA::Real::real title="gdlua: worker QA::Real::real"' "$CHECK_OUT"
assert_eq "--check jobs: exit status (something was unreadable)" 1 "$CHECK_RC"
assert_contains "--check jobs: the dangling link" "$CHECK_ERR" \
    "cannot read jobs/QA/Dangling.lua: No such file or directory (a dangling symlink?)"
assert_contains "--check jobs: the unreadable directory" "$CHECK_ERR" \
    "cannot read script directory jobs/QA/Locked: Permission denied"
assert_contains "--check jobs: the loop" "$CHECK_ERR" \
    "skipping jobs/QA/self: the same directory as jobs/QA (a symlink loop or a second link)"
assert_contains "--check jobs: the loop to the root" "$CHECK_ERR" \
    "skipping jobs/QA/up: the same directory as jobs (a symlink loop or a second link)"
assert_contains "--check jobs: the second link to QA" "$CHECK_ERR" \
    "skipping jobs/Z/Linked: the same directory as jobs/QA (a symlink loop or a second link)"
assert_contains "--check jobs: the file linked twice" "$CHECK_ERR" \
    "skipping jobs/QA/Alias.lua: the same file as jobs/QA/Real.lua"
assert_not_contains "--check jobs: no module through a link" "$CHECK_ERR" "QA::self"
assert_not_contains "--check jobs: no module through a link" "$CHECK_ERR" "QA::Alias"

# ---- loops and links without errors: exit 0 --------------------------------
check clean
((CHECK_RC != 124)) || fail "--check clean did not finish in 20 s; $(head -c 2000 "$TMP/check.err")"
assert_eq "--check clean: exit status (links are not failures)" 0 "$CHECK_RC"
assert_eq "--check clean: the jobs listed, once each" \
    'QA::Real::real min=1 max=1 functions=QA::Real::real title="gdlua: worker QA::Real::real"' "$CHECK_OUT"
assert_contains "--check clean: the loop" "$CHECK_ERR" \
    "skipping clean/QA/self: the same directory as clean/QA (a symlink loop or a second link)"

# ---- serving the broken tree: one function per module, the errors logged ----
start_gearmand
start_gdlua "$TMP/jobs"
wait_for "a worker for QA::Real::real" 20 has_workers QA::Real::real
assert_eq "QA::Real::real" "real x" "$(gm -f QA::Real::real x)"
log_has "cannot read $TMP/jobs/QA/Dangling.lua: No such file or directory (a dangling symlink?)" ||
    fail "serving: the dangling link is not in the log"
functions=$(gadmin --status | awk -F'\t' '$1 ~ /^QA::/ { print $1 }' | sort | paste -sd' ')
# Served as root, the locked directory is readable again: its module loads.
assert_eq "serving: the functions gearmand knows" "QA::Locked::Hidden::hidden QA::Real::real" "$functions"

pass
