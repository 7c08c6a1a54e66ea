/* result.h - the one result-code enum of patto, and the error record that
 * carries a human reason and the offending field up to the shells.
 *
 * Every fallible function returns pt_result and, where it can say more,
 * fills a caller-owned pt_err. The HTTP shell maps codes to statuses with
 * pt_result_http_status(); the CLI prints pt_err.detail on one line.
 * Pure module: no I/O. */
#ifndef PT_RESULT_H
#define PT_RESULT_H

typedef enum pt_result {
    PT_OK = 0,
    PT_ERR_INVALID,        /* 400: malformed or invalid input */
    PT_ERR_UNAUTHORIZED,   /* 401: no or bad key */
    PT_ERR_FORBIDDEN,      /* 403: the role may not */
    PT_ERR_NOT_FOUND,      /* 404: unknown, or another tenant's */
    PT_ERR_METHOD,         /* 405 */
    PT_ERR_CONFLICT,       /* 409 */
    PT_ERR_TOO_LARGE,      /* 413 */
    PT_ERR_MEDIA_TYPE,     /* 415 */
    PT_ERR_POLICY,         /* 422: well-formed but refused by policy */
    PT_ERR_NOMEM,          /* 500 */
    PT_ERR_INTERNAL,       /* 500 */
    PT_ERR_CRYPTO,         /* 500: authenticated decryption failed */
    PT_ERR_STORAGE,        /* 503: storage unavailable, nothing written */
    PT_ERR_STORAGE_FULL,   /* 503: disk full, nothing written */
    PT_ERR_STORAGE_FATAL,  /* 503: fsync failed; the server must stop */
    PT_ERR_IO,             /* CLI: file not readable or writable */
} pt_result;

#define PT_ERR_FIELD_MAX 96
#define PT_ERR_DETAIL_MAX 320

/* Caller-owned. field is "" when the error is not about one field. */
typedef struct pt_err {
    pt_result code;
    char field[PT_ERR_FIELD_MAX];
    char detail[PT_ERR_DETAIL_MAX];
} pt_err;

/* Sets err (may be NULL) and returns code, so that callers can write
 * `return pt_err_set(err, PT_ERR_INVALID, "purpose", "unknown purpose '%s'", p);` */
pt_result pt_err_set(pt_err *err, pt_result code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void pt_err_clear(pt_err *err);

/* Static strings; never NULL. */
const char *pt_result_str(pt_result r);
int pt_result_http_status(pt_result r);
/* Short slug used in problem+json `type` URIs, e.g. "invalid-input". */
const char *pt_result_slug(pt_result r);

#endif
