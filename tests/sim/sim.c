/*
 * sim.c: the scaling policy at scale. A discrete-event simulation of many
 * gdlua hosts serving one pool from many job servers, each host's master
 * deciding with the real gdl_policy_plan (runtime/gdl_policy.c, linked as
 * it is), fed the way gdl_master.c feeds it. It runs queue traces and
 * compares what the cluster did with an ideal pool (below).
 *
 * What is modelled, after the code it stands for:
 * - Masters (gdl_master.c): a tick every --interval (each host at its own
 *   phase) polls every server and scales on the old figures; each poll's
 *   answer scales on fresh ones once the polls sent with it (within 100 ms)
 *   have answered, or 100 ms after they were sent; a 20 ms re-scale while
 *   processes start (SETTLE_MS); idle stops wait for a poll sent after the process went
 *   idle (plan.poll, at most every 50 ms); the spawn budget (--max_spawn_rate
 *   tokens, a poll when it refills). The view is pool_view()'s: queue and
 *   running summed over the servers whose last poll answered (and that
 *   answered every poll sent 100 ms ago or more), workers the
 *   most a server lists, peers and rank from the server listing the most
 *   peers, the oldest answered poll as asked_ms and the oldest showing a
 *   queue as queue_asked_ms; the wall clock is the simulation's.
 * - Observer (gdl_observer.c): one poll in flight per server, "again" when
 *   asked meanwhile; a server sees the poll one network delay after it was
 *   sent and the master the answer one later. Workers are the processes
 *   registered there. Peers are the other hosts seen, within the last
 *   interval, with a process or an armed sentinel registered on that
 *   server; rank counts those before this host in id order. A server that
 *   went away is polled again after 0.1 s doubling to 0.25 s
 *   (gdl_upstream.c).
 * - Sentinels (gdl_sentinel.c): armed on every server while plan.wake
 *   holds; gearmand sends an armed, sleeping sentinel one NOOP when a job
 *   arrives (at once if one waits when it arms); the master then polls that
 *   server, and the others whose last figures, 50 ms old or more, showed
 *   jobs waiting or running, or workers; re-arming waits 25 ms after a wake (HOLDOFF_MS).
 * - Processes (gdl_child.c, libgearman's worker): ready --start_ms after the
 *   fork; a ready or finished process asks each server in turn for a job
 *   (GRAB_JOB, one round trip each, in the order of --server, as
 *   libgearman's grab loop does), then sleeps on all of them (PRE_SLEEP); a
 *   job arriving wakes sleeping processes (the first to reach the job takes
 *   it; three are woken, standing for gearmand's NOOP to every sleeper).
 *   gearmand counts a job running once it sent it; the process's slot says
 *   busy once the assignment reached it. A stopped process exits at once.
 * - A server going away: its queued jobs are submitted again by their
 *   clients to another server (gdlua.client's failover); the jobs it had
 *   handed out run to their end, their results cannot be sent, and their
 *   clients submit them again too (they run twice); each process that
 *   held one backs off 0.1 s and reconnects. Sleeping processes drop the
 *   connection silently. When it comes back, its admin connection and
 *   sentinel reconnect with the back-off above, and the master tells its
 *   processes to connect again (SIGUSR2, gdl_master.c); a sweep also
 *   connects to servers it is not connected to.
 *
 * The ideal: one pool of H x max processes with no polls, no network and
 * no shares: a job that finds no idle process starts one at once (ready
 * after the same --start_ms), an idle process stops after max_idle_time,
 * down to H x min. Per trace the simulator reports the processes started
 * beyond the ideal's starts, the peak against the ideal's peak, the mean
 * time a job spends from its submission to its result against the ideal's
 * (how fast the backlog drains), and oscillation: starts followed, on the
 * same host, by an idle stop within max_idle_time (a start the host did
 * not need: it had a process about to be stopped as idle).
 *
 * Deterministic: one seeded generator, events ordered by time then by
 * the order they were scheduled.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdlua.h"

typedef int64_t us_t;

#define MS             1000LL
#define SEC            1000000LL
#define SETTLE_US      (20 * MS)
#define IDLE_POLL_GAP  (50 * MS)
#define HOLDOFF_US     (25 * MS)
#define REFRESH_US     (50 * MS)  /* on a wake, older figures showing jobs are asked again */
#define ROUND_US       (100 * MS) /* an answer waits this long at most for the polls sent with it */
#define BACKOFF_US     (100 * MS) /* a child whose server went away */
#define WOKEN_PER_JOB  3
#define SERVERS_MAX    32
#define HOST_PROCS_MAX GDL_PROCS_MAX

/* ---- parameters ---- */

typedef struct {
    int hosts, servers;
    int min, max;
    int max_idle_s, interval_s, spawn_rate;
    double start_ms; /* fork to serving */
    double delay_ms; /* one way, host to job server */
    double jitter;   /* each hop takes delay x (1 + U(0, jitter)) */
    uint64_t seed;
    bool quick, verbose;
} params_t;

static params_t P = {.hosts = 100,
                     .servers = 10,
                     .min = 0,
                     .max = 10,
                     .max_idle_s = 10,
                     .interval_s = 1,
                     .spawn_rate = 50,
                     .start_ms = 10,
                     .delay_ms = 0.25,
                     .jitter = 0.5,
                     .seed = 1};

/* ---- random numbers (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rnd01(void)
{
    return (rnd() >> 11) * (1.0 / 9007199254740992.0);
}

static int rnd_below(int n)
{
    return (int)(rnd01() * n);
}

static double rnd_exp(double mean)
{
    return -mean * log(1.0 - rnd01());
}

/* One network hop. */
static us_t hop(void)
{
    return (us_t)(P.delay_ms * MS * (1.0 + P.jitter * rnd01())) + 1;
}

/* ---- events ---- */

enum {
    EV_ARRIVE,      /* a: job; b: server */
    EV_VISIT,       /* a process's GRAB_JOB reaches server b; a: proc */
    EV_ASSIGNED,    /* a: proc, b: job */
    EV_DONE,        /* a: proc */
    EV_READY,       /* a: proc */
    EV_BACK,        /* a: proc, its back-off over */
    EV_EXIT,        /* a: proc */
    EV_TICK,        /* a: host */
    EV_POLL_SERVER, /* a: host, b: server */
    EV_POLL_ANSWER, /* a: host, b: server */
    EV_ARM_SERVER,  /* a: host, b: server (the want rides in host state) */
    EV_NOOP_HOST,   /* a: host, b: server */
    EV_HOLDOFF,     /* a: host, b: server */
    EV_RESCALE,     /* a: host */
    EV_IDLE_POLL,   /* a: host */
    EV_BUDGET,      /* a: host */
    EV_ROUND,       /* a: host: the polls awaited are late */
    EV_ADMIN_RETRY, /* a: host, b: server */
    EV_SERVER_DOWN, /* b: server */
    EV_SERVER_UP,   /* b: server */
    EV_GENERATE,    /* the trace's next arrivals */
    EV_SAMPLE,      /* --verbose: the cluster's figures */
};

typedef struct {
    us_t t;
    uint64_t seq;
    int type, a, b;
} event_t;

static event_t *heap;
static size_t nheap, heap_cap;
static uint64_t seq;
static us_t now;
static uint64_t nevents;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return p;
}

static bool ev_before(const event_t *x, const event_t *y)
{
    return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

static void at(us_t t, int type, int a, int b)
{
    size_t i;

    if (nheap == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 4096;
        heap = xrealloc(heap, heap_cap * sizeof(event_t));
    }
    i = nheap++;
    heap[i] = (event_t){t, seq++, type, a, b};
    while (i > 0 && ev_before(&heap[i], &heap[(i - 1) / 2])) {
        event_t tmp = heap[i];
        heap[i] = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static event_t pop(void)
{
    event_t top = heap[0];
    size_t i = 0;

    heap[0] = heap[--nheap];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < nheap && ev_before(&heap[l], &heap[m]))
            m = l;
        if (r < nheap && ev_before(&heap[r], &heap[m]))
            m = r;
        if (m == i)
            break;
        event_t tmp = heap[i];
        heap[i] = heap[m];
        heap[m] = tmp;
        i = m;
    }
    return top;
}

/* ---- the world ---- */

typedef struct {
    us_t submitted; /* by its client, first */
    us_t dur;
    us_t done; /* its result reached the client; 0: not yet */
    int runs;
    int burst;     /* which burst it belongs to, -1: none */
    us_t rerun_at; /* submitted again after its result was lost; 0: never */
} job_t;

typedef struct {
    bool up;
    int *q;
    size_t qhead, qtail, qcap;
    int running;
    int registered;  /* processes connected */
    int *host_procs; /* per host: its processes connected here */
    bool *armed;     /* per host: its sentinel registered here */
    bool *sleeping;  /* per host: its sentinel waits for a NOOP */
    bool *present;   /* per host: host_procs > 0 || armed */
    uint64_t polls;
} server_t;

enum { P_STARTING, P_IDLE, P_BUSY, P_GONE };

typedef struct {
    int host, state;
    us_t since;
    bool stopping;
    bool sleeping, sweeping, backoff;
    int sleep_idx; /* in the sleepers array, or -1 */
    int job, job_server;
    uint32_t connected; /* bit per server */
    bool lost_result;   /* its job's server went away meanwhile */
} proc_t;

typedef struct {
    bool valid;
    int queue, running, workers, peers, rank;
    us_t asked;
} figures_t;

enum { A_READY, A_BUSY, A_DOWN };

typedef struct {
    int id; /* its order among the hosts (the client id hash) */
    int *procs;
    int nprocs;
    us_t *seen; /* per server and host: when this host's observer last saw that one serve there */
    figures_t obs[SERVERS_MAX], pending[SERVERS_MAX];
    int admin[SERVERS_MAX], admin_failures[SERVERS_MAX];
    bool again[SERVERS_MAX], was_down[SERVERS_MAX];
    us_t asked[SERVERS_MAX];
    /* sentinel, per server */
    bool s_up[SERVERS_MAX], s_armed[SERVERS_MAX], s_fired[SERVERS_MAX], s_holdoff[SERVERS_MAX];
    bool s_arming_want[SERVERS_MAX];
    us_t s_woken[SERVERS_MAX];
    bool want;
    us_t queued_since_ms, spare_since_ms; /* what the policy remembers */
    int spare_min;
    double tokens;
    us_t tokens_at;
    bool rescale_pending, idle_poll_pending, budget_pending;
    us_t round_due; /* when EV_ROUND scales anyway; 0: not waiting */
    us_t idle_poll_at;
    /* oscillation: unmatched start times, a ring */
    us_t *starts_at;
    int starts_head, starts_n;
    uint64_t started, stopped, oscillations;
} host_t;

static server_t *servers;
static host_t *hosts;
static proc_t *procs;
static int nprocs, procs_cap;
static job_t *jobs;
static int njobs, jobs_cap;
static int *sleepers;
static int nsleepers;
static int alive_procs, peak_procs;
static uint64_t total_starts, total_stops;
static int undelivered; /* jobs whose result has not reached the client */

/* ---- servers ---- */

static void presence(int srv, int h)
{
    server_t *s = &servers[srv];
    bool p = s->host_procs[h] > 0 || s->armed[h];

    if (p != s->present[h]) {
        s->present[h] = p;
    }
}

static size_t qlen(const server_t *s)
{
    return s->qtail - s->qhead;
}

static void qpush(server_t *s, int job)
{
    if (s->qtail == s->qcap) {
        if (s->qhead > 0) {
            memmove(s->q, s->q + s->qhead, qlen(s) * sizeof(int));
            s->qtail -= s->qhead;
            s->qhead = 0;
        } else {
            s->qcap = s->qcap ? s->qcap * 2 : 1024;
            s->q = xrealloc(s->q, s->qcap * sizeof(int));
        }
    }
    s->q[s->qtail++] = job;
}

static void qpush_front(server_t *s, int job)
{
    if (s->qhead == 0) {
        qpush(s, job); /* room at the end, then rotate it to the front */
        memmove(s->q + s->qhead + 1, s->q + s->qhead, (qlen(s) - 1) * sizeof(int));
        s->q[s->qhead] = job;
        return;
    }
    s->q[--s->qhead] = job;
}

static void connect_proc(int p, int srv)
{
    proc_t *pr = &procs[p];

    if (pr->connected & (1u << srv) || !servers[srv].up)
        return;
    pr->connected |= 1u << srv;
    servers[srv].registered++;
    servers[srv].host_procs[pr->host]++;
    presence(srv, pr->host);
}

static void disconnect_proc(int p, int srv)
{
    proc_t *pr = &procs[p];

    if (!(pr->connected & (1u << srv)))
        return;
    pr->connected &= ~(1u << srv);
    servers[srv].registered--;
    servers[srv].host_procs[pr->host]--;
    presence(srv, pr->host);
}

/* ---- processes ---- */

static void sleeper_remove(int p)
{
    int i = procs[p].sleep_idx;

    if (i < 0)
        return;
    sleepers[i] = sleepers[--nsleepers];
    procs[sleepers[i]].sleep_idx = i;
    procs[p].sleep_idx = -1;
    procs[p].sleeping = false;
}

static void sweep(int p, us_t start)
{
    procs[p].sweeping = true;
    at(start + hop(), EV_VISIT, p, 0);
}

static void count_procs(int delta)
{
    alive_procs += delta;
    if (alive_procs > peak_procs)
        peak_procs = alive_procs;
}

static void scale(int h, bool fresh);

static int spawn_proc(int h)
{
    host_t *ho = &hosts[h];
    int p;

    if (nprocs == procs_cap) {
        procs_cap = procs_cap ? procs_cap * 2 : 1024;
        procs = xrealloc(procs, procs_cap * sizeof(proc_t));
    }
    p = nprocs++;
    procs[p] = (proc_t){.host = h, .state = P_STARTING, .since = now, .sleep_idx = -1, .job = -1};
    ho->procs[ho->nprocs++] = p;
    count_procs(1);
    ho->started++;
    total_starts++;
    ho->starts_at[(ho->starts_head + ho->starts_n) % HOST_PROCS_MAX] = now;
    if (ho->starts_n < HOST_PROCS_MAX)
        ho->starts_n++;
    else
        ho->starts_head = (ho->starts_head + 1) % HOST_PROCS_MAX;
    at(now + (us_t)(P.start_ms * MS * (1.0 + P.jitter * rnd01())), EV_READY, p, 0);
    return p;
}

static void stop_proc(int p, bool idle)
{
    proc_t *pr = &procs[p];
    host_t *ho = &hosts[pr->host];

    pr->stopping = true;
    ho->stopped++;
    total_stops++;
    if (idle) {
        /* a start on this host shortly before: it did not need it */
        while (ho->starts_n > 0 && ho->starts_at[ho->starts_head] <= now - P.max_idle_s * SEC) {
            ho->starts_head = (ho->starts_head + 1) % HOST_PROCS_MAX;
            ho->starts_n--;
        }
        if (ho->starts_n > 0) {
            ho->oscillations++;
            ho->starts_head = (ho->starts_head + 1) % HOST_PROCS_MAX;
            ho->starts_n--;
        }
    }
    if (pr->state != P_BUSY)
        at(now + 1 * MS, EV_EXIT, p, 0);
}

static void proc_exit(int p)
{
    proc_t *pr = &procs[p];
    host_t *ho = &hosts[pr->host];

    if (pr->state == P_GONE)
        return;
    sleeper_remove(p);
    for (int s = 0; s < P.servers; s++)
        disconnect_proc(p, s);
    pr->state = P_GONE;
    count_procs(-1);
    for (int i = 0; i < ho->nprocs; i++)
        if (ho->procs[i] == p) {
            ho->procs[i] = ho->procs[--ho->nprocs];
            break;
        }
    scale(pr->host, false);
}

/* The process is ready, or done with a job: it asks the servers in turn. */
static void become_idle(int p)
{
    proc_t *pr = &procs[p];

    pr->state = P_IDLE;
    pr->since = now;
    pr->job = -1;
    if (pr->stopping) {
        at(now + 1 * MS, EV_EXIT, p, 0);
        return;
    }
    sweep(p, now);
}

/* Its GRAB_JOB reaches server srv (in its order of the servers). */
static void visit(int p, int srv)
{
    proc_t *pr = &procs[p];
    server_t *s;

    if (pr->state == P_GONE || pr->stopping || !pr->sweeping)
        return;
    if (srv == P.servers) {
        /* PRE_SLEEP everywhere; a queued job answers it with a NOOP */
        for (int k = 0; k < P.servers; k++)
            if ((pr->connected & (1u << k)) && qlen(&servers[k]) > 0) {
                sweep(p, now + hop());
                return;
            }
        pr->sweeping = false;
        pr->sleeping = true;
        pr->sleep_idx = nsleepers;
        sleepers[nsleepers++] = p;
        return;
    }
    s = &servers[srv];
    if (!s->up) {
        at(now + 2 * hop(), EV_VISIT, p, srv + 1); /* refused */
        return;
    }
    connect_proc(p, srv);
    if (qlen(s) > 0) {
        int job = s->q[s->qhead++];

        s->running++;
        pr->sweeping = false;
        pr->job = job;
        pr->job_server = srv;
        at(now + hop(), EV_ASSIGNED, p, job);
        return;
    }
    at(now + 2 * hop(), EV_VISIT, p, srv + 1);
}

static void wake_for(int srv);

static void assigned(int p, int job)
{
    proc_t *pr = &procs[p];

    if (pr->state == P_GONE || pr->stopping) {
        /* it exits without running it: gearmand hands the job on */
        server_t *s = &servers[pr->job_server];
        if (s->up) {
            s->running--;
            qpush_front(s, job);
            wake_for(pr->job_server);
        }
        pr->job = -1;
        if (pr->state != P_GONE)
            at(now + 1 * MS, EV_EXIT, p, 0);
        return;
    }
    pr->state = P_BUSY;
    pr->since = now;
    pr->lost_result = false;
    jobs[job].runs++;
    at(now + jobs[job].dur, EV_DONE, p, 0);
}

static void arrive(int job, int srv);

static void done(int p)
{
    proc_t *pr = &procs[p];
    int job = pr->job;

    if (pr->lost_result) {
        /* WORK_COMPLETE cannot reach its server: the worker fails, backs
         * off and starts again with a fresh libgearman worker */
        pr->state = P_IDLE;
        pr->since = now;
        pr->job = -1;
        pr->backoff = true;
        if (pr->stopping)
            at(now + 1 * MS, EV_EXIT, p, 0);
        else
            at(now + BACKOFF_US, EV_BACK, p, 0);
        return;
    }
    servers[pr->job_server].running--;
    if (jobs[job].done == 0) {
        jobs[job].done = now + hop();
        undelivered--;
    }
    become_idle(p);
}

static void back(int p)
{
    procs[p].backoff = false;
    if (procs[p].state == P_GONE)
        return;
    for (int s = 0; s < P.servers; s++)
        connect_proc(p, s);
    become_idle(p);
}

/* The master asks its processes to connect again (a server is back). */
static void reconnect_all(int h)
{
    host_t *ho = &hosts[h];

    for (int i = 0; i < ho->nprocs; i++) {
        int p = ho->procs[i];
        proc_t *pr = &procs[p];

        if (pr->state == P_STARTING || pr->stopping || pr->backoff)
            continue;
        for (int s = 0; s < P.servers; s++)
            connect_proc(p, s);
        if (pr->sleeping) {
            sleeper_remove(p);
            sweep(p, now + hop());
        }
    }
}

/* ---- the master: observer, sentinel, scale ---- */

static void poll_server(int h, int srv)
{
    host_t *ho = &hosts[h];

    if (ho->admin[srv] == A_READY) {
        ho->admin[srv] = A_BUSY;
        ho->asked[srv] = now;
        at(now + hop(), EV_POLL_SERVER, h, srv);
    } else if (ho->admin[srv] == A_BUSY) {
        ho->again[srv] = true;
    }
}

static void poll_all(int h)
{
    for (int s = 0; s < P.servers; s++)
        poll_server(h, s);
}

static void poll_at_server(int h, int srv)
{
    server_t *s = &servers[srv];
    host_t *ho = &hosts[h];
    figures_t *f = &ho->pending[srv];

    if (!s->up)
        return; /* the connection is gone: EV_SERVER_DOWN took care */
    s->polls++;
    f->queue = (int)qlen(s);
    f->running = s->running;
    f->workers = s->registered;
    /* the peers seen serving on this server within the last interval */
    f->peers = f->rank = 0;
    for (int k = 0; k < P.hosts; k++) {
        us_t *seen = &ho->seen[(size_t)srv * P.hosts + k];

        if (k == h)
            continue;
        if (s->present[k])
            *seen = now;
        if (*seen && now - *seen <= P.interval_s * SEC) {
            f->peers++;
            f->rank += hosts[k].id < ho->id;
        }
    }
    f->asked = ho->asked[srv];
    f->valid = true;
    at(now + hop(), EV_POLL_ANSWER, h, srv);
}

static void poll_answer(int h, int srv)
{
    host_t *ho = &hosts[h];

    if (ho->admin[srv] != A_BUSY)
        return;
    ho->obs[srv] = ho->pending[srv];
    ho->admin[srv] = A_READY;
    if (ho->was_down[srv]) {
        /* answering again: the master tells its processes to connect */
        ho->was_down[srv] = false;
        ho->admin_failures[srv] = 0;
        reconnect_all(h);
    }
    /* the figures of polls sent together are used together */
    us_t sent = 0;
    for (int k = 0; k < P.servers; k++)
        if (k != srv && ho->admin[k] == A_BUSY && ho->asked[k] >= now - ROUND_US && (sent == 0 || ho->asked[k] < sent))
            sent = ho->asked[k];
    if (sent > 0) {
        if (ho->round_due == 0) {
            ho->round_due = sent + ROUND_US;
            at(ho->round_due, EV_ROUND, h, 0);
        }
    } else {
        ho->round_due = 0;
        scale(h, true);
    }
    if (ho->again[srv] && ho->admin[srv] == A_READY) {
        ho->again[srv] = false;
        poll_server(h, srv);
    }
}

static void arm(int h, int srv)
{
    host_t *ho = &hosts[h];

    ho->s_armed[srv] = ho->want;
    ho->s_fired[srv] = false;
    ho->s_arming_want[srv] = ho->want;
    at(now + hop(), EV_ARM_SERVER, h, srv);
}

static void rearm(int h, int srv)
{
    host_t *ho = &hosts[h];

    if (!ho->s_up[srv])
        return;
    if (!ho->s_fired[srv] && ho->want == ho->s_armed[srv])
        return;
    if (ho->s_fired[srv] && now < ho->s_woken[srv] + HOLDOFF_US) {
        if (!ho->s_holdoff[srv]) {
            ho->s_holdoff[srv] = true;
            at(ho->s_woken[srv] + HOLDOFF_US, EV_HOLDOFF, h, srv);
        }
        return;
    }
    arm(h, srv);
}

static void arm_at_server(int h, int srv)
{
    server_t *s = &servers[srv];
    bool want = hosts[h].s_arming_want[srv];

    if (!s->up)
        return;
    s->armed[h] = want;
    s->sleeping[h] = want;
    presence(srv, h);
    if (want && qlen(s) > 0) {
        s->sleeping[h] = false;
        at(now + hop(), EV_NOOP_HOST, h, srv);
    }
}

static void noop_host(int h, int srv)
{
    host_t *ho = &hosts[h];

    if (ho->s_fired[srv] || !ho->s_up[srv])
        return;
    ho->s_fired[srv] = true;
    ho->s_woken[srv] = now;
    poll_server(h, srv);
    for (int k = 0; k < P.servers; k++)
        if (k != srv && ho->obs[k].valid &&
            (ho->obs[k].queue > 0 || ho->obs[k].running > 0 || ho->obs[k].workers > 0) &&
            now - ho->obs[k].asked >= REFRESH_US)
            poll_server(h, k);
}

static int take_budget(int h, int want)
{
    host_t *ho = &hosts[h];
    int got;

    ho->tokens += (double)(now - ho->tokens_at) * P.spawn_rate / SEC;
    if (ho->tokens > P.spawn_rate)
        ho->tokens = P.spawn_rate;
    ho->tokens_at = now;
    got = want < (int)ho->tokens ? want : (int)ho->tokens;
    ho->tokens -= got;
    if (got < want && !ho->budget_pending) {
        ho->budget_pending = true;
        at(now + SEC / P.spawn_rate + 1 * MS, EV_BUDGET, h, 0);
    }
    return got;
}

static void scale(int h, bool fresh)
{
    static gdl_proc_view_t views[HOST_PROCS_MAX];
    static gdl_stop_t stops[HOST_PROCS_MAX];
    host_t *ho = &hosts[h];
    gdl_scene_t sc = {.now_ms = now / MS, .asked_ms = INT64_MAX, .fresh = fresh, .wall_ms = now / MS};
    gdl_pool_view_t v = {.min = P.min, .max = P.max, .max_idle_ms = P.max_idle_s * 1000LL, .procs = views};
    gdl_plan_t plan = {.stops = stops};
    int n;

    sc.interval_ms = P.interval_s * 1000;
    for (int s = 0; s < P.servers; s++) {
        const figures_t *o = &ho->obs[s];

        if (!o->valid || (ho->admin[s] == A_BUSY && ho->asked[s] < now - ROUND_US))
            continue; /* overdue: its figures do not count */
        if (o->asked / MS < sc.asked_ms)
            sc.asked_ms = o->asked / MS;
        v.queue += o->queue;
        v.running += o->running;
        if (o->workers > v.workers)
            v.workers = o->workers;
        if (o->queue > 0 && (v.queue_asked_ms == 0 || o->asked / MS < v.queue_asked_ms))
            v.queue_asked_ms = o->asked / MS;
        if (o->peers > v.peers) {
            v.peers = o->peers;
            v.rank = o->rank;
        }
    }
    for (int i = 0; i < ho->nprocs; i++) {
        const proc_t *pr = &procs[ho->procs[i]];

        if (pr->stopping)
            continue;
        views[v.nprocs] = (gdl_proc_view_t){.slot = ho->procs[i],
                                            .state = pr->state == P_STARTING ? GDL_SLOT_STARTING
                                                     : pr->state == P_BUSY   ? GDL_SLOT_BUSY
                                                                             : GDL_SLOT_IDLE,
                                            .since_ms = pr->since / MS};
        v.nprocs++;
    }
    v.queued_since_ms = ho->queued_since_ms;
    v.spare_since_ms = ho->spare_since_ms;
    v.spare_min = ho->spare_min;
    gdl_policy_plan(&sc, &v, &plan);
    ho->queued_since_ms = plan.queued_since_ms;
    ho->spare_since_ms = plan.spare_since_ms;
    ho->spare_min = plan.spare_min;
    n = take_budget(h, plan.starts);
    for (int k = 0; k < n && ho->nprocs < HOST_PROCS_MAX; k++)
        spawn_proc(h);
    for (int k = 0; k < plan.nstops; k++)
        stop_proc(plan.stops[k].slot, plan.stops[k].why[0] == 'i');
    if (plan.poll && !ho->idle_poll_pending) {
        if (now >= ho->idle_poll_at + IDLE_POLL_GAP) {
            ho->idle_poll_at = now;
            poll_all(h);
        } else {
            ho->idle_poll_pending = true;
            at(ho->idle_poll_at + IDLE_POLL_GAP, EV_IDLE_POLL, h, 0);
        }
    }
    ho->want = plan.wake;
    for (int s = 0; s < P.servers; s++)
        rearm(h, s);
    if (plan.settling && !ho->rescale_pending) {
        ho->rescale_pending = true;
        at(now + SETTLE_US, EV_RESCALE, h, 0);
    }
}

/* ---- job servers going away and coming back ---- */

static int other_server(int srv)
{
    for (int tries = 0; tries < 4 * P.servers; tries++) {
        int k = rnd_below(P.servers);
        if (k != srv && servers[k].up)
            return k;
    }
    for (int k = 0; k < P.servers; k++)
        if (servers[k].up)
            return k;
    return -1;
}

static void server_down(int srv)
{
    server_t *s = &servers[srv];

    s->up = false;
    /* queued jobs: their clients lose the connection and submit again */
    while (qlen(s) > 0) {
        int job = s->q[s->qhead++];
        at(now + 2 * hop(), EV_ARRIVE, job, other_server(srv));
    }
    s->running = 0;
    for (int p = 0; p < nprocs; p++) {
        proc_t *pr = &procs[p];

        if (pr->state == P_GONE)
            continue;
        if (pr->job >= 0 && pr->job_server == srv && !pr->lost_result) {
            /* it runs on, its result lost; the client submits it again */
            pr->lost_result = true;
            jobs[pr->job].rerun_at = now;
            at(now + 2 * hop(), EV_ARRIVE, pr->job, other_server(srv));
        }
        disconnect_proc(p, srv);
    }
    for (int h = 0; h < P.hosts; h++) {
        host_t *ho = &hosts[h];

        s->armed[h] = s->sleeping[h] = false;
        presence(srv, h);
        ho->obs[srv].valid = false;
        ho->admin[srv] = A_DOWN;
        ho->admin_failures[srv] = 1;
        ho->again[srv] = false;
        ho->s_up[srv] = false;
        at(now + hop() + 100 * MS, EV_ADMIN_RETRY, h, srv);
    }
}

/* The admin connection and the sentinel try again (gdl_upstream.c: 0.1 s
 * doubling to 0.25 s); a refused connection costs a round trip. */
static void admin_retry(int h, int srv)
{
    host_t *ho = &hosts[h];

    if (!servers[srv].up) {
        int f = ++ho->admin_failures[srv];
        us_t d = f == 1 ? 100 * MS : f == 2 ? 200 * MS : 250 * MS;
        at(now + 2 * hop() + d, EV_ADMIN_RETRY, h, srv);
        return;
    }
    ho->admin[srv] = A_READY;
    ho->was_down[srv] = true;
    ho->s_up[srv] = true;
    ho->s_armed[srv] = false;
    ho->s_fired[srv] = true; /* arm whatever is wanted, at once */
    ho->s_woken[srv] = 0;
    poll_server(h, srv);
    rearm(h, srv);
}

/* ---- traces ---- */

typedef struct {
    const char *name, *what;
    int seconds, quick_seconds;
    /* arrivals per second at time t (steady, diurnal), or bursts */
    double rate, peak;
    double dur_s;
    bool diurnal, exponential;
    int burst_jobs, burst_every_s;
    int away_server; /* -1: none */
    bool check_oscillation;
} trace_t;

static const trace_t traces[] = {
    {"steady", "Poisson 800 jobs/s of 0.5 s", 120, 40, 800, 0, 0.5, false, false, 0, 0, -1, true},
    {"steady-exp", "Poisson 800 jobs/s, exponential, mean 0.5 s", 120, 40, 800, 0, 0.5, false, true, 0, 0, -1, true},
    {"bursts", "1500 jobs of 1 s every 30 s", 120, 60, 0, 0, 1.0, false, false, 1500, 30, -1, false},
    {"small-bursts", "200 jobs of 1 s every 15 s", 120, 45, 0, 0, 1.0, false, false, 200, 15, -1, false},
    {"diurnal", "0 to 1600 jobs/s and back (1 - cos), 0.4 s", 240, 60, 0, 1600, 0.4, true, false, 0, 0, -1, false},
    {"server-away", "steady 800 jobs/s of 0.5 s; server 3 away from 1/3 to 2/3", 120, 45, 800, 0, 0.5, false, false, 0,
     0, 3, false},
};
#define NTRACES (sizeof(traces) / sizeof(traces[0]))

static const trace_t *T;
static us_t trace_end, gen_at;
static int nbursts;

static int new_job(us_t dur, int burst)
{
    if (njobs == jobs_cap) {
        jobs_cap = jobs_cap ? jobs_cap * 2 : 65536;
        jobs = xrealloc(jobs, jobs_cap * sizeof(job_t));
    }
    jobs[njobs] = (job_t){.submitted = now, .dur = dur, .burst = burst};
    undelivered++;
    return njobs++;
}

static us_t job_dur(void)
{
    double d = T->exponential ? rnd_exp(T->dur_s) : T->dur_s;

    return (us_t)(d * SEC) + 1;
}

static int client_server(void)
{
    int k = rnd_below(P.servers);

    return servers[k].up ? k : other_server(k);
}

/* A job is queued on srv: gearmand wakes its sleepers. */
static void wake_for(int srv)
{
    server_t *s = &servers[srv];
    int woken = 0;

    for (int h = 0; h < P.hosts; h++)
        if (s->sleeping[h]) {
            s->sleeping[h] = false;
            at(now + hop(), EV_NOOP_HOST, h, srv);
        }
    /* sleepers connected here are woken; the first to reach it takes it */
    for (int tries = 0; tries < 4 * WOKEN_PER_JOB && woken < WOKEN_PER_JOB && nsleepers > 0; tries++) {
        int p = sleepers[rnd_below(nsleepers)];

        if (!(procs[p].connected & (1u << srv)))
            continue;
        sleeper_remove(p);
        sweep(p, now + hop());
        woken++;
    }
}

static void arrive(int job, int srv)
{
    if (srv < 0)
        return; /* no server up: the client gives up */
    if (!servers[srv].up) {
        at(now + 2 * hop(), EV_ARRIVE, job, other_server(srv));
        return;
    }
    qpush(&servers[srv], job);
    wake_for(srv);
}

/* The traces are written for 100 hosts: other sizes get the same load a host. */
static double scale_of(void)
{
    return P.hosts / 100.0;
}

/* Schedules the next second of arrivals (or a burst). */
static void generate(void)
{
    us_t t0 = gen_at, t1 = gen_at + SEC;

    if (t0 >= trace_end)
        return;
    if (T->burst_jobs) {
        if ((t0 / SEC) % T->burst_every_s == 1) {
            for (int i = 0; i < (int)(T->burst_jobs * scale_of() + 0.5); i++)
                at(t0 + rnd_below(1000), EV_ARRIVE, -1 - nbursts, 0);
            nbursts++;
        }
    } else {
        for (double t = (double)t0;;) {
            double mid = t / SEC, rate = T->rate * scale_of();
            if (T->diurnal)
                rate = T->peak * scale_of() * (1 - cos(2 * M_PI * mid / (trace_end / (double)SEC))) / 2;
            t += rate > 0 ? rnd_exp(SEC / rate) : (double)SEC;
            if (t >= t1)
                break;
            at((us_t)t, EV_ARRIVE, -1000000000, 0);
        }
    }
    gen_at = t1;
    at(t1, EV_GENERATE, 0, 0);
}

/* ---- the ideal pool ---- */

typedef struct {
    uint64_t starts;
    int peak;
    double mean_s;
    double burst_s[64];
} ideal_t;

/* The trace's jobs (submission, duration), in submission order; a job
 * whose result a server lost is run twice, the second time as RERUN (the
 * ideal runs it again too, and its time counts once, from the first). */
typedef struct {
    us_t t, dur;
    int burst;
} demand_t;

#define RERUN (-2)

static int by_time(const void *a, const void *b)
{
    us_t x = ((const demand_t *)a)->t, y = ((const demand_t *)b)->t;

    return x < y ? -1 : x > y;
}

/* A global pool, as gearmand would run it with processes at hand: a job
 * goes to a free process (any of them, as gearmand wakes them all), else
 * starts one while below the cap (ready after the same start time), else
 * waits for the first to be free; a process idle for max_idle_time stops,
 * down to the floor. Jobs in submission order. */
static ideal_t ideal(const demand_t *d, int n)
{
    ideal_t r = {0};
    int cap = P.hosts * P.max, floor_ = P.hosts * P.min, nbusy = 0, nidle = 0;
    us_t *busy = xrealloc(NULL, sizeof(us_t) * (cap + 1)), *idle = xrealloc(NULL, sizeof(us_t) * (cap + 1));
    us_t max_idle = P.max_idle_s * SEC, start = (us_t)(P.start_ms * MS);
    us_t burst_end[64] = {0}, burst_start[64] = {0};
    double sum = 0;
    int counted = 0;

    for (int i = 0; i < floor_; i++)
        idle[nidle++] = 0;
    for (int i = 0; i < n; i++) {
        us_t t = d[i].t, end;

        for (int k = 0; k < nbusy;)
            if (busy[k] <= t) {
                idle[nidle++] = busy[k];
                busy[k] = busy[--nbusy];
            } else {
                k++;
            }
        for (int k = 0; k < nidle && nidle + nbusy > floor_;)
            if (idle[k] + max_idle < t)
                idle[k] = idle[--nidle];
            else
                k++;
        if (nidle > 0) {
            int k = rnd_below(nidle);
            idle[k] = idle[--nidle];
            end = t + d[i].dur;
        } else if (nbusy < cap) {
            r.starts++;
            end = t + start + d[i].dur;
        } else {
            int first = 0;
            for (int k = 1; k < nbusy; k++)
                if (busy[k] < busy[first])
                    first = k;
            end = busy[first] + d[i].dur;
            busy[first] = busy[--nbusy];
        }
        busy[nbusy++] = end;
        if (nbusy + nidle > r.peak)
            r.peak = nbusy + nidle;
        if (d[i].burst != RERUN) {
            sum += (double)(end - t) / SEC;
            counted++;
        }
        if (d[i].burst >= 0 && d[i].burst < 64) {
            if (burst_start[d[i].burst] == 0 || t < burst_start[d[i].burst])
                burst_start[d[i].burst] = t;
            if (end > burst_end[d[i].burst])
                burst_end[d[i].burst] = end;
        }
    }
    r.mean_s = counted ? sum / counted : 0;
    for (int b = 0; b < 64; b++)
        r.burst_s[b] = burst_end[b] ? (double)(burst_end[b] - burst_start[b]) / SEC : 0;
    free(busy);
    free(idle);
    return r;
}

/* ---- running a trace ---- */

typedef struct {
    const char *name;
    uint64_t starts, ideal_starts;
    int peak, ideal_peak;
    double mean_s, ideal_mean_s;
    double burst_ratio; /* worst burst's drain against the ideal's */
    uint64_t oscillations;
    double polls_per_server_s;
    int jobs, unserved;
    uint64_t twice;
    bool check_oscillation;
    double secs;
} result_t;

static void reset_world(void)
{
    for (int s = 0; s < P.servers; s++) {
        free(servers[s].q);
        free(servers[s].host_procs);
        free(servers[s].armed);
        free(servers[s].sleeping);
        free(servers[s].present);
    }
    for (int h = 0; h < P.hosts; h++) {
        free(hosts[h].procs);
        free(hosts[h].starts_at);
        free(hosts[h].seen);
    }
    free(servers);
    free(hosts);
    free(procs);
    free(jobs);
    free(sleepers);
    free(heap);
    servers = NULL;
    hosts = NULL;
    procs = NULL;
    jobs = NULL;
    heap = NULL;
    nprocs = procs_cap = njobs = jobs_cap = nsleepers = 0;
    nheap = heap_cap = 0;
    alive_procs = peak_procs = 0;
    total_starts = total_stops = 0;
    undelivered = 0;
    nbursts = 0;
    now = 0;
    seq = 0;
    nevents = 0;
}

static result_t run_trace(const trace_t *tr)
{
    result_t res = {.name = tr->name, .check_oscillation = tr->check_oscillation};
    int secs = P.quick ? tr->quick_seconds : tr->seconds;
    int *order;

    T = tr;
    rng_state = P.seed * 1000003ULL + (uint64_t)(tr - traces);
    servers = xrealloc(NULL, sizeof(server_t) * P.servers);
    hosts = xrealloc(NULL, sizeof(host_t) * P.hosts);
    sleepers = xrealloc(NULL, sizeof(int) * (size_t)P.hosts * HOST_PROCS_MAX);
    for (int s = 0; s < P.servers; s++) {
        servers[s] = (server_t){.up = true};
        servers[s].host_procs = calloc(P.hosts, sizeof(int));
        servers[s].armed = calloc(P.hosts, sizeof(bool));
        servers[s].sleeping = calloc(P.hosts, sizeof(bool));
        servers[s].present = calloc(P.hosts, sizeof(bool));
    }
    order = xrealloc(NULL, sizeof(int) * P.hosts);
    for (int h = 0; h < P.hosts; h++)
        order[h] = h;
    for (int h = P.hosts - 1; h > 0; h--) {
        int k = rnd_below(h + 1), tmp = order[h];
        order[h] = order[k];
        order[k] = tmp;
    }
    for (int h = 0; h < P.hosts; h++) {
        host_t *ho = &hosts[h];

        memset(ho, 0, sizeof(*ho));
        ho->id = order[h];
        ho->procs = xrealloc(NULL, sizeof(int) * HOST_PROCS_MAX);
        ho->starts_at = xrealloc(NULL, sizeof(us_t) * HOST_PROCS_MAX);
        ho->seen = calloc((size_t)P.servers * P.hosts, sizeof(us_t));
        ho->tokens = P.spawn_rate;
        for (int s = 0; s < P.servers; s++) {
            ho->s_up[s] = true;
            ho->s_fired[s] = true; /* arm whatever is wanted, at once */
            ho->admin[s] = A_READY;
        }
        at((us_t)(rnd01() * P.interval_s * SEC), EV_TICK, h, 0);
        at(1, EV_RESCALE, h, 0);
        ho->rescale_pending = true;
    }
    free(order);
    trace_end = (us_t)secs * SEC;
    gen_at = 0;
    at(0, EV_GENERATE, 0, 0);
    if (P.verbose)
        at(0, EV_SAMPLE, 0, 0);
    if (tr->away_server >= 0 && tr->away_server < P.servers) {
        at(trace_end / 3, EV_SERVER_DOWN, 0, tr->away_server);
        at(2 * trace_end / 3, EV_SERVER_UP, 0, tr->away_server);
    }
    /* run until every job is answered (or well past the trace's end) */
    while (nheap > 0) {
        event_t e = pop();

        now = e.t;
        nevents++;
        if (now > trace_end + 120 * SEC)
            break;
        if (now > trace_end + 2 * P.max_idle_s * SEC && undelivered == 0)
            break;
        switch (e.type) {
        case EV_ARRIVE:
            if (e.a < 0) {
                int burst = e.a == -1000000000 ? -1 : -1 - e.a;
                e.a = new_job(job_dur(), burst);
                e.b = client_server();
            }
            arrive(e.a, e.b);
            break;
        case EV_VISIT:
            visit(e.a, e.b);
            break;
        case EV_ASSIGNED:
            assigned(e.a, e.b);
            break;
        case EV_DONE:
            done(e.a);
            break;
        case EV_READY:
            if (procs[e.a].state == P_STARTING) {
                for (int s = 0; s < P.servers; s++)
                    connect_proc(e.a, s);
                become_idle(e.a);
            }
            break;
        case EV_BACK:
            back(e.a);
            break;
        case EV_EXIT:
            proc_exit(e.a);
            break;
        case EV_TICK:
            poll_all(e.a);
            scale(e.a, false);
            at(now + P.interval_s * SEC, EV_TICK, e.a, 0);
            break;
        case EV_POLL_SERVER:
            poll_at_server(e.a, e.b);
            break;
        case EV_POLL_ANSWER:
            poll_answer(e.a, e.b);
            break;
        case EV_ARM_SERVER:
            arm_at_server(e.a, e.b);
            break;
        case EV_NOOP_HOST:
            noop_host(e.a, e.b);
            break;
        case EV_HOLDOFF:
            hosts[e.a].s_holdoff[e.b] = false;
            rearm(e.a, e.b);
            break;
        case EV_RESCALE:
            hosts[e.a].rescale_pending = false;
            scale(e.a, false);
            break;
        case EV_IDLE_POLL:
            hosts[e.a].idle_poll_pending = false;
            hosts[e.a].idle_poll_at = now;
            poll_all(e.a);
            break;
        case EV_ROUND:
            if (hosts[e.a].round_due == now) {
                hosts[e.a].round_due = 0;
                scale(e.a, true);
            }
            break;
        case EV_BUDGET:
            hosts[e.a].budget_pending = false;
            poll_all(e.a);
            break;
        case EV_ADMIN_RETRY:
            admin_retry(e.a, e.b);
            break;
        case EV_SERVER_DOWN:
            server_down(e.b);
            break;
        case EV_SERVER_UP:
            servers[e.b].up = true;
            break;
        case EV_GENERATE:
            generate();
            break;
        case EV_SAMPLE: {
            int st = 0, idle = 0, busy = 0, q = 0, run = 0;
            for (int p = 0; p < nprocs; p++) {
                st += procs[p].state == P_STARTING;
                idle += procs[p].state == P_IDLE;
                busy += procs[p].state == P_BUSY;
            }
            for (int k = 0; k < P.servers; k++) {
                q += (int)qlen(&servers[k]);
                run += servers[k].running;
            }
            fprintf(stderr, "sample %.2f procs %d starting %d idle %d busy %d queue %d running %d registered",
                    now / 1e6, alive_procs, st, idle, busy, q, run);
            for (int k = 0; k < P.servers; k++)
                fprintf(stderr, " %d/%d/%zu", servers[k].registered, servers[k].running, qlen(&servers[k]));
            fprintf(stderr, "\n");
            if (now < trace_end)
                at(now + 50 * MS, EV_SAMPLE, 0, 0);
            break;
        }
        }
    }
    {
        demand_t *d = xrealloc(NULL, sizeof(demand_t) * (2 * njobs + 1));
        int nd = njobs;
        double sum = 0, worst = 0;
        us_t bstart[64] = {0}, bend[64] = {0};
        ideal_t id;

        for (int j = 0; j < njobs; j++) {
            d[j] = (demand_t){jobs[j].submitted, jobs[j].dur, jobs[j].burst};
            if (jobs[j].rerun_at)
                d[nd++] = (demand_t){jobs[j].rerun_at, jobs[j].dur, RERUN};
            if (jobs[j].done == 0) {
                res.unserved++;
                continue;
            }
            if (jobs[j].runs > 1)
                res.twice++;
            sum += (double)(jobs[j].done - jobs[j].submitted) / SEC;
            if (jobs[j].burst >= 0 && jobs[j].burst < 64) {
                int b = jobs[j].burst;
                if (bstart[b] == 0 || jobs[j].submitted < bstart[b])
                    bstart[b] = jobs[j].submitted;
                if (jobs[j].done > bend[b])
                    bend[b] = jobs[j].done;
            }
        }
        qsort(d, nd, sizeof(demand_t), by_time);
        id = ideal(d, nd);
        free(d);
        for (int b = 0; b < 64; b++)
            if (bend[b] && id.burst_s[b] > 0) {
                double r = (double)(bend[b] - bstart[b]) / SEC / id.burst_s[b];
                if (r > worst)
                    worst = r;
            }
        res.jobs = njobs;
        res.starts = total_starts;
        res.ideal_starts = id.starts;
        res.peak = peak_procs;
        res.ideal_peak = id.peak;
        res.mean_s = njobs - res.unserved > 0 ? sum / (njobs - res.unserved) : 0;
        res.ideal_mean_s = id.mean_s;
        res.burst_ratio = worst;
        for (int h = 0; h < P.hosts; h++)
            res.oscillations += hosts[h].oscillations;
        {
            uint64_t polls = 0;
            for (int s = 0; s < P.servers; s++)
                polls += servers[s].polls;
            res.polls_per_server_s = (double)polls / P.servers / secs;
        }
        res.secs = secs;
    }
    if (P.verbose)
        fprintf(stderr, "%s: %" PRIu64 " events, %d jobs\n", tr->name, nevents, njobs);
    reset_world();
    return res;
}

/* ---- the report ---- */

#define GOAL_OVER  0.05
#define GOAL_DRAIN 1.2

static double over_of(const result_t *r)
{
    return r->ideal_starts ? ((double)r->starts - (double)r->ideal_starts) / (double)r->ideal_starts : 0;
}

static double peak_over_of(const result_t *r)
{
    return r->ideal_peak ? ((double)r->peak - r->ideal_peak) / r->ideal_peak : 0;
}

static double drain_of(const result_t *r)
{
    double d = r->ideal_mean_s > 0 ? r->mean_s / r->ideal_mean_s : 1;

    return r->burst_ratio > d ? r->burst_ratio : d;
}

static bool passes(const result_t *r)
{
    return over_of(r) <= GOAL_OVER && peak_over_of(r) <= GOAL_OVER && drain_of(r) <= GOAL_DRAIN &&
           (!r->check_oscillation || r->oscillations == 0) && r->unserved == 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gdlua_sim [--quick] [--check] [--trace NAME] [--hosts N] [--servers N] [--min N] [--max N]\n"
            "           [--max_idle_time S] [--interval S] [--max_spawn_rate N] [--start_ms MS]\n"
            "           [--delay_ms MS] [--jitter F] [--seed N] [--verbose]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    bool check = false, all_pass = true;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

#define NUM(name, field, conv)  \
    if (strcmp(a, name) == 0) { \
        if (v == NULL)          \
            usage();            \
        P.field = conv(v);      \
        i++;                    \
        continue;               \
    }
        NUM("--hosts", hosts, atoi)
        NUM("--servers", servers, atoi)
        NUM("--min", min, atoi)
        NUM("--max", max, atoi)
        NUM("--max_idle_time", max_idle_s, atoi)
        NUM("--interval", interval_s, atoi)
        NUM("--max_spawn_rate", spawn_rate, atoi)
        NUM("--start_ms", start_ms, atof)
        NUM("--delay_ms", delay_ms, atof)
        NUM("--jitter", jitter, atof)
        NUM("--seed", seed, (uint64_t)atoll)
#undef NUM
        if (strcmp(a, "--quick") == 0)
            P.quick = true;
        else if (strcmp(a, "--check") == 0)
            check = true;
        else if (strcmp(a, "--verbose") == 0)
            P.verbose = true;
        else if (strcmp(a, "--trace") == 0 && v)
            only = argv[++i];
        else
            usage();
    }
    if (P.hosts < 1 || P.servers < 1 || P.servers > SERVERS_MAX || P.max < P.min || P.max > HOST_PROCS_MAX ||
        P.interval_s < 1 || P.spawn_rate < 1 || P.max_idle_s < 0 || P.delay_ms < 0 || P.jitter < 0)
        usage();

    printf("%d hosts x %d job servers; per host min %d, max %d, max_idle_time %d s, interval %d s, max_spawn_rate %d, "
           "start %.3g ms; network delay %.3g ms one way (+0..%.0f %%); seed %" PRIu64 "%s\n\n",
           P.hosts, P.servers, P.min, P.max, P.max_idle_s, P.interval_s, P.spawn_rate, P.start_ms, P.delay_ms,
           P.jitter * 100, P.seed, P.quick ? "; quick" : "");
    printf("| trace | jobs | starts (ideal) | over | peak (ideal) | drain (ideal) | drain ratio | oscillation | "
           "polls/s/server | run twice | goals |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t t = 0; t < NTRACES; t++) {
        result_t r;
        bool ok;

        if (only && strcmp(only, traces[t].name) != 0)
            continue;
        r = run_trace(&traces[t]);
        ok = passes(&r);
        all_pass &= ok;
        printf("| %s | %d | %" PRIu64 " (%" PRIu64 ") | %+.1f %% | %d (%d) | %.3f s (%.3f) | %.2f | %" PRIu64
               " | %.0f | %" PRIu64 " | %s |\n",
               r.name, r.jobs, r.starts, r.ideal_starts, 100 * over_of(&r), r.peak, r.ideal_peak, r.mean_s,
               r.ideal_mean_s, drain_of(&r), r.oscillations, r.polls_per_server_s, r.twice, ok ? "met" : "**missed**");
        if (r.unserved)
            printf("|   %s: %d job(s) never answered | | | | | | | | | | |\n", r.name, r.unserved);
        fflush(stdout);
    }
    printf("\ngoals: over-provisioning (starts and peak) <= %.0f %% of the ideal, drain ratio <= %.1f (mean time from "
           "submission to result, and each burst's, against the ideal pool), no oscillation on the steady traces\n",
           GOAL_OVER * 100, GOAL_DRAIN);
    return check && !all_pass ? 1 : 0;
}
