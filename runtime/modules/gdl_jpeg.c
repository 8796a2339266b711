/*
 * gdl_jpeg.c: JPEG encoding of pixels in memory with libjpeg-turbo, for
 * gdlua.image when gdl_png.c decoded the input.
 *
 * Why: libvips's jpegsave runs libjpeg-turbo inside its threaded sink
 * and costs about twice libjpeg-turbo alone on bench_image's photos (1.2
 * against 0.6 ms at 640x480, 3.6 against 2.6 ms at 1280x960). The output
 * is the file libvips 8.14 writes, byte for byte (test_image.lua checks
 * it): baseline, libjpeg's Huffman tables, 4:2:0 below quality 90 and
 * 4:4:4 from 90, no JFIF header, and unless strip an Exif block holding
 * what libvips puts there for an image without Exif (orientation 1, the
 * resolution in dpi, YCbCr positioning, Exif and FlashPix versions,
 * colour space "uncalibrated", the size), then the XMP packet and the
 * ICC profile the caller found in libvips's header. Uses libjpeg only.
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "gdl_jpeg.h"

/* Everything libjpeg touches lives in one heap block, reached through a
 * pointer set before setjmp and never changed after it: nothing the
 * longjmp path reads is a local variable changed since setjmp. The
 * output buffer is ours (not jpeg_mem_dest's, which frees a buffer it
 * outgrows and hands back the new one only at the end, so after an error
 * the caller could not tell which to free). */
typedef struct {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr mgr;
    struct jpeg_destination_mgr dest;
    jmp_buf jump;
    unsigned char *buf; /* malloc'd, cap bytes */
    size_t cap;
} job_t;

static void on_error(j_common_ptr c)
{
    longjmp(((job_t *)c->client_data)->jump, 1);
}

static void on_message(j_common_ptr c)
{
}

static void fail_out_of_memory(j_compress_ptr c)
{
    c->err->msg_code = JERR_OUT_OF_MEMORY;
    c->err->error_exit((j_common_ptr)c);
}

static void dest_init(j_compress_ptr c)
{
    job_t *j = c->client_data;

    if ((j->buf = malloc(j->cap)) == NULL)
        fail_out_of_memory(c);
    j->dest.next_output_byte = j->buf;
    j->dest.free_in_buffer = j->cap;
}

/* The buffer is full: twice its size (on failure the old one stays in
 * j->buf, freed by the error path). */
static boolean dest_grow(j_compress_ptr c)
{
    job_t *j = c->client_data;
    unsigned char *bigger = realloc(j->buf, j->cap * 2);

    if (bigger == NULL)
        fail_out_of_memory(c);
    j->buf = bigger;
    j->dest.next_output_byte = bigger + j->cap;
    j->dest.free_in_buffer = j->cap;
    j->cap *= 2;
    return TRUE;
}

static void dest_term(j_compress_ptr c)
{
}

/* Little-endian TIFF writing into the Exif block. */
static void le16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *p, uint32_t v)
{
    le16(p, v & 0xffff);
    le16(p + 2, v >> 16);
}

/* An IFD entry whose value fits in its 4 bytes, or (rational) an offset. */
static void entry(unsigned char *p, unsigned tag, unsigned type, uint32_t value)
{
    le16(p, tag);
    le16(p + 2, type);
    le32(p + 4, 1);
    if (type == 3)
        le32(p + 8, value & 0xffff);
    else
        le32(p + 8, value);
}

static void entry_undefined(unsigned char *p, unsigned tag, const char *four)
{
    le16(p, tag);
    le16(p + 2, 7);
    le32(p + 4, 4);
    memcpy(p + 8, four, 4);
}

#define EXIF_LEN 186 /* "Exif\0\0", then a 180-byte TIFF */

/* The Exif block libvips's jpegsave writes for an image without one. Its
 * resolution is in dpi, as numerator/1000, truncated as libvips does. */
static void make_exif(unsigned char *x, int width, int height, double xres, double yres)
{
    unsigned char *t = x + 6;

    memset(x, 0, EXIF_LEN);
    memcpy(x, "Exif\0\0II*\0", 10);
    le32(t + 4, 8);
    le16(t + 8, 6);                /* IFD0: 6 entries, then its rationals at 86 */
    entry(t + 10, 0x0112, 3, 1);   /* Orientation: top left */
    entry(t + 22, 0x011a, 5, 86);  /* XResolution */
    entry(t + 34, 0x011b, 5, 94);  /* YResolution */
    entry(t + 46, 0x0128, 3, 2);   /* ResolutionUnit: inch */
    entry(t + 58, 0x0213, 3, 1);   /* YCbCrPositioning: centred */
    entry(t + 70, 0x8769, 4, 102); /* the Exif IFD */
    le32(t + 86, (uint32_t)(xres * 25.4 * 1000));
    le32(t + 90, 1000);
    le32(t + 94, (uint32_t)(yres * 25.4 * 1000));
    le32(t + 98, 1000);
    le16(t + 102, 6);                             /* the Exif IFD: 6 entries */
    entry_undefined(t + 104, 0x9000, "0210");     /* ExifVersion */
    entry_undefined(t + 116, 0x9101, "\1\2\3\0"); /* ComponentsConfiguration: Y Cb Cr */
    entry_undefined(t + 128, 0xa000, "0100");     /* FlashpixVersion */
    entry(t + 140, 0xa001, 3, 0xffff);            /* ColorSpace: uncalibrated */
    entry(t + 152, 0xa002, 4, (uint32_t)width);   /* PixelXDimension */
    entry(t + 164, 0xa003, 4, (uint32_t)height);  /* PixelYDimension */
}

#define XMP_URL "http://ns.adobe.com/xap/1.0/" /* and a zero byte, before the packet */

int gdl_jpeg_encode(const unsigned char *pixels, int width, int height, int bands, int quality, double xres,
                    double yres, int strip, const gdl_jpeg_meta_t *meta, unsigned char **out, size_t *len)
{
    job_t *const j = calloc(1, sizeof(job_t));
    struct jpeg_compress_struct *c;
    unsigned char exif[EXIF_LEN];
    size_t stride = (size_t)width * bands;

    *out = NULL;
    /* A resolution whose dpi x 1000 overflows the Exif field (a pHYs in
     * no unit, say) is libvips's to write as it does. */
    if (j == NULL || (bands != 1 && bands != 3) ||
        !(xres * 25.4 * 1000 < 4294967296.0 && yres * 25.4 * 1000 < 4294967296.0)) {
        free(j);
        return -1;
    }
    c = &j->c;
    c->err = jpeg_std_error(&j->mgr);
    j->mgr.error_exit = on_error;
    j->mgr.output_message = on_message;
    if (setjmp(j->jump)) {
        jpeg_destroy_compress(&j->c);
        free(j->buf);
        free(j);
        return -1;
    }
    c->client_data = j; /* kept by jpeg_create_compress, which on_error needs */
    jpeg_create_compress(c);
    j->cap = stride * (size_t)height / 8 + 4096; /* a photo at quality 75 is about a tenth */
    j->dest.init_destination = dest_init;
    j->dest.empty_output_buffer = dest_grow;
    j->dest.term_destination = dest_term;
    c->dest = &j->dest;
    c->image_width = (JDIMENSION)width;
    c->image_height = (JDIMENSION)height;
    c->input_components = bands;
    c->in_color_space = bands == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, quality, TRUE);
    c->write_JFIF_header = FALSE;
    if (bands == 3 && quality >= 90)
        c->comp_info[0].h_samp_factor = c->comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(c, TRUE);
    if (!strip) {
        make_exif(exif, width, height, xres, yres);
        jpeg_write_marker(c, JPEG_APP0 + 1, exif, EXIF_LEN);
    }
    /* libvips's order: Exif, XMP, (IPTC,) the profile; libjpeg-turbo
     * splits a profile into APP2 markers as libvips does. */
    if (!strip && meta && meta->xmp && meta->xmp_len <= 60000) {
        const unsigned char *x = meta->xmp;
        jpeg_write_m_header(c, JPEG_APP0 + 1, (unsigned)(sizeof(XMP_URL) + meta->xmp_len));
        for (size_t i = 0; i < sizeof(XMP_URL); i++) /* the URL's zero byte included */
            jpeg_write_m_byte(c, XMP_URL[i]);
        for (size_t i = 0; i < meta->xmp_len; i++)
            jpeg_write_m_byte(c, x[i]);
    }
    if (!strip && meta && meta->icc && meta->icc_len > 0)
        jpeg_write_icc_profile(c, meta->icc, (unsigned)meta->icc_len);
    while (c->next_scanline < c->image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + stride * c->next_scanline);
        jpeg_write_scanlines(c, &row, 1);
    }
    jpeg_finish_compress(c);
    *out = j->buf;
    *len = j->cap - j->dest.free_in_buffer;
    jpeg_destroy_compress(c);
    free(j);
    return 0;
}
