#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/normalize.h"

static void expect_norm(pt_ident_type t, const char *in, const char *want)
{
    char out[PT_IDENT_MAX];
    memset(out, 'X', sizeof out);
    cr_assert_eq(pt_ident_normalize(t, in, strlen(in), out), 0, "refused [%s]", in);
    cr_assert_str_eq(out, want, "[%s]", in);
}

static void expect_refused_n(pt_ident_type t, const char *in, size_t len)
{
    char out[PT_IDENT_MAX];
    memset(out, 'X', sizeof out);
    cr_assert_eq(pt_ident_normalize(t, in, len, out), -1, "accepted [%.*s]", (int)len, in);
    /* Nothing half-normalised may be left for a caller to index. */
    cr_assert_eq(out[0], '\0', "[%.*s]", (int)len, in);
}

static void expect_refused(pt_ident_type t, const char *in)
{
    expect_refused_n(t, in, strlen(in));
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

Test(normalize, type_names_round_trip)
{
    const char *names[] = {"email", "phone", "cookie", "device", "external"};
    for (int t = 0; t < PT_IDENT__COUNT; t++) {
        cr_assert_str_eq(pt_ident_type_name((pt_ident_type)t), names[t]);
        cr_assert_eq(pt_ident_type_parse(names[t]), t);
    }
    cr_assert_eq(pt_ident_type_parse("EMAIL"), -1);
    cr_assert_eq(pt_ident_type_parse("mail"), -1);
    cr_assert_eq(pt_ident_type_parse("emails"), -1);
    cr_assert_eq(pt_ident_type_parse(""), -1);
    cr_assert_eq(pt_ident_type_parse(NULL), -1);
    cr_assert_not_null(pt_ident_type_name(PT_IDENT__COUNT));
    cr_assert_not_null(pt_ident_type_name((pt_ident_type)-1));
}

Test(normalize, email_lower_cased_and_trimmed)
{
    expect_norm(PT_IDENT_EMAIL, "alice@example.com", "alice@example.com");
    expect_norm(PT_IDENT_EMAIL, "Alice@Example.COM", "alice@example.com");
    expect_norm(PT_IDENT_EMAIL, "ALICE.SMITH+TAG@EXAMPLE.CO.UK", "alice.smith+tag@example.co.uk");
    expect_norm(PT_IDENT_EMAIL, "  alice@example.com  ", "alice@example.com");
    expect_norm(PT_IDENT_EMAIL, "\t\r\n alice@example.com\r\n", "alice@example.com");
    expect_norm(PT_IDENT_EMAIL, "a@b.c", "a@b.c");
}

Test(normalize, email_same_person_two_ways)
{
    char a[PT_IDENT_MAX], b[PT_IDENT_MAX];
    const char *x = " Mario.Rossi@Posta.IT", *y = "mario.rossi@posta.it ";
    cr_assert_eq(pt_ident_normalize(PT_IDENT_EMAIL, x, strlen(x), a), 0);
    cr_assert_eq(pt_ident_normalize(PT_IDENT_EMAIL, y, strlen(y), b), 0);
    cr_assert_str_eq(a, b);
}

Test(normalize, email_non_ascii_passes_through_unfolded)
{
    expect_norm(PT_IDENT_EMAIL, "J\xc3\xb6rg@Example.de", "j\xc3\xb6rg@example.de");
}

Test(normalize, email_refuses_spaces_and_controls)
{
    expect_refused(PT_IDENT_EMAIL, "alice smith@example.com");
    expect_refused(PT_IDENT_EMAIL, "alice@exa mple.com");
    expect_refused(PT_IDENT_EMAIL, "alice@example.com\x01");
    expect_refused(PT_IDENT_EMAIL, "alice\t@example.com");
    expect_refused(PT_IDENT_EMAIL, "alice\n@example.com");
    expect_refused(PT_IDENT_EMAIL, "alice@example.com\x7f");
    expect_refused_n(PT_IDENT_EMAIL, "alice\0@example.com", 18);
}

Test(normalize, email_refuses_bad_at_signs)
{
    expect_refused(PT_IDENT_EMAIL, "alice.example.com");
    expect_refused(PT_IDENT_EMAIL, "alice@@example.com");
    expect_refused(PT_IDENT_EMAIL, "alice@bob@example.com");
    expect_refused(PT_IDENT_EMAIL, "@example.com");
    expect_refused(PT_IDENT_EMAIL, "  @example.com");
    expect_refused(PT_IDENT_EMAIL, "alice@");
    expect_refused(PT_IDENT_EMAIL, "@");
}

Test(normalize, email_refuses_domain_without_dot)
{
    expect_refused(PT_IDENT_EMAIL, "alice@localhost");
    expect_refused(PT_IDENT_EMAIL, "alice@.");
    expect_refused(PT_IDENT_EMAIL, "alice@.com");
    expect_refused(PT_IDENT_EMAIL, "alice@example.");
    expect_refused(PT_IDENT_EMAIL, "alice@example..com");
}

Test(normalize, email_refuses_empty)
{
    expect_refused(PT_IDENT_EMAIL, "");
    expect_refused(PT_IDENT_EMAIL, "   ");
    expect_refused(PT_IDENT_EMAIL, "\t\n");
    expect_refused_n(PT_IDENT_EMAIL, NULL, 0);
}

Test(normalize, email_length_limits)
{
    char in[400], want[400];
    /* local part: 64 accepted, 65 refused */
    char *l64 = repeat('A', 64), *l65 = repeat('a', 65);
    snprintf(in, sizeof in, "%s@example.com", l64);
    snprintf(want, sizeof want, "%s@example.com", l65 + 1);
    expect_norm(PT_IDENT_EMAIL, in, want);
    snprintf(in, sizeof in, "%s@example.com", l65);
    expect_refused(PT_IDENT_EMAIL, in);

    /* whole address: 254 accepted, 255 refused (domain 254-2 = 252) */
    char *d = repeat('d', 240);
    snprintf(in, sizeof in, "a@%s.example.com", d); /* 2 + 240 + 12 = 254 */
    cr_assert_eq(strlen(in), 254);
    expect_norm(PT_IDENT_EMAIL, in, in);
    snprintf(in, sizeof in, "ab@%s.example.com", d);
    cr_assert_eq(strlen(in), 255);
    expect_refused(PT_IDENT_EMAIL, in);

    /* surrounding blanks do not count against the limit */
    snprintf(in, sizeof in, "   a@%s.example.com   ", d);
    snprintf(want, sizeof want, "a@%s.example.com", d);
    expect_norm(PT_IDENT_EMAIL, in, want);
    free(l64);
    free(l65);
    free(d);
}

Test(normalize, email_very_long_input_refused)
{
    char *big = repeat('a', 5000);
    big[10] = '@';
    big[20] = '.';
    expect_refused(PT_IDENT_EMAIL, big);
    free(big);
}

Test(normalize, phone_formats)
{
    expect_norm(PT_IDENT_PHONE, "+39 333 123 4567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "+393331234567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "0039 333 123 4567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "00393331234567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "+39-333-123-4567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "+39.333.123.4567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "+39 (333) 123-4567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "(+39) 333 1234567", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "  +39 333 123 4567\r\n", "+393331234567");
    expect_norm(PT_IDENT_PHONE, "+1 (555) 010-9999", "+15550109999");
}

Test(normalize, phone_same_person_two_ways)
{
    char a[PT_IDENT_MAX], b[PT_IDENT_MAX];
    const char *x = "+39 333 123 4567", *y = "0039-333-1234567";
    cr_assert_eq(pt_ident_normalize(PT_IDENT_PHONE, x, strlen(x), a), 0);
    cr_assert_eq(pt_ident_normalize(PT_IDENT_PHONE, y, strlen(y), b), 0);
    cr_assert_str_eq(a, b);
}

Test(normalize, phone_without_international_prefix_refused)
{
    expect_refused(PT_IDENT_PHONE, "333 123 4567");
    expect_refused(PT_IDENT_PHONE, "3331234567");
    expect_refused(PT_IDENT_PHONE, "0333 1234567");
    expect_refused(PT_IDENT_PHONE, "39 333 123 4567");
    expect_refused(PT_IDENT_PHONE, "0 39 333 123 4567");
}

Test(normalize, phone_digit_count_limits)
{
    expect_refused(PT_IDENT_PHONE, "+1234567");           /* 7 */
    expect_norm(PT_IDENT_PHONE, "+12345678", "+12345678"); /* 8 */
    expect_norm(PT_IDENT_PHONE, "+123456789012345", "+123456789012345"); /* 15 */
    expect_refused(PT_IDENT_PHONE, "+1234567890123456");                 /* 16 */
    expect_norm(PT_IDENT_PHONE, "00123456789012345", "+123456789012345");
    expect_refused(PT_IDENT_PHONE, "001234567890123456");
    expect_refused(PT_IDENT_PHONE, "001234567");
    /* separators do not count as digits */
    expect_refused(PT_IDENT_PHONE, "+1 2 3 4 5 6 7");
    expect_norm(PT_IDENT_PHONE, "+1 2 3 4 5 6 7 8", "+12345678");
}

Test(normalize, phone_very_long_input_refused)
{
    char *big = repeat('9', 4000);
    big[0] = '+';
    expect_refused(PT_IDENT_PHONE, big);
    /* many separators around a valid number are fine */
    char *sp = repeat(' ', 1000);
    memcpy(sp + 500, "+393331234567", 13);
    expect_norm(PT_IDENT_PHONE, sp, "+393331234567");
    free(big);
    free(sp);
}

Test(normalize, phone_refuses_junk)
{
    expect_refused(PT_IDENT_PHONE, "");
    expect_refused(PT_IDENT_PHONE, "   ");
    expect_refused(PT_IDENT_PHONE, "+");
    expect_refused(PT_IDENT_PHONE, "00");
    expect_refused(PT_IDENT_PHONE, "++393331234567");
    expect_refused(PT_IDENT_PHONE, "+39333123456+7");
    expect_refused(PT_IDENT_PHONE, "00+393331234567");
    expect_refused(PT_IDENT_PHONE, "+39 333 123 456a");
    expect_refused(PT_IDENT_PHONE, "+39/333/1234567");
    expect_refused(PT_IDENT_PHONE, "+39\t333\t1234567");
    expect_refused(PT_IDENT_PHONE, "+39 333 123 4567 ext 12");
    expect_refused(PT_IDENT_PHONE, "+\xd9\xa3\xd9\xa3\xd9\xa3\xd9\xa3\xd9\xa3\xd9\xa3\xd9\xa3\xd9\xa3");
    expect_refused_n(PT_IDENT_PHONE, "+39333\0" "1234567", 14);
    /* E.164 country codes never begin with 0 */
    expect_refused(PT_IDENT_PHONE, "+0393331234567");
    expect_refused(PT_IDENT_PHONE, "000393331234567");
}

Test(normalize, tokens_trimmed_and_printable)
{
    pt_ident_type types[] = {PT_IDENT_COOKIE, PT_IDENT_DEVICE, PT_IDENT_EXTERNAL};
    for (size_t i = 0; i < 3; i++) {
        pt_ident_type t = types[i];
        expect_norm(t, "abc", "abc");
        expect_norm(t, "  abc\t\r\n", "abc");
        /* case is kept: these are opaque */
        expect_norm(t, "AbC-123_x.y:z", "AbC-123_x.y:z");
        expect_norm(t, "x", "x");
        expect_refused(t, "");
        expect_refused(t, "   ");
        expect_refused(t, "a b");
        expect_refused(t, "a\tb");
        expect_refused(t, "a\x7f");
        expect_refused(t, "caf\xc3\xa9");
        expect_refused(t, "\x01");
        expect_refused_n(t, "a\0b", 3);
        expect_refused_n(t, NULL, 0);
    }
}

Test(normalize, tokens_every_printable_char)
{
    char all[0x7f - 0x21 + 1];
    for (int c = 0x21; c <= 0x7e; c++) all[c - 0x21] = (char)c;
    all[sizeof all - 1] = '\0';
    expect_norm(PT_IDENT_EXTERNAL, all, all);
}

Test(normalize, tokens_length_limits)
{
    char *s200 = repeat('k', 200), *s201 = repeat('k', 201);
    expect_norm(PT_IDENT_COOKIE, s200, s200);
    expect_refused(PT_IDENT_COOKIE, s201);
    expect_refused(PT_IDENT_DEVICE, s201);
    expect_refused(PT_IDENT_EXTERNAL, s201);
    char padded[300];
    snprintf(padded, sizeof padded, "   %s   ", s200);
    expect_norm(PT_IDENT_DEVICE, padded, s200);
    free(s200);
    free(s201);
}

Test(normalize, unknown_type_refused)
{
    expect_refused(PT_IDENT__COUNT, "abc");
    expect_refused((pt_ident_type)-1, "abc");
}

Test(normalize, does_not_read_past_len)
{
    const char *cases[] = {"Alice@Example.com ", "+39 333 123 4567 ", " cookie-1 "};
    pt_ident_type types[] = {PT_IDENT_EMAIL, PT_IDENT_PHONE, PT_IDENT_COOKIE};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(cases[i]);
        char *p = malloc(n);
        cr_assert_not_null(p);
        memcpy(p, cases[i], n);
        char out[PT_IDENT_MAX];
        cr_assert_eq(pt_ident_normalize(types[i], p, n, out), 0, "%s", cases[i]);
        free(p);
    }
}
