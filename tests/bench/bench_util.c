/*
 * bench_util.c: helpers shared by the benchmark programs (bench_util.h).
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

double bench_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* A port nothing listens on now (the kernel's pick for port 0). */
int bench_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), p;

    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    p = ntohs(a.sin_port);
    close(fd);
    return p;
}

bool bench_port_open(int p)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    close(fd);
    return ok;
}

/* Runs argv with stdin/stdout as given (-1: /dev/null) and stderr
 * appended to log. */
pid_t bench_spawn(char *const argv[], int in, int out, const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        FILE *f;

        dup2(in >= 0 ? in : null, 0);
        dup2(out >= 0 ? out : null, 1);
        f = freopen(log, "a", stderr);
        (void)f;
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* SIGTERM, then SIGKILL after 5 s; reaps it. */
void bench_stop(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 200 && waitpid(*pid, NULL, WNOHANG) == 0; i++)
        bench_sleep_ms(25);
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

/* /usr/sbin/gearmand on a free loopback port (set in *port); retries on
 * another port if one was taken meanwhile. Returns its pid, or 0. */
pid_t bench_start_gearmand(const char *log, int *port)
{
    char portstr[16];
    pid_t pid = 0;

    for (int attempt = 0; attempt < 5 && pid == 0; attempt++) {
        char *argv[] = {"/usr/sbin/gearmand", "-L", "127.0.0.1", "-p", portstr, "-t", "0", "--log-file=none", NULL};
        double end;

        *port = bench_free_port();
        snprintf(portstr, sizeof(portstr), "%d", *port);
        pid = bench_spawn(argv, -1, -1, log);
        for (end = bench_now_ms() + 10000; !bench_port_open(*port) && bench_now_ms() < end;)
            bench_sleep_ms(10);
        if (!bench_port_open(*port) || waitpid(pid, NULL, WNOHANG) != 0)
            bench_stop(&pid);
    }
    return pid;
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Whether process pid is titled as a worker ("gdlua: worker JOB"): not a
 * loader, a spare, nor a process between fork and its title. */
static bool is_worker(const char *pid)
{
    char path[300], title[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    if (fgets(title, sizeof(title), f) == NULL)
        title[0] = '\0';
    fclose(f);
    return strncmp(title, "gdlua: worker ", 14) == 0;
}

/* A gdlua master's worker processes (its children titled so, which
 * leaves out the loaders and their spares), from /proc. Fills pids (up to max) and returns the count. */
int bench_workers(pid_t parent, pid_t *pids, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)) != NULL) {
        char path[300], buf[512], *p;
        FILE *f;
        int pp;

        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && sscanf(p + 2, "%*c %d", &pp) == 1 &&
            pp == parent && is_worker(de->d_name)) {
            if (n < max)
                pids[n] = atoi(de->d_name);
            n++;
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

/* Waits until master has want worker processes; returns the count seen
 * last (want, unless the deadline passed). */
int bench_wait_workers(pid_t master, int want, int timeout_ms)
{
    pid_t pids[1];
    double end = bench_now_ms() + timeout_ms;
    int n;

    while ((n = bench_workers(master, pids, 1)) != want && bench_now_ms() < end)
        bench_sleep_ms(5);
    return n;
}

/* CPU seconds (user + system) a process has used; -1 if it is gone.
 * From the scheduler's own count (/proc/PID/task/TID/schedstat, in ns,
 * summed over threads), not /proc/PID/stat's 10 ms ticks: 10,000 echo
 * jobs are about 20 ticks, too coarse for a 10 % goal. */
double bench_cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    unsigned long long ns, sum = 0;
    struct dirent *d;
    FILE *f;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((dir = opendir(path)) != NULL) {
        bool any = false;

        while ((d = readdir(dir)) != NULL) {
            if (d->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid, d->d_name);
            if ((f = fopen(path, "r")) == NULL)
                continue;
            if (fscanf(f, "%llu", &ns) == 1) {
                sum += ns;
                any = true;
            }
            fclose(f);
        }
        closedir(dir);
        if (any)
            return (double)sum / 1e9;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    fclose(f);
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* One field of /proc/PID/smaps_rollup ("Pss", "Private_Dirty"...) in
 * kB; -1 if it cannot be read. */
long bench_smaps(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kb = atol(line + flen + 1);
            break;
        }
    fclose(f);
    return kb;
}

/* The WORKERS column of gearmand's "status" for function (0 if absent,
 * -1 if gearmand does not answer). */
int bench_gearmand_workers(int port, const char *function)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), workers = -1;
    char buf[65536];
    size_t len = 0;
    FILE *f;

    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || write(fd, "status\n", 7) != 7) {
        close(fd);
        return -1;
    }
    if ((f = fdopen(fd, "r")) == NULL) {
        close(fd);
        return -1;
    }
    workers = 0;
    while (fgets(buf + len, sizeof(buf) - len, f) && strcmp(buf + len, ".\n") != 0) {
        char *tab = strchr(buf + len, '\t');
        int total, running, w;

        if (tab && (size_t)(tab - (buf + len)) == strlen(function) &&
            strncmp(buf + len, function, tab - (buf + len)) == 0 &&
            sscanf(tab + 1, "%d %d %d", &total, &running, &w) == 3)
            workers = w;
    }
    fclose(f);
    return workers;
}

/* The p-quantile (0..1) of n values; sorts v. */
double bench_percentile(double *v, int n, double p)
{
    if (n <= 0)
        return -1;
    qsort(v, n, sizeof(double), bench_cmp_double);
    return v[(int)(p * (n - 1) + 0.5)];
}

/* A machine-readable figure on stdout, for tests/bench/collect.py. */
void bench_result(const char *scenario, const char *peer, const char *metric, double value, const char *unit)
{
    printf("RESULT scenario=%s peer=%s metric=%s value=%.6g unit=%s\n", scenario, peer, metric, value, unit);
    fflush(stdout);
}

/* Figures this run does not measure (a peer not installed, no corpus):
 * SCENARIO's (and SCENARIO_*'s) of PEER, either "*" for every one.
 * collect.py shows the rows that need them as skipped, with WHY, and
 * --quick does not fail on them (a figure not skipped and missing still
 * fails). */
void bench_skipped(const char *scenario, const char *peer, const char *why)
{
    printf("SKIPPED scenario=%s peer=%s reason=%s\n", scenario, peer, why);
    fflush(stdout);
}
