/*
 * gdl_util.c: small pure helpers shared by master and children: clocks,
 * time and number formatting, the crash-loop back-off curve.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "gdlua.h"

int64_t gdl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gdl_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* UTC "YYYY-MM-DDTHH:MM:SS", as Gearman::Driver's console prints times. */
void gdl_format_time(int64_t unix_s, char *buf, size_t len)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
}

/* A job's numeric result as text: whole numbers below 10^21 in all their
 * digits (Lua's tostring would print fib(70) as 3.0806152117013e+14),
 * other numbers so that they read back the same. */
int gdl_format_number(double n, char *buf, size_t len)
{
    if (n == floor(n) && fabs(n) < 1e21)
        return snprintf(buf, len, "%.0f", n);
    if (isnan(n))
        return snprintf(buf, len, "nan");
    if (isinf(n))
        return snprintf(buf, len, n > 0 ? "inf" : "-inf");
    return snprintf(buf, len, "%.17g", n);
}

/* Delay before replacing a job's child after `streak` short-lived children
 * in a row: the first is replaced at once, then 100 ms doubling to 10 s,
 * so a module that crashes every process forks at most a few times. */
int gdl_backoff_ms(int streak)
{
    if (streak <= 1)
        return 0;
    if (streak > 8)
        return 10000;
    return 100 << (streak - 2) > 10000 ? 10000 : 100 << (streak - 2);
}

/* Sleeps, but returns early when a signal arrives so a stopping child
 * notices at once. */
void gdl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}
