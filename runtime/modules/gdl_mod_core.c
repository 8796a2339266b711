/*
 * gdl_mod_core.c: the "gdlua.core" module (pid, sleep, log, version, the
 * process limit) that lua/gdlua/init.lua re-exports as "gdlua"; and for
 * gdlua.testing, a result number as a child sends it and the module
 * search of the loader (gdl_lua.c). Uses gdl_sched.c for sleeping in a
 * concurrent job.
 */
#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "gdlua.h"

/* gdlua.pid() -> the calling process's pid */
static int core_pid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

/* gdlua.sleep(seconds): in a coroutine gdl_sched.c runs (a concurrent
 * job), suspends it alone (whole milliseconds, rounded up; 0 lets the
 * others run first). Anywhere else it blocks the process, as it always
 * has (a child serves one job at a time, so this only delays its own
 * job), and a signal does not cut it short. */
static int core_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);

    struct timespec ts;

    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be from 0 to 86400");
    if (gdl_sched_task_of(L) != NULL)
        return gdl_sched_sleep(L, (int)ceil(s * 1000));
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 0;
}

/* gdlua.log(level, message): a line in gdlua's log. */
static int core_log(lua_State *L)
{
    int level = luaL_checkoption(L, 1, NULL, gdl_log_levels);
    const char *msg = luaL_checkstring(L, 2);

    gdl_log(level, "%s", msg);
    return 0;
}

/* gdlua.core.format_number(n) -> n as a child sends a job's numeric
 * result (gdl_format_number) */
static int core_format_number(lua_State *L)
{
    char buf[64];
    int n = gdl_format_number(luaL_checknumber(L, 1), buf, sizeof(buf));

    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static const luaL_Reg core_api[] = {
    {"pid", core_pid},
    {"sleep", core_sleep},
    {"log", core_log},
    {"format_number", core_format_number},
    {"find_modules", gdl_lua_find_modules},
    {NULL, NULL},
};

int luaopen_gdlua_core(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, core_api);
    lua_pushstring(L, GDLUA_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, GDL_PROCS_MAX);
    lua_setfield(L, -2, "procs_max");
    return 1;
}
