/* test_util.c: number and time formatting, the crash-loop back-off,
 * escaping, tokens, loopback addresses and the seqlock's partial store. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "gdlua.h"
#include "unit.h"

static const char *num(double n)
{
    static char buf[64];
    gdl_format_number(n, buf, sizeof(buf));
    return buf;
}

int main(void)
{
    char buf[64];

    CHECK_STR(num(0), "0");
    CHECK_STR(num(1346269), "1346269");
    CHECK_STR(num(308061521170129.0), "308061521170129"); /* fib(70): %.14g would say 3.0806152117013e+14 */
    CHECK_STR(num(-42), "-42");
    CHECK_STR(num(1152921504606846976.0), "1152921504606846976"); /* 2^60 */
    CHECK_STR(num(-9223372036854775808.0), "-9223372036854775808");
    CHECK_STR(num(1e20), "100000000000000000000");
    CHECK_STR(num(1e21), "1e+21");
    CHECK_STR(num(-0.0), "-0");
    CHECK_STR(num(999999999999999868928.0), "999999999999999868928"); /* the largest whole double below 10^21 */
    CHECK_STR(num(1e22), "1e+22");
    CHECK_STR(num(0.5), "0.5");
    /* Others: the shortest of %.1g..%.17g that reads back the same. */
    CHECK_STR(num(3.14159), "3.14159"); /* %.17g: 3.1415899999999999 */
    CHECK_STR(num(-2.5), "-2.5");
    CHECK_STR(num(0.1), "0.1");
    CHECK_STR(num(0.1 + 0.2), "0.30000000000000004");
    CHECK_STR(num(1.0 / 3), "0.3333333333333333");
    CHECK_STR(num(123456789012.5), "123456789012.5");
    CHECK_STR(num(1e300), "1e+300");
    CHECK_STR(num(1.5e-7), "1.5e-07");
    CHECK_STR(num(5e-324), "5e-324"); /* the smallest denormal */
    CHECK_STR(num(1.7976931348623157e308), "1.7976931348623157e+308");
    CHECK_STR(num(1.0 / 0.0), "inf");
    CHECK_STR(num(-1.0 / 0.0), "-inf");
    CHECK_STR(num(0.0 / 0.0), "nan");
    for (double x = 1e-5; x < 1e5; x *= 1.37) { /* every form reads back the same */
        char *end;
        CHECK(strtod(num(x), &end) == x && *end == '\0');
    }

    gdl_format_time(0, buf, sizeof(buf));
    CHECK_STR(buf, "1970-01-01T00:00:00");
    gdl_format_time(1264880743, buf, sizeof(buf));
    CHECK_STR(buf, "2010-01-30T19:45:43");

    CHECK_INT(gdl_backoff_ms(0, 100, 10000), 0);
    CHECK_INT(gdl_backoff_ms(-5, 100, 10000), 0);
    CHECK_INT(gdl_backoff_ms(1, 100, 10000), 100);
    CHECK_INT(gdl_backoff_ms(2, 100, 10000), 200);
    CHECK_INT(gdl_backoff_ms(7, 100, 10000), 6400);
    CHECK_INT(gdl_backoff_ms(8, 100, 10000), 10000);
    CHECK_INT(gdl_backoff_ms(1000, 100, 10000), 10000);
    CHECK_INT(gdl_backoff_ms(1, 1000, 30000), 1000);
    CHECK_INT(gdl_backoff_ms(6, 1000, 30000), 30000);
    CHECK_INT(gdl_backoff_ms(INT32_MAX, 1000, 30000), 30000);
    for (int i = 1; i < 40; i++)
        CHECK(gdl_backoff_ms(i, 100, 5000) >= gdl_backoff_ms(i - 1, 100, 5000));

    /* retries: doubling from retry_backoff, the upper half jitter, capped */
    CHECK_INT(gdl_retry_delay_ms(0, 1000, 0), 0);
    CHECK_INT(gdl_retry_delay_ms(1, 0, 0.5), 0);
    CHECK_INT(gdl_retry_delay_ms(1, 1000, 0), 1000);
    CHECK_INT(gdl_retry_delay_ms(1, 1000, 0.999), 501);
    CHECK_INT(gdl_retry_delay_ms(2, 1000, 0), 2000);
    CHECK_INT(gdl_retry_delay_ms(3, 1000, 0.5), 3000);
    CHECK_INT(gdl_retry_delay_ms(9, 1000, 0), 256000);
    CHECK_INT(gdl_retry_delay_ms(10, 1000, 0), GDL_RETRY_CAP_MS);
    CHECK_INT(gdl_retry_delay_ms(INT32_MAX, 1000, 0), GDL_RETRY_CAP_MS);
    CHECK_INT(gdl_retry_delay_ms(5, 3600000, 0), 3600000); /* a base above the cap is kept */
    CHECK_INT(gdl_retry_delay_ms(1, 1000, -1), 1000);      /* a jitter out of range is none */
    for (int i = 1; i < 40; i++)
        CHECK(gdl_retry_delay_ms(i, 50, 0.3) >= gdl_retry_delay_ms(i - 1, 50, 0.3));
    /* gdl_escape: job text made safe to show */
    {
        char out[64], big[600];
#define ESC(in, keep) gdl_escape(out, sizeof(out), in, strlen(in), keep)
        const char e200[] = "\xc3\xa9\xc3\xa9\xc3\xa9";

        CHECK_INT(gdl_escape(out, sizeof(out), "plain", 5, false), 5);
        CHECK_STR(out, "plain");
        ESC("a\x1b[31mred", false);
        CHECK_STR(out, "a\\x1b[31mred");
        ESC("one\r\n.\r\ntwo", false);
        CHECK_STR(out, "one\\x0d"); /* the first line only */
        ESC("one\r\n.\r\ntwo", true);
        CHECK_STR(out, "one\\x0d\n\t.\\x0d\n\ttwo"); /* continuation lines */
        ESC("t\tab", true);
        CHECK_STR(out, "t\tab");
        ESC("t\tab", false);
        CHECK_STR(out, "t\\x09ab");
        ESC("\xff\xfe ok \xc3", false); /* invalid bytes, a cut sequence */
        CHECK_STR(out, "\\xff\\xfe ok \\xc3");
        ESC("\xc0\xaf \xe0\x80\xaf \xf4\x90\x80\x80 \xed\xa0\x80", false); /* overlong, too big */
        CHECK_STR(out, "\\xc0\\xaf \\xe0\\x80\\xaf \\xf4\\x90\\x80\\x80 \\xed\\xa0\\x80");
        gdl_escape(out, sizeof(out), e200, 6, false);
        CHECK_STR(out, e200);
        /* cut at a character boundary, never mid-sequence */
        for (size_t i = 0; i < 300; i++)
            memcpy(big + 2 * i, "\xc3\xa9", 2);
        CHECK_INT(gdl_escape(out, 8, big, 600, false), 6);
        CHECK_INT(gdl_escape(out, 7, big, 600, false), 6);
        CHECK_INT(gdl_escape(out, 6, big, 600, false), 4);
        CHECK_INT(gdl_escape(out, 1, "x", 1, false), 0);
        CHECK_INT(gdl_escape(out, 4, "\x01", 1, false), 0); /* "\x01" needs 5 bytes */
    }
    /* tokens and addresses, for the console and the HTTP endpoint */
    {
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};

        CHECK(gdl_token_equal("abc", 3, "abc"));
        CHECK(!gdl_token_equal("abd", 3, "abc"));
        CHECK(!gdl_token_equal("ab", 2, "abc"));
        CHECK(!gdl_token_equal("abcabc", 6, "abc"));
        CHECK(!gdl_token_equal("", 0, "abc"));
        v4.sin_addr.s_addr = htonl(0x7f000001);
        CHECK(gdl_is_loopback((struct sockaddr *)&v4));
        v4.sin_addr.s_addr = htonl(0x7f0a0b0c);
        CHECK(gdl_is_loopback((struct sockaddr *)&v4));
        v4.sin_addr.s_addr = htonl(0);
        CHECK(!gdl_is_loopback((struct sockaddr *)&v4));
        v6.sin6_addr = in6addr_loopback;
        CHECK(gdl_is_loopback((struct sockaddr *)&v6));
        v6.sin6_addr = in6addr_any;
        CHECK(!gdl_is_loopback((struct sockaddr *)&v6));
    }
    {
        /* A 21-byte record (its last word partial): a put of a byte range
         * publishes the words that hold it and no other; the counter
         * moves by 2 a store. */
        char rec[21], got[21];
        _Atomic uint32_t seq = 0;
        _Atomic uint64_t words[GDL_SEQ_WORDS(sizeof(rec))];
        uint32_t s;

        memset(rec, 'a', sizeof(rec));
        gdl_seq_store(&seq, words, rec, sizeof(rec));
        CHECK_INT(seq, 2);
        memset(rec, 'b', sizeof(rec));
        s = gdl_seq_begin(&seq);
        CHECK_INT(seq & 1, 1);
        gdl_seq_put(words, rec, sizeof(rec), 9, 10);  /* the second word */
        gdl_seq_put(words, rec, sizeof(rec), 20, 99); /* the last (partial) word; the end is clipped */
        gdl_seq_end(&seq, s);
        CHECK_INT(seq, 4);
        gdl_seq_load(&seq, words, got, sizeof(got));
        CHECK(memcmp(got, "aaaaaaaabbbbbbbbbbbbb", sizeof(got)) == 0); /* the first word untouched */
    }
    UNIT_END();
}
