/*
 * gdl_main.c: the gdlua command: "gdlua [options] DIR..." loads the job
 * modules and runs the master (gdl_master.c); "gdlua run SCRIPT" runs a
 * Lua script with the gdlua modules available; "gdlua call FUNCTION"
 * submits one job (lua/gdlua/cli.lua); "gdlua test" runs job modules'
 * tests in process (lua/gdlua/testing.lua). Serving wires the units: the
 * master's loop first, then the console, the HTTP endpoint and systemd's
 * notifications on it, each listening to the master's events
 * (gdl_master_on, from its init), then the master runs (and has a loader
 * load the modules, gdl_generations.c); gdl_daemon.c detaches before the
 * loop exists and drops privileges once the console is bound, so modules
 * load as the user given. --check loads them here.
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

/* gdlua call FUNC [options] < in > out, gdlua test [options] [PATH...]:
 * a Lua module's main does it all (lua/gdlua/cli.lua,
 * lua/gdlua/testing.lua); its result is the exit status. */
static int lua_main(const char *cmd, const char *module, int argc, char **argv)
{
    lua_State *L = gdl_L = gdl_lua_new();
    int rc;

    if (L == NULL) {
        fprintf(stderr, "%s: cannot create a Lua state\n", cmd);
        return 1;
    }
    if (gdl_lua_require(L, module) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    if (gdl_lua_pcall(L, 1, 1) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    rc = (int)lua_tointeger(L, -1);
    lua_close(L);
    return rc;
}

int main(int argc, char **argv)
{
    struct event_base *base;
    int failed, rc;

    gdl_proctitle_init(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return run_script(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "call") == 0)
        return lua_main("gdlua call", "gdlua.cli", argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return lua_main("gdlua test", "gdlua.testing", argc - 2, argv + 2);

    switch (gdl_options_parse(&gdl_config, argc, argv)) {
    case GDL_OPTS_EXIT_OK:
        return 0;
    case GDL_OPTS_EXIT_ERROR:
        return 2;
    }
    if (!gdl_config.check && gdl_daemon_check() < 0)
        return 2;
    gdl_log_level = gdl_config.loglevel;
    gdl_log_format = gdl_config.logformat;
    if (gdl_config.loglayout && gdl_log_layout(gdl_config.loglayout) < 0)
        return 2;
    if (gdl_log_open(gdl_config.logfile) < 0)
        return 1;
    gdl_is_master = true;
    if (gdl_config.check) {
        char err[512];

        if ((gdl_L = gdl_lua_new()) == NULL) {
            gdl_error("cannot create a Lua state");
            return 1;
        }
        failed = gdl_lua_load_pools(err, sizeof(err));
        gdl_lua_print_pools();
        return failed || gdl_npools == 0 ? 1 : 0;
    }
    if (gdl_config.interval == 0 && gdl_config.no_wakeups)
        gdl_warn("--interval 0 with --no_wakeups: nothing will notice queued work, so jobs with min_processes 0 "
                 "never start");
    if (gdl_config.daemonize && gdl_daemon_detach() < 0)
        return 1;
    if ((base = gdl_master_init()) == NULL || gdl_console_init(base) < 0 || gdl_http_init(base) < 0)
        return 1;
    gdl_notify_init(base);
    if (gdl_daemon_ready() < 0)
        return 1;
    rc = gdl_master_run();
    gdl_daemon_exit();
    return rc;
}
