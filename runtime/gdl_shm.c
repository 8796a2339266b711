/*
 * gdl_shm.c: the shared-memory slots.
 *
 * An anonymous MAP_SHARED region mapped before the first fork holds one
 * slot per process. A child writes only its own slot; the master reads
 * them all (status, idle times, last errors) without a syscall per job.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "gdlua.h"

gdl_slot_t *gdl_slots;

int gdl_shm_init(void)
{
    void *p = mmap(NULL, sizeof(gdl_slot_t) * GDL_PROCS_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        gdl_error("mmap of %d process slots failed: %s", GDL_PROCS_MAX, strerror(errno));
        return -1;
    }
    gdl_slots = p;
    return 0;
}

void gdl_slot_reset(gdl_slot_t *s, int pid, int job)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->job = job;
    s->state = pid ? GDL_SLOT_STARTING : GDL_SLOT_FREE;
}
