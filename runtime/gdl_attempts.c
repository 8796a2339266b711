/*
 * gdl_attempts.c: how often each job killed the process running it,
 * across processes, so a poison job is failed instead of run for ever.
 *
 * gearmand hands the job of a process that died to the next process
 * with the same handle. The master, the only writer, counts each death
 * per handle (with why the process died) in an anonymous MAP_SHARED
 * table mapped before the first fork; a child looks the handle up before
 * running a job and fails it at once once it has killed max_attempts
 * processes (gdl_child.c). A job the master ended (past its timeout or
 * max_memory, gdl_master.c) is marked so, and failed unrun with why. The
 * table is bounded: a handle hashes to a window of PROBE entries, and a
 * new handle takes the least recently written entry of its window. Each entry is a record under a seqlock
 * (gdl_seq_store/gdl_seq_load), so a child never reads a torn one; the
 * master keeps its own copy and never reads the shared one.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "gdlua.h"

#define PROBE 8

typedef struct {
    gdl_attempt_t a;
    uint64_t written; /* the master's write counter when last written */
} record_t;

typedef struct {
    _Atomic uint32_t seq;
    _Atomic uint64_t words[GDL_SEQ_WORDS(sizeof(record_t))];
} entry_t;

typedef struct {
    _Atomic uint64_t writes; /* 0 until a death is counted: a child's lookup is then one load */
    entry_t entries[GDL_ATTEMPTS_MAX];
} table_t;

static table_t *table;
static entry_t *shared;
static record_t mine[GDL_ATTEMPTS_MAX]; /* the master's copy */
static uint64_t writes;

int gdl_attempts_init(void)
{
    void *p = mmap(NULL, sizeof(table_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        gdl_error("mmap of the attempts table failed: %s", strerror(errno));
        return -1;
    }
    table = p;
    shared = table->entries;
    return 0;
}

/* A job submitted again under its unique id has a new handle: its deaths
 * are counted under "U:" and the unique id too. */
static void unique_key(char *key, size_t len, const char *unique)
{
    snprintf(key, len, "U:%s", unique);
}

static unsigned hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % GDL_ATTEMPTS_MAX;
}

/* The master's entry for handle: its own, else the oldest of the window
 * (emptied), or -1 for an empty handle. */
static int slot_for(const char *handle)
{
    unsigned h = hash(handle);
    int oldest = (int)h;

    if (*handle == '\0')
        return -1;
    for (int k = 0; k < PROBE; k++) {
        int i = (int)((h + k) % GDL_ATTEMPTS_MAX);
        if (strcmp(mine[i].a.handle, handle) == 0)
            return i;
        if (mine[i].written < mine[oldest].written)
            oldest = i;
    }
    memset(&mine[oldest], 0, sizeof(mine[oldest]));
    snprintf(mine[oldest].a.handle, sizeof(mine[oldest].a.handle), "%s", handle);
    return oldest;
}

static uint32_t write_entry(int i, uint32_t deaths, const char *reason)
{
    record_t *r = &mine[i];

    r->a.deaths = deaths;
    r->a.when = (int64_t)time(NULL);
    if (!r->a.ended) /* "timed out" says more than the SIGKILL that followed */
        snprintf(r->a.reason, sizeof(r->a.reason), "%s", reason);
    r->written = ++writes;
    gdl_seq_store(&shared[i].seq, shared[i].words, r, sizeof(*r));
    atomic_store_explicit(&table->writes, writes, memory_order_release);
    return deaths;
}

static uint32_t died(const char *key, const char *reason)
{
    int i = slot_for(key);

    return i < 0 ? 0 : write_entry(i, mine[i].a.deaths + 1, reason);
}

uint32_t gdl_attempts_died(const char *handle, const char *unique, const char *reason)
{
    uint32_t deaths = died(handle, reason);

    if (unique && *unique) {
        char key[72];

        unique_key(key, sizeof(key), unique);
        died(key, reason);
    }
    return deaths;
}

void gdl_attempts_ended(const char *handle, int outcome, const char *reason)
{
    int i = slot_for(handle);

    if (i < 0)
        return;
    snprintf(mine[i].a.reason, sizeof(mine[i].a.reason), "%s", reason);
    mine[i].a.ended = outcome;
    write_entry(i, mine[i].a.deaths, reason);
}

static int by_recent(const void *a, const void *b)
{
    uint64_t x = ((const record_t *)a)->written, y = ((const record_t *)b)->written;

    return x < y ? 1 : x > y ? -1 : 0;
}

int gdl_attempts_recent(gdl_attempt_t *out, int max)
{
    static record_t sorted[GDL_ATTEMPTS_MAX];
    int n = 0;

    for (int i = 0; i < GDL_ATTEMPTS_MAX; i++)
        if (mine[i].written)
            sorted[n++] = mine[i];
    qsort(sorted, n, sizeof(record_t), by_recent);
    for (int i = 0; i < n && i < max; i++)
        out[i] = sorted[i].a;
    return n < max ? n : max;
}

static uint32_t lookup(const char *handle, int *ended, char *reason, size_t len)
{
    unsigned h = hash(handle);
    record_t r;

    *ended = 0;
    for (int k = 0; k < PROBE && *handle; k++) {
        entry_t *e = &shared[(h + k) % GDL_ATTEMPTS_MAX];

        if (atomic_load_explicit(&e->seq, memory_order_acquire) == 0)
            continue; /* never written */
        gdl_seq_load(&e->seq, e->words, &r, sizeof(r));
        r.a.handle[sizeof(r.a.handle) - 1] = '\0';
        if (strcmp(r.a.handle, handle) == 0) {
            r.a.reason[sizeof(r.a.reason) - 1] = '\0';
            snprintf(reason, len, "%s", r.a.reason);
            *ended = r.a.ended;
            return r.a.deaths;
        }
    }
    return 0;
}

uint32_t gdl_attempts_of(const char *handle, const char *unique, int *ended, char *reason, size_t len)
{
    char key[72], why_unique[64];
    int unique_ended;
    uint32_t deaths, n;

    *ended = 0;
    if (atomic_load_explicit(&table->writes, memory_order_acquire) == 0)
        return 0; /* no process has died running a job */
    deaths = lookup(handle, ended, reason, len);
    if (*ended || unique == NULL || *unique == '\0')
        return deaths;
    unique_key(key, sizeof(key), unique);
    n = lookup(key, &unique_ended, why_unique, sizeof(why_unique));
    if (n > deaths) {
        deaths = n;
        snprintf(reason, len, "%s", why_unique);
    }
    return deaths;
}
