/*
 * gdl_notify.c: systemd's service notifications (sd_notify), for a
 * Type=notify unit (dist/gdlua.service).
 *
 * READY=1 once every pool has its minimum processes serving (checked
 * after each scaling pass); WATCHDOG=1 from the master's loop at half the
 * period systemd asks for (WatchdogSec=, seen as WATCHDOG_USEC), so a
 * stuck loop gets the service restarted; STATUS= with the processes and
 * the jobs done every STATUS_MS; STOPPING=1 when the shutdown begins.
 * Without NOTIFY_SOCKET it does nothing. gdl_main.c calls
 * gdl_notify_init; the rest listens to the master's events (SCALED,
 * SHUTDOWN, EXIT), and the figures come through gdl_master_status.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "gdlua.h"

#define STATUS_MS 2000

static struct event *watchdog_ev, *status_ev;
static bool ready;

static void send_status(const char *state)
{
    gdl_pool_status_t st;
    unsigned long long done = 0, failed = 0;
    int processes = 0, busy = 0;

    for (int k = 0; k < gdl_npools; k++) {
        gdl_master_status(k, &st, NULL, 0);
        processes += st.processes;
        busy += st.busy;
        done += st.c.done;
        failed += st.c.failed + st.c.poisoned;
    }
    sd_notifyf(0, "STATUS=%s; processes %d, busy %d, pools %d; jobs done %llu, failed %llu", state, processes, busy,
               gdl_npools, done, failed);
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
    send_status(ready ? "serving" : "starting");
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    sd_notify(0, "WATCHDOG=1");
}

/* After a scaling pass: ready once every pool has its minimum serving
 * (idle, busy, or serving on until its replacement is ready). */
static void scaled(void)
{
    static gdl_proc_info_t procs[GDL_PROCS_MAX];
    gdl_pool_status_t st;

    if (ready)
        return;
    for (int k = 0; k < gdl_npools; k++) {
        int n = gdl_master_status(k, &st, procs, GDL_PROCS_MAX), up = 0;

        for (int i = 0; i < n && i < GDL_PROCS_MAX; i++)
            up += procs[i].state == GDL_SLOT_IDLE || procs[i].state == GDL_SLOT_BUSY ||
                  procs[i].state == GDL_SLOT_RECYCLE;
        if (up < st.min)
            return;
    }
    ready = true;
    sd_notify(0, "READY=1");
    send_status("serving");
    gdl_info("systemd: ready, every job has its minimum processes");
}

static void on_master(const gdl_event_t *ev, void *arg)
{
    switch (ev->event) {
    case GDL_EV_SCALED:
        scaled();
        break;
    case GDL_EV_SHUTDOWN:
        sd_notify(0, "STOPPING=1");
        send_status("stopping");
        break;
    case GDL_EV_EXIT:
        if (status_ev)
            event_free(status_ev);
        if (watchdog_ev)
            event_free(watchdog_ev);
        status_ev = watchdog_ev = NULL;
        break;
    }
}

void gdl_notify_init(struct event_base *base)
{
    struct timeval tv = {STATUS_MS / 1000, (STATUS_MS % 1000) * 1000};
    uint64_t usec;

    if (getenv("NOTIFY_SOCKET") == NULL)
        return;
    gdl_master_on(GDL_EV_SCALED | GDL_EV_SHUTDOWN | GDL_EV_EXIT, on_master, NULL);
    if ((status_ev = event_new(base, -1, EV_PERSIST, on_status, NULL)) == NULL || evtimer_add(status_ev, &tv) < 0)
        gdl_warn("systemd: cannot start the status timer; no STATUS= updates");
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return;
    usec /= 2;
    tv = (struct timeval){(time_t)(usec / 1000000), (suseconds_t)(usec % 1000000)};
    if ((watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, NULL)) == NULL ||
        evtimer_add(watchdog_ev, &tv) < 0) {
        gdl_error("systemd: cannot start the watchdog timer");
        return;
    }
    sd_notify(0, "WATCHDOG=1");
    gdl_info("systemd: watchdog every %llu ms", (unsigned long long)usec / 1000);
}
