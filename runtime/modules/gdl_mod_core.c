/*
 * gdl_mod_core.c: the "gdlua.core" module (pid, sleep, log, version, the
 * process limit) that lua/gdlua/init.lua re-exports as "gdlua"; and for
 * gdlua.testing, a result number as a child sends it and the module
 * search of the loader (gdl_lua.c). Its log writes through gdl_log.c's
 * gdl_log_job: a line a job wrote. Uses gdl_sched.c for sleeping in a
 * concurrent job.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
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

/* The keys a JSON line has of its own: a field may not take one. */
static const char *const line_keys[] = {"time", "level", "pid", "job", "handle", "msg", NULL};

static int cmp_field(const void *a, const void *b)
{
    return strcmp(((const gdl_log_field_t *)a)->key, ((const gdl_log_field_t *)b)->key);
}

/* The table at idx as fields, sorted by name (a line reads the same
 * each time); their texts stay on the stack until the line is written. */
static int read_fields(lua_State *L, int idx, gdl_log_field_t *fields, char (*numbers)[32])
{
    int n = 0;

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        gdl_log_field_t *f = &fields[n];
        const char *key;
        size_t len;

        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "gdlua.log: field names must be strings, got a %s", luaL_typename(L, -2));
        key = lua_tolstring(L, -2, &len);
        if (len == 0 || len > 64 ||
            strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len)
            return luaL_error(L, "gdlua.log: field name \"%s\" must be 1 to 64 letters, digits, '_', '.' or '-'", key);
        for (int k = 0; line_keys[k]; k++)
            if (strcmp(key, line_keys[k]) == 0)
                return luaL_error(L,
                                  "gdlua.log: field name \"%s\" is a key of the line's own (time, level, pid, job, "
                                  "handle, msg)",
                                  key);
        if (n == GDL_LOG_FIELDS_MAX)
            return luaL_error(L, "gdlua.log: more than %d fields", GDL_LOG_FIELDS_MAX);
        if (!lua_checkstack(L, 4))
            return luaL_error(L, "gdlua.log: out of stack space");
        f->key = key;
        f->literal = false;
        switch (lua_type(L, -1)) {
        case LUA_TNUMBER: {
            double v = lua_tonumber(L, -1);

            f->len = (size_t)gdl_format_number(v, numbers[n], sizeof(numbers[n]));
            f->value = numbers[n];
            f->literal = isfinite(v); /* JSON has no nan or inf: those are strings */
            break;
        }
        case LUA_TBOOLEAN:
            f->value = lua_toboolean(L, -1) ? "true" : "false";
            f->len = strlen(f->value);
            f->literal = true;
            break;
        case LUA_TSTRING:
            f->value = lua_tolstring(L, -1, &f->len);
            break;
        default: /* as print shows it */
            lua_getfield(L, LUA_GLOBALSINDEX, "tostring");
            lua_pushvalue(L, -2);
            lua_call(L, 1, 1);
            if ((f->value = lua_tolstring(L, -1, &f->len)) == NULL)
                return luaL_error(L, "'tostring' must return a string to 'gdlua.log'");
            lua_replace(L, -2);
        }
        /* The value (or its text) stays on the stack, below the key
         * lua_next takes: its string lives until the line is written. */
        lua_insert(L, -2);
        n++;
    }
    qsort(fields, n, sizeof(*fields), cmp_field);
    return n;
}

/* gdlua.log(level, ...): a line in gdlua's log. The values after the
 * level are joined as print joins them (tostring, a tab between); a
 * table as the last of them (without __tostring) holds fields instead,
 * keys of a JSON line ({user = 1}: "user":1) and key=value in text. A
 * level the log leaves out costs a comparison. */
static int core_log(lua_State *L)
{
    int level = luaL_checkoption(L, 1, NULL, gdl_log_levels);
    int top = lua_gettop(L), last = top, nfields = 0;
    gdl_log_field_t fields[GDL_LOG_FIELDS_MAX];
    char numbers[GDL_LOG_FIELDS_MAX][32];
    luaL_Buffer b;
    const char *msg;
    size_t len;

    if (level > gdl_log_level)
        return 0;
    if (top >= 2 && lua_type(L, top) == LUA_TTABLE) {
        if (luaL_getmetafield(L, top, "__tostring"))
            lua_pop(L, 1);
        else
            last = top - 1;
    }
    luaL_buffinit(L, &b);
    for (int i = 2; i <= last; i++) {
        lua_getfield(L, LUA_GLOBALSINDEX, "tostring");
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "'tostring' must return a string to 'gdlua.log'");
        if (i > 2)
            luaL_addchar(&b, '\t');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    if (last < top) {
        nfields = read_fields(L, top, fields, numbers);
        lua_pushvalue(L, top + 1); /* the message, above the fields' texts */
    }
    msg = lua_tolstring(L, -1, &len);
    gdl_log_job(level, msg, len, fields, nfields);
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
    lua_pushinteger(L, GDL_CONCURRENCY_MAX);
    lua_setfield(L, -2, "concurrency_max");
    return 1;
}
