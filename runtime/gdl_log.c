/*
 * gdl_log.c: log lines to stderr or a file.
 *
 * Master and children share the file descriptor; each line is written
 * with one write() on an O_APPEND descriptor so lines never interleave.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gdlua.h"

int gdl_log_level = GDL_LOG_INFO;
static int log_fd = STDERR_FILENO;
static const char *log_path; /* NULL: stderr */

/* The one list of levels: option values, gdlua.log's, the log lines'
 * upper-cased. */
const char *const gdl_log_levels[] = {"error", "warn", "info", "debug", NULL};

int gdl_log_open(const char *path)
{
    int fd;

    if (path == NULL || strcmp(path, "-") == 0 || strcmp(path, "stderr") == 0)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "gdlua: cannot open log file %s: %s\n", path, strerror(errno));
        return -1;
    }
    log_fd = fd;
    log_path = path;
    return 0;
}

/* Opens the log file again (after logrotate moved it) onto the same
 * descriptor. Only async-signal-safe calls: a child calls it from its
 * SIGUSR1 handler. A failure keeps the old file. */
void gdl_log_reopen(void)
{
    int saved = errno, fd;

    if (log_path && (fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) >= 0) {
        dup3(fd, log_fd, O_CLOEXEC);
        close(fd);
    }
    errno = saved;
}

int gdl_log_level_parse(const char *name)
{
    for (int i = 0; gdl_log_levels[i]; i++)
        if (strcasecmp(name, gdl_log_levels[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return GDL_LOG_WARN;
    return -1;
}

void gdl_log(int level, const char *fmt, ...)
{
    char line[4096], text[4096], tag[8];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    size_t t;
    int n, len;

    if (level > gdl_log_level || level < 0)
        return;
    for (t = 0; gdl_log_levels[level][t] && t < sizeof(tag) - 1; t++)
        tag[t] = (char)toupper((unsigned char)gdl_log_levels[level][t]);
    tag[t] = '\0';
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "[%04d-%02d-%02dT%02d:%02d:%02d.%03ld] %s [%d] ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, tag, (int)getpid());
    va_start(ap, fmt);
    len = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* Job text can hold anything: no raw control character, and no
     * newline that could pass for a log line of its own. */
    n += (int)gdl_escape(line + n, sizeof(line) - 2 - n, text,
                         len < 0                      ? 0
                         : (size_t)len < sizeof(text) ? (size_t)len
                                                      : sizeof(text) - 1,
                         true);
    line[n++] = '\n';
    while (write(log_fd, line, n) < 0 && errno == EINTR)
        ;
}
