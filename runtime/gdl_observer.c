/*
 * gdl_observer.c: the observer. Polls each job server's admin text
 * protocol ("status" then "workers") from the master's libevent loop,
 * never blocking it, and keeps per pool: jobs waiting, jobs running, the
 * workers registered for it (gdlua's wake-up sentinels left out), and
 * how many other gdlua instances serve it (from the client ids of
 * "workers"). Connections and their back-off are gdl_upstream.c's.
 *
 * An instance counts as serving a pool on a server if a poll within the
 * last interval (1 s at least) saw it there: between disarming its
 * sentinel and its new processes connecting, an instance that has just
 * started processes is listed with nothing, and counting it out for that
 * moment would give every other instance a bigger share of the same
 * queue (seen in tests/sim at 100 hosts: 27 % more processes than jobs).
 *
 * A server that is down, hangs or answers garbage is logged and retried
 * with back-off (0.1 s doubling to 0.25 s); its figures count as zero until
 * it answers again, and the other servers are polled as usual. One that
 * hangs (a connection or a poll not answered within POLL_TIMEOUT_S: the
 * clock runs only while an answer is awaited) is also marked for the
 * children to leave out (gdl_slots_set_hung) and on_hung is called; the
 * mark goes with its next answer, before on_polled. Counts
 * are clamped and summed saturating, so a lying server cannot overflow
 * them. When a poll completes, the master's callback decides the scaling.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "gdlua.h"

#define LINE_MAX_BYTES 65536 /* a longer line is garbage, not a status row */
#define POLL_TIMEOUT_S 5

enum { A_DOWN, A_CONNECTING, A_READY, A_STATUS, A_WORKERS };

typedef struct {
    uint64_t instance; /* hash of a peer's "gdlua:HOST:PID" */
    int job;
    int64_t seen_ms; /* in known: when a poll last saw it */
} peer_t;

typedef struct {
    int index;
    int state;
    bool again; /* a poll was asked for while one ran */
    bool hung;  /* timed out; not answered since */
    gdl_upstream_t up;
    int *queue, *running, *workers, *sentinels; /* being filled by the poll under way */
    int *counted;                               /* per pool: the "workers" line its sentinels were last counted on */
    int line;                                   /* lines of "workers" read */
    peer_t *peers;                              /* seen by the poll under way */
    int npeers, peers_cap;
    peer_t *known; /* seen within the window, sorted */
    int nknown;
    int64_t asked_ms;
} admin_t;

gdl_observed_t gdl_observed[GDL_SERVERS_MAX];

static admin_t admins[GDL_SERVERS_MAX];
static uint64_t self; /* this instance, as instance_of() hashes a peer */
static void (*on_polled)(int server);
static void (*on_hung)(int server);

/* "FUNC\tTOTAL\tRUNNING\tWORKERS" -> 0, or -1 for anything else. */
int gdl_observer_parse_status(char *line, const char **func, long *total, long *running, long *workers)
{
    char *f[4], *end, *save = NULL;
    long v[3];
    int n = 0;

    for (char *t = strtok_r(line, "\t", &save); t; t = strtok_r(NULL, "\t", &save)) {
        if (n == 4)
            return -1;
        f[n++] = t;
    }
    if (n != 4 || f[0][0] == '\0')
        return -1;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        v[i] = strtol(f[i + 1], &end, 10);
        if (errno || *end || end == f[i + 1] || v[i] < 0)
            return -1;
    }
    if (v[1] > v[0])
        return -1; /* running more than total: not a status row */
    *func = f[0];
    *total = v[0];
    *running = v[1];
    *workers = v[2];
    return 0;
}

/* "FD IP CLIENT-ID : FUNC FUNC..." -> 0 with the client id and the start
 * of the function list (space separated, maybe empty), or -1. */
int gdl_observer_parse_workers(char *line, const char **client_id, char **functions)
{
    char *colon = line, *save = NULL, *tok[3];
    const char *fd;
    int n = 0;

    /* The separator is " : " or a final " :" (an IPv6 address has "::"). */
    while ((colon = strstr(colon, " :")) != NULL && colon[2] != '\0' && colon[2] != ' ')
        colon += 2;
    if (colon == NULL)
        return -1;
    *colon = '\0';
    *functions = colon[2] ? colon + 3 : colon + 2;
    for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (n == 3)
            return -1;
        tok[n++] = t;
    }
    /* The fd is -1 for a connection gearmand is closing (seen while
     * workers come and go quickly). */
    fd = tok[0] + (tok[0][0] == '-');
    if (n != 3 || *fd == '\0' || strspn(fd, "0123456789") != strlen(fd))
        return -1;
    *client_id = tok[2];
    return 0;
}

/* The gdlua instance of a client id "gdlua:HOST:PID:..." as a hash of
 * "gdlua:HOST:PID", or 0 when the id is not gdlua's. */
static uint64_t instance_of(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    int colons = 0;

    if (strncmp(id, "gdlua:", 6) != 0)
        return 0;
    for (; *id; id++) {
        if (*id == ':' && ++colons == 3)
            break;
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    }
    return colons >= 2 ? h : 0;
}

static int cmp_peer(const void *a, const void *b)
{
    const peer_t *x = a, *y = b;

    if (x->job != y->job)
        return x->job - y->job;
    return x->instance < y->instance ? -1 : x->instance > y->instance;
}

static void admin_down(admin_t *a, const char *why)
{
    gdl_observed_t *o = &gdl_observed[a->index];
    int delay = gdl_upstream_down(&a->up);
    char name[300];

    if (a->up.failures == 1 || a->up.failures % 10 == 1)
        gdl_warn("job server %s: %s; polling it again in %d ms", gdl_upstream_name(&a->up, name, sizeof(name)), why,
                 delay);
    a->state = A_DOWN;
    a->again = false;
    o->valid = false;
    memset(o->queue, 0, sizeof(int) * gdl_npools);
    memset(o->running, 0, sizeof(int) * gdl_npools);
    memset(o->peers, 0, sizeof(int) * gdl_npools);
    memset(o->rank, 0, sizeof(int) * gdl_npools);
    memset(o->workers, 0, sizeof(int) * gdl_npools);
}

static void send_poll(admin_t *a)
{
    memset(a->queue, 0, sizeof(int) * gdl_npools);
    memset(a->running, 0, sizeof(int) * gdl_npools);
    memset(a->workers, 0, sizeof(int) * gdl_npools);
    memset(a->sentinels, 0, sizeof(int) * gdl_npools);
    memset(a->counted, 0, sizeof(int) * gdl_npools);
    a->line = 0;
    a->npeers = 0;
    struct timeval tv = {POLL_TIMEOUT_S, 0};

    a->asked_ms = gdl_now_ms();
    a->state = A_STATUS;
    bufferevent_set_timeouts(a->up.bev, &tv, &tv);
    if (bufferevent_write(a->up.bev, "status\nworkers\n", 15) < 0)
        admin_down(a, "cannot send the poll: out of memory");
}

/* Merges the peers this poll saw into those seen within the window
 * (both sorted), dropping the ones not seen for longer; false when out of
 * memory (the known ones are kept as they were). */
static bool merge_peers(admin_t *a, int64_t now)
{
    int64_t window = gdl_config.interval > 1 ? gdl_config.interval * 1000LL : 1000;
    int cap = a->nknown + a->npeers, n = 0, i = 0, k = 0;
    peer_t *out = malloc(sizeof(peer_t) * (cap ? cap : 1));

    if (out == NULL)
        return false;
    while (i < a->npeers || k < a->nknown) {
        int c = i == a->npeers ? 1 : k == a->nknown ? -1 : cmp_peer(&a->peers[i], &a->known[k]);
        peer_t p = c <= 0 ? a->peers[i] : a->known[k];

        if (c <= 0) {
            p.seen_ms = now;
            i++;
            k += c == 0;
        } else {
            k++;
        }
        if (now - p.seen_ms <= window && (n == 0 || cmp_peer(&out[n - 1], &p) != 0))
            out[n++] = p;
    }
    free(a->known);
    a->known = out;
    a->nknown = n;
    return true;
}

/* The poll answered in full: publish it. */
static void poll_done(admin_t *a)
{
    gdl_observed_t *o = &gdl_observed[a->index];

    memcpy(o->queue, a->queue, sizeof(int) * gdl_npools);
    memcpy(o->running, a->running, sizeof(int) * gdl_npools);
    for (int k = 0; k < gdl_npools; k++)
        o->workers[k] = a->workers[k] > a->sentinels[k] ? a->workers[k] - a->sentinels[k] : 0;
    memset(o->peers, 0, sizeof(int) * gdl_npools);
    memset(o->rank, 0, sizeof(int) * gdl_npools);
    if (a->npeers)
        qsort(a->peers, a->npeers, sizeof(peer_t), cmp_peer);
    if (!merge_peers(a, gdl_now_ms())) {
        admin_down(a, "out of memory counting the other gdlua instances");
        return;
    }
    for (int i = 0; i < a->nknown; i++) {
        o->peers[a->known[i].job]++;
        o->rank[a->known[i].job] += a->known[i].instance < self;
    }
    o->asked_ms = a->asked_ms;
    o->valid = true;
    a->state = A_READY;
    bufferevent_set_timeouts(a->up.bev, NULL, NULL); /* an idle connection is no silent server */
    if (a->hung) {
        a->hung = false;
        gdl_slots_set_hung(a->index, false);
    }
    if (a->up.failures) {
        char name[300];
        gdl_info("job server %s: answering again", gdl_upstream_name(&a->up, name, sizeof(name)));
        a->up.failures = 0;
        o->returns++;
    }
    on_polled(a->index);
    if (a->again && a->state == A_READY) {
        a->again = false;
        send_poll(a);
    }
}

/* Records that instance serves job; false when out of memory (the
 * peers counted so far are kept). */
static bool add_peer(admin_t *a, uint64_t instance, int job)
{
    if (a->npeers == a->peers_cap) {
        int cap = a->peers_cap ? a->peers_cap * 2 : 64;
        peer_t *peers = realloc(a->peers, sizeof(peer_t) * cap);

        if (peers == NULL)
            return false;
        a->peers = peers;
        a->peers_cap = cap;
    }
    a->peers[a->npeers++] = (peer_t){instance, job, 0};
    return true;
}

/* a + b, both >= 0, saturating at INT_MAX. */
static int add_clamped(int a, long b)
{
    return b >= (long)INT_MAX - a ? INT_MAX : a + (int)b;
}

static int handle_line(admin_t *a, char *line)
{
    const char *func, *id;
    char *funcs, *save = NULL;
    long total, running, workers;
    uint64_t inst;
    int job;
    bool wake;

    if (strcmp(line, ".") == 0) {
        if (a->state == A_STATUS)
            a->state = A_WORKERS;
        else
            poll_done(a);
        return 0;
    }
    if (a->state == A_STATUS) {
        if (gdl_observer_parse_status(line, &func, &total, &running, &workers) < 0)
            return -1;
        if ((job = gdl_pool_of_function(func)) >= 0) {
            a->queue[job] = add_clamped(a->queue[job], total - running);
            a->running[job] = add_clamped(a->running[job], running);
            /* a group's functions each list its workers: the most is theirs */
            if (workers > a->workers[job])
                a->workers[job] = add_clamped(0, workers);
        }
        return 0;
    }
    if (gdl_observer_parse_workers(line, &id, &funcs) < 0)
        return -1;
    inst = instance_of(id);
    wake = inst != 0 && strlen(id) > 5 && strcmp(id + strlen(id) - 5, ":wake") == 0;
    a->line++;
    for (char *f = strtok_r(funcs, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
        if ((job = gdl_pool_of_function(f)) < 0)
            continue;
        /* any gdlua instance's sentinel, ours too, is no worker */
        if (wake && a->counted[job] != a->line) {
            a->counted[job] = a->line;
            a->sentinels[job]++;
        }
        if (inst != 0 && inst != self && !add_peer(a, inst, job)) {
            admin_down(a, "out of memory counting the other gdlua instances");
            return 0;
        }
    }
    return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    admin_t *a = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line, why[128];
    size_t len;

    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        if (a->state != A_STATUS && a->state != A_WORKERS) {
            snprintf(why, sizeof(why), "unasked output \"%.40s\"", line);
            free(line);
            admin_down(a, why);
            return;
        }
        if (len > LINE_MAX_BYTES || handle_line(a, line) < 0) {
            snprintf(why, sizeof(why), "garbage in %s reply: \"%.40s\"", a->state == A_STATUS ? "status" : "workers",
                     line);
            free(line);
            admin_down(a, why);
            return;
        }
        free(line);
        if (a->up.bev == NULL)
            return;
    }
    if (evbuffer_get_length(in) > LINE_MAX_BYTES)
        admin_down(a, "overlong line in reply");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    admin_t *a = arg;
    char why[160];

    if (what & BEV_EVENT_CONNECTED) {
        a->state = A_READY;
        bufferevent_set_timeouts(bev, NULL, NULL);
        if (a->again) {
            a->again = false;
            send_poll(a);
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof(why), "no answer within %d s", POLL_TIMEOUT_S);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof(why), "connection closed");
    else
        snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    admin_down(a, why);
    if ((what & BEV_EVENT_TIMEOUT) && !a->hung) {
        a->hung = true;
        gdl_slots_set_hung(a->index, true);
        on_hung(a->index);
    }
}

static void admin_connect(admin_t *a)
{
    struct timeval tv = {POLL_TIMEOUT_S, 0};
    char why[160];

    if (gdl_upstream_connect(&a->up, why, sizeof(why)) < 0) {
        admin_down(a, why);
        return;
    }
    a->state = A_CONNECTING;
    bufferevent_setcb(a->up.bev, on_read, NULL, on_event, a);
    bufferevent_set_timeouts(a->up.bev, &tv, &tv);
    bufferevent_enable(a->up.bev, EV_READ | EV_WRITE);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    admin_t *a = arg;

    a->again = true;
    admin_connect(a);
}

/* Asks server i for a fresh status; the callback runs when it answers. */
void gdl_observer_poll(int i)
{
    admin_t *a = &admins[i];

    switch (a->state) {
    case A_READY:
        send_poll(a);
        break;
    case A_DOWN:
        break; /* the retry timer reconnects and polls */
    default:
        a->again = true;
    }
}

/* Whether server i has not answered a poll sent before before_ms. */
bool gdl_observer_overdue(int i, int64_t before_ms)
{
    const admin_t *a = &admins[i];

    return (a->state == A_STATUS || a->state == A_WORKERS) && a->asked_ms < before_ms;
}

/* When the oldest poll sent at since_ms or later to a server other than
 * except, and not answered yet, was sent; 0 if there is none. */
int64_t gdl_observer_awaited(int except, int64_t since_ms)
{
    int64_t oldest = 0;

    for (int i = 0; i < gdl_config.nservers; i++) {
        const admin_t *a = &admins[i];

        if (i != except && (a->state == A_STATUS || a->state == A_WORKERS) && a->asked_ms >= since_ms &&
            (oldest == 0 || a->asked_ms < oldest))
            oldest = a->asked_ms;
    }
    return oldest;
}

static int *new_counts(void)
{
    int *p = calloc(gdl_npools ? gdl_npools : 1, sizeof(int));

    if (p == NULL)
        abort();
    return p;
}

/* In a new child: the master's connections are not the child's. */
static void after_fork(void)
{
    for (int i = 0; i < gdl_config.nservers; i++)
        gdl_upstream_forget(&admins[i].up);
}

void gdl_observer_init(struct event_base *b, void (*cb)(int server), void (*hung_cb)(int server))
{
    on_polled = cb;
    on_hung = hung_cb;
    self = instance_of(gdl_instance);
    pthread_atfork(NULL, NULL, after_fork);
    for (int i = 0; i < gdl_config.nservers; i++) {
        admin_t *a = &admins[i];
        gdl_observed_t *o = &gdl_observed[i];

        a->index = i;
        a->queue = new_counts();
        a->running = new_counts();
        a->workers = new_counts();
        a->sentinels = new_counts();
        a->counted = new_counts();
        o->queue = new_counts();
        o->running = new_counts();
        o->peers = new_counts();
        o->rank = new_counts();
        o->workers = new_counts();
        gdl_upstream_init(&a->up, b, i, on_retry, a);
        a->again = true;
        admin_connect(a);
    }
}

/* gdl_pools has changed (a reload): the figures per pool start again
 * from the next poll, which is asked for now. */
void gdl_observer_pools_changed(void)
{
    if (on_polled == NULL)
        return; /* not started */
    for (int i = 0; i < gdl_config.nservers; i++) {
        admin_t *a = &admins[i];
        gdl_observed_t *o = &gdl_observed[i];
        int **counts[] = {&a->queue, &a->running, &a->workers, &a->sentinels, &a->counted,
                          &o->queue, &o->running, &o->peers,   &o->rank,      &o->workers};

        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            free(*counts[c]);
            *counts[c] = new_counts();
        }
        a->npeers = 0;
        a->nknown = 0; /* pool indices changed */
        a->line = 0;
        o->valid = false;
        gdl_observer_poll(i);
    }
}

void gdl_observer_close(void)
{
    for (int i = 0; i < gdl_config.nservers; i++)
        gdl_upstream_close(&admins[i].up);
}
