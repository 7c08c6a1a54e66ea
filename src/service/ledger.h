/* ledger.h - the consent event path, split so that the HTTP op, the CLI
 * and the bulk import share one implementation: parse (validation, no
 * storage) then apply (inside a write transaction). Internal to the
 * service layer. */
#ifndef PT_LEDGER_H
#define PT_LEDGER_H

#include "app.h"
#include "catalog.h"
#include "vault.h"

/* What a bulk import remembers between records of one transaction, so
 * that consecutive events of the same person cost no repeated look-ups:
 * the subject, its unwrapped key, the states written so far, the last
 * notice's hash. Only valid inside the one transaction that filled it. */
#define PT_HINT_STATES 16
typedef struct pt_subject_hint {
    bool valid;
    uint32_t tenant;
    bool by_id;
    uint8_t key_id[PT_ID_BYTES]; /* when by_id */
    pt_ident_in ident;           /* otherwise */
    pt_subject_rec s;            /* without profile */
    bool have_dek, fresh;        /* fresh: created in this transaction */
    uint8_t dek[PT_KEY_BYTES];
    int n;
    pt_state_rec states[PT_HINT_STATES];
    char notice[PT_NOTICE_NAME_MAX + 1], notice_version[PT_NOTICE_VERSION_MAX + 1];
    char notice_sha256[PT_SHA256_HEX];
} pt_subject_hint;

typedef struct pt_consent_arg {
    uint32_t tenant;
    bool has_subject;
    uint8_t subject[PT_ID_BYTES];
    pt_ident_in ident; /* when !has_subject */
    bool create_missing_subject; /* import: an unknown subject id is created */
    bool created_subject;        /* out */
    pt_subject_hint *hint;       /* bulk only, may be NULL */
    char purpose_name[PT_PURPOSE_NAME_MAX + 1];
    pt_purpose_ref purpose;
    pt_action action;
    uint8_t channels;
    char notice[PT_NOTICE_NAME_MAX + 1]; /* "" = none */
    char notice_version[PT_NOTICE_VERSION_MAX + 1];
    pt_collected_via via;
    char *evidence; /* canonical JSON, malloc'd, or NULL */
    bool has_occurred_at;
    int64_t occurred_at;
} pt_consent_arg;

pt_result pt_consent_parse(pt_app *app, uint32_t tenant, const json_t *body, pt_consent_arg *a,
                           pt_err *err);
/* out may be NULL (import: no response document). */
pt_result pt_consent_apply(pt_wctx *w, pt_consent_arg *a, json_t **out, pt_err *err);
void pt_consent_arg_clear(pt_consent_arg *a);

/* One event as the API shows it; dek NULL leaves evidence null. */
json_t *pt_event_doc(const pt_event_rec *e, const uint8_t *dek);

#endif
