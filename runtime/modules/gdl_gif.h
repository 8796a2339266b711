/*
 * gdl_gif.h: GIF encoding of 8-bit grey, grey + alpha, RGB or RGBA
 * pixels in memory (an exact palette for few colours, else
 * libimagequant's for a histogram, and this file's LZW); see gdl_gif.c.
 */
#ifndef GDL_GIF_H
#define GDL_GIF_H

#include <stddef.h>

/* The k (1..8) palette entries nearest (squared RGB distance, the
 * lowest entry on a tie) to each of n colours (n x RGB), nearest first:
 * index[i * k .. i * k + k - 1] (the last repeated if the palette has
 * fewer). palette: colours x RGB, 1..256 entries. Returns 0, or -1. */
int gdl_gif_nearest(const unsigned char *palette, int colours, const unsigned char *rgb, size_t n, int k,
                    unsigned char *index);

/* pixels: width x height x bands (1 grey, 2 grey + alpha, 3 RGB, 4
 * RGBA), at most 2^24 of them; effort 1..10 and bitdepth 1..8 as
 * libvips's gifsave takes them (undithered). Alpha under 128 is
 * transparent. Returns 0 with *out (free() it) and *len, or -1: the
 * caller uses libvips. */
int gdl_gif_encode(const unsigned char *pixels, int width, int height, int bands, int effort, int bitdepth,
                   unsigned char **out, size_t *len);

#endif
