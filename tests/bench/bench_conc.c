/*
 * bench_conc.c: I/O-bound jobs, many in one process (the concurrency
 * attribute) against one process per job.
 *
 *   bench_conc GDLUA BENCH_DIR [--quick]
 *
 * Each job is one HTTP GET (gdlua.http, BENCH_DIR/fixtures/conc) to a
 * local server this part forks (libevent's evhttp) that answers every
 * request after DELAY_MS with its path, so every result is checked. The
 * load keeps IN_FLIGHT jobs in flight (gearman task sets, refilled as
 * they end). Peers: gdlua with one process of concurrency IN_FLIGHT, and
 * gdlua with IN_FLIGHT processes of concurrency 1 (today's way). For each:
 * jobs/s, the workers' PSS per job in flight (sampled by the server when
 * IN_FLIGHT requests wait at once), and at low load (one job at a time)
 * the latency a job adds over the server's delay (p50). RESULT lines
 * (bench_util.c); --quick sends few jobs and checks every result, never
 * timings.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <libgearman-1.0/gearman.h>

#include "bench_util.h"

#define DELAY_MS    100
#define LOW_JOBS    50
#define WORKERS_MAX 1000

typedef struct {
    volatile int pending, target;
    volatile pid_t watch[WORKERS_MAX]; /* the workers whose PSS is sampled */
    volatile int nwatch;
    volatile long pss_kb; /* their PSS when target requests waited at once; -1: not yet */
} shared_t;

static shared_t *sh;
static int gm_port, http_port, errors;
static pid_t gearmand_pid, server_pid, gdlua_pid;
static char tmpdir[] = "/tmp/gdlua-bench-conc-XXXXXX";

static void cleanup(void)
{
    char cmd[64];

    bench_stop(&gdlua_pid);
    bench_stop(&server_pid);
    bench_stop(&gearmand_pid);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_conc: %s\n", msg);
    cleanup();
    exit(1);
}

/* ---- the delay server ---- */

typedef struct {
    struct evhttp_request *req;
    struct event *ev;
} delayed_t;

static void on_delayed(evutil_socket_t fd, short what, void *arg)
{
    delayed_t *d = arg;
    struct evbuffer *b = evbuffer_new();

    evbuffer_add_printf(b, "%s", evhttp_request_get_uri(d->req));
    evhttp_send_reply(d->req, 200, "OK", b);
    evbuffer_free(b);
    event_free(d->ev);
    free(d);
    sh->pending--;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct event_base *base = arg;
    delayed_t *d = calloc(1, sizeof(*d));
    struct timeval tv = {0, DELAY_MS * 1000};

    d->req = req;
    d->ev = evtimer_new(base, on_delayed, d);
    evtimer_add(d->ev, &tv);
    if (++sh->pending >= sh->target && sh->target > 0 && sh->pss_kb < 0) {
        long kb = 0;

        for (int i = 0; i < sh->nwatch; i++)
            kb += bench_smaps(sh->watch[i], "Pss");
        sh->pss_kb = kb;
    }
}

static void run_server(int port)
{
    struct event_base *base = event_base_new();
    struct evhttp *h = evhttp_new(base);

    if (evhttp_bind_socket(h, "127.0.0.1", (unsigned short)port) < 0)
        _exit(1);
    evhttp_set_gencb(h, on_request, base);
    event_base_dispatch(base);
    _exit(0);
}

/* ---- the load ---- */

typedef struct {
    char url[96];
    char want[32];
    double t0, *latency;
} task_ctx_t;

static gearman_return_t on_complete(gearman_task_st *task)
{
    task_ctx_t *t = gearman_task_context(task);
    size_t len = gearman_task_data_size(task);

    if (t->latency)
        *t->latency = bench_now_ms() - t->t0;
    if (len != strlen(t->want) || memcmp(gearman_task_data(task), t->want, len) != 0)
        errors++;
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
    errors++;
    return GEARMAN_SUCCESS;
}

/* n jobs, batch in flight at once, in task sets of batch. Returns jobs/s. */
static double run_jobs(gearman_client_st *c, int n, int batch, double *latency)
{
    task_ctx_t *ctx = calloc((size_t)batch, sizeof(*ctx));
    double t0 = bench_now_ms();
    int sent;

    for (sent = 0; sent < n; sent += batch) {
        gearman_return_t rc;

        for (int i = 0; i < batch && sent + i < n; i++) {
            snprintf(ctx[i].want, sizeof(ctx[i].want), "/j/%d", sent + i);
            snprintf(ctx[i].url, sizeof(ctx[i].url), "http://127.0.0.1:%d%s", http_port, ctx[i].want);
            ctx[i].t0 = bench_now_ms();
            ctx[i].latency = latency ? &latency[sent + i] : NULL;
            gearman_client_add_task(c, NULL, &ctx[i], "Bench::Conc::get", NULL, ctx[i].url, strlen(ctx[i].url), &rc);
        }
        if (gearman_failed(gearman_client_run_tasks(c)))
            errors++;
        gearman_client_task_free_all(c);
    }
    free(ctx);
    return n / ((bench_now_ms() - t0) / 1000);
}

static void start_gdlua(const char *gdlua, const char *bench_dir, int procs, int conc)
{
    char server[32], fixtures[4096], log[128], env[32];
    double end = bench_now_ms() + 120000;
    pid_t pids[WORKERS_MAX];

    snprintf(server, sizeof(server), "127.0.0.1:%d", gm_port);
    snprintf(fixtures, sizeof(fixtures), "%s/fixtures/conc", bench_dir);
    snprintf(log, sizeof(log), "%s/gdlua.log", tmpdir);
    snprintf(env, sizeof(env), "%d", procs);
    setenv("BENCH_PROCS", env, 1);
    snprintf(env, sizeof(env), "%d", conc);
    setenv("BENCH_CONC", env, 1);
    {
        char *argv[] = {(char *)gdlua, "--server",  server, "--console_port", "0", "--max_spawn_rate",
                        "1000",        "--logfile", log,    fixtures,         NULL};
        gdlua_pid = bench_spawn(argv, -1, -1, log);
    }
    while (bench_gearmand_workers(gm_port, "Bench::Conc::get") < procs)
        if (bench_now_ms() > end)
            die("the workers did not register with gearmand");
        else
            bench_sleep_ms(20);
    sh->nwatch = bench_workers(gdlua_pid, pids, WORKERS_MAX);
    for (int i = 0; i < sh->nwatch; i++)
        sh->watch[i] = pids[i];
}

static int by_double(const void *a, const void *b)
{
    return bench_cmp_double(a, b);
}

static void measure(const char *peer, const char *gdlua, const char *bench_dir, int procs, int conc, int in_flight,
                    int n)
{
    gearman_client_st *c = gearman_client_create(NULL);
    double latency[LOW_JOBS], jobs_per_s;
    int before = errors;

    start_gdlua(gdlua, bench_dir, procs, conc);
    gearman_client_add_server(c, "127.0.0.1", (in_port_t)gm_port);
    gearman_client_set_complete_fn(c, on_complete);
    gearman_client_set_fail_fn(c, on_fail);
    run_jobs(c, in_flight, in_flight, NULL); /* warm: every connection made */
    sh->pss_kb = -1;
    sh->target = in_flight;
    jobs_per_s = run_jobs(c, n, in_flight, NULL);
    sh->target = 0;
    run_jobs(c, LOW_JOBS, 1, latency);
    qsort(latency, LOW_JOBS, sizeof(double), by_double);
    bench_result("conc_1000", peer, "jobs_per_s", jobs_per_s, "jobs/s");
    if (sh->pss_kb >= 0)
        bench_result("conc_1000", peer, "pss_per_job_kib", (double)sh->pss_kb / in_flight, "KiB");
    bench_result("conc_1000", peer, "added_latency_ms", latency[LOW_JOBS / 2] - DELAY_MS, "ms");
    printf("  %-28s %9.0f jobs/s  %8.1f KiB per job in flight  +%.3f ms at one job (%d errors)\n", peer, jobs_per_s,
           sh->pss_kb >= 0 ? (double)sh->pss_kb / in_flight : -1.0, latency[LOW_JOBS / 2] - DELAY_MS, errors - before);
    gearman_client_free(c);
    bench_stop(&gdlua_pid);
}

int main(int argc, char **argv)
{
    bool quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    int in_flight = quick ? 20 : 1000, n = quick ? 60 : 40000;
    char log[128];

    if (argc < 3) {
        fprintf(stderr, "usage: bench_conc GDLUA BENCH_DIR [--quick]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap");
    sh->pss_kb = -1;
    snprintf(log, sizeof(log), "%s/gearmand.log", tmpdir);
    if ((gearmand_pid = bench_start_gearmand(log, &gm_port)) == 0)
        die("cannot start gearmand");
    http_port = bench_free_port();
    if ((server_pid = fork()) == 0)
        run_server(http_port);
    for (double end = bench_now_ms() + 10000; !bench_port_open(http_port);)
        if (bench_now_ms() > end)
            die("the delay server did not start");
        else
            bench_sleep_ms(10);
    printf("I/O-bound jobs: one HTTP GET each, answered after %d ms; %d in flight, %d jobs\n", DELAY_MS, in_flight, n);
    measure("gdlua", argv[1], argv[2], 1, in_flight, in_flight, n);
    measure("gdlua_processes", argv[1], argv[2], in_flight, 1, in_flight, quick ? n : n / 4);
    bench_skipped("conc_1000", "celery_gevent",
                  "not set up in this run (python3-celery, python3-gevent and a "
                  "broker are not among run.sh's packages yet)");
    cleanup();
    if (errors)
        fprintf(stderr, "bench_conc: %d wrong or failed results\n", errors);
    return errors ? 1 : 0;
}
