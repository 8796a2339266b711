/*
 * fuzz_console.c: libFuzzer target for the console's command parser and
 * dispatch (gdl_console_execute in runtime/gdl_console.c).
 *
 * The master's console API is replaced by a fixed table of two pools with
 * a few fake pids, so every command runs, none touches a real process;
 * the fakes abort when the console passes what the master would refuse. Built with
 * clang by tests/fuzz/run.sh, which ctest runs for a short while.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gdlua.h"

static char *fn_a[] = {"Fuzz::A::a"}, *fn_b[] = {"Fuzz::B::x", "Fuzz::B::y"};
static gdl_pool_t jobs[] = {
    {.name = "Fuzz::A::a", .title = "t", .functions = fn_a, .nfunctions = 1, .min_processes = 1, .max_processes = 2},
    {.name = "Fuzz::B::grp", .title = "t", .functions = fn_b, .nfunctions = 2, .min_processes = 0, .max_processes = 5},
};
gdl_pool_t *gdl_pools = jobs;
int gdl_npools = 2;
gdl_observed_t gdl_observed[GDL_SERVERS_MAX]; /* no poll answered: json's queues are 0 */

int gdl_master_status(int pool, gdl_pool_status_t *st, gdl_proc_info_t *procs, int max)
{
    memset(st, 0, sizeof(*st));
    st->min = jobs[pool].min_processes;
    st->max = jobs[pool].max_processes;
    st->processes = 2;
    st->busy = pool;
    st->c.done = 3;
    st->c.hist[pool * 10] = 3;
    st->c.last_error = 1264880743;
    strcpy(st->c.error, "boom \"quoted\"");
    for (int i = 0; i < 2 && i < max; i++)
        procs[i] = (gdl_proc_info_t){.pid = 1000 + pool * 10 + i, .state = GDL_SLOT_BUSY, .handle = "H:fuzz:1"};
    return 2;
}

int gdl_master_set_limits(int pool, int min, int max)
{
    if (min < 0 || max < min || max > GDL_PROCS_MAX)
        abort(); /* the console let through an invalid setting */
    jobs[pool].min_processes = min;
    jobs[pool].max_processes = max;
    return 0;
}

int gdl_master_stop_pids(const int *pids, int n, const char *why)
{
    for (int i = 0; i < n; i++)
        if (pids[i] <= 0)
            abort(); /* the console passed a pid that cannot be ours */
    for (int i = 0; i < n; i++)
        if (pids[i] < 1000 || pids[i] >= 1020)
            return -1;
    return 0;
}

void gdl_master_stop_pool(int pool, const char *why)
{
    if (pool < 0 || pool >= gdl_npools)
        abort();
}

void gdl_master_on(int events, gdl_event_fn *fn, void *arg)
{
}

void gdl_master_shutdown(void)
{
}

void gdl_master_reload(const char *why)
{
}

/* Lines as the connection cuts them: at each LF, NUL bytes kept. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct evbuffer *out = evbuffer_new();
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    gdl_console_client_t client = {.authed = size > 0 && data[0] & 1, .peer = (struct sockaddr *)&peer};
    char *buf = malloc(size + 1);

    gdl_log_level = -1; /* quiet */
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (size_t start = 0, end; start < size; start = end + 1) {
        const char *nl = memchr(buf + start, '\n', size - start);
        int rc;

        end = nl ? (size_t)(nl - buf) : size;
        buf[end] = '\0';
        rc = gdl_console_execute(buf + start, end - start, out, &client);
        if (rc != GDL_CONSOLE_CONTINUE)
            break;
    }
    free(buf);
    evbuffer_free(out);
    return 0;
}
