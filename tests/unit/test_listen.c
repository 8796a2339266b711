/* test_listen.c: the pause after a wrong token (gdl_auth_check): per
 * address, for its length only, the right token refused meanwhile from
 * that address alone; a full table forgets the pause nearest its end. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "gdlua.h"
#include "unit.h"

static struct sockaddr *v4(const char *ip)
{
    static struct sockaddr_in sa[8];
    static int next;
    struct sockaddr_in *s = &sa[next++ % 8];

    *s = (struct sockaddr_in){.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &s->sin_addr);
    return (struct sockaddr *)s;
}

static struct sockaddr *v6(const char *ip)
{
    static struct sockaddr_in6 sa[4];
    static int next;
    struct sockaddr_in6 *s = &sa[next++ % 4];

    *s = (struct sockaddr_in6){.sin6_family = AF_INET6};
    inet_pton(AF_INET6, ip, &s->sin6_addr);
    return (struct sockaddr *)s;
}

static int check(gdl_lockout_t *t, struct sockaddr *peer, const char *given, int64_t now)
{
    return gdl_auth_check(t, peer, given, strlen(given), "s3cret", now, 1000);
}

int main(void)
{
    static gdl_lockout_t t;
    char name[64];

    CHECK_INT(check(&t, v4("127.0.0.1"), "s3cret", 0), GDL_AUTH_OK);
    CHECK_INT(check(&t, v4("127.0.0.1"), "s3cre", 0), GDL_AUTH_WRONG);
    CHECK_INT(check(&t, v4("127.0.0.1"), "s3cretx", 0), GDL_AUTH_PAUSED);
    /* Paused: the right token too, from that address ... */
    CHECK_INT(check(&t, v4("127.0.0.1"), "s3cret", 999), GDL_AUTH_PAUSED);
    /* ... not from another (an IPv4-mapped IPv6 address is the same one). */
    CHECK_INT(check(&t, v4("127.0.0.2"), "s3cret", 500), GDL_AUTH_OK);
    CHECK_INT(check(&t, v6("::ffff:127.0.0.1"), "s3cret", 500), GDL_AUTH_PAUSED);
    CHECK_INT(check(&t, v6("::1"), "s3cret", 500), GDL_AUTH_OK);
    /* Over after its length, and not lengthened by the tries it refused. */
    CHECK_INT(check(&t, v4("127.0.0.1"), "s3cret", 1000), GDL_AUTH_OK);
    CHECK_INT(check(&t, v4("127.0.0.1"), "", 1000), GDL_AUTH_WRONG);
    CHECK_INT(check(&t, v4("127.0.0.1"), "s3cret", 1999), GDL_AUTH_PAUSED);
    CHECK_INT(check(&t, v4("127.0.0.1"), "s3cret", 2000), GDL_AUTH_OK);

    /* A table full of paused addresses: a new one takes the slot whose
     * pause ends first; the others stay paused. */
    for (int i = 0; i < GDL_LOCKOUT_SLOTS; i++) {
        char ip[32];

        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 200, i % 200);
        CHECK_INT(check(&t, v4(ip), "wrong", 10000 + i), GDL_AUTH_WRONG);
    }
    CHECK_INT(check(&t, v4("10.1.0.1"), "wrong", 10500), GDL_AUTH_WRONG);
    CHECK_INT(check(&t, v4("10.0.0.0"), "s3cret", 10500), GDL_AUTH_OK); /* forgotten: the oldest */
    CHECK_INT(check(&t, v4("10.0.0.1"), "s3cret", 10500), GDL_AUTH_PAUSED);
    CHECK_INT(check(&t, v4("10.1.0.1"), "s3cret", 10500), GDL_AUTH_PAUSED);

    CHECK_STR(gdl_peer_name(v4("192.0.2.7"), name, sizeof(name)), "192.0.2.7");
    CHECK_STR(gdl_peer_name(v6("2001:db8::1"), name, sizeof(name)), "2001:db8::1");
    UNIT_END();
}
