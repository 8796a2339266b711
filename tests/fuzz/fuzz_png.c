/*
 * fuzz_png.c: libFuzzer target for gdlua.image's own decoders of
 * untrusted bytes: gdl_png_decode (runtime/modules/gdl_png.c), then, on
 * what it decodes, the GIF remap gdl_gif_nearest (gdl_gif.c) with a
 * palette taken from the input. Every decoded byte is read, so ASan sees
 * a short buffer. Built with clang by tests/fuzz/run.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "modules/gdl_gif.h"
#include "modules/gdl_png.h"

static volatile unsigned sink; /* keeps the reads */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    gdl_png_info_t info;
    unsigned char *px, *index, palette[256 * 3] = {0};
    size_t n, colours;
    unsigned sum = 0;

    if (gdl_png_decode(data, len, 1 << 20, &info, &px) != 0)
        return 0;
    n = (size_t)info.width * info.height;
    for (size_t i = 0; i < n * info.bands; i++)
        sum += px[i];
    if (info.bands == 1 || info.bands == 3) {
        colours = len % 256 + 1;
        for (size_t i = 0; i < colours * 3; i++)
            palette[i] = data[i % len];
        if ((index = malloc(n)) != NULL && gdl_gif_nearest(palette, (int)colours, px, n, info.bands, index) == 0)
            for (size_t i = 0; i < n; i++)
                if (index[i] >= colours)
                    abort();
        free(index);
    }
    free(px);
    sink = sum;
    return 0;
}
