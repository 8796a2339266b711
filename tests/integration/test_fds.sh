#!/bin/bash
# The processes of one start are forked side by side by the loader, each
# while the loader holds the pipes of the others (gdl_loader.c): none may
# inherit another's, or a spare the loader drops would never see end of
# file. Six processes of one batch all hold the same pipes.
source "$(dirname "$0")/lib.sh" "$@"

F=Test::Fds::echo

# pipes_of PID: the pipe descriptors a process holds.
pipes_of() {
    local n=0 fd
    for fd in /proc/"$1"/fd/*; do
        [[ $(readlink "$fd" 2>/dev/null) == pipe:* ]] && n=$((n + 1))
    done
    echo "$n"
}

start_gearmand
start_gdlua "$FIXTURES/fds"
wait_for "6 workers for $F" 20 has_workers $F 6
counts=$(for pid in $(worker_pids_for $F); do pipes_of "$pid"; done | sort -u)
echo "pipes per process: $(echo $counts)"
assert_eq "the same pipes in every process of the batch" 1 "$(wc -l <<<"$counts")"
assert_eq "a job" hi "$(gm -f $F hi)"
pass
