/*
 * bench_util.h: what the benchmark programs share: clocks, free loopback
 * ports, starting and stopping processes by pid, a private gearmand.
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

#endif
