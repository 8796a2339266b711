/*
 * gdl_policy.c: the scaling policy, one pure function from what the
 * master sees of a pool (its processes' states, the queues the observer
 * polled) to a plan: how many processes to start and why, which to stop
 * and why, whether one more job should wake the master. No clock, no
 * I/O: the master snapshots, calls gdl_policy_plan and carries it out,
 * so every rule here is unit-tested as numbers (tests/unit/test_policy.c).
 *
 * Counting: a busy process counts as busy only if it took its job before
 * the poll behind the queue figure was sent; one that took it after took
 * it from that very queue, so it counts once, as available (neither busy
 * nor idle, and never stopped). Starting processes count as available.
 *
 * Up: a pool's waiting jobs (summed over servers) are split among the n
 * gdlua instances serving it: the instance of rank r takes
 * floor((queue + n - 1 - r) / n), so instances that see the same queue
 * take exactly all of it between them, none twice. Ranks rotate with the
 * number of jobs running (the same figure for every instance polling at
 * once), so work arriving one job at a time goes to each instance in
 * turn. A queue that has waited a whole interval is stale and taken by
 * every instance's rounded-up share, so a stuck peer cannot hold work
 * back. The pool wants its busy processes plus its share, within
 * [min, max]. Starts for waiting work need fresh poll figures: between
 * polls the queue is stale while new processes grab jobs, and counting
 * both would start too many. Keeping min needs no poll.
 *
 * Down: only idle processes stop, longest idle first, once idle for
 * max_idle_time, since before the poll that shows nothing waiting was
 * sent; never below min; above max (lowered at run time) idle surplus
 * stops at once.
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
    bool stale;
} demand_t;

static int wanted_starts(const demand_t *d)
{
    int peers = d->peers < 0 ? 0 : d->peers;
    int rank = d->stale || d->rank < 0 || d->rank > peers ? 0 : d->rank;
    int share = d->queue > 0 ? (d->queue + peers - rank) / (peers + 1) : 0;
    int want = d->busy + share;

    if (want < d->min)
        want = d->min;
    if (want > d->max)
        want = d->max;
    return want > d->processes ? want - d->processes : 0;
}

static int by_idle_desc(const void *a, const void *b)
{
    int64_t x = ((const gdl_stop_t *)a)->idle_ms, y = ((const gdl_stop_t *)b)->idle_ms;

    return x < y ? 1 : x > y ? -1 : 0;
}

void gdl_policy_plan(const gdl_scene_t *sc, const gdl_pool_view_t *p, gdl_plan_t *plan)
{
    demand_t d = {.min = p->min, .max = p->max, .processes = p->nprocs, .queue = p->queue};
    int nidle = 0, allowed, surplus, peers = p->peers > 0 ? p->peers : 0;
    int64_t stale_ms = sc->interval_ms > 1000 ? sc->interval_ms : 1000;

    for (int i = 0; i < p->nprocs; i++) {
        const gdl_proc_view_t *v = &p->procs[i];

        if (v->state == GDL_SLOT_BUSY && v->since_ms < sc->asked_ms)
            d.busy++;
        else if (v->state == GDL_SLOT_IDLE)
            plan->stops[nidle++] = (gdl_stop_t){.slot = v->slot, .idle_ms = sc->now_ms - v->since_ms};
    }
    plan->settling = d.processes > d.busy + nidle;

    plan->queued_since_ms = d.queue == 0 ? 0 : p->queued_since_ms ? p->queued_since_ms : sc->now_ms;
    d.stale = d.queue > 0 && sc->now_ms - plan->queued_since_ms >= stale_ms;
    d.peers = peers;
    d.rank = ((p->rank > 0 ? p->rank : 0) + (p->running > 0 ? p->running : 0)) % (peers + 1);

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
        else
            snprintf(plan->start_why, sizeof(plan->start_why), "queue %d, busy %d%s", d.queue, d.busy,
                     peers ? ", shared" : "");
        d.processes += plan->starts;
        plan->settling = true;
    }

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
        bool idle_enough = d.queue == 0 && plan->stops[k].idle_ms >= p->max_idle_ms;
        bool expired = idle_enough && sc->now_ms - plan->stops[k].idle_ms < sc->asked_ms;

        plan->poll |= idle_enough && !expired;

        if (!expired && plan->nstops >= surplus)
            break; /* sorted: no later one has idled longer */
        *s = plan->stops[k];
        if (d.processes > d.max)
            snprintf(s->why, sizeof(s->why), "above max %d", d.max);
        else
            snprintf(s->why, sizeof(s->why), "idle %lld s", (long long)(s->idle_ms / 1000));
        d.processes--;
        plan->nstops++;
    }

    /* Wake us when one more job would call for a process here, were this
     * instance first in rank (on the wake, rank decides). */
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
