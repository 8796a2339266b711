/*
 * gdl_client.c: "gdlua.client", gearman's client side for Lua: for
 * client scripts (gdlua run) and for jobs that call other jobs.
 *
 *   local client = require "gdlua.client"
 *   local c = client.new{ servers = "127.0.0.1:4730", timeout = 10000 }
 *   local result, err = c:call("fn", workload, { unique = "u", priority = "high" })
 *   local handle, err = c:background("fn", workload)  -- handle, "host:port"
 *   local st = c:status(handle [, server])  -- { known, running, numerator, denominator }
 *   local ts = c:taskset()
 *   ts:add("fn", workload, { on_status = f, on_data = f, on_warning = f })
 *   local results, failed = ts:run() -- results[i]: string or false; failed[i]: message
 *
 * A task set runs its jobs concurrently and returns the results in
 * submission order. In a job of a concurrent pool (a task of
 * gdl_sched.c) call, background and run wait in the job's coroutine, on
 * a non-blocking connection of their own ("in a concurrent job" below);
 * elsewhere they block in libgearman, as status always does. Callbacks run through gdl_lua_pcall, so a Lua error
 * in one never unwinds through libgearman; it fails that task. Calls are
 * refused in the master (a connection made before fork would be shared by
 * every child); a client created while the master loads modules connects
 * on its first call, in the child that makes it.
 *
 * Several servers: one libgearman client each. A call, background job or
 * task set goes to one server, the next in turn (a call or background
 * job with a unique id to the one its id hashes to, so that gearmand can
 * coalesce it with the same id from other clients); the jobs it could not
 * finish there because the server could not be reached or went away are
 * submitted to the next, until every server was tried once. A server
 * that failed is passed over by this client for FAILED_SKIP_MS unless
 * all have. A job answered (done or failed) is never submitted again; a
 * foreground job whose server died while it ran is, so it may run twice
 * (gearmand cannot tell its client the result it lost).
 *
 * Timeouts: a call waits at most its client's timeout for an answer
 * (libgearman's poll: any packet of the job, a status or data too,
 * starts the wait again); without one, GDL_CLIENT_TIMEOUT_S, in a job
 * --client_timeout, never libgearman's wait for ever. In a job a call
 * never waits past the job's own timeout: the timeout's Lua hook cannot
 * reach code waiting inside libgearman, so the process would be killed
 * instead of the job failed in words. (A call that yields is cancelled
 * by its job's timer instead.) A call that times out asks its
 * server's status (the admin protocol's `status`) to say why: no worker
 * has registered the function, or every one was busy; then it closes its
 * connection to that server, which withdraws the job: gearmand 1.1.20
 * marks a foreground job no client waits for any more and drops it
 * unrun when a worker next asks for work (gearman_server_client_free,
 * gearman_server_job_peek in libgearman-server). There is no other way
 * to take a foreground job back: the admin `cancel job` would fail it
 * for every other client coalesced on its unique id too.
 */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <libgearman-1.0/gearman.h>

#include "gdlua.h"

#define CLIENT_MT  "gdlua.client"
#define TASKSET_MT "gdlua.taskset"

#define FAILED_SKIP_MS 1000

/* A connection of a call that yields (see "in a concurrent job" below). */
typedef struct conn {
    gearman_client_st *gc; /* non-blocking, of one server */
    int fd;                /* its socket; -1: not known yet */
    bool established;      /* a task went out whole on it: fd is its socket for good */
    struct conn *next;     /* its server's idle connections */
} conn_t;

typedef struct {
    gearman_client_st *gc;
    gdl_server_t addr;
    char name[300];    /* "host:port" */
    int64_t failed_ms; /* when it last could not be reached; 0: never */
    conn_t *idle;      /* connections kept for the next calls that yield */
} server_conn_t;

/* In Lua's heap, servers and all: memory only a Lua value points to is
 * not looked for by LeakSanitizer (tests/sanitizer/lsan.supp). */
typedef struct {
    int nservers;
    int timeout;         /* ms; 0: none; -1: gdlua's default (begin_call) */
    int wait_ms;         /* the call under way's: libgearman's timeout (-1: none) */
    bool capped;         /* wait_ms is what is left of the calling job's own timeout */
    int64_t deadline_ms; /* the calling job's deadline for a call that blocks (gdl_now_ms), -1: none */
    unsigned next;       /* the server a job without a unique id goes to first */
    bool closed;
    bool running; /* inside run_tasks: a callback must not close it */
    server_conn_t servers[];
} client_ud_t;

typedef struct {
    lua_State *L;
    int tasks; /* stack index of the tasks table */
    int index; /* 1-based position in it */
    gearman_task_st *task;
    bool background;  /* a background job: done once created (result: its handle) */
    int64_t until_ms; /* its calling job's deadline (gdl_now_ms), -1: none (see past_wait) */
    bool done, ok;
    char *result;
    size_t len;
    char *error;   /* exception, callback error, or why it failed */
    char *warning; /* the last warning: gdlua sends a failure's message so */
} task_ctx_t;

static client_ud_t *check_client(lua_State *L, int idx)
{
    client_ud_t *c = luaL_checkudata(L, idx, CLIENT_MT);

    if (c->closed)
        luaL_error(L, "gdlua.client: client is closed");
    if (c->running)
        luaL_error(L, "gdlua.client: client is running a task set (called from one of its callbacks)");
    return c;
}

/* The server could not be reached, or went away: its jobs not answered
 * may go to another. */
static bool unreachable(gearman_return_t rc)
{
    return rc == GEARMAN_COULD_NOT_CONNECT || rc == GEARMAN_LOST_CONNECTION || rc == GEARMAN_ERRNO ||
           rc == GEARMAN_GETADDRINFO;
}

/* The order to try the servers in: from the one the unique id hashes to
 * (or, without one, the next in turn), those that failed lately last. */
static void server_order(client_ud_t *c, const char *unique, int *order)
{
    int64_t now = gdl_now_ms();
    unsigned first;
    int n = 0;

    if (unique && *unique) {
        uint32_t h = 2166136261u;
        for (const char *u = unique; *u; u++)
            h = (h ^ (unsigned char)*u) * 16777619u;
        first = h % (unsigned)c->nservers;
    } else {
        first = c->next++ % (unsigned)c->nservers;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < c->nservers; k++) {
            int i = (int)((first + (unsigned)k) % (unsigned)c->nservers);
            bool skipped = c->servers[i].failed_ms && now - c->servers[i].failed_ms < FAILED_SKIP_MS;

            if (skipped == (pass == 1))
                order[n++] = i;
        }
}

/* A fresh libgearman client of the server (none yet, or one whose
 * connection failed: libgearman 1.1.20 can keep a lost connection's send
 * state, and every task given to that client after waits for ever).
 * NULL, or why not (out of memory, a bad address). */
static const char *server_client(client_ud_t *c, server_conn_t *sc)
{
    static char why[400];

    if (sc->gc)
        gearman_client_free(sc->gc);
    if ((sc->gc = gearman_client_create(NULL)) == NULL)
        return "out of memory";
    if (gearman_failed(gearman_client_add_server(sc->gc, sc->addr.host, (in_port_t)sc->addr.port))) {
        snprintf(why, sizeof(why), "server %s: %s", sc->name, gearman_client_error(sc->gc));
        return why;
    }
    return NULL;
}

static void conn_free(conn_t *cn)
{
    if (cn == NULL)
        return;
    gearman_client_free(cn->gc);
    free(cn);
}

static void idle_free(server_conn_t *sc)
{
    while (sc->idle != NULL) {
        conn_t *next = sc->idle->next;

        conn_free(sc->idle);
        sc->idle = next;
    }
}

/* The server could not be reached or went away: passed over for a while,
 * and talked to with a fresh client (and connections) next time. */
static void server_failed(client_ud_t *c, server_conn_t *sc)
{
    sc->failed_ms = gdl_now_ms();
    idle_free(sc);
    if (server_client(c, sc) != NULL && sc->gc) {
        gearman_client_free(sc->gc); /* made again, or refused, when next used */
        sc->gc = NULL;
    }
}

/* The server's client, made if it has none, set to the call's wait;
 * NULL, with why in error. */
static gearman_client_st *client_of(client_ud_t *c, server_conn_t *sc, char *error, size_t len)
{
    const char *why = sc->gc ? NULL : server_client(c, sc);

    if (why) {
        snprintf(error, len, "%s", why);
        return NULL;
    }
    gearman_client_set_timeout(sc->gc, c->wait_ms);
    return sc->gc;
}

/* When the calling job's own timeout ends (gdl_now_ms), or -1: none (or
 * not in a job). A concurrent job's is its task's; a job run one at a
 * time started when its process turned busy. */
static int64_t job_deadline_ms(void)
{
    const gdl_sched_task_t *t = gdl_sched_current();
    const gdl_pool_t *p;
    int job_ms;
    int64_t since;

    if (gdl_self_pool < 0)
        return -1;
    if (t != NULL)
        return t->deadline_ms > 0 ? t->deadline_ms : -1;
    p = &gdl_pools[gdl_self_pool];
    job_ms = p->timeout_ms >= 0 ? p->timeout_ms : gdl_config.timeout_ms;
    since = gdl_slot_busy_since();
    return job_ms > 0 && since >= 0 ? since + job_ms : -1;
}

/* Sets the wait of the call about to start (see the opening comment). A
 * call that yields is not capped: its job's timeout cancels it where it
 * waits. */
static void begin_call(client_ud_t *c, bool yields)
{
    int ms = c->timeout;
    int64_t deadline = yields ? -1 : job_deadline_ms();

    if (ms < 0)
        ms = gdl_self_pool >= 0 ? gdl_config.client_timeout_ms : GDL_CLIENT_TIMEOUT_S * 1000;
    c->capped = false;
    if (deadline >= 0) {
        int64_t left = deadline - gdl_now_ms();

        if (left < 1)
            left = 1;
        if (ms == 0 || left < ms) {
            ms = (int)left;
            c->capped = true;
        }
    }
    c->wait_ms = ms > 0 ? ms : -1;
    c->deadline_ms = deadline;
}

/* The self-call deadlock: a job calling a function of its own pool
 * while every process the pool may have is busy waits for a worker of
 * another gdlua, or its timeout: none of this one's can take the job
 * until one finishes. A warning, once per process, not a failure: other
 * masters serving the pool, or other workers of the function, may take
 * the job, and a process cannot see them. The processes are counted in
 * the shared slots (every generation's); max_processes is the pool's as
 * this process started (a console change since is not seen). */
static void warn_self_call(int wait_ms, const char *fn)
{
    static bool warned;
    const gdl_pool_t *p;
    int busy, f;
    char wait[32];

    if (warned || gdl_self_pool < 0)
        return;
    p = &gdl_pools[gdl_self_pool];
    for (f = 0; f < p->nfunctions && strcmp(p->functions[f], fn) != 0; f++)
        ;
    if (f == p->nfunctions || (busy = gdl_slot_pool_busy()) < p->max_processes)
        return;
    warned = true;
    if (wait_ms > 0)
        snprintf(wait, sizeof(wait), "%d ms", wait_ms);
    gdl_warn("%s: a job calls %s, a function of its own pool, while all %d of the pool's processes (max_processes %d) "
             "are busy: none can take it until one finishes, so the call waits for a worker elsewhere or its "
             "timeout (%s); give the pool a max_processes above the depth of its self-calls (warned once per "
             "process)",
             p->name, fn, busy, p->max_processes, wait_ms > 0 ? wait : "none: for ever");
}

/* After a call timed out: the server's connection closed, so gearmand
 * drops the jobs of it no other client waits for (see the opening
 * comment); the next call makes a fresh one. */
static void withdraw(server_conn_t *sc)
{
    if (sc->gc)
        gearman_client_free(sc->gc);
    sc->gc = NULL;
}

/* What a job that no server answered fails with. */
#define STATUS_WAIT_MS 1000 /* for the admin `status` a timed-out call asks */

/* The admin protocol's `status` line of fn on srv ("FN\tQUEUED\tRUNNING\t
 * WORKERS"): 1 and the figures if listed, 0 if not (no worker has ever
 * registered it and no job waits), -1 if the server could not say (why). */
static int function_status(const server_conn_t *srv, const char *fn, long fig[3], char *why, size_t whylen)
{
    struct addrinfo *ai = NULL;
    struct timeval tv = {STATUS_WAIT_MS / 1000, (STATUS_WAIT_MS % 1000) * 1000};
    char buf[65536];
    size_t len = 0, fnlen = strlen(fn);
    int fd = -1, found = -1;

    if (gdl_server_resolve(&srv->addr, &ai, why, whylen) < 0)
        return -1;
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        write(fd, "status\n", 7) != 7) {
        snprintf(why, whylen, "its status could not be asked for");
        goto out;
    }
    /* The reply ends with a line ".": read it whole (or what fits). */
    while (len < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);

        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if ((len == 2 && strcmp(buf, ".\n") == 0) || (len > 2 && strcmp(buf + len - 3, "\n.\n") == 0))
            break;
    }
    buf[len] = '\0';
    found = 0;
    for (char *line = buf; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line))
        if (strncmp(line, fn, fnlen) == 0 && line[fnlen] == '\t' &&
            sscanf(line + fnlen, "\t%ld\t%ld\t%ld", &fig[0], &fig[1], &fig[2]) == 3) {
            found = 1;
            break;
        }
out:
    if (fd >= 0)
        close(fd);
    if (ai)
        freeaddrinfo(ai);
    return found;
}

/* A foreground call that timed out, in words: what the server says of
 * fn (asked before the call's connection closes, so the job is still
 * counted). */
static void push_timed_out(lua_State *L, int wait_ms, bool capped, const server_conn_t *srv, const char *fn)
{
    long fig[3] = {0, 0, 0};
    char why[300], waited[96];
    int st = function_status(srv, fn, fig, why, sizeof(why));

    snprintf(waited, sizeof(waited), "%d ms%s", wait_ms, capped ? ", all its calling job's timeout left" : "");
    if (st == 0 || (st == 1 && fig[2] == 0))
        lua_pushfstring(L,
                        "no worker has registered %s on %s (waited %s); the job is withdrawn: gearmand will not "
                        "run it for this call",
                        fn, srv->name, waited);
    else if (st == 1)
        lua_pushfstring(L,
                        "%s timed out after %s on %s: %d worker(s) registered, %d job(s) in its queue, %d of "
                        "them running; the job is withdrawn: gearmand will not start it for this call%s",
                        fn, waited, srv->name, (int)fig[2], (int)fig[0], (int)fig[1],
                        fig[1] >= fig[2] ? " (every worker is busy: a job calling its own pool while every process "
                                           "of it is busy waits for itself)"
                                         : "");
    else
        lua_pushfstring(L,
                        "%s timed out after %s on %s (%s); the job is withdrawn: gearmand will not start it for "
                        "this call",
                        fn, waited, srv->name, why);
}

static void push_unreached(lua_State *L, client_ud_t *c, const server_conn_t *last, const char *error)
{
    if (c->nservers == 1)
        lua_pushstring(L, error);
    else
        lua_pushfstring(L, "no job server answered (%d tried); %s: %s", c->nservers, last->name, error);
}

static void refuse_in_master(lua_State *L)
{
    if (gdl_is_master)
        luaL_error(L, "gdlua.client: calls run in worker processes and scripts, not while the master loads "
                      "modules (a connection made before fork would be shared by every child)");
}

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void set_error(task_ctx_t *t, const char *msg, size_t len)
{
    free(t->error);
    t->error = dup_bytes(msg, len);
}

/* Calls tasks[index][name](...) if the task set one; an error in it fails
 * the task. The caller pushed nargs arguments. */
static void call_hook(task_ctx_t *t, const char *name, int nargs)
{
    lua_State *L = t->L;

    lua_rawgeti(L, t->tasks, t->index);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, nargs + 1);
        return;
    }
    lua_insert(L, -(nargs + 1));
    if (gdl_lua_pcall(L, nargs, 0) != 0) {
        size_t len;
        const char *msg = lua_tolstring(L, -1, &len);
        set_error(t, msg ? msg : "error in callback", msg ? len : 17);
        t->ok = false;
        lua_pop(L, 1);
    }
}

static gearman_return_t on_complete(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);

    t->result = dup_bytes(gearman_task_data(task), gearman_task_data_size(task));
    t->len = gearman_task_data_size(task);
    t->ok = t->error == NULL; /* a callback may have failed it */
    t->done = true;
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);

    if (t->error == NULL)
        t->error = dup_bytes(t->warning ? t->warning : "job failed", strlen(t->warning ? t->warning : "job failed"));
    t->ok = false;
    t->done = true;
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_exception(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);

    set_error(t, gearman_task_data(task), gearman_task_data_size(task));
    return GEARMAN_SUCCESS;
}

/* libgearman's timeout bounds each poll(), not the call (the README's
 * "waits unanswered"): a job that keeps sending data, warnings or status
 * would hold a blocking call past its calling job's own timeout for as
 * long as it runs, and the process be killed. A packet after that
 * deadline ends the call: run_tasks returns GEARMAN_TIMEOUT, as if the
 * wait ran out. */
static bool past_wait(const task_ctx_t *t)
{
    return t->until_ms > 0 && gdl_now_ms() >= t->until_ms;
}

/* gdlua sends a failing job's message as a warning just before WORK_FAIL
 * (see gdl_child.c); the last warning is the error if the job fails. */
static gearman_return_t on_warning(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);

    if (past_wait(t))
        return GEARMAN_TIMEOUT;
    free(t->warning);
    t->warning = dup_bytes(gearman_task_data(task), gearman_task_data_size(task));
    lua_pushlstring(t->L, t->warning, gearman_task_data_size(task));
    call_hook(t, "on_warning", 1);
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_data(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);

    if (past_wait(t))
        return GEARMAN_TIMEOUT;
    lua_pushlstring(t->L, gearman_task_data(task), gearman_task_data_size(task));
    call_hook(t, "on_data", 1);
    return GEARMAN_SUCCESS;
}

/* A background job is done once the server has queued it. */
static gearman_return_t on_created(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);
    const char *handle = gearman_task_job_handle(task);

    if (t->background) {
        t->result = dup_bytes(handle, strlen(handle));
        t->len = strlen(handle);
        t->ok = t->done = true;
    }
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_status(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);

    if (past_wait(t))
        return GEARMAN_TIMEOUT;
    lua_pushnumber(t->L, gearman_task_numerator(task));
    lua_pushnumber(t->L, gearman_task_denominator(task));
    call_hook(t, "on_status", 2);
    return GEARMAN_SUCCESS;
}

/* opts.priority as 0 (normal), 1 (high) or 2 (low); misuse raises. */
static int priority_of(lua_State *L, int opts)
{
    static const char *const names[] = {"normal", "high", "low"};
    const char *p;

    if (opts == 0)
        return 0;
    lua_getfield(L, opts, "priority");
    p = lua_isnil(L, -1) ? "normal" : lua_tostring(L, -1);
    for (int i = 0; i < 3; i++)
        if (p && lua_type(L, -1) != LUA_TNUMBER && strcmp(p, names[i]) == 0) {
            lua_pop(L, 1);
            return i;
        }
    return luaL_error(L, "gdlua.client: priority must be \"normal\", \"high\" or \"low\", got %s",
                      p ? p : luaL_typename(L, -1));
}

/* opts.unique, or NULL; misuse raises. */
static const char *unique_of(lua_State *L, int opts)
{
    const char *u = NULL;

    if (opts == 0)
        return NULL;
    lua_getfield(L, opts, "unique");
    if (lua_type(L, -1) == LUA_TSTRING)
        u = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "gdlua.client: unique must be a string, got %s", luaL_typename(L, -1));
    lua_pop(L, 1); /* the string stays referenced by the opts table */
    return u;
}

/* Everything that can raise is checked before the first task is added:
 * an error must not leave tasks behind on the client. */
static void check_tasks(lua_State *L, int tasks, int n)
{
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, tasks, i);
        unique_of(L, lua_gettop(L));
        priority_of(L, lua_gettop(L));
        lua_pop(L, 1);
    }
}

/* Adds the tasks of ctx not yet answered to gc (background jobs when
 * background); returns how many were added (one that could not be is
 * failed). */
static int submit(lua_State *L, gearman_client_st *gc, int tasks, task_ctx_t *ctx, int n, bool background)
{
    gearman_return_t rc = GEARMAN_SUCCESS;
    int added = 0;

    gearman_client_task_free_all(gc);
    /* Before adding: each task copies the client's callbacks. */
    gearman_client_set_complete_fn(gc, on_complete);
    gearman_client_set_fail_fn(gc, on_fail);
    gearman_client_set_exception_fn(gc, on_exception);
    gearman_client_set_warning_fn(gc, on_warning);
    gearman_client_set_data_fn(gc, on_data);
    gearman_client_set_status_fn(gc, on_status);
    gearman_client_set_created_fn(gc, on_created);
    for (int i = 0; i < n; i++) {
        const char *fn, *workload, *unique;
        size_t wlen;
        int prio, opts;
        gearman_task_st *task;

        if (ctx[i].done)
            continue;
        free(ctx[i].error);
        free(ctx[i].warning);
        ctx[i] = (task_ctx_t){.L = L, .tasks = tasks, .index = i + 1, .background = background};
        lua_rawgeti(L, tasks, i + 1);
        lua_getfield(L, -1, "fn");
        fn = lua_tostring(L, -1);
        lua_getfield(L, -2, "workload");
        workload = lua_tolstring(L, -1, &wlen);
        opts = lua_gettop(L) - 2; /* the task table holds the options too */
        unique = unique_of(L, opts);
        prio = priority_of(L, opts);
        if (wlen == 0)
            workload = NULL; /* libgearman refuses an empty workload that is not NULL */
        if (background)
            task =
                prio == 1 ? gearman_client_add_task_high_background(gc, NULL, &ctx[i], fn, unique, workload, wlen, &rc)
                : prio == 2 ? gearman_client_add_task_low_background(gc, NULL, &ctx[i], fn, unique, workload, wlen, &rc)
                            : gearman_client_add_task_background(gc, NULL, &ctx[i], fn, unique, workload, wlen, &rc);
        else
            task = prio == 1   ? gearman_client_add_task_high(gc, NULL, &ctx[i], fn, unique, workload, wlen, &rc)
                   : prio == 2 ? gearman_client_add_task_low(gc, NULL, &ctx[i], fn, unique, workload, wlen, &rc)
                               : gearman_client_add_task(gc, NULL, &ctx[i], fn, unique, workload, wlen, &rc);
        lua_pop(L, 3);
        if (task == NULL) {
            const char *e = gearman_client_error(gc);
            set_error(&ctx[i], e, strlen(e));
            ctx[i].done = true;
        } else {
            ctx[i].task = task;
            added++;
        }
    }
    return added;
}

/* Submits the tasks of ctx not yet answered to one server and runs them,
 * blocking; returns libgearman's result. In a job the signals the master
 * sends (SIGXCPU: the job timed out; SIGTERM: stop; SIGUSR1, SIGUSR2)
 * wait until the run returns: libgearman 1.1.20's gearman_wait restarts
 * poll() with the whole timeout on EINTR, so a signal in the wait would
 * stretch a call capped at the job's timeout by as much again, past the
 * watchdog's grace (SIGKILL, not the job failed in words). The call ends
 * at its cap; the handlers run then, and the job's timeout hook fires as
 * soon as Lua runs again. */
static gearman_return_t run_on(lua_State *L, client_ud_t *c, server_conn_t *srv, int tasks, task_ctx_t *ctx, int n)
{
    gearman_return_t rc;
    int added = submit(L, srv->gc, tasks, ctx, n, false);
    sigset_t block, old;

    for (int i = 0; i < n; i++)
        ctx[i].until_ms = c->deadline_ms;
    sigemptyset(&block);
    if (gdl_self_pool >= 0) {
        sigaddset(&block, SIGXCPU);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGUSR2);
    }
    sigprocmask(SIG_BLOCK, &block, &old);
    c->running = true;
    rc = added ? gearman_client_run_tasks(srv->gc) : GEARMAN_SUCCESS;
    c->running = false;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* The results and failed tables of tasks' n tasks run on srv (the last
 * server tried; rc its result, error its message), failed nil when every
 * task succeeded; frees what ctx's tasks hold. */
static void push_results(lua_State *L, client_ud_t *c, const server_conn_t *srv, int tasks, task_ctx_t *ctx, int n,
                         gearman_return_t rc, const char *error, int wait_ms, bool capped)
{
    int nfailed = 0;

    lua_createtable(L, n, 0);
    lua_newtable(L);
    for (int i = 0; i < n; i++) {
        task_ctx_t *t = &ctx[i];

        if (t->done && t->ok && t->result) {
            lua_pushlstring(L, t->result, t->len);
            lua_rawseti(L, -3, i + 1);
        } else {
            lua_pushboolean(L, 0);
            lua_rawseti(L, -3, i + 1);
            if (t->done)
                lua_pushstring(L, t->error ? t->error : "job failed");
            else if (unreachable(rc))
                push_unreached(L, c, srv, error);
            else if (rc == GEARMAN_TIMEOUT && srv && t->background)
                lua_pushfstring(L, "submitting the job timed out after %d ms on %s", wait_ms, srv->name);
            else if (rc == GEARMAN_TIMEOUT && srv) {
                lua_rawgeti(L, tasks, i + 1);
                lua_getfield(L, -1, "fn");
                push_timed_out(L, wait_ms, capped, srv, lua_tostring(L, -1));
                lua_replace(L, -3);
                lua_pop(L, 1);
            } else
                lua_pushstring(L, error[0] ? error : "job failed");
            lua_rawseti(L, -2, i + 1);
            nfailed++;
        }
        free(t->result);
        free(t->error);
        free(t->warning);
        t->result = t->error = t->warning = NULL;
    }
    if (nfailed == 0) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* Runs the tasks in the table at index `tasks` ({fn, workload, opts}...),
 * from the server order picks, on the next server for those the previous
 * could not answer; leaves results and failed tables on the stack. */
static int run_tasks(lua_State *L, client_ud_t *c, int tasks, const char *unique)
{
    int n = (int)lua_objlen(L, tasks), order[GDL_SERVERS_MAX], left = n;
    task_ctx_t *ctx;
    server_conn_t *srv = NULL;
    gearman_return_t rc = GEARMAN_SUCCESS;
    char error[512] = "";

    check_tasks(L, tasks, n);
    ctx = calloc(n ? n : 1, sizeof(task_ctx_t));
    if (ctx == NULL)
        return luaL_error(L, "gdlua.client: out of memory");
    begin_call(c, false);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, tasks, i);
        lua_getfield(L, -1, "fn");
        warn_self_call(c->wait_ms, lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    server_order(c, unique, order);
    for (int k = 0; k < c->nservers && left > 0; k++) {
        srv = &c->servers[order[k]];
        if (client_of(c, srv, error, sizeof(error)) == NULL) {
            rc = GEARMAN_COULD_NOT_CONNECT;
            continue;
        }
        rc = run_on(L, c, srv, tasks, ctx, n);
        if (gearman_failed(rc))
            snprintf(error, sizeof(error), "%s", gearman_client_error(srv->gc));
        left = 0;
        for (int i = 0; i < n; i++)
            left += !ctx[i].done;
        if (!gearman_failed(rc) || !unreachable(rc))
            break;
        server_failed(c, srv);
    }
    push_results(L, c, srv, tasks, ctx, n, rc, error, c->wait_ms, c->capped);
    free(ctx);
    if (srv && rc == GEARMAN_TIMEOUT)
        withdraw(srv);
    else if (srv && srv->gc)
        gearman_client_task_free_all(srv->gc);
    return 2;
}

/* ---- in a concurrent job: a call that waits in its coroutine ------------
 *
 * In a task of gdl_sched.c (a job of a concurrent pool) a call, task set
 * or background job does not block: it runs on a connection of its own,
 * a libgearman client in GEARMAN_CLIENT_NON_BLOCKING mode, and waits on
 * the process's loop between rounds of gearman_client_run_tasks, which
 * returns GEARMAN_IO_WAIT once it can go no further. In 1.1.20 only
 * gearman_wait's poll marks a connection ready for run_tasks to read or
 * write, so after the loop saw the socket ready, gearman_client_wait
 * (with a 1 ms timeout: it returns at once then) sets that, and run_tasks
 * goes on. What the socket is waited for: readable, and writable too
 * while a task has not been sent whole (gearman_task_strstate NEW, SUBMIT
 * or WORKLOAD: libgearman is connecting, or its send would block), as
 * libgearman's own poll would. libgearman shows no connection's socket:
 * it is the socket that appeared during the rounds that connected it
 * (nothing else runs meanwhile).
 *
 * The rounds run in the calling coroutine (the C functions return to a
 * Lua wrapper, luaopen's `settle`, which calls step again after each
 * wait), so the callbacks (on_data, on_status, on_warning) run there as
 * they do in a blocking call. Any packet starts the wait again, as
 * libgearman's poll does. A connection whose call ended cleanly is kept
 * for the server's next call; one whose call timed out is closed, which
 * withdraws the job (see the opening comment); so is one whose coroutine
 * was cancelled (its job's timeout), so a job past its timeout leaves no
 * job of its calls behind. */

#define CALL_MT "gdlua.client.call"

/* The first value a call that waits returns to its wrapper (its address). */
static char pending;

enum { KIND_CALL, KIND_BACKGROUND, KIND_RUN };

typedef struct {
    gdl_sched_op_t op; /* first: the op is the call */
    struct event *ev;  /* while it waits */
    short fired;       /* what woke it */
    int self_ref;      /* anchors it while it waits */
    client_ud_t *c;    /* the client and the tasks: its environment's */
    int kind, n;
    task_ctx_t *ctx;
    int order[GDL_SERVERS_MAX], k; /* trying servers[order[k]] */
    server_conn_t *srv;            /* the server tried last */
    conn_t *conn;                  /* on srv; NULL: none */
    gearman_return_t rc;
    int wait_ms;         /* -1: none */
    int64_t deadline_ms; /* -1: none */
    char error[512];
} call_t;

/* One of sc's idle connections, or a new one (it connects on its first
 * round); NULL, with why in error. */
static conn_t *conn_take(server_conn_t *sc, char *error, size_t len)
{
    conn_t *cn = sc->idle;

    if (cn != NULL) {
        sc->idle = cn->next;
        cn->next = NULL;
        return cn;
    }
    if ((cn = calloc(1, sizeof(*cn))) == NULL || (cn->gc = gearman_client_create(NULL)) == NULL) {
        free(cn);
        snprintf(error, len, "out of memory");
        return NULL;
    }
    cn->fd = -1;
    gearman_client_add_options(cn->gc, GEARMAN_CLIENT_NON_BLOCKING);
    gearman_client_set_timeout(cn->gc, 1);
    if (gearman_failed(gearman_client_add_server(cn->gc, sc->addr.host, (in_port_t)sc->addr.port))) {
        snprintf(error, len, "server %s: %s", sc->name, gearman_client_error(cn->gc));
        conn_free(cn);
        return NULL;
    }
    return cn;
}

static void conn_put(client_ud_t *c, server_conn_t *sc, conn_t *cn)
{
    if (c->closed) {
        conn_free(cn);
        return;
    }
    gearman_client_task_free_all(cn->gc);
    cn->next = sc->idle;
    sc->idle = cn;
}

/* Everything the call holds goes (its connection closed: the job is
 * withdrawn); safe to call again. */
static void call_release(call_t *st)
{
    if (st->ev != NULL)
        event_free(st->ev);
    st->ev = NULL;
    conn_free(st->conn);
    st->conn = NULL;
    for (int i = 0; st->ctx && i < st->n; i++) {
        free(st->ctx[i].result);
        free(st->ctx[i].error);
        free(st->ctx[i].warning);
    }
    free(st->ctx);
    st->ctx = NULL;
}

static int call_gc(lua_State *L)
{
    call_release(luaL_checkudata(L, 1, CALL_MT));
    return 0;
}

static void on_call_event(evutil_socket_t fd, short what, void *arg)
{
    call_t *st = arg;

    st->fired = what;
    gdl_sched_wake(&st->op);
}

/* Resumed: the wrapper is given pending and the call, and steps it again. */
static int call_finish(lua_State *L, gdl_sched_op_t *op)
{
    call_t *st = (call_t *)op;

    event_free(st->ev);
    st->ev = NULL;
    lua_pushlightuserdata(L, &pending);
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->self_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, st->self_ref);
    st->self_ref = LUA_NOREF;
    return 2;
}

/* Its coroutine was cancelled (its job's timeout) while it waited. */
static void call_cancel(lua_State *L, gdl_sched_op_t *op)
{
    call_t *st = (call_t *)op;

    call_release(st);
    luaL_unref(L, LUA_REGISTRYINDEX, st->self_ref);
    st->self_ref = LUA_NOREF;
}

/* Whether a task of the call has not gone out whole: libgearman waits to
 * write then (connecting, or a send that would block). */
static bool call_sending(const call_t *st)
{
    for (int i = 0; i < st->n; i++) {
        const char *state;

        if (st->ctx[i].done || st->ctx[i].task == NULL)
            continue;
        state = gearman_task_strstate(st->ctx[i].task);
        if (strcmp(state, "GEARMAN_TASK_STATE_NEW") == 0 || strcmp(state, "GEARMAN_TASK_STATE_SUBMIT") == 0 ||
            strcmp(state, "GEARMAN_TASK_STATE_WORKLOAD") == 0)
            return true;
    }
    return false;
}

/* One round of run_tasks on the call's connection, the tasks table at
 * index tasks (the callbacks use it); finds the connection's socket while
 * it is being made. */
static gearman_return_t call_round(lua_State *L, call_t *st, int tasks)
{
    conn_t *cn = st->conn;
    int *before = NULL, nbefore = 0, fds[4], nfds;
    gearman_return_t rc;

    if (st->fired & (EV_READ | EV_WRITE)) {
        gearman_client_wait(cn->gc); /* marks it ready (the socket is: no wait) */
        if (st->wait_ms > 0)
            st->deadline_ms = gdl_now_ms() + st->wait_ms; /* a packet starts the wait again */
    }
    st->fired = 0;
    for (int i = 0; i < st->n; i++) {
        st->ctx[i].L = L;
        st->ctx[i].tasks = tasks;
    }
    if (!cn->established)
        nbefore = gdl_fds_open(&before);
    st->c->running = true;
    rc = gearman_client_run_tasks(cn->gc);
    st->c->running = false;
    if (!cn->established) {
        if ((nfds = gdl_fds_new_sockets(before, nbefore, fds, 4)) > 0)
            cn->fd = fds[nfds - 1];
        free(before);
        cn->established = cn->fd >= 0 && (rc == GEARMAN_SUCCESS || (rc == GEARMAN_IO_WAIT && !call_sending(st)));
    }
    return rc;
}

/* The call is over: its results for the wrapper (as the blocking call's). */
static int call_results(lua_State *L, call_t *st, int tasks)
{
    client_ud_t *c = st->c;
    const char *server = st->srv ? st->srv->name : "";

    push_results(L, c, st->srv, tasks, st->ctx, st->n, st->rc, st->error, st->wait_ms, false);
    if (st->conn != NULL && !gearman_failed(st->rc))
        conn_put(c, st->srv, st->conn);
    else
        conn_free(st->conn); /* a timeout's withdraws the job */
    st->conn = NULL;
    call_release(st);
    if (st->kind == KIND_RUN)
        return 2;
    lua_rawgeti(L, -2, 1);
    if (lua_toboolean(L, -1)) {
        if (st->kind == KIND_CALL)
            return 1;
        lua_pushstring(L, server);
        return 2;
    }
    lua_pushnil(L);
    lua_rawgeti(L, -3, 1);
    return 2;
}

/* Runs the call (at index self, its tasks at index tasks) until it is
 * over, or waits: then the coroutine yields, and is given pending and the
 * call when the socket is ready or the wait is over. */
static int call_advance(lua_State *L, call_t *st, int self, int tasks)
{
    client_ud_t *c = st->c;

    for (;;) {
        gearman_return_t rc;

        if (st->conn == NULL) {
            int left = 0;

            for (int i = 0; i < st->n; i++)
                left += !st->ctx[i].done;
            if (left == 0 || st->k == c->nservers)
                return call_results(L, st, tasks);
            st->srv = &c->servers[st->order[st->k++]];
            if ((st->conn = conn_take(st->srv, st->error, sizeof(st->error))) == NULL) {
                st->rc = GEARMAN_COULD_NOT_CONNECT;
                continue;
            }
            if (submit(L, st->conn->gc, tasks, st->ctx, st->n, st->kind == KIND_BACKGROUND) == 0) {
                st->rc = GEARMAN_SUCCESS;
                return call_results(L, st, tasks);
            }
            st->fired = 0;
            st->deadline_ms = st->wait_ms > 0 ? gdl_now_ms() + st->wait_ms : -1;
        }
        rc = call_round(L, st, tasks);
        if (rc == GEARMAN_IO_WAIT) {
            int64_t now = gdl_now_ms();

            if (st->deadline_ms >= 0 && now >= st->deadline_ms) {
                rc = GEARMAN_TIMEOUT;
                snprintf(st->error, sizeof(st->error), "timed out after %d ms", st->wait_ms);
            } else if (st->conn->fd < 0) {
                rc = GEARMAN_NO_ACTIVE_FDS;
                snprintf(st->error, sizeof(st->error), "server %s: the connection's socket cannot be found",
                         st->srv->name);
            } else {
                struct timeval tv = {0, 0};
                short what = EV_READ | (call_sending(st) ? EV_WRITE : 0);

                if ((st->ev = event_new(gdl_sched_check(L, "gdlua.client"), st->conn->fd, what, on_call_event, st)) ==
                    NULL)
                    return luaL_error(L, "gdlua.client: out of memory");
                if (st->deadline_ms >= 0)
                    tv = (struct timeval){(st->deadline_ms - now) / 1000, ((st->deadline_ms - now) % 1000) * 1000};
                event_add(st->ev, st->deadline_ms >= 0 ? &tv : NULL);
                st->op.done = false;
                lua_pushvalue(L, self);
                st->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
                return gdl_sched_await(L, &st->op);
            }
        } else if (gearman_failed(rc)) {
            snprintf(st->error, sizeof(st->error), "%s", gearman_client_error(st->conn->gc));
        }
        st->rc = rc;
        if (!gearman_failed(rc) || !unreachable(rc))
            return call_results(L, st, tasks);
        conn_free(st->conn);
        st->conn = NULL;
        server_failed(c, st->srv);
    }
}

/* Starts a call of the client at index client, the tasks at index tasks,
 * in the calling coroutine. */
static int call_start(lua_State *L, client_ud_t *c, int client, int tasks, const char *unique, int kind)
{
    int n = (int)lua_objlen(L, tasks), self;
    call_t *st;

    check_tasks(L, tasks, n);
    st = lua_newuserdata(L, sizeof(*st));
    memset(st, 0, sizeof(*st));
    st->self_ref = LUA_NOREF;
    luaL_getmetatable(L, CALL_MT);
    lua_setmetatable(L, -2);
    self = lua_gettop(L);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, client);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, tasks);
    lua_rawseti(L, -2, 2);
    lua_setfenv(L, self);
    if ((st->ctx = calloc(n ? n : 1, sizeof(task_ctx_t))) == NULL)
        return luaL_error(L, "gdlua.client: out of memory");
    st->op.finish = call_finish;
    st->op.cancel = call_cancel;
    st->op.what = "gdlua.client";
    st->c = c;
    st->kind = kind;
    st->n = n;
    begin_call(c, true);
    st->wait_ms = c->wait_ms;
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, tasks, i);
        lua_getfield(L, -1, "fn");
        warn_self_call(st->wait_ms, lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    server_order(c, unique, st->order);
    return call_advance(L, st, self, tasks);
}

/* step(call): the wrapper's, after each wait. */
static int call_step(lua_State *L)
{
    call_t *st = luaL_checkudata(L, 1, CALL_MT);

    lua_settop(L, 1);
    if (st->ctx == NULL)
        return luaL_error(L, "gdlua.client: the call is over");
    lua_getfenv(L, 1);
    lua_rawgeti(L, 2, 2);
    return call_advance(L, st, 1, 3);
}

/* Whether a call made here yields (a job's coroutine of a concurrent
 * pool) rather than blocks. */
static int call_yields(lua_State *L)
{
    lua_pushboolean(L, gdl_sched_task_of(L) != NULL);
    return 1;
}

static void check_task_args(lua_State *L, int base)
{
    luaL_checkstring(L, base);
    luaL_checkstring(L, base + 1);
    if (!lua_isnoneornil(L, base + 2)) {
        luaL_checktype(L, base + 2, LUA_TTABLE);
        unique_of(L, base + 2);
        priority_of(L, base + 2);
    }
}

/* Builds {fn = ..., workload = ..., <opts>} from arguments base.. */
static void push_task(lua_State *L, int base)
{
    lua_newtable(L);
    if (lua_istable(L, base + 2)) {
        lua_pushnil(L);
        while (lua_next(L, base + 2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
    }
    lua_pushvalue(L, base);
    lua_setfield(L, -2, "fn");
    lua_pushvalue(L, base + 1);
    lua_setfield(L, -2, "workload");
}

/* A method the Lua wrapper calls as impl:method(...) in a job that yields
 * (so that misuse is named as the user's call: impl is its upvalue 1):
 * the arguments as the user gave them. */
static void from_wrapper(lua_State *L)
{
    if (lua_rawequal(L, 1, lua_upvalueindex(1)))
        lua_remove(L, 1);
}

/* c:call(fn, workload [, opts]) -> result | nil, message */
static int client_call(lua_State *L)
{
    client_ud_t *c;
    const char *unique;
    int tasks;

    from_wrapper(L);
    c = check_client(L, 1);
    check_task_args(L, 2);
    refuse_in_master(L);
    unique = unique_of(L, lua_istable(L, 4) ? 4 : 0);
    lua_createtable(L, 1, 0);
    tasks = lua_gettop(L);
    push_task(L, 2);
    lua_rawseti(L, tasks, 1);
    if (gdl_sched_task_of(L) != NULL)
        return call_start(L, c, 1, tasks, unique, KIND_CALL);
    run_tasks(L, c, tasks, unique);
    lua_rawgeti(L, -2, 1);
    if (lua_toboolean(L, -1))
        return 1;
    lua_pushnil(L);
    lua_rawgeti(L, -3, 1);
    return 2;
}

/* opts.at (a delayed job) is refused, not ignored: a job asked for later
 * must not run now. gearmand 1.1.20 keeps a SUBMIT_JOB_EPOCH job queued
 * until its time (gearman_server_job_peek and _take in
 * libgearman-server/gearmand_con.cc skip it before then), but when the
 * time comes nothing wakes the workers sleeping on PRE_SLEEP: it would
 * start only once other work woke one, hours later perhaps. */
static void refuse_at(lua_State *L, int opts)
{
    if (opts == 0)
        return;
    lua_getfield(L, opts, "at");
    if (!lua_isnil(L, -1))
        luaL_error(L, "gdlua.client: background: at (a delayed job) is not supported: gearmand 1.1.20 holds such a "
                      "job until its time but wakes no sleeping worker then, so it would start late or never; see "
                      "README, \"Delayed jobs\"");
    lua_pop(L, 1);
}

/* c:background(fn, workload [, opts]) -> handle, "host:port" | nil, message */
static int client_background(lua_State *L)
{
    client_ud_t *c;
    gearman_job_handle_t handle;
    gearman_return_t rc = GEARMAN_SUCCESS;
    server_conn_t *srv = NULL;
    size_t wlen;
    const char *fn, *workload, *unique;
    int prio, order[GDL_SERVERS_MAX];
    char error[512] = "";

    from_wrapper(L);
    c = check_client(L, 1);
    check_task_args(L, 2);
    refuse_in_master(L);
    refuse_at(L, lua_istable(L, 4) ? 4 : 0);
    if (gdl_sched_task_of(L) != NULL) {
        lua_settop(L, 4);
        lua_createtable(L, 1, 0);
        push_task(L, 2);
        lua_rawseti(L, 5, 1);
        return call_start(L, c, 1, 5, unique_of(L, lua_istable(L, 4) ? 4 : 0), KIND_BACKGROUND);
    }
    fn = lua_tostring(L, 2);
    workload = lua_tolstring(L, 3, &wlen);
    unique = unique_of(L, lua_istable(L, 4) ? 4 : 0);
    prio = priority_of(L, lua_istable(L, 4) ? 4 : 0);
    if (wlen == 0)
        workload = NULL; /* libgearman refuses an empty workload that is not NULL */
    begin_call(c, false);
    server_order(c, unique, order);
    for (int k = 0; k < c->nservers; k++) {
        gearman_client_st *gc = client_of(c, srv = &c->servers[order[k]], error, sizeof(error));

        if (gc == NULL) {
            rc = GEARMAN_COULD_NOT_CONNECT;
            continue;
        }
        rc = prio == 1   ? gearman_client_do_high_background(gc, fn, unique, workload, wlen, handle)
             : prio == 2 ? gearman_client_do_low_background(gc, fn, unique, workload, wlen, handle)
                         : gearman_client_do_background(gc, fn, unique, workload, wlen, handle);
        if (gearman_failed(rc))
            snprintf(error, sizeof(error), "%s", gearman_client_error(gc));
        if (!gearman_failed(rc) || !unreachable(rc))
            break;
        server_failed(c, srv);
    }
    if (gearman_failed(rc)) {
        lua_pushnil(L);
        if (unreachable(rc))
            push_unreached(L, c, srv, error);
        else
            lua_pushstring(L, error);
        return 2;
    }
    lua_pushstring(L, handle);
    lua_pushstring(L, srv->name);
    return 2;
}

/* c:status(handle [, "host:port"]) -> { known, running, numerator,
 * denominator } | nil, message. A handle is its server's: without the
 * server, each is asked in turn until one knows it. */
static int client_status(lua_State *L)
{
    client_ud_t *c = check_client(L, 1);
    const char *handle = luaL_checkstring(L, 2), *want = luaL_optstring(L, 3, NULL);
    bool known = false, running = false;
    uint32_t num = 0, den = 0;
    gearman_return_t rc = GEARMAN_SUCCESS;
    server_conn_t *srv = NULL;
    char error[512] = "";
    int asked = 0;

    refuse_in_master(L);
    begin_call(c, false);
    for (int i = 0; i < c->nservers && !known; i++) {
        gearman_client_st *gc;

        if (want && strcmp(want, c->servers[i].name) != 0)
            continue;
        srv = &c->servers[i];
        asked++;
        if ((gc = client_of(c, srv, error, sizeof(error))) == NULL) {
            rc = GEARMAN_COULD_NOT_CONNECT;
            continue;
        }
        rc = gearman_client_job_status(gc, handle, &known, &running, &num, &den);
        if (gearman_failed(rc)) {
            snprintf(error, sizeof(error), "%s", gearman_client_error(gc));
            if (unreachable(rc))
                server_failed(c, srv);
        }
        if (gearman_failed(rc) && (c->nservers == 1 || want))
            break;
    }
    if (asked == 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "gdlua.client: %s is not one of this client's servers", want);
        return 2;
    }
    if (gearman_failed(rc) && !known) {
        lua_pushnil(L);
        lua_pushstring(L, error);
        return 2;
    }
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, known);
    lua_setfield(L, -2, "known");
    lua_pushboolean(L, running);
    lua_setfield(L, -2, "running");
    lua_pushnumber(L, num);
    lua_setfield(L, -2, "numerator");
    lua_pushnumber(L, den);
    lua_setfield(L, -2, "denominator");
    return 1;
}

/* c:taskset() -> a task set: ts:add(fn, workload [, opts]), ts:run() */
static int client_taskset(lua_State *L)
{
    check_client(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "client");
    lua_newtable(L);
    lua_setfield(L, -2, "tasks");
    luaL_getmetatable(L, TASKSET_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int taskset_add(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    check_task_args(L, 2);
    lua_getfield(L, 1, "tasks");
    push_task(L, 2);
    lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
    lua_pop(L, 1);
    lua_settop(L, 1);
    return 1; /* the set, for chaining */
}

/* ts:run() -> results, failed (nil when every task succeeded) */
static int taskset_run(lua_State *L)
{
    from_wrapper(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "client");
    lua_getfield(L, 1, "tasks");
    check_client(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    refuse_in_master(L);
    if (gdl_sched_task_of(L) != NULL)
        return call_start(L, lua_touserdata(L, 2), 2, 3, NULL, KIND_RUN);
    return run_tasks(L, lua_touserdata(L, 2), 3, NULL);
}

static int client_close(lua_State *L)
{
    client_ud_t *c = luaL_checkudata(L, 1, CLIENT_MT);

    if (c->running)
        return luaL_error(L, "gdlua.client: close called while the client runs a task set");
    for (int i = 0; i < c->nservers; i++) {
        if (c->servers[i].gc)
            gearman_client_free(c->servers[i].gc);
        c->servers[i].gc = NULL;
        idle_free(&c->servers[i]);
    }
    c->closed = true;
    return 0;
}

/* The servers option as one "h:p,h:p" string on the stack (maybe ""). */
static void push_servers(lua_State *L, int opts)
{
    int n;

    lua_getfield(L, opts, "servers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
        return;
    }
    if (lua_type(L, -1) == LUA_TSTRING)
        return;
    if (!lua_istable(L, -1))
        luaL_error(L, "gdlua.client.new: servers must be a \"host:port\" string or a list of them");
    n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1 - 2 * (i - 1), i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "gdlua.client.new: servers[%d] must be a \"host:port\" string", i);
        lua_pushliteral(L, ",");
    }
    lua_pop(L, n > 0 ? 1 : 0); /* the last comma */
    lua_concat(L, n > 0 ? 2 * n - 1 : 0);
    if (n == 0)
        lua_pushliteral(L, "");
    lua_remove(L, -2); /* the list */
}

/* client.new{ servers = "h:p,h:p" | {"h:p", ...}, timeout = ms }: the
 * servers default to gdlua's --server list, then $GEARMAN_SERVERS, then
 * 127.0.0.1:4730; the timeout (0: none) to gdlua's (begin_call). */
static int client_new(lua_State *L)
{
    static gdl_server_t servers[GDL_SERVERS_MAX];
    char err[300];
    client_ud_t *c;
    int timeout = -1, nservers = 0;

    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    push_servers(L, 1);
    lua_getfield(L, 1, "timeout");
    if (!lua_isnil(L, -1)) {
        lua_Number t = luaL_checknumber(L, -1);
        if (!(t >= 0 && t <= INT32_MAX))
            return luaL_error(L, "gdlua.client.new: timeout must be from 0 (none) to %d ms, got %s", INT32_MAX,
                              lua_tostring(L, -1));
        timeout = (int)t;
    }
    lua_pop(L, 1);

    if (lua_objlen(L, 2) > 0) {
        if (gdl_servers_parse(lua_tostring(L, 2), GDL_DEFAULT_PORT, servers, &nservers, GDL_SERVERS_MAX, err,
                              sizeof(err)) < 0)
            return luaL_error(L, "gdlua.client.new: %s", err);
    } else if (gdl_config.nservers > 0) {
        memcpy(servers, gdl_config.servers, sizeof(gdl_server_t) * gdl_config.nservers);
        nservers = gdl_config.nservers;
    } else {
        const char *env = getenv("GEARMAN_SERVERS");
        if (gdl_servers_parse(env && *env ? env : GDL_DEFAULT_HOST, GDL_DEFAULT_PORT, servers, &nservers,
                              GDL_SERVERS_MAX, err, sizeof(err)) < 0)
            return luaL_error(L, "gdlua.client.new: GEARMAN_SERVERS: %s", err);
    }
    c = lua_newuserdata(L, sizeof(*c) + sizeof(server_conn_t) * nservers);
    memset(c, 0, sizeof(*c) + sizeof(server_conn_t) * nservers);
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);
    c->nservers = nservers;
    /* clients made at once start at different servers */
    c->next = (unsigned)(gdl_now_us() ^ (uint64_t)getpid() * 2654435761u);
    c->timeout = timeout;
    for (int i = 0; i < nservers; i++) {
        server_conn_t *sc = &c->servers[i];
        const char *why;

        sc->addr = servers[i];
        snprintf(sc->name, sizeof(sc->name), strchr(servers[i].host, ':') ? "[%s]:%d" : "%s:%d", servers[i].host,
                 servers[i].port);
        if ((why = server_client(c, sc)) != NULL)
            return luaL_error(L, "gdlua.client.new: %s", why);
    }
    return 1;
}

static const luaL_Reg client_methods[] = {
    {"status", client_status},
    {"taskset", client_taskset},
    {"close", client_close},
    {NULL, NULL},
};

/* The methods that may wait: Lua wrappers, so that a call that yields is
 * stepped again after each wait (a C function cannot go on after it
 * yields). Where the call cannot yield, the wrapper tail-calls the C
 * function: it is then the user's own call (its arguments, its errors'
 * names and lines, its results), as before. Where it yields, the C
 * function is called as impl:NAME(...) (misuse is named as the user's
 * call, the line being the wrapper's) and returns either its results or
 * pending and the call; settle steps it until it has results. */
static const char wrappers[] = "local pending, yields, step = ...\n"
                               "local impl = {}\n"
                               "local function settle(first, ...)\n"
                               "  if first ~= pending then return first, ... end\n"
                               "  return settle(step((...)))\n"
                               "end\n"
                               "return function(...)\n"
                               "  if not yields() then return impl.call(...) end\n"
                               "  return settle(impl:call(...))\n"
                               "end, function(...)\n"
                               "  if not yields() then return impl.background(...) end\n"
                               "  return settle(impl:background(...))\n"
                               "end, function(...)\n"
                               "  if not yields() then return impl.run(...) end\n"
                               "  return settle(impl:run(...))\n"
                               "end, impl\n";

/* Sets the wrappers as the methods call and background (of the client
 * methods table at index client) and run (of the task set's, at taskset). */
static void set_wrappers(lua_State *L, int client, int taskset)
{
    if (luaL_loadbuffer(L, wrappers, sizeof(wrappers) - 1, "=gdlua.client") != 0)
        lua_error(L);
    lua_pushlightuserdata(L, &pending);
    lua_pushcfunction(L, call_yields);
    lua_pushcfunction(L, call_step);
    lua_call(L, 3, 4);
    /* impl is the C functions' upvalue: from_wrapper tells it apart */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, client_call, 1);
    lua_setfield(L, -2, "call");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, client_background, 1);
    lua_setfield(L, -2, "background");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, taskset_run, 1);
    lua_setfield(L, -2, "run");
    lua_pop(L, 1);
    lua_setfield(L, taskset, "run");
    lua_setfield(L, client, "background");
    lua_setfield(L, client, "call");
}

int luaopen_gdlua_client(lua_State *L)
{
    luaL_newmetatable(L, CALL_MT);
    lua_pushcfunction(L, call_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, CLIENT_MT);
    lua_newtable(L);
    luaL_register(L, NULL, client_methods);
    luaL_newmetatable(L, TASKSET_MT);
    lua_newtable(L);
    lua_pushcfunction(L, taskset_add);
    lua_setfield(L, -2, "add");
    set_wrappers(L, lua_gettop(L) - 2, lua_gettop(L));
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, client_new);
    lua_setfield(L, -2, "new");
    return 1;
}
