/*
 * gdl_gif.c: GIF encoding of 8-bit pixels in memory (grey, grey + alpha,
 * RGB, RGBA), for gdlua.image when gdl_png.c decoded the input and no
 * dithering is asked for: the palette, the remap and the file.
 *
 * Why: libvips's gifsave hands libimagequant every pixel twice, to build
 * its colour histogram and to remap in a gamma-corrected float space,
 * and cgif's LZW clears a 2 MB table every 4096 codes; on real
 * photographs that lost to Imager (the seed's library). Here, after one
 * pass that counts the distinct colours (while there are at most 4096)
 * and bins the pixels (5 bits a channel, 32768 bins; grey by level):
 *   - an image of few colours (at most the palette's size: logos, flat
 *     art, grey images) gets exactly its own colours: lossless;
 *   - one of at most 4096 (a screenshot) gets libimagequant's palette for
 *     that exact histogram, and each colour its nearest entry;
 *   - any other (a photograph) gets libimagequant's palette for the bins'
 *     mean colours weighted by their pixel counts, and each pixel the
 *     nearest of the 4 entries nearest its bin's mean. On the benchmark's
 *     photographs that is as close to the original as each pixel's own
 *     nearest entry (mean absolute error within 1 %; the one entry nearest
 *     the mean was 5-8 % further) and much closer than Imager's GIFs
 *     (tests/bench: the error of every image), for a fifth of the
 *     instructions of the exact search;
 * libimagequant runs with libvips's settings (quality 0..100, speed 11 -
 * effort) on a histogram given to it (liq_histogram_add_colors), never
 * on the pixels. The LZW coder is this file's: a 16384-slot open hash
 * for the dictionary, cleared (64 KB) when it fills.
 * Alpha as libvips's gifsave takes it: a pixel under 128 is transparent
 * (palette entry 0, named in a graphic control extension), any other is
 * opaque. The output is a plain single-image GIF89a. Uses libimagequant.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libimagequant.h>

#include "gdl_gif.h"

#define BIN_BITS       5
#define BINS           (1 << (3 * BIN_BITS))
#define DISTINCT_MAX   4096 /* colours counted exactly: a screenshot's, not a photo's */
#define DISTINCT_BITS  14
#define DISTINCT_SLOTS (1 << DISTINCT_BITS) /* 4x DISTINCT_MAX */
#define CANDIDATES     4 /* per bin: its mean's nearest entries, for each pixel to choose from */
#define MAX_PIXELS (1 << 24) /* bin sums are 32-bit: 255 x 2^24 fits */

/* The bin of an RGB colour; grey images bin by level (r = g = b). */
static unsigned bin_of(int r, int g, int b, int grey)
{
    if (grey)
        return (unsigned)r;
    return (unsigned)(r >> (8 - BIN_BITS)) << (2 * BIN_BITS) | (unsigned)(g >> (8 - BIN_BITS)) << BIN_BITS |
           (unsigned)(b >> (8 - BIN_BITS));
}

/* ---- nearest palette entries ------------------------------------------ */

static const unsigned char *sort_palette; /* qsort has no context argument */

static int by_green(const void *a, const void *b)
{
    int x = *(const unsigned char *)a, y = *(const unsigned char *)b;
    int d = sort_palette[3 * x + 1] - sort_palette[3 * y + 1];

    return d ? d : x - y;
}

int gdl_gif_nearest(const unsigned char *palette, int colours, const unsigned char *rgb, size_t n, int k,
                    unsigned char *index)
{
    unsigned char order[256];

    if (colours < 1 || colours > 256 || k < 1 || k > 8)
        return -1;
    /* Entries in order of green: a query starts at its own green and
     * walks out both ways, stopping when the green gap alone is more
     * than the k-th best distance so far. */
    for (int i = 0; i < colours; i++)
        order[i] = (unsigned char)i;
    sort_palette = palette;
    qsort(order, (size_t)colours, 1, by_green);
    for (size_t q = 0; q < n; q++, rgb += 3, index += k) {
        int r = rgb[0], g = rgb[1], b = rgb[2], lo = 0, hi = colours, found = 0;
        uint32_t best[8]; /* distance << 8 | entry, ascending: the lowest entry wins a tie */

        while (lo < hi) { /* the first entry whose green is >= g */
            int mid = (lo + hi) / 2;
            if (palette[3 * order[mid] + 1] < g)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (int up = lo, down = lo - 1; up < colours || down >= 0;) {
            int e, dg, j;
            uint32_t key;

            /* The side whose next green is nearer. */
            if (down < 0 || (up < colours && palette[3 * order[up] + 1] - g <= g - palette[3 * order[down] + 1]))
                e = order[up++];
            else
                e = order[down--];
            dg = palette[3 * e + 1] - g;
            if (found == k && (uint32_t)(dg * dg) << 8 > best[k - 1])
                break; /* every entry left is further in green alone */
            key = (uint32_t)((palette[3 * e] - r) * (palette[3 * e] - r) + dg * dg +
                             (palette[3 * e + 2] - b) * (palette[3 * e + 2] - b))
                      << 8 |
                  (uint32_t)e;
            if (found == k && key >= best[k - 1])
                continue;
            for (j = found < k ? found++ : k - 1; j > 0 && best[j - 1] > key; j--)
                best[j] = best[j - 1];
            best[j] = key;
        }
        for (int j = 0; j < k; j++)
            index[j] = (unsigned char)(best[j < found ? j : found - 1] & 0xff);
    }
    return 0;
}

/* ---- the file --------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t len, size;
    int failed;
    uint64_t bits; /* LZW codes not yet written, lowest first */
    int nbits;
    unsigned char block[256]; /* a data sub-block being filled: length byte, then 255 */
    int blen;
} out_t;

static void put(out_t *o, const void *data, size_t n)
{
    if (o->failed)
        return;
    if (o->size - o->len < n) {
        size_t size = (o->size + n) * 2;
        unsigned char *p = realloc(o->data, size);
        if (p == NULL) {
            o->failed = 1;
            return;
        }
        o->data = p;
        o->size = size;
    }
    memcpy(o->data + o->len, data, n);
    o->len += n;
}

static void put_byte(out_t *o, unsigned v)
{
    unsigned char c = (unsigned char)v;

    put(o, &c, 1);
}

static void put_le16(out_t *o, unsigned v)
{
    put_byte(o, v & 0xff);
    put_byte(o, v >> 8);
}

static void block_byte(out_t *o, unsigned v)
{
    o->block[1 + o->blen++] = (unsigned char)v;
    if (o->blen == 255) {
        o->block[0] = 255;
        put(o, o->block, 256);
        o->blen = 0;
    }
}

static void put_code(out_t *o, unsigned code, int size)
{
    o->bits |= (uint64_t)code << o->nbits;
    o->nbits += size;
    while (o->nbits >= 8) {
        block_byte(o, (unsigned)(o->bits & 0xff));
        o->bits >>= 8;
        o->nbits -= 8;
    }
}

#define LZW_SLOTS 16384 /* a power of two, over 4x the 4096 codes */

/* LZW-codes n indexes (min_size bits each at most) into data sub-blocks.
 * The dictionary is a hash from (prefix code, next index) to its code;
 * codes grow a bit when the next one to assign no longer fits, and a
 * full dictionary (4095) is cleared, as giflib does. */
static int lzw(out_t *o, const unsigned char *index, size_t n, int min_size)
{
    const unsigned clear = 1u << min_size, eoi = clear + 1;
    uint32_t *slot = calloc(LZW_SLOTS, sizeof(*slot)); /* key << 12 | code; 0: empty (codes are > 0) */
    unsigned next = eoi + 1, prefix;
    int size = min_size + 1;

    if (slot == NULL)
        return -1;
    put_code(o, clear, size);
    prefix = index[0];
    for (size_t i = 1; i < n; i++) {
        uint32_t key = prefix << 8 | index[i], want = key << 12;
        unsigned h = (key * 0x9e3779b1u) >> 18; /* 14 bits */

        while (slot[h] != 0 && (slot[h] & ~0xfffu) != want)
            h = (h + 1) & (LZW_SLOTS - 1);
        if (slot[h] != 0) {
            prefix = slot[h] & 0xfff;
            continue;
        }
        put_code(o, prefix, size);
        if (next >= (1u << size) && size < 12)
            size++;
        if (next >= 4095) {
            put_code(o, clear, size);
            memset(slot, 0, LZW_SLOTS * sizeof(*slot));
            next = eoi + 1;
            size = min_size + 1;
        } else {
            slot[h] = want | next++;
        }
        prefix = index[i];
    }
    put_code(o, prefix, size);
    if (next >= (1u << size) && size < 12)
        size++;
    put_code(o, eoi, size);
    if (o->nbits > 0)
        block_byte(o, (unsigned)(o->bits & 0xff));
    if (o->blen > 0) {
        o->block[0] = (unsigned char)o->blen;
        put(o, o->block, (size_t)o->blen + 1);
    }
    put_byte(o, 0); /* the block terminator */
    free(slot);
    return 0;
}

/* A GIF89a of indexes into palette (colours entries); entry 0 is
 * transparent when transparent is set. */
static int write_gif(const unsigned char *index, int width, int height, const unsigned char *palette, int colours,
                     int transparent, unsigned char **out, size_t *len)
{
    out_t o = {0};
    int bits = 1;

    while ((1 << bits) < colours)
        bits++;
    put(&o, "GIF89a", 6);
    put_le16(&o, (unsigned)width);
    put_le16(&o, (unsigned)height);
    put_byte(&o, 0x80 | (unsigned)(bits - 1) << 4 | (unsigned)(bits - 1)); /* a global table of 2^bits */
    put_byte(&o, 0);                                                       /* background: entry 0 */
    put_byte(&o, 0);                                                       /* no aspect ratio */
    put(&o, palette, (size_t)colours * 3);
    for (int i = colours; i < 1 << bits; i++)
        put(&o, "\0\0\0", 3);
    if (transparent)
        put(&o, "\x21\xf9\x04\x01\0\0\0\0", 8); /* graphic control: entry 0 is transparent */
    put_byte(&o, 0x2c);                         /* the image: at 0,0, the whole screen, no local table */
    put_le16(&o, 0);
    put_le16(&o, 0);
    put_le16(&o, (unsigned)width);
    put_le16(&o, (unsigned)height);
    put_byte(&o, 0);
    put_byte(&o, bits < 2 ? 2 : (unsigned)bits);
    if (lzw(&o, index, (size_t)width * height, bits < 2 ? 2 : bits) != 0)
        o.failed = 1;
    put_byte(&o, 0x3b);
    if (o.failed) {
        free(o.data);
        return -1;
    }
    *out = o.data;
    *len = o.len;
    return 0;
}

/* ---- the palette -------------------------------------------------------- */

/* The image's distinct opaque colours, while there are few. */
typedef struct {
    uint32_t slot[DISTINCT_SLOTS]; /* rgb | 1 << 24; 0: empty */
    uint16_t number[DISTINCT_SLOTS];
    uint32_t count[DISTINCT_MAX]; /* pixels, by number (order of first appearance) */
    unsigned char rgb[DISTINCT_MAX * 3];
    unsigned char index[DISTINCT_MAX]; /* palette entry, by number */
    int n;
} distinct_t;

static unsigned hash_rgb(uint32_t rgb)
{
    return (rgb * 0x9e3779b1u) >> (32 - DISTINCT_BITS);
}

/* Counts a pixel of colour rgb; false once there are too many colours. */
static int distinct_add(distinct_t *d, uint32_t rgb)
{
    uint32_t want = rgb | 1u << 24;
    unsigned h = hash_rgb(rgb);

    while (d->slot[h] != 0 && d->slot[h] != want)
        h = (h + 1) & (DISTINCT_SLOTS - 1);
    if (d->slot[h] != 0) {
        d->count[d->number[h]]++;
        return 1;
    }
    if (d->n == DISTINCT_MAX)
        return 0;
    d->slot[h] = want;
    d->number[h] = (uint16_t)d->n;
    d->count[d->n] = 1;
    d->rgb[3 * d->n] = (unsigned char)(rgb >> 16);
    d->rgb[3 * d->n + 1] = (unsigned char)(rgb >> 8);
    d->rgb[3 * d->n + 2] = (unsigned char)rgb;
    d->n++;
    return 1;
}

/* The palette entry of a colour counted before. */
static unsigned char distinct_index(const distinct_t *d, uint32_t rgb)
{
    uint32_t want = rgb | 1u << 24;
    unsigned h = hash_rgb(rgb);

    while (d->slot[h] != want)
        h = (h + 1) & (DISTINCT_SLOTS - 1);
    return d->index[d->number[h]];
}

/* libimagequant's palette for n colours (n x RGB) weighted by their
 * pixel counts as its own histogram weights the pixels of an image: a
 * colour at most a twentieth of the image, the rest in proportion.
 * Returns the number of entries, or -1. */
static int quantise(const unsigned char *rgb, const uint32_t *count, int n, size_t pixels, int limit, int effort,
                    unsigned char *palette)
{
    liq_histogram_entry *e = malloc((size_t)n * sizeof(*e));
    liq_attr *attr = NULL;
    liq_histogram *hist = NULL;
    liq_result *res = NULL;
    const liq_palette *lp;
    double cap = (double)pixels / 20, scale;
    int colours = -1;

    if (e == NULL)
        return -1;
    /* libimagequant caps a colour of n given at once at 0.1 n^2 (its
     * count over 128), and counts are 32-bit. */
    scale = 0.99 * 12.8 * n * (double)n / cap;
    if (scale * cap > 4e9)
        scale = 4e9 / cap;
    for (int i = 0; i < n; i++) {
        double w = (count[i] < cap ? count[i] : cap) * scale;
        e[i].color = (liq_color){rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255};
        e[i].count = w < 1 ? 1 : (unsigned)w;
    }
    if ((attr = liq_attr_create()) == NULL || liq_set_max_colors(attr, limit < 2 ? 2 : limit) != LIQ_OK ||
        liq_set_quality(attr, 0, 100) != LIQ_OK || liq_set_speed(attr, 11 - effort) != LIQ_OK ||
        (hist = liq_histogram_create(attr)) == NULL || liq_histogram_add_colors(hist, attr, e, n, 0) != LIQ_OK ||
        liq_histogram_quantize(hist, attr, &res) != LIQ_OK)
        goto done;
    lp = liq_get_palette(res);
    colours = (int)lp->count <= limit ? (int)lp->count : -1;
    for (int i = 0; i < colours; i++) {
        palette[3 * i] = lp->entries[i].r;
        palette[3 * i + 1] = lp->entries[i].g;
        palette[3 * i + 2] = lp->entries[i].b;
    }
done:
    if (res)
        liq_result_destroy(res);
    if (hist)
        liq_histogram_destroy(hist);
    if (attr)
        liq_attr_destroy(attr);
    free(e);
    return colours;
}

/* The bins' mean colours and pixel counts (the used bins, in bin order),
 * and each bin's number among them in id. Returns how many, or -1. */
static int bin_means(uint32_t (*bin)[4], int *id, unsigned char *mean, uint32_t *count)
{
    int used = 0;

    for (int k = 0; k < BINS; k++) {
        uint32_t c = bin[k][3];
        id[k] = -1;
        if (c == 0)
            continue;
        for (int j = 0; j < 3; j++)
            mean[3 * used + j] = (unsigned char)((bin[k][j] + c / 2) / c);
        count[used] = c;
        id[k] = used++;
    }
    return used;
}

#define RGB(r, g, b) ((uint32_t)(r) << 16 | (uint32_t)(g) << 8 | (uint32_t)(b))

int gdl_gif_encode(const unsigned char *pixels, int width, int height, int bands, int effort, int bitdepth,
                   unsigned char **out, size_t *len)
{
    const size_t n = (size_t)width * height;
    const int grey = bands <= 2, alpha = bands == 2 || bands == 4;
    uint32_t(*bin)[4] = NULL; /* per bin: the sums of r, g and b, the count */
    uint32_t *bin_count = NULL, *cand = NULL;
    unsigned char *index = NULL, *bin_index = NULL, *mean = NULL;
    unsigned char palette[256 * 3] = {0}, *opaque = palette;
    int *bin_id = NULL, transparent = 0, few = 1, limit, colours = -1, rc = -1;
    distinct_t *d = NULL;

    *out = NULL;
    if (bands < 1 || bands > 4 || width < 1 || height < 1 || width > 65535 || height > 65535 || n > MAX_PIXELS ||
        effort < 1 || effort > 10 || bitdepth < 1 || bitdepth > 8)
        return -1;
    for (size_t i = 0; alpha && !transparent && i < n; i++)
        transparent = pixels[i * bands + bands - 1] < 128;
    /* Entry 0 is the transparent one; the opaque colours follow. */
    limit = (1 << bitdepth) - transparent;
    if (limit < 1)
        return -1;
    if (transparent)
        opaque = palette + 3;
    if ((index = malloc(n)) == NULL || (bin = calloc(BINS, sizeof(*bin))) == NULL ||
        (d = calloc(1, sizeof(*d))) == NULL)
        goto done;

    /* One pass: the distinct colours while they are few, and the bins. */
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = pixels + i * bands;
        int r = p[0], g = grey ? r : p[1], b = grey ? r : p[2];
        uint32_t *s;

        if (alpha && p[bands - 1] < 128)
            continue;
        if (few)
            few = distinct_add(d, RGB(r, g, b));
        s = bin[bin_of(r, g, b, grey)];
        s[0] += (uint32_t)r;
        s[1] += (uint32_t)g;
        s[2] += (uint32_t)b;
        s[3]++;
    }
    if (few) {
        /* Few enough to keep them all, or libimagequant's palette from
         * the exact histogram, each colour to its own nearest entry. */
        if (d->n <= limit) {
            colours = d->n;
            memcpy(opaque, d->rgb, (size_t)d->n * 3);
            for (int i = 0; i < d->n; i++)
                d->index[i] = (unsigned char)i;
        } else if ((colours = quantise(d->rgb, d->count, d->n, n, limit, effort, opaque)) < 1 ||
                   gdl_gif_nearest(opaque, colours, d->rgb, (size_t)d->n, 1, d->index) != 0) {
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = pixels + i * bands;
            int r = p[0], g = grey ? r : p[1], b = grey ? r : p[2];
            index[i] = alpha && p[bands - 1] < 128 ? 0 : (unsigned char)(distinct_index(d, RGB(r, g, b)) + transparent);
        }
    } else {
        int used;

        /* Binned: libimagequant's palette from the bins' means, each bin
         * to the entry nearest its mean. */
        if ((bin_id = malloc(BINS * sizeof(*bin_id))) == NULL || (mean = malloc(BINS * 3)) == NULL ||
            (bin_count = malloc(BINS * sizeof(*bin_count))) == NULL ||
            (bin_index = malloc((size_t)BINS * CANDIDATES)) == NULL)
            goto done;
        used = bin_means(bin, bin_id, mean, bin_count);
        if ((colours = quantise(mean, bin_count, used, n, limit, effort, opaque)) < 1 ||
            gdl_gif_nearest(opaque, colours, mean, (size_t)used, CANDIDATES, bin_index) != 0)
            goto done;
        /* Each bin's candidates packed as r | g << 8 | b << 16 | entry
         * << 24: one load each in the loop below. */
        if ((cand = malloc((size_t)used * CANDIDATES * sizeof(*cand))) == NULL)
            goto done;
        for (size_t j = 0; j < (size_t)used * CANDIDATES; j++) {
            const unsigned char *e = opaque + 3 * bin_index[j];
            cand[j] = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)bin_index[j] << 24;
        }
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = pixels + i * bands;
            int r = p[0], g = grey ? r : p[1], b = grey ? r : p[2];
            const uint32_t *c;
            uint32_t bestk = UINT32_MAX;

            if (alpha && p[bands - 1] < 128) {
                index[i] = 0;
                continue;
            }
            /* The nearest of the bin's candidates: the smallest (distance,
             * entry), without a branch to mispredict. */
            c = cand + (size_t)bin_id[bin_of(r, g, b, grey)] * CANDIDATES;
            for (int j = 0; j < CANDIDATES; j++) {
                int dr = r - (int)(c[j] & 0xff), dg = g - (int)(c[j] >> 8 & 0xff), db = b - (int)(c[j] >> 16 & 0xff);
                uint32_t k = (uint32_t)(dr * dr + dg * dg + db * db) << 8 | c[j] >> 24;
                bestk = k < bestk ? k : bestk;
            }
            index[i] = (unsigned char)((bestk & 0xff) + (unsigned)transparent);
        }
    }
    rc = write_gif(index, width, height, palette, colours + transparent, transparent, out, len);
done:
    free(index);
    free(bin);
    free(d);
    free(bin_id);
    free(mean);
    free(bin_count);
    free(bin_index);
    free(cand);
    return rc;
}
