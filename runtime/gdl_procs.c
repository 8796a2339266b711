/*
 * gdl_procs.c: the master's supervision of its processes. It owns the
 * process table (indexed like the slots: process i writes slot i,
 * gdl_slot.c) and what the master keeps per pool beside its definition:
 * starting processes through the loader it is given, stopping them,
 * accounting for their exits (counters folded into the pool, restarts
 * by reason, the jobs a death interrupted, gdl_attempts.c), the death
 * window and the crash-loop back-off, and recycling (processes past
 * max_jobs or max_memory, or running code a reload replaced, stopped
 * once a replacement is ready). gdl_watchdog.c shares the table: it
 * marks the processes it ends (a job past its timeout or max_memory),
 * and this unit accounts for their exits.
 *
 * It may not touch the loaders' lives nor the pools' definitions
 * (gdl_generations.c tells it the serving generation and how the pools
 * moved, gdl_procs_install), nor decide how many processes a pool has
 * (gdl_policy.c, through gdl_master.c's scale(), which calls it): when
 * something it noticed needs a new plan it calls the rescale function
 * its owner gave gdl_procs_init.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "gdlua.h"

/* What the master keeps per pool, beside its definition (gdl_pool_t). */
typedef struct {
    int processes;           /* alive now, stopping ones included */
    int streak;              /* crash-loop deaths in a row (gdl_policy_crash_loop) */
    int64_t window_ms;       /* when the current death window began */
    uint64_t window_deaths;  /* unexpected deaths since */
    uint64_t window_base;    /* jobs served when it began */
    struct event *respawn;   /* timer for a replacement held back by back-off */
    gdl_counters_t gone;     /* counters of its processes that have exited */
    int64_t queued_since_ms; /* what the policy remembers (gdl_pool_view_t's) */
    int64_t spare_since_ms;
    int spare_min;
    uint64_t restarts[GDL_RESTART_REASONS];
} pool_state_t;

gdl_proc_t gdl_procs[GDL_PROCS_MAX];
static int nprocs;
static pool_state_t *pools; /* npools: gdl_pools' serving ones, then the draining ones */
static int npools;
static int serving; /* the generation new processes run */
static struct event_base *base;
static void (*rescale)(void);

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
    rescale();
}

/* Starts up to n processes of pool from ld's generation; returns how
 * many started, or -1 when the loader is lost (err says why; some may
 * have started). */
int gdl_procs_spawn(gdl_loader_t *ld, int pool, int n, const char *why, char *err, size_t errlen)
{
    gdl_pool_t *p = &gdl_pools[pool];
    int slots[GDL_PROCS_MAX], got = 0, rc;
    pid_t pids[GDL_PROCS_MAX];

    if (ld->fd < 0) {
        snprintf(err, errlen, "no loader");
        return -1;
    }
    for (int i = 0; i < GDL_PROCS_MAX && got < n; i++)
        if (gdl_procs[i].pid == 0)
            slots[got++] = i;
    if (got == 0) {
        static int64_t said_ms;
        static int unsaid;
        int64_t now = gdl_now_ms();

        /* scale() asks again on every event: say it once a minute */
        if (said_ms == 0 || now - said_ms >= 60000) {
            gdl_error("cannot start a process for %s: all %d process slots in use (%d more such refusals)", p->name,
                      GDL_PROCS_MAX, unsaid);
            said_ms = now;
            unsaid = 0;
        } else {
            unsaid++;
        }
        return 0;
    }
    /* The slots are ready before fork: once a child runs, its slot is
     * the child's to write. The loader forks them (gdl_loader.c). */
    for (int k = 0; k < got; k++) {
        int granted = gdl_slot_prepare(slots[k], p->concurrency);

        if (granted < p->concurrency)
            gdl_warn("%s: the table of jobs in hand (%d at most, all processes together) has room for %d more: a "
                     "process starts with concurrency %d, not %d",
                     p->name, GDL_HELD_MAX, granted, granted, p->concurrency);
    }
    rc = gdl_loader_spawn(ld, pool, slots, got, pids, err, errlen);
    n = 0;
    for (int k = 0; k < got; k++) {
        int i = slots[k];

        if (pids[k] < 0) {
            gdl_slot_release(i);
            continue;
        }
        gdl_procs[i] = (gdl_proc_t){.pid = pids[k], .pool = pool, .gen = ld->gen, .started_ms = gdl_now_ms()};
        nprocs++;
        pools[pool].processes++;
        n++;
        gdl_info("start %d %s: %s", (int)pids[k], p->name, why);
    }
    if (n < got)
        gdl_error("cannot start %d process(es) for %s: %s", got - n, p->name, err);
    return rc == -2 ? -1 : n;
}

/* Asks process i to stop after its current job; the watchdog sends
 * SIGKILL if it is still there after --stop_timeout. */
void gdl_procs_stop(int i, const char *why)
{
    gdl_procs[i].stopping = true;
    if (gdl_config.stop_timeout_ms > 0)
        gdl_procs[i].kill_at_ms = gdl_now_ms() + gdl_config.stop_timeout_ms;
    gdl_info("stop %d %s: %s", (int)gdl_procs[i].pid, gdl_pools[gdl_procs[i].pool].name, why);
    kill(gdl_procs[i].pid, SIGTERM);
}

/* Stops these processes after their current job; -1 (and none stopped)
 * when one of the pids is not ours. */
int gdl_procs_stop_pids(const int *pids, int n, const char *why)
{
    int idx[GDL_PROCS_MAX];

    if (n > GDL_PROCS_MAX)
        return -1;
    for (int k = 0; k < n; k++) {
        int i;
        for (i = 0; i < GDL_PROCS_MAX && (pids[k] <= 0 || gdl_procs[i].pid != pids[k]); i++)
            ;
        if (i == GDL_PROCS_MAX)
            return -1;
        idx[k] = i;
    }
    for (int k = 0; k < n; k++)
        if (!gdl_procs[idx[k]].stopping)
            gdl_procs_stop(idx[k], why);
    return 0;
}

void gdl_procs_stop_pool(int pool, const char *why)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (gdl_procs[i].pid && gdl_procs[i].pool == pool && !gdl_procs[i].stopping)
            gdl_procs_stop(i, why);
}

/* Sends sig to every process, which is then stopping (the shutdown). */
void gdl_procs_stop_all(int sig)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (gdl_procs[i].pid) {
            gdl_procs[i].stopping = true;
            kill(gdl_procs[i].pid, sig);
        }
}

/* Passes sig on to every process (SIGUSR1: reopen the log file). */
void gdl_procs_signal(int sig)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (gdl_procs[i].pid)
            kill(gdl_procs[i].pid, sig);
}

/* Tells each serving process to connect to the job servers afresh
 * (SIGUSR2, gdl_child.c); one still starting connects by itself. How
 * many were told. */
int gdl_procs_reconnect(void)
{
    int n = 0;

    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        int st = gdl_procs[i].pid && !gdl_procs[i].stopping ? gdl_slot_state(i, NULL) : GDL_SLOT_FREE;

        if (st == GDL_SLOT_IDLE || st == GDL_SLOT_BUSY) {
            kill(gdl_procs[i].pid, SIGUSR2);
            n++;
        }
    }
    return n;
}

int gdl_procs_count(void)
{
    return nprocs;
}

int gdl_procs_of_pool(int pool)
{
    return pools[pool].processes;
}

/* A pool as the policy sees it, but for the job servers' figures: its
 * live processes go to buf. */
gdl_pool_view_t gdl_procs_view(int pool, gdl_proc_view_t *buf)
{
    const gdl_pool_t *p = &gdl_pools[pool];
    int max_idle = p->max_idle_time >= 0 ? p->max_idle_time : gdl_config.max_idle_time;
    gdl_pool_view_t v = {.min = p->min_processes,
                         .max = p->max_processes,
                         .concurrency = p->concurrency,
                         .max_idle_ms = max_idle * 1000LL};

    v.procs = buf;
    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        gdl_proc_view_t *pv = &buf[v.nprocs];

        if (gdl_procs[i].pid == 0 || gdl_procs[i].pool != pool)
            continue;
        if (gdl_procs[i].stopping) {
            v.retiring++;
            continue;
        }
        pv->slot = i;
        pv->state = gdl_slot_state(i, &pv->since_ms);
        pv->capacity = gdl_slot_capacity(i);
        pv->jobs = pv->capacity > 1 ? gdl_slot_jobs(i) : pv->state == GDL_SLOT_BUSY;
        /* One asking to be recycled, or running code a reload replaced,
         * no longer counts: a replacement starts, and recycle stops it
         * once that one is ready. */
        if (pv->state != GDL_SLOT_RECYCLE && gdl_procs[i].gen == serving)
            v.nprocs++;
        else
            v.retiring++;
    }
    v.queued_since_ms = pools[pool].queued_since_ms;
    v.spare_since_ms = pools[pool].spare_since_ms;
    v.spare_min = pools[pool].spare_min;
    v.held = evtimer_pending(pools[pool].respawn, NULL);
    return v;
}

void gdl_procs_remember(int pool, const gdl_plan_t *plan)
{
    pools[pool].queued_since_ms = plan->queued_since_ms;
    pools[pool].spare_since_ms = plan->spare_since_ms;
    pools[pool].spare_min = plan->spare_min;
}

/* Stops the processes of pool k that asked to be recycled (max_jobs,
 * max_memory, out of memory) or run code a reload replaced, once a
 * current process of the pool is ready to serve, or at once when the
 * pool may be empty (min_processes 0). */
void gdl_procs_recycle(int k)
{
    int ready = 0;

    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        int st = gdl_procs[i].pid && gdl_procs[i].pool == k && !gdl_procs[i].stopping ? gdl_slot_state(i, NULL)
                                                                                      : GDL_SLOT_FREE;
        ready += (st == GDL_SLOT_IDLE || st == GDL_SLOT_BUSY) && gdl_procs[i].gen == serving;
    }
    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        bool outdated = gdl_procs[i].gen != serving;

        if (gdl_procs[i].pid && gdl_procs[i].pool == k && !gdl_procs[i].stopping &&
            (outdated || gdl_slot_state(i, NULL) == GDL_SLOT_RECYCLE) &&
            (ready > 0 || gdl_pools[k].min_processes == 0)) {
            gdl_procs[i].recycled = !outdated;
            gdl_procs_stop(i, outdated ? "reloaded: replaced by the new code" : "recycled");
        }
    }
}

/* A pool's limits, figures and counters. Its processes go to
 * out[0..max): those serving first, then those asked to stop. Returns
 * how many serve (st->processes). */
int gdl_procs_status(int pool, gdl_pool_status_t *st, gdl_proc_info_t *out, int max)
{
    gdl_counters_t c;
    int n = 0;

    memset(st, 0, sizeof(*st));
    st->min = gdl_pools[pool].min_processes;
    st->max = gdl_pools[pool].max_processes;
    st->c = pools[pool].gone;
    memcpy(st->restarts, pools[pool].restarts, sizeof(st->restarts));
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < GDL_PROCS_MAX; i++) {
            gdl_proc_info_t info = {.pid = gdl_procs[i].pid, .stopping = gdl_procs[i].stopping};

            if (gdl_procs[i].pid == 0 || gdl_procs[i].pool != pool || gdl_procs[i].stopping != (pass == 1))
                continue;
            gdl_slot_read(i, &c, info.handle, sizeof(info.handle));
            gdl_counters_add(&st->c, &c);
            info.state = gdl_slot_state(i, &info.since_ms);
            info.jobs = gdl_slot_jobs(i);
            info.capacity = gdl_slot_capacity(i);
            if (n < max)
                out[n] = info;
            n++;
            if (info.stopping) {
                st->stopping++;
            } else {
                st->processes++;
                st->busy += info.state == GDL_SLOT_BUSY;
                st->capacity += info.capacity;
            }
            st->jobs += info.jobs;
        }
    return st->processes;
}

/* ---- exits ---- */

/* A process we did not stop has died. In a crash loop (the policy
 * decides) the next start waits: the first is replaced at once, then
 * 100 ms doubling to 10 s (gdl_backoff_ms), so a module that crashes
 * every process cannot fork-bomb the host. Any other death is replaced
 * at once. */
static void crashed(int pool, int status, int64_t lived, uint64_t served)
{
    pool_state_t *ps = &pools[pool];
    int64_t now = gdl_now_ms();
    gdl_pool_status_t st;
    uint64_t total;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    gdl_death_t d = {.lived_ms = lived, .served = served};
    int delay;

    gdl_procs_status(pool, &st, NULL, 0); /* jobs its processes served, the exited ones' included */
    total = st.c.done + st.c.failed + st.c.timeouts + st.c.poisoned;
    d.external = sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
    if (now - ps->window_ms >= GDL_DEATH_WINDOW_MS) {
        ps->window_ms = now;
        ps->window_deaths = 0;
        ps->window_base = total - served; /* this process's jobs count in the new window */
    }
    d.window_deaths = ++ps->window_deaths;
    d.window_served = total - ps->window_base;
    if (!gdl_policy_crash_loop(&d)) {
        ps->streak = 0;
        return;
    }
    delay = gdl_backoff_ms(ps->streak++, 100, 10000);
    if (delay > 0 && !evtimer_pending(ps->respawn, NULL)) {
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        gdl_warn("%s: %d process(es) died young in a row; next start in %d ms", gdl_pools[pool].name, ps->streak,
                 delay);
        evtimer_add(ps->respawn, &tv);
    }
}

/* Why process p ended, as a restart (GDL_RESTART_*), or -1 when the
 * master chose to stop it (idle, above max, console, shutdown). */
static int restart_reason(const gdl_proc_t *p, int status)
{
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

    if (p->timed_out)
        return GDL_RESTART_TIMEOUT;
    if (p->recycled)
        return GDL_RESTART_RECYCLE;
    if (p->stopping)
        return -1;
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
        return GDL_RESTART_KILLED;
    return GDL_RESTART_CRASH;
}

/* Its slot holds the job process i took until the job's answer is sent:
 * it died running the job, or before the answer went out. gearmand hands
 * the job to the next process: count how often it has killed one
 * (gdl_attempts.c). */
static void job_died(const char *name, const char *handle, const char *unique, int state, int status)
{
    char reason[64], cause[32];
    uint32_t deaths;

    if (WIFSIGNALED(status))
        snprintf(cause, sizeof(cause), "signal %d", WTERMSIG(status));
    else
        snprintf(cause, sizeof(cause), "exit status %d", WEXITSTATUS(status));
    if (state == GDL_SLOT_BUSY)
        snprintf(reason, sizeof(reason), "%s", cause);
    else
        snprintf(reason, sizeof(reason), "answer not sent, %s", cause);
    deaths = gdl_attempts_died(handle, unique, reason);
    gdl_warn("%s: job %s has killed %u process(es) (%s)%s", name, handle, deaths, reason,
             gdl_config.max_attempts > 0 && deaths >= (uint32_t)gdl_config.max_attempts
                 ? "; the next process fails it unrun"
                 : "");
}

/* A child has exited (reaped by gdl_master.c): false when it is none of
 * ours (an orphan a job left: the master is a subreaper). */
bool gdl_procs_exited(pid_t pid, int status)
{
    gdl_counters_t c;
    char why[128], handle[64], unique[64];
    int64_t start_ms;
    gdl_proc_t *p = NULL;
    const char *name;
    int64_t lived;
    int i, state, pool, restart;
    bool unasked;

    for (i = 0; i < GDL_PROCS_MAX; i++)
        if (gdl_procs[i].pid == pid) {
            p = &gdl_procs[i];
            break;
        }
    if (p == NULL)
        return false;
    name = gdl_pools[p->pool].name;
    lived = gdl_now_ms() - p->started_ms;
    state = gdl_slot_state(i, NULL);
    gdl_format_exit(status, why, sizeof(why));
    /* It asked to be replaced and has taken its last job (gdl_child.c).
     * One that exits before its replacement is ready was never stopped by
     * gdl_procs_recycle: its end is logged as recycled all the same. */
    if (state == GDL_SLOT_RECYCLE && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (!p->stopping)
            gdl_info("stop %d %s: recycled (it exited after its last job, before its replacement was ready)", (int)pid,
                     name);
        p->stopping = p->recycled = true;
    }
    if (p->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        gdl_debug("process %d %s %s", (int)pid, name, why);
    } else {
        gdl_warn("process %d %s %s after %lld ms (was %s)", (int)pid, name, why, (long long)lived,
                 gdl_slot_state_name(state));
    }
    gdl_slot_read(i, &c, handle, sizeof(handle));
    if (handle[0]) {
        gdl_slot_unique(i, unique, sizeof(unique));
        job_died(name, handle, unique, state, status);
    }
    /* A concurrent process: every job it held counts the death. */
    for (int k = 0, r; (r = gdl_slot_held(i, k, handle, sizeof(handle), unique, sizeof(unique), &start_ms)) >= 0; k++)
        if (r > 0)
            job_died(name, handle, unique, GDL_SLOT_BUSY, status);
    gdl_counters_add(&pools[p->pool].gone, &c);
    if ((restart = restart_reason(p, status)) >= 0)
        pools[p->pool].restarts[restart]++;
    pools[p->pool].processes--;
    nprocs--;
    gdl_slot_release(i);
    pool = p->pool;
    unasked = !p->stopping;
    memset(p, 0, sizeof(*p));
    if (unasked)
        crashed(pool, status, lived, c.done + c.failed + c.timeouts + c.poisoned);
    return true;
}

/* ---- generations ---- */

/* A new generation serves: map[k] is where old pool k (of nold) goes
 * among the nall new ones, or -1 when it is gone with no process left.
 * A pool keeps its counters and state by name; one the new code lacks
 * keeps them while its processes drain. 0, or -1 (out of memory, nothing
 * changed). */
int gdl_procs_install(const int *map, int nold, int nall, int gen)
{
    pool_state_t *st = calloc(nall + 1, sizeof(pool_state_t));

    if (st == NULL)
        return -1;
    for (int k = 0; k < nold; k++) {
        if (map[k] < 0)
            event_free(pools[k].respawn);
        else
            st[map[k]] = pools[k];
    }
    for (int j = 0; j < nall; j++)
        if (st[j].respawn == NULL && (st[j].respawn = evtimer_new(base, on_respawn, NULL)) == NULL)
            abort(); /* out of memory in the master */
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (gdl_procs[i].pid)
            gdl_procs[i].pool = map[gdl_procs[i].pool];
    free(pools);
    pools = st;
    npools = nall;
    serving = gen;
    return 0;
}

/* ---- the unit's life ---- */

void gdl_procs_init(struct event_base *loop, void (*on_rescale)(void))
{
    base = loop;
    rescale = on_rescale;
}

void gdl_procs_free(void)
{
    for (int k = 0; k < npools; k++)
        event_free(pools[k].respawn);
    free(pools);
    pools = NULL;
    npools = 0;
}
