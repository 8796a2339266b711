/*
 * gdl_sentinel.c: wake-up sentinels. One connection per job server
 * speaks just enough of the worker protocol to be woken: it registers
 * CAN_DO for the functions whose next job should start a process, sends
 * PRE_SLEEP, and never grabs a job. gearmand sends it a NOOP the moment
 * such a job arrives (at once if one is already queued); the master then
 * polls that server and forks, instead of waiting for the next interval.
 *
 * A NOOP comes once per arming, so after a wake the master re-arms with
 * the set it wants then: RESET_ABILITIES, GRAB_JOB (answered NO_JOB,
 * which clears gearmand's "woken" state), CAN_DO..., PRE_SLEEP, in one
 * write. Re-arming waits at least HOLDOFF_MS after a wake, which bounds
 * the wake-triggered polls while a backlog drains. The connection shows
 * in gearmand's "workers" as gdlua:HOST:PID:wake and in "status" as a
 * worker of each armed function. Connections and their back-off are
 * gdl_upstream.c's.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "gdlua.h"

/* With 10 ms, each of 100 hosts polled a server up to 90 times a second
 * while a backlog drained, and the extra polls only started more
 * processes (tests/sim: 25 ms polls half as often and meets its goals). */
#define HOLDOFF_MS 25

enum {
    CAN_DO = 1,
    RESET_ABILITIES = 3,
    PRE_SLEEP = 4,
    NOOP = 6,
    GRAB_JOB = 9,
    NO_JOB = 10,
    JOB_ASSIGN = 11,
    SET_CLIENT_ID = 22,
    JOB_ASSIGN_UNIQ = 31,
    JOB_ASSIGN_ALL = 39
};

typedef struct {
    int index;
    gdl_upstream_t up;
    bool connected;
    bool fired; /* woken since the last arming */
    int64_t woken_ms;
    unsigned char *want; /* per job: the set asked for */
    unsigned char *armed;
    struct event *holdoff; /* re-arm once the hold-off has passed */
} sentinel_t;

static sentinel_t sentinels[GDL_SERVERS_MAX];
static bool started;
static void (*on_wake)(int server);

/* Queues one request; -1 when out of memory, and then part of it may
 * be queued: the caller drops the connection. */
static int packet(struct evbuffer *out, uint32_t type, const char *data, size_t len)
{
    uint32_t hdr[2] = {htonl(type), htonl((uint32_t)len)};

    if (evbuffer_add(out, "\0REQ", 4) < 0 || evbuffer_add(out, hdr, sizeof(hdr)) < 0 ||
        (len && evbuffer_add(out, data, len) < 0))
        return -1;
    return 0;
}

static void sentinel_down(sentinel_t *s, const char *why);

static void arm(sentinel_t *s)
{
    struct evbuffer *out = bufferevent_get_output(s->up.bev);
    int n = 0, rc;

    rc = packet(out, RESET_ABILITIES, NULL, 0);
    rc |= packet(out, GRAB_JOB, NULL, 0);
    for (int k = 0; k < gdl_npools; k++) {
        if (!s->want[k])
            continue;
        for (int f = 0; f < gdl_pools[k].nfunctions; f++)
            rc |= packet(out, CAN_DO, gdl_pools[k].functions[f], strlen(gdl_pools[k].functions[f]));
        n++;
    }
    if (n)
        rc |= packet(out, PRE_SLEEP, NULL, 0);
    if (rc < 0) {
        sentinel_down(s, "cannot queue a request: out of memory");
        return;
    }
    memcpy(s->armed, s->want, gdl_npools);
    s->fired = false;
    gdl_debug("sentinel %d armed for %d job(s)", s->index, n);
}

/* Arms now, or when the hold-off after the last wake has passed. */
static void rearm(sentinel_t *s)
{
    int64_t wait = s->woken_ms + HOLDOFF_MS - gdl_now_ms();

    if (!s->connected)
        return;
    if (!s->fired && memcmp(s->want, s->armed, gdl_npools) == 0)
        return;
    if (s->fired && wait > 0) {
        struct timeval tv = {0, (long)wait * 1000};
        if (!evtimer_pending(s->holdoff, NULL))
            evtimer_add(s->holdoff, &tv);
        return;
    }
    arm(s);
}

static void sentinel_connect(sentinel_t *s);

static void sentinel_down(sentinel_t *s, const char *why)
{
    int delay = gdl_upstream_down(&s->up);

    if (s->up.failures == 1)
        gdl_debug("sentinel %d: %s; again in %d ms", s->index, why, delay);
    s->connected = false;
    evtimer_del(s->holdoff);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    sentinel_t *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned char hdr[12];

    while (evbuffer_copyout(in, hdr, 12) == 12) {
        uint32_t type, len;

        memcpy(&type, hdr + 4, 4);
        memcpy(&len, hdr + 8, 4);
        type = ntohl(type);
        len = ntohl(len);
        if (memcmp(hdr, "\0RES", 4) != 0 || len > 1 << 20) {
            sentinel_down(s, "garbage from the job server");
            return;
        }
        if (evbuffer_get_length(in) < 12 + (size_t)len)
            return;
        evbuffer_drain(in, 12 + (size_t)len);
        if (type == JOB_ASSIGN || type == JOB_ASSIGN_UNIQ || type == JOB_ASSIGN_ALL) {
            /* Never asked for; dropping the connection hands it back. */
            sentinel_down(s, "was assigned a job");
            return;
        }
        if (type == NOOP && !s->fired) {
            s->fired = true;
            s->woken_ms = gdl_now_ms();
            on_wake(s->index);
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    sentinel_t *s = arg;
    char id[200];

    if (what & BEV_EVENT_CONNECTED) {
        s->connected = true;
        s->up.failures = 0;
        snprintf(id, sizeof(id), "%s:wake", gdl_instance);
        if (packet(bufferevent_get_output(bev), SET_CLIENT_ID, id, strlen(id)) < 0) {
            sentinel_down(s, "cannot queue a request: out of memory");
            return;
        }
        memset(s->armed, 0, gdl_npools);
        s->fired = true; /* arm whatever is wanted, at once */
        s->woken_ms = 0;
        rearm(s);
        return;
    }
    sentinel_down(s, what & BEV_EVENT_EOF ? "connection closed" : "connection error");
}

static void sentinel_connect(sentinel_t *s)
{
    char why[160];

    if (gdl_upstream_connect(&s->up, why, sizeof(why)) < 0) {
        sentinel_down(s, why);
        return;
    }
    bufferevent_setcb(s->up.bev, on_read, NULL, on_event, s);
    bufferevent_enable(s->up.bev, EV_READ | EV_WRITE);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    sentinel_connect(arg);
}

static void on_holdoff(evutil_socket_t fd, short what, void *arg)
{
    rearm(arg);
}

/* The set of jobs whose next job should wake the master (per job 0/1). */
void gdl_sentinel_want(const unsigned char *want)
{
    for (int i = 0; i < gdl_config.nservers && started; i++) {
        memcpy(sentinels[i].want, want, gdl_npools);
        rearm(&sentinels[i]);
    }
}

/* In a new child: the master's connections are not the child's. */
static void after_fork(void)
{
    for (int i = 0; i < gdl_config.nservers; i++)
        gdl_upstream_forget(&sentinels[i].up);
    started = false;
}

void gdl_sentinel_init(struct event_base *base, void (*cb)(int server))
{
    on_wake = cb;
    started = true;
    pthread_atfork(NULL, NULL, after_fork);
    for (int i = 0; i < gdl_config.nservers; i++) {
        sentinel_t *s = &sentinels[i];

        s->index = i;
        s->want = calloc(gdl_npools + 1, 1);
        s->armed = calloc(gdl_npools + 1, 1);
        s->holdoff = evtimer_new(base, on_holdoff, s);
        if (s->want == NULL || s->armed == NULL || s->holdoff == NULL)
            abort();
        gdl_upstream_init(&s->up, base, i, on_retry, s);
        sentinel_connect(s);
    }
}

/* gdl_pools has changed (a reload): each sentinel re-arms for the new
 * set the master asks for next (RESET_ABILITIES drops the old one). */
void gdl_sentinel_pools_changed(void)
{
    for (int i = 0; i < gdl_config.nservers && started; i++) {
        sentinel_t *s = &sentinels[i];

        free(s->want);
        free(s->armed);
        s->want = calloc(gdl_npools + 1, 1);
        s->armed = calloc(gdl_npools + 1, 1);
        if (s->want == NULL || s->armed == NULL)
            abort();
        s->fired = true; /* the next want arms, whatever it is */
        s->woken_ms = 0;
    }
}

void gdl_sentinel_close(void)
{
    for (int i = 0; i < gdl_config.nservers && started; i++) {
        gdl_upstream_close(&sentinels[i].up);
        if (sentinels[i].holdoff)
            event_free(sentinels[i].holdoff);
        sentinels[i].holdoff = NULL;
    }
    started = false;
}
