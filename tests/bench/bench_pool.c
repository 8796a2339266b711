/*
 * bench_pool.c: what a pool of gdlua processes costs and how it scales,
 * measured in one run on a private gearmand (loopback, a free port).
 *
 *   bench_pool GDLUA BENCH_DIR [--quick]
 *
 *   - memory: gdlua on BENCH_DIR/fixtures/pool (an echo job, the image
 *     module loaded) with 1, 10 and 50 processes, each after about 1000
 *     jobs: PSS and private dirty per process (/proc/PID/smaps_rollup),
 *     and the private dirty each extra process adds (master included);
 *   - idle cost: the master's CPU while the 50 processes sit idle 30 s;
 *   - console: the "status" round-trip with 500 processes;
 *   - fib fan-out (seed 2): the sum of fib(1..44) as one task set, with 1
 *     and 2 processes, on gdlua's C module, on pure LuaJIT
 *     (fixtures/fib) and on a plain libgearman C worker (the seed's
 *     worker); every sum is checked.
 * Prints a table and RESULT lines (bench_util.c). --quick runs every
 * part at tiny sizes and checks results and counts, never timings.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libgearman-1.0/gearman.h>

#include "bench_util.h"

#define MAX_PROCS 600
#define BATCH     100

static int port, console_port, errors;
static pid_t gearmand_pid, gdlua_pid, plain_pids[2];
static char tmpdir[] = "/tmp/gdlua-bench-pool-XXXXXX";

static void cleanup(void)
{
    char cmd[64];

    bench_stop(&gdlua_pid);
    for (int i = 0; i < 2; i++)
        bench_stop(&plain_pids[i]);
    bench_stop(&gearmand_pid);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Ends the run; what gdlua last logged goes to stderr first, as the log's
 * directory is removed (a failure under load is otherwise a bare line). */
static void die(const char *msg)
{
    char cmd[128];

    fprintf(stderr, "bench_pool: %s\n", msg);
    bench_stop(&gdlua_pid);
    snprintf(cmd, sizeof(cmd), "tail -n 30 %s/gdlua.log >&2", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_pool: no gdlua log\n");
    cleanup();
    exit(1);
}

/* gdlua on fixture dir with procs processes per job (BENCH_PROCS) and a
 * console on a free port; waits until its jobs processes run and
 * gearmand lists procs for function. */
static void start_gdlua(const char *gdlua, const char *dir, const char *fixture, int procs, int jobs,
                        const char *function)
{
    char server[64], log[128], cport[16], fix[512], env[16];
    char *argv[] = {(char *)gdlua, "--server", server, "--console_port", cport, "--max_spawn_rate", "1000", "--logfile",
                    log,           fix,        NULL};
    double end = bench_now_ms() + 180000;

    console_port = bench_free_port();
    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    snprintf(cport, sizeof(cport), "%d", console_port);
    snprintf(log, sizeof(log), "%s/gdlua.log", tmpdir);
    snprintf(fix, sizeof(fix), "%s/fixtures/%s", dir, fixture);
    snprintf(env, sizeof(env), "%d", procs);
    setenv("BENCH_PROCS", env, 1);
    gdlua_pid = bench_spawn(argv, -1, -1, log);
    if (bench_wait_workers(gdlua_pid, procs * jobs, 180000) != procs * jobs)
        die("gdlua did not start its processes");
    while (bench_gearmand_workers(port, function) < procs)
        if (bench_now_ms() > end)
            die("gdlua's processes did not register");
        else
            bench_sleep_ms(10);
}

static gearman_return_t on_echo(gearman_task_st *task)
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

/* n echo jobs, BATCH in flight, every result checked. */
static void echo_jobs(gearman_client_st *c, const char *function, int n)
{
    static char w[BATCH][32];

    gearman_client_set_complete_fn(c, on_echo);
    for (int sent = 0; sent < n; sent += BATCH) {
        gearman_return_t rc;

        for (int i = 0; i < BATCH && sent + i < n; i++) {
            snprintf(w[i], sizeof(w[i]), "job %d", sent + i);
            gearman_client_add_task(c, NULL, w[i], function, NULL, w[i], strlen(w[i]), &rc);
        }
        if (gearman_failed(gearman_client_run_tasks(c)))
            errors++;
        gearman_client_task_free_all(c);
    }
}

/* Memory with procs processes after jobs_each jobs per process. */
static void memory(gearman_client_st *c, const char *gdlua, const char *dir, int procs, int jobs_each,
                   double *total_pd_kb)
{
    static pid_t pids[MAX_PROCS];
    long pss = 0, pd = 0;
    char scen[32];
    int n;

    start_gdlua(gdlua, dir, "pool", procs, 1, "Bench::Pool::echo");
    echo_jobs(c, "Bench::Pool::echo", procs * jobs_each);
    n = bench_workers(gdlua_pid, pids, MAX_PROCS);
    for (int i = 0; i < n; i++) {
        long p = bench_smaps(pids[i], "Pss"), d = bench_smaps(pids[i], "Private_Dirty");
        if (p < 0 || d < 0) {
            fprintf(stderr, "bench_pool: cannot read smaps_rollup of %d\n", (int)pids[i]);
            errors++;
        }
        pss += p;
        pd += d;
    }
    if (n != procs) {
        fprintf(stderr, "bench_pool: %d processes, want %d\n", n, procs);
        errors++;
    }
    *total_pd_kb = pd + bench_smaps(gdlua_pid, "Private_Dirty");
    snprintf(scen, sizeof(scen), "memory_%d", procs);
    bench_result(scen, "gdlua", "pss_per_process", pss / 1024.0 / n, "MiB");
    bench_result(scen, "gdlua", "private_dirty_per_process", pd / 1024.0 / n, "MiB");
    bench_result(scen, "gdlua", "master_private_dirty", bench_smaps(gdlua_pid, "Private_Dirty") / 1024.0, "MiB");
    printf("%-44s %3d procs: PSS %6.2f MiB, private dirty %6.2f MiB per process\n", "memory after jobs", procs,
           pss / 1024.0 / n, pd / 1024.0 / n);
}

/* The master's CPU over secs seconds of idleness, in % of a core. */
static double idle_cost(int secs)
{
    double c0 = bench_cpu_s(gdlua_pid), t0 = bench_now_ms();

    bench_sleep_ms(secs * 1000);
    return (bench_cpu_s(gdlua_pid) - c0) * 1e5 / (bench_now_ms() - t0);
}

/* One console command's round-trip: ms until the reply's "." line; the
 * reply's line count in *lines. */
static double console_rtt(int fd, FILE *in, int *lines)
{
    char line[1024];
    double t0 = bench_now_ms();

    *lines = 0;
    if (write(fd, "status\r\n", 8) != 8)
        return -1;
    while (fgets(line, sizeof(line), in) && strcmp(line, ".\r\n") != 0)
        (*lines)++;
    return bench_now_ms() - t0;
}

static void console(const char *gdlua, const char *dir, int procs, int tries)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(0), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    double ms[200];
    int fd, lines = 0;
    FILE *in;

    start_gdlua(gdlua, dir, "pool", procs, 1, "Bench::Pool::echo");
    a.sin_port = htons(console_port);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    for (double end = bench_now_ms() + 10000; connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0; bench_sleep_ms(20))
        if (bench_now_ms() > end)
            die("cannot connect to the console");
    in = fdopen(dup(fd), "r");
    for (int i = 0; i < tries; i++) {
        ms[i] = console_rtt(fd, in, &lines);
        if (ms[i] < 0 || lines != 1) {
            fprintf(stderr, "bench_pool: console status: %d line(s), want 1\n", lines);
            errors++;
        }
    }
    fclose(in);
    close(fd);
    bench_result("console", "gdlua", "status_p50", bench_percentile(ms, tries, 0.5), "ms");
    bench_result("console", "gdlua", "status_p99", bench_percentile(ms, tries, 0.99), "ms");
    bench_result("console", "gdlua", "processes", bench_workers(gdlua_pid, NULL, 0), "count");
    printf("%-44s %d procs: p50 %.2f ms, p99 %.2f ms\n", "console status round-trip", procs,
           bench_percentile(ms, tries, 0.5), bench_percentile(ms, tries, 0.99));
    bench_stop(&gdlua_pid);
}

/* The seed's C worker: long recursion, the result as a decimal. */
static long plain_fib(long n)
{
    return n < 2 ? 1 : plain_fib(n - 2) + plain_fib(n - 1);
}

static gearman_return_t plain_fib_job(gearman_job_st *job, void *context)
{
    char in[32], out[32];
    size_t len = gearman_job_workload_size(job) < 31 ? gearman_job_workload_size(job) : 31;

    memcpy(in, gearman_job_workload(job), len);
    in[len] = '\0';
    snprintf(out, sizeof(out), "%ld", plain_fib(atol(in)));
    gearman_job_send_complete(job, out, strlen(out));
    return GEARMAN_SUCCESS;
}

static pid_t start_plain_fib(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        gearman_worker_st *w = gearman_worker_create(NULL);
        gearman_worker_add_server(w, "127.0.0.1", (in_port_t)port);
        gearman_worker_define_function(w, "plain_fib", 9, gearman_function_create(plain_fib_job), 0, NULL);
        for (;;)
            gearman_worker_work(w);
    }
    return pid;
}

static gearman_return_t on_fib(gearman_task_st *task)
{
    double *sum = gearman_task_context(task);
    char buf[64];
    size_t len = gearman_task_data_size(task) < 63 ? gearman_task_data_size(task) : 63;

    memcpy(buf, gearman_task_data(task), len);
    buf[len] = '\0';
    *sum += strtod(buf, NULL);
    return GEARMAN_SUCCESS;
}

/* The seed's client: fib(1..top) as one task set; seconds, sum checked. */
static double fan_out(gearman_client_st *c, const char *function, int top)
{
    static char w[64][8];
    double sum = 0, want = 0, a = 1, b = 1, t0 = bench_now_ms(), s;
    gearman_return_t rc;

    for (int n = 1; n <= top; n++) {
        double t = a + b;
        want += b; /* b is fib(n), with fib(0) = fib(1) = 1 */
        a = b, b = t;
    }
    gearman_client_set_complete_fn(c, on_fib);
    for (int n = 1; n <= top; n++) {
        snprintf(w[n], sizeof(w[n]), "%d", n);
        gearman_client_add_task(c, NULL, &sum, function, NULL, w[n], strlen(w[n]), &rc);
    }
    if (gearman_failed(gearman_client_run_tasks(c)))
        errors++;
    gearman_client_task_free_all(c);
    s = (bench_now_ms() - t0) / 1000;
    if (sum != want) {
        fprintf(stderr, "bench_pool: %s: sum of fib(1..%d) = %.0f, want %.0f\n", function, top, sum, want);
        errors++;
    }
    return s;
}

static void fib(gearman_client_st *c, const char *gdlua, const char *dir, int top)
{
    static const char *const peers[] = {"gdlua_c", "gdlua_luajit", "plain_c"};
    double t[3][2];

    for (int k = 0; k < 2; k++) {
        int procs = k + 1;
        char scen[32];
        double end;

        start_gdlua(gdlua, dir, "fib", procs, 2, "Bench::Fib::fib_lua");
        t[0][k] = fan_out(c, "Bench::Fib::fib", top);
        t[1][k] = fan_out(c, "Bench::Fib::fib_lua", top);
        bench_stop(&gdlua_pid);
        for (int i = 0; i < procs; i++)
            plain_pids[i] = start_plain_fib();
        /* A worker that never registers (it could not connect, or died)
         * ends the run with a message, not a wait for ever. */
        end = bench_now_ms() + 60000;
        while (bench_gearmand_workers(port, "plain_fib") < procs)
            if (bench_now_ms() > end)
                die("the plain libgearman fib workers did not register with gearmand within 60 s");
            else
                bench_sleep_ms(10);
        t[2][k] = fan_out(c, "plain_fib", top);
        for (int i = 0; i < procs; i++)
            bench_stop(&plain_pids[i]);
        snprintf(scen, sizeof(scen), "fib_%d", procs);
        for (int p = 0; p < 3; p++)
            bench_result(scen, peers[p], "seconds", t[p][k], "s");
    }
    for (int p = 0; p < 3; p++) {
        bench_result("fib_speedup", peers[p], "speedup_2_over_1", t[p][0] / t[p][1], "x");
        printf("%-44s %-12s 1 proc %7.2f s, 2 procs %7.2f s (%.2fx)\n", "sum of fib(1..N) fan-out", peers[p], t[p][0],
               t[p][1], t[p][0] / t[p][1]);
    }
}

int main(int argc, char **argv)
{
    bool quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    int counts[] = {1, 10, 50}, n_counts = 3, jobs_each = quick ? 5 : 1000;
    double pd[3];
    gearman_client_st *c;
    char log[128];

    if (argc < 3) {
        fprintf(stderr, "usage: bench_pool GDLUA BENCH_DIR [--quick]\n");
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
    gearman_client_set_timeout(c, 120000);
    gearman_client_set_fail_fn(c, on_fail);

    for (int k = 0; k < n_counts; k++) {
        memory(c, argv[1], argv[2], counts[k], jobs_each, &pd[k]);
        if (k == n_counts - 1) {
            double pct = idle_cost(quick ? 1 : 30);
            bench_result("idle", "gdlua", "master_cpu", pct, "%");
            printf("%-44s %d procs: %.3f %% of a core\n", "master CPU while idle", counts[k], pct);
        }
        bench_stop(&gdlua_pid);
    }
    bench_result("memory", "gdlua", "private_dirty_per_extra_process",
                 (pd[n_counts - 1] - pd[0]) / 1024.0 / (counts[n_counts - 1] - counts[0]), "MiB");
    console(argv[1], argv[2], quick ? 20 : 500, quick ? 10 : 200);
    fib(c, argv[1], argv[2], quick ? 20 : 44);
    gearman_client_free(c);
    cleanup();
    printf("%d error(s)%s\n", errors, quick ? " (quick: figures not meaningful)" : "");
    return errors ? 1 : 0;
}
