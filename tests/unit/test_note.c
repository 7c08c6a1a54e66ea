/* Unit tests for C2SP signed notes and tlog-checkpoint bodies
 * (core/note.c). */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/merkle.h"
#include "core/note.h"

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(note, .init = setup);

/* The example of signed-note.md (c2sp.org/signed-note). */
static const char EXAMPLE_VKEY[] =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
static const char EXAMPLE_NOTE[] =
    "This is an example message.\n"
    "\n"
    "\xE2\x80\x94 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72Iney"
    "aQM=\n";

static pt_note_verifier parse_vkey(const char *s)
{
    pt_note_verifier v;
    cr_assert_eq(pt_note_verifier_parse(s, strlen(s), &v), 0, "verifier refused: %s", s);
    return v;
}

static int verify(const char *note, const pt_note_verifier *v)
{
    size_t tl = 0;
    return pt_note_verify(note, strlen(note), v, &tl);
}

/* A fresh signer. */
typedef struct {
    uint8_t pk[PT_ED25519_PK], sk[PT_ED25519_SK];
    char name[64];
    pt_note_verifier v;
} signer;

static void new_signer(signer *s, const char *name)
{
    crypto_sign_keypair(s->pk, s->sk);
    snprintf(s->name, sizeof s->name, "%s", name);
    char vk[PT_VERIFIER_MAX];
    cr_assert_eq(pt_note_verifier_format(name, s->pk, vk, sizeof vk), 0);
    s->v = parse_vkey(vk);
}

static long sign(const signer *s, const char *text, char *out, size_t cap)
{
    return pt_note_sign(text, strlen(text), s->name, s->sk, out, cap);
}

Test(note, c2sp_example_verifies)
{
    pt_note_verifier v = parse_vkey(EXAMPLE_VKEY);
    cr_assert_str_eq(v.name, "example.com/foo");
    static const uint8_t id[4] = {0x53, 0x0d, 0x90, 0x3a};
    cr_assert_eq(memcmp(v.key_id, id, 4), 0);
    uint8_t again[4];
    pt_note_key_id(v.name, v.pk, again);
    cr_assert_eq(memcmp(again, id, 4), 0);

    size_t tl = 0;
    cr_assert_eq(pt_note_verify(EXAMPLE_NOTE, strlen(EXAMPLE_NOTE), &v, &tl), 0);
    cr_assert_eq(tl, strlen("This is an example message.\n"));
    cr_assert_eq(memcmp(EXAMPLE_NOTE, "This is an example message.\n", tl), 0);

    /* the verifier string formats back identically */
    char vk[PT_VERIFIER_MAX];
    cr_assert_eq(pt_note_verifier_format(v.name, v.pk, vk, sizeof vk), 0);
    cr_assert_str_eq(vk, EXAMPLE_VKEY);
}

Test(note, example_every_bit_flip_refused)
{
    pt_note_verifier v = parse_vkey(EXAMPLE_VKEY);
    char buf[sizeof EXAMPLE_NOTE];
    memcpy(buf, EXAMPLE_NOTE, sizeof buf);
    size_t n = strlen(buf);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) {
            buf[i] = (char)(buf[i] ^ (1 << b));
            size_t tl;
            cr_assert_eq(pt_note_verify(buf, n, &v, &tl), -1, "flip at byte %zu bit %d accepted", i,
                         b);
            buf[i] = (char)(buf[i] ^ (1 << b));
        }
    cr_assert_eq(verify(buf, &v), 0);
}

Test(note, round_trip_with_fresh_key)
{
    signer s;
    new_signer(&s, "patto.example/log");
    const char *texts[] = {"hello\n", "line one\n\nline three after a blank line\n", "\n",
                           "ends with a blank line\n\n", "caf\xC3\xA9 \xE2\x80\x94 utf-8\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char out[PT_NOTE_MAX];
        long n = sign(&s, texts[i], out, sizeof out);
        cr_assert_gt(n, 0, "sign refused text %zu", i);
        cr_assert_eq((size_t)n, strlen(out));
        size_t tl = 0;
        cr_assert_eq(pt_note_verify(out, (size_t)n, &s.v, &tl), 0, "text %zu", i);
        cr_assert_eq(tl, strlen(texts[i]));
        cr_assert_eq(memcmp(out, texts[i], tl), 0);
        /* the output is exactly text, blank line, one signature line */
        cr_assert_eq(out[tl], '\n');
        cr_assert_eq(memcmp(out + tl + 1, "\xE2\x80\x94 patto.example/log ", 22), 0);
        cr_assert_eq(strlen(out + tl + 1 + 22), 92 + 1);
    }
}

Test(note, sign_refuses_bad_input)
{
    signer s;
    new_signer(&s, "a.example/k");
    char out[PT_NOTE_MAX];
    cr_assert_eq(sign(&s, "", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "no newline", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "tab\there\n", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "bad utf8 \xC3\x28\n", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "overlong \xC0\xAF\n", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "overlong \xE0\x80\xAF\n", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "overlong \xF0\x80\x80\xAF\n", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "surrogate \xED\xA0\x80\n", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "above U+10FFFF \xF4\x90\x80\x80\n", out, sizeof out), -1);
    cr_assert_eq(sign(&s, "cut \xE2\x80\n", out, sizeof out), -1);
    cr_assert_gt(sign(&s, "max \xF4\x8F\xBF\xBF ok\n", out, sizeof out), 0);
    /* too small a buffer */
    cr_assert_eq(sign(&s, "hello\n", out, 20), -1);
    /* bad names */
    const char *names[] = {"", "with space", "with+plus", "nbsp\xC2\xA0x", "ctl\x01x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cr_assert_eq(pt_note_sign("hi\n", 3, names[i], s.sk, out, sizeof out), -1, "name %zu", i);
        char vk[PT_VERIFIER_MAX];
        cr_assert_eq(pt_note_verifier_format(names[i], s.pk, vk, sizeof vk), -1);
    }
}

Test(note, tampering_refused)
{
    signer s;
    new_signer(&s, "patto.example/log");
    char good[PT_NOTE_MAX], bad[PT_NOTE_MAX + 64];
    long n = sign(&s, "origin\n42\ntext\n", good, sizeof good);
    cr_assert_gt(n, 0);
    cr_assert_eq(verify(good, &s.v), 0);

    /* tampered text */
    strcpy(bad, good);
    bad[8] = '3';
    cr_assert_eq(verify(bad, &s.v), -1);
    /* tampered signature (one base64 character of the signature body) */
    strcpy(bad, good);
    char *sig = strrchr(bad, ' ') + 1;
    sig[20] = sig[20] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(bad, &s.v), -1);
    /* missing final newline */
    cr_assert_eq(pt_note_verify(good, (size_t)n - 1, &s.v, NULL), -1);
    /* trailing garbage, with and without newline */
    snprintf(bad, sizeof bad, "%sgarbage", good);
    cr_assert_eq(verify(bad, &s.v), -1);
    snprintf(bad, sizeof bad, "%sgarbage\n", good);
    cr_assert_eq(verify(bad, &s.v), -1);
    snprintf(bad, sizeof bad, "%s\n", good);
    cr_assert_eq(verify(bad, &s.v), -1);
    /* no signature at all, no blank line */
    cr_assert_eq(verify("origin\n42\ntext\n\n", &s.v), -1);
    cr_assert_eq(verify("origin\n42\ntext\n", &s.v), -1);
    /* ASCII hyphen instead of the em dash */
    strcpy(bad, good);
    char *dash = strstr(bad, "\n\n\xE2\x80\x94 ") + 2;
    memmove(dash + 1, dash + 3, strlen(dash + 3) + 1);
    dash[0] = '-';
    cr_assert_eq(verify(bad, &s.v), -1);
    /* a NUL inside */
    memcpy(bad, good, (size_t)n);
    bad[3] = '\0';
    cr_assert_eq(pt_note_verify(bad, (size_t)n, &s.v, NULL), -1);
    /* embedded CR */
    memcpy(bad, good, (size_t)n);
    bad[3] = '\r';
    cr_assert_eq(pt_note_verify(bad, (size_t)n, &s.v, NULL), -1);
    /* non-canonical base64: 68 bytes end in a group of three characters and
     * '=', whose third character carries 2 bits the decoder drops */
    strcpy(bad, good);
    sig = strrchr(bad, ' ') + 1;
    cr_assert_eq(sig[91], '=');
    cr_assert_eq(sig[92], '\n');
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t ix = (size_t)(strchr(alpha, sig[90]) - alpha);
    cr_assert_eq(ix & 3, 0, "canonical encoding has zero low bits");
    sig[90] = alpha[ix | 1];
    cr_assert_eq(verify(bad, &s.v), -1);
    /* signature line with the right name but a broken base64 */
    snprintf(bad, sizeof bad, "%s\xE2\x80\x94 x.example/other !!!!\n", good);
    cr_assert_eq(verify(bad, &s.v), -1);
    /* too long */
    cr_assert_eq(pt_note_verify(good, PT_NOTE_MAX + 1, &s.v, NULL), -1);
}

Test(note, wrong_key_id_or_name_is_not_trusted)
{
    signer s, other;
    new_signer(&s, "patto.example/log");
    new_signer(&other, "patto.example/log");
    char good[PT_NOTE_MAX];
    cr_assert_gt(sign(&s, "hello\n", good, sizeof good), 0);

    /* another key with the same name: different key id, signature ignored */
    cr_assert_eq(verify(good, &other.v), -1);

    /* the right key under another name */
    pt_note_verifier renamed = s.v;
    snprintf(renamed.name, sizeof renamed.name, "patto.example/log2");
    cr_assert_eq(verify(good, &renamed), -1);
    /* same name, same key, but a wrong key id */
    pt_note_verifier wrong_id = s.v;
    wrong_id.key_id[0] ^= 1;
    cr_assert_eq(verify(good, &wrong_id), -1);
    /* the right id and name but another public key: the signature fails */
    pt_note_verifier wrong_pk = s.v;
    memcpy(wrong_pk.pk, other.pk, PT_ED25519_PK);
    cr_assert_eq(verify(good, &wrong_pk), -1);

    /* a note signed only by the other key of the same name: ignored */
    char out[PT_NOTE_MAX];
    cr_assert_gt(sign(&other, "hello\n", out, sizeof out), 0);
    cr_assert_eq(verify(out, &s.v), -1);
}

Test(note, unknown_signers_ignored_known_bad_signature_spoils)
{
    signer a, b;
    new_signer(&a, "a.example/log");
    new_signer(&b, "b.example/witness");
    char na[PT_NOTE_MAX], nb[PT_NOTE_MAX], both[2 * PT_NOTE_MAX];
    long la = sign(&a, "body\n", na, sizeof na);
    long lb = sign(&b, "body\n", nb, sizeof nb);
    cr_assert_gt(la, 0);
    cr_assert_gt(lb, 0);
    /* both signature lines on one note, in either order */
    snprintf(both, sizeof both, "%s%s", na, nb + strlen("body\n\n"));
    cr_assert_eq(verify(both, &a.v), 0);
    cr_assert_eq(verify(both, &b.v), 0);
    snprintf(both, sizeof both, "%s%s", nb, na + strlen("body\n\n"));
    cr_assert_eq(verify(both, &a.v), 0);
    cr_assert_eq(verify(both, &b.v), 0);
    /* a second, broken signature line by a known key spoils the note */
    char broken[PT_NOTE_MAX];
    snprintf(broken, sizeof broken, "%s", na + strlen("body\n\n"));
    char *sig = strrchr(broken, ' ') + 1;
    sig[30] = sig[30] == 'A' ? 'B' : 'A';
    snprintf(both, sizeof both, "%s%s", na, broken);
    cr_assert_eq(verify(both, &a.v), -1);
    /* an unknown signer with a long name and a non-Ed25519 length */
    char longname[201];
    memset(longname, 'w', 200);
    longname[200] = '\0';
    uint8_t blob[100];
    memset(blob, 7, sizeof blob);
    char b64[200];
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    snprintf(both, sizeof both, "%s\xE2\x80\x94 %s %s\n", na, longname, b64);
    cr_assert_eq(verify(both, &a.v), 0);
    /* 16 signature lines of unknown keys plus the known one */
    char many[PT_NOTE_MAX];
    size_t off = (size_t)snprintf(many, sizeof many, "%s", nb);
    for (int i = 0; i < 15; i++)
        off += (size_t)snprintf(many + off, sizeof many - off, "%s", nb + strlen("body\n\n"));
    snprintf(many + off, sizeof many - off, "%s", na + strlen("body\n\n"));
    cr_assert_eq(verify(many, &a.v), 0);
}

Test(note, verifier_string_round_trip_and_refusals)
{
    for (int i = 0; i < 20; i++) {
        signer s;
        char name[32];
        snprintf(name, sizeof name, "k%d.example/\xC3\xA9%d", i, i * 7);
        new_signer(&s, name);
        cr_assert_str_eq(s.v.name, name);
        cr_assert_eq(memcmp(s.v.pk, s.pk, PT_ED25519_PK), 0);
        uint8_t id[4];
        pt_note_key_id(name, s.pk, id);
        cr_assert_eq(memcmp(s.v.key_id, id, 4), 0);
        char vk[PT_VERIFIER_MAX];
        cr_assert_eq(pt_note_verifier_format(name, s.pk, vk, sizeof vk), 0);
        char again[PT_VERIFIER_MAX];
        pt_note_verifier v2 = parse_vkey(vk);
        cr_assert_eq(pt_note_verifier_format(v2.name, v2.pk, again, sizeof again), 0);
        cr_assert_str_eq(vk, again);
        /* too small an output buffer */
        cr_assert_eq(pt_note_verifier_format(name, s.pk, vk, strlen(again)), -1);
    }

    const char *bad[] = {
        "",
        "example.com/foo",
        /* wrong key id */
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        /* upper-case hex */
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        /* wrong name for the id */
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        /* short id */
        "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        /* truncated key */
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
        /* trailing garbage */
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2kA",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k\n",
        /* signature type 0x02 instead of 0x01 */
        "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        /* space in the name */
        "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        /* empty name */
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pt_note_verifier v;
        cr_assert_eq(pt_note_verifier_parse(bad[i], strlen(bad[i]), &v), -1, "accepted %s", bad[i]);
    }
}

static pt_checkpoint make_cp(const char *origin, uint64_t size, uint8_t fill)
{
    pt_checkpoint c;
    memset(&c, 0, sizeof c);
    snprintf(c.origin, sizeof c.origin, "%s", origin);
    c.size = size;
    for (size_t i = 0; i < sizeof c.root; i++)
        c.root[i] = (uint8_t)(fill + i * 7);
    return c;
}

static int parse_cp(const char *s, pt_checkpoint *c)
{
    return pt_checkpoint_parse(s, strlen(s), c);
}

Test(note, checkpoint_format_parse_round_trip)
{
    const uint64_t sizes[] = {0, 1, 9, 10, 20852163, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        pt_checkpoint c = make_cp("example.com/behind-the-sofa", sizes[i], (uint8_t)i), back;
        char buf[512];
        long n = pt_checkpoint_format(&c, buf, sizeof buf);
        cr_assert_gt(n, 0);
        cr_assert_eq((size_t)n, strlen(buf));
        memset(&back, 0xa5, sizeof back);
        cr_assert_eq(pt_checkpoint_parse(buf, (size_t)n, &back), 0);
        cr_assert_str_eq(back.origin, c.origin);
        cr_assert_eq(back.size, c.size);
        cr_assert_eq(memcmp(back.root, c.root, 32), 0);
        /* too small an output buffer */
        cr_assert_eq(pt_checkpoint_format(&c, buf, (size_t)n), -1);
    }
    /* the spec's example body */
    pt_checkpoint c;
    cr_assert_eq(parse_cp("example.com/behind-the-sofa\n20852163\n"
                          "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
                          &c),
                 0);
    cr_assert_str_eq(c.origin, "example.com/behind-the-sofa");
    cr_assert_eq(c.size, 20852163);
    cr_assert_eq(c.root[0], 0x0a);
    /* extension lines are allowed */
    cr_assert_eq(
        parse_cp("o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next one\next 2\n", &c), 0);
    cr_assert_eq(c.size, 5);
    /* the empty tree */
    pt_hash empty;
    pt_merkle_empty_root(empty);
    pt_checkpoint e = make_cp("log.example", 0, 0), eb;
    memcpy(e.root, empty, 32);
    char buf[256];
    cr_assert_gt(pt_checkpoint_format(&e, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "log.example\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
    cr_assert_eq(parse_cp(buf, &eb), 0);
}

Test(note, checkpoint_signed_round_trip)
{
    signer s;
    new_signer(&s, "log.patto.example");
    pt_checkpoint c = make_cp("log.patto.example", 123456, 3), back;
    char body[256], note[PT_NOTE_MAX];
    long bl = pt_checkpoint_format(&c, body, sizeof body);
    cr_assert_gt(bl, 0);
    long nl = pt_note_sign(body, (size_t)bl, s.name, s.sk, note, sizeof note);
    cr_assert_gt(nl, 0);
    size_t tl = 0;
    cr_assert_eq(pt_note_verify(note, (size_t)nl, &s.v, &tl), 0);
    cr_assert_eq(tl, (size_t)bl);
    cr_assert_eq(pt_checkpoint_parse(note, tl, &back), 0);
    cr_assert_eq(back.size, 123456);
    cr_assert_eq(memcmp(back.root, c.root, 32), 0);
}

Test(note, malformed_checkpoints_refused)
{
    const char *root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    const char *bad_sizes[] = {"01",
                               "00",
                               "-1",
                               "+1",
                               "1a",
                               "",
                               " 1",
                               "1 ",
                               "0x10",
                               "1.0",
                               "18446744073709551616",
                               "99999999999999999999999"};
    char buf[512];
    pt_checkpoint c;
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        snprintf(buf, sizeof buf, "o.example\n%s\n%s\n", bad_sizes[i], root);
        cr_assert_eq(parse_cp(buf, &c), -1, "size %s accepted", bad_sizes[i]);
    }
    snprintf(buf, sizeof buf, "o.example\n18446744073709551615\n%s\n", root);
    cr_assert_eq(parse_cp(buf, &c), 0);
    cr_assert_eq(c.size, UINT64_MAX);

    const char *bad_roots[] = {
        "",
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I",      /* no padding */
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=",     /* non-canonical */
        "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=",     /* URL alphabet */
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=AAAA", /* 35 bytes */
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx",         /* 30 bytes */
        "ZG9uJ3QgY2FyZSAy",                                 /* 12 bytes */
        "CsUYapGGPo4dkMgIAUqom/Xajj7h 2fB2MPA3j2jxq2I=",    /* space */
        " CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I==",
    };
    for (size_t i = 0; i < sizeof bad_roots / sizeof bad_roots[0]; i++) {
        snprintf(buf, sizeof buf, "o.example\n7\n%s\n", bad_roots[i]);
        cr_assert_eq(parse_cp(buf, &c), -1, "root %s accepted", bad_roots[i]);
    }

    char good[256];
    snprintf(good, sizeof good, "o.example\n7\n%s\n", root);
    cr_assert_eq(parse_cp(good, &c), 0);
    const char *missing[] = {
        "",
        "o.example\n",
        "o.example\n7\n",
        "\n7\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        /* no final newline */
        "o.example\n7\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        /* empty extension line, unterminated extension line */
        "o.example\n7\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",
        "o.example\n7\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next",
        /* lines out of order */
        "7\no.example\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        /* control character in the origin, CRLF */
        "o.\texample\n7\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "o.example\r\n7\r\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\r\n",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        cr_assert_eq(parse_cp(missing[i], &c), -1, "case %zu accepted", i);
    /* a NUL inside the text */
    memcpy(buf, good, strlen(good) + 1);
    buf[1] = '\0';
    cr_assert_eq(pt_checkpoint_parse(buf, strlen(good), &c), -1);
    /* origin longer than PT_NOTE_NAME_MAX */
    char longo[PT_NOTE_NAME_MAX + 2];
    memset(longo, 'a', sizeof longo - 1);
    longo[sizeof longo - 1] = '\0';
    snprintf(buf, sizeof buf, "%s\n7\n%s\n", longo, root);
    cr_assert_eq(parse_cp(buf, &c), -1);

    /* formatting refuses an empty origin or one with a newline */
    pt_checkpoint f = make_cp("", 1, 0);
    cr_assert_eq(pt_checkpoint_format(&f, buf, sizeof buf), -1);
    f = make_cp("a\nb", 1, 0);
    cr_assert_eq(pt_checkpoint_format(&f, buf, sizeof buf), -1);
}
