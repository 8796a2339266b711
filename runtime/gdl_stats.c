/*
 * gdl_stats.c: counters of jobs run, per process (in its shared-memory
 * slot) and per job (the master folds in the counters of each process
 * that exits). Durations go into a log-scale histogram, 4 buckets per
 * octave of microseconds, so a percentile is known within 19 %.
 */
#include <string.h>

#include "gdlua.h"

int gdl_hist_bucket(uint64_t us)
{
    int msb, b;

    if (us < 4)
        return (int)us;
    msb = 63 - __builtin_clzll(us);
    b = 4 * msb + (int)((us >> (msb - 2)) & 3) - 4;
    return b < GDL_HIST_BUCKETS ? b : GDL_HIST_BUCKETS - 1;
}

/* The smallest duration above every duration in the bucket. */
uint64_t gdl_hist_upper_us(int bucket)
{
    int msb, q;

    if (bucket < 4)
        return (uint64_t)bucket + 1;
    msb = (bucket + 4) / 4;
    q = (bucket + 4) % 4;
    if (msb >= 62)
        return UINT64_MAX;
    return (uint64_t)(5 + q) << (msb - 2);
}

/* The p-th percentile (0 < p <= 1) of the durations, as its bucket's
 * upper bound; 0 when no job ran. */
uint64_t gdl_counters_percentile_us(const gdl_counters_t *c, double p)
{
    uint64_t total = 0, seen = 0, want;

    for (int b = 0; b < GDL_HIST_BUCKETS; b++)
        total += c->hist[b];
    if (total == 0)
        return 0;
    want = (uint64_t)(p * (double)total + 0.999999);
    if (want < 1)
        want = 1;
    for (int b = 0; b < GDL_HIST_BUCKETS; b++) {
        seen += c->hist[b];
        if (seen >= want)
            return gdl_hist_upper_us(b);
    }
    return gdl_hist_upper_us(GDL_HIST_BUCKETS - 1);
}

void gdl_counters_add(gdl_counters_t *to, const gdl_counters_t *from)
{
    to->done += from->done;
    to->failed += from->failed;
    to->busy_us += from->busy_us;
    for (int b = 0; b < GDL_HIST_BUCKETS; b++)
        to->hist[b] += from->hist[b];
    if (from->last_run > to->last_run)
        to->last_run = from->last_run;
    if (from->last_error > to->last_error || (from->last_error && from->last_error == to->last_error)) {
        to->last_error = from->last_error;
        memcpy(to->error, from->error, sizeof(to->error));
    }
}
