/*
 * gdl_http_parse.c: the check every HTTP request head goes through before
 * any other code of the endpoint (gdl_http.c) sees it. A pure function of
 * the bytes received so far: unit-tested (tests/unit/test_http_parse.c)
 * and fuzzed (tests/fuzz/fuzz_http.c).
 *
 * The endpoint serves GET and HEAD of a few paths and takes no request
 * body, so the grammar is RFC 9112's, narrowed, read left to right:
 *
 *   up to GDL_HTTP_EMPTY_MAX empty lines (ignored)
 *   METHOD SP TARGET SP HTTP/1.x      one space each, nothing else
 *   NAME ":" OWS VALUE OWS            up to GDL_HTTP_FIELDS_MAX of them
 *   an empty line
 *
 * Lines end in CRLF or a bare LF; a CR alone is an error. TARGET is the
 * origin form ("/" then visible ASCII, a query allowed), at most
 * GDL_HTTP_URI_MAX bytes; the whole head at most GDL_HTTP_HEAD_MAX.
 *
 * Every refusal is decided by the first bytes that make it certain, so
 * more bytes never change an answer given (the connection may ask again
 * as bytes arrive, and answer at once): a method other than GET and HEAD
 * is refused as soon as its space arrives (405 for the methods of RFC
 * 9110, 501 for any other), a target as soon as it passes the limit
 * (414), a head as soon as it does (431). The headers' meaning is
 * weighed at the head's end: HTTP/1.1 needs one Host; a body is refused
 * (Transfer-Encoding: 411, a Content-Length above 0: 413), the
 * connection cannot then be kept, as the body's end is not looked for.
 */
#include <string.h>
#include <strings.h>

#include "gdlua.h"

/* RFC 9110's tchar: what a method or a field name is made of. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int refuse(gdl_http_req_t *req, int status, const char *why)
{
    req->why = why;
    return status;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* Whether the comma-separated list value[0..len) has the token want. */
static bool list_has(const char *value, size_t len, const char *want)
{
    size_t i = 0, n = strlen(want);

    while (i < len) {
        size_t start, end;

        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == n && strncasecmp(value + start, want, n) == 0)
            return true;
    }
    return false;
}

/* What the fields say, weighed at the head's end. */
typedef struct {
    int hosts, auths;
    bool chunked;      /* Transfer-Encoding given */
    bool length_bad;   /* a Content-Length that is not a number, or two that differ */
    bool length_given; /* some Content-Length */
    unsigned long long length;
    bool close, keep_alive; /* Connection's tokens */
} fields_t;

static void field(gdl_http_req_t *req, fields_t *f, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (name_is(name, nlen, "Host")) {
        f->hosts++;
    } else if (name_is(name, nlen, "Authorization")) {
        f->auths++;
        req->auth = value;
        req->auth_len = vlen;
    } else if (name_is(name, nlen, "Transfer-Encoding")) {
        f->chunked = true;
    } else if (name_is(name, nlen, "Content-Length")) {
        unsigned long long v = 0;

        f->length_bad |= vlen == 0;
        for (size_t i = 0; i < vlen && !f->length_bad; i++)
            if (value[i] < '0' || value[i] > '9')
                f->length_bad = true;
            else if (v < 100000000000ULL) /* past it, large is all that matters */
                v = v * 10 + (unsigned)(value[i] - '0');
        if (f->length_given && v != f->length)
            f->length_bad = true;
        f->length_given = true;
        f->length = v;
    } else if (name_is(name, nlen, "Connection")) {
        f->close |= list_has(value, vlen, "close");
        f->keep_alive |= list_has(value, vlen, "keep-alive");
    }
}

/* The byte at pos, or why there is none to look at: -1 incomplete,
 * -2 the head has passed its limit. */
static int at(const unsigned char *s, size_t len, size_t pos)
{
    if (pos >= GDL_HTTP_HEAD_MAX)
        return -2;
    return pos < len ? s[pos] : -1;
}

/* The end of a line at pos (CRLF or LF): its length, 0 if there is no
 * line end at pos; -1 incomplete; -3 a CR alone. */
static int line_end(const unsigned char *s, size_t len, size_t pos)
{
    int ch = at(s, len, pos);

    if (ch < 0)
        return ch;
    if (ch == '\n')
        return 1;
    if (ch != '\r')
        return 0;
    ch = at(s, len, pos + 1);
    if (ch < 0)
        return ch;
    return ch == '\n' ? 2 : -3;
}

/* A byte-level result (at / line_end below 0) as the answer it gives. */
static int short_of(gdl_http_req_t *req, int r)
{
    if (r == -1)
        return GDL_HTTP_MORE;
    if (r == -2)
        return refuse(req, 431, "the request head is over 8192 bytes");
    return refuse(req, 400, "a CR not followed by LF");
}

int gdl_http_parse_head(const char *buf, size_t len, gdl_http_req_t *req)
{
    static const char *const refused[] = {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    const unsigned char *s = (const unsigned char *)buf;
    fields_t f = {0};
    size_t pos = 0, start;
    int ch, eol, empties = 0, nfields = 0;

    memset(req, 0, sizeof(*req));

    /* Empty lines before the request line are allowed, a few. */
    while ((eol = line_end(s, len, pos)) != 0) {
        if (eol < 0)
            return short_of(req, eol);
        if (++empties > GDL_HTTP_EMPTY_MAX)
            return refuse(req, 400, "too many empty lines before the request line");
        pos += (size_t)eol;
    }

    /* METHOD SP: decided as soon as the space arrives. */
    for (start = pos; (ch = at(s, len, pos)) >= 0 && is_tchar((unsigned char)ch); pos++)
        if (pos - start >= GDL_HTTP_METHOD_MAX)
            return refuse(req, 501, "the method is not implemented");
    if (ch < 0)
        return short_of(req, ch);
    if (ch != ' ' || pos == start)
        return refuse(req, 400, "a malformed request line");
    if (pos - start == 3 && memcmp(s + start, "GET", 3) == 0) {
        req->method = GDL_HTTP_GET;
    } else if (pos - start == 4 && memcmp(s + start, "HEAD", 4) == 0) {
        req->method = GDL_HTTP_HEAD;
    } else {
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
            if (pos - start == strlen(refused[i]) && memcmp(s + start, refused[i], pos - start) == 0)
                return refuse(req, 405, "only GET and HEAD");
        return refuse(req, 501, "the method is not implemented");
    }
    pos++;

    /* TARGET SP: "/" and visible ASCII, at most GDL_HTTP_URI_MAX bytes. */
    start = pos;
    for (; (ch = at(s, len, pos)) >= 0 && ch != ' '; pos++) {
        if (pos == start && ch != '/')
            return refuse(req, 400, "the target must be a path (\"/...\")");
        if (ch < 0x21 || ch > 0x7e || ch == '#')
            return refuse(req, 400, "a malformed request line");
        if (pos - start >= GDL_HTTP_URI_MAX)
            return refuse(req, 414, "the target is over 2048 bytes");
    }
    if (ch < 0)
        return short_of(req, ch);
    if (pos == start)
        return refuse(req, 400, "a malformed request line");
    req->target = buf + start;
    req->target_len = pos - start;
    {
        const char *query = memchr(req->target, '?', req->target_len);
        req->path_len = query ? (size_t)(query - req->target) : req->target_len;
    }
    pos++;

    /* HTTP/1.x and the line's end. */
    for (size_t i = 0; i < 8; i++, pos++) {
        static const char form[] = "HTTP/0.0";

        if ((ch = at(s, len, pos)) < 0)
            return short_of(req, ch);
        if (form[i] == '0' ? ch < '0' || ch > '9' : ch != form[i])
            return refuse(req, 400, "a malformed request line");
        if (i == 5 && ch != '1')
            return refuse(req, 505, "only HTTP/1.0 and HTTP/1.1");
        if (i == 7)
            req->minor = ch - '0';
    }
    if ((eol = line_end(s, len, pos)) <= 0)
        return eol == 0 ? refuse(req, 400, "a malformed request line") : short_of(req, eol);
    pos += (size_t)eol;
    req->line_len = pos;

    /* Fields, up to the empty line. */
    while ((eol = line_end(s, len, pos)) == 0) {
        size_t name, nlen, value, vend;

        if (++nfields > GDL_HTTP_FIELDS_MAX)
            return refuse(req, 431, "more than 100 header fields");
        for (name = pos; (ch = at(s, len, pos)) >= 0 && is_tchar((unsigned char)ch); pos++)
            ;
        if (ch < 0)
            return short_of(req, ch);
        if (ch == ' ' || ch == '\t')
            return refuse(req, 400, pos == name ? "a folded header line" : "a space before a header's colon");
        if (ch != ':' || pos == name)
            return refuse(req, 400, "a malformed header line");
        nlen = pos - name;
        for (pos++; (ch = at(s, len, pos)) == ' ' || ch == '\t'; pos++)
            ;
        for (value = pos; (ch = at(s, len, pos)) >= 0 && ch != '\r' && ch != '\n'; pos++)
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return refuse(req, 400, "a control character in a header");
        if ((eol = line_end(s, len, pos)) < 0)
            return short_of(req, eol);
        for (vend = pos; vend > value && (s[vend - 1] == ' ' || s[vend - 1] == '\t'); vend--)
            ;
        pos += (size_t)eol;
        field(req, &f, buf + name, nlen, buf + value, vend - value);
    }
    if (eol < 0)
        return short_of(req, eol);
    pos += (size_t)eol;
    req->head_len = pos;

    if (req->minor >= 1 && f.hosts == 0)
        return refuse(req, 400, "HTTP/1.1 needs a Host header");
    if (f.hosts > 1)
        return refuse(req, 400, "more than one Host header");
    if (f.auths > 1)
        return refuse(req, 400, "more than one Authorization header");
    if (f.chunked)
        return refuse(req, 411, "request bodies are refused (Transfer-Encoding)");
    if (f.length_bad)
        return refuse(req, 400, "a malformed Content-Length");
    if (f.length > 0)
        return refuse(req, 413, "request bodies are refused");
    req->keep_alive = !f.close && (req->minor >= 1 || f.keep_alive);
    return 200;
}
