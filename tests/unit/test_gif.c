/*
 * test_gif.c: gdl_gif (runtime/modules/gdl_gif.c). gdl_gif_nearest's k
 * nearest entries against a brute-force sort of the whole palette
 * (random and clustered palettes, ties included, fewer entries than k); gdl_gif_encode's files read back
 * by libvips's gifload: an image of few colours (grey, RGB, a
 * screenshot's few thousand) comes back exactly or with each colour at
 * its nearest entry, a photograph-like one within a tenth more error
 * than libvips's own GIF of it; every pixel read back is a colour of
 * the file's table; alpha under 128 reads back transparent;
 * bitdepth bounds the palette; the LZW coder survives dictionary resets
 * (long images) and a single pixel.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "modules/gdl_gif.h"
#include "unit.h"

static unsigned seed = 4242;

static unsigned rnd(unsigned n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
}

/* The j-th entry (from 0) in order of (squared distance, index). */
static int brute(const unsigned char *pal, int colours, const unsigned char *rgb, int j)
{
    long key[256];

    for (int e = 0; e < colours; e++) {
        long d = 0;
        for (int k = 0; k < 3; k++)
            d += (rgb[k] - pal[3 * e + k]) * (rgb[k] - pal[3 * e + k]);
        key[e] = d << 8 | e;
    }
    for (int a = 0; a <= j && a < colours; a++) /* selection: the j+1 smallest first */
        for (int b = a + 1; b < colours; b++)
            if (key[b] < key[a]) {
                long t = key[a];
                key[a] = key[b];
                key[b] = t;
            }
    return (int)(key[j < colours ? j : colours - 1] & 0xff);
}

/* The k nearest of random colours, exact palette colours among them. */
static void check_nearest(const unsigned char *pal, int colours, int k)
{
    enum { N = 5000 };
    static unsigned char rgb[N * 3], idx[N * 8];
    int wrong = 0;

    for (int i = 0; i < N * 3; i++)
        rgb[i] = (unsigned char)rnd(256);
    memcpy(rgb, pal, 3);
    for (int i = 1; i < 50; i++)
        memcpy(rgb + 3 * i, pal + 3 * rnd((unsigned)colours), 3);
    CHECK_INT(gdl_gif_nearest(pal, colours, rgb, N, k, idx), 0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < k; j++)
            if (idx[i * k + j] != brute(pal, colours, rgb + 3 * i, j))
                wrong++;
    CHECK_INT(wrong, 0);
}

/* The file read back by libvips as 8-bit RGB or RGBA (bands), or NULL. */
static unsigned char *read_back(const unsigned char *gif, size_t len, int w, int h, int *bands)
{
    VipsImage *im = vips_image_new_from_buffer(gif, len, "", NULL);
    unsigned char *px = NULL;
    size_t n;

    if (im == NULL || im->Xsize != w || im->Ysize != h || im->BandFmt != VIPS_FORMAT_UCHAR) {
        fprintf(stderr, "test_gif: libvips cannot read the GIF back: %s\n", vips_error_buffer());
        vips_error_clear();
    } else {
        *bands = im->Bands;
        px = vips_image_write_to_memory(im, &n);
    }
    if (im)
        g_object_unref(im);
    return px;
}

/* Mean absolute error of the RGB read back (rgb: bands of 3 or 4)
 * against the original (bands of obands). */
static double mean_error(const unsigned char *orig, int obands, const unsigned char *back, int bands, size_t n)
{
    double sum = 0;

    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            sum += abs(orig[i * obands + (obands <= 2 ? 0 : k)] - back[i * bands + k]);
    return sum / (3.0 * n);
}

/* libvips's own GIF of the pixels (effort 1, undithered, as gdlua.image
 * asks it), read back: its mean error, or -1. */
static double libvips_error(const unsigned char *px, int w, int h, int bands)
{
    VipsImage *im = vips_image_new_from_memory(px, (size_t)w * h * bands, w, h, bands, VIPS_FORMAT_UCHAR);
    void *gif = NULL;
    size_t len;
    unsigned char *back = NULL;
    int bb;
    double e = -1;

    if (im && vips_gifsave_buffer(im, &gif, &len, "effort", 1, "dither", 0.0, NULL) == 0 &&
        (back = read_back(gif, len, w, h, &bb)) != NULL)
        e = mean_error(px, bands, back, bb, (size_t)w * h);
    if (im)
        g_object_unref(im);
    g_free(gif);
    free(back);
    return e;
}

/* Encodes, reads back; the error, or -1 when it did not round-trip.
 * Every opaque pixel read back must be a colour of the file's table. */
static double round_trip(const unsigned char *px, int w, int h, int bands, int bitdepth, int *colours_bits,
                         unsigned char **back, int *back_bands)
{
    unsigned char *out;
    size_t len;
    double e = -1;

    *back = NULL;
    if (gdl_gif_encode(px, w, h, bands, 1, bitdepth, &out, &len) != 0)
        return -1;
    CHECK(len > 13 && memcmp(out, "GIF89a", 6) == 0 && out[6] == (w & 0xff) && out[7] == w >> 8 &&
          out[8] == (h & 0xff) && out[9] == h >> 8 && out[len - 1] == 0x3b);
    *colours_bits = (out[10] & 7) + 1;
    *back = read_back(out, len, w, h, back_bands);
    if (*back) {
        int outside = 0;
        e = mean_error(px, bands, *back, *back_bands, (size_t)w * h);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            const unsigned char *q = *back + i * *back_bands;
            int found = *back_bands == 4 && q[3] == 0;
            for (int k = 0; !found && k < 1 << *colours_bits; k++)
                found = memcmp(out + 13 + 3 * k, q, 3) == 0;
            outside += !found;
        }
        CHECK_INT(outside, 0);
    }
    free(out);
    return e;
}

int main(int argc, char **argv)
{
    unsigned char pal[256 * 3], *back;
    int bits, bb;

    if (VIPS_INIT(argv[0]) != 0)
        return 1;
    /* Random palettes of every size class. */
    for (int colours = 1; colours <= 256; colours = colours * 3 + 1) {
        for (int i = 0; i < colours * 3; i++)
            pal[i] = (unsigned char)rnd(256);
        check_nearest(pal, colours, 1);
        check_nearest(pal, colours, 4);
    }
    /* Clustered (a photo's palette: many close colours), with duplicate
     * entries: ties go to the lowest index. */
    for (int i = 0; i < 255; i++) {
        pal[3 * i] = (unsigned char)(100 + rnd(20));
        pal[3 * i + 1] = (unsigned char)(120 + rnd(20));
        pal[3 * i + 2] = (unsigned char)(80 + rnd(20));
    }
    memcpy(pal + 3 * 200, pal + 3 * 10, 3);
    check_nearest(pal, 255, 1);
    check_nearest(pal, 255, 4);
    /* Equal greens everywhere: the search cannot stop early. */
    for (int i = 0; i < 64; i++) {
        pal[3 * i] = (unsigned char)rnd(256);
        pal[3 * i + 1] = 77;
        pal[3 * i + 2] = (unsigned char)rnd(256);
    }
    check_nearest(pal, 64, 1);
    check_nearest(pal, 64, 3);
    CHECK_INT(gdl_gif_nearest(pal, 0, pal, 1, 1, pal), -1);
    CHECK_INT(gdl_gif_nearest(pal, 3, pal, 1, 9, pal), -1);

    /* Grey of every level, 1 band: all 256 kept, lossless. */
    {
        enum { W = 256, H = 9 };
        static unsigned char px[W * H];
        for (int i = 0; i < W * H; i++)
            px[i] = (unsigned char)(i * 7);
        CHECK(round_trip(px, W, H, 1, 8, &bits, &back, &bb) == 0.0);
        CHECK_INT(bits, 8);
        free(back);
    }
    /* RGB of 3 colours: a 4-entry table, lossless; a single pixel. */
    {
        enum { W = 37, H = 23 };
        static unsigned char px[W * H * 3];
        static const unsigned char three[9] = {255, 0, 0, 0, 128, 0, 10, 20, 30};
        for (int i = 0; i < W * H; i++)
            memcpy(px + 3 * i, three + 3 * (i % 7 % 3), 3);
        CHECK(round_trip(px, W, H, 3, 8, &bits, &back, &bb) == 0.0);
        CHECK_INT(bits, 2);
        free(back);
        CHECK(round_trip(px, 1, 1, 3, 8, &bits, &back, &bb) == 0.0);
        free(back);
    }
    /* A screenshot's colours (a few thousand, exact histogram) and a
     * photograph's (noise over gradients: binned), 1200 x 700 so the
     * LZW dictionary fills and is cleared many times: as close to the
     * original as libvips's GIF (within a tenth), a 256-entry table. */
    for (int kind = 0; kind < 2; kind++) {
        enum { W = 1200, H = 700 };
        unsigned char *px = malloc((size_t)W * H * 3);
        double e;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                unsigned char *p = px + 3 * ((size_t)y * W + x);
                if (kind == 0) { /* 40 x 40 colours, in blocks */
                    p[0] = (unsigned char)(x / 30 * 6);
                    p[1] = (unsigned char)(y / 18 * 6);
                    p[2] = 200;
                } else {
                    p[0] = (unsigned char)(x * 200 / W + rnd(9));
                    p[1] = (unsigned char)(y * 200 / H + rnd(9));
                    p[2] = (unsigned char)((x + y) % 256 / 2 + rnd(9));
                }
            }
        e = round_trip(px, W, H, 3, 8, &bits, &back, &bb);
        CHECK(e >= 0 && e <= libvips_error(px, W, H, 3) * 1.1);
        CHECK_INT(bits, 8);
        free(back);
        free(px);
    }
    /* Alpha: under 128 transparent (entry 0), the rest opaque; grey +
     * alpha too. */
    {
        enum { W = 16, H = 16 };
        static unsigned char rgba[W * H * 4], ga[W * H * 2];
        int clear = 0, wrong = 0;
        for (int i = 0; i < W * H; i++) {
            rgba[4 * i] = (unsigned char)(i % 5 * 50);
            rgba[4 * i + 1] = 100;
            rgba[4 * i + 2] = (unsigned char)(i % 3 * 100);
            rgba[4 * i + 3] = (unsigned char)(i * 7 % 256);
            ga[2 * i] = (unsigned char)(i % 11 * 20);
            ga[2 * i + 1] = rgba[4 * i + 3];
        }
        CHECK(round_trip(rgba, W, H, 4, 8, &bits, &back, &bb) >= 0);
        CHECK_INT(bb, 4);
        for (int i = 0; back && bb == 4 && i < W * H; i++) {
            int opaque = rgba[4 * i + 3] >= 128;
            clear += !opaque;
            if (back[4 * i + 3] != (opaque ? 255 : 0) || (opaque && memcmp(back + 4 * i, rgba + 4 * i, 3) != 0))
                wrong++;
        }
        CHECK(clear > 0);
        CHECK_INT(wrong, 0);
        free(back);
        CHECK(round_trip(ga, W, H, 2, 8, &bits, &back, &bb) >= 0);
        wrong = 0;
        for (int i = 0; back && bb == 4 && i < W * H; i++)
            if (back[4 * i + 3] != (ga[2 * i + 1] >= 128 ? 255 : 0) ||
                (ga[2 * i + 1] >= 128 && back[4 * i] != ga[2 * i]))
                wrong++;
        CHECK_INT(bb, 4);
        CHECK_INT(wrong, 0);
        free(back);
    }
    /* bitdepth 2: at most 4 entries, the transparent one among them. */
    {
        enum { W = 40, H = 30 };
        static unsigned char px[W * H * 4];
        for (int i = 0; i < W * H * 4; i++)
            px[i] = (unsigned char)rnd(256);
        CHECK(round_trip(px, W, H, 3, 2, &bits, &back, &bb) >= 0);
        CHECK_INT(bits, 2);
        free(back);
        CHECK(round_trip(px, W, H, 4, 2, &bits, &back, &bb) >= 0);
        CHECK_INT(bits, 2);
        free(back);
    }
    {
        unsigned char px[3] = {1, 2, 3}, *out;
        size_t len;
        CHECK_INT(gdl_gif_encode(px, 70000, 1, 3, 1, 8, &out, &len), -1);
        CHECK_INT(gdl_gif_encode(px, 1, 1, 5, 1, 8, &out, &len), -1);
        CHECK_INT(gdl_gif_encode(px, 1, 1, 3, 0, 8, &out, &len), -1);
    }
    vips_shutdown();
    UNIT_END();
}
