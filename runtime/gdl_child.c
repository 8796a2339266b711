/*
 * gdl_child.c: a child process: serves one job (a function or a process
 * group: a pool) with a blocking libgearman worker until told to stop.
 *
 * It runs on the Lua state its loader loaded before fork (gdl_loader.c),
 * so it starts with every module in place. Each gearman job goes through
 * gdlua._dispatch (lua/gdlua/init.lua) via gdl_lua_pcall; the outcome
 * lands in this process's shared-memory slot (gdl_slot.c).
 *
 * SIGTERM/SIGINT interrupt the worker with gearman_kill(): a job in
 * progress finishes and is answered, then gearman_worker_work() returns a
 * shutdown code and the child exits 0. A child that asked to be replaced
 * (max_jobs, max_memory) exits by itself once it has taken its last job,
 * and one whose job's answer could not be sent exits 1 (job_over).
 * SIGUSR2 is the master's word that a job server is back: the worker is
 * interrupted the same way (after its job) and a fresh one connects to
 * every server (a sleeping libgearman worker drops a lost connection
 * silently, and would not connect again before a job from another server
 * woke it). SIGXCPU is the master's word that the job ran past its
 * timeout: a Lua hook, set from the handler (which lua_sethook allows),
 * raises an error in the job's Lua code at its next call, return or 1000
 * instructions, so the job fails with a message and the process lives;
 * code stuck in C is
 * SIGKILLed by the master.
 *
 * Retries: a failed job the dispatcher says may run again (its retries
 * attribute, or gdlua.retry) waits (child_wait, sending nothing) and runs
 * again in this process, its slot busy throughout, so the job's timeout
 * bounds every run and wait together. A stop during the wait gives the
 * job back to gearmand unanswered, for another process to run.
 *
 * rate_limit: before each request for a job, the process reserves the
 * pool's next start in a bucket in shared memory (gdl_slot.c) and waits
 * for it, so the pool's processes together start at most rate_limit
 * jobs, evenly spaced; no job is held while waiting.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <libgearman-1.0/gearman.h>

#include "gdlua.h"

#define CHILD_HOOKS_MAX 16

static void (*child_hooks[CHILD_HOOKS_MAX])(void);
static int nchild_hooks;

static volatile sig_atomic_t stopping, timed_out, in_job, reconnect;
static bool job_timed_out;             /* the hook raised the timeout in this job */
static uint64_t taken;                 /* jobs this process has taken */
static uint64_t last_job = UINT64_MAX; /* it takes no job past this many: it asked to be replaced */
static bool unanswered;                /* a job's answer could not be sent: exit */
static gearman_id_t worker_id;
static gdl_pool_t *pool;
static int dispatch_ref = LUA_NOREF;

void gdl_child_hook(void (*fn)(void))
{
    for (int i = 0; i < nchild_hooks; i++)
        if (child_hooks[i] == fn)
            return;
    if (nchild_hooks == CHILD_HOOKS_MAX)
        abort(); /* a fixed set of built-in modules registers these */
    child_hooks[nchild_hooks++] = fn;
}

static double job_timeout_s(void)
{
    return (pool->timeout_ms >= 0 ? pool->timeout_ms : gdl_config.timeout_ms) / 1000.0;
}

static void timeout_hook(lua_State *L, lua_Debug *ar)
{
    lua_sethook(L, NULL, 0, 0);
    if (timed_out) {
        timed_out = 0;
        job_timed_out = true;
        luaL_error(L, "job timed out after %f s", job_timeout_s());
    }
}

static void on_timeout(int sig)
{
    timed_out = 1;
    lua_sethook(gdl_L, timeout_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1000);
}

static void on_reopen_log(int sig)
{
    gdl_log_reopen();
}

static void on_stop(int sig)
{
    int saved = errno;

    stopping = 1;
    /* A running job is left alone: the wake-up would also end libgearman's
     * wait to send a large answer (the same poll sees it), and the answer
     * would be lost. The loop sees `stopping` once the job is answered. */
    if (!in_job)
        gearman_kill(worker_id, GEARMAN_INTERRUPT);
    errno = saved;
}

static void on_reconnect(int sig)
{
    int saved = errno;

    reconnect = 1;
    gearman_kill(worker_id, GEARMAN_INTERRUPT);
    errno = saved;
}

static void child_signals(void)
{
    struct sigaction sa;
    sigset_t all;

    static const int ignored[] = {SIGHUP, SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF, SIGPOLL, SIGXFSZ, SIGPWR};

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    /* Signals sent to the whole process group must not kill a child
     * mid-job: the master decides (SIGTERM stops it after its job). */
    sa.sa_handler = SIG_IGN;
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        sigaction(ignored[i], &sa, NULL);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_reopen_log;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_reconnect;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = on_timeout;
    sigaction(SIGXCPU, &sa, NULL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

/* The job's return value as bytes: strings as they are, numbers as text
 * (integers exactly), nil as empty, booleans as "true"/"false". */
static const char *result_bytes(lua_State *L, int idx, size_t *len, char *numbuf, size_t numlen)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        return lua_tolstring(L, idx, len);
    case LUA_TNUMBER:
        *len = (size_t)gdl_format_number(lua_tonumber(L, idx), numbuf, numlen);
        return numbuf;
    case LUA_TNIL:
    case LUA_TNONE:
        *len = 0;
        return "";
    case LUA_TBOOLEAN:
        *len = lua_toboolean(L, idx) ? 4 : 5;
        return lua_toboolean(L, idx) ? "true" : "false";
    }
    return NULL;
}

/* RSS in MiB, from /proc/self/statm (pages). */
static long rss_mib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

/* After a job: past max_jobs, this process asks to be replaced (its
 * slot says "recycle") and takes at most one more job, while its
 * replacement starts; the master stops it once the replacement is ready,
 * and it exits after that extra job anyway. Past max_memory, or out of
 * memory, it takes none: its next job would start over the limit. */
static void check_recycle(int64_t now_ms, bool out_of_memory)
{
    int max_jobs = pool->max_jobs >= 0 ? pool->max_jobs : gdl_config.max_jobs;
    int max_memory = pool->max_memory >= 0 ? pool->max_memory : gdl_config.max_memory;
    uint64_t last = UINT64_MAX;
    long rss;

    if (out_of_memory) {
        gdl_warn("%s: a job ran out of memory; to be replaced", pool->name);
        last = taken;
    } else if (max_memory > 0 && (rss = rss_mib()) > max_memory) {
        gdl_info("%s: RSS %ld MiB is over max_memory %d MiB; to be replaced", pool->name, rss, max_memory);
        last = taken;
    } else if (max_jobs > 0 && taken >= (uint64_t)max_jobs) {
        if (last_job == UINT64_MAX)
            gdl_info("%s: served %d jobs (max_jobs); to be replaced", pool->name, max_jobs);
        last = taken + 1;
    }
    if (last < last_job)
        last_job = last;
    if (last_job != UINT64_MAX)
        gdl_slot_recycle(now_ms);
}

/* The failure as a warning, then WORK_FAIL: gearmand 1.1.20 ends a job
 * on WORK_EXCEPTION but tells only clients that asked for exceptions;
 * the rest would wait for ever. Whether both were sent. */
static bool send_failure(gearman_job_st *job, const char *msg)
{
    return !gearman_failed(gearman_job_send_warning(job, msg, strlen(msg))) &&
           !gearman_failed(gearman_job_send_fail(job));
}

/* The job is over. Its handle leaves the slot only once its answer is
 * sent: one that could not be sent (the connection lost, or closed by the
 * job itself) is handed by gearmand to another process, so this one
 * exits with the handle in its slot and the master counts the attempt;
 * serving on, it could take the same job back and lose its answer again,
 * for ever. */
static int64_t job_over(gearman_job_st *job, bool sent, int outcome, const char *msg, int64_t start_us)
{
    int64_t end_us = gdl_now_us();

    if (sent) {
        gdl_slot_job_end(outcome, msg, (uint64_t)(end_us - start_us), end_us / 1000);
        return end_us / 1000;
    }
    gdl_error("%s: job %s: its answer could not be sent (%s); exiting, so that the job counts as an attempt",
              gearman_job_function_name(job), gearman_job_handle(job), gearman_job_error(job));
    gdl_slot_job_unanswered(end_us / 1000);
    unanswered = true;
    return end_us / 1000;
}

/* A point in [0, 1) for a retry's jitter: xorshift64*, seeded per
 * process (the children fork from one state: libc's rand would draw the
 * same sequence in each). */
static double jitter(void)
{
    static uint64_t x;

    if (x == 0)
        x = ((uint64_t)gdl_now_us() << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) / (double)(1ULL << 53);
}

enum { WAIT_DONE, WAIT_TIMED_OUT, WAIT_STOPPING };

/* Waits until until_ms (gdl_now_ms), sending nothing; cut short by a
 * stop, and in a job by its timeout (SIGXCPU: the whole job, every run
 * and wait, is bounded by it). The signals are blocked but for ppoll's
 * wait, so one that comes between the check and the wait ends the wait. */
static int child_wait(int64_t until_ms, bool job)
{
    sigset_t block, old;
    int r = WAIT_DONE;
    int64_t left;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGQUIT);
    sigaddset(&block, SIGXCPU);
    sigprocmask(SIG_BLOCK, &block, &old);
    for (;;) {
        struct timespec ts;

        if (job && timed_out) {
            timed_out = 0;
            lua_sethook(gdl_L, NULL, 0, 0); /* the handler's hook: the job is failed here instead */
            r = WAIT_TIMED_OUT;
            break;
        }
        if (stopping) {
            r = WAIT_STOPPING;
            break;
        }
        if ((left = until_ms - gdl_now_ms()) <= 0)
            break;
        ts = (struct timespec){left / 1000, (long)(left % 1000) * 1000000};
        ppoll(NULL, 0, &ts, &old);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
}

/* The pool's rate_limit, before asking gearmand for the next job (a
 * process must not hold a job it may not start yet): the next start of
 * the pool's shared bucket is reserved, and waited for. A reservation not
 * used by a job (gearman_worker_work returned without one) is kept for
 * the next call. */
static int bucket = -1;
static bool reserved;

static void rate_wait(void)
{
    int64_t now_us, start_us;

    if (pool->rate_limit <= 0 || reserved)
        return;
    if (bucket < 0 && (bucket = gdl_slot_bucket(pool->name)) < 0) {
        gdl_warn("%s: no room for its rate_limit (%d rate-limited pools at most): not limited", pool->name,
                 GDL_BUCKETS_MAX);
        pool->rate_limit = 0;
        return;
    }
    reserved = true;
    now_us = gdl_now_us();
    start_us = gdl_slot_bucket_take(bucket, (int64_t)(1e6 / pool->rate_limit + 0.5), now_us);
    if (start_us > now_us) {
        gdl_slot_rate_waited();
        child_wait(gdl_now_ms() + (start_us - now_us + 999) / 1000, false);
    }
}

static gearman_return_t run_job(gearman_job_st *job, void *context)
{
    lua_State *L = gdl_L;
    int top = lua_gettop(L);
    const char *handle = gearman_job_handle(job), *out, *msg = NULL;
    char numbuf[64], why[64];
    uint32_t deaths;
    int max_attempts = pool->max_attempts >= 0 ? pool->max_attempts : gdl_config.max_attempts;
    int ended, outcome;
    bool out_of_memory = false, sent;
    size_t len = 0;
    int64_t start_us = gdl_now_us(), end_ms; /* one clock read each side */

    in_job = 1;
    taken++;
    gdl_log_context(pool->name, handle);
    gdl_debug("%s: job %s", gearman_job_function_name(job), handle);
    gdl_slot_job_begin(handle, gearman_job_unique(job), start_us / 1000);
    timed_out = 0; /* a late word about the previous job */
    job_timed_out = false;
    lua_sethook(L, NULL, 0, 0);
    deaths = gdl_attempts_of(handle, gearman_job_unique(job), &ended, why, sizeof(why));
    if (ended || (max_attempts > 0 && deaths >= (uint32_t)max_attempts)) {
        /* A poison job, or one the master ended (its timeout, max_memory):
         * gearmand hands it to each next process. */
        if (ended)
            msg = lua_pushfstring(L, "%s; its process was killed, not run again", why);
        else
            msg = lua_pushfstring(L, "job killed its process %d times (last: %s); not run again", (int)deaths, why);
        gdl_error("%s: job %s: %s", gearman_job_function_name(job), handle, msg);
        outcome = ended ? ended : GDL_JOB_POISONED;
        end_ms = job_over(job, send_failure(job, msg), outcome, msg, start_us);
        lua_settop(L, top);
    } else {
        const char *fname = gearman_job_function_name(job);
        bool ok = false, returned = false;
        int run = 1;

        gdl_job_push(L, job); /* top + 1: the same object for every run, invalidated after */
        for (;;) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, dispatch_ref);
            lua_pushvalue(L, top + 1);
            lua_pushstring(L, fname);
            lua_pushlstring(L, gearman_job_workload(job), gearman_job_workload_size(job));
            lua_pushinteger(L, run);
            if (gdl_lua_pcall(L, 4, 6) != 0) {
                msg = lua_tostring(L, -1);
                gdl_error("%s: job %s: %s", fname, handle, msg ? msg : "?");
            } else if (!lua_toboolean(L, top + 2)) {
                msg = lua_tostring(L, top + 3);
                out_of_memory = lua_toboolean(L, top + 5);
                if (!out_of_memory && !job_timed_out && lua_isnumber(L, top + 6)) {
                    int64_t ms = (int64_t)(lua_tonumber(L, top + 6) * 1000 + 0.5);
                    int waited;

                    if (!lua_toboolean(L, top + 7))
                        ms = gdl_retry_delay_ms(run, ms, jitter());
                    gdl_warn("%s: job %s failed (run %d): %s; running it again in %lld ms", fname, handle, run,
                             msg ? msg : "?", (long long)ms);
                    waited = child_wait(gdl_now_ms() + ms, true);
                    if (waited == WAIT_DONE) {
                        gdl_slot_job_retry();
                        lua_settop(L, top + 1);
                        run++;
                        continue;
                    }
                    if (waited == WAIT_TIMED_OUT) {
                        job_timed_out = true;
                        msg = lua_pushfstring(L, "job timed out after %f s, waiting to run again after: %s",
                                              job_timeout_s(), msg ? msg : "?");
                        gdl_error("%s: job %s: %s", fname, handle, msg);
                    } else {
                        returned = true;
                    }
                } else {
                    gdl_error("%s: job %s failed: %s", fname, handle, lua_tostring(L, top + 4));
                }
            } else if ((out = result_bytes(L, top + 3, &len, numbuf, sizeof(numbuf))) == NULL) {
                msg = lua_pushfstring(
                    L, "job returned a %s; return a string, a number or nil (or use an encode attribute)",
                    luaL_typename(L, top + 3));
                gdl_error("%s: job %s: %s", fname, handle, msg);
            } else {
                ok = true;
            }
            break;
        }
        if (returned) {
            /* Stopping while the job waits to run again: gearmand gets it
             * back unanswered (GEARMAN_ERROR closes the connection) and
             * hands it to another process, as after a reload. */
            gdl_info("%s: job %s: the process is stopping; giving the job back to the job server after %d run(s)",
                     fname, handle, run);
            end_ms = gdl_now_ms();
            gdl_slot_job_returned(end_ms);
            gdl_job_invalidate(L, top + 1);
            lua_settop(L, top);
            gdl_log_context(pool->name, NULL);
            in_job = 0;
            return GEARMAN_ERROR;
        }
        if (ok) {
            outcome = GDL_JOB_DONE;
            sent = !gearman_failed(gearman_job_send_complete(job, out, len));
        } else {
            if (msg == NULL || *msg == '\0')
                msg = "job failed";
            outcome = job_timed_out ? GDL_JOB_TIMEOUT : GDL_JOB_FAILED;
            sent = send_failure(job, msg);
        }
        end_ms = job_over(job, sent, outcome, msg, start_us);
        gdl_job_invalidate(L, top + 1);
        lua_settop(L, top);
    }
    gdl_log_context(pool->name, NULL);
    in_job = 0;
    if (unanswered)
        return GEARMAN_ERROR; /* libgearman drops the connection: gearmand hands the job out again */
    check_recycle(end_ms, out_of_memory);
    return outcome == GDL_JOB_DONE ? GEARMAN_SUCCESS : GEARMAN_FATAL;
}

/* The client id gearmand lists in "workers": gdlua, host, master pid
 * and pid, so operators and other gdlua instances can tell which
 * instance a worker belongs to (gdl_admin.c counts peers by it). */
static void set_identifier(gearman_worker_st *w)
{
    static char id[160];

    if (id[0] == '\0')
        snprintf(id, sizeof(id), "%s:%d", gdl_instance, (int)getpid());
    gearman_worker_set_identifier(w, id, strlen(id));
}

/* Job servers whose names did not resolve when the worker was built:
 * left out of it, tried again (unresolved_now_resolve) after a job, at
 * most once a back-off period, as libgearman tries a server that is
 * down when its worker next cycles. */
static bool unresolved[GDL_SERVERS_MAX];
static int nunresolved;

/* A worker on every job server whose name resolves. One that does not (a
 * typo, a name service down for a while) is left out, and the first
 * cause is put in why: exiting instead would make a crash loop of a DNS
 * hiccup. NULL when no server resolved: the caller backs off and tries
 * again, as for servers that are down. */
static gearman_worker_st *worker_new(char *why, size_t whylen)
{
    gearman_worker_st *w = gearman_worker_create(NULL);
    char name[300], cause[256];
    int added = 0;

    if (w == NULL) {
        gdl_error("%s: cannot create a gearman worker", pool->name);
        _exit(1);
    }
    gearman_worker_add_options(w, GEARMAN_WORKER_GRAB_UNIQ);
    nunresolved = 0;
    for (int i = 0; i < gdl_config.nservers; i++) {
        const gdl_server_t *s = &gdl_config.servers[i];
        gearman_return_t rc = GEARMAN_GETADDRINFO;

        /* libgearman resolves when a server is added, and fails the same
         * way for a name that does not resolve, but in words of its own;
         * GEARMAN_TIMEOUT is its word for a name service that did not
         * answer. Any other failure (memory) ends the process. */
        if (gdl_server_resolve(s, NULL, cause, sizeof(cause)) == 0 &&
            gearman_failed(rc = gearman_worker_add_server(w, s->host, (in_port_t)s->port))) {
            if (rc != GEARMAN_GETADDRINFO && rc != GEARMAN_TIMEOUT) {
                gdl_error("%s: cannot add job server %s:%d: %s", pool->name, s->host, s->port, gearman_strerror(rc));
                _exit(1);
            }
            snprintf(cause, sizeof(cause), "%s", gearman_worker_error(w));
        }
        unresolved[i] = gearman_failed(rc);
        if (!unresolved[i])
            added++;
        else if (nunresolved++ == 0)
            snprintf(why, whylen, "job server %s: %s", gdl_server_name(s, name, sizeof(name)), cause);
    }
    if (added == 0) {
        gearman_worker_free(w);
        return NULL;
    }
    for (int i = 0; i < pool->nfunctions; i++) {
        const char *f = pool->functions[i];
        /* Timeout 0: CAN_DO_TIMEOUT is unreliable in gearmand 1.1.20. */
        if (gearman_failed(
                gearman_worker_define_function(w, f, strlen(f), gearman_function_create(run_job), 0, NULL))) {
            gdl_error("%s: cannot register %s: %s", pool->name, f, gearman_worker_error(w));
            _exit(1);
        }
    }
    set_identifier(w);
    return w;
}

/* Whether every server worker_new left out resolves now. */
static bool unresolved_now_resolve(void)
{
    char why[256];

    for (int i = 0; i < gdl_config.nservers; i++)
        if (unresolved[i] && gdl_server_resolve(&gdl_config.servers[i], NULL, why, sizeof(why)) < 0)
            return false;
    return true;
}

/* gdlua._dispatch, looked up once: the loader calls this once it has
 * loaded the modules, so the processes it forks start with it at hand (one
 * whose loader could not tries again itself). 0, or -1 with the error on
 * L's stack. */
int gdl_child_prepare(lua_State *L)
{
    if (gdl_lua_require(L, "gdlua") != 0)
        return -1;
    lua_getfield(L, -1, "_dispatch");
    dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return 0;
}

void gdl_child_run(int pool_index, int slot)
{
    gearman_worker_st *w;
    int failures = 0;
    int64_t resolve_again_ms = 0;   /* when to look the left-out servers' names up again */
    bool warned_unresolved = false; /* that this worker left a server out */
    char why[512] = "";
    lua_State *L = gdl_L;
    sigset_t stop_signals, old;

    pool = &gdl_pools[pool_index];
    gdl_self_pool = pool_index;
    gdl_log_context(pool->name, NULL);
    gdl_slot_attach(slot, pool->name);
    /* A job's print() and io.write reach gdlua's stdout a line at a time
     * (and the rest before the process exits). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    gdl_proctitle_set(pool->title);
    gdl_is_master = false;
    for (int i = 0; i < nchild_hooks; i++)
        child_hooks[i]();

    if (dispatch_ref == LUA_NOREF && gdl_child_prepare(L) < 0) {
        gdl_error("%s: cannot load the gdlua module: %s", pool->name, lua_tostring(L, -1));
        _exit(1);
    }

    w = worker_new(why, sizeof(why));
    worker_id = w ? gearman_worker_id(w) : gearman_id_initialize();
    child_signals();
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGUSR2);
    if (getppid() != gdl_master_pid)
        stopping = 1; /* the master died before PR_SET_PDEATHSIG took hold */
    gdl_slot_idle(gdl_now_ms());
    gdl_debug("%s: ready", pool->name);

    while (!stopping && !unanswered && taken < last_job) {
        uint64_t before = taken;
        gearman_return_t rc;
        int delay;

        if (w && nunresolved && !warned_unresolved) {
            gdl_warn("%s: %s; serving the other job server(s) meanwhile", pool->name, why);
            warned_unresolved = true;
        }
        rate_wait();
        if (stopping)
            break;
        /* No worker: no server's name resolved (why says which, and why). */
        rc = w ? gearman_worker_work(w) : GEARMAN_GETADDRINFO;
        if (taken != before)
            reserved = false;

        /* WORK_FAIL: a job failed and was answered; the worker is fine. */
        if (rc == GEARMAN_SUCCESS || rc == GEARMAN_WORK_FAIL) {
            if (failures)
                gdl_info("%s: connected to the job server again", pool->name);
            failures = 0;
            if (!nunresolved || gdl_now_ms() < resolve_again_ms)
                continue;
            resolve_again_ms = gdl_now_ms() + 250; /* as often as a server that is down */
            if (!unresolved_now_resolve())
                continue;
            gdl_info("%s: every job server's name resolves again", pool->name);
            warned_unresolved = false;
        } else {
            if (stopping || unanswered || ((rc == GEARMAN_SHUTDOWN || rc == GEARMAN_SHUTDOWN_GRACEFUL) && !reconnect))
                break;
            if (rc == GEARMAN_IO_WAIT || rc == GEARMAN_NO_JOBS || rc == GEARMAN_TIMEOUT)
                continue;
            if (rc == GEARMAN_SHUTDOWN || rc == GEARMAN_SHUTDOWN_GRACEFUL) {
                gdl_debug("%s: connecting to the job servers again", pool->name);
            } else {
                /* Down or lost job server, or none whose name resolves:
                 * libgearman fails at once on every call, so the back-off
                 * is ours. */
                delay = gdl_backoff_ms(failures + 1, 100, 250);
                if (failures == 0 || failures % 20 == 0)
                    gdl_warn("%s: %s; retrying every %d ms or less", pool->name, w ? gearman_worker_error(w) : why,
                             delay);
                failures++;
                gdl_sleep_ms(delay);
            }
        }
        /* A fresh worker: libgearman 1.1.20 forgets the client id on
         * reconnect, and setting it again drops the CAN_DO registrations.
         * Signals wait meanwhile, so on_stop never sees a freed worker. */
        sigprocmask(SIG_BLOCK, &stop_signals, &old);
        reconnect = 0; /* this fresh worker connects to every server */
        if (w)
            gearman_worker_free(w);
        w = worker_new(why, sizeof(why));
        worker_id = w ? gearman_worker_id(w) : gearman_id_initialize();
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    gdl_slot_exit();
    if (w)
        gearman_worker_free(w);
    fflush(NULL);
    _exit(unanswered ? 1 : 0);
}
