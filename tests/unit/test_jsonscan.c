#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonscan.h"

/* Scans an exact-size heap copy so that ASan sees any read past len. */
static pt_jsonscan_result scan_n(const char *s, size_t len, size_t max_depth, size_t *off)
{
    char *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    memcpy(p, s, len);
    pt_jsonscan_result r = pt_jsonscan(p, len, max_depth, off);
    free(p);
    return r;
}

static void expect_scan_n(const char *s, size_t len, pt_jsonscan_result want, size_t want_off)
{
    size_t off = (size_t)-1;
    pt_jsonscan_result r = scan_n(s, len, PT_JSON_MAX_DEPTH, &off);
    cr_assert_eq(r, want, "result %d want %d", (int)r, (int)want);
    if (want != PT_JSONSCAN_OK) cr_assert_eq(off, want_off, "offset %zu want %zu", off, want_off);
}

static void expect_scan(const char *s, pt_jsonscan_result want, size_t want_off)
{
    expect_scan_n(s, strlen(s), want, want_off);
}

static int utf8_ok(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    memcpy(p, s, len);
    int r = pt_utf8_valid(p, len);
    free(p);
    return r;
}

/* depth opening brackets, then the matching closers */
static char *nested(size_t depth, char open, char close)
{
    char *s = malloc(2 * depth + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < depth; i++) {
        s[i] = open;
        s[2 * depth - 1 - i] = close;
    }
    s[2 * depth] = '\0';
    return s;
}

Test(jsonscan, plain_documents_pass)
{
    expect_scan("", PT_JSONSCAN_OK, 0);
    expect_scan("{}", PT_JSONSCAN_OK, 0);
    expect_scan("[]", PT_JSONSCAN_OK, 0);
    expect_scan("42", PT_JSONSCAN_OK, 0);
    expect_scan("\"text\"", PT_JSONSCAN_OK, 0);
    expect_scan("{\"subject\":\"sub_x\",\"purposes\":[\"a\",\"b\"],\"n\":{\"k\":[1,2,{}]}}",
                PT_JSONSCAN_OK, 0);
    size_t off = 99;
    cr_assert_eq(pt_jsonscan(NULL, 0, PT_JSON_MAX_DEPTH, &off), PT_JSONSCAN_OK);
    cr_assert_eq(pt_jsonscan("{}", 2, PT_JSON_MAX_DEPTH, NULL), PT_JSONSCAN_OK);
}

Test(jsonscan, depth_exactly_at_limit_passes)
{
    char *a = nested(PT_JSON_MAX_DEPTH, '[', ']');
    char *o = nested(PT_JSON_MAX_DEPTH, '{', '}');
    expect_scan(a, PT_JSONSCAN_OK, 0);
    expect_scan(o, PT_JSONSCAN_OK, 0);
    free(a);
    free(o);
}

Test(jsonscan, depth_one_above_limit_fails_at_the_bracket)
{
    char *a = nested(PT_JSON_MAX_DEPTH + 1, '[', ']');
    char *o = nested(PT_JSON_MAX_DEPTH + 1, '{', '}');
    expect_scan(a, PT_JSONSCAN_TOO_DEEP, PT_JSON_MAX_DEPTH);
    expect_scan(o, PT_JSONSCAN_TOO_DEEP, PT_JSON_MAX_DEPTH);
    free(a);
    free(o);
}

Test(jsonscan, mixed_brackets_count_together)
{
    /* {"a":[{"b":[ ... alternating, depth 17 */
    char buf[512];
    size_t n = 0;
    for (int i = 0; i < PT_JSON_MAX_DEPTH + 1; i++) {
        if (i % 2 == 0) {
            memcpy(buf + n, "{\"k\":", 5);
            n += 5;
        } else {
            buf[n++] = '[';
        }
    }
    buf[n] = '\0';
    size_t off = 0;
    cr_assert_eq(scan_n(buf, n, PT_JSON_MAX_DEPTH, &off), PT_JSONSCAN_TOO_DEEP);
    cr_assert_eq(buf[off], '{');
    cr_assert_eq(off, n - 5);
    /* one level less is fine, even unclosed: balance is the parser's job */
    cr_assert_eq(scan_n(buf, n - 5, PT_JSON_MAX_DEPTH, &off), PT_JSONSCAN_OK);
}

Test(jsonscan, max_depth_parameter_is_honoured)
{
    size_t off;
    cr_assert_eq(scan_n("[[]]", 4, 2, &off), PT_JSONSCAN_OK);
    cr_assert_eq(scan_n("[[[]]]", 6, 2, &off), PT_JSONSCAN_TOO_DEEP);
    cr_assert_eq(off, 2);
    cr_assert_eq(scan_n("1", 1, 0, &off), PT_JSONSCAN_OK);
    cr_assert_eq(scan_n("[]", 2, 0, &off), PT_JSONSCAN_TOO_DEEP);
    cr_assert_eq(off, 0);
    cr_assert_eq(scan_n("[]", 2, 1, &off), PT_JSONSCAN_OK);
}

Test(jsonscan, siblings_do_not_accumulate)
{
    char buf[4096];
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < 100; i++) {
        char *s = nested(PT_JSON_MAX_DEPTH - 1, '[', ']');
        size_t l = strlen(s);
        memcpy(buf + n, s, l);
        n += l;
        buf[n++] = ',';
        free(s);
    }
    buf[n - 1] = ']';
    expect_scan_n(buf, n, PT_JSONSCAN_OK, 0);
}

Test(jsonscan, brackets_inside_strings_do_not_count)
{
    expect_scan("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]", PT_JSONSCAN_OK, 0);
    expect_scan("{\"{{{{{{{{{{{{{{{{{{{{{{{{\":\"]]]]]]]]]]]]]]]]]]]]]]]]]]\"}", PT_JSONSCAN_OK,
                0);
    /* and closers inside strings do not make room for more openers */
    char buf[256];
    char *deep = nested(PT_JSON_MAX_DEPTH, '[', ']');
    snprintf(buf, sizeof buf, "[\"]]]]]]]]\",%s]", deep);
    free(deep);
    char *at = strchr(buf, ',');
    expect_scan(buf, PT_JSONSCAN_TOO_DEEP, (size_t)(at - buf) + PT_JSON_MAX_DEPTH);
}

Test(jsonscan, escaped_quotes_keep_the_string_open)
{
    /* \" does not end the string, so the brackets after it are text */
    expect_scan("[\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]", PT_JSONSCAN_OK, 0);
    expect_scan("[\"a\\\\\\\"[[[[[[[[[[[[[[[[[[[[[[\"]", PT_JSONSCAN_OK, 0);
    /* \\ is a whole escape: the quote after it does close the string */
    char buf[256];
    char *deep = nested(PT_JSON_MAX_DEPTH, '[', ']');
    snprintf(buf, sizeof buf, "[\"\\\\\",%s]", deep);
    free(deep);
    char *at = strchr(buf, ',');
    expect_scan(buf, PT_JSONSCAN_TOO_DEEP, (size_t)(at - buf) + PT_JSON_MAX_DEPTH);
}

Test(jsonscan, unterminated_string_swallows_brackets)
{
    /* Still just a pre-scan: the parser refuses the document later. */
    expect_scan("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[", PT_JSONSCAN_OK, 0);
}

Test(jsonscan, unbalanced_closers_do_not_buy_depth)
{
    char buf[256];
    char *deep = nested(PT_JSON_MAX_DEPTH + 1, '[', ']');
    snprintf(buf, sizeof buf, "]]]]]]]]}}}}%s", deep);
    free(deep);
    expect_scan(buf, PT_JSONSCAN_TOO_DEEP, 12 + PT_JSON_MAX_DEPTH);
}

Test(jsonscan, deep_hostile_body_is_linear)
{
    /* A megabyte of '[' must be refused quickly and without recursion. */
    size_t n = 1 << 20;
    char *p = malloc(n);
    cr_assert_not_null(p);
    memset(p, '[', n);
    size_t off = 0;
    cr_assert_eq(pt_jsonscan(p, n, PT_JSON_MAX_DEPTH, &off), PT_JSONSCAN_TOO_DEEP);
    cr_assert_eq(off, PT_JSON_MAX_DEPTH);
    /* and the same inside a string is fine */
    p[0] = '"';
    cr_assert_eq(pt_jsonscan(p, n, PT_JSON_MAX_DEPTH, &off), PT_JSONSCAN_OK);
    free(p);
}

Test(jsonscan, raw_nul_anywhere)
{
    expect_scan_n("\0", 1, PT_JSONSCAN_NUL, 0);
    expect_scan_n("{\"a\":1}\0", 8, PT_JSONSCAN_NUL, 7);
    expect_scan_n("{\"a\0\":1}", 8, PT_JSONSCAN_NUL, 3);
    expect_scan_n("[\"\\\0\"]", 6, PT_JSONSCAN_NUL, 3);
    /* an escaped \u0000 is text, not a raw NUL */
    expect_scan("[\"\\u0000\"]", PT_JSONSCAN_OK, 0);
}

Test(jsonscan, first_problem_wins)
{
    char *deep = nested(PT_JSON_MAX_DEPTH + 1, '[', ']');
    char buf[256];
    size_t n = strlen(deep);
    memcpy(buf, deep, n);
    buf[n] = '\0';
    buf[n + 1] = '\xff';
    expect_scan_n(buf, n + 2, PT_JSONSCAN_TOO_DEEP, PT_JSON_MAX_DEPTH);
    expect_scan_n("\xff\0", 2, PT_JSONSCAN_BAD_UTF8, 0);
    expect_scan_n("\0\xff", 2, PT_JSONSCAN_NUL, 0);
    free(deep);
}

/* Every class of ill-formed UTF-8, checked in a string, outside strings and
 * through pt_utf8_valid, with the offset pointing at the sequence start. */
static const struct {
    const char *bytes;
    size_t len;
    const char *what;
} BAD[] = {
    {"\xc0\x80", 2, "overlong NUL"},
    {"\xc0\xaf", 2, "overlong '/'"},
    {"\xc1\xbf", 2, "overlong 2-byte max"},
    {"\xe0\x80\x80", 3, "overlong 3-byte NUL"},
    {"\xe0\x80\xaf", 3, "overlong 3-byte '/'"},
    {"\xe0\x9f\xbf", 3, "overlong U+07FF"},
    {"\xf0\x80\x80\x80", 4, "overlong 4-byte NUL"},
    {"\xf0\x80\x80\xaf", 4, "overlong 4-byte '/'"},
    {"\xf0\x8f\xbf\xbf", 4, "overlong U+FFFF"},
    {"\xed\xa0\x80", 3, "surrogate D800"},
    {"\xed\xad\xbf", 3, "surrogate DB7F"},
    {"\xed\xae\x80", 3, "surrogate DB80"},
    {"\xed\xb0\x80", 3, "surrogate DC00"},
    {"\xed\xbf\xbf", 3, "surrogate DFFF"},
    {"\xed\xa0\xbd\xed\xb8\x80", 6, "CESU-8 surrogate pair"},
    {"\xf4\x90\x80\x80", 4, "U+110000"},
    {"\xf4\xbf\xbf\xbf", 4, "U+13FFFF"},
    {"\xf5\x80\x80\x80", 4, "F5 lead"},
    {"\xf7\xbf\xbf\xbf", 4, "U+1FFFFF"},
    {"\xf8\x88\x80\x80\x80", 5, "5-byte form"},
    {"\xfc\x84\x80\x80\x80\x80", 6, "6-byte form"},
    {"\xfe", 1, "FE"},
    {"\xff", 1, "FF"},
    {"\x80", 1, "stray continuation 80"},
    {"\xbf", 1, "stray continuation BF"},
    {"\x80\x80\x80", 3, "run of continuations"},
    {"\xc3", 1, "truncated 2-byte"},
    {"\xe2\x82", 2, "truncated 3-byte"},
    {"\xe2", 1, "3-byte lead alone"},
    {"\xf0\x9f\x98", 3, "truncated 4-byte"},
    {"\xf0\x9f", 2, "truncated 4-byte (2)"},
    {"\xf0", 1, "4-byte lead alone"},
    {"\xc3\x41", 2, "2-byte lead then ASCII"},
    {"\xe2\x82\x41", 3, "3-byte cut by ASCII"},
    {"\xf0\x9f\x98\x41", 4, "4-byte cut by ASCII"},
    {"\xc3\xc3\xa9", 3, "lead then lead"},
    {"\xe2\x28\xa1", 3, "bad second byte"},
    {"\xe2\x82\x28", 3, "bad third byte"},
    {"\xf0\x28\x8c\xbc", 4, "bad 4-byte second"},
    {"\xf0\x90\x28\xbc", 4, "bad 4-byte third"},
    {"\xf0\x90\x8c\x28", 4, "bad 4-byte fourth"},
};

static const struct {
    const char *bytes;
    size_t len;
} GOOD[] = {
    {"\x7f", 1},                 /* U+007F */
    {"\xc2\x80", 2},             /* U+0080 */
    {"\xc3\xa9", 2},             /* e acute */
    {"\xdf\xbf", 2},             /* U+07FF */
    {"\xe0\xa0\x80", 3},         /* U+0800 */
    {"\xe2\x82\xac", 3},         /* euro */
    {"\xed\x9f\xbf", 3},         /* U+D7FF, just below the surrogates */
    {"\xee\x80\x80", 3},         /* U+E000, just above */
    {"\xef\xbf\xbd", 3},         /* U+FFFD */
    {"\xef\xbf\xbf", 3},         /* U+FFFF */
    {"\xf0\x90\x80\x80", 4},     /* U+10000 */
    {"\xf0\x9f\x98\x80", 4},     /* emoji */
    {"\xf3\xbf\xbf\xbf", 4},     /* U+FFFFF */
    {"\xf4\x8f\xbf\xbf", 4},     /* U+10FFFF */
};

Test(jsonscan, utf8_bad_inside_string)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char buf[64];
        memcpy(buf, "{\"k\":\"ab", 8);
        memcpy(buf + 8, BAD[i].bytes, BAD[i].len);
        memcpy(buf + 8 + BAD[i].len, "\"}", 2);
        size_t off = 0;
        pt_jsonscan_result r = scan_n(buf, BAD[i].len + 10, PT_JSON_MAX_DEPTH, &off);
        cr_assert_eq(r, PT_JSONSCAN_BAD_UTF8, "%s", BAD[i].what);
        cr_assert_eq(off, 8, "%s: offset %zu", BAD[i].what, off);
    }
}

Test(jsonscan, utf8_bad_outside_string_and_at_end)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char buf[64];
        buf[0] = '[';
        memcpy(buf + 1, BAD[i].bytes, BAD[i].len);
        size_t off = 0;
        /* ends right after the bad bytes: truncation at the buffer end */
        pt_jsonscan_result r = scan_n(buf, BAD[i].len + 1, PT_JSON_MAX_DEPTH, &off);
        cr_assert_eq(r, PT_JSONSCAN_BAD_UTF8, "%s", BAD[i].what);
        cr_assert_eq(off, 1, "%s", BAD[i].what);
    }
}

Test(jsonscan, utf8_bad_after_escape)
{
    /* a backslash must not let the next byte skip validation */
    expect_scan_n("[\"\\\xc0\x80\"]", 7, PT_JSONSCAN_BAD_UTF8, 3);
    expect_scan_n("[\"\\\x80\"]", 6, PT_JSONSCAN_BAD_UTF8, 3);
}

Test(jsonscan, utf8_bad_class_through_utf8_valid)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        cr_assert_eq(utf8_ok(BAD[i].bytes, BAD[i].len), 0, "%s", BAD[i].what);
        char buf[64];
        memcpy(buf, "ok ", 3);
        memcpy(buf + 3, BAD[i].bytes, BAD[i].len);
        memcpy(buf + 3 + BAD[i].len, " ok", 3);
        cr_assert_eq(utf8_ok(buf, BAD[i].len + 6), 0, "%s (embedded)", BAD[i].what);
    }
}

Test(jsonscan, utf8_good_boundaries)
{
    for (size_t i = 0; i < sizeof GOOD / sizeof GOOD[0]; i++) {
        cr_assert_eq(utf8_ok(GOOD[i].bytes, GOOD[i].len), 1, "good %zu", i);
        char buf[64];
        memcpy(buf, "[\"", 2);
        memcpy(buf + 2, GOOD[i].bytes, GOOD[i].len);
        memcpy(buf + 2 + GOOD[i].len, "\",", 2);
        memcpy(buf + 4 + GOOD[i].len, GOOD[i].bytes, GOOD[i].len);
        buf[4 + 2 * GOOD[i].len] = ']';
        expect_scan_n(buf, 5 + 2 * GOOD[i].len, PT_JSONSCAN_OK, 0);
    }
    /* a good sequence cut off by the length is bad */
    for (size_t i = 0; i < sizeof GOOD / sizeof GOOD[0]; i++)
        for (size_t cut = 1; cut < GOOD[i].len; cut++)
            cr_assert_eq(utf8_ok(GOOD[i].bytes, cut), 0, "good %zu cut at %zu", i, cut);
}

Test(jsonscan, utf8_valid_basics)
{
    cr_assert_eq(pt_utf8_valid("", 0), 1);
    cr_assert_eq(pt_utf8_valid(NULL, 0), 1);
    static const char plain[] = "plain ascii, commas, \"quotes\"\r\n";
    cr_assert_eq(utf8_ok(plain, sizeof plain - 1), 1);
    static const char mixed[] = "Jo\xc3\xabl \xe2\x82\xac \xf0\x9f\x98\x80";
    cr_assert_eq(utf8_ok(mixed, sizeof mixed - 1), 1);
    /* NUL would cut a C string short wherever this check is used */
    cr_assert_eq(utf8_ok("a\0b", 3), 0);
    cr_assert_eq(utf8_ok("\0", 1), 0);
}

/* Every 2- and 3-byte combination against an independent decoder: the
 * module's table-driven ranges must match "decode, then reject overlong,
 * surrogate and out-of-range values". */
static int reference_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned long cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

Test(jsonscan, utf8_exhaustive_short_sequences)
{
    unsigned char b[3];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        cr_assert_eq(pt_utf8_valid((char *)b, 1), reference_valid(b, 1), "%02x", x);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            cr_assert_eq(pt_utf8_valid((char *)b, 2), reference_valid(b, 2), "%02x %02x", x,
                         y);
            if (x < 0xe0 || x > 0xf4) continue;
            for (unsigned z = 0x70; z < 0xd0; z++) {
                b[2] = (unsigned char)z;
                cr_assert_eq(pt_utf8_valid((char *)b, 3), reference_valid(b, 3),
                             "%02x %02x %02x", x, y, z);
            }
        }
    }
}

Test(jsonscan, utf8_exhaustive_four_byte_leads)
{
    unsigned char b[4] = {0, 0, 0x80, 0x80};
    for (unsigned x = 0xf0; x < 0x100; x++) {
        for (unsigned y = 0; y < 256; y++) {
            b[0] = (unsigned char)x;
            b[1] = (unsigned char)y;
            cr_assert_eq(pt_utf8_valid((char *)b, 4), reference_valid(b, 4), "%02x %02x", x, y);
        }
    }
}
