/*
 * gdl_gif.c: GIF encoding of opaque pixels in memory, for gdlua.image
 * when gdl_png.c decoded the input and no dithering is asked for.
 *
 * Why: libvips's gifsave (cgif + libimagequant) spends most of its time
 * in libimagequant's remap, which searches its palette per pixel in a
 * gamma-corrected float space (23 ms of CPU for bench_image's 640x480
 * photo, 113 ms at 1280x960, against 7.5 ms for the palette itself).
 * Undithered, a remap is only "the nearest palette colour", which this
 * file finds exactly in RGB (as Imager's default "closest" does) for a
 * fraction of that: the RGB cube is cut into 32^3 cells and each cell
 * used gets, once, the list of the only palette entries that can be
 * nearest to some point in it (those no farther from the cell than the
 * best entry's farthest corner). The palette is libimagequant's, made
 * with libvips's settings (at most 255 colours, quality 0..100, speed 11
 * - effort); cgif writes the file. Uses libimagequant and cgif.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cgif.h>
#include <libimagequant.h>

#include "gdl_gif.h"

#define CELL_BITS 3 /* a cell spans 8 levels per channel */
#define CELLS     (1 << (3 * (8 - CELL_BITS)))

typedef struct {
    int32_t *start;  /* per cell: its candidates in pool, -1: not listed yet */
    uint16_t *count; /* per cell: how many */
    uint32_t *pool;  /* candidates, cell after cell: r, g, b, index bytes */
    size_t used, size;
    const unsigned char *palette;
    int colours;
} cells_t;

static int gap(int c, int lo, int hi)
{
    return c < lo ? lo - c : c > hi ? c - hi : 0;
}

static int far(int c, int lo, int hi)
{
    return c - lo > hi - c ? c - lo : hi - c;
}

/* Lists the candidates of cell (r, g, b in cell units). */
static int list_cell(cells_t *t, int cell, int r, int g, int b)
{
    int lo[3] = {r << CELL_BITS, g << CELL_BITS, b << CELL_BITS}, bound = 1 << 30, near[256];

    for (int e = 0; e < t->colours; e++) {
        const unsigned char *p = t->palette + 3 * e;
        int dmax = 0, dmin = 0;
        for (int k = 0; k < 3; k++) {
            int hi = lo[k] + (1 << CELL_BITS) - 1, a = gap(p[k], lo[k], hi), z = far(p[k], lo[k], hi);
            dmin += a * a;
            dmax += z * z;
        }
        near[e] = dmin;
        if (dmax < bound)
            bound = dmax;
    }
    if (t->size - t->used < (size_t)t->colours) {
        size_t size = t->size * 2 + 4096;
        uint32_t *pool = realloc(t->pool, size * sizeof(*pool));
        if (pool == NULL)
            return -1;
        t->pool = pool;
        t->size = size;
    }
    t->start[cell] = (int32_t)t->used;
    for (int e = 0; e < t->colours; e++)
        if (near[e] <= bound) {
            const unsigned char *p = t->palette + 3 * e;
            t->pool[t->used++] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)e << 24;
        }
    t->count[cell] = (uint16_t)(t->used - (size_t)t->start[cell]);
    return 0;
}

int gdl_gif_nearest(const unsigned char *palette, int colours, const unsigned char *pixels, size_t n, int bands,
                    unsigned char *index)
{
    cells_t t = {.palette = palette, .colours = colours};
    uint32_t last = UINT32_MAX;
    unsigned char last_index = 0;
    int rc = 0;

    t.start = malloc(CELLS * sizeof(*t.start));
    t.count = malloc(CELLS * sizeof(*t.count));
    if (t.start == NULL || t.count == NULL || colours < 1 || colours > 256) {
        rc = -1;
        goto done;
    }
    memset(t.start, 0xff, CELLS * sizeof(*t.start));
    for (size_t i = 0; i < n; i++, pixels += bands) {
        int r = pixels[0], g = bands == 3 ? pixels[1] : r, b = bands == 3 ? pixels[2] : r;
        uint32_t key = (uint32_t)r << 16 | (uint32_t)g << 8 | (uint32_t)b;
        int cr = r >> CELL_BITS, cg = g >> CELL_BITS, cb = b >> CELL_BITS;
        int cell = (cr << (2 * (8 - CELL_BITS))) | (cg << (8 - CELL_BITS)) | cb;
        const uint32_t *cand;
        uint32_t nearest = UINT32_MAX;

        if (key == last) {
            index[i] = last_index;
            continue;
        }
        if (t.start[cell] < 0 && list_cell(&t, cell, cr, cg, cb) != 0) {
            rc = -1;
            goto done;
        }
        /* The smallest (distance, index): the nearest entry, the lowest
         * index on a tie; without a branch to mispredict. */
        cand = t.pool + t.start[cell];
        for (int c = 0; c < t.count[cell]; c++) {
            uint32_t e = cand[c];
            int dr = r - (int)(e & 0xff), dg = g - (int)(e >> 8 & 0xff), db = b - (int)(e >> 16 & 0xff);
            uint32_t k = (uint32_t)(dr * dr + dg * dg + db * db) << 8 | e >> 24;
            nearest = k < nearest ? k : nearest;
        }
        last_index = (unsigned char)(nearest & 0xff);
        index[i] = last_index;
        last = key;
    }
done:
    free(t.start);
    free(t.count);
    free(t.pool);
    return rc;
}

typedef struct {
    unsigned char *data;
    size_t len, size;
} out_t;

static int append(void *ctx, const uint8_t *data, const size_t n)
{
    out_t *o = ctx;

    if (o->size - o->len < n) {
        size_t size = (o->size + n) * 2;
        unsigned char *p = realloc(o->data, size);
        if (p == NULL)
            return -1;
        o->data = p;
        o->size = size;
    }
    memcpy(o->data + o->len, data, n);
    o->len += n;
    return 0;
}

int gdl_gif_encode(const unsigned char *pixels, int width, int height, int bands, int effort, int bitdepth,
                   unsigned char **out, size_t *len)
{
    size_t n = (size_t)width * height;
    unsigned char *rgba = NULL, *index = NULL, palette[256 * 3];
    liq_attr *attr = NULL;
    liq_image *img = NULL;
    liq_result *res = NULL;
    const liq_palette *lp;
    out_t o = {NULL, 0, 0};
    CGIF_Config config = {0};
    CGIF_FrameConfig frame = {0};
    CGIF *gif;
    int colours, rc = -1;

    *out = NULL;
    if ((bands != 1 && bands != 3) || width > 65535 || height > 65535 || n > INT32_MAX / 4)
        return -1;
    /* libimagequant reads RGBA only. */
    if ((rgba = malloc(n * 4)) == NULL || (index = malloc(n)) == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = pixels + i * bands;
        rgba[4 * i] = p[0];
        rgba[4 * i + 1] = bands == 3 ? p[1] : p[0];
        rgba[4 * i + 2] = bands == 3 ? p[2] : p[0];
        rgba[4 * i + 3] = 255;
    }
    if ((attr = liq_attr_create()) == NULL || liq_set_max_colors(attr, bitdepth >= 8 ? 255 : 1 << bitdepth) != LIQ_OK ||
        liq_set_quality(attr, 0, 100) != LIQ_OK || liq_set_speed(attr, 11 - effort) != LIQ_OK)
        goto done;
    if ((img = liq_image_create_rgba(attr, rgba, width, height, 0)) == NULL ||
        liq_image_quantize(img, attr, &res) != LIQ_OK)
        goto done;
    lp = liq_get_palette(res);
    colours = (int)lp->count;
    for (int i = 0; i < colours; i++) {
        palette[3 * i] = lp->entries[i].r;
        palette[3 * i + 1] = lp->entries[i].g;
        palette[3 * i + 2] = lp->entries[i].b;
    }
    liq_image_destroy(img);
    img = NULL;
    free(rgba);
    rgba = NULL;
    if (gdl_gif_nearest(palette, colours, pixels, n, bands, index) != 0)
        goto done;
    config.pGlobalPalette = palette;
    config.numGlobalPaletteEntries = (uint16_t)colours;
    config.width = (uint16_t)width;
    config.height = (uint16_t)height;
    config.pWriteFn = append;
    config.pContext = &o;
    if ((gif = cgif_newgif(&config)) == NULL)
        goto done;
    frame.pImageData = index;
    rc = cgif_addframe(gif, &frame) == 0 ? 0 : -1;
    if (cgif_close(gif) != 0)
        rc = -1;
done:
    if (res)
        liq_result_destroy(res);
    if (img)
        liq_image_destroy(img);
    if (attr)
        liq_attr_destroy(attr);
    free(rgba);
    free(index);
    if (rc != 0) {
        free(o.data);
        return -1;
    }
    *out = o.data;
    *len = o.len;
    return 0;
}
