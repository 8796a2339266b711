/*
 * fuzz_http.c: libFuzzer target for the HTTP request-head check
 * (gdl_http_parse_head in runtime/gdl_http_parse.c), which every byte
 * the HTTP endpoint receives goes through before anything else.
 *
 * The input is cut as a connection cuts it: a head, then the next one
 * after it (pipelining). Besides the sanitizers' checks, it aborts when
 * the parser breaks what the connection relies on:
 * - an answer is MORE, 200 or one of the refusals the endpoint words;
 * - MORE only below the limits (a head shorter than GDL_HTTP_HEAD_MAX;
 *   a request line that has not ended shorter than
 *   GDL_HTTP_LINE_DECIDED), so a client cannot hold a connection by
 *   sending more: an incomplete head padded to the limit is refused;
 * - a final answer stays the same with more bytes after it, and each
 *   shorter prefix is MORE or that answer (so answering at the first
 *   byte that decides is safe);
 * - a 200's fields lie inside its head: the target starts with '/', is
 *   visible ASCII, at most GDL_HTTP_URI_MAX bytes, its path no longer.
 * Built with clang by tests/fuzz/run.sh, which ctest runs for a short
 * while.
 */
#include <stdlib.h>
#include <string.h>

#include "gdlua.h"

static bool known(int status)
{
    static const int answers[] = {GDL_HTTP_MORE, 200, 400, 405, 411, 413, 414, 431, 501, 505};

    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
        if (status == answers[i])
            return true;
    return false;
}

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

/* The answer for buf[0..len), checked against its properties. */
static int check(const char *buf, size_t len)
{
    gdl_http_req_t req, again;
    int status = gdl_http_parse_head(buf, len, &req);

    if (!known(status))
        abort();
    if (status == GDL_HTTP_MORE) {
        if (len >= GDL_HTTP_HEAD_MAX || (req.line_len == 0 && len >= GDL_HTTP_LINE_DECIDED))
            abort(); /* more bytes would hold the connection */
        return status;
    }
    if (status != 200) {
        if (req.why == NULL || *req.why == '\0')
            abort();
        return status;
    }
    if (req.head_len == 0 || req.head_len > len || req.head_len > GDL_HTTP_HEAD_MAX || req.line_len == 0 ||
        req.line_len > req.head_len)
        abort();
    if (req.method != GDL_HTTP_GET && req.method != GDL_HTTP_HEAD)
        abort();
    if (!inside(req.target, req.target_len, buf, req.line_len) || req.target_len == 0 ||
        req.target_len > GDL_HTTP_URI_MAX || req.target[0] != '/' || req.path_len > req.target_len)
        abort();
    for (size_t i = 0; i < req.target_len; i++)
        if ((unsigned char)req.target[i] < 0x21 || (unsigned char)req.target[i] > 0x7e)
            abort();
    if (memchr(req.target, '?', req.path_len))
        abort(); /* the path ends before the query */
    if (req.auth && !inside(req.auth, req.auth_len, buf, req.head_len))
        abort();
    /* The head alone gives the same answer: what follows is not its. */
    if (gdl_http_parse_head(buf, req.head_len, &again) != 200 || again.head_len != req.head_len)
        abort();
    return status;
}

/* Prefixes: MORE or the same answer. Checked at each line end (where
 * the connection asks) and a few other lengths, not at every length:
 * that would be quadratic. */
static void check_prefixes(const char *buf, size_t len, int status)
{
    size_t stop = len;
    gdl_http_req_t req;

    if (status == 200 && gdl_http_parse_head(buf, len, &req) == 200)
        stop = req.head_len;
    for (size_t k = 0; k < stop; k++) {
        int r;

        if (buf[k] != '\n' && k != stop / 2 && k + 1 != stop && k != 0)
            continue;
        r = check(buf, k + 1 == stop ? k : k + 1);
        if (r != GDL_HTTP_MORE && r != status)
            abort(); /* a shorter prefix answered otherwise */
        if (status == 200 && r != GDL_HTTP_MORE && k + 1 != stop)
            abort(); /* a request served before its head ended */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;

    while (off < size) {
        const char *head = buf + off;
        size_t len = size - off > GDL_HTTP_HEAD_MAX ? GDL_HTTP_HEAD_MAX : size - off;
        int status = check(head, len);
        gdl_http_req_t req;

        check_prefixes(head, len, status);
        if (status == GDL_HTTP_MORE) {
            /* Sent more of the same line up to the limit, it is refused. */
            char *longer = malloc(GDL_HTTP_HEAD_MAX);

            memcpy(longer, head, len);
            memset(longer + len, 'a', GDL_HTTP_HEAD_MAX - len);
            check(longer, GDL_HTTP_HEAD_MAX); /* aborts on MORE */
            free(longer);
        } else {
            /* More bytes change nothing. */
            char *longer = malloc(len + 16);
            int r;

            memcpy(longer, head, len);
            memcpy(longer + len, "\r\nX: y\r\n\r\nGET /", 16);
            r = check(longer, len + 16);
            free(longer);
            if (r != status)
                abort();
        }
        if (status != 200)
            break;
        gdl_http_parse_head(head, len, &req);
        off += req.head_len; /* the next pipelined request */
    }
    return 0;
}
