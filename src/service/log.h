/* log.h - the proof log (docs/log.md): one RFC 9162 Merkle tree per
 * tenant, a leaf per ledger event in commit order, a signed checkpoint per
 * group commit, receipts with inclusion proofs.
 *
 * Write side. The writer appends through a pt_log_tx, which lives for one
 * transaction: append leaves (leaf row + the subtree hashes each completes),
 * seal (sign one checkpoint per tenant touched, written as the tenant's head
 * in the same transaction), build proofs for the receipts, then done() once
 * the transaction committed or rolled back. The node's pt_log remembers each
 * tenant's right edge so that an append needs no reads; a tx checks it
 * against the stored head first (another node or an import may have
 * appended) and reloads it, O(log n) reads, when it differs.
 *
 * Ownership: pt_log is owned by pt_app; a pt_log_tx by its writer. Leaves
 * and JSON passed in are borrowed; documents returned through json_t **
 * belong to the caller. */
#ifndef PT_LOG_H
#define PT_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/keyring.h"
#include "core/result.h"
#include "store/store.h"

typedef struct pt_app pt_app;
typedef struct pt_log pt_log;
typedef struct pt_log_tx pt_log_tx;

#define PT_LOG_NAME_MAX 64
#define PT_LOG_LEAF_MAX 4096 /* a leaf is a few hundred bytes */
#define PT_LOG_LEAVES_PAGE 1000

/* name: the log name of docs/log.md ([A-Za-z0-9._/-], no '+'). */
pt_log *pt_log_new(const pt_keyring *kr, const char *name);
void pt_log_free(pt_log *log); /* accepts NULL; wipes the signing key */
bool pt_log_name_valid(const char *name);
const char *pt_log_verifier(const pt_log *log); /* "<name>+<id>+<key>" */

/* ---- leaves (canonical JSON, docs/log.md); malloc'd, NUL-terminated ---- */
char *pt_leaf_consent(const char *tenant, const char *basis, const pt_event_rec *e, size_t *len);
char *pt_leaf_key(const char *kind, const char *tenant, const uint8_t key[PT_ID_BYTES],
                  const char *role, int64_t at, size_t *len); /* role NULL for revocations */
char *pt_leaf_notice(const char *tenant, const pt_notice_rec *n, size_t *len);

/* A leaf of another kind: {"v":1,"kind":K,"tenant":T, then the members in
 * the order given}. A member is a string (str), null (str and raw NULL) or
 * already-serialised compact JSON (raw, e.g. an array of field names; the
 * caller makes it canonical). Used by the subject-rights services for
 * merges, erasures, rectifications, identifier links. */
typedef struct pt_leaf_member {
    const char *key;
    const char *str;
    const char *raw;
} pt_leaf_member;
char *pt_leaf_build(const char *kind, const char *tenant, const pt_leaf_member *m, size_t n,
                    size_t *len);

/* The receipt document (Kantara CR v1.1 / ISO/IEC 27560 fields) of a
 * consent leaf, without proof. NULL if the leaf is not a consent leaf. */
json_t *pt_receipt_from_leaf(const char *leaf, size_t len);
/* The same document built straight from the event (the write path: no
 * parse). Equal to pt_receipt_from_leaf of pt_leaf_consent's leaf; the
 * unit and black-box tests hold the two to that. */
json_t *pt_receipt_from_event(const char *tenant, const char *basis, const pt_event_rec *e);

/* ---- write side ---- */
/* keep_nodes: remember the subtree hashes made in this tx, so that proofs
 * for its receipts need no reads (off for bulk imports). */
pt_log_tx *pt_log_tx_new(pt_log *log, pt_conn *c, bool keep_nodes);
pt_result pt_log_tx_append(pt_log_tx *t, uint32_t tenant, const uint8_t ref[PT_ID_BYTES],
                           int64_t event_seq, const void *leaf, size_t len, uint64_t *idx,
                           pt_err *err);
/* Signs a checkpoint for every tenant appended to and writes its head.
 * tenant names come from name_of. */
typedef pt_result (*pt_tenant_name_fn)(void *ctx, uint32_t tenant, char name[PT_TENANT_NAME_MAX + 1]);
pt_result pt_log_tx_seal(pt_log_tx *t, int64_t now, pt_tenant_name_fn name_of, void *ctx,
                         pt_err *err);
/* After seal: the proof bundle of docs/log.md for leaf idx of tenant. */
json_t *pt_log_tx_proof(pt_log_tx *t, uint32_t tenant, uint64_t idx, const void *leaf,
                        size_t len);
/* Ends the tx: committed installs the new right edges in the node's log. */
void pt_log_tx_done(pt_log_tx *t, bool committed);

/* ---- read side (API), on a pooled read connection ---- */
pt_result pt_log_checkpoint(pt_app *app, uint32_t tenant, char **text, pt_err *err);
pt_result pt_log_keys(pt_app *app, json_t **out, pt_err *err);
/* event != NULL: by event id, against the latest checkpoint; otherwise
 * leaf index in the tree of `size` leaves (0 = the latest size). */
pt_result pt_log_inclusion(pt_app *app, uint32_t tenant, const char *event, uint64_t index,
                           uint64_t size, json_t **out, pt_err *err);
pt_result pt_log_consistency(pt_app *app, uint32_t tenant, uint64_t from, uint64_t to,
                             json_t **out, pt_err *err);
pt_result pt_log_leaves(pt_app *app, uint32_t tenant, uint64_t start, uint64_t end, json_t **out,
                        pt_err *err);
/* A fresh receipt for a consent event, proof against the latest checkpoint. */
pt_result pt_receipt_get(pt_app *app, uint32_t tenant, const char *event, json_t **out,
                         pt_err *err);

/* Appends the events recorded before the log existed (databases created
 * by an older patto), so that every event has a leaf. Run at start. */
pt_result pt_log_catch_up(pt_app *app, pt_err *err);

#endif
