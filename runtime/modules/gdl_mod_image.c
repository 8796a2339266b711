/*
 * gdl_image.c: the "gdlua.image" C module: convert, thumbnail and inspect
 * JPEG, PNG, GIF and WebP images with libvips (and gdl_png.c, which
 * decodes the common PNGs for convert).
 *
 *   image.convert(data, format [, opts])      -> bytes | nil, message
 *   image.thumbnail(data, width [, opts])     -> bytes | nil, message
 *   image.info(data)                          -> {width, height, format, bands} | nil, message
 *
 * Fork safety (see the libvips facts in the design notes): vips_init() at
 * luaopen starts no threads, so the master may load this module before it
 * forks; but an image operation starts worker threads, and a child forked
 * after that deadlocks. So every operation is refused in the master
 * (gdl_is_master). The per-process settings (set_up) are made at luaopen
 * too, in the loader before it forks: none starts a thread, and made
 * there they cost a child nothing. Made in each child, blocking the
 * untrusted loaders alone referenced every operation class (about half a
 * MiB of glib type data), which made up most of what a child wrote to
 * memory it had shared with its loader.
 *
 * Input is checked before any pixel is decoded: its size (max_bytes), its
 * magic bytes (only the four formats are accepted, whatever libvips could
 * read), then width x height from a header-only load (max_pixels), so a
 * decompression bomb costs a header parse. Corrupt, truncated, oversized
 * or unsupported input returns nil and a message; misuse (bad arguments,
 * unknown options) raises.
 *
 * libvips reads the Lua string in place (vips_*load_buffer does not copy):
 * the string is argument 1 and stays on the Lua stack until every image
 * made from it is unreffed, which happens before each function returns.
 * Arguments are checked (and misuse raised) before the first libvips
 * object is made, and results are pushed after the last is released, so
 * a Lua error never leaks one; only the output buffer is held while its
 * bytes are copied into a Lua string.
 */
#include <malloc.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <vips/vips.h>

#include "gdl_gif.h"
#include "gdl_image.h"
#include "gdl_jpeg.h"
#include "gdl_png.h"
#include "gdlua.h"

#define FAST_MAX_PIXELS 16e6  /* gdl_png/gdl_jpeg/gdl_gif take images up to this size */
#define MAX_SIDE        65535 /* thumbnail width and height; JPEG's own limit */

enum { FMT_JPEG, FMT_PNG, FMT_GIF, FMT_WEBP };

static const char *const format_names[] = {"jpeg", "png", "gif", "webp", NULL};
static const char *const format_titles[] = {"JPEG", "PNG", "GIF", "WebP"};

/* Options of convert and thumbnail, after validation. */
typedef struct {
    int quality;          /* JPEG and WebP, 1..100 */
    int compression;      /* PNG zlib level, 0..9 */
    int effort;           /* GIF quantisation effort, 1..10 */
    double dither;        /* GIF dithering, 0..1 */
    int bitdepth;         /* GIF palette: 2^bitdepth colours at most, 1..8 */
    double background[3]; /* alpha flattened onto this for JPEG, 0..255 */
    int strip;            /* drop metadata */
    double max_pixels;    /* width x height of the input (and a thumbnail) */
    double max_bytes;     /* size of the input */
    int height;           /* thumbnail: 0 means "fit the width" */
    int format;           /* thumbnail: output format; -1: the input's */
    int crop;             /* thumbnail: a VipsInteresting */
} opts_t;

/* Defaults. GIF: libvips's own (effort 7, full dithering) take about 3x
 * as long as effort 1 without dithering: 340 against 119 ms for
 * bench_image's 1.2 MP photo, where Imager takes 146 ms. Undithered, the
 * 256-colour palette of effort 1 is still closer to the original than
 * Imager's (mean error 1.3 against 2.1 levels); 7 bits (128 colours)
 * would save another 20% but bands visibly in gradients. */
static const opts_t default_opts = {
    .quality = 75,
    .compression = 6,
    .effort = 1,
    .dither = 0,
    .bitdepth = 8,
    .background = {255, 255, 255},
    .strip = 0,
    .max_pixels = 50e6,
    .max_bytes = 50e6,
    .height = 0,
    .format = -1,
    .crop = VIPS_INTERESTING_NONE,
};

enum { ON_CONVERT = 1, ON_THUMBNAIL = 2, ON_BOTH = 3 };
enum { K_INT, K_WHOLE, K_NUMBER, K_BOOL, K_BACKGROUND, K_FORMAT, K_CROP };

/* The option table: every option, its kind and bounds, where it applies;
 * the parser and its "known:" lists are generated from it. */
static const struct {
    const char *name;
    int kind;
    double min, max;
    size_t offset;
    int where;
} option_defs[] = {
    {"quality", K_INT, 1, 100, offsetof(opts_t, quality), ON_BOTH},
    {"compression", K_INT, 0, 9, offsetof(opts_t, compression), ON_BOTH},
    {"effort", K_INT, 1, 10, offsetof(opts_t, effort), ON_BOTH},
    {"dither", K_NUMBER, 0, 1, offsetof(opts_t, dither), ON_BOTH},
    {"bitdepth", K_INT, 1, 8, offsetof(opts_t, bitdepth), ON_BOTH},
    {"background", K_BACKGROUND, 0, 255, offsetof(opts_t, background), ON_BOTH},
    {"strip", K_BOOL, 0, 1, offsetof(opts_t, strip), ON_BOTH},
    {"max_pixels", K_WHOLE, 1, 1e15, offsetof(opts_t, max_pixels), ON_BOTH},
    {"max_bytes", K_WHOLE, 1, 1e15, offsetof(opts_t, max_bytes), ON_BOTH},
    {"height", K_INT, 1, MAX_SIDE, offsetof(opts_t, height), ON_THUMBNAIL},
    {"format", K_FORMAT, 0, 0, offsetof(opts_t, format), ON_THUMBNAIL},
    {"crop", K_CROP, 0, 0, offsetof(opts_t, crop), ON_THUMBNAIL},
};
#define NOPTIONS (sizeof(option_defs) / sizeof(option_defs[0]))

static const char *const crop_names[] = {"centre", "center", "entropy", "attention", NULL};
static const int crop_values[] = {VIPS_INTERESTING_CENTRE, VIPS_INTERESTING_CENTRE, VIPS_INTERESTING_ENTROPY,
                                  VIPS_INTERESTING_ATTENTION};

/* ---- per-process set-up ----------------------------------------------- */

/* Made once, at luaopen: in the loader before fork, or in a `gdlua run`
 * script. */
static void set_up(void)
{
    /* libvips and libimagequant allocate from many threads; with glibc's
     * default of 8 arenas per core, a child's RSS creeps up over many GIF
     * jobs. Two arenas keep it flat. An arena count the environment set
     * (MALLOC_ARENA_MAX, or glibc.malloc.arena_max in GLIBC_TUNABLES)
     * wins: glibc applied it at start, and mallopt would undo it. */
    const char *tunables = getenv("GLIBC_TUNABLES");

    if (getenv("MALLOC_ARENA_MAX") == NULL && (tunables == NULL || strstr(tunables, "glibc.malloc.arena_max=") == NULL))
        mallopt(M_ARENA_MAX, 2);
    /* glibc moves its mmap and trim thresholds as large blocks come and
     * go, so a process's heap settles at a different size on every run.
     * Fixed thresholds make it settle early and stay: image buffers up to
     * 32 MiB come from the heap (faster than fresh mappings, which fault
     * in zeroed pages on every job) and up to 64 MiB of free heap is kept
     * for the next job rather than given back and faulted in again. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* Every payload is new: caching operations only holds memory. */
    vips_cache_set_max(0);
    /* Only the loaders this module calls (not ImageMagick's, say) parse
     * untrusted input; thumbnail_buffer picks its loader itself. */
    vips_block_untrusted_set(TRUE);
}

static void refuse_in_master(lua_State *L, const char *fn)
{
    if (gdl_is_master)
        luaL_error(L,
                   "gdlua.image.%s: refused in the master process: conversions run in worker processes only "
                   "(libvips threads started before fork would deadlock the children); call it from a job",
                   fn);
}

/* ---- arguments and options -------------------------------------------- */

static const char *check_data(lua_State *L, int idx, size_t *len)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_typerror(L, idx, "string (image bytes)");
    return lua_tolstring(L, idx, len);
}

static int format_index(const char *name)
{
    if (strcmp(name, "jpg") == 0)
        return FMT_JPEG;
    for (int i = 0; format_names[i]; i++)
        if (strcmp(name, format_names[i]) == 0)
            return i;
    return -1;
}

static int check_format(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int f = format_index(name);

    if (f < 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "unknown format \"%s\" (use jpeg, png, gif or webp)", name));
    return f;
}

/* The value at idx as it should read in an error message. */
static const char *show_value(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        return lua_pushfstring(L, "\"%s\"", lua_tostring(L, idx));
    case LUA_TNUMBER:
        return lua_pushfstring(L, "%f", lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? "true" : "false";
    }
    return luaL_typename(L, idx);
}

/* Raises: the option `name` (its value at index v) is not `want`. */
static int bad_option(lua_State *L, const char *fn, const char *name, int v, const char *want)
{
    return luaL_error(L, "gdlua.image.%s: option %s must be %s, got %s", fn, name, want, show_value(L, v));
}

static bool whole_in(lua_State *L, int idx, double min, double max)
{
    lua_Number x;

    if (lua_type(L, idx) != LUA_TNUMBER)
        return false;
    x = lua_tonumber(L, idx);
    return x >= min && x <= max && x == (lua_Number)(long long)x;
}

/* background = 255 (a grey level) or {r, g, b}, each 0..255. */
static void read_background(lua_State *L, const char *fn, int v, double *rgb)
{
    const char *want = "a grey level or an {r, g, b} table of numbers from 0 to 255";

    if (lua_type(L, v) == LUA_TNUMBER) {
        double x = lua_tonumber(L, v);
        if (!(x >= 0 && x <= 255))
            bad_option(L, fn, "background", v, want);
        rgb[0] = rgb[1] = rgb[2] = x;
        return;
    }
    if (!lua_istable(L, v) || lua_objlen(L, v) != 3)
        bad_option(L, fn, "background", v, want);
    for (int i = 0; i < 3; i++) {
        double x;
        lua_rawgeti(L, v, i + 1);
        x = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
        lua_pop(L, 1);
        if (!(x >= 0 && x <= 255))
            bad_option(L, fn, "background", v, want);
        rgb[i] = x;
    }
}

static const char *known_options(lua_State *L, int where)
{
    luaL_Buffer b;
    bool first = true;

    luaL_buffinit(L, &b);
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (!(option_defs[i].where & where))
            continue;
        if (!first)
            luaL_addstring(&b, ", ");
        luaL_addstring(&b, option_defs[i].name);
        first = false;
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* Reads the options table at idx (nil or absent: all defaults). Raises on
 * an unknown option or a bad value, naming the option. */
static void read_opts(lua_State *L, int idx, const char *fn, int where, opts_t *o)
{
    *o = default_opts;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int v = lua_gettop(L), kind;
        const char *name, *want;
        double min, max;
        size_t i;
        char *field;

        if (lua_type(L, v - 1) != LUA_TSTRING)
            luaL_error(L, "gdlua.image.%s: option names must be strings, got a %s", fn, luaL_typename(L, v - 1));
        name = lua_tostring(L, v - 1);
        for (i = 0; i < NOPTIONS; i++)
            if ((option_defs[i].where & where) && strcmp(name, option_defs[i].name) == 0)
                break;
        if (i == NOPTIONS)
            luaL_error(L, "gdlua.image.%s: unknown option %s (known: %s)", fn, name, known_options(L, where));
        field = (char *)o + option_defs[i].offset;
        kind = option_defs[i].kind;
        min = option_defs[i].min;
        max = option_defs[i].max;
        switch (kind) {
        case K_INT:
        case K_WHOLE:
            if (!whole_in(L, v, min, max)) {
                want = kind == K_INT ? lua_pushfstring(L, "a whole number from %d to %d", (int)min, (int)max)
                                     : "a whole number from 1";
                bad_option(L, fn, name, v, want);
            }
            if (kind == K_INT)
                *(int *)field = (int)lua_tonumber(L, v);
            else
                *(double *)field = lua_tonumber(L, v);
            break;
        case K_NUMBER:
            if (lua_type(L, v) != LUA_TNUMBER || !(lua_tonumber(L, v) >= min && lua_tonumber(L, v) <= max))
                bad_option(L, fn, name, v, lua_pushfstring(L, "a number from %d to %d", (int)min, (int)max));
            *(double *)field = lua_tonumber(L, v);
            break;
        case K_BOOL:
            if (lua_type(L, v) != LUA_TBOOLEAN)
                bad_option(L, fn, name, v, "a boolean");
            *(int *)field = lua_toboolean(L, v);
            break;
        case K_BACKGROUND:
            read_background(L, fn, v, (double *)field);
            break;
        case K_FORMAT:
            if (lua_type(L, v) != LUA_TSTRING || format_index(lua_tostring(L, v)) < 0)
                bad_option(L, fn, name, v, "jpeg, png, gif or webp");
            *(int *)field = format_index(lua_tostring(L, v));
            break;
        case K_CROP:
            if (lua_type(L, v) == LUA_TBOOLEAN) {
                *(int *)field = lua_toboolean(L, v) ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE;
                break;
            }
            for (int c = 0;; c++) {
                if (crop_names[c] == NULL)
                    bad_option(L, fn, name, v, "a boolean, or centre, entropy or attention");
                if (lua_type(L, v) == LUA_TSTRING && strcmp(lua_tostring(L, v), crop_names[c]) == 0) {
                    *(int *)field = crop_values[c];
                    break;
                }
            }
            break;
        }
        lua_settop(L, v - 1); /* the key stays for lua_next */
    }
}

/* ---- failures: a message, pushed once libvips is done ------------------ */

/* Messages are built in a buffer while libvips objects are alive and
 * pushed (nil, "gdlua.image: ...") only after they are released. */
#define MSG_MAX 1024

/* "50 MP" / "76800 pixels": the message's sizes in the unit a reader
 * expects. */
static const char *amount(char *buf, size_t len, double n, const char *mega, const char *unit)
{
    if (n >= 1e6)
        snprintf(buf, len, "%.4g %s", n / 1e6, mega);
    else
        snprintf(buf, len, "%.0f %s", n, unit);
    return buf;
}

static int push_failure(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushfstring(L, "gdlua.image: %s", msg);
    return 2;
}

/* The first line of libvips's error buffer (the cause; later lines are
 * the operations it failed up through), then clears the buffer. */
static const char *vips_reason(char *buf, size_t len)
{
    snprintf(buf, len, "%s", vips_error_buffer());
    vips_error_clear();
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* ---- input ------------------------------------------------------------ */

static int sniff(const unsigned char *p, size_t n)
{
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return FMT_JPEG;
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return FMT_PNG;
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return FMT_GIF;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return FMT_WEBP;
    return -1;
}

/* A header-only load: the pixels are decoded later, when something reads
 * them. Sequential access lets a conversion decode and encode strip by
 * strip; truncated input fails instead of coming out grey. */
static int load(const char *data, size_t len, int fmt, VipsAccess access, VipsImage **out)
{
    void *buf = (void *)data; /* libvips only reads it */

    switch (fmt) {
    case FMT_JPEG:
        return vips_jpegload_buffer(buf, len, out, "access", access, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    case FMT_PNG:
        return vips_pngload_buffer(buf, len, out, "access", access, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    case FMT_GIF:
        return vips_gifload_buffer(buf, len, out, "access", access, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    default:
        return vips_webpload_buffer(buf, len, out, "access", access, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    }
}

/* Checks width x height against max_pixels; what names the image. */
static int check_pixels(const VipsImage *im, const opts_t *o, const char *what, char *msg)
{
    double pixels = (double)im->Xsize * im->Ysize;
    char a[32], b[32];

    if (pixels <= o->max_pixels)
        return 0;
    snprintf(msg, MSG_MAX, "%s %dx%d = %s, over max_pixels %s", what, im->Xsize, im->Ysize,
             amount(a, sizeof(a), pixels, "MP", "pixels"), amount(b, sizeof(b), o->max_pixels, "MP", "pixels"));
    return -1;
}

/* Checks the input against the limits and opens it: 0 with *out set (the
 * caller unrefs it) and its format in *fmt, or -1 with a message. */
static int open_input(const char *data, size_t len, const opts_t *o, VipsAccess access, int *fmt, VipsImage **out,
                      char *msg)
{
    char a[32], b[32], why[512];

    *out = NULL;
    if ((double)len > o->max_bytes) {
        snprintf(msg, MSG_MAX, "input is %s, over max_bytes %s", amount(a, sizeof(a), (double)len, "MB", "bytes"),
                 amount(b, sizeof(b), o->max_bytes, "MB", "bytes"));
        return -1;
    }
    if (len == 0) {
        snprintf(msg, MSG_MAX, "input is empty, not a JPEG, PNG, GIF or WebP image");
        return -1;
    }
    *fmt = sniff((const unsigned char *)data, len);
    if (*fmt < 0) {
        snprintf(msg, MSG_MAX, "input is not a JPEG, PNG, GIF or WebP image");
        return -1;
    }
    vips_error_clear();
    if (load(data, len, *fmt, access, out) != 0) {
        vips_reason(why, sizeof(why));
        snprintf(msg, MSG_MAX, "cannot read the %s header (truncated or corrupt input)%s%s", format_titles[*fmt],
                 *why ? ": " : "", why);
        return -1;
    }
    if (check_pixels(*out, o, "image is", msg) != 0) {
        g_object_unref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static void free_pixels(VipsImage *im, void *pixels)
{
    free(pixels);
}

/* The PNG's pixels decoded by gdl_png.c (twice as fast as libvips's
 * pngload, see there) as an image in memory in place of the header-only
 * *img, which it unrefs; the image frees the pixels when it closes. The
 * pixels and resolution are libvips's own. */
static void png_in_memory(unsigned char *pixels, const gdl_png_info_t *info, VipsImage **img)
{
    VipsImage *mem = vips_image_new_from_memory(pixels, (size_t)info->width * info->height * info->bands, info->width,
                                                info->height, info->bands, VIPS_FORMAT_UCHAR);

    if (mem == NULL) {
        free(pixels);
        vips_error_clear();
        return;
    }
    g_signal_connect(mem, "postclose", G_CALLBACK(free_pixels), pixels);
    mem->Type = info->bands <= 2 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
    mem->Xres = info->xres;
    mem->Yres = info->yres;
    g_object_unref(*img);
    *img = mem;
}

/* ---- the fast path: PNGs gdl_png.c decoded --------------------------- */

/* Alpha flattened onto an integer background in place, bands - 1 bands
 * left: vips_flatten's arithmetic for 8-bit images, (p a + bg (255 -
 * a)) / 255 truncated. */
static void flatten_pixels(unsigned char *px, size_t n, int bands, const double *bg)
{
    const int colour = bands - 1;
    unsigned char *q = px;

    for (size_t i = 0; i < n; i++, px += bands, q += colour) {
        unsigned a = px[colour];
        for (int k = 0; k < colour; k++)
            q[k] = (unsigned char)((px[k] * a + (unsigned)bg[k] * (255 - a)) / 255);
    }
}

/* The header's blob `name` when it has one, for gdl_jpeg's meta. */
static const void *header_blob(VipsImage *header, const char *name, size_t *len)
{
    const void *data = NULL;

    *len = 0;
    if (vips_image_get_typeof(header, name) == 0 || vips_image_get_blob(header, name, &data, len) != 0) {
        vips_error_clear();
        return NULL;
    }
    return data;
}

/* The JPEG libvips's jpegsave would write for the decoded pixels (alpha
 * flattened as encode() would), the metadata taken from libvips's own
 * header: 0 with *out, or -1 when that would differ (Exif in the file,
 * a background that is not whole levels or is coloured behind grey):
 * the caller uses libvips. The pixels may be flattened in place. */
static int fast_jpeg(VipsImage *header, const gdl_png_info_t *png, unsigned char *pixels, const opts_t *o,
                     unsigned char **out, size_t *len)
{
    const double *bg = o->background;
    int bands = png->bands;
    gdl_jpeg_meta_t meta = {NULL, NULL, 0, 0};

    if (vips_image_get_typeof(header, VIPS_META_EXIF_NAME) != 0)
        return -1; /* libvips merges its Exif with the file's */
    if (bands == 2 || bands == 4) {
        for (int k = 0; k < 3; k++)
            if (bg[k] != (int)bg[k])
                return -1;
        if (bands == 2 && !(bg[0] == bg[1] && bg[1] == bg[2]))
            return -1; /* libvips makes it sRGB first */
        flatten_pixels(pixels, (size_t)png->width * png->height, bands, bg);
        bands--;
    }
    if (!o->strip) {
        meta.xmp = header_blob(header, VIPS_META_XMP_NAME, &meta.xmp_len);
        meta.icc = header_blob(header, VIPS_META_ICC_NAME, &meta.icc_len);
        /* libvips drops a profile the saved image cannot take (too few
         * bands, or corrupt). */
        if (meta.icc) {
            VipsImage *saved = vips_image_new_from_memory(pixels, (size_t)png->width * png->height * bands, png->width,
                                                          png->height, bands, VIPS_FORMAT_UCHAR);
            if (saved == NULL || !vips_icc_is_compatible_profile(saved, meta.icc, meta.icc_len))
                meta.icc = NULL;
            if (saved)
                g_object_unref(saved);
            vips_error_clear();
        }
    }
    return gdl_jpeg_encode(pixels, png->width, png->height, bands, o->quality, png->xres, png->yres, o->strip, &meta,
                           out, len);
}

/* A conversion without libvips from what gdl_png.c decoded: 0 with
 * *out (malloc'd), or -1 for libvips to do (the pixels are still the
 * caller's, possibly flattened: only fit for the libvips path when it
 * asked for nothing from them). */
static int fast_convert(VipsImage *header, const gdl_png_info_t *png, unsigned char *pixels, int to, const opts_t *o,
                        unsigned char **out, size_t *len)
{
    /* GIF undithered: gdl_gif.c's palette and remap (any alpha as
     * libvips takes it); libvips's gifsave reads no metadata. */
    if (to == FMT_GIF && o->dither == 0)
        return gdl_gif_encode(pixels, png->width, png->height, png->bands, o->effort, o->bitdepth, out, len);
    if (to == FMT_JPEG)
        return fast_jpeg(header, png, pixels, o, out, len);
    return -1;
}

/* ---- output ----------------------------------------------------------- */

/* JPEG has no alpha: flatten onto the background, in the image's own
 * range (65535 for 16-bit images). A grey image with a coloured
 * background becomes sRGB first. Returns a new reference in *out. */
static int flatten(VipsImage *in, const double *bg, VipsImage **out)
{
    VipsImage *rgb = NULL;
    VipsArrayDouble *arr;
    double scale, v[3];
    int rc;

    if (in->Bands <= 2 && !(bg[0] == bg[1] && bg[1] == bg[2])) {
        if (vips_colourspace(in, &rgb, VIPS_INTERPRETATION_sRGB, NULL) != 0)
            return -1;
        in = rgb;
    }
    scale = in->Type == VIPS_INTERPRETATION_RGB16 || in->Type == VIPS_INTERPRETATION_GREY16 ? 257 : 1;
    for (int i = 0; i < 3; i++)
        v[i] = bg[i] * scale;
    arr = vips_array_double_new(v, 3);
    rc = vips_flatten(in, out, "background", arr, "max_alpha", 255 * scale, NULL);
    vips_area_unref(VIPS_AREA(arr));
    if (rgb)
        g_object_unref(rgb);
    return rc;
}

/* Encodes img as `to` into *buf (g_free it), or -1 with a message saying
 * what could not be done (`doing`) and why. Decoding happens here too
 * (lazily), so a truncated input reports from here. */
static int encode(VipsImage *img, int to, const opts_t *o, void **buf, size_t *len, const char *doing, char *msg)
{
    VipsImage *flat = NULL;
    char why[512];
    int rc = 0;

    *buf = NULL;
    vips_error_clear();
    if (to == FMT_JPEG && vips_image_hasalpha(img)) {
        rc = flatten(img, o->background, &flat);
        img = flat;
    }
    if (rc == 0)
        switch (to) {
        case FMT_JPEG:
            rc = vips_jpegsave_buffer(img, buf, len, "Q", o->quality, "strip", o->strip, NULL);
            break;
        case FMT_PNG:
            rc = vips_pngsave_buffer(img, buf, len, "compression", o->compression, "strip", o->strip, NULL);
            break;
        case FMT_GIF:
            rc = vips_gifsave_buffer(img, buf, len, "effort", o->effort, "dither", o->dither, "bitdepth", o->bitdepth,
                                     "strip", o->strip, NULL);
            break;
        default:
            rc = vips_webpsave_buffer(img, buf, len, "Q", o->quality, "strip", o->strip, NULL);
            break;
        }
    if (flat)
        g_object_unref(flat);
    if (rc != 0) {
        g_free(*buf);
        *buf = NULL;
        snprintf(msg, MSG_MAX, "cannot %s: %s (truncated or corrupt input?)", doing, vips_reason(why, sizeof(why)));
        return -1;
    }
    return 0;
}

/* Pushes the encoded bytes and frees them. */
static int push_bytes(lua_State *L, void *buf, size_t len)
{
    lua_pushlstring(L, buf, len);
    g_free(buf);
    return 1;
}

/* ---- the API ---------------------------------------------------------- */

/* image.convert without Lua: 0 with *out and *out_len (g_free() it;
 * GLib's heap is malloc's), or -1 with a message in msg. */
static int convert(const char *data, size_t len, int to, const opts_t *o, void **out, size_t *out_len, char *msg)
{
    int from, rc;
    VipsImage *in;
    gdl_png_info_t png;
    unsigned char *pixels, *encoded;
    char doing[64];

    if (open_input(data, len, o, VIPS_ACCESS_SEQUENTIAL, &from, &in, msg) != 0)
        return -1;
    /* The fast path holds the whole image (and a GIF's palette indexes):
     * past FAST_MAX_PIXELS libvips streams it instead, so a small, highly
     * compressed PNG cannot make a job allocate hundreds of MB. */
    if (from == FMT_PNG && gdl_png_decode(data, len, o->max_pixels < FAST_MAX_PIXELS ? o->max_pixels : FAST_MAX_PIXELS,
                                          &png, &pixels) == 0) {
        if (fast_convert(in, &png, pixels, to, o, &encoded, out_len) == 0) {
            free(pixels);
            g_object_unref(in);
            *out = encoded;
            return 0;
        }
        /* libvips from the decoded pixels when they are its whole image
         * and fast_convert left them as they were (it flattens for JPEG
         * only), else from the file. */
        if (png.plain && !(to == FMT_JPEG && (png.bands == 2 || png.bands == 4)))
            png_in_memory(pixels, &png, &in);
        else
            free(pixels);
    }
    snprintf(doing, sizeof(doing), "convert the %s input to %s", format_titles[from], format_titles[to]);
    rc = encode(in, to, o, out, out_len, doing, msg);
    g_object_unref(in);
    return rc;
}

/* image.convert(data, format [, opts]) -> bytes | nil, message */
static int l_convert(lua_State *L)
{
    size_t len, out_len;
    const char *data = check_data(L, 1, &len);
    int to = check_format(L, 2);
    opts_t o;
    void *out;
    char msg[MSG_MAX];

    refuse_in_master(L, "convert");
    read_opts(L, 3, "convert", ON_CONVERT, &o);
    if (convert(data, len, to, &o, &out, &out_len, msg) != 0)
        return push_failure(L, msg);
    return push_bytes(L, out, out_len);
}

/* image.thumbnail(data, width [, opts]) -> bytes | nil, message
 * Without height: width wide, aspect kept. With height: fits in width x
 * height, or fills it exactly with crop. */
static int l_thumbnail(lua_State *L)
{
    size_t len, out_len;
    const char *data = check_data(L, 1, &len);
    int width, height, from, to, rc;
    opts_t o;
    VipsImage *in, *thumb;
    void *out;
    char msg[MSG_MAX], why[512], doing[64];

    luaL_argcheck(L, whole_in(L, 2, 1, MAX_SIDE), 2, "width must be a whole number from 1 to 65535");
    width = (int)lua_tonumber(L, 2);
    refuse_in_master(L, "thumbnail");
    read_opts(L, 3, "thumbnail", ON_THUMBNAIL, &o);
    if (open_input(data, len, &o, VIPS_ACCESS_RANDOM, &from, &in, msg) != 0)
        return push_failure(L, msg);
    g_object_unref(in); /* the header was for the limits; thumbnail reloads, shrinking on load */
    to = o.format >= 0 ? o.format : from;
    /* No height: a height no image reaches, so the width decides. */
    height = o.height ? o.height : o.crop != VIPS_INTERESTING_NONE ? width : 10000000;
    vips_error_clear();
    /* The option string, not "fail_on": libvips 8.14 hands fail_on only to
     * file loaders, and a truncated buffer would come out grey. */
    if (vips_thumbnail_buffer((void *)data, len, &thumb, width, "height", height, "crop", o.crop, "option_string",
                              "fail_on=truncated", NULL) != 0) {
        snprintf(msg, sizeof(msg), "cannot make a thumbnail of the %s input: %s (truncated or corrupt input?)",
                 format_titles[from], vips_reason(why, sizeof(why)));
        return push_failure(L, msg);
    }
    snprintf(doing, sizeof(doing), "make a %s thumbnail of the %s input", format_titles[to], format_titles[from]);
    rc = check_pixels(thumb, &o, "thumbnail would be", msg);
    if (rc == 0)
        rc = encode(thumb, to, &o, &out, &out_len, doing, msg);
    g_object_unref(thumb);
    return rc == 0 ? push_bytes(L, out, out_len) : push_failure(L, msg);
}

/* image.info(data) -> {width, height, format, bands} | nil, message
 * Reads the header only, with no limit: it is how a job learns the size. */
static int l_info(lua_State *L)
{
    size_t len;
    const char *data = check_data(L, 1, &len);
    int fmt, width, height, bands;
    opts_t o = default_opts;
    VipsImage *in;
    char msg[MSG_MAX];

    refuse_in_master(L, "info");
    o.max_pixels = o.max_bytes = HUGE_VAL;
    if (open_input(data, len, &o, VIPS_ACCESS_RANDOM, &fmt, &in, msg) != 0)
        return push_failure(L, msg);
    width = in->Xsize;
    height = in->Ysize;
    bands = in->Bands;
    g_object_unref(in);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, width);
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, height);
    lua_setfield(L, -2, "height");
    lua_pushstring(L, format_names[fmt]);
    lua_setfield(L, -2, "format");
    lua_pushinteger(L, bands);
    lua_setfield(L, -2, "bands");
    return 1;
}

static const luaL_Reg image_api[] = {
    {"convert", l_convert},
    {"thumbnail", l_thumbnail},
    {"info", l_info},
    {NULL, NULL},
};

/* libvips warns about bad input on stderr ("not enough data"); the job
 * gets the failure as nil, message, so the details go to the debug log. */
static void on_vips_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
    gdl_debug("libvips: %s", msg);
}

int luaopen_gdlua_image(lua_State *L)
{
    /* Registers types and reads settings; starts no thread, so it is safe
     * in the master before fork. */
    if (vips_init("gdlua") != 0)
        return luaL_error(L, "gdlua.image: cannot start libvips: %s", vips_error_buffer());
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO, on_vips_log, NULL);
    set_up();
    lua_newtable(L);
    luaL_register(L, NULL, image_api);
    lua_pushstring(L, vips_version_string());
    lua_setfield(L, -2, "vips_version");
    return 1;
}

/* ---- for C: the benchmark's codec floor --------------------------------- */

int gdl_image_init(void)
{
    if (vips_init("gdlua") != 0)
        return -1;
    set_up();
    return 0;
}

int gdl_image_convert(const void *data, size_t len, const char *format, void **out, size_t *out_len, char *msg,
                      size_t msg_len)
{
    char m[MSG_MAX];
    int to = format_index(format);

    *out = NULL;
    if (to < 0) {
        snprintf(msg, msg_len, "unknown format %s", format);
        return -1;
    }
    if (convert(data, len, to, &default_opts, out, out_len, m) != 0) {
        snprintf(msg, msg_len, "%s", m);
        return -1;
    }
    return 0;
}
