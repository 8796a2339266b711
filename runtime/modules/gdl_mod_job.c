/*
 * gdl_mod_job.c: the job object a Lua job function receives.
 *
 * A job object wraps a gearman_job_st for the length of one call; the
 * child invalidates it afterwards, so a job kept past its call raises a
 * clear error instead of touching freed memory.
 */
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <libgearman-1.0/gearman.h>

#include "gdlua.h"

#define JOB_MT "gdlua.job"

typedef struct {
    gearman_job_st *job;
} job_ud_t;

static gearman_job_st *check_job(lua_State *L)
{
    job_ud_t *ud = luaL_checkudata(L, 1, JOB_MT);

    if (ud->job == NULL)
        luaL_error(L, "job object used after its job finished");
    return ud->job;
}

static int push_send_result(lua_State *L, gearman_return_t rc)
{
    if (gearman_success(rc)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, gearman_strerror(rc));
    return 2;
}

/* job:status(numerator, denominator) -> true | nil, message */
static int job_status(lua_State *L)
{
    gearman_job_st *job = check_job(L);
    lua_Number n = luaL_checknumber(L, 2), d = luaL_checknumber(L, 3);

    /* Written so that NaN fails too: no comparison with it is true, and
     * converting it to an integer is undefined. */
    if (!(n >= 0 && n <= 4294967295.0 && d >= 0 && d <= 4294967295.0))
        return luaL_error(L, "status: numerator and denominator must be from 0 to 2^32-1, got %f and %f", n, d);
    return push_send_result(L, gearman_job_send_status(job, (uint32_t)n, (uint32_t)d));
}

/* job:data(chunk) -> true | nil, message */
static int job_data(lua_State *L)
{
    gearman_job_st *job = check_job(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);

    return push_send_result(L, gearman_job_send_data(job, s, len));
}

/* job:warning(message) -> true | nil, message */
static int job_warning(lua_State *L)
{
    gearman_job_st *job = check_job(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);

    return push_send_result(L, gearman_job_send_warning(job, s, len));
}

static const luaL_Reg job_methods[] = {
    {"status", job_status},
    {"data", job_data},
    {"warning", job_warning},
    {NULL, NULL},
};

/* Fields are read from the gearman job on access: workload, handle,
 * unique, function_name; anything else is a method or nil. */
static int job_index(lua_State *L)
{
    gearman_job_st *job = check_job(L);
    const char *k = luaL_checkstring(L, 2);

    if (strcmp(k, "workload") == 0)
        lua_pushlstring(L, gearman_job_workload(job), gearman_job_workload_size(job));
    else if (strcmp(k, "handle") == 0)
        lua_pushstring(L, gearman_job_handle(job));
    else if (strcmp(k, "unique") == 0)
        lua_pushstring(L, gearman_job_unique(job));
    else if (strcmp(k, "function_name") == 0)
        lua_pushstring(L, gearman_job_function_name(job));
    else {
        lua_getmetatable(L, 1);
        lua_getfield(L, -1, "methods");
        lua_getfield(L, -1, k);
    }
    return 1;
}

static int job_tostring(lua_State *L)
{
    job_ud_t *ud = luaL_checkudata(L, 1, JOB_MT);

    if (ud->job)
        lua_pushfstring(L, "gdlua.job (%s)", gearman_job_handle(ud->job));
    else
        lua_pushliteral(L, "gdlua.job (finished)");
    return 1;
}

void gdl_job_push(lua_State *L, gearman_job_st *job)
{
    job_ud_t *ud = lua_newuserdata(L, sizeof(*ud));

    ud->job = job;
    if (luaL_newmetatable(L, JOB_MT)) {
        lua_pushcfunction(L, job_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, job_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_newtable(L);
        luaL_register(L, NULL, job_methods);
        lua_setfield(L, -2, "methods");
    }
    lua_setmetatable(L, -2);
}

void gdl_job_invalidate(lua_State *L, int idx)
{
    job_ud_t *ud = lua_touserdata(L, idx);

    if (ud)
        ud->job = NULL;
}
