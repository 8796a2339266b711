/*
 * test_jpeg.c: gdl_jpeg_encode (runtime/modules/gdl_jpeg.c) writes a
 * whole JPEG however far its buffer grows, and when a growth fails it
 * returns -1 with nothing leaked or freed twice (the realloc below fails
 * on demand; glibc aborts on a double free). The failing realloc is left
 * out of sanitizer builds, whose allocator it would bypass.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "modules/gdl_jpeg.h"
#include "unit.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_INTERPOSE 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NO_INTERPOSE 1
#endif

#ifndef NO_INTERPOSE
static int fail_realloc, reallocs;

void *realloc(void *p, size_t n)
{
    static void *(*real)(void *, size_t);

    if (real == NULL)
        real = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    reallocs++;
    return fail_realloc ? NULL : real(p, n);
}
#endif

static int whole_jpeg(const unsigned char *b, size_t n)
{
    return n > 4 && b[0] == 0xff && b[1] == 0xd8 && b[n - 2] == 0xff && b[n - 1] == 0xd9;
}

int main(void)
{
    int w = 512, h = 512;
    unsigned char *px = malloc((size_t)w * h * 3), *out = NULL;
    size_t len = 0;
    unsigned seed = 1;

    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        px[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
    /* Noise at quality 90 is several times the first buffer. */
    CHECK_INT(gdl_jpeg_encode(px, w, h, 3, 90, 2.834, 2.834, 0, NULL, &out, &len), 0);
    CHECK(whole_jpeg(out, len));
    CHECK(len > (size_t)w * h * 3 / 8);
    free(out);
#ifndef NO_INTERPOSE
    CHECK(reallocs > 0);
    fail_realloc = 1;
    out = (unsigned char *)"untouched";
    CHECK_INT(gdl_jpeg_encode(px, w, h, 3, 90, 2.834, 2.834, 0, NULL, &out, &len), -1);
    CHECK(out == NULL);
    fail_realloc = 0;
#endif
    memset(px, 128, (size_t)w * h * 3); /* flat: fits the first buffer */
    CHECK_INT(gdl_jpeg_encode(px, w, h, 3, 75, 2.834, 2.834, 1, NULL, &out, &len), 0);
    CHECK(whole_jpeg(out, len));
    free(out);
    free(px);
    UNIT_END();
}
