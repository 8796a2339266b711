/*
 * gdl_jpeg.h: encodes 8-bit grey or RGB pixels in memory to the JPEG
 * libvips's jpegsave would write; see gdl_jpeg.c.
 */
#ifndef GDL_JPEG_H
#define GDL_JPEG_H

#include <stddef.h>

/* pixels: width x height x bands (1 or 3) bytes; xres, yres in pixels
 * per mm; strip: no Exif block. Returns 0 with *out (free() it) and
 * *len, or -1 (out of memory): the caller uses libvips. */
int gdl_jpeg_encode(const unsigned char *pixels, int width, int height, int bands, int quality, double xres,
                    double yres, int strip, unsigned char **out, size_t *len);

#endif
