/*
 * gdl_servers.c: the server-list parser shared by gdlua and gdlua-console
 * (gdl_servers.h), pure and unit-tested; and the one name lookup every
 * part of gdlua that reaches a job server words its failures with
 * (--check, a child's worker, the master's connections).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdl_servers.h"

/* One entry: "host", "host:port", "[v6]" or "[v6]:port". */
static int server_parse(gdl_server_t *s, char *e, int default_port, char *err, size_t errlen)
{
    char *host = e, *port = NULL, *end;
    long n;

    if (e[0] == '[') {
        char *close = strchr(e, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            snprintf(err, errlen, "bad server '%s': expected [ADDRESS]:PORT", e);
            return -1;
        }
        host = e + 1;
        *close = '\0';
        port = close[1] == ':' ? close + 2 : NULL;
    } else if ((port = strchr(e, ':')) != NULL) {
        if (strchr(port + 1, ':')) {
            snprintf(err, errlen, "bad server '%s': write an IPv6 address as [ADDRESS]:PORT", e);
            return -1;
        }
        *port++ = '\0';
    }
    if (*host == '\0' || strlen(host) >= sizeof(s->host)) {
        snprintf(err, errlen, "bad server '%s': empty or overlong host", e);
        return -1;
    }
    strcpy(s->host, host);
    s->port = default_port;
    if (port) {
        errno = 0;
        n = strtol(port, &end, 10);
        if (errno || *end || end == port || n < 1 || n > 65535) {
            snprintf(err, errlen, "bad port '%s' for server %s (1..65535)", port, s->host);
            return -1;
        }
        s->port = (int)n;
    }
    return 0;
}

int gdl_servers_parse(const char *list, int default_port, gdl_server_t *out, int *n, int max, char *err, size_t errlen)
{
    char buf[1024], *save = NULL, *tok;
    int found = 0;

    if (strlen(list) >= sizeof(buf)) {
        snprintf(err, errlen, "server list longer than %zu bytes", sizeof(buf) - 1);
        return -1;
    }
    strcpy(buf, list);
    for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (*n == max) {
            snprintf(err, errlen, "too many servers (at most %d)", max);
            return -1;
        }
        if (server_parse(&out[*n], tok, default_port, err, errlen) < 0)
            return -1;
        (*n)++;
        found++;
    }
    if (found == 0) {
        /* Not the default: an empty list is a variable left unset, not a choice. */
        snprintf(err, errlen, "'%s' names no server (HOST[:PORT][,...])", list);
        return -1;
    }
    return 0;
}

int gdl_server_resolve(const gdl_server_t *s, struct addrinfo **ai, char *why, size_t whylen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[16];
    int rc, saved;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(port, sizeof(port), "%d", s->port);
    errno = 0;
    rc = getaddrinfo(s->host, port, &hints, &res);
    saved = errno;
    if (rc != 0) {
        snprintf(why, whylen, "cannot resolve: %s", rc == EAI_SYSTEM && saved ? strerror(saved) : gai_strerror(rc));
        return -1;
    }
    if (ai)
        *ai = res;
    else
        freeaddrinfo(res);
    return 0;
}

const char *gdl_server_name(const gdl_server_t *s, char *buf, size_t len)
{
    snprintf(buf, len, strchr(s->host, ':') ? "[%s]:%d" : "%s:%d", s->host, s->port);
    return buf;
}
