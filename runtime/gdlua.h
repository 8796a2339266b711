/*
 * gdlua.h: the declarations shared between gdlua's units (internal; what
 * users' C modules may use is gdlua_module.h).
 *
 * One header for the whole runtime, arranged by unit in the order of
 * the layers (tests/check_layers.py), lowest first. The master
 * (gdl_master.c) has a loader (gdl_loader.c, driven by
 * gdl_generations.c) load the job modules (gdl_lua.c) into pools, one
 * process type each, and fork children (gdl_child.c) that serve one pool
 * each, supervised by gdl_procs.c; per-process state crosses the fork in
 * shared-memory slots (gdl_slot.c). How many processes a pool gets is gdl_policy.c's, fed by
 * the observer (gdl_observer.c) and woken by the sentinels
 * (gdl_sentinel.c). Words: a *pool* is a process type (a gearman
 * function, or a process group of functions); a *job* is one unit of
 * work a client submitted.
 */
#ifndef GDLUA_H
#define GDLUA_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <lua.h>

#include "gdl_servers.h"
#include "gdlua_module.h"

struct event;
struct event_base;
struct bufferevent;
struct evbuffer;
struct sockaddr;

#define GDL_PROCS_MAX       1024  /* processes alive at once, all pools together; also a pool's limit */
#define GDL_CONCURRENCY_MAX 10000 /* jobs one process holds at once (a pool's concurrency), at most */
#define GDL_SERVERS_MAX     16
#define GDL_DIRS_MAX        64

/* ---- gdl_util.c: who this process is, and pure helpers (unit-tested) ---- */

extern pid_t gdl_master_pid;   /* set by gdl_master_init; a child compares it with its parent */
extern char gdl_instance[128]; /* "gdlua:HOST:MASTERPID": this instance's name to job servers */
/* gdl_is_master: gdlua_module.h */

int64_t gdl_now_ms(void);
int64_t gdl_now_us(void);
long gdl_rss_mib(pid_t pid); /* -1: cannot be read (gone) */
void gdl_format_time(int64_t unix_s, char *buf, size_t len);
void gdl_format_exit(int status, char *buf, size_t len);
int gdl_format_number(double n, char *buf, size_t len);
int gdl_backoff_ms(int attempt, int first_ms, int max_ms);
#define GDL_RETRY_CAP_MS (300 * 1000) /* a retry waits 5 minutes at most, unless retry_backoff is longer */
int64_t gdl_retry_delay_ms(int rerun, int64_t base_ms, double jitter);
void gdl_sleep_ms(int ms);
size_t gdl_utf8_len(const unsigned char *s, size_t n);
size_t gdl_escape(char *out, size_t size, const char *in, size_t len, bool keep_newlines);
bool gdl_token_equal(const char *given, size_t len, const char *token);
int gdl_token_read(const char *path, char *token, size_t size, const char *who);
bool gdl_is_loopback(const struct sockaddr *sa);
int gdl_fds_open(int **out); /* the descriptors open now, sorted; *out malloc'd */
int gdl_fds_new_sockets(const int *before, int nbefore, int *fds, int max); /* sockets open now, not in before */
#define GDL_SEQ_MAX        2048 /* bytes of a record under a seqlock, at most */
#define GDL_SEQ_WORDS(len) (((len) + 7) / 8)
void gdl_seq_store(_Atomic uint32_t *seq, _Atomic uint64_t *words, const void *src, size_t len);
/* A store of part of a record: begin, put the changed byte ranges, end. */
uint32_t gdl_seq_begin(_Atomic uint32_t *seq);
void gdl_seq_put(_Atomic uint64_t *words, const void *src, size_t len, size_t from, size_t to);
void gdl_seq_end(_Atomic uint32_t *seq, uint32_t begun);
void gdl_seq_load(_Atomic uint32_t *seq, _Atomic uint64_t *words, void *dst, size_t len);

/* ---- gdl_log.c: log lines (level, time stamp, pid) to stderr or the logfile ---- */

extern int gdl_log_level;
extern const char *const gdl_log_levels[]; /* "error", ... indexed by GDL_LOG_*; NULL-terminated */
enum { GDL_LOGFORMAT_TEXT, GDL_LOGFORMAT_JSON };
extern int gdl_log_format;
extern const char *const gdl_log_formats[]; /* "text", "json": indexed by GDL_LOGFORMAT_*; NULL-terminated */
void gdl_log_context(const char *job, const char *handle);
int gdl_log_layout(const char *pattern);
/* What %d{FORMAT} of --loglayout takes, in words (Log::Log4perl's letters). */
#define GDL_LOG_DATE_HELP "FORMAT: yyyy yy MM MMM dd HH mm ss SSS, or ISO8601, ABSOLUTE or DATE"
int gdl_log_open(const char *path);
void gdl_log_reopen(void);
int gdl_log_level_parse(const char *name);
/* A field of a line a job writes (gdlua.log's table): its value's text,
 * a string's bytes or, when literal, a number or true/false as JSON has
 * it. */
typedef struct {
    const char *key;
    const char *value;
    size_t len;
    bool literal;
} gdl_log_field_t;
#define GDL_LOG_FIELDS_MAX 64
/* A line a job wrote: msg[0..len), then the fields; in text, named by
 * the pool and the job under way. */
void gdl_log_job(int level, const char *msg, size_t len, const gdl_log_field_t *fields, int nfields);
#define gdl_error(...) gdl_log(GDL_LOG_ERROR, __VA_ARGS__)
#define gdl_warn(...)  gdl_log(GDL_LOG_WARN, __VA_ARGS__)
#define gdl_info(...)  gdl_log(GDL_LOG_INFO, __VA_ARGS__)
#define gdl_debug(...)                           \
    do {                                         \
        if (gdl_log_level >= GDL_LOG_DEBUG)      \
            gdl_log(GDL_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

/* ---- gdl_proctitle.c: process titles (ps shows a process's role) ---- */

void gdl_proctitle_init(int argc, char **argv);
void gdl_proctitle_set(const char *title);

/* ---- gdl_assets.c (generated): the dashboard's files ---- */

typedef struct {
    const char *path; /* as requested: "/", "/dygraph.min.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} gdl_asset_t;

extern const gdl_asset_t gdl_assets[]; /* ends with a NULL path */

/* ---- gdl_embedded.c (generated): the Lua half of the API ---- */

typedef struct {
    const char *module;
    const char *chunkname;
    const char *source;
    size_t len;
} gdl_embedded_t;

extern const gdl_embedded_t gdl_embedded[];

/* ---- gdl_http_parse.c: the check of every HTTP request head ---- */

#define GDL_HTTP_URI_MAX    2048 /* bytes of a target; more: 414 */
#define GDL_HTTP_HEAD_MAX   8192 /* bytes of a head, empty line included; more: 431 */
#define GDL_HTTP_FIELDS_MAX 100  /* header fields; more: 431 */
#define GDL_HTTP_METHOD_MAX 16   /* bytes of a method; longer: 501 */
#define GDL_HTTP_EMPTY_MAX  4    /* empty lines before a request line; more: 400 */
/* Bytes past which a head whose request line has not ended is refused. */
#define GDL_HTTP_LINE_DECIDED (2 * GDL_HTTP_EMPTY_MAX + GDL_HTTP_METHOD_MAX + 1 + GDL_HTTP_URI_MAX + 1 + 8 + 2)

enum { GDL_HTTP_MORE = 0 };
enum { GDL_HTTP_OTHER, GDL_HTTP_GET, GDL_HTTP_HEAD };

typedef struct {
    int method; /* GDL_HTTP_GET or _HEAD; GDL_HTTP_OTHER until the method is known */
    int minor;  /* HTTP/1.minor */
    const char *target;
    size_t target_len;
    size_t path_len;  /* of target, before a '?' */
    const char *auth; /* Authorization's value, trimmed; NULL: none */
    size_t auth_len;
    bool keep_alive; /* the connection may serve another request after this one */
    size_t line_len; /* bytes up to the request line's end; 0 while it has not ended */
    size_t head_len; /* bytes of the whole head (with 200) */
    const char *why; /* a refusal's reason */
} gdl_http_req_t;

/* GDL_HTTP_MORE: the head is not complete (and not refused yet); 200: a
 * request to serve, req filled in, pointing into buf; else the status
 * to refuse it with (400, 405, 411, 413, 414, 431, 501, 505), req->why
 * saying why. More bytes never change an answer other than MORE. */
int gdl_http_parse_head(const char *buf, size_t len, gdl_http_req_t *req);

/* ---- gdl_listen.c: the console's and the HTTP endpoint's listening ---- */

/* One accepted connection; an owner's connection struct starts with it. */
typedef struct gdl_conn {
    struct bufferevent *bev;
    struct gdl_listener *owner;
    struct gdl_conn *prev, *next; /* oldest first */
    int evictable; /* 0: busy; above 0: may be closed for a new connection, the highest and oldest first */
    struct sockaddr_storage peer;
} gdl_conn_t;

/* A listening socket and its connections: the owner fills the first
 * fields, gdl_listen the rest. */
typedef struct gdl_listener {
    const char *who;                /* "console", "http": the log's prefix, and the options' (--WHO_bind) */
    const char *without;            /* "a console", "HTTP": what jobs are served without when the port is taken */
    size_t conn_size;               /* the owner's connection struct */
    int max;                        /* connections at once, as the owner wants them */
    const char *busy_reply;         /* sent to one beyond max when none can be evicted */
    int (*on_conn)(gdl_conn_t *c);  /* set up a new connection; -1: close it */
    void (*on_free)(gdl_conn_t *c); /* what the owner holds of it, before it is freed */
    struct evconnlistener *lev;
    struct event *resume; /* accepts paused for want of descriptors start again */
    gdl_conn_t *first, *last;
    int nconns;
    int cap;      /* max, lowered when the descriptor limit cannot hold every listener's */
    bool starved; /* accept failed for want of descriptors; warned */
    struct gdl_listener *next;
} gdl_listener_t;

#define GDL_ACCEPT_PAUSE_MS 250 /* accepts paused this long when out of descriptors */
#define GDL_FDS_RESERVE     128 /* descriptors the listeners leave to the rest of the master */
#define GDL_CONNS_MIN       8   /* connections a listener takes however low the limit */

/* Listens on host:port if the address rule allows it (a non-loopback
 * address needs a token or --WHO_insecure). 0: listening; 1: the port
 * cannot be bound (logged: served without); -1: refused (logged). In
 * messages: option, --WHO_bind's value; shown, the address and port. */
int gdl_listen(gdl_listener_t *l, struct event_base *base, const char *host, const char *port, const char *option,
               const char *shown, bool token, bool insecure);
void gdl_listen_close(gdl_listener_t *l);
void gdl_conn_free(gdl_conn_t *c);

/* Wrong tokens pause further tries from their address (not from every
 * address: one guesser must not lock the others out). */
#define GDL_LOCKOUT_SLOTS 64
typedef struct {
    struct {
        unsigned char addr[16]; /* IPv4 as IPv4-mapped IPv6 */
        int64_t until_ms;
    } slot[GDL_LOCKOUT_SLOTS];
} gdl_lockout_t;

enum { GDL_AUTH_OK, GDL_AUTH_WRONG, GDL_AUTH_PAUSED };

/* Checks the token given by peer in constant time; a wrong one pauses
 * peer's tries for pause_ms, during which every token it gives is
 * GDL_AUTH_PAUSED, uncompared. */
int gdl_auth_check(gdl_lockout_t *t, const struct sockaddr *peer, const char *given, size_t len, const char *token,
                   int64_t now_ms, int pause_ms);
const char *gdl_peer_name(const struct sockaddr *sa, char *buf, size_t len); /* "127.0.0.1", "::1" */

/* ---- gdl_options.c: the option table, parsing, the config file, --help ---- */

typedef struct {
    gdl_server_t servers[GDL_SERVERS_MAX];
    int nservers;
    const char *dirs[GDL_DIRS_MAX];
    int ndirs;
    const char *libs[GDL_DIRS_MAX];
    int nlibs;
    const char *cpaths[GDL_DIRS_MAX];
    int ncpaths;
    const char *namespaces[GDL_DIRS_MAX];
    int nnamespaces;
    const char *logfile;
    int loglevel;
    int shutdown_timeout; /* seconds before SIGKILL */
    int interval;         /* seconds between status polls; 0 = none */
    int max_idle_time;    /* seconds an extra process may idle */
    int max_spawn_rate;   /* process starts per second, all pools */
    bool no_wakeups;      /* no sentinels: scale on polls only */
    int console_port;     /* 0: no console */
    const char *console_bind;
    const char *console_token; /* file holding the token */
    bool console_insecure;     /* allow a non-loopback bind without token */
    bool check;                /* load, list the pools, exit */
    bool strict;               /* refuse to start unless every module loads */
    int max_attempts;          /* deaths a job may cause before it is failed unrun; 0: no limit */
    int timeout_ms;            /* a job running longer is failed; 0: none */
    int client_timeout_ms;     /* a gdlua.client call in a job gives up after this long unanswered; 0: never */
    int stop_timeout_ms;       /* a process asked to stop is SIGKILLed after this; 0: never */
    int max_jobs;              /* jobs a process serves before it is replaced; 0: no limit */
    int max_memory;            /* MiB of RSS past which a process is replaced; 0: no limit */
    const char *config;        /* --config FILE (Gearman::Driver's --configfile) */
    bool daemonize;
    const char *pidfile;
    const char *user; /* drop to this user (and group) once listening */
    const char *group;
    /* The config file's per-job overrides: a name, and the attributes it
     * sets (the others GDL_UNSET); gdl_lua_load_pools applies them. */
    struct gdl_pool *jobs;
    int njobs;
    struct gdl_kept *kept;  /* strings read from the config file */
    const char *http_bind;  /* ADDRESS:PORT of the HTTP endpoint; NULL: none */
    const char *http_token; /* file holding the token */
    bool http_insecure;     /* allow a non-loopback bind without token */
    int logformat;          /* GDL_LOGFORMAT_* */
    const char *loglayout;  /* a Log::Log4perl pattern for text lines; NULL: gdlua's own */
} gdl_config_t;

#define GDL_UNSET INT_MIN

extern gdl_config_t gdl_config;

/* How long a gdlua.client call waits unanswered when its client sets no
 * timeout: in scripts and gdlua call always, in jobs unless
 * --client_timeout says otherwise (seconds). */
#define GDL_CLIENT_TIMEOUT_S 30

enum { GDL_OPTS_OK, GDL_OPTS_EXIT_OK, GDL_OPTS_EXIT_ERROR };
int gdl_options_parse(gdl_config_t *cfg, int argc, char **argv);
/* For a reload: the command line gdlua started with and its config file,
 * read again into a fresh cfg (errors logged). 0, or -1 with cfg freed
 * and the first error in err. */
int gdl_options_reload(gdl_config_t *cfg, char *err, size_t errlen);
void gdl_options_free(gdl_config_t *cfg);
/* Copies the attributes override sets (not GDL_UNSET) into pool. */
void gdl_options_override(struct gdl_pool *pool, const struct gdl_pool *override);

/* ---- gdl_slot.c: one slot per process, written by its child ---- */

#define GDL_HIST_BUCKETS 128 /* job durations: 4 buckets per octave of µs */
#define GDL_ERROR_MAX    256 /* bytes of a last-error message kept, NUL included */

/* Counters of a process or a pool, one list: it expands into the struct,
 * the fold of an exited process into its pool, the console's `stats`
 * and `json`, and the HTTP endpoint's /metrics.
 * X(name, fold, column, metric, help): fold SUM adds, LATEST keeps the
 * larger (a unix time); column is the `stats` heading, or NULL; metric
 * is the Prometheus name after "gdlua_" (a SUM is a counter, a LATEST a
 * gauge), with its label when several counters share a name (they are
 * listed together), or NULL for none (busy_us is the duration
 * histogram's _sum). */
#define GDL_COUNTERS(X)                                                                                           \
    X(done, SUM, "DONE", "jobs_total{outcome=\"done\"}", "jobs completed")                                        \
    X(failed, SUM, "FAILED", "jobs_total{outcome=\"failed\"}", "jobs failed (an error or a bad result)")          \
    X(timeouts, SUM, "TIMEOUTS", "jobs_total{outcome=\"timeout\"}", "jobs failed for running past their timeout") \
    X(poisoned, SUM, "POISONED", "jobs_total{outcome=\"poisoned\"}",                                              \
      "jobs failed unrun: they had killed max_attempts processes")                                                \
    X(retries, SUM, "RETRIES", "job_retries_total", "failed jobs run again (retries, gdlua.retry)")               \
    X(rate_waits, SUM, "LIMITED", "rate_limit_waits_total",                                                       \
      "times a process waited for its pool's rate_limit before taking its next job")                              \
    X(busy_us, SUM, NULL, NULL, "microseconds spent running jobs")                                                \
    X(last_run, LATEST, "LASTRUN", "last_run_timestamp_seconds", "when a job last started (unix)")                \
    X(last_error, LATEST, "LASTERROR", "last_error_timestamp_seconds", "when a job last failed (unix)")

enum { GDL_FOLD_SUM, GDL_FOLD_LATEST };

typedef struct {
#define GDL_X(name, fold, column, metric, help) uint64_t name;
    GDL_COUNTERS(GDL_X)
#undef GDL_X
    uint32_t hist[GDL_HIST_BUCKETS];
    char error[GDL_ERROR_MAX]; /* the last error's first line */
} gdl_counters_t;

/* RECYCLE: idle, past max_jobs or max_memory, to be replaced (still serving meanwhile). */
enum { GDL_SLOT_FREE, GDL_SLOT_STARTING, GDL_SLOT_IDLE, GDL_SLOT_BUSY, GDL_SLOT_RECYCLE };

int gdl_hist_bucket(uint64_t us);
uint64_t gdl_hist_upper_us(int bucket);
uint64_t gdl_counters_percentile_us(const gdl_counters_t *c, double p);
void gdl_counters_add(gdl_counters_t *to, const gdl_counters_t *from);
const char *gdl_slot_state_name(int state);

int gdl_slots_init(void);
/* master: */
int gdl_slots_bell_fd(void); /* readable when a child became ready or asks to be replaced */
void gdl_slots_set_hung(int server, bool hung); /* its polls time out: children leave it out */
bool gdl_slots_hung(int server);                /* child: whether to leave job server `server` out */
#define GDL_HELD_MAX 65536   /* jobs the concurrent processes hold at once, all together */
/* Before fork: zeroed, "starting", with room for concurrency jobs in
 * hand; returns the concurrency granted (fewer when the table is short). */
int gdl_slot_prepare(int slot, int concurrency);
void gdl_slot_release(int slot); /* after reaping: "free" */
int gdl_slot_capacity(int slot); /* jobs the process may hold at once */
int gdl_slot_jobs(int slot);     /* jobs it holds now */
/* Entry k (0 .. capacity) of a concurrent process's jobs: 1 with the job
 * it holds there, 0 when free, -1 past the end. */
int gdl_slot_held(int slot, int k, char *handle, size_t hlen, char *unique, size_t ulen, int64_t *start_ms);
int gdl_slot_state(int slot, int64_t *since_ms);
void gdl_slot_read(int slot, gdl_counters_t *c, char *handle, size_t handle_len);
void gdl_slot_unique(int slot, char *unique, size_t len);
/* child, its own slot only: */
void gdl_slot_attach(int slot, const char *pool_name);
void gdl_slot_idle(int64_t now_ms);
int64_t gdl_slot_busy_since(void); /* when its job began (gdl_now_ms); -1: idle */
int gdl_slot_pool_busy(void); /* processes of its pool that can take no job now (all slots busy), itself included */
void gdl_slot_job_begin(const char *handle, const char *unique, int64_t now_ms);
enum { GDL_JOB_DONE, GDL_JOB_FAILED, GDL_JOB_TIMEOUT, GDL_JOB_POISONED };
void gdl_slot_job_end(int outcome, const char *error, uint64_t took_us, int64_t now_ms);
void gdl_slot_job_unanswered(int64_t now_ms);
void gdl_slot_job_retry(void);
void gdl_slot_job_returned(int64_t now_ms);
void gdl_slot_rate_waited(void);
/* A concurrent process: a job taken (its entry, or -1 when none is
 * free), and the entry freed (outcome -1: given back, uncounted). */
int gdl_slot_hold(const char *handle, const char *unique, int64_t now_ms);
void gdl_slot_unhold(int k, int outcome, const char *error, uint64_t took_us, int64_t now_ms);
/* A pool's rate limit, shared by its processes (and kept across reloads)
 * under its name: a bucket's index, or -1 when the table is full. */
#define GDL_BUCKETS_MAX 256
int gdl_slot_bucket(const char *pool_name);
/* Reserves the next start in bucket b, one each interval_us: when the
 * caller may start (CLOCK_MONOTONIC µs; now_us or later). */
int64_t gdl_slot_bucket_take(int b, int64_t interval_us, int64_t now_us);
void gdl_slot_recycle(int64_t now_ms);
void gdl_slot_exit(void);

/* ---- gdl_attempts.c: deaths per job handle, across processes ---- */

#define GDL_ATTEMPTS_MAX 1024 /* handles remembered, least recently written forgotten first */

typedef struct {
    char handle[72]; /* a job handle, or "U:" and a unique id */
    char reason[64]; /* why the last process running it died */
    uint32_t deaths;
    int ended;    /* 0, or the outcome the master ended it with (GDL_JOB_TIMEOUT, GDL_JOB_FAILED): fail it unrun */
    int64_t when; /* unix time of the last death */
} gdl_attempt_t;

int gdl_attempts_init(void);
/* master: */
/* A process died running handle (with unique, when the client set one). */
uint32_t gdl_attempts_died(const char *handle, const char *unique, const char *reason);
/* The master ended handle (past its timeout or max_memory): outcome is how a process fails it unrun. */
void gdl_attempts_ended(const char *handle, int outcome, const char *reason);
int gdl_attempts_recent(gdl_attempt_t *out, int max);
/* child: */
/* How often the job (handle, or the same unique id under another handle)
 * killed a process; *ended is the outcome when the master ended it, else 0. */
uint32_t gdl_attempts_of(const char *handle, const char *unique, int *ended, char *reason, size_t len);

/* ---- gdl_policy.c: how many processes each pool should have ---- */

typedef struct {
    int slot;         /* the master's index of the process */
    int state;        /* GDL_SLOT_* */
    int64_t since_ms; /* when it entered that state */
    int jobs;         /* jobs in hand (a concurrent process; else 1 while busy) */
    int capacity;     /* jobs it may hold at once; 0 or 1: one at a time */
} gdl_proc_view_t;

/* One pool as the master sees it. */
typedef struct {
    int min, max;
    int concurrency; /* jobs a process holds at once; 0 or 1: one at a time */
    int64_t max_idle_ms;
    const gdl_proc_view_t *procs; /* alive and not asked to stop */
    int nprocs;
    int queue;               /* jobs waiting, summed over the servers polled */
    int64_t queue_asked_ms;  /* when the oldest poll showing jobs waiting was sent; 0: none shows any */
    int running;             /* jobs running, the same way */
    int workers;             /* workers registered for it (sentinels left out): the most a polled server lists */
    int peers;               /* other gdlua instances serving it */
    int rank;                /* this instance's place among them, 0..peers */
    int retiring;            /* processes of this instance still registered but left out above
                                (stopping, recycling, of a replaced generation) */
    int64_t queued_since_ms; /* when the queue turned non-empty; 0: empty */
    int64_t spare_since_ms;  /* when the servers began to show spare slots (the window); 0: none */
    int spare_min;           /* the fewest spare slots a poll sent since then showed; -1: none yet */
    bool held;               /* crash-loop back-off: no start now */
} gdl_pool_view_t;

/* What the pool views have in common. */
typedef struct {
    int64_t now_ms;
    int64_t asked_ms; /* when the oldest answered poll was sent; INT64_MAX: none */
    bool fresh;       /* called for poll figures not yet acted on */
    int interval_ms;  /* the poll interval (a backlog older is stale) */
    int64_t wall_ms;  /* the wall clock, which the hosts share: the ranks turn with it */
} gdl_scene_t;

typedef struct {
    int slot;
    int64_t idle_ms;
    char why[48];
} gdl_stop_t;

typedef struct {
    int starts;
    char start_why[80];
    gdl_stop_t *stops; /* the caller's array, one entry per view proc */
    int nstops;
    int64_t queued_since_ms; /* the view's, updated: the caller hands them back in the next view */
    int64_t spare_since_ms;
    int spare_min;
    bool wake;               /* one more job should wake the master */
    bool settling;           /* processes are starting: look again soon */
    bool poll;               /* an idle one would stop, but became idle after the poll was sent */
} gdl_plan_t;

void gdl_policy_plan(const gdl_scene_t *scene, const gdl_pool_view_t *pool, gdl_plan_t *plan);

#define GDL_STABLE_MS       5000  /* a process that lived this long started fine */
#define GDL_DEATH_WINDOW_MS 10000 /* deaths are weighed against jobs served this long */

/* A death we did not ask for. */
typedef struct {
    int64_t lived_ms;
    bool external;          /* killed by a signal from outside (KILL, TERM, INT, HUP) */
    uint64_t served;        /* jobs the process ran to the end */
    uint64_t window_deaths; /* its pool's deaths in the window, this one included */
    uint64_t window_served; /* jobs its pool's processes served in the window */
} gdl_death_t;

bool gdl_policy_crash_loop(const gdl_death_t *d);

/* ---- gdl_lua.c: a loader's Lua state and the loaded pools ---- */

/* A pool: one process type, as the job modules define it. What the
 * master keeps about its processes lives in gdl_procs.c. */
typedef struct gdl_pool {
    char *name;       /* function or group name, as shown in status */
    char *title;      /* process title of its children */
    char **functions; /* gearman function names it registers */
    int nfunctions;
    int min_processes;
    int max_processes;
    int max_idle_time; /* seconds; -1: --max_idle_time */
    int timeout_ms;    /* a job running longer is failed; 0: none; -1: --timeout */
    int max_attempts;  /* deaths before a job is failed unrun; -1: --max_attempts */
    int max_jobs;      /* a process that served this many is replaced; -1: --max_jobs */
    int max_memory;    /* MiB of RSS past which a process is replaced; -1: --max_memory */
    double rate_limit; /* jobs started per second, all its processes together; 0: no limit (children only) */
    int concurrency;   /* jobs a process holds at once, each a task (gdl_sched.c); 1: one at a time */
} gdl_pool_t;

extern gdl_pool_t *gdl_pools;
extern int gdl_npools;
extern int gdl_self_pool; /* a child's: the pool it serves; -1 in the master, loaders and scripts */
extern lua_State *gdl_L;

lua_State *gdl_lua_new(void);
int gdl_lua_pcall(lua_State *L, int nargs, int nresults);
int gdl_lua_require(lua_State *L, const char *module);
int gdl_lua_load_pools(char *err, size_t errlen);
int gdl_lua_unknown_overrides(void); /* the last load's overrides that named no loaded job */
void gdl_lua_print_pools(void);
int gdl_lua_find_modules(lua_State *L);
void gdl_pools_index(void);
int gdl_pool_of_function(const char *name);

/* ---- gdl_sched.c: a worker process's event loop and the coroutines waiting on it ---- */

/* Read gdl_sched.c's opening comment first: it has the rules (modes,
 * lifetimes, what may be called from where). */
typedef struct gdl_sched_op gdl_sched_op_t;
typedef struct gdl_sched_task gdl_sched_task_t;

/* One wait of a C function called from Lua, embedded in the module's own
 * state. The module sets finish, cancel and what, starts its I/O, calls
 * gdl_sched_wake() when it is over, and returns gdl_sched_await(). */
struct gdl_sched_op {
    /* Pushes the call's results on L and frees what the wait held; returns
     * their count. Runs outside Lua (from the loop): it must not raise. */
    int (*finish)(lua_State *L, gdl_sched_op_t *op);
    /* Frees what the wait held, whether or not it was over; pushes nothing. */
    void (*cancel)(lua_State *L, gdl_sched_op_t *op);
    const char *what; /* "gdlua.http.get": names the call in errors */
    /* the scheduler's: */
    gdl_sched_task_t *task; /* the coroutine suspended in it; NULL: a blocking wait */
    bool done;
};

enum { GDL_SCHED_OK, GDL_SCHED_ERROR, GDL_SCHED_CANCELLED };

/* A managed coroutine, owned (allocated) by whoever spawns it. */
struct gdl_sched_task {
    /* The caller's, set before gdl_sched_spawn(). on_end is called once for
     * every task: OK with its results on co's stack (lua_gettop(co) of
     * them), ERROR with the message and traceback on its top, CANCELLED
     * with nothing. co is valid during the call only; the task may be
     * freed in it. */
    void (*on_end)(gdl_sched_task_t *task, lua_State *co, int status);
    void (*on_resume)(gdl_sched_task_t *task); /* before each time it runs (a log context); NULL: none */
    void *data;
    int64_t deadline_ms; /* when its job's own timeout cancels it (gdl_now_ms); 0: never */
    /* the scheduler's: */
    lua_State *co;
    int ref;                                   /* anchors co in the registry */
    gdl_sched_op_t *op;                        /* the wait it is suspended in; NULL: none */
    bool queued;                               /* on the ready queue */
    gdl_sched_task_t *prev, *next;             /* every live task */
    gdl_sched_task_t *ready_prev, *ready_next; /* the ready queue */
};

struct event_base *gdl_sched_base(void); /* NULL in the master (or a process it was inherited by) */
struct event_base *gdl_sched_check(lua_State *L, const char *who); /* raises where gdl_sched_base fails */
void gdl_sched_on_close(void (*fn)(void));
int gdl_sched_spawn(lua_State *L, int nargs, gdl_sched_task_t *task);
int gdl_sched_cancel(gdl_sched_task_t *task);
int gdl_sched_busy(void);
gdl_sched_task_t *gdl_sched_task_of(lua_State *L);
gdl_sched_task_t *
gdl_sched_current(void); /* the task whose code runs now (maybe in a coroutine of its own); NULL: none */
int gdl_sched_await(lua_State *L, gdl_sched_op_t *op);
void gdl_sched_wake(gdl_sched_op_t *op);
int gdl_sched_wait_fd(lua_State *L, int fd, short what, int timeout_ms);
int gdl_sched_sleep(lua_State *L, int ms);
int gdl_sched_run_until(bool (*done)(void *arg), void *arg);
int gdl_sched_loop(void);
void gdl_sched_poll(void);

/* ---- modules/: the Lua-facing C modules, preloaded into every state ---- */

int luaopen_gdlua_core(lua_State *L);
int luaopen_gdlua_fib(lua_State *L);
int luaopen_gdlua_image(lua_State *L);
int luaopen_gdlua_client(lua_State *L);
int luaopen_gdlua_http(lua_State *L);
int luaopen_gdlua_tcp(lua_State *L);

struct gearman_job_st;
void gdl_job_push(lua_State *L, struct gearman_job_st *job);
void gdl_job_invalidate(lua_State *L, int idx);

/* ---- gdl_child.c: a child: the worker loop serving one pool, one job at a time or `concurrency` at once ---- */

int gdl_child_prepare(lua_State *L);
void gdl_child_run(int pool, int slot) __attribute__((noreturn));

/* ---- gdl_loader.c: the loader of a generation of the code ---- */

/* The master's end of one loader. */
typedef struct {
    pid_t pid; /* 0: none */
    int fd;    /* -1: none */
    int gen;
    struct evbuffer *in; /* its result, while it arrives */
    int failed;          /* modules that failed to load; -1: none was loaded (error says why) */
    char error[512];     /* the first error */
    gdl_pool_t *pools;   /* what it loaded; the caller may take them */
    int npools;
} gdl_loader_t;

int gdl_loader_start(gdl_loader_t *ld, int gen);
int gdl_loader_read(gdl_loader_t *ld, bool block);
/* Processes of the loader's generation, one per slot: how many started
 * (pids[i] each one's pid, or -1), or -2: the loader is lost (gone, or not
 * answering; pids[i] is set for those it answered). */
int gdl_loader_spawn(gdl_loader_t *ld, int pool, const int *slots, int n, pid_t *pids, char *why, size_t whylen);
void gdl_loader_stop(gdl_loader_t *ld);
void gdl_pool_free(gdl_pool_t *p);

/* ---- gdl_upstream.c: the master's own connections to job servers ---- */

typedef struct {
    int server;   /* index into gdl_config.servers */
    int failures; /* connection failures in a row */
    struct bufferevent *bev;
    struct event *retry;
    bool forgotten; /* in a child: the socket is the master's, closed */
} gdl_upstream_t;

void gdl_upstream_init(gdl_upstream_t *u, struct event_base *base, int server, void (*on_retry)(int, short, void *),
                       void *arg);
int gdl_upstream_connect(gdl_upstream_t *u, char *why, size_t whylen);
int gdl_upstream_down(gdl_upstream_t *u);
void gdl_upstream_close(gdl_upstream_t *u);
void gdl_upstream_forget(gdl_upstream_t *u);
const char *gdl_upstream_name(const gdl_upstream_t *u, char *buf, size_t len);

/* ---- gdl_observer.c: the status/workers polls of each job server ---- */

typedef struct {
    int *queue;       /* per pool: jobs waiting */
    int *running;     /* per pool: jobs running */
    int *peers;       /* per pool: other gdlua instances serving it */
    int *rank;        /* per pool: how many of them sort before this one */
    int *workers;     /* per pool: workers registered for it, sentinels left out */
    int64_t asked_ms; /* when the poll behind these figures was sent */
    bool valid;       /* the last poll answered */
    unsigned returns; /* times it has answered again after being down */
} gdl_observed_t;

extern gdl_observed_t gdl_observed[GDL_SERVERS_MAX];

int gdl_observer_parse_status(char *line, const char **func, long *total, long *running, long *workers);
int gdl_observer_parse_workers(char *line, const char **client_id, char **functions);
void gdl_observer_init(struct event_base *base, void (*on_polled)(int server), void (*on_hung)(int server));
void gdl_observer_poll(int server);
int64_t gdl_observer_awaited(int except, int64_t since_ms);
bool gdl_observer_overdue(int server, int64_t before_ms);
void gdl_observer_close(void);
void gdl_observer_pools_changed(void);

/* ---- gdl_sentinel.c: wake-up connections ---- */

void gdl_sentinel_init(struct event_base *base, void (*on_wake)(int server));
void gdl_sentinel_want(const unsigned char *want);
void gdl_sentinel_close(void);
void gdl_sentinel_pools_changed(void);

/* ---- gdl_procs.c: the process table: starts, stops, exits, recycling ---- */

/* The master's process table, indexed like the slots (pid 0: free).
 * gdl_procs.c owns it; gdl_watchdog.c marks the processes it ends. No
 * other unit touches it. */
typedef struct {
    pid_t pid;
    int pool;
    int gen; /* the generation of the code it runs (gdl_loader.c) */
    int64_t started_ms;
    bool stopping;      /* we asked it to stop: its exit is no crash */
    bool timed_out;     /* its job ran past the pool's timeout */
    bool recycled;      /* stopped for max_jobs, max_memory, out of memory */
    bool over_memory;   /* its job passed max_memory: SIGKILL sent */
    int64_t kill_at_ms; /* SIGKILL then, if still alive; 0: never */
} gdl_proc_t;

extern gdl_proc_t gdl_procs[GDL_PROCS_MAX];

/* What the units above may see of a process... */
typedef struct {
    int pid;
    bool stopping;    /* asked to stop, not gone yet */
    int state;        /* GDL_SLOT_* */
    int64_t since_ms; /* in that state since (CLOCK_MONOTONIC) */
    char handle[64];  /* the job it runs, when busy (one at a time) */
    int jobs;         /* jobs in hand */
    int capacity;     /* jobs it may hold at once (its concurrency) */
} gdl_proc_info_t;

/* Why a process ended that the master then replaced: the label values
 * of /metrics' gdlua_restarts_total and json's "restarts". Stops the
 * master chose (idle, above max, console, shutdown) are not restarts.
 * X(NAME, name, help) */
#define GDL_RESTARTS(X)                                                                      \
    X(CRASH, "crash", "it died by itself: an exit status, or a signal such as SIGSEGV")      \
    X(KILLED, "killed", "a signal from outside killed it: SIGKILL, SIGTERM, SIGINT, SIGHUP") \
    X(TIMEOUT, "timeout", "its job ran past the timeout")                                    \
    X(RECYCLE, "recycle", "it served max_jobs, passed max_memory or ran out of memory")

enum {
#define GDL_X(NAME, name, help) GDL_RESTART_##NAME,
    GDL_RESTARTS(GDL_X)
#undef GDL_X
        GDL_RESTART_REASONS
};

/* ... and of a pool. */
typedef struct {
    int min, max;
    int processes; /* alive and not asked to stop */
    int stopping;  /* asked to stop, not gone yet */
    int busy;
    int jobs;                               /* jobs in hand, stopping processes' included */
    int capacity;                           /* jobs its serving processes may hold at once */
    gdl_counters_t c;                       /* its exited processes' and its live ones' */
    uint64_t restarts[GDL_RESTART_REASONS]; /* its processes replaced, by reason */
} gdl_pool_status_t;

void gdl_procs_init(struct event_base *base, void (*rescale)(void));
void gdl_procs_free(void);
/* Processes of ld's generation: how many started, or -1: the loader is lost (err). */
int gdl_procs_spawn(gdl_loader_t *ld, int pool, int n, const char *why, char *err, size_t errlen);
void gdl_procs_stop(int slot, const char *why);
int gdl_procs_stop_pids(const int *pids, int n, const char *why);
void gdl_procs_stop_pool(int pool, const char *why);
void gdl_procs_stop_all(int sig);
void gdl_procs_signal(int sig);
int gdl_procs_reconnect(void); /* SIGUSR2 to the serving ones: a job server is back */
bool gdl_procs_exited(pid_t pid, int status);
int gdl_procs_count(void);
int gdl_procs_of_pool(int pool);
gdl_pool_view_t gdl_procs_view(int pool, gdl_proc_view_t *buf);
void gdl_procs_remember(int pool, const gdl_plan_t *plan); /* what the policy keeps of a pool */
void gdl_procs_recycle(int pool);
int gdl_procs_status(int pool, gdl_pool_status_t *st, gdl_proc_info_t *out, int max);
int gdl_procs_install(const int *map, int nold, int nall, int gen);

/* ---- gdl_watchdog.c: jobs past their timeout or max_memory, processes past their grace ---- */
int gdl_watchdog_init(struct event_base *base, void (*rescale)(void));
void gdl_watchdog_free(void);

/* ---- gdl_generations.c: the generations of the code: loaders, the swap, reloads ---- */

/* What the code's generations show: in /metrics, /status.json and STATUS=. */
typedef struct {
    int generation;           /* the serving one */
    int load_failures;        /* modules that failed to load in it (only a start serves beside them) */
    unsigned long reloads[2]; /* reloads ended: [0] failed, [1] ok */
    bool reloaded, last_ok;   /* a reload has ended; the last one's outcome */
    char last[200];           /* the last reload's message ("generation 2: 3 job(s)", or why it failed) */
} gdl_generations_info_t;

const gdl_generations_info_t *gdl_generations_info(void);

/* report(event, ok, msg): GDL_EV_POOLS after a swap, GDL_EV_RELOADED when a reload has ended. */
int gdl_generations_init(struct event_base *base, void (*rescale)(void),
                         void (*report)(int event, bool ok, const char *msg));
void gdl_generations_free(void);
int gdl_generations_first(void);
int gdl_generations_spawn(int pool, int n, const char *why);
void gdl_generations_reload(const char *why);
bool gdl_generations_exited(pid_t pid, int status);
void gdl_generations_signal(int sig);
void gdl_generations_stop(void);

/* ---- gdl_master.c: the loop, signals, scaling, the events and the API above ---- */

/* What the master announces to the units above it, which register with
 * gdl_master_on (from their init, called by gdl_main.c): one bit each. */
#define GDL_EVENTS(X)                                                                         \
    X(POOLS)    /* gdl_pools has changed (the first load, a reload): what is kept by index */ \
    X(SCALED)   /* a scaling pass has ended */                                                \
    X(RELOADED) /* a reload has ended: ok, and msg (the console's answer) */                  \
    X(SHUTDOWN) /* the shutdown has begun: stop listening */                                  \
    X(EXIT)     /* every process has stopped and the loop is over: free what lives on it */

enum {
#define GDL_X(NAME) GDL_EVENT_##NAME,
    GDL_EVENTS(GDL_X)
#undef GDL_X
};

enum {
#define GDL_X(NAME) GDL_EV_##NAME = 1 << GDL_EVENT_##NAME,
    GDL_EVENTS(GDL_X)
#undef GDL_X
};

typedef struct {
    int event;       /* one GDL_EV_* */
    bool ok;         /* RELOADED: the new code serves */
    const char *msg; /* RELOADED: what the reload did, or why it failed */
} gdl_event_t;

typedef void gdl_event_fn(const gdl_event_t *ev, void *arg);

struct event_base *gdl_master_init(void);
int gdl_master_run(void);
void gdl_master_on(int events, gdl_event_fn *fn, void *arg); /* events: GDL_EV_* or'ed */
int gdl_master_status(int pool, gdl_pool_status_t *st, gdl_proc_info_t *procs, int max);
int gdl_master_set_limits(int pool, int min, int max);
int gdl_master_stop_pids(const int *pids, int n, const char *why);
void gdl_master_stop_pool(int pool, const char *why);
void gdl_master_shutdown(void);
void gdl_master_reload(const char *why);

/* ---- gdl_console.c: the management console ---- */

/* WAIT: the reply comes later (reload): read no more lines until then. */
enum { GDL_CONSOLE_CONTINUE, GDL_CONSOLE_CLOSE, GDL_CONSOLE_CLOSE_AFTER, GDL_CONSOLE_WAIT };

/* One console client, as the commands see it. */
typedef struct {
    bool authed;                 /* may run commands (no token, or "auth" succeeded) */
    const struct sockaddr *peer; /* its address: wrong tokens pause tries from it */
} gdl_console_client_t;

int gdl_console_init(struct event_base *base);
/* Runs one line (len bytes, without its end, NUL-terminated after them). */
int gdl_console_execute(char *line, size_t len, struct evbuffer *out, gdl_console_client_t *cl);
int gdl_console_json(struct evbuffer *out);
/* s as a JSON string, always valid UTF-8: a byte that is not part of a
 * valid UTF-8 sequence becomes the text \xHH, as in the log and
 * /metrics (gdl_escape); control characters become \u00HH. */
void gdl_console_json_string(struct evbuffer *out, const char *s);

/* ---- gdl_http.c: the HTTP endpoint (/metrics, /status.json, the dashboard) ---- */

int gdl_http_init(struct event_base *base);

/* ---- gdl_metrics.c: /metrics ---- */

int gdl_metrics_write(struct evbuffer *out); /* -1: out of memory */

/* ---- gdl_notify.c: systemd's notifications (Type=notify, watchdog) ---- */

void gdl_notify_init(struct event_base *base);

/* ---- gdl_daemon.c: --daemonize, --pidfile, --user, --group ---- */

int gdl_daemon_check(void);  /* before anything starts; -1: refused, said on stderr */
int gdl_daemon_detach(void); /* --daemonize, before the event loop exists */
int gdl_daemon_ready(void);  /* every port bound: pidfile, privileges, detach completed */
void gdl_daemon_exit(void);  /* the pidfile removed */

#endif
