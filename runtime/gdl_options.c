/*
 * gdl_options.c: the command line.
 *
 * One table lists every option; parsing, --help and the README's option
 * list all come from it. Names use Gearman::Driver's spelling
 * (--max_idle_time); dashes are accepted in place of underscores.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdlua.h"

gdl_config_t gdl_config;

enum { OPT_SERVER, OPT_LIST, OPT_STRING, OPT_INT, OPT_LEVEL, OPT_FLAG, OPT_HELP, OPT_VERSION };

typedef struct {
    const char *name;
    const char *arg; /* NULL: takes no argument */
    int kind;
    size_t field; /* offsetof the value in gdl_config_t */
    size_t count; /* OPT_LIST: offsetof its count */
    const char *help;
} gdl_option_t;

#define F(x) offsetof(gdl_config_t, x)

static const gdl_option_t options[] = {
    {"server", "HOST[:PORT][,...]", OPT_SERVER, 0, 0,
     "job server(s) to serve; repeatable (default: $GEARMAN_SERVERS, else 127.0.0.1:4730)"},
    {"lib", "DIR", OPT_LIST, F(libs), F(nlibs), "extra Lua module directory (DIR/?.lua); repeatable"},
    {"cpath", "DIR", OPT_LIST, F(cpaths), F(ncpaths), "extra C module directory (DIR/?.so); repeatable"},
    {"namespaces", "NAME", OPT_LIST, F(namespaces), F(nnamespaces),
     "load only module NAME and the modules below it (NAME::*); repeatable"},
    {"loglevel", "LEVEL", OPT_LEVEL, F(loglevel), 0, "error, warn, info or debug (default: info)"},
    {"logfile", "PATH", OPT_STRING, F(logfile), 0, "append the log to PATH (default: stderr)"},
    {"shutdown_timeout", "SECONDS", OPT_INT, F(shutdown_timeout), 0,
     "on SIGTERM, wait this long for running jobs before SIGKILL (default: 30)"},
    {"interval", "SECONDS", OPT_INT, F(interval), 0,
     "poll each job server's queue this often (default: 1; 0: only when woken)"},
    {"max_idle_time", "SECONDS", OPT_INT, F(max_idle_time), 0,
     "stop a process above min_processes after this long idle (default: 10)"},
    {"max_spawn_rate", "N", OPT_INT, F(max_spawn_rate), 0, "start at most N processes a second (default: 50)"},
    {"no_wakeups", NULL, OPT_FLAG, F(no_wakeups), 0,
     "no wake-up sentinels: scale on polls only (use with gearmand -w N)"},
    {"console_port", "PORT", OPT_INT, F(console_port), 0, "management console port (default: 47300; 0: none)"},
    {"console_bind", "ADDRESS", OPT_STRING, F(console_bind), 0, "management console address (default: 127.0.0.1)"},
    {"console_token", "FILE", OPT_STRING, F(console_token), 0,
     "require \"auth TOKEN\" on the console, TOKEN being FILE's first line"},
    {"console_insecure", NULL, OPT_FLAG, F(console_insecure), 0,
     "allow a console on a non-loopback address without a token"},
    {"check", NULL, OPT_FLAG, F(check), 0, "load the modules, list their jobs and exit (1 if any failed)"},
    {"help", NULL, OPT_HELP, 0, 0, "print this help and exit"},
    {"version", NULL, OPT_VERSION, 0, 0, "print the version and exit"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(FILE *out)
{
    char lhs[64];

    fprintf(out, "usage: gdlua [options] DIR...\n"
                 "       gdlua run SCRIPT.lua [ARG...]\n"
                 "       gdlua call FUNCTION [--server HOST[:PORT]]... [--unique ID] [--timeout MS] < IN > OUT\n\n"
                 "Serves the gearman job functions defined by every *.lua module below each DIR.\n\n"
                 "options:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        snprintf(lhs, sizeof(lhs), "--%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        fprintf(out, "  %-32s %s\n", lhs, options[i].help);
    }
}

/* "max-idle-time" and "max_idle_time" name the same option. */
static bool name_matches(const char *want, const char *given, size_t len)
{
    size_t i;

    for (i = 0; i < len && want[i]; i++) {
        char c = given[i] == '-' ? '_' : given[i];
        if (c != want[i])
            return false;
    }
    return i == len && want[i] == '\0';
}

/* One entry of a server list: "host", "host:port", "[v6]" or "[v6]:port". */
static int server_parse(gdl_server_t *s, char *e, char *err, size_t errlen)
{
    char *host = e, *port = NULL, *end;
    long n;

    if (e[0] == '[') {
        char *close = strchr(e, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            snprintf(err, errlen, "bad server '%s': expected [ADDRESS]:PORT", e);
            return -1;
        }
        host = e + 1;
        *close = '\0';
        port = close[1] == ':' ? close + 2 : NULL;
    } else if ((port = strchr(e, ':')) != NULL) {
        *port++ = '\0';
    }
    if (*host == '\0' || strlen(host) >= sizeof(s->host)) {
        snprintf(err, errlen, "bad server '%s': empty or overlong host", e);
        return -1;
    }
    strcpy(s->host, host);
    s->port = GDL_DEFAULT_PORT;
    if (port) {
        errno = 0;
        n = strtol(port, &end, 10);
        if (errno || *end || end == port || n < 1 || n > 65535) {
            snprintf(err, errlen, "bad port '%s' for server %s (1..65535)", port, s->host);
            return -1;
        }
        s->port = (int)n;
    }
    return 0;
}

int gdl_servers_parse(gdl_config_t *cfg, const char *list, char *err, size_t errlen)
{
    char buf[1024], *save = NULL, *tok;

    if (strlen(list) >= sizeof(buf)) {
        snprintf(err, errlen, "server list longer than %zu bytes", sizeof(buf) - 1);
        return -1;
    }
    strcpy(buf, list);
    for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (cfg->nservers == GDL_SERVERS_MAX) {
            snprintf(err, errlen, "too many servers (at most %d)", GDL_SERVERS_MAX);
            return -1;
        }
        if (server_parse(&cfg->servers[cfg->nservers], tok, err, errlen) < 0)
            return -1;
        cfg->nservers++;
    }
    return 0;
}

static int set_option(gdl_config_t *cfg, const gdl_option_t *o, const char *val)
{
    char err[512], *end;
    long n;

    switch (o->kind) {
    case OPT_SERVER:
        if (gdl_servers_parse(cfg, val, err, sizeof(err)) < 0) {
            fprintf(stderr, "gdlua: --server: %s\n", err);
            return -1;
        }
        return 0;
    case OPT_LIST: {
        const char **list = (const char **)((char *)cfg + o->field);
        int *count = (int *)((char *)cfg + o->count);
        if (*count == GDL_DIRS_MAX) {
            fprintf(stderr, "gdlua: --%s given more than %d times\n", o->name, GDL_DIRS_MAX);
            return -1;
        }
        list[(*count)++] = val;
        return 0;
    }
    case OPT_STRING:
        *(const char **)((char *)cfg + o->field) = val;
        return 0;
    case OPT_INT:
        errno = 0;
        n = strtol(val, &end, 10);
        if (errno || *end || end == val || n < 0 || n > 1000000) {
            fprintf(stderr, "gdlua: --%s: '%s' is not a whole number from 0 to 1000000\n", o->name, val);
            return -1;
        }
        *(int *)((char *)cfg + o->field) = (int)n;
        return 0;
    case OPT_LEVEL:
        n = gdl_log_level_parse(val);
        if (n < 0) {
            fprintf(stderr, "gdlua: --%s: unknown level '%s' (error, warn, info, debug)\n", o->name, val);
            return -1;
        }
        *(int *)((char *)cfg + o->field) = (int)n;
        return 0;
    case OPT_FLAG:
        *(bool *)((char *)cfg + o->field) = true;
        return 0;
    }
    return -1;
}

int gdl_options_parse(gdl_config_t *cfg, int argc, char **argv)
{
    const char *env;
    char err[512];
    int i;

    cfg->loglevel = GDL_LOG_INFO;
    cfg->shutdown_timeout = 30;
    cfg->interval = 1;
    cfg->max_idle_time = 10;
    cfg->max_spawn_rate = 50;
    cfg->console_port = 47300;
    cfg->console_bind = "127.0.0.1";

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *val = NULL;
        const gdl_option_t *o = NULL;
        size_t len;

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (cfg->ndirs == GDL_DIRS_MAX) {
                fprintf(stderr, "gdlua: more than %d directories\n", GDL_DIRS_MAX);
                return GDL_OPTS_EXIT_ERROR;
            }
            cfg->dirs[cfg->ndirs++] = a;
            continue;
        }
        if (strcmp(a, "-h") == 0)
            a = "--help";
        else if (strcmp(a, "-V") == 0)
            a = "--version";
        if (a[1] != '-') {
            fprintf(stderr, "gdlua: unknown option %s (see gdlua --help)\n", a);
            return GDL_OPTS_EXIT_ERROR;
        }
        name = a + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        for (size_t k = 0; k < NOPTIONS; k++)
            if (name_matches(options[k].name, name, len))
                o = &options[k];
        if (o == NULL) {
            fprintf(stderr, "gdlua: unknown option --%.*s (see gdlua --help)\n", (int)len, name);
            return GDL_OPTS_EXIT_ERROR;
        }
        if (o->arg) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                fprintf(stderr, "gdlua: --%s needs a value: %s\n", o->name, o->arg);
                return GDL_OPTS_EXIT_ERROR;
            }
        } else if (eq) {
            fprintf(stderr, "gdlua: --%s takes no value\n", o->name);
            return GDL_OPTS_EXIT_ERROR;
        }
        if (o->kind == OPT_HELP) {
            usage(stdout);
            return GDL_OPTS_EXIT_OK;
        }
        if (o->kind == OPT_VERSION) {
            printf("gdlua %s\n", GDLUA_VERSION);
            return GDL_OPTS_EXIT_OK;
        }
        if (set_option(cfg, o, val) < 0)
            return GDL_OPTS_EXIT_ERROR;
    }
    if (cfg->console_port > 65535) {
        fprintf(stderr, "gdlua: --console_port must be from 0 to 65535\n");
        return GDL_OPTS_EXIT_ERROR;
    }
    if (cfg->max_spawn_rate == 0) {
        fprintf(stderr, "gdlua: --max_spawn_rate must be at least 1\n");
        return GDL_OPTS_EXIT_ERROR;
    }
    for (; i < argc && cfg->ndirs < GDL_DIRS_MAX; i++)
        cfg->dirs[cfg->ndirs++] = argv[i];

    if (cfg->ndirs == 0) {
        fprintf(stderr, "gdlua: no script directory given\n");
        usage(stderr);
        return GDL_OPTS_EXIT_ERROR;
    }
    if (cfg->nservers == 0) {
        env = getenv("GEARMAN_SERVERS");
        if (env && *env && gdl_servers_parse(cfg, env, err, sizeof(err)) < 0) {
            fprintf(stderr, "gdlua: GEARMAN_SERVERS: %s\n", err);
            return GDL_OPTS_EXIT_ERROR;
        }
        if (cfg->nservers == 0)
            gdl_servers_parse(cfg, "127.0.0.1", err, sizeof(err));
    }
    return GDL_OPTS_OK;
}
