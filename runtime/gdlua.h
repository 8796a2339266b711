/*
 * gdlua.h: the declarations shared between gdlua's units.
 *
 * One header for the whole runtime, arranged by unit. The master
 * (gdl_master.c) loads job modules (gdl_lua.c), then forks children
 * (gdl_child.c) that serve one job each; per-process state crosses the
 * fork in shared-memory slots (gdl_shm.c).
 */
#ifndef GDLUA_H
#define GDLUA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#include <lua.h>

struct event;
struct event_base;
struct bufferevent;

#define GDL_PROCS_MAX    1024 /* processes alive at once, all jobs together */
#define GDL_SERVERS_MAX  16
#define GDL_DIRS_MAX     64
#define GDL_DEFAULT_PORT 4730

/* ---- gdl_log.c ---- */

enum { GDL_LOG_ERROR, GDL_LOG_WARN, GDL_LOG_INFO, GDL_LOG_DEBUG };

extern int gdl_log_level;
int gdl_log_open(const char *path);
int gdl_log_level_parse(const char *name);
void gdl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define gdl_error(...) gdl_log(GDL_LOG_ERROR, __VA_ARGS__)
#define gdl_warn(...)  gdl_log(GDL_LOG_WARN, __VA_ARGS__)
#define gdl_info(...)  gdl_log(GDL_LOG_INFO, __VA_ARGS__)
#define gdl_debug(...)                           \
    do {                                         \
        if (gdl_log_level >= GDL_LOG_DEBUG)      \
            gdl_log(GDL_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

/* ---- gdl_options.c ---- */

typedef struct {
    char host[256];
    int port;
} gdl_server_t;

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
    int max_spawn_rate;   /* process starts per second, all jobs */
    bool no_wakeups;      /* no sentinels: scale on polls only */
    int console_port;     /* 0: no console */
    const char *console_bind;
    const char *console_token; /* file holding the token */
    bool console_insecure;     /* allow a non-loopback bind without token */
    bool check;                /* load, list the jobs, exit */
} gdl_config_t;

extern gdl_config_t gdl_config;

enum { GDL_OPTS_OK, GDL_OPTS_EXIT_OK, GDL_OPTS_EXIT_ERROR };
int gdl_options_parse(gdl_config_t *cfg, int argc, char **argv);
int gdl_servers_parse(gdl_config_t *cfg, const char *list, char *err, size_t errlen);

/* ---- gdl_util.c: pure helpers, unit-tested ---- */

int64_t gdl_now_ms(void);
int64_t gdl_now_us(void);
void gdl_format_time(int64_t unix_s, char *buf, size_t len);
int gdl_format_number(double n, char *buf, size_t len);
int gdl_backoff_ms(int streak);
void gdl_sleep_ms(int ms);

/* ---- gdl_policy.c: how many processes a job should have ---- */

typedef struct {
    int min, max;
    int processes; /* alive and not asked to stop, starting ones included */
    int busy;
    int queue;  /* jobs waiting, summed over the job servers */
    int peers;  /* other gdlua instances serving the job */
    int rank;   /* this instance's place among them, 0..peers */
    bool stale; /* the queue has waited a whole interval */
} gdl_demand_t;

int gdl_policy_starts(const gdl_demand_t *d);
int gdl_policy_stops(const gdl_demand_t *d, int64_t max_idle_ms, const int64_t *idle_ms, int nidle, int *out);

/* ---- gdl_stats.c: per-process and per-job counters ---- */

#define GDL_HIST_BUCKETS 128 /* job durations: 4 buckets per octave of µs */

typedef struct {
    uint64_t done;
    uint64_t failed;
    int64_t last_run;   /* unix seconds; 0: never */
    int64_t last_error; /* unix seconds; 0: never */
    char error[256];    /* the last error's first line */
    uint64_t busy_us;   /* total time in jobs */
    uint32_t hist[GDL_HIST_BUCKETS];
} gdl_counters_t;

int gdl_hist_bucket(uint64_t us);
uint64_t gdl_hist_upper_us(int bucket);
uint64_t gdl_counters_percentile_us(const gdl_counters_t *c, double p);
void gdl_counters_add(gdl_counters_t *to, const gdl_counters_t *from);

/* ---- gdl_shm.c: one slot per process, written by its child ---- */

enum { GDL_SLOT_FREE, GDL_SLOT_STARTING, GDL_SLOT_IDLE, GDL_SLOT_BUSY };

typedef struct {
    int pid;
    int job;
    int state;
    int64_t busy_since_ms;
    int64_t idle_since_ms; /* CLOCK_MONOTONIC, comparable across processes */
    char handle[64];       /* the job being run */
    gdl_counters_t c;
} gdl_slot_t;

extern gdl_slot_t *gdl_slots;
int gdl_shm_init(void);
void gdl_slot_reset(gdl_slot_t *s, int pid, int job);

/* ---- gdl_lua.c: the master's Lua state and the loaded jobs ---- */

/* A job is one process type: a gearman function, or a process group
 * of functions served by the same processes. */
typedef struct {
    char *name;       /* function or group name, as shown in status */
    char *title;      /* process title of its children */
    char **functions; /* gearman function names it registers */
    int nfunctions;
    int min_processes;
    int max_processes;
    int max_idle_time; /* seconds; -1: --max_idle_time */
    /* master bookkeeping */
    int processes;           /* alive now */
    int streak;              /* consecutive short-lived children */
    struct event *respawn;   /* timer for a replacement held back by back-off */
    gdl_counters_t gone;     /* counters of its processes that have exited */
    int64_t queued_since_ms; /* when its queue last turned non-empty; 0: empty */
} gdl_job_t;

extern gdl_job_t *gdl_jobs;
extern int gdl_njobs;
extern lua_State *gdl_L;

lua_State *gdl_lua_new(void);
int gdl_lua_pcall(lua_State *L, int nargs, int nresults);
int gdl_lua_load_jobs(void);
void gdl_lua_print_jobs(void);
int gdl_job_of_function(const char *name);

/* ---- gdl_admin.c: the observer polling each job server ---- */

typedef struct {
    int *queue;       /* per job: jobs waiting */
    int *running;     /* per job: jobs running */
    int *peers;       /* per job: other gdlua instances serving it */
    int *rank;        /* per job: how many of them sort before this one */
    int64_t asked_ms; /* when the poll behind these figures was sent */
    bool valid;       /* the last poll answered */
} gdl_observed_t;

extern gdl_observed_t gdl_observed[GDL_SERVERS_MAX];
extern char gdl_instance[128]; /* "gdlua:HOST:MASTERPID" */

int gdl_admin_parse_status(char *line, const char **func, long *total, long *running, long *workers);
int gdl_admin_parse_workers(char *line, const char **client_id, char **functions);
struct bufferevent *gdl_connect(int server, char *why, size_t whylen);
void gdl_admin_init(struct event_base *base, void (*on_polled)(int server));
void gdl_admin_poll(int server);
void gdl_admin_close(void);
void gdl_admin_child_close(void);

/* ---- gdl_sentinel.c: wake-up connections ---- */

void gdl_sentinel_init(struct event_base *base, void (*on_wake)(int server));
void gdl_sentinel_want(const unsigned char *want);
void gdl_sentinel_close(void);
void gdl_sentinel_child_close(void);

/* ---- gdl_job.c: the job object a Lua job function receives ---- */

struct gearman_job_st;
void gdl_job_push(lua_State *L, struct gearman_job_st *job);
void gdl_job_invalidate(lua_State *L, int idx);
int gdl_inject_api(lua_State *L);

/* ---- gdl_child.c ---- */

void gdl_child_run(int job, int slot) __attribute__((noreturn));

/* ---- gdl_master.c ---- */

extern pid_t gdl_master_pid;
int gdl_master_run(void);
int gdl_master_pids(int job, int *pids, int max);
int gdl_master_busy(int job);
bool gdl_master_owns(int pid);
void gdl_master_stop_pid(int pid, const char *why);
void gdl_master_counters(int job, gdl_counters_t *out);
void gdl_master_rescale(void);
void gdl_master_shutdown(void);

/* ---- gdl_console.c: the management console ---- */

enum { GDL_CONSOLE_CONTINUE, GDL_CONSOLE_CLOSE, GDL_CONSOLE_CLOSE_AFTER };

struct evbuffer;
int gdl_console_init(struct event_base *base);
int gdl_console_execute(char *line, struct evbuffer *out, bool *authed);
void gdl_console_close(void);
void gdl_console_child_close(void);

/* ---- gdl_proctitle.c ---- */

void gdl_proctitle_init(int argc, char **argv);
void gdl_proctitle_set(const char *title);

/* ---- modules/: C modules preloaded into every state ---- */

int luaopen_gdlua_fib(lua_State *L);
int luaopen_gdlua_image(lua_State *L);
int luaopen_gdlua_client(lua_State *L);

/* True in the master while it loads modules and supervises: a C module
 * refuses work that must not happen before fork (libvips, connections). */
extern bool gdl_is_master;
/* Registers fn to run in every child right after fork, before its first
 * job (per-process set-up of a C module, e.g. allocator limits). */
void gdl_child_hook(void (*fn)(void));

/* ---- gdl_embedded.c (generated): the Lua half of the API ---- */

typedef struct {
    const char *module;
    const char *chunkname;
    const char *source;
    size_t len;
} gdl_embedded_t;

extern const gdl_embedded_t gdl_embedded[];

#endif
