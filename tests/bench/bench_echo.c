/*
 * bench_echo.c: the cost of running a job in gdlua against a plain
 * libgearman C worker, measured in one run on the same gearmand.
 *
 *   bench_echo GDLUA FIXTURE_DIR [--quick]
 *
 * Both workers echo the workload back, one process each. A client sends
 * N jobs in task sets of 100; the table shows jobs per second and the
 * worker's CPU time per job (utime + stime from /proc), and the ratios.
 * Then gdlua again, under a storm: a kill -9 of its worker process every
 * 100 ms; every result is still checked (a lost or wrong one is an
 * error), and the throughput is shown as a ratio of the fault-free run.
 * --quick sends few jobs and checks every result, never timings.
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

#define BATCH 100

static int port, errors;
static pid_t gearmand_pid, worker_pid;
static char tmpdir[] = "/tmp/gdlua-bench-echo-XXXXXX";

static void cleanup(void)
{
    char cmd[64];

    bench_stop(&worker_pid);
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

/* The peer: the plainest libgearman worker there is. */
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

/* CPU seconds (user + system) a process has used. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    fclose(f);
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static gearman_return_t on_complete(gearman_task_st *task)
{
    const char *want = gearman_task_context(task);
    size_t len = gearman_task_data_size(task);

    if (len != strlen(want) || memcmp(gearman_task_data(task), want, len) != 0)
        errors++;
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
    errors++;
    return GEARMAN_SUCCESS;
}

/* Sends n jobs to function; returns the wall time in seconds. */
static double run_jobs(gearman_client_st *c, const char *function, int n)
{
    static char workloads[BATCH][32];
    double t0 = bench_now_ms();

    for (int sent = 0; sent < n; sent += BATCH) {
        gearman_return_t rc;

        for (int i = 0; i < BATCH && sent + i < n; i++) {
            snprintf(workloads[i], sizeof(workloads[i]), "job %d", sent + i);
            gearman_client_add_task(c, NULL, workloads[i], function, NULL, workloads[i], strlen(workloads[i]), &rc);
        }
        if (gearman_failed(gearman_client_run_tasks(c)))
            errors++;
        gearman_client_task_free_all(c);
    }
    return (bench_now_ms() - t0) / 1000;
}

/* Waits until pid is a registered worker: a first job goes through. */
static void warm_up(gearman_client_st *c, const char *function)
{
    size_t len;
    gearman_return_t rc;
    void *r = gearman_client_do(c, function, NULL, "warm", 4, &len, &rc);

    if (rc != GEARMAN_SUCCESS)
        die("the worker does not answer");
    free(r);
}

typedef struct {
    double jobs_per_s, cpu_us_per_job;
} figures_t;

static figures_t measure(gearman_client_st *c, const char *function, pid_t pid, int n)
{
    double cpu0, wall;
    figures_t f;

    warm_up(c, function);
    cpu0 = cpu_s(pid);
    wall = run_jobs(c, function, n);
    f.jobs_per_s = n / wall;
    f.cpu_us_per_job = (cpu_s(pid) - cpu0) * 1e6 / n;
    return f;
}

/* The pid of gdlua's only worker process, waited for up to 10 s. */
static pid_t gdlua_child(pid_t master)
{
    pid_t child = 0;

    for (double end = bench_now_ms() + 10000; bench_now_ms() < end; bench_sleep_ms(10))
        if (bench_workers(master, &child, 1) >= 1)
            return child;
    return 0;
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
            if ((child = gdlua_child(master)) > 0 && kill(child, SIGKILL) == 0)
                (*shared)++;
        }
    }
    wall = run_jobs(c, function, n);
    bench_stop(&killer);
    *kills = *shared;
    munmap(shared, sizeof(int));
    return n / wall;
}

int main(int argc, char **argv)
{
    bool quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    int n = quick ? 500 : 50000;
    char log[128], server[64];
    gearman_client_st *c;
    figures_t plain, gd;
    double storm;
    pid_t child;
    int kills;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_echo GDLUA FIXTURE_DIR [--quick]\n");
        return 2;
    }
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    snprintf(log, sizeof(log), "%s/gearmand.log", tmpdir);
    if ((gearmand_pid = bench_start_gearmand(log, &port)) == 0)
        die("cannot start gearmand");
    c = gearman_client_create(NULL);
    gearman_client_add_server(c, "127.0.0.1", (in_port_t)port);
    gearman_client_set_timeout(c, 30000);
    gearman_client_set_complete_fn(c, on_complete);
    gearman_client_set_fail_fn(c, on_fail);

    worker_pid = start_plain_worker("plain_echo");
    plain = measure(c, "plain_echo", worker_pid, n);
    bench_stop(&worker_pid);

    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    snprintf(log, sizeof(log), "%s/gdlua.log", tmpdir);
    {
        char *gargv[] = {argv[1], "--server", server, "--console_port", "0", argv[2], NULL};
        worker_pid = bench_spawn(gargv, -1, -1, log);
    }
    child = gdlua_child(worker_pid);
    if (child == 0)
        die("gdlua started no process");
    gd = measure(c, "Bench::Echo::echo", child, n);
    storm = measure_storm(c, "Bench::Echo::echo", worker_pid, quick ? n : n / 2, &kills);
    gearman_client_free(c);
    cleanup();

    printf("%-40s %14s %14s %8s\n", "echo jobs, one worker process", "gdlua (Lua)", "libgearman C", "ratio");
    printf("%-40s %14.0f %14.0f %7.2fx\n", "jobs per second", gd.jobs_per_s, plain.jobs_per_s,
           gd.jobs_per_s / plain.jobs_per_s);
    printf("%-40s %11.1f us %11.1f us %7.2fx\n", "worker CPU per job", gd.cpu_us_per_job, plain.cpu_us_per_job,
           plain.cpu_us_per_job / gd.cpu_us_per_job);
    printf("%-40s %14.0f %14s %7.2fx\n", "jobs per second, kill -9 every 100 ms", storm, "", storm / gd.jobs_per_s);
    printf("ratios above 1: gdlua ahead; the storm's ratio is to gdlua without it (goal: >= 0.5x); %d jobs each%s, "
           "%d kill(s) in the storm; %d error(s) (a lost or wrong result is one)\n",
           n, quick ? " (quick)" : "", kills, errors);
    return errors ? 1 : 0;
}
