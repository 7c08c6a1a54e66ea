/* jsonutil.h - strict reading of request documents: every field is known,
 * typed and bounded, and the error names the field. Read-only fields
 * (those patto sets itself) get their own message, so that a client that
 * echoes a response back learns why it was refused. */
#ifndef PT_JSONUTIL_H
#define PT_JSONUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/result.h"

/* obj must be an object whose keys are all in allowed (NULL-terminated);
 * keys in readonly (NULL-terminated, may be NULL) are refused as read-only.
 * prefix names the object in messages ("" for the body, "notice." ...). */
pt_result pt_json_fields(const json_t *obj, const char *prefix, const char *const *allowed,
                         const char *const *readonly, pt_err *err);

/* A string field of at most max bytes (and at least 1 unless allow_empty).
 * *out = NULL when absent and !required. */
pt_result pt_json_str(const json_t *obj, const char *prefix, const char *key, bool required,
                      size_t max, const char **out, pt_err *err);
/* Integer in [lo, hi]; *present tells whether it was there (may be NULL when required). */
pt_result pt_json_int(const json_t *obj, const char *prefix, const char *key, bool required,
                      int64_t lo, int64_t hi, int64_t *out, bool *present, pt_err *err);
/* Channel names array -> bitmask; absent -> 0. Empty array refused. */
pt_result pt_json_channels(const json_t *obj, const char *prefix, const char *key,
                           uint8_t *out, pt_err *err);
/* RFC 3339 time string -> ms; absent -> *present=false. */
pt_result pt_json_time(const json_t *obj, const char *prefix, const char *key, int64_t *out,
                       bool *present, pt_err *err);

/* Builders for responses. */
json_t *pt_json_time_value(int64_t ms);         /* null for 0 */
json_t *pt_json_channels_value(uint8_t mask);   /* array of names */
json_t *pt_json_id_value(const char *prefix, const uint8_t id[16]);

#endif
