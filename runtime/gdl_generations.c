/*
 * gdl_generations.c: the generations of the code. Each is loaded, and
 * its processes forked, by a loader of its own (gdl_loader.c). This unit
 * owns the master's two loaders, the serving generation's and the one
 * loading (a reload under way), and the reload's course: the loader's
 * result read from the loop, the swap of the pools' definitions
 * (gdl_pools: the pools the new code lacks stay, emptied, while their
 * processes drain), a reload asked for while one loads (queued, one at
 * most), and a serving loader lost (another loads the code again, with a
 * back-off). It starts the serving generation's processes, since only
 * its loader can fork them.
 *
 * It may not touch the process table but through gdl_procs.c (which it
 * tells how the pools moved), nor the loop's other events: it reports a
 * reload's end and new pools, and asks for a new plan, through the
 * functions gdl_master.c gave gdl_generations_init, and gdl_master.c
 * announces them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "gdlua.h"

#define LOAD_TIMEOUT_S 120 /* a loader that has not loaded the modules by then is killed */

/* gdl_pools[0..gdl_npools) are the serving generation's pools; after
 * them, up to npools_all, pools a reload removed, kept while their
 * processes drain. */
static gdl_loader_t loader = {.fd = -1}, next_loader = {.fd = -1};
static struct event *loader_event, *load_timer;
static struct event_base *base;
static int npools_all;
static bool loader_ended;       /* the loading one's socket has closed */
static bool reload_queued;      /* asked for while one loads: starts once that one ends */
static bool stopped;            /* the master is shutting down */
static int generation;          /* the serving one's */
static int last_gen;            /* the newest generation a loader was started for */
static int64_t loader_retry_ms; /* no new loader for a lost one before then */
static int loader_losses;       /* lost loaders not replaced since */
static void (*rescale)(void);
static void (*report)(int event, bool ok, const char *msg);

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
        gdl_generations_reload("the loader was lost");
    }
}

/* Starts up to n processes of pool from the serving generation; returns
 * how many started. */
int gdl_generations_spawn(int pool, int n, const char *why)
{
    char err[160];
    int started = gdl_procs_spawn(&loader, pool, n, why, err, sizeof(err));

    if (started < 0)
        loader_lost(err, false);
    return started < 0 ? 0 : started;
}

/* A reload has ended. One asked for while it loaded starts now: it was
 * asked for after files may have changed that this one had read already,
 * so the newest files win. Those waiting for an answer (the console's
 * `reload`) get it once no reload is left to run: from the last one,
 * which began after they asked. */
static void reload_done(bool ok, const char *msg)
{
    if (reload_queued && !stopped) {
        reload_queued = false;
        gdl_generations_reload("a reload asked for while the last one loaded");
        return;
    }
    reload_queued = false;
    report(GDL_EV_RELOADED, ok, msg);
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

/* Makes the pools ld loaded the serving ones, matched to the old ones by
 * name. The processes of the old code are replaced by gdl_procs_recycle
 * as the new ones are ready. */
static int install(gdl_loader_t *ld)
{
    int n = ld->npools, nall = n, nold = npools_all, kept = 0, removed = 0;
    int *map = calloc(nold + 1, sizeof(int));
    gdl_pool_t *defs = calloc(n + nold + 1, sizeof(gdl_pool_t));

    if (map == NULL || defs == NULL) {
        free(map);
        free(defs);
        return -1;
    }
    for (int k = 0; k < nold; k++) {
        map[k] = -1;
        for (int j = 0; j < n && map[k] < 0; j++)
            if (strcmp(gdl_pools[k].name, ld->pools[j].name) == 0)
                map[k] = j;
        if (map[k] < 0 && gdl_procs_of_pool(k) > 0)
            map[k] = nall++;
        if (k < gdl_npools && (map[k] < 0 || map[k] >= n))
            removed++;
        kept += map[k] >= 0 && map[k] < n;
    }
    if (gdl_procs_install(map, nold, nall, ld->gen) < 0) {
        free(map);
        free(defs);
        return -1;
    }
    memcpy(defs, ld->pools, sizeof(gdl_pool_t) * n);
    for (int k = 0; k < nold; k++) {
        int j = map[k];

        if (j >= n) {
            defs[j] = gdl_pools[k];
            defs[j].min_processes = defs[j].max_processes = 0;
        } else {
            gdl_pool_free(&gdl_pools[k]); /* gone, or the new definition replaces it */
        }
    }
    free(map);
    free(gdl_pools);
    free(ld->pools);
    ld->pools = NULL;
    ld->npools = 0;
    gdl_pools = defs;
    gdl_npools = n;
    npools_all = nall;
    generation = ld->gen;
    gdl_pools_index();
    gdl_observer_pools_changed();
    gdl_sentinel_pools_changed();
    report(GDL_EV_POOLS, true, NULL);

    gdl_loader_stop(&loader); /* it exits; what it forked serves on */
    loader = *ld;
    *ld = (gdl_loader_t){.fd = -1};
    loader_losses = 0;
    for (int j = n; j < nall; j++)
        gdl_procs_stop_pool(j, "reloaded: its job is gone");
    if (nold > 0)
        gdl_info("generation %d serves %d job(s) (%d new, %d gone); the old code's processes are replaced as the new "
                 "ones are ready",
                 generation, n, n - kept, removed);
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
         * how (gdl_generations_exited); if it is not reaped soon, this
         * error. */
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
    rescale();
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

/* A child has exited: true if it was a loader, the serving one (its
 * processes serve on; another loads the code again), or one loading (the
 * reload failed). */
bool gdl_generations_exited(pid_t pid, int status)
{
    char why[128], msg[200];

    if (pid != loader.pid && pid != next_loader.pid)
        return false;
    gdl_format_exit(status, why, sizeof(why));
    if (pid == next_loader.pid) {
        next_loader.pid = 0;
        snprintf(msg, sizeof(msg), "the loader %s before it had loaded the modules", why);
        load_failed(msg);
        return true;
    }
    if (!stopped)
        loader_lost(why, true);
    loader.pid = 0;
    return true;
}

/* Loads the script directories again in a new loader; the serving
 * generation serves on meanwhile, and for good if the load fails. */
void gdl_generations_reload(const char *why)
{
    struct timeval tv = {LOAD_TIMEOUT_S, 0};

    if (stopped) {
        reload_done(false, "shutting down");
        return;
    }
    if (next_loader.pid > 0) {
        gdl_info("%s: a reload is under way; %s once it ends", why,
                 reload_queued ? "the one queued already loads the newest files" : "another loads the newest files");
        reload_queued = true;
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

/* The first generation, loaded before anything is served: a module that
 * fails is left out (logged), unless none defines a job. */
int gdl_generations_first(void)
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

/* Passes sig on to the loaders (SIGUSR1: reopen the log file). */
void gdl_generations_signal(int sig)
{
    if (loader.pid > 0)
        kill(loader.pid, sig);
    if (next_loader.pid > 0)
        kill(next_loader.pid, sig);
}

/* The shutdown: a reload under way fails, the serving loader exits
 * (what it forked serves on until stopped), and none starts again. */
void gdl_generations_stop(void)
{
    stopped = true;
    if (next_loader.pid > 0)
        load_failed("shutting down");
    gdl_loader_stop(&loader);
}

int gdl_generations_init(struct event_base *loop, void (*on_rescale)(void),
                         void (*on_report)(int event, bool ok, const char *msg))
{
    base = loop;
    rescale = on_rescale;
    report = on_report;
    load_timer = evtimer_new(base, on_load_timeout, NULL);
    return load_timer ? 0 : -1;
}

/* The loop is over: every loader's end closed. */
void gdl_generations_free(void)
{
    gdl_loader_stop(&loader);
    loading_end();
    event_free(load_timer);
    load_timer = NULL;
}
