/*
 * bench_scale.c: how fast gdlua scales a job from zero processes.
 *
 *   bench_scale GDLUA FIXTURE_DIR [--quick]
 *
 * Starts a private gearmand (loopback, a free port) and gdlua on
 * FIXTURE_DIR (tests/bench/fixtures/scale: Bench::Jobs::echo and ::slow, both
 * min 0, max_idle_time 0), then measures in one run:
 *   - the time to the first result of a job submitted to an idle gdlua
 *     with no process for it, with wake-up sentinels (gdlua's design) and
 *     with polling only every 5 s (Gearman::Driver's design), p50 and p99;
 *   - a burst of 200 slow jobs: the time until max_processes (10) run,
 *     and the most processes ever seen (must not exceed 10).
 * It prints a table with the ratio between the two designs, RESULT lines
 * and a SAMPLE line per first result (the chart's distribution). --quick does
 * few rounds and is run by ctest: it checks results and counts, never
 * timings. Exit status 1 when a result or count is wrong.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libgearman-1.0/gearman.h>

#include "bench_util.h"

#define BURST     200
#define BURST_MAX 10
#define ROUNDS    100

static int port;
static pid_t gearmand_pid, gdlua_pid;
static char tmpdir[] = "/tmp/gdlua-bench-XXXXXX";
static int errors;

static void cleanup(void)
{
    char cmd[64];

    bench_stop(&gdlua_pid);
    bench_stop(&gearmand_pid);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_scale: %s\n", msg);
    cleanup();
    exit(1);
}

static void wait_children(int want, int timeout_ms)
{
    pid_t pids[64];
    double end = bench_now_ms() + timeout_ms;

    while (bench_workers(gdlua_pid, pids, 64) != want) {
        if (bench_now_ms() > end) {
            fprintf(stderr, "bench_scale: gdlua has %d processes, want %d\n", bench_workers(gdlua_pid, pids, 64), want);
            die("timed out waiting for processes");
        }
        bench_sleep_ms(5);
    }
}

/* Waits until gdlua serves: its modules loaded and, with wake-ups, its
 * sentinel registered for the echo job. Submitted earlier, the first
 * round's job would wait for gdlua's start-up, not a cold start (seen
 * under load: a first round of 415 ms whose job met gdlua's first poll). */
static void wait_ready(bool wakeups)
{
    double end = bench_now_ms() + 15000;
    char path[128], buf[4096], needle[32];

    snprintf(path, sizeof(path), "%s/gdlua.log", tmpdir);
    snprintf(needle, sizeof(needle), "[%d] gdlua ", (int)gdlua_pid); /* the log is shared by both runs */
    for (;;) {
        FILE *f = fopen(path, "r");
        bool serving = false;

        while (f && !serving && fgets(buf, sizeof(buf), f))
            serving = strstr(buf, needle) && strstr(buf, " serving ");
        if (f)
            fclose(f);
        if (serving && (!wakeups || bench_gearmand_workers(port, "Bench::Jobs::echo") >= 1))
            return;
        if (bench_now_ms() > end)
            die("gdlua did not start serving in 15 s");
        bench_sleep_ms(5);
    }
}

static void start_gdlua(const char *gdlua, const char *dir, bool wakeups, const char *interval)
{
    char server[64], log[128];
    char *argv[16];
    int n = 0;

    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    snprintf(log, sizeof(log), "%s/gdlua.log", tmpdir);
    argv[n++] = (char *)gdlua;
    argv[n++] = "--server";
    argv[n++] = server;
    argv[n++] = "--interval";
    argv[n++] = (char *)interval;
    argv[n++] = "--max_idle_time";
    argv[n++] = "0";
    if (!wakeups)
        argv[n++] = "--no_wakeups";
    argv[n++] = (char *)dir;
    argv[n] = NULL;
    gdlua_pid = bench_spawn(argv, -1, -1, log);
    wait_ready(wakeups);
}

static double percentile(double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);

    qsort(v, n, sizeof(double), bench_cmp_double);
    return v[i];
}

/* First results from zero: n rounds, each waiting for gdlua to have no
 * process, then a random part of the poll interval (processes stop on a
 * poll, so submitting at once would always hit the worst moment). */
static void first_results(gearman_client_st *c, double *ms, int n, int interval_ms)
{
    for (int i = 0; i < n; i++) {
        gearman_return_t rc;
        size_t len;
        char workload[32];
        void *r;
        double t0;

        wait_children(0, 15000);
        bench_sleep_ms(rand() % interval_ms);
        snprintf(workload, sizeof(workload), "round %d", i);
        t0 = bench_now_ms();
        r = gearman_client_do(c, "Bench::Jobs::echo", NULL, workload, strlen(workload), &len, &rc);
        ms[i] = bench_now_ms() - t0;
        if (rc != GEARMAN_SUCCESS || r == NULL || len != strlen(workload) || memcmp(r, workload, len) != 0) {
            fprintf(stderr, "bench_scale: echo round %d: %s\n", i, gearman_strerror(rc));
            errors++;
        }
        free(r);
    }
}

/* A burst of BURST slow jobs against max_processes 10: time to 10
 * processes, and the most processes seen. */
static void burst(gearman_client_st *c, double *to_max, int *most)
{
    gearman_job_handle_t handles[BURST];
    pid_t pids[64];
    double t0, end;
    int done = 0;

    wait_children(0, 15000);
    t0 = bench_now_ms();
    *to_max = -1;
    *most = 0;
    for (int i = 0; i < BURST; i++)
        if (gearman_client_do_background(c, "Bench::Jobs::slow", NULL, "0.05", 4, handles[i]) != GEARMAN_SUCCESS)
            errors++;
    end = bench_now_ms() + 30000;
    while (done < BURST && bench_now_ms() < end) {
        int n = bench_workers(gdlua_pid, pids, 64);

        if (n > *most)
            *most = n;
        if (n >= BURST_MAX && *to_max < 0)
            *to_max = bench_now_ms() - t0;
        done = 0;
        for (int i = 0; i < BURST; i++) {
            bool known = true, running = true;
            gearman_client_job_status(c, handles[i], &known, &running, NULL, NULL);
            done += !known;
        }
        bench_sleep_ms(2);
    }
    if (done < BURST) {
        fprintf(stderr, "bench_scale: only %d of %d burst jobs finished\n", done, BURST);
        errors++;
    }
    if (*most > BURST_MAX) {
        fprintf(stderr, "bench_scale: %d processes for a job with max_processes %d\n", *most, BURST_MAX);
        errors++;
    }
}

int main(int argc, char **argv)
{
    bool quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    int rounds = quick ? 3 : ROUNDS, rounds_poll = quick ? 1 : 8;
    double wake_ms[ROUNDS], poll_ms[ROUNDS], to_max;
    int most;
    gearman_client_st *c;
    char log[128];

    if (argc < 3) {
        fprintf(stderr, "usage: bench_scale GDLUA FIXTURE_DIR [--quick]\n");
        return 2;
    }
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    snprintf(log, sizeof(log), "%s/gearmand.log", tmpdir);
    gearmand_pid = bench_start_gearmand(log, &port);
    if (gearmand_pid == 0)
        die("cannot start gearmand");
    c = gearman_client_create(NULL);
    gearman_client_set_timeout(c, 20000);
    gearman_client_add_server(c, "127.0.0.1", (in_port_t)port);

    start_gdlua(argv[1], argv[2], true, "1");
    srand(42);
    first_results(c, wake_ms, rounds, 1000);
    for (int i = 0; i < rounds; i++)
        printf("SAMPLE scenario=cold_start peer=gdlua value=%.3f unit=ms\n", wake_ms[i]);
    burst(c, &to_max, &most);
    bench_stop(&gdlua_pid);

    /* Gearman::Driver's design: the observer polls every 5 s (every 1 s in
     * quick mode, which checks results only). */
    start_gdlua(argv[1], argv[2], false, quick ? "1" : "5");
    first_results(c, poll_ms, rounds_poll, quick ? 1000 : 5000);
    for (int i = 0; i < rounds_poll; i++)
        printf("SAMPLE scenario=cold_start peer=polling_5s value=%.3f unit=ms\n", poll_ms[i]);
    bench_stop(&gdlua_pid);
    gearman_client_free(c);
    cleanup();

    {
        double w50 = percentile(wake_ms, rounds, 0.5), w99 = percentile(wake_ms, rounds, 0.99);
        double p50 = percentile(poll_ms, rounds_poll, 0.5), p99 = percentile(poll_ms, rounds_poll, 0.99);

        bench_result("cold_start", "gdlua", "p50", w50, "ms");
        bench_result("cold_start", "gdlua", "p99", w99, "ms");
        bench_result("cold_start", "polling_5s", "p50", p50, "ms");
        bench_result("cold_start", "polling_5s", "p99", p99, "ms");
        bench_result("burst", "gdlua", "time_to_max", to_max, "ms");
        bench_result("burst", "gdlua", "most_processes", most, "count");
        printf("%-52s %12s %12s %8s\n", "figure", "gdlua", "polling 5 s", "ratio");
        printf("%-52s %10.1f ms %10.1f ms %7.0fx\n", "first result from zero processes, p50", w50, p50, p50 / w50);
        printf("%-52s %10.1f ms %10.1f ms %7.0fx\n", "first result from zero processes, p99", w99, p99, p99 / w99);
    }
    printf("%-52s %10.1f ms\n", "burst of 200 jobs: time until max_processes (10) run", to_max);
    printf("%-52s %12d\n", "burst of 200 jobs: most processes seen (max 10)", most);
    printf("rounds: %d with wake-ups, %d polling%s; %d error(s)\n", rounds, rounds_poll, quick ? " (quick)" : "",
           errors);
    return errors ? 1 : 0;
}
