/*
 * unit.h: the few macros the C unit tests need. A failed check prints
 * file:line and both values, and the test exits 1 at the end.
 */
#ifndef GDL_UNIT_H
#define GDL_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures, unit_checks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        unit_checks++;                                                               \
        if (!(cond)) {                                                               \
            unit_failures++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_INT(got, want)                                                                     \
    do {                                                                                         \
        long long g_ = (got), w_ = (want);                                                       \
        unit_checks++;                                                                           \
        if (g_ != w_) {                                                                          \
            unit_failures++;                                                                     \
            fprintf(stderr, "%s:%d: %s is %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_); \
        }                                                                                        \
    } while (0)

#define CHECK_STR(got, want)                                                                         \
    do {                                                                                             \
        const char *g_ = (got), *w_ = (want);                                                        \
        unit_checks++;                                                                               \
        if (strcmp(g_, w_) != 0) {                                                                   \
            unit_failures++;                                                                         \
            fprintf(stderr, "%s:%d: %s is \"%s\", want \"%s\"\n", __FILE__, __LINE__, #got, g_, w_); \
        }                                                                                            \
    } while (0)

#define UNIT_END()                                                    \
    do {                                                              \
        printf("%d checks, %d failed\n", unit_checks, unit_failures); \
        return unit_failures ? 1 : 0;                                 \
    } while (0)

#endif
