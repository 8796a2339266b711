/*
 * test_image.c: every kind of PNG a corpus brings, against libvips's own
 * output: RGB, RGBA, grey, grey + alpha, palettes (8 and 2 bits, one
 * with tRNS alpha), grey of 1 and 4 bits, grey and RGB with a tRNS key,
 * 16 bits, interlaced, an ICC profile, XMP, a text chunk. For each:
 *   - gdl_png_decode takes every 8-bit non-interlaced kind and makes
 *     libvips's pngload pixels, byte for byte (and leaves 16 bits and
 *     interlaced to libvips);
 *   - gdl_image_convert (image.convert at its defaults, fast path or
 *     libvips) writes the bytes libvips writes for JPEG (alpha flattened
 *     on white; the profile and XMP kept), PNG and WebP;
 *   - its GIF reads back at the input's size, with the same transparent
 *     pixels as libvips's GIF (alpha under 128) and opaque ones within a
 *     tenth more error than libvips's GIF (effort 1, undithered).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <vips/vips.h>

#include "modules/gdl_image.h"
#include "modules/gdl_png.h"
#include "unit.h"

#define W 97
#define H 61

static unsigned seed = 7;

static unsigned rnd(unsigned n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
}

/* A photo-like RGBA picture: gradients, a flat disc, noise, alpha from
 * clear to opaque. */
static VipsImage *picture(void)
{
    static unsigned char px[W * H * 4];

    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            unsigned char *p = px + 4 * (y * W + x);
            int disc = (x - 60) * (x - 60) + (y - 30) * (y - 30) < 300;
            p[0] = (unsigned char)(disc ? 240 : x * 2 + rnd(6));
            p[1] = (unsigned char)(disc ? 200 : y * 3 + rnd(6));
            p[2] = (unsigned char)(disc ? 10 : (x + y) % 200 + rnd(6));
            p[3] = (unsigned char)(x < 10 ? 0 : x < 30 ? x * 8 : 255);
        }
    return vips_image_new_from_memory(px, sizeof(px), W, H, 4, VIPS_FORMAT_UCHAR);
}

static void *png_of(VipsImage *im, size_t *len, int palette, int bitdepth, int interlace)
{
    void *buf = NULL;

    if (vips_pngsave_buffer(im, &buf, len, "compression", 1, "palette", palette, "interlace", interlace,
                            bitdepth ? "bitdepth" : NULL, bitdepth, NULL) != 0) {
        fprintf(stderr, "test_image: pngsave: %s\n", vips_error_buffer());
        vips_error_clear();
    }
    return buf;
}

/* png with a chunk (type, body) inserted after IHDR; g_free() it. */
static void *with_chunk(const unsigned char *png, size_t *len, const char *type, const void *body, uint32_t n)
{
    unsigned char *o = g_malloc(*len + 12 + n);
    uint32_t crc;

    memcpy(o, png, 33);
    for (int i = 0; i < 4; i++)
        o[33 + i] = (unsigned char)(n >> (24 - 8 * i));
    memcpy(o + 37, type, 4);
    memcpy(o + 41, body, n);
    crc = libdeflate_crc32(0, o + 37, n + 4);
    for (int i = 0; i < 4; i++)
        o[41 + n + i] = (unsigned char)(crc >> (24 - 8 * i));
    memcpy(o + 45 + n, png + 33, *len - 33);
    *len += 12 + n;
    return o;
}

static int same(const void *a, size_t la, const void *b, size_t lb)
{
    return a && b && la == lb && memcmp(a, b, la) == 0;
}

/* The image read back by libvips as 8-bit RGBA (alpha 255 when none),
 * or NULL. */
static unsigned char *rgba_of(const void *data, size_t len)
{
    VipsImage *im = vips_image_new_from_buffer(data, len, "", NULL), *a = NULL, *b = NULL, *c = NULL;
    unsigned char *px = NULL;
    size_t n;

    if (im && vips_colourspace(im, &a, VIPS_INTERPRETATION_sRGB, NULL) == 0 &&
        (vips_image_hasalpha(a) ? vips_copy(a, &b, NULL) : vips_addalpha(a, &b, NULL)) == 0 &&
        vips_cast_uchar(b, &c, NULL) == 0 && c->Xsize == W && c->Ysize == H && c->Bands == 4)
        px = vips_image_write_to_memory(c, &n);
    vips_error_clear();
    if (im)
        g_object_unref(im);
    if (a)
        g_object_unref(a);
    if (b)
        g_object_unref(b);
    if (c)
        g_object_unref(c);
    return px;
}

/* Mean absolute RGB error of the opaque pixels of gif against orig. */
static double gif_error(const unsigned char *orig, const unsigned char *gif, int *transparent_mismatch,
                        const unsigned char *other)
{
    double sum = 0;
    int n = 0;

    for (int i = 0; i < W * H; i++) {
        if (other && (gif[4 * i + 3] == 0) != (other[4 * i + 3] == 0))
            (*transparent_mismatch)++;
        if (gif[4 * i + 3] == 0)
            continue;
        for (int k = 0; k < 3; k++)
            sum += abs(orig[4 * i + k] - gif[4 * i + k]);
        n++;
    }
    return n ? sum / (3.0 * n) : 0;
}

static void check_kind(const char *what, const unsigned char *png, size_t len)
{
    VipsImage *in = NULL, *flat = NULL;
    void *want = NULL, *got = NULL;
    size_t want_len = 0, got_len = 0, vlen;
    unsigned char *pixels = NULL, *vpixels = NULL;
    gdl_png_info_t info;
    char msg[256];
    int bad_before = unit_failures;

    if (vips_pngload_buffer((void *)png, len, &in, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", VIPS_FAIL_ON_TRUNCATED,
                            NULL) != 0) {
        fprintf(stderr, "test_image: %s: libvips cannot load it: %s\n", what, vips_error_buffer());
        unit_failures++;
        return;
    }
    /* The decoder: libvips's pixels, for every 8-bit non-interlaced kind. */
    {
        VipsImage *copy = NULL;
        int eight = in->BandFmt == VIPS_FORMAT_UCHAR && !vips_image_get_typeof(in, "interlaced");
        CHECK_INT(gdl_png_decode(png, len, 1e9, &info, &pixels), eight ? 0 : -1);
        if (eight && pixels && vips_pngload_buffer((void *)png, len, &copy, NULL) == 0) {
            vpixels = vips_image_write_to_memory(copy, &vlen);
            CHECK_INT(info.bands, copy->Bands);
            CHECK(vlen == (size_t)W * H * info.bands && memcmp(pixels, vpixels, vlen) == 0);
            CHECK(info.xres == copy->Xres && info.yres == copy->Yres);
            g_object_unref(copy);
            g_free(vpixels);
        }
        free(pixels);
    }
    /* JPEG: libvips's bytes (encode()'s flatten for alpha). */
    if (vips_image_hasalpha(in)) {
        double scale = in->Type == VIPS_INTERPRETATION_RGB16 || in->Type == VIPS_INTERPRETATION_GREY16 ? 257 : 1;
        VipsArrayDouble *bg = vips_array_double_newv(3, 255 * scale, 255 * scale, 255 * scale);
        vips_flatten(in, &flat, "background", bg, "max_alpha", 255 * scale, NULL);
        vips_area_unref(VIPS_AREA(bg));
    }
    vips_jpegsave_buffer(flat ? flat : in, &want, &want_len, "Q", 75, NULL);
    CHECK_INT(gdl_image_convert(png, len, "jpeg", &got, &got_len, msg, sizeof(msg)), 0);
    CHECK(same(got, got_len, want, want_len));
    g_free(want);
    g_free(got);
    if (flat)
        g_object_unref(flat);
    g_object_unref(in);
    /* PNG and WebP: libvips's bytes. */
    for (int f = 0; f < 2; f++) {
        want = got = NULL;
        vips_pngload_buffer((void *)png, len, &in, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
        if (f == 0)
            vips_pngsave_buffer(in, &want, &want_len, "compression", 6, NULL);
        else
            vips_webpsave_buffer(in, &want, &want_len, "Q", 75, NULL);
        g_object_unref(in);
        CHECK_INT(gdl_image_convert(png, len, f == 0 ? "png" : "webp", &got, &got_len, msg, sizeof(msg)), 0);
        CHECK(same(got, got_len, want, want_len));
        g_free(want);
        g_free(got);
    }
    /* GIF: the size, libvips's transparent pixels, its error or less. */
    {
        unsigned char *orig = rgba_of(png, len), *ours, *theirs = NULL;
        int mismatch = 0;
        want = got = NULL;
        vips_pngload_buffer((void *)png, len, &in, NULL);
        vips_gifsave_buffer(in, &want, &want_len, "effort", 1, "dither", 0.0, NULL);
        g_object_unref(in);
        CHECK_INT(gdl_image_convert(png, len, "gif", &got, &got_len, msg, sizeof(msg)), 0);
        ours = got ? rgba_of(got, got_len) : NULL;
        theirs = want ? rgba_of(want, want_len) : NULL;
        CHECK(orig && ours && theirs);
        if (orig && ours && theirs) {
            double e_ours = gif_error(orig, ours, &mismatch, theirs),
                   e_theirs = gif_error(orig, theirs, &mismatch, NULL);
            CHECK_INT(mismatch, 0);
            CHECK(e_ours <= e_theirs * 1.1 + 0.05);
            if (e_ours > e_theirs * 1.1 + 0.05)
                fprintf(stderr, "test_image: %s: GIF error %.3f, libvips's %.3f\n", what, e_ours, e_theirs);
        }
        g_free(orig);
        g_free(ours);
        g_free(theirs);
        g_free(want);
        g_free(got);
    }
    vips_error_clear();
    if (unit_failures > bad_before)
        fprintf(stderr, "test_image: %s: failed above\n", what);
}

int main(int argc, char **argv)
{
    VipsImage *rgba, *rgb = NULL, *grey = NULL, *alpha = NULL, *ga = NULL, *wide = NULL, *deep = NULL, *meta = NULL;
    VipsBlob *profile = NULL;
    struct {
        const char *what;
        void *png;
        size_t len;
    } kinds[20];
    int n = 0;
    const unsigned char *first;

    if (gdl_image_init() != 0)
        return 1;
    rgba = picture();
    vips_extract_band(rgba, &rgb, 0, "n", 3, NULL);
    vips_extract_band(rgba, &alpha, 3, NULL);
    vips_colourspace(rgb, &grey, VIPS_INTERPRETATION_B_W, NULL);
    vips_bandjoin2(grey, alpha, &ga, NULL);
    /* 16 bits: each level x 257, as RGB16. */
    vips_linear1(rgb, &wide, 257, 0, NULL);
    vips_cast_ushort(wide, &deep, NULL);
    deep->Type = VIPS_INTERPRETATION_RGB16;
#define KIND(w, expr) (kinds[n].what = (w), kinds[n].png = (expr), n++)
    KIND("RGB", png_of(rgb, &kinds[n].len, 0, 0, 0));
    KIND("RGBA", png_of(rgba, &kinds[n].len, 0, 0, 0));
    KIND("grey", png_of(grey, &kinds[n].len, 0, 0, 0));
    KIND("grey + alpha", png_of(ga, &kinds[n].len, 0, 0, 0));
    KIND("palette", png_of(rgb, &kinds[n].len, 1, 8, 0));
    KIND("palette with tRNS alpha", png_of(rgba, &kinds[n].len, 1, 8, 0));
    KIND("palette of 2 bits", png_of(rgb, &kinds[n].len, 1, 2, 0));
    KIND("grey of 1 bit", png_of(grey, &kinds[n].len, 0, 1, 0));
    KIND("grey of 4 bits", png_of(grey, &kinds[n].len, 0, 4, 0));
    KIND("16 bits", png_of(deep, &kinds[n].len, 0, 16, 0));
    KIND("interlaced", png_of(rgb, &kinds[n].len, 0, 0, 1));
    /* tRNS keys: the first pixel's grey level, its RGB colour. */
    kinds[n].len = kinds[2].len;
    first = (const unsigned char *)vips_image_get_data(grey);
    KIND("grey with a tRNS key", with_chunk(kinds[2].png, &kinds[n].len, "tRNS", (unsigned char[]){0, first[0]}, 2));
    kinds[n].len = kinds[0].len;
    first = (const unsigned char *)vips_image_get_data(rgba);
    KIND("RGB with a tRNS key",
         with_chunk(kinds[0].png, &kinds[n].len, "tRNS", (unsigned char[]){0, first[0], 0, first[1], 0, first[2]}, 6));
    /* Metadata libvips reads: an ICC profile (its own sRGB), XMP, text. */
    if (vips_profile_load("srgb", &profile, NULL) == 0) {
        vips_copy(rgb, &meta, NULL);
        vips_image_set_blob_copy(meta, VIPS_META_ICC_NAME, VIPS_AREA(profile)->data, VIPS_AREA(profile)->length);
        KIND("ICC profile", png_of(meta, &kinds[n].len, 0, 0, 0));
        vips_area_unref(VIPS_AREA(profile));
        g_object_unref(meta);
    } else {
        fprintf(stderr, "test_image: no sRGB profile in libvips: %s\n", vips_error_buffer());
        unit_failures++;
    }
    vips_copy(rgba, &meta, NULL);
    vips_image_set_blob_copy(meta, VIPS_META_XMP_NAME, "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>", 37);
    vips_image_set_string(meta, "png-comment-0-Comment", "from test_image.c");
    KIND("XMP and text", png_of(meta, &kinds[n].len, 0, 0, 0));
    g_object_unref(meta);
    for (int i = 0; i < n; i++) {
        CHECK(kinds[i].png != NULL);
        if (kinds[i].png)
            check_kind(kinds[i].what, kinds[i].png, kinds[i].len);
        g_free(kinds[i].png);
    }
    CHECK_INT(n, 15);
    g_object_unref(rgba);
    g_object_unref(rgb);
    g_object_unref(alpha);
    g_object_unref(grey);
    g_object_unref(ga);
    g_object_unref(wide);
    g_object_unref(deep);
    vips_shutdown();
    (void)argc;
    (void)argv;
    UNIT_END();
}
