/* ledger.c - consent events: recording them (append-only), folding them
 * into the materialised state, answering `check`, and reading state and
 * history back.
 *
 * Evidence (IP address, user agent, a call recording's reference) is
 * personal data: it is sealed under the subject's key like the profile,
 * and the event keeps only its SHA-256 in clear. The hash is taken over
 * the canonical form (jansson compact, keys sorted), so that the proof of
 * what was collected survives an erasure of the person. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/timefmt.h"
#include "identity.h"
#include "jsonutil.h"
#include "ledger.h"
#include "log.h"
#include "service.h"
#include "vault.h"

#define PT_EVIDENCE_MAX 8192
/* A client's clock may run a little ahead of ours. */
#define PT_FUTURE_SKEW_MS (5 * 60 * 1000)

void pt_consent_arg_clear(pt_consent_arg *a)
{
    if (!a) return;
    if (a->evidence) {
        pt_wipe(a->evidence, strlen(a->evidence));
        free(a->evidence);
        a->evidence = NULL;
    }
    pt_wipe(&a->ident, sizeof a->ident);
}

pt_result pt_consent_parse(pt_app *app, uint32_t tenant, const json_t *body, pt_consent_arg *a,
                           pt_err *err)
{
    static const char *const allowed[] = {"subject", "identifier",    "purpose",  "action",
                                          "channels", "notice",       "collected_via",
                                          "evidence", "occurred_at",  NULL};
    static const char *const readonly[] = {"event",      "recorded_at", "expires_at", "receipt",
                                           "tenant",     "state",       "evidence_sha256",
                                           NULL};
    static const char *const notice_allowed[] = {"notice", "version", NULL};
    static const char *const notice_readonly[] = {"sha256", "language", NULL};
    const char *subject, *purpose, *action, *via, *nname = NULL, *nversion = NULL;
    memset(a, 0, sizeof *a);
    a->tenant = tenant;
    pt_result rc = pt_json_fields(body, "", allowed, readonly, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "subject", false, PT_ID_STR_MAX, &subject, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "purpose", true, PT_PURPOSE_NAME_MAX, &purpose, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "action", true, 16, &action, err);
    if (rc == PT_OK) rc = pt_json_str(body, "", "collected_via", true, 16, &via, err);
    if (rc == PT_OK) rc = pt_json_channels(body, "", "channels", &a->channels, err);
    if (rc == PT_OK)
        rc = pt_json_time(body, "", "occurred_at", &a->occurred_at, &a->has_occurred_at, err);
    if (rc != PT_OK) return rc;

    json_t *ident = json_object_get(body, "identifier");
    if (ident && json_is_null(ident)) ident = NULL;
    if (!!subject == !!ident)
        return pt_err_set(err, PT_ERR_INVALID, subject ? "identifier" : "subject",
                          "give exactly one of 'subject' and 'identifier'");
    if (subject) {
        if (pt_id_parse("sub", subject, strlen(subject), a->subject) != 0)
            return pt_err_set(err, PT_ERR_INVALID, "subject",
                              "subject must be a subject id (sub_...)");
        a->has_subject = true;
    } else {
        rc = pt_vault_ident_parse(ident, "identifier.", &a->ident, err);
        if (rc != PT_OK) return rc;
    }

    int act = pt_action_parse(action);
    if (act < 0)
        return pt_err_set(err, PT_ERR_INVALID, "action",
                          "action must be grant, deny, withdraw, renew or object");
    a->action = (pt_action)act;
    int v = pt_via_parse(via);
    if (v < 0)
        return pt_err_set(err, PT_ERR_INVALID, "collected_via",
                          "collected_via must be web_form, phone, email_link, paper, import or "
                          "api");
    a->via = (pt_collected_via)v;

    if (pt_catalog_find(app, tenant, purpose, &a->purpose) != PT_OK)
        return pt_err_set(err, PT_ERR_POLICY, "purpose",
                          "no purpose '%s' in this tenant; GET /v1/purposes lists them", purpose);
    snprintf(a->purpose_name, sizeof a->purpose_name, "%s", purpose);
    if (a->channels & ~a->purpose.rule.channels)
        return pt_err_set(err, PT_ERR_INVALID, "channels",
                          "a channel given is not one that purpose '%s' uses", purpose);

    json_t *notice = json_object_get(body, "notice");
    if (notice && !json_is_null(notice)) {
        rc = pt_json_fields(notice, "notice.", notice_allowed, notice_readonly, err);
        if (rc == PT_OK)
            rc = pt_json_str(notice, "notice.", "notice", true, PT_NOTICE_NAME_MAX, &nname, err);
        if (rc == PT_OK)
            rc = pt_json_str(notice, "notice.", "version", true, PT_NOTICE_VERSION_MAX, &nversion,
                             err);
        if (rc != PT_OK) return rc;
        snprintf(a->notice, sizeof a->notice, "%s", nname);
        snprintf(a->notice_version, sizeof a->notice_version, "%s", nversion);
    } else if (a->action == PT_ACT_GRANT || a->action == PT_ACT_RENEW) {
        /* A consent is only as good as the proof of what the person read. */
        return pt_err_set(err, PT_ERR_INVALID, "notice",
                          "a %s needs the notice shown: {\"notice\": NAME, \"version\": V}",
                          pt_action_name(a->action));
    }

    json_t *ev = json_object_get(body, "evidence");
    if (ev && !json_is_null(ev)) {
        if (!json_is_object(ev))
            return pt_err_set(err, PT_ERR_INVALID, "evidence", "evidence must be an object");
        a->evidence = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
        if (!a->evidence) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        if (strlen(a->evidence) > PT_EVIDENCE_MAX)
            return pt_err_set(err, PT_ERR_INVALID, "evidence",
                              "evidence is larger than %d bytes; store large proofs (recordings) "
                              "elsewhere and give their reference and hash",
                              PT_EVIDENCE_MAX);
    }
    return PT_OK;
}

pt_result pt_consent_apply(pt_wctx *w, pt_consent_arg *a, json_t **out, pt_err *err)
{
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    pt_subject_rec s;
    pt_state_rec sr;
    pt_event_rec e;
    uint8_t dek[PT_KEY_BYTES];
    uint8_t *sealed = NULL;
    bool have_dek = false, changed = false;
    pt_result rc;
    memset(&s, 0, sizeof s);
    memset(&e, 0, sizeof e);

    /* 1. the subject: by id, by identifier, or new for an unknown identifier */
    pt_subject_hint *h = a->hint;
    bool hinted = h && h->valid && h->tenant == a->tenant &&
                  (a->has_subject ? h->by_id && !memcmp(h->key_id, a->subject, PT_ID_BYTES)
                                  : !h->by_id && h->ident.type == a->ident.type &&
                                        !strcmp(h->ident.norm, a->ident.norm));
    if (hinted) {
        s = h->s;
        if (h->have_dek) {
            memcpy(dek, h->dek, PT_KEY_BYTES);
            have_dek = true;
        }
    } else if (a->has_subject) {
        rc = pt_db_subject_resolve(c, a->subject, &s); /* a merged id: the survivor */
        if (rc == PT_OK && s.tenant != a->tenant) rc = PT_ERR_NOT_FOUND;
        if (rc == PT_ERR_NOT_FOUND && a->create_missing_subject) {
            rc = pt_vault_subject_create(w, a->tenant, a->subject, NULL, 0, NULL, &s, dek, err);
            if (rc != PT_OK) goto out;
            have_dek = true;
            a->created_subject = true;
        } else if (rc == PT_ERR_NOT_FOUND) {
            rc = pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such subject");
            goto out;
        } else if (rc != PT_OK) {
            rc = pt_err_set(err, rc, "", "cannot read subjects");
            goto out;
        }
    } else {
        uint8_t sid[PT_ID_BYTES];
        rc = pt_vault_find(app, c, a->tenant, &a->ident, sid);
        if (rc == PT_OK) rc = pt_db_subject_get(c, sid, &s);
        if (rc == PT_ERR_NOT_FOUND) {
            rc = pt_vault_subject_create(w, a->tenant, NULL, &a->ident, 1, NULL, &s, dek, err);
            if (rc != PT_OK) goto out;
            have_dek = true;
            a->created_subject = true;
        } else if (rc != PT_OK) {
            rc = pt_err_set(err, rc, "", "cannot read subjects");
            goto out;
        }
    }
    if (s.erased_at) {
        rc = pt_err_set(err, PT_ERR_POLICY, "subject",
                        "the subject was erased; record consents for a new subject");
        goto out;
    }
    if (h && !hinted) {
        pt_wipe(h, sizeof *h);
        h->valid = true;
        h->tenant = a->tenant;
        h->by_id = a->has_subject;
        memcpy(h->key_id, a->subject, PT_ID_BYTES);
        h->ident = a->ident;
        h->s = s;
        h->s.profile = NULL;
        h->s.profile_len = 0;
        h->fresh = a->created_subject;
    }

    /* 2. the notice shown, by its hash */
    if (a->notice[0] && h && !strcmp(h->notice, a->notice) &&
        !strcmp(h->notice_version, a->notice_version) && h->tenant == a->tenant) {
        /* notices are immutable: the hash looked up for the last record holds */
        memcpy(e.notice_sha256, h->notice_sha256, sizeof e.notice_sha256);
        memcpy(e.notice, a->notice, sizeof e.notice);
        memcpy(e.notice_version, a->notice_version, sizeof e.notice_version);
    } else if (a->notice[0] && pt_catalog_notice_hash(app, a->tenant, a->notice,
                                                      a->notice_version,
                                                      e.notice_sha256) == PT_OK) {
        memcpy(e.notice, a->notice, sizeof e.notice);
        memcpy(e.notice_version, a->notice_version, sizeof e.notice_version);
    } else if (a->notice[0]) {
        pt_notice_rec n;
        memset(&n, 0, sizeof n);
        rc = pt_db_notice_get(c, a->tenant, a->notice, a->notice_version, &n);
        pt_notice_rec_clear(&n);
        /* remember only what was committed before this batch: a notice
         * published in the same batch could still be rolled back */
        if (rc == PT_OK && n.created_at < pt_wctx_now(w))
            pt_catalog_notice_remember(app, a->tenant, a->notice, a->notice_version, n.sha256);
        if (rc == PT_ERR_NOT_FOUND) {
            rc = pt_err_set(err, PT_ERR_POLICY, "notice",
                            "notice '%s' version '%s' is not published; POST /v1/notices first",
                            a->notice, a->notice_version);
            goto out;
        }
        if (rc != PT_OK) {
            rc = pt_err_set(err, rc, "", "cannot read notices");
            goto out;
        }
        memcpy(e.notice_sha256, n.sha256, sizeof e.notice_sha256);
        memcpy(e.notice, a->notice, sizeof e.notice);
        memcpy(e.notice_version, a->notice_version, sizeof e.notice_version);
        if (h) {
            memcpy(h->notice, a->notice, sizeof h->notice);
            memcpy(h->notice_version, a->notice_version, sizeof h->notice_version);
            memcpy(h->notice_sha256, n.sha256, sizeof h->notice_sha256);
        }
    }

    /* 3. the rules */
    int64_t now = pt_wctx_now(w);
    e.occurred_at = a->has_occurred_at ? a->occurred_at : now;
    if (e.occurred_at > now + PT_FUTURE_SKEW_MS) {
        rc = pt_err_set(err, PT_ERR_INVALID, "occurred_at", "occurred_at is in the future");
        goto out;
    }
    int hs = -1; /* the hint's slot for this purpose */
    if (h)
        for (int i = 0; i < h->n; i++)
            if (h->states[i].st.purpose_idx == a->purpose.idx) hs = i;
    if (hs >= 0) {
        sr = h->states[hs];
        rc = PT_OK;
    } else if (h && h->fresh) {
        rc = PT_ERR_NOT_FOUND; /* a subject created in this transaction has no state yet */
    } else {
        rc = pt_db_state_get(c, s.id, a->purpose.idx, &sr);
    }
    if (rc == PT_ERR_NOT_FOUND) {
        memset(&sr, 0, sizeof sr);
        memcpy(sr.subject, s.id, PT_ID_BYTES);
        sr.tenant = a->tenant;
        sr.st.purpose_idx = a->purpose.idx;
    } else if (rc != PT_OK) {
        rc = pt_err_set(err, rc, "", "cannot read consent state");
        goto out;
    }
    pt_ordered_id(e.id);
    pt_event_in in = {.action = a->action, .channels = a->channels, .occurred_at = e.occurred_at};
    memcpy(in.event, e.id, PT_ID_BYTES);
    rc = pt_policy_apply(&a->purpose.rule, &sr.st, &in, &changed, err);
    if (rc != PT_OK) goto out;

    /* 4. the event, evidence sealed */
    e.tenant = a->tenant;
    memcpy(e.subject, s.id, PT_ID_BYTES);
    memcpy(e.purpose, a->purpose_name, sizeof e.purpose);
    e.action = a->action;
    e.channels = changed && (a->action == PT_ACT_GRANT || a->action == PT_ACT_RENEW)
                     ? sr.st.channels
                     : a->channels;
    e.via = a->via;
    e.recorded_at = now;
    e.expires_at = changed && (a->action == PT_ACT_GRANT || a->action == PT_ACT_RENEW)
                       ? sr.st.expires_at
                       : 0;
    if (a->evidence) {
        size_t n = strlen(a->evidence);
        if (!have_dek) {
            rc = pt_vault_dek(app, &s, dek, err);
            if (rc != PT_OK) goto out;
            have_dek = true;
        }
        sealed = malloc(n + PT_SEAL_OVERHEAD);
        if (!sealed) {
            rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
            goto out;
        }
        pt_seal(dek, "events", "evidence", s.id, (const uint8_t *)a->evidence, n, sealed);
        e.evidence = sealed;
        e.evidence_len = n + PT_SEAL_OVERHEAD;
        pt_evidence_digest(dek, e.id, a->evidence, n, NULL, e.evidence_sha256);
    }
    rc = pt_db_event_insert(c, &e, err);
    if (rc != PT_OK) goto out;
    sr.event_seq = e.seq;
    if (changed) {
        rc = pt_db_state_put(c, &sr, err);
        if (rc != PT_OK) goto out;
    }
    pt_wctx_state_set(w, &sr);
    if (h) {
        if (hs < 0 && h->n < PT_HINT_STATES) hs = h->n++;
        if (hs >= 0) h->states[hs] = sr;
        if (have_dek && !h->have_dek) {
            memcpy(h->dek, dek, PT_KEY_BYTES);
            h->have_dek = true;
        }
    }

    /* 5. the proof log: the leaf, and the receipt it vouches for (its proof
     * is added once the batch's checkpoint is signed) */
    pt_tenant_rec t;
    if (pt_catalog_tenant_name(app, a->tenant, t.name) != PT_OK) {
        rc = pt_db_tenant_by_id(c, a->tenant, &t);
        if (rc != PT_OK) {
            rc = pt_err_set(err, rc, "", "cannot read the tenant");
            goto out;
        }
    }
    size_t leaf_len;
    char *leaf = pt_leaf_consent(t.name, pt_basis_name(a->purpose.rule.basis), &e, &leaf_len);
    if (!leaf) {
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    json_t *receipt =
        out ? pt_receipt_from_event(t.name, pt_basis_name(a->purpose.rule.basis), &e) : NULL;
    if (out && !receipt) {
        free(leaf);
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    rc = pt_wctx_log(w, a->tenant, e.id, e.seq, leaf, leaf_len, receipt, err);
    free(leaf);
    if (rc != PT_OK) {
        json_decref(receipt);
        goto out;
    }
    if (out) {
        char sid[PT_ID_STR_MAX], eid[PT_ID_STR_MAX];
        pt_id_format("sub", s.id, sid);
        pt_id_format("evt", e.id, eid);
        *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o}", "event", eid,
                         "subject", sid, "purpose", a->purpose_name, "action",
                         pt_action_name(a->action), "channels", pt_json_channels_value(e.channels),
                         "occurred_at", pt_json_time_value(e.occurred_at), "recorded_at",
                         pt_json_time_value(e.recorded_at), "expires_at",
                         pt_json_time_value(e.expires_at), "state",
                         pt_state_name(pt_policy_effective(&a->purpose.rule, &sr.st, now)),
                         "receipt", receipt);
        /* json_pack releases receipt even when it fails; the pending leaf
         * still points at it, so the op must fail (and drop that leaf) */
        if (!*out) {
            rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
            goto out;
        }
    }
    rc = PT_OK;
out:
    if (have_dek) pt_wipe(dek, sizeof dek);
    free(sealed);
    pt_subject_rec_clear(&s);
    return rc;
}

typedef struct consent_op_arg {
    pt_op *op;
    pt_consent_arg a;
} consent_op_arg;

static void consent_op_free(void *p)
{
    consent_op_arg *x = p;
    pt_consent_arg_clear(&x->a);
    free(x);
}

static pt_result consent_fn(pt_wctx *w, void *arg, pt_err *err)
{
    consent_op_arg *x = arg;
    return pt_consent_apply(w, &x->a, &x->op->out, err);
}

pt_result pt_consent_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                             pt_err *err)
{
    consent_op_arg *x = calloc(1, sizeof *x);
    if (!x) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    pt_result rc = pt_consent_parse(app, tenant, body, &x->a, err);
    if (rc != PT_OK) {
        consent_op_free(x);
        return rc;
    }
    memset(op, 0, sizeof *op);
    x->op = op;
    op->fn = consent_fn;
    op->arg = x;
    op->free_arg = consent_op_free;
    op->status = 201;
    return PT_OK;
}

/* ---- check ---- */

pt_result pt_consent_check(pt_app *app, uint32_t tenant, const char *subject,
                           const char *purpose, const char *channel, const char *recipient,
                           json_t **out, pt_err *err)
{
    uint8_t id[PT_ID_BYTES];
    pt_purpose_ref p, tp;
    int ch = 0;
    if (!subject) return pt_err_set(err, PT_ERR_INVALID, "subject", "query parameter 'subject' is required");
    if (!purpose) return pt_err_set(err, PT_ERR_INVALID, "purpose", "query parameter 'purpose' is required");
    if (pt_id_parse("sub", subject, strlen(subject), id) != 0)
        return pt_err_set(err, PT_ERR_INVALID, "subject", "subject must be a subject id (sub_...)");
    if (pt_catalog_find(app, tenant, purpose, &p) != PT_OK)
        return pt_err_set(err, PT_ERR_POLICY, "purpose", "no purpose '%.64s' in this tenant",
                          purpose);
    if (channel) {
        ch = pt_channel_parse(channel);
        if (ch < 0)
            return pt_err_set(err, PT_ERR_INVALID, "channel",
                              "channel must be one of email, sms, phone, post, web, app, push, "
                              "ads");
    }
    if (recipient) {
        char tname[PT_PURPOSE_NAME_MAX + 16];
        snprintf(tname, sizeof tname, "transfer.%s", recipient);
        if (strlen(recipient) > 48 || pt_catalog_find(app, tenant, tname, &tp) != PT_OK)
            return pt_err_set(err, PT_ERR_POLICY, "recipient",
                              "no purpose 'transfer.<recipient>' for that recipient");
    }

    int64_t now = pt_now_ms();
    pt_cache_hit hit, thit;
    pt_cache *cache = pt_app_cache(app);
    if (cache) {
        pt_cache_get(cache, id, p.idx, &hit);
        if (recipient) pt_cache_get(cache, id, tp.idx, &thit);
    } else {
        /* without a cache (CLI) the store answers the same question */
        pt_conn *c = pt_app_reader(app, err);
        if (!c) return err ? err->code : PT_ERR_STORAGE;
        pt_subject_rec s;
        pt_state_rec sr;
        memset(&hit, 0, sizeof hit);
        memset(&thit, 0, sizeof thit);
        pt_result rc = pt_db_subject_resolve(c, id, &s); /* a merged id: the survivor */
        if (rc == PT_OK) {
            hit.known = thit.known = true;
            hit.erased = thit.erased = s.erased_at != 0;
            hit.tenant = thit.tenant = s.tenant;
            memcpy(id, s.id, PT_ID_BYTES);
            pt_subject_rec_clear(&s);
            if (pt_db_state_get(c, id, p.idx, &sr) == PT_OK) {
                hit.has_state = true;
                hit.st = sr.st;
            }
            if (recipient && pt_db_state_get(c, id, tp.idx, &sr) == PT_OK) {
                thit.has_state = true;
                thit.st = sr.st;
            }
        }
        pt_app_reader_release(app, c);
        if (rc != PT_OK && rc != PT_ERR_NOT_FOUND)
            return pt_err_set(err, rc, "", "cannot read subjects");
    }
    /* another tenant's subject is, to this tenant, nobody */
    bool known = hit.known && hit.tenant == tenant;
    pt_check_out o = pt_policy_check(&p.rule, hit.has_state ? &hit.st : NULL, known, hit.erased,
                                     (uint8_t)ch, now);
    if (o.allowed && recipient) {
        pt_check_out t = pt_policy_check(&tp.rule, thit.has_state ? &thit.st : NULL, known,
                                         thit.erased, 0, now);
        if (!t.allowed) {
            o.allowed = false;
            o.reason = PT_REASON_RECIPIENT_NOT_ALLOWED;
        } else if (t.expires_at && (!o.expires_at || t.expires_at < o.expires_at)) {
            o.expires_at = t.expires_at;
        }
    }
    json_t *doc = json_pack("{s:b, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "allowed", o.allowed,
                            "subject", subject, "purpose", purpose, "basis",
                            pt_basis_name(o.basis), "expires_at", pt_json_time_value(o.expires_at),
                            "event",
                            o.has_event && hit.has_state ? pt_json_id_value("evt", hit.st.event)
                                                          : json_null(),
                            "reason",
                            o.allowed ? json_null() : json_string(pt_reason_name(o.reason)),
                            "checked_at", pt_json_time_value(now));
    if (channel) json_object_set_new(doc, "channel", json_string(channel));
    if (recipient) json_object_set_new(doc, "recipient", json_string(recipient));
    *out = doc;
    return PT_OK;
}

/* ---- state and history ---- */

json_t *pt_event_doc(const pt_event_rec *e, const uint8_t *dek)
{
    json_t *evidence = json_null(), *salt_v = NULL;
    if (e->evidence && dek && e->evidence_len > PT_SEAL_OVERHEAD) {
        size_t n = e->evidence_len - PT_SEAL_OVERHEAD;
        char *plain = malloc(n + 1);
        if (plain && pt_open(dek, "events", "evidence", e->subject, e->evidence, e->evidence_len,
                             (uint8_t *)plain) == PT_OK) {
            plain[n] = '\0';
            json_t *v = json_loads(plain, 0, NULL);
            if (v) evidence = v;
            /* the salt of evidence_sha256, so that the holder of the
             * evidence can re-check the digest the proof log keeps */
            uint8_t salt[PT_EVIDENCE_SALT_BYTES];
            char check[PT_SHA256_HEX], hex[2 * PT_EVIDENCE_SALT_BYTES + 1];
            pt_evidence_digest(dek, e->id, plain, n, salt, check);
            sodium_bin2hex(hex, sizeof hex, salt, sizeof salt);
            salt_v = json_string(hex);
            pt_wipe(plain, n);
        }
        free(plain);
    }
    json_t *notice = e->notice[0] ? json_pack("{s:s, s:s, s:s}", "notice", e->notice, "version",
                                              e->notice_version, "sha256", e->notice_sha256)
                                  : json_null();
    json_t *doc = json_pack("{s:o, s:o, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:I}", "event",
                     pt_json_id_value("evt", e->id), "subject", pt_json_id_value("sub", e->subject),
                     "purpose", e->purpose, "action", pt_action_name(e->action), "channels",
                     pt_json_channels_value(e->channels), "notice", notice, "collected_via",
                     pt_via_name(e->via), "evidence", evidence, "evidence_sha256",
                     e->evidence_sha256[0] ? json_string(e->evidence_sha256) : json_null(),
                     "occurred_at", pt_json_time_value(e->occurred_at), "recorded_at",
                     pt_json_time_value(e->recorded_at), "expires_at",
                     pt_json_time_value(e->expires_at), "seq", (json_int_t)e->seq);
    if (doc && salt_v) json_object_set_new(doc, "evidence_salt", salt_v);
    else json_decref(salt_v);
    return doc;
}

typedef struct states_ctx {
    pt_app *app;
    uint32_t tenant;
    int64_t now;
    json_t *arr;
    json_t *notices; /* event id hex -> notice doc, filled from history */
} states_ctx;

static int state_doc(void *ctx, const pt_state_rec *r)
{
    states_ctx *x = ctx;
    char name[PT_PURPOSE_NAME_MAX + 1];
    pt_purpose_ref p;
    if (pt_catalog_name(x->app, x->tenant, r->st.purpose_idx, name, &p) != PT_OK) return 0;
    char eid[PT_ID_STR_MAX];
    pt_id_format("evt", r->st.event, eid);
    json_t *notice = json_object_get(x->notices, eid);
    pt_state st = pt_policy_effective(&p.rule, &r->st, x->now);
    json_array_append_new(
        x->arr,
        json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o}", "purpose", name, "state",
                  pt_state_name(st), "channels",
                  pt_json_channels_value(st == PT_ST_GRANTED || st == PT_ST_RECONSENT_NEEDED ||
                                                 st == PT_ST_EXPIRED
                                             ? r->st.channels
                                             : 0),
                  "granted_at", pt_json_time_value(r->st.granted_at), "expires_at",
                  pt_json_time_value(r->st.expires_at), "decided_at",
                  pt_json_time_value(r->st.decided_at), "event", eid, "notice",
                  notice ? json_incref(notice) : json_null()));
    return 0;
}

static int notice_of_event(void *ctx, const pt_event_rec *e)
{
    states_ctx *x = ctx;
    if (!e->notice[0]) return 0;
    char eid[PT_ID_STR_MAX];
    pt_id_format("evt", e->id, eid);
    json_object_set_new(x->notices, eid,
                        json_pack("{s:s, s:s, s:s}", "notice", e->notice, "version",
                                  e->notice_version, "sha256", e->notice_sha256));
    return 0;
}

pt_result pt_consent_states(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                            pt_err *err)
{
    pt_subject_rec s;
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    states_ctx x = {.app = app, .tenant = tenant, .now = pt_now_ms(), .arr = json_array(),
                    .notices = json_object()};
    pt_result rc = pt_vault_subject_load(c, tenant, subject, &s, err);
    if (rc != PT_OK) goto out;
    rc = pt_db_event_list_person(c, s.id, 0, 0, notice_of_event, &x);
    if (rc == PT_OK) rc = pt_db_state_list_subject(c, s.id, state_doc, &x);
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot read consent state");
        goto out;
    }
    *out = json_pack("{s:s, s:O, s:o}", "subject", subject, "consents", x.arr, "erased",
                     json_boolean(s.erased_at != 0));
out:
    pt_subject_rec_clear(&s);
    pt_app_reader_release(app, c);
    json_decref(x.arr);
    json_decref(x.notices);
    return rc;
}

typedef struct history_ctx {
    const pt_person_keys *pk; /* the person's keys, merged ids' included */
    json_t *arr;
    uint32_t limit, n;
    int64_t last_seq;
    bool more;
} history_ctx;

static int history_doc(void *ctx, const pt_event_rec *e)
{
    history_ctx *h = ctx;
    if (h->n == h->limit) {
        h->more = true;
        return 1;
    }
    json_array_append_new(h->arr, pt_event_doc(e, pt_person_key_of(h->pk, e->subject)));
    h->n++;
    h->last_seq = e->seq;
    return 0;
}

pt_result pt_consent_history(pt_app *app, uint32_t tenant, const char *subject,
                             const char *cursor, uint32_t limit, json_t **out, pt_err *err)
{
    int64_t after = 0;
    if (cursor) {
        char *end = NULL;
        long long v = strtoll(cursor, &end, 10);
        if (!*cursor || !end || *end || v < 0)
            return pt_err_set(err, PT_ERR_INVALID, "cursor",
                              "cursor must be a next_cursor returned by a previous page");
        after = v;
    }
    pt_subject_rec s;
    pt_person_keys pk;
    memset(&pk, 0, sizeof pk);
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    history_ctx h = {.pk = &pk, .arr = json_array(), .limit = limit};
    pt_result rc = pt_vault_subject_load(c, tenant, subject, &s, err);
    if (rc != PT_OK) goto out;
    /* an erased subject's key is gone: its events stay, evidence reads
     * null; the events of ids merged into it are its history too */
    rc = pt_person_keys_load(app, c, &s, &pk, err);
    if (rc != PT_OK) goto out;
    rc = pt_db_event_list_person(c, s.id, after, limit + 1, history_doc, &h);
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot read events");
        goto out;
    }
    char next[24];
    snprintf(next, sizeof next, "%lld", (long long)h.last_seq);
    *out = json_pack("{s:s, s:O, s:o}", "subject", subject, "events", h.arr, "next_cursor",
                     h.more ? json_string(next) : json_null());
out:
    pt_person_keys_clear(&pk);
    pt_subject_rec_clear(&s);
    pt_app_reader_release(app, c);
    json_decref(h.arr);
    return rc;
}
