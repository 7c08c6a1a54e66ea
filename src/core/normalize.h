/* normalize.h - identifier normalisation before blind indexing, so that the
 * same person typed two ways is found once.
 *  email:  trimmed, lower-cased (the whole address), must have exactly one
 *          '@', a non-empty local part <= 64, a domain with a dot, no
 *          spaces or control characters; <= 254 chars.
 *  phone:  E.164: '+' then 8..15 digits. Spaces, dots, dashes, parentheses
 *          are removed; a leading "00" becomes '+'. A number without '+' or
 *          "00" is refused (patto does not guess a country).
 *  cookie, device, external: trimmed; 1..200 printable ASCII chars (0x21..0x7e).
 * Pure module. */
#ifndef PT_NORMALIZE_H
#define PT_NORMALIZE_H

#include <stddef.h>

#define PT_IDENT_MAX 256

typedef enum pt_ident_type {
    PT_IDENT_EMAIL = 0,
    PT_IDENT_PHONE,
    PT_IDENT_COOKIE,
    PT_IDENT_DEVICE,
    PT_IDENT_EXTERNAL,
    PT_IDENT__COUNT
} pt_ident_type;

/* "email" -> PT_IDENT_EMAIL; returns -1 for an unknown name. */
int pt_ident_type_parse(const char *name);
const char *pt_ident_type_name(pt_ident_type t);

/* Writes the normalised value into out (PT_IDENT_MAX bytes, NUL-terminated).
 * Returns 0, or -1 when the value is not a valid identifier of that type. */
int pt_ident_normalize(pt_ident_type t, const char *in, size_t len, char out[PT_IDENT_MAX]);

#endif
