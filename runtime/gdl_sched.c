/*
 * gdl_sched.c: a worker process's event loop, and the Lua coroutines that
 * wait on it, so that C functions called from Lua (gdlua.sleep,
 * gdlua.http, gdlua.tcp) wait without holding the process.
 *
 * One libevent event_base per process, made on first use: in a child
 * after fork, or in "gdlua run"; never in the master or a loader
 * (gdl_is_master), so no base is inherited across a fork, and a process
 * that never waits has none. A C module waits in one of two modes, and
 * the same module code serves both:
 *
 *  - yielding: when the Lua code calling it runs in a coroutine this unit
 *    manages (a *task*, gdl_sched_spawn), and can yield there (not across
 *    a C call: a metamethod or callback called from C), the task is
 *    suspended (lua_yield from the C function, which LuaJIT allows when
 *    the C function was called from Lua, pcall and xpcall included) and
 *    resumed when the event comes, with the call's results;
 *  - blocking: anywhere else while the loop is not running (today's
 *    one-job-at-a-time child, a "gdlua run" script, code loaded by a
 *    job), the call runs the loop itself until its event comes, then
 *    returns. Tasks alive meanwhile go on in that loop.
 *
 * A wait anywhere else (a coroutine of the job's own inside a task, a C
 * call boundary inside a task, or Lua called from a loop callback) would
 * re-enter the loop, which libevent refuses: it raises instead, before
 * anything is lost, naming the call and the cause.
 *
 * The interface, for modules:
 *   - gdl_sched_check(L, who): the base, or a Lua error in the master.
 *   - A wait is a gdl_sched_op_t embedded in the module's state: set its
 *     finish, cancel and what; start the I/O on the base; when it is over
 *     (from an event callback, or at once) call gdl_sched_wake(op); and
 *     `return gdl_sched_await(L, op);` from the C function. await returns
 *     finish's results (blocking, or at once when already woken) or
 *     yields; the task is resumed later with finish's results, which the
 *     Lua caller gets as the C function's. Exactly one of finish or
 *     cancel is called for every awaited op: cancel when the task is
 *     cancelled, or when await refuses to wait (then it raises).
 *   - gdl_sched_wait_fd(L, fd, what, timeout_ms) and gdl_sched_sleep(L, ms):
 *     ready-made waits, for `return gdl_sched_wait_fd(...)`: true when fd
 *     is ready for what (EV_READ, EV_WRITE), nil, "timeout" past
 *     timeout_ms (< 0: none); sleep returns nothing.
 *   - gdl_sched_task_of(L): the task running as L if it can yield there,
 *     else NULL (gdlua.sleep keeps its blocking nanosleep then).
 *     gdl_sched_current(): the task whose code runs now, wherever (a
 *     coroutine of its own included), for what it carries: deadline_ms,
 *     the moment its job's timeout cancels it (gdlua.client caps a call
 *     that must block there).
 *   - gdl_sched_on_close(fn): fn frees the module's process-wide state
 *     (a curl multi handle, a resolver) when the loop is closed.
 *
 * For the runtime (the process that runs concurrent jobs):
 *   - gdl_sched_spawn(L, nargs, task): the function below nargs arguments
 *     on L runs as a task (the caller owns *task, sets on_end, on_resume,
 *     data); it runs at once until it first waits or ends. Returns 1 when
 *     it ended already (on_end was called: *task may be gone), 0 when it
 *     waits, -1 when refused (the master; nothing popped, no on_end).
 *   - gdl_sched_cancel(task): a suspended task ends now: its wait's cancel
 *     frees what it held, on_end(CANCELLED) is called, and it is never
 *     resumed. Returns -1 (and does nothing) for a task that is running
 *     (the current one, or one whose code spawned the current one).
 *   - gdl_sched_busy(): tasks spawned and not ended.
 *   - gdl_sched_run_until(done, arg): runs the loop until done(arg) is
 *     true (checked after each round of callbacks) -> 0, or -1 when
 *     nothing is left to wait for (done never will be), or when called
 *     from inside the loop. gdl_sched_loop(): until no task is left.
 *     gdl_sched_poll(): one round of what is ready now, never waiting
 *     (nothing from inside the loop).
 *   - gdl_sched_base(): the base, for the runtime's own events (job
 *     server connections); NULL in the master.
 *
 * Resuming is deferred: a wake queues the task and activates one event,
 * whose callback resumes the queued tasks in order, each once a round
 * (one that yields at once, coroutine.yield() in a task, goes to the end
 * of the queue and lets the others run), never from inside a library's
 * callback (libcurl forbids re-entry into its multi handle there). A
 * task's error gets a traceback of its coroutine (luaL_traceback on the
 * dead coroutine; a non-string error goes through tostring, protected).
 *
 * Closing: the state that first used the scheduler holds a sentinel
 * whose __gc (lua_close, as "gdlua run" ends) cancels every task left,
 * delivers what the loop still owes, runs the on_close functions and
 * frees the base; a later state starts afresh. Children end with _exit
 * and never close.
 *
 * Uses gdl_lua.c (gdl_lua_pcall) and gdl_child.c (gdl_is_master).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "gdlua.h"

#define CLOSE_FNS_MAX 8

static struct {
    struct event_base *base;
    pid_t pid;              /* the process that made base */
    struct event *ready_ev; /* active while tasks are queued */
    lua_State *S;           /* a thread of the state's own, for registry work; NULL: none yet */
    int S_ref, sentinel_ref;
    gdl_sched_task_t *live; /* every task spawned and not ended */
    gdl_sched_task_t *ready, *ready_last;
    int busy, queued;
    gdl_sched_task_t *current; /* the task running now; NULL: none */
    int looping;               /* event_base_loop calls under way */
    void (*close_fns[CLOSE_FNS_MAX])(void);
    int nclose;
} sched;

typedef struct {
    gdl_sched_op_t op;
    struct event *ev;
    short fired; /* what the event reported */
    bool fd;     /* a wait_fd (results true / nil, "timeout"); else a sleep */
} wait_t;

static void on_ready(evutil_socket_t fd, short what, void *arg);

struct event_base *gdl_sched_base(void)
{
    if (gdl_is_master)
        return NULL;
    if (sched.base != NULL)
        return sched.pid == getpid() ? sched.base : NULL;
    if ((sched.base = event_base_new()) == NULL)
        return NULL;
    if ((sched.ready_ev = event_new(sched.base, -1, 0, on_ready, NULL)) == NULL) {
        event_base_free(sched.base);
        sched.base = NULL;
        return NULL;
    }
    sched.pid = getpid();
    return sched.base;
}

static int sentinel_gc(lua_State *L);

/* The Lua side, once per state: the service thread and the sentinel. */
static void attach(lua_State *L)
{
    if (sched.S != NULL)
        return;
    sched.S = lua_newthread(L);
    sched.S_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newuserdata(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, sentinel_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    sched.sentinel_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

struct event_base *gdl_sched_check(lua_State *L, const char *who)
{
    struct event_base *base = gdl_sched_base();

    if (base == NULL) {
        if (gdl_is_master)
            luaL_error(L,
                       "%s: refused in the master process: I/O runs in worker processes and scripts, not while the "
                       "master loads modules (a connection made before fork would be shared by every child)",
                       who);
        luaL_error(L, "%s: no event loop in this process (out of memory, or inherited across a fork)", who);
    }
    attach(L);
    return base;
}

void gdl_sched_on_close(void (*fn)(void))
{
    for (int i = 0; i < sched.nclose; i++)
        if (sched.close_fns[i] == fn)
            return;
    if (sched.nclose == CLOSE_FNS_MAX)
        abort(); /* a fixed set of built-in modules registers these */
    sched.close_fns[sched.nclose++] = fn;
}

/* ---- the ready queue and the live list ----------------------------------- */

static void queue(gdl_sched_task_t *t)
{
    if (t->queued)
        return;
    t->queued = true;
    t->ready_next = NULL;
    t->ready_prev = sched.ready_last;
    if (sched.ready_last)
        sched.ready_last->ready_next = t;
    else
        sched.ready = t;
    sched.ready_last = t;
    sched.queued++;
    event_active(sched.ready_ev, EV_READ, 0);
}

static void unqueue(gdl_sched_task_t *t)
{
    if (!t->queued)
        return;
    if (t->ready_prev)
        t->ready_prev->ready_next = t->ready_next;
    else
        sched.ready = t->ready_next;
    if (t->ready_next)
        t->ready_next->ready_prev = t->ready_prev;
    else
        sched.ready_last = t->ready_prev;
    t->queued = false;
    sched.queued--;
}

/* The task is over: off the live list, then on_end (which may free it),
 * then its coroutine is let go. */
static void end(gdl_sched_task_t *t, int status)
{
    lua_State *co = t->co;
    int ref = t->ref;

    unqueue(t);
    if (t->prev)
        t->prev->next = t->next;
    else
        sched.live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    sched.busy--;
    t->co = NULL;
    t->on_end(t, co, status);
    luaL_unref(sched.S, LUA_REGISTRYINDEX, ref);
}

/* The error on top of the dead coroutine co, as text with co's traceback. */
static void traceback(lua_State *co)
{
    lua_State *S = sched.S;

    if (lua_type(co, -1) != LUA_TSTRING && lua_type(co, -1) != LUA_TNUMBER) {
        lua_getfield(S, LUA_GLOBALSINDEX, "tostring");
        lua_xmove(co, S, 1);
        if (gdl_lua_pcall(S, 1, 1) != 0 || lua_type(S, -1) != LUA_TSTRING) {
            lua_pop(S, 1);
            lua_pushliteral(S, "(an error object tostring cannot convert)");
        }
        lua_xmove(S, co, 1);
    }
    luaL_traceback(co, co, lua_tostring(co, -1), 0);
    lua_remove(co, -2);
}

/* Runs t until it waits or ends, with nargs values on its stack. Returns
 * whether it ended. */
static bool resume(gdl_sched_task_t *t, int nargs)
{
    gdl_sched_task_t *prev = sched.current;
    int rc;

    if (t->on_resume)
        t->on_resume(t);
    sched.current = t;
    rc = lua_resume(t->co, nargs);
    sched.current = prev;
    if (rc == LUA_YIELD) {
        if (t->op == NULL) { /* coroutine.yield(): after the others */
            lua_settop(t->co, 0);
            queue(t);
        }
        return false;
    }
    if (rc != 0)
        traceback(t->co);
    end(t, rc == 0 ? GDL_SCHED_OK : GDL_SCHED_ERROR);
    return true;
}

/* The queued tasks, in order, each once: a task queued meanwhile waits
 * for the next round, so one that yields at once cannot starve the loop. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    int n = sched.queued;

    while (n-- > 0 && sched.ready != NULL) {
        gdl_sched_task_t *t = sched.ready;
        gdl_sched_op_t *op = t->op;
        int nres = 0;

        unqueue(t);
        if (op != NULL) {
            t->op = NULL;
            op->task = NULL;
            lua_checkstack(t->co, LUA_MINSTACK);
            nres = op->finish(t->co, op);
        }
        resume(t, nres);
    }
    if (sched.queued > 0)
        event_active(sched.ready_ev, EV_READ, 0);
}

/* ---- tasks ---------------------------------------------------------------- */

int gdl_sched_spawn(lua_State *L, int nargs, gdl_sched_task_t *t)
{
    lua_State *co;

    if (gdl_sched_base() == NULL)
        return -1;
    attach(L);
    co = lua_newthread(L);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_xmove(L, co, nargs + 1);
    t->co = co;
    t->op = NULL;
    t->queued = false;
    t->prev = NULL;
    t->next = sched.live;
    if (sched.live)
        sched.live->prev = t;
    sched.live = t;
    sched.busy++;
    return resume(t, nargs) ? 1 : 0;
}

int gdl_sched_cancel(gdl_sched_task_t *t)
{
    gdl_sched_op_t *op = t->op;

    /* Running (or suspended in a nested resume of a task it spawned). */
    if (lua_status(t->co) != LUA_YIELD)
        return -1;
    unqueue(t);
    if (op != NULL) {
        t->op = NULL;
        op->task = NULL;
        op->cancel(t->co, op);
    }
    end(t, GDL_SCHED_CANCELLED);
    return 0;
}

int gdl_sched_busy(void)
{
    return sched.busy;
}

gdl_sched_task_t *gdl_sched_task_of(lua_State *L)
{
    gdl_sched_task_t *t = sched.current;

    return t != NULL && t->co == L && lua_isyieldable(L) ? t : NULL;
}

gdl_sched_task_t *gdl_sched_current(void)
{
    return sched.current;
}

/* ---- waiting -------------------------------------------------------------- */

/* One round of the loop (blocking until something happens): 0, or -1
 * when nothing is left that could happen. */
static int loop_once(void)
{
    int rc;

    sched.looping++;
    rc = event_base_loop(sched.base, EVLOOP_ONCE);
    sched.looping--;
    return rc == 0 ? 0 : -1;
}

int gdl_sched_await(lua_State *L, gdl_sched_op_t *op)
{
    gdl_sched_task_t *t = sched.current;
    const char *why, *what;

    attach(L);
    if (op->done)
        return op->finish(L, op);
    if (t != NULL && t->co == L && lua_isyieldable(L)) {
        op->task = t;
        t->op = op;
        return lua_yield(L, 0);
    }
    if (t == NULL && sched.looping == 0) {
        while (!op->done) {
            if (loop_once() < 0) {
                what = op->what;
                op->cancel(L, op);
                return luaL_error(L, "%s: nothing is left that could end this wait (a bug in the module)", what);
            }
        }
        return op->finish(L, op);
    }
    if (t == NULL)
        why = "Lua code called from an event callback cannot wait for events";
    else if (t->co != L)
        why = "it runs in a coroutine of its own inside a concurrent job (only the job's own coroutine can wait "
              "without holding the others)";
    else
        why = "it is called across a C call (a metamethod, or a callback called from C) inside a concurrent job";
    what = op->what; /* op is freed by its cancel */
    op->cancel(L, op);
    return luaL_error(L, "%s: cannot wait here: %s", what, why);
}

void gdl_sched_wake(gdl_sched_op_t *op)
{
    if (op->done)
        return;
    op->done = true;
    if (op->task != NULL)
        queue(op->task);
}

static void on_wait(evutil_socket_t fd, short what, void *arg)
{
    wait_t *w = arg;

    w->fired = what;
    gdl_sched_wake(&w->op);
}

static int wait_finish(lua_State *L, gdl_sched_op_t *op)
{
    wait_t *w = (wait_t *)op;
    bool timed_out = (w->fired & EV_TIMEOUT) != 0, fd = w->fd;

    event_free(w->ev);
    free(w);
    if (!fd)
        return 0;
    if (timed_out) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static void wait_cancel(lua_State *L, gdl_sched_op_t *op)
{
    wait_t *w = (wait_t *)op;

    event_free(w->ev);
    free(w);
}

static int wait_event(lua_State *L, int fd, short what, int timeout_ms, const char *who)
{
    struct event_base *base = gdl_sched_check(L, who);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    wait_t *w = calloc(1, sizeof(*w));

    if (w == NULL || (w->ev = event_new(base, fd, what, on_wait, w)) == NULL) {
        free(w);
        return luaL_error(L, "%s: out of memory", who);
    }
    w->op.finish = wait_finish;
    w->op.cancel = wait_cancel;
    w->op.what = who;
    w->fd = fd >= 0;
    event_add(w->ev, timeout_ms >= 0 ? &tv : NULL);
    return gdl_sched_await(L, &w->op);
}

int gdl_sched_wait_fd(lua_State *L, int fd, short what, int timeout_ms)
{
    return wait_event(L, fd, (short)(what & (EV_READ | EV_WRITE)), timeout_ms, "gdl_sched_wait_fd");
}

int gdl_sched_sleep(lua_State *L, int ms)
{
    return wait_event(L, -1, 0, ms < 0 ? 0 : ms, "gdlua.sleep");
}

/* ---- running the loop ----------------------------------------------------- */

int gdl_sched_run_until(bool (*done)(void *arg), void *arg)
{
    if (gdl_sched_base() == NULL || sched.looping > 0)
        return -1;
    while (!done(arg))
        if (loop_once() < 0)
            return -1;
    return 0;
}

void gdl_sched_poll(void)
{
    if (gdl_sched_base() == NULL || sched.looping > 0)
        return;
    sched.looping++;
    event_base_loop(sched.base, EVLOOP_NONBLOCK);
    sched.looping--;
}

static bool no_task(void *arg)
{
    return sched.busy == 0;
}

int gdl_sched_loop(void)
{
    return gdl_sched_run_until(no_task, NULL);
}

/* lua_close: every task left is cancelled, what the loop still owes
 * (deferred callbacks of cancelled requests) is delivered, the modules
 * free their state, then the base goes. */
static int sentinel_gc(lua_State *L)
{
    while (sched.live != NULL)
        if (gdl_sched_cancel(sched.live) < 0)
            abort(); /* nothing runs while a state closes */
    if (sched.base != NULL && sched.pid == getpid()) {
        event_base_loop(sched.base, EVLOOP_NONBLOCK);
        while (sched.nclose > 0)
            sched.close_fns[--sched.nclose]();
        event_free(sched.ready_ev);
        event_base_free(sched.base);
    }
    memset(&sched, 0, sizeof(sched));
    return 0;
}
