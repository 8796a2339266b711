/*
 * gdl_util.c: small helpers shared by master and children: clocks, time
 * and number formatting, the back-off curve, and the seqlock that lets a
 * process read a record another writes in shared memory.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
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

/* The one back-off curve: nothing for attempt 0, then first_ms doubling
 * with each attempt up to max_ms. Used for the crash loop, the
 * children's reconnects and the master's own connections. */
int gdl_backoff_ms(int attempt, int first_ms, int max_ms)
{
    int64_t d = first_ms;

    if (attempt <= 0)
        return 0;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? (int)d : max_ms;
}

/* Sleeps, but returns early when a signal arrives so a stopping child
 * notices at once. */
void gdl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

/* A seqlock over a record kept as relaxed atomic words, for one writer
 * and any number of readers in other processes: the writer makes the
 * counter odd, stores the words, makes it even; a reader copies the
 * words and retries while the counter was odd or changed. Every shared
 * access is atomic, so none is a data race in C11 terms. */
void gdl_seq_store(_Atomic uint32_t *seq, _Atomic uint64_t *words, const void *src, size_t len)
{
    uint64_t buf[GDL_SEQ_WORDS(GDL_SEQ_MAX)] = {0};
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);

    if (len > GDL_SEQ_MAX)
        abort(); /* records are fixed structs, all below the limit */
    memcpy(buf, src, len);
    atomic_store_explicit(seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < GDL_SEQ_WORDS(len); i++)
        atomic_store_explicit(&words[i], buf[i], memory_order_relaxed);
    atomic_store_explicit(seq, s + 2, memory_order_release);
}

void gdl_seq_load(_Atomic uint32_t *seq, _Atomic uint64_t *words, void *dst, size_t len)
{
    uint64_t buf[GDL_SEQ_WORDS(GDL_SEQ_MAX)];
    uint32_t before, after;

    if (len > GDL_SEQ_MAX)
        abort();
    do {
        before = atomic_load_explicit(seq, memory_order_acquire);
        for (size_t i = 0; i < GDL_SEQ_WORDS(len); i++)
            buf[i] = atomic_load_explicit(&words[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        after = atomic_load_explicit(seq, memory_order_relaxed);
    } while ((before & 1) || before != after);
    memcpy(dst, buf, len);
}
