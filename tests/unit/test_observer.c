/* test_observer.c: the parsers of gearmand's admin "status" and "workers"
 * replies, including truncated and garbage lines. */
#include "gdlua.h"
#include "unit.h"

static int status(const char *line, const char **func, long *t, long *r, long *w)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s", line);
    return gdl_observer_parse_status(buf, func, t, r, w);
}

static int workers(const char *line, const char **id, char **funcs)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s", line);
    return gdl_observer_parse_workers(buf, id, funcs);
}

int main(void)
{
    const char *func, *id;
    char *funcs;
    long t, r, w;

    CHECK_INT(status("GDExamples::Fib::fib\t7\t2\t3", &func, &t, &r, &w), 0);
    CHECK_STR(func, "GDExamples::Fib::fib");
    CHECK_INT(t, 7);
    CHECK_INT(r, 2);
    CHECK_INT(w, 3);
    CHECK_INT(status("f\t0\t0\t0", &func, &t, &r, &w), 0);

    CHECK_INT(status("f\t7\t2", &func, &t, &r, &w), -1);       /* truncated */
    CHECK_INT(status("f\t7\t2\t3\t4", &func, &t, &r, &w), -1); /* extra field */
    CHECK_INT(status("f\t7\tx\t3", &func, &t, &r, &w), -1);    /* not a number */
    CHECK_INT(status("f\t-1\t0\t3", &func, &t, &r, &w), -1);   /* negative */
    CHECK_INT(status("f\t1\t2\t3", &func, &t, &r, &w), -1);    /* running > total */
    CHECK_INT(status("ERR unknown_command", &func, &t, &r, &w), -1);
    CHECK_INT(status("", &func, &t, &r, &w), -1);
    CHECK_INT(status("\x01\x02\xff", &func, &t, &r, &w), -1);
    CHECK_INT(status("f\t99999999999999999999\t0\t0", &func, &t, &r, &w), -1);

    CHECK_INT(workers("17 127.0.0.1 gdlua:vm:5528:5530 : A::b A::c", &id, &funcs), 0);
    CHECK_STR(id, "gdlua:vm:5528:5530");
    CHECK_STR(funcs, "A::b A::c");
    CHECK_INT(workers("18 127.0.0.1 - :", &id, &funcs), 0);
    CHECK_STR(id, "-");
    CHECK_STR(funcs, "");
    CHECK_INT(workers("18 ::1 - : f", &id, &funcs), 0);
    CHECK_STR(funcs, "f");

    CHECK_INT(workers("18 127.0.0.1 -", &id, &funcs), -1);               /* truncated */
    CHECK_INT(workers("-1 127.0.0.1 gdlua:vm:1:2 : f", &id, &funcs), 0); /* a connection closing */
    CHECK_STR(id, "gdlua:vm:1:2");
    CHECK_INT(workers("- 127.0.0.1 - :", &id, &funcs), -1);
    CHECK_INT(workers("-x 127.0.0.1 - :", &id, &funcs), -1);
    CHECK_INT(workers("x 127.0.0.1 - :", &id, &funcs), -1);      /* fd not a number */
    CHECK_INT(workers("18 127.0.0.1 a b : f", &id, &funcs), -1); /* four fields */
    CHECK_INT(workers("f\t1\t0\t1", &id, &funcs), -1);           /* a status row */
    CHECK_INT(workers("", &id, &funcs), -1);
    UNIT_END();
}
