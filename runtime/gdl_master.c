/*
 * gdl_master.c: the master process: forks, reaps and replaces children,
 * and handles signals, all from one libevent loop. It never runs a job.
 *
 * The process table is indexed like the shared-memory slots (gdl_shm.c):
 * process i writes slot i. Mechanism lives here (spawn, reap, signal);
 * how many processes a job should have is decided by job_wanted(), the
 * one place scaling policy enters.
 *
 * Signals: SIGTERM/SIGINT stop the children after their current job and
 * exit 0 once they are gone, escalating to SIGKILL after
 * --shutdown_timeout; a second SIGTERM/SIGINT escalates at once. SIGHUP
 * is logged and ignored (no reload yet).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "gdlua.h"

/* A child that lives at least this long counts as healthy: its death is
 * replaced at once and resets the job's crash streak. */
#define STABLE_MS 5000

typedef struct {
    pid_t pid;
    int job;
    int64_t started_ms;
    bool stopping; /* we asked it to stop: its exit is no crash */
} gdl_proc_t;

pid_t gdl_master_pid;

static gdl_proc_t procs[GDL_PROCS_MAX];
static int nprocs;
static struct event_base *base;
static struct event *kill_timer;
static bool shutting_down;

static void ensure_processes(int job, bool backoff_done);

static int job_wanted(const gdl_job_t *j)
{
    return j->min_processes;
}

static int spawn(int job)
{
    gdl_job_t *j = &gdl_jobs[job];
    sigset_t all, old;
    pid_t pid;
    int i;

    for (i = 0; i < GDL_PROCS_MAX && procs[i].pid != 0; i++)
        ;
    if (i == GDL_PROCS_MAX) {
        gdl_error("cannot start a process for %s: all %d process slots in use", j->name, GDL_PROCS_MAX);
        return -1;
    }
    gdl_slot_reset(&gdl_slots[i], 0, job);
    /* Blocked across fork so no signal reaches the child while libevent's
     * handlers are still installed there. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0)
        gdl_child_run(job, i);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        gdl_error("cannot fork a process for %s: %s", j->name, strerror(errno));
        return -1;
    }
    gdl_slot_reset(&gdl_slots[i], pid, job);
    procs[i] = (gdl_proc_t){.pid = pid, .job = job, .started_ms = gdl_now_ms()};
    nprocs++;
    j->processes++;
    gdl_info("start %d %s (%d of %d)", (int)pid, j->name, j->processes, job_wanted(j));
    return 0;
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
    ensure_processes((int)(intptr_t)arg, true);
}

/* Starts the processes a job lacks: at once, or after the crash-loop
 * back-off when its last children died young. */
static void ensure_processes(int job, bool backoff_done)
{
    gdl_job_t *j = &gdl_jobs[job];
    int delay = backoff_done ? 0 : gdl_backoff_ms(j->streak);

    if (shutting_down || evtimer_pending(j->respawn, NULL) || j->processes >= job_wanted(j))
        return;
    if (delay > 0) {
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};

        gdl_warn("%s: %d process(es) died young in a row; next start in %d ms", j->name, j->streak, delay);
        evtimer_add(j->respawn, &tv);
        return;
    }
    while (j->processes < job_wanted(j))
        if (spawn(job) < 0)
            return;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, len, "ended with status 0x%x", status);
}

static void reap(void)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char why[128];
        gdl_proc_t *p = NULL;
        gdl_job_t *j;
        int64_t lived;
        int i;

        for (i = 0; i < GDL_PROCS_MAX; i++)
            if (procs[i].pid == pid) {
                p = &procs[i];
                break;
            }
        if (p == NULL)
            continue;
        j = &gdl_jobs[p->job];
        lived = gdl_now_ms() - p->started_ms;
        describe_exit(status, why, sizeof(why));
        if (p->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            gdl_info("stop %d %s: %s", (int)pid, j->name, why);
        } else {
            gdl_warn("process %d %s %s after %lld ms", (int)pid, j->name, why, (long long)lived);
            j->streak = lived >= STABLE_MS ? 1 : j->streak + 1;
        }
        j->processes--;
        nprocs--;
        gdl_slot_reset(&gdl_slots[i], 0, 0);
        memset(p, 0, sizeof(*p));
        ensure_processes((int)(j - gdl_jobs), false);
    }
    if (shutting_down && nprocs == 0)
        event_base_loopbreak(base);
}

static void kill_all(int sig)
{
    for (int i = 0; i < GDL_PROCS_MAX; i++)
        if (procs[i].pid) {
            procs[i].stopping = true;
            kill(procs[i].pid, sig);
        }
}

static void on_kill_timeout(evutil_socket_t fd, short what, void *arg)
{
    gdl_warn("%d process(es) still running after %d s; sending SIGKILL", nprocs, gdl_config.shutdown_timeout);
    kill_all(SIGKILL);
}

static void shutdown_begin(int sig)
{
    struct timeval tv = {gdl_config.shutdown_timeout, 0};

    if (shutting_down) {
        gdl_warn("%s again: sending SIGKILL to %d process(es)", strsignal(sig), nprocs);
        kill_all(SIGKILL);
        return;
    }
    shutting_down = true;
    gdl_info("%s: stopping %d process(es) after their current job", strsignal(sig), nprocs);
    for (int k = 0; k < gdl_njobs; k++)
        evtimer_del(gdl_jobs[k].respawn);
    kill_all(SIGTERM);
    evtimer_add(kill_timer, &tv);
    if (nprocs == 0)
        event_base_loopbreak(base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    switch (sig) {
    case SIGCHLD:
        reap();
        break;
    case SIGTERM:
    case SIGINT:
        shutdown_begin(sig);
        break;
    case SIGHUP:
        gdl_info("SIGHUP: reloading is not supported yet; ignored");
        break;
    }
}

int gdl_master_run(void)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
    struct event *sigev[sizeof(sigs) / sizeof(sigs[0])];
    char title[512];
    int n = 0;

    gdl_master_pid = getpid();
    signal(SIGPIPE, SIG_IGN);
    if (gdl_shm_init() < 0)
        return 1;
    base = event_base_new();
    if (base == NULL) {
        gdl_error("cannot create the event loop");
        return 1;
    }
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigev[i] = evsignal_new(base, sigs[i], on_signal, NULL);
        evsignal_add(sigev[i], NULL);
    }
    kill_timer = evtimer_new(base, on_kill_timeout, NULL);

    n = snprintf(title, sizeof(title), "gdlua: master");
    for (int i = 0; i < gdl_config.ndirs && n < (int)sizeof(title); i++)
        n += snprintf(title + n, sizeof(title) - n, " %s", gdl_config.dirs[i]);
    gdl_proctitle_set(title);

    for (int k = 0; k < gdl_njobs; k++) {
        gdl_jobs[k].respawn = evtimer_new(base, on_respawn, (void *)(intptr_t)k);
        if (gdl_jobs[k].min_processes == 0)
            gdl_info("%s: min_processes 0, so no process until there is work", gdl_jobs[k].name);
    }
    gdl_info("gdlua %s serving %d job(s) on %d server(s), first %s:%d", GDLUA_VERSION, gdl_njobs,
             gdl_config.nservers, gdl_config.servers[0].host, gdl_config.servers[0].port);
    for (int k = 0; k < gdl_njobs; k++)
        ensure_processes(k, false);

    event_base_dispatch(base);

    gdl_info("all processes stopped; exiting");
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        event_free(sigev[i]);
    for (int k = 0; k < gdl_njobs; k++)
        event_free(gdl_jobs[k].respawn);
    event_free(kill_timer);
    event_base_free(base);
    return 0;
}
