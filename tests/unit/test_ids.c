#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "core/ids.h"

static const char ALPHABET[] = "0123456789abcdefghjkmnpqrstvwxyz";

/* Deterministic bytes so that a failure can be replayed. */
static uint32_t rng_state = 0x12345678u;
static uint8_t rng_byte(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (uint8_t)(rng_state >> 24);
}

static int parse(const char *prefix, const char *s, uint8_t id[PT_ID_BYTES])
{
    return pt_id_parse(prefix, s, strlen(s), id);
}

static void expect_refused(const char *prefix, const char *s)
{
    uint8_t id[PT_ID_BYTES];
    memset(id, 0xa5, sizeof id);
    cr_assert_eq(parse(prefix, s, id), -1, "accepted %s", s);
    for (size_t i = 0; i < sizeof id; i++)
        cr_assert_eq(id[i], 0xa5, "%s: id written on failure", s);
}

Test(ids, b32_len)
{
    cr_assert_eq(pt_b32_len(0), 0);
    cr_assert_eq(pt_b32_len(1), 2);
    cr_assert_eq(pt_b32_len(2), 4);
    cr_assert_eq(pt_b32_len(3), 5);
    cr_assert_eq(pt_b32_len(4), 7);
    cr_assert_eq(pt_b32_len(5), 8);
    cr_assert_eq(pt_b32_len(16), PT_ID_B32_LEN);
    cr_assert_eq(pt_b32_len(20), 32);
    /* No overflow for sizes near the top of size_t. */
    cr_assert_gt(pt_b32_len((size_t)-1 / 2), (size_t)-1 / 2);
}

Test(ids, b32_known_vectors)
{
    char out[64];
    cr_assert_eq(pt_b32_encode((const uint8_t *)"", 0, out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(pt_b32_encode((const uint8_t *)"f", 1, out), 2);
    cr_assert_str_eq(out, "cr");
    cr_assert_eq(pt_b32_encode((const uint8_t *)"foobar", 6, out), 10);
    cr_assert_str_eq(out, "csqpyrk1e8");
    const uint8_t ff[5] = {0xff, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(pt_b32_encode(ff, 5, out), 8);
    cr_assert_str_eq(out, "zzzzzzzz");
    /* 00 44 32 14 c7 = 00000 00001 00010 00011 00100 00101 00110 00111 */
    const uint8_t seq[5] = {0x00, 0x44, 0x32, 0x14, 0xc7};
    pt_b32_encode(seq, 5, out);
    cr_assert_str_eq(out, "01234567");
}

Test(ids, b32_every_symbol_decodes_to_its_index)
{
    /* Eight characters are exactly five bytes: no pad bits to worry about. */
    for (int v = 0; v < 32; v++) {
        char s[9];
        for (int i = 0; i < 8; i++) s[i] = ALPHABET[v];
        s[8] = '\0';
        uint8_t out[5];
        cr_assert_eq(pt_b32_decode(s, 8, out, sizeof out), 5, "%s", s);
        uint64_t bits = 0;
        for (int i = 0; i < 5; i++) bits = bits << 8 | out[i];
        for (int i = 0; i < 8; i++)
            cr_assert_eq((bits >> (35 - 5 * i)) & 31u, (uint64_t)v, "%c", ALPHABET[v]);
    }
}

Test(ids, b32_round_trip_all_lengths)
{
    uint8_t in[40], back[40];
    char enc[80];
    for (size_t n = 0; n <= sizeof in; n++) {
        for (int rep = 0; rep < 50; rep++) {
            for (size_t i = 0; i < n; i++) in[i] = rng_byte();
            size_t len = pt_b32_encode(in, n, enc);
            cr_assert_eq(len, pt_b32_len(n));
            cr_assert_eq(strlen(enc), len);
            for (size_t i = 0; i < len; i++)
                cr_assert_not_null(strchr(ALPHABET, enc[i]), "%s", enc);
            long got = pt_b32_decode(enc, len, back, n);
            cr_assert_eq(got, (long)n, "n=%zu %s", n, enc);
            cr_assert_eq(memcmp(in, back, n), 0);
        }
    }
}

Test(ids, b32_decode_accepts_upper_case)
{
    uint8_t out[6];
    cr_assert_eq(pt_b32_decode("CSQPYRK1E8", 10, out, sizeof out), 6);
    cr_assert_eq(memcmp(out, "foobar", 6), 0);
    cr_assert_eq(pt_b32_decode("CsQpYrK1e8", 10, out, sizeof out), 6);
    cr_assert_eq(memcmp(out, "foobar", 6), 0);
}

Test(ids, b32_decode_refuses_impossible_lengths)
{
    uint8_t out[16];
    /* 1, 3 and 6 characters (mod 8) are never produced by the encoder. */
    cr_assert_eq(pt_b32_decode("0", 1, out, sizeof out), -1);
    cr_assert_eq(pt_b32_decode("000", 3, out, sizeof out), -1);
    cr_assert_eq(pt_b32_decode("000000", 6, out, sizeof out), -1);
    cr_assert_eq(pt_b32_decode("000000000", 9, out, sizeof out), -1);
    cr_assert_eq(pt_b32_decode("", 0, out, sizeof out), 0);
    cr_assert_eq(pt_b32_decode(NULL, 0, out, sizeof out), 0);
    cr_assert_eq(pt_b32_decode(NULL, 2, out, sizeof out), -1);
}

Test(ids, b32_decode_refuses_bad_symbols)
{
    uint8_t out[16];
    const char *bad[] = {"i0", "0i", "I0", "l0", "L0", "o0", "O0", "u0", "U0",
                         "-0", " 0", "0=", "\x80\x30", "0\0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(pt_b32_decode(bad[i], 2, out, sizeof out), -1, "case %zu", i);
}

Test(ids, b32_decode_refuses_non_zero_pad_bits)
{
    uint8_t out[4];
    /* One byte in two characters leaves 2 pad bits in the second one. */
    cr_assert_eq(pt_b32_decode("cr", 2, out, sizeof out), 1);
    cr_assert_eq(out[0], 'f');
    cr_assert_eq(pt_b32_decode("cs", 2, out, sizeof out), -1);
    cr_assert_eq(pt_b32_decode("ct", 2, out, sizeof out), -1);
    cr_assert_eq(pt_b32_decode("cv", 2, out, sizeof out), -1);
    cr_assert_eq(pt_b32_decode("cw", 2, out, sizeof out), 1);
    cr_assert_eq(out[0], 'g');
}

Test(ids, b32_decode_respects_capacity)
{
    uint8_t out[6];
    cr_assert_eq(pt_b32_decode("csqpyrk1e8", 10, out, 5), -1);
    cr_assert_eq(pt_b32_decode("csqpyrk1e8", 10, out, 0), -1);
    cr_assert_eq(pt_b32_decode("csqpyrk1e8", 10, out, 6), 6);
}

Test(ids, api_key_secret_is_32_chars)
{
    uint8_t secret[20], back[20];
    for (size_t i = 0; i < sizeof secret; i++) secret[i] = rng_byte();
    char enc[33];
    cr_assert_eq(pt_b32_encode(secret, sizeof secret, enc), 32);
    cr_assert_eq(pt_b32_decode(enc, 32, back, sizeof back), 20);
    cr_assert_eq(memcmp(secret, back, sizeof secret), 0);
}

Test(ids, format_known_ids)
{
    uint8_t id[PT_ID_BYTES];
    char out[PT_ID_STR_MAX];

    memset(id, 0, sizeof id);
    pt_id_format("sub", id, out);
    cr_assert_str_eq(out, "sub_00000000000000000000000000");

    /* 128 one-bits: 25 full symbols, then 3 data bits and 2 zero pad bits,
     * 11100 = 28 = 'w'. */
    memset(id, 0xff, sizeof id);
    pt_id_format("evt", id, out);
    cr_assert_str_eq(out, "evt_zzzzzzzzzzzzzzzzzzzzzzzzzw");

    memset(id, 0, sizeof id);
    id[15] = 0x01; /* the lowest data bit is the top pad-adjacent bit */
    pt_id_format("k", id, out);
    cr_assert_str_eq(out, "k_00000000000000000000000004");

    id[15] = 0x07;
    pt_id_format("ntc", id, out);
    cr_assert_str_eq(out, "ntc_0000000000000000000000000w");

    id[15] = 0x08;
    pt_id_format("key", id, out);
    cr_assert_str_eq(out, "key_00000000000000000000000010");
}

Test(ids, format_length)
{
    uint8_t id[PT_ID_BYTES] = {0};
    char out[PT_ID_STR_MAX];
    pt_id_format("key", id, out);
    cr_assert_eq(strlen(out), 3 + 1 + PT_ID_B32_LEN);
    cr_assert_lt(strlen(out), PT_ID_STR_MAX);
    pt_id_format("s", id, out);
    cr_assert_eq(strlen(out), 1 + 1 + PT_ID_B32_LEN);
}

Test(ids, round_trip_random)
{
    const char *prefixes[] = {"sub", "evt", "ntc", "key", "k", "ab"};
    for (int rep = 0; rep < 2000; rep++) {
        uint8_t id[PT_ID_BYTES], back[PT_ID_BYTES];
        for (size_t i = 0; i < sizeof id; i++) id[i] = rng_byte();
        const char *prefix = prefixes[rep % 6];
        char out[PT_ID_STR_MAX];
        pt_id_format(prefix, id, out);
        cr_assert_eq(parse(prefix, out, back), 0, "%s", out);
        cr_assert_eq(memcmp(id, back, sizeof id), 0, "%s", out);
        /* The pad bits are always zero, so the last symbol's value is a
         * multiple of 4. */
        const char *last = strchr(ALPHABET, out[strlen(out) - 1]);
        cr_assert_not_null(last);
        cr_assert_eq((last - ALPHABET) % 4, 0, "%s", out);
    }
}

Test(ids, parse_accepts_upper_case)
{
    uint8_t id[PT_ID_BYTES];
    cr_assert_eq(parse("evt", "evt_ZZZZZZZZZZZZZZZZZZZZZZZZZW", id), 0);
    for (size_t i = 0; i < sizeof id; i++) cr_assert_eq(id[i], 0xff);
    cr_assert_eq(parse("evt", "EVT_zzzzzzzzzzzzzzzzzzzzzzzzzw", id), 0);
    cr_assert_eq(parse("evt", "Evt_zZzZzzzzzzzzzzzzzzzzzzzzzW", id), 0);
}

Test(ids, parse_refuses_wrong_prefix)
{
    expect_refused("sub", "evt_00000000000000000000000000");
    expect_refused("sub", "su_00000000000000000000000000");
    expect_refused("sub", "subb00000000000000000000000000");
    expect_refused("sub", "sub-00000000000000000000000000");
    expect_refused("sub", "_sub00000000000000000000000000");
    expect_refused("sub", "sub00000000000000000000000000");
    expect_refused("sub", "00000000000000000000000000");
    expect_refused("s", "sub_00000000000000000000000000");
    expect_refused("sub", "s_00000000000000000000000000");
    /* A caller-side mistake must not turn into an accepted id. */
    expect_refused("", "_00000000000000000000000000");
    expect_refused("subs", "subs_00000000000000000000000000");
    uint8_t id[PT_ID_BYTES];
    cr_assert_eq(pt_id_parse(NULL, "sub_00000000000000000000000000", 30, id), -1);
    cr_assert_eq(pt_id_parse("sub", NULL, 30, id), -1);
}

Test(ids, parse_refuses_wrong_length)
{
    expect_refused("sub", "");
    expect_refused("sub", "sub_");
    expect_refused("sub", "sub_0000000000000000000000000");
    expect_refused("sub", "sub_000000000000000000000000000");
    expect_refused("sub", "sub_00000000000000000000000000 ");
    expect_refused("sub", " sub_00000000000000000000000000");
    expect_refused("sub", "sub_00000000000000000000000000\n");
    /* len, not the NUL, delimits the id */
    uint8_t id[PT_ID_BYTES];
    const char *s = "sub_00000000000000000000000000";
    cr_assert_eq(pt_id_parse("sub", s, strlen(s) - 1, id), -1);
    cr_assert_eq(pt_id_parse("sub", s, strlen(s), id), 0);
}

Test(ids, parse_refuses_aliases_and_foreign_chars)
{
    expect_refused("sub", "sub_i0000000000000000000000000");
    expect_refused("sub", "sub_I0000000000000000000000000");
    expect_refused("sub", "sub_l0000000000000000000000000");
    expect_refused("sub", "sub_L0000000000000000000000000");
    expect_refused("sub", "sub_o0000000000000000000000000");
    expect_refused("sub", "sub_O0000000000000000000000000");
    expect_refused("sub", "sub_u0000000000000000000000000");
    expect_refused("sub", "sub_U0000000000000000000000000");
    expect_refused("sub", "sub_000000000000-0000000000000");
    expect_refused("sub", "sub_000000000000=0000000000000");
    expect_refused("sub", "sub_0000000000000000000000000\xc3");
    char nul[] = "sub_00000000000000000000000000";
    nul[17] = '\0';
    uint8_t id[PT_ID_BYTES];
    cr_assert_eq(pt_id_parse("sub", nul, sizeof nul - 1, id), -1);
}

Test(ids, parse_refuses_non_zero_pad_bits)
{
    /* Last symbol values 1, 2, 3 (and any value not a multiple of 4) set
     * pad bits: same bytes as ...0 / ...z, second spelling. */
    expect_refused("sub", "sub_00000000000000000000000001");
    expect_refused("sub", "sub_00000000000000000000000002");
    expect_refused("sub", "sub_00000000000000000000000003");
    expect_refused("sub", "sub_00000000000000000000000005");
    expect_refused("sub", "sub_0000000000000000000000000z");
    expect_refused("sub", "sub_zzzzzzzzzzzzzzzzzzzzzzzzzz");
    expect_refused("sub", "sub_zzzzzzzzzzzzzzzzzzzzzzzzzx");
    uint8_t id[PT_ID_BYTES];
    cr_assert_eq(parse("sub", "sub_00000000000000000000000004", id), 0);
    cr_assert_eq(id[15], 0x01);
    cr_assert_eq(parse("sub", "sub_zzzzzzzzzzzzzzzzzzzzzzzzzw", id), 0);
}

Test(ids, parse_does_not_read_past_len)
{
    const char *s = "sub_0123456789abcdefghjkmnpqrw";
    size_t n = strlen(s);
    char *p = malloc(n);
    cr_assert_not_null(p);
    memcpy(p, s, n);
    uint8_t id[PT_ID_BYTES];
    cr_assert_eq(pt_id_parse("sub", p, n, id), 0);
    char out[PT_ID_STR_MAX];
    pt_id_format("sub", id, out);
    cr_assert_str_eq(out, s);
    free(p);
}
