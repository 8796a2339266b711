/*
 * gdl_watchdog.c: the master's watchdog. Every WATCHDOG_MS (more often
 * while a pool with max_memory has processes) it ends jobs past their
 * pool's timeout (the process is asked to fail the job and stop, and
 * killed after TIMEOUT_GRACE_MS), kills processes whose job passed
 * max_memory, SIGKILLs processes still there past their grace (a job
 * that timed out, or --stop_timeout after a stop), and asks for a new
 * plan when a process timed out or asks to be recycled.
 *
 * It reads the slots (gdl_slot.c) and marks what it did in the process
 * table gdl_procs.c owns (stopping, timed_out, recycled, over_memory,
 * kill_at_ms): gdl_procs.c accounts for the exits that follow. It may
 * not start or reap processes, nor decide how many a pool has.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>

#include <event2/event.h>

#include "gdlua.h"

/* Jobs are checked against their pool's timeout this often; a process
 * whose job timed out gets this long to fail it before SIGKILL. While a
 * pool with max_memory has processes, the busy ones' RSS is read every
 * MEMORY_WATCH_MS, 20 ms more for each MEMORY_WATCH_EACH of them (a read
 * costs about 6 us: the reads take at most about 1 % of a core), and
 * every WATCHDOG_MS at the least. */
#define WATCHDOG_MS       100
#define TIMEOUT_GRACE_MS  1000
#define MEMORY_WATCH_MS   20
#define MEMORY_WATCH_EACH 32

static struct event *watchdog_timer;
static void (*rescale)(void);

static int pool_timeout_ms(int pool)
{
    int t = gdl_pools[pool].timeout_ms;

    return t >= 0 ? t : gdl_config.timeout_ms;
}

static int pool_max_memory(int pool)
{
    int m = gdl_pools[pool].max_memory;

    return m >= 0 ? m : gdl_config.max_memory;
}

/* Process i's job has run past its pool's timeout. The job is marked in
 * the attempts table, so that if gearmand hands it to another process
 * that one fails it unrun; the process is asked to fail it (SIGXCPU: its
 * Lua code is interrupted, gdl_child.c) and to stop (SIGTERM), and gets
 * SIGKILL after TIMEOUT_GRACE_MS if it is stuck in C. A replacement
 * starts at once: the process no longer counts. */
static void time_out(int i, const char *handle, int64_t busy_ms, int64_t now)
{
    gdl_proc_t *pr = &gdl_procs[i];
    double timeout_s = pool_timeout_ms(pr->pool) / 1000.0;
    char reason[64];

    snprintf(reason, sizeof(reason), "job timed out after %g s", timeout_s);
    gdl_attempts_ended(handle, GDL_JOB_TIMEOUT, reason);
    gdl_warn("stop %d %s: job %s timed out after %lld ms (timeout %g s)", (int)pr->pid, gdl_pools[pr->pool].name,
             handle, (long long)busy_ms, timeout_s);
    pr->stopping = true;
    pr->timed_out = true;
    pr->kill_at_ms = now + TIMEOUT_GRACE_MS;
    kill(pr->pid, SIGXCPU);
    kill(pr->pid, SIGTERM);
}

/* Process i's job has taken it past its pool's max_memory. It is killed
 * at once: memory is the host's to lose, and neither compiled Lua loops
 * nor C code would reach a hook that failed the job. The job is marked in
 * the attempts table, so the process gearmand hands it to next fails it
 * unrun, with the figures, to its client. */
static void memory_out(int i, long rss, int max_memory)
{
    gdl_proc_t *pr = &gdl_procs[i];
    char handle[64], reason[96]; /* the attempts table keeps 64 bytes of it */

    gdl_slot_read(i, NULL, handle, sizeof(handle));
    snprintf(reason, sizeof(reason), "job used %ld MiB, past max_memory %d MiB", rss, max_memory);
    gdl_attempts_ended(handle, GDL_JOB_FAILED, reason);
    gdl_warn("stop %d %s: job %s: RSS %ld MiB is past max_memory %d MiB; killing it", (int)pr->pid,
             gdl_pools[pr->pool].name, handle, rss, max_memory);
    pr->stopping = true;
    pr->recycled = true;
    pr->over_memory = true;
    pr->kill_at_ms = 0;
    kill(pr->pid, SIGKILL);
}

/* A concurrent process fails a job past its timeout itself (a timer of
 * its loop cancels the job's task, gdl_child.c): one still held
 * TIMEOUT_GRACE_MS later means the loop is not running (code stuck in a
 * job), so the process is treated as one whose job timed out. */
static bool held_timed_out(int i, int timeout_ms, int64_t now)
{
    char handle[64], unique[64];
    int64_t start_ms;
    int r;

    for (int k = 0; (r = gdl_slot_held(i, k, handle, sizeof(handle), unique, sizeof(unique), &start_ms)) >= 0; k++)
        if (r > 0 && now - start_ms >= timeout_ms + TIMEOUT_GRACE_MS) {
            time_out(i, handle, now - start_ms, now);
            return true;
        }
    return false;
}

/* Ends jobs past their timeout or their max_memory, and processes past
 * their grace. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = gdl_now_ms(), since;
    bool again = false;   /* a process timed out or asks to be recycled */
    bool bounded = false; /* a process of a pool with max_memory lives: a job may start in it any moment */
    int state, watched = 0, period_ms;
    char handle[64];
    struct timeval tv;

    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        gdl_proc_t *pr = &gdl_procs[i];
        int t, m;
        long rss;

        if (pr->pid == 0)
            continue;
        m = pool_max_memory(pr->pool);
        bounded |= m > 0;
        if (pr->kill_at_ms && now >= pr->kill_at_ms) {
            gdl_warn("process %d %s: still running %s; sending SIGKILL", (int)pr->pid, gdl_pools[pr->pool].name,
                     pr->timed_out ? "1000 ms after its job timed out" : "--stop_timeout after it was asked to stop");
            kill(pr->pid, SIGKILL);
            pr->kill_at_ms = 0;
            continue;
        }
        state = gdl_slot_state(i, &since);
        again |= state == GDL_SLOT_RECYCLE && !pr->stopping;
        if (state != GDL_SLOT_BUSY)
            continue;
        if (m > 0 && !pr->over_memory) {
            watched++;
            if ((rss = gdl_rss_mib(pr->pid)) > m) {
                memory_out(i, rss, m);
                again = true;
                continue;
            }
        }
        t = pool_timeout_ms(pr->pool);
        if (pr->stopping || t <= 0)
            continue;
        if (gdl_slot_capacity(i) > 1) {
            again |= held_timed_out(i, t, now);
            continue;
        }
        if (now - since < t)
            continue;
        gdl_slot_read(i, NULL, handle, sizeof(handle));
        time_out(i, handle, now - since, now);
        again = true;
    }
    period_ms = bounded ? MEMORY_WATCH_MS * (1 + watched / MEMORY_WATCH_EACH) : WATCHDOG_MS;
    tv = (struct timeval){0, (period_ms < WATCHDOG_MS ? period_ms : WATCHDOG_MS) * 1000};
    evtimer_add(watchdog_timer, &tv);
    if (again)
        rescale();
}

int gdl_watchdog_init(struct event_base *base, void (*on_rescale)(void))
{
    struct timeval tv = {0, WATCHDOG_MS * 1000};

    rescale = on_rescale;
    watchdog_timer = evtimer_new(base, on_watchdog, NULL);
    if (watchdog_timer == NULL || evtimer_add(watchdog_timer, &tv) < 0)
        return -1;
    return 0;
}

void gdl_watchdog_free(void)
{
    if (watchdog_timer)
        event_free(watchdog_timer);
    watchdog_timer = NULL;
}
