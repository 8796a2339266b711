/*
 * bench_image.c: the seed's image conversions (scenario 1) on a corpus of
 * real images: gdlua.image end to end against Perl Imager (the seed's
 * library) in process, the seed's own worker (Perl + Imager behind
 * gearmand) and the codec floor, PNG to JPEG and to GIF.
 *
 *   bench_image GDLUA BENCH_DIR [--corpus DIR] [--quick] [--rss N]
 *
 * The images: every NAME.png of DIR that BENCH_DIR/corpus.tsv names (in
 * its order; corpus.sh installs them from Debian's packages), and one
 * synthetic photo-like 640x480 PNG drawn here, kept as a row of its own
 * and out of the corpus's means. A missing corpus image is named and
 * skipped; none at all, and the run says so (the synthetic row stays).
 *
 * It starts a private gearmand (loopback, a free port), gdlua on a job
 * module written to a temp dir (Bench::Image::convert_to_jpeg and
 * ::convert_to_gif in one process group, min 1) and the seed's worker
 * (BENCH_DIR/peers/convert_worker.pl), then measures in one run, round
 * by round, so that the machine's drift hits every column alike:
 *   - gdlua end to end: a client, through gearmand, to the child;
 *   - the codec floor: the same conversion (gdl_image_convert, the code
 *     image.convert runs, same libraries and settings) in this process,
 *     with no gearmand and no Lua;
 *   - Imager in process (perl), when libimager-perl is installed;
 *   - the seed's worker end to end, through the same client and gearmand.
 * Imager refuses some real files (libpng's "iCCP: known incorrect sRGB
 * profile" and the like): its side, and the seed worker's, then get the
 * same PNG without its iCCP chunk (the pixels untouched), and the file
 * is counted as one the seed's library refuses. Every output is checked
 * outside the timings: it decodes, has the input's size, and a GIF's
 * pixels are colours of its palette; and a GIF's mean absolute error
 * against the input (both flattened on white, RGB levels) is measured
 * for gdlua and for Imager. It prints ms per conversion (medians over
 * the rounds) per image, the geometric means over the corpus, and
 * RESULT lines (bench_util.c), then the child's RSS after 10, 100 and N
 * (default 1000) GIF conversions of the synthetic image.
 *
 * Socket buffers: libgearman 1.1.20 sets SO_SNDBUF and SO_RCVBUF to 32 KB
 * on every connection. On loopback (64 KB segments) a sender then waits
 * for the receiver's delayed ACK (40 ms) after every segment: a 2.5 MB
 * workload takes about 1.1 s to reach gearmand. The bench's client skips
 * those two settings (setsockopt below), as gdlua's own client does
 * (gdl_sockbuf.c); one extra figure shows a stock client.
 *
 * --quick (run by ctest) converts every image once per column, checks
 * every output and judges no timing; it does not need Imager. Exit
 * status 1 when a result is wrong.
 */
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
#include <unistd.h>

#include <libgearman-1.0/gearman.h>
#include <vips/vips.h>

#include "bench_util.h"
#include "modules/gdl_image.h"

#define MAX_IMAGES 32
#define ROUNDS_MAX 16
#define COLS       4

enum { GDLUA, FLOOR, IMAGER, SEED };
static const char *const col_names[COLS] = {"gdlua", "floor", "imager_inproc", "perl_worker"};
static const char *const fmts[2] = {"jpeg", "gif"};

typedef struct {
    char name[32], kind[64];
    char path[512];         /* the PNG */
    char imager[512];       /* the PNG Imager reads: path, or a copy without iCCP */
    void *png, *for_imager; /* their bytes */
    size_t len, imager_len;
    int width, height;
    bool corpus;  /* in the corpus's means (not the synthetic image) */
    bool refused; /* Imager refused the file as it is */
    int reps[2];  /* conversions per measurement, by format */
    double t[2][COLS][ROUNDS_MAX];
    long bytes[2][COLS];
    double mae[COLS]; /* of the GIF; -1: not measured */
} image_t;

typedef struct {
    pid_t pid;
    FILE *in, *out; /* its stdin, its stdout */
} coproc_t;

static int port;
static pid_t gearmand_pid, gdlua_pid, perl_pid;
static coproc_t imager;
static char tmpdir[] = "/tmp/gdlua-bench-image-XXXXXX";
static int errors;
static bool stock_client; /* keep libgearman's 32 KB socket buffers */
static image_t images[MAX_IMAGES];
static int n_images;

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

/* Imager in process, the seed's _convert: reads "FORMAT N PATH OUT"
 * lines, answers "MS BYTES" (wall time of N conversions of the file, the
 * size of the last output, written to OUT unless it is "-"), or "ERR
 * why" when Imager cannot read the file. */
static const char imager_script[] =
    "use strict; use warnings; use Imager; use Time::HiRes qw(time);\n"
    "my %files;\n"
    "$| = 1;\n"
    "while (my $line = <STDIN>) {\n"
    "  my ($fmt, $n, $path, $save) = $line =~ /^(\\w+) (\\d+) (\\S+) (\\S+)$/ or next;\n"
    "  $files{$path} //= do {\n"
    "    open my $f, '<:raw', $path or die \"$path: $!\";\n"
    "    local $/; <$f>\n"
    "  };\n"
    "  my $data = $files{$path};\n"
    "  my ($out, $err);\n"
    "  my $t0 = time;\n"
    "  for (1 .. $n) {\n"
    "    my $img = Imager->new;\n"
    "    $out = '';\n"
    "    unless ($img->read(data => $data)) { $err = $img->errstr || Imager->errstr || 'read failed'; last }\n"
    "    $img->write(data => \\$out, type => $fmt) or die $img->errstr;\n"
    "  }\n"
    "  if (defined $err) { $err =~ s/\\s+/ /g; print \"ERR $err\\n\"; next }\n"
    "  my $ms = (time - $t0) * 1000;\n"
    "  if ($save ne '-') { open my $o, '>:raw', $save or die; print $o $out; close $o }\n"
    "  printf \"%.3f %d\\n\", $ms, length $out;\n"
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

/* n conversions to fmt of path in the co-process: ms per conversion,
 * -1 when it failed, -2 when Imager refused the file (why in *why);
 * *bytes: the size of the last output, saved to save unless NULL. */
static double coproc_run(coproc_t *c, const char *fmt, int n, const char *path, const char *save, long *bytes,
                         char *why, size_t why_len)
{
    char line[1024];
    double ms;

    if (c->pid <= 0)
        return -1;
    fprintf(c->in, "%s %d %s %s\n", fmt, n, path, save ? save : "-");
    fflush(c->in);
    if (fgets(line, sizeof(line), c->out) == NULL) {
        fprintf(stderr, "bench_image: co-process %d gave no figure for %s\n", (int)c->pid, fmt);
        errors++;
        return -1;
    }
    if (strncmp(line, "ERR ", 4) == 0) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(why, why_len, "%.500s", line + 4);
        return -2;
    }
    if (sscanf(line, "%lf %ld", &ms, bytes) != 2) {
        fprintf(stderr, "bench_image: co-process %d: %s", (int)c->pid, line);
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

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    void *p = NULL;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n)) &&
        fread(p, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* The synthetic test picture, the same bytes every run: smooth
 * gradients, hard edges, fine textures and +-4 levels of noise, drawn at
 * 1280x960 and halved (as the seed's benchmark did). */
static void *make_png(size_t *len)
{
    enum { WIDTH = 1280, HEIGHT = 960 };
    unsigned char *p = g_malloc((size_t)WIDTH * HEIGHT * 3);
    unsigned seed = 12345;
    VipsImage *im, *small = NULL;
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
    if (im == NULL || vips_resize(im, &small, 0.5, NULL) != 0 || vips_pngsave_buffer(small, &buf, len, NULL) != 0)
        die("cannot make the synthetic PNG");
    g_object_unref(im);
    g_object_unref(small);
    g_free(p);
    return buf;
}

/* The PNG without its iCCP chunks (the rest byte for byte), for Imager:
 * g_free() it. */
static void *without_iccp(const unsigned char *png, size_t len, size_t *out_len)
{
    unsigned char *o = g_malloc(len);
    size_t at = 8, n = 8;

    memcpy(o, png, 8);
    while (at + 12 <= len) {
        size_t chunk =
            12 + ((size_t)png[at] << 24 | (size_t)png[at + 1] << 16 | (size_t)png[at + 2] << 8 | png[at + 3]);
        if (chunk > len - at)
            break;
        if (memcmp(png + at + 4, "iCCP", 4) != 0) {
            memcpy(o + n, png + at, chunk);
            n += chunk;
        }
        at += chunk;
    }
    *out_len = n;
    return o;
}

/* The image as 8-bit RGB, alpha flattened on white, or NULL. */
static unsigned char *rgb_of(const void *data, size_t len, int *w, int *h)
{
    VipsImage *im = vips_image_new_from_buffer(data, len, "", NULL), *t[3] = {NULL, NULL, NULL};
    VipsArrayDouble *white = vips_array_double_newv(3, 255.0, 255.0, 255.0);
    unsigned char *px = NULL;
    size_t n;
    int rc = im == NULL;

    if (rc == 0)
        rc = vips_image_hasalpha(im) ? vips_flatten(im, &t[0], "background", white, NULL) : vips_copy(im, &t[0], NULL);
    if (rc == 0)
        rc = vips_colourspace(t[0], &t[1], VIPS_INTERPRETATION_sRGB, NULL);
    if (rc == 0)
        rc = vips_cast_uchar(t[1], &t[2], NULL);
    if (rc == 0 && t[2]->Bands == 3) {
        *w = t[2]->Xsize;
        *h = t[2]->Ysize;
        px = vips_image_write_to_memory(t[2], &n);
    }
    vips_area_unref(VIPS_AREA(white));
    for (int i = 0; i < 3; i++)
        if (t[i])
            g_object_unref(t[i]);
    if (im)
        g_object_unref(im);
    vips_error_clear();
    return px;
}

/* Mean absolute error of out against the PNG, in RGB levels; -1 when
 * either does not decode or the sizes differ. */
static double mean_error(const image_t *im, const void *out, size_t len)
{
    int w1, h1, w2, h2;
    unsigned char *a = rgb_of(im->png, im->len, &w1, &h1), *b = rgb_of(out, len, &w2, &h2);
    double sum = 0, e = -1;

    if (a && b && w1 == w2 && h1 == h2) {
        for (size_t i = 0; i < (size_t)w1 * h1 * 3; i++)
            sum += abs(a[i] - b[i]);
        e = sum / ((double)w1 * h1 * 3);
    }
    g_free(a);
    g_free(b);
    return e;
}

/* An output must be a `fmt` image of the input's size, and a GIF's
 * opaque pixels colours of its global palette. */
static void check_output(const char *what, const image_t *im, const void *data, size_t len, const char *fmt)
{
    const unsigned char *p = data;
    bool gif = strcmp(fmt, "gif") == 0,
         magic = !gif ? len > 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff
                      : len > 13 && memcmp(p, "GIF8", 4) == 0 && (p[4] == '7' || p[4] == '9') && p[5] == 'a';
    VipsImage *dec = magic ? vips_image_new_from_buffer(data, len, "", NULL) : NULL;

    if (dec == NULL || dec->Xsize != im->width || dec->Ysize != im->height) {
        fprintf(stderr, "bench_image: %s: not a %dx%d %s (%zu bytes%s)\n", what, im->width, im->height, fmt, len,
                magic ? "" : ", wrong magic");
        errors++;
    } else if (gif) {
        size_t n;
        unsigned char *px = vips_image_write_to_memory(dec, &n);
        int bands = dec->Bands, entries = p[10] & 0x80 ? 2 << (p[10] & 7) : 0, outside = 0;
        static unsigned char in_table[1 << 21];

        memset(in_table, 0, sizeof(in_table));
        for (int e = 0; e < entries && 13 + 3 * e + 2 < (int)len; e++) {
            unsigned k = (unsigned)p[13 + 3 * e] << 16 | (unsigned)p[14 + 3 * e] << 8 | p[15 + 3 * e];
            in_table[k >> 3] |= (unsigned char)(1 << (k & 7));
        }
        for (size_t i = 0; px && bands >= 3 && i < n / bands; i++) {
            const unsigned char *q = px + i * bands;
            unsigned k = (unsigned)q[0] << 16 | (unsigned)q[1] << 8 | q[2];
            if (!(bands == 4 && q[3] == 0) && !(in_table[k >> 3] & 1 << (k & 7)))
                outside++;
        }
        if (px == NULL || entries == 0 || outside > 0) {
            fprintf(stderr, "bench_image: %s: %d pixels not in the GIF's %d-entry palette\n", what, outside, entries);
            errors++;
        }
        g_free(px);
    }
    if (dec)
        g_object_unref(dec);
    vips_error_clear();
}

/* n conversions through gearman: ms per conversion; the last output is
 * checked (outside the timing), kept in *last when asked (free() it) and
 * its size left in *bytes. */
static double gearman_run(gearman_client_st *c, const char *prefix, const char *fmt, const image_t *im, const void *png,
                          size_t len, int n, long *bytes, void **last, size_t *last_len)
{
    char fn[64], what[128];
    void *out = NULL;
    size_t out_len = 0;
    double t0 = bench_now_ms(), ms;

    snprintf(fn, sizeof(fn), "%sconvert_to_%s", prefix, fmt);
    for (int i = 0; i < n; i++) {
        gearman_return_t rc;

        free(out);
        out = gearman_client_do(c, fn, NULL, png, len, &out_len, &rc);
        if (rc != GEARMAN_SUCCESS || out == NULL) {
            fprintf(stderr, "bench_image: %s on %s: %s\n", fn, im->name, gearman_client_error(c));
            errors++;
            free(out);
            return -1;
        }
    }
    ms = (bench_now_ms() - t0) / n;
    snprintf(what, sizeof(what), "%s of %.31s through gearman", fn, im->name);
    check_output(what, im, out, out_len, fmt);
    *bytes = (long)out_len;
    if (last) {
        *last = out;
        *last_len = out_len;
    } else {
        free(out);
    }
    return ms;
}

/* n conversions with the codec floor: gdl_image_convert in this process. */
static double floor_run(const char *fmt, const image_t *im, int n, long *bytes)
{
    void *out = NULL;
    size_t out_len = 0;
    char msg[512], what[128];
    double t0 = bench_now_ms(), ms;

    for (int i = 0; i < n; i++) {
        g_free(out);
        if (gdl_image_convert(im->png, im->len, fmt, &out, &out_len, msg, sizeof(msg)) != 0) {
            fprintf(stderr, "bench_image: the floor cannot convert %s to %s: %s\n", im->name, fmt, msg);
            errors++;
            return -1;
        }
    }
    ms = (bench_now_ms() - t0) / n;
    snprintf(what, sizeof(what), "%s of %.31s, codec floor", fmt, im->name);
    check_output(what, im, out, out_len, fmt);
    *bytes = (long)out_len;
    g_free(out);
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

static void fmt_ms(char *buf, size_t len, double ms)
{
    if (ms < 0)
        snprintf(buf, len, "%s", "-");
    else
        snprintf(buf, len, ms < 10 ? "%.2f" : "%.1f", ms);
}

/* The corpus images of corpus.tsv found in dir, after the synthetic one;
 * prints what is missing. */
static void find_images(const char *bench_dir, const char *dir, int *missing, int *listed)
{
    char path[512], line[2048];
    FILE *f;

    snprintf(path, sizeof(path), "%s/corpus.tsv", bench_dir);
    if ((f = fopen(path, "r")) == NULL)
        die("cannot read corpus.tsv");
    *missing = *listed = 0;
    while (fgets(line, sizeof(line), f) && n_images < MAX_IMAGES) {
        image_t *im = &images[n_images];
        char *name = strtok(line, "\t\n"), *kind = strtok(NULL, "\t\n");

        if (name == NULL || name[0] == '#' || kind == NULL)
            continue;
        (*listed)++;
        snprintf(im->name, sizeof(im->name), "%s", name);
        snprintf(im->kind, sizeof(im->kind), "%s", kind);
        snprintf(im->path, sizeof(im->path), "%s/%s.png", dir ? dir : "", name);
        if (dir == NULL || (im->png = read_file(im->path, &im->len)) == NULL) {
            if ((*missing)++ == 0)
                printf("corpus: not in %s (bash tests/bench/corpus.sh GDLUA DIR installs them): ",
                       dir ? dir : "(no --corpus)");
            printf("%s%s", *missing > 1 ? ", " : "", name);
            memset(im, 0, sizeof(*im));
            continue;
        }
        im->corpus = true;
        n_images++;
    }
    if (*missing)
        printf(": skipped\n");
    fclose(f);
}

static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
}

static double geomean(const double *v, int n)
{
    double s = 0;

    for (int i = 0; i < n; i++)
        s += log(v[i]);
    return n ? exp(s / n) : -1;
}

int main(int argc, char **argv)
{
    bool quick = false, have_imager, have_perl_worker;
    const char *corpus_dir = NULL;
    int rounds, n_rss = 1000, checkpoints[3], missing, listed, refused = 0;
    double t_stock = -1;
    long rss[3] = {-1, -1, -1};
    char path[512], log[512], server[64], pl_path[512], portstr[16];
    gearman_client_st *c;
    gearman_return_t rc;
    size_t len;
    void *r;
    pid_t child;
    image_t *synthetic, *largest = NULL;

    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--rss") == 0 && i + 1 < argc)
            n_rss = atoi(argv[++i]);
        else if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc)
            corpus_dir = argv[++i];
        else
            argc = 0;
    }
    if (argc < 3 || n_rss < 1) {
        fprintf(stderr, "usage: bench_image GDLUA BENCH_DIR [--corpus DIR] [--quick] [--rss N]\n");
        return 2;
    }
    if (gdl_image_init() != 0)
        return 1;
    /* libvips warns about real files' flaws (an iCCP rendering intent):
     * the table says what matters. */
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, quiet, NULL);
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    rounds = quick ? 1 : 7;
    if (quick)
        n_rss = 3;
    checkpoints[0] = n_rss < 20 ? 1 : 10; /* below 20, 10 would come after n_rss / 2 */
    checkpoints[1] = n_rss < 100 ? (n_rss + 1) / 2 : 100;
    checkpoints[2] = n_rss;

    /* The images: the synthetic one first, then the corpus. */
    synthetic = &images[n_images++];
    snprintf(synthetic->name, sizeof(synthetic->name), "synthetic");
    snprintf(synthetic->kind, sizeof(synthetic->kind), "drawn here (not in the means)");
    snprintf(synthetic->path, sizeof(synthetic->path), "%s/synthetic.png", tmpdir);
    synthetic->png = make_png(&synthetic->len);
    write_file(synthetic->path, synthetic->png, synthetic->len);
    find_images(argv[2], corpus_dir, &missing, &listed);
    if (n_images == 1)
        printf("corpus: none of the %d images found: the synthetic image alone (not the corpus's figures)\n", listed);
    for (int i = 0; i < n_images; i++) {
        image_t *im = &images[i];
        VipsImage *h = vips_image_new_from_buffer(im->png, im->len, "", NULL);
        if (h == NULL) {
            fprintf(stderr, "bench_image: %s is not an image libvips reads\n", im->path);
            die("bad corpus image");
        }
        im->width = h->Xsize;
        im->height = h->Ysize;
        g_object_unref(h);
        snprintf(im->imager, sizeof(im->imager), "%s", im->path);
        im->for_imager = im->png;
        im->imager_len = im->len;
        for (int k = 0; k < COLS; k++)
            im->mae[k] = -1;
        if (im->corpus && (!largest || (double)im->width * im->height > (double)largest->width * largest->height))
            largest = im;
    }

    snprintf(path, sizeof(path), "%s/jobs", tmpdir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/jobs/Bench", tmpdir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/jobs/Bench/Image.lua", tmpdir);
    write_file(path, job_module, strlen(job_module));
    snprintf(pl_path, sizeof(pl_path), "%s/imager.pl", tmpdir);
    write_file(pl_path, imager_script, strlen(imager_script));

    snprintf(log, sizeof(log), "%s/gearmand.log", tmpdir);
    if ((gearmand_pid = bench_start_gearmand(log, &port)) == 0)
        die("cannot start gearmand");
    snprintf(portstr, sizeof(portstr), "%d", port);
    {
        char jobs[512];
        char *gargv[] = {argv[1], "--server", server, "--console_port", "0", "--logfile", log, jobs, NULL};

        snprintf(server, sizeof(server), "127.0.0.1:%d", port);
        snprintf(log, sizeof(log), "%s/gdlua.log", tmpdir);
        snprintf(jobs, sizeof(jobs), "%s/jobs", tmpdir);
        gdlua_pid = bench_spawn(gargv, -1, -1, log);
    }
    c = gearman_client_create(NULL);
    gearman_client_add_server(c, "127.0.0.1", (in_port_t)port);
    gearman_client_set_timeout(c, 120000);
    r = gearman_client_do(c, "Bench::Image::pid", NULL, "pid", 3, &len, &rc);
    if (rc != GEARMAN_SUCCESS || r == NULL)
        die("gdlua does not serve Bench::Image::pid");
    child = (pid_t)strtol(r, NULL, 10);
    free(r);

    have_imager = system("perl -MImager -e 1 >/dev/null 2>&1") == 0;
    have_perl_worker = have_imager && system("perl -MGearman::Worker -e 1 >/dev/null 2>&1") == 0;
    if (!have_imager) {
        bench_skipped("*", col_names[2], "Imager not installed (Debian libimager-perl)");
        bench_skipped("*", col_names[3], "Imager not installed (Debian libimager-perl)");
    } else if (!have_perl_worker) {
        bench_skipped("*", col_names[3], "Gearman::Worker not installed (Debian libgearman-client-perl)");
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

    /* Warm-up, which also finds the files Imager refuses, measures the
     * GIF errors and sizes each measurement: about 20 ms of gdlua's
     * conversions (one in --quick). */
    for (int i = 0; i < n_images; i++) {
        image_t *im = &images[i];
        for (int f = 0; f < 2; f++) {
            long b;
            void *out = NULL;
            size_t out_len;
            char why[512], save[600];
            double ms = gearman_run(c, "Bench::Image::", fmts[f], im, im->png, im->len, 1, &b, &out, &out_len);

            im->reps[f] = quick || ms <= 0 ? 1 : ms > 20 ? 1 : (int)(20 / ms) + 1;
            if (f == 1 && out)
                im->mae[GDLUA] = mean_error(im, out, out_len);
            free(out);
            if (!have_imager)
                continue;
            snprintf(save, sizeof(save), "%s/%.31s.imager.%s", tmpdir, im->name, fmts[f]);
            if (coproc_run(&imager, fmts[f], 1, im->imager, save, &b, why, sizeof(why)) == -2 && !im->refused) {
                im->refused = true;
                refused++;
                printf("Imager refuses %s (%s): its side gets the PNG without its iCCP chunk\n", im->name, why);
                im->for_imager = without_iccp(im->png, im->len, &im->imager_len);
                snprintf(im->imager, sizeof(im->imager), "%s/%.31s.noiccp.png", tmpdir, im->name);
                write_file(im->imager, im->for_imager, im->imager_len);
                if (coproc_run(&imager, fmts[f], 1, im->imager, save, &b, why, sizeof(why)) < 0) {
                    fprintf(stderr, "bench_image: Imager refuses %s even without iCCP: %s\n", im->name, why);
                    errors++;
                }
            }
            if (f == 1) {
                size_t n;
                void *gif = read_file(save, &n);
                if (gif)
                    im->mae[IMAGER] = mean_error(im, gif, n);
                free(gif);
            }
        }
    }
    for (int i = 0; i < rounds; i++)
        for (int j = 0; j < n_images; j++) {
            image_t *im = &images[j];
            for (int f = 0; f < 2; f++) {
                int n = im->reps[f];
                long *b = im->bytes[f];
                double(*t)[ROUNDS_MAX] = im->t[f];
                char why[512];

                t[GDLUA][i] = gearman_run(c, "Bench::Image::", fmts[f], im, im->png, im->len, n, &b[GDLUA], NULL, NULL);
                t[FLOOR][i] = floor_run(fmts[f], im, n, &b[FLOOR]);
                t[IMAGER][i] =
                    have_imager ? coproc_run(&imager, fmts[f], n, im->imager, NULL, &b[IMAGER], why, sizeof(why)) : -1;
                t[SEED][i] = have_perl_worker ? gearman_run(c, "Seed::", fmts[f], im, im->for_imager, im->imager_len, n,
                                                            &b[SEED], NULL, NULL)
                                              : -1;
            }
        }
    coproc_stop(&imager);
    if (have_perl_worker) {
        bench_result("image_rss", "perl_worker", "pss", bench_smaps(perl_pid, "Pss") / 1024.0, "MiB");
        bench_result("image_rss", "perl_worker", "private_dirty", bench_smaps(perl_pid, "Private_Dirty") / 1024.0,
                     "MiB");
    }
    bench_stop(&perl_pid);

    /* What a client that keeps libgearman's 32 KB socket buffers sees. */
    if (!quick && largest) {
        gearman_client_st *stock;
        double ts[3];
        long b;

        stock_client = true;
        stock = gearman_client_create(NULL);
        gearman_client_add_server(stock, "127.0.0.1", (in_port_t)port);
        gearman_client_set_timeout(stock, 120000);
        for (int i = 0; i < 3; i++)
            ts[i] =
                gearman_run(stock, "Bench::Image::", "jpeg", largest, largest->png, largest->len, 1, &b, NULL, NULL);
        t_stock = median(ts, 3);
        gearman_client_free(stock);
        stock_client = false;
    }

    /* Memory: the same child over many GIF conversions. */
    for (int i = 1, k = 0; i <= n_rss; i++) {
        long b;
        if (gearman_run(c, "Bench::Image::", "gif", synthetic, synthetic->png, synthetic->len, 1, &b, NULL, NULL) < 0)
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

    /* The table: per image, then the corpus's geometric means. */
    printf("bench_image: %d corpus image(s) of %d and a synthetic one, PNG to JPEG and GIF; ms per conversion, "
           "median of %d round(s)%s\n",
           n_images - 1, listed, rounds, quick ? " (quick: figures not meaningful)" : "");
    if (!have_imager)
        printf("Imager: not installed (Debian libimager-perl): its columns are skipped\n");
    else if (!have_perl_worker)
        printf("Gearman::Worker: not installed (Debian libgearman-client-perl): the seed's worker is skipped\n");
    printf("%-11s %11s %7s | %7s %7s %7s %7s | %7s %7s %7s %7s | %11s\n", "image", "size", "KB", "JPEG", "floor",
           "Imager", "seed", "GIF", "floor", "Imager", "seed", "GIF error");
    {
        double gm[2][COLS][MAX_IMAGES];
        int counted[2][COLS] = {{0}}, quality_ok = 0, quality_n = 0;
        double worst = 0;

        for (int j = 0; j < n_images; j++) {
            image_t *im = &images[j];
            char cell[2][COLS][16], scen[64], size[24], err[32];
            for (int f = 0; f < 2; f++) {
                snprintf(scen, sizeof(scen), "img_%.31s_%s", im->name, fmts[f]);
                for (int k = 0; k < COLS; k++) {
                    double m = median(im->t[f][k], rounds);
                    fmt_ms(cell[f][k], sizeof(cell[f][k]), m);
                    if (m > 0) {
                        bench_result(scen, col_names[k], "ms_per_image", m, "ms");
                        if (im->corpus)
                            gm[f][k][counted[f][k]++] = m;
                    }
                }
                bench_result(scen, "gdlua", "output_bytes", (double)im->bytes[f][GDLUA], "B");
            }
            snprintf(scen, sizeof(scen), "img_%.31s_gif", im->name);
            if (im->mae[GDLUA] >= 0)
                bench_result(scen, "gdlua", "mae", im->mae[GDLUA], "levels");
            if (im->mae[IMAGER] >= 0)
                bench_result(scen, "imager_inproc", "mae", im->mae[IMAGER], "levels");
            if (im->mae[GDLUA] < 0) {
                fprintf(stderr, "bench_image: no GIF error for %s\n", im->name);
                errors++;
            }
            if (im->corpus && im->mae[GDLUA] >= 0 && im->mae[IMAGER] >= 0) {
                quality_n++;
                quality_ok += im->mae[GDLUA] <= im->mae[IMAGER] * 1.1 + 0.005;
                if (im->mae[IMAGER] > 0 && im->mae[GDLUA] / im->mae[IMAGER] > worst)
                    worst = im->mae[GDLUA] / im->mae[IMAGER];
            }
            snprintf(size, sizeof(size), "%dx%d", im->width, im->height);
            snprintf(err, sizeof(err), "%.2f / %.2f", im->mae[GDLUA], im->mae[IMAGER]);
            printf("%-11s %11s %7.0f | %7s %7s %7s %7s | %7s %7s %7s %7s | %11s%s\n", im->name, size, im->len / 1e3,
                   cell[0][0], cell[0][1], cell[0][2], cell[0][3], cell[1][0], cell[1][1], cell[1][2], cell[1][3], err,
                   im->refused ? "  (Imager refuses it)" : "");
            bench_result(scen, "gdlua", "pixels", (double)im->width * im->height, "px");
            bench_result(scen, "gdlua", "png_bytes", (double)im->len, "B");
        }
        {
            char cell[2][COLS][16];
            for (int f = 0; f < 2; f++) {
                char scen[64];
                snprintf(scen, sizeof(scen), "image_corpus_%s", fmts[f]);
                for (int k = 0; k < COLS; k++) {
                    /* A column's mean only over the whole corpus found. */
                    double g =
                        counted[f][k] == n_images - 1 && counted[f][k] > 0 ? geomean(gm[f][k], counted[f][k]) : -1;
                    fmt_ms(cell[f][k], sizeof(cell[f][k]), g);
                    if (g > 0)
                        bench_result(scen, col_names[k], "ms_geomean", g, "ms");
                }
            }
            printf("%-11s %11s %7s | %7s %7s %7s %7s | %7s %7s %7s %7s |\n", "geomean", "corpus", "", cell[0][0],
                   cell[0][1], cell[0][2], cell[0][3], cell[1][0], cell[1][1], cell[1][2], cell[1][3]);
        }
        if (n_images == 1) {
            char why[4200];
            snprintf(why, sizeof(why), "corpus not installed (%s)", corpus_dir ? corpus_dir : "no --corpus");
            bench_skipped("image_corpus", "*", why);
        }
        if (quick)
            bench_skipped("image_stock", "*", "not in quick mode");
        bench_result("image_corpus", "gdlua", "images", n_images - 1, "images");
        if (n_images > 1) {
            bench_result("image_corpus_gif", "gdlua", "mae_within_10pct_of_imager", quality_ok, "images");
            bench_result("image_corpus_gif", "gdlua", "mae_compared", quality_n, "images");
            if (quality_n)
                bench_result("image_corpus_gif", "gdlua", "mae_worst_ratio", worst, "x");
            bench_result("image_corpus", "gdlua", "converted_of_refused", refused, "images");
        }
        if (have_imager && n_images > 1) {
            bench_result("image_corpus", "imager_inproc", "refused", refused, "images");
            printf("GIF error: mean absolute error against the input, RGB levels, gdlua / Imager; %d of %d corpus "
                   "image(s) within 10%% of Imager's (worst ratio %.2f)\n",
                   quality_ok, quality_n, worst);
            printf("files the seed's library refuses: %d (gdlua converts them all)\n", refused);
        }
    }
    if (t_stock > 0) {
        char a[16];
        fmt_ms(a, sizeof(a), t_stock);
        printf("%s PNG -> JPEG through a stock libgearman client (32 KiB socket buffers): %s ms\n", largest->name, a);
        bench_result("image_stock", "gdlua_stock_client", "ms_per_image", t_stock, "ms");
        bench_result("image_stock", "gdlua", "ms_per_image", median(largest->t[0][GDLUA], rounds), "ms");
    }
    printf("floor: the same conversion (gdl_image_convert) in this process, no gearmand, no Lua; seed: the seed's "
           "worker end to end\n");
    printf("worker RSS after %d / %d / %d more GIF conversions of the synthetic image: %.1f / %.1f / %.1f MB (%+.1f%% "
           "from the first)\n",
           checkpoints[0], checkpoints[1], checkpoints[2], rss[0] / 1024.0, rss[1] / 1024.0, rss[2] / 1024.0,
           rss[0] > 0 ? (rss[2] - rss[0]) * 100.0 / rss[0] : 0.0);
    bench_result("image_rss", "gdlua", "rss_growth", rss[0] > 0 ? (rss[2] - rss[0]) * 100.0 / rss[0] : 0.0, "%");
    printf("%d error(s)\n", errors);
    for (int i = 0; i < n_images; i++) {
        if (images[i].for_imager != images[i].png)
            g_free(images[i].for_imager);
        if (images[i].corpus)
            free(images[i].png);
        else
            g_free(images[i].png);
    }
    return errors ? 1 : 0;
}
