#!/bin/bash
# --pidfile: a lock the master holds for its life owns the file, not the
# pid in it (test_pidfile_race.sh starts several at once). A file nobody
# holds is stale whatever pid it names. The file is never written
# through: a symlink, a hard link, a fifo, a directory, a device, another
# user's file, the config or the log file is refused, and at exit only
# the file locked is removed. The children hold no descriptor of it, and
# a master killed with SIGKILL leaves a file the next start takes over at
# once. As root: a --user master leaves root's file in root's directory
# emptied, and the next start takes it over.
source "$(dirname "$0")/lib.sh"

IDLE=$FIXTURES/pidfile
FIX=$FIXTURES/daemon
cd "$TMP" || fail "cannot cd to $TMP"

# run ARGS...: lib.sh's, against our gearmand, without a console.
run() {
    run_cmd "$GDLUA" --server "127.0.0.1:$PORT" --console_port 0 "$@"
}

# expect_refused DESC PIDFILE MESSAGE [ARGS...]: gdlua --pidfile PIDFILE
# exits 2 with "gdlua: --pidfile PIDFILE: MESSAGE" alone on stderr and
# logs nothing.
expect_refused() {
    local desc=$1 file=$2 msg=$3
    shift 3
    rm -f "$TMP/refused.log"
    run --pidfile "$file" --logfile "$TMP/refused.log" "$@" "$IDLE"
    assert_eq "$desc: exit status" 2 "$RUN_RC"
    assert_eq "$desc: message" "gdlua: --pidfile $file: $msg" "$RUN_ERR"
    [[ -s $TMP/refused.log ]] && fail "$desc: the refused start logged: $(cat "$TMP/refused.log")"
    return 0
}

# fds_on PID FILE: how many of PID's descriptors are open on FILE.
fds_on() {
    local fd n=0
    for fd in /proc/"$1"/fd/*; do
        [[ $(readlink "$fd" 2>/dev/null) == "$2" ]] && n=$((n + 1))
    done
    echo "$n"
}

pidfile_is() {
    [[ $(cat "$1" 2>/dev/null) == "$2" ]]
}

start_gearmand

# ---- never written through ------------------------------------------------------
echo precious >victim
ln -s victim link.pid
expect_refused "a symlink" link.pid "is a symbolic link, not a regular file; refusing to use it"
expect_refused "a symlink, --daemonize" link.pid "is a symbolic link, not a regular file; refusing to use it" \
    --daemonize
ln -s missing dangling.pid
expect_refused "a dangling symlink" dangling.pid "is a symbolic link, not a regular file; refusing to use it"
[[ -e missing ]] && fail "the dangling symlink's target was made"
ln victim hard.pid
expect_refused "a hard link" hard.pid "has 2 hard links; refusing to write a file linked elsewhere"
assert_eq "the links' target" precious "$(cat victim)"
[[ -L link.pid ]] || fail "the symlink was removed"
mkfifo fifo.pid
expect_refused "a fifo" fifo.pid "is a fifo, not a regular file; refusing to use it"
mkdir dir.pid
expect_refused "a directory" dir.pid "is a directory, not a regular file; refusing to use it"
expect_refused "a device" /dev/null "is a device, not a regular file; refusing to use it"
expect_refused "the log file" same.log "is the same file as --logfile same.log" --logfile same.log
echo 'return { interval = 2 }' >conf.lua
expect_refused "the config file" conf.lua "is the same file as --config conf.lua" --config conf.lua
assert_eq "the config file" "return { interval = 2 }" "$(cat conf.lua)"
# A read lock (no gdlua takes one) is named as such.
echo 1 >read.pid
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.lockf(f, fcntl.LOCK_SH)
print("locked", flush=True)
time.sleep(60)' read.pid >"$TMP/locker.out" &
locker=$!
EXTRA_PIDS+=("$locker")
wait_for "the read lock" 10 grep -q locked "$TMP/locker.out"
expect_refused "a read lock" read.pid "process $locker holds a read lock on it (not a gdlua: gdlua holds a write lock)"
kill "$locker"
wait "$locker" 2>/dev/null
start_gdlua --pidfile read.pid "$IDLE"
wait_for "its pid in the file once the read lock is gone" 10 pidfile_is read.pid "$GDLUA_PID"
assert_eq "a pidfile's mode" 600 "$(stat -c %a read.pid)"
kill_wait "$GDLUA_PID" 10
GDLUA_PID=
run --pidfile nodir/x.pid "$IDLE"
assert_eq "a missing directory: exit status" 2 "$RUN_RC"
assert_eq "a missing directory: message" \
    "gdlua: --pidfile nodir/x.pid: cannot open it: No such file or directory" "$RUN_ERR"

# ---- a file nobody holds is stale, whatever pid it names --------------------------
for holder in 1 $$; do
    echo "$holder" >stale.pid
    start_gdlua --pidfile stale.pid "$IDLE"
    wait_for "its own pid in the file naming live process $holder" 10 pidfile_is stale.pid "$GDLUA_PID"
    kill_wait "$GDLUA_PID" 10
    GDLUA_PID=
    wait_for "the pidfile to be removed" 5 test ! -e stale.pid
done

# ---- the children hold none of it; SIGKILL, then a start at once -------------------
start_gdlua --pidfile kill.pid "$FIX"
wait_for "2 workers for Test::Who::pid" 10 has_workers Test::Who::pid 2
wait_for "the master's pid in the pidfile" 10 pidfile_is kill.pid "$GDLUA_PID"
assert_eq "the master's descriptors on the pidfile" 1 "$(fds_on "$GDLUA_PID" "$TMP/kill.pid")"
kids="$(children_of "$GDLUA_PID") $(loaders_of "$GDLUA_PID")"
assert_eq "children and loader" 3 "$(wc -w <<<"$kids")"
for c in $kids; do
    assert_eq "child $c's descriptors on the pidfile" 0 "$(fds_on "$c" "$TMP/kill.pid")"
done
record_children
old=$GDLUA_PID
kill -KILL "$old"
wait "$old" 2>/dev/null
GDLUA_PID=
assert_eq "the pidfile after SIGKILL" "$old" "$(cat kill.pid)"
start_gdlua --pidfile kill.pid "$FIX"
wait_for "the new master's pid in the pidfile" 10 pidfile_is kill.pid "$GDLUA_PID"
kill_wait "$GDLUA_PID" 10
GDLUA_PID=

# ---- at exit, only the file locked is removed ---------------------------------------
start_gdlua --pidfile own.pid "$IDLE"
wait_for "the master's pid in the pidfile" 10 pidfile_is own.pid "$GDLUA_PID"
# Another file in its place, naming the master too: the lock, not the
# pid, tells which file is the master's.
echo "$GDLUA_PID" >other.pid
mv other.pid own.pid
master=$GDLUA_PID
kill_wait "$GDLUA_PID" 10
GDLUA_PID=
assert_eq "the file put in its place" "$master" "$(cat own.pid 2>/dev/null)"

if [[ $(id -u) != 0 ]]; then
    echo "$TEST_NAME: not root: other users' files and --user not tested" >&2
    pass
fi

# ---- as root: another user's file, an unwritable directory, --user ------------------
echo 4711 >theirs.pid
chown nobody theirs.pid
expect_refused "nobody's file" theirs.pid "belongs to uid 65534, not to gdlua's uid 0; refusing to write it"
assert_eq "nobody's file" 4711 "$(cat theirs.pid)"
# nobody writes the sanitizer's reports (log_path), and runs gdlua and
# reads the fixture from copies, as the checkout may be private to root.
chmod 1777 "$TMP"
NOBODY_IDLE=$(shared_copy "$IDLE")
NOBODY_GDLUA=$(shared_copy "$GDLUA")
mkdir rootdir
run_cmd setpriv --reuid=nobody --regid=nogroup --clear-groups "$NOBODY_GDLUA" --server "127.0.0.1:$PORT" \
    --console_port 0 --pidfile rootdir/x.pid "$NOBODY_IDLE"
assert_eq "an unwritable directory: exit status" 2 "$RUN_RC"
assert_eq "an unwritable directory: message" "gdlua: --pidfile rootdir/x.pid: cannot open it: Permission denied" "$RUN_ERR"
# Made as root before the switch, root's; nobody cannot remove it from
# root's directory at exit: it is emptied, and the next start takes it.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    start_gdlua --user nobody --group nogroup --pidfile rootdir/n.pid "$NOBODY_IDLE"
wait_for "the pidfile of the master run as nobody" 10 pidfile_is rootdir/n.pid "$GDLUA_PID"
assert_eq "the pidfile's owner and mode" "root root 600" "$(stat -c '%U %G %a' rootdir/n.pid)"
# Readable by root alone, so no one else can read-lock it against a start.
setpriv --reuid=nobody --regid=nogroup --clear-groups cat rootdir/n.pid >/dev/null 2>&1 &&
    fail "nobody can read the pidfile"
kill_wait "$GDLUA_PID" 10
GDLUA_PID=
log_has "--pidfile rootdir/n.pid: cannot remove it: Permission denied; left empty and unlocked (stale)" ||
    fail "no warning for the pidfile left behind"
assert_eq "the pidfile left behind" "" "$(cat rootdir/n.pid)"
start_gdlua --pidfile rootdir/n.pid "$IDLE"
wait_for "the next start's pid in the pidfile left behind" 10 pidfile_is rootdir/n.pid "$GDLUA_PID"

pass
