/*
 * test_gif.c: gdl_gif_nearest (runtime/modules/gdl_gif.c) against a
 * brute-force search over the whole palette, for random and clustered
 * palettes, RGB and grey pixels, ties included; and gdl_gif_encode's
 * output is a GIF of the right size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/gdl_gif.h"
#include "unit.h"

static unsigned seed = 4242;

static unsigned rnd(unsigned n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
}

/* The lowest index at the smallest squared distance. */
static int brute(const unsigned char *pal, int colours, const unsigned char *px, int bands)
{
    int best = -1, bestd = 1 << 30;

    for (int e = 0; e < colours; e++) {
        int d = 0;
        for (int k = 0; k < 3; k++) {
            int v = px[bands == 3 ? k : 0] - pal[3 * e + k];
            d += v * v;
        }
        if (d < bestd) {
            bestd = d;
            best = e;
        }
    }
    return best;
}

static void check_palette(const unsigned char *pal, int colours, int bands)
{
    enum { N = 20000 };
    static unsigned char px[N * 3], idx[N];
    int wrong = 0;

    for (int i = 0; i < N * bands; i++)
        px[i] = (unsigned char)rnd(256);
    memcpy(px, pal, 3); /* exact palette colours too */
    CHECK_INT(gdl_gif_nearest(pal, colours, px, N, bands, idx), 0);
    for (int i = 0; i < N; i++)
        if (idx[i] != brute(pal, colours, px + i * bands, bands))
            wrong++;
    CHECK_INT(wrong, 0);
}

int main(void)
{
    unsigned char pal[256 * 3];

    /* Random palettes of every size class. */
    for (int colours = 1; colours <= 255; colours = colours * 3 + 1) {
        for (int i = 0; i < colours * 3; i++)
            pal[i] = (unsigned char)rnd(256);
        check_palette(pal, colours, 3);
        check_palette(pal, colours, 1);
    }
    /* Clustered (a photo's palette: many close colours), with duplicate
     * entries: ties go to the lowest index. */
    for (int i = 0; i < 255; i++) {
        pal[3 * i] = (unsigned char)(100 + rnd(20));
        pal[3 * i + 1] = (unsigned char)(120 + rnd(20));
        pal[3 * i + 2] = (unsigned char)(80 + rnd(20));
    }
    memcpy(pal + 3 * 200, pal + 3 * 10, 3);
    check_palette(pal, 255, 3);
    /* A grey ramp, grey pixels. */
    for (int i = 0; i < 16; i++)
        pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = (unsigned char)(i * 17);
    check_palette(pal, 16, 1);
    CHECK_INT(gdl_gif_nearest(pal, 0, pal, 1, 3, pal), -1);

    /* A whole GIF: header, logical screen size. */
    {
        enum { W = 37, H = 23 };
        static unsigned char px[W * H * 3];
        unsigned char *out;
        size_t len;
        for (int i = 0; i < W * H * 3; i++)
            px[i] = (unsigned char)(i % 97 + rnd(5));
        CHECK_INT(gdl_gif_encode(px, W, H, 3, 1, 8, &out, &len), 0);
        CHECK(len > 13 && memcmp(out, "GIF89a", 6) == 0 && out[6] == W && out[7] == 0 && out[8] == H);
        CHECK(out[len - 1] == 0x3b); /* the trailer */
        free(out);
        CHECK_INT(gdl_gif_encode(px, W, H, 1, 10, 2, &out, &len), 0);
        CHECK(len > 13 && (out[10] & 7) == 1); /* bitdepth 2: a 4-entry global table */
        free(out);
        CHECK_INT(gdl_gif_encode(px, W, H, 4, 1, 8, &out, &len), -1); /* alpha: left to libvips */
        CHECK_INT(gdl_gif_encode(px, 70000, 1, 3, 1, 8, &out, &len), -1);
    }
    UNIT_END();
}
