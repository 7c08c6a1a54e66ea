/* ids.h - opaque prefixed identifiers: "sub_", "evt_", "ntc_", "key_"...
 * An id is 16 random bytes written as the prefix, '_' and 26 characters of
 * lower-case Crockford base32 (alphabet 0123456789abcdefghjkmnpqrstvwxyz,
 * 128 bits in 26 characters: the last character carries 3 data bits and 2
 * zero pad bits).
 * Pure module: the caller supplies the random bytes. */
#ifndef PT_IDS_H
#define PT_IDS_H

#include <stddef.h>
#include <stdint.h>

#define PT_ID_BYTES 16
#define PT_ID_B32_LEN 26
/* longest prefix is 3 chars + '_' + 26 + NUL */
#define PT_ID_STR_MAX 32

/* prefix is 1..3 lower-case letters without the '_'. */
void pt_id_format(const char *prefix, const uint8_t id[PT_ID_BYTES], char out[PT_ID_STR_MAX]);

/* Parses "<prefix>_<26 chars>"; accepts upper case; refuses a wrong prefix,
 * wrong length, characters outside the alphabet (no i/l/o/u aliasing) and
 * non-zero pad bits. Returns 0 on success, -1 otherwise. */
int pt_id_parse(const char *prefix, const char *s, size_t len, uint8_t id[PT_ID_BYTES]);

/* Generic Crockford base32 (lower case, no padding), used for API key
 * secrets. out must hold pt_b32_len(n)+1 bytes; returns chars written. */
size_t pt_b32_len(size_t nbytes);
size_t pt_b32_encode(const uint8_t *in, size_t n, char *out);
/* Returns bytes written to out (capacity outcap) or -1 on bad input. */
long pt_b32_decode(const char *s, size_t len, uint8_t *out, size_t outcap);

#endif
