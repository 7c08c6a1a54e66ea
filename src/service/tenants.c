/* tenants.c - tenants (one controller each: a company or a brand) and
 * their API keys. A key's secret is shown once, at creation, and stored
 * only as a hash. */
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "jsonutil.h"
#include "log.h"
#include "service.h"

/* The purposes every new tenant starts with (API.md, Catalog); validity
 * follows the Italian authority's yardsticks: 24 months for marketing, 12
 * for profiling; cookie choices are asked again after 6 months. */
static const struct {
    const char *name, *title, *description, *dpv;
    pt_basis basis;
    uint32_t validity_days, renew_before_days;
    uint8_t channels;
} DEFAULT_PURPOSES[] = {
    {"processing", "Processing of personal data",
     "Storing your data to handle direct sales and to compute anonymous statistics.",
     "dpv:CustomerManagement", PT_BASIS_CONSENT, 730, 30, PT_CH_ALL},
    {"marketing", "Marketing communications",
     "Commercial offers by e-mail, sms, phone or post.", "dpv:DirectMarketing",
     PT_BASIS_CONSENT, 730, 30, PT_CH_EMAIL | PT_CH_SMS | PT_CH_PHONE | PT_CH_POST},
    {"profiling", "Profiling",
     "Personalised content built from your preferences and cookies.", "dpv:Personalisation",
     PT_BASIS_CONSENT, 365, 30, PT_CH_WEB | PT_CH_APP | PT_CH_EMAIL},
    {"cookies.analytics", "Analytics cookies", "Measuring how the site is used.",
     "dpv:ServiceOptimisation", PT_BASIS_CONSENT, 180, 15, PT_CH_WEB | PT_CH_APP},
    {"cookies.ads", "Advertising cookies",
     "Cookies that let advertising partners show you relevant ads.", "dpv:Advertising",
     PT_BASIS_CONSENT, 180, 15, PT_CH_WEB | PT_CH_APP | PT_CH_ADS},
};

static bool tenant_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PT_TENANT_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-'))) return false;
    }
    return true;
}

/* Key changes go to the proof log: who could act for the controller, and
 * since when, is part of what an auditor checks. */
static pt_result log_key(pt_wctx *w, const char *kind, uint32_t tenant,
                         const uint8_t id[PT_ID_BYTES], const char *role, pt_err *err)
{
    char tname[PT_TENANT_NAME_MAX + 1];
    pt_result rc = pt_wctx_tenant_name(w, tenant, tname);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read the tenant");
    size_t len;
    char *leaf = pt_leaf_key(kind, tname, id, role, pt_wctx_now(w), &len);
    if (!leaf) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    /* a leaf's ref names it uniquely: the key id for its creation, a
     * fresh id for its revocation */
    uint8_t ref[PT_ID_BYTES];
    if (role)
        memcpy(ref, id, PT_ID_BYTES);
    else
        pt_ordered_id(ref);
    rc = pt_wctx_log(w, tenant, ref, 0, leaf, len, NULL, err);
    free(leaf);
    return rc;
}

/* Creates a key in the current transaction and returns its document with
 * the secret, which exists nowhere else afterwards. */
static pt_result key_insert(pt_wctx *w, uint32_t tenant, pt_role role, const char *label,
                            json_t **out, pt_err *err)
{
    pt_key_rec k;
    memset(&k, 0, sizeof k);
    uint8_t secret[PT_APIKEY_SECRET_BYTES];
    char idstr[PT_ID_STR_MAX], sec32[64], token[PT_APIKEY_MAX];
    pt_random(k.id, PT_ID_BYTES);
    pt_random(secret, sizeof secret);
    pt_secret_hash(secret, sizeof secret, k.hash);
    k.tenant = tenant;
    k.role = role;
    snprintf(k.label, sizeof k.label, "%s", label ? label : "");
    k.created_at = pt_wctx_now(w);
    pt_result rc = pt_db_key_insert(pt_wctx_conn(w), &k, err);
    if (rc == PT_OK) rc = log_key(w, "key.created", tenant, k.id, pt_role_name(role), err);
    if (rc == PT_OK) {
        pt_id_format("key", k.id, idstr);
        pt_b32_encode(secret, sizeof secret, sec32);
        snprintf(token, sizeof token, PT_APIKEY_PREFIX "%.26s_%.32s", idstr + 4, sec32);
        *out = json_pack("{s:s, s:s, s:s, s:o, s:s}", "key", idstr, "role", pt_role_name(role),
                         "label", k.label, "created_at", pt_json_time_value(k.created_at),
                         "api_key", token);
        pt_wctx_reload_keys(w);
    }
    pt_wipe(secret, sizeof secret);
    pt_wipe(sec32, sizeof sec32);
    pt_wipe(token, sizeof token);
    return rc;
}

typedef struct tenant_arg {
    pt_op *op; /* where the result goes */
    char name[PT_TENANT_NAME_MAX + 1];
} tenant_arg;

static pt_result tenant_create_fn(pt_wctx *w, void *arg, pt_err *err)
{
    tenant_arg *a = arg;
    pt_conn *c = pt_wctx_conn(w);
    pt_tenant_rec t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", a->name);
    t.created_at = pt_wctx_now(w);
    pt_result rc = pt_db_tenant_insert(c, &t, err);
    if (rc == PT_ERR_CONFLICT)
        return pt_err_set(err, PT_ERR_CONFLICT, "name", "a tenant named '%s' exists already",
                          t.name);
    if (rc != PT_OK) return rc;
    for (size_t i = 0; i < sizeof DEFAULT_PURPOSES / sizeof DEFAULT_PURPOSES[0]; i++) {
        pt_purpose_rec p;
        memset(&p, 0, sizeof p);
        p.tenant = t.id;
        p.idx = (uint16_t)i;
        snprintf(p.name, sizeof p.name, "%s", DEFAULT_PURPOSES[i].name);
        snprintf(p.title, sizeof p.title, "%s", DEFAULT_PURPOSES[i].title);
        snprintf(p.description, sizeof p.description, "%s", DEFAULT_PURPOSES[i].description);
        snprintf(p.dpv, sizeof p.dpv, "%s", DEFAULT_PURPOSES[i].dpv);
        p.rule.basis = DEFAULT_PURPOSES[i].basis;
        p.rule.validity_days = DEFAULT_PURPOSES[i].validity_days;
        p.rule.renew_before_days = DEFAULT_PURPOSES[i].renew_before_days;
        p.rule.channels = DEFAULT_PURPOSES[i].channels;
        p.rule.revision = 1;
        p.created_at = p.updated_at = t.created_at;
        rc = pt_db_purpose_put(c, &p, err);
        if (rc != PT_OK) return rc;
    }
    pt_wctx_reload_catalog(w);
    json_t *key = NULL;
    rc = key_insert(w, t.id, PT_ROLE_ADMIN, "first admin key", &key, err);
    if (rc != PT_OK) return rc;
    a->op->out = json_pack("{s:s, s:o, s:o}", "tenant", t.name, "created_at",
                        pt_json_time_value(t.created_at), "admin_key", key);
    return PT_OK;
}

pt_result pt_tenant_create_prepare(pt_app *app, const char *name, pt_op *op, pt_err *err)
{
    (void)app;
    if (!name || !tenant_name_valid(name))
        return pt_err_set(err, PT_ERR_INVALID, "name",
                          "a tenant name is 1 to 64 characters: a-z, 0-9, '_' and '-', "
                          "starting with a letter or digit");
    tenant_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    a->op = op;
    snprintf(a->name, sizeof a->name, "%s", name);
    memset(op, 0, sizeof *op);
    op->fn = tenant_create_fn;
    op->arg = a;
    op->free_arg = free;
    op->status = 201;
    return PT_OK;
}

pt_result pt_tenant_find(pt_app *app, const char *name, pt_tenant_rec *out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    pt_result rc = pt_db_tenant_by_name(c, name, out);
    pt_app_reader_release(app, c);
    if (rc == PT_ERR_NOT_FOUND)
        return pt_err_set(err, rc, "tenant",
                          "no tenant named '%.64s'; `patto tenant list` shows them", name);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read tenants");
    return PT_OK;
}

static json_t *tenant_doc(const pt_tenant_rec *r)
{
    return json_pack("{s:s, s:o}", "tenant", r->name, "created_at",
                     pt_json_time_value(r->created_at));
}

static int tenant_collect(void *ctx, const pt_tenant_rec *r)
{
    json_array_append_new(ctx, tenant_doc(r));
    return 0;
}

pt_result pt_tenant_list(pt_app *app, json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    json_t *a = json_array();
    pt_result rc = pt_db_tenant_list(c, tenant_collect, a);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        json_decref(a);
        return pt_err_set(err, rc, "", "cannot read tenants");
    }
    *out = json_pack("{s:o}", "tenants", a);
    return PT_OK;
}

pt_result pt_tenant_get(pt_app *app, uint32_t tenant, json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    pt_tenant_rec r;
    pt_result rc = pt_db_tenant_by_id(c, tenant, &r);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read the tenant");
    *out = tenant_doc(&r);
    return PT_OK;
}

/* ---- keys ---- */

typedef struct key_arg {
    pt_op *op;
    uint32_t tenant;
    pt_role role;
    char label[PT_LABEL_MAX + 1];
    uint8_t id[PT_ID_BYTES];
} key_arg;

static pt_result key_create_fn(pt_wctx *w, void *arg, pt_err *err)
{
    key_arg *a = arg;
    return key_insert(w, a->tenant, a->role, a->label, &a->op->out, err);
}

pt_result pt_key_create_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                pt_err *err)
{
    (void)app;
    static const char *const allowed[] = {"role", "label", NULL};
    static const char *const readonly[] = {"key", "api_key", "created_at", "tenant", NULL};
    const char *role = NULL, *label = NULL;
    pt_result rc = pt_json_fields(body, "", allowed, readonly, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "role", true, 32, &role, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "label", false, PT_LABEL_MAX, &label, err);
    if (rc != PT_OK) return rc;
    int r = pt_role_parse(role);
    if (r < 0)
        return pt_err_set(err, PT_ERR_INVALID, "role",
                          "role must be admin, operator, marketing, auditor or recipient");
    key_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    memset(op, 0, sizeof *op);
    a->op = op;
    a->tenant = tenant;
    a->role = (pt_role)r;
    snprintf(a->label, sizeof a->label, "%s", label ? label : "");
    op->fn = key_create_fn;
    op->arg = a;
    op->free_arg = free;
    op->status = 201;
    return PT_OK;
}

static int key_doc(void *ctx, const pt_key_rec *r)
{
    char id[PT_ID_STR_MAX];
    pt_id_format("key", r->id, id);
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:o, s:o}", "key", id, "role",
                                         pt_role_name(r->role), "label", r->label, "created_at",
                                         pt_json_time_value(r->created_at), "revoked_at",
                                         pt_json_time_value(r->revoked_at)));
    return 0;
}

pt_result pt_key_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    json_t *a = json_array();
    pt_result rc = pt_db_key_list(c, tenant, key_doc, a);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        json_decref(a);
        return pt_err_set(err, rc, "", "cannot read keys");
    }
    *out = json_pack("{s:o}", "keys", a);
    return PT_OK;
}

static pt_result key_revoke_fn(pt_wctx *w, void *arg, pt_err *err)
{
    key_arg *a = arg;
    pt_result rc = pt_db_key_revoke(pt_wctx_conn(w), a->tenant, a->id, pt_wctx_now(w));
    if (rc == PT_ERR_NOT_FOUND)
        return pt_err_set(err, rc, "key", "no live key with that id in this tenant");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot revoke the key");
    rc = log_key(w, "key.revoked", a->tenant, a->id, NULL, err);
    if (rc != PT_OK) return rc;
    pt_wctx_reload_keys(w);
    char id[PT_ID_STR_MAX];
    pt_id_format("key", a->id, id);
    a->op->out = json_pack("{s:s, s:o}", "key", id, "revoked_at",
                           pt_json_time_value(pt_wctx_now(w)));
    return PT_OK;
}

pt_result pt_key_revoke_prepare(pt_app *app, uint32_t tenant, const char *key_id, pt_op *op,
                                pt_err *err)
{
    (void)app;
    uint8_t id[PT_ID_BYTES];
    if (!key_id || pt_id_parse("key", key_id, strlen(key_id), id) != 0)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "key", "no key with that id");
    key_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    memset(op, 0, sizeof *op);
    a->op = op;
    a->tenant = tenant;
    memcpy(a->id, id, PT_ID_BYTES);
    op->fn = key_revoke_fn;
    op->arg = a;
    op->free_arg = free;
    op->status = 200;
    return PT_OK;
}
