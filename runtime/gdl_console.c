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
 * the connection closed, a line holding a NUL is answered with an error,
 * a client that stops reading is dropped once 1 MiB of replies waits. A
 * connection must send its first command within 10 s (with
 * --console_token: authenticate within 5 s), finish a line within 5 s
 * of beginning it, and is closed after 5 minutes idle; at the limit of
 * connections a new one closes the oldest idle one (gdl_listen.c), those
 * that never sent a command first. With --console_token, nothing but
 * "auth TOKEN" is accepted until it succeeds; a wrong token pauses the
 * tries from its address for a second. Replies are written before a
 * connection closes, on quit and when the client half-closes: lines sent
 * before the end are all answered (the last even without its line end);
 * at the master's end too (gdl_listen_close), so a client waiting for a
 * reload's answer gets "ERR reload_failed: shutting down".
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "gdl_console_commands.h"
#include "gdlua.h"

#define LINE_MAX_BYTES   4096
#define OUTPUT_MAX_BYTES (1 << 20)
#define IDLE_TIMEOUT_S   300
#define FIRST_TIMEOUT_S  10   /* to send a first command */
#define AUTH_TIMEOUT_S   5    /* to authenticate, with --console_token */
#define LINE_TIMEOUT_S   5    /* to finish a line once it has begun */
#define AUTH_PAUSE_MS    1000 /* after a wrong token, every auth from its address is refused this long */
#define CLIENTS_MAX      512
#define ARGS_MAX         64

typedef struct {
    gdl_conn_t base;
    struct event *deadline; /* authenticate, send a first command, or finish the line begun, by then */
    int deadline_kind;      /* which of those it is armed for */
    gdl_console_client_t client;
    bool used;    /* a command has run */
    bool closing; /* free once the reply is written */
    bool waiting; /* for a reload's outcome: reads no more lines meanwhile */
    bool ended;   /* the client has sent all it will (EOF): close once all is answered */
} conn_t;

typedef struct {
    const char *name;
    const char *args;
    int min_args, max_args; /* arguments after the name; -1: no limit */
    int (*run)(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl);
    const char *help;
} console_cmd_t;

enum { REPLY, NO_REPLY, CLOSE, WAIT };

static int on_conn(gdl_conn_t *base);
static void on_conn_free(gdl_conn_t *base);

static gdl_listener_t listener = {.who = "console",
                                  .without = "a console",
                                  .conn_size = sizeof(conn_t),
                                  .max = CLIENTS_MAX,
                                  .busy_reply = "ERR too_many_connections\r\n.\r\n",
                                  .on_conn = on_conn,
                                  .on_free = on_conn_free};
static char token[256];
static gdl_lockout_t lockout; /* guesses are slowed to one a pause per address */

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

static int cmd_status(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
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

static int cmd_show(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
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

static int cmd_set_min(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    return set_processes(out, argv[1], argv[2], NULL);
}

static int cmd_set_max(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    return set_processes(out, argv[1], NULL, argv[2]);
}

static int cmd_set_both(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    return set_processes(out, argv[1], argv[2], argv[3]);
}

static int cmd_kill(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
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

static int cmd_killall(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
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

static int cmd_quit(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    return CLOSE;
}

static int cmd_shutdown(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    gdl_info("console: shutdown");
    gdl_master_shutdown();
    return CLOSE;
}

/* Answered once the load has succeeded or failed (on_reloaded). */
static int cmd_reload(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    gdl_info("console: reload");
    gdl_master_reload("console reload");
    return WAIT;
}

static int cmd_version(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
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

static int cmd_stats(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    enum { CELL = 48, COLS_MAX = 6 + NCOUNTERS };
    const char *head[COLS_MAX] = {"JOB", "PROCESSES", "BUSY", "JOBS"};
    row_t *rows = rows_collect();
    char(*cells)[COLS_MAX][CELL] = calloc(gdl_npools + 1, sizeof(*cells));
    int w[COLS_MAX] = {0}, ncol = 4;

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
        int col = 4;

        mean_p99(&r->st.c, &mean, &p99);
        snprintf(cell[1], CELL, "%s", r->cur);
        snprintf(cell[2], CELL, "%d", r->st.busy);
        /* jobs in hand / job slots (processes x concurrency) */
        snprintf(cell[3], CELL, "%d/%d", r->st.jobs, r->st.capacity);
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
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);

    evbuffer_add(out, "\"", 1);
    for (size_t i = 0, n; i < len; i += n) {
        n = gdl_utf8_len(u + i, len - i);
        if (n == 0) {
            evbuffer_add_printf(out, "\\\\x%02x", u[i]); /* the text \xHH: a backslash, escaped */
            n = 1;
        } else if (u[i] == '"' || u[i] == '\\') {
            evbuffer_add_printf(out, "\\%c", u[i]);
        } else if (u[i] < 0x20 || u[i] == 0x7f) {
            evbuffer_add_printf(out, "\\u%04x", u[i]);
        } else {
            evbuffer_add(out, u + i, n);
        }
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
    const gdl_generations_info_t *g = gdl_generations_info();
    int64_t now = gdl_now_ms();
    row_t *rows = rows_collect();
    int n;

    if (rows == NULL)
        return -1;
    evbuffer_add_printf(out,
                        "{\"version\":\"%s\",\"pid\":%d,\"generation\":%d,\"module_load_failures\":%d,"
                        "\"reloads\":{\"ok\":%lu,\"failed\":%lu,\"last\":",
                        GDLUA_VERSION, (int)gdl_master_pid, g->generation, g->load_failures, g->reloads[1],
                        g->reloads[0]);
    if (g->reloaded) {
        evbuffer_add_printf(out, "{\"ok\":%s,\"msg\":", g->last_ok ? "true" : "false");
        gdl_console_json_string(out, g->last);
        evbuffer_add(out, "}", 1);
    } else {
        evbuffer_add(out, "null", 4);
    }
    evbuffer_add(out, "},\"jobs\":[", 10);
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
                            ",\"min_processes\":%d,\"max_processes\":%d,\"processes\":%d,\"stopping\":%d,\"busy\":%d"
                            ",\"concurrency\":%d,\"jobs_in_flight\":%d,\"job_slots\":%d",
                            r->st.min, r->st.max, r->st.processes, r->st.stopping, r->st.busy,
                            p->concurrency > 1 ? p->concurrency : 1, r->st.jobs, r->st.capacity);
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
            evbuffer_add_printf(out,
                                "%s{\"pid\":%d,\"state\":\"%s\",\"stopping\":%s,\"for_ms\":%lld,\"jobs\":%d,"
                                "\"concurrency\":%d,\"handle\":",
                                k ? "," : "", procs[k].pid, gdl_slot_state_name(procs[k].state),
                                procs[k].stopping ? "true" : "false", (long long)(now - procs[k].since_ms),
                                procs[k].jobs, procs[k].capacity);
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

static int cmd_json(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    if (gdl_console_json(out) < 0)
        return out_of_memory(out);
    evbuffer_add(out, "\r\n", 2);
    return REPLY;
}

static int cmd_auth(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
{
    char peer[64];

    switch (token[0] ? gdl_auth_check(&lockout, cl->peer, argv[1], strlen(argv[1]), token, gdl_now_ms(), AUTH_PAUSE_MS)
                     : GDL_AUTH_OK) {
    case GDL_AUTH_OK:
        cl->authed = true;
        reply(out, "OK");
        return REPLY;
    case GDL_AUTH_PAUSED:
        reply(out, "ERR auth_paused: a wrong token was given; try again in a second");
        return CLOSE;
    default:
        gdl_warn("console: a wrong token from %s; refusing its tries for %d ms",
                 gdl_peer_name(cl->peer, peer, sizeof(peer)), AUTH_PAUSE_MS);
        reply(out, "ERR invalid_token");
        return CLOSE;
    }
}

static int cmd_help(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl);

static const console_cmd_t commands[] = {
#define GDL_X(name, args, min_args, max_args, run, help) {name, args, min_args, max_args, run, help},
    GDL_CONSOLE_COMMANDS(GDL_X)
#undef GDL_X
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int cmd_help(struct evbuffer *out, int argc, char **argv, gdl_console_client_t *cl)
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
int gdl_console_execute(char *line, size_t len, struct evbuffer *out, gdl_console_client_t *cl)
{
    char *argv[ARGS_MAX], *save = NULL, buf[80];
    const console_cmd_t *cmd = NULL;
    int argc = 0, rc;

    if (memchr(line, '\0', len)) {
        reply(out, "ERR invalid_line: a NUL byte");
        evbuffer_add(out, ".\r\n", 3);
        return GDL_CONSOLE_CONTINUE;
    }
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
    } else if (!cl->authed && cmd->run != cmd_auth && cmd->run != cmd_quit) {
        reply(out, "ERR auth_required: send auth TOKEN first");
    } else if (argc - 1 < cmd->min_args || (cmd->max_args >= 0 && argc - 1 > cmd->max_args)) {
        reply(out, "ERR %s: usage: %s%s%s", argc - 1 < cmd->min_args ? "missing_argument" : "too_many_arguments",
              cmd->name, cmd->args[0] ? " " : "", cmd->args);
    } else {
        size_t before = evbuffer_get_length(out);

        rc = cmd->run(out, argc, argv, cl);
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

/* ---- connections ---- */

enum { NO_DEADLINE, AUTH_DEADLINE, FIRST_DEADLINE, LINE_DEADLINE };

static void on_conn_free(gdl_conn_t *base)
{
    conn_t *c = (conn_t *)base;

    if (c->deadline)
        event_free(c->deadline);
}

/* A connection that did not authenticate or send a command in time, or
 * holds a line unfinished: its slot goes to someone else. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;

    gdl_debug("console: dropping a connection that %s", !c->client.authed ? "did not authenticate"
                                                        : !c->used        ? "sent no command"
                                                                          : "left a line unfinished");
    gdl_conn_free(&c->base);
}

/* Arms the deadline the connection's state calls for (each from when
 * that state began: bytes arriving do not extend it), and ranks it for
 * eviction: one that never sent a command first, then one holding a line
 * unfinished, then one idle; never one waiting for a reload's answer or
 * closing. */
static void set_deadline(conn_t *c)
{
    static const int secs[] = {0, AUTH_TIMEOUT_S, FIRST_TIMEOUT_S, LINE_TIMEOUT_S};
    bool partial = evbuffer_get_length(bufferevent_get_input(c->base.bev)) > 0;
    int kind = c->waiting || c->closing ? NO_DEADLINE
               : !c->client.authed      ? AUTH_DEADLINE
               : !c->used               ? FIRST_DEADLINE
               : partial                ? LINE_DEADLINE
                                        : NO_DEADLINE;

    c->base.evictable = c->waiting || c->closing ? 0 : !c->used ? 3 : partial ? 2 : 1;
    if (kind == c->deadline_kind)
        return;
    c->deadline_kind = kind;
    evtimer_del(c->deadline);
    if (kind != NO_DEADLINE) {
        struct timeval tv = {secs[kind], 0};
        evtimer_add(c->deadline, &tv);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;

    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        gdl_conn_free(&c->base);
}

/* Closes the connection once msg (if any) and every reply before it are
 * written. false: it is closed already (nothing was left to write). */
static bool close_after(conn_t *c, const char *msg)
{
    if (msg)
        bufferevent_write(c->base.bev, msg, strlen(msg));
    if (evbuffer_get_length(bufferevent_get_output(c->base.bev)) == 0) {
        gdl_conn_free(&c->base);
        return false;
    }
    c->closing = true;
    bufferevent_disable(c->base.bev, EV_READ);
    set_deadline(c);
    return true;
}

/* Runs the lines received, in order; once the client has ended (EOF),
 * the last one even without its line end, then closes once every reply
 * is written. false: c is freed. */
static bool serve(conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->base.bev), *out = bufferevent_get_output(c->base.bev);

    while (!c->closing && !c->waiting) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        int rc;

        if (line == NULL && c->ended && (len = evbuffer_get_length(in)) > 0 && (line = malloc(len + 1)) != NULL) {
            evbuffer_remove(in, line, len);
            line[len] = '\0';
        }
        if (line == NULL)
            break;
        if (len > LINE_MAX_BYTES) {
            free(line);
            return close_after(c, "ERR line_too_long: at most 4096 bytes\r\n.\r\n");
        }
        c->used |= strspn(line, " \t") < len; /* a command, not an empty line */
        rc = gdl_console_execute(line, len, out, &c->client);
        free(line);
        if (rc == GDL_CONSOLE_CLOSE || rc == GDL_CONSOLE_CLOSE_AFTER)
            return close_after(c, NULL);
        if (rc == GDL_CONSOLE_WAIT) {
            c->waiting = true;
            bufferevent_disable(c->base.bev, EV_READ);
        }
        if (evbuffer_get_length(out) > OUTPUT_MAX_BYTES) {
            gdl_warn("console: dropping a client that does not read its replies");
            gdl_conn_free(&c->base);
            return false;
        }
    }
    if (c->closing || c->waiting) {
        set_deadline(c);
        return true;
    }
    if (evbuffer_get_length(in) > LINE_MAX_BYTES)
        return close_after(c, "ERR line_too_long: at most 4096 bytes\r\n.\r\n");
    if (c->ended)
        return close_after(c, NULL);
    set_deadline(c);
    return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    serve(arg);
}

/* A reload has ended: the connections waiting for it get the answer
 * and go on with the lines they sent meanwhile. */
static void on_reloaded(bool ok, const char *msg)
{
    char text[600];
    gdl_conn_t *next;

    gdl_escape(text, sizeof(text), msg, strcspn(msg, "\n"), false);
    for (gdl_conn_t *b = listener.first; b; b = next) {
        conn_t *c = (conn_t *)b;

        next = b->next;
        if (!c->waiting)
            continue;
        c->waiting = false;
        evbuffer_add_printf(bufferevent_get_output(b->bev), "%s%s\r\n.\r\n", ok ? "OK " : "ERR reload_failed: ", text);
        if (!c->ended)
            bufferevent_enable(b->bev, EV_READ);
        serve(c);
    }
}

/* The client's end (EOF): what it sent before is answered, then the
 * connection closes. A timeout or an error closes it at once. */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn_t *c = arg;

    if ((what & BEV_EVENT_EOF) && !c->closing) {
        c->ended = true;
        serve(c);
        return;
    }
    gdl_conn_free(&c->base);
}

static int on_conn(gdl_conn_t *base)
{
    conn_t *c = (conn_t *)base;
    struct timeval idle = {IDLE_TIMEOUT_S, 0};

    if ((c->deadline = evtimer_new(bufferevent_get_base(base->bev), on_deadline, c)) == NULL)
        return -1;
    c->client.authed = token[0] == '\0';
    c->client.peer = (const struct sockaddr *)&base->peer;
    bufferevent_setcb(base->bev, on_read, on_write, on_event, c);
    bufferevent_set_timeouts(base->bev, &idle, &idle);
    bufferevent_enable(base->bev, EV_READ | EV_WRITE);
    set_deadline(c);
    return 0;
}

static void console_close(void)
{
    gdl_listen_close(&listener);
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
    char port[16], shown[300];
    int rc;

    if (gdl_config.console_port == 0)
        return 0;
    if (gdl_config.console_token && gdl_token_read(gdl_config.console_token, token, sizeof(token), "console") < 0)
        return -1;
    snprintf(port, sizeof(port), "%d", gdl_config.console_port);
    snprintf(shown, sizeof(shown), "%s:%d", gdl_config.console_bind, gdl_config.console_port);
    rc = gdl_listen(&listener, base, gdl_config.console_bind, port, gdl_config.console_bind, shown, token[0] != '\0',
                    gdl_config.console_insecure);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    gdl_master_on(GDL_EV_SHUTDOWN | GDL_EV_RELOADED, on_master, NULL);
    gdl_info("console on %s%s", shown, token[0] ? " (token required)" : "");
    return 0;
}
