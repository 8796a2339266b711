/*
 * gdl_http.c: the HTTP endpoint, in the master's event loop (libevent's
 * evhttp), off unless --http_bind is given:
 *
 *   /metrics       Prometheus' text format: the counters of GDL_COUNTERS
 *                  (gdlua.h) by job, the duration histogram, processes
 *                  by state, restarts by reason (gdl_master_status), the
 *                  queues and servers the observer saw (gdl_observer.c)
 *   /status.json   the console's `json` (gdl_console_json)
 *   /history.json  the last minutes, one sample a second, for the chart
 *   /              the dashboard: its page, script and the dygraphs
 *                  library are built into the binary (gdl_assets.c)
 *
 * The address rule is the console's: a non-loopback bind needs
 * --http_token (or --http_insecure). With a token, the data paths need
 * "Authorization: Bearer TOKEN"; the dashboard's own files hold no data
 * and are served to anyone (the page sends the token it was given in its
 * URL's fragment). Only GET and HEAD; a connection idle or slow for
 * IO_TIMEOUT_S is closed, so idle clients cannot hold the server.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <luajit.h>

#include "gdlua.h"

#define URI_MAX       2048 /* longer: 414 */
#define HEADERS_MAX   8192 /* request line and headers; longer: refused by evhttp */
#define IO_TIMEOUT_S  10
#define AUTH_PAUSE_MS 1000 /* after a wrong token, every token is refused this long */
#define SAMPLE_MS     1000
#define HISTORY_LEN   300 /* samples kept: 5 minutes */

typedef struct {
    const char *path;
    const char *type;
    int (*send)(struct evbuffer *out);
} route_t;

/* One pool at one sample. */
typedef struct {
    int32_t processes, busy, queue;
    uint64_t jobs, errors; /* ended so far: all, and those not done */
} sample_t;

static struct evhttp *http;
static struct evhttp_bound_socket *bound;
static struct sockaddr_storage bound_addr;
static char token[256];
static int64_t auth_paused_until_ms;
static struct event *sample_timer;
static int64_t times[HISTORY_LEN]; /* unix ms of each sample */
static sample_t *history;          /* HISTORY_LEN x gdl_npools */
static int nsamples, next_sample;

/* ---- /metrics ---- */

static const struct {
    const char *metric, *help;
    int fold;
    size_t off;
} counters[] = {
#define GDL_X(name, fold, column, metric, help) {metric, help, GDL_FOLD_##fold, offsetof(gdl_counters_t, name)},
    GDL_COUNTERS(GDL_X)
#undef GDL_X
};

#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

static const struct {
    const char *name, *help;
} restarts[] = {
#define GDL_X(NAME, name, help) {name, help},
    GDL_RESTARTS(GDL_X)
#undef GDL_X
};

/* What /metrics shows of one pool. */
typedef struct {
    gdl_pool_status_t st;
    int states[GDL_SLOT_RECYCLE + 1]; /* processes serving, by slot state */
} pool_figures_t;

/* A label value: valid UTF-8 and no newline (gdl_escape), then \ and "
 * escaped as the text format wants. */
static void label_value(struct evbuffer *out, const char *s)
{
    char safe[512];

    gdl_escape(safe, sizeof(safe), s, strlen(s), false);
    for (const char *p = safe; *p; p++)
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(out, "\\%c", *p);
        else
            evbuffer_add(out, p, 1);
}

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP gdlua_%s %s\n# TYPE gdlua_%s %s\n", name, help, name, type);
}

/* "gdlua_NAME{job="JOB"" without the closing brace: callers add labels. */
static void series_start(struct evbuffer *out, const char *name, int pool)
{
    evbuffer_add_printf(out, "gdlua_%s{job=\"", name);
    label_value(out, gdl_pools[pool].name);
    evbuffer_add(out, "\"", 1);
}

static void server_name(int s, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%d", gdl_config.servers[s].host, gdl_config.servers[s].port);
}

/* The counters' families, in table order: counters sharing a name
 * ("jobs_total{outcome=...}") are one family, its help made of theirs. */
static void counter_families(struct evbuffer *out, const pool_figures_t *fig)
{
    for (size_t c = 0; c < NCOUNTERS; c++) {
        size_t len, first = c, last = c;
        char name[64], help[1024];
        int n = 0;

        if (counters[c].metric == NULL)
            continue;
        len = strcspn(counters[c].metric, "{");
        if (c > 0 && counters[c - 1].metric && strncmp(counters[c - 1].metric, counters[c].metric, len + 1) == 0)
            continue; /* shown with the first of its family */
        while (last + 1 < NCOUNTERS && counters[last + 1].metric &&
               strncmp(counters[last + 1].metric, counters[c].metric, len + 1) == 0)
            last++;
        snprintf(name, sizeof(name), "%.*s", (int)len, counters[c].metric);
        for (size_t k = first; k <= last; k++) {
            const char *label = counters[k].metric + len, *value = strchr(label, '"');

            if (value) /* {outcome="done"}: done: jobs completed */
                n += snprintf(help + n, sizeof(help) - n, "%s%.*s: %s", k > first ? "; " : "",
                              (int)strcspn(value + 1, "\""), value + 1, counters[k].help);
            else
                n += snprintf(help + n, sizeof(help) - n, "%s", counters[k].help);
            if (n >= (int)sizeof(help))
                n = (int)sizeof(help) - 1;
        }
        family(out, name, counters[c].fold == GDL_FOLD_SUM ? "counter" : "gauge", help);
        for (int k = 0; k < gdl_npools; k++)
            for (size_t m = first; m <= last; m++) {
                const char *label = counters[m].metric + len;
                uint64_t v = *(const uint64_t *)((const char *)&fig[k].st.c + counters[m].off);

                series_start(out, name, k);
                if (*label)
                    evbuffer_add_printf(out, ",%s", label + 1);
                else
                    evbuffer_add(out, "}", 1);
                evbuffer_add_printf(out, " %llu\n", (unsigned long long)v);
            }
    }
}

/* The slot histogram has 4 buckets per octave of microseconds; every
 * other octave's upper edge, 4^3 µs (64 µs) to 4^15 µs (about 18 min),
 * is an `le` bound, exactly: bucket 4k - 5 is the last below 2^k µs. */
static void duration_histogram(struct evbuffer *out, const pool_figures_t *fig)
{
    family(out, "job_duration_seconds", "histogram", "time a job took in its process (one failed unrun: about 0)");
    for (int p = 0; p < gdl_npools; p++) {
        const gdl_counters_t *c = &fig[p].st.c;
        uint64_t seen = 0;
        int b = 0;

        for (int k = 6; k <= 30; k += 2) {
            for (; b <= 4 * k - 5; b++)
                seen += c->hist[b];
            series_start(out, "job_duration_seconds_bucket", p);
            evbuffer_add_printf(out, ",le=\"%.12g\"} %llu\n", (double)(1ULL << k) / 1e6, (unsigned long long)seen);
        }
        for (; b < GDL_HIST_BUCKETS; b++)
            seen += c->hist[b];
        series_start(out, "job_duration_seconds_bucket", p);
        evbuffer_add_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)seen);
        series_start(out, "job_duration_seconds_sum", p);
        evbuffer_add_printf(out, "} %.6f\n", c->busy_us / 1e6);
        series_start(out, "job_duration_seconds_count", p);
        evbuffer_add_printf(out, "} %llu\n", (unsigned long long)seen);
    }
}

static void process_families(struct evbuffer *out, const pool_figures_t *fig)
{
    family(out, "processes", "gauge",
           "processes by state: starting, idle, busy, recycle (to be replaced), stopping (asked to stop)");
    for (int p = 0; p < gdl_npools; p++) {
        for (int s = GDL_SLOT_STARTING; s <= GDL_SLOT_RECYCLE; s++) {
            series_start(out, "processes", p);
            evbuffer_add_printf(out, ",state=\"%s\"} %d\n", gdl_slot_state_name(s), fig[p].states[s]);
        }
        series_start(out, "processes", p);
        evbuffer_add_printf(out, ",state=\"stopping\"} %d\n", fig[p].st.stopping);
    }
    family(out, "min_processes", "gauge", "processes kept running (min_processes)");
    for (int p = 0; p < gdl_npools; p++) {
        series_start(out, "min_processes", p);
        evbuffer_add_printf(out, "} %d\n", fig[p].st.min);
    }
    family(out, "max_processes", "gauge", "upper bound of processes (max_processes)");
    for (int p = 0; p < gdl_npools; p++) {
        series_start(out, "max_processes", p);
        evbuffer_add_printf(out, "} %d\n", fig[p].st.max);
    }
    {
        char help[1024];
        int n = snprintf(help, sizeof(help), "processes replaced, by why they ended:");

        for (int r = 0; r < GDL_RESTART_REASONS && n < (int)sizeof(help); r++)
            n += snprintf(help + n, sizeof(help) - n, "%s %s: %s", r ? ";" : "", restarts[r].name, restarts[r].help);
        family(out, "restarts_total", "counter", help);
    }
    for (int p = 0; p < gdl_npools; p++)
        for (int r = 0; r < GDL_RESTART_REASONS; r++) {
            series_start(out, "restarts_total", p);
            evbuffer_add_printf(out, ",reason=\"%s\"} %llu\n", restarts[r].name,
                                (unsigned long long)fig[p].st.restarts[r]);
        }
}

/* The observer's figures: per job and server from the last poll that
 * answered (none for a server that is down), and each server's state. */
static void server_families(struct evbuffer *out)
{
    static const char *const names[] = {"queued_jobs", "running_jobs"};
    static const char *const helps[] = {"jobs waiting at the job server, as its last answered poll saw them",
                                        "jobs running, as the job server's last answered poll saw them"};
    int64_t now_ms = gdl_now_ms();
    struct timespec real;
    char server[300];

    for (int f = 0; f < 2; f++) {
        family(out, names[f], "gauge", helps[f]);
        for (int s = 0; s < gdl_config.nservers; s++) {
            const gdl_observed_t *o = &gdl_observed[s];

            if (!o->valid)
                continue;
            server_name(s, server, sizeof(server));
            for (int p = 0; p < gdl_npools; p++) {
                series_start(out, names[f], p);
                evbuffer_add_printf(out, ",server=\"");
                label_value(out, server);
                evbuffer_add_printf(out, "\"} %d\n", f == 0 ? o->queue[p] : o->running[p]);
            }
        }
    }
    family(out, "server_up", "gauge", "1 when the job server's last poll answered, else 0");
    for (int s = 0; s < gdl_config.nservers; s++) {
        server_name(s, server, sizeof(server));
        evbuffer_add_printf(out, "gdlua_server_up{server=\"");
        label_value(out, server);
        evbuffer_add_printf(out, "\"} %d\n", gdl_observed[s].valid ? 1 : 0);
    }
    family(out, "server_last_poll_timestamp_seconds", "gauge",
           "when the last poll the job server answered was sent (unix); 0: none yet");
    clock_gettime(CLOCK_REALTIME, &real);
    for (int s = 0; s < gdl_config.nservers; s++) {
        const gdl_observed_t *o = &gdl_observed[s];
        double when = 0;

        if (o->asked_ms > 0)
            when = (double)real.tv_sec + real.tv_nsec / 1e9 - (now_ms - o->asked_ms) / 1e3;
        server_name(s, server, sizeof(server));
        evbuffer_add_printf(out, "gdlua_server_last_poll_timestamp_seconds{server=\"");
        label_value(out, server);
        evbuffer_add_printf(out, "\"} %.3f\n", when);
    }
}

static int send_metrics(struct evbuffer *out)
{
    static gdl_proc_info_t procs[GDL_PROCS_MAX];
    pool_figures_t *fig = calloc(gdl_npools ? gdl_npools : 1, sizeof(*fig));

    if (fig == NULL)
        return -1;
    for (int p = 0; p < gdl_npools; p++) {
        int n = gdl_master_status(p, &fig[p].st, procs, GDL_PROCS_MAX);

        for (int i = 0; i < n && i < GDL_PROCS_MAX; i++)
            if (procs[i].state >= 0 && procs[i].state <= GDL_SLOT_RECYCLE)
                fig[p].states[procs[i].state]++;
    }
    family(out, "build_info", "gauge", "gdlua's version and its libraries'; always 1");
    evbuffer_add_printf(out, "gdlua_build_info{version=\"%s\",luajit=\"%s\",libevent=\"%s\"} 1\n", GDLUA_VERSION,
                        LUAJIT_VERSION, event_get_version());
    counter_families(out, fig);
    duration_histogram(out, fig);
    process_families(out, fig);
    server_families(out);
    free(fig);
    return 0;
}

/* ---- /status.json, /history.json ---- */

static int send_status(struct evbuffer *out)
{
    if (gdl_console_json(out) < 0)
        return -1;
    evbuffer_add(out, "\n", 1);
    return 0;
}

/* gdl_pools has changed (the first load, a reload): the history is kept
 * by pool index, so it starts again. */
static void pools_changed(void)
{
    if (http == NULL)
        return;
    free(history);
    nsamples = next_sample = 0;
    history = calloc((size_t)HISTORY_LEN * (gdl_npools ? gdl_npools : 1), sizeof(sample_t));
    if (history == NULL)
        gdl_error("http: out of memory: the dashboard's chart has no history");
}

static void on_sample(evutil_socket_t fd, short what, void *arg)
{
    sample_t *row = history ? &history[(size_t)next_sample * gdl_npools] : NULL;
    struct timespec real;

    if (row == NULL)
        return;

    clock_gettime(CLOCK_REALTIME, &real);
    times[next_sample] = (int64_t)real.tv_sec * 1000 + real.tv_nsec / 1000000;
    for (int p = 0; p < gdl_npools; p++) {
        gdl_pool_status_t st;
        const gdl_counters_t *c = &st.c;
        long queue = 0;

        gdl_master_status(p, &st, NULL, 0);
        for (int s = 0; s < gdl_config.nservers; s++)
            if (gdl_observed[s].valid)
                queue += gdl_observed[s].queue[p];
        row[p] = (sample_t){.processes = st.processes,
                            .busy = st.busy,
                            .queue = queue > INT32_MAX ? INT32_MAX : (int32_t)queue,
                            .jobs = c->done + c->failed + c->timeouts + c->poisoned,
                            .errors = c->failed + c->timeouts + c->poisoned};
    }
    next_sample = (next_sample + 1) % HISTORY_LEN;
    if (nsamples < HISTORY_LEN)
        nsamples++;
}

/* {"interval_ms":..,"times":[unix ms..],"jobs":[{"name":..,"processes":[..],
 * "busy":[..],"queue":[..],"jobs":[..],"errors":[..]}]}, oldest first;
 * jobs and errors are running totals. */
static int send_history(struct evbuffer *out)
{
    static const char *const fields[] = {"processes", "busy", "queue", "jobs", "errors"};
    int first = (next_sample - nsamples + HISTORY_LEN) % HISTORY_LEN;

    evbuffer_add_printf(out, "{\"interval_ms\":%d,\"times\":[", SAMPLE_MS);
    for (int i = 0; i < nsamples; i++)
        evbuffer_add_printf(out, "%s%lld", i ? "," : "", (long long)times[(first + i) % HISTORY_LEN]);
    evbuffer_add(out, "],\"jobs\":[", 10);
    for (int p = 0; p < gdl_npools; p++) {
        evbuffer_add_printf(out, "%s{\"name\":", p ? "," : "");
        gdl_console_json_string(out, gdl_pools[p].name);
        for (int f = 0; f < 5; f++) {
            evbuffer_add_printf(out, ",\"%s\":[", fields[f]);
            for (int i = 0; i < nsamples; i++) {
                const sample_t *sm = &history[(size_t)((first + i) % HISTORY_LEN) * gdl_npools + p];
                unsigned long long v = f == 0   ? (unsigned long long)sm->processes
                                       : f == 1 ? (unsigned long long)sm->busy
                                       : f == 2 ? (unsigned long long)sm->queue
                                       : f == 3 ? sm->jobs
                                                : sm->errors;
                evbuffer_add_printf(out, "%s%llu", i ? "," : "", v);
            }
            evbuffer_add(out, "]", 1);
        }
        evbuffer_add(out, "}", 1);
    }
    evbuffer_add(out, "]}\n", 3);
    return 0;
}

static const route_t routes[] = {
    {"/metrics", "text/plain; version=0.0.4; charset=utf-8", send_metrics},
    {"/status.json", "application/json", send_status},
    {"/history.json", "application/json", send_history},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- requests ---- */

static void send_error(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    if (body)
        evbuffer_add_printf(body, "%d %s: %s\n", code, reason, text);
    evhttp_send_reply(req, code, reason, body);
    if (body)
        evbuffer_free(body);
}

/* With a token: "Authorization: Bearer TOKEN", compared in constant time;
 * after a wrong one, every token is refused for AUTH_PAUSE_MS. */
static bool authorized(struct evhttp_request *req)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    int64_t now = gdl_now_ms();

    if (token[0] == '\0')
        return true;
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    if (now < auth_paused_until_ms)
        return false;
    if (gdl_token_equal(auth + 7, strlen(auth + 7), token))
        return true;
    auth_paused_until_ms = now + AUTH_PAUSE_MS;
    gdl_warn("http: a wrong token; refusing every token for %d ms", AUTH_PAUSE_MS);
    return false;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req), *path;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    const route_t *route = NULL;
    const gdl_asset_t *asset = NULL;
    struct evhttp_uri *parsed;
    struct evbuffer *body;
    int cmd = evhttp_request_get_command(req);

    if (strlen(uri) > URI_MAX) {
        send_error(req, 414, "URI Too Long", "at most 2048 bytes");
        return;
    }
    parsed = evhttp_uri_parse(uri);
    path = parsed ? evhttp_uri_get_path(parsed) : NULL;
    if (path == NULL || *path == '\0')
        path = "/";
    for (size_t i = 0; i < NROUTES; i++)
        if (strcmp(path, routes[i].path) == 0)
            route = &routes[i];
    for (const gdl_asset_t *a = gdl_assets; route == NULL && a->path; a++)
        if (strcmp(path, a->path) == 0)
            asset = a;
    evhttp_uri_free(parsed);
    if (route == NULL && asset == NULL) {
        send_error(req, HTTP_NOTFOUND, "Not Found", "try /metrics, /status.json or /");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(h, "Allow", "GET, HEAD");
        send_error(req, 405, "Method Not Allowed", "only GET and HEAD");
        return;
    }
    if (route && !authorized(req)) {
        evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"gdlua\"");
        send_error(req, 401, "Unauthorized", "send Authorization: Bearer TOKEN (--http_token)");
        return;
    }
    if ((body = evbuffer_new()) == NULL) {
        send_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", "out of memory");
        return;
    }
    if (asset) {
        evbuffer_add_reference(body, asset->data, asset->len, NULL, NULL);
        evhttp_add_header(h, "Content-Type", asset->type);
        evhttp_add_header(h, "Cache-Control", "max-age=3600");
    } else if (route->send(body) < 0) {
        evbuffer_free(body);
        send_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", "out of memory");
        return;
    } else {
        evhttp_add_header(h, "Content-Type", route->type);
        evhttp_add_header(h, "Cache-Control", "no-store");
    }
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
}

/* ---- listening ---- */

static void http_close(void)
{
    if (sample_timer)
        event_free(sample_timer);
    sample_timer = NULL;
    if (http)
        evhttp_free(http);
    http = NULL;
    bound = NULL;
    free(history);
    history = NULL;
}

/* Same address as the one we listen on: the listening socket or one it
 * accepted. */
static bool ours(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);

    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.ss_family != bound_addr.ss_family)
        return false;
    if (sa.ss_family == AF_INET)
        return memcmp(&((struct sockaddr_in *)&sa)->sin_addr, &((struct sockaddr_in *)&bound_addr)->sin_addr,
                      sizeof(struct in_addr)) == 0 &&
               ((struct sockaddr_in *)&sa)->sin_port == ((struct sockaddr_in *)&bound_addr)->sin_port;
    if (sa.ss_family == AF_INET6)
        return memcmp(&((struct sockaddr_in6 *)&sa)->sin6_addr, &((struct sockaddr_in6 *)&bound_addr)->sin6_addr,
                      sizeof(struct in6_addr)) == 0 &&
               ((struct sockaddr_in6 *)&sa)->sin6_port == ((struct sockaddr_in6 *)&bound_addr)->sin6_port;
    return false;
}

/* In a new child: the listening socket and the connections it accepted
 * are the master's. evhttp lists no connections, so they are found by
 * their local address among the open descriptors. Closed once (a later
 * fork of the child must not close what took their numbers); the
 * structures stay, the child never runs the loop. */
static void after_fork(void)
{
    static bool closed;
    struct dirent *e;
    int max = -1;
    DIR *d;

    if (closed || bound == NULL)
        return;
    closed = true;
    close(evhttp_bound_socket_get_fd(bound));
    if ((d = opendir("/proc/self/fd")) == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) > max)
            max = atoi(e->d_name);
    closedir(d);
    for (int fd = 0; fd <= max; fd++)
        if (ours(fd))
            close(fd);
}

/* ADDRESS:PORT, [IPV6]:PORT too, into host and port; -1 if malformed. */
static int split_bind(const char *bind, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(bind, ':');
    size_t n;

    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -1;
    n = (size_t)(colon - bind);
    if (n >= 2 && bind[0] == '[' && bind[n - 1] == ']')
        bind++, n -= 2;
    if (n == 0 || n >= hostlen || strlen(colon + 1) >= portlen || atoi(colon + 1) > 65535)
        return -1;
    memcpy(host, bind, n);
    host[n] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

static void on_master(const gdl_event_t *ev, void *arg)
{
    if (ev->event == GDL_EV_POOLS)
        pools_changed();
    else
        http_close();
}

/* Starts listening. A configuration error (bad address, unreadable
 * token, an open non-loopback bind) is fatal: -1. A port in use is not:
 * the jobs are served without HTTP. */
int gdl_http_init(struct event_base *base)
{
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    const char *bind = gdl_config.http_bind;
    char host[256], port[16];
    int rc;
    evutil_socket_t fd;

    if (bind == NULL)
        return 0;
    if (split_bind(bind, host, sizeof(host), port, sizeof(port)) < 0) {
        gdl_error("http: bad --http_bind %s: give ADDRESS:PORT", bind);
        return -1;
    }
    if (gdl_config.http_token && gdl_token_read(gdl_config.http_token, token, sizeof(token), "http") < 0)
        return -1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = evutil_getaddrinfo(host, port, &hints, &ai)) != 0) {
        gdl_error("http: bad --http_bind %s: %s", bind, evutil_gai_strerror(rc));
        return -1;
    }
    if (!gdl_is_loopback(ai->ai_addr) && token[0] == '\0' && !gdl_config.http_insecure) {
        gdl_error("http: refusing to listen on %s without --http_token (or --http_insecure)", bind);
        evutil_freeaddrinfo(ai);
        return -1;
    }
    history = calloc((size_t)HISTORY_LEN * (gdl_npools ? gdl_npools : 1), sizeof(sample_t));
    http = history ? evhttp_new(base) : NULL;
    sample_timer = http ? event_new(base, -1, EV_PERSIST, on_sample, NULL) : NULL;
    if (sample_timer == NULL) {
        gdl_error("http: out of memory");
        evutil_freeaddrinfo(ai);
        http_close();
        return -1;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                         EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(http, IO_TIMEOUT_S);
    evhttp_set_max_headers_size(http, HEADERS_MAX);
    evhttp_set_max_body_size(http, 4096);
    evhttp_set_gencb(http, on_request, NULL);
    evutil_freeaddrinfo(ai);
    bound = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)atoi(port));
    if (bound == NULL) {
        gdl_error("http: cannot listen on %s: %s; serving jobs without HTTP", bind, strerror(errno));
        http_close();
        return 0;
    }
    fd = evhttp_bound_socket_get_fd(bound);
    if (getsockname(fd, (struct sockaddr *)&bound_addr, &(socklen_t){sizeof(bound_addr)}) < 0)
        bound_addr.ss_family = AF_UNSPEC; /* after fork, only the listening socket is closed */
    gdl_master_on(GDL_EV_POOLS | GDL_EV_SHUTDOWN, on_master, NULL);
    pthread_atfork(NULL, NULL, after_fork);
    {
        struct timeval tv = {SAMPLE_MS / 1000, (SAMPLE_MS % 1000) * 1000};
        evtimer_add(sample_timer, &tv);
    }
    on_sample(-1, 0, NULL);
    gdl_info("http on %s%s", bind, token[0] ? " (token required)" : "");
    return 0;
}
