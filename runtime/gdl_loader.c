/*
 * gdl_loader.c: loaders. The master never runs a job module: each
 * generation of the code is loaded by a loader, a child of the master
 * with a fresh Lua state, which then forks that generation's processes
 * so they inherit the loaded state copy-on-write. The first generation
 * is loaded at start; each reload (SIGHUP, the console's `reload`)
 * starts another loader while the running generation serves on, and
 * only a load that succeeded in full replaces it (gdl_master.c).
 *
 * Master and loader talk over a socket pair: the loader sends its
 * result once (the pools it loaded, or its first error), then answers
 * spawn requests, each with the pid it started, in order (the requests
 * of one start come in one write and are forked side by side). A
 * process is forked twice, loader -> intermediate -> process, and the
 * intermediate exits at once, so the process is reparented to the
 * master (a child subreaper): every process is the master's child, the
 * master reaps it, and PR_SET_PDEATHSIG names the master. It is forked
 * ahead of need, as a spare ("gdlua: spare N") waiting on a pipe for
 * its pool and slot, which the loader writes once it has reaped the
 * intermediate: so a process only ever sees the master as its parent,
 * and a start from zero waits for no fork. A loader exits when the
 * master closes its socket, and its spare with it; a dead loader's
 * processes serve on.
 *
 * The result, integers as 32 bits in host order (same process image):
 *   length, failed (modules; -1: none was loaded), npools, first error;
 *   per pool: name, title, the
 *   limits of gdl_pool_t in order, nfunctions, functions.
 * Strings are a length and their bytes.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "gdlua.h"

/* A loader that takes longer to answer is broken (stopped, stuck). Not
 * 1000 ms: on a loaded machine (two test suites and two CPU hogs on 2
 * cores) a fresh loader's first answer, a double fork of the whole image,
 * took longer, and giving up loads the modules again: more forks on a
 * machine already short of CPU, and the script directory read anew. The
 * cost of a longer wait is paid only when a loader is truly stuck: the
 * master waits that long once, then replaces it. */
#define SPAWN_TIMEOUT_MS 5000
#define RESULT_MAX       (64 << 20)
#define LOADERS_MAX      4  /* the master's ends open at once: the serving one, one loading, ones ending */
#define BATCH_MAX        32 /* requests served together */
#define SPARE_DELAY_MS   50 /* after a start, no request for this long: fork the next spare */

typedef struct {
    int32_t pool, slot;
} spawn_req_t, spare_req_t;

typedef struct {
    int32_t pid; /* -1: failed, with errno */
    int32_t err;
} spawn_rep_t;

/* The master's ends of every loader's socket: a new loader closes them
 * all, or an old loader would never see its end of file. */
static int master_ends[LOADERS_MAX] = {-1, -1, -1, -1};
static volatile sig_atomic_t reopen_log;

/* ---- the loader ---- */

static void put_i32(struct evbuffer *b, int v)
{
    int32_t x = v;
    evbuffer_add(b, &x, sizeof(x));
}

static void put_str(struct evbuffer *b, const char *s)
{
    put_i32(b, (int)strlen(s));
    evbuffer_add(b, s, strlen(s));
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The command line and config file read again, for a reload: the pools'
 * attributes and their defaults come from it; what only a restart can
 * change (servers, ports, ...) stays the master's. */
static int reread_config(char *err, size_t errlen)
{
    gdl_config_t fresh;
    char why[400];

    if (gdl_options_reload(&fresh, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "cannot read the configuration again: %s", why);
        return -1;
    }
    gdl_config = fresh; /* this loader's own; it lives as long as the loader */
    return 0;
}

/* A pool's attributes left to the options' defaults, made explicit: the
 * master takes them as this generation's. */
static gdl_pool_t resolved(const gdl_pool_t *p)
{
    gdl_pool_t r = *p;

    if (r.max_idle_time < 0)
        r.max_idle_time = gdl_config.max_idle_time;
    if (r.timeout_ms < 0)
        r.timeout_ms = gdl_config.timeout_ms;
    if (r.max_attempts < 0)
        r.max_attempts = gdl_config.max_attempts;
    if (r.max_jobs < 0)
        r.max_jobs = gdl_config.max_jobs;
    if (r.max_memory < 0)
        r.max_memory = gdl_config.max_memory;
    return r;
}

static void send_result(int fd, int failed, const char *error)
{
    struct evbuffer *b = evbuffer_new();
    size_t len;
    unsigned char *flat;

    if (b == NULL)
        _exit(1);
    put_i32(b, 0); /* the length, set below */
    put_i32(b, failed);
    put_i32(b, gdl_npools);
    put_str(b, error);
    for (int k = 0; k < gdl_npools; k++) {
        gdl_pool_t r = resolved(&gdl_pools[k]);
        const gdl_pool_t *p = &r;

        put_str(b, p->name);
        put_str(b, p->title);
        put_i32(b, p->min_processes);
        put_i32(b, p->max_processes);
        put_i32(b, p->max_idle_time);
        put_i32(b, p->timeout_ms);
        put_i32(b, p->max_attempts);
        put_i32(b, p->max_jobs);
        put_i32(b, p->max_memory);
        put_i32(b, p->concurrency);
        put_i32(b, p->nfunctions);
        for (int f = 0; f < p->nfunctions; f++)
            put_str(b, p->functions[f]);
    }
    len = evbuffer_get_length(b);
    flat = evbuffer_pullup(b, -1);
    if (flat == NULL)
        _exit(1);
    memcpy(flat, &(int32_t){(int32_t)len}, sizeof(int32_t));
    if (write_all(fd, flat, len) < 0)
        _exit(0); /* the master is gone */
    evbuffer_free(b);
}

/* A spare: a process forked ahead of need, already the master's child
 * once its intermediate is reaped, waiting to be told its pool and slot. */
typedef struct {
    pid_t pid;  /* 0: none, or not known yet (mid has not reported it) */
    pid_t mid;  /* the intermediate, until reaped */
    int fd;     /* where its pool and slot are written */
    int report; /* where mid writes the spare's pid; -1 once read */
} spare_t;

#define NO_SPARE ((spare_t){0, 0, -1, -1})

/* The loader's ends of every spare's pipes that are open: an
 * intermediate closes them all, so a spare holds no other spare's pipe
 * (one that did would keep that spare from ever seeing end of file). */
static int held[2 * (BATCH_MAX + 2)];
static int nheld;

static void hold(int fd)
{
    if (nheld < (int)(sizeof(held) / sizeof(held[0])))
        held[nheld++] = fd;
}

static void release(int fd)
{
    for (int i = 0; i < nheld; i++)
        if (held[i] == fd) {
            held[i] = held[--nheld];
            break;
        }
    close(fd);
}

/* Starts forking a spare, reparented to the master: loader ->
 * intermediate -> spare, and the intermediate exits at once. Returns once
 * the intermediate is forked, so several can fork their spares at once
 * (spare_finish collects each). 0, or -1 with errno. */
static int spare_fork(spare_t *sp, int sock, int gen)
{
    int assign[2], report[2], saved;
    pid_t mid;

    if (pipe(assign) < 0)
        return -1;
    if (pipe(report) < 0) {
        saved = errno;
        close(assign[0]);
        close(assign[1]);
        errno = saved;
        return -1;
    }
    fflush(NULL); /* or the child would write our pending output again */
    mid = fork();
    if (mid == 0) {
        pid_t pid;

        close(sock);
        close(assign[1]);
        close(report[0]);
        for (int i = 0; i < nheld; i++)
            close(held[i]);
        pid = fork();
        if (pid == 0) {
            spare_req_t req;
            char title[64];

            close(report[1]);
            snprintf(title, sizeof(title), "gdlua: spare %d", gen);
            gdl_proctitle_set(title);
            /* Written once the loader has reaped the intermediate, so the
             * master is this process's parent by then. End of file: the
             * loader is gone, or has no use for this spare. */
            if (read_all(assign[0], &req, sizeof(req)) < 0)
                _exit(0);
            close(assign[0]);
            gdl_child_run(req.pool, req.slot);
        }
        if (pid < 0)
            pid = -errno;
        write_all(report[1], &pid, sizeof(pid));
        _exit(0);
    }
    saved = errno;
    close(assign[0]);
    close(report[1]);
    if (mid < 0) {
        close(assign[1]);
        close(report[0]);
        errno = saved;
        return -1;
    }
    hold(assign[1]);
    hold(report[0]);
    *sp = (spare_t){0, mid, assign[1], report[0]};
    return 0;
}

/* Waits for a spare_fork to be done: the spare's pid reported and the
 * intermediate reaped. 0, or -1 with errno (and no spare). */
static int spare_finish(spare_t *sp)
{
    pid_t pid;
    int saved = 0;

    if (read_all(sp->report, &pid, sizeof(pid)) < 0)
        pid = -EIO;
    release(sp->report);
    sp->report = -1;
    while (waitpid(sp->mid, NULL, 0) < 0 && errno == EINTR)
        ;
    sp->mid = 0;
    if (pid < 0) {
        saved = -pid;
        release(sp->fd);
        *sp = NO_SPARE;
        errno = saved;
        return -1;
    }
    sp->pid = pid;
    return 0;
}

static int spare_new(spare_t *sp, int sock, int gen)
{
    return spare_fork(sp, sock, gen) < 0 ? -1 : spare_finish(sp);
}

/* The spare becomes a process of pool, for slot: its pid, or -1. */
static pid_t spare_assign(spare_t *sp, int pool, int slot)
{
    spare_req_t req = {pool, slot};
    pid_t pid = sp->pid;
    int rc = write_all(sp->fd, &req, sizeof(req));

    release(sp->fd);
    *sp = NO_SPARE;
    if (rc < 0) {
        errno = EPIPE; /* it has died */
        return -1;
    }
    return pid;
}

static void spare_drop(spare_t *sp)
{
    if (sp->report >= 0 && spare_finish(sp) < 0)
        return;
    if (sp->pid > 0)
        release(sp->fd); /* it exits */
    *sp = NO_SPARE;
}

static bool request_valid(const spawn_req_t *req)
{
    return req->pool >= 0 && req->pool < gdl_npools && req->slot >= 0 && req->slot < GDL_PROCS_MAX;
}

/* Whether a request comes within ms (0: whether one is there already). */
static bool request_within(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    return poll(&pfd, 1, ms) > 0;
}

static void on_usr1(int sig)
{
    reopen_log = 1;
}

/* The loader's signals: the master's handlers are reset; signals sent to
 * the whole process group are the master's to act on. */
static void loader_signals(void)
{
    struct sigaction sa = {0};
    sigset_t none;

    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_usr1; /* no SA_RESTART: the blocking read returns */
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void loader_run(int fd, int gen) __attribute__((noreturn));

static void loader_run(int fd, int gen)
{
    char title[512], error[512] = "";
    spare_t spare = NO_SPARE;
    int failed, n, delay_ms = 0;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != gdl_master_pid)
        _exit(0);
    loader_signals();
    n = snprintf(title, sizeof(title), "gdlua: loader %d", gen);
    for (int i = 0; i < gdl_config.ndirs && n < (int)sizeof(title); i++)
        n += snprintf(title + n, sizeof(title) - n, " %s", gdl_config.dirs[i]);
    gdl_proctitle_set(title);

    /* Fresh: whatever an earlier loader left in this image is not ours;
     * the config file is read again (its per-job overrides and defaults). */
    gdl_pools = NULL;
    gdl_npools = 0;
    if (gdl_config.config && gen > 1 && reread_config(error, sizeof(error)) < 0) {
        failed = -1; /* nothing loaded: the error says why */
    } else if ((gdl_L = gdl_lua_new()) == NULL) {
        failed = 1;
        snprintf(error, sizeof(error), "cannot create a Lua state");
        gdl_error("%s", error);
    } else {
        failed = gdl_lua_load_pools(error, sizeof(error));
        /* Every process is forked from this state and runs no Lua here
         * again: a full cycle now frees what loading left (parse and
         * set-up garbage), so no child inherits it. Left to the children,
         * each one's first cycle would sweep it and copy every page it
         * lies on (measured: with a module that builds and drops 100,000
         * small tables as it loads, 1.7 MiB private dirty per process
         * after 1000 jobs without this cycle, 0.5 MiB with it). */
        lua_gc(gdl_L, LUA_GCCOLLECT, 0);
    }
    /* The processes forked from here start with gdlua._dispatch at hand;
     * if it cannot be had, each process tries again and says why. */
    if (failed >= 0 && gdl_L != NULL && gdl_npools > 0 && gdl_child_prepare(gdl_L) < 0)
        lua_pop(gdl_L, 1);
    send_result(fd, failed, error);

    /* Requests are answered from a spare forked ahead, so a lone start
     * waits for no fork. After a start, the next spare is forked once no
     * request has come for SPARE_DELAY_MS: forked at once, it would take a
     * core from the process just started while that one connects. The
     * requests of one start come in one write (several processes of a
     * burst): their intermediates are all forked before any is waited
     * for, so their forks and exits run side by side, not in turn. */
    for (;;) {
        spawn_req_t reqs[BATCH_MAX];
        spare_t forked[BATCH_MAX];
        sigset_t all, old;
        ssize_t got;
        int nreq;

        /* Blocked across the forks: a process sets its own handlers. */
        sigfillset(&all);
        if (spare.pid == 0 && spare.report < 0 && gdl_npools > 0 && !request_within(fd, delay_ms)) {
            sigprocmask(SIG_BLOCK, &all, &old);
            if (spare_new(&spare, fd, gen) < 0)
                gdl_warn("loader %d: cannot fork a spare process: %s", gen, strerror(errno));
            sigprocmask(SIG_SETMASK, &old, NULL);
        }

        if (reopen_log) {
            reopen_log = 0;
            gdl_log_reopen();
            spare_drop(&spare); /* it holds the old log file */
            continue;
        }
        got = read(fd, &reqs[0], sizeof(reqs[0]));
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)sizeof(reqs[0]))
            _exit(0); /* the master closed its end: this generation is over */
        for (nreq = 1; nreq < BATCH_MAX; nreq++) {
            got = recv(fd, &reqs[nreq], sizeof(reqs[nreq]), MSG_DONTWAIT);
            if (got <= 0)
                break;
            if (got < (ssize_t)sizeof(reqs[nreq]) &&
                read_all(fd, (char *)&reqs[nreq] + got, sizeof(reqs[nreq]) - (size_t)got) < 0)
                _exit(0);
        }

        sigprocmask(SIG_BLOCK, &all, &old);
        /* The spare at hand serves the first; the others' intermediates
         * fork now (one that cannot is forked again below). */
        for (int i = 0; i < nreq; i++) {
            forked[i] = NO_SPARE;
            if (!request_valid(&reqs[i]))
                continue;
            if (spare.pid > 0 || spare.report >= 0) {
                forked[i] = spare;
                spare = NO_SPARE;
            } else if (spare_fork(&forked[i], fd, gen) < 0) {
                forked[i] = NO_SPARE;
            }
        }
        for (int i = 0; i < nreq; i++) {
            spawn_rep_t rep = {-1, EINVAL};

            /* A second try with a fresh spare, if the first one had died. */
            for (int tries = 0; tries < 2 && request_valid(&reqs[i]) && rep.pid < 0; tries++) {
                if (forked[i].report >= 0 && spare_finish(&forked[i]) < 0)
                    continue;
                if (forked[i].pid > 0 || spare_new(&forked[i], fd, gen) == 0)
                    rep.pid = spare_assign(&forked[i], reqs[i].pool, reqs[i].slot);
                rep.err = rep.pid < 0 ? errno : 0;
            }
            if (write_all(fd, &rep, sizeof(rep)) < 0)
                _exit(0);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        delay_ms = SPARE_DELAY_MS;
    }
}

/* ---- the master's end ---- */

int gdl_loader_start(gdl_loader_t *ld, int gen)
{
    int sv[2], slot;
    sigset_t all, old;
    pid_t pid;

    for (slot = 0; slot < LOADERS_MAX && master_ends[slot] >= 0; slot++)
        ;
    if (slot == LOADERS_MAX) {
        gdl_error("cannot start a loader: %d already running", LOADERS_MAX);
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        gdl_error("cannot start a loader: %s", strerror(errno));
        return -1;
    }
    *ld = (gdl_loader_t){.fd = sv[0], .gen = gen, .in = evbuffer_new()};
    if (ld->in == NULL) {
        close(sv[0]);
        close(sv[1]);
        gdl_error("cannot start a loader: out of memory");
        return -1;
    }
    /* Blocked across fork so no signal reaches the loader while
     * libevent's handlers are still installed there. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        for (int i = 0; i < LOADERS_MAX; i++)
            if (master_ends[i] >= 0)
                close(master_ends[i]);
        close(sv[0]);
        loader_run(sv[1], gen);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        gdl_error("cannot fork a loader: %s", strerror(errno));
        close(sv[0]);
        evbuffer_free(ld->in);
        ld->in = NULL;
        ld->fd = -1;
        return -1;
    }
    master_ends[slot] = sv[0];
    ld->pid = pid;
    gdl_info("loader %d (%d): loading the job modules", gen, (int)pid);
    return 0;
}

static int get_i32(struct evbuffer *b, int *v)
{
    int32_t x;

    if (evbuffer_remove(b, &x, sizeof(x)) != (int)sizeof(x))
        return -1;
    *v = x;
    return 0;
}

static char *get_str(struct evbuffer *b)
{
    int len;
    char *s;

    if (get_i32(b, &len) < 0 || len < 0 || (size_t)len > evbuffer_get_length(b) || (s = malloc(len + 1)) == NULL)
        return NULL;
    evbuffer_remove(b, s, len);
    s[len] = '\0';
    return s;
}

void gdl_pool_free(gdl_pool_t *p)
{
    free(p->name);
    free(p->title);
    for (int f = 0; f < p->nfunctions; f++)
        free(p->functions[f]);
    free(p->functions);
    memset(p, 0, sizeof(*p));
}

static int parse_result(gdl_loader_t *ld, struct evbuffer *b)
{
    char *error;
    int n;

    if (get_i32(b, &ld->failed) < 0 || get_i32(b, &n) < 0 || n < 0 || n > (1 << 20) || (error = get_str(b)) == NULL)
        return -1;
    snprintf(ld->error, sizeof(ld->error), "%s", error);
    free(error);
    if ((ld->pools = calloc(n ? n : 1, sizeof(gdl_pool_t))) == NULL)
        return -1;
    for (ld->npools = 0; ld->npools < n; ld->npools++) {
        gdl_pool_t *p = &ld->pools[ld->npools];

        if ((p->name = get_str(b)) == NULL || (p->title = get_str(b)) == NULL || get_i32(b, &p->min_processes) < 0 ||
            get_i32(b, &p->max_processes) < 0 || get_i32(b, &p->max_idle_time) < 0 || get_i32(b, &p->timeout_ms) < 0 ||
            get_i32(b, &p->max_attempts) < 0 || get_i32(b, &p->max_jobs) < 0 || get_i32(b, &p->max_memory) < 0 ||
            get_i32(b, &p->concurrency) < 0 || p->concurrency < 1 || p->concurrency > GDL_CONCURRENCY_MAX ||
            get_i32(b, &p->nfunctions) < 0 || p->nfunctions < 0 || p->nfunctions > (1 << 20) ||
            (p->functions = calloc(p->nfunctions + 1, sizeof(char *))) == NULL) {
            ld->npools++; /* freed with the others */
            return -1;
        }
        for (int f = 0; f < p->nfunctions; f++)
            if ((p->functions[f] = get_str(b)) == NULL)
                return -1;
    }
    return 0;
}

/* Reads what the loader has sent. 1: its result is in (ld->failed,
 * error, pools); 0: more to come; -1: it failed or died (ld->error). */
int gdl_loader_read(gdl_loader_t *ld, bool block)
{
    int32_t len;

    for (;;) {
        int n;

        if (evbuffer_get_length(ld->in) >= sizeof(len)) {
            evbuffer_copyout(ld->in, &len, sizeof(len));
            if (len < (int32_t)sizeof(len) || len > RESULT_MAX) {
                snprintf(ld->error, sizeof(ld->error), "the loader sent garbage");
                return -1;
            }
            if (evbuffer_get_length(ld->in) >= (size_t)len) {
                evbuffer_drain(ld->in, sizeof(len));
                if (parse_result(ld, ld->in) < 0) {
                    snprintf(ld->error, sizeof(ld->error), "the loader sent garbage");
                    return -1;
                }
                return 1;
            }
        }
        if (!block) {
            struct pollfd pfd = {.fd = ld->fd, .events = POLLIN};
            if (poll(&pfd, 1, 0) <= 0)
                return 0;
        }
        n = evbuffer_read(ld->in, ld->fd, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(ld->error, sizeof(ld->error), "the loader ended before it had loaded the modules");
            return -1;
        }
    }
}

/* Starts n processes of pool, one per slots[i]: pids[i] gets its pid, or
 * -1 with the cause in why. The requests go in one write, so the loader
 * forks them side by side. Returns how many started, or -2 when the
 * loader is gone or has let SPAWN_TIMEOUT_MS pass without an answer
 * (pids[i] is set for those it answered before). */
int gdl_loader_spawn(gdl_loader_t *ld, int pool, const int *slots, int n, pid_t *pids, char *why, size_t whylen)
{
    spawn_req_t reqs[GDL_PROCS_MAX];
    struct pollfd pfd = {.fd = ld->fd, .events = POLLIN};
    int started = 0;

    if (n > GDL_PROCS_MAX)
        n = GDL_PROCS_MAX;
    for (int i = 0; i < n; i++) {
        reqs[i] = (spawn_req_t){pool, slots[i]};
        pids[i] = -1;
    }
    if (ld->fd < 0 || write_all(ld->fd, reqs, sizeof(spawn_req_t) * (size_t)n) < 0) {
        snprintf(why, whylen, "the loader is gone");
        return -2;
    }
    for (int i = 0; i < n; i++) {
        int64_t deadline = gdl_now_ms() + SPAWN_TIMEOUT_MS;
        spawn_rep_t rep;
        int rc;

        /* Each answer is one small write: once it begins, it is all there. */
        do {
            int left = (int)(deadline - gdl_now_ms());

            rc = left > 0 ? poll(&pfd, 1, left) : 0;
        } while (rc < 0 && errno == EINTR);
        if (rc <= 0) {
            snprintf(why, whylen, rc == 0 ? "the loader did not answer in %d ms" : "cannot wait for the loader (%d ms)",
                     SPAWN_TIMEOUT_MS);
            return -2;
        }
        if (read_all(ld->fd, &rep, sizeof(rep)) < 0) {
            snprintf(why, whylen, "the loader is gone");
            return -2;
        }
        if (rep.pid < 0) {
            snprintf(why, whylen, "%s", strerror(rep.err));
            continue;
        }
        pids[i] = rep.pid;
        started++;
    }
    return started;
}

/* Closes the master's end: the loader exits; its processes serve on.
 * The pools it sent stay the caller's unless ld->pools is freed here. */
void gdl_loader_stop(gdl_loader_t *ld)
{
    for (int i = 0; i < LOADERS_MAX; i++)
        if (ld->fd >= 0 && master_ends[i] == ld->fd)
            master_ends[i] = -1;
    if (ld->fd >= 0)
        close(ld->fd);
    if (ld->in)
        evbuffer_free(ld->in);
    if (ld->pools) {
        for (int k = 0; k < ld->npools; k++)
            gdl_pool_free(&ld->pools[k]);
        free(ld->pools);
    }
    *ld = (gdl_loader_t){.fd = -1};
}
