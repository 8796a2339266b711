/*
 * gdl_slot.c: the shared-memory slots, one per process, and the counters
 * they hold.
 *
 * An anonymous MAP_SHARED region mapped before the first fork holds the
 * slots. A child writes only its own slot; the master prepares a slot
 * before fork, reads them all (status, idle times, counters, last
 * errors) without a syscall per job, and releases a slot once its
 * process is reaped. This unit is the only one that touches a slot.
 *
 * Memory model: a child is the single writer of its slot.
 * - Its state and the time it entered it are one 64-bit atomic word,
 *   stored with release and loaded with acquire: a reader never sees a
 *   state with another state's time.
 * - The counters, the last error and the job handle are one record under
 *   a sequence counter (a seqlock, gdl_seq_store/gdl_seq_load in
 *   gdl_util.c), so a reader never sees a torn record. The child keeps
 *   its own copy of the record and publishes the words that changed
 *   (gdl_seq_put): a job costs a few words, not the whole record.
 * Durations go into a log-scale histogram, 4 buckets per octave of
 * microseconds, so a percentile is known within 19 %.
 *
 * A slot holds the handle of the job its process took from the moment
 * it takes it until the job's answer has been sent: a process that dies
 * in between, however it dies, leaves the master the handle to count
 * against the job (gdl_attempts.c).
 *
 * A process with a concurrency above 1 holds several jobs at once: their
 * handles live in the held table, one entry (its own seqlock record)
 * per job it may hold, a range of entries per process that the master
 * grants before fork (first fit, in blocks of HELD_BLOCK entries) and
 * takes back once it is reaped. The process writes an entry from the
 * moment it takes a job until the job's answer is sent, as the slot's
 * handle above, so a death counts against each job it held. Its record
 * counts the jobs in hand, and its state is busy while it holds any.
 *
 * The job servers that do not answer the master's polls (gdl_observer.c:
 * a poll or a connection that timed out) are a shared bitmask the master
 * writes and a child reads when it makes its libgearman worker: a worker
 * waits on each server in turn for its GRAB_JOB answer, with no timeout,
 * so one server that accepts and never answers (stopped, or a host gone
 * behind a firewall that drops packets) would hold every process.
 *
 * The bell: a pipe whose write end every process inherits. A child rings
 * it (one byte, never blocking) when it becomes ready and when it asks to
 * be replaced, the two changes the master acts on at once (a replacement
 * to start, a recycled process to stop); the master reads the other end
 * in its event loop instead of finding them on its next tick.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gdlua.h"

#define HANDLE_MAX 64

typedef struct {
    gdl_counters_t c;
    char handle[HANDLE_MAX]; /* the job being run; "" when none */
    char unique[HANDLE_MAX]; /* its unique id, when the client set one */
    uint32_t jobs;           /* a concurrent process's jobs in hand (the held table's entries in use) */
} record_t;

#define RECORD_WORDS GDL_SEQ_WORDS(sizeof(record_t))

typedef struct {
    _Atomic uint64_t activity; /* since_ms << 3 | state */
    _Atomic uint64_t pool;     /* its child's pool (pool_key), set as it attaches */
    _Atomic uint32_t seq;
    _Atomic uint64_t record[RECORD_WORDS];
    int held_first, held_n; /* its range of the held table (held_n 0: one job at a time); the master's, before fork */
} slot_t;

/* The held table: a job a concurrent process holds. */
#define HELD_BLOCK  64
#define HELD_BLOCKS (GDL_HELD_MAX / HELD_BLOCK)

typedef struct {
    char handle[HANDLE_MAX]; /* "": the entry is free */
    char unique[HANDLE_MAX];
    int64_t start_ms;
} held_t;

typedef struct {
    _Atomic uint32_t seq;
    _Atomic uint64_t words[GDL_SEQ_WORDS(sizeof(held_t))];
} held_entry_t;

/* A pool's rate limit (GCRA: one word, the theoretical arrival time of
 * the next start): a process reserves the next start with one CAS and
 * waits for it before asking gearmand for a job, so the pool's starts
 * are at least interval_us apart, whichever processes make them. The
 * key is a hash of the pool's name (0: free), so the processes of every
 * generation share it and a reload keeps its pace. */
typedef struct {
    _Atomic uint64_t key;
    _Atomic int64_t tat; /* CLOCK_MONOTONIC µs: the next start may not be earlier */
} bucket_t;

static bucket_t *buckets;
static uint64_t my_pool; /* a child's: pool_key of its pool */
static held_entry_t *held;
static bool held_used[HELD_BLOCKS]; /* the master's: blocks granted */
static int *held_free, nheld_free;  /* a child's: its entries not in use */
static slot_t *slots;
static _Atomic uint32_t *hung; /* bit s: job server s does not answer the master */
static slot_t *mine;           /* a child's own slot */
static record_t mirror;        /* a child's copy of its record */
static int bell[2] = {-1, -1};
static bool rung_ready; /* a child's: it has said it is ready */

int gdl_slots_init(void)
{
    void *p = mmap(NULL, sizeof(slot_t) * GDL_PROCS_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        gdl_error("mmap of %d process slots failed: %s", GDL_PROCS_MAX, strerror(errno));
        return -1;
    }
    if (pipe2(bell, O_NONBLOCK | O_CLOEXEC) < 0) {
        gdl_error("cannot create the slots' bell: %s", strerror(errno));
        munmap(p, sizeof(slot_t) * GDL_PROCS_MAX);
        return -1;
    }
    slots = p;
    p = mmap(NULL, sizeof(bucket_t) * GDL_BUCKETS_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        gdl_error("mmap of %d rate-limit buckets failed: %s", GDL_BUCKETS_MAX, strerror(errno));
        return -1;
    }
    buckets = p;
    /* Pages are touched only where concurrent processes write. */
    p = mmap(NULL, sizeof(held_entry_t) * GDL_HELD_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        gdl_error("mmap of the table of %d jobs in hand failed: %s", GDL_HELD_MAX, strerror(errno));
        return -1;
    }
    held = p;
    p = mmap(NULL, sizeof(*hung), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        gdl_error("mmap of the job servers' state failed: %s", strerror(errno));
        return -1;
    }
    hung = p;
    return 0;
}

void gdl_slots_set_hung(int server, bool is_hung)
{
    if (is_hung)
        atomic_fetch_or(hung, 1u << server);
    else
        atomic_fetch_and(hung, ~(1u << server));
}

bool gdl_slots_hung(int server)
{
    return hung != NULL && (atomic_load(hung) >> server & 1u);
}

int gdl_slots_bell_fd(void)
{
    return bell[0];
}

/* A full pipe already says that something changed: a lost byte is fine. */
static void ring(void)
{
    int saved = errno;

    if (write(bell[1], "", 1) < 0 && errno != EAGAIN)
        gdl_debug("cannot ring the slots' bell: %s", strerror(errno));
    errno = saved;
}

const char *gdl_slot_state_name(int state)
{
    static const char *const names[] = {"free", "starting", "idle", "busy", "recycle"};

    return state >= 0 && state < 5 ? names[state] : "?";
}

static void set_state(slot_t *s, int state, int64_t since_ms)
{
    atomic_store_explicit(&s->activity, (uint64_t)since_ms << 3 | (uint64_t)state, memory_order_release);
}

static void publish(slot_t *s, const record_t *r)
{
    gdl_seq_store(&s->seq, s->record, r, sizeof(*r));
}

/* Grants slot i n entries of the held table (blocks first fit); how
 * many it got: n, or fewer (the largest free run) when the table is short. */
static int held_grant(slot_t *s, int n)
{
    int want = (n + HELD_BLOCK - 1) / HELD_BLOCK, best = -1, best_len = 0;

    for (int b = 0; b < HELD_BLOCKS;) {
        int len = 0;

        while (b + len < HELD_BLOCKS && !held_used[b + len] && len < want)
            len++;
        if (len > best_len) {
            best = b;
            best_len = len;
        }
        if (len == want)
            break;
        b += len + 1;
    }
    if (best < 0)
        return 0;
    for (int b = best; b < best + best_len; b++)
        held_used[b] = true;
    s->held_first = best * HELD_BLOCK;
    s->held_n = best_len * HELD_BLOCK < n ? best_len * HELD_BLOCK : n;
    for (int k = 0; k < s->held_n; k++)
        gdl_seq_store(&held[s->held_first + k].seq, held[s->held_first + k].words, &(held_t){0}, sizeof(held_t));
    return s->held_n;
}

int gdl_slot_prepare(int i, int concurrency)
{
    static const record_t zero;
    slot_t *s = &slots[i];

    s->held_first = s->held_n = 0;
    publish(s, &zero);
    set_state(s, GDL_SLOT_STARTING, gdl_now_ms());
    if (concurrency <= 1)
        return 1;
    return held_grant(s, concurrency) > 1 ? s->held_n : 1;
}

void gdl_slot_release(int i)
{
    slot_t *s = &slots[i];

    for (int b = s->held_first / HELD_BLOCK;
         s->held_n > 0 && b < (s->held_first + s->held_n + HELD_BLOCK - 1) / HELD_BLOCK; b++)
        held_used[b] = false;
    s->held_first = s->held_n = 0;
    set_state(s, GDL_SLOT_FREE, 0);
}

int gdl_slot_capacity(int i)
{
    return slots[i].held_n > 1 ? slots[i].held_n : 1;
}

int gdl_slot_jobs(int i)
{
    record_t r;
    int state = gdl_slot_state(i, NULL);

    if (slots[i].held_n <= 1)
        return state == GDL_SLOT_BUSY;
    gdl_seq_load(&slots[i].seq, slots[i].record, &r, sizeof(r));
    return (int)r.jobs;
}

int gdl_slot_held(int i, int k, char *handle, size_t hlen, char *unique, size_t ulen, int64_t *start_ms)
{
    held_entry_t *e;
    held_t h;

    if (k < 0 || k >= slots[i].held_n)
        return -1;
    e = &held[slots[i].held_first + k];
    gdl_seq_load(&e->seq, e->words, &h, sizeof(h));
    h.handle[HANDLE_MAX - 1] = h.unique[HANDLE_MAX - 1] = '\0';
    if (h.handle[0] == '\0')
        return 0;
    snprintf(handle, hlen, "%s", h.handle);
    snprintf(unique, ulen, "%s", h.unique);
    *start_ms = h.start_ms;
    return 1;
}

int gdl_slot_state(int i, int64_t *since_ms)
{
    uint64_t a = atomic_load_explicit(&slots[i].activity, memory_order_acquire);

    if (since_ms)
        *since_ms = (int64_t)(a >> 3);
    return (int)(a & 7);
}

void gdl_slot_read(int i, gdl_counters_t *c, char *handle, size_t handle_len)
{
    record_t r;

    gdl_seq_load(&slots[i].seq, slots[i].record, &r, sizeof(r));
    r.c.error[GDL_ERROR_MAX - 1] = '\0';
    if (c)
        *c = r.c;
    if (handle && handle_len) {
        r.handle[HANDLE_MAX - 1] = '\0';
        snprintf(handle, handle_len, "%s", r.handle);
    }
}

/* The unique id of the job process i runs ("" when none or not set). */
void gdl_slot_unique(int i, char *unique, size_t len)
{
    record_t r;

    gdl_seq_load(&slots[i].seq, slots[i].record, &r, sizeof(r));
    r.unique[HANDLE_MAX - 1] = '\0';
    snprintf(unique, len, "%s", r.unique);
}

/* A pool's name as one word (FNV-1a; never 0, a free bucket's key): the
 * processes of every generation of a pool share it. */
static uint64_t pool_key(const char *pool_name)
{
    uint64_t key = 0xcbf29ce484222325ULL;

    for (const unsigned char *c = (const unsigned char *)pool_name; *c; c++)
        key = (key ^ *c) * 0x100000001b3ULL;
    return key ? key : 1;
}

void gdl_slot_attach(int i, const char *pool_name)
{
    mine = &slots[i];
    my_pool = pool_key(pool_name);
    atomic_store_explicit(&mine->pool, my_pool, memory_order_relaxed);
    memset(&mirror, 0, sizeof(mirror));
    if (mine->held_n > 1 && (held_free = malloc(sizeof(int) * (size_t)mine->held_n)) != NULL)
        for (nheld_free = 0; nheld_free < mine->held_n; nheld_free++)
            held_free[nheld_free] = mine->held_n - 1 - nheld_free;
    close(bell[0]); /* the master's end */
    bell[0] = -1;
}

/* When the child took the job it runs (gdl_now_ms), or -1 when idle. */
int64_t gdl_slot_busy_since(void)
{
    int64_t since;

    return mine && gdl_slot_state((int)(mine - slots), &since) == GDL_SLOT_BUSY ? since : -1;
}

/* How many processes of the child's pool, itself included, can take no
 * job now (one at a time: run a job; concurrent: hold as many as their
 * concurrency), whichever generation they are of. A slot's pool is stored
 * before its process first turns busy (both by that process), so a busy
 * slot never shows the pool of the process it held before. */
int gdl_slot_pool_busy(void)
{
    int n = 0;

    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (gdl_slot_state(i, NULL) == GDL_SLOT_BUSY &&
            atomic_load_explicit(&slots[i].pool, memory_order_relaxed) == my_pool &&
            gdl_slot_jobs(i) >= gdl_slot_capacity(i))
            n++;
    return n;
}

/* Ready to take jobs: the master may stop the process this one replaces. */
void gdl_slot_idle(int64_t now_ms)
{
    set_state(mine, GDL_SLOT_IDLE, now_ms);
    if (!rung_ready) {
        rung_ready = true;
        ring();
    }
}

/* Publishes n bytes of the mirror from field on (inside a gdl_seq_begin
 * .. gdl_seq_end of mine). */
static void put(const void *field, size_t n)
{
    size_t from = (size_t)((const char *)field - (const char *)&mirror);

    gdl_seq_put(mine->record, &mirror, sizeof(mirror), from, from + n);
}

/* Per job, only what changed is published: a few words of the ~800-byte
 * record, not all of it. */
void gdl_slot_job_begin(const char *handle, const char *unique, int64_t now_ms)
{
    size_t hlen = strnlen(handle, HANDLE_MAX - 1), ulen = unique ? strnlen(unique, HANDLE_MAX - 1) : 0;
    uint32_t seq;

    memcpy(mirror.handle, handle, hlen);
    mirror.handle[hlen] = '\0';
    memcpy(mirror.unique, unique ? unique : "", ulen);
    mirror.unique[ulen] = '\0';
    mirror.c.last_run = (uint64_t)time(NULL);
    seq = gdl_seq_begin(&mine->seq);
    put(mirror.handle, hlen + 1);
    put(mirror.unique, ulen + 1);
    put(&mirror.c.last_run, sizeof(mirror.c.last_run));
    gdl_seq_end(&mine->seq, seq);
    set_state(mine, GDL_SLOT_BUSY, now_ms);
}

/* The first line of msg, escaped (gdl_escape), so the console, json and
 * the log can show it as it is. */
static void copy_error(char *to, const char *msg)
{
    gdl_escape(to, GDL_ERROR_MAX, msg, strlen(msg), false);
}

/* A job's outcome into the counters (inside a gdl_seq_begin .. end). */
static void count_end(int outcome, const char *error, uint64_t took_us)
{
    gdl_counters_t *c = &mirror.c;
    int bucket = gdl_hist_bucket(took_us);

    c->busy_us += took_us;
    c->hist[bucket]++;
    put(&c->busy_us, sizeof(c->busy_us));
    put(&c->hist[bucket], sizeof(c->hist[bucket]));
    if (outcome == GDL_JOB_DONE) {
        c->done++;
        put(&c->done, sizeof(c->done));
    } else {
        if (outcome == GDL_JOB_POISONED)
            c->poisoned++;
        else if (outcome == GDL_JOB_TIMEOUT)
            c->timeouts++;
        else
            c->failed++;
        c->last_error = (uint64_t)time(NULL);
        copy_error(c->error, error);
        put(c, sizeof(*c)); /* rare: all the counters */
    }
}

/* The job's answer is sent: only now is its handle cleared. */
void gdl_slot_job_end(int outcome, const char *error, uint64_t took_us, int64_t now_ms)
{
    uint32_t seq;

    mirror.handle[0] = '\0';
    mirror.unique[0] = '\0';
    seq = gdl_seq_begin(&mine->seq);
    put(mirror.handle, 1);
    put(mirror.unique, 1);
    count_end(outcome, error, took_us);
    gdl_seq_end(&mine->seq, seq);
    set_state(mine, GDL_SLOT_IDLE, now_ms);
}

/* ---- a concurrent process's jobs in hand ---- */

static bool recycling(void)
{
    return gdl_slot_state((int)(mine - slots), NULL) == GDL_SLOT_RECYCLE;
}

/* The jobs in hand changed by delta (inside a gdl_seq_begin .. end). */
static void held_count(int delta)
{
    mirror.jobs = (uint32_t)((int)mirror.jobs + delta);
    put(&mirror.jobs, sizeof(mirror.jobs));
}

int gdl_slot_hold(const char *handle, const char *unique, int64_t now_ms)
{
    held_entry_t *e;
    held_t h = {.start_ms = now_ms};
    uint32_t seq;
    int k;

    if (nheld_free == 0)
        return -1;
    k = held_free[--nheld_free];
    e = &held[mine->held_first + k];
    snprintf(h.handle, sizeof(h.handle), "%s", handle);
    snprintf(h.unique, sizeof(h.unique), "%s", unique ? unique : "");
    gdl_seq_store(&e->seq, e->words, &h, sizeof(h));
    mirror.c.last_run = (uint64_t)time(NULL);
    seq = gdl_seq_begin(&mine->seq);
    put(&mirror.c.last_run, sizeof(mirror.c.last_run));
    held_count(1);
    gdl_seq_end(&mine->seq, seq);
    if (mirror.jobs == 1 && !recycling())
        set_state(mine, GDL_SLOT_BUSY, now_ms);
    return k;
}

/* Entry k is free again: the job's answer went out (outcome >= 0 counts
 * it), or it was given back to the job server unanswered (outcome -1). */
void gdl_slot_unhold(int k, int outcome, const char *error, uint64_t took_us, int64_t now_ms)
{
    held_entry_t *e = &held[mine->held_first + k];
    uint32_t seq;

    gdl_seq_store(&e->seq, e->words, &(held_t){0}, sizeof(held_t));
    held_free[nheld_free++] = k;
    seq = gdl_seq_begin(&mine->seq);
    if (outcome >= 0)
        count_end(outcome, error, took_us);
    held_count(-1);
    gdl_seq_end(&mine->seq, seq);
    if (mirror.jobs == 0 && !recycling())
        set_state(mine, GDL_SLOT_IDLE, now_ms);
}

/* The job failed and will run again in this process (it stays busy). */
void gdl_slot_job_retry(void)
{
    uint32_t seq;

    mirror.c.retries++;
    seq = gdl_seq_begin(&mine->seq);
    put(&mirror.c.retries, sizeof(mirror.c.retries));
    gdl_seq_end(&mine->seq, seq);
}

/* The job is given back unanswered (the process stops while the job
 * waits for a retry): gearmand hands it to another process, and it is no
 * death to count against the job, so the handle goes. */
void gdl_slot_job_returned(int64_t now_ms)
{
    uint32_t seq;

    mirror.handle[0] = '\0';
    mirror.unique[0] = '\0';
    seq = gdl_seq_begin(&mine->seq);
    put(mirror.handle, 1);
    put(mirror.unique, 1);
    gdl_seq_end(&mine->seq, seq);
    set_state(mine, GDL_SLOT_IDLE, now_ms);
}

/* The job has ended but its answer could not be sent: the handle stays,
 * for the master to count once the process has exited. */
void gdl_slot_job_unanswered(int64_t now_ms)
{
    set_state(mine, GDL_SLOT_IDLE, now_ms);
}

void gdl_slot_recycle(int64_t now_ms)
{
    set_state(mine, GDL_SLOT_RECYCLE, now_ms);
    ring();
}

/* A process that asked to be replaced exits in that state: the master
 * tells its exit from a crash by it. */
void gdl_slot_exit(void)
{
    if (gdl_slot_state((int)(mine - slots), NULL) != GDL_SLOT_RECYCLE)
        set_state(mine, GDL_SLOT_FREE, 0);
}

void gdl_slot_rate_waited(void)
{
    uint32_t seq;

    mirror.c.rate_waits++;
    seq = gdl_seq_begin(&mine->seq);
    put(&mirror.c.rate_waits, sizeof(mirror.c.rate_waits));
    gdl_seq_end(&mine->seq, seq);
}

int gdl_slot_bucket(const char *pool_name)
{
    uint64_t key = pool_key(pool_name);

    for (int i = 0; i < GDL_BUCKETS_MAX; i++) {
        bucket_t *b = &buckets[(key + (uint64_t)i) % GDL_BUCKETS_MAX];
        uint64_t seen = atomic_load(&b->key);

        if (seen == 0 && !atomic_compare_exchange_strong(&b->key, &seen, key) && seen != key)
            continue; /* another pool took it first */
        if (seen == 0 || seen == key)
            return (int)(b - buckets);
    }
    return -1;
}

int64_t gdl_slot_bucket_take(int i, int64_t interval_us, int64_t now_us)
{
    bucket_t *b = &buckets[i];
    int64_t tat = atomic_load(&b->tat), start;

    do
        start = tat > now_us ? tat : now_us;
    while (!atomic_compare_exchange_weak(&b->tat, &tat, start + interval_us));
    return start;
}

int gdl_hist_bucket(uint64_t us)
{
    int msb, b;

    if (us < 4)
        return (int)us;
    msb = 63 - __builtin_clzll(us);
    b = 4 * msb + (int)((us >> (msb - 2)) & 3) - 4;
    return b < GDL_HIST_BUCKETS ? b : GDL_HIST_BUCKETS - 1;
}

/* The smallest duration above every duration in the bucket. */
uint64_t gdl_hist_upper_us(int bucket)
{
    int msb, q;

    if (bucket < 4)
        return (uint64_t)bucket + 1;
    msb = (bucket + 4) / 4;
    q = (bucket + 4) % 4;
    if (msb >= 62)
        return UINT64_MAX;
    return (uint64_t)(5 + q) << (msb - 2);
}

/* The p-th percentile (0 < p <= 1) of the durations, as its bucket's
 * upper bound; 0 when no job ran. */
uint64_t gdl_counters_percentile_us(const gdl_counters_t *c, double p)
{
    uint64_t total = 0, seen = 0, want;

    for (int b = 0; b < GDL_HIST_BUCKETS; b++)
        total += c->hist[b];
    if (total == 0)
        return 0;
    want = (uint64_t)(p * (double)total + 0.999999);
    if (want < 1)
        want = 1;
    for (int b = 0; b < GDL_HIST_BUCKETS; b++) {
        seen += c->hist[b];
        if (seen >= want)
            return gdl_hist_upper_us(b);
    }
    return gdl_hist_upper_us(GDL_HIST_BUCKETS - 1);
}

void gdl_counters_add(gdl_counters_t *to, const gdl_counters_t *from)
{
#define SUM(name)                               to->name += from->name;
#define LATEST(name)                            to->name = from->name > to->name ? from->name : to->name;
#define GDL_X(name, fold, column, metric, help) fold(name)
    uint64_t last_error = to->last_error;

    GDL_COUNTERS(GDL_X)
#undef GDL_X
#undef SUM
#undef LATEST
    for (int b = 0; b < GDL_HIST_BUCKETS; b++)
        to->hist[b] += from->hist[b];
    if (from->last_error && from->last_error >= last_error)
        memcpy(to->error, from->error, sizeof(to->error));
}
