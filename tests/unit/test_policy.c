/* test_policy.c: the scaling policy as a pure function of numbers. */
#include "gdlua.h"
#include "unit.h"

static int starts(int min, int max, int processes, int busy, int queue, int peers)
{
    gdl_demand_t d = {min, max, processes, busy, queue, peers, 0, false};
    return gdl_policy_starts(&d);
}

static int ranked(int queue, int peers, int rank, bool stale)
{
    gdl_demand_t d = {0, 100, 0, 0, queue, peers, rank, stale};
    return gdl_policy_starts(&d);
}

static int stops(int min, int max, int processes, int queue, int64_t max_idle_ms, const int64_t *idle, int nidle,
                 int *out)
{
    gdl_demand_t d = {min, max, processes, processes - nidle, queue, 0, 0, false};
    return gdl_policy_stops(&d, max_idle_ms, idle, nidle, out);
}

int main(void)
{
    int out[16];

    /* up */
    CHECK_INT(starts(0, 5, 0, 0, 0, 0), 0);   /* no work, min 0 */
    CHECK_INT(starts(0, 5, 0, 0, 1, 0), 1);   /* from zero */
    CHECK_INT(starts(0, 5, 0, 0, 20, 0), 5);  /* a burst: max at once, never more */
    CHECK_INT(starts(2, 5, 0, 0, 0, 0), 2);   /* min kept */
    CHECK_INT(starts(2, 5, 2, 2, 1, 0), 1);   /* all busy, one waiting */
    CHECK_INT(starts(2, 5, 3, 1, 1, 0), 0);   /* an idle one will take it */
    CHECK_INT(starts(2, 5, 3, 1, 4, 0), 2);   /* two idle, four waiting: two more */
    CHECK_INT(starts(1, 5, 5, 5, 9, 0), 0);   /* at max */
    CHECK_INT(starts(1, 3, 5, 0, 0, 0), 0);   /* above max: nothing to start */
    CHECK_INT(starts(0, 10, 0, 0, 10, 1), 5); /* two instances split ten */
    CHECK_INT(starts(0, 10, 0, 0, 10, 2), 4); /* three: ceil(10/3) */
    CHECK_INT(starts(0, 10, 0, 0, 1, 3), 1);  /* a share is at least one */
    CHECK_INT(starts(0, 10, 0, 0, 5, -1), 5); /* bad peer count: treated as none */

    /* ranks split a queue exactly: every instance seeing the same queue
     * takes its part, none twice */
    for (int q = 0; q < 40; q++)
        for (int peers = 0; peers < 5; peers++) {
            int sum = 0;
            for (int r = 0; r <= peers; r++)
                sum += ranked(q, peers, r, false);
            CHECK_INT(sum, q);
        }
    CHECK_INT(ranked(1, 1, 0, false), 1);
    CHECK_INT(ranked(1, 1, 1, false), 0);
    CHECK_INT(ranked(1, 1, 1, true), 1); /* a stale queue: everyone helps */
    CHECK_INT(ranked(10, 1, 1, false), 5);
    CHECK_INT(ranked(7, 2, 2, false), 2);
    CHECK_INT(ranked(5, 1, 7, false), 3); /* a rank out of range counts as 0 */

    /* down */
    {
        int64_t idle[] = {1000, 30000, 20000};
        /* min 0: everything idle past 10 s stops, longest first */
        CHECK_INT(stops(0, 5, 3, 0, 10000, idle, 3, out), 2);
        CHECK_INT(out[0], 1);
        CHECK_INT(out[1], 2);
        /* min 2 keeps two of three: only the longest idle goes */
        CHECK_INT(stops(2, 5, 3, 0, 10000, idle, 3, out), 1);
        CHECK_INT(out[0], 1);
        /* work waiting: nobody stops for idleness */
        CHECK_INT(stops(0, 5, 3, 4, 10000, idle, 3, out), 0);
        /* max_idle_time 0: all idle ones stop at once */
        CHECK_INT(stops(0, 5, 3, 0, 0, idle, 3, out), 3);
    }
    {
        /* busy processes are never candidates: 4 processes, only 1 idle */
        int64_t idle[] = {60000};
        CHECK_INT(stops(0, 5, 4, 0, 1000, idle, 1, out), 1);
        CHECK_INT(out[0], 0);
    }
    {
        /* max lowered to 1 with 4 processes, 2 idle (recently): both go,
         * the 2 busy ones are left for later */
        int64_t idle[] = {10, 20};
        CHECK_INT(stops(0, 1, 4, 5, 60000, idle, 2, out), 2);
        CHECK_INT(out[0], 1);
        CHECK_INT(out[1], 0);
    }
    {
        /* above max by one, queue waiting: only the surplus goes */
        int64_t idle[] = {10, 20, 30};
        CHECK_INT(stops(0, 2, 3, 5, 60000, idle, 3, out), 1);
        CHECK_INT(out[0], 2);
    }
    {
        /* nothing idle: nothing to stop */
        CHECK_INT(stops(0, 5, 3, 0, 0, NULL, 0, out), 0);
    }
    UNIT_END();
}
