#include "ids.h"

#include <limits.h>
#include <string.h>

static const char B32_ALPHABET[32] = "0123456789abcdefghjkmnpqrstvwxyz";

/* Maps a character to its 5-bit value, or -1. Upper case is accepted because
 * people copy ids out of logs and tickets that upper-case them; the Crockford
 * aliases (i/l -> 1, o -> 0) are not, so that one id has one spelling. */
static int b32_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    if (c >= '0' && c <= '9') return c - '0';
    if (c < 'a' || c > 'z') return -1;
    switch (c) {
    case 'i':
    case 'l':
    case 'o':
    case 'u':
        return -1;
    default:
        break;
    }
    /* Letters after each skipped one shift down by one slot. */
    int v = 10 + (c - 'a');
    if (c > 'i') v--;
    if (c > 'l') v--;
    if (c > 'o') v--;
    if (c > 'u') v--;
    return v;
}

size_t pt_b32_len(size_t nbytes)
{
    /* Written per 5-byte group so that the multiplication cannot overflow. */
    return nbytes / 5 * 8 + ((nbytes % 5) * 8 + 4) / 5;
}

size_t pt_b32_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = B32_ALPHABET[(acc >> bits) & 31u];
        }
    }
    /* The tail is left-aligned in the last character, low bits zero. */
    if (bits > 0) out[o++] = B32_ALPHABET[(acc << (5 - bits)) & 31u];
    out[o] = '\0';
    return o;
}

long pt_b32_decode(const char *s, size_t len, uint8_t *out, size_t outcap)
{
    if (!s && len) return -1;
    if (len > (size_t)-1 / 5) return -1;
    size_t nbytes = len * 5 / 8;
    /* Lengths the encoder never produces (1, 3, 6 mod 8) would leave a
     * whole character of padding, i.e. two spellings of the same bytes. */
    if (pt_b32_len(nbytes) != len) return -1;
    if (nbytes > outcap || nbytes > (size_t)LONG_MAX) return -1;

    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b32_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Non-zero pad bits would give a second spelling of the same id. */
    if (bits > 0 && (acc & ((1u << bits) - 1u)) != 0) return -1;
    return (long)o;
}

void pt_id_format(const char *prefix, const uint8_t id[PT_ID_BYTES], char out[PT_ID_STR_MAX])
{
    /* Prefixes are compile-time constants; the bound only keeps a wrong one
     * from running past out. */
    size_t n = 0;
    while (n < 3 && prefix[n]) {
        out[n] = prefix[n];
        n++;
    }
    out[n++] = '_';
    pt_b32_encode(id, PT_ID_BYTES, out + n);
}

int pt_id_parse(const char *prefix, const char *s, size_t len, uint8_t id[PT_ID_BYTES])
{
    if (!prefix || !s) return -1;
    size_t plen = strlen(prefix);
    if (plen < 1 || plen > 3) return -1;
    if (len != plen + 1 + PT_ID_B32_LEN) return -1;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)prefix[i]) return -1;
    }
    if (s[plen] != '_') return -1;
    /* Decode into a scratch buffer so that a refused id leaves *id alone. */
    uint8_t tmp[PT_ID_BYTES];
    if (pt_b32_decode(s + plen + 1, PT_ID_B32_LEN, tmp, sizeof tmp) != PT_ID_BYTES) return -1;
    memcpy(id, tmp, sizeof tmp);
    return 0;
}
