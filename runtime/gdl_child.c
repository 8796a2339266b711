/*
 * gdl_child.c: a child process: serves one job (a function or a process
 * group: a pool) with a blocking libgearman worker until told to stop,
 * one job at a time, or, for a pool whose concurrency is above 1, up to
 * that many at once on its event loop (the section "concurrency > 1"
 * below says how; the rest of this comment is the one-at-a-time loop's).
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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <libgearman-1.0/gearman.h>

#include "gdlua.h"

#define CHILD_HOOKS_MAX 16

static void (*child_hooks[CHILD_HOOKS_MAX])(void);
static int nchild_hooks;

static volatile sig_atomic_t stopping, timed_out, in_job, reconnect;
static volatile sig_atomic_t in_grab;  /* a concurrent process: blocked in its worker's grab */
static volatile sig_atomic_t in_loop;  /* a concurrent process: its loop takes the jobs (cc_run) */
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

/* The concurrent loop's wake-up (cc.wake): a byte, never blocking. */
static void wake_loop(void);

static void on_stop(int sig)
{
    int saved = errno;

    stopping = 1;
    if (in_loop) {
        wake_loop(); /* the jobs in hand finish, then the process exits */
        errno = saved;
        return;
    }
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
    if (in_loop) {
        wake_loop();
        if (in_grab) /* a server that never answers would hold it for good */
            gearman_kill(worker_id, GEARMAN_INTERRUPT);
    } else
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

static int64_t rate_start_us;

/* The reservation for the next job: when it may start (gdl_now_us), or
 * 0 when it may at once. */
static int64_t rate_reserve(void)
{
    int64_t now_us;

    if (pool->rate_limit <= 0)
        return 0;
    if (reserved)
        return rate_start_us > gdl_now_us() ? rate_start_us : 0;
    if (bucket < 0 && (bucket = gdl_slot_bucket(pool->name)) < 0) {
        gdl_warn("%s: no room for its rate_limit (%d rate-limited pools at most): not limited", pool->name,
                 GDL_BUCKETS_MAX);
        pool->rate_limit = 0;
        return 0;
    }
    reserved = true;
    now_us = gdl_now_us();
    rate_start_us = gdl_slot_bucket_take(bucket, (int64_t)(1e6 / pool->rate_limit + 0.5), now_us);
    if (rate_start_us <= now_us)
        return 0;
    gdl_slot_rate_waited();
    return rate_start_us;
}

static void rate_wait(void)
{
    int64_t start_us = rate_reserve();

    if (start_us > 0)
        child_wait(gdl_now_ms() + (start_us - gdl_now_us() + 999) / 1000, false);
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
 * hiccup. One the master marks as not answering (gdl_slots_hung) is left
 * out too, until the master's SIGUSR2 says it answers again. NULL when no
 * server is left: the caller backs off and tries again, as for servers
 * that are down. */
static gearman_worker_st *worker_new(char *why, size_t whylen)
{
    gearman_worker_st *w = gearman_worker_create(NULL);
    char name[300], cause[256];
    int added = 0, hung = 0;

    if (w == NULL) {
        gdl_error("%s: cannot create a gearman worker", pool->name);
        _exit(1);
    }
    gearman_worker_add_options(w, GEARMAN_WORKER_GRAB_UNIQ);
    nunresolved = 0;
    for (int i = 0; i < gdl_config.nservers; i++) {
        const gdl_server_t *s = &gdl_config.servers[i];
        gearman_return_t rc = GEARMAN_GETADDRINFO;

        unresolved[i] = false;
        if (gdl_slots_hung(i)) { /* the master says when it answers again */
            if (hung++ == 0 && nunresolved == 0)
                snprintf(why, whylen, "job server %s does not answer the master's polls",
                         gdl_server_name(s, name, sizeof(name)));
            continue;
        }
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

/* ---- concurrency > 1: jobs as tasks on the process's loop ---------------
 *
 * A process of a pool with concurrency N holds up to N jobs at once, each
 * running gdlua._dispatch in a task of gdl_sched.c, so that a job waiting
 * for I/O (gdlua.http, gdlua.tcp, gdlua.sleep) lets the others run.
 *
 * It is built on libgearman's worker in its blocking mode, without
 * gearman_worker_work (whose job lives only for its callback):
 * gearman_worker_grab_job takes one job (one GRAB_JOB round trip per job
 * server; the job stays libgearman's object until gearman_job_free), and
 * gearman_job_send_complete, _fail, _warning, _data and _status answer it
 * when its task ends (they wait only while the socket is full).
 * GEARMAN_WORKER_NON_BLOCKING is not used: 1.1.20's grab_job leaves its
 * state machine on a connection it has moved past after a NO_JOB that
 * followed an IO_WAIT, and the next call dereferences a NULL connection.
 * grab_job called by itself never sends PRE_SLEEP (only
 * gearman_worker_work's call does, then blocks in poll), and libgearman
 * has no call that returns a connection's descriptor. So, once every job
 * server has said NO_JOB, this unit writes the 12-byte PRE_SLEEP itself
 * on each of the worker's connections (libgearman's send buffer is empty
 * then: a blocking call returns flushed) and watches them with the
 * loop: the NOOP gearmand sends when a job comes makes one readable, and
 * grab_job reads it. The descriptors are the sockets that appeared
 * during the worker's first grab_job, when libgearman connects (nothing
 * else runs meanwhile).
 *
 * Per job: its timeout is a timer of the loop that cancels its task (the
 * client gets the timeout failure; the others go on); an error fails it
 * alone; a retry waits on a timer, its task gone. Its handle is in the
 * held table (gdl_slot.c) from grab to answer, so a crash counts a death
 * for each. A worker that fails (a job server lost) is retired: its jobs
 * finish on it, and a fresh worker takes new ones. SIGTERM, recycling
 * and a lost answer stop the grabs; the jobs in hand finish, then the
 * process exits.
 */

typedef struct cworker {
    gearman_worker_st *w;
    int fds[GDL_SERVERS_MAX];
    struct event *ev[GDL_SERVERS_MAX];
    int nfds;
    int jobs;             /* jobs in hand taken from it */
    bool connected;       /* its first grab ran: fds are known */
    bool dirty;           /* a grab returned a job: a later NO_JOBS leaves libgearman's state unusable */
    int *before, nbefore; /* the sockets open before it was made */
    struct cworker *next; /* retired ones */
} cworker_t;

typedef struct held_job {
    gdl_sched_task_t task;
    gearman_job_st *job;
    cworker_t *from;
    int entry;   /* its entry in the held table */
    int run;     /* 1: the first */
    int job_ref; /* the job object (the same one for every run) */
    int64_t start_us;
    struct event *timeout; /* NULL: none */
    struct event *retry;   /* while it waits to run again */
    char *retry_msg;       /* why it is run again */
    int timeout_ms;        /* its own function's; 0: none */
    struct held_job *prev, *next;
} held_job_t;

static struct {
    struct event_base *base;
    cworker_t *cur;     /* the worker that takes jobs; NULL: none now */
    cworker_t *retired; /* workers whose jobs are finishing */
    held_job_t *jobs;
    int nheld, cap;
    bool kick;                     /* try to take jobs (or to stop) */
    bool sleeping;                 /* PRE_SLEEP sent: waiting for a NOOP */
    int failures;                  /* grabs failed in a row */
    int wake[2];                   /* written by the signal handlers */
    int *timeout_ms;               /* per function of the pool (pool->functions' order): its jobs' timeout; 0: none */
    struct event *wake_ev, *later; /* later: a back-off or the rate limit */
    bool later_armed;
} cc = {.wake = {-1, -1}};

static void wake_loop(void)
{
    if (write(cc.wake[1], "", 1) < 0) {
        /* full: the loop is woken already */
    }
}

static void cc_kick(void)
{
    cc.kick = true;
}

static void on_cc_later(evutil_socket_t fd, short what, void *arg)
{
    cc.later_armed = false;
    cc_kick();
}

static void cc_later_us(int64_t us)
{
    struct timeval tv;

    if (us < 0)
        us = 0; /* the moment passed meanwhile */
    tv = (struct timeval){us / 1000000, us % 1000000};
    if (cc.later_armed)
        return;
    cc.later_armed = true;
    evtimer_add(cc.later, &tv);
}

static void on_cc_wake(evutil_socket_t fd, short what, void *arg)
{
    char buf[64];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    cc_kick();
}

static void on_cc_readable(evutil_socket_t fd, short what, void *arg)
{
    cworker_t *cw = arg;

    for (int i = 0; i < cw->nfds; i++)
        event_del(cw->ev[i]);
    cc.sleeping = false;
    cc_kick();
}

static cworker_t *cworker_new(void)
{
    char why[512] = "";
    cworker_t *cw = calloc(1, sizeof(*cw));

    /* libgearman may connect as soon as the worker is made (its client
     * id is sent then) or on its first grab. */
    if (cw != NULL)
        cw->nbefore = gdl_fds_open(&cw->before);
    if (cw == NULL || (cw->w = worker_new(why, sizeof(why))) == NULL) {
        if (why[0])
            gdl_warn("%s: %s", pool->name, why);
        if (cw)
            free(cw->before);
        free(cw);
        return NULL;
    }
    worker_id = gearman_worker_id(cw->w);
    return cw;
}

static void cworker_free(cworker_t *cw)
{
    for (int i = 0; i < cw->nfds; i++)
        event_free(cw->ev[i]);
    gearman_worker_free(cw->w);
    free(cw->before);
    free(cw);
}

/* The worker takes no more jobs; it goes once its jobs have. */
static void cworker_retire(void)
{
    cworker_t *cw = cc.cur;

    if (cw == NULL)
        return;
    cc.cur = NULL;
    cc.sleeping = false;
    for (int i = 0; i < cw->nfds; i++)
        event_del(cw->ev[i]);
    if (cw->jobs == 0) {
        cworker_free(cw);
        return;
    }
    cw->next = cc.retired;
    cc.retired = cw;
}

static void cworker_done(cworker_t *cw)
{
    if (--cw->jobs > 0 || cw == cc.cur)
        return;
    for (cworker_t **p = &cc.retired; *p; p = &(*p)->next)
        if (*p == cw) {
            *p = cw->next;
            cworker_free(cw);
            return;
        }
}

/* Its first grab: the descriptors libgearman connected meanwhile. */
static gearman_job_st *cworker_first_grab(cworker_t *cw, gearman_return_t *rc)
{
    gearman_job_st *job = gearman_worker_grab_job(cw->w, NULL, rc);
    int fds[GDL_SERVERS_MAX], n = gdl_fds_new_sockets(cw->before, cw->nbefore, fds, GDL_SERVERS_MAX);

    cw->connected = true;
    for (int i = 0; i < n; i++)
        if ((cw->ev[cw->nfds] = event_new(cc.base, fds[i], EV_READ, on_cc_readable, cw)) != NULL)
            cw->fds[cw->nfds++] = fds[i];
    free(cw->before);
    cw->before = NULL;
    return job;
}

/* Every job server said NO_JOB: PRE_SLEEP on each connection, then the
 * NOOP that says a job came is awaited. false when it could not be sent. */
static bool cworker_sleep(cworker_t *cw)
{
    static const unsigned char pre_sleep[12] = {0, 'R', 'E', 'Q', 0, 0, 0, 4, 0, 0, 0, 0};

    if (cw->nfds == 0)
        return false;
    for (int i = 0; i < cw->nfds; i++)
        if (send(cw->fds[i], pre_sleep, sizeof(pre_sleep), MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(pre_sleep))
            return false;
    for (int i = 0; i < cw->nfds; i++)
        event_add(cw->ev[i], NULL);
    cc.sleeping = true;
    return true;
}

static void held_start(held_job_t *h);

static void held_unlink(held_job_t *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        cc.jobs = h->next;
    if (h->next)
        h->next->prev = h->prev;
    cc.nheld--;
}

/* The job is answered (or could not be): everything it held goes. */
static void held_end(held_job_t *h, bool ok, const char *out, size_t len, int outcome, const char *msg,
                     bool out_of_memory)
{
    lua_State *L = gdl_L;
    const char *fname = gearman_job_function_name(h->job), *handle = gearman_job_handle(h->job);
    bool sent;
    int64_t end_us;

    gdl_log_context(pool->name, handle);
    sent = ok ? !gearman_failed(gearman_job_send_complete(h->job, out, len)) : send_failure(h->job, msg);
    end_us = gdl_now_us();
    if (sent) {
        gdl_slot_unhold(h->entry, outcome, msg, (uint64_t)(end_us - h->start_us), end_us / 1000);
    } else {
        /* Its entry stays: the process exits once the others are over,
         * and the master counts the attempt (job_over's reasons). */
        gdl_error("%s: job %s: its answer could not be sent (%s); exiting once the other jobs are over, so that "
                  "the job counts as an attempt",
                  fname, handle, gearman_job_error(h->job));
        unanswered = true;
    }
    if (h->timeout)
        event_free(h->timeout);
    if (h->retry)
        event_free(h->retry);
    free(h->retry_msg);
    if (h->job_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, h->job_ref);
        gdl_job_invalidate(L, -1);
        lua_pop(L, 1);
        luaL_unref(L, LUA_REGISTRYINDEX, h->job_ref);
    }
    gearman_job_free(h->job);
    cworker_done(h->from);
    held_unlink(h);
    free(h);
    gdl_log_context(pool->name, NULL);
    check_recycle(end_us / 1000, out_of_memory);
    cc_kick();
}

static void held_fail(held_job_t *h, int outcome, const char *msg)
{
    gdl_error("%s: job %s: %s", gearman_job_function_name(h->job), gearman_job_handle(h->job), msg);
    held_end(h, false, NULL, 0, outcome, msg, false);
}

static void on_held_resume(gdl_sched_task_t *t)
{
    held_job_t *h = t->data;

    gdl_log_context(pool->name, gearman_job_handle(h->job));
}

static void on_held_retry(evutil_socket_t fd, short what, void *arg)
{
    held_job_t *h = arg;

    event_free(h->retry);
    h->retry = NULL;
    free(h->retry_msg);
    h->retry_msg = NULL;
    gdl_slot_job_retry();
    h->run++;
    held_start(h);
}

/* The task ran to its end: the dispatcher's results are on co (ok,
 * result or message, traceback, out of memory, retry delay, exact). */
static void on_held_end(gdl_sched_task_t *t, lua_State *co, int status)
{
    held_job_t *h = t->data;
    const char *fname = gearman_job_function_name(h->job), *handle = gearman_job_handle(h->job);
    char numbuf[64];
    const char *out, *msg;
    size_t len = 0;

    gdl_log_context(pool->name, handle);
    if (status == GDL_SCHED_CANCELLED) {
        char text[128];

        snprintf(text, sizeof(text), "job timed out after %g s", h->timeout_ms / 1000.0);
        held_fail(h, GDL_JOB_TIMEOUT, text);
        return;
    }
    if (status == GDL_SCHED_ERROR) {
        held_fail(h, GDL_JOB_FAILED, lua_tostring(co, -1) ? lua_tostring(co, -1) : "job failed");
        return;
    }
    lua_settop(co, 6);
    if (lua_toboolean(co, 1)) {
        if ((out = result_bytes(co, 2, &len, numbuf, sizeof(numbuf))) == NULL) {
            msg =
                lua_pushfstring(co, "job returned a %s; return a string, a number or nil (or use an encode attribute)",
                                luaL_typename(co, 2));
            held_fail(h, GDL_JOB_FAILED, msg);
            return;
        }
        held_end(h, true, out, len, GDL_JOB_DONE, NULL, false);
        return;
    }
    msg = lua_tostring(co, 2);
    if (msg == NULL || *msg == '\0')
        msg = "job failed";
    if (!lua_toboolean(co, 4) && lua_isnumber(co, 5) && (h->retry = evtimer_new(cc.base, on_held_retry, h)) != NULL) {
        int64_t ms = (int64_t)(lua_tonumber(co, 5) * 1000 + 0.5);
        struct timeval tv;

        if (!lua_toboolean(co, 6))
            ms = gdl_retry_delay_ms(h->run, ms, jitter());
        gdl_warn("%s: job %s failed (run %d): %s; running it again in %lld ms", fname, handle, h->run, msg,
                 (long long)ms);
        h->retry_msg = strdup(msg);
        /* Stopping: it runs again at once, so that it ends (handing it
         * back would close the connection every other job's answer goes by). */
        if (stopping)
            ms = 0;
        tv = (struct timeval){ms / 1000, (ms % 1000) * 1000};
        evtimer_add(h->retry, &tv);
        return;
    }
    if (!lua_toboolean(co, 4))
        gdl_error("%s: job %s failed: %s", fname, handle, lua_tostring(co, 3) ? lua_tostring(co, 3) : msg);
    held_end(h, false, NULL, 0, GDL_JOB_FAILED, msg, lua_toboolean(co, 4));
}

static void on_held_timeout(evutil_socket_t fd, short what, void *arg)
{
    held_job_t *h = arg;

    if (h->retry != NULL) {
        const char *msg = lua_pushfstring(gdl_L, "job timed out after %f s, waiting to run again after: %s",
                                          h->timeout_ms / 1000.0, h->retry_msg ? h->retry_msg : "?");

        held_fail(h, GDL_JOB_TIMEOUT, msg);
        lua_pop(gdl_L, 1);
        return;
    }
    /* Suspended in a wait (the loop runs, so no task runs now): its wait's
     * cancel frees what it held, and on_held_end fails the job. */
    if (gdl_sched_cancel(&h->task) < 0)
        gdl_warn("%s: job %s: past its timeout but running; the master ends it", pool->name,
                 gearman_job_handle(h->job));
}

/* Runs the job (again): a task of its own. */
static void held_start(held_job_t *h)
{
    lua_State *L = gdl_L;
    gdl_sched_task_t *t = &h->task;

    memset(t, 0, sizeof(*t));
    t->on_end = on_held_end;
    t->on_resume = on_held_resume;
    t->data = h;
    t->deadline_ms = h->timeout_ms > 0 ? h->start_us / 1000 + h->timeout_ms : 0;
    gdl_log_context(pool->name, gearman_job_handle(h->job));
    lua_rawgeti(L, LUA_REGISTRYINDEX, dispatch_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->job_ref);
    lua_pushstring(L, gearman_job_function_name(h->job));
    lua_pushlstring(L, gearman_job_workload(h->job), gearman_job_workload_size(h->job));
    lua_pushinteger(L, h->run);
    if (gdl_sched_spawn(L, 4, t) < 0) {
        lua_pop(L, 5);
        held_fail(h, GDL_JOB_FAILED, "cannot run the job: no event loop in this process");
        return;
    }
    gdl_log_context(pool->name, NULL);
}

/* The timeout of fname's jobs: its own attribute, else the pool's (the
 * longest of its group), else --timeout. */
static int function_timeout_ms(const char *fname)
{
    for (int i = 0; cc.timeout_ms && i < pool->nfunctions; i++)
        if (strcmp(pool->functions[i], fname) == 0)
            return cc.timeout_ms[i];
    return pool->timeout_ms >= 0 ? pool->timeout_ms : gdl_config.timeout_ms;
}

/* Each function's own timeout, from gdlua._timeout_of. */
static void function_timeouts(void)
{
    lua_State *L = gdl_L;
    int pool_ms = pool->timeout_ms >= 0 ? pool->timeout_ms : gdl_config.timeout_ms;

    if ((cc.timeout_ms = calloc((size_t)pool->nfunctions + 1, sizeof(int))) == NULL)
        return;
    for (int i = 0; i < pool->nfunctions; i++) {
        cc.timeout_ms[i] = pool_ms;
        if (gdl_lua_require(L, "gdlua") != 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_getfield(L, -1, "_timeout_of");
        lua_pushstring(L, pool->functions[i]);
        if (gdl_lua_pcall(L, 1, 1) == 0 && lua_isnumber(L, -1))
            cc.timeout_ms[i] = (int)(lua_tonumber(L, -1) * 1000 + 0.5);
        lua_pop(L, 2);
    }
}

/* A job taken from cw: held, then run, or failed unrun (a poison job). */
static void held_take(cworker_t *cw, gearman_job_st *job)
{
    lua_State *L = gdl_L;
    const char *handle = gearman_job_handle(job), *unique = gearman_job_unique(job);
    int max_attempts = pool->max_attempts >= 0 ? pool->max_attempts : gdl_config.max_attempts;
    int timeout_ms = function_timeout_ms(gearman_job_function_name(job)), ended;
    held_job_t *h = calloc(1, sizeof(*h));
    char why[64];
    uint32_t deaths;

    taken++;
    reserved = false;
    if (h == NULL || (h->entry = gdl_slot_hold(handle, unique, gdl_now_ms())) < 0) {
        /* Out of memory (or of entries, which cannot be: nheld < cap):
         * the job is failed, so that no client waits for it. */
        gdl_error("%s: job %s: out of memory taking it", pool->name, handle);
        free(h);
        send_failure(job, "out of memory in the worker process");
        gearman_job_free(job);
        return;
    }
    h->job = job;
    h->from = cw;
    cw->jobs++;
    h->run = 1;
    h->job_ref = LUA_NOREF;
    h->start_us = gdl_now_us();
    h->next = cc.jobs;
    if (cc.jobs)
        cc.jobs->prev = h;
    cc.jobs = h;
    cc.nheld++;
    gdl_debug("%s: job %s", gearman_job_function_name(job), handle);
    deaths = gdl_attempts_of(handle, unique, &ended, why, sizeof(why));
    if (ended || (max_attempts > 0 && deaths >= (uint32_t)max_attempts)) {
        const char *msg =
            ended ? lua_pushfstring(L, "%s; its process was killed, not run again", why)
                  : lua_pushfstring(L, "job killed its process %d times (last: %s); not run again", (int)deaths, why);

        held_fail(h, ended ? ended : GDL_JOB_POISONED, msg);
        lua_pop(L, 1);
        return;
    }
    h->timeout_ms = timeout_ms;
    if (timeout_ms > 0 && (h->timeout = evtimer_new(cc.base, on_held_timeout, h)) != NULL) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

        evtimer_add(h->timeout, &tv);
    }
    gdl_job_push(L, job);
    h->job_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    held_start(h);
}

/* max_jobs counts jobs as they are taken: a concurrent process holds
 * many before the first ends, so counted at the end (check_recycle) it
 * could take up to its concurrency past the limit. The bound is the one
 * at a time: max_jobs, then one more while the replacement starts. */
static void cc_count_taken(void)
{
    int max_jobs = pool->max_jobs >= 0 ? pool->max_jobs : gdl_config.max_jobs;

    if (max_jobs <= 0 || taken < (uint64_t)max_jobs || last_job != UINT64_MAX)
        return;
    gdl_info("%s: took %d jobs (max_jobs); to be replaced", pool->name, max_jobs);
    last_job = taken + 1;
    gdl_slot_recycle(gdl_now_ms());
}

/* Takes jobs while there is room, until the job servers have none (then
 * sleeps on their NOOP), the rate limit says wait, or a grab fails. */
static void cc_pump(void)
{
    /* asleep, it waits for a NOOP, unless told to connect again (a job server is back, or hangs) */
    while (!stopping && !unanswered && taken < last_job && cc.nheld < cc.cap && (!cc.sleeping || reconnect)) {
        gearman_return_t rc = GEARMAN_SUCCESS;
        gearman_job_st *job;
        int64_t start_us;

        if (reconnect) {
            reconnect = 0;
            gdl_debug("%s: connecting to the job servers again", pool->name);
            cworker_retire();
        }
        if ((start_us = rate_reserve()) > 0) {
            cc_later_us(start_us - gdl_now_us());
            return;
        }
        /* made just before its first grab: the sockets that appear between are its own */
        if (cc.cur == NULL && (cc.cur = cworker_new()) == NULL) {
            cc_later_us(1000LL * gdl_backoff_ms(++cc.failures, 100, 250));
            return;
        }
        in_grab = 1;
        job = cc.cur->connected ? gearman_worker_grab_job(cc.cur->w, NULL, &rc) : cworker_first_grab(cc.cur, &rc);
        in_grab = 0;
        if (job == NULL && reconnect)
            continue; /* interrupted: a fresh worker, above */
        if (job != NULL) {
            if (cc.failures)
                gdl_info("%s: connected to the job server again", pool->name);
            cc.failures = 0;
            cc.cur->dirty = true;
            held_take(cc.cur, job);
            cc_count_taken();
            if (cc.nheld == 1) {
                /* the only job: its I/O starts before the next grab's
                 * round trip (one pass of the loop sends its request) */
                cc_kick();
                return;
            }
            continue;
        }
        if (rc == GEARMAN_NO_JOBS && cc.cur->dirty) {
            /* libgearman 1.1.20's grab_job, called by itself, keeps the
             * connection a job came from as where to start next; after a
             * NO_JOB it has moved past the list's end, and the next call
             * would dereference NULL (gearman_worker_work's own PRE_SLEEP
             * is what starts it over). A fresh worker asks instead. */
            cworker_retire();
            cc_kick(); /* the jobs just taken start their I/O first: a new worker takes a while */
            return;
        }
        if (rc == GEARMAN_NO_JOBS && cworker_sleep(cc.cur))
            return;
        /* A lost or down job server (or a PRE_SLEEP that could not go):
         * a fresh worker after a back-off; the jobs in hand finish on
         * this one. */
        if (cc.failures == 0 || cc.failures % 20 == 0)
            gdl_warn("%s: %s; retrying every %d ms or less", pool->name,
                     rc == GEARMAN_NO_JOBS ? "cannot wait for jobs on the job servers' connections"
                                           : gearman_worker_error(cc.cur->w),
                     gdl_backoff_ms(cc.failures + 1, 100, 250));
        cworker_retire();
        cc_later_us(1000LL * gdl_backoff_ms(++cc.failures, 100, 250));
        return;
    }
}

static bool cc_kicked(void *arg)
{
    return cc.kick;
}

static void cc_stop_retries(void)
{
    for (held_job_t *h = cc.jobs; h; h = h->next)
        if (h->retry != NULL)
            event_active(h->retry, EV_TIMEOUT, 0);
}

static void __attribute__((noreturn)) cc_run(int capacity)
{
    cc.cap = capacity;
    if ((cc.base = gdl_sched_base()) == NULL || pipe2(cc.wake, O_NONBLOCK | O_CLOEXEC) < 0 ||
        (cc.wake_ev = event_new(cc.base, cc.wake[0], EV_READ | EV_PERSIST, on_cc_wake, NULL)) == NULL ||
        (cc.later = evtimer_new(cc.base, on_cc_later, NULL)) == NULL || event_add(cc.wake_ev, NULL) < 0) {
        gdl_error("%s: cannot set up the event loop for concurrency %d", pool->name, capacity);
        _exit(1);
    }
    function_timeouts();
    in_loop = 1;
    gdl_debug("%s: ready, %d jobs at once", pool->name, capacity);
    while (!stopping && !unanswered && taken < last_job) {
        cc.kick = false;
        cc_pump();
        if (cc.kick)
            gdl_sched_poll();
        else if (gdl_sched_run_until(cc_kicked, NULL) < 0)
            break;
    }
    cworker_retire();
    cc_stop_retries();
    if (cc.nheld > 0)
        gdl_info("%s: taking no more jobs; finishing the %d in hand", pool->name, cc.nheld);
    while (cc.nheld > 0) {
        cc.kick = false;
        if (stopping)
            cc_stop_retries();
        if (gdl_sched_run_until(cc_kicked, NULL) < 0)
            break;
    }
    gdl_slot_exit();
    fflush(NULL);
    _exit(unanswered ? 1 : 0);
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
    if (gdl_slot_capacity(slot) > 1) {
        child_signals();
        if (getppid() != gdl_master_pid)
            stopping = 1;
        gdl_slot_idle(gdl_now_ms());
        cc_run(gdl_slot_capacity(slot));
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
