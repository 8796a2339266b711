/*
 * gdl_util.c: small helpers shared by master and children: who this
 * process is (the master's pid and instance name, whether it is the
 * master: set by gdl_master.c, gdl_main.c and gdl_child.c, read by
 * units of every layer, so they sit at the bottom), clocks, a process's
 * resident set, time, number and exit-status formatting, the back-off
 * curve, the seqlock that lets a process read a record another writes in
 * shared memory, the token and address checks the console and the HTTP
 * endpoint share, and the sockets a library opened (libgearman shows no
 * connection's descriptor: its worker and client connections are found
 * as the sockets that appeared while it connected).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gdlua.h"

pid_t gdl_master_pid;
bool gdl_is_master;
char gdl_instance[128];

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

/* A number as text, wherever gdlua writes one (a job's result, a log
 * field, a message quoting a value): whole numbers below 10^21 in all
 * their digits (Lua's tostring would print fib(70) as 3.0806152117013e+14),
 * others in the shortest form that reads back as the same double, the
 * fewest digits of %.1g to %.17g (3.14159, not %.17g's 3.1415899999999999;
 * 0.1, not 0.10000000000000001). buf needs 32 bytes. */
int gdl_format_number(double n, char *buf, size_t len)
{
    int k = 0;

    if (n == floor(n) && fabs(n) < 1e21)
        return snprintf(buf, len, "%.0f", n);
    if (isnan(n))
        return snprintf(buf, len, "nan");
    if (isinf(n))
        return snprintf(buf, len, n > 0 ? "inf" : "-inf");
    for (int digits = 1; digits <= 17; digits++) {
        k = snprintf(buf, len, "%.*g", digits, n);
        if (k > 0 && (size_t)k < len && strtod(buf, NULL) == n)
            break;
    }
    return k;
}

/* A wait() status in words: "exited with status N", "killed by signal
 * N (NAME)[, core dumped]". */
void gdl_format_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, len, "ended with status 0x%x", status);
}

/* A process's resident set in MiB, from /proc/PID/statm (pages); -1 when
 * it cannot be read (the process is gone). */
long gdl_rss_mib(pid_t pid)
{
    char path[64], buf[128];
    long size, resident;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%ld %ld", &size, &resident) != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
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

/* The wait before rerun `rerun` (1: the first) of a failed job whose
 * retry_backoff is base_ms: base_ms doubling with each rerun, capped at
 * GDL_RETRY_CAP_MS (or base_ms when that is larger), of which the upper
 * half is jitter (0 <= jitter < 1 picks the point), so processes whose
 * jobs failed together do not retry in step. */
int64_t gdl_retry_delay_ms(int rerun, int64_t base_ms, double jitter)
{
    int64_t cap = base_ms > GDL_RETRY_CAP_MS ? base_ms : GDL_RETRY_CAP_MS, d = base_ms;

    if (rerun <= 0 || base_ms <= 0)
        return 0;
    for (int i = 1; i < rerun && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (!(jitter >= 0 && jitter < 1))
        jitter = 0;
    return d - (int64_t)((double)(d / 2) * jitter);
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
uint32_t gdl_seq_begin(_Atomic uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);

    atomic_store_explicit(seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    return s;
}

/* Between gdl_seq_begin and gdl_seq_end: stores the words of the record
 * src (len bytes) that hold bytes [from, to), so a writer publishes only
 * what changed (a child does per job). */
void gdl_seq_put(_Atomic uint64_t *words, const void *src, size_t len, size_t from, size_t to)
{
    const char *p = src;
    size_t i = from / 8, end, whole = len / 8;

    if (to > len)
        to = len;
    end = GDL_SEQ_WORDS(to);
    /* A fixed-size copy is one load; a copy of a computed size was a call
     * to memcpy per word, most of a job's cost in this function. */
    for (; i < end && i < whole; i++) {
        uint64_t w;

        memcpy(&w, p + i * 8, 8);
        atomic_store_explicit(&words[i], w, memory_order_relaxed);
    }
    if (i < end) { /* the record's last word, partial */
        uint64_t w = 0;

        memcpy(&w, p + i * 8, len - i * 8);
        atomic_store_explicit(&words[i], w, memory_order_relaxed);
    }
}

void gdl_seq_end(_Atomic uint32_t *seq, uint32_t begun)
{
    atomic_store_explicit(seq, begun + 2, memory_order_release);
}

void gdl_seq_store(_Atomic uint32_t *seq, _Atomic uint64_t *words, const void *src, size_t len)
{
    uint32_t s;

    if (len > GDL_SEQ_MAX)
        abort(); /* records are fixed structs, all below the limit */
    s = gdl_seq_begin(seq);
    gdl_seq_put(words, src, len, 0, len);
    gdl_seq_end(seq, s);
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

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
size_t gdl_utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xe0) == 0xc0 ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;

    if (len == 0 || len > n || (len == 2 && s[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] > 0x9f) ||
        (len == 4 && (s[0] > 0xf4 || (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))))
        return 0; /* overlong, a surrogate, or beyond U+10FFFF */
    return len;
}

/* Job text (an error message, a workload) made safe to show: valid UTF-8
 * is kept, control characters and invalid bytes become \xHH, and a
 * newline becomes "\n\t" when keep_newlines (a continuation line in the
 * log, which cannot pass for a line of its own) or ends the text when
 * not. The output is cut at a character boundary to fit out[size];
 * returns its length. */
size_t gdl_escape(char *out, size_t size, const char *in, size_t len, bool keep_newlines)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;

    if (size == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        size_t n = gdl_utf8_len(s + i, len - i);
        char esc[8];
        const char *w = (const char *)s + i;
        size_t wn = n;

        if (s[i] == '\n' && !keep_newlines)
            break;
        if (s[i] == '\n') {
            w = "\n\t";
            wn = 2;
            n = 1;
        } else if (n == 0 || (s[i] < 0x20 && !(s[i] == '\t' && keep_newlines)) || s[i] == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
            w = esc;
            wn = 4;
            n = 1;
        }
        if (o + wn >= size)
            break;
        memcpy(out + o, w, wn);
        o += wn;
        i += n;
    }
    out[o] = '\0';
    return o;
}

/* Compares given[0..len) with the NUL-terminated token in constant time:
 * neither the token's length nor its bytes leak through timing. */
bool gdl_token_equal(const char *given, size_t len, const char *token)
{
    size_t b = strlen(token);
    unsigned diff = (unsigned)(len ^ b);

    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)given[i] ^ (unsigned char)token[b ? i % b : 0];
    return diff == 0;
}

/* Reads a token (one word on the first line of path) into token[size];
 * -1, logged with who (the unit asking), when it cannot. */
int gdl_token_read(const char *path, char *token, size_t size, const char *who)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        gdl_error("%s: cannot read token file %s: %s", who, path, strerror(errno));
        return -1;
    }
    n = fread(token, 1, size - 1, f);
    if (ferror(f)) {
        gdl_error("%s: cannot read token file %s: %s", who, path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    token[n] = '\0';
    token[strcspn(token, "\r\n")] = '\0';
    if (token[0] == '\0' || strchr(token, ' ') || strchr(token, '\t')) {
        gdl_error("%s: token file %s must hold one word on its first line", who, path);
        return -1;
    }
    return 0;
}

bool gdl_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* The descriptors open now, sorted; their count (0: none, or
 * /proc/self/fd cannot be read). *out is malloc'd (NULL when none). Only
 * names are read: a process holding many connections (a concurrent one
 * holds a socket per request in flight) lists them cheaply, and
 * gdl_fds_new_sockets looks closer only at the few that are new. */
int gdl_fds_open(int **out)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0, size = 0, *fds = NULL, skip;

    *out = NULL;
    if (d == NULL)
        return 0;
    skip = dirfd(d);
    while ((e = readdir(d)) != NULL) {
        int fd;

        if (e->d_name[0] < '0' || e->d_name[0] > '9' || (fd = atoi(e->d_name)) == skip)
            continue;
        if (n == size) {
            int *more = realloc(fds, sizeof(int) * (size_t)(size = size ? 2 * size : 64));

            if (more == NULL)
                break;
            fds = more;
        }
        fds[n++] = fd;
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: readdir lists them nearly in order */
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    *out = fds;
    return n;
}

/* The sockets open now whose descriptors were not in before[0..nbefore)
 * (sorted, as gdl_fds_open gives them), at most max of them into fds;
 * their count. */
int gdl_fds_new_sockets(const int *before, int nbefore, int *fds, int max)
{
    int *after, na = gdl_fds_open(&after), n = 0;

    for (int i = 0, j = 0; i < na && n < max; i++) {
        struct stat st;

        while (j < nbefore && before[j] < after[i])
            j++;
        if ((j < nbefore && before[j] == after[i]) || fstat(after[i], &st) < 0 || !S_ISSOCK(st.st_mode))
            continue;
        fds[n++] = after[i];
    }
    free(after);
    return n;
}
