/*
 * gdl_listen.c: what the console (gdl_console.c) and the HTTP endpoint
 * (gdl_http.c) share about listening, in the master's event loop:
 *
 * - the address rule: a non-loopback address needs a token, or the
 *   owner's --WHO_insecure; a port that cannot be bound is logged and
 *   the jobs are served without the listener;
 * - the connection table: at most `max` at once, oldest first; a new one
 *   beyond it closes the most evictable idle one (the owner ranks them:
 *   one that has not sent a command or request yet before one that has),
 *   else is sent `busy_reply` and closed;
 * - descriptors: every listener's connections at their caps, and
 *   GDL_FDS_RESERVE more for the rest of the master, must fit in the
 *   descriptor limit, which is raised for them if the hard limit allows,
 *   else the caps are lowered (children get the limit gdlua started
 *   with);
 * - running out of descriptors all the same: accept() failing for want of them is
 *   warned about once, and accepts are paused GDL_ACCEPT_PAUSE_MS and
 *   tried again by a timer, not retried in a loop as fast as the socket
 *   stays readable;
 * - the master's end: what connections have queued is written before
 *   they are closed;
 * - after fork: a child closes the listening sockets and connections,
 *   which are the master's;
 * - wrong tokens: a pause per client address (gdl_auth_check).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "gdlua.h"

static gdl_listener_t *listeners;
static struct rlimit started; /* the descriptor limit gdlua was started with */
static bool raised;           /* the soft one raised: children get started's back */

/* The descriptor is closed here, not by libevent: a bufferevent's
 * free is finished later in the loop (its finalizers), and a burst of
 * accepts that each evicted a connection would hold every evicted
 * descriptor until then, past the limit the caps were fitted to. Its
 * events are deleted first, so the number is free for the next accept. */
void gdl_conn_free(gdl_conn_t *c)
{
    gdl_listener_t *l = c->owner;
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (l->on_free)
        l->on_free(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->last = c->prev;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_free(c->bev);
    if (fd >= 0)
        evutil_closesocket(fd);
    free(c);
    l->nconns--;
}

/* The table is full: closes its most evictable connection, the oldest
 * of those ranked alike. false when every one is busy. */
static bool evict(gdl_listener_t *l)
{
    gdl_conn_t *victim = NULL;

    for (gdl_conn_t *c = l->first; c; c = c->next)
        if (c->evictable > 0 && (victim == NULL || c->evictable > victim->evictable))
            victim = c;
    if (victim == NULL)
        return false;
    gdl_debug("%s: %d connections: closing the oldest idle one for a new one", l->who, l->nconns);
    gdl_conn_free(victim);
    return true;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    gdl_listener_t *l = arg;
    gdl_conn_t *c;

    if (l->starved) {
        gdl_info("%s: accepting connections again", l->who);
        l->starved = false;
    }
    if (l->nconns >= l->cap && !evict(l)) {
        ssize_t w = send(fd, l->busy_reply, strlen(l->busy_reply), MSG_DONTWAIT | MSG_NOSIGNAL);

        (void)w; /* a refusal is sent if it can be, at once */
        evutil_closesocket(fd);
        return;
    }
    if ((c = calloc(1, l->conn_size)) == NULL) {
        evutil_closesocket(fd);
        return;
    }
    if ((c->bev = bufferevent_socket_new(evconnlistener_get_base(lev), fd, 0)) == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->owner = l;
    if (salen > 0 && (size_t)salen <= sizeof(c->peer))
        memcpy(&c->peer, sa, (size_t)salen);
    c->prev = l->last;
    if (l->last)
        l->last->next = c;
    else
        l->first = c;
    l->last = c;
    l->nconns++;
    if (l->on_conn(c) < 0)
        gdl_conn_free(c);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    gdl_listener_t *l = arg;

    evconnlistener_enable(l->lev);
}

/* accept() failed with a non-transient error. Out of descriptors (or of
 * kernel memory) the listening socket stays readable: pause instead of
 * spinning on it. Any other error belongs to one connection, now gone. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    gdl_listener_t *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, GDL_ACCEPT_PAUSE_MS * 1000};

    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        gdl_warn("%s: accept failed: %s", l->who, strerror(err));
        return;
    }
    evconnlistener_disable(lev);
    evtimer_add(l->resume, &tv);
    if (!l->starved)
        gdl_warn("%s: cannot accept connections: %s (%d open here); trying again every %d ms", l->who, strerror(err),
                 l->nconns, GDL_ACCEPT_PAUSE_MS);
    l->starved = true;
}

/* ---- descriptors ---- */

/* Once every listener is set up (the loop's first turn): their
 * connections at their caps and GDL_FDS_RESERVE more must fit in the
 * descriptor limit. Else a full table leaves the master none for a
 * loader or a job server, nor one to accept the connection that would
 * close an idle one. The soft limit is raised as far as they need and
 * the hard limit allows; past that, each cap is lowered in proportion to
 * what its owner wants, GDL_CONNS_MIN at least. */
static void fit_descriptors(evutil_socket_t fd, short what, void *arg)
{
    struct rlimit rl;
    rlim_t want = GDL_FDS_RESERVE, room;

    for (gdl_listener_t *l = listeners; l; l = l->next)
        want += (rlim_t)l->max;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    started = rl;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    if (rl.rlim_cur > started.rlim_cur && setrlimit(RLIMIT_NOFILE, &rl) == 0) {
        raised = true;
        gdl_info("descriptor limit raised from %llu to %llu for the console's and HTTP's connections",
                 (unsigned long long)started.rlim_cur, (unsigned long long)rl.rlim_cur);
    } else {
        rl.rlim_cur = started.rlim_cur;
    }
    if (rl.rlim_cur >= want)
        return;
    room = rl.rlim_cur > GDL_FDS_RESERVE ? rl.rlim_cur - GDL_FDS_RESERVE : 0;
    for (gdl_listener_t *l = listeners; l; l = l->next) {
        rlim_t cap = room * (rlim_t)l->max / (want - GDL_FDS_RESERVE);

        l->cap = cap < GDL_CONNS_MIN ? GDL_CONNS_MIN : (int)cap;
        gdl_warn("%s: at most %d connections, not %d: the descriptor limit is %llu (ulimit -n), and %d are kept "
                 "for the rest of gdlua",
                 l->who, l->cap, l->max, (unsigned long long)rl.rlim_cur, GDL_FDS_RESERVE);
    }
}

/* In a new child: the listening sockets and connections are the
 * master's. Closed once (a later fork of the child must not close what
 * took their numbers); the structures stay, the child never runs the
 * loop. */
static void after_fork(void)
{
    static bool closed;

    if (closed)
        return;
    closed = true;
    if (raised)
        setrlimit(RLIMIT_NOFILE, &started);
    for (gdl_listener_t *l = listeners; l; l = l->next) {
        if (l->lev)
            close(evconnlistener_get_fd(l->lev));
        for (gdl_conn_t *c = l->first; c; c = c->next)
            close(bufferevent_getfd(c->bev));
    }
}

int gdl_listen(gdl_listener_t *l, struct event_base *base, const char *host, const char *port, const char *option,
               const char *shown, bool token, bool insecure)
{
    static bool hooked;
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = evutil_getaddrinfo(host, port, &hints, &ai)) != 0) {
        gdl_error("%s: bad --%s_bind %s: %s", l->who, l->who, option, evutil_gai_strerror(rc));
        return -1;
    }
    if (!gdl_is_loopback(ai->ai_addr) && !token && !insecure) {
        gdl_error("%s: refusing to listen on %s without --%s_token (or --%s_insecure)", l->who, option, l->who, l->who);
        evutil_freeaddrinfo(ai);
        return -1;
    }
    if ((l->resume = evtimer_new(base, on_resume, l)) == NULL) {
        gdl_error("%s: out of memory", l->who);
        evutil_freeaddrinfo(ai);
        return -1;
    }
    l->lev =
        evconnlistener_new_bind(base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
                                128, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (l->lev == NULL) {
        gdl_error("%s: cannot listen on %s: %s; serving jobs without %s", l->who, shown, strerror(errno), l->without);
        event_free(l->resume);
        l->resume = NULL;
        return 1;
    }
    evconnlistener_set_error_cb(l->lev, on_accept_error);
    l->cap = l->max;
    l->next = listeners;
    listeners = l;
    if (!hooked) {
        struct timeval now = {0, 0};

        pthread_atfork(NULL, NULL, after_fork);
        event_base_once(base, -1, EV_TIMEOUT, fit_descriptors, NULL, &now);
    }
    hooked = true;
    return 0;
}

/* The master is stopping: what a connection has queued (a reload's
 * "shutting down", the replies before it) is written now, as much as the
 * socket takes without waiting, as the loop that would write it is
 * ending. Our side is shut, and what the client sent unread is drained,
 * so the close is a FIN: a reset could discard the replies at the
 * client before it reads them. */
static void flush_now(gdl_conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    char drop[4096];

    if (fd < 0 || evbuffer_get_length(out) == 0)
        return;
    evbuffer_unfreeze(out, 1); /* a socket bufferevent lets only itself drain its output */
    while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
        ;
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 16 && recv(fd, drop, sizeof(drop), MSG_DONTWAIT) > 0; i++)
        ;
}

void gdl_listen_close(gdl_listener_t *l)
{
    for (gdl_conn_t *c = l->first; c; c = c->next)
        flush_now(c);
    while (l->first)
        gdl_conn_free(l->first);
    if (l->lev)
        evconnlistener_free(l->lev);
    l->lev = NULL;
    if (l->resume)
        event_free(l->resume);
    l->resume = NULL;
    for (gdl_listener_t **p = &listeners; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
}

const char *gdl_peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *addr = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                 : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || !inet_ntop(sa->sa_family, addr, buf, len))
        snprintf(buf, len, "an unknown address");
    return buf;
}

/* ---- wrong tokens ---- */

/* The peer's address as 16 bytes: IPv4 mapped into IPv6. */
static void peer_key(const struct sockaddr *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

int gdl_auth_check(gdl_lockout_t *t, const struct sockaddr *peer, const char *given, size_t len, const char *token,
                   int64_t now_ms, int pause_ms)
{
    unsigned char key[16];
    int free_slot = 0;

    peer_key(peer, key);
    for (int i = 0; i < GDL_LOCKOUT_SLOTS; i++) {
        if (t->slot[i].until_ms > now_ms && memcmp(t->slot[i].addr, key, 16) == 0)
            return GDL_AUTH_PAUSED;
        if (t->slot[i].until_ms < t->slot[free_slot].until_ms)
            free_slot = i;
    }
    if (gdl_token_equal(given, len, token))
        return GDL_AUTH_OK;
    /* The slot whose pause ends first: one that has ended, when the
     * table is full the one nearest its end. */
    memcpy(t->slot[free_slot].addr, key, 16);
    t->slot[free_slot].until_ms = now_ms + pause_ms;
    return GDL_AUTH_WRONG;
}
