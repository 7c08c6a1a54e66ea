/* jsonscan.h - a cheap pre-scan of a request body before it reaches the
 * JSON parser: bounded nesting depth (so that a hostile body cannot make
 * the parser recurse deeply) and well-formed UTF-8 (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF). Strings are tracked so that
 * brackets inside them do not count. Pure module. */
#ifndef PT_JSONSCAN_H
#define PT_JSONSCAN_H

#include <stddef.h>

#define PT_JSON_MAX_DEPTH 16

typedef enum pt_jsonscan_result {
    PT_JSONSCAN_OK = 0,
    PT_JSONSCAN_TOO_DEEP,
    PT_JSONSCAN_BAD_UTF8,
    PT_JSONSCAN_NUL, /* a raw NUL byte anywhere */
} pt_jsonscan_result;

/* *offset (may be NULL) receives the byte offset of the problem. */
pt_jsonscan_result pt_jsonscan(const char *buf, size_t len, size_t max_depth, size_t *offset);

/* Whole-buffer UTF-8 validity, same rules; used for CSV and query strings. */
int pt_utf8_valid(const char *buf, size_t len);

#endif
