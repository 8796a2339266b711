/*
 * fuzz_console.c: libFuzzer target for the console's command parser and
 * dispatch (gdl_console_execute in runtime/gdl_console.c).
 *
 * The master is replaced by a fixed table of two jobs with a few fake
 * pids, so every command runs, none touches a real process. Built with
 * clang by tests/fuzz/run.sh, which ctest runs for a short while.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gdlua.h"

static char *fn_a[] = {"Fuzz::A::a"}, *fn_b[] = {"Fuzz::B::x", "Fuzz::B::y"};
static gdl_job_t jobs[] = {
    {.name = "Fuzz::A::a", .title = "t", .functions = fn_a, .nfunctions = 1, .min_processes = 1, .max_processes = 2},
    {.name = "Fuzz::B::grp", .title = "t", .functions = fn_b, .nfunctions = 2, .min_processes = 0, .max_processes = 5},
};
gdl_job_t *gdl_jobs = jobs;
int gdl_njobs = 2;
pid_t gdl_master_pid = 1;

int gdl_master_pids(int job, int *pids, int max)
{
    for (int i = 0; i < 2 && i < max; i++)
        pids[i] = 1000 + job * 10 + i;
    return 2;
}

int gdl_master_busy(int job)
{
    return job;
}

bool gdl_master_owns(int pid)
{
    return pid >= 1000 && pid < 1020;
}

void gdl_master_stop_pid(int pid, const char *why)
{
    if (!gdl_master_owns(pid))
        abort(); /* the console must only stop our own processes */
}

void gdl_master_counters(int job, gdl_counters_t *out)
{
    memset(out, 0, sizeof(*out));
    out->done = 3;
    out->hist[job * 10] = 3;
    out->last_error = 1264880743;
    strcpy(out->error, "boom \"quoted\"");
}

void gdl_master_rescale(void)
{
    for (int k = 0; k < gdl_njobs; k++)
        if (jobs[k].min_processes > jobs[k].max_processes || jobs[k].min_processes < 0)
            abort(); /* the console let through an invalid setting */
}

void gdl_master_shutdown(void)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct evbuffer *out = evbuffer_new();
    char *buf = malloc(size + 1), *line, *save = NULL;
    bool authed = size > 0 && data[0] & 1;

    gdl_log_level = -1; /* quiet */
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int rc = gdl_console_execute(line, out, &authed);
        if (rc != GDL_CONSOLE_CONTINUE)
            break;
    }
    free(buf);
    evbuffer_free(out);
    return 0;
}
