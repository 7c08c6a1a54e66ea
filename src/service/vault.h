/* vault.h - personal data at rest, inside the service layer: creating a
 * subject with its random data key, sealing and opening its fields,
 * finding a subject by identifier through the blind index. Used by
 * subjects.c and ledger.c. Keys handed out (dek) are the caller's to wipe
 * with pt_wipe. */
#ifndef PT_VAULT_H
#define PT_VAULT_H

#include "app.h"
#include "core/normalize.h"

#define PT_MAX_IDENTIFIERS 16
#define PT_PROFILE_MAX 16384

typedef struct pt_ident_in {
    int type;
    char norm[PT_IDENT_MAX];
    size_t len;
} pt_ident_in;

/* Validates {type, value} at field path `where` (e.g. "identifiers[0]."). */
pt_result pt_vault_ident_parse(const json_t *obj, const char *where, pt_ident_in *out,
                               pt_err *err);

/* Inserts a new subject with its identifiers and sealed profile (profile_json
 * may be NULL). want_id: the id to use (an import from another patto), or
 * NULL for a fresh random one. Fills *out (without profile) and dek. CONFLICT names the
 * identifier already taken, never its owner. */
pt_result pt_vault_subject_create(pt_wctx *w, uint32_t tenant, const uint8_t *want_id,
                                  const pt_ident_in *ids, size_t n,
                                  const char *profile_json, pt_subject_rec *out,
                                  uint8_t dek[PT_KEY_BYTES], pt_err *err);

/* Unwraps a subject's data key. */
pt_result pt_vault_dek(pt_app *app, const pt_subject_rec *s, uint8_t dek[PT_KEY_BYTES],
                       pt_err *err);

/* Finds the subject holding an identifier in a tenant; NOT_FOUND if none. */
pt_result pt_vault_find(pt_app *app, pt_conn *c, uint32_t tenant, const pt_ident_in *id,
                        uint8_t subject[PT_ID_BYTES]);

/* Parses "sub_..." and loads the subject, answering NOT_FOUND for another
 * tenant's subject exactly as for an unknown one. An id merged into another
 * subject loads the survivor (out->id is the survivor's). out->profile is
 * malloc'd (pt_subject_rec_clear). */
pt_result pt_vault_subject_load(pt_conn *c, uint32_t tenant, const char *subject,
                                pt_subject_rec *out, pt_err *err);

/* A profile is a flat object of named fields (a-z, 0-9, '_', up to 32,
 * starting with a letter; at most 64) holding scalars or arrays of
 * scalars; err names the field. */
pt_result pt_vault_profile_check(const json_t *profile, pt_err *err);

#endif
