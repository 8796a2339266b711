/*
 * bench_echo.c: the cost of running a job in gdlua against the workers
 * gearman users run today, measured in one run on the same gearmand.
 *
 *   bench_echo GDLUA BENCH_DIR [--quick]
 *
 * Every peer echoes the workload back: a plain libgearman C worker (the
 * baseline), gdlua (BENCH_DIR/fixtures/echo), PHP's gearman extension and
 * Perl's Gearman::Worker (BENCH_DIR/peers/, each skipped when its Debian
 * package is missing), at 1, 2 and 4 processes. The load generator keeps
 * BATCH tasks in flight, checks every result and records each task's
 * latency. All peers' workers run at once (idle ones sleep in gearmand);
 * they are measured in 3 interleaved rounds (each up to N/3 jobs or
 * 8/3 s), each figure the median round. With one process it also reads the workers' CPU time per job
 * (utime + stime from /proc). Then gdlua again, under a storm: a kill -9
 * of its worker process every 100 ms; every result is still checked (a
 * lost or wrong one is an error), and the throughput is shown as a ratio
 * of the fault-free run. Prints a table and RESULT lines
 * (bench_util.c). --quick sends few jobs and checks every result, never
 * timings.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libgearman-1.0/gearman.h>

#include "bench_util.h"

#define BATCH     100
#define MAX_PROCS 4
#define PEERS     4
#define ROUNDS    3
#define MAX_JOBS  60000
#define MAX_MS    8000 /* per peer and count: a slow peer sends fewer jobs */

typedef struct {
    char want[32];
    double *latency;
} task_ctx_t;

static int port, errors;
static pid_t gearmand_pid, worker_pids[PEERS][MAX_PROCS]; /* gdlua's: not ours to stop */
static int n_workers[PEERS];
static pid_t gdlua_pid;
static double batch_t0, latencies[MAX_JOBS];
static char tmpdir[] = "/tmp/gdlua-bench-echo-XXXXXX";

static void stop_workers(void)
{
    bench_stop(&gdlua_pid);
    for (int p = 0; p < PEERS; p++) {
        for (int i = 0; i < n_workers[p]; i++)
            bench_stop(&worker_pids[p][i]);
        n_workers[p] = 0;
    }
}

static void cleanup(void)
{
    char cmd[64];

    stop_workers();
    bench_stop(&gearmand_pid);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_echo: %s\n", msg);
    cleanup();
    exit(1);
}

static gearman_return_t plain_echo(gearman_job_st *job, void *context)
{
    gearman_job_send_complete(job, gearman_job_workload(job), gearman_job_workload_size(job));
    return GEARMAN_SUCCESS;
}

/* The baseline: the plainest libgearman worker there is. */
static pid_t start_plain_worker(const char *function)
{
    pid_t pid = fork();

    if (pid == 0) {
        gearman_worker_st *w = gearman_worker_create(NULL);
        gearman_worker_add_server(w, "127.0.0.1", (in_port_t)port);
        gearman_worker_define_function(w, function, strlen(function), gearman_function_create(plain_echo), 0, NULL);
        for (;;)
            gearman_worker_work(w);
    }
    return pid;
}

static gearman_return_t on_complete(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);
    size_t len = gearman_task_data_size(task);

    *t->latency = bench_now_ms() - batch_t0;
    if (len != strlen(t->want) || memcmp(gearman_task_data(task), t->want, len) != 0)
        errors++;
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
    errors++;
    return GEARMAN_SUCCESS;
}

/* Sends up to *n jobs to function, BATCH in flight, for at most
 * max_ms (a slow peer sends fewer); *n becomes the count sent. Returns
 * the wall time in seconds. Each job's latency (submission to result)
 * goes to latencies. */
static double run_jobs(gearman_client_st *c, const char *function, int *n, double max_ms)
{
    static task_ctx_t ctx[BATCH];
    double t0 = bench_now_ms();
    int sent;

    for (sent = 0; sent < *n && bench_now_ms() - t0 < max_ms; sent += BATCH) {
        gearman_return_t rc;

        batch_t0 = bench_now_ms();
        for (int i = 0; i < BATCH && sent + i < *n; i++) {
            snprintf(ctx[i].want, sizeof(ctx[i].want), "job %d", sent + i);
            ctx[i].latency = &latencies[(sent + i) % MAX_JOBS];
            *ctx[i].latency = -1;
            gearman_client_add_task(c, NULL, &ctx[i], function, NULL, ctx[i].want, strlen(ctx[i].want), &rc);
        }
        if (gearman_failed(gearman_client_run_tasks(c)))
            errors++;
        gearman_client_task_free_all(c);
    }
    *n = sent < *n ? sent : *n;
    return (bench_now_ms() - t0) / 1000;
}

/* A first job goes through (some worker is registered). */
static void warm_up(gearman_client_st *c, const char *function)
{
    size_t len;
    gearman_return_t rc;
    void *r = gearman_client_do(c, function, NULL, "warm", 4, &len, &rc);

    if (rc != GEARMAN_SUCCESS)
        die("the worker does not answer");
    free(r);
}

/* Waits until gearmand lists want workers for function. */
static void wait_registered(const char *function, int want)
{
    double end = bench_now_ms() + 20000;

    while (bench_gearmand_workers(port, function) < want)
        if (bench_now_ms() > end)
            die("the workers did not register with gearmand");
        else
            bench_sleep_ms(10);
}

static double workers_cpu_s(pid_t *pids, int n)
{
    double s = 0;

    for (int i = 0; i < n; i++)
        s += bench_cpu_s(pids[i]);
    return s;
}

typedef struct {
    double jobs_per_s, cpu_us_per_job, p50_ms, p99_ms;
} figures_t;

static figures_t measure(gearman_client_st *c, const char *function, pid_t *pids, int procs, int n, double max_ms)
{
    double cpu0, wall;
    figures_t f;

    warm_up(c, function);
    cpu0 = workers_cpu_s(pids, procs);
    wall = run_jobs(c, function, &n, max_ms);
    f.jobs_per_s = n / wall;
    f.cpu_us_per_job = (workers_cpu_s(pids, procs) - cpu0) * 1e6 / n;
    f.p50_ms = bench_percentile(latencies, n < MAX_JOBS ? n : MAX_JOBS, 0.5);
    f.p99_ms = bench_percentile(latencies, n < MAX_JOBS ? n : MAX_JOBS, 0.99);
    return f;
}

/* Starts procs workers of peer p; fills worker_pids[p] (for gdlua: its
 * worker processes). Returns the function name they serve. */
static const char *start_peer(int p, const char *peer, int procs, const char *gdlua, const char *dir)
{
    static char fixture[512], script[512];
    char portstr[16], log[128];
    const char *fn;

    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(log, sizeof(log), "%s/%s.log", tmpdir, peer);
    if (strcmp(peer, "gdlua") == 0) {
        char server[64], env[32];
        char *gargv[] = {(char *)gdlua, "--server", server, "--console_port", "0", fixture, NULL};

        snprintf(server, sizeof(server), "127.0.0.1:%d", port);
        snprintf(fixture, sizeof(fixture), "%s/fixtures/echo", dir);
        snprintf(env, sizeof(env), "%d", procs);
        setenv("BENCH_PROCS", env, 1);
        gdlua_pid = bench_spawn(gargv, -1, -1, log);
        if (bench_wait_workers(gdlua_pid, procs, 20000) != procs)
            die("gdlua did not start its processes");
        bench_workers(gdlua_pid, worker_pids[p], MAX_PROCS);
        wait_registered("Bench::Echo::echo", procs);
        return "Bench::Echo::echo";
    }
    for (n_workers[p] = 0; n_workers[p] < procs; n_workers[p]++) {
        pid_t *pid = &worker_pids[p][n_workers[p]];

        if (strcmp(peer, "plain_c") == 0) {
            *pid = start_plain_worker("plain_echo");
        } else {
            bool php = strcmp(peer, "php") == 0;
            char *pargv[] = {php ? "php" : "perl", script, portstr, php ? "php_echo" : "perl_echo", NULL};

            snprintf(script, sizeof(script), "%s/peers/echo_worker.%s", dir, php ? "php" : "pl");
            *pid = bench_spawn(pargv, -1, -1, log);
        }
    }
    fn = strcmp(peer, "plain_c") == 0 ? "plain_echo" : strcmp(peer, "php") == 0 ? "php_echo" : "perl_echo";
    wait_registered(fn, procs);
    return fn;
}

static double median3(double a, double b, double c)
{
    return a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b);
}

/* gdlua's jobs/s while another process SIGKILLs one of its workers every
 * 100 ms; *kills says how many it killed. */
static double measure_storm(gearman_client_st *c, const char *function, pid_t master, int n, int *kills)
{
    int *shared = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double wall;
    pid_t killer;

    if (shared == MAP_FAILED)
        die("mmap");
    *shared = 0;
    warm_up(c, function);
    killer = fork();
    if (killer == 0) {
        for (;;) {
            pid_t child;
            bench_sleep_ms(100);
            if (bench_wait_workers(master, 1, 10000) >= 1 && bench_workers(master, &child, 1) >= 1 &&
                kill(child, SIGKILL) == 0)
                (*shared)++;
        }
    }
    wall = run_jobs(c, function, &n, 1e9);
    bench_stop(&killer);
    *kills = *shared;
    munmap(shared, sizeof(int));
    return n / wall;
}

int main(int argc, char **argv)
{
    static const char *const peers[PEERS] = {"plain_c", "gdlua", "php", "perl"};
    static const int counts[] = {1, 2, 4};
    bool quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    bool have[PEERS] = {true, true, false, false};
    int n = quick ? 500 : 30000, n_counts = 3, kills, lost;
    figures_t fig[PEERS][3];
    char log[128];
    gearman_client_st *c;
    double storm;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_echo GDLUA BENCH_DIR [--quick]\n");
        return 2;
    }
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    have[2] = system("php -r 'exit(class_exists(\"GearmanWorker\") ? 0 : 1);' >/dev/null 2>&1") == 0;
    have[3] = system("perl -MGearman::Worker -e 1 >/dev/null 2>&1") == 0;
    if (!have[2])
        bench_skipped("*", peers[2], "php-gearman not installed (Debian php-cli, php-gearman)");
    if (!have[3])
        bench_skipped("*", peers[3], "Gearman::Worker not installed (Debian libgearman-client-perl)");
    snprintf(log, sizeof(log), "%s/gearmand.log", tmpdir);
    if ((gearmand_pid = bench_start_gearmand(log, &port)) == 0)
        die("cannot start gearmand");
    c = gearman_client_create(NULL);
    gearman_client_add_server(c, "127.0.0.1", (in_port_t)port);
    gearman_client_set_timeout(c, 30000);
    gearman_client_set_complete_fn(c, on_complete);
    gearman_client_set_fail_fn(c, on_fail);

    /* Count by count, every peer's workers up at once (idle ones sleep in
     * gearmand), measured in ROUNDS interleaved rounds: the machine's
     * drift hits every peer alike; each figure is the median round. */
    for (int k = 0; k < n_counts; k++) {
        const char *fn[PEERS];
        figures_t r[PEERS][ROUNDS];
        char scen[32];

        for (int p = 0; p < PEERS; p++)
            if (have[p])
                fn[p] = start_peer(p, peers[p], counts[k], argv[1], argv[2]);
        for (int i = 0; i < ROUNDS; i++)
            for (int p = 0; p < PEERS; p++)
                if (have[p])
                    r[p][i] = measure(c, fn[p], worker_pids[p], counts[k], n / ROUNDS, MAX_MS / ROUNDS);
        stop_workers();
        snprintf(scen, sizeof(scen), "echo_%d", counts[k]);
        for (int p = 0; p < PEERS; p++) {
            figures_t *f = &fig[p][k];

            if (!have[p])
                continue;
            f->jobs_per_s = median3(r[p][0].jobs_per_s, r[p][1].jobs_per_s, r[p][2].jobs_per_s);
            f->cpu_us_per_job = median3(r[p][0].cpu_us_per_job, r[p][1].cpu_us_per_job, r[p][2].cpu_us_per_job);
            f->p50_ms = median3(r[p][0].p50_ms, r[p][1].p50_ms, r[p][2].p50_ms);
            f->p99_ms = median3(r[p][0].p99_ms, r[p][1].p99_ms, r[p][2].p99_ms);
            bench_result(scen, peers[p], "jobs_per_s", f->jobs_per_s, "jobs/s");
            if (counts[k] == 1)
                bench_result(scen, peers[p], "cpu_per_job", f->cpu_us_per_job, "us");
            bench_result(scen, peers[p], "latency_p50", f->p50_ms, "ms");
            bench_result(scen, peers[p], "latency_p99", f->p99_ms, "ms");
        }
    }

    start_peer(1, "gdlua", 1, argv[1], argv[2]);
    lost = errors;
    storm = measure_storm(c, "Bench::Echo::echo", gdlua_pid, quick ? n : n / 2, &kills);
    bench_result("faults", "gdlua", "jobs_per_s", storm, "jobs/s");
    bench_result("faults", "gdlua", "ratio_to_fault_free", storm / fig[1][0].jobs_per_s, "x");
    bench_result("faults", "gdlua", "kills", kills, "count");
    bench_result("faults", "gdlua", "lost", errors - lost, "count");
    gearman_client_free(c);
    cleanup();

    printf("%-28s", "echo jobs/s (p99 ms)");
    for (int p = 0; p < 4; p++)
        printf(" %18s", have[p] ? peers[p] : "-");
    printf("\n");
    for (int k = 0; k < n_counts; k++) {
        printf("%-28d", counts[k]);
        for (int p = 0; p < 4; p++)
            if (have[p])
                printf(" %10.0f (%5.1f)", fig[p][k].jobs_per_s, fig[p][k].p99_ms);
        printf("\n");
    }
    printf("%-28s", "worker CPU per job, 1 proc");
    for (int p = 0; p < 4; p++)
        if (have[p])
            printf(" %15.1f us", fig[p][0].cpu_us_per_job);
    printf("\n");
    printf("gdlua under a kill -9 every 100 ms: %.0f jobs/s, %.2fx the fault-free run, %d kill(s)\n", storm,
           storm / fig[1][0].jobs_per_s, kills);
    printf("up to %d jobs (8 s) each%s; %d error(s) (a lost or wrong result is one)%s%s\n", n, quick ? " (quick)" : "",
           errors, have[2] ? "" : "; php-gearman missing", have[3] ? "" : "; Gearman::Worker missing");
    return errors ? 1 : 0;
}
