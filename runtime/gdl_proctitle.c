/*
 * gdl_proctitle.c: process titles ("gdlua: worker GDExamples::Fib::fib")
 * as ps and top show them.
 *
 * Linux shows the memory argv points to, so the title is written over
 * argv and the environment strings that follow it; both are copied to
 * the heap first, and main goes on with the copies.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "gdlua.h"

extern char **environ;

static char *title_start;
static size_t title_len;
/* The copies of argv and of the environment's array, kept so that leak
 * checkers see them reachable however main's argv is stored and after a
 * setenv has replaced environ; volatile, as nothing reads them and the
 * compiler would drop the variables and the stores. */
static char **volatile argv_copies;
static char **volatile env_copies;

static void free_copies(char **v, int n)
{
    if (v == NULL)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void gdl_proctitle_init(int argc, char **argv)
{
    char *start, *end;
    char **env, **args;
    bool ok;
    int n;

    if (argc == 0 || argv[0] == NULL)
        return;
    start = argv[0];
    end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    for (n = 0; environ[n]; n++)
        if (environ[n] == end)
            end = environ[n] + strlen(environ[n]) + 1;

    /* Every copy is made before anything is changed: short of memory,
     * argv and the environment stay as they are and so does the title
     * (gdl_proctitle_set then sets only the short name). */
    env = calloc(n + 1, sizeof(char *));
    args = calloc(argc, sizeof(char *));
    ok = env != NULL && args != NULL;
    for (int i = 0; ok && i < n; i++)
        ok = (env[i] = strdup(environ[i])) != NULL;
    for (int i = 0; ok && i < argc; i++)
        ok = (args[i] = strdup(argv[i])) != NULL;
    if (!ok) {
        free_copies(env, n); /* calloc'ed: the entries not copied are NULL */
        free_copies(args, argc);
        return;
    }
    environ = env;
    env_copies = env;
    for (int i = 0; i < argc; i++)
        argv[i] = args[i];
    argv_copies = args;
    title_start = start;
    title_len = end - start;
}

void gdl_proctitle_set(const char *title)
{
    char comm[16];

    if (title_start && title_len > 1) {
        memset(title_start, 0, title_len);
        strncpy(title_start, title, title_len - 1);
    }
    /* The short name (top, /proc/PID/comm): the part after "gdlua: ". */
    if (strncmp(title, "gdlua: ", 7) == 0)
        title += 7;
    snprintf(comm, sizeof(comm), "%s", title);
    prctl(PR_SET_NAME, comm);
}
