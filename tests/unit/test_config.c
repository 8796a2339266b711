/* test_config.c: the config file (--config) as the reload reads it
 * again: gdl_options_reload gives a fresh config from the same command
 * line and the file as it is now; gdl_options_override applies a job's
 * overrides; a file past a limit (instructions, memory, bytecode) is an
 * error naming it and the cause. */
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

#include "gdlua.h"
#include "unit.h"

static char path[] = "/tmp/gdl-test-config-XXXXXX";

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* Files past a limit, and the error each gives (%s: the file). */
static const struct {
    const char *text, *error;
} limited[] = {
    {"while true do end\n", "%s:1: more than 10000000 instructions, the limit for a config file"},
    {"local n = 0\nwhile true do pcall(function() while true do n = n + 1 end end) end\n",
     "%s:2: more than 10000000 instructions"},
    {"local t = {}\nwhile true do t[#t + 1] = ('x'):rep(1000) .. #t end\n",
     "%s: more than 64 MiB of memory, the limit for a config file"},
    {"pcall(string.rep, 'x', 2 ^ 28)\nreturn { max_idle_time = 5 }\n", "%s: more than 64 MiB of memory"},
    {"return { max_idle_time = assert(load(string.dump(function() return 5 end)))() }\n",
     "%s:1: attempt to load chunk with wrong mode"},
    {"return { max_idle_time = assert(loadstring(string.dump(function() return 5 end), 'x'))() }\n",
     "%s:1: attempt to load chunk with wrong mode"},
    {"return { max_idle_time = xpcall(error, print) and 5 }\n", "%s:1: attempt to call global 'xpcall' (a nil value)"},
    {"\033LJ\002", "%s: is LuaJIT bytecode: a config file must be Lua text"},
};

static const gdl_pool_t *job(const gdl_config_t *cfg, const char *name)
{
    for (int i = 0; i < cfg->njobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0)
            return &cfg->jobs[i];
    return NULL;
}

int main(void)
{
    gdl_config_t first = {0}, second, third;
    int fd = mkstemp(path);
    char *argv[] = {"gdlua", "--config", path, "--interval", "3", "dir", NULL}, err[512];

    if (fd < 0) {
        perror(path);
        return 1;
    }
    close(fd);
    write_file("return { interval = 9, max_idle_time = 20, lib = { 'l1', 'l2' }, dirs = { 'ignored' },\n"
               "  jobs = { ['A::b'] = { max_processes = 8, timeout = 0.5 } } }\n");
    CHECK_INT(gdl_options_parse(&first, 6, argv), GDL_OPTS_OK);
    CHECK_INT(first.interval, 3); /* the command line wins */
    CHECK_INT(first.max_idle_time, 20);
    CHECK_INT(first.nlibs, 2);
    CHECK_STR(first.libs[1], "l2");
    CHECK_INT(first.ndirs, 1);
    CHECK_STR(first.dirs[0], "dir");
    CHECK_INT(first.njobs, 1);
    CHECK(job(&first, "A::b") != NULL);
    if (job(&first, "A::b")) {
        const gdl_pool_t *o = job(&first, "A::b");
        gdl_pool_t p = {.min_processes = 1, .max_processes = 1, .timeout_ms = -1, .max_jobs = 5};

        CHECK_INT(o->max_processes, 8);
        CHECK_INT(o->timeout_ms, 500);
        CHECK_INT(o->min_processes, GDL_UNSET);
        gdl_options_override(&p, o);
        CHECK_INT(p.min_processes, 1);
        CHECK_INT(p.max_processes, 8);
        CHECK_INT(p.timeout_ms, 500);
        CHECK_INT(p.max_jobs, 5);
    }

    /* The file changes; the reload sees it, the first config is intact. */
    write_file("return { max_idle_time = 30, jobs = { ['A::c'] = { min_processes = 2 } } }\n");
    CHECK_INT(gdl_options_reload(&second, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(second.interval, 3);
    CHECK_INT(second.max_idle_time, 30);
    CHECK_INT(second.nlibs, 0);
    CHECK_INT(second.njobs, 1);
    CHECK(job(&second, "A::b") == NULL);
    CHECK(job(&second, "A::c") != NULL && job(&second, "A::c")->min_processes == 2);
    CHECK_INT(first.max_idle_time, 20);
    CHECK_STR(first.libs[0], "l1");
    CHECK_STR(first.jobs[0].name, "A::b");

    /* A broken file: the reload fails (logged) and gives nothing. */
    write_file("return { max_idle_time = -1 }\n");
    CHECK_INT(gdl_options_reload(&third, err, sizeof(err)), -1);
    CHECK(strstr(err, "max_idle_time = -1") != NULL);
    CHECK_INT(third.njobs, 0);
    CHECK(third.kept == NULL);

    /* The file's limits: each stops it with the file and the cause, and
     * the next read starts afresh (a state, a count and a budget each). */
    for (size_t i = 0; i < sizeof(limited) / sizeof(limited[0]); i++) {
        gdl_config_t cfg;
        char want[512];

        write_file(limited[i].text);
        snprintf(want, sizeof(want), limited[i].error, path);
        CHECK_INT(gdl_options_reload(&cfg, err, sizeof(err)), -1);
        if (strstr(err, want) == NULL)
            fprintf(stderr, "limit %zu: '%s' does not hold '%s'\n", i, err, want);
        CHECK(strstr(err, want) != NULL);
        write_file("return { max_idle_time = 40 }\n");
        CHECK_INT(gdl_options_reload(&cfg, err, sizeof(err)), 0);
        CHECK_INT(cfg.max_idle_time, 40);
        gdl_options_free(&cfg);
    }
    /* Text loads, whatever mode is asked for, with its environment. */
    write_file("return { max_idle_time = load('return n', 'x', 'b', { n = 41 })() }\n");
    CHECK_INT(gdl_options_reload(&third, err, sizeof(err)), 0);
    CHECK_INT(third.max_idle_time, 41);
    gdl_options_free(&third);
    /* The CPU timer is off again, and SIGPROF as it was. */
    {
        struct itimerval cpu;
        struct sigaction sa;

        CHECK_INT(getitimer(ITIMER_PROF, &cpu), 0);
        CHECK_INT(cpu.it_value.tv_sec + cpu.it_value.tv_usec, 0);
        CHECK_INT(sigaction(SIGPROF, NULL, &sa), 0);
        CHECK(sa.sa_handler == SIG_DFL);
    }

    gdl_options_free(&first);
    gdl_options_free(&second);
    CHECK_INT(first.njobs, 0);
    unlink(path);
    UNIT_END();
}
