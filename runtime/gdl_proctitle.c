/*
 * gdl_proctitle.c: process titles ("gdlua: worker GDExamples::Fib::fib")
 * as ps and top show them.
 *
 * Linux shows the memory argv points to, so the title is written over
 * argv and the environment strings that follow it; both are copied to
 * the heap first, and main goes on with the copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "gdlua.h"

extern char **environ;

static char *title_start;
static char **argv_copies;
static size_t title_len;

void gdl_proctitle_init(int argc, char **argv)
{
    char *start, *end;
    char **env;
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

    env = malloc(sizeof(char *) * (n + 1));
    if (env == NULL)
        return;
    for (int i = 0; i < n; i++)
        env[i] = strdup(environ[i]);
    env[n] = NULL;
    environ = env;
    /* The copies are kept in a static array too, so leak checkers see
     * them reachable however main's argv is stored. */
    argv_copies = malloc(sizeof(char *) * argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = strdup(argv[i]);
        if (argv_copies)
            argv_copies[i] = argv[i];
    }
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
