/* identity.c - one person across devices: linking another identifier to a
 * person, merging two people into one, and `check` by identifier.
 *
 * A merge folds `from` into the survivor: identifiers move (their values
 * sealed anew under the survivor's key, since the associated data binds
 * the subject id), profile fields the survivor lacks are taken, and per
 * purpose the most recent explicit decision of the two stands
 * (pt_policy_merge). The merged id keeps answering: an alias row maps it to
 * the survivor. Its events stay as recorded - the ledger is append-only -
 * so its row keeps its key, under which their evidence stays sealed; a
 * person's history and export read both. Each link and merge is a leaf of
 * the tenant's proof log; none holds an identifier's value. */
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/timefmt.h"
#include "identity.h"
#include "jsonutil.h"
#include "service.h"

#define PT_PROFILE_FIELDS_MAX 64 /* as pt_vault_profile_check allows */

/* ------------------------------------------------------------ keys, profiles */

typedef struct alias_vec {
    pt_alias_rec *p;
    size_t n, cap;
    bool oom;
} alias_vec;

static int alias_collect(void *ctx, const pt_alias_rec *r)
{
    alias_vec *v = ctx;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        pt_alias_rec *np = realloc(v->p, nc * sizeof *np);
        if (!np) {
            v->oom = true;
            return 1;
        }
        v->p = np;
        v->cap = nc;
    }
    v->p[v->n++] = *r;
    return 0;
}

pt_result pt_person_keys_load(pt_app *app, pt_conn *c, const pt_subject_rec *s,
                              pt_person_keys *out, pt_err *err)
{
    alias_vec v = {0};
    memset(out, 0, sizeof *out);
    pt_result rc = pt_db_alias_list(c, s->id, alias_collect, &v);
    if (rc == PT_OK && v.oom) rc = PT_ERR_NOMEM;
    if (rc != PT_OK) {
        free(v.p);
        return pt_err_set(err, rc, "", "cannot read merged subjects");
    }
    out->aliases = v.p;
    out->naliases = v.n;
    out->k = calloc(v.n + 1, sizeof *out->k);
    if (!out->k) {
        pt_person_keys_clear(out);
        return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    out->n = v.n + 1;
    memcpy(out->k[0].id, s->id, PT_ID_BYTES);
    for (size_t i = 0; i < v.n; i++) memcpy(out->k[i + 1].id, v.p[i].id, PT_ID_BYTES);
    if (s->erased_at) return PT_OK; /* shredded: and with it what was merged into it */
    out->k[0].ok = pt_vault_dek(app, s, out->k[0].dek, NULL) == PT_OK;
    for (size_t i = 1; i < out->n; i++) {
        pt_subject_rec m;
        memset(&m, 0, sizeof m);
        rc = pt_db_subject_get(c, out->k[i].id, &m);
        if (rc == PT_OK && !m.erased_at)
            out->k[i].ok = pt_vault_dek(app, &m, out->k[i].dek, NULL) == PT_OK;
        pt_subject_rec_clear(&m);
        if (rc != PT_OK && rc != PT_ERR_NOT_FOUND) {
            pt_person_keys_clear(out);
            return pt_err_set(err, rc, "", "cannot read merged subjects");
        }
    }
    return PT_OK;
}

const uint8_t *pt_person_key_of(const pt_person_keys *pk, const uint8_t id[PT_ID_BYTES])
{
    for (size_t i = 0; i < pk->n; i++)
        if (memcmp(pk->k[i].id, id, PT_ID_BYTES) == 0) return pk->k[i].ok ? pk->k[i].dek : NULL;
    return NULL;
}

void pt_person_keys_clear(pt_person_keys *pk)
{
    if (!pk) return;
    if (pk->k) pt_wipe(pk->k, pk->n * sizeof *pk->k);
    free(pk->k);
    free(pk->aliases);
    memset(pk, 0, sizeof *pk);
}

pt_result pt_vault_profile_open(const uint8_t dek[PT_KEY_BYTES], const pt_subject_rec *s,
                                json_t **out, pt_err *err)
{
    *out = NULL;
    if (!s->profile) {
        *out = json_object();
        return *out ? PT_OK : pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    if (s->profile_len < PT_SEAL_OVERHEAD)
        return pt_err_set(err, PT_ERR_CRYPTO, "", "the profile does not decrypt");
    size_t n = s->profile_len - PT_SEAL_OVERHEAD;
    char *plain = malloc(n + 1);
    if (!plain) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    if (pt_open(dek, "subjects", "profile", s->id, s->profile, s->profile_len,
                (uint8_t *)plain) != PT_OK) {
        free(plain);
        return pt_err_set(err, PT_ERR_CRYPTO, "", "the profile does not decrypt");
    }
    plain[n] = '\0';
    *out = json_loads(plain, 0, NULL);
    pt_wipe(plain, n);
    free(plain);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return pt_err_set(err, PT_ERR_CRYPTO, "", "the profile does not decrypt");
    }
    return PT_OK;
}

pt_result pt_vault_profile_seal(const uint8_t dek[PT_KEY_BYTES], const uint8_t id[PT_ID_BYTES],
                                const json_t *profile, uint8_t **sealed, size_t *len,
                                pt_err *err)
{
    *sealed = NULL;
    *len = 0;
    if (!profile || json_object_size(profile) == 0) return PT_OK;
    char *plain = json_dumps(profile, JSON_COMPACT | JSON_SORT_KEYS);
    if (!plain) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    size_t n = strlen(plain);
    pt_result rc = PT_OK;
    if (n > PT_PROFILE_MAX) {
        rc = pt_err_set(err, PT_ERR_POLICY, "profile", "the profile would be larger than %d bytes",
                        PT_PROFILE_MAX);
    } else if (!(*sealed = malloc(n + PT_SEAL_OVERHEAD))) {
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    } else {
        pt_seal(dek, "subjects", "profile", id, (const uint8_t *)plain, n, *sealed);
        *len = n + PT_SEAL_OVERHEAD;
    }
    pt_wipe(plain, n);
    free(plain);
    return rc;
}

pt_result pt_identity_load_live(pt_conn *c, uint32_t tenant, const uint8_t id[PT_ID_BYTES],
                                const char *field, pt_subject_rec *out, pt_err *err)
{
    memset(out, 0, sizeof *out);
    pt_result rc = pt_db_subject_resolve(c, id, out);
    if (rc == PT_OK && out->tenant != tenant) {
        pt_subject_rec_clear(out);
        rc = PT_ERR_NOT_FOUND;
    }
    if (rc == PT_ERR_NOT_FOUND) return pt_err_set(err, rc, field, "no such subject");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read subjects");
    if (out->erased_at) {
        pt_subject_rec_clear(out);
        return pt_err_set(err, PT_ERR_POLICY, field, "the subject was erased");
    }
    return PT_OK;
}

pt_result pt_identity_log(pt_wctx *w, uint32_t tenant, const char *ref_prefix,
                          const uint8_t ref[PT_ID_BYTES], const char *kind,
                          const pt_leaf_member *members, size_t n, json_t **receipt,
                          pt_err *err)
{
    char tname[PT_TENANT_NAME_MAX + 1];
    *receipt = NULL;
    pt_result rc = pt_wctx_tenant_name(w, tenant, tname);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read the tenant");
    size_t len;
    char *leaf = pt_leaf_build(kind, tname, members, n, &len);
    json_t *r = json_pack("{s:s, s:o, s:s, s:s, s:{s:s}}", "version", "patto-receipt/1",
                          "receipt_id", pt_json_id_value(ref_prefix, ref), "kind", kind,
                          "jurisdiction", "EU (GDPR)", "controller", "tenant", tname);
    for (size_t i = 0; r && i < n; i++) {
        json_t *v = members[i].raw ? json_loads(members[i].raw, 0, NULL)
                    : members[i].str ? json_string(members[i].str)
                                     : json_null();
        json_object_set_new(r, members[i].key, v ? v : json_null());
    }
    if (!leaf || !r) {
        free(leaf);
        json_decref(r);
        return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    rc = pt_wctx_log(w, tenant, ref, 0, leaf, len, r, err);
    free(leaf);
    if (rc != PT_OK) {
        json_decref(r);
        return rc;
    }
    *receipt = r;
    return PT_OK;
}

/* Parses the path's subject id; a malformed one is as unknown as a missing one. */
static pt_result path_subject(const char *subject, uint8_t id[PT_ID_BYTES], pt_err *err)
{
    if (!subject || pt_id_parse("sub", subject, strlen(subject), id) != 0)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such subject");
    return PT_OK;
}

/* ------------------------------------------------------------ link */

typedef struct link_arg {
    pt_op *op;
    uint32_t tenant;
    uint8_t subject[PT_ID_BYTES];
    pt_ident_in id;
} link_arg;

static void link_arg_free(void *p)
{
    link_arg *a = p;
    pt_wipe(&a->id, sizeof a->id);
    free(a);
}

static pt_result link_fn(pt_wctx *w, void *arg, pt_err *err)
{
    link_arg *a = arg;
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    const pt_keyring *kr = pt_app_keyring(app);
    pt_subject_rec s;
    uint8_t dek[PT_KEY_BYTES], holder[PT_ID_BYTES];
    uint8_t sealed[PT_IDENT_MAX + PT_SEAL_OVERHEAD];
    pt_result rc = pt_identity_load_live(c, a->tenant, a->subject, "subject", &s, err);
    if (rc != PT_OK) return rc;
    const char *tname = pt_ident_type_name((pt_ident_type)a->id.type);
    rc = pt_vault_find(app, c, a->tenant, &a->id, holder);
    if (rc == PT_OK) {
        if (memcmp(holder, s.id, PT_ID_BYTES) != 0) {
            /* never say whose: that would disclose another person */
            rc = pt_err_set(err, PT_ERR_CONFLICT, "value",
                            "this %s identifier already belongs to another subject", tname);
            goto out;
        }
        a->op->status = 200; /* already this person's: nothing to do */
        a->op->out = json_pack("{s:o, s:s, s:s%, s:b, s:n}", "subject",
                               pt_json_id_value("sub", s.id), "type", tname, "value", a->id.norm,
                               a->id.len, "linked", 0, "receipt");
        rc = PT_OK;
        goto out;
    }
    if (rc != PT_ERR_NOT_FOUND) {
        rc = pt_err_set(err, rc, "", "cannot read identifiers");
        goto out;
    }
    rc = pt_vault_dek(app, &s, dek, err);
    if (rc != PT_OK) goto out;
    int64_t now = pt_wctx_now(w);
    pt_ident_rec r = {.tenant = a->tenant, .type = a->id.type, .created_at = now};
    pt_blind_index(kr->blind, a->tenant, a->id.type, a->id.norm, a->id.len, r.blind);
    memcpy(r.subject, s.id, PT_ID_BYTES);
    pt_seal(dek, "identifiers", "value", s.id, (const uint8_t *)a->id.norm, a->id.len, sealed);
    pt_wipe(dek, sizeof dek);
    r.value = sealed;
    r.value_len = a->id.len + PT_SEAL_OVERHEAD;
    rc = pt_db_ident_insert(c, &r, err);
    if (rc == PT_ERR_CONFLICT)
        rc = pt_err_set(err, PT_ERR_CONFLICT, "value",
                        "this %s identifier already belongs to another subject", tname);
    if (rc != PT_OK) goto out;

    char sid[PT_ID_STR_MAX], at[PT_TIME_STR_MAX];
    uint8_t ref[PT_ID_BYTES];
    pt_id_format("sub", s.id, sid);
    pt_time_format(now, at);
    pt_ordered_id(ref);
    const pt_leaf_member m[] = {{"subject", sid, NULL}, {"type", tname, NULL}, {"at", at, NULL}};
    json_t *receipt;
    rc = pt_identity_log(w, a->tenant, "lnk", ref, "identifier.linked", m, 3, &receipt, err);
    if (rc != PT_OK) goto out;
    a->op->out = json_pack("{s:s, s:s, s:s%, s:b, s:s, s:o}", "subject", sid, "type", tname,
                           "value", a->id.norm, a->id.len, "linked", 1, "linked_at", at,
                           "receipt", receipt);
    if (!a->op->out) rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
out:
    pt_wipe(sealed, sizeof sealed);
    pt_subject_rec_clear(&s);
    return rc;
}

pt_result pt_identifier_link_prepare(pt_app *app, uint32_t tenant, const char *subject,
                                     const json_t *body, pt_op *op, pt_err *err)
{
    (void)app;
    static const char *const readonly[] = {"subject", "linked", "linked_at", "receipt", NULL};
    link_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    pt_result rc = path_subject(subject, a->subject, err);
    if (rc == PT_OK && json_is_object(body)) {
        /* {type, value}; the fields patto answers with are named read-only */
        static const char *const allowed[] = {"type", "value", NULL};
        rc = pt_json_fields(body, "", allowed, readonly, err);
    }
    if (rc == PT_OK) rc = pt_vault_ident_parse(body, "", &a->id, err);
    if (rc != PT_OK) {
        link_arg_free(a);
        return rc;
    }
    memset(op, 0, sizeof *op);
    a->op = op;
    a->tenant = tenant;
    op->fn = link_fn;
    op->arg = a;
    op->free_arg = link_arg_free;
    op->status = 201;
    return PT_OK;
}

/* ------------------------------------------------------------ merge */

typedef struct merge_arg {
    pt_op *op;
    uint32_t tenant;
    uint8_t subject[PT_ID_BYTES], from[PT_ID_BYTES];
} merge_arg;

typedef struct ident_copy {
    int type;
    uint8_t blind[PT_BLIND_BYTES];
    size_t len;
    uint8_t value[PT_IDENT_MAX + PT_SEAL_OVERHEAD];
} ident_copy;

typedef struct merge_ctx {
    ident_copy *ids;
    size_t nids, capids;
    pt_state_rec *st;
    size_t nst, capst;
    bool oom, too_long;
} merge_ctx;

static int merge_ident(void *ctx, const pt_ident_rec *r)
{
    merge_ctx *m = ctx;
    if (r->value_len > sizeof m->ids[0].value) {
        m->too_long = true;
        return 1;
    }
    if (m->nids == m->capids) {
        size_t nc = m->capids ? m->capids * 2 : 8;
        ident_copy *np = realloc(m->ids, nc * sizeof *np);
        if (!np) {
            m->oom = true;
            return 1;
        }
        m->ids = np;
        m->capids = nc;
    }
    ident_copy *d = &m->ids[m->nids++];
    d->type = r->type;
    memcpy(d->blind, r->blind, PT_BLIND_BYTES);
    d->len = r->value_len;
    memcpy(d->value, r->value, r->value_len);
    return 0;
}

static int merge_state(void *ctx, const pt_state_rec *r)
{
    merge_ctx *m = ctx;
    if (m->nst == m->capst) {
        size_t nc = m->capst ? m->capst * 2 : 8;
        pt_state_rec *np = realloc(m->st, nc * sizeof *np);
        if (!np) {
            m->oom = true;
            return 1;
        }
        m->st = np;
        m->capst = nc;
    }
    m->st[m->nst++] = *r;
    return 0;
}

/* Identifiers of `from` move to `keep`, sealed anew under keep's key. */
static pt_result move_identifiers(pt_conn *c, const pt_subject_rec *keep,
                                  const uint8_t kdek[PT_KEY_BYTES], const pt_subject_rec *from,
                                  const uint8_t fdek[PT_KEY_BYTES], merge_ctx *m, pt_err *err)
{
    pt_result rc = pt_db_ident_list(c, from->id, merge_ident, m);
    if (rc == PT_OK && (m->oom || m->too_long)) rc = m->oom ? PT_ERR_NOMEM : PT_ERR_CRYPTO;
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read identifiers");
    for (size_t i = 0; i < m->nids; i++) {
        ident_copy *d = &m->ids[i];
        char plain[PT_IDENT_MAX];
        uint8_t sealed[PT_IDENT_MAX + PT_SEAL_OVERHEAD];
        if (d->len < PT_SEAL_OVERHEAD ||
            pt_open(fdek, "identifiers", "value", from->id, d->value, d->len, (uint8_t *)plain) !=
                PT_OK)
            return pt_err_set(err, PT_ERR_CRYPTO, "", "an identifier does not decrypt");
        size_t n = d->len - PT_SEAL_OVERHEAD;
        pt_seal(kdek, "identifiers", "value", keep->id, (const uint8_t *)plain, n, sealed);
        pt_wipe(plain, sizeof plain);
        rc = pt_db_ident_move(c, keep->tenant, d->type, d->blind, keep->id, sealed,
                              n + PT_SEAL_OVERHEAD, err);
        pt_wipe(sealed, sizeof sealed);
        if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot move an identifier");
    }
    return PT_OK;
}

/* Profile fields the survivor lacks are taken from `from`, whose profile
 * is then cleared; the survivor's own values win. */
static pt_result merge_profiles(pt_wctx *w, const pt_subject_rec *keep,
                                const uint8_t kdek[PT_KEY_BYTES], const pt_subject_rec *from,
                                const uint8_t fdek[PT_KEY_BYTES], json_t *taken, pt_err *err)
{
    pt_conn *c = pt_wctx_conn(w);
    if (!from->profile) return PT_OK;
    json_t *kp = NULL, *fp = NULL;
    uint8_t *sealed = NULL;
    size_t len = 0;
    pt_result rc = pt_vault_profile_open(kdek, keep, &kp, err);
    if (rc == PT_OK) rc = pt_vault_profile_open(fdek, from, &fp, err);
    if (rc != PT_OK) goto out;
    const char *k;
    json_t *v;
    json_object_foreach(fp, k, v)
    {
        if (json_object_get(kp, k)) continue;
        json_object_set(kp, k, v);
        json_array_append_new(taken, json_string(k));
    }
    if (json_object_size(kp) > PT_PROFILE_FIELDS_MAX) {
        rc = pt_err_set(err, PT_ERR_POLICY, "from",
                        "the merged profile would have more than %d fields; rectify one of the "
                        "two first (PATCH /v1/subjects/{subject})",
                        PT_PROFILE_FIELDS_MAX);
        goto out;
    }
    if (json_array_size(taken)) {
        rc = pt_vault_profile_seal(kdek, keep->id, kp, &sealed, &len, err);
        if (rc == PT_OK) rc = pt_db_subject_update_profile(c, keep->id, sealed, len, pt_wctx_now(w));
        if (rc != PT_OK) goto out;
    }
    rc = pt_db_subject_update_profile(c, from->id, NULL, 0, pt_wctx_now(w));
    if (rc != PT_OK) pt_err_set(err, rc, "", "cannot write the profile");
out:
    if (sealed) {
        pt_wipe(sealed, len);
        free(sealed);
    }
    json_decref(kp);
    json_decref(fp);
    return rc;
}

/* Per purpose `from` holds a decision for, the most recent one stands. */
static pt_result merge_consents(pt_wctx *w, const pt_subject_rec *keep,
                                const pt_subject_rec *from, merge_ctx *m, json_t *consents,
                                pt_err *err)
{
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    pt_result rc = pt_db_state_list_subject(c, from->id, merge_state, m);
    if (rc == PT_OK && m->oom) rc = PT_ERR_NOMEM;
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read consent state");
    for (size_t i = 0; i < m->nst; i++) {
        const pt_state_rec *fs = &m->st[i];
        pt_state_rec ks, out;
        rc = pt_db_state_get(c, keep->id, fs->st.purpose_idx, &ks);
        if (rc != PT_OK && rc != PT_ERR_NOT_FOUND)
            return pt_err_set(err, rc, "", "cannot read consent state");
        memset(&out, 0, sizeof out);
        pt_merge_pick pick = pt_policy_merge(rc == PT_OK ? &ks.st : NULL, &fs->st, &out.st);
        if (pick == PT_MERGE_FROM) {
            memcpy(out.subject, keep->id, PT_ID_BYTES);
            out.tenant = keep->tenant;
            out.event_seq = fs->event_seq;
            rc = pt_db_state_put(c, &out, err);
            if (rc != PT_OK) return rc;
            pt_wctx_state_set(w, &out);
        }
        char name[PT_PURPOSE_NAME_MAX + 1];
        pt_purpose_ref p;
        if (pick != PT_MERGE_NONE &&
            pt_catalog_name(app, keep->tenant, fs->st.purpose_idx, name, &p) == PT_OK)
            json_array_append_new(
                consents,
                json_pack("{s:s, s:s, s:s}", "purpose", name, "state",
                          pt_state_name(pt_policy_effective(&p.rule, &out.st, pt_wctx_now(w))),
                          "decided_by", pick == PT_MERGE_FROM ? "from" : "subject"));
    }
    rc = pt_db_state_delete_subject(c, from->id, err);
    return rc;
}

static pt_result merge_fn(pt_wctx *w, void *arg, pt_err *err)
{
    merge_arg *a = arg;
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    pt_subject_rec keep, from;
    uint8_t kdek[PT_KEY_BYTES], fdek[PT_KEY_BYTES];
    merge_ctx m = {0};
    json_t *taken = json_array(), *consents = json_array();
    memset(&from, 0, sizeof from);
    pt_result rc = pt_identity_load_live(c, a->tenant, a->subject, "subject", &keep, err);
    if (rc != PT_OK) goto out_nokeep;
    rc = pt_identity_load_live(c, a->tenant, a->from, "from", &from, err);
    if (rc != PT_OK) goto out;
    char kid[PT_ID_STR_MAX], fid[PT_ID_STR_MAX], at[PT_TIME_STR_MAX];
    pt_id_format("sub", keep.id, kid);
    pt_id_format("sub", from.id, fid);
    if (memcmp(keep.id, from.id, PT_ID_BYTES) == 0) {
        rc = pt_err_set(err, PT_ERR_CONFLICT, "from",
                        "'from' is already this subject: it was merged into it before");
        goto out;
    }
    rc = pt_vault_dek(app, &keep, kdek, err);
    if (rc == PT_OK) rc = pt_vault_dek(app, &from, fdek, err);
    if (rc != PT_OK) goto out;

    int64_t now = pt_wctx_now(w);
    rc = move_identifiers(c, &keep, kdek, &from, fdek, &m, err);
    if (rc == PT_OK) rc = merge_profiles(w, &keep, kdek, &from, fdek, taken, err);
    if (rc == PT_OK) rc = merge_consents(w, &keep, &from, &m, consents, err);
    if (rc != PT_OK) goto out_keys;

    /* the old id answers as the survivor; so do the ids merged into it */
    pt_alias_rec al = {.tenant = a->tenant, .merged_at = now};
    memcpy(al.id, from.id, PT_ID_BYTES);
    memcpy(al.subject, keep.id, PT_ID_BYTES);
    pt_ordered_id(al.merge);
    rc = pt_db_alias_repoint(c, from.id, keep.id, err);
    if (rc == PT_OK) rc = pt_db_alias_insert(c, &al, err);
    if (rc != PT_OK) goto out_keys;
    pt_wctx_alias_added(w, &al);

    pt_time_format(now, at);
    const pt_leaf_member lm[] = {{"subject", kid, NULL}, {"from", fid, NULL}, {"at", at, NULL}};
    json_t *receipt;
    rc = pt_identity_log(w, a->tenant, "mrg", al.merge, "subject.merged", lm, 3, &receipt, err);
    if (rc != PT_OK) goto out_keys;
    a->op->out = json_pack("{s:s, s:s, s:o, s:s, s:I, s:O, s:O, s:o}", "subject", kid, "from", fid,
                           "merge", pt_json_id_value("mrg", al.merge), "merged_at", at,
                           "identifiers_moved", (json_int_t)m.nids, "profile_fields_taken", taken,
                           "consents", consents, "receipt", receipt);
    if (!a->op->out) rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
out_keys:
    pt_wipe(kdek, sizeof kdek);
    pt_wipe(fdek, sizeof fdek);
out:
    pt_subject_rec_clear(&from);
    pt_subject_rec_clear(&keep);
out_nokeep:
    if (m.ids) pt_wipe(m.ids, m.capids * sizeof *m.ids);
    free(m.ids);
    free(m.st);
    json_decref(taken);
    json_decref(consents);
    return rc;
}

pt_result pt_subject_merge_prepare(pt_app *app, uint32_t tenant, const char *subject,
                                   const json_t *body, pt_op *op, pt_err *err)
{
    (void)app;
    static const char *const allowed[] = {"from", NULL};
    static const char *const readonly[] = {"subject",  "merge",    "merged_at",
                                           "receipt",  "consents", "identifiers_moved",
                                           NULL};
    const char *from;
    merge_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    pt_result rc = path_subject(subject, a->subject, err);
    if (rc == PT_OK) rc = pt_json_fields(body, "", allowed, readonly, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "from", true, PT_ID_STR_MAX, &from, err);
    if (rc == PT_OK && pt_id_parse("sub", from, strlen(from), a->from) != 0)
        rc = pt_err_set(err, PT_ERR_INVALID, "from", "from must be a subject id (sub_...)");
    if (rc == PT_OK && memcmp(a->from, a->subject, PT_ID_BYTES) == 0)
        rc = pt_err_set(err, PT_ERR_POLICY, "from", "a subject cannot be merged into itself");
    if (rc != PT_OK) {
        free(a);
        return rc;
    }
    memset(op, 0, sizeof *op);
    a->op = op;
    a->tenant = tenant;
    op->fn = merge_fn;
    op->arg = a;
    op->free_arg = free;
    op->status = 200;
    return PT_OK;
}

/* ------------------------------------------------------------ check by identifier */

pt_result pt_consent_check_identifier(pt_app *app, uint32_t tenant, const char *type,
                                      const char *value, const char *purpose,
                                      const char *channel, const char *recipient, json_t **out,
                                      pt_err *err)
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
    uint8_t sid[PT_ID_BYTES];
    pt_conn *c = pt_app_reader(app, err);
    if (!c) {
        pt_wipe(&id, sizeof id);
        return err ? err->code : PT_ERR_STORAGE;
    }
    rc = pt_vault_find(app, c, tenant, &id, sid);
    pt_app_reader_release(app, c);
    pt_wipe(&id, sizeof id);
    bool found = rc == PT_OK;
    if (rc == PT_ERR_NOT_FOUND)
        memset(sid, 0, sizeof sid); /* nobody's id: the answer is unknown_subject */
    else if (rc != PT_OK)
        return pt_err_set(err, rc, "", "cannot read identifiers");
    char sstr[PT_ID_STR_MAX];
    pt_id_format("sub", sid, sstr);
    rc = pt_consent_check(app, tenant, sstr, purpose, channel, recipient, out, err);
    if (rc != PT_OK) return rc;
    json_object_set_new(*out, "subject", found ? json_string(sstr) : json_null());
    json_object_set_new(*out, "identifier_type", json_string(type));
    return PT_OK;
}
