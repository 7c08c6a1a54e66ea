/* service.h - what the shells (HTTP, CLI) may ask of patto. Every
 * operation takes the caller's tenant, validates its input completely
 * before changing anything, and reports failures through pt_err naming the
 * field. Documents in and out are jansson values: the HTTP shell passes the
 * parsed body, the CLI builds the same document from its flags, so both
 * get the same rules and the same messages.
 *
 * Writes come in two steps: pt_X_prepare() validates and fills a pt_op;
 * the caller runs it with pt_app_write() (blocking) or pt_app_submit()
 * (asynchronous, HTTP). On success op->out holds the response document and
 * op->status the HTTP status. Ownership: the caller owns the op and calls
 * pt_op_clear() when done; documents returned through json_t **out are
 * owned by the caller. */
#ifndef PT_SERVICE_H
#define PT_SERVICE_H

#include <stdio.h>

#include "app.h"
#include "catalog.h"

/* ---- tenants and keys (tenants.c) ---- */
pt_result pt_tenant_create_prepare(pt_app *app, const char *name, pt_op *op, pt_err *err);
pt_result pt_tenant_find(pt_app *app, const char *name, pt_tenant_rec *out, pt_err *err);
pt_result pt_tenant_list(pt_app *app, json_t **out, pt_err *err);
pt_result pt_tenant_get(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);
/* body: {role, label?} */
pt_result pt_key_create_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                pt_err *err);
pt_result pt_key_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);
pt_result pt_key_revoke_prepare(pt_app *app, uint32_t tenant, const char *key_id, pt_op *op,
                                pt_err *err);

/* ---- catalog (purposes.c, notices.c) ---- */
pt_result pt_purpose_put_prepare(pt_app *app, uint32_t tenant, const char *name,
                                 const json_t *body, pt_op *op, pt_err *err);
pt_result pt_purpose_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);
pt_result pt_purpose_get(pt_app *app, uint32_t tenant, const char *name, json_t **out,
                         pt_err *err);
pt_result pt_notice_publish_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                    pt_err *err);
pt_result pt_notice_get(pt_app *app, uint32_t tenant, const char *notice, const char *version,
                        json_t **out, pt_err *err);
pt_result pt_notice_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);

/* ---- subjects (subjects.c) ---- */
pt_result pt_subject_create_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                    pt_err *err);
pt_result pt_subject_get(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                         pt_err *err);
pt_result pt_subject_lookup(pt_app *app, uint32_t tenant, const char *type, const char *value,
                            json_t **out, pt_err *err);

/* ---- consents (ledger.c) ---- */
pt_result pt_consent_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                             pt_err *err);
/* channel and recipient may be NULL. Served from the node's cache when
 * serving, from the store otherwise. */
pt_result pt_consent_check(pt_app *app, uint32_t tenant, const char *subject,
                           const char *purpose, const char *channel, const char *recipient,
                           json_t **out, pt_err *err);
pt_result pt_consent_states(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                            pt_err *err);
/* cursor: NULL or the next_cursor of a previous page; limit 1..1000. */
pt_result pt_consent_history(pt_app *app, uint32_t tenant, const char *subject,
                             const char *cursor, uint32_t limit, json_t **out, pt_err *err);

/* ---- bulk (transfer.c) ---- */
typedef enum pt_import_format { PT_IMPORT_JSONL, PT_IMPORT_CSV } pt_import_format;
typedef struct pt_import_stats {
    uint64_t events;
    uint64_t subjects_created;
} pt_import_stats;
/* All or nothing: one transaction; the first bad record aborts with its
 * line number in err. */
pt_result pt_import(pt_app *app, uint32_t tenant, FILE *in, pt_import_format fmt,
                    pt_import_stats *stats, pt_err *err);
/* Every event of the tenant as JSON Lines, oldest first, evidence
 * decrypted (it is the tenant's own data). */
pt_result pt_export(pt_app *app, uint32_t tenant, FILE *out, uint64_t *count, pt_err *err);

/* ---- migration between stores (migrate.c) ---- */
typedef struct pt_migrate_stats {
    uint64_t tenants, keys, purposes, notices, subjects, identifiers, events, states;
    uint64_t log_leaves, log_nodes, log_heads, log_keys; /* the proof log, verbatim */
} pt_migrate_stats;
/* Copies a whole installation from the store at url `from` to the one at
 * `to` (e.g. sqlite:patto.db to postgres://...), in one transaction on the
 * destination: all or nothing. The destination must hold no tenant,
 * subject or event (CONFLICT otherwise); the source is locked against
 * writers while it is read. Sealed data moves as it is, so kr (which must
 * be the source's keyring: INVALID otherwise) keeps working on the copy.
 * Event seqs are the destination's own; their order is kept. The proof log
 * (leaves, subtree hashes, signed heads, signing keys) is copied as it is,
 * so that receipts and checkpoints issued before keep verifying. An
 * interrupted migration leaves the destination as it was (at most its
 * schema created): run it again. st may be NULL; it is zeroed on failure. */
pt_result pt_migrate(const char *from, const char *to, const pt_keyring *kr, pt_migrate_stats *st,
                     pt_err *err);

#endif
