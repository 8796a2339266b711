/*
 * gdl_policy.c: the scaling policy, one pure function from what the
 * master sees of a pool (its processes' states, the queues the observer
 * polled) to a plan: how many processes to start and why, which to stop
 * and why, whether one more job should wake the master. No clock, no
 * I/O: the master snapshots, calls gdl_policy_plan and carries it out,
 * so every rule here is unit-tested as numbers (tests/unit/test_policy.c).
 *
 * Counting: a busy process counts as busy only if it took its job before
 * the oldest poll that shows jobs waiting was sent; one that took it
 * after may have taken it from that very queue, so it counts once, as
 * available (neither busy nor idle, and never stopped). Polls showing
 * nothing waiting cannot hold its job in their queue. Starting processes
 * count as available.
 *
 * Up: the waiting jobs (summed over servers) that other instances' free
 * workers will not take are split among the n gdlua instances serving
 * the pool. Free workers are those the servers list for it, less the
 * jobs running and this instance's own free processes: gearmand hands a
 * job to whichever worker asks first, so a job an idle process elsewhere
 * is about to take needs no process here (at scale, each arrival would
 * otherwise start one on a busy host while idle ones wait on another).
 * They are not trusted once jobs have waited a whole interval with
 * nothing running anywhere (a host cut off leaves its idle workers listed
 * until gearmand drops the connections). The instance of rank r takes
 * floor((queue + n - 1 - r) / n), so instances that see the same queue
 * take exactly all of it between them, none twice. Ranks rotate with the
 * number of jobs running (the same figure for every instance polling at
 * once), so work arriving one job at a time goes to each instance in
 * turn, and with the wall clock, one place an interval, so a backlog an
 * instance cannot take (it is stuck or at its max) moves on to the next
 * within an interval. The pool wants its busy processes plus its share,
 * within [min, max]. Starts for waiting work need fresh poll figures:
 * between polls the queue is stale while new processes grab jobs, and
 * counting both would start too many. Keeping min needs no poll.
 *
 * Down: only idle processes stop, longest idle first, once idle for
 * max_idle_time, since before the poll that shows nothing waiting was
 * sent; never below min; above max (lowered at run time) idle surplus
 * stops at once.
 *
 * Spare: gearmand wakes every sleeping worker for each job and the first
 * to ask gets it, so under steady load the jobs spread over all the
 * processes, and a process the load does not need is idle often but
 * never for a whole max_idle_time: held for good. So the policy also
 * counts the cluster's spare slots, from the poll figures: the workers
 * the servers list, less this instance's retiring ones, times the
 * concurrency, less the jobs running and waiting. The fewest spare slots
 * the polls showed while there were some (the window) is what the load
 * did not need all that while; once the window is max_idle_time long,
 * half its spare processes are split among the instances by rank as a
 * backlog is (the rank not turned: each takes its share of the same
 * figure), and this instance stops its share of idle ones, each idle
 * since before the poll was sent. Half, a window at a time: the load's
 * next peak may need some of them (stopping all of them restarted 2-8 %
 * more processes than the ideal pool in tests/sim), and the surplus still
 * goes within a few windows. Any stop here starts the window again from
 * the polls sent after it: until then the figures count the processes
 * stopped.
 *
 * Wake: the sentinels wake the master for a pool whose processes are all
 * busy (none idle or starting) and below max, when one more job would
 * call for a process here were this instance first in rank; the fresh
 * poll that follows decides, by rank.
 *
 * Job slots: a pool with a concurrency C above 1 holds up to C jobs per
 * process, so the counting above is in jobs, not processes: a process's
 * jobs are busy or available as its state's time says, its free slots
 * count as idle ones do (free here: not to be served by a start), the
 * job servers' workers count C slots each, and the pool wants
 * ceil((busy jobs + its share of the queue) / C) processes. Only
 * processes holding no job are idle, and may stop. With C = 1 every
 * figure is the one-job-at-a-time one.
 *
 * Crash loops (gdl_policy_crash_loop): a death we did not ask for feeds
 * the pool's back-off only when the process crashed by itself (an exit,
 * or a signal such as SIGSEGV or SIGABRT: not SIGKILL, SIGTERM, SIGINT
 * or SIGHUP, which come from outside), lived less than GDL_STABLE_MS,
 * and either served no job (the module crashes at start, or a job kills
 * every process that takes it) or its pool's processes have died at
 * least as often as they served jobs in the current window. Any other
 * death (an operator's kill -9, the OOM killer) is replaced at once and
 * ends the streak.
 */
#include <stdio.h>
#include <stdlib.h>

#include "gdlua.h"

typedef struct {
    int min, max, processes, busy, queue, peers, rank;
    int concurrency; /* job slots per process (1 or more) */
} demand_t;

/* busy and queue are jobs; the rest processes. */
static int wanted_starts(const demand_t *d)
{
    int peers = d->peers < 0 ? 0 : d->peers;
    int rank = d->rank < 0 || d->rank > peers ? 0 : d->rank;
    int share = d->queue > 0 ? (d->queue + peers - rank) / (peers + 1) : 0;
    int64_t jobs = (int64_t)d->busy + share;
    int want = (int)((jobs + d->concurrency - 1) / d->concurrency);

    if (want < d->min)
        want = d->min;
    if (want > d->max)
        want = d->max;
    return want > d->processes ? want - d->processes : 0;
}

/* Updates the spare window from fresh poll figures (jobs: running and
 * waiting over the servers) and returns how many idle processes this
 * instance should stop for it now. */
static int spare_stops(const gdl_scene_t *sc, const gdl_pool_view_t *p, int conc, int64_t jobs, gdl_plan_t *plan)
{
    int64_t listed = (int64_t)p->workers - (p->retiring > 0 ? p->retiring : 0);
    int64_t spare = (listed > 0 ? listed : 0) * conc - jobs;
    int peers = p->peers > 0 ? p->peers : 0, rank = p->rank > 0 && p->rank <= peers ? p->rank : 0, procs;

    plan->spare_since_ms = p->spare_since_ms;
    plan->spare_min = p->spare_min;
    if (!sc->fresh || sc->asked_ms == INT64_MAX || (p->spare_since_ms > 0 && sc->asked_ms < p->spare_since_ms))
        return 0; /* no figures, or some sent before the window began */
    if (spare <= 0) {
        plan->spare_since_ms = 0;
        plan->spare_min = 0;
        return 0;
    }
    if (spare > INT32_MAX)
        spare = INT32_MAX;
    if (plan->spare_since_ms == 0) {
        plan->spare_since_ms = sc->asked_ms;
        plan->spare_min = (int)spare;
    } else if (plan->spare_min < 0 || spare < plan->spare_min)
        plan->spare_min = (int)spare;
    if (sc->now_ms - plan->spare_since_ms < p->max_idle_ms)
        return 0;
    procs = plan->spare_min / conc / 2; /* half of them, each window */
    return (procs + peers - rank) / (peers + 1);
}

static int by_idle_desc(const void *a, const void *b)
{
    int64_t x = ((const gdl_stop_t *)a)->idle_ms, y = ((const gdl_stop_t *)b)->idle_ms;

    return x < y ? 1 : x > y ? -1 : 0;
}

void gdl_policy_plan(const gdl_scene_t *sc, const gdl_pool_view_t *p, gdl_plan_t *plan)
{
    int conc = p->concurrency > 1 ? p->concurrency : 1;
    demand_t d = {.min = p->min, .max = p->max, .processes = p->nprocs, .concurrency = conc};
    int nidle = 0, busy_after = 0, busy_now = 0, allowed, surplus, spare, peers = p->peers > 0 ? p->peers : 0;
    int64_t free_slots = 0; /* of this instance's processes, starting ones left out */
    int busy_procs = 0;     /* busy since before the poll */
    int running = p->running > 0 ? p->running : 0, queue = p->queue > 0 ? p->queue : 0;
    int64_t stale_ms = sc->interval_ms > 1000 ? sc->interval_ms : 1000, free_others, turn;
    int64_t asked = p->queue_asked_ms > 0 ? p->queue_asked_ms : queue > 0 ? sc->asked_ms : INT64_MAX;
    bool stale;

    for (int i = 0; i < p->nprocs; i++) {
        const gdl_proc_view_t *v = &p->procs[i];
        int cap = v->capacity > 1 ? v->capacity : 1;
        int jobs = cap == 1 ? v->state == GDL_SLOT_BUSY : v->jobs < 0 ? 0 : v->jobs > cap ? cap : v->jobs;

        if (v->state == GDL_SLOT_BUSY) {
            busy_now += jobs;
            free_slots += cap - jobs;
            if (v->since_ms < asked) {
                d.busy += jobs;
                busy_procs++;
            } else
                busy_after += jobs;
        } else if (v->state == GDL_SLOT_IDLE) {
            free_slots += cap;
            plan->stops[nidle++] = (gdl_stop_t){.slot = v->slot, .idle_ms = sc->now_ms - v->since_ms};
        }
    }
    plan->settling = d.processes > busy_procs + nidle;

    plan->queued_since_ms = queue == 0 ? 0 : p->queued_since_ms ? p->queued_since_ms : sc->now_ms;
    stale = queue > 0 && sc->now_ms - plan->queued_since_ms >= stale_ms;
    free_others = (int64_t)p->workers * conc - running - free_slots - busy_after;
    if (free_others < 0 || (stale && running == 0))
        free_others = 0;
    d.queue = queue > free_others ? queue - (int)free_others : 0;
    d.peers = peers;
    turn = sc->wall_ms > 0 ? sc->wall_ms / stale_ms : 0;
    d.rank = (int)(((int64_t)(p->rank > 0 ? p->rank : 0) + running + turn % (peers + 1)) % (peers + 1));

    plan->starts = 0;
    plan->start_why[0] = '\0';
    if (!p->held) {
        demand_t now = d;
        if (!sc->fresh)
            now.queue = 0;
        plan->starts = wanted_starts(&now);
    }
    if (plan->starts > 0) {
        if (d.processes < d.min && d.queue == 0)
            snprintf(plan->start_why, sizeof(plan->start_why), "min %d", d.min);
        else if (d.queue < queue)
            snprintf(plan->start_why, sizeof(plan->start_why), "queue %d (%d left to free workers), busy %d%s", d.queue,
                     queue - d.queue, d.busy, peers ? ", shared" : "");
        else
            snprintf(plan->start_why, sizeof(plan->start_why), "queue %d, busy %d%s", d.queue, d.busy,
                     peers ? ", shared" : "");
        d.processes += plan->starts;
        plan->settling = true;
    }

    spare = spare_stops(sc, p, conc, running + queue, plan);
    if (plan->starts > 0)
        spare = 0;
    allowed = d.processes - d.min; /* stops that keep min */
    surplus = d.processes - d.max; /* stops needed to honour max */
    if (nidle)
        qsort(plan->stops, nidle, sizeof(gdl_stop_t), by_idle_desc);
    plan->nstops = 0;
    plan->poll = false;
    for (int k = 0; k < nidle && plan->nstops < allowed; k++) {
        gdl_stop_t *s = &plan->stops[plan->nstops];
        /* Idle since before the poll was sent: one idle only since then
         * may be taking the very job that poll saw assigned (its slot
         * turns busy once it has read it), so "nothing waits" is not yet
         * known for it. */
        bool before_poll = sc->now_ms - plan->stops[k].idle_ms < sc->asked_ms;
        bool idle_enough = queue == 0 && plan->stops[k].idle_ms >= p->max_idle_ms;
        bool expired = idle_enough && before_poll;
        bool spared = before_poll && plan->nstops < spare;

        plan->poll |= idle_enough && !expired;

        if (!expired && !spared && plan->nstops >= surplus)
            break; /* sorted: no later one has idled longer */
        *s = plan->stops[k];
        if (d.processes > d.max)
            snprintf(s->why, sizeof(s->why), "above max %d", d.max);
        else if (expired)
            snprintf(s->why, sizeof(s->why), "idle %lld s", (long long)(s->idle_ms / 1000));
        else
            snprintf(s->why, sizeof(s->why), "spare %d for %lld s", plan->spare_min / conc,
                     (long long)((sc->now_ms - plan->spare_since_ms) / 1000));
        d.processes--;
        plan->nstops++;
    }
    if (plan->nstops > 0) { /* the window starts again from polls sent after the stops */
        plan->spare_since_ms = sc->now_ms;
        plan->spare_min = -1;
    }

    /* Wake us when one more job would call for a process here, were this
     * instance first in rank (on the wake, rank decides): its processes
     * all busy now, whenever they took their jobs. */
    d.busy = busy_now;
    d.queue++;
    d.rank = 0;
    plan->wake = !p->held && d.processes < d.max && wanted_starts(&d) > 0;
}

bool gdl_policy_crash_loop(const gdl_death_t *d)
{
    if (d->external || d->lived_ms >= GDL_STABLE_MS)
        return false;
    return d->served == 0 || d->window_deaths >= d->window_served;
}
