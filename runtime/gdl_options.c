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

/* OPT_DURATION: seconds on the command line (fractions allowed), kept in
 * an int of milliseconds; its bounds and default are in seconds.
 * OPT_LEVEL and OPT_LOGFORMAT: a word of gdl_log_levels or
 * gdl_log_formats, kept as its index. */
enum {
    OPT_SERVER,
    OPT_LIST,
    OPT_STRING,
    OPT_INT,
    OPT_DURATION,
    OPT_LEVEL,
    OPT_LOGFORMAT,
    OPT_FLAG,
    OPT_HELP,
    OPT_VERSION
};

typedef struct {
    const char *name;
    const char *arg; /* NULL: takes no argument */
    int kind;
    size_t field;         /* offsetof the value in gdl_config_t */
    size_t count;         /* OPT_LIST: offsetof its count */
    long def, min, max;   /* OPT_INT, OPT_LEVEL: default and bounds */
    const char *def_text; /* OPT_STRING: the default; others: as help shows it */
    const char *help;
} gdl_option_t;

#define F(x)    offsetof(gdl_config_t, x)
#define STR(x)  STR_(x)
#define STR_(x) #x

static const gdl_option_t options[] = {
    {"server", "HOST[:PORT][,...]", OPT_SERVER, 0, 0, 0, 0, 0,
     "$GEARMAN_SERVERS, else " GDL_DEFAULT_HOST ":" STR(GDL_DEFAULT_PORT), "job server(s) to serve; repeatable"},
    {"lib", "DIR", OPT_LIST, F(libs), F(nlibs), 0, 0, 0, NULL, "extra Lua module directory (DIR/?.lua); repeatable"},
    {"cpath", "DIR", OPT_LIST, F(cpaths), F(ncpaths), 0, 0, 0, NULL, "extra C module directory (DIR/?.so); repeatable"},
    {"namespaces", "NAME", OPT_LIST, F(namespaces), F(nnamespaces), 0, 0, 0, NULL,
     "load only module NAME and the modules below it (NAME::*); repeatable"},
    {"loglevel", "LEVEL", OPT_LEVEL, F(loglevel), 0, GDL_LOG_INFO, 0, 0, NULL, ""},
    {"logformat", "FORMAT", OPT_LOGFORMAT, F(logformat), 0, GDL_LOGFORMAT_TEXT, 0, 0, NULL,
     "write each log line as plain text or as a JSON object: "},
    {"loglayout", "PATTERN", OPT_STRING, F(loglayout), 0, 0, 0, 0, NULL,
     "lay text lines out as Gearman::Driver's --loglayout (Log::Log4perl): %d %p %m %n %P %H %r %c %% (default: "
     "gdlua's)"},
    {"logfile", "PATH", OPT_STRING, F(logfile), 0, 0, 0, 0, NULL, "append the log to PATH (default: stderr)"},
    {"shutdown_timeout", "SECONDS", OPT_INT, F(shutdown_timeout), 0, 30, 0, 86400, NULL,
     "on SIGTERM, wait this long for running jobs before SIGKILL"},
    {"stop_timeout", "SECONDS", OPT_DURATION, F(stop_timeout_ms), 0, 30, 0, 86400, NULL,
     "a process asked to stop (idle, console kill, above max) gets SIGKILL if still running after this long; 0: never"},
    {"interval", "SECONDS", OPT_INT, F(interval), 0, 1, 0, 86400, NULL,
     "poll each job server's queue this often; 0: only when woken"},
    {"max_idle_time", "SECONDS", OPT_INT, F(max_idle_time), 0, 10, 0, 31536000, NULL,
     "stop a process above min_processes after this long idle"},
    {"max_spawn_rate", "N", OPT_INT, F(max_spawn_rate), 0, 50, 1, 1000000, NULL, "start at most N processes a second"},
    {"timeout", "SECONDS", OPT_DURATION, F(timeout_ms), 0, 0, 0, 86400, NULL,
     "fail a job still running after this long, in any pool without its own timeout; 0: none"},
    {"max_jobs", "N", OPT_INT, F(max_jobs), 0, 0, 0, 1000000000, NULL,
     "replace a process once it has served N jobs, in any pool without its own max_jobs; 0: never"},
    {"max_memory", "MIB", OPT_INT, F(max_memory), 0, 0, 0, 1048576, NULL,
     "replace a process whose RSS is above MIB after a job, in any pool without its own max_memory; 0: never"},
    {"max_attempts", "N", OPT_INT, F(max_attempts), 0, 3, 0, 1000000, NULL,
     "fail a job unrun once it has killed N processes (a poison job); 0: never"},
    {"no_wakeups", NULL, OPT_FLAG, F(no_wakeups), 0, 0, 0, 0, NULL,
     "no wake-up sentinels: scale on polls only (use with gearmand -w N)"},
    {"console_port", "PORT", OPT_INT, F(console_port), 0, GDL_DEFAULT_CONSOLE_PORT, 0, 65535, NULL,
     "management console port; 0: none"},
    {"console_bind", "ADDRESS", OPT_STRING, F(console_bind), 0, 0, 0, 0, GDL_DEFAULT_HOST,
     "management console address"},
    {"console_token", "FILE", OPT_STRING, F(console_token), 0, 0, 0, 0, NULL,
     "require \"auth TOKEN\" on the console, TOKEN being FILE's first line"},
    {"console_insecure", NULL, OPT_FLAG, F(console_insecure), 0, 0, 0, 0, NULL,
     "allow a console on a non-loopback address without a token"},
    {"http_bind", "ADDRESS:PORT", OPT_STRING, F(http_bind), 0, 0, 0, 0, NULL,
     "serve /metrics, /status.json and a dashboard over HTTP there (default: none)"},
    {"http_token", "FILE", OPT_STRING, F(http_token), 0, 0, 0, 0, NULL,
     "require \"Authorization: Bearer TOKEN\" over HTTP, TOKEN being FILE's first line"},
    {"http_insecure", NULL, OPT_FLAG, F(http_insecure), 0, 0, 0, 0, NULL,
     "allow HTTP on a non-loopback address without a token"},
    {"check", NULL, OPT_FLAG, F(check), 0, 0, 0, 0, NULL,
     "load the modules, list their jobs and exit (1 if any failed)"},
    {"help", NULL, OPT_HELP, 0, 0, 0, 0, 0, NULL, "print this help and exit"},
    {"version", NULL, OPT_VERSION, 0, 0, 0, 0, 0, NULL, "print the version and exit"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* An option's help line, with its default and bounds from the table. */
static void option_help(const gdl_option_t *o, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s", o->help);

    switch (o->kind) {
    case OPT_LEVEL:
    case OPT_LOGFORMAT: {
        const char *const *words = o->kind == OPT_LEVEL ? gdl_log_levels : gdl_log_formats;

        for (int i = 0; words[i]; i++)
            n += snprintf(buf + n, len - n, "%s%s", words[i],
                          words[i + 1] == NULL   ? ""
                          : words[i + 2] == NULL ? " or "
                                                 : ", ");
        snprintf(buf + n, len - n, " (default: %s)", words[o->def]);
        break;
    }
    case OPT_INT:
    case OPT_DURATION:
        snprintf(buf + n, len - n, " (%ld..%ld, default: %ld)", o->min, o->max, o->def);
        break;
    default:
        if (o->def_text)
            snprintf(buf + n, len - n, " (default: %s)", o->def_text);
    }
}

static void usage(FILE *out)
{
    char lhs[64], help[256];

    fprintf(out, "usage: gdlua [options] DIR...\n"
                 "       gdlua run SCRIPT.lua [ARG...]\n"
                 "       gdlua call FUNCTION [--server HOST[:PORT]]... [--unique ID] [--timeout MS] < IN > OUT\n\n"
                 "Serves the gearman job functions defined by every *.lua module below each DIR.\n\n"
                 "options:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        snprintf(lhs, sizeof(lhs), "--%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        option_help(&options[i], help, sizeof(help));
        fprintf(out, "  %-32s %s\n", lhs, help);
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

static int add_servers(gdl_config_t *cfg, const char *list, char *err, size_t errlen)
{
    return gdl_servers_parse(list, GDL_DEFAULT_PORT, cfg->servers, &cfg->nservers, GDL_SERVERS_MAX, err, errlen);
}

static int set_option(gdl_config_t *cfg, const gdl_option_t *o, const char *val)
{
    char err[512], *end;
    long n;

    switch (o->kind) {
    case OPT_SERVER:
        if (add_servers(cfg, val, err, sizeof(err)) < 0) {
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
        if (errno || *end || end == val || n < o->min || n > o->max) {
            fprintf(stderr, "gdlua: --%s: '%s' is not a whole number from %ld to %ld\n", o->name, val, o->min, o->max);
            return -1;
        }
        *(int *)((char *)cfg + o->field) = (int)n;
        return 0;
    case OPT_DURATION: {
        double d;
        errno = 0;
        d = strtod(val, &end);
        if (errno || *end || end == val || !(d >= o->min && d <= o->max)) {
            fprintf(stderr, "gdlua: --%s: '%s' is not a number of seconds from %ld to %ld\n", o->name, val, o->min,
                    o->max);
            return -1;
        }
        *(int *)((char *)cfg + o->field) = (int)(d * 1000 + 0.5);
        return 0;
    }
    case OPT_LEVEL:
        n = gdl_log_level_parse(val);
        if (n < 0) {
            char help[256];
            option_help(o, help, sizeof(help));
            fprintf(stderr, "gdlua: --%s: unknown level '%s': %s\n", o->name, val, help);
            return -1;
        }
        *(int *)((char *)cfg + o->field) = (int)n;
        return 0;
    case OPT_LOGFORMAT: {
        char help[256];

        for (int k = 0; gdl_log_formats[k]; k++)
            if (strcmp(val, gdl_log_formats[k]) == 0) {
                *(int *)((char *)cfg + o->field) = k;
                return 0;
            }
        option_help(o, help, sizeof(help));
        fprintf(stderr, "gdlua: --%s: unknown value '%s': %s\n", o->name, val, help);
        return -1;
    }
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

    for (size_t k = 0; k < NOPTIONS; k++) {
        const gdl_option_t *o = &options[k];
        if (o->kind == OPT_INT || o->kind == OPT_LEVEL || o->kind == OPT_LOGFORMAT)
            *(int *)((char *)cfg + o->field) = (int)o->def;
        else if (o->kind == OPT_DURATION)
            *(int *)((char *)cfg + o->field) = (int)o->def * 1000;
        else if (o->kind == OPT_STRING)
            *(const char **)((char *)cfg + o->field) = o->def_text;
    }

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
    for (; i < argc && cfg->ndirs < GDL_DIRS_MAX; i++)
        cfg->dirs[cfg->ndirs++] = argv[i];

    if (cfg->ndirs == 0) {
        fprintf(stderr, "gdlua: no script directory given\n");
        usage(stderr);
        return GDL_OPTS_EXIT_ERROR;
    }
    if (cfg->nservers == 0) {
        env = getenv("GEARMAN_SERVERS");
        if (env && *env && add_servers(cfg, env, err, sizeof(err)) < 0) {
            fprintf(stderr, "gdlua: GEARMAN_SERVERS: %s\n", err);
            return GDL_OPTS_EXIT_ERROR;
        }
        if (cfg->nservers == 0)
            add_servers(cfg, GDL_DEFAULT_HOST, err, sizeof(err));
    }
    return GDL_OPTS_OK;
}
