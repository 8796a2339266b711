#!/bin/bash
# Allocations that fail: with fixtures/nomem/failshim.c preloaded, chosen
# calls fail as they do when memory runs out, and gdlua handles it.
#   - strdup of an argument while the process title is set up: gdlua
#     keeps its arguments (and its title) instead of going on with NULL;
#   - gearman_worker_add_server in a child: the error names the server
#     and the child exits, instead of serving with no server.
#
# Usage: test_nomem.sh PATH/TO/gdlua PATH/TO/failshim.so
source "$(dirname "$0")/lib.sh"

[[ -n ${2:-} && -f $2 ]] || fail "usage: $0 PATH/TO/gdlua PATH/TO/failshim.so (build the gdltest_failshim target)"
SHIM=$(readlink -f "$2")
DIR=$FIXTURES/nomem
# Under ASan its runtime must come first; the shim is preloaded before it.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# ---- strdup of an argument fails --------------------------------------------
out=$(GDLTEST_FAIL_STRDUP=$DIR LD_PRELOAD=$SHIM timeout 20 "$GDLUA" --check "$DIR" 2>"$TMP/check.err")
rc=$?
assert_eq "--check with a failing strdup of its argument: exit status ($(head -c 1000 "$TMP/check.err"))" 0 "$rc"
assert_eq "--check with a failing strdup of its argument: the jobs" \
    'Nomem::Echo::echo min=1 max=1 functions=Nomem::Echo::echo title="gdlua: worker Nomem::Echo::echo"' "$out"

# ---- a child cannot add its job server ----------------------------------------
start_gearmand
GDLTEST_FAIL_ADD_SERVER=1 LD_PRELOAD=$SHIM start_gdlua "$DIR"
wait_for "the child's error" 20 log_has "Nomem::Echo::echo: cannot add job server 127.0.0.1:$PORT: GEARMAN_MEMORY_ALLOCATION_FAILURE"
wait_for "the master to see the child exit" 20 log_has_re "process [0-9]+ Nomem::Echo::echo exited with status 1"

pass
