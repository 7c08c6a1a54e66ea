#include "normalize.h"

#include <string.h>

#define EMAIL_MAX 254
#define EMAIL_LOCAL_MAX 64
#define PHONE_MIN_DIGITS 8
#define PHONE_MAX_DIGITS 15
#define TOKEN_MAX 200

static const char *const NAMES[PT_IDENT__COUNT] = {
    [PT_IDENT_EMAIL] = "email",       [PT_IDENT_PHONE] = "phone",
    [PT_IDENT_COOKIE] = "cookie",     [PT_IDENT_DEVICE] = "device",
    [PT_IDENT_EXTERNAL] = "external",
};

int pt_ident_type_parse(const char *name)
{
    if (!name) return -1;
    for (int t = 0; t < PT_IDENT__COUNT; t++)
        if (strcmp(name, NAMES[t]) == 0) return t;
    return -1;
}

const char *pt_ident_type_name(pt_ident_type t)
{
    if ((int)t < 0 || t >= PT_IDENT__COUNT) return "unknown";
    return NAMES[t];
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    while (n > 0 && is_space((unsigned char)p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_space((unsigned char)p[n - 1])) n--;
    *s = p;
    *len = n;
}

static int normalize_email(const char *in, size_t len, char *out)
{
    if (len == 0 || len > EMAIL_MAX) return -1;
    size_t at = len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        /* Bytes >= 0x80 pass through: internationalised local parts exist,
         * and UTF-8 validity is checked where the body enters patto. */
        if (c <= 0x20 || c == 0x7f) return -1;
        if (c == '@') {
            if (at != len) return -1;
            at = i;
        }
        /* Only ASCII is folded: Unicode case mapping is locale-laden and
         * providers do not agree on it anyway. */
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
    }
    out[len] = '\0';
    if (at == len || at == 0 || at > EMAIL_LOCAL_MAX) return -1;

    /* The domain needs a dot between non-empty labels: "a@b", "a@.b",
     * "a@b." and "a@b..c" can never receive mail. */
    const char *dom = out + at + 1;
    size_t dlen = len - at - 1;
    int dots = 0;
    for (size_t i = 0; i < dlen; i++) {
        if (dom[i] != '.') continue;
        if (i == 0 || i == dlen - 1 || dom[i - 1] == '.') return -1;
        dots++;
    }
    return dots > 0 ? 0 : -1;
}

static int normalize_phone(const char *in, size_t len, char *out)
{
    /* Separators first, so that "(+39) 333..." and "0039 333..." are seen
     * by the prefix check in their bare form. */
    char buf[PHONE_MAX_DIGITS + 3];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == ' ' || c == '.' || c == '-' || c == '(' || c == ')') continue;
        /* "00" + 15 digits is the longest acceptable form. */
        if (n == sizeof buf) return -1;
        buf[n++] = c;
    }

    size_t start;
    if (n >= 1 && buf[0] == '+')
        start = 1;
    else if (n >= 2 && buf[0] == '0' && buf[1] == '0')
        start = 2;
    else
        return -1; /* no international prefix: we will not guess a country */

    size_t digits = n - start;
    if (digits < PHONE_MIN_DIGITS || digits > PHONE_MAX_DIGITS) return -1;
    /* E.164 country codes never start with 0; "+0..." or "000..." is a
     * national number wearing a prefix by mistake. */
    if (buf[start] == '0') return -1;
    out[0] = '+';
    for (size_t i = 0; i < digits; i++) {
        char c = buf[start + i];
        if (c < '0' || c > '9') return -1;
        out[1 + i] = c;
    }
    out[1 + digits] = '\0';
    return 0;
}

static int normalize_token(const char *in, size_t len, char *out)
{
    if (len < 1 || len > TOKEN_MAX) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x21 || c > 0x7e) return -1;
        out[i] = (char)c;
    }
    out[len] = '\0';
    return 0;
}

int pt_ident_normalize(pt_ident_type t, const char *in, size_t len, char out[PT_IDENT_MAX])
{
    out[0] = '\0';
    if (!in) {
        if (len) return -1;
        in = "";
    }
    trim(&in, &len);
    int rc;
    switch (t) {
    case PT_IDENT_EMAIL:
        rc = normalize_email(in, len, out);
        break;
    case PT_IDENT_PHONE:
        rc = normalize_phone(in, len, out);
        break;
    case PT_IDENT_COOKIE:
    case PT_IDENT_DEVICE:
    case PT_IDENT_EXTERNAL:
        rc = normalize_token(in, len, out);
        break;
    default:
        rc = -1;
        break;
    }
    /* A refused value must not leave a half-written candidate behind for a
     * careless caller to index. */
    if (rc != 0) out[0] = '\0';
    return rc;
}
