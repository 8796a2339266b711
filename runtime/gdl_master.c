/*
 * gdl_master.c: the master process: starts (through a loader), reaps,
 * scales and stops children, reloads the code, and handles signals, all
 * from one libevent loop. It never runs a job nor loads a module.
 *
 * This file is the mechanism: the process table, spawn, stop, reap,
 * signals, the spawn-rate budget, the crash-loop back-off, the
 * generations of the code (each loaded and forked by its loader,
 * gdl_loader.c; a reload swaps them), and what the console may ask
 * (gdl_master_status, _set_limits, _stop_pids, _stop_pool, _reload). How many processes a pool should have is
 * gdl_policy.c's: scale() snapshots every pool (its processes' states from the slots, gdl_slot.c, and the queues
 * gdl_observer.c polled), asks the policy for a plan and carries it out. scale() runs after every poll, on each tick
 * and when a child exits; gdl_sentinel.c wakes it (through a poll) the moment work arrives for a pool that needs a
 * process. The process table is indexed like the slots: process i writes slot i.
 *
 * Signals: SIGTERM/SIGINT/SIGQUIT stop the children after their current
 * job and exit 0 once they are gone, escalating to SIGKILL after
 * --shutdown_timeout; a second one escalates at once. SIGUSR1 reopens
 * the log file (the master's and, passed on, each child's). SIGHUP
 * reloads the code (generations, below). The other signals an operator
 * might send (SIGUSR2, SIGALRM, ...) are logged and ignored: none kills
 * the master.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gdlua.h"

/* While processes start, scale() looks at the slots this often. */
#define SETTLE_MS 20

/* Polls asked for by an idle stop waiting for fresh figures: at most this often. */
#define IDLE_POLL_GAP_MS 50

/* On a wake, other servers' figures this old that still show jobs waiting
 * are asked for again: summed with the fresh ones they would count jobs
 * taken since. */
#define REFRESH_MS 50

/* Jobs are checked against their pool's timeout this often; a process
 * whose job timed out gets this long to fail it before SIGKILL. */
#define WATCHDOG_MS      100
#define TIMEOUT_GRACE_MS 1000

#define SHUTDOWN_HOOKS_MAX 8

typedef struct {
    pid_t pid;
    int pool;
    int gen; /* the generation of the code it runs (gdl_loader.c) */
    int64_t started_ms;
    bool stopping;      /* we asked it to stop: its exit is no crash */
    bool timed_out;     /* its job ran past the pool's timeout */
    bool recycled;      /* stopped for max_jobs, max_memory, out of memory */
    int64_t kill_at_ms; /* SIGKILL then, if still alive; 0: never */
} proc_t;

/* What the master keeps per pool, beside its definition (gdl_pool_t). */
typedef struct {
    int processes;           /* alive now, stopping ones included */
    int streak;              /* crash-loop deaths in a row (gdl_policy_crash_loop) */
    int64_t window_ms;       /* when the current death window began */
    uint64_t window_deaths;  /* unexpected deaths since */
    uint64_t window_base;    /* jobs served when it began */
    struct event *respawn;   /* timer for a replacement held back by back-off */
    gdl_counters_t gone;     /* counters of its processes that have exited */
    int64_t queued_since_ms; /* when its queue last turned non-empty; 0: empty */
    uint64_t restarts[GDL_RESTART_REASONS];
} pool_state_t;

pid_t gdl_master_pid;

static proc_t procs[GDL_PROCS_MAX];
static int nprocs;
static pool_state_t *pools;
static struct event_base *base;
static struct event *kill_timer, *tick_timer, *rescale_timer, *budget_timer, *watchdog_timer, *idle_poll_timer;
static int64_t idle_poll_ms; /* when scale() last asked for figures for an idle stop */
static bool shutting_down;
static double spawn_tokens;
static int64_t tokens_at_ms;
static void (*shutdown_hooks[SHUTDOWN_HOOKS_MAX])(void);
static int nshutdown_hooks;

/* The generations of the code: the loader of the one serving, and of
 * the one loading (a reload under way). gdl_pools[0..gdl_npools) are the
 * serving generation's pools; after them, up to npools_all, pools a
 * reload removed, kept while their processes drain. */
static gdl_loader_t loader = {.fd = -1}, next_loader = {.fd = -1};
static struct event *loader_event, *load_timer;
static int npools_all;
static bool loader_ended;       /* the loading one's socket has closed */
static int generation;          /* the serving one's */
static int last_gen;            /* the newest generation a loader was started for */
static int64_t loader_retry_ms; /* no new loader for a lost one before then */
static int loader_losses;       /* lost loaders not replaced since */
static void (*reload_hooks[SHUTDOWN_HOOKS_MAX])(bool ok, const char *msg);
static int nreload_hooks;

static void scale(bool fresh);
static void poll_all(void);
static void shutdown_begin(int sig);
static void reload_begin(const char *why);
static void describe_exit(int status, char *buf, size_t len);
static void on_respawn(evutil_socket_t fd, short what, void *arg);

/* Takes up to `want` starts from the per-second budget. */
static int take_spawn_budget(int want)
{
    int64_t now = gdl_now_ms();
    int got;

    spawn_tokens += (now - tokens_at_ms) * gdl_config.max_spawn_rate / 1000.0;
    if (spawn_tokens > gdl_config.max_spawn_rate)
        spawn_tokens = gdl_config.max_spawn_rate;
    tokens_at_ms = now;
    got = want < (int)spawn_tokens ? want : (int)spawn_tokens;
    spawn_tokens -= got;
    if (got < want && !evtimer_pending(budget_timer, NULL)) {
        long us = 1000000L / gdl_config.max_spawn_rate + 1000;
        struct timeval tv = {us / 1000000, us % 1000000};
        evtimer_add(budget_timer, &tv);
    }
    return got;
}

/* The serving generation's loader is gone or stuck: a new one loads the
 * modules again (a reload: the processes it forked serve on until the
 * new generation replaces them), 1 s doubling to 30 s apart while such
 * loads fail. */
static void loader_lost(const char *why, bool reaped)
{
    int64_t now = gdl_now_ms();

    if (loader.pid > 0 && !reaped)
        kill(loader.pid, SIGKILL);
    if (loader.fd >= 0) {
        gdl_error("loader %d (%d): %s; loading the modules again", loader.gen, (int)loader.pid, why);
        gdl_loader_stop(&loader);
    }
    if (next_loader.pid == 0 && now >= loader_retry_ms) {
        loader_retry_ms = now + gdl_backoff_ms(++loader_losses, 1000, 30000);
        reload_begin("the loader was lost");
    }
}

/* Starts up to n processes of pool; returns how many started. */
static int spawn(int pool, int n, const char *why)
{
    gdl_pool_t *p = &gdl_pools[pool];
    int slots[GDL_PROCS_MAX], got = 0, rc;
    pid_t pids[GDL_PROCS_MAX];
    char err[160];

    if (loader.fd < 0) {
        loader_lost("no loader", false);
        return 0;
    }
    for (int i = 0; i < GDL_PROCS_MAX && got < n; i++)
        if (procs[i].pid == 0)
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
    for (int k = 0; k < got; k++)
        gdl_slot_prepare(slots[k]);
    rc = gdl_loader_spawn(&loader, pool, slots, got, pids, err, sizeof(err));
    n = 0;
    for (int k = 0; k < got; k++) {
        int i = slots[k];

        if (pids[k] < 0) {
            gdl_slot_release(i);
            continue;
        }
        procs[i] = (proc_t){.pid = pids[k], .pool = pool, .gen = generation, .started_ms = gdl_now_ms()};
        nprocs++;
        pools[pool].processes++;
        n++;
        gdl_info("start %d %s: %s", (int)pids[k], p->name, why);
    }
    if (n < got)
        gdl_error("cannot start %d process(es) for %s: %s", got - n, p->name, err);
    if (rc == -2)
        loader_lost(err, false);
    return n;
}

/* Asks process i to stop after its current job; the watchdog sends
 * SIGKILL if it is still there after --stop_timeout. */
static void stop(int i, const char *why)
{
    procs[i].stopping = true;
    if (gdl_config.stop_timeout_ms > 0)
        procs[i].kill_at_ms = gdl_now_ms() + gdl_config.stop_timeout_ms;
    gdl_info("stop %d %s: %s", (int)procs[i].pid, gdl_pools[procs[i].pool].name, why);
    kill(procs[i].pid, SIGTERM);
}

/* The scene every pool's view shares: the clock and the oldest poll. */
static gdl_scene_t scene_now(bool fresh)
{
    gdl_scene_t sc = {.now_ms = gdl_now_ms(), .asked_ms = INT64_MAX, .fresh = fresh};
    struct timespec wall;

    clock_gettime(CLOCK_REALTIME, &wall); /* the ranks turn with it, on every host alike */
    sc.wall_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    sc.interval_ms = gdl_config.interval * 1000;
    for (int s = 0; s < gdl_config.nservers; s++)
        if (gdl_observed[s].valid && gdl_observed[s].asked_ms < sc.asked_ms)
            sc.asked_ms = gdl_observed[s].asked_ms;
    return sc;
}

/* A pool as the policy sees it, its live processes put in procs_buf. */
static gdl_pool_view_t pool_view(int pool, gdl_proc_view_t *procs_buf)
{
    const gdl_pool_t *p = &gdl_pools[pool];
    int max_idle = p->max_idle_time >= 0 ? p->max_idle_time : gdl_config.max_idle_time;
    gdl_pool_view_t v = {.min = p->min_processes, .max = p->max_processes, .max_idle_ms = max_idle * 1000LL};

    v.procs = procs_buf;
    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        gdl_proc_view_t *pv = &procs_buf[v.nprocs];

        if (procs[i].pid == 0 || procs[i].pool != pool || procs[i].stopping)
            continue;
        pv->slot = i;
        pv->state = gdl_slot_state(i, &pv->since_ms);
        /* One asking to be recycled, or running code a reload replaced,
         * no longer counts: a replacement starts, and recycle() stops it
         * once that one is ready. */
        if (pv->state != GDL_SLOT_RECYCLE && procs[i].gen == generation)
            v.nprocs++;
    }
    for (int s = 0; s < gdl_config.nservers; s++) {
        const gdl_observed_t *o = &gdl_observed[s];

        if (!o->valid)
            continue;
        v.queue = o->queue[pool] > INT32_MAX - v.queue ? INT32_MAX : v.queue + o->queue[pool];
        v.running = o->running[pool] > INT32_MAX - v.running ? INT32_MAX : v.running + o->running[pool];
        if (o->workers[pool] > v.workers)
            v.workers = o->workers[pool];
        if (o->queue[pool] > 0 && (v.queue_asked_ms == 0 || o->asked_ms < v.queue_asked_ms))
            v.queue_asked_ms = o->asked_ms;
        if (o->peers[pool] > v.peers) {
            v.peers = o->peers[pool];
            v.rank = o->rank[pool];
        }
    }
    v.queued_since_ms = pools[pool].queued_since_ms;
    v.held = evtimer_pending(pools[pool].respawn, NULL);
    return v;
}

/* Stops the processes of pool k that asked to be recycled (max_jobs,
 * max_memory, out of memory) or run code a reload replaced, once a
 * current process of the pool is ready to serve, or at once when the
 * pool may be empty (min_processes 0). */
static void recycle(int k)
{
    int ready = 0;

    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        int st = procs[i].pid && procs[i].pool == k && !procs[i].stopping ? gdl_slot_state(i, NULL) : GDL_SLOT_FREE;
        ready += (st == GDL_SLOT_IDLE || st == GDL_SLOT_BUSY) && procs[i].gen == generation;
    }
    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        bool outdated = procs[i].gen != generation;

        if (procs[i].pid && procs[i].pool == k && !procs[i].stopping &&
            (outdated || gdl_slot_state(i, NULL) == GDL_SLOT_RECYCLE) &&
            (ready > 0 || gdl_pools[k].min_processes == 0)) {
            procs[i].recycled = !outdated;
            stop(i, outdated ? "reloaded: replaced by the new code" : "recycled");
        }
    }
}

/* Snapshots each pool, asks the policy for a plan and carries it out:
 * starts (within the spawn budget), stops, and the set of pools the
 * sentinels should wake us for. */
static void scale(bool fresh)
{
    static gdl_proc_view_t views[GDL_PROCS_MAX];
    static gdl_stop_t stops[GDL_PROCS_MAX];
    unsigned char *wake;
    gdl_scene_t sc;
    bool settling = false, poll = false;

    if (shutting_down || base == NULL)
        return;
    wake = calloc(gdl_npools + 1, 1);
    if (wake == NULL)
        return;
    sc = scene_now(fresh);
    for (int k = 0; k < gdl_npools; k++) {
        gdl_pool_view_t v = pool_view(k, views);
        gdl_plan_t plan = {.stops = stops};
        int starts;

        gdl_policy_plan(&sc, &v, &plan);
        pools[k].queued_since_ms = plan.queued_since_ms;
        settling |= plan.settling;
        starts = take_spawn_budget(plan.starts);
        if (starts > 0)
            spawn(k, starts, plan.start_why);
        for (int n = 0; n < plan.nstops; n++)
            stop(plan.stops[n].slot, plan.stops[n].why);
        recycle(k);
        wake[k] = plan.wake;
        poll |= plan.poll;
    }
    /* An idle process waits for figures newer than its idleness before
     * it stops: ask for them now rather than at the next tick, but at most
     * every IDLE_POLL_GAP_MS (with max_idle_time 0 under steady traffic
     * each answer would find another process just gone idle, and the
     * polls would follow each other back to back). */
    if (poll && !evtimer_pending(idle_poll_timer, NULL)) {
        int64_t wait_ms = idle_poll_ms + IDLE_POLL_GAP_MS - gdl_now_ms();

        if (wait_ms <= 0) {
            idle_poll_ms = gdl_now_ms();
            poll_all();
        } else {
            struct timeval tv = {0, (long)wait_ms * 1000};
            evtimer_add(idle_poll_timer, &tv);
        }
    }
    if (!gdl_config.no_wakeups)
        gdl_sentinel_want(wake);
    free(wake);
    /* Until new processes are serving, the wake-up set changes with their
     * states in the slots, which nothing announces: re-read them. */
    if (settling && !evtimer_pending(rescale_timer, NULL)) {
        struct timeval tv = {0, SETTLE_MS * 1000};
        evtimer_add(rescale_timer, &tv);
    }
    gdl_notify_scaled();
}

static int pool_timeout_ms(int pool)
{
    int t = gdl_pools[pool].timeout_ms;

    return t >= 0 ? t : gdl_config.timeout_ms;
}

/* Process i's job has run past its pool's timeout. The job is marked in
 * the attempts table, so that if gearmand hands it to another process
 * that one fails it unrun; the process is asked to fail it (SIGXCPU: its
 * Lua code is interrupted, gdl_child.c) and to stop (SIGTERM), and gets
 * SIGKILL after TIMEOUT_GRACE_MS if it is stuck in C. A replacement
 * starts at once: the process no longer counts. */
static void time_out(int i, int64_t busy_ms, int64_t now)
{
    const gdl_pool_t *p = &gdl_pools[procs[i].pool];
    char handle[64], reason[64];

    gdl_slot_read(i, NULL, handle, sizeof(handle));
    snprintf(reason, sizeof(reason), "job timed out after %g s", pool_timeout_ms(procs[i].pool) / 1000.0);
    gdl_attempts_timed_out(handle, reason);
    gdl_warn("stop %d %s: job %s timed out after %lld ms (timeout %g s)", (int)procs[i].pid, p->name, handle,
             (long long)busy_ms, pool_timeout_ms(procs[i].pool) / 1000.0);
    procs[i].stopping = true;
    procs[i].timed_out = true;
    procs[i].kill_at_ms = now + TIMEOUT_GRACE_MS;
    kill(procs[i].pid, SIGXCPU);
    kill(procs[i].pid, SIGTERM);
}

/* Ends jobs past their timeout, and processes past their grace. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = gdl_now_ms(), since;
    bool rescale = false; /* a process timed out or asks to be recycled */
    int state;

    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        int t;

        if (procs[i].pid == 0)
            continue;
        if (procs[i].kill_at_ms && now >= procs[i].kill_at_ms) {
            gdl_warn(
                "process %d %s: still running %s; sending SIGKILL", (int)procs[i].pid, gdl_pools[procs[i].pool].name,
                procs[i].timed_out ? "1000 ms after its job timed out" : "--stop_timeout after it was asked to stop");
            kill(procs[i].pid, SIGKILL);
            procs[i].kill_at_ms = 0;
            continue;
        }
        t = pool_timeout_ms(procs[i].pool);
        state = gdl_slot_state(i, &since);
        rescale |= state == GDL_SLOT_RECYCLE && !procs[i].stopping;
        if (procs[i].stopping || t <= 0 || state != GDL_SLOT_BUSY || now - since < t)
            continue;
        time_out(i, now - since, now);
        rescale = true;
    }
    if (rescale)
        scale(false);
}

/* ---- generations: loading the code, and replacing it ---- */

#define LOAD_TIMEOUT_S 120 /* a loader that has not loaded the modules by then is killed */

static void reload_done(bool ok, const char *msg)
{
    for (int i = 0; i < nreload_hooks; i++)
        reload_hooks[i](ok, msg);
}

static void loading_end(void)
{
    loader_ended = false;
    if (loader_event)
        event_free(loader_event);
    loader_event = NULL;
    evtimer_del(load_timer);
}

/* The reload under way failed: the serving generation serves on. */
static void load_failed(const char *why)
{
    char msg[sizeof(next_loader.error) + 200];

    snprintf(msg, sizeof(msg), "%s", why); /* why may be next_loader's, reset below */
    gdl_error("reload failed: %s; generation %d serves on", msg, generation);
    if (next_loader.pid > 0)
        kill(next_loader.pid, SIGKILL);
    loading_end();
    gdl_loader_stop(&next_loader);
    reload_done(false, msg);
}

/* Makes the pools ld loaded the serving ones. A pool keeps its counters
 * and state by name; one the new code lacks is kept, emptied, while its
 * processes drain. The processes of the old code are replaced by
 * recycle() as the new ones are ready. */
static int install(gdl_loader_t *ld)
{
    int n = ld->npools, nall = n, nold = npools_all, added = 0, removed = 0;
    int *map = calloc(nold + 1, sizeof(int));
    gdl_pool_t *defs = calloc(n + nold + 1, sizeof(gdl_pool_t));
    pool_state_t *st = calloc(n + nold + 1, sizeof(pool_state_t));

    if (map == NULL || defs == NULL || st == NULL) {
        free(map);
        free(defs);
        free(st);
        return -1;
    }
    for (int k = 0; k < nold; k++) {
        map[k] = -1;
        for (int j = 0; j < n && map[k] < 0; j++)
            if (strcmp(gdl_pools[k].name, ld->pools[j].name) == 0)
                map[k] = j;
        if (map[k] < 0 && pools[k].processes > 0)
            map[k] = nall++;
        if (k < gdl_npools && (map[k] < 0 || map[k] >= n))
            removed++;
    }
    memcpy(defs, ld->pools, sizeof(gdl_pool_t) * n);
    for (int k = 0; k < nold; k++) {
        int j = map[k];

        if (j < 0) {
            gdl_pool_free(&gdl_pools[k]);
            event_free(pools[k].respawn);
            continue;
        }
        st[j] = pools[k];
        if (j < n) {
            gdl_pool_free(&gdl_pools[k]); /* the new definition replaces it */
        } else {
            defs[j] = gdl_pools[k];
            defs[j].min_processes = defs[j].max_processes = 0;
        }
    }
    for (int j = 0; j < n; j++)
        if (st[j].respawn == NULL) { /* a pool the old code did not have */
            if ((st[j].respawn = evtimer_new(base, on_respawn, NULL)) == NULL)
                abort(); /* out of memory in the master */
            if (nold > 0)
                added++;
        }
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid)
            procs[i].pool = map[procs[i].pool];
    free(map);
    free(gdl_pools);
    free(pools);
    free(ld->pools);
    ld->pools = NULL;
    ld->npools = 0;
    gdl_pools = defs;
    pools = st;
    gdl_npools = n;
    npools_all = nall;
    generation = ld->gen;
    gdl_pools_index();
    gdl_observer_pools_changed();
    gdl_sentinel_pools_changed();
    gdl_http_pools_changed();

    gdl_loader_stop(&loader); /* it exits; what it forked serves on */
    loader = *ld;
    *ld = (gdl_loader_t){.fd = -1};
    loader_losses = 0;
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid && procs[i].pool >= gdl_npools && !procs[i].stopping)
            stop(i, "reloaded: its job is gone");
    if (nold > 0)
        gdl_info("generation %d serves %d job(s) (%d new, %d gone); the old code's processes are replaced as the new "
                 "ones are ready",
                 generation, n, added, removed);
    return 0;
}

static void on_loader(evutil_socket_t fd, short what, void *arg)
{
    char msg[700];
    int rc = gdl_loader_read(&next_loader, false);

    if (rc == 0)
        return;
    if (rc < 0) {
        /* Most likely it has died: its exit status, once reaped, says
         * how (loader_exited); if it is not reaped soon, this error. */
        struct timeval tv = {1, 0};

        event_del(loader_event);
        loader_ended = true;
        evtimer_add(load_timer, &tv);
        return;
    }
    if (next_loader.failed < 0) {
        load_failed(next_loader.error);
        return;
    }
    if (next_loader.failed > 0) {
        snprintf(msg, sizeof(msg), "%d module(s) failed to load; the first: %.*s", next_loader.failed,
                 (int)strcspn(next_loader.error, "\n"), next_loader.error);
        load_failed(msg);
        return;
    }
    if (next_loader.npools == 0) {
        load_failed("no module defines a job");
        return;
    }
    loading_end();
    if (install(&next_loader) < 0) {
        load_failed("out of memory");
        return;
    }
    snprintf(msg, sizeof(msg), "generation %d: %d job(s)", generation, gdl_npools);
    reload_done(true, msg);
    scale(false);
}

static void on_load_timeout(evutil_socket_t fd, short what, void *arg)
{
    char msg[80];

    if (loader_ended) {
        load_failed(next_loader.error);
        return;
    }
    snprintf(msg, sizeof(msg), "the loader had not loaded the modules after %d s", LOAD_TIMEOUT_S);
    load_failed(msg);
}

/* A loader has exited: the serving one (its processes serve on; another
 * loads the code again), or one loading (the reload failed). */
static void loader_exited(pid_t pid, int status)
{
    char why[128], msg[200];

    describe_exit(status, why, sizeof(why));
    if (pid == next_loader.pid) {
        next_loader.pid = 0;
        snprintf(msg, sizeof(msg), "the loader %s before it had loaded the modules", why);
        load_failed(msg);
        return;
    }
    if (!shutting_down)
        loader_lost(why, true);
    loader.pid = 0;
}

/* Loads the script directories again in a new loader; the serving
 * generation serves on meanwhile, and for good if the load fails. */
static void reload_begin(const char *why)
{
    struct timeval tv = {LOAD_TIMEOUT_S, 0};

    if (shutting_down) {
        reload_done(false, "shutting down");
        return;
    }
    if (next_loader.pid > 0) {
        gdl_info("%s: a reload is under way already", why);
        return;
    }
    gdl_info("%s: loading the modules again; generation %d serves meanwhile", why, generation);
    if (gdl_loader_start(&next_loader, ++last_gen) < 0) {
        reload_done(false, "cannot start a loader");
        return;
    }
    loader_event = event_new(base, next_loader.fd, EV_READ | EV_PERSIST, on_loader, NULL);
    if (loader_event == NULL || event_add(loader_event, NULL) < 0) {
        load_failed("out of memory");
        return;
    }
    evtimer_add(load_timer, &tv);
}

static void on_reload_asked(evutil_socket_t fd, short what, void *arg)
{
    reload_begin(arg);
}

/* Deferred to the loop, so the console connection asking waits for the
 * answer (gdl_master_on_reload) before it can come. */
void gdl_master_reload(const char *why)
{
    struct timeval now = {0, 0};

    if (base)
        event_base_once(base, -1, EV_TIMEOUT, on_reload_asked, (void *)why, &now);
}

void gdl_master_on_reload(void (*fn)(bool ok, const char *msg))
{
    if (nreload_hooks == SHUTDOWN_HOOKS_MAX)
        abort(); /* a fixed set of units registers these */
    reload_hooks[nreload_hooks++] = fn;
}

/* ---- what the console may ask ---- */

/* A pool's limits, figures and counters. Its processes go to
 * procs[0..max): those serving first, then those asked to stop. Returns
 * how many serve (st->processes). */
int gdl_master_status(int pool, gdl_pool_status_t *st, gdl_proc_info_t *procs_out, int max)
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
            gdl_proc_info_t info = {.pid = procs[i].pid, .stopping = procs[i].stopping};

            if (procs[i].pid == 0 || procs[i].pool != pool || procs[i].stopping != (pass == 1))
                continue;
            gdl_slot_read(i, &c, info.handle, sizeof(info.handle));
            gdl_counters_add(&st->c, &c);
            info.state = gdl_slot_state(i, &info.since_ms);
            if (n < max)
                procs_out[n] = info;
            n++;
            if (info.stopping) {
                st->stopping++;
            } else {
                st->processes++;
                st->busy += info.state == GDL_SLOT_BUSY;
            }
        }
    return st->processes;
}

/* New limits for a pool, acted on at once. -1 (and nothing changed)
 * unless 0 <= min <= max <= GDL_PROCS_MAX. */
int gdl_master_set_limits(int pool, int min, int max)
{
    gdl_pool_t *p = &gdl_pools[pool];

    if (min < 0 || max < min || max > GDL_PROCS_MAX)
        return -1;
    gdl_info("console: %s min_processes %d, max_processes %d (were %d, %d)", p->name, min, max, p->min_processes,
             p->max_processes);
    p->min_processes = min;
    p->max_processes = max;
    scale(false);
    return 0;
}

/* Stops these processes after their current job; -1 (and none stopped)
 * when one of the pids is not ours. */
int gdl_master_stop_pids(const int *pids, int n, const char *why)
{
    int idx[GDL_PROCS_MAX];

    if (n > GDL_PROCS_MAX)
        return -1;
    for (int k = 0; k < n; k++) {
        int i;
        for (i = 0; i < GDL_PROCS_MAX && (pids[k] <= 0 || procs[i].pid != pids[k]); i++)
            ;
        if (i == GDL_PROCS_MAX)
            return -1;
        idx[k] = i;
    }
    for (int k = 0; k < n; k++)
        if (!procs[idx[k]].stopping)
            stop(idx[k], why);
    return 0;
}

void gdl_master_stop_pool(int pool, const char *why)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid && procs[i].pool == pool && !procs[i].stopping)
            stop(i, why);
}

void gdl_master_on_shutdown(void (*fn)(void))
{
    if (nshutdown_hooks == SHUTDOWN_HOOKS_MAX)
        abort(); /* a fixed set of units registers these */
    shutdown_hooks[nshutdown_hooks++] = fn;
}

static void on_shutdown(evutil_socket_t fd, short what, void *arg)
{
    shutdown_begin(SIGTERM);
}

/* Deferred to the loop: the console connection asking is still on the
 * stack, and shutting down closes it. */
void gdl_master_shutdown(void)
{
    struct timeval now = {0, 0};

    if (base)
        event_base_once(base, -1, EV_TIMEOUT, on_shutdown, NULL, &now);
}

/* A job server answers again after being down. A sleeping child's
 * libgearman worker drops a lost connection without a word and waits on
 * the others, so it would not serve this server again before a job came
 * from another: each serving child is told to connect afresh (SIGUSR2,
 * gdl_child.c). One still starting connects by itself. */
static void reconnect_children(int server)
{
    int n = 0;

    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        int st = procs[i].pid && !procs[i].stopping ? gdl_slot_state(i, NULL) : GDL_SLOT_FREE;

        if (st == GDL_SLOT_IDLE || st == GDL_SLOT_BUSY) {
            kill(procs[i].pid, SIGUSR2);
            n++;
        }
    }
    gdl_info("job server %s:%d is back: %d process(es) told to connect to it", gdl_config.servers[server].host,
             gdl_config.servers[server].port, n);
}

static void on_polled(int server)
{
    static unsigned returns[GDL_SERVERS_MAX];

    if (gdl_observed[server].returns != returns[server]) {
        returns[server] = gdl_observed[server].returns;
        reconnect_children(server);
    }
    scale(true);
}

static void on_wake(int server)
{
    int64_t now = gdl_now_ms();

    gdl_debug("woken by job server %d", server);
    gdl_observer_poll(server);
    for (int s = 0; s < gdl_config.nservers; s++) {
        const gdl_observed_t *o = &gdl_observed[s];
        bool waiting = false;

        for (int k = 0; k < gdl_npools && o->valid && !waiting; k++)
            waiting = o->queue[k] > 0;
        if (s != server && waiting && now - o->asked_ms >= REFRESH_MS)
            gdl_observer_poll(s);
    }
}

static void poll_all(void)
{
    for (int s = 0; s < gdl_config.nservers; s++)
        gdl_observer_poll(s);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    if (gdl_config.interval > 0)
        poll_all();
    scale(false);
}

static void on_rescale(evutil_socket_t fd, short what, void *arg)
{
    scale(false);
}

static void on_idle_poll(evutil_socket_t fd, short what, void *arg)
{
    idle_poll_ms = gdl_now_ms();
    poll_all();
}

/* The spawn budget has refilled: starts wait for fresh figures. */
static void on_budget(evutil_socket_t fd, short what, void *arg)
{
    poll_all();
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
    scale(false);
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, len, "ended with status 0x%x", status);
}

/* Jobs a pool's processes have served, the exited ones' included. */
static uint64_t pool_served(int pool)
{
    gdl_pool_status_t st;

    gdl_master_status(pool, &st, NULL, 0);
    return st.c.done + st.c.failed + st.c.timeouts + st.c.poisoned;
}

/* A process we did not stop has died. In a crash loop (the policy
 * decides) the next start waits: the first is replaced at once, then
 * 100 ms doubling to 10 s (gdl_backoff_ms), so a module that crashes
 * every process cannot fork-bomb the host. Any other death is replaced
 * at once. */
static void crashed(int pool, int status, int64_t lived, uint64_t served)
{
    pool_state_t *ps = &pools[pool];
    int64_t now = gdl_now_ms();
    uint64_t total = pool_served(pool);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    gdl_death_t d = {.lived_ms = lived, .served = served};

    d.external = sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
    int delay;

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
static int restart_reason(const proc_t *p, int status)
{
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

    if (p->timed_out)
        return GDL_RESTART_TIMEOUT;
    if (p->recycled)
        return GDL_RESTART_RECYCLE;
    if (p->stopping || shutting_down)
        return -1;
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
        return GDL_RESTART_KILLED;
    return GDL_RESTART_CRASH;
}

static void reap(void)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        gdl_counters_t c;
        char why[128], handle[64], unique[64];
        proc_t *p = NULL;
        const char *name;
        int64_t lived;
        int i, state, pool, restart;
        bool unasked;

        if (pid == loader.pid || pid == next_loader.pid) {
            loader_exited(pid, status);
            continue;
        }
        for (i = 0; i < GDL_PROCS_MAX; i++)
            if (procs[i].pid == pid) {
                p = &procs[i];
                break;
            }
        if (p == NULL)
            continue; /* an old loader, or an orphan a job left (we are its subreaper) */
        name = gdl_pools[p->pool].name;
        lived = gdl_now_ms() - p->started_ms;
        state = gdl_slot_state(i, NULL);
        describe_exit(status, why, sizeof(why));
        if (p->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            gdl_debug("process %d %s %s", (int)pid, name, why);
        } else {
            gdl_warn("process %d %s %s after %lld ms (was %s)", (int)pid, name, why, (long long)lived,
                     gdl_slot_state_name(state));
        }
        gdl_slot_read(i, &c, handle, sizeof(handle));
        if (state == GDL_SLOT_BUSY && handle[0]) {
            /* gearmand hands its job to the next process: count how
             * often this one has killed a process (gdl_attempts.c). */
            char reason[64];
            uint32_t deaths;

            if (WIFSIGNALED(status))
                snprintf(reason, sizeof(reason), "signal %d", WTERMSIG(status));
            else
                snprintf(reason, sizeof(reason), "exit status %d", WEXITSTATUS(status));
            gdl_slot_unique(i, unique, sizeof(unique));
            deaths = gdl_attempts_died(handle, unique, reason);
            gdl_warn("%s: job %s has killed %u process(es) (%s)%s", name, handle, deaths, reason,
                     gdl_config.max_attempts > 0 && deaths >= (uint32_t)gdl_config.max_attempts
                         ? "; the next process fails it unrun"
                         : "");
        }
        gdl_counters_add(&pools[p->pool].gone, &c);
        if ((restart = restart_reason(p, status)) >= 0)
            pools[p->pool].restarts[restart]++;
        pools[p->pool].processes--;
        nprocs--;
        gdl_slot_release(i);
        pool = p->pool;
        unasked = !p->stopping && !shutting_down;
        memset(p, 0, sizeof(*p));
        if (unasked)
            crashed(pool, status, lived, c.done + c.failed + c.timeouts + c.poisoned);
    }
    if (shutting_down && nprocs == 0)
        event_base_loopbreak(base);
    else
        scale(false);
}

static void kill_all(int sig)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid) {
            procs[i].stopping = true;
            kill(procs[i].pid, sig);
        }
}

static void on_kill_timeout(evutil_socket_t fd, short what, void *arg)
{
    gdl_warn("%d process(es) still running after %d s; sending SIGKILL", nprocs, gdl_config.shutdown_timeout);
    kill_all(SIGKILL);
}

static void stop_listening(void)
{
    for (int i = 0; i < nshutdown_hooks; i++)
        shutdown_hooks[i]();
    nshutdown_hooks = 0;
    gdl_sentinel_close();
    gdl_observer_close();
}

static void shutdown_begin(int sig)
{
    struct timeval tv = {gdl_config.shutdown_timeout, 0};

    if (shutting_down) {
        gdl_warn("%s again: sending SIGKILL to %d process(es)", strsignal(sig), nprocs);
        kill_all(SIGKILL);
        return;
    }
    shutting_down = true;
    gdl_info("%s: stopping %d process(es) after their current job", strsignal(sig), nprocs);
    if (next_loader.pid > 0)
        load_failed("shutting down");
    gdl_loader_stop(&loader);
    stop_listening();
    evtimer_del(tick_timer);
    kill_all(SIGTERM);
    evtimer_add(kill_timer, &tv);
    if (nprocs == 0)
        event_base_loopbreak(base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    switch (sig) {
    case SIGCHLD:
        reap();
        break;
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
        shutdown_begin(sig);
        break;
    case SIGHUP:
        reload_begin("SIGHUP");
        break;
    case SIGUSR1:
        /* logrotate: the children and loaders reopen theirs in their handler */
        gdl_log_reopen();
        gdl_info("SIGUSR1: log file reopened");
        for (int i = 0; i < GDL_PROCS_MAX; i++)
            if (procs[i].pid)
                kill(procs[i].pid, SIGUSR1);
        if (loader.pid > 0)
            kill(loader.pid, SIGUSR1);
        if (next_loader.pid > 0)
            kill(next_loader.pid, SIGUSR1);
        break;
    default:
        gdl_info("%s (signal %d): ignored", strsignal(sig), (int)sig);
    }
}

/* Every signal the master handles. Those after SIGUSR1 are ones an
 * operator may send that must not kill it: logged and ignored. */
static const int signals[] = {SIGCHLD, SIGTERM,   SIGINT,  SIGQUIT, SIGHUP,  SIGUSR1, SIGUSR2,
                              SIGALRM, SIGVTALRM, SIGPROF, SIGPOLL, SIGXCPU, SIGXFSZ, SIGPWR};
#define NSIGNALS (sizeof(signals) / sizeof(signals[0]))
static struct event *signal_events[NSIGNALS];

/* The event loop and the process table, before any unit that needs the
 * loop (the console) starts. NULL on failure, logged. */
struct event_base *gdl_master_init(void)
{
    char host[64];

    gdl_master_pid = getpid();
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(gdl_instance, sizeof(gdl_instance), "gdlua:%s:%d", host, (int)gdl_master_pid);
    signal(SIGPIPE, SIG_IGN);
    /* Processes are forked by a loader and reparented to the master. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        gdl_error("cannot become a child subreaper: %s", strerror(errno));
        return NULL;
    }
    if (gdl_slots_init() < 0 || gdl_attempts_init() < 0)
        return NULL;
    base = event_base_new();
    if (base == NULL) {
        gdl_error("cannot create the event loop");
        return NULL;
    }
    for (size_t i = 0; i < NSIGNALS; i++) {
        signal_events[i] = evsignal_new(base, signals[i], on_signal, NULL);
        if (signal_events[i] == NULL || evsignal_add(signal_events[i], NULL) < 0) {
            gdl_error("cannot handle signal %d", signals[i]);
            return NULL;
        }
    }
    kill_timer = evtimer_new(base, on_kill_timeout, NULL);
    rescale_timer = evtimer_new(base, on_rescale, NULL);
    budget_timer = evtimer_new(base, on_budget, NULL);
    idle_poll_timer = evtimer_new(base, on_idle_poll, NULL);
    tick_timer = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    watchdog_timer = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
    load_timer = evtimer_new(base, on_load_timeout, NULL);
    if (kill_timer == NULL || rescale_timer == NULL || budget_timer == NULL || idle_poll_timer == NULL ||
        tick_timer == NULL || watchdog_timer == NULL || load_timer == NULL) {
        gdl_error("cannot create the master's timers");
        return NULL;
    }
    return base;
}

/* The first generation, loaded before anything is served: a module that
 * fails is left out (logged), unless none defines a job. */
static int load_first(void)
{
    int rc;

    if (gdl_loader_start(&next_loader, ++last_gen) < 0)
        return -1;
    rc = gdl_loader_read(&next_loader, true);
    if (rc < 0) {
        gdl_error("%s", next_loader.error);
    } else if (next_loader.npools == 0) {
        gdl_error("no job to serve: %d module(s) failed to load, none defined a job", next_loader.failed);
        rc = -1;
    } else {
        if (next_loader.failed)
            gdl_warn("%d module(s) failed to load; serving the other %d job(s)", next_loader.failed,
                     next_loader.npools);
        if ((rc = install(&next_loader)) < 0)
            gdl_error("cannot load the modules: out of memory");
    }
    if (rc < 0)
        gdl_loader_stop(&next_loader);
    return rc < 0 ? -1 : 0;
}

int gdl_master_run(void)
{
    struct timeval tick = {gdl_config.interval > 0 ? gdl_config.interval : 1, 0};
    char title[512];
    int n;

    if (load_first() < 0)
        return 1;
    evtimer_add(tick_timer, &tick);
    {
        struct timeval tv = {0, WATCHDOG_MS * 1000};
        evtimer_add(watchdog_timer, &tv);
    }
    spawn_tokens = gdl_config.max_spawn_rate;
    tokens_at_ms = gdl_now_ms();

    n = snprintf(title, sizeof(title), "gdlua: master");
    for (int i = 0; i < gdl_config.ndirs && n < (int)sizeof(title); i++)
        n += snprintf(title + n, sizeof(title) - n, " %s", gdl_config.dirs[i]);
    gdl_proctitle_set(title);

    gdl_info("gdlua %s serving %d job(s) on %d server(s), first %s:%d", GDLUA_VERSION, gdl_npools, gdl_config.nservers,
             gdl_config.servers[0].host, gdl_config.servers[0].port);
    gdl_observer_init(base, on_polled);
    if (!gdl_config.no_wakeups)
        gdl_sentinel_init(base, on_wake);
    gdl_notify_init(base);
    scale(false);

    event_base_dispatch(base);

    gdl_info("all processes stopped; exiting");
    stop_listening();
    gdl_notify_close();
    for (size_t i = 0; i < NSIGNALS; i++)
        event_free(signal_events[i]);
    for (int k = 0; k < npools_all; k++)
        event_free(pools[k].respawn);
    gdl_loader_stop(&loader);
    loading_end();
    event_free(load_timer);
    event_free(kill_timer);
    event_free(rescale_timer);
    event_free(budget_timer);
    event_free(idle_poll_timer);
    event_free(tick_timer);
    event_free(watchdog_timer);
    event_base_free(base);
    base = NULL;
    free(pools);
    return 0;
}
