/*
 * gdl_daemon.c: running as a service: --daemonize, --pidfile, --user
 * and --group.
 *
 * gdl_main.c calls these in order. gdl_daemon_check, before anything
 * starts: an unknown user or group, or a pidfile naming a live process,
 * is refused on stderr. gdl_daemon_detach (--daemonize), before the
 * event loop exists (libevent's epoll does not survive a fork): the
 * command's process waits until the daemon says it is ready, so its exit
 * status tells whether gdlua started. gdl_daemon_ready, once every port
 * is bound and before the first child is forked: the pidfile, then the
 * privileges dropped, then the waiting process released. gdl_daemon_exit
 * removes the pidfile.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "gdlua.h"

static uid_t uid;
static gid_t gid;
static int ready_fd = -1; /* --daemonize: the waiting process reads this pipe */
static bool pidfile_written;

/* The pid a pidfile holds; 0 when it holds none (missing, empty, junk). */
static pid_t pidfile_pid(const char *path)
{
    char buf[32];
    ssize_t n;
    long pid;
    char *end;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    pid = strtol(buf, &end, 10);
    if (end == buf || (*end != '\n' && *end != '\0') || pid <= 0 || pid > INT32_MAX)
        return 0;
    return (pid_t)pid;
}

/* A live process holds the pidfile (another gdlua, most likely). */
static pid_t pidfile_live(const char *path)
{
    pid_t pid = pidfile_pid(path);

    if (pid > 0 && pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM))
        return pid;
    return 0;
}

int gdl_daemon_check(void)
{
    const char *user = gdl_config.user, *group = gdl_config.group;
    pid_t live;

    uid = geteuid();
    gid = getegid();
    if (user) {
        struct passwd *pw;

        errno = 0;
        if ((pw = getpwnam(user)) == NULL) {
            fprintf(stderr, "gdlua: --user %s: %s\n", user, errno ? strerror(errno) : "no such user");
            return -1;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (group) {
        struct group *gr;

        errno = 0;
        if ((gr = getgrnam(group)) == NULL) {
            fprintf(stderr, "gdlua: --group %s: %s\n", group, errno ? strerror(errno) : "no such group");
            return -1;
        }
        gid = gr->gr_gid;
    }
    if ((user || group) && geteuid() != 0 && (uid != geteuid() || gid != getegid())) {
        fprintf(stderr, "gdlua: --%s %s: only root can switch to another user or group (gdlua runs as uid %d)\n",
                user ? "user" : "group", user ? user : group, (int)geteuid());
        return -1;
    }
    if (gdl_config.pidfile && (live = pidfile_live(gdl_config.pidfile)) > 0) {
        fprintf(stderr, "gdlua: --pidfile %s: process %d is running (is gdlua running already?)\n", gdl_config.pidfile,
                (int)live);
        return -1;
    }
    if (gdl_config.daemonize && gdl_config.logfile == NULL)
        fprintf(stderr, "gdlua: --daemonize without --logfile: the log goes to /dev/null once started\n");
    return 0;
}

int gdl_daemon_detach(void)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        gdl_error("--daemonize: cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        gdl_error("--daemonize: cannot fork: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        char c;
        ssize_t n;

        close(fds[1]);
        while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR)
            ;
        _exit(n == 1 ? 0 : 1); /* EOF: the daemon died before it was ready */
    }
    close(fds[0]);
    setsid();
    /* Not the session leader: it can never gain a controlling terminal. */
    if ((pid = fork()) < 0) {
        gdl_error("--daemonize: cannot fork: %s", strerror(errno));
        _exit(1);
    }
    if (pid > 0)
        _exit(0);
    ready_fd = fds[1];
    return 0;
}

static int write_pidfile(const char *path)
{
    char buf[32];
    int fd, len;
    pid_t live = pidfile_live(path);

    if (live > 0) {
        gdl_error("--pidfile %s: process %d is running (is gdlua running already?)", path, (int)live);
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (fd < 0 || write(fd, buf, len) != len) {
        gdl_error("--pidfile %s: cannot write it: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    pidfile_written = true;
    return 0;
}

static int drop_privileges(void)
{
    const char *user = gdl_config.user;

    if ((!user && !gdl_config.group) || geteuid() != 0)
        return 0; /* gdl_daemon_check allowed it: nothing to change */
    if ((user ? initgroups(user, gid) : setgroups(1, &gid)) < 0 || setgid(gid) < 0 || (user && setuid(uid) < 0)) {
        gdl_error("cannot switch to user %s, group %d: %s", user ? user : "root", (int)gid, strerror(errno));
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        gdl_error("--user %s: root could be regained after switching; refusing to run", user);
        return -1;
    }
    gdl_info("running as uid %d, gid %d", (int)getuid(), (int)getgid());
    return 0;
}

int gdl_daemon_ready(void)
{
    int null;

    if (gdl_config.pidfile && write_pidfile(gdl_config.pidfile) < 0)
        return -1;
    if (drop_privileges() < 0)
        return -1;
    if (ready_fd < 0)
        return 0;
    if ((null = open("/dev/null", O_RDWR)) >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    if (write(ready_fd, "", 1) != 1)
        gdl_warn("--daemonize: cannot tell the starting process: %s", strerror(errno));
    close(ready_fd);
    ready_fd = -1;
    return 0;
}

void gdl_daemon_exit(void)
{
    const char *path = gdl_config.pidfile;

    if (!pidfile_written || pidfile_pid(path) != getpid())
        return;
    if (unlink(path) < 0)
        gdl_warn("--pidfile %s: cannot remove it: %s", path, strerror(errno));
    pidfile_written = false;
}
