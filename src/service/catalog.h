/* catalog.h - the node's in-memory copy of the catalog (purposes) and of
 * the API keys, both small and read on every request. Reloaded whole from
 * the store after a commit that changed them; readers take a snapshot
 * under a read lock. Internal to the service layer; shells use the
 * functions in service.h. */
#ifndef PT_CATALOG_H
#define PT_CATALOG_H

#include <stdint.h>

#include "app.h"

typedef struct pt_purpose_ref {
    uint16_t idx;
    pt_purpose_rule rule;
} pt_purpose_ref;

/* Defined in app.c, which owns the snapshots. */
pt_result pt_catalog_find(pt_app *app, uint32_t tenant, const char *name, pt_purpose_ref *out);

/* The purpose of a tenant with that idx (name and rule). */
pt_result pt_catalog_name(pt_app *app, uint32_t tenant, uint16_t idx,
                          char name[PT_PURPOSE_NAME_MAX + 1], pt_purpose_ref *out);

/* The tenant's name, from the catalog snapshot. */
pt_result pt_catalog_tenant_name(pt_app *app, uint32_t tenant, char name[PT_TENANT_NAME_MAX + 1]);
/* Hashes of published notice versions, remembered once committed: texts
 * are immutable, so a remembered hash never goes stale. */
pt_result pt_catalog_notice_hash(pt_app *app, uint32_t tenant, const char *notice,
                                 const char *version, char sha256[PT_SHA256_HEX]);
void pt_catalog_notice_remember(pt_app *app, uint32_t tenant, const char *notice,
                                const char *version, const char sha256[PT_SHA256_HEX]);

typedef struct pt_principal {
    uint32_t tenant;
    pt_role role;
    uint8_t key_id[PT_ID_BYTES];
} pt_principal;

/* API keys look like "patto_<26 chars key id>_<32 chars secret>". */
#define PT_APIKEY_PREFIX "patto_"
#define PT_APIKEY_SECRET_BYTES 20
#define PT_APIKEY_MAX 80

/* PT_ERR_UNAUTHORIZED for anything but a live key. Constant-time on the secret. */
pt_result pt_auth(pt_app *app, const char *token, size_t len, pt_principal *out);

#endif
