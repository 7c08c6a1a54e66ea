/* rights.c - the data subject's rights that read or correct what is held:
 * access and portability (GDPR Art. 15 and 20: one machine-readable
 * document with everything held on the person) and rectification (Art. 16:
 * a JSON merge patch of the profile, re-sealed, recorded in the proof log by
 * field name, never by value). Erasure lives in erasure.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "core/timefmt.h"
#include "identity.h"
#include "jsonutil.h"
#include "ledger.h"
#include "service.h"

#define EXPORT_FORMAT "patto-subject-export/1"

/* ------------------------------------------------------------ export */

typedef struct export_ctx {
    const pt_person_keys *pk;
    json_t *arr;     /* events */
    json_t *notices; /* event id -> notice, for the consent states */
    json_t *idents;
    pt_result rc;
} export_ctx;

/* "/v1/notices/N/V" with anything outside [A-Za-z0-9._~-] percent-encoded. */
static json_t *notice_href(const char *notice, const char *version)
{
    char out[16 + 3 * (PT_NOTICE_NAME_MAX + PT_NOTICE_VERSION_MAX) + 8];
    size_t o = (size_t)snprintf(out, sizeof out, "/v1/notices/");
    const char *parts[2] = {notice, version};
    for (int p = 0; p < 2; p++) {
        for (const unsigned char *c = (const unsigned char *)parts[p]; *c && o + 4 < sizeof out;
             c++) {
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '.' || *c == '_' || *c == '~' || *c == '-')
                out[o++] = (char)*c;
            else
                o += (size_t)snprintf(out + o, 4, "%%%02X", *c);
        }
        if (p == 0) out[o++] = '/';
    }
    out[o] = '\0';
    return json_string(out);
}

/* One event exactly as the history shows it (pt_event_doc), its notice
 * with the href of the notice text. */
static int export_event(void *ctx, const pt_event_rec *e)
{
    export_ctx *x = ctx;
    json_t *d = pt_event_doc(e, pt_person_key_of(x->pk, e->subject));
    if (!d) {
        x->rc = PT_ERR_NOMEM;
        return 1;
    }
    json_t *n = json_object_get(d, "notice");
    if (json_is_object(n)) {
        json_object_set_new_nocheck(n, "href", notice_href(e->notice, e->notice_version));
        json_object_set_nocheck(x->notices, json_string_value(json_object_get(d, "event")), n);
    }
    json_array_append_new(x->arr, d);
    return 0;
}

static int export_ident(void *ctx, const pt_ident_rec *r)
{
    export_ctx *x = ctx;
    char plain[PT_IDENT_MAX];
    const uint8_t *dek = pt_person_key_of(x->pk, r->subject);
    if (!dek || r->value_len < PT_SEAL_OVERHEAD || r->value_len - PT_SEAL_OVERHEAD >= sizeof plain ||
        pt_open(dek, "identifiers", "value", r->subject, r->value, r->value_len,
                (uint8_t *)plain) != PT_OK) {
        x->rc = PT_ERR_CRYPTO;
        return 1;
    }
    json_array_append_new(x->idents,
                          json_pack("{s:s, s:s%, s:o}", "type",
                                    pt_ident_type_name((pt_ident_type)r->type), "value", plain,
                                    r->value_len - PT_SEAL_OVERHEAD, "linked_at",
                                    pt_json_time_value(r->created_at)));
    pt_wipe(plain, sizeof plain);
    return 0;
}

typedef struct export_states {
    pt_app *app;
    uint32_t tenant;
    int64_t now;
    json_t *arr, *notices;
} export_states;

static int export_state(void *ctx, const pt_state_rec *r)
{
    export_states *x = ctx;
    char name[PT_PURPOSE_NAME_MAX + 1], eid[PT_ID_STR_MAX];
    pt_purpose_ref p;
    if (pt_catalog_name(x->app, x->tenant, r->st.purpose_idx, name, &p) != PT_OK) return 0;
    pt_id_format("evt", r->st.event, eid);
    json_t *notice = json_object_get(x->notices, eid);
    pt_state st = pt_policy_effective(&p.rule, &r->st, x->now);
    bool has_channels = st == PT_ST_GRANTED || st == PT_ST_RECONSENT_NEEDED || st == PT_ST_EXPIRED;
    json_array_append_new(
        x->arr, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o}", "purpose", name,
                          "basis", pt_basis_name(p.rule.basis), "state", pt_state_name(st),
                          "channels", pt_json_channels_value(has_channels ? r->st.channels : 0),
                          "granted_at", pt_json_time_value(r->st.granted_at), "expires_at",
                          pt_json_time_value(r->st.expires_at), "decided_at",
                          pt_json_time_value(r->st.decided_at), "event", eid, "notice",
                          notice ? json_incref(notice) : json_null()));
    return 0;
}

pt_result pt_subject_export(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                            pt_err *err)
{
    pt_subject_rec s;
    pt_person_keys pk;
    json_t *profile = NULL;
    memset(&pk, 0, sizeof pk);
    export_ctx x = {.pk = &pk, .arr = json_array(), .notices = json_object(),
                    .idents = json_array(), .rc = PT_OK};
    export_states xs = {.app = app, .tenant = tenant, .now = pt_now_ms(), .arr = json_array(),
                        .notices = x.notices};
    json_t *merges = json_array();
    pt_conn *c = pt_app_reader(app, err);
    pt_result rc = c ? PT_OK : (err ? err->code : PT_ERR_STORAGE);
    if (rc != PT_OK) goto out_noconn;
    rc = pt_vault_subject_load(c, tenant, subject, &s, err);
    if (rc != PT_OK) goto out_nosubject;
    rc = pt_person_keys_load(app, c, &s, &pk, err);
    if (rc != PT_OK) goto out;
    if (!s.erased_at) {
        if (!pk.k[0].ok) {
            rc = pt_err_set(err, PT_ERR_CRYPTO, "", "the subject's key does not unwrap");
            goto out;
        }
        rc = pt_vault_profile_open(pk.k[0].dek, &s, &profile, err);
        if (rc != PT_OK) goto out;
        rc = pt_db_ident_list(c, s.id, export_ident, &x);
        if (rc == PT_OK) rc = x.rc;
        if (rc != PT_OK) {
            pt_err_set(err, rc, "", "cannot read identifiers");
            goto out;
        }
    }
    rc = pt_db_event_list_person(c, s.id, 0, 0, export_event, &x);
    if (rc == PT_OK) rc = x.rc;
    if (rc == PT_OK) rc = pt_db_state_list_subject(c, s.id, export_state, &xs);
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot read events");
        goto out;
    }
    for (size_t i = 0; i < pk.naliases; i++)
        json_array_append_new(merges,
                              json_pack("{s:o, s:o, s:o}", "subject",
                                        pt_json_id_value("sub", pk.aliases[i].id), "merged_at",
                                        pt_json_time_value(pk.aliases[i].merged_at), "merge",
                                        pt_json_id_value("mrg", pk.aliases[i].merge)));
    char tname[PT_TENANT_NAME_MAX + 1];
    if (pt_catalog_tenant_name(app, tenant, tname) != PT_OK) tname[0] = '\0';
    *out = json_pack("{s:s, s:o, s:{s:s}, s:o, s:o, s:o, s:o, s:O, s:o, s:O, s:O, s:O, s:[], "
                     "s:[]}",
                     "format", EXPORT_FORMAT, "exported_at", pt_json_time_value(xs.now),
                     "controller", "tenant", tname, "subject", pt_json_id_value("sub", s.id),
                     "created_at", pt_json_time_value(s.created_at), "updated_at",
                     pt_json_time_value(s.updated_at), "erased_at",
                     pt_json_time_value(s.erased_at), "identifiers", x.idents, "profile",
                     profile ? profile : json_null(), "consents", xs.arr, "events", x.arr,
                     "merges", merges, "reminders", "transfers");
    profile = NULL; /* stolen */
    if (!*out) rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
out:
    pt_person_keys_clear(&pk);
    pt_subject_rec_clear(&s);
out_nosubject:
    pt_app_reader_release(app, c);
out_noconn:
    json_decref(profile);
    json_decref(x.arr);
    json_decref(x.notices);
    json_decref(x.idents);
    json_decref(xs.arr);
    json_decref(merges);
    return rc;
}

/* ------------------------------------------------------------ rectification */

typedef struct rectify_arg {
    pt_op *op;
    uint32_t tenant;
    uint8_t subject[PT_ID_BYTES];
    json_t *patch; /* the profile member: an object, or null (clear it all) */
} rectify_arg;

static void rectify_arg_free(void *p)
{
    rectify_arg *a = p;
    json_decref(a->patch);
    free(a);
}

static int name_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Applies the merge patch (RFC 7396) to profile and lists the names of the
 * fields whose value changed (added, replaced or removed), sorted. */
static json_t *apply_patch(json_t *profile, const json_t *patch)
{
    const char *names[2 * 64 + 1];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_t *changed = json_array();
    if (!changed) return NULL;
    if (json_is_null(patch)) {
        json_object_foreach(profile, k, v) if (n < 128) names[n++] = k;
    } else {
        json_object_foreach((json_t *)patch, k, v)
        {
            json_t *old = json_object_get(profile, k);
            bool differs = json_is_null(v) ? old != NULL : !old || !json_equal(old, v);
            if (differs && n < 128) names[n++] = k;
        }
    }
    qsort(names, n, sizeof names[0], name_cmp);
    for (size_t i = 0; i < n; i++) json_array_append_new(changed, json_string(names[i]));
    /* now change the profile (the names above point into patch or profile:
     * copied into `changed` first) */
    if (json_is_null(patch)) {
        json_object_clear(profile);
    } else {
        json_object_foreach((json_t *)patch, k, v)
        {
            if (json_is_null(v))
                json_object_del(profile, k);
            else
                json_object_set(profile, k, v);
        }
    }
    return changed;
}

static pt_result rectify_fn(pt_wctx *w, void *arg, pt_err *err)
{
    rectify_arg *a = arg;
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    pt_subject_rec s;
    uint8_t dek[PT_KEY_BYTES];
    json_t *profile = NULL, *changed = NULL;
    uint8_t *sealed = NULL;
    size_t len = 0;
    char *fields = NULL;
    pt_result rc = pt_identity_load_live(c, a->tenant, a->subject, "subject", &s, err);
    if (rc != PT_OK) return rc;
    rc = pt_vault_dek(app, &s, dek, err);
    if (rc != PT_OK) goto out;
    rc = pt_vault_profile_open(dek, &s, &profile, err);
    if (rc != PT_OK) goto out;
    changed = apply_patch(profile, a->patch);
    if (!changed) {
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    char sid[PT_ID_STR_MAX];
    pt_id_format("sub", s.id, sid);
    if (json_array_size(changed) == 0) { /* nothing differs: nothing to record */
        a->op->out = json_pack("{s:s, s:O, s:o, s:n}", "subject", sid, "changed", changed,
                               "updated_at", pt_json_time_value(s.updated_at), "receipt");
        rc = a->op->out ? PT_OK : pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    rc = pt_vault_profile_check(profile, err);
    if (rc == PT_OK) rc = pt_vault_profile_seal(dek, s.id, profile, &sealed, &len, err);
    if (rc != PT_OK) {
        if (rc == PT_ERR_INVALID) { /* well-formed, but the result would not be a profile */
            rc = PT_ERR_POLICY;
            if (err) err->code = rc;
        }
        goto out;
    }
    int64_t now = pt_wctx_now(w);
    rc = pt_db_subject_update_profile(c, s.id, sealed, len, now);
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot write the profile");
        goto out;
    }
    /* the leaf names the fields, never their values */
    fields = json_dumps(changed, JSON_COMPACT);
    char at[PT_TIME_STR_MAX];
    pt_time_format(now, at);
    uint8_t ref[PT_ID_BYTES];
    pt_ordered_id(ref);
    const pt_leaf_member m[] = {{"subject", sid, NULL}, {"fields", NULL, fields}, {"at", at, NULL}};
    json_t *receipt;
    rc = fields ? pt_identity_log(w, a->tenant, "rct", ref, "subject.rectified", m, 3, &receipt,
                                  err)
                : pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    if (rc != PT_OK) goto out;
    a->op->out = json_pack("{s:s, s:O, s:s, s:o}", "subject", sid, "changed", changed,
                           "updated_at", at, "receipt", receipt);
    if (!a->op->out) rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
out:
    pt_wipe(dek, sizeof dek);
    if (sealed) {
        pt_wipe(sealed, len);
        free(sealed);
    }
    free(fields);
    json_decref(changed);
    json_decref(profile);
    pt_subject_rec_clear(&s);
    return rc;
}

pt_result pt_subject_rectify_prepare(pt_app *app, uint32_t tenant, const char *subject,
                                     const json_t *body, pt_op *op, pt_err *err)
{
    (void)app;
    static const char *const allowed[] = {"profile", NULL};
    static const char *const readonly[] = {"subject", "created_at", "updated_at", "identifiers",
                                           "changed", "receipt",    NULL};
    rectify_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    pt_result rc = PT_OK;
    if (!subject || pt_id_parse("sub", subject, strlen(subject), a->subject) != 0)
        rc = pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such subject");
    if (rc == PT_OK) rc = pt_json_fields(body, "", allowed, readonly, err);
    json_t *patch = rc == PT_OK ? json_object_get(body, "profile") : NULL;
    if (rc == PT_OK && !patch)
        rc = pt_err_set(err, PT_ERR_INVALID, "profile",
                        "give the profile fields to change: {\"profile\": {\"field\": value, "
                        "\"removed\": null}}");
    if (rc == PT_OK && !json_is_object(patch) && !json_is_null(patch))
        rc = pt_err_set(err, PT_ERR_INVALID, "profile",
                        "profile must be an object (a JSON merge patch) or null");
    if (rc == PT_OK && json_is_object(patch)) {
        /* the patch's shape: field names and values as a profile holds
         * them; null removes a field */
        json_t *shape = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(patch, k, v) json_object_set(shape, k, json_is_null(v) ? json_true() : v);
        rc = shape ? pt_vault_profile_check(shape, err) : PT_ERR_NOMEM;
        json_decref(shape);
    }
    if (rc != PT_OK) {
        rectify_arg_free(a);
        return rc;
    }
    a->patch = json_incref(patch);
    memset(op, 0, sizeof *op);
    a->op = op;
    a->tenant = tenant;
    op->fn = rectify_fn;
    op->arg = a;
    op->free_arg = rectify_arg_free;
    op->status = 200;
    return PT_OK;
}
