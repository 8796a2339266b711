/*
 * gdl_daemon.c: running as a service: --daemonize, --pidfile, --user
 * and --group.
 *
 * gdl_main.c calls these in order. gdl_daemon_check, before anything
 * starts: an unknown user or group, or a pidfile that another process
 * holds or that is not a plain file of gdlua's, is refused on stderr.
 * gdl_daemon_detach (--daemonize), before the event loop exists
 * (libevent's epoll does not survive a fork): the command's process
 * waits until the daemon says it is ready, so its exit status tells
 * whether gdlua started. gdl_daemon_ready, once every port is bound and
 * before the first process is forked: the pid written, then the
 * privileges dropped, then the standard streams closed (no child holds
 * the terminal); the waiting process is released once the first load has
 * installed the jobs (GDL_EV_POOLS), so a start that loads nothing, or
 * that --strict refuses, fails the command.
 * gdl_daemon_exit removes the pidfile.
 *
 * A lock owns the pidfile, not the pid in it: the master holds a POSIX
 * record lock (fcntl F_SETLK) on it for its whole life. Such a lock is
 * the process's own: a fork does not pass it on, so no child holds it
 * past the master (they close the descriptor too), and it goes when the
 * master dies, whatever kills it. A file nobody holds is stale whatever
 * pid it names (a pid reused after a crash blocks nothing), and of two
 * starts at the same instant exactly one gets it. Without --daemonize
 * gdl_daemon_check takes it; with it, gdl_daemon_check only looks (a
 * lock cannot cross the fork) and the daemon takes it once detached: a
 * start that loses there says so on the terminal and in the command's
 * exit status. A POSIX lock also goes when the process closes any
 * descriptor of that file, so the log and token files may not be it
 * (nor the config file, which it would empty).
 *
 * The file is never written through: opened with O_NOFOLLOW and
 * O_NONBLOCK (a fifo cannot block the start), it must be a regular file
 * of gdlua's user with one link; a symlink, a hard link, a fifo, a
 * directory or a file someone else made is refused. Its mode is 0600:
 * whoever can read a file can read-lock it, and so block every start.
 * It is made before privileges are dropped (root's, when gdlua starts as
 * root) and removed at exit if it is still the file locked and its
 * directory lets the user remove it; else it is emptied, and being
 * unlocked it is stale.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "gdlua.h"

#define PIDFILE_TRIES 10 /* opens, while the holder removes the file as it exits */

static uid_t uid;
static gid_t gid;
static int ready_fd = -1;      /* --daemonize: the waiting process reads this pipe */
static int pidfile_fd = -1;    /* the master's: locked while it is open */
static struct stat pidfile_st; /* the file locked: only it is removed at exit */

static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFLNK:
        return "a symbolic link";
    case S_IFDIR:
        return "a directory";
    case S_IFIFO:
        return "a fifo";
    case S_IFSOCK:
        return "a socket";
    case S_IFCHR:
    case S_IFBLK:
        return "a device";
    }
    return "not a regular file";
}

/* The file at path is still the one st describes (its holder may have
 * removed it, exiting, between our open and our lock). */
static bool same_file(const char *path, const struct stat *st)
{
    struct stat now;

    return path && lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* Why the open file cannot be our pidfile; NULL if it can. */
static const char *not_ours(int fd, struct stat *st, char *err, size_t len)
{
    if (fstat(fd, st) < 0)
        snprintf(err, len, "cannot stat it: %s", strerror(errno));
    else if (!S_ISREG(st->st_mode))
        snprintf(err, len, "is %s, not a regular file; refusing to use it", file_kind(st->st_mode));
    else if (st->st_nlink != 1)
        snprintf(err, len, "has %lu hard links; refusing to write a file linked elsewhere",
                 (unsigned long)st->st_nlink);
    else if (st->st_uid != geteuid())
        snprintf(err, len, "belongs to uid %d, not to gdlua's uid %d; refusing to write it", (int)st->st_uid,
                 (int)geteuid());
    else
        return NULL;
    return err;
}

/* Who holds the lock on fd: 0 if nobody, -1 (err says why) if that
 * cannot be told or someone does. */
static int held(int fd, char *err, size_t len)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

    if (fcntl(fd, F_GETLK, &fl) < 0)
        snprintf(err, len, "cannot test its lock: %s", strerror(errno));
    else if (fl.l_type == F_UNLCK)
        return 0;
    else if (fl.l_type == F_RDLCK)
        snprintf(err, len, "process %d holds a read lock on it (not a gdlua: gdlua holds a write lock)", (int)fl.l_pid);
    else if (fl.l_pid > 0)
        snprintf(err, len, "process %d is running (is gdlua running already?)", (int)fl.l_pid);
    else
        snprintf(err, len, "another process holds it (is gdlua running already?)");
    return -1;
}

/* Opens the pidfile and locks it (take), or only looks whether another
 * process holds it (not take: nothing is made; -2 when there is no
 * file). Returns the open descriptor, or -1 with the reason in err. */
static int pidfile_open(const char *path, bool take, struct stat *st, char *err, size_t len)
{
    int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (take ? O_CREAT : 0);

    for (int tries = 0; tries < PIDFILE_TRIES; tries++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int fd;

        /* Looked at first, so that a device is not even opened. */
        if (lstat(path, st) == 0 && !S_ISREG(st->st_mode)) {
            snprintf(err, len, "is %s, not a regular file; refusing to use it", file_kind(st->st_mode));
            return -1;
        }
        if ((fd = open(path, flags, 0600)) < 0) {
            if (errno == ENOENT && !take)
                return -2;
            if (errno == ELOOP) /* made a symlink since it was looked at */
                snprintf(err, len, "is a symbolic link, not a regular file; refusing to use it");
            else
                snprintf(err, len, "cannot open it: %s", strerror(errno));
            return -1;
        }
        if (not_ours(fd, st, err, len)) {
            close(fd);
            return -1;
        }
        if (take && fcntl(fd, F_SETLK, &fl) < 0) {
            if (errno != EACCES && errno != EAGAIN) {
                snprintf(err, len, "cannot lock it: %s", strerror(errno));
                close(fd);
                return -1;
            }
            if (held(fd, err, len) < 0) {
                close(fd);
                return -1;
            }
            close(fd); /* let go while we looked: again */
            continue;
        }
        if (!take && held(fd, err, len) < 0) {
            close(fd);
            return -1;
        }
        if (same_file(path, st))
            return fd;
        close(fd); /* removed or replaced as we opened it: again */
    }
    snprintf(err, len, "it was replaced %d times while it was opened; giving up", PIDFILE_TRIES);
    return -1;
}

/* In a new child: the pidfile is the master's (the lock is not
 * inherited, but the descriptor is, and jobs have no use for it). */
static void after_fork(void)
{
    if (pidfile_fd >= 0)
        close(pidfile_fd);
    pidfile_fd = -1;
    if (ready_fd >= 0)
        close(ready_fd);
    ready_fd = -1;
}

static void close_after_fork(void)
{
    static bool registered;

    if (!registered)
        pthread_atfork(NULL, NULL, after_fork);
    registered = true;
}

/* Opens the pidfile: locked for good (take), or only looked at. Refusals
 * on stderr. */
static int pidfile_take(bool take)
{
    static bool registered;
    const char *path = gdl_config.pidfile;
    const char *const others[][2] = {
        {"--config", gdl_config.config},
        {"--logfile", gdl_config.logfile},
        {"--console_token", gdl_config.console_token},
        {"--http_token", gdl_config.http_token},
    };
    struct stat st;
    char err[256];
    int fd = pidfile_open(path, take, &st, err, sizeof(err));

    if (fd == -2)
        return 0;
    for (size_t i = 0; fd >= 0 && i < sizeof(others) / sizeof(others[0]); i++) {
        struct stat other;

        if (others[i][1] && stat(others[i][1], &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino) {
            snprintf(err, sizeof(err), "is the same file as %s %s", others[i][0], others[i][1]);
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        fprintf(stderr, "gdlua: --pidfile %s: %s\n", path, err);
        return -1;
    }
    if (!take) {
        close(fd);
        return 0;
    }
    /* Locked: the pid it held is no longer true; ours comes once ready.
     * Only its owner may read it, so only its owner may lock it: another
     * user's read lock would stop every start. */
    if (ftruncate(fd, 0) < 0 || fchmod(fd, 0600) < 0) {
        fprintf(stderr, "gdlua: --pidfile %s: cannot empty it: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    pidfile_fd = fd;
    pidfile_st = st;
    close_after_fork();
    if (!registered)
        atexit(gdl_daemon_exit); /* whichever way the master ends */
    registered = true;
    return 0;
}

int gdl_daemon_check(void)
{
    const char *user = gdl_config.user, *group = gdl_config.group;

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
    if (gdl_config.pidfile && pidfile_take(!gdl_config.daemonize) < 0)
        return -1;
    if (gdl_config.daemonize && gdl_config.logfile == NULL)
        fprintf(stderr, "gdlua: --daemonize without --logfile: the log goes to /dev/null once started\n");
    return 0;
}

/* --daemonize: the waiting process exits with the status the daemon
 * sends as one byte (0 once it serves), or 1 if it died first. */
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
        unsigned char status;
        ssize_t n;

        close(fds[1]);
        while ((n = read(fds[0], &status, 1)) < 0 && errno == EINTR)
            ;
        if (n == 1)
            _exit(status);
        fprintf(stderr, "gdlua: --daemonize: the daemon stopped before it served%s%s%s\n",
                gdl_config.logfile ? " (see " : "", gdl_config.logfile ? gdl_config.logfile : "",
                gdl_config.logfile ? ")" : "");
        _exit(1);
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
    /* The daemon is the master: the lock is its own. Refused, it tells
     * the terminal (still its stderr) and the waiting process. */
    if (gdl_config.pidfile && pidfile_take(true) < 0) {
        if (write(ready_fd, "\2", 1) != 1) {
            /* the waiting process exits 1 on EOF */
        }
        _exit(2);
    }
    return 0;
}

static int write_pid(void)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

    if (pwrite(pidfile_fd, buf, len, 0) != len) {
        gdl_error("--pidfile %s: cannot write it: %s", gdl_config.pidfile, errno ? strerror(errno) : "short write");
        return -1;
    }
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

/* The first load has installed the jobs: the start has succeeded. */
static void on_master(const gdl_event_t *ev, void *arg)
{
    if (ready_fd < 0)
        return;
    if (write(ready_fd, "", 1) != 1)
        gdl_warn("--daemonize: cannot tell the starting process: %s", strerror(errno));
    close(ready_fd);
    ready_fd = -1;
}

int gdl_daemon_ready(void)
{
    int null;

    if (pidfile_fd >= 0 && write_pid() < 0)
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
    close_after_fork();
    gdl_master_on(GDL_EV_POOLS, on_master, NULL);
    return 0;
}

/* Removes the pidfile if it is still the one locked (whoever can write
 * its directory may have put another there), then lets the lock go:
 * after the unlink, so that a start that opened the old file sees it gone
 * and opens the new one. */
void gdl_daemon_exit(void)
{
    const char *path = gdl_config.pidfile;

    if (pidfile_fd < 0)
        return;
    if (same_file(path, &pidfile_st) && unlink(path) < 0) {
        gdl_warn("--pidfile %s: cannot remove it: %s; left empty and unlocked (stale)", path, strerror(errno));
        if (ftruncate(pidfile_fd, 0) < 0)
            gdl_warn("--pidfile %s: cannot empty it: %s", path, strerror(errno));
    }
    close(pidfile_fd);
    pidfile_fd = -1;
}
