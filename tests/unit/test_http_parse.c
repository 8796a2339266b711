/* test_http_parse.c: the HTTP request-head check (gdl_http_parse_head):
 * what is served, what is refused with which status, that each refusal
 * is decided by the first bytes that make it certain, and the fields a
 * served request carries. */
#include <stdlib.h>

#include "gdlua.h"
#include "unit.h"

static gdl_http_req_t req;

static int parse(const char *s)
{
    return gdl_http_parse_head(s, strlen(s), &req);
}

/* A string of n copies of ch, then tail (static: one at a time). */
static const char *repeat(const char *head, char ch, size_t n, const char *tail)
{
    static char buf[3 * GDL_HTTP_HEAD_MAX];
    size_t h = strlen(head);

    memcpy(buf, head, h);
    memset(buf + h, ch, n);
    strcpy(buf + h + n, tail);
    return buf;
}

static const char *target(void)
{
    static char buf[GDL_HTTP_URI_MAX + 1];

    snprintf(buf, sizeof(buf), "%.*s", (int)req.target_len, req.target);
    return buf;
}

int main(void)
{
    const char *s;

    /* Served: CRLF or bare LF; the fields the endpoint uses. */
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    CHECK_INT(req.method, GDL_HTTP_GET);
    CHECK_STR(target(), "/metrics");
    CHECK_INT(req.path_len, 8);
    CHECK_INT(req.minor, 1);
    CHECK(req.keep_alive);
    CHECK(req.auth == NULL);
    CHECK_INT(req.head_len, strlen("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK_INT(parse("HEAD / HTTP/1.1\nHost: x\n\n"), 200);
    CHECK_INT(req.method, GDL_HTTP_HEAD);
    CHECK_INT(req.head_len, 25);
    CHECK_INT(parse("GET /metrics?x=1&y HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    CHECK_STR(target(), "/metrics?x=1&y");
    CHECK_INT(req.path_len, 8); /* the query is not the path */
    CHECK_INT(parse("GET //metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    CHECK_STR(target(), "//metrics"); /* literal: the endpoint finds no such path */
    CHECK_INT(parse("GET /a{b} HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    CHECK_STR(target(), "/a{b}");
    CHECK_INT(parse("GET / HTTP/1.1\r\nhOsT: x\r\nAUTHORIZATION:  Bearer t0k en \t\r\n\r\n"), 200);
    CHECK_INT(req.auth_len, 13);
    CHECK(req.auth && memcmp(req.auth, "Bearer t0k en", 13) == 0); /* trimmed, inner spaces kept */
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Bin: \x80\xff\r\n\r\n"), 200);
    CHECK_INT(parse("\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200); /* empty lines before */

    /* Keep-alive: HTTP/1.1 unless "close", HTTP/1.0 only if asked. */
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n"), 200);
    CHECK(!req.keep_alive);
    CHECK_INT(parse("GET / HTTP/1.0\r\n\r\n"), 200); /* no Host needed */
    CHECK_INT(req.minor, 0);
    CHECK(!req.keep_alive);
    CHECK_INT(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 200);
    CHECK(req.keep_alive);
    CHECK_INT(parse("GET / HTTP/1.9\r\nHost: x\r\n\r\n"), 200); /* a later 1.x is answered as 1.1 */

    /* Pipelined: the first head alone; the next starts at head_len. */
    s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(parse(s), 200);
    CHECK_INT(req.head_len, strlen(s) / 2);
    CHECK_INT(gdl_http_parse_head(s + strlen(s) / 2, strlen(s) / 2, &req), 200);
    CHECK_STR(target(), "/b");

    /* Incomplete: MORE, and the request line's end once seen. */
    CHECK_INT(parse(""), GDL_HTTP_MORE);
    CHECK_INT(parse("GET /metr"), GDL_HTTP_MORE);
    CHECK_INT(req.line_len, 0);
    CHECK_INT(parse("GET / HTTP/1.1\r"), GDL_HTTP_MORE);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n"), GDL_HTTP_MORE);
    CHECK_INT(req.line_len, 16);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n\r"), GDL_HTTP_MORE);

    /* The request line: one space each, a path, HTTP/1.x. */
    CHECK_INT(parse("GET  /metrics  HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    CHECK_INT(parse("GET  "), 400); /* decided at the second space */
    CHECK_INT(parse("GET /metrics  HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    CHECK_INT(parse("GET /metrics HTTP/1.1 \r\nHost: x\r\n\r\n"), 400);
    CHECK_INT(parse(" GET / HTTP/1.1\r\n\r\n"), 400);
    CHECK_INT(parse("GET /metrics\r\n\r\n"), 400); /* HTTP/0.9 */
    CHECK_INT(parse("GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    CHECK_INT(parse("GET * HTTP/1.1\r\n"), 400);
    CHECK_INT(parse("GET /a#frag HTTP/1.1\r\n"), 400);
    CHECK_INT(parse("GET /a\tb HTTP/1.1\r\n"), 400);
    CHECK_INT(parse("GET /\x80 HTTP/1.1\r\n"), 400);
    CHECK_INT(gdl_http_parse_head("GET /\0 HTTP/1.1\r\n", 17, &req), 400);
    CHECK_INT(gdl_http_parse_head("\0GET", 4, &req), 400);
    CHECK_INT(parse("GET / HTTP/1.1\rHost: x\r\n\r\n"), 400); /* a CR alone */
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\r\n"), 400);
    CHECK_INT(parse("GET / http/1.1\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.x\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.10\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/2.0\r\n"), 505);
    CHECK_INT(parse("GET / HTTP/0.9\r\n"), 505);
    CHECK_INT(parse("\r\n\r\n\r\n\r\n"), GDL_HTTP_MORE);
    CHECK_INT(parse("\r\n\r\n\r\n\r\n\r\n"), 400); /* more empty lines than allowed */

    /* Methods: decided as soon as the method's space arrives. */
    CHECK_INT(parse("POST "), 405);
    CHECK_STR(req.why, "only GET and HEAD");
    CHECK_INT(parse("CONNECT x:443 HTTP/1.1\r\n"), 405);
    CHECK_INT(parse("PUT"), GDL_HTTP_MORE);
    CHECK_INT(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
    CHECK_INT(parse("DELETE / HTTP/1.1\r\n"), 405);
    CHECK_INT(parse("TRACE / HTTP/1.1\r\n"), 405);
    CHECK_INT(parse("PATCH / HTTP/1.1\r\n"), 405);
    CHECK_INT(parse("get / HTTP/1.1\r\n"), 501); /* methods are case-sensitive */
    CHECK_INT(parse("BREW / HTTP/1.1\r\n"), 501);
    CHECK_INT(parse(repeat("", 'A', GDL_HTTP_METHOD_MAX, "")), GDL_HTTP_MORE);
    CHECK_INT(parse(repeat("", 'A', GDL_HTTP_METHOD_MAX + 1, "")), 501);

    /* The target's limit: 414 as soon as it is passed. */
    CHECK_INT(parse(repeat("GET /", 'a', GDL_HTTP_URI_MAX - 1, " HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
    CHECK_INT(req.target_len, GDL_HTTP_URI_MAX);
    CHECK_INT(parse(repeat("GET /", 'a', GDL_HTTP_URI_MAX, " HTTP/1.1\r\nHost: x\r\n\r\n")), 414);
    CHECK_INT(parse(repeat("GET /", 'a', GDL_HTTP_URI_MAX, "")), 414); /* unfinished */
    CHECK_INT(parse(repeat("GET /", 'a', 3000, "")), 414);
    CHECK_INT(parse(repeat("GET /", 'a', 21000, " HTTP/1.1\r\n")), 414);

    /* The head's limits: 431 as soon as they are passed. */
    s = repeat("GET / HTTP/1.1\r\nHost: x\r\nX: ", 'v', GDL_HTTP_HEAD_MAX - 30, "\r\n\r\n");
    CHECK_INT(gdl_http_parse_head(s, GDL_HTTP_HEAD_MAX - 1, &req), GDL_HTTP_MORE);
    CHECK_INT(gdl_http_parse_head(s, GDL_HTTP_HEAD_MAX, &req), 431);
    CHECK_INT(parse(s), 431);
    s = repeat("GET / HTTP/1.1\r\nHost: x\r\nX: ", 'v', GDL_HTTP_HEAD_MAX - 32, "\r\n\r\n");
    CHECK_INT(strlen(s), GDL_HTTP_HEAD_MAX);
    CHECK_INT(parse(s), 200); /* exactly the limit */
    {
        char many[GDL_HTTP_HEAD_MAX];
        int n = snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: x\r\n");

        for (int i = 1; i < GDL_HTTP_FIELDS_MAX; i++)
            n += snprintf(many + n, sizeof(many) - n, "A%d: b\r\n", i);
        CHECK_INT(gdl_http_parse_head(many, n, &req), GDL_HTTP_MORE);
        CHECK_INT(gdl_http_parse_head(many, n + snprintf(many + n, sizeof(many) - n, "\r\n"), &req), 200);
        n += snprintf(many + n, sizeof(many) - n, "Z: b\r\n"); /* over the empty line */
        CHECK_INT(gdl_http_parse_head(many, n, &req), 431);
    }

    /* Fields. */
    CHECK_INT(parse("GET / HTTP/1.1\r\n\r\n"), 400);
    CHECK_STR(req.why, "HTTP/1.1 needs a Host header");
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400); /* space before the colon */
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost x\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\n: x\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\x7f\r\n"), 400);
    CHECK_INT(gdl_http_parse_head("GET / HTTP/1.1\r\nHost: \0\r\n\r\n", 26, &req), 400);

    /* Bodies are refused. */
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"), 413);
    CHECK_INT(parse("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"), 405);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 413);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n"), 400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 411);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"), 411);

    /* More bytes never change a refusal: every prefix of a refused head
     * is MORE or the same refusal. */
    {
        static const char *const refused[] = {
            "GET  /metrics  HTTP/1.1\r\nHost: x\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        };

        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
            int full = parse(refused[i]);

            CHECK(full != 200 && full != GDL_HTTP_MORE);
            for (size_t k = 0; k < strlen(refused[i]); k++) {
                int r = gdl_http_parse_head(refused[i], k, &req);
                CHECK(r == GDL_HTTP_MORE || r == full);
            }
        }
    }
    UNIT_END();
}
