/*
 * gdl_options.c: the command line and the config file (--config).
 *
 * One table lists every option; parsing, the config file's keys and
 * bounds, --help, the man page (a hidden --man) and the README's option
 * list all come from it. Names use Gearman::Driver's spelling
 * (--max_idle_time); dashes are accepted in place of underscores. The
 * config file is Lua, run in a fresh state of its own, text only and
 * within limits of instructions, memory and CPU time; its per-job
 * overrides go to gdl_config.jobs, applied by gdl_lua.c where the pools
 * are loaded.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>

#include "gdl_roff.h"
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
     "lay text lines out as Gearman::Driver's --loglayout (Log::Log4perl): %d %d{FORMAT} %p %m %n %P %H %r %c %% "
     "(" GDL_LOG_DATE_HELP "; default: gdlua's)"},
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
    {"client_timeout", "SECONDS", OPT_DURATION, F(client_timeout_ms), 0, GDL_CLIENT_TIMEOUT_S, 0, 86400, NULL,
     "a job's gdlua.client call without a timeout of its own gives up after this long unanswered (and never "
     "past the job's own timeout); 0: only the job's timeout"},
    {"max_jobs", "N", OPT_INT, F(max_jobs), 0, 0, 0, 1000000000, NULL,
     "replace a process once it has served N jobs, in any pool without its own max_jobs; 0: never"},
    {"max_memory", "MIB", OPT_INT, F(max_memory), 0, 0, 0, 1048576, NULL,
     "bound on a process's RSS (MiB; the master reads it every 20 ms): past it after a job, the process is "
     "replaced; while a job runs, the job is failed and the process killed; pools without their own; 0: none"},
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
     "load the modules, list their jobs, look up the job servers' names and exit (1 if a module failed, a name "
     "does not resolve or an override names no job)"},
    {"strict", NULL, OPT_FLAG, F(strict), 0, 0, 0, 0, NULL,
     "refuse to start when any module fails to load (without it the others are served)"},
    {"config", "FILE", OPT_STRING, F(config), 0, 0, 0, 0, NULL,
     "read options and per-job overrides from the Lua file FILE; the command line wins"},
    {"configfile", "FILE", OPT_STRING, F(config), 0, 0, 0, 0, NULL, "the same as --config (Gearman::Driver's name)"},
    {"daemonize", NULL, OPT_FLAG, F(daemonize), 0, 0, 0, 0, NULL,
     "detach from the terminal; the command returns once the jobs are loaded (use with --logfile)"},
    {"pidfile", "FILE", OPT_STRING, F(pidfile), 0, 0, 0, 0, NULL,
     "hold a lock on FILE for the master's life and write its pid there once listening, remove it at exit; refuse "
     "to start while another process holds FILE"},
    {"user", "USER", OPT_STRING, F(user), 0, 0, 0, 0, NULL,
     "run as USER (and its groups) once listening; gdlua must start as root"},
    {"group", "GROUP", OPT_STRING, F(group), 0, 0, 0, 0, NULL, "run as GROUP once listening (default: USER's group)"},
    {"help", NULL, OPT_HELP, 0, 0, 0, 0, 0, NULL, "print this help and exit"},
    {"version", NULL, OPT_VERSION, 0, 0, 0, 0, 0, NULL, "print the version and exit"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* The job attributes a config file may set per pool (jobs = {[NAME] =
 * {...}}), as gdl_pool_t holds them. Each takes its kind and bounds from
 * the option of the same name; the process counts from process_count. */
static const gdl_option_t process_count = {
    "processes", "N", OPT_INT, 0, 0, 0, 0, GDL_PROCS_MAX, NULL, "processes of the job",
};
static const gdl_option_t job_count = {
    "concurrency", "N", OPT_INT, 0, 0, 1, 1, GDL_CONCURRENCY_MAX, NULL, "jobs a process of the job holds at once",
};

#define P(x) offsetof(gdl_pool_t, x)

static const struct {
    const char *name;
    size_t field;             /* offsetof the int in gdl_pool_t */
    const gdl_option_t *kind; /* NULL: the option named name */
} job_keys[] = {
    {"min_processes", P(min_processes), &process_count},
    {"max_processes", P(max_processes), &process_count},
    {"max_idle_time", P(max_idle_time), NULL},
    {"timeout", P(timeout_ms), NULL},
    {"max_attempts", P(max_attempts), NULL},
    {"max_jobs", P(max_jobs), NULL},
    {"max_memory", P(max_memory), NULL},
    {"concurrency", P(concurrency), &job_count},
};

#define NJOBKEYS (sizeof(job_keys) / sizeof(job_keys[0]))

/* A config file computes a table: one that runs past these limits is a
 * mistake or hostile, and must not hang gdlua --check, a start or a
 * reload's loader, nor swell it. Instructions are counted by a hook (the
 * JIT is off in that state, so every instruction is interpreted and
 * seen), memory by the state's allocator (LuaJIT 2.1 in its 64-bit GC
 * mode accepts one: libluajit2-5.1-dev on x86_64 is built so). CPU time
 * bounds what a hook cannot see: one C call that never returns, such as
 * a backtracking pattern (string.find(("a"):rep(40), ("a*"):rep(40) ..
 * "b")). */
#define CONFIG_MAX_INSTRUCTIONS 10000000
#define CONFIG_MAX_MIB          64
#define CONFIG_MAX_CPU_S        2
#define CONFIG_LIMITS            \
    STR(CONFIG_MAX_INSTRUCTIONS) \
    " instructions, " STR(CONFIG_MAX_MIB) " MiB of memory and " STR(CONFIG_MAX_CPU_S) " s of CPU time"

static int saved_argc;
static char **saved_argv;
static bool to_log;               /* reloading: messages go to the log, not stderr */
static char first_complaint[512]; /* reloading: the first, for the caller */

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void complain(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (to_log) {
        gdl_error("%s", msg);
        if (first_complaint[0] == '\0') {
            size_t n = strnlen(msg, sizeof(first_complaint) - 1);

            memcpy(first_complaint, msg, n);
            first_complaint[n] = '\0';
        }
    } else
        fprintf(stderr, "gdlua: %s\n", msg);
}

static const gdl_option_t *find_option(const char *name)
{
    for (size_t k = 0; k < NOPTIONS; k++)
        if (strcmp(options[k].name, name) == 0)
            return &options[k];
    return NULL;
}

static const gdl_option_t *job_key_kind(size_t i)
{
    return job_keys[i].kind ? job_keys[i].kind : find_option(job_keys[i].name);
}

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
    char lhs[64], help[512]; /* as the man page's: a longer help would be cut */

    fprintf(out, "usage: gdlua [options] DIR...\n"
                 "       gdlua run SCRIPT.lua [ARG...]\n"
                 "       gdlua call FUNCTION [--server HOST[:PORT]]... [--unique ID] [--timeout MS] < IN > OUT\n"
                 "       gdlua test [--lib DIR]... [--cpath DIR]... [DIR|FILE]...\n\n"
                 "Serves the gearman job functions defined by every *.lua module below each DIR.\n\n"
                 "options:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        snprintf(lhs, sizeof(lhs), "--%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        option_help(&options[i], help, sizeof(help));
        fprintf(out, "  %-32s %s\n", lhs, help);
    }
}

/* Text paragraphs of the man page, between the generated lists. */
static void man_text(FILE *out, const char *const *paras)
{
    for (; *paras; paras++) {
        if ((*paras)[0] == '.') {
            fputs(*paras, out); /* a heading or a request, as it is */
        } else {
            fputs(".PP\n", out);
            gdl_roff(out, *paras);
        }
        fputc('\n', out);
    }
}

/* gdlua.1, from the option table and the job keys (a hidden --man, run
 * at build time). */
static void man(FILE *out)
{
    static const char *const description[] = {
        "gdlua serves the gearman job functions defined by every *.lua module below each DIR. The master process "
        "loads every module once into a LuaJIT state, then forks one pool of worker processes per job, so children "
        "start with everything loaded. Each pool runs between its min_processes and max_processes, scaled from the "
        "job servers' queues. The master never runs a job.",
        "gdlua run runs a Lua script with the gdlua modules available; gdlua call submits one job, its workload "
        "read from standard input and its result written to standard output; gdlua test runs the tests of every "
        "*_test.lua and test_*.lua file below each DIR in process, without gearmand (gdlua.testing, see the README), "
        "and exits 1 if one failed.",
        "Options take Gearman::Driver's spellings (--max_idle_time); dashes work too (--max-idle-time), as does "
        "--name=value.",
        NULL,
    };
    static const char *const config[] = {
        ".SH CONFIGURATION FILE",
        "--config FILE reads a Lua file (run in a fresh Lua state with only the base, string, table and math "
        "libraries, without file loading, xpcall or newproxy, text only, within " CONFIG_LIMITS ") that returns a "
        "table. Its keys are the long option names above, typed: numbers, strings, true or false, and a string or a "
        "list of strings for those that repeat (server, lib, cpath, namespaces). dirs lists the script directories. "
        "An option given on the command line wins over the file; dirs on the command line replace the file's.",
        "jobs holds per-job overrides, keyed by the job's name as the console's status shows it: jobs = { "
        "[\"GDExamples::Convert::convert_to_jpeg\"] = { max_processes = 8, timeout = 30 } }. They win over the "
        "module's own attributes. A job that is not loaded is a warning (an error for --check). The keys, with their "
        "bounds:",
        NULL,
    };
    static const char *const rest[] = {
        ".PP",
        "An unknown key, a value of the wrong type or out of bounds, and a syntax error are errors naming the file, "
        "the key and the value (or the line); gdlua then exits 2.",
        ".SH SIGNALS",
        "SIGTERM, SIGINT, SIGQUIT: the children finish their current job and exit, then the master exits 0; "
        "SIGKILL after --shutdown_timeout, or at once on a second signal. SIGUSR1: the master and every child "
        "reopen the log file (for logrotate). SIGHUP: see the README. Other signals an operator might send are "
        "logged and ignored.",
        ".SH ENVIRONMENT",
        "GEARMAN_SERVERS: the job servers when no --server is given. NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID: "
        "set by systemd for a Type=notify service: gdlua sends READY=1 once every job has its minimum processes, "
        "WATCHDOG=1 at half the watchdog period, STATUS= lines with the processes and jobs done, and STOPPING=1.",
        ".SH EXIT STATUS",
        "0 after a clean shutdown; 1 when nothing could be served or started; 2 for a usage or configuration "
        "error. gdlua --check exits 1 if any module failed to load.",
        ".SH SEE ALSO",
        "gdlua-console(1), gearmand(8), the example configuration share/gdlua/examples/gdlua.conf.lua, and "
        "gdlua's README.",
        NULL,
    };
    char lhs[64], help[512];

    fprintf(out, ".TH GDLUA 1 \"\" \"gdlua %s\" \"User Commands\"\n.SH NAME\n", GDLUA_VERSION);
    gdl_roff(out, "gdlua - run gearman job functions written in Lua\n");
    fputs(".SH SYNOPSIS\n", out);
    gdl_roff(out, "gdlua [options] DIR...\n");
    fputs(".br\n", out);
    gdl_roff(out, "gdlua run SCRIPT.lua [ARG...]\n");
    fputs(".br\n", out);
    gdl_roff(out, "gdlua call FUNCTION [--server HOST[:PORT]]... [--unique ID] [--timeout MS] < IN > OUT\n");
    fputs(".br\n", out);
    gdl_roff(out, "gdlua test [--lib DIR]... [--cpath DIR]... [DIR|FILE]...\n");
    fputs(".SH DESCRIPTION\n", out);
    man_text(out, description);
    fputs(".SH OPTIONS\n", out);
    for (size_t i = 0; i < NOPTIONS; i++) {
        snprintf(lhs, sizeof(lhs), "--%s", options[i].name);
        option_help(&options[i], help, sizeof(help));
        gdl_roff_item(out, lhs, options[i].arg, help);
    }
    man_text(out, config);
    for (size_t i = 0; i < NJOBKEYS; i++) {
        const gdl_option_t *o = job_key_kind(i);

        if (job_keys[i].kind)
            snprintf(help, sizeof(help), "the job's %s (%ld..%ld)", job_keys[i].name, o->min, o->max);
        else
            snprintf(help, sizeof(help), "--%s for this job (%ld..%ld%s)", o->name, o->min, o->max,
                     o->kind == OPT_DURATION ? " seconds, fractions allowed" : "");
        gdl_roff_item(out, job_keys[i].name, o->kind == OPT_DURATION ? "SECONDS" : "N", help);
    }
    man_text(out, rest);
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

/* Sets option o to val; where names it in messages ("--server", or the
 * config file and key). */
static int set_option(gdl_config_t *cfg, const gdl_option_t *o, const char *val, const char *where)
{
    char err[512], *end;
    long n;

    switch (o->kind) {
    case OPT_SERVER:
        if (add_servers(cfg, val, err, sizeof(err)) < 0) {
            complain("%s: %s", where, err);
            return -1;
        }
        return 0;
    case OPT_LIST: {
        const char **list = (const char **)((char *)cfg + o->field);
        int *count = (int *)((char *)cfg + o->count);
        if (*count == GDL_DIRS_MAX) {
            complain("%s given more than %d times", where, GDL_DIRS_MAX);
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
            complain("%s: '%s' is not a whole number from %ld to %ld", where, val, o->min, o->max);
            return -1;
        }
        *(int *)((char *)cfg + o->field) = (int)n;
        return 0;
    case OPT_DURATION: {
        double d;
        errno = 0;
        d = strtod(val, &end);
        if (errno || *end || end == val || !(d >= o->min && d <= o->max)) {
            complain("%s: '%s' is not a number of seconds from %ld to %ld", where, val, o->min, o->max);
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
            complain("%s: unknown level '%s': %s", where, val, help);
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

/* ---- the config file (--config) ---- */

/* A string read from the config file, kept as long as the config. */
struct gdl_kept {
    struct gdl_kept *next;
    char s[];
};

static const char *keep_len(gdl_config_t *cfg, const char *s, size_t len)
{
    struct gdl_kept *k = malloc(sizeof(*k) + len + 1);

    if (k == NULL)
        return NULL;
    memcpy(k->s, s, len);
    k->s[len] = '\0';
    k->next = cfg->kept;
    cfg->kept = k;
    return k->s;
}

static const char *keep(gdl_config_t *cfg, const char *s)
{
    return keep_len(cfg, s, strlen(s));
}

typedef struct {
    gdl_config_t *cfg;
    const bool *given;   /* options the command line set: the file's are checked, not used */
    gdl_config_t unused; /* where those go */
    int errors;
    size_t used;       /* bytes the file's Lua state holds (config_alloc) */
    char stopped[512]; /* why a limit stopped the file; empty: none did */
} reading_t;

static void *config_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    reading_t *r = ud;
    void *p;

    if (ptr == NULL)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        r->used -= osize;
        return NULL;
    }
    if (nsize > osize && r->used - osize + nsize > (size_t)CONFIG_MAX_MIB << 20) {
        if (r->stopped[0] == '\0')
            snprintf(r->stopped, sizeof(r->stopped), "%s: more than %d MiB of memory, the limit for a config file",
                     r->cfg->config, CONFIG_MAX_MIB);
        return NULL; /* LuaJIT raises "not enough memory" */
    }
    if ((p = realloc(ptr, nsize)) != NULL)
        r->used = r->used - osize + nsize;
    return p;
}

/* Called once the file has run its instructions: it is stopped, and from
 * then on at every instruction, so a pcall in the file cannot catch the
 * error and go on. */
static void config_hook(lua_State *L, lua_Debug *ar)
{
    void *ud;
    reading_t *r;

    lua_getallocf(L, &ud);
    r = ud;
    if (r->stopped[0] == '\0') {
        lua_getinfo(L, "Sl", ar);
        snprintf(r->stopped, sizeof(r->stopped),
                 "%s:%d: more than %d instructions, the limit for a config file (a loop that never ends?)",
                 r->cfg->config, ar->currentline, CONFIG_MAX_INSTRUCTIONS);
    }
    lua_sethook(L, config_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "%s", r->stopped);
}

/* Past CONFIG_MAX_CPU_S the file is stuck where no hook runs: the
 * process can only be ended (it has started nothing yet: a start or
 * --check exits 2; a reload's loader exits, which fails the reload).
 * The message is made before the timer is armed: a handler only writes. */
static char cpu_message[600];
static size_t cpu_message_len;

static void on_config_cpu(int sig)
{
    (void)sig;
    if (write(STDERR_FILENO, cpu_message, cpu_message_len) < 0) {
        /* nowhere else to say it */
    }
    _exit(2);
}

/* A binary chunk starts with ESC, after a first line starting with #
 * (LuaJIT's own rule): luaL_loadfilex's mode "t" refuses it, this only
 * says so in words. */
static bool is_bytecode(const char *path)
{
    FILE *f = fopen(path, "rb");
    int c;

    if (f == NULL)
        return false; /* luaL_loadfilex says why */
    if ((c = getc(f)) == '#') {
        while ((c = getc(f)) != EOF && c != '\n')
            ;
        c = getc(f);
    }
    fclose(f);
    return c == LUA_SIGNATURE[0];
}

/* load and loadstring, text only: LuaJIT does not check bytecode, so a
 * binary chunk (string.dump's) can break memory safety. */
static int config_load(lua_State *L)
{
    lua_settop(L, 4); /* chunk, chunkname, mode, env */
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L);
}

/* The value at idx as a message shows it: 10, "ten", true, a table. */
static const char *shown(lua_State *L, int idx, char *buf, size_t len)
{
    size_t n;
    const char *s;

    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        gdl_format_number(lua_tonumber(L, idx), buf, len);
        break;
    case LUA_TNIL:
        snprintf(buf, len, "nil");
        break;
    case LUA_TBOOLEAN:
        snprintf(buf, len, "%s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        buf[0] = '"';
        n = gdl_escape(buf + 1, len - 2, s, n < 64 ? n : 64, false);
        snprintf(buf + 1 + n, len - 1 - n, "\"");
        break;
    default:
        snprintf(buf, len, "a %s", luaL_typename(L, idx));
    }
    return buf;
}

static void bad(reading_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad(reading_t *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    complain("%s: %s", r->cfg->config, msg);
    r->errors++;
}

/* A number for option o (its kind and bounds) into *out: whole for
 * OPT_INT, seconds kept as milliseconds for OPT_DURATION. */
static int file_number(reading_t *r, const gdl_option_t *o, lua_Number v, int *out, const char *key)
{
    char shown_v[32];

    gdl_format_number(v, shown_v, sizeof(shown_v));
    if (o->kind == OPT_INT && v != floor(v)) {
        bad(r, "%s = %s: not a whole number (%ld..%ld)", key, shown_v, o->min, o->max);
        return -1;
    }
    if (!(v >= o->min && v <= o->max)) {
        bad(r, "%s = %s: out of bounds (%ld..%ld)", key, shown_v, o->min, o->max);
        return -1;
    }
    *out = o->kind == OPT_INT ? (int)v : (int)(v * 1000 + 0.5);
    return 0;
}

/* One string (of a list) for option o; where names it. */
static void file_string(reading_t *r, lua_State *L, gdl_config_t *to, const gdl_option_t *o, const char *where)
{
    const char *s = keep(r->cfg, lua_tostring(L, -1));

    if (s == NULL)
        luaL_error(L, "out of memory");
    if (set_option(to, o, s, where) < 0)
        r->errors++;
}

/* The value at the top of the stack for option o. */
static void file_option(reading_t *r, lua_State *L, const gdl_option_t *o)
{
    gdl_config_t *to = r->given[o - options] ? &r->unused : r->cfg;
    int type = lua_type(L, -1);
    char where[512], val[128];

    snprintf(where, sizeof(where), "%s: %s", r->cfg->config, o->name);
    shown(L, -1, val, sizeof(val));
    switch (o->kind) {
    case OPT_INT:
    case OPT_DURATION:
        if (type != LUA_TNUMBER)
            bad(r, "%s: expected a number, got %s", o->name, val);
        else
            file_number(r, o, lua_tonumber(L, -1), (int *)((char *)to + o->field), o->name);
        return;
    case OPT_FLAG:
        if (type != LUA_TBOOLEAN)
            bad(r, "%s: expected true or false, got %s", o->name, val);
        else
            *(bool *)((char *)to + o->field) = lua_toboolean(L, -1);
        return;
    case OPT_STRING:
    case OPT_LEVEL:
        if (o->field == F(config))
            bad(r, "%s: not in a config file", o->name);
        else if (type != LUA_TSTRING)
            bad(r, "%s: expected a string, got %s", o->name, val);
        else
            file_string(r, L, to, o, where);
        return;
    case OPT_SERVER:
    case OPT_LIST:
        if (type == LUA_TSTRING) {
            file_string(r, L, to, o, where);
            return;
        }
        if (type != LUA_TTABLE) {
            bad(r, "%s: expected a string or a list of strings, got %s", o->name, val);
            return;
        }
        for (int i = 1; i <= (int)lua_objlen(L, -1); i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                bad(r, "%s[%d]: expected a string, got %s", o->name, i, shown(L, -1, val, sizeof(val)));
            else
                file_string(r, L, to, o, where);
            lua_pop(L, 1);
        }
        return;
    default:
        bad(r, "%s: not in a config file", o->name);
    }
}

/* dirs = {DIR, ...} (or one string): the script directories, unless the
 * command line names some. */
static void file_dirs(reading_t *r, lua_State *L)
{
    gdl_config_t *to = r->cfg->ndirs ? &r->unused : r->cfg;
    char val[128];
    int n = lua_type(L, -1) == LUA_TTABLE ? (int)lua_objlen(L, -1) : 1;

    if (lua_type(L, -1) != LUA_TTABLE && lua_type(L, -1) != LUA_TSTRING) {
        bad(r, "dirs: expected a string or a list of strings, got %s", shown(L, -1, val, sizeof(val)));
        return;
    }
    for (int i = 1; i <= n; i++) {
        const char *dir;

        if (lua_type(L, -1) == LUA_TTABLE)
            lua_rawgeti(L, -1, i);
        else
            lua_pushvalue(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            bad(r, "dirs[%d]: expected a string, got %s", i, shown(L, -1, val, sizeof(val)));
        } else if (to->ndirs == GDL_DIRS_MAX) {
            bad(r, "dirs: more than %d directories", GDL_DIRS_MAX);
        } else {
            if ((dir = keep(r->cfg, lua_tostring(L, -1))) == NULL)
                luaL_error(L, "out of memory");
            to->dirs[to->ndirs++] = dir;
        }
        lua_pop(L, 1);
    }
}

/* One entry of jobs: the table at the top of the stack, for pool name. */
static void file_job(reading_t *r, lua_State *L, const char *name)
{
    gdl_config_t *cfg = r->cfg;
    gdl_pool_t *jobs = realloc(cfg->jobs, (cfg->njobs + 1) * sizeof(gdl_pool_t)), *j;
    char key[300], val[128];

    if (jobs == NULL)
        luaL_error(L, "out of memory");
    cfg->jobs = jobs;
    j = &jobs[cfg->njobs++];
    memset(j, 0, sizeof(*j));
    for (size_t i = 0; i < NJOBKEYS; i++)
        *(int *)((char *)j + job_keys[i].field) = GDL_UNSET;
    if ((j->name = (char *)keep(cfg, name)) == NULL)
        luaL_error(L, "out of memory");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        size_t i;

        for (i = 0; i < NJOBKEYS && strcmp(job_keys[i].name, k) != 0; i++)
            ;
        snprintf(key, sizeof(key), "jobs[\"%s\"].%s", name, k);
        shown(L, -1, val, sizeof(val));
        if (i == NJOBKEYS) {
            char keys[256];
            int n = 0;

            for (size_t q = 0; q < NJOBKEYS; q++)
                n += snprintf(keys + n, sizeof(keys) - n, "%s%s", q ? ", " : "", job_keys[q].name);
            bad(r, "jobs[\"%s\"]: unknown key %s (= %s); the keys are %s", name,
                lua_type(L, -2) == LUA_TSTRING ? k : "(not a name)", val, keys);
        } else if (lua_type(L, -1) != LUA_TNUMBER)
            bad(r, "%s: expected a number, got %s", key, val);
        else
            file_number(r, job_key_kind(i), lua_tonumber(L, -1), (int *)((char *)j + job_keys[i].field), key);
        lua_pop(L, 1);
    }
    if (j->min_processes != GDL_UNSET && j->max_processes != GDL_UNSET && j->max_processes < j->min_processes)
        bad(r, "jobs[\"%s\"]: max_processes must be >= min_processes (got %d < %d)", name, j->max_processes,
            j->min_processes);
}

static void file_jobs(reading_t *r, lua_State *L)
{
    char val[128];

    if (lua_type(L, -1) != LUA_TTABLE) {
        bad(r, "jobs: expected a table of jobs by name, got %s", shown(L, -1, val, sizeof(val)));
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            bad(r, "jobs: expected job names as keys, got %s", shown(L, -2, val, sizeof(val)));
        else if (lua_type(L, -1) != LUA_TTABLE)
            bad(r, "jobs[\"%s\"]: expected a table of attributes, got %s", lua_tostring(L, -2),
                shown(L, -1, val, sizeof(val)));
        else
            file_job(r, L, lua_tostring(L, -2));
        lua_pop(L, 1);
    }
}

/* Runs the config file in the fresh state L and reads the table it
 * returns; under lua_pcall, so a Lua error in the file is returned. */
static int read_table(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {"", luaopen_base},
        {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},
        {NULL, NULL},
    };
    static const char *const removed[] = {"dofile", "loadfile", "newproxy", "xpcall", NULL};
    static const char *const text_only[] = {"load", "loadstring", NULL};
    reading_t *r = lua_touserdata(L, 1);
    char val[128], key[128];
    int t;

    /* No io, os, package: the file computes a table, it does nothing.
     * No file loading, and text only (config_load). Nothing that runs
     * where the count hook does not: no newproxy (a __gc), no xpcall (a
     * handler of the hook's own error). */
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        lua_pushcfunction(L, lib->func);
        lua_pushstring(L, lib->name);
        lua_call(L, 1, 0);
    }
    for (const char *const *name = removed; *name; name++) {
        lua_pushnil(L);
        lua_setfield(L, LUA_GLOBALSINDEX, *name);
    }
    for (const char *const *name = text_only; *name; name++) {
        lua_getfield(L, LUA_GLOBALSINDEX, *name);
        lua_pushcclosure(L, config_load, 1);
        lua_setfield(L, LUA_GLOBALSINDEX, *name);
    }
    if (is_bytecode(r->cfg->config))
        return luaL_error(L, "%s: is LuaJIT bytecode: a config file must be Lua text", r->cfg->config);
    if (luaL_loadfilex(L, r->cfg->config, "t") != 0)
        return lua_error(L);
    lua_sethook(L, config_hook, LUA_MASKCOUNT, CONFIG_MAX_INSTRUCTIONS);
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1)) {
        bad(r, "must return a table of options, not %s", shown(L, -1, val, sizeof(val)));
        return 0;
    }
    t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

        if (k == NULL)
            bad(r, "unknown key %s (= %s): keys are option names", shown(L, -2, key, sizeof(key)),
                shown(L, -1, val, sizeof(val)));
        else if (!find_option(k) && strcmp(k, "dirs") != 0 && strcmp(k, "jobs") != 0)
            bad(r, "unknown key %s (= %s)", k, shown(L, -1, val, sizeof(val)));
        lua_pop(L, 1);
    }
    for (size_t k = 0; k < NOPTIONS; k++) {
        lua_getfield(L, t, options[k].name);
        if (!lua_isnil(L, -1))
            file_option(r, L, &options[k]);
        lua_pop(L, 1);
    }
    lua_getfield(L, t, "dirs");
    if (!lua_isnil(L, -1))
        file_dirs(r, L);
    lua_getfield(L, t, "jobs");
    if (!lua_isnil(L, -1))
        file_jobs(r, L);
    return 0;
}

/* Reads cfg->config into cfg: the options the command line left unset
 * (given), the script directories if it named none, the per-job
 * overrides. Every error is reported, naming the file, key and value. */
static int read_config(gdl_config_t *cfg, const bool *given)
{
    reading_t *r = calloc(1, sizeof(*r));
    struct sigaction sa = {0}, old_sa;
    struct itimerval cpu = {.it_value = {CONFIG_MAX_CPU_S, 0}}, off = {0};
    sigset_t prof, old_mask;
    lua_State *L;
    int errors, n, rc;

    if (r == NULL) {
        complain("%s: out of memory", cfg->config);
        return -1;
    }
    r->cfg = cfg;
    r->given = given;
    if ((L = lua_newstate(config_alloc, r)) == NULL) {
        /* A LuaJIT built without its 64-bit GC refuses an allocator. */
        complain("%s: cannot make a Lua state with a memory limit for it", cfg->config);
        free(r);
        return -1;
    }
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    n = snprintf(cpu_message, sizeof(cpu_message),
                 "gdlua: %s: more than %d s of CPU time, the limit for a config file (a call that never returns, "
                 "such as a pattern that backtracks?)\n",
                 cfg->config, CONFIG_MAX_CPU_S);
    cpu_message_len = n < (int)sizeof(cpu_message) ? (size_t)n : sizeof(cpu_message) - 1;
    sa.sa_handler = on_config_cpu;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, &old_sa);
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    sigprocmask(SIG_UNBLOCK, &prof, &old_mask);
    setitimer(ITIMER_PROF, &cpu, NULL);

    lua_pushcfunction(L, read_table);
    lua_pushlightuserdata(L, r);
    if ((rc = lua_pcall(L, 1, 0, 0)) != 0 || r->stopped[0]) {
        const char *msg = rc ? lua_tostring(L, -1) : NULL;

        if (r->stopped[0])
            complain("%s", r->stopped); /* whatever the file made of the limit's error */
        else if (msg)
            complain("%s", msg);
        else
            complain("%s: raised an error that is not a string", cfg->config);
        r->errors++;
    }
    lua_close(L); /* under the timer still: it runs what the file left to finalize */

    setitimer(ITIMER_PROF, &off, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGPROF, &old_sa, NULL);
    errors = r->errors;
    free(r);
    return errors ? -1 : 0;
}

void gdl_options_free(gdl_config_t *cfg)
{
    while (cfg->kept) {
        struct gdl_kept *next = cfg->kept->next;

        free(cfg->kept);
        cfg->kept = next;
    }
    free(cfg->jobs);
    memset(cfg, 0, sizeof(*cfg));
}

int gdl_options_reload(gdl_config_t *cfg, char *err, size_t errlen)
{
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    snprintf(err, errlen, "no command line to read again");
    if (saved_argv == NULL)
        return -1;
    to_log = true;
    first_complaint[0] = '\0';
    rc = gdl_options_parse(cfg, saved_argc, saved_argv);
    to_log = false;
    snprintf(err, errlen, "%s", first_complaint[0] ? first_complaint : "the options are not valid");
    if (rc != GDL_OPTS_OK) {
        gdl_options_free(cfg);
        return -1;
    }
    err[0] = '\0';
    return 0;
}

void gdl_options_override(gdl_pool_t *pool, const gdl_pool_t *override)
{
    for (size_t i = 0; i < NJOBKEYS; i++) {
        int v = *(const int *)((const char *) override + job_keys[i].field);

        if (v != GDL_UNSET)
            *(int *)((char *)pool + job_keys[i].field) = v;
    }
}

/* "jobs/" names the directory "jobs" does: the trailing slashes go (a
 * lone "/" stays), once, where directories are taken, so the paths made
 * below one read jobs/T/A.lua, not jobs//T/A.lua. */
static int trim_dirs(gdl_config_t *cfg, const char **dirs, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dirs[i]);

        if (len < 2 || dirs[i][len - 1] != '/')
            continue;
        while (len > 1 && dirs[i][len - 1] == '/')
            len--;
        if ((dirs[i] = keep_len(cfg, dirs[i], len)) == NULL) {
            complain("out of memory");
            return -1;
        }
    }
    return 0;
}

int gdl_options_parse(gdl_config_t *cfg, int argc, char **argv)
{
    bool given[NOPTIONS] = {false};
    const char *env;
    char err[512], where[64];
    int i;

    saved_argc = argc;
    saved_argv = argv;
    if (argc == 2 && strcmp(argv[1], "--man") == 0) {
        man(stdout);
        return GDL_OPTS_EXIT_OK;
    }

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
        snprintf(where, sizeof(where), "--%s", o->name);
        if (set_option(cfg, o, val, where) < 0)
            return GDL_OPTS_EXIT_ERROR;
        given[o - options] = true;
    }
    for (; i < argc && cfg->ndirs < GDL_DIRS_MAX; i++)
        cfg->dirs[cfg->ndirs++] = argv[i];
    if (cfg->config && read_config(cfg, given) < 0)
        return GDL_OPTS_EXIT_ERROR;
    if (trim_dirs(cfg, cfg->dirs, cfg->ndirs) < 0 || trim_dirs(cfg, cfg->libs, cfg->nlibs) < 0 ||
        trim_dirs(cfg, cfg->cpaths, cfg->ncpaths) < 0)
        return GDL_OPTS_EXIT_ERROR;

    if (cfg->ndirs == 0) {
        complain("no script directory given");
        if (!to_log)
            usage(stderr);
        return GDL_OPTS_EXIT_ERROR;
    }
    if (cfg->nservers == 0) {
        env = getenv("GEARMAN_SERVERS");
        if (env && *env && add_servers(cfg, env, err, sizeof(err)) < 0) {
            complain("GEARMAN_SERVERS: %s", err);
            return GDL_OPTS_EXIT_ERROR;
        }
        if (cfg->nservers == 0)
            add_servers(cfg, GDL_DEFAULT_HOST, err, sizeof(err));
    }
    return GDL_OPTS_OK;
}
