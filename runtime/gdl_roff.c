/*
 * gdl_roff.c: escaping and list items for the generated man pages
 * (gdl_roff.h).
 */
#include <stdbool.h>

#include "gdl_roff.h"

void gdl_roff(FILE *out, const char *text)
{
    bool line_start = true;

    for (const char *s = text; *s; s++) {
        if (line_start && (*s == '.' || *s == '\''))
            fputs("\\&", out);
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
        line_start = *s == '\n';
    }
}

void gdl_roff_item(FILE *out, const char *name, const char *arg, const char *text)
{
    fputs(".TP\n\\fB", out);
    gdl_roff(out, name);
    fputs("\\fR", out);
    if (arg) {
        fputs(" \\fI", out);
        gdl_roff(out, arg);
        fputs("\\fR", out);
    }
    fputc('\n', out);
    gdl_roff(out, text);
    fputc('\n', out);
}
