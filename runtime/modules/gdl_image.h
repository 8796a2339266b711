/*
 * gdl_image.h: gdlua.image's conversion for C callers, the same code as
 * image.convert(data, format) at its default options without Lua: the
 * benchmark's codec floor (tests/bench/bench_codec.c) and tests.
 */
#ifndef GDL_IMAGE_H
#define GDL_IMAGE_H

#include <stddef.h>

/* libvips and the process settings luaopen_gdlua_image makes. 0 or -1. */
int gdl_image_init(void);

/* Converts data to format (jpeg, png, gif, webp): 0 with *out (g_free()
 * or free() it) and *out_len, or -1 with the reason in msg. */
int gdl_image_convert(const void *data, size_t len, const char *format, void **out, size_t *out_len, char *msg,
                      size_t msg_len);

#endif
