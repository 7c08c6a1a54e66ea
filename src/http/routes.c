/* routes.c - the route table and the thin handlers that turn a request
 * into a service call. Roles per route are the authorization policy; the
 * authorization matrix test enumerates this table. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "request.h"
#include "service/log.h"

#define ADMIN PT_ROLE_BIT(PT_ROLE_ADMIN)
#define OPERATOR PT_ROLE_BIT(PT_ROLE_OPERATOR)
#define MARKETING PT_ROLE_BIT(PT_ROLE_MARKETING)
#define AUDITOR PT_ROLE_BIT(PT_ROLE_AUDITOR)
#define RECIPIENT PT_ROLE_BIT(PT_ROLE_RECIPIENT)
#define ANY_ROLE (ADMIN | OPERATOR | MARKETING | AUDITOR | RECIPIENT)
#define READERS (ADMIN | OPERATOR | MARKETING | AUDITOR)

extern const char pt_openapi_yaml[];
extern const size_t pt_openapi_yaml_len;

static void reply(pt_req *r, pt_result rc, const pt_err *err, json_t *doc)
{
    if (rc == PT_OK)
        pt_req_json(r, 200, doc);
    else
        pt_req_problem(r, rc, err);
}

/* Prepared writes go to the writer; validation errors answer at once. */
static void submit(pt_req *r, pt_result rc, const pt_err *err)
{
    if (rc == PT_OK)
        pt_req_submit(r);
    else
        pt_req_problem(r, rc, err);
}

static void h_openapi(pt_req *r)
{
    r->status = 200;
    r->raw = pt_openapi_yaml;
    r->raw_len = pt_openapi_yaml_len;
    r->raw_type = "application/yaml";
}

static void h_health(pt_req *r)
{
    if (pt_app_fatal(r->app)) {
        pt_err e;
        pt_err_set(&e, PT_ERR_STORAGE_FATAL, "", "storage failed; the server is stopping");
        pt_req_problem(r, PT_ERR_STORAGE_FATAL, &e);
        return;
    }
    pt_req_json(r, 200, json_pack("{s:s, s:s}", "status", "ok", "version", PATTO_VERSION));
}

static void h_tenant(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_tenant_get(r->app, r->who.tenant, &doc, &e);
    if (rc == PT_OK) json_object_set_new(doc, "role", json_string(pt_role_name(r->who.role)));
    reply(r, rc, &e, doc);
}

static void h_keys_list(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_key_list(r->app, r->who.tenant, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_keys_create(pt_req *r)
{
    pt_err e;
    submit(r, pt_key_create_prepare(r->app, r->who.tenant, r->json, &r->op, &e), &e);
}

static void h_keys_revoke(pt_req *r)
{
    pt_err e;
    submit(r, pt_key_revoke_prepare(r->app, r->who.tenant, r->params[0], &r->op, &e), &e);
}

static void h_purposes_list(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_purpose_list(r->app, r->who.tenant, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_purpose_get(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_purpose_get(r->app, r->who.tenant, r->params[0], &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_purpose_put(pt_req *r)
{
    pt_err e;
    submit(r, pt_purpose_put_prepare(r->app, r->who.tenant, r->params[0], r->json, &r->op, &e),
           &e);
}

static void h_notice_publish(pt_req *r)
{
    pt_err e;
    submit(r, pt_notice_publish_prepare(r->app, r->who.tenant, r->json, &r->op, &e), &e);
}

static void h_notices_list(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_notice_list(r->app, r->who.tenant, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_notice_get(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_notice_get(r->app, r->who.tenant, r->params[0], r->params[1], &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_subject_create(pt_req *r)
{
    pt_err e;
    submit(r, pt_subject_create_prepare(r->app, r->who.tenant, r->json, &r->op, &e), &e);
}

static void h_subject_get(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_subject_get(r->app, r->who.tenant, r->params[0], &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_subject_lookup(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_subject_lookup(r->app, r->who.tenant, pt_req_query(r, "identifier_type"),
                                     pt_req_query(r, "identifier"), &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_consent_record(pt_req *r)
{
    pt_err e;
    submit(r, pt_consent_prepare(r->app, r->who.tenant, r->json, &r->op, &e), &e);
}

static void h_consent_states(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_consent_states(r->app, r->who.tenant, r->params[0], &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_consent_history(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    const char *ls = pt_req_query(r, "limit");
    long limit = 100;
    if (ls) {
        char *end = NULL;
        limit = strtol(ls, &end, 10);
        if (!*ls || *end || limit < 1 || limit > 1000) {
            pt_err_set(&e, PT_ERR_INVALID, "limit", "limit must be an integer from 1 to 1000");
            pt_req_problem(r, PT_ERR_INVALID, &e);
            return;
        }
    }
    pt_result rc = pt_consent_history(r->app, r->who.tenant, r->params[0],
                                      pt_req_query(r, "cursor"), (uint32_t)limit, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_check(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc;
    const char *itype = pt_req_query(r, "identifier_type"), *ival = pt_req_query(r, "identifier");
    if (!itype && !ival)
        rc = pt_consent_check(r->app, r->who.tenant, pt_req_query(r, "subject"),
                              pt_req_query(r, "purpose"), pt_req_query(r, "channel"),
                              pt_req_query(r, "recipient"), &doc, &e);
    else if (pt_req_query(r, "subject"))
        rc = pt_err_set(&e, PT_ERR_INVALID, "subject",
                        "give either subject, or identifier_type and identifier");
    else /* the person by identifier (identity.c) */
        rc = pt_consent_check_identifier(r->app, r->who.tenant, itype, ival,
                                         pt_req_query(r, "purpose"), pt_req_query(r, "channel"),
                                         pt_req_query(r, "recipient"), &doc, &e);
    reply(r, rc, &e, doc);
}

/* ---- the proof log (docs/log.md) ---- */

/* A query parameter that must be a decimal count; absent gives dflt. */
static bool query_u64(pt_req *r, const char *name, uint64_t dflt, uint64_t *out)
{
    const char *s = pt_req_query(r, name);
    *out = dflt;
    if (!s) return true;
    uint64_t v = 0;
    if (!*s || strlen(s) > 19) goto bad;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX) goto bad; /* sizes and indexes are stored as int64 */
    *out = v;
    return true;
bad:;
    pt_err e;
    pt_err_set(&e, PT_ERR_INVALID, name, "%s must be a non-negative integer", name);
    pt_req_problem(r, PT_ERR_INVALID, &e);
    return false;
}

static void h_log_checkpoint(pt_req *r)
{
    pt_err e;
    char *text = NULL;
    pt_result rc = pt_log_checkpoint(r->app, r->who.tenant, &text, &e);
    if (rc != PT_OK) {
        pt_req_problem(r, rc, &e);
        return;
    }
    r->status = 200;
    r->raw_len = strlen(text);
    r->raw = pt_arena_strndup(&r->arena, text, r->raw_len);
    r->raw_type = "text/plain; charset=utf-8";
    free(text);
    if (!r->raw) {
        pt_err_set(&e, PT_ERR_NOMEM, "", "out of memory");
        pt_req_problem(r, PT_ERR_NOMEM, &e);
    }
}

static void h_log_keys(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_log_keys(r->app, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_log_inclusion(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    uint64_t index, size;
    const char *event = pt_req_query(r, "event");
    if (!query_u64(r, "index", UINT64_MAX, &index) || !query_u64(r, "size", 0, &size)) return;
    if (event && (index != UINT64_MAX || size)) {
        pt_err_set(&e, PT_ERR_INVALID, "event", "give either event, or index and size");
        pt_req_problem(r, PT_ERR_INVALID, &e);
        return;
    }
    if (!event && index == UINT64_MAX) {
        pt_err_set(&e, PT_ERR_INVALID, "event", "give event, or index (and size)");
        pt_req_problem(r, PT_ERR_INVALID, &e);
        return;
    }
    pt_result rc = pt_log_inclusion(r->app, r->who.tenant, event, index, size, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_log_consistency(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    uint64_t from, to;
    if (!query_u64(r, "from", 0, &from) || !query_u64(r, "to", 0, &to)) return;
    if (!pt_req_query(r, "from")) {
        pt_err_set(&e, PT_ERR_INVALID, "from", "from is required");
        pt_req_problem(r, PT_ERR_INVALID, &e);
        return;
    }
    if (pt_req_query(r, "to") && to == 0) {
        pt_err_set(&e, PT_ERR_INVALID, "to", "to must be at least 1");
        pt_req_problem(r, PT_ERR_INVALID, &e);
        return;
    }
    pt_result rc = pt_log_consistency(r->app, r->who.tenant, from, to, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_log_leaves(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    uint64_t start, end;
    if (!query_u64(r, "start", 0, &start) || !query_u64(r, "end", UINT64_MAX, &end)) return;
    if (end == UINT64_MAX) end = start + PT_LOG_LEAVES_PAGE;
    pt_result rc = pt_log_leaves(r->app, r->who.tenant, start, end, &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_receipt(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_receipt_get(r->app, r->who.tenant, r->params[0], &doc, &e);
    reply(r, rc, &e, doc);
}

/* ---- erasure (service/erasure.c) ---- */

static void h_subject_erase(pt_req *r)
{
    pt_err e;
    submit(r, pt_subject_erase_prepare(r->app, r->who.tenant, r->params[0], &r->op, &e), &e);
}

/* ---- identity across devices, access, rectification (service/identity.c, rights.c) ---- */

static void h_identifier_link(pt_req *r)
{
    pt_err e;
    submit(r, pt_identifier_link_prepare(r->app, r->who.tenant, r->params[0], r->json, &r->op, &e),
           &e);
}

static void h_subject_merge(pt_req *r)
{
    pt_err e;
    submit(r, pt_subject_merge_prepare(r->app, r->who.tenant, r->params[0], r->json, &r->op, &e),
           &e);
}

static void h_subject_export(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_subject_export(r->app, r->who.tenant, r->params[0], &doc, &e);
    reply(r, rc, &e, doc);
}

static void h_subject_rectify(pt_req *r)
{
    pt_err e;
    submit(r,
           pt_subject_rectify_prepare(r->app, r->who.tenant, r->params[0], r->json, &r->op, &e),
           &e);
}

static void h_stats(pt_req *r)
{
    pt_err e;
    json_t *doc = NULL;
    pt_result rc = pt_stats_query(r->app, r->who.tenant, pt_req_query(r, "by"),
                                  pt_req_query(r, "purpose"), PT_ANONYMISE_K_MIN, &doc, &e);
    reply(r, rc, &e, doc);
}

static const char *const Q_STATS[] = {"by", "purpose", NULL};
static const char *const Q_INCLUSION[] = {"event", "index", "size", NULL};
static const char *const Q_CONSISTENCY[] = {"from", "to", NULL};
static const char *const Q_LEAVES[] = {"start", "end", NULL};
static const char *const Q_LOOKUP[] = {"identifier_type", "identifier", NULL};
static const char *const Q_HISTORY[] = {"limit", "cursor", NULL};
static const char *const Q_CHECK[] = {"subject",   "purpose",         "channel",
                                      "recipient", "identifier_type", "identifier",
                                      NULL};

const pt_route pt_route_table[] = {
    {"GET", "/v1/openapi.yaml", 0, false, NULL, h_openapi},
    {"GET", "/v1/health", 0, false, NULL, h_health},
    {"GET", "/v1/tenant", ANY_ROLE, false, NULL, h_tenant},
    {"GET", "/v1/keys", ADMIN, false, NULL, h_keys_list},
    {"POST", "/v1/keys", ADMIN, true, NULL, h_keys_create},
    {"DELETE", "/v1/keys/{key}", ADMIN, false, NULL, h_keys_revoke},
    {"GET", "/v1/purposes", READERS, false, NULL, h_purposes_list},
    {"GET", "/v1/purposes/{purpose}", READERS, false, NULL, h_purpose_get},
    {"PUT", "/v1/purposes/{purpose}", ADMIN, true, NULL, h_purpose_put},
    {"GET", "/v1/notices", READERS, false, NULL, h_notices_list},
    {"POST", "/v1/notices", ADMIN, true, NULL, h_notice_publish},
    {"GET", "/v1/notices/{notice}/{version}", READERS, false, NULL, h_notice_get},
    {"POST", "/v1/subjects", ADMIN | OPERATOR, true, NULL, h_subject_create},
    {"GET", "/v1/subjects", ADMIN | OPERATOR | MARKETING, false, Q_LOOKUP, h_subject_lookup},
    {"GET", "/v1/subjects/{subject}", ADMIN | OPERATOR, false, NULL, h_subject_get},
    {"GET", "/v1/subjects/{subject}/consents", READERS, false, NULL, h_consent_states},
    {"GET", "/v1/subjects/{subject}/consents/history", ADMIN | OPERATOR | AUDITOR, false,
     Q_HISTORY, h_consent_history},
    {"POST", "/v1/consents", ADMIN | OPERATOR, true, NULL, h_consent_record},
    {"GET", "/v1/check", ADMIN | OPERATOR | MARKETING, false, Q_CHECK, h_check},
    {"GET", "/v1/log/checkpoint", ADMIN | AUDITOR, false, NULL, h_log_checkpoint},
    {"GET", "/v1/log/keys", ADMIN | AUDITOR, false, NULL, h_log_keys},
    {"GET", "/v1/log/proof/inclusion", ADMIN | AUDITOR, false, Q_INCLUSION, h_log_inclusion},
    {"GET", "/v1/log/proof/consistency", ADMIN | AUDITOR, false, Q_CONSISTENCY,
     h_log_consistency},
    {"GET", "/v1/log/leaves", ADMIN | AUDITOR, false, Q_LEAVES, h_log_leaves},
    {"GET", "/v1/receipts/{event}", ADMIN | OPERATOR | AUDITOR, false, NULL, h_receipt},
    {"DELETE", "/v1/subjects/{subject}", ADMIN | OPERATOR, false, NULL, h_subject_erase},
    {"POST", "/v1/subjects/{subject}/identifiers", ADMIN | OPERATOR, true, NULL,
     h_identifier_link},
    {"POST", "/v1/subjects/{subject}/merge", ADMIN | OPERATOR, true, NULL, h_subject_merge},
    {"GET", "/v1/subjects/{subject}/export", ADMIN | OPERATOR, false, NULL, h_subject_export},
    {"PATCH", "/v1/subjects/{subject}", ADMIN | OPERATOR, true, NULL, h_subject_rectify},
    {"GET", "/v1/stats", READERS, false, Q_STATS, h_stats},
};
const size_t pt_route_count = sizeof pt_route_table / sizeof pt_route_table[0];
