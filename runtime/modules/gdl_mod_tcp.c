/*
 * gdl_mod_tcp.c: "gdlua.tcp", a TCP client socket for jobs, in
 * LuaSocket's shape so that pure-Lua protocol libraries run on it, on the
 * process's event loop (gdl_sched.c): a call suspends only its own
 * coroutine in a concurrent job, and blocks as any call does elsewhere.
 *
 *   local tcp = require "gdlua.tcp"
 *   local sock, err = tcp.connect(host, port [, timeout])
 *   sock:send(data [, i [, j]])      -> index of the last byte sent | nil, err, last sent
 *   sock:receive("*l" | "*a" | n [, prefix]) -> data | nil, err, partial
 *   sock:settimeout(seconds | nil)   -- nil or negative: no timeout
 *   sock:setoption("tcp-nodelay" | "keepalive", bool)
 *   sock:shutdown(["both" | "send" | "receive"]); sock:close()
 *
 * As in LuaSocket: "*l" reads a line, LF-terminated, without its LF and
 * CRs; "*a" reads until the peer closes; n reads n bytes; err is
 * "timeout", "closed" or the system's message, and partial holds what
 * was read (receive) or the index of the last byte sent (send). The
 * timeout (seconds, fractions allowed) bounds each call as a whole;
 * connect's (default: none) becomes the socket's for the calls after it.
 *
 * Names: an IP literal is parsed at once; any other name is resolved by
 * libevent's evdns (/etc/resolv.conf's servers and /etc/hosts; NSS
 * modules are not consulted), so nothing blocks the loop; each address
 * is tried in turn. A socket is one coroutine's at a time: a call while
 * another coroutine's call on it waits raises. A coroutine cancelled in a
 * call closes the socket (its protocol state is unknown), as does a call
 * that had to wait where waiting is refused (gdl_sched.c says where). Sockets are
 * closed when collected, and all of them when the loop closes.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <lauxlib.h>

#include "gdlua.h"

#define TCP_MT       "gdlua.tcp"
#define TCP_READ_MAX 65536 /* bytes read at once */

enum { CALL_NONE, CALL_CONNECT, CALL_SEND, CALL_RECEIVE };
enum { RECV_LINE, RECV_ALL, RECV_COUNT };
/* s->err beside errno values */
enum { ERR_TIMEOUT = -1, ERR_CLOSED = -2, ERR_DNS = -3 };

typedef struct tcp_sock tcp_sock_t;

/* A name being resolved; outlives a cancelled socket until evdns calls back. */
typedef struct {
    tcp_sock_t *s; /* NULL: the socket gave up on it */
} resolve_t;

struct tcp_sock {
    gdl_sched_op_t op; /* the call in progress */
    int fd;            /* -1: none */
    bool closed;       /* released: close(), a failed connect, a cancel */
    int timeout_ms;    /* each call's; -1: none */
    struct evbuffer *in;
    struct event *ev;
    tcp_sock_t *prev, *next; /* every socket not released */
    /* the call in progress */
    int call;
    int ref, data_ref, prefix_ref; /* anchored while the call waits */
    int64_t deadline_ms;           /* -1: none */
    int err;                       /* 0, an errno, or ERR_* */
    const char *dns_error;
    bool eof;
    struct evutil_addrinfo *ai, *ai_next;
    resolve_t *resolve;
    struct evdns_getaddrinfo_request *dns_req;
    const char *data;
    size_t len, sent, first; /* send: bytes [first, len) of data; sent of them so far */
    int pattern;
    size_t count;
};

static struct {
    struct event_base *base;
    struct evdns_base *dns;
    tcp_sock_t *socks;
} tcp;

static void on_io(evutil_socket_t fd, short what, void *arg);
static void try_connect(tcp_sock_t *s);

/* ---- the socket's resources ------------------------------------------------ */

static void sock_release(tcp_sock_t *s)
{
    if (s->closed)
        return;
    s->closed = true;
    if (s->resolve) {
        s->resolve->s = NULL;
        evdns_getaddrinfo_cancel(s->dns_req);
        s->resolve = NULL;
    }
    if (s->ai)
        evutil_freeaddrinfo(s->ai);
    s->ai = s->ai_next = NULL;
    if (s->ev)
        event_free(s->ev);
    s->ev = NULL;
    if (s->in)
        evbuffer_free(s->in);
    s->in = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->prev)
        s->prev->next = s->next;
    else
        tcp.socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

/* The loop closes: every socket goes, then the resolver (whose cancelled
 * lookups the loop has delivered by now). */
static void tcp_close(void)
{
    while (tcp.socks)
        sock_release(tcp.socks);
    if (tcp.dns)
        evdns_base_free(tcp.dns, 1);
    memset(&tcp, 0, sizeof(tcp));
}

static const char *error_text(const tcp_sock_t *s)
{
    switch (s->err) {
    case ERR_TIMEOUT:
        return "timeout";
    case ERR_CLOSED:
    case EPIPE:
    case ECONNRESET:
        return "closed";
    case ERR_DNS:
        return s->dns_error;
    }
    return strerror(s->err);
}

/* The call is over (now, or from the loop): its wait ends. */
static void complete(tcp_sock_t *s)
{
    if (s->ev)
        event_del(s->ev);
    gdl_sched_wake(&s->op);
}

/* Waits for what on s->fd (or for the deadline alone: fd -1, what 0). */
static void arm(tcp_sock_t *s, int fd, short what)
{
    struct timeval tv, *tvp = NULL;

    if (s->deadline_ms >= 0) {
        int64_t left = s->deadline_ms - gdl_now_ms();

        if (left <= 0) {
            s->err = ERR_TIMEOUT;
            complete(s);
            return;
        }
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
        tvp = &tv;
    }
    event_del(s->ev);
    if (fd < 0 && tvp == NULL)
        return; /* a name resolving, with no timeout: evdns calls back */
    event_assign(s->ev, tcp.base, fd, what, on_io, s);
    if (event_add(s->ev, tvp) < 0) {
        s->err = ENOMEM;
        complete(s);
    }
}

/* The references a waiting call holds, let go. */
static void call_end(lua_State *L, tcp_sock_t *s)
{
    luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->data_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->prefix_ref);
    s->ref = s->data_ref = s->prefix_ref = LUA_NOREF;
    s->call = CALL_NONE;
}

/* ---- connect ------------------------------------------------------------------ */

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    resolve_t *rs = arg;
    tcp_sock_t *s = rs->s;

    free(rs);
    if (s == NULL) { /* cancelled */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    s->resolve = NULL;
    s->dns_req = NULL;
    if (result != 0) {
        s->err = ERR_DNS;
        s->dns_error = evutil_gai_strerror(result);
        complete(s);
        return;
    }
    s->ai = s->ai_next = res;
    try_connect(s);
}

/* The next address: connected, or waiting for the connection, or (none
 * left) done with the last error. */
static void try_connect(tcp_sock_t *s)
{
    while (s->ai_next != NULL) {
        struct evutil_addrinfo *ai = s->ai_next;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);

        s->ai_next = ai->ai_next;
        if (fd < 0) {
            s->err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            s->fd = fd;
            s->err = 0;
            complete(s);
            return;
        }
        if (errno == EINPROGRESS) {
            s->fd = fd;
            arm(s, fd, EV_WRITE);
            return;
        }
        s->err = errno;
        close(fd);
    }
    if (s->err == 0)
        s->err = EADDRNOTAVAIL;
    complete(s);
}

static void connect_ready(tcp_sock_t *s)
{
    int e = 0;
    socklen_t len = sizeof(e);

    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        e = errno;
    if (e == 0) {
        s->err = 0;
        complete(s);
        return;
    }
    s->err = e;
    close(s->fd);
    s->fd = -1;
    try_connect(s);
}

/* ---- send and receive ---------------------------------------------------------- */

/* Sends what it can: whether the call is over (all sent, or an error). */
static bool send_some(tcp_sock_t *s)
{
    while (s->first + s->sent < s->len) {
        ssize_t n = send(s->fd, s->data + s->first + s->sent, s->len - s->first - s->sent, MSG_NOSIGNAL);

        if (n > 0) {
            s->sent += (size_t)n;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return false;
        } else if (errno != EINTR) {
            s->err = errno;
            return true;
        }
    }
    return true;
}

/* Whether the buffer holds what the call asks for (or all there will be). */
static bool recv_satisfied(tcp_sock_t *s)
{
    switch (s->pattern) {
    case RECV_LINE: {
        struct evbuffer_ptr p = evbuffer_search(s->in, "\n", 1, NULL);
        return p.pos >= 0;
    }
    case RECV_COUNT:
        return evbuffer_get_length(s->in) >= s->count;
    }
    return false; /* RECV_ALL: until the peer closes */
}

/* Reads what there is: whether the call is over. */
static bool receive_some(tcp_sock_t *s)
{
    for (;;) {
        int n;

        if (recv_satisfied(s))
            return true;
        n = evbuffer_read(s->in, s->fd, TCP_READ_MAX);
        if (n == 0) {
            s->eof = true;
            return true;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            if (errno != EINTR) {
                s->err = errno;
                return true;
            }
        }
    }
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    tcp_sock_t *s = arg;

    if (what & EV_TIMEOUT) {
        s->err = ERR_TIMEOUT;
        complete(s);
        return;
    }
    switch (s->call) {
    case CALL_CONNECT:
        connect_ready(s);
        break;
    case CALL_SEND:
        if (send_some(s))
            complete(s);
        else
            arm(s, s->fd, EV_WRITE);
        break;
    case CALL_RECEIVE:
        if (receive_some(s))
            complete(s);
        else
            arm(s, s->fd, EV_READ);
        break;
    }
}

/* Pushes n bytes from the front of the buffer (CRs dropped for a line),
 * after the prefix if there is one. */
static void push_front(lua_State *L, tcp_sock_t *s, size_t n, size_t drain, bool line)
{
    const char *p = n ? (const char *)evbuffer_pullup(s->in, (ev_ssize_t)n) : "";

    if (line && memchr(p, '\r', n)) {
        luaL_Buffer b;

        luaL_buffinit(L, &b);
        for (size_t i = 0; i < n; i++)
            if (p[i] != '\r')
                luaL_addchar(&b, p[i]);
        luaL_pushresult(&b);
    } else {
        lua_pushlstring(L, p, n);
    }
    evbuffer_drain(s->in, drain);
    if (s->prefix_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->prefix_ref);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
}

static int receive_results(lua_State *L, tcp_sock_t *s)
{
    size_t have = evbuffer_get_length(s->in);

    if (s->err == 0 && recv_satisfied(s)) {
        if (s->pattern == RECV_LINE) {
            struct evbuffer_ptr p = evbuffer_search(s->in, "\n", 1, NULL);
            push_front(L, s, (size_t)p.pos, (size_t)p.pos + 1, true);
        } else {
            push_front(L, s, s->count, s->count, false);
        }
        return 1;
    }
    if (s->err == 0 && s->pattern == RECV_ALL) { /* the peer closed: all of it */
        push_front(L, s, have, have, false);
        return 1;
    }
    if (s->err == 0)
        s->err = ERR_CLOSED;
    lua_pushnil(L);
    lua_pushstring(L, error_text(s));
    push_front(L, s, have, have, false);
    return 3;
}

/* ---- the op -------------------------------------------------------------------- */

static int tcp_finish(lua_State *L, gdl_sched_op_t *op)
{
    tcp_sock_t *s = (tcp_sock_t *)op;
    int n;

    switch (s->call) {
    case CALL_CONNECT:
        if (s->err != 0) {
            lua_pushnil(L);
            lua_pushstring(L, error_text(s));
            sock_release(s);
        } else {
            lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
            evutil_freeaddrinfo(s->ai);
            s->ai = s->ai_next = NULL;
        }
        n = s->err != 0 ? 2 : 1;
        break;
    case CALL_SEND:
        if (s->err != 0) {
            lua_pushnil(L);
            lua_pushstring(L, error_text(s));
            lua_pushinteger(L, (lua_Integer)(s->first + s->sent));
            n = 3;
        } else {
            lua_pushinteger(L, (lua_Integer)s->len);
            n = 1;
        }
        break;
    default:
        n = receive_results(L, s);
        break;
    }
    call_end(L, s);
    return n;
}

/* The coroutine was cancelled in the call: the socket is closed. */
static void tcp_cancel(lua_State *L, gdl_sched_op_t *op)
{
    tcp_sock_t *s = (tcp_sock_t *)op;

    sock_release(s);
    call_end(L, s);
}

static tcp_sock_t *check_sock(lua_State *L)
{
    return luaL_checkudata(L, 1, TCP_MT);
}

/* s (at stack index 1, or idx) starts a call: no other may be under way. */
static void begin(lua_State *L, tcp_sock_t *s, int call, const char *what)
{
    if (s->call != CALL_NONE)
        luaL_error(L, "%s: the socket is in use by another coroutine", what);
    s->call = call;
    s->op.done = false;
    s->op.task = NULL;
    s->op.what = what;
    s->err = 0;
    s->eof = false;
    s->deadline_ms = s->timeout_ms >= 0 ? gdl_now_ms() + s->timeout_ms : -1;
}

/* The call could not finish at once: what it points to is anchored
 * before its coroutine is suspended. */
static void anchor(lua_State *L, tcp_sock_t *s, int self, int data, int prefix)
{
    lua_pushvalue(L, self);
    s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (data) {
        lua_pushvalue(L, data);
        s->data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (prefix) {
        lua_pushvalue(L, prefix);
        s->prefix_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

static int check_timeout(lua_State *L, int idx)
{
    lua_Number t;

    if (lua_isnoneornil(L, idx))
        return -1;
    t = luaL_checknumber(L, idx);
    if (t < 0)
        return -1;
    luaL_argcheck(L, t <= 86400, idx, "timeout must be seconds, at most 86400");
    return (int)ceil(t * 1000);
}

/* tcp.connect(host, port [, timeout]) -> sock | nil, err */
static int tcp_connect(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    int timeout_ms = check_timeout(L, 3);
    struct evutil_addrinfo hints = {0};
    struct event_base *base;
    char service[16];
    tcp_sock_t *s;
    int rc;

    luaL_argcheck(L, port >= 1 && port <= 65535, 2, "port must be from 1 to 65535");
    base = gdl_sched_check(L, "gdlua.tcp.connect");
    s = lua_newuserdata(L, sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->closed = true; /* until it holds something */
    s->ref = s->data_ref = s->prefix_ref = LUA_NOREF;
    s->timeout_ms = timeout_ms;
    luaL_getmetatable(L, TCP_MT);
    lua_setmetatable(L, -2);
    tcp.base = base;
    if ((s->in = evbuffer_new()) == NULL || (s->ev = event_new(base, -1, 0, on_io, s)) == NULL) {
        if (s->in)
            evbuffer_free(s->in);
        s->in = NULL;
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    s->closed = false;
    s->next = tcp.socks;
    if (tcp.socks)
        tcp.socks->prev = s;
    tcp.socks = s;
    gdl_sched_on_close(tcp_close);

    s->op.finish = tcp_finish;
    s->op.cancel = tcp_cancel;
    begin(L, s, CALL_CONNECT, "gdlua.tcp.connect");
    anchor(L, s, -1, 0, 0);
    snprintf(service, sizeof(service), "%d", (int)port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
    rc = evutil_getaddrinfo(host, service, &hints, &s->ai);
    if (rc == 0) {
        s->ai_next = s->ai;
        try_connect(s);
    } else if (rc == EVUTIL_EAI_NONAME) {
        resolve_t *rs = malloc(sizeof(*rs));
        struct evdns_getaddrinfo_request *req;

        if (tcp.dns == NULL)
            tcp.dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (rs == NULL || tcp.dns == NULL) {
            free(rs);
            s->err = ENOMEM;
            complete(s);
        } else {
            hints.ai_flags = EVUTIL_AI_NUMERICSERV;
            rs->s = s;
            s->resolve = rs;
            arm(s, -1, 0); /* the timeout, while the name resolves */
            req = evdns_getaddrinfo(tcp.dns, host, service, &hints, on_resolved, rs);
            if (s->resolve != NULL) /* not answered at once (a literal, /etc/hosts) */
                s->dns_req = req;
        }
    } else {
        s->err = ERR_DNS;
        s->dns_error = evutil_gai_strerror(rc);
        complete(s);
    }
    return gdl_sched_await(L, &s->op);
}

/* sock:send(data [, i [, j]]) -> last index | nil, err, last sent */
static int tcp_send(lua_State *L)
{
    tcp_sock_t *s = check_sock(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer i = luaL_optinteger(L, 3, 1), j = luaL_optinteger(L, 4, -1);

    if (s->closed) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        lua_pushinteger(L, 0);
        return 3;
    }
    /* string.sub's rules */
    if (i < 0)
        i = (lua_Integer)len + i + 1;
    if (i < 1)
        i = 1;
    if (j < 0)
        j = (lua_Integer)len + j + 1;
    if (j > (lua_Integer)len)
        j = (lua_Integer)len;
    begin(L, s, CALL_SEND, "gdlua.tcp send");
    s->data = data;
    s->first = (size_t)i - 1;
    s->len = j >= i ? (size_t)j : s->first;
    s->sent = 0;
    if (send_some(s)) {
        complete(s);
    } else {
        anchor(L, s, 1, 2, 0);
        arm(s, s->fd, EV_WRITE);
    }
    return gdl_sched_await(L, &s->op);
}

/* sock:receive([pattern [, prefix]]) -> data | nil, err, partial */
static int tcp_receive(lua_State *L)
{
    tcp_sock_t *s = check_sock(L);
    int pattern = RECV_LINE;
    size_t count = 0;

    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, 2);

        luaL_argcheck(L, n >= 0 && n <= (lua_Number)(1u << 31), 2, "byte count must be from 0 to 2^31");
        pattern = RECV_COUNT;
        count = (size_t)n;
    } else if (!lua_isnoneornil(L, 2)) {
        const char *p = luaL_checkstring(L, 2);

        if (strcmp(p, "*l") == 0 || strcmp(p, "l") == 0)
            pattern = RECV_LINE;
        else if (strcmp(p, "*a") == 0 || strcmp(p, "a") == 0)
            pattern = RECV_ALL;
        else
            return luaL_argerror(L, 2, "pattern must be \"*l\", \"*a\" or a byte count");
    }
    if (!lua_isnoneornil(L, 3))
        luaL_checkstring(L, 3);
    if (s->closed) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    begin(L, s, CALL_RECEIVE, "gdlua.tcp receive");
    s->pattern = pattern;
    s->count = count;
    if (!lua_isnoneornil(L, 3)) {
        lua_pushvalue(L, 3);
        s->prefix_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (receive_some(s)) {
        complete(s);
    } else {
        anchor(L, s, 1, 0, 0);
        arm(s, s->fd, EV_READ);
    }
    return gdl_sched_await(L, &s->op);
}

/* sock:settimeout(seconds [, mode]): each later call's, in all (LuaSocket's
 * mode is accepted and ignored). */
static int tcp_settimeout(lua_State *L)
{
    tcp_sock_t *s = check_sock(L);

    s->timeout_ms = check_timeout(L, 2);
    lua_pushinteger(L, 1);
    return 1;
}

static int tcp_setoption(lua_State *L)
{
    tcp_sock_t *s = check_sock(L);
    const char *name = luaL_checkstring(L, 2);
    int on = lua_toboolean(L, 3), level, opt;

    if (strcmp(name, "tcp-nodelay") == 0) {
        level = IPPROTO_TCP;
        opt = TCP_NODELAY;
    } else if (strcmp(name, "keepalive") == 0) {
        level = SOL_SOCKET;
        opt = SO_KEEPALIVE;
    } else {
        return luaL_argerror(L, 2, "option must be \"tcp-nodelay\" or \"keepalive\"");
    }
    if (s->closed || setsockopt(s->fd, level, opt, &on, sizeof(on)) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, s->closed ? "closed" : strerror(errno));
        return 2;
    }
    lua_pushinteger(L, 1);
    return 1;
}

static int tcp_shutdown(lua_State *L)
{
    static const char *const hows[] = {"both", "send", "receive", NULL};
    static const int how[] = {SHUT_RDWR, SHUT_WR, SHUT_RD};
    tcp_sock_t *s = check_sock(L);
    int h = luaL_checkoption(L, 2, "both", hows);

    if (s->closed) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    shutdown(s->fd, how[h]);
    lua_pushinteger(L, 1);
    return 1;
}

static int tcp_close_method(lua_State *L)
{
    tcp_sock_t *s = check_sock(L);

    if (s->call != CALL_NONE)
        return luaL_error(L, "gdlua.tcp close: the socket is in use by another coroutine");
    sock_release(s);
    lua_pushinteger(L, 1);
    return 1;
}

/* A socket with a call waiting is anchored, so it is collected only when
 * its state closes; its call is cancelled then, which releases it. */
static int tcp_gc(lua_State *L)
{
    tcp_sock_t *s = check_sock(L);

    if (s->call == CALL_NONE)
        sock_release(s);
    return 0;
}

static int tcp_tostring(lua_State *L)
{
    tcp_sock_t *s = check_sock(L);

    if (s->closed)
        lua_pushliteral(L, "gdlua.tcp (closed)");
    else
        lua_pushfstring(L, "gdlua.tcp (fd %d)", s->fd);
    return 1;
}

static const luaL_Reg sock_methods[] = {
    {"send", tcp_send},
    {"receive", tcp_receive},
    {"settimeout", tcp_settimeout},
    {"setoption", tcp_setoption},
    {"shutdown", tcp_shutdown},
    {"close", tcp_close_method},
    {NULL, NULL},
};

static const luaL_Reg tcp_api[] = {
    {"connect", tcp_connect},
    {NULL, NULL},
};

int luaopen_gdlua_tcp(lua_State *L)
{
    if (luaL_newmetatable(L, TCP_MT)) {
        lua_newtable(L);
        luaL_register(L, NULL, sock_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, tcp_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, tcp_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_register(L, NULL, tcp_api);
    return 1;
}
