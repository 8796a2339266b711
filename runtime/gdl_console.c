/*
 * gdl_console.c: the management console, in the master's event loop.
 *
 * A line protocol on TCP, compatible with Gearman::Driver's console:
 * lines end in \r\n and every reply ends with a line "." (quit and
 * shutdown answer nothing). One list has the commands
 * (gdl_console_commands.h); dispatch, argument checks, "help" and
 * gdlua-console's man page come from it. Everything it shows or
 * changes goes through the master's narrow API (gdl_master_status,
 * _set_limits, _stop_pids, _stop_pool, _shutdown, _reload, whose answer
 * comes later: the connection waits for it); `stats` and `json`
 * columns come from the counter list (GDL_COUNTERS in gdlua.h). The
 * HTTP endpoint's /status.json is `json` too (gdl_console_json).
 *
 * Bad input never hurts the master: lines over 4 KiB are refused and
 * the connection closed, a client that stops reading is dropped once
 * 1 MiB of replies waits, an idle one after 5 minutes, and connections
 * beyond the limit are refused. With --console_token, nothing but
 * "auth TOKEN" is accepted until it succeeds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "gdl_console_commands.h"
#include "gdlua.h"

#define LINE_MAX_BYTES   4096
#define OUTPUT_MAX_BYTES (1 << 20)
#define IDLE_TIMEOUT_S   300
#define AUTH_TIMEOUT_S   5    /* to authenticate, with --console_token */
#define LINE_TIMEOUT_S   5    /* to finish a line once it has begun */
#define AUTH_PAUSE_MS    1000 /* after a wrong token, every auth is refused this long */
#define CLIENTS_MAX      512
#define ARGS_MAX         64

typedef struct conn {
    struct bufferevent *bev;
    struct event *deadline; /* authenticate, or finish the line begun, by then */
    bool authed;
    bool closing; /* free once the reply is written */
    bool waiting; /* for a reload's outcome: reads no more lines meanwhile */
    struct conn *prev, *next;
} conn_t;

typedef struct {
    const char *name;
    const char *args;
    int min_args, max_args; /* arguments after the name; -1: no limit */
    int (*run)(struct evbuffer *out, int argc, char **argv, bool *authed);
    const char *help;
} console_cmd_t;

enum { REPLY, NO_REPLY, CLOSE, WAIT };

static struct evconnlistener *listener;
static conn_t *conns;
static int nconns;
static char token[256];
static int64_t auth_paused_until_ms; /* guesses are slowed to one a pause */

static void reply(struct evbuffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct evbuffer *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

static int find_pool(const char *name)
{
    for (int k = 0; k < gdl_npools; k++)
        if (strcmp(gdl_pools[k].name, name) == 0)
            return k;
    return -1;
}

/* A process count as Gearman::Driver takes it (digits only), up to the
 * process limit: the count, -1 (not a count) or -2 (above the limit). */
static long parse_count(const char *s)
{
    long v = 0;

    if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
        return -1;
    for (; *s; s++)
        if ((v = v * 10 + (*s - '0')) > GDL_PROCS_MAX)
            return -2;
    return v;
}

typedef struct {
    int pool;
    gdl_pool_status_t st;
    char min[16], max[16], cur[16];
    char times[2][32]; /* last run, last error */
} row_t;

static int cmp_rows(const void *a, const void *b)
{
    return strcmp(gdl_pools[((const row_t *)a)->pool].name, gdl_pools[((const row_t *)b)->pool].name);
}

/* Rows for every pool, sorted by name; the caller frees them. */
static row_t *rows_collect(void)
{
    row_t *rows = calloc(gdl_npools ? gdl_npools : 1, sizeof(row_t));

    if (rows == NULL)
        return NULL;
    for (int k = 0; k < gdl_npools; k++) {
        row_t *r = &rows[k];

        r->pool = k;
        gdl_master_status(k, &r->st, NULL, 0);
        snprintf(r->min, sizeof(r->min), "%d", r->st.min);
        snprintf(r->max, sizeof(r->max), "%d", r->st.max);
        snprintf(r->cur, sizeof(r->cur), "%d", r->st.processes);
        gdl_format_time((int64_t)r->st.c.last_run, r->times[0], sizeof(r->times[0]));
        gdl_format_time((int64_t)r->st.c.last_error, r->times[1], sizeof(r->times[1]));
    }
    qsort(rows, gdl_npools, sizeof(row_t), cmp_rows);
    return rows;
}

static void status_line(struct evbuffer *out, const row_t *r, const int *w)
{
    const char *msg = r->st.c.error[0] ? r->st.c.error : NULL;

    reply(out, "%-*s  %*s  %*s  %*s  %s  %s  %s%s", w[0], gdl_pools[r->pool].name, w[1], r->min, w[2], r->max, w[3],
          r->cur, r->times[0], r->times[1], msg ? "ERROR: " : "", msg ? msg : "");
}

static int widest(const row_t *rows, size_t off, int n)
{
    int w = 0;

    for (int i = 0; i < n; i++) {
        int len = (int)strlen((const char *)&rows[i] + off);
        if (len > w)
            w = len;
    }
    return w;
}

static int out_of_memory(struct evbuffer *out)
{
    reply(out, "ERR out_of_memory");
    return REPLY;
}

static int cmd_status(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    row_t *rows = rows_collect();
    int w[4] = {0};

    if (rows == NULL)
        return out_of_memory(out);
    for (int i = 0; i < gdl_npools; i++)
        if ((int)strlen(gdl_pools[i].name) > w[0])
            w[0] = (int)strlen(gdl_pools[i].name);
    w[1] = widest(rows, offsetof(row_t, min), gdl_npools);
    w[2] = widest(rows, offsetof(row_t, max), gdl_npools);
    w[3] = widest(rows, offsetof(row_t, cur), gdl_npools);
    for (int i = 0; i < gdl_npools; i++)
        status_line(out, &rows[i], w);
    free(rows);
    return REPLY;
}

static int cmd_show(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    static gdl_proc_info_t procs[GDL_PROCS_MAX];
    int k = find_pool(argv[1]), w[4] = {0}, n;
    row_t *rows;

    if (k < 0) {
        reply(out, "ERR invalid_job_name: %s", argv[1]);
        return REPLY;
    }
    if ((rows = rows_collect()) == NULL)
        return out_of_memory(out);
    for (int i = 0; i < gdl_npools; i++)
        if (rows[i].pool == k)
            status_line(out, &rows[i], w);
    free(rows);
    n = gdl_master_status(k, &(gdl_pool_status_t){0}, procs, GDL_PROCS_MAX);
    for (int i = 0; i < n && i < GDL_PROCS_MAX; i++)
        reply(out, "%d", procs[i].pid);
    return REPLY;
}

/* set_min_processes, set_max_processes and set_processes check in
 * Gearman::Driver's order and answer its messages: the form of MIN, the
 * form of MAX, then their order. A value above the process limit is
 * gdlua's own refusal. */
static int set_processes(struct evbuffer *out, const char *name, const char *min_s, const char *max_s)
{
    static const char *const which[] = {"min_processes", "max_processes"};
    const char *given[2] = {min_s, max_s};
    int k = find_pool(name);
    long v[2];

    if (k < 0) {
        reply(out, "ERR invalid_job_name: %s", name);
        return REPLY;
    }
    v[0] = gdl_pools[k].min_processes;
    v[1] = gdl_pools[k].max_processes;
    for (int i = 0; i < 2; i++) {
        if (given[i] == NULL)
            continue;
        v[i] = parse_count(given[i]);
        if (v[i] == -1) {
            reply(out, "ERR invalid_value: %s must be >= 0", which[i]);
            return REPLY;
        }
        if (v[i] == -2) {
            reply(out, "ERR invalid_value: %s must be <= %d", which[i], GDL_PROCS_MAX);
            return REPLY;
        }
    }
    if (v[1] < v[0]) {
        if (max_s)
            reply(out, "ERR invalid_value: max_processes must be greater than min_processes");
        else
            reply(out, "ERR invalid_value: min_processes must be smaller than max_processes");
        return REPLY;
    }
    if (gdl_master_set_limits(k, (int)v[0], (int)v[1]) < 0)
        reply(out, "ERR invalid_value: min_processes must be smaller than max_processes");
    else
        reply(out, "OK");
    return REPLY;
}

static int cmd_set_min(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    return set_processes(out, argv[1], argv[2], NULL);
}

static int cmd_set_max(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    return set_processes(out, argv[1], NULL, argv[2]);
}

static int cmd_set_both(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    return set_processes(out, argv[1], argv[2], argv[3]);
}

static int cmd_kill(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    int pids[ARGS_MAX];

    for (int i = 1; i < argc; i++) {
        char *end;
        long pid;

        errno = 0;
        pid = strtol(argv[i], &end, 10);
        if (errno || *end || end == argv[i] || pid <= 0 || pid > INT_MAX) {
            reply(out, "ERR invalid_value: the given PID(s) do not belong to us");
            return REPLY;
        }
        pids[i - 1] = (int)pid;
    }
    if (gdl_master_stop_pids(pids, argc - 1, "console kill") < 0)
        reply(out, "ERR invalid_value: the given PID(s) do not belong to us");
    else
        reply(out, "OK");
    return REPLY;
}

static int cmd_killall(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    if (argc < 2) {
        reply(out, "ERR invalid_value: no job_names given");
        return REPLY;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "*") != 0 && find_pool(argv[i]) < 0) {
            reply(out, "ERR invalid_job_name: %s", argv[i]);
            return REPLY;
        }
    for (int k = 0; k < gdl_npools; k++) {
        bool chosen = false;
        for (int i = 1; i < argc; i++)
            chosen |= strcmp(argv[i], "*") == 0 || strcmp(argv[i], gdl_pools[k].name) == 0;
        if (chosen)
            gdl_master_stop_pool(k, "console killall");
    }
    reply(out, "OK");
    return REPLY;
}

static int cmd_quit(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    return CLOSE;
}

static int cmd_shutdown(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    gdl_info("console: shutdown");
    gdl_master_shutdown();
    return CLOSE;
}

/* Answered once the load has succeeded or failed (on_reloaded). */
static int cmd_reload(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    gdl_info("console: reload");
    gdl_master_reload("console reload");
    return WAIT;
}

static int cmd_version(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    reply(out, "gdlua %s", GDLUA_VERSION);
    return REPLY;
}

/* The counters of GDL_COUNTERS, for `stats` (those with a column) and
 * `json` (all). */
static const struct {
    const char *name, *column;
    int fold;
    size_t off;
} counters[] = {
#define GDL_X(name, fold, column, metric, help) {#name, column, GDL_FOLD_##fold, offsetof(gdl_counters_t, name)},
    GDL_COUNTERS(GDL_X)
#undef GDL_X
};

#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

/* Counter c of a row as text: a count, or a time for the LATEST ones. */
static void counter_text(const row_t *r, size_t c, char *buf, size_t len)
{
    uint64_t v = *(const uint64_t *)((const char *)&r->st.c + counters[c].off);

    if (counters[c].fold == GDL_FOLD_LATEST)
        gdl_format_time((int64_t)v, buf, len);
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void mean_p99(const gdl_counters_t *c, double *mean_ms, double *p99_ms)
{
    uint64_t n = c->done + c->failed + c->timeouts;

    *mean_ms = n ? c->busy_us / 1000.0 / n : 0;
    *p99_ms = gdl_counters_percentile_us(c, 0.99) / 1000.0;
}

static int cmd_stats(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    enum { CELL = 48, COLS_MAX = 5 + NCOUNTERS };
    const char *head[COLS_MAX] = {"JOB", "PROCESSES", "BUSY"};
    row_t *rows = rows_collect();
    char(*cells)[COLS_MAX][CELL] = calloc(gdl_npools + 1, sizeof(*cells));
    int w[COLS_MAX] = {0}, ncol = 3;

    if (rows == NULL || cells == NULL) {
        free(rows);
        free(cells);
        return out_of_memory(out);
    }
    for (size_t c = 0; c < NCOUNTERS; c++)
        if (counters[c].column)
            head[ncol++] = counters[c].column;
    head[ncol++] = "MEAN_MS";
    head[ncol++] = "P99_MS";
    for (int c = 0; c < ncol; c++)
        snprintf(cells[0][c], CELL, "%s", head[c]);
    for (int i = 0; i < gdl_npools; i++) {
        const row_t *r = &rows[i];
        char(*cell)[CELL] = cells[i + 1];
        double mean, p99;
        int col = 3;

        mean_p99(&r->st.c, &mean, &p99);
        snprintf(cell[1], CELL, "%s", r->cur);
        snprintf(cell[2], CELL, "%d", r->st.busy);
        for (size_t c = 0; c < NCOUNTERS; c++)
            if (counters[c].column)
                counter_text(r, c, cell[col++], CELL);
        snprintf(cell[col++], CELL, "%.3f", mean);
        snprintf(cell[col++], CELL, "%.3f", p99);
    }
    for (int i = 0; i <= gdl_npools; i++)
        for (int c = 0; c < ncol; c++) {
            int len = c == 0 && i > 0 ? (int)strlen(gdl_pools[rows[i - 1].pool].name) : (int)strlen(cells[i][c]);
            if (len > w[c])
                w[c] = len;
        }
    for (int i = 0; i <= gdl_npools; i++) {
        evbuffer_add_printf(out, "%-*s", w[0], i ? gdl_pools[rows[i - 1].pool].name : head[0]);
        for (int c = 1; c < ncol; c++)
            evbuffer_add_printf(out, "  %*s", w[c], cells[i][c]);
        evbuffer_add(out, "\r\n", 2);
    }
    free(cells);
    free(rows);
    return REPLY;
}

void gdl_console_json_string(struct evbuffer *out, const char *s)
{
    evbuffer_add(out, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            evbuffer_add_printf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            evbuffer_add_printf(out, "\\u%04x", ch);
        else
            evbuffer_add(out, s, 1);
    }
    evbuffer_add(out, "\"", 1);
}

/* A pool's queue and running jobs, summed over the servers whose last
 * poll answered. */
static void queue_of(int pool, long *queue, long *running)
{
    *queue = *running = 0;
    for (int s = 0; s < gdl_config.nservers; s++)
        if (gdl_observed[s].valid) {
            *queue += gdl_observed[s].queue[pool];
            *running += gdl_observed[s].running[pool];
        }
}

static const char *const restart_names[] = {
#define GDL_X(NAME, name, help) name,
    GDL_RESTARTS(GDL_X)
#undef GDL_X
};

/* The `json` document (without a line end): for the console and for
 * the HTTP endpoint's /status.json. -1 when out of memory. */
int gdl_console_json(struct evbuffer *out)
{
    static gdl_proc_info_t procs[GDL_PROCS_MAX];
    gdl_attempt_t recent[10];
    gdl_pool_status_t st;
    int64_t now = gdl_now_ms();
    row_t *rows = rows_collect();
    int n;

    if (rows == NULL)
        return -1;
    evbuffer_add_printf(out, "{\"version\":\"%s\",\"pid\":%d,\"jobs\":[", GDLUA_VERSION, (int)gdl_master_pid);
    for (int i = 0; i < gdl_npools; i++) {
        const row_t *r = &rows[i];
        const gdl_pool_t *p = &gdl_pools[r->pool];
        double mean, p99;
        char text[32];
        long queue, running;

        gdl_master_status(r->pool, &st, procs, GDL_PROCS_MAX);
        n = st.processes + st.stopping;

        mean_p99(&r->st.c, &mean, &p99);
        evbuffer_add_printf(out, "%s{\"name\":", i ? "," : "");
        gdl_console_json_string(out, p->name);
        evbuffer_add_printf(out,
                            ",\"min_processes\":%d,\"max_processes\":%d,\"processes\":%d,\"stopping\":%d,\"busy\":%d",
                            r->st.min, r->st.max, r->st.processes, r->st.stopping, r->st.busy);
        for (size_t c = 0; c < NCOUNTERS; c++) {
            counter_text(r, c, text, sizeof(text));
            if (counters[c].fold == GDL_FOLD_LATEST)
                evbuffer_add_printf(out, ",\"%s\":\"%s\"", counters[c].name, text);
            else
                evbuffer_add_printf(out, ",\"%s\":%s", counters[c].name, text);
        }
        evbuffer_add(out, ",\"last_error_message\":", 22);
        gdl_console_json_string(out, r->st.c.error);
        queue_of(r->pool, &queue, &running);
        evbuffer_add_printf(out, ",\"mean_ms\":%.3f,\"p99_ms\":%.3f,\"queue\":%ld,\"running\":%ld,\"restarts\":{", mean,
                            p99, queue, running);
        for (int k = 0; k < GDL_RESTART_REASONS; k++)
            evbuffer_add_printf(out, "%s\"%s\":%llu", k ? "," : "", restart_names[k],
                                (unsigned long long)r->st.restarts[k]);
        evbuffer_add(out, "},\"functions\":[", 15);
        for (int f = 0; f < p->nfunctions; f++) {
            if (f)
                evbuffer_add(out, ",", 1);
            gdl_console_json_string(out, p->functions[f]);
        }
        evbuffer_add(out, "],\"pids\":[", 10);
        for (int k = 0; k < st.processes && k < GDL_PROCS_MAX; k++)
            evbuffer_add_printf(out, "%s%d", k ? "," : "", procs[k].pid);
        evbuffer_add(out, "],\"procs\":[", 11);
        for (int k = 0; k < n && k < GDL_PROCS_MAX; k++) {
            evbuffer_add_printf(out, "%s{\"pid\":%d,\"state\":\"%s\",\"stopping\":%s,\"for_ms\":%lld,\"handle\":",
                                k ? "," : "", procs[k].pid, gdl_slot_state_name(procs[k].state),
                                procs[k].stopping ? "true" : "false", (long long)(now - procs[k].since_ms));
            gdl_console_json_string(out, procs[k].handle);
            evbuffer_add(out, "}", 1);
        }
        evbuffer_add(out, "]}", 2);
    }
    evbuffer_add(out, "],\"attempts\":[", 14);
    n = gdl_attempts_recent(recent, (int)(sizeof(recent) / sizeof(recent[0])));
    for (int i = 0; i < n; i++) {
        char when[32];

        gdl_format_time(recent[i].when, when, sizeof(when));
        evbuffer_add_printf(out, "%s{\"handle\":", i ? "," : "");
        gdl_console_json_string(out, recent[i].handle);
        evbuffer_add_printf(out, ",\"deaths\":%u,\"last\":\"%s\",\"reason\":", recent[i].deaths, when);
        gdl_console_json_string(out, recent[i].reason);
        evbuffer_add(out, "}", 1);
    }
    evbuffer_add(out, "]}", 2);
    free(rows);
    return 0;
}

static int cmd_json(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    if (gdl_console_json(out) < 0)
        return out_of_memory(out);
    evbuffer_add(out, "\r\n", 2);
    return REPLY;
}

static int cmd_auth(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    int64_t now = gdl_now_ms();

    if (token[0] && now < auth_paused_until_ms) {
        reply(out, "ERR auth_paused: a wrong token was given; try again in a second");
        return CLOSE;
    }
    if (token[0] == '\0' || gdl_token_equal(argv[1], strlen(argv[1]), token)) {
        *authed = true;
        reply(out, "OK");
        return REPLY;
    }
    auth_paused_until_ms = now + AUTH_PAUSE_MS;
    gdl_warn("console: a wrong token; refusing every auth for %d ms", AUTH_PAUSE_MS);
    reply(out, "ERR invalid_token");
    return CLOSE;
}

static int cmd_help(struct evbuffer *out, int argc, char **argv, bool *authed);

static const console_cmd_t commands[] = {
#define GDL_X(name, args, min_args, max_args, run, help) {name, args, min_args, max_args, run, help},
    GDL_CONSOLE_COMMANDS(GDL_X)
#undef GDL_X
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int cmd_help(struct evbuffer *out, int argc, char **argv, bool *authed)
{
    char lhs[64];

    for (size_t i = 0; i < NCOMMANDS; i++) {
        snprintf(lhs, sizeof(lhs), "%s%s%s", commands[i].name, commands[i].args[0] ? " " : "", commands[i].args);
        reply(out, "%-30s %s", lhs, commands[i].help);
    }
    return REPLY;
}

/* Printable, short: for echoing what a client sent. */
static const char *sanitize(const char *s, char *buf, size_t len)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < len && i < 64; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* Runs one command line; the reply goes to out. Returns what to do with
 * the connection. Used by the connections below and by the fuzzer. */
int gdl_console_execute(char *line, struct evbuffer *out, bool *authed)
{
    char *argv[ARGS_MAX], *save = NULL, buf[80];
    const console_cmd_t *cmd = NULL;
    int argc = 0, rc;

    for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (argc == ARGS_MAX) {
            reply(out, "ERR too_many_arguments: at most %d", ARGS_MAX - 1);
            evbuffer_add(out, ".\r\n", 3);
            return GDL_CONSOLE_CONTINUE;
        }
        argv[argc++] = t;
    }
    if (argc == 0)
        return GDL_CONSOLE_CONTINUE; /* an empty line: nothing to answer */
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        reply(out, "ERR unknown_command: %s", sanitize(argv[0], buf, sizeof(buf)));
    } else if (!*authed && cmd->run != cmd_auth && cmd->run != cmd_quit) {
        reply(out, "ERR auth_required: send auth TOKEN first");
    } else if (argc - 1 < cmd->min_args || (cmd->max_args >= 0 && argc - 1 > cmd->max_args)) {
        reply(out, "ERR %s: usage: %s%s%s", argc - 1 < cmd->min_args ? "missing_argument" : "too_many_arguments",
              cmd->name, cmd->args[0] ? " " : "", cmd->args);
    } else {
        size_t before = evbuffer_get_length(out);

        rc = cmd->run(out, argc, argv, authed);
        if (rc == WAIT)
            return GDL_CONSOLE_WAIT;
        if (rc == CLOSE && evbuffer_get_length(out) == before)
            return GDL_CONSOLE_CLOSE; /* quit, shutdown: no reply at all */
        if (rc == CLOSE) {
            evbuffer_add(out, ".\r\n", 3);
            return GDL_CONSOLE_CLOSE_AFTER;
        }
    }
    evbuffer_add(out, ".\r\n", 3);
    return GDL_CONSOLE_CONTINUE;
}

static void conn_free(conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->deadline)
        event_free(c->deadline);
    bufferevent_free(c->bev);
    free(c);
    nconns--;
}

/* A connection that did not authenticate in time, or holds a line
 * unfinished: its slot goes to someone else. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;

    gdl_debug("console: dropping a connection that %s", c->authed ? "left a line unfinished" : "did not authenticate");
    conn_free(c);
}

/* Arms or clears the deadline: while unauthenticated (with a token), and
 * while a line has begun but not ended. */
static void set_deadline(conn_t *c)
{
    bool partial = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;

    if (!c->authed || partial) {
        if (!evtimer_pending(c->deadline, NULL)) {
            struct timeval tv = {c->authed ? LINE_TIMEOUT_S : AUTH_TIMEOUT_S, 0};
            evtimer_add(c->deadline, &tv);
        }
    } else {
        evtimer_del(c->deadline);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;

    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

/* Answers, then closes once the answer is written. */
static void close_with(conn_t *c, const char *msg)
{
    if (msg)
        bufferevent_write(c->bev, msg, strlen(msg));
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    on_write(c->bev, c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
    size_t len;
    char *line;

    while (!c->closing && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        int rc;

        if (len > LINE_MAX_BYTES) {
            free(line);
            close_with(c, "ERR line_too_long: at most 4096 bytes\r\n.\r\n");
            return;
        }
        rc = gdl_console_execute(line, out, &c->authed);
        free(line);
        if (rc == GDL_CONSOLE_CLOSE) {
            conn_free(c);
            return;
        }
        if (rc == GDL_CONSOLE_CLOSE_AFTER) {
            close_with(c, NULL);
            return;
        }
        if (rc == GDL_CONSOLE_WAIT) {
            c->waiting = true;
            bufferevent_disable(bev, EV_READ);
            return;
        }
        if (evbuffer_get_length(out) > OUTPUT_MAX_BYTES) {
            gdl_warn("console: dropping a client that does not read its replies");
            conn_free(c);
            return;
        }
    }
    if (!c->closing && evbuffer_get_length(in) > LINE_MAX_BYTES) {
        close_with(c, "ERR line_too_long: at most 4096 bytes\r\n.\r\n");
        return;
    }
    if (!c->closing)
        set_deadline(c);
}

/* A reload has ended: the connections waiting for it get the answer
 * and go on with the lines they sent meanwhile. */
static void on_reloaded(bool ok, const char *msg)
{
    char text[600];
    conn_t *next;

    gdl_escape(text, sizeof(text), msg, strcspn(msg, "\n"), false);
    for (conn_t *c = conns; c; c = next) {
        next = c->next;
        if (!c->waiting)
            continue;
        c->waiting = false;
        evbuffer_add_printf(bufferevent_get_output(c->bev), "%s%s\r\n.\r\n", ok ? "OK " : "ERR reload_failed: ", text);
        bufferevent_enable(c->bev, EV_READ);
        on_read(c->bev, c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct event_base *base = evconnlistener_get_base(l);
    struct timeval idle = {IDLE_TIMEOUT_S, 0};
    conn_t *c;

    if (nconns >= CLIENTS_MAX) {
        static const char msg[] = "ERR too_many_connections\r\n.\r\n";
        ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        evutil_closesocket(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->deadline = c->bev ? evtimer_new(base, on_deadline, c) : NULL;
    if (c->bev == NULL || c->deadline == NULL) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        free(c);
        return;
    }
    c->authed = token[0] == '\0';
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    nconns++;
    set_deadline(c);
}

static void console_close(void)
{
    while (conns)
        conn_free(conns);
    if (listener)
        evconnlistener_free(listener);
    listener = NULL;
}

/* In a new child: the listening socket and connections are the master's.
 * Closed once (a later fork of the child must not close what took their
 * numbers); the structures stay, the child never runs the loop. */
static void after_fork(void)
{
    static bool closed;

    if (closed)
        return;
    closed = true;
    if (listener)
        close(evconnlistener_get_fd(listener));
    for (conn_t *c = conns; c; c = c->next)
        close(bufferevent_getfd(c->bev));
}

static void on_master(const gdl_event_t *ev, void *arg)
{
    if (ev->event == GDL_EV_RELOADED)
        on_reloaded(ev->ok, ev->msg);
    else
        console_close();
}

/* Starts listening. A configuration error (bad address, unreadable token,
 * an open non-loopback bind) is fatal: -1. A port in use is not: the
 * jobs are served without a console. */
int gdl_console_init(struct event_base *base)
{
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    char port[16];
    int rc;

    if (gdl_config.console_port == 0)
        return 0;
    if (gdl_config.console_token && gdl_token_read(gdl_config.console_token, token, sizeof(token), "console") < 0)
        return -1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%d", gdl_config.console_port);
    rc = evutil_getaddrinfo(gdl_config.console_bind, port, &hints, &ai);
    if (rc != 0) {
        gdl_error("console: bad --console_bind %s: %s", gdl_config.console_bind, evutil_gai_strerror(rc));
        return -1;
    }
    if (!gdl_is_loopback(ai->ai_addr) && token[0] == '\0' && !gdl_config.console_insecure) {
        gdl_error("console: refusing to listen on %s without --console_token (or --console_insecure)",
                  gdl_config.console_bind);
        evutil_freeaddrinfo(ai);
        return -1;
    }
    listener = evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                       ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (listener == NULL) {
        gdl_error("console: cannot listen on %s:%d: %s; serving jobs without a console", gdl_config.console_bind,
                  gdl_config.console_port, strerror(errno));
        return 0;
    }
    gdl_master_on(GDL_EV_SHUTDOWN | GDL_EV_RELOADED, on_master, NULL);
    pthread_atfork(NULL, NULL, after_fork);
    gdl_info("console on %s:%d%s", gdl_config.console_bind, gdl_config.console_port,
             token[0] ? " (token required)" : "");
    return 0;
}
