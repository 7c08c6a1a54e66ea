#include "jsonscan.h"

/* Length of the well-formed UTF-8 sequence at p (RFC 3629, table 3-7 of the
 * Unicode standard), or 0 if the bytes there are not one. The second-byte
 * ranges are what rule out overlongs (C0, C1, E0 80..9F, F0 80..8F),
 * surrogates (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF). */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;

    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0; /* stray continuation byte, C0/C1, or F5..FF */
    }
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

pt_jsonscan_result pt_jsonscan(const char *buf, size_t len, size_t max_depth, size_t *offset)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t depth = 0;
    int in_string = 0, escaped = 0;
    pt_jsonscan_result res = PT_JSONSCAN_OK;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        if (c == 0) {
            res = PT_JSONSCAN_NUL;
            break;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq(p + i, len - i);
            if (n == 0) {
                res = PT_JSONSCAN_BAD_UTF8;
                break;
            }
            escaped = 0;
            i += n;
            continue;
        }
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (depth == max_depth) {
                res = PT_JSONSCAN_TOO_DEEP;
                break;
            }
            depth++;
        } else if (c == ']' || c == '}') {
            /* Unbalanced closers are the parser's business, not a depth
             * risk; only keep the counter from wrapping. */
            if (depth > 0) depth--;
        }
        i++;
    }
    if (offset) *offset = res == PT_JSONSCAN_OK ? len : i;
    return res;
}

int pt_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        /* NUL is valid UTF-8 but every user of this check turns the bytes
         * into C strings, where it would silently cut the value short. */
        if (p[i] == 0) return 0;
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) return 0;
        i += n;
    }
    return 1;
}
