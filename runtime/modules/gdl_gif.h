/*
 * gdl_gif.h: GIF encoding of opaque 8-bit grey or RGB pixels in memory
 * (libimagequant's palette, an exact nearest-colour remap, cgif); see
 * gdl_gif.c.
 */
#ifndef GDL_GIF_H
#define GDL_GIF_H

#include <stddef.h>

/* The palette index nearest (squared RGB distance, the lowest index on a
 * tie) to each of n pixels of `bands` (1: grey, 3: RGB) bytes.
 * palette: colours x RGB. Returns 0, or -1 out of memory. */
int gdl_gif_nearest(const unsigned char *palette, int colours, const unsigned char *pixels, size_t n, int bands,
                    unsigned char *index);

/* pixels: width x height x bands (1 or 3); effort 1..10 and bitdepth
 * 1..8 as libvips's gifsave takes them. Returns 0 with *out (free() it)
 * and *len, or -1: the caller uses libvips. */
int gdl_gif_encode(const unsigned char *pixels, int width, int height, int bands, int effort, int bitdepth,
                   unsigned char **out, size_t *len);

#endif
