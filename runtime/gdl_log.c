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
 * UTC) or %d{FORMAT} (below), %H host, %m message, %n newline, %p level,
 * %P pid, %r ms since start, %% a percent sign; each may have a width
 * and precision, as in %-5p or %.80m. */
#define LAYOUT_CONVERSIONS "cdHmnpPr%"

/* %d{FORMAT}: the strftime-able part of Log::Log4perl's DateFormat
 * (Java's SimpleDateFormat letters), what Gearman::Driver users pass:
 * yyyy yy MM MMM dd HH mm ss SSS, other characters as they are, 'text'
 * quoted ('' a quote), and its named formats. Writes the time tm (+ ms)
 * into out[size], or with tm NULL only checks FORMAT: NULL when it is
 * good, else what is wrong with it, in words. */
static const char *date_format(char *out, size_t size, const char *fmt, size_t len, const struct tm *tm, long ms)
{
    static const char *const named[][2] = {
        {"ISO8601", "yyyy-MM-dd HH:mm:ss,SSS"},
        {"ABSOLUTE", "HH:mm:ss,SSS"},
        {"DATE", "dd MMM yyyy HH:mm:ss,SSS"},
    };
    enum { YEAR, YEAR2, MONTH_NAME, MONTH, DAY, HOUR, MINUTE, SECOND, MS };
    static const struct {
        char letter;
        size_t run;
        int what;
    } fields[] = {
        {'y', 4, YEAR}, {'y', 2, YEAR2},  {'M', 3, MONTH_NAME}, {'M', 2, MONTH}, {'d', 2, DAY},
        {'H', 2, HOUR}, {'m', 2, MINUTE}, {'s', 2, SECOND},     {'S', 3, MS},
    };
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    static char why[160];
    size_t o = 0, f;

    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        if (len == strlen(named[i][0]) && strncmp(fmt, named[i][0], len) == 0) {
            fmt = named[i][1];
            len = strlen(fmt);
        }
    for (size_t i = 0; i < len;) {
        char c = fmt[i], piece[16];
        size_t run = 1;
        int n;

        if (c == '\'') {
            size_t end = i + 1;

            while (end < len && fmt[end] != '\'')
                end++;
            if (end == len) {
                snprintf(why, sizeof(why), "a quote (') that is not closed");
                return why;
            }
            if (end == i + 1 && tm && o + 1 < size)
                out[o++] = '\''; /* '' is a quote */
            for (size_t k = i + 1; tm && k < end && o + 1 < size; k++)
                out[o++] = fmt[k];
            i = end + 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            if (tm && o + 1 < size)
                out[o++] = c;
            i++;
            continue;
        }
        while (i + run < len && fmt[i + run] == c)
            run++;
        for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
            if (fields[f].letter == c && fields[f].run == run)
                break;
        if (f == sizeof(fields) / sizeof(fields[0])) {
            snprintf(why, sizeof(why), "%.*s is not a date field gdlua knows", (int)run, fmt + i);
            return why;
        }
        if (tm) {
            switch (fields[f].what) {
            case YEAR:
                n = snprintf(piece, sizeof(piece), "%04d", tm->tm_year + 1900);
                break;
            case YEAR2:
                n = snprintf(piece, sizeof(piece), "%02d", (tm->tm_year + 1900) % 100);
                break;
            case MONTH_NAME:
                n = snprintf(piece, sizeof(piece), "%.3s", months + 3 * tm->tm_mon);
                break;
            case MONTH:
                n = snprintf(piece, sizeof(piece), "%02d", tm->tm_mon + 1);
                break;
            case DAY:
                n = snprintf(piece, sizeof(piece), "%02d", tm->tm_mday);
                break;
            case HOUR:
                n = snprintf(piece, sizeof(piece), "%02d", tm->tm_hour);
                break;
            case MINUTE:
                n = snprintf(piece, sizeof(piece), "%02d", tm->tm_min);
                break;
            case SECOND:
                n = snprintf(piece, sizeof(piece), "%02d", tm->tm_sec);
                break;
            default:
                n = snprintf(piece, sizeof(piece), "%03ld", ms);
            }
            for (int k = 0; k < n && o + 1 < size; k++)
                out[o++] = piece[k];
        }
        i += run;
    }
    if (tm)
        out[o] = '\0';
    return NULL;
}

/* Parses the conversion after a '%' at p; returns what follows it, or
 * NULL when it is none of LAYOUT_CONVERSIONS. A %d{FORMAT}'s FORMAT is
 * left in *date, *datelen (*date NULL: plain %d). */
static const char *conversion(const char *p, int *width, int *precision, char *conv, const char **date, size_t *datelen)
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
    *date = NULL;
    if (*p == '\0' || strchr(LAYOUT_CONVERSIONS, *p) == NULL)
        return NULL;
    *conv = *p++;
    if (*conv == 'd' && *p == '{') {
        const char *close = strchr(p, '}');

        if (close == NULL)
            return NULL;
        *date = p + 1;
        *datelen = (size_t)(close - p - 1);
        p = close + 1;
    }
    return p;
}

int gdl_log_layout(const char *pattern)
{
    int width, precision;
    const char *date, *bad;
    size_t datelen;
    char conv;

    if (gdl_log_format == GDL_LOGFORMAT_JSON) {
        fprintf(stderr, "gdlua: --loglayout lays out text lines: it does not go with --logformat json\n");
        return -1;
    }
    for (const char *p = strchr(pattern, '%'); p; p = strchr(p, '%')) {
        const char *at = p;

        if ((p = conversion(p + 1, &width, &precision, &conv, &date, &datelen)) == NULL) {
            size_t len = 1 + strspn(at + 1, "-.0123456789");

            len += at[len] != '\0';
            if (at[len - 1] == 'd' && at[len] == '{')
                fprintf(stderr, "gdlua: --loglayout '%s': %%d{ has no closing }\n", pattern);
            else
                fprintf(stderr,
                        "gdlua: --loglayout '%s': %.*s is not a conversion gdlua knows; it knows %%c %%d %%d{FORMAT} "
                        "%%H %%m %%n %%p %%P %%r %%%% (" GDL_LOG_DATE_HELP ")\n",
                        pattern, (int)len, at);
            return -1;
        }
        if (date && (bad = date_format(NULL, 0, date, datelen, NULL, 0)) != NULL) {
            fprintf(stderr, "gdlua: --loglayout '%s': %%d{%.*s}: %s (" GDL_LOG_DATE_HELP ")\n", pattern, (int)datelen,
                    date, bad);
            return -1;
        }
    }
    layout = pattern;
    started_ms = gdl_now_ms();
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    return 0;
}

/* One line laid out by the --loglayout pattern into out[size]; returns
 * its length (without the NUL). */
static int layout_line(char *out, int size, const char *tag, const struct tm *tm, long ms, const char *msg)
{
    int n = 0;

    for (const char *p = layout; *p && n < size - 1;) {
        char value[128], conv;
        const char *v = value, *date;
        size_t datelen;
        int width, precision;

        if (*p != '%') {
            out[n++] = *p++;
            continue;
        }
        p = conversion(p + 1, &width, &precision, &conv, &date, &datelen);
        switch (conv) {
        case 'c':
            v = ctx_job[0] ? ctx_job : "gdlua";
            break;
        case 'd':
            if (date)
                date_format(value, sizeof(value), date, datelen, tm, ms);
            else
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

/* s[0..len) at out[n..size), cut to fit; returns the new length. */
static int put(char *out, int n, int size, const char *s, size_t len)
{
    if (n >= size - 1)
        return n;
    if (len > (size_t)(size - 1 - n))
        len = (size_t)(size - 1 - n);
    memcpy(out + n, s, len);
    return n + (int)len;
}

/* The fields of a job's line as text, " key=value" each (the first
 * without its space after an empty message); a value that is
 * empty or holds a space, a quote, '=', a tab or a newline is quoted,
 * with '"' and '\' escaped. Values are escaped as messages are. */
static int text_fields(char *out, int n, int size, const gdl_log_field_t *fields, int nfields, bool space)
{
    char safe[1024];

    for (int i = 0; i < nfields; i++) {
        size_t len = gdl_escape(safe, sizeof(safe), fields[i].value, fields[i].len, true);
        bool quote = !fields[i].literal && (len == 0 || strpbrk(safe, " \"=\t\n") != NULL);

        if (space || i > 0)
            n = put(out, n, size, " ", 1);
        n = put(out, n, size, fields[i].key, strlen(fields[i].key));
        n = put(out, n, size, quote ? "=\"" : "=", quote ? 2 : 1);
        for (size_t k = 0; k < len; k++) {
            if (quote && (safe[k] == '"' || safe[k] == '\\'))
                n = put(out, n, size, "\\", 1);
            n = put(out, n, size, safe + k, 1);
        }
        if (quote)
            n = put(out, n, size, "\"", 1);
    }
    return n;
}

/* The same as keys of a JSON line: "key":value, a string's value
 * escaped as msg is, a literal's (a number, true, false) as it is. A
 * field that does not fit is left out whole, so the line stays JSON. */
static int json_fields(char *out, int n, int size, const gdl_log_field_t *fields, int nfields)
{
    char safe[1024], one[2 * sizeof(safe) + 80];

    for (int i = 0; i < nfields; i++) {
        int k;

        gdl_escape(safe, sizeof(safe), fields[i].key, strlen(fields[i].key), false);
        k = put(one, 0, (int)sizeof(one), ",\"", 2);
        k = json_body(one, k, (int)sizeof(one), safe);
        k = put(one, k, (int)sizeof(one), "\":", 2);
        if (fields[i].literal) {
            k = put(one, k, (int)sizeof(one), fields[i].value, fields[i].len);
        } else {
            gdl_escape(safe, sizeof(safe), fields[i].value, fields[i].len, true);
            k = put(one, k, (int)sizeof(one), "\"", 1);
            k = json_body(one, k, (int)sizeof(one) - 1, safe);
            k = put(one, k, (int)sizeof(one), "\"", 1);
        }
        if (n + k >= size)
            break;
        memcpy(out + n, one, k);
        n += k;
    }
    return n;
}

/* Writes one line: text[0..len) as its message, then the fields. A line
 * a job wrote (from_job: gdlua.log) names, in gdlua's own text layout,
 * the pool it runs in and the job under way ("Pool: job H:x:1: msg"), as
 * a JSON line does in its job and handle keys. */
static void emit(int level, const char *text, size_t len, bool from_job, const gdl_log_field_t *fields, int nfields)
{
    char line[8192], msg[6144], safe[4096], tag[8];
    struct timespec ts;
    struct tm tm;
    size_t t;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* Job text can hold anything: no raw control character, and no
     * newline that could pass for a log line of its own. */
    gdl_escape(safe, sizeof(safe), text, len, true);
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
        n = json_fields(line, n, (int)sizeof(line) - 2, fields, nfields);
        line[n++] = '}';
    } else {
        int m = 0;

        for (t = 0; gdl_log_levels[level][t] && t < sizeof(tag) - 1; t++)
            tag[t] = (char)toupper((unsigned char)gdl_log_levels[level][t]);
        tag[t] = '\0';
        if (from_job && !layout && ctx_job[0]) {
            m = put(msg, m, (int)sizeof(msg), ctx_job, strlen(ctx_job));
            if (ctx_handle) {
                char handle[72];

                gdl_escape(handle, sizeof(handle), ctx_handle, strlen(ctx_handle), false);
                m = put(msg, m, (int)sizeof(msg), ": job ", 6);
                m = put(msg, m, (int)sizeof(msg), handle, strlen(handle));
            }
            m = put(msg, m, (int)sizeof(msg), ": ", 2);
        }
        m = put(msg, m, (int)sizeof(msg), safe, strlen(safe));
        m = text_fields(msg, m, (int)sizeof(msg), fields, nfields, safe[0] != '\0');
        msg[m] = '\0';
        if (layout) {
            /* one line a write: its newline is the layout's (%n), else added */
            n = layout_line(line, (int)sizeof(line) - 1, tag, &tm, ts.tv_nsec / 1000000, msg);
            if (n > 0 && line[n - 1] == '\n')
                n--;
        } else {
            n = snprintf(line, sizeof(line) - 1, "[%04d-%02d-%02dT%02d:%02d:%02d.%03ld] %s [%d] %s", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, tag,
                         (int)getpid(), msg);
            if (n > (int)sizeof(line) - 2)
                n = (int)sizeof(line) - 2;
        }
    }
    line[n++] = '\n';
    while (write(log_fd, line, n) < 0 && errno == EINTR)
        ;
}

void gdl_log(int level, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    int len;

    if (level > gdl_log_level || level < 0)
        return;
    va_start(ap, fmt);
    len = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    emit(level, text, len < 0 ? 0 : (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1, false, NULL, 0);
}

void gdl_log_job(int level, const char *msg, size_t len, const gdl_log_field_t *fields, int nfields)
{
    if (level > gdl_log_level || level < 0)
        return;
    emit(level, msg, len, true, fields, nfields);
}
