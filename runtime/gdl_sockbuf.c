/*
 * gdl_sockbuf.c: lets the kernel size the socket buffers of libgearman's
 * connections.
 *
 * libgearman 1.1.20 sets SO_SNDBUF and SO_RCVBUF to 32 KiB on every
 * connection it opens. On loopback a payload over about 64 KiB then
 * stalls ~40 ms per segment waiting for the window: a 650 KB GIF result
 * took 385 ms end to end instead of 125 ms (tests/bench/bench_image).
 * libgearman has no option to turn this off, so the gdlua executable
 * defines setsockopt (it exports its symbols, so libgearman's calls bind
 * here) and drops exactly those calls: SOL_SOCKET, SO_SNDBUF or
 * SO_RCVBUF, value 32768. Every other call, a user module's 32 KiB
 * included if it passes another size, goes to the kernel unchanged.
 */
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF) && len == sizeof(int) &&
        *(const int *)value == 32768)
        return 0;
    return (int)syscall(SYS_setsockopt, fd, level, name, value, len);
}
