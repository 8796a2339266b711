/*
 * gdl_http.c: the HTTP endpoint, in the master's event loop, off unless
 * --http_bind is given:
 *
 *   /metrics       Prometheus' text format (gdl_metrics.c)
 *   /status.json   the console's `json` (gdl_console_json)
 *   /history.json  the last minutes, one sample a second, for the chart
 *   /              the dashboard: its page, script and the dygraphs
 *                  library are built into the binary (gdl_assets.c)
 *
 * A small HTTP/1.1 server of its own, on gdl_listen.c's listener and
 * libevent's bufferevents (libevent 2.1's evhttp has no connection cap
 * and no deadline for a request head, and its URI parser refused, slowly
 * or by crashing the master, what this one answers at once). GET and
 * HEAD; keep-alive, pipelined requests answered in order, every reply
 * with its Content-Length. Every request head goes through
 * gdl_http_parse_head (gdl_http_parse.c) before anything else looks at
 * it; one it refuses is answered (400, 405, 411, 413, 414, 431, 501,
 * 505) and the connection closed. Paths are compared byte for byte, the
 * query ignored: "//metrics" and "/%6detrics" are not found.
 *
 * Bounds: HTTP_CONNS_MAX connections (fewer when the descriptor limit
 * cannot hold them: gdl_listen.c); a new one beyond closes the oldest
 * idle one (one that has not sent a whole request first, then one kept
 * alive between requests), else is answered 503. A connection's request
 * head must be complete HEAD_TIMEOUT_S after it was accepted or after
 * its previous replies were written, bytes arriving do not extend it
 * (so keep-alive idles that long at most); replies must be read within
 * WRITE_TIMEOUT_S of being queued; pipelined requests are read no
 * further while OUTPUT_HIGH bytes of replies wait. A closed connection
 * reads what is still sent for up to LINGER_MS, so a refusal is not
 * lost to a reset.
 *
 * The address rule is the console's (gdl_listen.c). With a token, the
 * data paths need "Authorization: Bearer TOKEN"; a wrong one pauses that
 * address's tries for AUTH_PAUSE_MS. The dashboard's own files hold no
 * data and are served to anyone (the page sends the token it was given
 * in its URL's fragment).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "gdlua.h"

#define HTTP_CONNS_MAX  512
#define HEAD_TIMEOUT_S  10
#define WRITE_TIMEOUT_S 30
#define OUTPUT_HIGH     (256 * 1024)
#define LINGER_MS       2000
#define LINGER_MAX      (64 * 1024) /* bytes read and dropped after closing, at most */
#define AUTH_PAUSE_MS   1000        /* after a wrong token, every token from its address is refused this long */
#define SAMPLE_MS       1000
#define HISTORY_LEN     300 /* samples kept: 5 minutes */

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

typedef struct {
    gdl_conn_t base;
    struct event *deadline; /* the head, the replies, the linger: by then */
    size_t scanned;         /* bytes of the head looked at for a line end */
    bool line_seen;         /* the parser has seen the request line end */
    bool served;            /* a request has been answered */
    bool closing;           /* no more requests: close once the replies are written */
    bool ended;             /* the client has sent all it will (EOF) */
    bool lingering;         /* replies written and our side shut: dropping what still comes */
    size_t dropped;         /* bytes dropped meanwhile */
} http_conn_t;

static int on_conn(gdl_conn_t *base);
static void on_conn_free(gdl_conn_t *base);

#define BUSY_BODY "503 Service Unavailable: too many connections\n"
_Static_assert(sizeof(BUSY_BODY) - 1 == 46, "the busy reply's Content-Length");

static gdl_listener_t listener = {
    .who = "http",
    .without = "HTTP",
    .conn_size = sizeof(http_conn_t),
    .max = HTTP_CONNS_MAX,
    .busy_reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
                  "46\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" BUSY_BODY,
    .on_conn = on_conn,
    .on_free = on_conn_free};
static char token[256];
static gdl_lockout_t lockout;
static struct event *sample_timer;
static int64_t times[HISTORY_LEN]; /* unix ms of each sample */
static sample_t *history;          /* HISTORY_LEN x gdl_npools */
static int nsamples, next_sample;

/* ---- /status.json, /history.json ---- */

static int send_status(struct evbuffer *out)
{
    if (gdl_console_json(out) < 0)
        return -1;
    evbuffer_add(out, "\n", 1);
    return 0;
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

/* gdl_pools has changed (the first load, a reload): the history is kept
 * by pool index, so it starts again, with a sample taken at once (the
 * chart has a point as soon as the pools serve) and the next a whole
 * interval later. */
static void pools_changed(void)
{
    struct timeval tv = {SAMPLE_MS / 1000, (SAMPLE_MS % 1000) * 1000};

    if (sample_timer == NULL)
        return;
    free(history);
    nsamples = next_sample = 0;
    history = calloc((size_t)HISTORY_LEN * (gdl_npools ? gdl_npools : 1), sizeof(sample_t));
    if (history == NULL) {
        gdl_error("http: out of memory: the dashboard's chart has no history");
        return;
    }
    on_sample(-1, 0, NULL);
    evtimer_add(sample_timer, &tv);
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
    {"/metrics", "text/plain; version=0.0.4; charset=utf-8", gdl_metrics_write},
    {"/status.json", "application/json", send_status},
    {"/history.json", "application/json", send_history},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- replies ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Service Unavailable";
    }
}

/* RFC 9110's IMF-fixdate, in English whatever the locale. */
static void http_date(char *buf, size_t len)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void arm(http_conn_t *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(c->deadline, &tv);
}

/* Queues a reply: the status line, headers (extra: more, each ending in
 * CRLF), the body unless head_only. Replies must be read in time from
 * when the first of those waiting was queued. */
static void reply(http_conn_t *c, const gdl_http_req_t *req, int status, const char *type, const char *extra,
                  struct evbuffer *body, bool head_only)
{
    struct evbuffer *out = bufferevent_get_output(c->base.bev);
    const char *conn = c->closing ? "Connection: close\r\n" : req->minor == 0 ? "Connection: keep-alive\r\n" : "";
    char date[40];

    if (evbuffer_get_length(out) == 0)
        arm(c, WRITE_TIMEOUT_S * 1000);
    http_date(date, sizeof(date));
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                        status, reason_of(status), date, type, body ? evbuffer_get_length(body) : 0, extra, conn);
    if (body && !head_only)
        evbuffer_add_buffer(out, body);
}

static void reply_text(http_conn_t *c, const gdl_http_req_t *req, int status, const char *extra, const char *text)
{
    struct evbuffer *body = evbuffer_new();

    if (body)
        evbuffer_add_printf(body, "%d %s: %s\n", status, reason_of(status), text);
    reply(c, req, status, "text/plain; charset=utf-8", extra, body, req->method == GDL_HTTP_HEAD);
    if (body)
        evbuffer_free(body);
}

/* With a token: "Authorization: Bearer TOKEN", compared in constant
 * time; after a wrong one, every token from that address is refused for
 * AUTH_PAUSE_MS (gdl_auth_check). */
static bool authorized(http_conn_t *c, const gdl_http_req_t *req)
{
    const struct sockaddr *peer = (const struct sockaddr *)&c->base.peer;
    char name[64];

    if (token[0] == '\0')
        return true;
    if (req->auth == NULL || req->auth_len < 7 || strncasecmp(req->auth, "Bearer ", 7) != 0)
        return false;
    switch (gdl_auth_check(&lockout, peer, req->auth + 7, req->auth_len - 7, token, gdl_now_ms(), AUTH_PAUSE_MS)) {
    case GDL_AUTH_OK:
        return true;
    case GDL_AUTH_WRONG:
        gdl_warn("http: a wrong token from %s; refusing its tokens for %d ms", gdl_peer_name(peer, name, sizeof(name)),
                 AUTH_PAUSE_MS);
        return false;
    default:
        return false;
    }
}

/* A request the parser let through: routed by its path, byte for byte. */
static void respond(http_conn_t *c, const gdl_http_req_t *req)
{
    const route_t *route = NULL;
    const gdl_asset_t *asset = NULL;
    bool head = req->method == GDL_HTTP_HEAD;
    struct evbuffer *body;

    for (size_t i = 0; i < NROUTES; i++)
        if (strlen(routes[i].path) == req->path_len && memcmp(routes[i].path, req->target, req->path_len) == 0)
            route = &routes[i];
    for (const gdl_asset_t *a = gdl_assets; route == NULL && a->path; a++)
        if (strlen(a->path) == req->path_len && memcmp(a->path, req->target, req->path_len) == 0)
            asset = a;
    if (route == NULL && asset == NULL) {
        reply_text(c, req, 404, "", "try /metrics, /status.json or /");
        return;
    }
    if (route && !authorized(c, req)) {
        reply_text(c, req, 401, "WWW-Authenticate: Bearer realm=\"gdlua\"\r\n",
                   "send Authorization: Bearer TOKEN (--http_token)");
        return;
    }
    if ((body = evbuffer_new()) == NULL || (route && route->send(body) < 0)) {
        if (body)
            evbuffer_free(body);
        reply_text(c, req, 503, "", "out of memory");
        return;
    }
    if (asset) {
        evbuffer_add_reference(body, asset->data, asset->len, NULL, NULL);
        reply(c, req, 200, asset->type, "Cache-Control: max-age=3600\r\n", body, head);
    } else {
        reply(c, req, 200, route->type, "Cache-Control: no-store\r\n", body, head);
    }
    evbuffer_free(body);
}

/* ---- connections ---- */

/* Whether the bytes that came since the last look may let the parser
 * answer: a line has ended, or the head has passed a length the parser
 * decides at. Parsing at every byte would let a client sending one at a
 * time cost the master a parse of up to 8 KiB for each. */
static bool worth_parsing(http_conn_t *c, const char *buf, size_t n)
{
    bool line_ended = c->scanned < n && memchr(buf + c->scanned, '\n', n - c->scanned) != NULL;

    c->scanned = n;
    return line_ended || n >= GDL_HTTP_HEAD_MAX || (!c->line_seen && n >= GDL_HTTP_LINE_DECIDED);
}

/* Ranks the connection for eviction: one that has not sent a whole
 * request first, then one idle between requests; never one with replies
 * to write. Closed ones, lingering, go before all. */
static void rank(http_conn_t *c)
{
    c->base.evictable = c->lingering                                                             ? 3
                        : c->closing || evbuffer_get_length(bufferevent_get_output(c->base.bev)) ? 0
                        : c->served                                                              ? 1
                                                                                                 : 2;
}

/* Every reply is written and the connection is to close: our side is
 * shut, and what the client still sends is read and dropped until it
 * closes too (or LINGER_MS, LINGER_MAX), so it is not reset before it
 * has read the reply. */
static void linger(http_conn_t *c)
{
    if (c->ended) {
        gdl_conn_free(&c->base);
        return;
    }
    c->lingering = true;
    rank(c);
    shutdown(bufferevent_getfd(c->base.bev), SHUT_WR);
    evbuffer_drain(bufferevent_get_input(c->base.bev), evbuffer_get_length(bufferevent_get_input(c->base.bev)));
    bufferevent_enable(c->base.bev, EV_READ);
    arm(c, LINGER_MS);
}

/* Answers the requests received, in order, while replies fit. */
static void serve(http_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->base.bev), *out = bufferevent_get_output(c->base.bev);

    while (!c->closing) {
        size_t len = evbuffer_get_length(in), n = len < GDL_HTTP_HEAD_MAX ? len : GDL_HTTP_HEAD_MAX;
        gdl_http_req_t req;
        const char *buf;
        int status;

        if (evbuffer_get_length(out) >= OUTPUT_HIGH) {
            bufferevent_disable(c->base.bev, EV_READ); /* on_write goes on once they are written */
            rank(c);
            return;
        }
        if (len == 0 || (buf = (const char *)evbuffer_pullup(in, (ssize_t)n)) == NULL || !worth_parsing(c, buf, n))
            break;
        status = gdl_http_parse_head(buf, n, &req);
        if (status == GDL_HTTP_MORE) {
            c->line_seen = req.line_len > 0;
            break;
        }
        if (status != 200) {
            c->closing = true;
            reply_text(c, &req, status, status == 405 ? "Allow: GET, HEAD\r\n" : "", req.why);
            break;
        }
        c->closing = !req.keep_alive;
        respond(c, &req);
        evbuffer_drain(in, req.head_len);
        c->scanned = 0;
        c->line_seen = false;
        c->served = true;
    }
    if (c->ended && !c->closing) {
        /* The client has ended: nothing more will complete a request. */
        if (evbuffer_get_length(out) == 0) {
            gdl_conn_free(&c->base);
            return;
        }
        c->closing = true;
    }
    if (c->closing)
        bufferevent_disable(c->base.bev, EV_READ);
    rank(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    http_conn_t *c = arg;

    if (c->lingering) {
        struct evbuffer *in = bufferevent_get_input(bev);

        c->dropped += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (c->dropped > LINGER_MAX)
            gdl_conn_free(&c->base);
        return;
    }
    serve(c);
}

/* The output has been written: close (lingering), or give the next head
 * its time from now and go on with the requests that wait. */
static void on_write(struct bufferevent *bev, void *arg)
{
    http_conn_t *c = arg;

    if (c->lingering)
        return;
    if (c->closing) {
        linger(c);
        return;
    }
    arm(c, HEAD_TIMEOUT_S * 1000);
    if (!c->ended)
        bufferevent_enable(bev, EV_READ);
    serve(c);
}

/* The client's end (EOF): the requests it sent before are answered,
 * then the connection closes. Errors and lingering's end close it. */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    http_conn_t *c = arg;

    if ((what & BEV_EVENT_EOF) && !c->lingering && !c->closing) {
        c->ended = true;
        serve(c);
        return;
    }
    gdl_conn_free(&c->base);
}

/* The head was not complete in time, the replies not read in time, or
 * lingering is over. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    http_conn_t *c = arg;

    if (!c->lingering)
        gdl_debug("http: closing a connection that %s", evbuffer_get_length(bufferevent_get_output(c->base.bev))
                                                            ? "does not read its replies"
                                                            : "sent no whole request in time");
    gdl_conn_free(&c->base);
}

static void on_conn_free(gdl_conn_t *base)
{
    http_conn_t *c = (http_conn_t *)base;

    if (c->deadline)
        event_free(c->deadline);
}

static int on_conn(gdl_conn_t *base)
{
    http_conn_t *c = (http_conn_t *)base;

    if ((c->deadline = evtimer_new(bufferevent_get_base(base->bev), on_deadline, c)) == NULL)
        return -1;
    bufferevent_setcb(base->bev, on_read, on_write, on_event, c);
    bufferevent_enable(base->bev, EV_READ | EV_WRITE);
    arm(c, HEAD_TIMEOUT_S * 1000);
    rank(c);
    return 0;
}

/* ---- listening ---- */

static void http_close(void)
{
    gdl_listen_close(&listener);
    if (sample_timer)
        event_free(sample_timer);
    sample_timer = NULL;
    free(history);
    history = NULL;
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
    const char *bind = gdl_config.http_bind;
    char host[256], port[16];
    int rc;

    if (bind == NULL)
        return 0;
    if (split_bind(bind, host, sizeof(host), port, sizeof(port)) < 0) {
        gdl_error("http: bad --http_bind %s: give ADDRESS:PORT", bind);
        return -1;
    }
    if (gdl_config.http_token && gdl_token_read(gdl_config.http_token, token, sizeof(token), "http") < 0)
        return -1;
    history = calloc((size_t)HISTORY_LEN * (gdl_npools ? gdl_npools : 1), sizeof(sample_t));
    sample_timer = history ? event_new(base, -1, EV_PERSIST, on_sample, NULL) : NULL;
    if (sample_timer == NULL) {
        gdl_error("http: out of memory");
        http_close();
        return -1;
    }
    rc = gdl_listen(&listener, base, host, port, bind, bind, token[0] != '\0', gdl_config.http_insecure);
    if (rc != 0) {
        http_close();
        return rc < 0 ? -1 : 0;
    }
    gdl_master_on(GDL_EV_POOLS | GDL_EV_SHUTDOWN, on_master, NULL);
    {
        struct timeval tv = {SAMPLE_MS / 1000, (SAMPLE_MS % 1000) * 1000};
        evtimer_add(sample_timer, &tv);
    }
    on_sample(-1, 0, NULL);
    gdl_info("http on %s%s", bind, token[0] ? " (token required)" : "");
    return 0;
}
