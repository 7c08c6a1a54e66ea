/* csv.h - an RFC 4180 record reader for `patto import`: comma separated,
 * fields optionally in double quotes, "" inside quotes is a quote, quoted
 * fields may hold commas and newlines; records end with LF or CRLF.
 * The reader works on a caller-owned buffer holding the whole input and
 * never allocates: fields are unescaped in place. Pure module. */
#ifndef PT_CSV_H
#define PT_CSV_H

#include <stddef.h>

#define PT_CSV_MAX_FIELDS 32

typedef struct pt_csv {
    char *buf; /* mutable input; fields point into it */
    size_t len;
    size_t pos;
    size_t line; /* 1-based line on which the record last returned ends */
} pt_csv;

/* buf must hold len + 1 bytes: the last field is NUL-terminated at buf[len]. */
void pt_csv_init(pt_csv *c, char *buf, size_t len);

/* Reads the next record. Returns the number of fields (>= 1) and fills
 * fields[i] (NUL-terminated, pointing into buf) and lens[i]; returns 0 at the
 * end of input, -1 on a malformed record (unterminated quote, a character
 * after a closing quote, more than PT_CSV_MAX_FIELDS fields). A blank line
 * is skipped. */
int pt_csv_next(pt_csv *c, char *fields[PT_CSV_MAX_FIELDS], size_t lens[PT_CSV_MAX_FIELDS]);

#endif
