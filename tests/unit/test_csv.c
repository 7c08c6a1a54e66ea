#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/csv.h"

/* The input lives in a heap block of exactly len + 1 bytes (the reader may
 * use buf[len] for the last NUL), and that spare byte starts out non-NUL so
 * that a missing terminator shows up. ASan catches anything beyond it. */
static char *load(pt_csv *c, const char *s, size_t len)
{
    char *p = malloc(len + 1);
    cr_assert_not_null(p);
    memcpy(p, s, len);
    p[len] = 'X';
    pt_csv_init(c, p, len);
    return p;
}

static char *load_str(pt_csv *c, const char *s)
{
    return load(c, s, strlen(s));
}

static char *fields[PT_CSV_MAX_FIELDS];
static size_t lens[PT_CSV_MAX_FIELDS];

/* Reads a record and checks it against want[] (NULL-terminated list). */
static void expect_record(pt_csv *c, size_t line, const char *const *want)
{
    int n = 0;
    while (want[n]) n++;
    int got = pt_csv_next(c, fields, lens);
    cr_assert_eq(got, n, "line %zu: %d fields, want %d", line, got, n);
    for (int i = 0; i < n; i++) {
        size_t wl = strlen(want[i]);
        cr_assert_eq(lens[i], wl, "line %zu field %d: len %zu want %zu", line, i, lens[i], wl);
        cr_assert_eq(memcmp(fields[i], want[i], wl), 0, "line %zu field %d", line, i);
        cr_assert_eq(fields[i][wl], '\0', "line %zu field %d not terminated", line, i);
    }
    cr_assert_eq(c->line, line, "line %zu reported as %zu", line, c->line);
}

#define REC(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect_end(pt_csv *c)
{
    cr_assert_eq(pt_csv_next(c, fields, lens), 0);
    /* and it stays at the end */
    cr_assert_eq(pt_csv_next(c, fields, lens), 0);
}

Test(csv, simple_records)
{
    pt_csv c;
    char *p = load_str(&c, "email,purpose,action\na@b.c,news,grant\nd@e.f,ads,deny\n");
    expect_record(&c, 1, REC("email", "purpose", "action"));
    expect_record(&c, 2, REC("a@b.c", "news", "grant"));
    expect_record(&c, 3, REC("d@e.f", "ads", "deny"));
    expect_end(&c);
    free(p);
}

Test(csv, crlf_line_endings)
{
    pt_csv c;
    char *p = load_str(&c, "a,b\r\nc,d\r\n");
    expect_record(&c, 1, REC("a", "b"));
    expect_record(&c, 2, REC("c", "d"));
    expect_end(&c);
    free(p);
}

Test(csv, mixed_line_endings)
{
    pt_csv c;
    char *p = load_str(&c, "a\r\nb\nc\r\n");
    expect_record(&c, 1, REC("a"));
    expect_record(&c, 2, REC("b"));
    expect_record(&c, 3, REC("c"));
    expect_end(&c);
    free(p);
}

Test(csv, last_record_without_newline)
{
    pt_csv c;
    char *p = load_str(&c, "a,b\nc,d");
    expect_record(&c, 1, REC("a", "b"));
    expect_record(&c, 2, REC("c", "d"));
    expect_end(&c);
    free(p);

    p = load_str(&c, "only");
    expect_record(&c, 1, REC("only"));
    expect_end(&c);
    free(p);

    p = load_str(&c, "a,");
    expect_record(&c, 1, REC("a", ""));
    expect_end(&c);
    free(p);
}

Test(csv, empty_fields)
{
    pt_csv c;
    char *p = load_str(&c, ",\n,,\na,,b\n\"\",\"\"\n");
    expect_record(&c, 1, REC("", ""));
    expect_record(&c, 2, REC("", "", ""));
    expect_record(&c, 3, REC("a", "", "b"));
    expect_record(&c, 4, REC("", ""));
    expect_end(&c);
    free(p);
}

Test(csv, quoted_fields)
{
    pt_csv c;
    char *p = load_str(&c, "\"a,b\",\"c\"\n\"say \"\"hi\"\"\",x\n\"\"\"\"\n\"end\"");
    expect_record(&c, 1, REC("a,b", "c"));
    expect_record(&c, 2, REC("say \"hi\"", "x"));
    expect_record(&c, 3, REC("\""));
    expect_record(&c, 4, REC("end"));
    expect_end(&c);
    free(p);
}

Test(csv, quoted_field_then_crlf)
{
    pt_csv c;
    char *p = load_str(&c, "\"a\"\r\n\"b\",\"c\"\r\n");
    expect_record(&c, 1, REC("a"));
    expect_record(&c, 2, REC("b", "c"));
    expect_end(&c);
    free(p);
}

Test(csv, embedded_newlines)
{
    pt_csv c;
    char *p = load_str(&c, "id,note\n1,\"line one\nline two\nline three\"\n2,after\n");
    expect_record(&c, 1, REC("id", "note"));
    /* a multi-line record reports the line on which it ends */
    expect_record(&c, 4, REC("1", "line one\nline two\nline three"));
    expect_record(&c, 5, REC("2", "after"));
    expect_end(&c);
    free(p);
}

Test(csv, embedded_crlf_kept_verbatim)
{
    pt_csv c;
    char *p = load_str(&c, "\"a\r\nb\",c\r\nd,e\r\n");
    expect_record(&c, 2, REC("a\r\nb", "c"));
    expect_record(&c, 3, REC("d", "e"));
    expect_end(&c);
    free(p);
}

Test(csv, blank_lines_skipped_and_counted)
{
    pt_csv c;
    char *p = load_str(&c, "\n\r\na\n\n\nb\r\n\r\n\nc\n\n\n");
    expect_record(&c, 3, REC("a"));
    expect_record(&c, 6, REC("b"));
    expect_record(&c, 9, REC("c"));
    expect_end(&c);
    free(p);
}

Test(csv, empty_and_blank_inputs)
{
    pt_csv c;
    char *p = load(&c, "", 0);
    expect_end(&c);
    free(p);
    p = load_str(&c, "\n\n\r\n");
    expect_end(&c);
    free(p);
    pt_csv_init(&c, NULL, 0);
    cr_assert_eq(pt_csv_next(&c, fields, lens), 0);
}

Test(csv, whitespace_is_data)
{
    pt_csv c;
    char *p = load_str(&c, " a , b \n \n");
    expect_record(&c, 1, REC(" a ", " b "));
    expect_record(&c, 2, REC(" "));
    expect_end(&c);
    free(p);
}

Test(csv, stray_quote_in_unquoted_field_is_data)
{
    pt_csv c;
    char *p = load_str(&c, "ab\"c,5\" screen\n");
    expect_record(&c, 1, REC("ab\"c", "5\" screen"));
    expect_end(&c);
    free(p);
}

Test(csv, lone_cr_is_data)
{
    pt_csv c;
    char *p = load_str(&c, "a\rb,c\r\n");
    expect_record(&c, 1, REC("a\rb", "c"));
    expect_end(&c);
    free(p);
}

Test(csv, max_fields)
{
    char buf[256];
    size_t n = 0;
    for (int i = 0; i < PT_CSV_MAX_FIELDS; i++) n += (size_t)sprintf(buf + n, "f%d,", i);
    buf[n - 1] = '\n';
    buf[n] = '\0';
    pt_csv c;
    char *p = load_str(&c, buf);
    cr_assert_eq(pt_csv_next(&c, fields, lens), PT_CSV_MAX_FIELDS);
    cr_assert_str_eq(fields[0], "f0");
    cr_assert_str_eq(fields[PT_CSV_MAX_FIELDS - 1], "f31");
    expect_end(&c);
    free(p);

    /* 32 empty fields is 31 commas */
    memset(buf, ',', PT_CSV_MAX_FIELDS - 1);
    buf[PT_CSV_MAX_FIELDS - 1] = '\0';
    p = load_str(&c, buf);
    cr_assert_eq(pt_csv_next(&c, fields, lens), PT_CSV_MAX_FIELDS);
    free(p);
}

Test(csv, too_many_fields)
{
    char buf[256];
    size_t n = 0;
    for (int i = 0; i <= PT_CSV_MAX_FIELDS; i++) n += (size_t)sprintf(buf + n, "f%d,", i);
    buf[n - 1] = '\n';
    buf[n] = '\0';
    pt_csv c;
    char *p = load_str(&c, buf);
    cr_assert_eq(pt_csv_next(&c, fields, lens), -1);
    free(p);

    memset(buf, ',', PT_CSV_MAX_FIELDS);
    buf[PT_CSV_MAX_FIELDS] = '\0';
    p = load_str(&c, buf);
    cr_assert_eq(pt_csv_next(&c, fields, lens), -1);
    free(p);
}

Test(csv, unterminated_quote)
{
    const char *cases[] = {"\"abc", "\"", "a,\"b\nc,d\n", "\"a\"\"", "x\n\"open,\"\"still open\n"};
    size_t want_line[] = {1, 1, 1, 1, 2};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pt_csv c;
        char *p = load_str(&c, cases[i]);
        int rc;
        while ((rc = pt_csv_next(&c, fields, lens)) > 0) {
        }
        cr_assert_eq(rc, -1, "case %zu", i);
        /* errors name the line where the bad record starts */
        cr_assert_eq(c.line, want_line[i], "case %zu: line %zu", i, c.line);
        /* nothing can be trusted after an open quote: the reader stops */
        cr_assert_eq(pt_csv_next(&c, fields, lens), 0, "case %zu", i);
        free(p);
    }
}

Test(csv, character_after_closing_quote)
{
    const char *cases[] = {"\"a\"b\n",  "\"a\" ,b\n", "x,\"a\"\"\"b\n", "\"a\"\r",
                           "\"a\"\rb\n", "\"a\"\"b\n",  "ok\n\"a\"x"};
    size_t want_line[] = {1, 1, 1, 1, 1, 1, 2};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pt_csv c;
        char *p = load_str(&c, cases[i]);
        int rc;
        while ((rc = pt_csv_next(&c, fields, lens)) > 0) {
        }
        cr_assert_eq(rc, -1, "case %zu", i);
        cr_assert_eq(c.line, want_line[i], "case %zu: line %zu", i, c.line);
        free(p);
    }
}

Test(csv, unescape_in_place_does_not_disturb_neighbours)
{
    pt_csv c;
    char *p = load_str(&c, "\"\"\"a\"\"\",\"b\"\"\",\"\"\"\"\"\",plain\n");
    expect_record(&c, 1, REC("\"a\"", "b\"", "\"\"", "plain"));
    expect_end(&c);
    free(p);
}

Test(csv, binary_bytes_pass_through)
{
    /* UTF-8 validity is checked by the caller; the reader moves bytes. */
    pt_csv c;
    char *p = load_str(&c, "caf\xc3\xa9,\"\xe2\x82\xac\"\n");
    expect_record(&c, 1, REC("caf\xc3\xa9", "\xe2\x82\xac"));
    expect_end(&c);
    free(p);
}

Test(csv, fields_and_lens_agree_with_strlen)
{
    pt_csv c;
    char *p = load_str(&c, "\"q\"\"q\",,x\r\n\"multi\nline\",\"\"\n");
    int n;
    while ((n = pt_csv_next(&c, fields, lens)) > 0)
        for (int i = 0; i < n; i++) cr_assert_eq(strlen(fields[i]), lens[i]);
    cr_assert_eq(n, 0);
    free(p);
}

Test(csv, large_input_line_numbers)
{
    enum { ROWS = 5000 };
    char *s = malloc((size_t)ROWS * 32);
    cr_assert_not_null(s);
    size_t n = 0;
    for (int i = 0; i < ROWS; i++) {
        if (i % 10 == 0) s[n++] = '\n'; /* a blank line every ten records */
        n += (size_t)sprintf(s + n, "r%d,\"v%d\"\r\n", i, i);
    }
    pt_csv c;
    char *p = load(&c, s, n);
    size_t line = 0;
    for (int i = 0; i < ROWS; i++) {
        line += 1 + (i % 10 == 0);
        cr_assert_eq(pt_csv_next(&c, fields, lens), 2);
        char want[32];
        sprintf(want, "r%d", i);
        cr_assert_str_eq(fields[0], want);
        cr_assert_eq(c.line, line, "row %d", i);
    }
    expect_end(&c);
    free(p);
    free(s);
}
