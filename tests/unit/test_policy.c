/* test_policy.c: the scaling policy (gdl_policy_plan) as a pure function:
 * a pool's view in, a plan out, no clock and no processes. */
#include "gdlua.h"
#include "unit.h"

#define NOW   1000000 /* the scene's clock, ms */
#define ASKED (NOW - 100)

/* A pool described by counts: busy processes (before the poll), busy
 * ones that took their job after the poll, starting ones, and idle ones
 * with their idle times (ms). With a concurrency, each busy process
 * holds `holding` jobs (1 when 0). */
typedef struct {
    int min, max;
    int busy, busy_after, starting;
    const int64_t *idle;
    int nidle;
    int64_t max_idle_ms;
    int queue, running, workers, peers, rank;
    int64_t queued_since_ms, queue_asked_ms, wall_ms;
    int64_t spare_since_ms;
    int spare_min, retiring;
    int interval_ms;
    bool held, not_fresh;
    int concurrency, holding;
} spec_t;

static gdl_stop_t stops[64];

static gdl_plan_t run(spec_t s)
{
    static gdl_proc_view_t procs[64];
    gdl_scene_t sc = {
        .now_ms = NOW, .asked_ms = ASKED, .fresh = !s.not_fresh, .interval_ms = s.interval_ms, .wall_ms = s.wall_ms};
    gdl_pool_view_t v = {
        .min = s.min, .max = s.max, .concurrency = s.concurrency, .max_idle_ms = s.max_idle_ms, .procs = procs};
    gdl_plan_t plan = {.stops = stops};
    int n = 0, cap = s.concurrency, holding = s.holding ? s.holding : 1;

    for (int i = 0; i < s.busy; i++, n++)
        procs[n] = (gdl_proc_view_t){
            .slot = n, .state = GDL_SLOT_BUSY, .since_ms = ASKED - 5, .jobs = holding, .capacity = cap};
    for (int i = 0; i < s.busy_after; i++, n++)
        procs[n] = (gdl_proc_view_t){
            .slot = n, .state = GDL_SLOT_BUSY, .since_ms = ASKED + 5, .jobs = holding, .capacity = cap};
    for (int i = 0; i < s.starting; i++, n++)
        procs[n] = (gdl_proc_view_t){.slot = n, .state = GDL_SLOT_STARTING, .since_ms = NOW - 1, .capacity = cap};
    for (int i = 0; i < s.nidle; i++, n++)
        procs[n] = (gdl_proc_view_t){.slot = n, .state = GDL_SLOT_IDLE, .since_ms = NOW - s.idle[i], .capacity = cap};
    v.nprocs = n;
    v.queue = s.queue;
    v.running = s.running;
    v.workers = s.workers;
    v.queue_asked_ms = s.queue_asked_ms;
    v.peers = s.peers;
    v.rank = s.rank;
    v.queued_since_ms = s.queued_since_ms;
    v.spare_since_ms = s.spare_since_ms;
    v.spare_min = s.spare_min;
    v.retiring = s.retiring;
    v.held = s.held;
    gdl_policy_plan(&sc, &v, &plan);
    return plan;
}

/* The old counting: `processes` of which `busy` are busy, the rest idle
 * for a moment (never stopped for it). */
static int starts(int min, int max, int processes, int busy, int queue, int peers)
{
    static const int64_t recent[64];
    spec_t s = {.min = min, .max = max, .busy = busy, .idle = recent, .nidle = processes - busy};

    s.max_idle_ms = 1000000;
    s.queue = queue;
    s.peers = peers;
    return run(s).starts;
}

static int ranked(int queue, int peers, int rank, int running, int64_t wall_ms)
{
    spec_t s = {.max = 100, .queue = queue, .peers = peers, .rank = rank, .running = running, .wall_ms = wall_ms};

    s.queued_since_ms = NOW;
    return run(s).starts;
}

int main(void)
{
    gdl_plan_t p;

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
     * takes its part, none twice, whatever the rotation */
    for (int q = 0; q < 40; q++)
        for (int peers = 0; peers < 5; peers++)
            for (int running = 0; running < 3; running++)
                for (int64_t wall = 0; wall < 4000; wall += 1000) {
                    int sum = 0;
                    for (int r = 0; r <= peers; r++)
                        sum += ranked(q, peers, r, running, wall);
                    CHECK_INT(sum, q);
                }
    CHECK_INT(ranked(1, 1, 0, 0, 0), 1);
    CHECK_INT(ranked(1, 1, 1, 0, 0), 0);
    CHECK_INT(ranked(10, 1, 1, 0, 0), 5);
    CHECK_INT(ranked(7, 2, 2, 0, 0), 2);
    CHECK_INT(ranked(5, 1, 7, 0, 0), 2); /* a rank out of range wraps: 7 of 2 is 1 */
    /* rotation: each job running moves the ranks on by one, so single
     * arrivals go to each instance in turn */
    CHECK_INT(ranked(1, 1, 0, 1, 0), 0);
    CHECK_INT(ranked(1, 1, 1, 1, 0), 1);
    CHECK_INT(ranked(1, 2, 0, 2, 0), 0);
    CHECK_INT(ranked(1, 2, 1, 2, 0), 1); /* (1 + 2) % 3 = 0: first in rank */
    CHECK_INT(ranked(1, 2, 2, 2, 0), 0);
    /* ... and with the wall clock, one place an interval (1 s at least),
     * so work an instance cannot take moves on to the next: a queue
     * that has waited is not taken by every instance at once (at 100
     * hosts, rounded-up shares started up to 99 processes for one job) */
    CHECK_INT(ranked(1, 1, 1, 0, 999), 0);
    CHECK_INT(ranked(1, 1, 1, 0, 1000), 1);
    CHECK_INT(ranked(1, 1, 1, 0, 2000), 0);
    CHECK_INT(ranked(1, 2, 2, 0, 1000), 1); /* (2 + 1) % 3 = 0 */
    CHECK_INT(ranked(1, 2, 2, 0, 2000), 0);
    {
        /* a 5 s interval turns them every 5 s */
        spec_t s = {.max = 100, .queue = 1, .peers = 2, .rank = 2, .wall_ms = 5000, .interval_ms = 5000};
        CHECK_INT(run(s).starts, 1); /* (2 + 1) % 3 = 0 */
        s.wall_ms = 9999;
        CHECK_INT(run(s).starts, 1);
        s.wall_ms = 10000;
        CHECK_INT(run(s).starts, 0); /* (2 + 2) % 3 = 1 */
        s.rank = 1;
        CHECK_INT(run(s).starts, 1);
    }

    /* staleness: the policy tracks when the queue turned non-empty */
    p = run((spec_t){.max = 5, .queue = 1, .peers = 1, .rank = 1});
    CHECK_INT(p.queued_since_ms, NOW); /* it starts waiting now */
    CHECK_INT(p.starts, 0);            /* not stale: rank 1 of 2 takes 0 of 1 */
    p = run((spec_t){.max = 5, .queue = 1, .peers = 1, .rank = 1, .queued_since_ms = NOW - 999});
    CHECK_INT(p.queued_since_ms, NOW - 999);
    CHECK_INT(p.starts, 0);
    p = run((spec_t){.max = 5, .queue = 1, .peers = 1, .rank = 1, .queued_since_ms = NOW - 5000});
    CHECK_INT(p.starts, 0); /* a queue that waited is not taken twice: the wall clock moves it on */
    p = run((spec_t){.max = 5, .queue = 0, .queued_since_ms = NOW - 3000});
    CHECK_INT(p.queued_since_ms, 0); /* the queue emptied */

    /* free workers of other instances take waiting jobs first: only what
     * they leave is shared (workers listed, less the jobs running and
     * this instance's own free processes) */
    p = run((spec_t){.max = 5, .queue = 3, .running = 2, .workers = 5});
    CHECK_INT(p.starts, 0); /* 3 free elsewhere for 3 waiting */
    p = run((spec_t){.max = 5, .queue = 3, .running = 2, .workers = 4});
    CHECK_INT(p.starts, 1); /* 2 free for 3 */
    CHECK_STR(p.start_why, "queue 1 (2 left to free workers), busy 0");
    p = run((spec_t){.max = 5, .queue = 3, .running = 5, .workers = 2});
    CHECK_INT(p.starts, 3); /* fewer workers than jobs running: none free */
    {
        static const int64_t idle1[] = {10};
        /* our own idle process is one of the workers listed: not someone else's */
        p = run((spec_t){.max = 5, .queue = 2, .workers = 1, .idle = idle1, .nidle = 1, .max_idle_ms = 60000});
        CHECK_INT(p.starts, 1);
        /* and one busy since the poll was free when it was sent */
        p = run((spec_t){.max = 5, .queue = 2, .running = 0, .workers = 1, .busy_after = 1});
        CHECK_INT(p.starts, 1);
    }
    /* not trusted once jobs have waited a whole interval with nothing
     * running anywhere: listed workers that take nothing (a host cut
     * off, a stopped process) must not hold work for ever */
    p = run((spec_t){.max = 5, .queue = 1, .workers = 3, .queued_since_ms = NOW - 999});
    CHECK_INT(p.starts, 0);
    p = run((spec_t){.max = 5, .queue = 1, .workers = 3, .queued_since_ms = NOW - 1000});
    CHECK_INT(p.starts, 1);
    p = run((spec_t){.max = 5, .queue = 1, .workers = 3, .running = 1, .queued_since_ms = NOW - 5000});
    CHECK_INT(p.starts, 0); /* something runs: they are taking work */
    /* idle stops still need nothing waiting at all */
    {
        static const int64_t long_idle[] = {60000};
        p = run((spec_t){.max = 5, .queue = 1, .workers = 5, .idle = long_idle, .nidle = 1, .max_idle_ms = 10000});
        CHECK_INT(p.nstops, 0);
    }

    /* busy since after the oldest poll, but before the oldest poll that
     * shows jobs waiting: its job is not in any queue counted */
    p = run((spec_t){.max = 5, .busy_after = 1, .queue = 1, .queue_asked_ms = ASKED + 10});
    CHECK_INT(p.starts, 1);
    p = run((spec_t){.max = 5, .busy_after = 1, .queue = 1, .queue_asked_ms = ASKED});
    CHECK_INT(p.starts, 0);

    /* busy after the poll: the process took its job from the queue the
     * poll reports, so it counts once, as available */
    p = run((spec_t){.max = 5, .busy_after = 1, .queue = 1});
    CHECK_INT(p.starts, 0);
    p = run((spec_t){.max = 5, .busy = 1, .queue = 1});
    CHECK_INT(p.starts, 1);
    CHECK_STR(p.start_why, "queue 1, busy 1");
    /* ... and it is never stopped, even above max */
    p = run((spec_t){.max = 0, .busy_after = 2, .max_idle_ms = 0});
    CHECK_INT(p.nstops, 0);

    /* starts for waiting work need fresh figures; min needs none */
    p = run((spec_t){.max = 5, .queue = 4, .not_fresh = true});
    CHECK_INT(p.starts, 0);
    p = run((spec_t){.min = 2, .max = 5, .queue = 4, .not_fresh = true});
    CHECK_INT(p.starts, 2);
    CHECK_STR(p.start_why, "queue 4, busy 0");
    p = run((spec_t){.min = 2, .max = 5});
    CHECK_STR(p.start_why, "min 2");
    p = run((spec_t){.max = 5, .queue = 2, .peers = 1});
    CHECK_STR(p.start_why, "queue 2, busy 0, shared");
    /* held back by the crash-loop back-off: no start, no wake */
    p = run((spec_t){.min = 1, .max = 5, .queue = 3, .held = true});
    CHECK_INT(p.starts, 0);
    CHECK(!p.wake);

    /* settling: processes still starting, or being started now */
    CHECK(run((spec_t){.max = 5, .starting = 1}).settling);
    CHECK(run((spec_t){.max = 5, .queue = 1}).settling);
    CHECK(!run((spec_t){.max = 5, .busy = 1}).settling);

    /* wake: one more job should start a process here */
    CHECK(run((spec_t){.max = 5}).wake);
    CHECK(!run((spec_t){.max = 0}).wake);
    CHECK(!run((spec_t){.max = 2, .busy = 2}).wake); /* at max */
    {
        static const int64_t idle1[] = {10};
        CHECK(
            !run((spec_t){.max = 5, .idle = idle1, .nidle = 1, .max_idle_ms = 60000}).wake); /* an idle one takes it */
    }
    CHECK(run((spec_t){.max = 5, .peers = 3, .rank = 2}).wake); /* rank does not matter for waking */
    /* a process busy since the poll is busy now: the next job needs
     * another (it counted as available, and the master slept through
     * ramps until its next tick) */
    CHECK(run((spec_t){.max = 5, .busy_after = 1}).wake);
    CHECK(!run((spec_t){.max = 5, .busy_after = 1, .starting = 1}).wake); /* one starting takes it */

    /* down */
    {
        static const int64_t idle[] = {1000, 30000, 20000};
        /* min 0: everything idle past 10 s stops, longest first */
        p = run((spec_t){.max = 5, .idle = idle, .nidle = 3, .max_idle_ms = 10000});
        CHECK_INT(p.nstops, 2);
        CHECK_INT(p.stops[0].slot, 1);
        CHECK_STR(p.stops[0].why, "idle 30 s");
        CHECK_INT(p.stops[1].slot, 2);
        CHECK_STR(p.stops[1].why, "idle 20 s");
        /* min 2 keeps two of three: only the longest idle goes */
        p = run((spec_t){.min = 2, .max = 5, .idle = idle, .nidle = 3, .max_idle_ms = 10000});
        CHECK_INT(p.nstops, 1);
        CHECK_INT(p.stops[0].slot, 1);
        /* work waiting: nobody stops for idleness */
        p = run((spec_t){.max = 5, .idle = idle, .nidle = 3, .max_idle_ms = 10000, .queue = 4, .not_fresh = true});
        CHECK_INT(p.nstops, 0);
        /* max_idle_time 0: all idle ones stop at once */
        p = run((spec_t){.max = 5, .idle = idle, .nidle = 3});
        CHECK_INT(p.nstops, 3);
    }
    {
        /* max_idle_time 0 and nothing queued, but idle only since after the
         * poll was sent (a process just started): gearmand may have given
         * it the job that poll counts as running, which it has not read
         * yet. It is not stopped before it has served it (seen in
         * bench_scale: "stop P: idle 0 s" logged before P's "job H:..."). */
        static const int64_t just[] = {50}; /* since NOW - 50 > ASKED */
        p = run((spec_t){.max = 5, .idle = just, .nidle = 1, .running = 1});
        CHECK_INT(p.nstops, 0);
        CHECK(p.poll); /* a fresher poll settles it */
        /* idle since before the poll: it goes */
        static const int64_t before[] = {150};
        p = run((spec_t){.max = 5, .idle = before, .nidle = 1});
        CHECK_INT(p.nstops, 1);
        CHECK(!p.poll);
    }
    {
        /* busy processes are never candidates: 4 processes, only 1 idle */
        static const int64_t idle[] = {60000};
        p = run((spec_t){.max = 5, .busy = 3, .idle = idle, .nidle = 1, .max_idle_ms = 1000});
        CHECK_INT(p.nstops, 1);
        CHECK_INT(p.stops[0].slot, 3);
    }
    {
        /* max lowered to 1 with 4 processes, 2 idle (recently): both go,
         * the 2 busy ones are left for later */
        static const int64_t idle[] = {10, 20};
        p = run((spec_t){
            .max = 1, .busy = 2, .idle = idle, .nidle = 2, .max_idle_ms = 60000, .queue = 5, .not_fresh = true});
        CHECK_INT(p.nstops, 2);
        CHECK_INT(p.stops[0].slot, 3);
        CHECK_STR(p.stops[0].why, "above max 1");
        CHECK_INT(p.stops[1].slot, 2);
    }
    {
        /* above max by one, queue waiting: only the surplus goes */
        static const int64_t idle[] = {10, 20, 30};
        p = run((spec_t){.max = 2, .idle = idle, .nidle = 3, .max_idle_ms = 60000, .queue = 5});
        CHECK_INT(p.nstops, 1);
        CHECK_INT(p.stops[0].slot, 2);
        CHECK_STR(p.stops[0].why, "above max 2");
    }
    /* nothing idle: nothing to stop */
    CHECK_INT(run((spec_t){.max = 5, .busy = 3}).nstops, 0);

    /* job slots: max_processes 4, concurrency 500. One process holding
     * 100 jobs takes 400 more before a second starts. */
    {
        static const int64_t moment[1] = {10};
        spec_t s = {.max = 4, .concurrency = 500, .busy = 1, .holding = 100, .max_idle_ms = 60000};

        s.queue = 300;
        CHECK_INT(run(s).starts, 0);
        s.queue = 400;
        CHECK_INT(run(s).starts, 0); /* exactly full */
        s.queue = 401;
        CHECK_INT(run(s).starts, 1);
        p = run(s);
        CHECK_STR(p.start_why, "queue 401, busy 100");
        s.queue = 5000;
        CHECK_INT(run(s).starts, 3); /* never past max */
        /* its jobs taken after the poll may be the queue's: not counted twice */
        s.busy = 0;
        s.busy_after = 1;
        s.queue = 450;
        CHECK_INT(run(s).starts, 0);
        /* an idle process's 500 slots take 500 jobs */
        s = (spec_t){.max = 4, .concurrency = 500, .idle = moment, .nidle = 1, .max_idle_ms = 60000};
        s.queue = 500;
        CHECK_INT(run(s).starts, 0);
        s.queue = 501;
        CHECK_INT(run(s).starts, 1);
        /* min is still in processes */
        s = (spec_t){.min = 2, .max = 4, .concurrency = 500};
        CHECK_INT(run(s).starts, 2);
        /* the same figures with concurrency 1: one process a job */
        s = (spec_t){.max = 4, .concurrency = 1, .busy = 1, .queue = 2};
        CHECK_INT(run(s).starts, 2);
        s.concurrency = 0;
        CHECK_INT(run(s).starts, 2);
    }
    /* wake: only once every slot is taken */
    {
        spec_t s = {.max = 4, .concurrency = 500, .busy = 1, .holding = 499};

        CHECK(!run(s).wake);
        s.holding = 500;
        CHECK(run(s).wake);
        s.max = 1;
        CHECK(!run(s).wake); /* at max */
    }
    /* another instance's free slots: the job servers list a worker per
     * process, with the pool's concurrency each */
    {
        spec_t s = {.max = 4, .concurrency = 10, .busy = 1, .holding = 5};

        s.workers = 2; /* ours and one elsewhere */
        s.running = 5; /* ours */
        s.queue = 15;  /* ours take 5, the other's 10 */
        CHECK_INT(run(s).starts, 0);
        s.queue = 16;
        CHECK_INT(run(s).starts, 1);
    }
    /* a process holding jobs is not idle, however long it has been busy */
    CHECK_INT(run((spec_t){.max = 5, .concurrency = 50, .busy = 3, .holding = 1}).nstops, 0);

    /* spare: under steady load gearmand spreads the jobs over every
     * process, so none idles for max_idle_time; the slots the servers
     * list beyond the jobs running and waiting, the fewest over a window
     * of max_idle_time, stop half at a time (idle ones, by rank) */
    {
        static const int64_t idle6[] = {200, 200, 200, 200, 200, 200}, fresh_idle[] = {50, 50, 50, 50, 50, 50};
        spec_t s = {.max = 20, .busy = 5, .idle = idle6, .nidle = 6, .max_idle_ms = 1000};

        s.workers = 11, s.running = 5;
        p = run(s);
        CHECK_INT(p.nstops, 0); /* the window begins: the oldest poll's time, 6 spare */
        CHECK_INT(p.spare_since_ms, ASKED);
        CHECK_INT(p.spare_min, 6);
        s.spare_since_ms = NOW - 999, s.spare_min = 6;
        p = run(s);
        CHECK_INT(p.nstops, 0); /* not max_idle_time long yet */
        CHECK_INT(p.spare_since_ms, NOW - 999);
        s.spare_since_ms = NOW - 1000;
        p = run(s);
        CHECK_INT(p.nstops, 3); /* half of the 6 */
        CHECK_STR(p.stops[0].why, "spare 6 for 1 s");
        CHECK_INT(p.spare_since_ms, NOW); /* again, from polls sent after the stops */
        CHECK_INT(p.spare_min, -1);
        s.spare_min = 2; /* the fewest the window saw, not the last */
        CHECK_INT(run(s).nstops, 1);
        s.spare_min = 1; /* half of one spare: none */
        CHECK_INT(run(s).nstops, 0);
        s.spare_min = -1; /* after a stop, no figure yet: this one is the first */
        CHECK_INT(run(s).nstops, 3);
        s.spare_since_ms = ASKED + 1; /* figures sent before the window began count for nothing */
        p = run(s);
        CHECK_INT(p.nstops, 0);
        CHECK_INT(p.spare_since_ms, ASKED + 1);
        CHECK_INT(p.spare_min, -1);
        s.spare_since_ms = NOW - 5000, s.spare_min = 6;
        s.not_fresh = true; /* between polls: neither the window nor stops */
        p = run(s);
        CHECK_INT(p.nstops, 0);
        CHECK_INT(p.spare_min, 6);
        s.not_fresh = false;
        s.min = 10; /* never below min */
        CHECK_INT(run(s).nstops, 1);
        s.min = 0;
        s.retiring = 2; /* our stopping ones are listed but serve nothing */
        CHECK_INT(run(s).nstops, 2);
        s.retiring = 0;
        s.idle = fresh_idle; /* idle only since the poll: may be taking a job it saw */
        CHECK_INT(run(s).nstops, 0);
        s.idle = idle6;
        s.running = 11; /* every slot taken: the window ends */
        p = run(s);
        CHECK_INT(p.nstops, 0);
        CHECK_INT(p.spare_since_ms, 0);
        s.running = 6, s.queue = 5;
        CHECK_INT(run(s).spare_since_ms, 0); /* waiting jobs take spare slots */
        s.running = 5, s.queue = 0;
        s.idle = (const int64_t[]){5000, 200, 200, 200, 200, 200}; /* one also idle long enough: counted once */
        p = run(s);
        CHECK_INT(p.nstops, 3);
        CHECK_STR(p.stops[0].why, "idle 5 s");
        CHECK_STR(p.stops[1].why, "spare 6 for 5 s");
    }
    /* the instances split the spare processes by rank, not turned: each
     * takes its part of the same figure, whatever runs and the clock */
    for (int spare = 0; spare < 24; spare++)
        for (int peers = 0; peers < 4; peers++)
            for (int64_t wall = 0; wall < 3000; wall += 1000) {
                static const int64_t idle12[12] = {200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200};
                int sum = 0;
                for (int r = 0; r <= peers; r++) {
                    spec_t s = {.max = 40, .busy = 3, .idle = idle12, .nidle = 12, .max_idle_ms = 1000};
                    s.peers = peers, s.rank = r, s.wall_ms = wall;
                    s.workers = 3 + spare, s.running = 3;
                    s.spare_since_ms = NOW - 2000, s.spare_min = spare;
                    sum += run(s).nstops;
                }
                CHECK_INT(sum, spare / 2);
            }
    /* in job slots: spare slots make whole processes */
    {
        static const int64_t idle1[] = {200};
        spec_t s = {.max = 4, .concurrency = 10, .busy = 2, .holding = 6, .idle = idle1, .nidle = 1};

        s.max_idle_ms = 1000, s.spare_since_ms = NOW - 2000, s.spare_min = 100;
        s.workers = 4, s.running = 12; /* 40 slots, 12 jobs: 28 spare, two processes: one stops */
        CHECK_INT(run(s).nstops, 1);
        s.running = 21; /* 19 spare: one process, half of it none */
        CHECK_INT(run(s).nstops, 0);
    }

    /* crash loops: only deaths of processes that served nothing, or of a
     * pool dying as often as it serves, feed the back-off */
#define CRASH(lived, served, deaths, window_served) \
    gdl_policy_crash_loop(&(gdl_death_t){lived, false, served, deaths, window_served})
    CHECK(CRASH(10, 0, 1, 0));        /* died at start */
    CHECK(CRASH(4999, 0, 5, 9000));   /* died in its first job, others serve */
    CHECK(!CRASH(5000, 0, 1, 0));     /* lived long enough: started fine */
    CHECK(!CRASH(50, 3, 1, 7000));    /* served, killed from outside */
    CHECK(!CRASH(50, 3, 100, 74000)); /* kill -9 every 100 ms under load */
    CHECK(CRASH(50, 1, 8, 8));        /* each process dies after one job */
    CHECK(CRASH(50, 1, 9, 8));
    CHECK(!CRASH(50, 2, 8, 9));
    /* killed from outside (SIGKILL, SIGTERM...) before serving: no loop */
    CHECK(!gdl_policy_crash_loop(&(gdl_death_t){10, true, 0, 1, 0}));
    CHECK(!gdl_policy_crash_loop(&(gdl_death_t){10, true, 0, 50, 0}));
    UNIT_END();
}
