/*
 * gdl_policy.c: the scaling policy, as pure functions of numbers so it
 * can be read and unit-tested apart from the processes it steers.
 *
 * Up: a job's waiting jobs (summed over servers) are split among the n
 * gdlua instances serving it: the instance of rank r takes
 * floor((queue + n - 1 - r) / n), so instances that see the same queue
 * take exactly all of it between them, none twice. A queue that has
 * waited a whole interval is taken by every instance's rounded-up share.
 * This instance wants enough processes for its busy ones plus its share,
 * within [min, max]. Idle and starting processes count as already there.
 * Down: only idle processes stop, longest idle first, once idle for
 * max_idle_time and while nothing waits; never below min; above max
 * (lowered at run time) idle surplus stops at once.
 */
#include <stdlib.h>

#include "gdlua.h"

int gdl_policy_starts(const gdl_demand_t *d)
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

static const int64_t *sort_idle;

static int by_idle_desc(const void *a, const void *b)
{
    int64_t x = sort_idle[*(const int *)a], y = sort_idle[*(const int *)b];

    return x < y ? 1 : x > y ? -1 : 0;
}

int gdl_policy_stops(const gdl_demand_t *d, int64_t max_idle_ms, const int64_t *idle_ms, int nidle, int *out)
{
    int allowed = d->processes - d->min; /* stops that keep min */
    int surplus = d->processes - d->max; /* stops needed to honour max */
    int n = 0;

    for (int i = 0; i < nidle; i++)
        out[i] = i;
    sort_idle = idle_ms;
    if (nidle)
        qsort(out, nidle, sizeof(int), by_idle_desc);
    for (int k = 0; k < nidle && n < allowed; k++) {
        bool expired = d->queue == 0 && idle_ms[out[k]] >= max_idle_ms;
        if (!expired && n >= surplus)
            break; /* sorted: no later one has idled longer */
        out[n++] = out[k];
    }
    return n;
}
