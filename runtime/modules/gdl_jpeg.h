/*
 * gdl_jpeg.h: encodes 8-bit grey or RGB pixels in memory to the JPEG
 * libvips's jpegsave would write; see gdl_jpeg.c.
 */
#ifndef GDL_JPEG_H
#define GDL_JPEG_H

#include <stddef.h>

/* Metadata libvips's jpegsave writes after its Exif block: XMP (up to
 * 60000 bytes; larger, libvips drops it) and an ICC profile. */
typedef struct {
    const void *xmp, *icc;
    size_t xmp_len, icc_len;
} gdl_jpeg_meta_t;

/* pixels: width x height x bands (1 or 3) bytes; xres, yres in pixels
 * per mm; strip: no Exif block and no metadata; meta: NULL for none.
 * Returns 0 with *out (free() it) and *len, or -1 (out of memory): the
 * caller uses libvips. */
int gdl_jpeg_encode(const unsigned char *pixels, int width, int height, int bands, int quality, double xres,
                    double yres, int strip, const gdl_jpeg_meta_t *meta, unsigned char **out, size_t *len);

#endif
