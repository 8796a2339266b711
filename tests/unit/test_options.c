/* test_options.c: the command line and server lists. */
#include <stdlib.h>

#include "gdlua.h"
#include "unit.h"

static gdl_config_t cfg;

static int parse(int argc, char **argv)
{
    memset(&cfg, 0, sizeof(cfg));
    return gdl_options_parse(&cfg, argc, argv);
}

static int servers(const char *list)
{
    char err[256];

    memset(&cfg, 0, sizeof(cfg));
    return gdl_servers_parse(list, GDL_DEFAULT_PORT, cfg.servers, &cfg.nservers, GDL_SERVERS_MAX, err, sizeof(err)) < 0
               ? -1
               : cfg.nservers;
}

int main(void)
{
    CHECK_INT(servers("localhost"), 1);
    CHECK_STR(cfg.servers[0].host, "localhost");
    CHECK_INT(cfg.servers[0].port, 4730);

    CHECK_INT(servers("a:1,b:65535, c"), 3);
    CHECK_STR(cfg.servers[0].host, "a");
    CHECK_INT(cfg.servers[0].port, 1);
    CHECK_STR(cfg.servers[1].host, "b");
    CHECK_INT(cfg.servers[1].port, 65535);
    CHECK_STR(cfg.servers[2].host, "c");
    CHECK_INT(cfg.servers[2].port, 4730);

    CHECK_INT(servers("[::1]:4731,[fe80::1]"), 2);
    CHECK_STR(cfg.servers[0].host, "::1");
    CHECK_INT(cfg.servers[0].port, 4731);
    CHECK_STR(cfg.servers[1].host, "fe80::1");
    CHECK_INT(cfg.servers[1].port, 4730);

    CHECK_INT(servers("a:0"), -1);
    CHECK_INT(servers("a:65536"), -1);
    CHECK_INT(servers("a:"), -1);
    CHECK_INT(servers("a:12x"), -1);
    CHECK_INT(servers(":4730"), -1);
    CHECK_INT(servers("[::1"), -1);
    CHECK_INT(servers("[::1]x"), -1);
    CHECK_INT(servers("::1"), -1); /* unbracketed IPv6: ambiguous */
    CHECK_INT(servers("h:1:2"), -1);
    /* A list with no server is refused, not read as the default. */
    CHECK_INT(servers(""), -1);
    CHECK_INT(servers(",,"), -1);
    CHECK_INT(servers(" "), -1);
    {
        char err[256];
        int n = 0;

        CHECK_INT(gdl_servers_parse("", GDL_DEFAULT_PORT, cfg.servers, &n, GDL_SERVERS_MAX, err, sizeof(err)), -1);
        CHECK_STR(err, "'' names no server (HOST[:PORT][,...])");
    }
    {
        char *argv[] = {"gdlua", "--server", "", "d"};
        CHECK_INT(parse(4, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        char why[256];
        gdl_server_t s = {"127.0.0.1", 4730}, bad = {"no-such-host.invalid", 4730};

        CHECK_INT(gdl_server_resolve(&s, NULL, why, sizeof(why)), 0);
        CHECK_INT(gdl_server_resolve(&bad, NULL, why, sizeof(why)), -1);
        CHECK(strncmp(why, "cannot resolve: ", 16) == 0);
        CHECK_STR(gdl_server_name(&bad, why, sizeof(why)), "no-such-host.invalid:4730");
        CHECK_STR(gdl_server_name(&(gdl_server_t){"::1", 1}, why, sizeof(why)), "[::1]:1");
    }

    {
        char *argv[] = {"gdlua", "--server", "h1:1", "--server=h2:2,h3", "--lib", "L", "--no-such-option", NULL};
        /* unknown option */
        CHECK_INT(parse(7, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        char *argv[] = {"gdlua", "--server",   "h1:1",  "--server=h2:2,h3",  "--lib", "L",   "--shutdown-timeout",
                        "7",     "--loglevel", "debug", "--namespaces=A::B", "dir1",  "dir2"};
        CHECK_INT(parse(13, argv), GDL_OPTS_OK);
        CHECK_INT(cfg.nservers, 3);
        CHECK_STR(cfg.servers[1].host, "h2");
        CHECK_INT(cfg.servers[2].port, 4730);
        CHECK_INT(cfg.nlibs, 1);
        CHECK_INT(cfg.shutdown_timeout, 7);
        CHECK_INT(cfg.loglevel, GDL_LOG_DEBUG);
        CHECK_INT(cfg.nnamespaces, 1);
        CHECK_STR(cfg.namespaces[0], "A::B");
        CHECK_INT(cfg.ndirs, 2);
        CHECK_STR(cfg.dirs[1], "dir2");
    }
    {
        char *argv[] = {"gdlua", "--shutdown_timeout", "-1", "d"};
        CHECK_INT(parse(4, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        char *argv[] = {"gdlua", "--loglevel", "loud", "d"};
        CHECK_INT(parse(4, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        char *argv[] = {"gdlua", "--lib"};
        CHECK_INT(parse(2, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        char *argv[] = {"gdlua", "--check=yes", "d"};
        CHECK_INT(parse(3, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        char *argv[] = {"gdlua", "--server", "h:1"}; /* no directory */
        CHECK_INT(parse(3, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        char *argv[] = {"gdlua", "d"};
        setenv("GEARMAN_SERVERS", "e1:11,e2", 1);
        CHECK_INT(parse(2, argv), GDL_OPTS_OK);
        CHECK_INT(cfg.nservers, 2);
        CHECK_STR(cfg.servers[0].host, "e1");
        CHECK_INT(cfg.servers[0].port, 11);
        unsetenv("GEARMAN_SERVERS");
        CHECK_INT(parse(2, argv), GDL_OPTS_OK);
        CHECK_INT(cfg.nservers, 1);
        CHECK_STR(cfg.servers[0].host, "127.0.0.1");
        CHECK_INT(cfg.servers[0].port, 4730);
        CHECK_INT(cfg.shutdown_timeout, 30);
        CHECK_INT(cfg.logformat, GDL_LOGFORMAT_TEXT);
        CHECK(cfg.http_bind == NULL);
    }
    {
        char *argv[] = {"gdlua", "--logformat", "json", "--http-bind", "127.0.0.1:9", "--http_insecure", "d"};
        CHECK_INT(parse(7, argv), GDL_OPTS_OK);
        CHECK_INT(cfg.logformat, GDL_LOGFORMAT_JSON);
        CHECK_STR(cfg.http_bind, "127.0.0.1:9");
        CHECK(cfg.http_insecure);
    }
    {
        char *argv[] = {"gdlua", "--logformat=JSON", "d"};
        CHECK_INT(parse(3, argv), GDL_OPTS_EXIT_ERROR);
    }
    {
        /* Trailing slashes go where directories are taken: jobs/T/A.lua, not jobs//T/A.lua. */
        char *argv[] = {"gdlua", "--lib", "L/", "--cpath=C//", "jobs/", "/", "a/b", "--strict"};
        CHECK_INT(parse(8, argv), GDL_OPTS_OK);
        CHECK_INT(cfg.ndirs, 3);
        CHECK_STR(cfg.dirs[0], "jobs");
        CHECK_STR(cfg.dirs[1], "/");
        CHECK_STR(cfg.dirs[2], "a/b");
        CHECK_STR(cfg.libs[0], "L");
        CHECK_STR(cfg.cpaths[0], "C");
        CHECK(cfg.strict);
        gdl_options_free(&cfg);
    }
    UNIT_END();
}
