/* identity.h - one person across devices, inside the service layer: what
 * identity.c (links, merges) shares with rights.c (export, rectification)
 * and ledger.c (history). A merged subject keeps its own key: its events
 * keep their subject id and their evidence stays sealed under that key, so
 * reading a person's history needs the keys of every id merged into it. */
#ifndef PT_IDENTITY_H
#define PT_IDENTITY_H

#include "app.h"
#include "log.h"
#include "vault.h"

typedef struct pt_person_key {
    uint8_t id[PT_ID_BYTES];
    bool ok; /* false: shredded, or it does not unwrap */
    uint8_t dek[PT_KEY_BYTES];
} pt_person_key;

typedef struct pt_person_keys {
    size_t n;
    pt_person_key *k;      /* k[0] is the survivor itself */
    size_t naliases;
    pt_alias_rec *aliases; /* the ids merged into it, by seq */
} pt_person_keys;

/* Unwraps the keys of s (already resolved: the survivor) and of every id
 * merged into it, and lists those ids. An erased person yields no key at
 * all: what was merged into it is gone with it. Wipe with
 * pt_person_keys_clear. */
pt_result pt_person_keys_load(pt_app *app, pt_conn *c, const pt_subject_rec *s,
                              pt_person_keys *out, pt_err *err);
/* The key sealing data of subject id, or NULL. */
const uint8_t *pt_person_key_of(const pt_person_keys *pk, const uint8_t id[PT_ID_BYTES]);
void pt_person_keys_clear(pt_person_keys *pk);

/* The subject's profile, decrypted; an empty object when it has none.
 * PT_ERR_CRYPTO when it does not open. */
pt_result pt_vault_profile_open(const uint8_t dek[PT_KEY_BYTES], const pt_subject_rec *s,
                                json_t **out, pt_err *err);
/* Seals a profile document (compact, keys sorted) for s; *sealed is
 * malloc'd. An empty object seals to NULL (no profile). PT_ERR_POLICY past
 * PT_PROFILE_MAX bytes. */
pt_result pt_vault_profile_seal(const uint8_t dek[PT_KEY_BYTES], const uint8_t id[PT_ID_BYTES],
                                const json_t *profile, uint8_t **sealed, size_t *len,
                                pt_err *err);

/* Loads a subject for a write of this tenant: resolves a
 * merged id to its survivor; NOT_FOUND (field `field`) for another
 * tenant's or an unknown id, POLICY for an erased person. */
pt_result pt_identity_load_live(pt_conn *c, uint32_t tenant, const uint8_t id[PT_ID_BYTES],
                                const char *field, pt_subject_rec *out, pt_err *err);

/* A non-consent proof-log leaf of this write, and its receipt: the
 * receipt (owned by the caller's response) gets its "proof" once the
 * batch's checkpoint is signed. members: the leaf's members after
 * v, kind and tenant; the receipt repeats them, with the ref as
 * receipt_id ("<ref_prefix>_..."). */
pt_result pt_identity_log(pt_wctx *w, uint32_t tenant, const char *ref_prefix,
                          const uint8_t ref[PT_ID_BYTES], const char *kind,
                          const pt_leaf_member *members, size_t n, json_t **receipt,
                          pt_err *err);

#endif
