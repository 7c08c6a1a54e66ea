#include "result.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

pt_result pt_err_set(pt_err *err, pt_result code, const char *field, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
    return code;
}

void pt_err_clear(pt_err *err)
{
    if (!err) return;
    err->code = PT_OK;
    err->field[0] = '\0';
    err->detail[0] = '\0';
}

static const struct {
    const char *str;
    const char *slug;
    int status;
} TABLE[] = {
    [PT_OK] = {"ok", "ok", 200},
    [PT_ERR_INVALID] = {"invalid input", "invalid-input", 400},
    [PT_ERR_UNAUTHORIZED] = {"unauthorized", "unauthorized", 401},
    [PT_ERR_FORBIDDEN] = {"forbidden", "forbidden", 403},
    [PT_ERR_NOT_FOUND] = {"not found", "not-found", 404},
    [PT_ERR_METHOD] = {"method not allowed", "method-not-allowed", 405},
    [PT_ERR_CONFLICT] = {"conflict", "conflict", 409},
    [PT_ERR_TOO_LARGE] = {"payload too large", "payload-too-large", 413},
    [PT_ERR_MEDIA_TYPE] = {"unsupported media type", "unsupported-media-type", 415},
    [PT_ERR_POLICY] = {"refused by policy", "refused-by-policy", 422},
    [PT_ERR_NOMEM] = {"out of memory", "internal", 500},
    [PT_ERR_INTERNAL] = {"internal error", "internal", 500},
    [PT_ERR_CRYPTO] = {"decryption failed", "internal", 500},
    [PT_ERR_STORAGE] = {"storage unavailable", "storage-unavailable", 503},
    [PT_ERR_STORAGE_FULL] = {"storage full", "storage-unavailable", 503},
    [PT_ERR_STORAGE_FATAL] = {"storage failed", "storage-unavailable", 503},
    [PT_ERR_IO] = {"i/o error", "internal", 500},
};

const char *pt_result_str(pt_result r)
{
    if ((unsigned)r >= sizeof TABLE / sizeof TABLE[0]) return "unknown error";
    return TABLE[r].str;
}

const char *pt_result_slug(pt_result r)
{
    if ((unsigned)r >= sizeof TABLE / sizeof TABLE[0]) return "internal";
    return TABLE[r].slug;
}

int pt_result_http_status(pt_result r)
{
    if ((unsigned)r >= sizeof TABLE / sizeof TABLE[0]) return 500;
    return TABLE[r].status;
}
