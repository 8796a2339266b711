/*
 * gdl_roff.h: text for man pages, shared by gdlua --man and
 * gdlua-console --man (both generated from their tables at build time).
 */
#ifndef GDL_ROFF_H
#define GDL_ROFF_H

#include <stdio.h>

/* Writes text with what roff would read as markup escaped: backslashes,
 * dashes, and a '.' or '\'' starting a line. */
void gdl_roff(FILE *out, const char *text);

/* ".TP" with a bold name, an optional italic argument, then the text. */
void gdl_roff_item(FILE *out, const char *name, const char *arg, const char *text);

#endif
