/*
 * gdl_png.h: a fast decoder for the PNGs libvips reads into 8-bit pixels
 * (grey, palette, RGB, with alpha or tRNS, 1 to 8 bits, not interlaced),
 * used by gdlua.image before libvips's own loader; see gdl_png.c.
 */
#ifndef GDL_PNG_H
#define GDL_PNG_H

#include <stddef.h>

typedef struct {
    int width, height, bands; /* bands: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
    double xres, yres;        /* pixels per mm, as libvips's pngload reports them */
    int plain;                /* 8-bit grey or RGB, alpha or not, no tRNS, and no chunk that libvips reads into
                                 metadata: its image is these pixels and resolution alone */
} gdl_png_info_t;

/* Decodes data into *pixels (width x height x bands bytes, rows top to
 * bottom; free() it): the pixels libvips's pngload makes. Returns 0, or
 * -1 when the file is not one this decoder handles exactly as libvips
 * would (16 bits, interlaced, an unknown critical chunk) or is damaged
 * in any way: the caller then uses libvips, which reads everything and
 * reports the damage. Metadata (ICC profile, text, XMP, Exif) is not
 * read: see info->plain. max_pixels bounds the allocation. */
int gdl_png_decode(const void *data, size_t len, double max_pixels, gdl_png_info_t *info, unsigned char **pixels);

#endif
