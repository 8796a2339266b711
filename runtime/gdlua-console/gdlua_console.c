/*
 * gdlua_console.c: gdlua-console, the client of gdlua's management
 * console (runtime/gdl_console.c), like Gearman::Driver's console
 * client. A program of its own: it shares only the server-list parser
 * (runtime/gdl_servers.c), the console's command list (for its man page)
 * and the man page helpers with gdlua, and alone needs libedit.
 *
 *   gdlua-console [--server HOST[:PORT]]... [--token FILE] [-c COMMAND]
 *
 * Each command goes to every server; each reply line is printed as
 * "host:port> line". "COMMAND | SHELL-COMMAND" pipes the collected lines
 * through the shell. Interactive use has line editing and history
 * (libedit); with -c (or commands on a non-terminal stdin) it prints and
 * exits 0, or 1 if any server failed or answered ERR: for scripts and
 * monitoring checks.
 */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <editline/readline.h>

#include "gdl_console_commands.h"
#include "gdl_roff.h"
#include "gdl_servers.h"

#define SERVERS_MAX 32
#define TIMEOUT_S   10

typedef struct {
    char name[300]; /* host:port, as replies are prefixed */
    char host[256];
    char port[16];
    int fd;
    FILE *in;
} server_t;

static server_t servers[SERVERS_MAX];
static int nservers;
static char token[256];

/* The options; usage, the man page and the parser use this table. */
typedef struct {
    const char *name;
    const char *arg;  /* NULL: takes no value */
    const char *help; /* NULL: not shown (--man) */
} option_t;

static const option_t options[] = {
    {"--server", "HOST[:PORT][,...]", "a gdlua console to send commands to; repeatable (default: 127.0.0.1:47300)"},
    {"--token", "FILE", "authenticate with FILE's first line (gdlua's --console_token)"},
    {"-c", "COMMAND", "run COMMAND and exit: 0, or 1 if a server failed or answered ERR"},
    {"--help", NULL, "print this help and exit (also -h)"},
    {"--man", NULL, NULL},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const char *const description[] = {
    "Sends console commands to one or more gdlua instances and prints each reply line as \"host:port> line\". "
    "\"COMMAND | SHELL-COMMAND\" pipes the reply through the shell; \"quit\" leaves. Interactive use has line "
    "editing and history (~/.gdlua_console_history); with -c, or commands on a standard input that is not a "
    "terminal, it runs them and exits 0, or 1 if a server failed or answered ERR: for scripts and monitoring "
    "checks.",
    NULL,
};

static void usage(FILE *out)
{
    char lhs[64];

    fprintf(out, "usage: gdlua-console [--server HOST[:PORT]]... [--token FILE] [-c COMMAND]\n\n%s\n\noptions:\n",
            description[0]);
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (options[i].help == NULL)
            continue;
        snprintf(lhs, sizeof(lhs), "%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        fprintf(out, "  %-28s %s\n", lhs, options[i].help);
    }
    fprintf(out, "\n\"help\" lists gdlua's console commands.\n");
}

/* gdlua-console.1, from the table above and the console's own command
 * list (gdl_console_commands.h); run at build time. */
static void man(FILE *out)
{
    char lhs[64];

    fprintf(out, ".TH GDLUA-CONSOLE 1 \"\" \"gdlua %s\" \"User Commands\"\n.SH NAME\n", GDLUA_VERSION);
    gdl_roff(out, "gdlua-console - the client of gdlua's management console\n");
    fputs(".SH SYNOPSIS\n", out);
    gdl_roff(out, "gdlua-console [--server HOST[:PORT]]... [--token FILE] [-c COMMAND]\n");
    fputs(".SH DESCRIPTION\n", out);
    gdl_roff(out, description[0]);
    fputs("\n.SH OPTIONS\n", out);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].help)
            gdl_roff_item(out, options[i].name, options[i].arg, options[i].help);
    fputs(".SH COMMANDS\n", out);
    gdl_roff(out, "What gdlua's console answers (Gearman::Driver's commands, and gdlua's own); lines end in \\r\\n, "
                  "every reply ends with a line \".\".\n");
#define GDL_X(name, args, min_args, max_args, run, help)                  \
    snprintf(lhs, sizeof(lhs), "%s%s%s", name, args[0] ? " " : "", args); \
    gdl_roff_item(out, lhs, NULL, help);
    GDL_CONSOLE_COMMANDS(GDL_X)
#undef GDL_X
    fputs(".SH EXIT STATUS\n", out);
    gdl_roff(out, "0; 1 if a server could not be reached or answered ERR; 2 for a usage error.\n");
    fputs(".SH SEE ALSO\n", out);
    gdl_roff(out, "gdlua(1)\n");
}

/* Adds the servers of spec ("host[:port][,...]"), parsed as gdlua parses
 * its --server list (gdl_servers.c). */
static int add_server(const char *spec)
{
    gdl_server_t parsed[SERVERS_MAX];
    char err[300];
    int n = 0;

    if (gdl_servers_parse(spec, GDL_DEFAULT_CONSOLE_PORT, parsed, &n, SERVERS_MAX - nservers, err, sizeof(err)) < 0) {
        fprintf(stderr, "gdlua-console: --server: %s\n", err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        server_t *s = &servers[nservers++];

        memcpy(s->host, parsed[i].host, sizeof(s->host));
        snprintf(s->port, sizeof(s->port), "%d", parsed[i].port);
        snprintf(s->name, sizeof(s->name), strchr(s->host, ':') ? "[%s]:%s" : "%s:%s", s->host, s->port);
        s->fd = -1;
    }
    return 0;
}

static void disconnect(server_t *s)
{
    if (s->in)
        fclose(s->in); /* closes fd too */
    else if (s->fd >= 0)
        close(s->fd);
    s->in = NULL;
    s->fd = -1;
}

/* Reads one reply line without its line end; NULL on EOF or error. */
static char *read_line(server_t *s, char *buf, size_t len)
{
    if (fgets(buf, (int)len, s->in) == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static int send_line(server_t *s, const char *line)
{
    size_t n = strlen(line);
    char *msg = malloc(n + 3);
    ssize_t w;

    if (msg == NULL)
        return -1;
    memcpy(msg, line, n);
    memcpy(msg + n, "\r\n", 3);
    w = send(s->fd, msg, n + 2, MSG_NOSIGNAL);
    free(msg);
    return w == (ssize_t)(n + 2) ? 0 : -1;
}

static int connect_server(server_t *s)
{
    struct addrinfo hints = {0}, *ai, *p;
    struct timeval tv = {TIMEOUT_S, 0};
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(s->host, s->port, &hints, &ai)) != 0) {
        fprintf(stderr, "gdlua-console: %s: %s\n", s->name, gai_strerror(rc));
        return -1;
    }
    for (p = ai; p; p = p->ai_next) {
        s->fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (s->fd < 0)
            continue;
        setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(s->fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        close(s->fd);
        s->fd = -1;
    }
    freeaddrinfo(ai);
    if (s->fd < 0) {
        fprintf(stderr, "gdlua-console: %s: cannot connect: %s\n", s->name, strerror(errno));
        return -1;
    }
    if ((s->in = fdopen(s->fd, "r")) == NULL) {
        fprintf(stderr, "gdlua-console: %s: %s\n", s->name, strerror(errno));
        disconnect(s);
        return -1;
    }
    if (token[0]) {
        char auth[300], buf[512];
        snprintf(auth, sizeof(auth), "auth %s", token);
        if (send_line(s, auth) < 0 || read_line(s, buf, sizeof(buf)) == NULL || strcmp(buf, "OK") != 0) {
            fprintf(stderr, "gdlua-console: %s: authentication failed\n", s->name);
            disconnect(s);
            return -1;
        }
        read_line(s, buf, sizeof(buf)); /* "." */
    }
    return 0;
}

/* Sends cmd to every server and prints (or pipes) the replies. Returns
 * false if a server failed or answered ERR. */
static bool run(const char *input)
{
    char cmd[4096], word[32], buf[65536];
    const char *pipe_to = NULL;
    FILE *out = stdout;
    bool ok = true, no_reply;
    char *bar;

    snprintf(cmd, sizeof(cmd), "%s", input);
    if ((bar = strchr(cmd, '|')) != NULL) {
        *bar = '\0';
        pipe_to = bar + 1;
        while (*pipe_to == ' ')
            pipe_to++;
    }
    sscanf(cmd, "%31s", word);
    no_reply = strcmp(word, "quit") == 0 || strcmp(word, "shutdown") == 0;
    if (pipe_to && *pipe_to) {
        fflush(stdout);
        out = popen(pipe_to, "w");
        if (out == NULL) {
            fprintf(stderr, "gdlua-console: cannot run %s: %s\n", pipe_to, strerror(errno));
            return false;
        }
    }
    for (int i = 0; i < nservers; i++) {
        server_t *s = &servers[i];

        if (s->fd < 0 && connect_server(s) < 0) {
            ok = false;
            continue;
        }
        if (send_line(s, cmd) < 0) {
            fprintf(stderr, "gdlua-console: %s: %s\n", s->name, strerror(errno));
            disconnect(s);
            ok = false;
            continue;
        }
        if (no_reply) {
            disconnect(s);
            continue;
        }
        for (;;) {
            if (read_line(s, buf, sizeof(buf)) == NULL) {
                fprintf(stderr, "gdlua-console: %s: connection lost\n", s->name);
                disconnect(s);
                ok = false;
                break;
            }
            fprintf(out, "%s> %s\n", s->name, buf);
            if (strncmp(buf, "ERR", 3) == 0)
                ok = false;
            if (strcmp(buf, ".") == 0)
                break;
        }
    }
    if (out != stdout)
        pclose(out);
    fflush(stdout);
    return ok;
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

int main(int argc, char **argv)
{
    const char *command = NULL, *token_file = NULL;
    char history[1024] = "";
    bool ok = true;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *v;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);

        const option_t *o = NULL;

        if (strcmp(a, "-h") == 0)
            a = "--help", len = 6;
        for (size_t k = 0; k < NOPTIONS; k++)
            if (strlen(options[k].name) == len && strncmp(a, options[k].name, len) == 0)
                o = &options[k];
        if (o == NULL || (eq && o->arg == NULL)) {
            fprintf(stderr, "gdlua-console: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (o->arg == NULL) {
            if (strcmp(o->name, "--man") == 0)
                man(stdout);
            else
                usage(stdout);
            return 0;
        }
        v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (v == NULL) {
            fprintf(stderr, "gdlua-console: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(o->name, "-c") == 0)
            command = v;
        else if (strcmp(o->name, "--token") == 0)
            token_file = v;
        else if (add_server(v) < 0)
            return 2;
    }
    if (nservers == 0)
        add_server(GDL_DEFAULT_HOST);
    if (token_file) {
        FILE *f = fopen(token_file, "r");
        bool got = f && fgets(token, sizeof(token), f) != NULL;

        if (f)
            fclose(f);
        if (!got) {
            fprintf(stderr, "gdlua-console: cannot read token file %s\n", token_file);
            return 2;
        }
        token[strcspn(token, "\r\n")] = '\0';
    }
    if (command)
        return run(command) ? 0 : 1;

    if (!isatty(STDIN_FILENO)) {
        char line[4096];
        while (fgets(line, sizeof(line), stdin)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (blank(line))
                continue;
            if (strcmp(line, "quit") == 0)
                break;
            ok &= run(line);
        }
        return ok ? 0 : 1;
    }
    if (getenv("HOME"))
        snprintf(history, sizeof(history), "%s/.gdlua_console_history", getenv("HOME"));
    using_history();
    if (history[0])
        read_history(history);
    for (;;) {
        char *line = readline("console> ");
        if (line == NULL)
            break;
        if (!blank(line)) {
            add_history(line);
            if (strcmp(line, "quit") == 0) {
                free(line);
                break;
            }
            ok &= run(line);
        }
        free(line);
    }
    if (history[0])
        write_history(history);
    for (int i = 0; i < nservers; i++)
        disconnect(&servers[i]);
    return ok ? 0 : 1;
}
