/*
 * fuzz_png.c: libFuzzer target for gdlua.image's own code on untrusted
 * bytes: gdl_png_decode (runtime/modules/gdl_png.c), then, on what it
 * decodes, gdl_gif_nearest (gdl_gif.c) for its first pixels against a
 * palette taken from the input, and a whole gdl_gif_encode (palette,
 * remap, LZW) of images up to 64 K pixels. Every decoded byte is read,
 * so ASan sees a short buffer. Built with clang by tests/fuzz/run.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/gdl_gif.h"
#include "modules/gdl_png.h"

static volatile unsigned sink; /* keeps the reads */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    gdl_png_info_t info;
    unsigned char *px, palette[256 * 3] = {0};
    size_t n, colours;
    unsigned sum = 0;

    if (gdl_png_decode(data, len, 1 << 20, &info, &px) != 0)
        return 0;
    n = (size_t)info.width * info.height;
    for (size_t i = 0; i < n * info.bands; i++)
        sum += px[i];
    if (info.bands >= 3) {
        unsigned char *gif, nearest[4 * 64];
        size_t gif_len, q = n < 64 ? n : 64, at = 0;
        unsigned char rgb[3 * 64];

        colours = len % 256 + 1;
        for (size_t i = 0; i < colours * 3; i++)
            palette[i] = data[i % len];
        for (size_t i = 0; i < q; i++, at += (size_t)info.bands)
            memcpy(rgb + 3 * i, px + at, 3);
        if (gdl_gif_nearest(palette, (int)colours, rgb, q, 4, nearest) == 0)
            for (size_t i = 0; i < 4 * q; i++)
                if (nearest[i] >= colours)
                    abort();
        if (n <= 65536 &&
            gdl_gif_encode(px, info.width, info.height, info.bands, 1, 1 + (int)(len % 8), &gif, &gif_len) == 0) {
            if (gif_len < 14 || gif[gif_len - 1] != 0x3b)
                abort();
            free(gif);
        }
    }
    free(px);
    sink = sum;
    return 0;
}
