/*
 * test_png.c: gdl_png_decode (runtime/modules/gdl_png.c) against PNGs
 * built here from known pixels: every colour type it takes, every row
 * filter (and a mix), one or many IDAT chunks, pHYs, chunks it passes
 * over, a tRNS key; and the files it must leave to libvips (-1): other
 * layouts, an unknown critical chunk, damage of every kind. Palettes,
 * low bit depths and metadata against libvips's own pixels: test_image.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "modules/gdl_png.h"
#include "unit.h"

#define W 13
#define H 7

typedef struct {
    unsigned char b[1 << 16];
    size_t n;
} buf_t;

static void put32(buf_t *o, uint32_t v)
{
    o->b[o->n++] = v >> 24;
    o->b[o->n++] = v >> 16;
    o->b[o->n++] = v >> 8;
    o->b[o->n++] = v;
}

static void chunk(buf_t *o, const char *type, const void *data, size_t len)
{
    put32(o, (uint32_t)len);
    memcpy(o->b + o->n, type, 4);
    memcpy(o->b + o->n + 4, data, len);
    o->n += 4 + len;
    put32(o, libdeflate_crc32(0, o->b + o->n - len - 4, len + 4));
}

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Filters px (H rows of W x bands) with `filter` (0..4; 5: row r gets
 * r % 5) the way an encoder does. */
static size_t filter_rows(const unsigned char *px, int bands, int filter, unsigned char *out)
{
    size_t stride = (size_t)W * bands, n = 0;

    for (int r = 0; r < H; r++) {
        const unsigned char *row = px + r * stride, *up = r ? row - stride : NULL;
        int f = filter == 5 ? r % 5 : filter;

        out[n++] = (unsigned char)f;
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)bands ? row[i - bands] : 0, b = up ? up[i] : 0,
                c = up && i >= (size_t)bands ? up[i - bands] : 0;
            int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : paeth(a, b, c);
            out[n++] = (unsigned char)(row[i] - pred);
        }
    }
    return n;
}

/* A PNG of px; idat_parts IDAT chunks; extra: a chunk inserted before
 * the first IDAT (NULL: none). */
static void make_png(buf_t *o, const unsigned char *px, int colour, int bands, int filter, int idat_parts,
                     const char *extra, const void *extra_data, size_t extra_len)
{
    unsigned char filtered[W * H * 4 + H], z[4096], ihdr[13] = {0};
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    size_t fl = filter_rows(px, bands, filter, filtered), zl = libdeflate_zlib_compress(c, filtered, fl, z, sizeof(z));
    buf_t tmp = {{0}, 0};

    libdeflate_free_compressor(c);
    o->n = 0;
    memcpy(o->b, "\x89PNG\r\n\x1a\n", 8);
    o->n = 8;
    put32(&tmp, W);
    put32(&tmp, H);
    memcpy(ihdr, tmp.b, 8);
    ihdr[8] = 8;
    ihdr[9] = (unsigned char)colour;
    chunk(o, "IHDR", ihdr, 13);
    if (extra)
        chunk(o, extra, extra_data, extra_len);
    for (int i = 0; i < idat_parts; i++) {
        size_t from = zl * i / idat_parts, to = zl * (i + 1) / idat_parts;
        chunk(o, "IDAT", z + from, to - from);
    }
    chunk(o, "IEND", "", 0);
}

/* A PNG whose IDAT holds len bytes of raw (filter bytes and rows) as they are. */
static void raw_png(buf_t *o, const unsigned char *ihdr, const unsigned char *raw, size_t len)
{
    unsigned char z[4096];
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    size_t zl = libdeflate_zlib_compress(c, raw, len, z, sizeof(z));

    libdeflate_free_compressor(c);
    memcpy(o->b, "\x89PNG\r\n\x1a\n", 8);
    o->n = 8;
    chunk(o, "IHDR", ihdr, 13);
    chunk(o, "IDAT", z, zl);
    chunk(o, "IEND", "", 0);
}

static int decode(const buf_t *o, gdl_png_info_t *info, unsigned char **px)
{
    return gdl_png_decode(o->b, o->n, 1e9, info, px);
}

int main(void)
{
    static const int colours[] = {0, 2, 4, 6}, bands_of[] = {1, 3, 2, 4};
    unsigned char px[W * H * 4], *got;
    unsigned seed = 99;
    gdl_png_info_t info;
    buf_t o;

    for (size_t i = 0; i < sizeof(px); i++) {
        seed = seed * 1103515245u + 12345u;
        px[i] = (unsigned char)(seed >> 16);
    }

    /* Every colour type x every filter x one or three IDAT chunks. */
    for (int ci = 0; ci < 4; ci++)
        for (int f = 0; f <= 5; f++)
            for (int parts = 1; parts <= 3; parts += 2) {
                make_png(&o, px, colours[ci], bands_of[ci], f, parts, NULL, NULL, 0);
                CHECK_INT(decode(&o, &info, &got), 0);
                CHECK_INT(info.width, W);
                CHECK_INT(info.height, H);
                CHECK_INT(info.bands, bands_of[ci]);
                CHECK(got != NULL && memcmp(got, px, (size_t)W * H * bands_of[ci]) == 0);
                CHECK(info.xres == 2.834 && info.yres == 2.834); /* libvips's 72 dpi */
                free(got);
            }

    /* pHYs in pixels per metre: pixels per mm, as libvips reports it. */
    {
        unsigned char phys[9] = {0, 0, 0x0e, 0xc4, 0, 0, 0x0b, 0x12, 1}; /* 3780 x 2834 per metre */
        make_png(&o, px, 2, 3, 1, 1, "pHYs", phys, 9);
        CHECK_INT(decode(&o, &info, &got), 0);
        CHECK(info.xres == 3.78 && info.yres == 2.834);
        free(got);
    }

    /* Chunks libvips ignores are skipped; metadata chunks are passed over
     * but the image is no longer plain (libvips's header has more); a
     * tRNS key adds alpha; an unknown critical chunk is libpng's to
     * refuse. */
    make_png(&o, px, 2, 3, 4, 1, "gAMA", "\0\1\x86\xa0", 4);
    CHECK_INT(decode(&o, &info, &got), 0);
    CHECK(info.plain);
    free(got);
    make_png(&o, px, 2, 3, 0, 1, "tEXt", "a\0b", 3);
    CHECK_INT(decode(&o, &info, &got), 0);
    CHECK(!info.plain && memcmp(got, px, (size_t)W * H * 3) == 0);
    free(got);
    make_png(&o, px, 2, 3, 0, 1, "bKGD", "\0\1\0\2\0\3", 6);
    CHECK_INT(decode(&o, &info, &got), 0);
    CHECK(!info.plain);
    free(got);
    {
        unsigned char key[6] = {0, px[0], 0, px[1], 0, px[2]};
        make_png(&o, px, 2, 3, 0, 1, "tRNS", key, 6);
        CHECK_INT(decode(&o, &info, &got), 0);
        CHECK_INT(info.bands, 4);
        CHECK(!info.plain && got[3] == 0 && memcmp(got, px, 3) == 0);
        free(got);
    }
    make_png(&o, px, 2, 3, 0, 1, "tRNS", "\1\0\0\0\0\0", 6); /* a key past 8 bits */
    CHECK_INT(decode(&o, &info, &got), -1);
    CHECK(got == NULL);
    make_png(&o, px, 6, 4, 0, 1, "tRNS", "\0\1\0\2\0\3", 6); /* tRNS with alpha */
    CHECK_INT(decode(&o, &info, &got), -1);
    make_png(&o, px, 2, 3, 0, 1, "CRIT", "x", 1);
    CHECK_INT(decode(&o, &info, &got), -1);

    /* Other layouts: a palette without PLTE, 16 bits, interlaced (the
     * palettes and low bit depths libvips reads: test_image.c). */
    make_png(&o, px, 3, 1, 0, 1, NULL, NULL, 0);
    CHECK_INT(decode(&o, &info, &got), -1);
    make_png(&o, px, 2, 3, 0, 1, NULL, NULL, 0);
    o.b[8 + 8 + 8] = 16;
    CHECK_INT(decode(&o, &info, &got), -1); /* and the CRC no longer matches either */
    {
        unsigned char ihdr[13] = {0, 0, 0, W, 0, 0, 0, H, 8, 2, 0, 0, 1};
        buf_t p = {{0}, 0};
        make_png(&o, px, 2, 3, 0, 1, NULL, NULL, 0);
        memcpy(p.b, o.b, 8);
        p.n = 8;
        chunk(&p, "IHDR", ihdr, 13);
        memcpy(p.b + p.n, o.b + 33, o.n - 33);
        p.n += o.n - 33;
        CHECK_INT(decode(&p, &info, &got), -1);
    }

    /* Damage: a bad CRC, a flipped data byte, truncation, a bad filter
     * byte, too many pixels for max_pixels. */
    make_png(&o, px, 6, 4, 5, 2, NULL, NULL, 0);
    CHECK_INT(decode(&o, &info, &got), 0);
    free(got);
    o.b[o.n - 1] ^= 1; /* IEND's CRC */
    CHECK_INT(decode(&o, &info, &got), -1);
    make_png(&o, px, 6, 4, 5, 2, NULL, NULL, 0);
    o.b[50] ^= 0x40;
    CHECK_INT(decode(&o, &info, &got), -1);
    for (size_t cut = 0; cut < o.n; cut += 7) {
        make_png(&o, px, 6, 4, 5, 2, NULL, NULL, 0);
        CHECK_INT(gdl_png_decode(o.b, cut, 1e9, &info, &got), -1);
    }
    {
        unsigned char raw[(W * 3 + 1) * H], ihdr[13] = {0, 0, 0, W, 0, 0, 0, H, 8, 2, 0, 0, 0};
        filter_rows(px, 3, 0, raw);
        raw[(W * 3 + 1) * 3] = 5; /* row 3: no such filter */
        raw_png(&o, ihdr, raw, sizeof(raw));
        CHECK_INT(decode(&o, &info, &got), -1);
        raw[(W * 3 + 1) * 3] = 0;
        raw_png(&o, ihdr, raw, sizeof(raw) - 1); /* one byte short */
        CHECK_INT(decode(&o, &info, &got), -1);
    }
    {
        /* A chunk whose body is shorter than its kind's, as the file's
         * last bytes (fuzz.png found pHYs read 8 bytes of a 0-byte body):
         * refused without reading past the end (the copy is exactly the
         * file's size, so ASan sees a read beyond). */
        unsigned char ihdr[13] = {0, 0, 0, W, 0, 0, 0, H, 8, 2, 0, 0, 0}, *exact;
        buf_t p = {{0}, 0};
        memcpy(p.b, "\x89PNG\r\n\x1a\n", 8);
        p.n = 8;
        chunk(&p, "IHDR", ihdr, 13);
        chunk(&p, "pHYs", "", 0);
        exact = malloc(p.n);
        memcpy(exact, p.b, p.n);
        CHECK_INT(gdl_png_decode(exact, p.n, 1e9, &info, &got), -1);
        free(exact);
    }
    make_png(&o, px, 2, 3, 0, 1, NULL, NULL, 0);
    CHECK_INT(gdl_png_decode(o.b, o.n, W * H - 1, &info, &got), -1);
    CHECK_INT(gdl_png_decode(o.b, o.n, W * H, &info, &got), 0);
    free(got);
    UNIT_END();
}
