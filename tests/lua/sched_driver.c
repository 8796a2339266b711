/*
 * sched_driver.c: "gdlua run" with gdl_sched.c's C interface in reach of
 * Lua, for the tests of the managed-coroutine mode (tests/lua/managed/):
 * what a runtime running concurrent jobs does, driven from a script.
 *
 *   sched_driver SCRIPT.lua [ARG...]
 *   local t = sched.spawn(fn, ...)   -- gdl_sched_spawn: runs until it first waits
 *   t:status()                       -- "running", "ok", "error", "cancelled"
 *   t:result()                       -- its results (ok), or its message (error)
 *   sched.cancel(t)                  -- gdl_sched_cancel: true, or false (running, ended)
 *   sched.busy()                     -- gdl_sched_busy
 *   sched.loop()                     -- gdl_sched_loop: true, or false (nothing to wait for)
 *   sched.wait_fd(fd, "r" | "w", timeout) -- gdl_sched_wait_fd: true | nil, "timeout"
 *   local r, w = sched.pipe(); sched.write(w, s); sched.close(fd)  -- fds to wait on
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <lauxlib.h>

#include "gdlua.h"

#define TASK_MT "sched_driver.task"

enum { RUNNING = -1 };

typedef struct {
    gdl_sched_task_t task; /* first: the task is the userdata */
    int status;            /* RUNNING or GDL_SCHED_* */
    int self_ref;          /* anchors the userdata while it runs */
    int result_ref;        /* its results (a table) or its message */
} task_ud_t;

static void on_end(gdl_sched_task_t *task, lua_State *co, int status)
{
    task_ud_t *t = (task_ud_t *)task;

    t->status = status;
    if (status == GDL_SCHED_OK) {
        int n = lua_gettop(co);

        lua_createtable(co, n, 1);
        lua_insert(co, 1);
        for (int i = n; i >= 1; i--)
            lua_rawseti(co, 1, i);
        lua_pushinteger(co, n);
        lua_setfield(co, 1, "n");
    } else if (status == GDL_SCHED_CANCELLED) {
        lua_pushnil(co);
    }
    t->result_ref = luaL_ref(co, LUA_REGISTRYINDEX);
    luaL_unref(co, LUA_REGISTRYINDEX, t->self_ref);
    t->self_ref = LUA_NOREF;
}

static int sched_spawn(lua_State *L)
{
    int n = lua_gettop(L);
    task_ud_t *t;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    t = lua_newuserdata(L, sizeof(*t));
    *t = (task_ud_t){.status = RUNNING, .self_ref = LUA_NOREF, .result_ref = LUA_NOREF};
    t->task.on_end = on_end;
    luaL_getmetatable(L, TASK_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    for (int i = 1; i <= n; i++)
        lua_pushvalue(L, i);
    if (gdl_sched_spawn(L, n - 1, &t->task) < 0)
        return luaL_error(L, "sched.spawn: refused");
    return 1;
}

static int sched_cancel(lua_State *L)
{
    task_ud_t *t = luaL_checkudata(L, 1, TASK_MT);

    lua_pushboolean(L, t->status == RUNNING && gdl_sched_cancel(&t->task) == 0);
    return 1;
}

static int sched_busy(lua_State *L)
{
    lua_pushinteger(L, gdl_sched_busy());
    return 1;
}

static int sched_loop(lua_State *L)
{
    lua_pushboolean(L, gdl_sched_loop() == 0);
    return 1;
}

static int sched_wait_fd(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    static const char *const whats[] = {"r", "w", NULL};
    int what = luaL_checkoption(L, 2, NULL, whats);
    lua_Number t = luaL_optnumber(L, 3, -1);

    return gdl_sched_wait_fd(L, fd, what == 0 ? EV_READ : EV_WRITE, t < 0 ? -1 : (int)(t * 1000));
}

static int sched_pipe(lua_State *L)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return luaL_error(L, "pipe: %s", strerror(errno));
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

static int sched_write(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);

    lua_pushinteger(L, (lua_Integer)write((int)luaL_checkinteger(L, 1), s, len));
    return 1;
}

static int sched_close(lua_State *L)
{
    close((int)luaL_checkinteger(L, 1));
    return 0;
}

static int task_status(lua_State *L)
{
    static const char *const names[] = {"ok", "error", "cancelled"};
    task_ud_t *t = luaL_checkudata(L, 1, TASK_MT);

    lua_pushstring(L, t->status == RUNNING ? "running" : names[t->status]);
    return 1;
}

static int task_result(lua_State *L)
{
    task_ud_t *t = luaL_checkudata(L, 1, TASK_MT);
    int n;

    if (t->status == RUNNING)
        return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->result_ref);
    if (t->status != GDL_SCHED_OK)
        return 1;
    lua_getfield(L, -1, "n");
    n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n, "results");
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, -i, i);
    return n;
}

static const luaL_Reg sched_api[] = {
    {"spawn", sched_spawn}, {"cancel", sched_cancel},   {"busy", sched_busy},
    {"loop", sched_loop},   {"wait_fd", sched_wait_fd}, {"pipe", sched_pipe},
    {"write", sched_write}, {"close", sched_close},     {NULL, NULL},
};

static const luaL_Reg task_methods[] = {
    {"status", task_status},
    {"result", task_result},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    lua_State *L;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: sched_driver SCRIPT.lua [ARG...]\n");
        return 2;
    }
    if ((L = gdl_L = gdl_lua_new()) == NULL) {
        fprintf(stderr, "sched_driver: cannot create a Lua state\n");
        return 1;
    }
    luaL_newmetatable(L, TASK_MT);
    lua_newtable(L);
    luaL_register(L, NULL, task_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_register(L, NULL, sched_api);
    lua_setfield(L, LUA_GLOBALSINDEX, "sched");
    lua_createtable(L, argc, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setfield(L, LUA_GLOBALSINDEX, "arg");
    if (luaL_loadfile(L, argv[1]) != 0) {
        fprintf(stderr, "sched_driver: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    rc = gdl_lua_pcall(L, 0, 0);
    if (rc != 0)
        fprintf(stderr, "sched_driver: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc ? 1 : 0;
}
