/* subjects.c - the people: created with identifiers and a profile, both
 * personal data and so stored only sealed under the person's own key
 * (vault), found again through the blind index. */
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "jsonutil.h"
#include "service.h"
#include "vault.h"

#define PT_PROFILE_MAX_KEYS 64

pt_result pt_vault_ident_parse(const json_t *obj, const char *where, pt_ident_in *out,
                               pt_err *err)
{
    static const char *const allowed[] = {"type", "value", NULL};
    const char *type, *value;
    pt_result rc = pt_json_fields(obj, where, allowed, NULL, err);
    if (rc == PT_OK) rc = pt_json_str(obj, where, "type", true, 16, &type, err);
    if (rc == PT_OK) rc = pt_json_str(obj, where, "value", true, PT_IDENT_MAX - 1, &value, err);
    if (rc != PT_OK) return rc;
    out->type = pt_ident_type_parse(type);
    if (out->type < 0) {
        pt_err_set(err, PT_ERR_INVALID, "",
                   "identifier type must be email, phone, cookie, device or external");
        snprintf(err->field, sizeof err->field, "%stype", where);
        return PT_ERR_INVALID;
    }
    if (pt_ident_normalize((pt_ident_type)out->type, value, strlen(value), out->norm) != 0) {
        /* never echo the value: it is personal data */
        pt_err_set(err, PT_ERR_INVALID, "",
                   out->type == PT_IDENT_PHONE
                       ? "not a valid phone number: use E.164, e.g. +393331234567"
                       : "not a valid %s identifier",
                   pt_ident_type_name((pt_ident_type)out->type));
        snprintf(err->field, sizeof err->field, "%svalue", where);
        return PT_ERR_INVALID;
    }
    out->len = strlen(out->norm);
    return PT_OK;
}

pt_result pt_vault_subject_create(pt_wctx *w, uint32_t tenant, const uint8_t *want_id,
                                  const pt_ident_in *ids, size_t n,
                                  const char *profile_json, pt_subject_rec *out,
                                  uint8_t dek[PT_KEY_BYTES], pt_err *err)
{
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    const pt_keyring *kr = pt_app_keyring(app);
    uint8_t *profile = NULL;
    pt_result rc = PT_OK;
    memset(out, 0, sizeof *out);
    if (want_id) {
        memcpy(out->id, want_id, PT_ID_BYTES);
    } else {
        /* ordered: appended to every index keyed by subject (subjects,
         * events, consent state), which is what bounds an import */
        pt_ordered_id(out->id);
    }
    pt_random(dek, PT_KEY_BYTES);
    out->tenant = tenant;
    out->kek_epoch = pt_keyring_current_epoch(kr);
    pt_key_wrap(pt_keyring_kek(kr, out->kek_epoch), out->kek_epoch, out->id, dek,
                out->wrapped_dek);
    out->created_at = out->updated_at = pt_wctx_now(w);
    if (profile_json) {
        size_t len = strlen(profile_json);
        profile = malloc(len + PT_SEAL_OVERHEAD);
        if (!profile) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        pt_seal(dek, "subjects", "profile", out->id, (const uint8_t *)profile_json, len, profile);
        out->profile = profile;
        out->profile_len = len + PT_SEAL_OVERHEAD;
    }
    rc = pt_db_subject_insert(c, out, err);
    out->profile = NULL;
    out->profile_len = 0;
    if (rc != PT_OK) goto out;
    for (size_t i = 0; i < n; i++) {
        uint8_t sealed[PT_IDENT_MAX + PT_SEAL_OVERHEAD];
        pt_ident_rec r = {.tenant = tenant, .type = ids[i].type, .created_at = out->created_at};
        pt_blind_index(kr->blind, tenant, ids[i].type, ids[i].norm, ids[i].len, r.blind);
        memcpy(r.subject, out->id, PT_ID_BYTES);
        pt_seal(dek, "identifiers", "value", out->id, (const uint8_t *)ids[i].norm, ids[i].len,
                sealed);
        r.value = sealed;
        r.value_len = ids[i].len + PT_SEAL_OVERHEAD;
        rc = pt_db_ident_insert(c, &r, err);
        if (rc == PT_ERR_CONFLICT) {
            rc = pt_err_set(err, PT_ERR_CONFLICT, "",
                            "this %s identifier already belongs to another subject",
                            pt_ident_type_name((pt_ident_type)ids[i].type));
            snprintf(err->field, sizeof err->field, "identifiers[%zu].value", i);
        }
        if (rc != PT_OK) goto out;
    }
    pt_wctx_subject_added(w, out);
out:
    free(profile);
    return rc;
}

pt_result pt_vault_dek(pt_app *app, const pt_subject_rec *s, uint8_t dek[PT_KEY_BYTES],
                       pt_err *err)
{
    const uint8_t *kek = pt_keyring_kek(pt_app_keyring(app), s->kek_epoch);
    if (!kek)
        return pt_err_set(err, PT_ERR_CRYPTO, "",
                          "the subject's key is wrapped under key epoch %u, which this keyring "
                          "does not hold",
                          s->kek_epoch);
    if (pt_key_unwrap(kek, s->kek_epoch, s->id, s->wrapped_dek, dek) != PT_OK)
        return pt_err_set(err, PT_ERR_CRYPTO, "", "the subject's key does not unwrap");
    return PT_OK;
}

pt_result pt_vault_find(pt_app *app, pt_conn *c, uint32_t tenant, const pt_ident_in *id,
                        uint8_t subject[PT_ID_BYTES])
{
    uint8_t blind[PT_BLIND_BYTES];
    pt_blind_index(pt_app_keyring(app)->blind, tenant, id->type, id->norm, id->len, blind);
    return pt_db_ident_lookup(c, tenant, id->type, blind, subject);
}

pt_result pt_vault_subject_load(pt_conn *c, uint32_t tenant, const char *subject,
                                pt_subject_rec *out, pt_err *err)
{
    uint8_t id[PT_ID_BYTES];
    memset(out, 0, sizeof *out);
    if (!subject || pt_id_parse("sub", subject, strlen(subject), id) != 0)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such subject");
    /* a merged id answers as its survivor (identity.c) */
    pt_result rc = pt_db_subject_resolve(c, id, out);
    if (rc == PT_OK && out->tenant != tenant) {
        pt_subject_rec_clear(out);
        rc = PT_ERR_NOT_FOUND;
    }
    if (rc == PT_ERR_NOT_FOUND) return pt_err_set(err, rc, "subject", "no such subject");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read subjects");
    return PT_OK;
}

/* ---- create ---- */

typedef struct subject_arg {
    pt_op *op;
    uint32_t tenant;
    size_t n;
    pt_ident_in ids[PT_MAX_IDENTIFIERS];
    char *profile; /* compact JSON, malloc'd */
} subject_arg;

static void subject_arg_free(void *p)
{
    subject_arg *a = p;
    if (a->profile) {
        pt_wipe(a->profile, strlen(a->profile));
        free(a->profile);
    }
    pt_wipe(a->ids, sizeof a->ids);
    free(a);
}

static pt_result subject_create_fn(pt_wctx *w, void *arg, pt_err *err)
{
    subject_arg *a = arg;
    pt_subject_rec s;
    uint8_t dek[PT_KEY_BYTES];
    pt_result rc = pt_vault_subject_create(w, a->tenant, NULL, a->ids, a->n, a->profile, &s, dek, err);
    pt_wipe(dek, sizeof dek);
    if (rc != PT_OK) return rc;
    a->op->out = json_pack("{s:o, s:o}", "subject", pt_json_id_value("sub", s.id), "created_at",
                           pt_json_time_value(s.created_at));
    return PT_OK;
}

static bool profile_key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 32 || !(k[0] >= 'a' && k[0] <= 'z')) return false;
    for (size_t i = 1; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return false;
    return true;
}

static bool scalar(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

/* A profile is a flat object of named fields: scalars or arrays of
 * scalars (preferences). Flat, so that rectification and anonymisation
 * can reason field by field. */
pt_result pt_vault_profile_check(const json_t *profile, pt_err *err)
{
    if (!json_is_object(profile))
        return pt_err_set(err, PT_ERR_INVALID, "profile", "profile must be an object");
    if (json_object_size(profile) > PT_PROFILE_MAX_KEYS)
        return pt_err_set(err, PT_ERR_INVALID, "profile", "profile has more than %d fields",
                          PT_PROFILE_MAX_KEYS);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)profile, k, v)
    {
        bool ok = profile_key_valid(k) && (scalar(v) || json_is_array(v));
        if (ok && json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) ok = ok && scalar(e) && i < 64;
        }
        if (!ok) {
            pt_err_set(err, PT_ERR_INVALID, "",
                       "profile field names are a-z, 0-9 and '_' (up to 32, starting with a "
                       "letter) and values are strings, numbers, booleans or arrays of them");
            snprintf(err->field, sizeof err->field, "profile.%.64s", k);
            return PT_ERR_INVALID;
        }
    }
    return PT_OK;
}

pt_result pt_subject_create_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                    pt_err *err)
{
    (void)app;
    static const char *const allowed[] = {"identifiers", "profile", NULL};
    static const char *const readonly[] = {"subject", "created_at", "updated_at", "tenant", NULL};
    pt_result rc = pt_json_fields(body, "", allowed, readonly, err);
    if (rc != PT_OK) return rc;
    subject_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    json_t *ids = json_object_get(body, "identifiers");
    json_t *profile = json_object_get(body, "profile");
    if (ids && !json_is_null(ids)) {
        if (!json_is_array(ids) || json_array_size(ids) > PT_MAX_IDENTIFIERS) {
            rc = pt_err_set(err, PT_ERR_INVALID, "identifiers",
                            "identifiers must be an array of at most %d {type, value}",
                            PT_MAX_IDENTIFIERS);
            goto fail;
        }
        size_t i;
        json_t *e;
        json_array_foreach(ids, i, e)
        {
            char where[48];
            snprintf(where, sizeof where, "identifiers[%zu].", i);
            rc = pt_vault_ident_parse(e, where, &a->ids[i], err);
            if (rc != PT_OK) goto fail;
            for (size_t j = 0; j < i; j++)
                if (a->ids[j].type == a->ids[i].type && strcmp(a->ids[j].norm, a->ids[i].norm) == 0) {
                    rc = pt_err_set(err, PT_ERR_INVALID, "", "the same identifier is given twice");
                    snprintf(err->field, sizeof err->field, "identifiers[%zu]", i);
                    goto fail;
                }
            a->n = i + 1;
        }
    }
    if (profile && !json_is_null(profile)) {
        rc = pt_vault_profile_check(profile, err);
        if (rc != PT_OK) goto fail;
        a->profile = json_dumps(profile, JSON_COMPACT | JSON_SORT_KEYS);
        if (!a->profile || strlen(a->profile) > PT_PROFILE_MAX) {
            rc = pt_err_set(err, PT_ERR_INVALID, "profile", "profile is larger than %d bytes",
                            PT_PROFILE_MAX);
            goto fail;
        }
    }
    memset(op, 0, sizeof *op);
    a->op = op;
    a->tenant = tenant;
    op->fn = subject_create_fn;
    op->arg = a;
    op->free_arg = subject_arg_free;
    op->status = 201;
    return PT_OK;
fail:
    subject_arg_free(a);
    return rc;
}

/* ---- read ---- */

typedef struct ident_ctx {
    const uint8_t *dek;
    json_t *arr;
    pt_result rc;
} ident_ctx;

static int ident_open(void *ctx, const pt_ident_rec *r)
{
    ident_ctx *x = ctx;
    char plain[PT_IDENT_MAX];
    if (r->value_len < PT_SEAL_OVERHEAD || r->value_len - PT_SEAL_OVERHEAD >= sizeof plain ||
        pt_open(x->dek, "identifiers", "value", r->subject, r->value, r->value_len,
                (uint8_t *)plain) != PT_OK) {
        x->rc = PT_ERR_CRYPTO;
        return 1;
    }
    size_t n = r->value_len - PT_SEAL_OVERHEAD;
    json_array_append_new(x->arr, json_pack("{s:s, s:s%}", "type",
                                            pt_ident_type_name((pt_ident_type)r->type), "value",
                                            plain, n));
    pt_wipe(plain, sizeof plain);
    return 0;
}

pt_result pt_subject_get(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                         pt_err *err)
{
    pt_subject_rec s;
    uint8_t dek[PT_KEY_BYTES];
    json_t *profile = NULL, *doc = NULL;
    ident_ctx ic = {.dek = dek, .arr = json_array(), .rc = PT_OK};
    pt_conn *c = pt_app_reader(app, err);
    if (!c) {
        json_decref(ic.arr);
        return err ? err->code : PT_ERR_STORAGE;
    }
    pt_result rc = pt_vault_subject_load(c, tenant, subject, &s, err);
    if (rc != PT_OK) goto out_nokey;
    if (s.erased_at) { /* crypto-shredded: nothing left to decrypt (erasure.c) */
        *out = pt_subject_erased_doc(&s);
        if (!*out) rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out_nokey;
    }
    rc = pt_vault_dek(app, &s, dek, err);
    if (rc != PT_OK) goto out_nokey;
    if (s.profile) {
        size_t n = s.profile_len - PT_SEAL_OVERHEAD;
        char *plain = s.profile_len >= PT_SEAL_OVERHEAD ? malloc(n + 1) : NULL;
        if (!plain ||
            pt_open(dek, "subjects", "profile", s.id, s.profile, s.profile_len,
                    (uint8_t *)plain) != PT_OK) {
            free(plain);
            rc = pt_err_set(err, PT_ERR_CRYPTO, "", "the profile does not decrypt");
            goto out;
        }
        plain[n] = '\0';
        profile = json_loads(plain, 0, NULL);
        pt_wipe(plain, n);
        free(plain);
    }
    rc = pt_db_ident_list(c, s.id, ident_open, &ic);
    if (rc == PT_OK) rc = ic.rc;
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot read identifiers");
        goto out;
    }
    doc = json_pack("{s:o, s:o, s:o, s:O, s:o}", "subject", pt_json_id_value("sub", s.id),
                    "created_at", pt_json_time_value(s.created_at), "updated_at",
                    pt_json_time_value(s.updated_at), "identifiers", ic.arr, "profile",
                    profile ? profile : json_object());
    *out = doc;
out:
    pt_wipe(dek, sizeof dek);
out_nokey:
    pt_app_reader_release(app, c);
    pt_subject_rec_clear(&s);
    json_decref(ic.arr);
    return rc;
}

pt_result pt_subject_lookup(pt_app *app, uint32_t tenant, const char *type, const char *value,
                            json_t **out, pt_err *err)
{
    if (!type || !value)
        return pt_err_set(err, PT_ERR_INVALID, type ? "identifier" : "identifier_type",
                          "give both identifier_type and identifier");
    json_t *q = json_pack("{s:s, s:s}", "type", type, "value", value);
    pt_ident_in id;
    pt_result rc = q ? pt_vault_ident_parse(q, "identifier_", &id, err) : PT_ERR_NOMEM;
    json_decref(q);
    if (rc != PT_OK) {
        if (err && strcmp(err->field, "identifier_value") == 0)
            snprintf(err->field, sizeof err->field, "identifier");
        return rc;
    }
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    uint8_t sid[PT_ID_BYTES];
    rc = pt_vault_find(app, c, tenant, &id, sid);
    pt_app_reader_release(app, c);
    pt_wipe(&id, sizeof id);
    if (rc == PT_ERR_NOT_FOUND)
        return pt_err_set(err, rc, "identifier", "no subject holds this identifier");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read identifiers");
    *out = json_pack("{s:o}", "subject", pt_json_id_value("sub", sid));
    return PT_OK;
}
