/*
 * gdl_log.c: log lines to stderr or a file, as text or as JSON.
 *
 * Master and children share the file descriptor; each line is written
 * with one write() on an O_APPEND descriptor so lines never interleave.
 * A JSON line is one object: time, level, pid, job (the pool a child
 * serves; null in the master), handle (while a child runs a job) and
 * msg, always valid JSON whatever bytes a job's message holds. A text
 * line is gdlua's own, or laid out by --loglayout, a Log::Log4perl
 * pattern as Gearman::Driver takes one.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gdlua.h"

int gdl_log_level = GDL_LOG_INFO;
int gdl_log_format = GDL_LOGFORMAT_TEXT;
static int log_fd = STDERR_FILENO;
static const char *log_path;   /* NULL: stderr */
static const char *ctx_job_of; /* what ctx_job was escaped from */
static char ctx_job[128];      /* a child's pool, escaped */
static const char *ctx_handle; /* the job it runs, raw; NULL between jobs */
static const char *layout;     /* --loglayout; NULL: gdlua's own */
static char host[64];
static int64_t started_ms;

/* The one list of levels: option values, gdlua.log's, the log lines'
 * upper-cased. */
const char *const gdl_log_levels[] = {"error", "warn", "info", "debug", NULL};
const char *const gdl_log_formats[] = {"text", "json", NULL};

/* What a child's lines are about: its pool, and the job it runs (NULL
 * between jobs). Called twice a job, so the handle is kept as a pointer
 * (valid while its job runs) and escaped only when a line is written. */
void gdl_log_context(const char *job, const char *handle)
{
    if (job != ctx_job_of) {
        gdl_escape(ctx_job, sizeof(ctx_job), job ? job : "", job ? strlen(job) : 0, false);
        ctx_job_of = job;
    }
    ctx_handle = handle && *handle ? handle : NULL;
}

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

/* s as the body of a JSON string at out[n..size); returns the new
 * length. s is gdl_escape()'s output: valid UTF-8, each newline followed
 * by the tab gdl_escape added (a continuation line's mark in text),
 * which is dropped here. Cut at a character boundary. */
static int json_body(char *out, int n, int size, const char *s)
{
    while (*s) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        const char *w = esc;
        int len, used = 1;

        if (ch == '"' || ch == '\\')
            len = snprintf(esc, sizeof(esc), "\\%c", ch);
        else if (ch == '\n')
            len = snprintf(esc, sizeof(esc), "\\n"), used = s[1] == '\t' ? 2 : 1;
        else if (ch == '\t')
            len = snprintf(esc, sizeof(esc), "\\t");
        else if (ch < 0x20)
            len = snprintf(esc, sizeof(esc), "\\u%04x", ch);
        else
            w = s, len = used = ch < 0x80 ? 1 : ch < 0xe0 ? 2 : ch < 0xf0 ? 3 : 4;
        if (n + len >= size)
            break;
        memcpy(out + n, w, len);
        n += len;
        s += used;
    }
    return n;
}

/* The conversions of a --loglayout pattern, Log::Log4perl's letters:
 * %c category (the job, else "gdlua"), %d date (yyyy/MM/dd HH:mm:ss,
 * UTC), %H host, %m message, %n newline, %p level, %P pid, %r ms since
 * start, %% a percent sign; each may have a width and precision, as in
 * %-5p or %.80m. */
#define LAYOUT_CONVERSIONS "cdHmnpPr%"

/* Parses the conversion after a '%' at p; returns what follows it, or
 * NULL when it is none of LAYOUT_CONVERSIONS. */
static const char *conversion(const char *p, int *width, int *precision, char *conv)
{
    bool left = *p == '-';
    char *end;

    p += left;
    *width = (int)strtol(p, &end, 10);
    if (left)
        *width = -*width;
    p = end;
    *precision = -1;
    if (*p == '.') {
        *precision = (int)strtol(p + 1, &end, 10);
        p = end;
    }
    if (*p == '\0' || strchr(LAYOUT_CONVERSIONS, *p) == NULL || p[1] == '{')
        return NULL;
    *conv = *p;
    return p + 1;
}

int gdl_log_layout(const char *pattern)
{
    int width, precision;
    char conv;

    if (gdl_log_format == GDL_LOGFORMAT_JSON) {
        fprintf(stderr, "gdlua: --loglayout lays out text lines: it does not go with --logformat json\n");
        return -1;
    }
    for (const char *p = strchr(pattern, '%'); p; p = strchr(p, '%'))
        if ((p = conversion(p + 1, &width, &precision, &conv)) == NULL) {
            fprintf(stderr, "gdlua: --loglayout: '%s': %% followed by none of %%c %%d %%H %%m %%n %%p %%P %%r %%%%\n",
                    pattern);
            return -1;
        }
    layout = pattern;
    started_ms = gdl_now_ms();
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    return 0;
}

/* One line laid out by the --loglayout pattern into out[size]; returns
 * its length (without the NUL). */
static int layout_line(char *out, int size, const char *tag, const struct tm *tm, const char *msg)
{
    int n = 0;

    for (const char *p = layout; *p && n < size - 1;) {
        char value[64], conv;
        const char *v = value;
        int width, precision;

        if (*p != '%') {
            out[n++] = *p++;
            continue;
        }
        p = conversion(p + 1, &width, &precision, &conv);
        switch (conv) {
        case 'c':
            v = ctx_job[0] ? ctx_job : "gdlua";
            break;
        case 'd':
            snprintf(value, sizeof(value), "%04d/%02d/%02d %02d:%02d:%02d", tm->tm_year + 1900, tm->tm_mon + 1,
                     tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec);
            break;
        case 'H':
            v = host;
            break;
        case 'm':
            v = msg;
            break;
        case 'n':
            v = "\n";
            break;
        case 'p':
            v = tag;
            break;
        case 'P':
            snprintf(value, sizeof(value), "%d", (int)getpid());
            break;
        case 'r':
            snprintf(value, sizeof(value), "%lld", (long long)(gdl_now_ms() - started_ms));
            break;
        default:
            v = "%";
        }
        n += snprintf(out + n, size - n, "%*.*s", width, precision < 0 ? (int)strlen(v) : precision, v);
    }
    return n < size ? n : size - 1;
}

void gdl_log(int level, const char *fmt, ...)
{
    char line[8192], text[4096], safe[4096], tag[8];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    size_t t;
    int n, len;

    if (level > gdl_log_level || level < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    va_start(ap, fmt);
    len = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* Job text can hold anything: no raw control character, and no
     * newline that could pass for a log line of its own. */
    gdl_escape(safe, sizeof(safe), text,
               len < 0                      ? 0
               : (size_t)len < sizeof(text) ? (size_t)len
                                            : sizeof(text) - 1,
               true);
    if (gdl_log_format == GDL_LOGFORMAT_JSON) {
        n = snprintf(line, sizeof(line),
                     "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"pid\":%d,\"job\":",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, gdl_log_levels[level], (int)getpid());
        if (ctx_job[0]) {
            line[n++] = '"';
            n = json_body(line, n, (int)sizeof(line) - 3, ctx_job);
            line[n++] = '"';
        } else {
            n += snprintf(line + n, sizeof(line) - n, "null");
        }
        if (ctx_handle) {
            char handle[72];

            gdl_escape(handle, sizeof(handle), ctx_handle, strlen(ctx_handle), false);
            n += snprintf(line + n, sizeof(line) - n, ",\"handle\":\"");
            n = json_body(line, n, (int)sizeof(line) - 3, handle);
            line[n++] = '"';
        }
        n += snprintf(line + n, sizeof(line) - n, ",\"msg\":\"");
        n = json_body(line, n, (int)sizeof(line) - 3, safe);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        for (t = 0; gdl_log_levels[level][t] && t < sizeof(tag) - 1; t++)
            tag[t] = (char)toupper((unsigned char)gdl_log_levels[level][t]);
        tag[t] = '\0';
        if (layout) {
            /* one line a write: its newline is the layout's (%n), else added */
            n = layout_line(line, (int)sizeof(line) - 1, tag, &tm, safe);
            if (n > 0 && line[n - 1] == '\n')
                n--;
        } else {
            n = snprintf(line, sizeof(line), "[%04d-%02d-%02dT%02d:%02d:%02d.%03ld] %s [%d] %s", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, tag,
                         (int)getpid(), safe);
        }
    }
    line[n++] = '\n';
    while (write(log_fd, line, n) < 0 && errno == EINTR)
        ;
}
