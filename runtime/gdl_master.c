/*
 * gdl_master.c: the master process: one libevent loop, the signals, the
 * scaling pass, and the master's API to the units above it. It never
 * runs a job nor loads a module. Its two rooms: gdl_procs.c supervises
 * the processes (start, stop, exits, the crash-loop back-off, the
 * watchdog, recycling), gdl_generations.c loads the code and replaces it
 * (the loaders, a reload's swap). This file may use them but holds none
 * of their state; they report to it through the functions it gives
 * their init.
 *
 * How many processes a pool should have is gdl_policy.c's: scale()
 * snapshots every pool (its processes' states from gdl_procs.c, the
 * queues gdl_observer.c polled), asks the policy for a plan and carries
 * it out. scale() runs after every poll, on each tick, when a child
 * exits or rings the slots' bell, and when a room asks; gdl_sentinel.c
 * wakes it (through a poll) the moment work arrives for a pool that
 * needs a process.
 *
 * The units above (the console, the HTTP endpoint, systemd's
 * notifications) never are called by name: they register for the events
 * of GDL_EVENTS (gdl_master_on) and the master announces them.
 *
 * Signals: SIGTERM/SIGINT/SIGQUIT stop the children after their current
 * job and exit 0 once they are gone, escalating to SIGKILL after
 * --shutdown_timeout; a second one escalates at once. SIGUSR1 reopens
 * the log file (the master's and, passed on, each child's). SIGHUP
 * reloads the code. The other signals an operator might send (SIGUSR2,
 * SIGALRM, ...) are logged and ignored: none kills the master.
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
 * or running, or workers, are asked for again: summed with the fresh ones
 * they would count jobs taken, or ended, since, and workers that may have
 * gone (or whose server has stopped answering). */
#define REFRESH_MS 50

/* A poll's answer waits this long at most for the others sent with it:
 * the figures of polls sent together are used together. Summed with one
 * fresh answer, another server's figures from a poll an interval old
 * count as running jobs that have ended since, so the free workers look
 * fewer than they are and too many processes start (tests/integration/
 * test_cluster.sh saw 20 jobs running on 14 workers). */
#define ROUND_MS 100

#define LISTENERS_MAX 8

static struct event_base *base;
static struct event *kill_timer, *tick_timer, *rescale_timer, *budget_timer, *idle_poll_timer, *round_timer;
static struct event *bell_event;
static int64_t idle_poll_ms; /* when scale() last asked for figures for an idle stop */
static bool shutting_down, unlistened;
static double spawn_tokens;
static int64_t tokens_at_ms;
static struct {
    int events; /* GDL_EV_* */
    gdl_event_fn *fn;
    void *arg;
} listeners[LISTENERS_MAX];
static int nlisteners;

static void poll_all(void);
static void shutdown_begin(int sig);

/* ---- events ---- */

void gdl_master_on(int events, gdl_event_fn *fn, void *arg)
{
    if (nlisteners == LISTENERS_MAX)
        abort(); /* a fixed set of units registers */
    listeners[nlisteners].events = events;
    listeners[nlisteners].fn = fn;
    listeners[nlisteners].arg = arg;
    nlisteners++;
}

/* Also what gdl_generations.c reports: the pools have changed, a reload
 * has ended. */
static void announce(int event, bool ok, const char *msg)
{
    gdl_event_t ev = {.event = event, .ok = ok, .msg = msg};

    for (int i = 0; i < nlisteners; i++)
        if (listeners[i].events & event)
            listeners[i].fn(&ev, listeners[i].arg);
}

/* ---- scaling ---- */

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

/* The scene every pool's view shares: the clock and the oldest poll. */
/* Whether server s's figures count: its last poll answered, and it has
 * answered every poll sent more than ROUND_MS ago. A server that stopped
 * answering (it hangs until POLL_TIMEOUT_S says so) would otherwise go on
 * listing the free workers it saw, which serve nothing now, and a job
 * elsewhere would wait for them instead of starting a process. */
static bool current(int s, int64_t now_ms)
{
    return gdl_observed[s].valid && !gdl_observer_overdue(s, now_ms - ROUND_MS);
}

static gdl_scene_t scene_now(bool fresh)
{
    gdl_scene_t sc = {.now_ms = gdl_now_ms(), .asked_ms = INT64_MAX, .fresh = fresh};
    struct timespec wall;

    clock_gettime(CLOCK_REALTIME, &wall); /* the ranks turn with it, on every host alike */
    sc.wall_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    sc.interval_ms = gdl_config.interval * 1000;
    for (int s = 0; s < gdl_config.nservers; s++)
        if (current(s, sc.now_ms) && gdl_observed[s].asked_ms < sc.asked_ms)
            sc.asked_ms = gdl_observed[s].asked_ms;
    return sc;
}

/* A pool as the policy sees it: its processes (gdl_procs.c, in buf) and
 * the job servers' figures. */
static gdl_pool_view_t pool_view(int pool, gdl_proc_view_t *buf)
{
    gdl_pool_view_t v = gdl_procs_view(pool, buf);
    int64_t now = gdl_now_ms();

    for (int s = 0; s < gdl_config.nservers; s++) {
        const gdl_observed_t *o = &gdl_observed[s];

        if (!current(s, now))
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
    return v;
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
        gdl_procs_remember(k, &plan);
        settling |= plan.settling;
        starts = take_spawn_budget(plan.starts);
        if (starts > 0)
            gdl_generations_spawn(k, starts, plan.start_why);
        for (int n = 0; n < plan.nstops; n++)
            gdl_procs_stop(plan.stops[n].slot, plan.stops[n].why);
        gdl_procs_recycle(k);
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
    announce(GDL_EV_SCALED, true, NULL);
}

/* What the rooms ask for when something they noticed needs a new plan. */
static void rescale(void)
{
    scale(false);
}

/* A poll answered: the pools scale on the fresh figures, once the other
 * polls sent with it (within ROUND_MS) have answered too. A job server
 * that answers again after being down: a sleeping child's libgearman
 * worker dropped the lost connection without a word and waits on the
 * others, so each serving child is told to connect afresh. */
static void on_polled(int server)
{
    static unsigned returns[GDL_SERVERS_MAX];
    int64_t now = gdl_now_ms(), sent = gdl_observer_awaited(server, now - ROUND_MS);

    if (gdl_observed[server].returns != returns[server]) {
        returns[server] = gdl_observed[server].returns;
        gdl_info("job server %s:%d is back: %d process(es) told to connect to it", gdl_config.servers[server].host,
                 gdl_config.servers[server].port, gdl_procs_reconnect());
    }
    if (sent > 0) {
        if (!evtimer_pending(round_timer, NULL)) {
            int64_t wait_ms = sent + ROUND_MS - now;
            struct timeval tv = {0, (long)(wait_ms > 0 ? wait_ms : 0) * 1000};

            evtimer_add(round_timer, &tv);
        }
        return;
    }
    evtimer_del(round_timer);
    scale(true);
}

/* A job server connects but does not answer (stopped, or cut off by a
 * firewall that drops packets): a libgearman worker waiting for its
 * GRAB_JOB answer would wait for good, so the serving children make
 * fresh workers, which leave it out (gdl_slots_hung) until it answers the
 * polls again; then on_polled tells them to connect to it. */
static void on_hung(int server)
{
    gdl_warn("job server %s:%d does not answer: %d process(es) told to serve the other job server(s) meanwhile",
             gdl_config.servers[server].host, gdl_config.servers[server].port, gdl_procs_reconnect());
}

/* The polls that were awaited have not all answered within ROUND_MS. */
static void on_round(evutil_socket_t fd, short what, void *arg)
{
    scale(true);
}

/* A sentinel saw a job waiting. Other servers' figures that still show
 * jobs waiting or running, or workers, and are REFRESH_MS old are asked
 * for again with this one's. */
static void on_wake(int server)
{
    int64_t now = gdl_now_ms();

    gdl_debug("woken by job server %d", server);
    gdl_observer_poll(server);
    for (int s = 0; s < gdl_config.nservers; s++) {
        const gdl_observed_t *o = &gdl_observed[s];
        bool counts = false;

        for (int k = 0; k < gdl_npools && o->valid && !counts; k++)
            counts = o->queue[k] > 0 || o->running[k] > 0 || o->workers[k] > 0;
        if (s != server && counts && now - o->asked_ms >= REFRESH_MS)
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

/* A child became ready or asks to be replaced (gdl_slot.c): a recycled
 * process is stopped, or its replacement started, now rather than on the
 * next tick. */
static void on_bell(evutil_socket_t fd, short what, void *arg)
{
    char buf[256];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    scale(false);
}

/* ---- what the units above may ask ---- */

int gdl_master_status(int pool, gdl_pool_status_t *st, gdl_proc_info_t *procs, int max)
{
    return gdl_procs_status(pool, st, procs, max);
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

int gdl_master_stop_pids(const int *pids, int n, const char *why)
{
    return gdl_procs_stop_pids(pids, n, why);
}

void gdl_master_stop_pool(int pool, const char *why)
{
    gdl_procs_stop_pool(pool, why);
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

static void on_reload_asked(evutil_socket_t fd, short what, void *arg)
{
    gdl_generations_reload(arg);
}

/* Deferred to the loop, so the console connection asking waits for the
 * answer (GDL_EV_RELOADED) before it can come. */
void gdl_master_reload(const char *why)
{
    struct timeval now = {0, 0};

    if (base)
        event_base_once(base, -1, EV_TIMEOUT, on_reload_asked, (void *)why, &now);
}

/* ---- signals and the shutdown ---- */

/* Every exited child: a loader (gdl_generations.c), a process
 * (gdl_procs.c), or an orphan a job left (we are its subreaper). */
static void reap(void)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (!gdl_generations_exited(pid, status))
            gdl_procs_exited(pid, status);
    if (shutting_down && gdl_procs_count() == 0)
        event_base_loopbreak(base);
    else
        scale(false);
}

static void on_kill_timeout(evutil_socket_t fd, short what, void *arg)
{
    gdl_warn("%d process(es) still running after %d s; sending SIGKILL", gdl_procs_count(),
             gdl_config.shutdown_timeout);
    gdl_procs_stop_all(SIGKILL);
}

/* Once: the units above stop listening, and so do the job servers'
 * connections. */
static void stop_listening(void)
{
    if (!unlistened)
        announce(GDL_EV_SHUTDOWN, true, NULL);
    unlistened = true;
    gdl_sentinel_close();
    gdl_observer_close();
}

static void shutdown_begin(int sig)
{
    struct timeval tv = {gdl_config.shutdown_timeout, 0};

    if (shutting_down) {
        gdl_warn("%s again: sending SIGKILL to %d process(es)", strsignal(sig), gdl_procs_count());
        gdl_procs_stop_all(SIGKILL);
        return;
    }
    shutting_down = true;
    gdl_info("%s: stopping %d process(es) after their current job", strsignal(sig), gdl_procs_count());
    gdl_generations_stop();
    stop_listening();
    evtimer_del(tick_timer);
    gdl_procs_stop_all(SIGTERM);
    evtimer_add(kill_timer, &tv);
    if (gdl_procs_count() == 0)
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
        gdl_generations_reload("SIGHUP");
        break;
    case SIGUSR1:
        /* logrotate: the children and loaders reopen theirs in their handler */
        gdl_log_reopen();
        gdl_info("SIGUSR1: log file reopened");
        gdl_procs_signal(SIGUSR1);
        gdl_generations_signal(SIGUSR1);
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

/* ---- the master's life ---- */

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
    round_timer = evtimer_new(base, on_round, NULL);
    tick_timer = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    bell_event = event_new(base, gdl_slots_bell_fd(), EV_READ | EV_PERSIST, on_bell, NULL);
    gdl_procs_init(base, rescale);
    if (kill_timer == NULL || rescale_timer == NULL || budget_timer == NULL || idle_poll_timer == NULL ||
        round_timer == NULL || tick_timer == NULL || bell_event == NULL || event_add(bell_event, NULL) < 0 ||
        gdl_watchdog_init(base, rescale) < 0 || gdl_generations_init(base, rescale, announce) < 0) {
        gdl_error("cannot create the master's timers");
        return NULL;
    }
    return base;
}

int gdl_master_run(void)
{
    struct timeval tick = {gdl_config.interval > 0 ? gdl_config.interval : 1, 0};
    char title[512];
    int n;

    if (gdl_generations_first() < 0)
        return 1;
    evtimer_add(tick_timer, &tick);
    spawn_tokens = gdl_config.max_spawn_rate;
    tokens_at_ms = gdl_now_ms();

    n = snprintf(title, sizeof(title), "gdlua: master");
    for (int i = 0; i < gdl_config.ndirs && n < (int)sizeof(title); i++)
        n += snprintf(title + n, sizeof(title) - n, " %s", gdl_config.dirs[i]);
    gdl_proctitle_set(title);

    gdl_info("gdlua %s serving %d job(s) on %d server(s), first %s:%d", GDLUA_VERSION, gdl_npools, gdl_config.nservers,
             gdl_config.servers[0].host, gdl_config.servers[0].port);
    gdl_observer_init(base, on_polled, on_hung);
    if (!gdl_config.no_wakeups)
        gdl_sentinel_init(base, on_wake);
    scale(false);

    event_base_dispatch(base);

    gdl_info("all processes stopped; exiting");
    stop_listening();
    announce(GDL_EV_EXIT, true, NULL);
    for (size_t i = 0; i < NSIGNALS; i++)
        event_free(signal_events[i]);
    gdl_watchdog_free();
    gdl_procs_free();
    gdl_generations_free();
    event_free(kill_timer);
    event_free(rescale_timer);
    event_free(budget_timer);
    event_free(idle_poll_timer);
    event_free(round_timer);
    event_free(tick_timer);
    event_free(bell_event);
    event_base_free(base);
    base = NULL;
    return 0;
}
