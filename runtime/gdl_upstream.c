/*
 * gdl_upstream.c: the master's own connections to the job servers, for
 * the observer (gdl_observer.c) and the wake-up sentinels
 * (gdl_sentinel.c): a non-blocking connect, and the back-off before the
 * next attempt once a connection failed (gdl_backoff_ms: 0.1 s doubling
 * to 0.25 s: four connects a second to a server that is down cost
 * nothing, and a server back after a long outage is polled and woken for
 * within 0.25 s).
 * What is spoken on a connection is the caller's.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "gdlua.h"

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   250

static struct event_base *base;

void gdl_upstream_init(gdl_upstream_t *u, struct event_base *b, int server, void (*on_retry)(int, short, void *),
                       void *arg)
{
    base = b;
    memset(u, 0, sizeof(*u));
    u->server = server;
    u->retry = evtimer_new(base, on_retry, arg);
    if (u->retry == NULL)
        abort();
}

/* Starts connecting; the caller sets the callbacks on u->bev. A name
 * that does not resolve fails the attempt as a refused connection does
 * (the caller backs off and tries again), worded as the children and
 * --check word it (gdl_server_resolve). Resolution blocks, once per
 * attempt. */
int gdl_upstream_connect(gdl_upstream_t *u, char *why, size_t whylen)
{
    struct addrinfo *ai = NULL;

    if (gdl_server_resolve(&gdl_config.servers[u->server], &ai, why, whylen) < 0)
        return -1;
    u->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (u->bev == NULL || bufferevent_socket_connect(u->bev, ai->ai_addr, (int)ai->ai_addrlen) < 0) {
        snprintf(why, whylen, "cannot connect: %s", strerror(errno));
        if (u->bev)
            bufferevent_free(u->bev);
        u->bev = NULL;
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return 0;
}

/* The connection failed: drop it and arm the retry timer. Returns the
 * delay in ms; u->failures counts the failures in a row. */
int gdl_upstream_down(gdl_upstream_t *u)
{
    int delay = gdl_backoff_ms(++u->failures, RETRY_FIRST_MS, RETRY_MAX_MS);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};

    if (u->bev)
        bufferevent_free(u->bev);
    u->bev = NULL;
    evtimer_add(u->retry, &tv);
    return delay;
}

void gdl_upstream_close(gdl_upstream_t *u)
{
    if (u->bev)
        bufferevent_free(u->bev);
    if (u->retry)
        event_free(u->retry);
    u->bev = NULL;
    u->retry = NULL;
}

/* In a new child: close the master's socket without touching the event
 * loop, which the child never runs. The structures stay (reachable, so
 * leak checkers see nothing lost); once is enough, as a later fork of the
 * child (a job's os.execute) must not close whatever took the number. */
void gdl_upstream_forget(gdl_upstream_t *u)
{
    if (u->bev && !u->forgotten)
        close(bufferevent_getfd(u->bev));
    u->forgotten = true;
}

const char *gdl_upstream_name(const gdl_upstream_t *u, char *buf, size_t len)
{
    return gdl_server_name(&gdl_config.servers[u->server], buf, len);
}
