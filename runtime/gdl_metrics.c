/*
 * gdl_metrics.c: /metrics of the HTTP endpoint (gdl_http.c), in
 * Prometheus' text format: the counters of GDL_COUNTERS (gdlua.h) by
 * job, the duration histogram, processes by state, restarts by reason
 * (gdl_master_status), the queues and servers the observer saw
 * (gdl_observer.c). Label values are gdl_escape's text (valid UTF-8, no
 * newline), then escaped as the format wants.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <luajit.h>

#include "gdlua.h"

static const struct {
    const char *metric, *help;
    int fold;
    size_t off;
} counters[] = {
#define GDL_X(name, fold, column, metric, help) {metric, help, GDL_FOLD_##fold, offsetof(gdl_counters_t, name)},
    GDL_COUNTERS(GDL_X)
#undef GDL_X
};

#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

static const struct {
    const char *name, *help;
} restarts[] = {
#define GDL_X(NAME, name, help) {name, help},
    GDL_RESTARTS(GDL_X)
#undef GDL_X
};

/* What /metrics shows of one pool. */
typedef struct {
    gdl_pool_status_t st;
    int states[GDL_SLOT_RECYCLE + 1]; /* processes serving, by slot state */
} pool_figures_t;

/* A label value: valid UTF-8 and no newline (gdl_escape), then \ and "
 * escaped as the text format wants. */
static void label_value(struct evbuffer *out, const char *s)
{
    char safe[512];

    gdl_escape(safe, sizeof(safe), s, strlen(s), false);
    for (const char *p = safe; *p; p++)
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(out, "\\%c", *p);
        else
            evbuffer_add(out, p, 1);
}

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP gdlua_%s %s\n# TYPE gdlua_%s %s\n", name, help, name, type);
}

/* "gdlua_NAME{job="JOB"" without the closing brace: callers add labels. */
static void series_start(struct evbuffer *out, const char *name, int pool)
{
    evbuffer_add_printf(out, "gdlua_%s{job=\"", name);
    label_value(out, gdl_pools[pool].name);
    evbuffer_add(out, "\"", 1);
}

static void server_name(int s, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%d", gdl_config.servers[s].host, gdl_config.servers[s].port);
}

/* The counters' families, in table order: counters sharing a name
 * ("jobs_total{outcome=...}") are one family, its help made of theirs. */
static void counter_families(struct evbuffer *out, const pool_figures_t *fig)
{
    for (size_t c = 0; c < NCOUNTERS; c++) {
        size_t len, first = c, last = c;
        char name[64], help[1024];
        int n = 0;

        if (counters[c].metric == NULL)
            continue;
        len = strcspn(counters[c].metric, "{");
        if (c > 0 && counters[c - 1].metric && strncmp(counters[c - 1].metric, counters[c].metric, len + 1) == 0)
            continue; /* shown with the first of its family */
        while (last + 1 < NCOUNTERS && counters[last + 1].metric &&
               strncmp(counters[last + 1].metric, counters[c].metric, len + 1) == 0)
            last++;
        snprintf(name, sizeof(name), "%.*s", (int)len, counters[c].metric);
        for (size_t k = first; k <= last; k++) {
            const char *label = counters[k].metric + len, *value = strchr(label, '"');

            if (value) /* {outcome="done"}: done: jobs completed */
                n += snprintf(help + n, sizeof(help) - n, "%s%.*s: %s", k > first ? "; " : "",
                              (int)strcspn(value + 1, "\""), value + 1, counters[k].help);
            else
                n += snprintf(help + n, sizeof(help) - n, "%s", counters[k].help);
            if (n >= (int)sizeof(help))
                n = (int)sizeof(help) - 1;
        }
        family(out, name, counters[c].fold == GDL_FOLD_SUM ? "counter" : "gauge", help);
        for (int k = 0; k < gdl_npools; k++)
            for (size_t m = first; m <= last; m++) {
                const char *label = counters[m].metric + len;
                uint64_t v = *(const uint64_t *)((const char *)&fig[k].st.c + counters[m].off);

                series_start(out, name, k);
                if (*label)
                    evbuffer_add_printf(out, ",%s", label + 1);
                else
                    evbuffer_add(out, "}", 1);
                evbuffer_add_printf(out, " %llu\n", (unsigned long long)v);
            }
    }
}

/* The slot histogram has 4 buckets per octave of microseconds; every
 * other octave's upper edge, 4^3 µs (64 µs) to 4^15 µs (about 18 min),
 * is an `le` bound, exactly: bucket 4k - 5 is the last below 2^k µs. */
static void duration_histogram(struct evbuffer *out, const pool_figures_t *fig)
{
    family(out, "job_duration_seconds", "histogram", "time a job took in its process (one failed unrun: about 0)");
    for (int p = 0; p < gdl_npools; p++) {
        const gdl_counters_t *c = &fig[p].st.c;
        uint64_t seen = 0;
        int b = 0;

        for (int k = 6; k <= 30; k += 2) {
            for (; b <= 4 * k - 5; b++)
                seen += c->hist[b];
            series_start(out, "job_duration_seconds_bucket", p);
            evbuffer_add_printf(out, ",le=\"%.12g\"} %llu\n", (double)(1ULL << k) / 1e6, (unsigned long long)seen);
        }
        for (; b < GDL_HIST_BUCKETS; b++)
            seen += c->hist[b];
        series_start(out, "job_duration_seconds_bucket", p);
        evbuffer_add_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)seen);
        series_start(out, "job_duration_seconds_sum", p);
        evbuffer_add_printf(out, "} %.6f\n", c->busy_us / 1e6);
        series_start(out, "job_duration_seconds_count", p);
        evbuffer_add_printf(out, "} %llu\n", (unsigned long long)seen);
    }
}

static void process_families(struct evbuffer *out, const pool_figures_t *fig)
{
    family(out, "processes", "gauge",
           "processes by state: starting, idle, busy, recycle (to be replaced), stopping (asked to stop)");
    for (int p = 0; p < gdl_npools; p++) {
        for (int s = GDL_SLOT_STARTING; s <= GDL_SLOT_RECYCLE; s++) {
            series_start(out, "processes", p);
            evbuffer_add_printf(out, ",state=\"%s\"} %d\n", gdl_slot_state_name(s), fig[p].states[s]);
        }
        series_start(out, "processes", p);
        evbuffer_add_printf(out, ",state=\"stopping\"} %d\n", fig[p].st.stopping);
    }
    family(out, "jobs_in_flight", "gauge", "jobs its processes hold now (stopping ones included)");
    for (int p = 0; p < gdl_npools; p++) {
        series_start(out, "jobs_in_flight", p);
        evbuffer_add_printf(out, "} %d\n", fig[p].st.jobs);
    }
    family(out, "job_slots", "gauge", "jobs its serving processes may hold at once: processes x concurrency");
    for (int p = 0; p < gdl_npools; p++) {
        series_start(out, "job_slots", p);
        evbuffer_add_printf(out, "} %d\n", fig[p].st.capacity);
    }
    family(out, "min_processes", "gauge", "processes kept running (min_processes)");
    for (int p = 0; p < gdl_npools; p++) {
        series_start(out, "min_processes", p);
        evbuffer_add_printf(out, "} %d\n", fig[p].st.min);
    }
    family(out, "max_processes", "gauge", "upper bound of processes (max_processes)");
    for (int p = 0; p < gdl_npools; p++) {
        series_start(out, "max_processes", p);
        evbuffer_add_printf(out, "} %d\n", fig[p].st.max);
    }
    {
        char help[1024];
        int n = snprintf(help, sizeof(help), "processes replaced, by why they ended:");

        for (int r = 0; r < GDL_RESTART_REASONS && n < (int)sizeof(help); r++)
            n += snprintf(help + n, sizeof(help) - n, "%s %s: %s", r ? ";" : "", restarts[r].name, restarts[r].help);
        family(out, "restarts_total", "counter", help);
    }
    for (int p = 0; p < gdl_npools; p++)
        for (int r = 0; r < GDL_RESTART_REASONS; r++) {
            series_start(out, "restarts_total", p);
            evbuffer_add_printf(out, ",reason=\"%s\"} %llu\n", restarts[r].name,
                                (unsigned long long)fig[p].st.restarts[r]);
        }
}

/* The observer's figures: per job and server from the last poll that
 * answered (none for a server that is down), and each server's state. */
static void server_families(struct evbuffer *out)
{
    static const char *const names[] = {"queued_jobs", "running_jobs"};
    static const char *const helps[] = {"jobs waiting at the job server, as its last answered poll saw them",
                                        "jobs running, as the job server's last answered poll saw them"};
    int64_t now_ms = gdl_now_ms();
    struct timespec real;
    char server[300];

    for (int f = 0; f < 2; f++) {
        family(out, names[f], "gauge", helps[f]);
        for (int s = 0; s < gdl_config.nservers; s++) {
            const gdl_observed_t *o = &gdl_observed[s];

            if (!o->valid)
                continue;
            server_name(s, server, sizeof(server));
            for (int p = 0; p < gdl_npools; p++) {
                series_start(out, names[f], p);
                evbuffer_add_printf(out, ",server=\"");
                label_value(out, server);
                evbuffer_add_printf(out, "\"} %d\n", f == 0 ? o->queue[p] : o->running[p]);
            }
        }
    }
    family(out, "server_up", "gauge", "1 when the job server's last poll answered, else 0");
    for (int s = 0; s < gdl_config.nservers; s++) {
        server_name(s, server, sizeof(server));
        evbuffer_add_printf(out, "gdlua_server_up{server=\"");
        label_value(out, server);
        evbuffer_add_printf(out, "\"} %d\n", gdl_observed[s].valid ? 1 : 0);
    }
    family(out, "server_last_poll_timestamp_seconds", "gauge",
           "when the last poll the job server answered was sent (unix); 0: none yet");
    clock_gettime(CLOCK_REALTIME, &real);
    for (int s = 0; s < gdl_config.nservers; s++) {
        const gdl_observed_t *o = &gdl_observed[s];
        double when = 0;

        if (o->asked_ms > 0)
            when = (double)real.tv_sec + real.tv_nsec / 1e9 - (now_ms - o->asked_ms) / 1e3;
        server_name(s, server, sizeof(server));
        evbuffer_add_printf(out, "gdlua_server_last_poll_timestamp_seconds{server=\"");
        label_value(out, server);
        evbuffer_add_printf(out, "\"} %.3f\n", when);
    }
}

/* The serving generation, what failed to load in it, and how reloads
 * ended: a broken deploy shows here, not only in the log. */
static void generation_families(struct evbuffer *out)
{
    const gdl_generations_info_t *g = gdl_generations_info();

    family(out, "generation", "gauge", "the serving generation of the code (1 at start, one more per reload started)");
    evbuffer_add_printf(out, "gdlua_generation %d\n", g->generation);
    family(out, "module_load_failures", "gauge",
           "modules that failed to load in the serving generation (a start serves the others)");
    evbuffer_add_printf(out, "gdlua_module_load_failures %d\n", g->load_failures);
    family(out, "reloads_total", "counter", "reloads ended (SIGHUP, console reload), by outcome");
    evbuffer_add_printf(out, "gdlua_reloads_total{outcome=\"ok\"} %lu\n", g->reloads[1]);
    evbuffer_add_printf(out, "gdlua_reloads_total{outcome=\"failed\"} %lu\n", g->reloads[0]);
}

int gdl_metrics_write(struct evbuffer *out)
{
    static gdl_proc_info_t procs[GDL_PROCS_MAX];
    pool_figures_t *fig = calloc(gdl_npools ? gdl_npools : 1, sizeof(*fig));

    if (fig == NULL)
        return -1;
    for (int p = 0; p < gdl_npools; p++) {
        int n = gdl_master_status(p, &fig[p].st, procs, GDL_PROCS_MAX);

        for (int i = 0; i < n && i < GDL_PROCS_MAX; i++)
            if (procs[i].state >= 0 && procs[i].state <= GDL_SLOT_RECYCLE)
                fig[p].states[procs[i].state]++;
    }
    family(out, "build_info", "gauge", "gdlua's version and its libraries'; always 1");
    evbuffer_add_printf(out, "gdlua_build_info{version=\"%s\",luajit=\"%s\",libevent=\"%s\"} 1\n", GDLUA_VERSION,
                        LUAJIT_VERSION, event_get_version());
    generation_families(out);
    counter_families(out, fig);
    duration_histogram(out, fig);
    process_families(out, fig);
    server_families(out);
    free(fig);
    return 0;
}
