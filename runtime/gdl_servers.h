/*
 * gdl_servers.h: server lists ("host[:port][,...]", IPv6 as "[addr]:port"),
 * parsed the same way by gdlua (job servers) and gdlua-console (consoles).
 */
#ifndef GDL_SERVERS_H
#define GDL_SERVERS_H

#include <stddef.h>

struct addrinfo;

#define GDL_DEFAULT_HOST         "127.0.0.1"
#define GDL_DEFAULT_PORT         4730  /* gearmand */
#define GDL_DEFAULT_CONSOLE_PORT 47300 /* Gearman::Driver's console */

typedef struct {
    char host[256];
    int port;
} gdl_server_t;

/* Appends the entries of list (separated by commas or spaces) to
 * out[*n..max), an entry without a port taking default_port. Returns 0,
 * or -1 with a message naming the bad entry in err; a list with no entry
 * ("", ",") is refused, not read as the default. */
int gdl_servers_parse(const char *list, int default_port, gdl_server_t *out, int *n, int max, char *err, size_t errlen);

/* Looks s up as libgearman does (getaddrinfo, TCP; blocking): 0, with
 * the addresses in *ai (for freeaddrinfo) unless ai is NULL, or -1 with
 * the cause in words in why: "cannot resolve: Name or service not
 * known" (the caller names the server). */
int gdl_server_resolve(const gdl_server_t *s, struct addrinfo **ai, char *why, size_t whylen);

/* s as messages name it: "host:4730", "[::1]:4730". */
const char *gdl_server_name(const gdl_server_t *s, char *buf, size_t len);

#endif
