/*
 * bench_util.h: what the benchmark programs share: clocks, free loopback
 * ports, starting and stopping processes by pid, a private gearmand,
 * CPU and memory of a process from /proc, and the RESULT (and SKIPPED)
 * lines that tests/bench/collect.py turns into the results table.
 */
#ifndef GDL_BENCH_UTIL_H
#define GDL_BENCH_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

double bench_now_ms(void);
void bench_sleep_ms(int ms);
int bench_free_port(void);
bool bench_port_open(int port);
pid_t bench_spawn(char *const argv[], int in, int out, const char *log);
void bench_stop(pid_t *pid);
pid_t bench_start_gearmand(const char *log, int *port);
int bench_cmp_double(const void *a, const void *b);
int bench_workers(pid_t master, pid_t *pids, int max);
int bench_wait_workers(pid_t master, int want, int timeout_ms);
double bench_cpu_s(pid_t pid);
long bench_smaps(pid_t pid, const char *field);
int bench_gearmand_workers(int port, const char *function);
double bench_percentile(double *v, int n, double p);
void bench_result(const char *scenario, const char *peer, const char *metric, double value, const char *unit);
void bench_skipped(const char *scenario, const char *peer, const char *why);

#endif
