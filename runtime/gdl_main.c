/*
 * gdl_main.c: the gdlua command: "gdlua [options] DIR..." loads the job
 * modules and runs the master (gdl_master.c); "gdlua run SCRIPT" runs a
 * Lua script with the gdlua modules available; "gdlua call FUNCTION"
 * submits one job (lua/gdlua/cli.lua).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gdlua.h"

static int run_script(int argc, char **argv)
{
    lua_State *L;
    int rc;

    if (argc < 1) {
        fprintf(stderr, "usage: gdlua run SCRIPT.lua [ARG...]\n");
        return 2;
    }
    L = gdl_L = gdl_lua_new();
    if (L == NULL) {
        fprintf(stderr, "gdlua: cannot create a Lua state\n");
        return 1;
    }
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setfield(L, LUA_GLOBALSINDEX, "arg");
    if (luaL_loadfile(L, argv[0]) != 0) {
        fprintf(stderr, "gdlua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    for (int i = 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    rc = gdl_lua_pcall(L, argc - 1, 0);
    if (rc != 0)
        fprintf(stderr, "gdlua: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc ? 1 : 0;
}

static int call_usage(void)
{
    fprintf(stderr, "usage: gdlua call FUNCTION [--server HOST[:PORT][,...]]... [--unique ID] [--timeout MS] "
                    "< WORKLOAD > RESULT\n");
    return 2;
}

/* gdlua call FUNC [options] < in > out: one job, like "gearman -f", but
 * exiting 1 with the job's error message when it fails. */
static int call_job(int argc, char **argv)
{
    const char *fn = NULL, *unique = NULL;
    char err[256], *data = NULL;
    size_t len = 0, cap = 0, n;
    long timeout = -1;
    lua_State *L;
    int rc;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            call_usage();
            return 0;
        }
        if (a[0] != '-') {
            if (fn)
                return call_usage();
            fn = a;
            continue;
        }
        if (i + 1 == argc)
            return call_usage();
        if (strcmp(a, "--server") == 0) {
            if (gdl_servers_parse(&gdl_config, argv[++i], err, sizeof(err)) < 0) {
                fprintf(stderr, "gdlua call: --server: %s\n", err);
                return 2;
            }
        } else if (strcmp(a, "--unique") == 0) {
            unique = argv[++i];
        } else if (strcmp(a, "--timeout") == 0) {
            char *end;
            timeout = strtol(argv[++i], &end, 10);
            if (*end || timeout < 0)
                return call_usage();
        } else {
            return call_usage();
        }
    }
    if (fn == NULL)
        return call_usage();
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            data = realloc(data, cap);
            if (data == NULL)
                return 1;
        }
        n = fread(data + len, 1, cap - len, stdin);
        len += n;
    } while (n > 0);
    L = gdl_L = gdl_lua_new();
    lua_getfield(L, LUA_GLOBALSINDEX, "require");
    lua_pushstring(L, "gdlua.cli");
    if (gdl_lua_pcall(L, 1, 1) != 0) {
        fprintf(stderr, "gdlua call: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_getfield(L, -1, "call");
    lua_pushstring(L, fn);
    lua_pushlstring(L, data ? data : "", len);
    free(data);
    if (unique)
        lua_pushstring(L, unique);
    else
        lua_pushnil(L);
    if (timeout >= 0)
        lua_pushnumber(L, (lua_Number)timeout);
    else
        lua_pushnil(L);
    if (gdl_lua_pcall(L, 4, 1) != 0) {
        fprintf(stderr, "gdlua call: %s\n", lua_tostring(L, -1));
        return 1;
    }
    rc = (int)lua_tointeger(L, -1);
    lua_close(L);
    return rc;
}

int main(int argc, char **argv)
{
    int failed;

    gdl_proctitle_init(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return run_script(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "call") == 0)
        return call_job(argc - 2, argv + 2);

    switch (gdl_options_parse(&gdl_config, argc, argv)) {
    case GDL_OPTS_EXIT_OK:
        return 0;
    case GDL_OPTS_EXIT_ERROR:
        return 2;
    }
    gdl_log_level = gdl_config.loglevel;
    if (gdl_log_open(gdl_config.logfile) < 0)
        return 1;
    gdl_is_master = true;
    gdl_L = gdl_lua_new();
    if (gdl_L == NULL) {
        gdl_error("cannot create a Lua state");
        return 1;
    }
    failed = gdl_lua_load_jobs();
    if (gdl_config.check) {
        gdl_lua_print_jobs();
        return failed || gdl_njobs == 0 ? 1 : 0;
    }
    if (gdl_njobs == 0) {
        gdl_error("no job to serve: %d module(s) failed to load, none defined a job", failed);
        return 1;
    }
    if (failed)
        gdl_warn("%d module(s) failed to load; serving the other %d job(s)", failed, gdl_njobs);
    return gdl_master_run();
}
