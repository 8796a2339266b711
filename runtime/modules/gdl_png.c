/*
 * gdl_png.c: decodes the common PNGs (8 bits per sample, grey, grey +
 * alpha, RGB or RGBA, not interlaced) with libdeflate, for gdlua.image.
 *
 * Why: inflating the pixel data is most of a PNG conversion, and zlib's
 * streaming inflate (libpng, under libvips's pngload) is about twice as
 * slow as libdeflate's whole-buffer one: 4.3 against 2.2 ms for the
 * 0.55 MB photo of tests/bench/bench_image, 17 against 9.5 ms at 2.5 MB.
 * A gearman workload is one buffer anyway.
 *
 * It decodes only what it can decode exactly as libvips 8.14 does (same
 * pixels, same resolution): any other layout, any chunk that libvips
 * would turn into pixels or metadata (tRNS, PLTE, iCCP, eXIf, text,
 * bKGD, ...) and any damage (bad CRC, short or overlong data, a bad row
 * filter) make it return -1, and the caller hands the file to libvips,
 * which reads everything and words the error. Uses libdeflate only.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "gdl_png.h"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Chunks libvips's pngload reads past without a trace in the image. */
static bool ignored_by_vips(const unsigned char *type)
{
    static const char *const names[] = {"sRGB", "gAMA", "cHRM", "tIME", "sBIT"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (memcmp(type, names[i], 4) == 0)
            return true;
    return false;
}

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Undoes the row filters of raw (height rows of a filter byte and stride
 * bytes) in place, leaving height x stride pixel bytes at its start.
 * Row r is written r + 1 bytes before where it is read, so each byte is
 * read before it is overwritten, and the row above is already final. */
static int unfilter(unsigned char *raw, size_t stride, int height, int bpp)
{
    const unsigned char *prev = NULL;

    for (int r = 0; r < height; r++) {
        const unsigned char *src = raw + (size_t)r * (stride + 1) + 1;
        unsigned char *dst = raw + (size_t)r * stride;
        int type = src[-1];
        size_t i;

        if (type == 2 && prev == NULL)
            type = 0; /* the first row's "row above" is zeros */
        switch (type) {
        case 0:
            memmove(dst, src, stride);
            break;
        case 1:
            for (i = 0; i < (size_t)bpp; i++)
                dst[i] = src[i];
            for (; i < stride; i++)
                dst[i] = (unsigned char)(src[i] + dst[i - bpp]);
            break;
        case 2:
            for (i = 0; i < stride; i++)
                dst[i] = (unsigned char)(src[i] + prev[i]);
            break;
        case 3:
            for (i = 0; i < (size_t)bpp; i++)
                dst[i] = (unsigned char)(src[i] + (prev ? prev[i] : 0) / 2);
            for (; i < stride; i++)
                dst[i] = (unsigned char)(src[i] + (dst[i - bpp] + (prev ? prev[i] : 0)) / 2);
            break;
        case 4:
            for (i = 0; i < (size_t)bpp; i++)
                dst[i] = (unsigned char)(src[i] + (prev ? prev[i] : 0));
            for (; i < stride; i++)
                dst[i] = (unsigned char)(src[i] + (prev ? paeth(dst[i - bpp], prev[i], prev[i - bpp]) : dst[i - bpp]));
            break;
        default:
            return -1;
        }
        prev = dst;
    }
    return 0;
}

int gdl_png_decode(const void *data, size_t len, double max_pixels, gdl_png_info_t *info, unsigned char **pixels)
{
    static const int bands_of[7] = {1, 0, 3, 0, 2, 0, 4};
    const unsigned char *p = data, *end = p + len, *idat = NULL;
    unsigned char *joined = NULL, *raw = NULL;
    size_t idat_len = 0, stride, raw_len, got;
    int idat_state = 0, idat_chunks = 0; /* state 0: none yet, 1: in the run, 2: after it */
    bool have_header = false, have_end = false, have_phys = false;
    static struct libdeflate_decompressor *d;
    enum libdeflate_result rc;

    *pixels = NULL;
    info->xres = info->yres = 2.834; /* libvips's default: 72 dpi */
    if (len < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) != 0)
        return -1;
    for (p += 8; !have_end;) {
        const unsigned char *type, *body;
        uint32_t n;

        if (end - p < 12 || (n = be32(p)) > 0x7fffffffu || (size_t)(end - p) - 12 < n)
            return -1;
        type = p + 4;
        body = p + 8;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* lets a fuzzer past the CRCs */
        if (libdeflate_crc32(0, type, n + 4) != be32(body + n))
            return -1;
#endif
        p = body + n + 4;
        if (!have_header) {
            int depth, colour;
            if (memcmp(type, "IHDR", 4) != 0 || n != 13)
                return -1;
            info->width = (int)be32(body);
            info->height = (int)be32(body + 4);
            depth = body[8];
            colour = body[9];
            if (info->width <= 0 || info->height <= 0 || depth != 8 || colour > 6 || bands_of[colour] == 0 ||
                body[10] != 0 || body[11] != 0 || body[12] != 0)
                return -1;
            if ((double)info->width * info->height > max_pixels)
                return -1;
            info->bands = bands_of[colour];
            have_header = true;
            continue;
        }
        if (idat_state == 1 && memcmp(type, "IDAT", 4) != 0)
            idat_state = 2;
        if (memcmp(type, "IDAT", 4) == 0) {
            if (idat_state == 2)
                return -1;
            if (idat_state == 0)
                idat = body;
            idat_len += n;
            idat_chunks++;
            idat_state = 1;
        } else if (memcmp(type, "IEND", 4) == 0) {
            have_end = true;
        } else if (memcmp(type, "pHYs", 4) == 0 && n == 9) {
            double x = be32(body), y = be32(body + 4);

            /* libpng keeps the first pHYs before the data and ignores a
             * late or second one: libvips's to read as it does. */
            if (idat_state != 0 || have_phys)
                return -1;
            have_phys = true;
            info->xres = body[8] == 1 ? x / 1000.0 : x;
            info->yres = body[8] == 1 ? y / 1000.0 : y;
        } else if (!ignored_by_vips(type)) {
            return -1;
        }
    }
    if (idat == NULL)
        return -1;
    stride = (size_t)info->width * info->bands;
    raw_len = (stride + 1) * (size_t)info->height;
    /* Several IDAT chunks (one after another): their data, without the
     * chunk framing between. */
    if (idat_chunks > 1) {
        const unsigned char *q = idat - 8;
        size_t at = 0;
        if ((joined = malloc(idat_len)) == NULL)
            return -1;
        while (at < idat_len) {
            uint32_t n = be32(q);
            memcpy(joined + at, q + 8, n);
            at += n;
            q += 12 + n;
        }
        idat = joined;
    }
    /* One decompressor per process (it holds no state between calls),
     * not one a conversion. */
    if (d == NULL)
        d = libdeflate_alloc_decompressor();
    raw = d ? malloc(raw_len) : NULL;
    rc = raw ? libdeflate_zlib_decompress(d, idat, idat_len, raw, raw_len, &got) : LIBDEFLATE_BAD_DATA;
    free(joined);
    if (rc != LIBDEFLATE_SUCCESS || got != raw_len || unfilter(raw, stride, info->height, info->bands) != 0) {
        free(raw);
        return -1;
    }
    *pixels = raw;
    return 0;
}
