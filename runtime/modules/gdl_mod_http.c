/*
 * gdl_mod_http.c: "gdlua.http", an HTTP client for jobs on libcurl's
 * multi interface, driven by the process's event loop (gdl_sched.c): a
 * request suspends only its own coroutine in a concurrent job, and blocks
 * as any call does elsewhere.
 *
 *   local http = require "gdlua.http"
 *   local status, body, headers = http.get(url [, opts])
 *   status, body, headers = http.post(url, body [, opts])
 *   status, body, headers = http.request{ method = "PUT", url = url, body = b, headers = {...}, timeout = 5 }
 *   -- nil, err when no response came: err is libcurl's message
 *
 * opts (and request's table): headers (name -> value), timeout (seconds
 * for the whole request, default 30), max_size (bytes of the response
 * body, default 16 MiB; past it the request fails), redirects (how many
 * to follow, default 0: a 3xx is returned as it is), ca_file (a PEM file
 * of the CAs to trust instead of the system's). A 4xx or 5xx is a
 * response: status, body, headers. Response headers come as a table of
 * lowercase names, repeated ones joined with ", ". Only http and https
 * URLs are fetched, redirects included. libcurl brings TLS (verified
 * against the system's CAs), HTTP/2 over TLS, keep-alive (a connection is
 * reused by the next request to the same server) and the proxies of the
 * http_proxy, https_proxy and no_proxy environment variables. A request
 * that yields reads through a 4 KiB buffer, a blocking one through
 * libcurl's 16 KiB (memory per job in flight against read calls).
 *
 * One multi handle per process, made on first use: curl_global_init runs
 * then, in the child (never the master or a loader), so no TLS state
 * crosses a fork and a process that makes no request pays nothing;
 * Debian's libcurl is built thread-safe (CURL_VERSION_THREADSAFE), so
 * libvips' threads, if a job started them, do not matter. Names resolve
 * in libcurl's resolver thread: nothing blocks the loop. libcurl calls
 * back into the loop (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION),
 * the loop calls curl_multi_socket_action, and a finished transfer wakes
 * its wait; every easy handle is freed when its call returns or its
 * coroutine is cancelled.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <lauxlib.h>

#include "gdlua.h"

#define HTTP_TIMEOUT_MS    30000
#define HTTP_MAX_SIZE      (16 << 20)
#define HTTP_HEADERS_MAX   (1 << 20) /* bytes of one response's headers */
#define HTTP_REDIRECTS_MAX 50
/* A request that suspends only its coroutine (one of many in flight)
 * reads through a 4 KiB buffer: libcurl's default 16 KiB, once touched,
 * was 12 of the 37 KiB a job in flight cost (bench_conc, 1,000 at once). */
#define HTTP_BUFFER_CONCURRENT 4096

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

typedef struct {
    gdl_sched_op_t op;
    CURL *easy;
    struct curl_slist *headers;
    buf_t body, head; /* head: the header lines of the last response */
    size_t max_size;
    bool too_big, headers_too_big, no_memory;
    CURLcode result;
    char error[CURL_ERROR_SIZE];
} request_t;

typedef struct {
    const char *method;
    const char *url;
    const char *body;
    size_t body_len;
    int timeout_ms;
    size_t max_size;
    int redirects;
    const char *ca_file;
    int headers; /* stack index of the headers table; 0: none */
} params_t;

static struct {
    CURLM *multi;
    struct event_base *base;
    struct event *timer;
} http;

static bool buf_add(buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *q;

        while (cap < b->len + n + 1)
            cap *= 2;
        if ((q = realloc(b->p, cap)) == NULL)
            return false;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return true;
}

/* ---- the multi handle on the loop -------------------------------------- */

static void check_done(void)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(http.multi, &left)) != NULL) {
        request_t *r;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        r->result = msg->data.result;
        /* Now, not in finish: the connection goes back to the cache. */
        curl_multi_remove_handle(http.multi, r->easy);
        gdl_sched_wake(&r->op);
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    int running, action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

    curl_multi_socket_action(http.multi, fd, action, &running);
    check_done();
}

static void on_timer_event(evutil_socket_t fd, short what, void *arg)
{
    int running;

    curl_multi_socket_action(http.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl asks; the event is
 * kept with the socket (curl_multi_assign) until it is removed. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct event *ev = socketp;
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);

    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        return 0;
    }
    if (ev) {
        event_del(ev);
        event_assign(ev, http.base, s, kind, on_socket_event, NULL);
    } else {
        if ((ev = event_new(http.base, s, kind, on_socket_event, NULL)) == NULL)
            return -1;
        curl_multi_assign(http.multi, s, ev);
    }
    return event_add(ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: libcurl wants on_timer_event in timeout_ms
 * (0: at once), or never (-1). */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

    if (timeout_ms < 0)
        return event_del(http.timer);
    return event_add(http.timer, &tv);
}

static void http_close(void)
{
    curl_multi_cleanup(http.multi);
    event_free(http.timer);
    memset(&http, 0, sizeof(http));
}

/* The process's multi handle, made on first use; NULL: out of memory. */
static CURLM *multi(struct event_base *base)
{
    if (http.multi != NULL)
        return http.multi;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    if ((http.timer = evtimer_new(base, on_timer_event, NULL)) == NULL)
        return NULL;
    if ((http.multi = curl_multi_init()) == NULL) {
        event_free(http.timer);
        http.timer = NULL;
        return NULL;
    }
    http.base = base;
    curl_multi_setopt(http.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(http.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    gdl_sched_on_close(http_close);
    return http.multi;
}

/* ---- one request --------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    request_t *r = arg;

    n *= size;
    if (r->body.len + n > r->max_size) {
        r->too_big = true;
        return 0;
    }
    if (!buf_add(&r->body, p, n)) {
        r->no_memory = true;
        return 0;
    }
    return n;
}

/* Each response's header lines replace the last's (a redirect, a 100
 * Continue): the table returned is the final response's. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    request_t *r = arg;

    n *= size;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        r->head.len = 0;
    if (r->head.len + n > HTTP_HEADERS_MAX) {
        r->headers_too_big = true;
        return 0;
    }
    if (!buf_add(&r->head, p, n)) {
        r->no_memory = true;
        return 0;
    }
    return n;
}

static void request_free(request_t *r)
{
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body.p);
    free(r->head.p);
    free(r);
}

/* The header lines as a table: lowercase names, repeats joined by ", ". */
static void push_headers(lua_State *L, const buf_t *head)
{
    const char *p = head->p, *end = p + head->len, *eol;

    lua_newtable(L);
    for (; p < end; p = eol + 1) {
        const char *colon, *v, *vend;
        char name[256];
        size_t nlen;

        if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
            eol = end;
        if ((colon = memchr(p, ':', (size_t)(eol - p))) == NULL || colon == p ||
            (nlen = (size_t)(colon - p)) >= sizeof(name))
            continue; /* the status line, the blank line, a malformed one */
        for (size_t i = 0; i < nlen; i++)
            name[i] = (char)tolower((unsigned char)p[i]);
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        for (vend = eol; vend > v && (vend[-1] == '\r' || vend[-1] == ' ' || vend[-1] == '\t'); vend--)
            ;
        lua_pushlstring(L, name, nlen);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushlstring(L, v, (size_t)(vend - v));
        } else {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, v, (size_t)(vend - v));
            lua_concat(L, 3);
        }
        lua_rawset(L, -3);
    }
}

static int request_finish(lua_State *L, gdl_sched_op_t *op)
{
    request_t *r = (request_t *)op;
    long status = 0;

    if (r->result != CURLE_OK) {
        lua_pushnil(L);
        if (r->too_big)
            lua_pushfstring(L, "response body larger than max_size (%d bytes)", (int)r->max_size);
        else if (r->headers_too_big)
            lua_pushfstring(L, "response headers larger than %d bytes", HTTP_HEADERS_MAX);
        else if (r->no_memory)
            lua_pushliteral(L, "out of memory for the response");
        else
            lua_pushstring(L, r->error[0] ? r->error : curl_easy_strerror(r->result));
        request_free(r);
        return 2;
    }
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
    push_headers(L, &r->head);
    request_free(r);
    return 3;
}

static void request_cancel(lua_State *L, gdl_sched_op_t *op)
{
    request_t *r = (request_t *)op;

    if (!op->done) /* still in the multi handle: its connection is closed */
        curl_multi_remove_handle(http.multi, r->easy);
    request_free(r);
}

/* ---- arguments ------------------------------------------------------------ */

/* RFC 9110's token: a method or a header name. */
static bool is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("!#$%&'*+-.^_`|~", s[i]) == NULL)
            return false;
    return true;
}

static const char *const request_keys[] = {"method",   "url",       "body",    "headers", "timeout",
                                           "max_size", "redirects", "ca_file", NULL};

/* The options table at idx (absent: none), checked before anything is
 * allocated: misuse raises. first_key: the first of request_keys a caller
 * of this kind may use (get and post take no method, url or body). */
static void check_options(lua_State *L, int idx, const char *fn, int first_key, params_t *p)
{
    p->timeout_ms = HTTP_TIMEOUT_MS;
    p->max_size = HTTP_MAX_SIZE;
    p->redirects = 0;
    p->ca_file = NULL;
    p->headers = 0;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int k = first_key;

        while (key && request_keys[k] && strcmp(key, request_keys[k]) != 0)
            k++;
        if (key == NULL || request_keys[k] == NULL)
            luaL_error(L, "gdlua.http.%s: unknown option %s (known: headers, timeout, max_size, redirects, ca_file%s)",
                       fn, key ? key : luaL_typename(L, -2), first_key ? "" : ", method, url, body");
    }
    lua_getfield(L, idx, "timeout");
    if (!lua_isnil(L, -1)) {
        lua_Number t = lua_tonumber(L, -1);

        if (!lua_isnumber(L, -1) || !(t > 0 && t <= 86400))
            luaL_error(L, "gdlua.http.%s: timeout must be seconds above 0, at most 86400", fn);
        p->timeout_ms = (int)(t * 1000 + 0.999);
    }
    lua_getfield(L, idx, "max_size");
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);

        if (!lua_isnumber(L, -1) || !(n >= 0 && n <= 1 << 30))
            luaL_error(L, "gdlua.http.%s: max_size must be bytes from 0 to 1 GiB", fn);
        p->max_size = (size_t)n;
    }
    lua_getfield(L, idx, "redirects");
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);

        if (!lua_isnumber(L, -1) || !(n >= 0 && n <= HTTP_REDIRECTS_MAX) || n != (int)n)
            luaL_error(L, "gdlua.http.%s: redirects must be a whole number from 0 to %d", fn, HTTP_REDIRECTS_MAX);
        p->redirects = (int)n;
    }
    lua_getfield(L, idx, "ca_file");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "gdlua.http.%s: ca_file must be a path", fn);
        p->ca_file = lua_tostring(L, -1); /* the options table keeps it */
    }
    lua_pop(L, 4);
    lua_getfield(L, idx, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "gdlua.http.%s: headers must be a table of name = value", fn);
    p->headers = lua_gettop(L); /* left on the stack for build_headers */
    for (lua_pushnil(L); lua_next(L, p->headers); lua_pop(L, 1)) {
        size_t nlen = 0, vlen;
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nlen) : "", *value;

        if (!is_token(name, nlen))
            luaL_error(L, "gdlua.http.%s: a header name must be a token (letters, digits, !#$%%&'*+-.^_`|~)", fn);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "gdlua.http.%s: header %s: the value must be a string or a number", fn, name);
        value = lua_tolstring(L, -1, &vlen); /* a number's copy is made on the value: next is unaffected */
        if (memchr(value, '\r', vlen) || memchr(value, '\n', vlen) || memchr(value, '\0', vlen))
            luaL_error(L, "gdlua.http.%s: header %s: the value must not hold CR, LF or NUL", fn, name);
    }
}

/* The headers as libcurl's list, with "Expect:" (libcurl would send
 * "Expect: 100-continue" for a large body and wait for the server's
 * go-ahead) unless the caller set one. NULL: out of memory. */
static struct curl_slist *build_headers(lua_State *L, int idx, bool *ok)
{
    struct curl_slist *list = NULL, *more;
    bool expect = false;

    *ok = true;
    if (idx) {
        for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
            const char *name = lua_tostring(L, -2);
            const char *line = lua_pushfstring(L, "%s: %s", name, lua_tostring(L, -1));

            if (strcasecmp(name, "expect") == 0)
                expect = true;
            more = curl_slist_append(list, line);
            lua_pop(L, 1);
            if (more == NULL) {
                *ok = false;
                return list;
            }
            list = more;
        }
    }
    if (!expect) {
        if ((more = curl_slist_append(list, "Expect:")) == NULL)
            *ok = false;
        else
            list = more;
    }
    return list;
}

static int start(lua_State *L, const char *fn, const params_t *p)
{
    struct event_base *base = gdl_sched_check(L, fn);
    CURLM *m = multi(base);
    request_t *r;
    bool ok = true;

    if (m == NULL || (r = calloc(1, sizeof(*r))) == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    r->op.finish = request_finish;
    r->op.cancel = request_cancel;
    r->op.what = fn;
    r->max_size = p->max_size;
    r->headers = build_headers(L, p->headers, &ok);
    if (!ok || (r->easy = curl_easy_init()) == NULL) {
        request_free(r);
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    if (gdl_sched_task_of(L) != NULL)
        curl_easy_setopt(r->easy, CURLOPT_BUFFERSIZE, (long)HTTP_BUFFER_CONCURRENT);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_URL, p->url);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "gdlua/" GDLUA_VERSION);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    if (p->redirects > 0) {
        curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(r->easy, CURLOPT_MAXREDIRS, (long)p->redirects);
    }
    if (p->ca_file)
        curl_easy_setopt(r->easy, CURLOPT_CAINFO, p->ca_file);
    /* A custom method is kept across redirects; POST's turns into GET on a
     * 301, 302 or 303, as browsers do (libcurl's default). */
    if (strcmp(p->method, "HEAD") == 0)
        curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
    else if (strcmp(p->method, "POST") != 0 && (strcmp(p->method, "GET") != 0 || p->body != NULL))
        curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, p->method);
    if (p->body != NULL || strcmp(p->method, "POST") == 0) {
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len);
        if (curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, p->body ? p->body : "") != CURLE_OK) {
            request_free(r);
            lua_pushnil(L);
            lua_pushliteral(L, "out of memory");
            return 2;
        }
    }
    if (curl_multi_add_handle(m, r->easy) != CURLM_OK) {
        request_free(r);
        lua_pushnil(L);
        lua_pushliteral(L, "cannot start the request (out of memory)");
        return 2;
    }
    return gdl_sched_await(L, &r->op);
}

/* http.get(url [, opts]) -> status, body, headers | nil, err */
static int http_get(lua_State *L)
{
    params_t p = {.method = "GET", .url = luaL_checkstring(L, 1)};

    check_options(L, 2, "get", 3, &p);
    return start(L, "gdlua.http.get", &p);
}

/* http.post(url, body [, opts]) -> status, body, headers | nil, err */
static int http_post(lua_State *L)
{
    params_t p = {.method = "POST", .url = luaL_checkstring(L, 1)};

    p.body = luaL_checklstring(L, 2, &p.body_len);
    check_options(L, 3, "post", 3, &p);
    return start(L, "gdlua.http.post", &p);
}

/* http.request{ method, url, headers, body, timeout, ... } */
static int http_request(lua_State *L)
{
    params_t p = {0};
    size_t len;

    luaL_checktype(L, 1, LUA_TTABLE);
    check_options(L, 1, "request", 0, &p);
    lua_getfield(L, 1, "url");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "gdlua.http.request: url must be a string");
    p.url = lua_tostring(L, -1);
    lua_getfield(L, 1, "method");
    if (lua_isnil(L, -1)) {
        p.method = "GET";
    } else {
        /* Not one expression: is_token's arguments are unsequenced, and
         * len must be set before it is read. */
        p.method = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (p.method == NULL || !is_token(p.method, len) || len > 32)
            return luaL_error(L, "gdlua.http.request: method must be a token (GET, POST, PUT, ...)");
    }
    lua_getfield(L, 1, "body");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "gdlua.http.request: body must be a string");
        p.body = lua_tolstring(L, -1, &p.body_len);
    }
    return start(L, "gdlua.http.request", &p);
}

static const luaL_Reg http_api[] = {
    {"get", http_get},
    {"post", http_post},
    {"request", http_request},
    {NULL, NULL},
};

int luaopen_gdlua_http(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, http_api);
    return 1;
}
