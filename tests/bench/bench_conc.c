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
 * IN_FLIGHT requests wait at once, in a round after the measured one whose
 * requests wait HOLD_MS), and at low load (one job at a time)
 * the latency a job adds over the server's delay (p50). And Celery 5 with
 * the gevent pool, one worker of concurrency IN_FLIGHT on a private redis,
 * the same GETs to the same server: BENCH_DIR/peers/celery_conc.py, run
 * with Debian's /usr/bin/python3, prints its own RESULT lines (or SKIPPED
 * when Celery, gevent or redis is not installed). RESULT lines
 * (bench_util.c); --quick sends few jobs and checks every result, never
 * timings.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <libgearman-1.0/gearman.h>

#include "bench_util.h"

#define DELAY_MS    100
#define HOLD_MS     1000 /* the delay of /h/ paths: long enough to hold every job at once */
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
static double backend_ms; /* the delay server's p50 to a plain client (direct_p50) */
static pid_t gearmand_pid, server_pid, gdlua_pid, celery_pid, worker_pid;
static char tmpdir[] = "/tmp/gdlua-bench-conc-XXXXXX";

static void cleanup(void)
{
    char cmd[64];

    bench_stop(&gdlua_pid);
    bench_stop(&celery_pid);
    bench_stop(&worker_pid);
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
    int ms = strncmp(evhttp_request_get_uri(req), "/h/", 3) == 0 ? HOLD_MS : DELAY_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

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

/* A precise timer (timerfd): epoll's own timeout is in whole ms, rounded
 * up, which would add up to 1 ms to every answer. */
static void run_server(int port)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;
    struct evhttp *h;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    h = evhttp_new(base);

    if (evhttp_bind_socket(h, "127.0.0.1", (unsigned short)port) < 0)
        _exit(1);
    evhttp_set_gencb(h, on_request, base);
    event_base_dispatch(base);
    _exit(0);
}

/* ---- the load ---- */

/* One GET of path, straight to the delay server on a new connection
 * (HTTP/1.0: the server closes it after its answer). Returns the body, in
 * reply, or NULL unless the answer is a 200 whose body is path. */
static const char *http_get(const char *path, char *reply, size_t size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    char req[128];
    const char *body;
    size_t got = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0), len;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write(fd, req, (size_t)len) != len) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    while (got < size - 1 && (r = read(fd, reply + got, size - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    reply[got] = '\0';
    body = strstr(reply, "\r\n\r\n");
    if (strncmp(reply, "HTTP/1.", 7) != 0 || strncmp(reply + 8, " 200 ", 5) != 0 || body == NULL ||
        strcmp(body + 4, path) != 0)
        return NULL;
    return body + 4;
}

/* The backend's own latency as a client sees it: LOW_JOBS GETs, one at a
 * time. Returns the p50 in ms; what a worker adds is measured over it. */
static double direct_p50(void)
{
    double lat[LOW_JOBS];

    for (int k = 0; k < LOW_JOBS; k++) {
        char path[32], reply[512];
        double t0 = bench_now_ms();

        snprintf(path, sizeof(path), "/d/%d", k);
        if (http_get(path, reply, sizeof(reply)) == NULL)
            errors++;
        lat[k] = bench_now_ms() - t0;
    }
    qsort(lat, LOW_JOBS, sizeof(double), bench_cmp_double);
    return lat[LOW_JOBS / 2];
}

/* The floor: a plain C libgearman worker (gearman_worker_work) whose job
 * does the same GET with http_get, one job at a time. What it adds over
 * the backend is gearmand's and libgearman's part of a job. */
static void *plain_get(gearman_job_st *job, void *context, size_t *len, gearman_return_t *rc)
{
    char url[128], reply[512], *out = NULL;
    size_t n = gearman_job_workload_size(job);
    const char *path, *body = NULL;

    if (n < sizeof(url)) {
        memcpy(url, gearman_job_workload(job), n);
        url[n] = '\0';
        if ((path = strchr(url + strlen("http://"), '/')) != NULL)
            body = http_get(path, reply, sizeof(reply));
    }
    if (body == NULL || (out = strdup(body)) == NULL) {
        *rc = GEARMAN_WORK_FAIL;
        return NULL;
    }
    *len = strlen(out);
    *rc = GEARMAN_SUCCESS;
    return out;
}

static void run_plain_worker(void)
{
    gearman_worker_st *w = gearman_worker_create(NULL);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (w == NULL || gearman_failed(gearman_worker_add_server(w, "127.0.0.1", (in_port_t)gm_port)) ||
        gearman_failed(gearman_worker_add_function(w, "Bench::Conc::plain", 0, plain_get, NULL)))
        _exit(1);
    for (;;) { /* a failed job fails the run (its client counts it); the worker goes on */
        gearman_return_t rc = gearman_worker_work(w);

        if (rc == GEARMAN_COULD_NOT_CONNECT || rc == GEARMAN_LOST_CONNECTION || rc == GEARMAN_NO_SERVERS)
            _exit(1);
    }
}

typedef struct {
    char url[96];
    char want[32];
    double t0, *latency;
} task_ctx_t;

static int done_jobs, in_flight_now;

static void task_over(gearman_task_st *task, bool ok)
{
    task_ctx_t *t = gearman_task_context(task);
    size_t len = gearman_task_data_size(task);

    if (t->latency)
        *t->latency = bench_now_ms() - t->t0;
    if (!ok || len != strlen(t->want) || memcmp(gearman_task_data(task), t->want, len) != 0)
        errors++;
    free(t);
    done_jobs++;
    in_flight_now--;
}

static gearman_return_t on_complete(gearman_task_st *task)
{
    task_over(task, true);
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
    task_over(task, false);
    return GEARMAN_SUCCESS;
}

/* n jobs of fn with in_flight of them in flight at once: a job submitted
 * as soon as one ends, on a non-blocking client (its tasks freed as they
 * end). Each job's latency, submission to result, into latency[] unless
 * NULL. Returns jobs/s. */
static double run_jobs(gearman_client_st *c, const char *fn, char kind, int n, int in_flight, double *latency)
{
    double t0 = bench_now_ms();
    int sent = 0;

    done_jobs = in_flight_now = 0;
    while (done_jobs < n) {
        gearman_return_t rc;

        while (in_flight_now < in_flight && sent < n) {
            task_ctx_t *t = calloc(1, sizeof(*t));

            if (t == NULL)
                die("out of memory");
            snprintf(t->want, sizeof(t->want), "/%c/%d", kind, sent);
            snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d%s", http_port, t->want);
            t->t0 = bench_now_ms();
            t->latency = latency ? &latency[sent] : NULL;
            if (gearman_client_add_task(c, NULL, t, fn, NULL, t->url, strlen(t->url), &rc) == NULL)
                die("cannot add a task");
            sent++;
            in_flight_now++;
        }
        rc = gearman_client_run_tasks(c);
        if (rc == GEARMAN_IO_WAIT)
            rc = gearman_client_wait(c);
        if (gearman_failed(rc) && rc != GEARMAN_IO_WAIT) {
            fprintf(stderr, "bench_conc: %s\n", gearman_client_error(c));
            die("the load's client failed");
        }
    }
    return n / ((bench_now_ms() - t0) / 1000);
}

static gearman_client_st *load_client(void)
{
    gearman_client_st *c = gearman_client_create(NULL);

    if (c == NULL || gearman_failed(gearman_client_add_server(c, "127.0.0.1", (in_port_t)gm_port)))
        die("cannot make a client");
    gearman_client_add_options(c, GEARMAN_CLIENT_NON_BLOCKING | GEARMAN_CLIENT_FREE_TASKS);
    gearman_client_set_complete_fn(c, on_complete);
    gearman_client_set_fail_fn(c, on_fail);
    return c;
}

/* The floor's latency at one job at a time (p50, over the backend). */
static void measure_plain(void)
{
    gearman_client_st *c = load_client();
    double latency[LOW_JOBS];
    pid_t pid;
    int before = errors;

    fflush(stdout);
    if ((pid = fork()) == 0)
        run_plain_worker();
    worker_pid = pid;
    for (double end = bench_now_ms() + 20000; bench_gearmand_workers(gm_port, "Bench::Conc::plain") < 1;)
        if (bench_now_ms() > end)
            die("the plain C worker did not register with gearmand");
        else
            bench_sleep_ms(20);
    run_jobs(c, "Bench::Conc::plain", 'j', 5, 1, NULL); /* warm */
    run_jobs(c, "Bench::Conc::plain", 'j', LOW_JOBS, 1, latency);
    qsort(latency, LOW_JOBS, sizeof(double), bench_cmp_double);
    bench_result("conc_1000", "plain_c", "added_latency_ms", latency[LOW_JOBS / 2] - backend_ms, "ms");
    printf("  %-28s %9s jobs/s  %8s KiB per job in flight  +%.3f ms at one job (%d errors)\n",
           "plain C worker (one job at a time)", "-", "-", latency[LOW_JOBS / 2] - backend_ms, errors - before);
    gearman_client_free(c);
    bench_stop(&worker_pid);
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

static void measure(const char *peer, const char *gdlua, const char *bench_dir, int procs, int conc, int in_flight,
                    int n)
{
    gearman_client_st *c;
    double latency[LOW_JOBS], jobs_per_s;
    int before = errors;

    start_gdlua(gdlua, bench_dir, procs, conc);
    c = load_client();
    run_jobs(c, "Bench::Conc::get", 'j', in_flight, in_flight, NULL); /* warm: every connection made */
    jobs_per_s = run_jobs(c, "Bench::Conc::get", 'j', n, in_flight, NULL);
    /* Memory after the run, with in_flight jobs held at once: at 100 ms a
     * job, a worker that grabs fewer than in_flight jobs per 100 ms never
     * holds them all, so these wait HOLD_MS. */
    sh->pss_kb = -1;
    sh->target = in_flight;
    run_jobs(c, "Bench::Conc::get", 'h', in_flight, in_flight, NULL);
    sh->target = 0;
    run_jobs(c, "Bench::Conc::get", 'j', LOW_JOBS, 1, latency);
    qsort(latency, LOW_JOBS, sizeof(double), bench_cmp_double);
    bench_result("conc_1000", peer, "jobs_per_s", jobs_per_s, "jobs/s");
    if (sh->pss_kb >= 0)
        bench_result("conc_1000", peer, "pss_per_job_kib", (double)sh->pss_kb / in_flight, "KiB");
    bench_result("conc_1000", peer, "added_latency_ms", latency[LOW_JOBS / 2] - backend_ms, "ms");
    printf("  %-28s %9.0f jobs/s  %8.1f KiB per job in flight  +%.3f ms at one job (%d errors)\n", peer, jobs_per_s,
           sh->pss_kb >= 0 ? (double)sh->pss_kb / in_flight : -1.0, latency[LOW_JOBS / 2] - backend_ms,
           errors - before);
    gearman_client_free(c);
    bench_stop(&gdlua_pid);
}

/* The Celery peer (peers/celery_conc.py): n jobs, in_flight at once, its
 * output (RESULT, or SKIPPED) on this one's stdout. */
static void measure_celery(const char *bench_dir, int in_flight, int n)
{
    char script[4096], url[64], dir[128], nflight[16], njobs[16], nlow[16], backend[32];
    const char *python = "/usr/bin/python3";
    int st;

    if (access(python, X_OK) != 0) {
        bench_skipped("conc_1000", "celery_gevent",
                      "not installed: /usr/bin/python3 (python3-celery, python3-gevent, "
                      "python3-redis, redis-server)");
        return;
    }
    snprintf(script, sizeof(script), "%s/peers/celery_conc.py", bench_dir);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_port);
    snprintf(dir, sizeof(dir), "%s/celery", tmpdir);
    snprintf(nflight, sizeof(nflight), "%d", in_flight);
    snprintf(njobs, sizeof(njobs), "%d", n);
    snprintf(nlow, sizeof(nlow), "%d", LOW_JOBS);
    snprintf(backend, sizeof(backend), "%.6f", backend_ms);
    fflush(stdout);
    if ((celery_pid = fork()) == 0) {
        char *argv[] = {(char *)python, script, "--url",      url,  "--tmp",        dir,     "--in-flight", nflight,
                        "--jobs",       njobs,  "--low-jobs", nlow, "--backend-ms", backend, NULL};

        prctl(PR_SET_PDEATHSIG, SIGTERM); /* it stops its redis and worker */
        execv(python, argv);
        _exit(127);
    }
    if (celery_pid < 0 || waitpid(celery_pid, &st, 0) != celery_pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_conc: the Celery peer failed\n");
        errors++;
    }
    celery_pid = 0;
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
    backend_ms = direct_p50();
    bench_result("conc_1000", "backend", "latency_ms", backend_ms, "ms");
    printf("  %-28s +%.3f ms over its %d ms, p50 of %d GETs straight to it\n", "the delay server",
           backend_ms - DELAY_MS, DELAY_MS, LOW_JOBS);
    measure_plain();
    measure("gdlua", argv[1], argv[2], 1, in_flight, in_flight, n);
    measure("gdlua_processes", argv[1], argv[2], in_flight, 1, in_flight, quick ? n : n / 4);
    measure_celery(argv[2], in_flight, quick ? n : n / 4);
    cleanup();
    if (errors)
        fprintf(stderr, "bench_conc: %d wrong or failed results\n", errors);
    return errors ? 1 : 0;
}
