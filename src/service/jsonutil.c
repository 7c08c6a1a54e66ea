#include "jsonutil.h"

#include <string.h>

#include "core/ids.h"
#include "core/policy.h"
#include "core/timefmt.h"

static bool in_list(const char *k, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(*list, k) == 0) return true;
    return false;
}

static void field_name(pt_err *err, const char *prefix, const char *key)
{
    if (err) snprintf(err->field, sizeof err->field, "%s%s", prefix, key);
}

pt_result pt_json_fields(const json_t *obj, const char *prefix, const char *const *allowed,
                         const char *const *readonly, pt_err *err)
{
    if (!json_is_object(obj)) {
        /* the prefix names the member with a trailing '.' ("notice.") */
        char name[PT_ERR_FIELD_MAX];
        size_t n = strlen(prefix);
        if (n && prefix[n - 1] == '.') n--;
        snprintf(name, sizeof name, "%.*s", (int)n, prefix);
        return pt_err_set(err, PT_ERR_INVALID, n ? name : "body", "%s must be a JSON object",
                          n ? name : "the body");
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        (void)v;
        if (in_list(k, allowed)) continue;
        if (in_list(k, readonly))
            pt_err_set(err, PT_ERR_INVALID, "", "field '%s%.64s' is read-only: patto sets it",
                       prefix, k);
        else
            pt_err_set(err, PT_ERR_INVALID, "", "unknown field '%s%.64s'", prefix, k);
        field_name(err, prefix, k);
        return PT_ERR_INVALID;
    }
    return PT_OK;
}


pt_result pt_json_str(const json_t *obj, const char *prefix, const char *key, bool required,
                      size_t max, const char **out, pt_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required) return PT_OK;
        pt_err_set(err, PT_ERR_INVALID, "", "field '%s%s' is required", prefix, key);
        field_name(err, prefix, key);
        return PT_ERR_INVALID;
    }
    if (!json_is_string(v)) {
        pt_err_set(err, PT_ERR_INVALID, "", "field '%s%s' must be a string", prefix, key);
        field_name(err, prefix, key);
        return PT_ERR_INVALID;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > max || strlen(s) != n) {
        pt_err_set(err, PT_ERR_INVALID, "", "field '%s%s' must be 1 to %zu bytes without NUL",
                   prefix, key, max);
        field_name(err, prefix, key);
        return PT_ERR_INVALID;
    }
    *out = s;
    return PT_OK;
}

pt_result pt_json_int(const json_t *obj, const char *prefix, const char *key, bool required,
                      int64_t lo, int64_t hi, int64_t *out, bool *present, pt_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (present) *present = false;
    if (!v || json_is_null(v)) {
        if (!required) return PT_OK;
        pt_err_set(err, PT_ERR_INVALID, "", "field '%s%s' is required", prefix, key);
        field_name(err, prefix, key);
        return PT_ERR_INVALID;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        pt_err_set(err, PT_ERR_INVALID, "", "field '%s%s' must be an integer from %lld to %lld",
                   prefix, key, (long long)lo, (long long)hi);
        field_name(err, prefix, key);
        return PT_ERR_INVALID;
    }
    *out = json_integer_value(v);
    if (present) *present = true;
    return PT_OK;
}

pt_result pt_json_channels(const json_t *obj, const char *prefix, const char *key, uint8_t *out,
                           pt_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v || json_is_null(v)) return PT_OK;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > PT_CH_COUNT) {
        pt_err_set(err, PT_ERR_INVALID, "",
                   "field '%s%s' must be a non-empty array of channels (email, sms, phone, "
                   "post, web, app, push, ads)",
                   prefix, key);
        field_name(err, prefix, key);
        return PT_ERR_INVALID;
    }
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        int bit = json_is_string(c) ? pt_channel_parse(json_string_value(c)) : -1;
        if (bit < 0) {
            pt_err_set(err, PT_ERR_INVALID, "",
                       "field '%s%s' has an unknown channel; known: email, sms, phone, post, "
                       "web, app, push, ads",
                       prefix, key);
            field_name(err, prefix, key);
            return PT_ERR_INVALID;
        }
        *out |= (uint8_t)bit;
    }
    return PT_OK;
}

pt_result pt_json_time(const json_t *obj, const char *prefix, const char *key, int64_t *out,
                       bool *present, pt_err *err)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (!v || json_is_null(v)) return PT_OK;
    if (!json_is_string(v) ||
        pt_time_parse(json_string_value(v), json_string_length(v), out) != 0) {
        pt_err_set(err, PT_ERR_INVALID, "",
                   "field '%s%s' must be an RFC 3339 time such as 2026-11-29T12:00:00.000Z",
                   prefix, key);
        field_name(err, prefix, key);
        return PT_ERR_INVALID;
    }
    *present = true;
    return PT_OK;
}

json_t *pt_json_time_value(int64_t ms)
{
    if (!ms) return json_null();
    char buf[PT_TIME_STR_MAX];
    pt_time_format(ms, buf);
    return json_string(buf);
}

json_t *pt_json_channels_value(uint8_t mask)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < PT_CH_COUNT; i++)
        if (mask & (1u << i)) json_array_append_new(a, json_string(pt_channel_name(1u << i)));
    return a;
}

json_t *pt_json_id_value(const char *prefix, const uint8_t id[16])
{
    char buf[PT_ID_STR_MAX];
    pt_id_format(prefix, id, buf);
    return json_string(buf);
}
