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
 *   - a burst of 20 slow jobs: the time until max_processes (5) run, and
 *     the most processes ever seen (must not exceed 5);
 *   - the memory of one worker process (RSS, PSS, private dirty).
 * It prints a table with the ratio between the two designs. --quick does
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

/* A burst of 20 slow jobs against max_processes 5: time to 5 processes,
 * and the most processes seen. */
static void burst(gearman_client_st *c, double *to_max, int *most)
{
    gearman_job_handle_t handles[20];
    pid_t pids[64];
    double t0, end;
    int done = 0;

    wait_children(0, 15000);
    t0 = bench_now_ms();
    *to_max = -1;
    *most = 0;
    for (int i = 0; i < 20; i++)
        if (gearman_client_do_background(c, "Bench::Jobs::slow", NULL, "0.2", 3, handles[i]) != GEARMAN_SUCCESS)
            errors++;
    end = bench_now_ms() + 30000;
    while (done < 20 && bench_now_ms() < end) {
        int n = bench_workers(gdlua_pid, pids, 64);

        if (n > *most)
            *most = n;
        if (n >= 5 && *to_max < 0)
            *to_max = bench_now_ms() - t0;
        done = 0;
        for (int i = 0; i < 20; i++) {
            bool known = true, running = true;
            gearman_client_job_status(c, handles[i], &known, &running, NULL, NULL);
            done += !known;
        }
        bench_sleep_ms(2);
    }
    if (done < 20) {
        fprintf(stderr, "bench_scale: only %d of 20 burst jobs finished\n", done);
        errors++;
    }
    if (*most > 5) {
        fprintf(stderr, "bench_scale: %d processes for a job with max_processes 5\n", *most);
        errors++;
    }
}

static void memory(long *rss, long *pss, long *priv)
{
    pid_t pids[8];
    char path[64], line[256];
    FILE *f;

    *rss = *pss = *priv = -1;
    if (bench_workers(gdlua_pid, pids, 8) < 1)
        return;
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pids[0]);
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "Rss: %ld kB", rss);
        sscanf(line, "Pss: %ld kB", pss);
        sscanf(line, "Private_Dirty: %ld kB", priv);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    bool quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    int rounds = quick ? 3 : 30, rounds_poll = quick ? 1 : 8;
    double wake_ms[64], poll_ms[64], to_max;
    long rss, pss, priv;
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
    gearman_client_add_server(c, "127.0.0.1", (in_port_t)port);
    gearman_client_set_timeout(c, 20000);

    start_gdlua(argv[1], argv[2], true, "1");
    srand(42);
    first_results(c, wake_ms, rounds, 1000);
    burst(c, &to_max, &most);
    wait_children(0, 15000);
    {
        size_t len;
        gearman_return_t rc;
        void *r = gearman_client_do(c, "Bench::Jobs::echo", NULL, "m", 1, &len, &rc);
        free(r);
        memory(&rss, &pss, &priv);
    }
    bench_stop(&gdlua_pid);

    /* Gearman::Driver's design: the observer polls every 5 s (every 1 s in
     * quick mode, which checks results only). */
    start_gdlua(argv[1], argv[2], false, quick ? "1" : "5");
    first_results(c, poll_ms, rounds_poll, quick ? 1000 : 5000);
    bench_stop(&gdlua_pid);
    gearman_client_free(c);
    cleanup();

    printf("%-52s %12s %12s %8s\n", "figure", "gdlua", "polling 5 s", "ratio");
    {
        double w50 = percentile(wake_ms, rounds, 0.5), w99 = percentile(wake_ms, rounds, 0.99);
        double p50 = percentile(poll_ms, rounds_poll, 0.5), p99 = percentile(poll_ms, rounds_poll, 0.99);
        printf("%-52s %10.1f ms %10.1f ms %7.0fx\n", "first result from zero processes, p50", w50, p50, p50 / w50);
        printf("%-52s %10.1f ms %10.1f ms %7.0fx\n", "first result from zero processes, p99", w99, p99, p99 / w99);
    }
    printf("%-52s %10.1f ms\n", "burst of 20 jobs: time until max_processes (5) run", to_max);
    printf("%-52s %12d\n", "burst of 20 jobs: most processes seen (max 5)", most);
    printf("%-52s %9.1f MB %12s\n", "worker process RSS (Gearman::Driver child: 68 MB)", rss / 1024.0, "");
    printf("%-52s %9.1f MB %12s\n", "worker process PSS (Gearman::Driver child: 35 MB)", pss / 1024.0, "");
    printf("%-52s %9.1f MB %12s\n", "worker private dirty (Gearman::Driver: 4.2 MB)", priv / 1024.0, "");
    printf("rounds: %d with wake-ups, %d polling%s; %d error(s)\n", rounds, rounds_poll, quick ? " (quick)" : "",
           errors);
    return errors ? 1 : 0;
}
