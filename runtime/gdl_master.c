/*
 * gdl_master.c: the master process: forks, reaps, scales and stops
 * children, and handles signals, all from one libevent loop. It never
 * runs a job.
 *
 * The process table is indexed like the shared-memory slots (gdl_shm.c):
 * process i writes slot i. This file is the mechanism (spawn, stop,
 * reap, signal, the spawn-rate budget, crash-loop back-off); how many
 * processes a job should have is gdl_policy.c's, fed with the slots'
 * states and the queues that gdl_admin.c observes. scale() runs after
 * every poll, on each tick and when a child exits; gdl_sentinel.c wakes
 * it (through a poll) the moment work arrives for a job that needs a
 * process.
 *
 * Signals: SIGTERM/SIGINT stop the children after their current job and
 * exit 0 once they are gone, escalating to SIGKILL after
 * --shutdown_timeout; a second SIGTERM/SIGINT escalates at once. SIGHUP
 * is logged and ignored (no reload yet).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "gdlua.h"

/* A child that lives at least this long counts as healthy: its death is
 * replaced at once and resets the job's crash streak. */
#define STABLE_MS 5000

/* While processes start, scale() looks at the slots this often. */
#define SETTLE_MS 20

typedef struct {
    pid_t pid;
    int job;
    int64_t started_ms;
    bool stopping; /* we asked it to stop: its exit is no crash */
} gdl_proc_t;

pid_t gdl_master_pid;

static gdl_proc_t procs[GDL_PROCS_MAX];
static int nprocs;
static struct event_base *base;
static struct event *kill_timer, *tick_timer, *rescale_timer, *budget_timer;
static bool shutting_down;
static double spawn_tokens;
static int64_t tokens_at_ms;

static void scale(bool fresh);
static void shutdown_begin(int sig);

static const char *state_name(int state)
{
    static const char *const names[] = {"free", "starting", "idle", "busy"};

    return state >= 0 && state < 4 ? names[state] : "?";
}

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
        struct timeval tv = {0, 1000000 / gdl_config.max_spawn_rate + 1000};
        evtimer_add(budget_timer, &tv);
    }
    return got;
}

static int spawn(int job, const char *why)
{
    gdl_job_t *j = &gdl_jobs[job];
    sigset_t all, old;
    pid_t pid;
    int i;

    for (i = 0; i < GDL_PROCS_MAX && procs[i].pid != 0; i++)
        ;
    if (i == GDL_PROCS_MAX) {
        gdl_error("cannot start a process for %s: all %d process slots in use", j->name, GDL_PROCS_MAX);
        return -1;
    }
    /* The slot is ready before fork: once the child runs, it is the
     * child's to write (only the pid is filled in below). */
    gdl_slot_reset(&gdl_slots[i], 0, job);
    gdl_slots[i].state = GDL_SLOT_STARTING;
    /* Blocked across fork so no signal reaches the child while libevent's
     * handlers are still installed there. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        gdl_console_child_close();
        gdl_admin_child_close();
        gdl_sentinel_child_close();
        gdl_child_run(job, i);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        gdl_error("cannot fork a process for %s: %s", j->name, strerror(errno));
        gdl_slot_reset(&gdl_slots[i], 0, 0);
        return -1;
    }
    gdl_slots[i].pid = pid;
    procs[i] = (gdl_proc_t){.pid = pid, .job = job, .started_ms = gdl_now_ms()};
    nprocs++;
    j->processes++;
    gdl_info("start %d %s: %s", (int)pid, j->name, why);
    return 0;
}

static void stop(int i, const char *why)
{
    procs[i].stopping = true;
    gdl_info("stop %d %s: %s", (int)procs[i].pid, gdl_jobs[procs[i].job].name, why);
    kill(procs[i].pid, SIGTERM);
}

/* What a job has and is asked for, from the slots and the last polls.
 * Fills idle[]/idle_proc[] with its idle processes. */
static gdl_demand_t demand(int job, int64_t now, int64_t *idle, int *idle_proc, int *nidle)
{
    gdl_job_t *j = &gdl_jobs[job];
    gdl_demand_t d = {.min = j->min_processes, .max = j->max_processes};
    int64_t asked = INT64_MAX;

    /* A process that took its job after the poll was sent took it from
     * the queue the poll reports: count it once, as available, not also
     * as busy. */
    for (int s = 0; s < gdl_config.nservers; s++)
        if (gdl_observed[s].valid && gdl_observed[s].asked_ms < asked)
            asked = gdl_observed[s].asked_ms;
    *nidle = 0;
    for (int i = 0; i < GDL_PROCS_MAX; i++) {
        const gdl_slot_t *s = &gdl_slots[i];

        if (procs[i].pid == 0 || procs[i].job != job || procs[i].stopping)
            continue;
        d.processes++;
        if (s->state == GDL_SLOT_BUSY && s->busy_since_ms >= asked) {
            continue; /* neither busy nor idle: stopping it is never right */
        } else if (s->state == GDL_SLOT_BUSY) {
            d.busy++;
        } else if (s->state == GDL_SLOT_IDLE) {
            idle[*nidle] = now - s->idle_since_ms;
            idle_proc[(*nidle)++] = i;
        }
    }
    int running = 0;

    for (int s = 0; s < gdl_config.nservers; s++) {
        if (!gdl_observed[s].valid)
            continue;
        d.queue += gdl_observed[s].queue[job];
        running += gdl_observed[s].running[job];
        if (gdl_observed[s].peers[job] > d.peers) {
            d.peers = gdl_observed[s].peers[job];
            d.rank = gdl_observed[s].rank[job];
        }
    }
    /* Rotate the ranks with the jobs running (the same figure for every
     * instance polling at the same moment), so that work arriving one job
     * at a time goes to each instance in turn, not always to the first. */
    d.rank = (d.rank + running) % (d.peers + 1);
    if (d.queue == 0)
        j->queued_since_ms = 0;
    else if (j->queued_since_ms == 0)
        j->queued_since_ms = now;
    d.stale = d.queue > 0 && now - j->queued_since_ms >= (gdl_config.interval > 0 ? gdl_config.interval : 1) * 1000;
    return d;
}

/* The policy applied to every job: starts (within the spawn budget and
 * the crash back-off), idle stops, and the set of jobs the sentinels
 * should wake us for. Starts for waiting work need a fresh poll: between
 * polls the queue is stale while processes grab jobs and turn busy, and
 * counting both would start too many. Keeping min needs no poll. */
static void scale(bool fresh)
{
    static int64_t idle[GDL_PROCS_MAX];
    static int idle_proc[GDL_PROCS_MAX], order[GDL_PROCS_MAX];
    unsigned char *wake = calloc(gdl_njobs + 1, 1);
    int64_t now = gdl_now_ms();
    bool settling = false;

    if (shutting_down || wake == NULL) {
        free(wake);
        return;
    }
    for (int k = 0; k < gdl_njobs; k++) {
        gdl_job_t *j = &gdl_jobs[k];
        int nidle, starts, nstops;
        int64_t max_idle_ms = (j->max_idle_time >= 0 ? j->max_idle_time : gdl_config.max_idle_time) * 1000LL;
        gdl_demand_t d = demand(k, now, idle, idle_proc, &nidle);
        char why[96];

        /* Starting processes: look again soon, when they have a job. */
        settling |= d.processes > d.busy + nidle;
        if (evtimer_pending(j->respawn, NULL)) {
            starts = 0;
        } else if (fresh) {
            starts = gdl_policy_starts(&d);
        } else {
            gdl_demand_t keep = d;
            keep.queue = 0;
            starts = gdl_policy_starts(&keep);
        }
        if (starts > 0) {
            if (d.processes < d.min && d.queue == 0)
                snprintf(why, sizeof(why), "min %d", d.min);
            else
                snprintf(why, sizeof(why), "queue %d, busy %d%s", d.queue, d.busy, d.peers ? ", shared" : "");
            starts = take_spawn_budget(starts);
            for (int n = 0; n < starts && spawn(k, why) == 0; n++) {
                d.processes++;
                settling = true;
            }
        }
        nstops = gdl_policy_stops(&d, max_idle_ms, idle, nidle, order);
        for (int n = 0; n < nstops; n++) {
            if (d.processes > d.max)
                snprintf(why, sizeof(why), "above max %d", d.max);
            else
                snprintf(why, sizeof(why), "idle %lld s", (long long)(idle[order[n]] / 1000));
            stop(idle_proc[order[n]], why);
            d.processes--;
        }
        /* Wake us when one more job would call for a process here, were
         * this instance first in rank (on the wake, rank decides). */
        d.queue++;
        d.rank = 0;
        wake[k] = d.processes < d.max && gdl_policy_starts(&d) > 0;
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
}

/* ---- for the console ---- */

int gdl_master_pids(int job, int *pids, int max)
{
    int n = 0;

    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid && procs[i].job == job && !procs[i].stopping) {
            if (n < max)
                pids[n] = procs[i].pid;
            n++;
        }
    return n;
}

int gdl_master_busy(int job)
{
    int n = 0;

    for (int i = 0; i < GDL_PROCS_MAX; i++)
        n += procs[i].pid && procs[i].job == job && gdl_slots[i].state == GDL_SLOT_BUSY;
    return n;
}

bool gdl_master_owns(int pid)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid == pid)
            return true;
    return false;
}

void gdl_master_stop_pid(int pid, const char *why)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid == pid && !procs[i].stopping)
            stop(i, why);
}

/* A job's counters: its exited processes' and its live ones'. */
void gdl_master_counters(int job, gdl_counters_t *out)
{
    *out = gdl_jobs[job].gone;
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid && procs[i].job == job)
            gdl_counters_add(out, &gdl_slots[i].c);
}

void gdl_master_rescale(void)
{
    if (base)
        scale(false);
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

static void on_polled(int server)
{
    scale(true);
}

static void on_wake(int server)
{
    gdl_debug("woken by job server %d", server);
    gdl_admin_poll(server);
}

static void poll_all(void)
{
    for (int s = 0; s < gdl_config.nservers; s++)
        gdl_admin_poll(s);
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

/* A job whose children keep dying young waits before the next start:
 * 100 ms doubling to 10 s (gdl_backoff_ms), so a crash loop cannot
 * fork-bomb the host. */
static void crashed(gdl_job_t *j, int64_t lived)
{
    int delay;

    j->streak = lived >= STABLE_MS ? 1 : j->streak + 1;
    delay = gdl_backoff_ms(j->streak);
    if (delay > 0 && !evtimer_pending(j->respawn, NULL)) {
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        gdl_warn("%s: %d process(es) died young in a row; next start in %d ms", j->name, j->streak, delay);
        evtimer_add(j->respawn, &tv);
    }
}

static void reap(void)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char why[128];
        gdl_proc_t *p = NULL;
        gdl_job_t *j;
        int64_t lived;
        int i;

        for (i = 0; i < GDL_PROCS_MAX; i++)
            if (procs[i].pid == pid) {
                p = &procs[i];
                break;
            }
        if (p == NULL)
            continue;
        j = &gdl_jobs[p->job];
        lived = gdl_now_ms() - p->started_ms;
        describe_exit(status, why, sizeof(why));
        if (p->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            gdl_debug("process %d %s %s", (int)pid, j->name, why);
        } else {
            gdl_warn("process %d %s %s after %lld ms (was %s)", (int)pid, j->name, why, (long long)lived,
                     state_name(gdl_slots[i].state));
            if (!p->stopping)
                crashed(j, lived);
        }
        gdl_counters_add(&j->gone, &gdl_slots[i].c);
        j->processes--;
        nprocs--;
        gdl_slot_reset(&gdl_slots[i], 0, 0);
        memset(p, 0, sizeof(*p));
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
    gdl_console_close();
    gdl_sentinel_close();
    gdl_admin_close();
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
        shutdown_begin(sig);
        break;
    case SIGHUP:
        gdl_info("SIGHUP: reloading is not supported yet; ignored");
        break;
    }
}

int gdl_master_run(void)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
    struct event *sigev[sizeof(sigs) / sizeof(sigs[0])];
    struct timeval tick = {gdl_config.interval > 0 ? gdl_config.interval : 1, 0};
    char title[512], host[64];
    int n;

    gdl_master_pid = getpid();
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(gdl_instance, sizeof(gdl_instance), "gdlua:%s:%d", host, (int)gdl_master_pid);
    signal(SIGPIPE, SIG_IGN);
    if (gdl_shm_init() < 0)
        return 1;
    base = event_base_new();
    if (base == NULL) {
        gdl_error("cannot create the event loop");
        return 1;
    }
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigev[i] = evsignal_new(base, sigs[i], on_signal, NULL);
        evsignal_add(sigev[i], NULL);
    }
    kill_timer = evtimer_new(base, on_kill_timeout, NULL);
    rescale_timer = evtimer_new(base, on_rescale, NULL);
    budget_timer = evtimer_new(base, on_budget, NULL);
    tick_timer = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    evtimer_add(tick_timer, &tick);
    spawn_tokens = gdl_config.max_spawn_rate;
    tokens_at_ms = gdl_now_ms();

    n = snprintf(title, sizeof(title), "gdlua: master");
    for (int i = 0; i < gdl_config.ndirs && n < (int)sizeof(title); i++)
        n += snprintf(title + n, sizeof(title) - n, " %s", gdl_config.dirs[i]);
    gdl_proctitle_set(title);

    for (int k = 0; k < gdl_njobs; k++)
        gdl_jobs[k].respawn = evtimer_new(base, on_respawn, NULL);
    gdl_info("gdlua %s serving %d job(s) on %d server(s), first %s:%d", GDLUA_VERSION, gdl_njobs, gdl_config.nservers,
             gdl_config.servers[0].host, gdl_config.servers[0].port);
    if (gdl_console_init(base) < 0)
        return 1;
    gdl_admin_init(base, on_polled);
    if (!gdl_config.no_wakeups)
        gdl_sentinel_init(base, on_wake);
    scale(false);

    event_base_dispatch(base);

    gdl_info("all processes stopped; exiting");
    gdl_console_close();
    gdl_sentinel_close();
    gdl_admin_close();
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        event_free(sigev[i]);
    for (int k = 0; k < gdl_njobs; k++)
        event_free(gdl_jobs[k].respawn);
    event_free(kill_timer);
    event_free(rescale_timer);
    event_free(budget_timer);
    event_free(tick_timer);
    event_base_free(base);
    return 0;
}
