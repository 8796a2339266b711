/*
 * gdl_servers.h: server lists ("host[:port][,...]", IPv6 as "[addr]:port"),
 * parsed the same way by gdlua (job servers) and gdlua-console (consoles).
 */
#ifndef GDL_SERVERS_H
#define GDL_SERVERS_H

#include <stddef.h>

#define GDL_DEFAULT_HOST         "127.0.0.1"
#define GDL_DEFAULT_PORT         4730  /* gearmand */
#define GDL_DEFAULT_CONSOLE_PORT 47300 /* Gearman::Driver's console */

typedef struct {
    char host[256];
    int port;
} gdl_server_t;

/* Appends the entries of list (separated by commas or spaces) to
 * out[*n..max), an entry without a port taking default_port. Returns 0,
 * or -1 with a message naming the bad entry in err. */
int gdl_servers_parse(const char *list, int default_port, gdl_server_t *out, int *n, int max, char *err, size_t errlen);

#endif
