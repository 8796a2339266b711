/*
 * bench_image.c: the seed's image conversions (scenario 1): gdlua.image
 * against Perl Imager (the seed's library) in process and against the
 * seed's own worker (Perl + Imager behind gearmand), PNG to JPEG and to
 * GIF, at 640x480 and 1280x960.
 *
 *   bench_image GDLUA BENCH_DIR [--quick] [--rss N]
 *
 * Makes a deterministic photo-like 1280x960 PNG (sky gradient, sun,
 * clouds, textured hills, a little noise) and its half-size copy, starts
 * a private gearmand (loopback, a free port), gdlua on a job module
 * written to a temp dir (Bench::Image::convert_to_jpeg and
 * ::convert_to_gif in one process group, min 1) and the seed's worker
 * (BENCH_DIR/peers/convert_worker.pl), then measures in one run, round
 * by round so that the machine's drift hits every column alike:
 *   - gdlua end to end: a client, through gearmand, to the child;
 *   - gdlua.image in process (a `gdlua run` script: no gearman);
 *   - Imager in process (perl), when libimager-perl is installed;
 *   - the seed's worker end to end, through the same client and gearmand;
 * and prints ms per conversion (medians over the rounds), the output
 * sizes and the ratios, then the child's RSS after 10, 100 and N
 * (default 1000) GIF conversions, and RESULT lines (bench_util.c).
 *
 * Socket buffers: libgearman 1.1.20 sets SO_SNDBUF and SO_RCVBUF to 32 KB
 * on every connection. On loopback (64 KB segments) a sender then waits
 * for the receiver's delayed ACK (40 ms) after every segment: a 2.5 MB
 * workload takes about 1.1 s to reach gearmand. The bench's client skips
 * those two settings (setsockopt below), as gdlua's own client does
 * (gdl_sockbuf.c); one extra figure shows a stock client. The same
 * limit in a worker slows results over 64 KB (the 650 KB GIF: about
 * +0.25 s); Perl's Gearman::Worker keeps the kernel's sizes.
 *
 * --quick (run by ctest) converts a few times, checks that every output
 * is a JPEG or GIF of the right size and that the child's RSS can be
 * read, and never judges timings; it does not need Imager. Exit status 1
 * when a result is wrong.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libgearman-1.0/gearman.h>
#include <vips/vips.h>

#include "bench_util.h"

#define WIDTH      1280
#define HEIGHT     960
#define ROUNDS_MAX 64
#define SIZES      2
#define COLS       4

typedef struct {
    pid_t pid;
    FILE *in, *out; /* its stdin, its stdout */
} coproc_t;

static int port;
static pid_t gearmand_pid, gdlua_pid;
static coproc_t inproc, imager;
static pid_t perl_pid;
static char tmpdir[] = "/tmp/gdlua-bench-image-XXXXXX";
static int errors;
static bool stock_client; /* keep libgearman's 32 KB socket buffers */

/* The job module gdlua serves: one process for both functions, so the
 * pid job names the process whose RSS is read. */
static const char job_module[] = "local gdlua = require \"gdlua\"\n"
                                 "local image = require \"gdlua.image\"\n"
                                 "local Image = gdlua.worker()\n"
                                 "local group = { process_group = \"image\", min_processes = 1, max_processes = 1 }\n"
                                 "Image:job(\"convert_to_jpeg\", group, function(self, job, workload)\n"
                                 "  return assert(image.convert(workload, \"jpeg\"))\n"
                                 "end)\n"
                                 "Image:job(\"convert_to_gif\", group, function(self, job, workload)\n"
                                 "  return assert(image.convert(workload, \"gif\"))\n"
                                 "end)\n"
                                 "Image:job(\"pid\", group, function() return gdlua.pid() end)\n"
                                 "return Image\n";

/* gdlua.image in process: reads "FORMAT N PATH" lines, answers "MS
 * BYTES" (wall time of N conversions of the file, size of the last
 * output). "gif7" is GIF at libvips's own defaults, for comparison. */
static const char inproc_script[] =
    "local image = require \"gdlua.image\"\n"
    "local ffi = require \"ffi\"\n"
    "ffi.cdef[[ typedef struct { long s, ns; } bench_ts; int clock_gettime(int, bench_ts *); ]]\n"
    "local ts = ffi.new(\"bench_ts\")\n"
    "local function now() ffi.C.clock_gettime(1, ts) return tonumber(ts.s) * 1e3 + tonumber(ts.ns) / 1e6 end\n"
    "local files = {}\n"
    "local opts = { gif7 = { \"gif\", { effort = 7, dither = 1 } } }\n"
    "for line in io.lines() do\n"
    "  local fmt, n, path = line:match(\"^(%w+) (%d+) (.+)$\")\n"
    "  if not files[path] then\n"
    "    local f = assert(io.open(path, \"rb\"))\n"
    "    files[path] = f:read(\"*a\")\n"
    "    f:close()\n"
    "  end\n"
    "  local data = files[path]\n"
    "  local to, o = fmt, nil\n"
    "  if opts[fmt] then to, o = opts[fmt][1], opts[fmt][2] end\n"
    "  local t0, out = now()\n"
    "  for _ = 1, tonumber(n) do out = assert(image.convert(data, to, o)) end\n"
    "  io.write((\"%.3f %d\\n\"):format(now() - t0, #out))\n"
    "  io.flush()\n"
    "end\n";

/* Imager in process, the seed's _convert: the same protocol. */
static const char imager_script[] = "use strict; use warnings; use Imager; use Time::HiRes qw(time);\n"
                                    "my %files;\n"
                                    "$| = 1;\n"
                                    "while (my $line = <STDIN>) {\n"
                                    "  my ($fmt, $n, $path) = $line =~ /^(\\w+) (\\d+) (.+)$/ or next;\n"
                                    "  $files{$path} //= do {\n"
                                    "    open my $f, '<:raw', $path or die \"$path: $!\";\n"
                                    "    local $/; <$f>\n"
                                    "  };\n"
                                    "  my $data = $files{$path};\n"
                                    "  my $out;\n"
                                    "  my $t0 = time;\n"
                                    "  for (1 .. $n) {\n"
                                    "    my $img = Imager->new;\n"
                                    "    $out = '';\n"
                                    "    $img->read(data => $data) or die Imager->errstr;\n"
                                    "    $img->write(data => \\$out, type => $fmt) or die $img->errstr;\n"
                                    "  }\n"
                                    "  printf \"%.3f %d\\n\", (time - $t0) * 1000, length $out;\n"
                                    "}\n";

/* Interposes libc's setsockopt for libgearman (the executable's symbol
 * wins): drops its 32 KB buffer sizes so the kernel sizes them itself. */
int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    static int (*real)(int, int, int, const void *, socklen_t);

    if (!stock_client && level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF))
        return 0;
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "setsockopt");
    return real(fd, level, name, value, len);
}

static bool coproc_start(coproc_t *c, char *const argv[], const char *log)
{
    int to[2], from[2];

    if (pipe(to) != 0 || pipe(from) != 0)
        return false;
    c->pid = bench_spawn(argv, to[0], from[1], log);
    close(to[0]);
    close(from[1]);
    fcntl(to[1], F_SETFD, FD_CLOEXEC);
    fcntl(from[0], F_SETFD, FD_CLOEXEC);
    c->in = fdopen(to[1], "w");
    c->out = fdopen(from[0], "r");
    return c->pid > 0 && c->in && c->out;
}

/* n conversions to fmt in the co-process: ms per conversion (-1: it
 * failed); *bytes: the size of the last output. */
static double coproc_run(coproc_t *c, const char *fmt, int n, const char *path, long *bytes)
{
    char line[128];
    double ms;

    if (c->pid <= 0)
        return -1;
    fprintf(c->in, "%s %d %s\n", fmt, n, path);
    fflush(c->in);
    if (fgets(line, sizeof(line), c->out) == NULL || sscanf(line, "%lf %ld", &ms, bytes) != 2) {
        fprintf(stderr, "bench_image: co-process %d gave no figure for %s\n", (int)c->pid, fmt);
        errors++;
        return -1;
    }
    return ms / n;
}

static void coproc_stop(coproc_t *c)
{
    if (c->pid <= 0)
        return;
    fclose(c->in);
    fclose(c->out);
    bench_stop(&c->pid);
}

static void cleanup(void)
{
    char cmd[128];

    coproc_stop(&inproc);
    coproc_stop(&imager);
    bench_stop(&perl_pid);
    bench_stop(&gdlua_pid);
    bench_stop(&gearmand_pid);
    if (getenv("KEEP_TMP")) {
        fprintf(stderr, "bench_image: kept %s\n", tmpdir);
        return;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_image: %s (logs in %s)\n", msg, tmpdir);
    cleanup();
    exit(1);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die("cannot write the temp files");
}

/* The test picture, the same bytes every run: smooth gradients, hard
 * edges, fine textures and +-4 levels of noise, as in a photo. */
static void *make_png(int half, size_t *len)
{
    unsigned char *p = g_malloc((size_t)WIDTH * HEIGHT * 3);
    unsigned seed = 12345;
    VipsImage *im;
    void *buf = NULL;

    for (int y = 0; y < HEIGHT; y++)
        for (int x = 0; x < WIDTH; x++) {
            double r, g, b, v[3];
            double hill1 = HEIGHT * 0.55 + 60 * sin(x / 150.0) + 25 * sin(x / 41.0 + 1);
            double hill2 = HEIGHT * 0.72 + 45 * sin(x / 97.0 + 2) + 15 * sin(x / 23.0);

            if (y < hill1) {
                double t = y / hill1, d = hypot(x - 980, y - 170);
                double cloud = sin(x / 60.0 + y / 25.0) * sin(x / 33.0 - y / 47.0);
                r = 90 + 100 * t, g = 140 + 80 * t, b = 230 - 30 * t;
                if (d < 70) {
                    r = 255, g = 240, b = 200;
                } else if (d < 140) {
                    double k = (140 - d) / 70 * 0.6;
                    r += k * (255 - r), g += k * (230 - g), b += k * (180 - b);
                }
                if (cloud > 0.5 && y < hill1 * 0.6) {
                    double k = (cloud - 0.5) * 2;
                    r += k * (245 - r), g += k * (245 - g), b += k * (250 - b);
                }
            } else if (y < hill2) {
                double tex = sin(x / 3.1 + y / 4.3) * sin(x / 7.7 - y / 2.9);
                r = 60 + 30 * tex + 20 * sin(y / 30.0), g = 110 + 40 * tex, b = 50 + 15 * tex;
            } else {
                double tex = sin(x / 5.0) * cos(y / 3.0) + 0.5 * sin((x + y) / 11.0);
                r = 150 + 40 * tex, g = 120 + 30 * tex, b = 80 + 20 * tex;
                if ((x / 80 + y / 80) % 7 == 0)
                    r *= 0.7, g *= 0.7, b *= 0.7;
            }
            v[0] = r, v[1] = g, v[2] = b;
            for (int k = 0; k < 3; k++) {
                double n, q;
                seed = seed * 1103515245u + 12345u;
                n = (((seed >> 16) & 0xff) + ((seed >> 8) & 0xff)) / 255.0 - 1.0;
                q = v[k] + 4 * n;
                p[((size_t)y * WIDTH + x) * 3 + k] = (unsigned char)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
    im = vips_image_new_from_memory(p, (size_t)WIDTH * HEIGHT * 3, WIDTH, HEIGHT, 3, VIPS_FORMAT_UCHAR);
    if (im != NULL && half) {
        VipsImage *small = NULL;
        if (vips_resize(im, &small, 0.5, NULL) != 0)
            die("cannot make the small test PNG");
        g_object_unref(im);
        im = small;
    }
    if (im == NULL || vips_pngsave_buffer(im, &buf, len, NULL) != 0)
        die("cannot make the test PNG");
    g_object_unref(im);
    g_free(p);
    return buf;
}

/* An output must be a `fmt` image of w x h. */
static void check_output(const char *what, const void *data, size_t len, const char *fmt, int w, int h)
{
    const unsigned char *p = data;
    bool magic = strcmp(fmt, "jpeg") == 0
                     ? len > 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff
                     : len > 6 && memcmp(p, "GIF8", 4) == 0 && (p[4] == '7' || p[4] == '9') && p[5] == 'a';
    VipsImage *im = magic ? vips_image_new_from_buffer(data, len, "", NULL) : NULL;

    if (im == NULL || im->Xsize != w || im->Ysize != h) {
        fprintf(stderr, "bench_image: %s: not a %dx%d %s (%zu bytes%s)\n", what, w, h, fmt, len,
                magic ? "" : ", wrong magic");
        errors++;
    }
    if (im)
        g_object_unref(im);
    vips_error_clear();
}

/* n conversions through gearman: ms per conversion; the last output is
 * checked (outside the timing) and its size left in *bytes. */
static double gearman_run(gearman_client_st *c, const char *prefix, const char *fmt, const void *png, size_t len, int w,
                          int h, int n, long *bytes)
{
    char fn[64], what[96];
    void *out = NULL;
    size_t out_len = 0;
    double t0 = bench_now_ms(), ms;

    snprintf(fn, sizeof(fn), "%sconvert_to_%s", prefix, fmt);
    for (int i = 0; i < n; i++) {
        gearman_return_t rc;

        free(out);
        out = gearman_client_do(c, fn, NULL, png, len, &out_len, &rc);
        if (rc != GEARMAN_SUCCESS || out == NULL) {
            fprintf(stderr, "bench_image: %s: %s\n", fn, gearman_client_error(c));
            errors++;
            free(out);
            return -1;
        }
    }
    ms = (bench_now_ms() - t0) / n;
    snprintf(what, sizeof(what), "%s through gearman", fn);
    check_output(what, out, out_len, fmt, w, h);
    *bytes = (long)out_len;
    free(out);
    return ms;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static double median(const double *v, int n)
{
    double s[ROUNDS_MAX];

    if (n == 0)
        return -1;
    memcpy(s, v, n * sizeof(double));
    qsort(s, n, sizeof(double), bench_cmp_double);
    for (int i = 0; i < n; i++)
        if (s[i] < 0)
            return -1; /* a failed round: no figure */
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void start_gearmand(void)
{
    char log[128];

    snprintf(log, sizeof(log), "%s/gearmand.log", tmpdir);
    gearmand_pid = bench_start_gearmand(log, &port);
    if (gearmand_pid == 0)
        die("cannot start gearmand");
}

static void fmt_ms(char *buf, size_t len, double ms)
{
    if (ms < 0)
        snprintf(buf, len, "%s", "-");
    else
        snprintf(buf, len, "%.1f ms", ms);
}

int main(int argc, char **argv)
{
    static const char *const fmts[2] = {"jpeg", "gif"}, *const cols[COLS] = {"gdlua", "gdlua_inproc", "imager_inproc",
                                                                             "perl_worker"};
    static const int sizes[SIZES][2] = {{640, 480}, {WIDTH, HEIGHT}};
    static double t[SIZES][2][COLS][ROUNDS_MAX];
    bool quick = false, have_imager, have_perl_worker;
    int rounds, n_jpeg, n_gif, n_rss = 1000, checkpoints[3];
    double t_gif7[ROUNDS_MAX], t_stock = -1;
    long bytes[SIZES][2][COLS], bytes_gif7 = 0, rss[3] = {-1, -1, -1};
    char path[256], log[256], server[64], lua_path[256], pl_path[256], png_path[SIZES][256], portstr[16];
    gearman_client_st *c;
    gearman_return_t rc;
    size_t png_len[SIZES], len;
    void *png[SIZES], *r;
    pid_t child;

    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--rss") == 0 && i + 1 < argc)
            n_rss = atoi(argv[++i]);
        else
            argc = 0;
    }
    if (argc < 3 || n_rss < 1) {
        fprintf(stderr, "usage: bench_image GDLUA BENCH_DIR [--quick] [--rss N]\n");
        return 2;
    }
    if (VIPS_INIT(argv[0]) != 0)
        return 1;
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    memset(bytes, 0, sizeof(bytes));
    rounds = quick ? 1 : 8;
    n_jpeg = quick ? 1 : 4;
    n_gif = quick ? 1 : 2;
    if (quick)
        n_rss = 3;
    checkpoints[0] = n_rss < 20 ? 1 : 10; /* below 20, 10 would come after n_rss / 2 */
    checkpoints[1] = n_rss < 100 ? (n_rss + 1) / 2 : 100;
    checkpoints[2] = n_rss;

    for (int s = 0; s < SIZES; s++) {
        png[s] = make_png(s == 0, &png_len[s]);
        snprintf(png_path[s], sizeof(png_path[s]), "%s/photo%d.png", tmpdir, sizes[s][0]);
        write_file(png_path[s], png[s], png_len[s]);
    }
    snprintf(path, sizeof(path), "%s/jobs", tmpdir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/jobs/Bench", tmpdir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/jobs/Bench/Image.lua", tmpdir);
    write_file(path, job_module, strlen(job_module));
    snprintf(lua_path, sizeof(lua_path), "%s/inproc.lua", tmpdir);
    write_file(lua_path, inproc_script, strlen(inproc_script));
    snprintf(pl_path, sizeof(pl_path), "%s/imager.pl", tmpdir);
    write_file(pl_path, imager_script, strlen(imager_script));

    start_gearmand();
    snprintf(portstr, sizeof(portstr), "%d", port);
    {
        char jobs[256];
        char *gargv[] = {argv[1], "--server", server, "--console_port", "0", "--logfile", log, jobs, NULL};

        snprintf(server, sizeof(server), "127.0.0.1:%d", port);
        snprintf(log, sizeof(log), "%s/gdlua.log", tmpdir);
        snprintf(jobs, sizeof(jobs), "%s/jobs", tmpdir);
        gdlua_pid = bench_spawn(gargv, -1, -1, log);
    }
    c = gearman_client_create(NULL);
    gearman_client_add_server(c, "127.0.0.1", (in_port_t)port);
    gearman_client_set_timeout(c, 60000);
    r = gearman_client_do(c, "Bench::Image::pid", NULL, "pid", 3, &len, &rc);
    if (rc != GEARMAN_SUCCESS || r == NULL)
        die("gdlua does not serve Bench::Image::pid");
    child = (pid_t)strtol(r, NULL, 10);
    free(r);

    {
        char *largv[] = {argv[1], "run", lua_path, NULL};
        snprintf(log, sizeof(log), "%s/inproc.log", tmpdir);
        if (!coproc_start(&inproc, largv, log))
            die("cannot start the in-process gdlua script");
    }
    have_imager = system("perl -MImager -e 1 >/dev/null 2>&1") == 0;
    have_perl_worker = have_imager && system("perl -MGearman::Worker -e 1 >/dev/null 2>&1") == 0;
    if (!have_imager) {
        bench_skipped(cols[2], "Imager not installed (Debian libimager-perl)");
        bench_skipped(cols[3], "Imager not installed (Debian libimager-perl)");
    } else if (!have_perl_worker) {
        bench_skipped(cols[3], "Gearman::Worker not installed (Debian libgearman-client-perl)");
    }
    if (have_imager) {
        char *pargv[] = {"perl", pl_path, NULL};
        snprintf(log, sizeof(log), "%s/imager.log", tmpdir);
        if (!coproc_start(&imager, pargv, log))
            die("cannot start perl");
    }
    if (have_perl_worker) {
        char script[512];
        char *pargv[] = {"perl", script, portstr, "Seed::", NULL};
        double end = bench_now_ms() + 20000;

        snprintf(script, sizeof(script), "%s/peers/convert_worker.pl", argv[2]);
        snprintf(log, sizeof(log), "%s/perl_worker.log", tmpdir);
        perl_pid = bench_spawn(pargv, -1, -1, log);
        while (bench_gearmand_workers(port, "Seed::convert_to_gif") < 1)
            if (bench_now_ms() > end)
                die("the seed's Perl worker did not register");
            else
                bench_sleep_ms(10);
    }

    /* Warm-up: the first conversions start threads and fill caches. */
    for (int s = 0; s < SIZES; s++)
        for (int f = 0; f < 2; f++) {
            long b;
            int w = sizes[s][0], h = sizes[s][1];
            gearman_run(c, "Bench::Image::", fmts[f], png[s], png_len[s], w, h, 1, &b);
            coproc_run(&inproc, fmts[f], 1, png_path[s], &b);
            if (have_imager)
                coproc_run(&imager, fmts[f], 1, png_path[s], &b);
            if (have_perl_worker)
                gearman_run(c, "Seed::", fmts[f], png[s], png_len[s], w, h, 1, &b);
        }
    for (int i = 0; i < rounds; i++) {
        for (int s = 0; s < SIZES; s++)
            for (int f = 0; f < 2; f++) {
                int n = (f == 0 ? n_jpeg : n_gif) * (s == 0 ? 2 : 1), w = sizes[s][0], h = sizes[s][1];
                long *b = bytes[s][f];

                t[s][f][0][i] = gearman_run(c, "Bench::Image::", fmts[f], png[s], png_len[s], w, h, n, &b[0]);
                t[s][f][1][i] = coproc_run(&inproc, fmts[f], n, png_path[s], &b[1]);
                t[s][f][2][i] = have_imager ? coproc_run(&imager, fmts[f], n, png_path[s], &b[2]) : -1;
                t[s][f][3][i] =
                    have_perl_worker ? gearman_run(c, "Seed::", fmts[f], png[s], png_len[s], w, h, n, &b[3]) : -1;
            }
        t_gif7[i] = quick ? -1 : coproc_run(&inproc, "gif7", 1, png_path[1], &bytes_gif7);
    }
    coproc_stop(&inproc);
    coproc_stop(&imager);
    if (have_perl_worker) {
        bench_result("image_rss", "perl_worker", "pss", bench_smaps(perl_pid, "Pss") / 1024.0, "MiB");
        bench_result("image_rss", "perl_worker", "private_dirty", bench_smaps(perl_pid, "Private_Dirty") / 1024.0,
                     "MiB");
    }
    bench_stop(&perl_pid);

    /* What a client that keeps libgearman's 32 KB socket buffers sees. */
    if (!quick) {
        gearman_client_st *stock;
        double ts[3];
        long b;

        stock_client = true;
        stock = gearman_client_create(NULL);
        gearman_client_add_server(stock, "127.0.0.1", (in_port_t)port);
        gearman_client_set_timeout(stock, 60000);
        for (int i = 0; i < 3; i++)
            ts[i] = gearman_run(stock, "Bench::Image::", "jpeg", png[1], png_len[1], WIDTH, HEIGHT, 1, &b);
        t_stock = median(ts, 3);
        gearman_client_free(stock);
        stock_client = false;
    }

    /* Memory: the same child over many GIF conversions. */
    for (int i = 1, k = 0; i <= n_rss; i++) {
        long b;
        if (gearman_run(c, "Bench::Image::", "gif", png[1], png_len[1], WIDTH, HEIGHT, 1, &b) < 0)
            break;
        while (k < 3 && i == checkpoints[k])
            rss[k++] = rss_kb(child);
    }
    if (rss[0] <= 0 || rss[2] <= 0) {
        fprintf(stderr, "bench_image: cannot read the RSS of child %d\n", (int)child);
        errors++;
    }
    gearman_client_free(c);
    cleanup();

    printf("bench_image: photo-like PNGs (%.2f / %.2f MB) to JPEG and GIF; ms per conversion, median of %d "
           "round(s)%s\n",
           png_len[0] / 1e6, png_len[1] / 1e6, rounds, quick ? " (quick: figures not meaningful)" : "");
    if (!have_imager)
        printf("Imager: not installed (Debian libimager-perl): its columns are skipped\n");
    else if (!have_perl_worker)
        printf("Gearman::Worker: not installed (Debian libgearman-client-perl): the seed's worker is skipped\n");
    printf("%-34s %14s %14s %14s %14s %10s %10s\n", "conversion", "gdlua e2e", "gdlua in proc", "Imager in proc",
           "seed worker", "Imager/gd", "seed/gd");
    for (int s = 0; s < SIZES; s++)
        for (int f = 0; f < 2; f++) {
            double m[COLS];
            char cell[COLS][32], name[64], scen[32], r1[16] = "-", r2[16] = "-";

            for (int k = 0; k < COLS; k++) {
                m[k] = median(t[s][f][k], rounds);
                fmt_ms(cell[k], sizeof(cell[k]), m[k]);
            }
            snprintf(scen, sizeof(scen), "image_%s_%d", fmts[f], sizes[s][0]);
            for (int k = 0; k < COLS; k++)
                if (m[k] > 0)
                    bench_result(scen, cols[k], "ms_per_image", m[k], "ms");
            if (m[0] > 0 && m[2] > 0)
                snprintf(r1, sizeof(r1), "%.2fx", m[2] / m[0]);
            if (m[0] > 0 && m[3] > 0)
                snprintf(r2, sizeof(r2), "%.2fx", m[3] / m[0]);
            snprintf(name, sizeof(name), "%dx%d PNG -> %s", sizes[s][0], sizes[s][1], f == 0 ? "JPEG" : "GIF");
            printf("%-34s %14s %14s %14s %14s %10s %10s\n", name, cell[0], cell[1], cell[2], cell[3], r1, r2);
        }
    if (!quick) {
        char a[32], b[32];
        fmt_ms(b, sizeof(b), median(t_gif7, rounds));
        printf("%-34s %14s %14s\n", "1280x960 -> GIF, effort 7 + dither", "", b);
        fmt_ms(a, sizeof(a), t_stock);
        printf("%-34s %14s\n", "1280x960 -> JPEG, stock client", a);
        bench_result("image_jpeg_1280", "gdlua_stock_client", "ms_per_image", t_stock, "ms");
    }
    for (int f = 0; f < 2; f++)
        printf("%-34s %14ld %14ld %14ld %14ld\n", f == 0 ? "output bytes, 1280x960 JPEG" : "output bytes, 1280x960 GIF",
               bytes[1][f][0], bytes[1][f][1], bytes[1][f][2], bytes[1][f][3]);
    printf("ratios: the peer's time over gdlua's end to end; above 1, gdlua is faster\n");
    printf("worker RSS after %d / %d / %d more GIF conversions: %.1f / %.1f / %.1f MB (%+.1f%% from the first)\n",
           checkpoints[0], checkpoints[1], checkpoints[2], rss[0] / 1024.0, rss[1] / 1024.0, rss[2] / 1024.0,
           rss[0] > 0 ? (rss[2] - rss[0]) * 100.0 / rss[0] : 0.0);
    bench_result("image_rss", "gdlua", "rss_growth", rss[0] > 0 ? (rss[2] - rss[0]) * 100.0 / rss[0] : 0.0, "%");
    printf("%d error(s)\n", errors);
    for (int s = 0; s < SIZES; s++)
        g_free(png[s]);
    return errors ? 1 : 0;
}
