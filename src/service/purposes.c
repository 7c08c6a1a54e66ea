/* purposes.c - the catalog: purposes (what data is used for, on which legal
 * basis, for how long, on which channels) and notices (the exact texts
 * shown to people, immutable and identified by their SHA-256). */
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "jsonutil.h"
#include "log.h"
#include "service.h"

#define PT_MAX_VALIDITY_DAYS 3650

typedef struct purpose_arg {
    pt_op *op;
    pt_purpose_rec rec;
} purpose_arg;

static json_t *purpose_doc(const pt_purpose_rec *p)
{
    json_t *assessment =
        p->assessment[0] ? json_pack("{s:s, s:s, s:s}", "notice", p->assessment, "version",
                                     p->assessment_version, "sha256", p->assessment_sha256)
                         : json_null();
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:o, s:i, s:o, s:s, s:i, s:o, s:o}", "purpose", p->name,
                     "title", p->title, "description", p->description, "legal_basis",
                     pt_basis_name(p->rule.basis), "validity_days",
                     p->rule.validity_days ? json_integer(p->rule.validity_days) : json_null(),
                     "renew_before_days", (json_int_t)p->rule.renew_before_days, "channels",
                     pt_json_channels_value(p->rule.channels), "dpv", p->dpv, "revision",
                     (json_int_t)p->rule.revision, "created_at",
                     pt_json_time_value(p->created_at), "updated_at",
                     pt_json_time_value(p->updated_at));
    if (d) json_object_set_new(d, "assessment", assessment);
    else json_decref(assessment);
    return d;
}

typedef struct max_idx {
    int max;
} max_idx;

static int find_max_idx(void *ctx, const pt_purpose_rec *r)
{
    max_idx *m = ctx;
    if (r->idx > m->max) m->max = r->idx;
    return 0;
}

static pt_result purpose_put_fn(pt_wctx *w, void *arg, pt_err *err)
{
    purpose_arg *a = arg;
    pt_conn *c = pt_wctx_conn(w);
    pt_purpose_rec old;
    pt_purpose_rec *p = &a->rec;
    pt_result rc = pt_db_purpose_get(c, p->tenant, p->name, &old);
    p->updated_at = pt_wctx_now(w);
    if (rc == PT_OK) {
        p->idx = old.idx;
        p->created_at = old.created_at;
        /* A material change (what the person was told, or the basis) makes
         * earlier consents ask to be given again. */
        bool material = strcmp(old.title, p->title) != 0 ||
                        strcmp(old.description, p->description) != 0 ||
                        old.rule.basis != p->rule.basis ||
                        (p->rule.channels & ~old.rule.channels) != 0;
        p->rule.revision = (uint16_t)(old.rule.revision + (material ? 1 : 0));
        a->op->status = 200;
    } else if (rc == PT_ERR_NOT_FOUND) {
        max_idx m = {.max = -1};
        rc = pt_db_purpose_list(c, p->tenant, find_max_idx, &m);
        if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read purposes");
        if (m.max >= 65535)
            return pt_err_set(err, PT_ERR_POLICY, "purpose", "too many purposes in this tenant");
        p->idx = (uint16_t)(m.max + 1);
        p->created_at = p->updated_at;
        p->rule.revision = 1;
        a->op->status = 201;
    } else {
        return pt_err_set(err, rc, "", "cannot read purposes");
    }
    if (p->assessment[0]) {
        /* the assessment is a published text: its hash is what the purpose
         * rests on, as a consent rests on the notice shown */
        pt_notice_rec n;
        memset(&n, 0, sizeof n);
        rc = pt_db_notice_get(c, p->tenant, p->assessment, p->assessment_version, &n);
        if (rc == PT_OK) memcpy(p->assessment_sha256, n.sha256, sizeof p->assessment_sha256);
        pt_notice_rec_clear(&n);
        if (rc == PT_ERR_NOT_FOUND)
            return pt_err_set(err, PT_ERR_POLICY, "assessment",
                              "assessment '%s' version '%s' is not published; publish it with "
                              "POST /v1/notices first",
                              p->assessment, p->assessment_version);
        if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read notices");
    }
    rc = pt_db_purpose_put(c, p, err);
    if (rc != PT_OK) return rc;
    pt_wctx_reload_catalog(w);
    a->op->out = purpose_doc(p);
    return PT_OK;
}

pt_result pt_purpose_put_prepare(pt_app *app, uint32_t tenant, const char *name,
                                 const json_t *body, pt_op *op, pt_err *err)
{
    (void)app;
    static const char *const allowed[] = {"title",    "description",       "legal_basis",
                                          "validity_days", "channels", "renew_before_days",
                                          "dpv",      "assessment",        NULL};
    static const char *const assessment_allowed[] = {"notice", "version", NULL};
    static const char *const assessment_readonly[] = {"sha256", NULL};
    const char *anotice = NULL, *aversion = NULL;
    static const char *const readonly[] = {"purpose", "revision", "created_at", "updated_at",
                                           "tenant", NULL};
    const char *title, *description, *basis, *dpv;
    int64_t validity = 0, renew = 0;
    bool has_validity = false, has_renew = false;
    uint8_t channels = 0;
    if (!name || !pt_purpose_name_valid(name))
        return pt_err_set(err, PT_ERR_INVALID, "purpose",
                          "a purpose name is 1 to 64 characters: a-z, 0-9, '.', '_', '-', "
                          "starting with a letter or digit");
    pt_result rc = pt_json_fields(body, "", allowed, readonly, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "title", true, PT_TITLE_MAX, &title, err);
    if (rc == PT_OK)
        rc = pt_json_str(body, "", "description", false, PT_DESCRIPTION_MAX, &description, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "legal_basis", true, 32, &basis, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "dpv", false, PT_DPV_MAX, &dpv, err);
    if (rc == PT_OK)
        rc = pt_json_int(body, "", "validity_days", false, 1, PT_MAX_VALIDITY_DAYS, &validity,
                         &has_validity, err);
    if (rc == PT_OK)
        rc = pt_json_int(body, "", "renew_before_days", false, 0, PT_MAX_VALIDITY_DAYS, &renew,
                         &has_renew, err);
    if (rc == PT_OK) rc = pt_json_channels(body, "", "channels", &channels, err);
    if (rc != PT_OK) return rc;
    int b = pt_basis_parse(basis);
    if (b < 0)
        return pt_err_set(err, PT_ERR_INVALID, "legal_basis",
                          "legal_basis must be consent, legitimate_interest, contract or "
                          "legal_obligation");
    if (!channels)
        return pt_err_set(err, PT_ERR_INVALID, "channels", "field 'channels' is required");
    if (has_renew && (!has_validity || renew >= validity))
        return pt_err_set(err, PT_ERR_INVALID, "renew_before_days",
                          "renew_before_days needs validity_days and must be smaller");
    /* Art. 6(1)(f): a legitimate interest is only as good as its documented
     * balancing test, kept as a published, versioned, hashed text */
    json_t *as = json_object_get(body, "assessment");
    if (as && !json_is_null(as)) {
        if (b != PT_BASIS_LEGITIMATE_INTEREST)
            return pt_err_set(err, PT_ERR_INVALID, "assessment",
                              "only a purpose based on legitimate_interest has an assessment");
        if (!json_is_object(as))
            return pt_err_set(err, PT_ERR_INVALID, "assessment",
                              "assessment must be {\"notice\": NAME, \"version\": V}");
        rc = pt_json_fields(as, "assessment.", assessment_allowed, assessment_readonly, err);
        if (rc == PT_OK)
            rc = pt_json_str(as, "assessment.", "notice", true, PT_NOTICE_NAME_MAX, &anotice, err);
        if (rc == PT_OK)
            rc = pt_json_str(as, "assessment.", "version", true, PT_NOTICE_VERSION_MAX, &aversion,
                             err);
        if (rc != PT_OK) return rc;
    } else if (b == PT_BASIS_LEGITIMATE_INTEREST) {
        return pt_err_set(err, PT_ERR_INVALID, "assessment",
                          "a purpose based on legitimate_interest needs its assessment: "
                          "{\"notice\": NAME, \"version\": V}, a text published with "
                          "POST /v1/notices");
    }

    purpose_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    memset(op, 0, sizeof *op);
    a->op = op;
    pt_purpose_rec *p = &a->rec;
    p->tenant = tenant;
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->title, sizeof p->title, "%s", title);
    snprintf(p->description, sizeof p->description, "%s", description ? description : "");
    snprintf(p->dpv, sizeof p->dpv, "%s", dpv ? dpv : "");
    if (anotice) {
        snprintf(p->assessment, sizeof p->assessment, "%s", anotice);
        snprintf(p->assessment_version, sizeof p->assessment_version, "%s", aversion);
    }
    p->rule.basis = (pt_basis)b;
    p->rule.validity_days = (uint32_t)validity;
    p->rule.renew_before_days =
        has_renew ? (uint32_t)renew : (has_validity ? (uint32_t)(validity >= 60 ? 30 : 0) : 0);
    p->rule.channels = channels;
    op->fn = purpose_put_fn;
    op->arg = a;
    op->free_arg = free;
    op->status = 200;
    return PT_OK;
}

static int purpose_collect(void *ctx, const pt_purpose_rec *r)
{
    json_array_append_new(ctx, purpose_doc(r));
    return 0;
}

pt_result pt_purpose_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    json_t *a = json_array();
    pt_result rc = pt_db_purpose_list(c, tenant, purpose_collect, a);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        json_decref(a);
        return pt_err_set(err, rc, "", "cannot read purposes");
    }
    *out = json_pack("{s:o}", "purposes", a);
    return PT_OK;
}

pt_result pt_purpose_get(pt_app *app, uint32_t tenant, const char *name, json_t **out,
                         pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    pt_purpose_rec *p = malloc(sizeof *p);
    pt_result rc = p ? pt_db_purpose_get(c, tenant, name, p) : PT_ERR_NOMEM;
    pt_app_reader_release(app, c);
    if (rc == PT_OK) *out = purpose_doc(p);
    free(p);
    if (rc == PT_ERR_NOT_FOUND) return pt_err_set(err, rc, "purpose", "no such purpose");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read purposes");
    return PT_OK;
}

/* ---- notices ---- */

static bool token_valid(const char *s, size_t max, bool allow_upper, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (allow_upper && c >= 'A' && c <= 'Z') || (i > 0 && strchr(extra, c));
        if (!ok) return false;
    }
    return true;
}

static bool language_valid(const char *s)
{
    /* BCP 47 shape: 2-3 letter primary tag, then -subtags of 1..8 alnum */
    size_t n = strlen(s), i = 0;
    if (n < 2 || n > PT_LANGUAGE_MAX) return false;
    while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) i++;
    if (i < 2 || i > 3) return false;
    while (i < n) {
        if (s[i++] != '-') return false;
        size_t start = i;
        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                         (s[i] >= '0' && s[i] <= '9')))
            i++;
        if (i == start || i - start > 8) return false;
    }
    return true;
}

static json_t *notice_doc(const pt_notice_rec *n, bool with_text)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "notice", n->notice, "version",
                          n->version, "language", n->language, "sha256", n->sha256, "id",
                          pt_json_id_value("ntc", n->id), "created_at",
                          pt_json_time_value(n->created_at));
    if (with_text && n->text) json_object_set_new(d, "text", json_stringn(n->text, n->text_len));
    return d;
}

typedef struct notice_arg {
    pt_op *op;
    pt_notice_rec rec;
    char *text;
} notice_arg;

static void notice_arg_free(void *p)
{
    notice_arg *a = p;
    free(a->text);
    free(a);
}

static pt_result notice_fn(pt_wctx *w, void *arg, pt_err *err)
{
    notice_arg *a = arg;
    pt_conn *c = pt_wctx_conn(w);
    pt_notice_rec old;
    memset(&old, 0, sizeof old);
    pt_result rc = pt_db_notice_get(c, a->rec.tenant, a->rec.notice, a->rec.version, &old);
    if (rc == PT_OK) {
        /* Publishing the same text again is harmless and idempotent; a
         * different text under a published version would rewrite what
         * people were shown. */
        bool same = strcmp(old.sha256, a->rec.sha256) == 0 && strcmp(old.language, a->rec.language) == 0;
        if (same) {
            a->op->out = notice_doc(&old, false);
            a->op->status = 200;
        }
        pt_notice_rec_clear(&old);
        if (same) return PT_OK;
        return pt_err_set(err, PT_ERR_CONFLICT, "version",
                          "notice '%s' version '%s' is published with another text; texts are "
                          "immutable: publish a new version",
                          a->rec.notice, a->rec.version);
    }
    if (rc != PT_ERR_NOT_FOUND) return pt_err_set(err, rc, "", "cannot read notices");
    a->rec.created_at = pt_wctx_now(w);
    pt_random(a->rec.id, PT_ID_BYTES);
    rc = pt_db_notice_insert(c, &a->rec, err);
    if (rc != PT_OK) return rc;
    /* the text's hash is what consent leaves point to: its publication is
     * logged so that an auditor sees when each text became available */
    char tname[PT_TENANT_NAME_MAX + 1];
    rc = pt_wctx_tenant_name(w, a->rec.tenant, tname);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read the tenant");
    size_t len;
    char *leaf = pt_leaf_notice(tname, &a->rec, &len);
    if (!leaf) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    rc = pt_wctx_log(w, a->rec.tenant, a->rec.id, 0, leaf, len, NULL, err);
    free(leaf);
    if (rc != PT_OK) return rc;
    a->op->out = notice_doc(&a->rec, false);
    a->op->status = 201;
    return PT_OK;
}

pt_result pt_notice_publish_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                    pt_err *err)
{
    (void)app;
    static const char *const allowed[] = {"notice", "version", "language", "text", NULL};
    static const char *const readonly[] = {"sha256", "id", "created_at", "tenant", NULL};
    const char *notice, *version, *language, *text;
    pt_result rc = pt_json_fields(body, "", allowed, readonly, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "notice", true, PT_NOTICE_NAME_MAX, &notice, err);
    if (rc == PT_OK)
        rc = pt_json_str(body, "", "version", true, PT_NOTICE_VERSION_MAX, &version, err);
    if (rc == PT_OK)
        rc = pt_json_str(body, "", "language", true, PT_LANGUAGE_MAX, &language, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "text", true, PT_NOTICE_TEXT_MAX, &text, err);
    if (rc != PT_OK) return rc;
    if (!token_valid(notice, PT_NOTICE_NAME_MAX, false, "._-"))
        return pt_err_set(err, PT_ERR_INVALID, "notice",
                          "a notice name is a-z, 0-9, '.', '_', '-', starting with a letter or "
                          "digit");
    if (!token_valid(version, PT_NOTICE_VERSION_MAX, true, "._-"))
        return pt_err_set(err, PT_ERR_INVALID, "version",
                          "a version is letters, digits, '.', '_', '-' (e.g. 2026-11 or 3.1)");
    if (!language_valid(language))
        return pt_err_set(err, PT_ERR_INVALID, "language",
                          "language must be a BCP 47 tag such as it, en or en-GB");
    notice_arg *a = calloc(1, sizeof *a);
    size_t tlen = json_string_length(json_object_get(body, "text"));
    char *t = a ? malloc(tlen + 1) : NULL;
    if (!t) {
        free(a);
        return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    memcpy(t, text, tlen + 1);
    memset(op, 0, sizeof *op);
    a->op = op;
    a->text = t;
    a->rec.tenant = tenant;
    snprintf(a->rec.notice, sizeof a->rec.notice, "%s", notice);
    snprintf(a->rec.version, sizeof a->rec.version, "%s", version);
    snprintf(a->rec.language, sizeof a->rec.language, "%s", language);
    a->rec.text = t;
    a->rec.text_len = tlen;
    pt_sha256_hex(t, tlen, a->rec.sha256);
    op->fn = notice_fn;
    op->arg = a;
    op->free_arg = notice_arg_free;
    op->status = 201;
    return PT_OK;
}

pt_result pt_notice_get(pt_app *app, uint32_t tenant, const char *notice, const char *version,
                        json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    pt_notice_rec n;
    memset(&n, 0, sizeof n);
    pt_result rc = pt_db_notice_get(c, tenant, notice, version, &n);
    pt_app_reader_release(app, c);
    if (rc == PT_OK) *out = notice_doc(&n, true);
    pt_notice_rec_clear(&n);
    if (rc == PT_ERR_NOT_FOUND) return pt_err_set(err, rc, "notice", "no such notice version");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read notices");
    return PT_OK;
}

static int notice_collect(void *ctx, const pt_notice_rec *r)
{
    json_array_append_new(ctx, notice_doc(r, false));
    return 0;
}

pt_result pt_notice_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    json_t *a = json_array();
    pt_result rc = pt_db_notice_list(c, tenant, notice_collect, a);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        json_decref(a);
        return pt_err_set(err, rc, "", "cannot read notices");
    }
    *out = json_pack("{s:o}", "notices", a);
    return PT_OK;
}
