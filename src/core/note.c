/* note.c - C2SP signed notes (Ed25519) and tlog-checkpoint bodies (see
 * note.h). Parsing is strict: valid UTF-8, no control characters other
 * than newline, canonical padded standard base64, exact lengths. */
#include "note.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define SIG_TYPE_ED25519 0x01
#define SIG_BYTES 64
#define KEY_ID_BYTES 4
#define MAX_SIG_LINES 100
/* base64 of 1 + 32 bytes, and of 4 + 64 bytes, without NUL */
#define B64_VKEY_LEN 44
#define B64_SIG_LEN 92
#define B64_HASH_LEN 44

static const char EM_DASH_SP[] = "\xE2\x80\x94 ";
#define EM_DASH_SP_LEN 4

/* ---- text checks ------------------------------------------------------ */

/* Decodes one UTF-8 sequence at s[0..n); returns its length and the code
 * point, or 0 when invalid (overlong, surrogate, above U+10FFFF, cut). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Unicode White_Space, as a key name must contain none. */
static int is_unicode_space(uint32_t c)
{
    return c == 0x20 || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Valid UTF-8 with no control character other than '\n'. */
static int valid_note_bytes(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0) return 0;
        if (cp < 0x20 && cp != '\n') return 0;
        i += l;
    }
    return 1;
}

/* Key name as signed-note.md defines it: non-empty, valid UTF-8, no
 * control characters, no Unicode spaces, no '+'. */
static int valid_name_any_length(const char *s, size_t n)
{
    if (n == 0) return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0 || cp < 0x20 || cp == '+' || is_unicode_space(cp)) return 0;
        i += l;
    }
    return 1;
}

/* A name this module signs with or keeps in a verifier: also at most
 * PT_NOTE_NAME_MAX bytes. */
static int valid_name(const char *s, size_t n)
{
    return n <= PT_NOTE_NAME_MAX && valid_name_any_length(s, n);
}

/* Note text: non-empty, ends in '\n', valid note bytes. */
static int valid_text(const char *s, size_t n)
{
    return n > 0 && s[n - 1] == '\n' && valid_note_bytes(s, n);
}

/* ---- base64 ----------------------------------------------------------- */

/* Strict decode of exactly s[0..n) (standard alphabet, padded, canonical)
 * into at most cap bytes; returns the length or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 != 0) return -1;
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, cap, s, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != s + n)
        return -1;
    /* the length must be exactly what this many bytes encode to */
    if (sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL) - 1 != n) return -1;
    return (long)len;
}

/* ---- keys ------------------------------------------------------------- */

void pt_note_key_id(const char *name, const uint8_t pk[PT_ED25519_PK], uint8_t id[4])
{
    static const uint8_t sep[2] = {'\n', SIG_TYPE_ED25519};
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, sep, sizeof sep);
    crypto_hash_sha256_update(&st, pk, PT_ED25519_PK);
    crypto_hash_sha256_final(&st, h);
    memcpy(id, h, KEY_ID_BYTES);
}

int pt_note_verifier_format(const char *name, const uint8_t pk[PT_ED25519_PK], char *out,
                            size_t cap)
{
    if (!name || !pk || !out) return -1;
    size_t nl = strlen(name);
    if (!valid_name(name, nl)) return -1;
    size_t need = nl + 1 + 8 + 1 + B64_VKEY_LEN;
    if (need + 1 > cap) return -1;
    uint8_t id[KEY_ID_BYTES], key[1 + PT_ED25519_PK];
    pt_note_key_id(name, pk, id);
    key[0] = SIG_TYPE_ED25519;
    memcpy(key + 1, pk, PT_ED25519_PK);
    memcpy(out, name, nl);
    snprintf(out + nl, cap - nl, "+%02x%02x%02x%02x+", id[0], id[1], id[2], id[3]);
    sodium_bin2base64(out + nl + 10, cap - nl - 10, key, sizeof key,
                      sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* the spec's hex is lowercase */
}

int pt_note_verifier_parse(const char *s, size_t len, pt_note_verifier *v)
{
    if (!s || !v) return -1;
    const char *plus = memchr(s, '+', len);
    if (!plus) return -1;
    size_t nl = (size_t)(plus - s);
    if (!valid_name(s, nl)) return -1;
    /* "+" hex8 "+" base64(33 bytes), nothing else */
    if (len != nl + 1 + 8 + 1 + B64_VKEY_LEN || s[nl + 9] != '+') return -1;
    uint8_t id[KEY_ID_BYTES];
    for (size_t i = 0; i < KEY_ID_BYTES; i++) {
        int hi = hex_nibble(s[nl + 1 + 2 * i]), lo = hex_nibble(s[nl + 2 + 2 * i]);
        if (hi < 0 || lo < 0) return -1;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    uint8_t key[1 + PT_ED25519_PK];
    if (b64_decode(s + nl + 10, B64_VKEY_LEN, key, sizeof key) != (long)sizeof key) return -1;
    if (key[0] != SIG_TYPE_ED25519) return -1;
    pt_note_verifier out;
    memcpy(out.name, s, nl);
    out.name[nl] = '\0';
    memcpy(out.pk, key + 1, PT_ED25519_PK);
    pt_note_key_id(out.name, out.pk, out.key_id);
    if (memcmp(out.key_id, id, KEY_ID_BYTES) != 0) return -1;
    *v = out;
    return 0;
}

/* ---- signing and verification ----------------------------------------- */

long pt_note_sign(const char *text, size_t len, const char *name, const uint8_t sk[PT_ED25519_SK],
                  char *out, size_t cap)
{
    if (!text || !name || !sk || !out) return -1;
    size_t nl = strlen(name);
    if (!valid_text(text, len) || !valid_name(name, nl)) return -1;
    /* text, blank line, "— name sig\n" */
    size_t total = len + 1 + EM_DASH_SP_LEN + nl + 1 + B64_SIG_LEN + 1;
    if (total > PT_NOTE_MAX || total + 1 > cap) return -1;

    uint8_t sig[KEY_ID_BYTES + SIG_BYTES];
    pt_note_key_id(name, sk + 32, sig); /* libsodium keeps pk in sk[32..64) */
    if (crypto_sign_detached(sig + KEY_ID_BYTES, NULL, (const uint8_t *)text, len, sk) != 0)
        return -1;

    char *p = out;
    memmove(p, text, len); /* text may already sit in out */
    p += len;
    *p++ = '\n';
    memcpy(p, EM_DASH_SP, EM_DASH_SP_LEN);
    p += EM_DASH_SP_LEN;
    memcpy(p, name, nl);
    p += nl;
    *p++ = ' ';
    sodium_bin2base64(p, cap - (size_t)(p - out), sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    p += B64_SIG_LEN;
    *p++ = '\n';
    *p = '\0';
    return (long)total;
}

int pt_note_verify(const char *note, size_t len, const pt_note_verifier *v, size_t *text_len)
{
    if (!note || !v || len == 0 || len > PT_NOTE_MAX) return -1;
    if (note[len - 1] != '\n' || !valid_note_bytes(note, len)) return -1;

    /* The text ends at the last blank line: find the last "\n\n". */
    size_t split = len; /* index of the blank line's '\n' */
    for (size_t i = len - 1; i > 0; i--)
        if (note[i] == '\n' && note[i - 1] == '\n') {
            split = i;
            break;
        }
    if (split == len || split + 1 >= len) return -1; /* no blank line, or no signature */
    size_t tlen = split;                             /* text includes its final '\n' */

    size_t vnl = strnlen(v->name, sizeof v->name);
    if (vnl > PT_NOTE_NAME_MAX) return -1;
    int verified = 0, lines = 0;
    size_t pos = split + 1;
    while (pos < len) {
        const char *line = note + pos;
        const char *nlp = memchr(line, '\n', len - pos);
        size_t ll = (size_t)(nlp - line); /* exists: the note ends in '\n' */
        pos += ll + 1;
        if (++lines > MAX_SIG_LINES) return -1;
        if (ll < EM_DASH_SP_LEN || memcmp(line, EM_DASH_SP, EM_DASH_SP_LEN) != 0) return -1;
        const char *name = line + EM_DASH_SP_LEN;
        size_t rest = ll - EM_DASH_SP_LEN;
        const char *sp = memchr(name, ' ', rest);
        if (!sp) return -1;
        size_t nl = (size_t)(sp - name);
        if (!valid_name_any_length(name, nl)) return -1; /* other signers' names too */
        const char *b64 = sp + 1;
        size_t bl = rest - nl - 1;
        uint8_t sig[PT_NOTE_MAX];
        long sl = b64_decode(b64, bl, sig, sizeof sig);
        if (sl < KEY_ID_BYTES + 1) return -1;
        /* Only the key named AND identified as v is v's: others are ignored. */
        if (nl != vnl || memcmp(name, v->name, nl) != 0 ||
            memcmp(sig, v->key_id, KEY_ID_BYTES) != 0)
            continue;
        if (sl != KEY_ID_BYTES + SIG_BYTES) return -1;
        if (crypto_sign_verify_detached(sig + KEY_ID_BYTES, (const uint8_t *)note, tlen, v->pk) !=
            0)
            return -1; /* a known key's bad signature spoils the note */
        verified = 1;
    }
    if (!verified) return -1;
    if (text_len) *text_len = tlen;
    return 0;
}

/* ---- checkpoints ------------------------------------------------------ */

long pt_checkpoint_format(const pt_checkpoint *c, char *out, size_t cap)
{
    if (!c || !out) return -1;
    size_t ol = strnlen(c->origin, sizeof c->origin);
    if (ol == 0 || ol > PT_NOTE_NAME_MAX || memchr(c->origin, '\n', ol) ||
        !valid_note_bytes(c->origin, ol))
        return -1;
    char num[24];
    int nn = snprintf(num, sizeof num, "%llu", (unsigned long long)c->size);
    if (nn <= 0) return -1;
    size_t total = ol + 1 + (size_t)nn + 1 + B64_HASH_LEN + 1;
    if (total + 1 > cap) return -1;
    char *p = out;
    memcpy(p, c->origin, ol);
    p += ol;
    *p++ = '\n';
    memcpy(p, num, (size_t)nn);
    p += nn;
    *p++ = '\n';
    sodium_bin2base64(p, cap - (size_t)(p - out), c->root, sizeof c->root,
                      sodium_base64_VARIANT_ORIGINAL);
    p += B64_HASH_LEN;
    *p++ = '\n';
    *p = '\0';
    return (long)total;
}

/* Next line of text[*pos..len) without its '\n'; 0 when there is no
 * complete line. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *ll)
{
    if (*pos >= len) return 0;
    const char *nlp = memchr(text + *pos, '\n', len - *pos);
    if (!nlp) return 0;
    *line = text + *pos;
    *ll = (size_t)(nlp - *line);
    *pos += *ll + 1;
    return 1;
}

int pt_checkpoint_parse(const char *text, size_t len, pt_checkpoint *c)
{
    if (!text || !c) return -1;
    if (!valid_note_bytes(text, len)) return -1;
    size_t pos = 0, ol, sl, rl;
    const char *origin, *size, *root;
    if (!next_line(text, len, &pos, &origin, &ol) || !next_line(text, len, &pos, &size, &sl) ||
        !next_line(text, len, &pos, &root, &rl))
        return -1;
    if (ol == 0 || ol > PT_NOTE_NAME_MAX) return -1;

    /* decimal, no leading zero unless exactly "0", fits in 64 bits */
    if (sl == 0 || sl > 20 || (sl > 1 && size[0] == '0')) return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < sl; i++) {
        if (size[i] < '0' || size[i] > '9') return -1;
        unsigned d = (unsigned)(size[i] - '0');
        if (n > (UINT64_MAX - d) / 10) return -1;
        n = n * 10 + d;
    }

    uint8_t h[32];
    if (rl != B64_HASH_LEN || b64_decode(root, rl, h, sizeof h) != 32) return -1;

    /* extension lines, if any, are non-empty and end in '\n' */
    while (pos < len) {
        const char *ext;
        size_t el;
        if (!next_line(text, len, &pos, &ext, &el) || el == 0) return -1;
    }

    memcpy(c->origin, origin, ol);
    c->origin[ol] = '\0';
    c->size = n;
    memcpy(c->root, h, sizeof h);
    return 0;
}
