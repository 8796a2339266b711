/*
 * gdl_png.c: decodes the PNGs libvips's pngload would read into 8-bit
 * pixels (grey, palette, RGB, with or without alpha or a tRNS
 * transparency; 1, 2, 4 or 8 bits, not interlaced) with libdeflate, for
 * gdlua.image.
 *
 * Why: inflating the pixel data is most of a PNG conversion, and zlib's
 * streaming inflate (libpng, under libvips's pngload) is about twice as
 * slow as libdeflate's whole-buffer one: 4.3 against 2.2 ms for the
 * 0.55 MB photo of tests/bench/bench_image, 17 against 9.5 ms at 2.5 MB.
 * A gearman workload is one buffer anyway.
 *
 * It decodes only into the pixels libvips 8.14 makes (libpng's
 * transforms as pngload asks them: a palette expanded to RGB, tRNS to an
 * alpha band, grey below 8 bits scaled to 0..255) and the resolution it
 * reports. Chunks that only carry metadata (iCCP, text, bKGD, eXIf, ...)
 * and unknown ancillary ones are passed over: the caller reads the
 * metadata from libvips's own header load. Any other layout (16 bits,
 * interlaced), an unknown critical chunk and any damage (bad CRC, short
 * or overlong data, a bad row filter, a palette index past the palette)
 * make it return -1, and the caller hands the file to libvips, which
 * reads everything and words the error. Uses libdeflate only.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "gdl_png.h"

/* What the chunks before the data say about the pixels. */
typedef struct {
    unsigned char palette[256 * 3];
    unsigned char alpha[256]; /* per palette entry, from tRNS */
    int entries;              /* palette entries; 0: no PLTE; -1: PLTE in RGB (ignored) */
    bool has_trns;
    int trns[3]; /* the grey or RGB colour tRNS makes transparent */
} png_extra_t;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Whether the chunk type is one of the space-separated names. */
static bool is_one_of(const unsigned char *type, const char *names)
{
    for (const char *n = names; *n; n += n[4] ? 5 : 4)
        if (memcmp(type, n, 4) == 0)
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

/* Unpacks row (w samples of depth 1, 2 or 4 bits) into w bytes. */
static void unpack(const unsigned char *row, int w, int depth, unsigned char *out)
{
    int per = 8 / depth, mask = (1 << depth) - 1;

    for (int x = 0; x < w; x++)
        out[x] = (unsigned char)(row[x / per] >> (8 - depth * (x % per + 1)) & mask);
}

/* The filtered rows (raw: stride bytes each, height of them, already
 * unfiltered) as 8-bit pixels of info->bands, into a new buffer: palette
 * entries and tRNS alpha looked up, grey scaled to 0..255. -1: an index
 * past the palette (libpng's to judge). */
static int expand(const unsigned char *raw, size_t stride, int depth, int colour, const png_extra_t *x,
                  gdl_png_info_t *info, unsigned char **pixels)
{
    const int w = info->width, bands = info->bands, scale = 255 / ((1 << depth) - 1);
    unsigned char *out = malloc((size_t)w * info->height * bands), *samples = depth < 8 ? malloc((size_t)w) : NULL;

    if (out == NULL || (depth < 8 && samples == NULL)) {
        free(out);
        free(samples);
        return -1;
    }
    for (int y = 0; y < info->height; y++) {
        const unsigned char *row = raw + (size_t)y * stride, *s = row;
        unsigned char *q = out + (size_t)y * w * bands;

        if (depth < 8) {
            unpack(row, w, depth, samples);
            s = samples;
        }
        for (int i = 0; i < w; i++, q += bands)
            if (colour == 3) {
                if (s[i] >= x->entries)
                    goto bad;
                memcpy(q, x->palette + 3 * s[i], 3);
                if (bands == 4)
                    q[3] = x->alpha[s[i]];
            } else if (colour == 0) {
                q[0] = (unsigned char)(s[i] * scale);
                if (bands == 2)
                    q[1] = x->has_trns && s[i] == x->trns[0] ? 0 : 255;
            } else { /* RGB, tRNS */
                memcpy(q, s + 3 * i, 3);
                q[3] = s[3 * i] == x->trns[0] && s[3 * i + 1] == x->trns[1] && s[3 * i + 2] == x->trns[2] ? 0 : 255;
            }
    }
    free(samples);
    *pixels = out;
    return 0;
bad:
    free(samples);
    free(out);
    return -1;
}

int gdl_png_decode(const void *data, size_t len, double max_pixels, gdl_png_info_t *info, unsigned char **pixels)
{
    static const int samples_of[7] = {1, 0, 3, 1, 2, 0, 4};
    const unsigned char *p = data, *end = p + len, *idat = NULL;
    unsigned char *joined = NULL, *raw = NULL;
    size_t idat_len = 0, stride, raw_len, got;
    int idat_state = 0, idat_chunks = 0; /* state 0: none yet, 1: in the run, 2: after it */
    int depth = 0, colour = 0, rc;
    bool have_header = false, have_end = false, have_phys = false, plain = true;
    png_extra_t x = {.entries = 0};
    static struct libdeflate_decompressor *d;
    enum libdeflate_result zrc;

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
            if (memcmp(type, "IHDR", 4) != 0 || n != 13)
                return -1;
            info->width = (int)be32(body);
            info->height = (int)be32(body + 4);
            depth = body[8];
            colour = body[9];
            /* 8 bits, or 1, 2, 4 for grey and palette; not interlaced. */
            if (info->width <= 0 || info->height <= 0 || colour > 6 || samples_of[colour] == 0 ||
                !(depth == 8 || ((colour == 0 || colour == 3) && (depth == 1 || depth == 2 || depth == 4))) ||
                body[10] != 0 || body[11] != 0 || body[12] != 0)
                return -1;
            if ((double)info->width * info->height > max_pixels)
                return -1;
            have_header = true;
            continue;
        }
        if (idat_state == 1 && memcmp(type, "IDAT", 4) != 0)
            idat_state = 2;
        if (memcmp(type, "IDAT", 4) == 0) {
            if (idat_state == 2 || (colour == 3 && x.entries == 0))
                return -1;
            if (idat_state == 0)
                idat = body;
            idat_len += n;
            idat_chunks++;
            idat_state = 1;
        } else if (memcmp(type, "IEND", 4) == 0) {
            have_end = true;
        } else if (idat_state != 0) {
            /* After the data: libvips never reads past it. */
        } else if (memcmp(type, "PLTE", 4) == 0) {
            /* In RGB a suggestion only; in grey an error. */
            if (colour == 0 || colour == 4 || x.entries != 0 || n == 0 || n % 3 != 0 || n > 768 ||
                (colour == 3 && n / 3 > 1u << depth))
                return -1;
            x.entries = colour == 3 ? (int)n / 3 : -1;
            memcpy(x.palette, body, n);
            memset(x.alpha, 255, sizeof(x.alpha));
        } else if (memcmp(type, "tRNS", 4) == 0) {
            int max = (1 << depth) - 1;
            if (x.has_trns || colour == 4 || colour == 6)
                return -1;
            if (colour == 3) {
                if (x.entries <= 0 || n > (uint32_t)x.entries)
                    return -1;
                memcpy(x.alpha, body, n);
            } else {
                if (n != (colour == 0 ? 2u : 6u))
                    return -1;
                for (uint32_t i = 0; i < n / 2; i++)
                    if ((x.trns[i] = (int)(body[2 * i] << 8 | body[2 * i + 1])) > max)
                        return -1; /* an out-of-range key: libpng's to judge */
            }
            x.has_trns = true;
        } else if (memcmp(type, "pHYs", 4) == 0) {
            double xr, yr;

            /* libpng keeps the first pHYs and ignores a second one. The
             * length first: the body may be the file's last bytes. */
            if (n != 9 || have_phys)
                return -1;
            have_phys = true;
            xr = be32(body);
            yr = be32(body + 4);
            info->xres = body[8] == 1 ? xr / 1000.0 : xr;
            info->yres = body[8] == 1 ? yr / 1000.0 : yr;
        } else if (is_one_of(type, "gAMA sRGB cHRM sBIT tIME")) {
            /* libvips reads past these without a trace in the image. */
        } else if (type[0] & 0x20) {
            plain = false;
            /* Ancillary: metadata libvips reads itself (iCCP, tEXt, zTXt,
             * iTXt, bKGD, eXIf, ...) or a chunk it ignores (gAMA, sRGB,
             * cHRM, sBIT, tIME, unknown ones). */
        } else {
            return -1; /* an unknown critical chunk: libpng refuses the file */
        }
    }
    if (idat == NULL)
        return -1;
    info->plain = plain && colour != 3 && depth == 8 && !x.has_trns;
    /* libvips's bands: a palette is RGB, tRNS adds alpha. */
    info->bands = colour == 3 ? 3 : samples_of[colour];
    if (x.has_trns)
        info->bands++;
    stride = ((size_t)info->width * samples_of[colour] * depth + 7) / 8;
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
    zrc = raw ? libdeflate_zlib_decompress(d, idat, idat_len, raw, raw_len, &got) : LIBDEFLATE_BAD_DATA;
    free(joined);
    rc = zrc == LIBDEFLATE_SUCCESS && got == raw_len
             ? unfilter(raw, stride, info->height, depth < 8 ? 1 : samples_of[colour])
             : -1;
    /* 8-bit grey, grey + alpha, RGB and RGBA are libvips's pixels as
     * they are; the rest are looked up or scaled into a new buffer. */
    if (rc == 0 && (colour == 3 || depth < 8 || x.has_trns)) {
        rc = expand(raw, stride, depth, colour, &x, info, pixels);
        free(raw);
        raw = NULL;
    }
    if (rc != 0) {
        free(raw);
        return -1;
    }
    if (raw)
        *pixels = raw;
    return 0;
}
