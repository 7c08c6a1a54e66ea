/* store.h - the one storage interface of patto. Services speak only this;
 * each backend (sqlite.c now, PostgreSQL later) implements pt_store_ops.
 * SQL dialect details (pragmas, upsert syntax, WITHOUT ROWID) stay inside
 * the backend.
 *
 * Model: a pt_store is an opened database (shared, thread-safe); a pt_conn
 * is one connection, used by one thread at a time. Writes happen inside
 * pt_tx_begin/commit; commit returns only once the transaction is durable
 * (SQLite: WAL + synchronous=FULL). A backend maps its failures to
 * PT_ERR_STORAGE (transient), PT_ERR_STORAGE_FULL (disk full) and
 * PT_ERR_STORAGE_FATAL (fsync/IO error: the caller must stop the server).
 *
 * Ownership: records passed in are borrowed for the call. Records passed
 * to callbacks are borrowed for the duration of the callback only; a
 * callback returning non-zero stops the iteration (the op then returns
 * PT_OK). Strings in records are NUL-terminated fixed buffers unless the
 * field is a pointer+length, documented per field. */
#ifndef PT_STORE_H
#define PT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "core/policy.h"
#include "core/result.h"

#define PT_TENANT_NAME_MAX 64  /* [a-z0-9][a-z0-9_-]{0,62} */
#define PT_LABEL_MAX 128
#define PT_TITLE_MAX 256
#define PT_DESCRIPTION_MAX 4096
#define PT_DPV_MAX 256
#define PT_NOTICE_NAME_MAX 64
#define PT_NOTICE_VERSION_MAX 32
#define PT_LANGUAGE_MAX 16      /* BCP 47 tag, e.g. "it", "en-GB" */
/* fits, JSON-escaped, in the default 64 KiB request body */
#define PT_NOTICE_TEXT_MAX 49152


typedef struct pt_tenant_rec {
    uint32_t id;
    char name[PT_TENANT_NAME_MAX + 1];
    int64_t created_at;
} pt_tenant_rec;

typedef struct pt_key_rec {
    uint8_t id[PT_ID_BYTES];
    uint32_t tenant;
    pt_role role;
    uint8_t hash[32]; /* pt_secret_hash of the secret; the secret is never stored */
    char label[PT_LABEL_MAX + 1];
    int64_t created_at;
    int64_t revoked_at; /* 0 = live */
} pt_key_rec;

typedef struct pt_purpose_rec {
    uint32_t tenant;
    uint16_t idx; /* dense per tenant, assigned once, never reused */
    char name[PT_PURPOSE_NAME_MAX + 1];
    pt_purpose_rule rule;
    char title[PT_TITLE_MAX + 1];
    char description[PT_DESCRIPTION_MAX + 1];
    char dpv[PT_DPV_MAX + 1]; /* W3C DPV purpose term, may be "" */
    /* legitimate interest: the published assessment (a notice) it rests on;
     * "" for other bases */
    char assessment[PT_NOTICE_NAME_MAX + 1];
    char assessment_version[PT_NOTICE_VERSION_MAX + 1];
    char assessment_sha256[PT_SHA256_HEX];
    int64_t created_at;
    int64_t updated_at;
} pt_purpose_rec;

typedef struct pt_notice_rec {
    uint32_t tenant;
    uint8_t id[PT_ID_BYTES];
    char notice[PT_NOTICE_NAME_MAX + 1];
    char version[PT_NOTICE_VERSION_MAX + 1];
    char language[PT_LANGUAGE_MAX + 1];
    char sha256[PT_SHA256_HEX];
    char *text; /* insert: borrowed. get: malloc'd, caller frees with pt_notice_rec_clear */
    size_t text_len;
    int64_t created_at;
} pt_notice_rec;
void pt_notice_rec_clear(pt_notice_rec *n);

typedef struct pt_subject_rec {
    int64_t row; /* backend row number, increases with insertion (cache sync) */
    uint8_t id[PT_ID_BYTES];
    uint32_t tenant;
    uint32_t kek_epoch;
    uint8_t wrapped_dek[PT_WRAPPED_KEY_BYTES];
    uint8_t *profile; /* sealed JSON, may be NULL; get: malloc'd, freed by pt_subject_rec_clear */
    size_t profile_len;
    int64_t created_at;
    int64_t updated_at;
    int64_t erased_at; /* 0 = not erased */
} pt_subject_rec;
void pt_subject_rec_clear(pt_subject_rec *s);

typedef struct pt_ident_rec {
    uint32_t tenant;
    int type; /* pt_ident_type */
    uint8_t blind[PT_BLIND_BYTES];
    uint8_t subject[PT_ID_BYTES];
    const uint8_t *value; /* sealed normalised value; borrowed in both directions */
    size_t value_len;
    int64_t created_at;
} pt_ident_rec;

typedef struct pt_event_rec {
    int64_t seq; /* set by event_insert; global commit order */
    uint8_t id[PT_ID_BYTES];
    uint32_t tenant;
    uint8_t subject[PT_ID_BYTES];
    char purpose[PT_PURPOSE_NAME_MAX + 1];
    pt_action action;
    uint8_t channels;
    char notice[PT_NOTICE_NAME_MAX + 1]; /* "" = none */
    char notice_version[PT_NOTICE_VERSION_MAX + 1];
    char notice_sha256[PT_SHA256_HEX];
    pt_collected_via via;
    const uint8_t *evidence; /* sealed evidence JSON (personal data: IPs, agents); borrowed */
    size_t evidence_len;
    char evidence_sha256[PT_SHA256_HEX]; /* hash of the clear evidence JSON: the proof survives erasure */
    int64_t occurred_at;
    int64_t recorded_at;
    int64_t expires_at; /* 0 = none */
} pt_event_rec;

typedef struct pt_state_rec {
    uint8_t subject[PT_ID_BYTES];
    uint32_t tenant;
    int64_t event_seq;
    pt_consent_state st;
} pt_state_rec;

/* The proof log: one RFC 9162 Merkle tree per tenant (service/log.c). */
#define PT_LOG_HASH 32
#define PT_CHECKPOINT_MAX 2048 /* a signed checkpoint note, NUL included */

typedef struct pt_leaf_rec {
    uint32_t tenant;
    uint64_t idx;                /* position in the tenant's tree, from 0 */
    uint8_t ref[PT_ID_BYTES];    /* the event, key or notice the leaf records */
    uint8_t hash[PT_LOG_HASH];   /* SHA-256(0x00 || data) */
    const uint8_t *data;         /* canonical leaf bytes; borrowed both ways */
    size_t len;
} pt_leaf_rec;

typedef struct pt_log_head_rec {
    uint32_t tenant;
    uint64_t size;                       /* leaves under the last signed checkpoint */
    uint8_t root[PT_LOG_HASH];
    int64_t event_seq;                   /* highest event seq logged (catch-up) */
    char checkpoint[PT_CHECKPOINT_MAX];  /* the signed note, NUL-terminated */
    int64_t signed_at;
} pt_log_head_rec;

typedef struct pt_store pt_store;
typedef struct pt_conn pt_conn;

typedef int (*pt_tenant_cb)(void *ctx, const pt_tenant_rec *r);
typedef int (*pt_key_cb)(void *ctx, const pt_key_rec *r);
typedef int (*pt_notice_cb)(void *ctx, const pt_notice_rec *r);
typedef int (*pt_purpose_cb)(void *ctx, const pt_purpose_rec *r);
typedef int (*pt_subject_cb)(void *ctx, const pt_subject_rec *r);
typedef int (*pt_ident_cb)(void *ctx, const pt_ident_rec *r);
typedef int (*pt_event_cb)(void *ctx, const pt_event_rec *r);
typedef int (*pt_state_cb)(void *ctx, const pt_state_rec *r);
typedef int (*pt_leaf_cb)(void *ctx, const pt_leaf_rec *r);
typedef int (*pt_log_head_cb)(void *ctx, const pt_log_head_rec *r);
typedef int (*pt_log_key_cb)(void *ctx, const char *verifier, int64_t created_at);
typedef int (*pt_log_node_cb)(void *ctx, uint32_t tenant, unsigned level, uint64_t idx,
                              const uint8_t hash[PT_LOG_HASH]);

/* Opens the database named by url: "sqlite:PATH", "file:PATH" or a plain
 * PATH. create != 0 allows creating a new file. Runs pending migrations
 * (each in its own transaction, so an interrupted one rolls back). */
pt_result pt_store_open(const char *url, int create, pt_store **out, pt_err *err);
/* Accepts NULL. All connections must be closed first. */
void pt_store_close(pt_store *s);
int pt_store_schema_version(pt_store *s);

pt_result pt_conn_open(pt_store *s, pt_conn **out, pt_err *err);
void pt_conn_close(pt_conn *c); /* accepts NULL */

/* What a connection is for, so that a backend can size its caches: readers
 * stay small (the node's memory goes to the consent cache), the writer
 * keeps its hot index pages, a bulk import gets a large cache for its one
 * long transaction. A hint; a backend may ignore it. */
typedef enum pt_conn_role { PT_CONN_READER = 0, PT_CONN_WRITER, PT_CONN_BULK } pt_conn_role;
void pt_conn_tune(pt_conn *c, pt_conn_role role);

/* Transactions. begin takes the write lock at once (SQLite BEGIN IMMEDIATE)
 * so that a batch never fails half-way on lock upgrade. Savepoints nest
 * inside: a failing job of a group commit is rolled back alone. */
pt_result pt_tx_begin(pt_conn *c, pt_err *err);
pt_result pt_tx_commit(pt_conn *c, pt_err *err);
void pt_tx_rollback(pt_conn *c);
pt_result pt_tx_savepoint(pt_conn *c, pt_err *err);
pt_result pt_tx_release(pt_conn *c, pt_err *err);
void pt_tx_rollback_to(pt_conn *c); /* rolls back to and releases the savepoint */

/* Rows inserted, updated or deleted through this connection so far, or
 * -1 if the backend cannot tell. Lets the writer see whether a failed op
 * wrote anything before it failed. */
int64_t pt_db_changes(pt_conn *c);

/* A number that changes when another connection (or process) commits;
 * lets a node notice writes it did not make. */
pt_result pt_db_data_version(pt_conn *c, int64_t *out);

/* Installation metadata (key fingerprint, schema notes). value: NUL-terminated. */
pt_result pt_db_meta_get(pt_conn *c, const char *key, char *value, size_t cap); /* NOT_FOUND */
pt_result pt_db_meta_set(pt_conn *c, const char *key, const char *value);

pt_result pt_db_tenant_insert(pt_conn *c, pt_tenant_rec *r, pt_err *err); /* sets r->id; CONFLICT */
pt_result pt_db_tenant_by_name(pt_conn *c, const char *name, pt_tenant_rec *out);  /* NOT_FOUND */
pt_result pt_db_tenant_by_id(pt_conn *c, uint32_t id, pt_tenant_rec *out);         /* NOT_FOUND */
pt_result pt_db_tenant_list(pt_conn *c, pt_tenant_cb cb, void *ctx);

pt_result pt_db_key_insert(pt_conn *c, const pt_key_rec *r, pt_err *err);
/* tenant 0 = every tenant's keys (for the node's key cache). */
pt_result pt_db_key_list(pt_conn *c, uint32_t tenant, pt_key_cb cb, void *ctx);
pt_result pt_db_key_revoke(pt_conn *c, uint32_t tenant, const uint8_t id[PT_ID_BYTES],
                           int64_t at); /* NOT_FOUND if absent, other tenant or already revoked */

/* Insert or replace by (tenant, name); idx must be set by the caller. */
pt_result pt_db_purpose_put(pt_conn *c, const pt_purpose_rec *r, pt_err *err);
pt_result pt_db_purpose_get(pt_conn *c, uint32_t tenant, const char *name, pt_purpose_rec *out);
/* tenant 0 = all tenants, ordered by tenant then idx. */
pt_result pt_db_purpose_list(pt_conn *c, uint32_t tenant, pt_purpose_cb cb, void *ctx);

pt_result pt_db_notice_insert(pt_conn *c, const pt_notice_rec *r, pt_err *err); /* CONFLICT */
pt_result pt_db_notice_get(pt_conn *c, uint32_t tenant, const char *notice, const char *version,
                           pt_notice_rec *out); /* NOT_FOUND; out->text malloc'd */
/* Without text (text NULL) to keep listings small. */
pt_result pt_db_notice_list(pt_conn *c, uint32_t tenant, pt_notice_cb cb, void *ctx);

pt_result pt_db_subject_insert(pt_conn *c, pt_subject_rec *r, pt_err *err); /* sets r->row; CONFLICT on id */
pt_result pt_db_subject_get(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out); /* NOT_FOUND */
pt_result pt_db_subject_update_profile(pt_conn *c, const uint8_t id[PT_ID_BYTES],
                                       const uint8_t *profile, size_t len, int64_t at);
/* Subjects with row > after_row, ascending, without profile (profile NULL). */
pt_result pt_db_subject_scan(pt_conn *c, int64_t after_row, pt_subject_cb cb, void *ctx);

pt_result pt_db_ident_insert(pt_conn *c, const pt_ident_rec *r, pt_err *err); /* CONFLICT if taken */
pt_result pt_db_ident_lookup(pt_conn *c, uint32_t tenant, int type,
                             const uint8_t blind[PT_BLIND_BYTES],
                             uint8_t subject[PT_ID_BYTES]); /* NOT_FOUND */
pt_result pt_db_ident_list(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_ident_cb cb,
                           void *ctx);

pt_result pt_db_event_insert(pt_conn *c, pt_event_rec *r, pt_err *err); /* sets r->seq */
/* Events of one subject with seq > after_seq, ascending, at most limit (0 = all). */
pt_result pt_db_event_list_subject(pt_conn *c, const uint8_t subject[PT_ID_BYTES],
                                   int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx);
/* Events of one tenant (0 = all) with seq > after_seq, ascending. */
pt_result pt_db_event_list_tenant(pt_conn *c, uint32_t tenant, int64_t after_seq,
                                  uint32_t limit, pt_event_cb cb, void *ctx);
pt_result pt_db_event_max_seq(pt_conn *c, int64_t *out);

pt_result pt_db_state_get(pt_conn *c, const uint8_t subject[PT_ID_BYTES], uint16_t purpose_idx,
                          pt_state_rec *out); /* NOT_FOUND */
/* Insert or replace by (subject, purpose_idx). */
pt_result pt_db_state_put(pt_conn *c, const pt_state_rec *r, pt_err *err);
pt_result pt_db_state_list_subject(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_state_cb cb,
                                   void *ctx);
/* Every state row with event_seq > after_seq (0 = all), for loading and
 * re-syncing a node's cache. */
pt_result pt_db_state_scan(pt_conn *c, int64_t after_seq, pt_state_cb cb, void *ctx);

/* ---- the proof log ----
 * Leaves and the hashes of complete subtrees are append-only: nothing
 * updates or deletes them (erasure never touches the log: leaves hold no
 * personal data). A head is replaced once per group commit, in the same
 * transaction as the leaves it covers. */
pt_result pt_db_log_leaf_insert(pt_conn *c, const pt_leaf_rec *r, pt_err *err); /* CONFLICT */
/* Hash of the complete subtree [idx << level, (idx + 1) << level): level 0
 * reads the leaf's hash, levels >= 1 the node table. put takes level >= 1. */
pt_result pt_db_log_node_put(pt_conn *c, uint32_t tenant, unsigned level, uint64_t idx,
                             const uint8_t hash[PT_LOG_HASH], pt_err *err);
pt_result pt_db_log_node_get(pt_conn *c, uint32_t tenant, unsigned level, uint64_t idx,
                             uint8_t hash[PT_LOG_HASH]); /* NOT_FOUND */
/* Every stored node (level >= 1) of a tenant's tree, by level then idx:
 * what a copy of the log (migrate.c) carries besides the leaves. */
pt_result pt_db_log_node_list(pt_conn *c, uint32_t tenant, pt_log_node_cb cb, void *ctx);
/* The leaf recording ref; NOT_FOUND. The record passed to cb is borrowed. */
pt_result pt_db_log_leaf_by_ref(pt_conn *c, uint32_t tenant, const uint8_t ref[PT_ID_BYTES],
                                pt_leaf_cb cb, void *ctx);
/* Leaves start <= idx < end, ascending. */
pt_result pt_db_log_leaf_list(pt_conn *c, uint32_t tenant, uint64_t start, uint64_t end,
                              pt_leaf_cb cb, void *ctx);
pt_result pt_db_log_head_get(pt_conn *c, uint32_t tenant, pt_log_head_rec *out); /* NOT_FOUND */
pt_result pt_db_log_head_put(pt_conn *c, const pt_log_head_rec *r, pt_err *err);
pt_result pt_db_log_head_list(pt_conn *c, pt_log_head_cb cb, void *ctx); /* by tenant */
/* Every public key that ever signed checkpoints stays listed. add ignores
 * a key already there. */
pt_result pt_db_log_key_add(pt_conn *c, const char *verifier, int64_t at, pt_err *err);
pt_result pt_db_log_key_list(pt_conn *c, pt_log_key_cb cb, void *ctx);

/* ---- identity across devices (service/identity.c) ----
 * A merge folds one subject into another (the survivor). The merged id
 * keeps answering: an alias row maps it to the survivor, one hop (a
 * survivor merged in turn has its aliases repointed). The merged subject's
 * row stays, with its key: its events keep their subject id and their
 * evidence stays sealed under that key. */
typedef struct pt_alias_rec {
    int64_t seq;                   /* set by alias_insert; grows with commits (cache sync) */
    uint8_t id[PT_ID_BYTES];       /* the merged subject's id */
    uint32_t tenant;
    uint8_t subject[PT_ID_BYTES];  /* the survivor it answers as */
    uint8_t merge[PT_ID_BYTES];    /* the merge: ref of its proof-log leaf */
    int64_t merged_at;
} pt_alias_rec;
typedef int (*pt_alias_cb)(void *ctx, const pt_alias_rec *r);

/* Like subject_get, but an id merged into another subject loads the
 * survivor (out->id is then the survivor's). NOT_FOUND. */
pt_result pt_db_subject_resolve(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out);
pt_result pt_db_alias_insert(pt_conn *c, pt_alias_rec *r, pt_err *err); /* sets r->seq; CONFLICT */
pt_result pt_db_alias_get(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_alias_rec *out); /* NOT_FOUND */
/* Every alias answering as `from` now answers as `to` (from merged into to). */
pt_result pt_db_alias_repoint(pt_conn *c, const uint8_t from[PT_ID_BYTES],
                              const uint8_t to[PT_ID_BYTES], pt_err *err);
/* The aliases answering as subject, by seq. */
pt_result pt_db_alias_list(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_alias_cb cb,
                           void *ctx);
/* Every alias with seq > after_seq, ascending (cache sync, migration). */
pt_result pt_db_alias_scan(pt_conn *c, int64_t after_seq, pt_alias_cb cb, void *ctx);
/* Gives an identifier to another subject, its value sealed anew for it
 * (value borrowed). NOT_FOUND if no such identifier. */
pt_result pt_db_ident_move(pt_conn *c, uint32_t tenant, int type,
                           const uint8_t blind[PT_BLIND_BYTES], const uint8_t subject[PT_ID_BYTES],
                           const uint8_t *value, size_t len, pt_err *err);
/* Deletes every consent state row of a subject (its consents moved to a survivor). */
pt_result pt_db_state_delete_subject(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_err *err);
/* Events of a subject and of every id merged into it, seq > after_seq,
 * ascending, at most limit (0 = all): a person's whole history. */
pt_result pt_db_event_list_person(pt_conn *c, const uint8_t subject[PT_ID_BYTES],
                                  int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx);

/* ---- erasure, backups, key rotation (service/erasure.c, service/backup.c) ---- */
/* Crypto-shreds a live subject in this transaction: its wrapped data key
 * and sealed profile become NULL, erased_at and updated_at are set, and
 * its identifier rows (sealed values and blind-index entries) are deleted.
 * The subject row and its events stay (the ledger's proof). *identifiers
 * (may be NULL) gets the number of identifier rows deleted. NOT_FOUND if
 * there is no such subject or it is erased already. */
pt_result pt_db_subject_erase(pt_conn *c, const uint8_t id[PT_ID_BYTES], int64_t at,
                              int64_t *identifiers, pt_err *err);
/* Every erasure gets the next erasure seq (writers are serialised, so seq
 * order is commit order). Subjects with erasure seq > after_seq, ascending,
 * without profile: lets a node see erasures made by another process or
 * node (cache sync). */
typedef int (*pt_erased_cb)(void *ctx, const pt_subject_rec *r, int64_t erased_seq);
pt_result pt_db_subject_erased_scan(pt_conn *c, int64_t after_seq, pt_erased_cb cb, void *ctx);
/* Replaces a live subject's wrapped data key (KEK rotation). NOT_FOUND if
 * absent or erased. */
pt_result pt_db_subject_rewrap(pt_conn *c, const uint8_t id[PT_ID_BYTES], uint32_t epoch,
                               const uint8_t wrapped[PT_WRAPPED_KEY_BYTES], pt_err *err);
/* Called outside a transaction, after a commit that deleted personal data:
 * drops the old copies of changed pages that the backend can reach.
 * SQLite: a WAL checkpoint with TRUNCATE (with secure_delete on, the
 * database file then holds zeros where the data was, and the -wal file is
 * empty). PostgreSQL: starts a VACUUM of subjects and identifiers on a
 * connection of its own and returns (see docs/architecture.md for what it
 * cannot reach). */
pt_result pt_db_scrub(pt_conn *c, pt_err *err);
/* A consistent online copy of the whole database into the new file dest,
 * fsynced (SQLite: VACUUM INTO). PostgreSQL: PT_ERR_INVALID (pg_dump or
 * PITR is the tool). */
pt_result pt_db_backup(pt_conn *c, const char *dest, pt_err *err);
/* Replaces this database's whole content with that of the database file
 * src, in one transaction (SQLite's backup API). PostgreSQL:
 * PT_ERR_INVALID. */
pt_result pt_db_restore(pt_conn *c, const char *src, pt_err *err);

/* ---- statistics of anonymised people (service/anonymise.c) ----
 * A record holds no identifier: only generalised quasi-identifiers (see
 * core/kanon.h), k-anonymous as a table, and the person's purpose states
 * at anonymisation (a compact JSON object, purpose -> state name). */
#define PT_STAT_AGE_MAX 8
#define PT_STAT_REGION_MAX 48
#define PT_STAT_SEX_MAX 7
#define PT_STAT_STATES_MAX 4096
typedef struct pt_stat_rec {
    uint32_t tenant;
    char age[PT_STAT_AGE_MAX + 1];
    char region[PT_STAT_REGION_MAX + 1];
    char sex[PT_STAT_SEX_MAX + 1];
    const char *states; /* borrowed both ways */
    int64_t created_at;
} pt_stat_rec;
typedef int (*pt_stat_cb)(void *ctx, const pt_stat_rec *r);
pt_result pt_db_stats_insert(pt_conn *c, const pt_stat_rec *r, pt_err *err);
/* Records of the tenant with exactly these generalised values. */
pt_result pt_db_stats_count(pt_conn *c, uint32_t tenant, const char *age, const char *region,
                            const char *sex, int64_t *out);
pt_result pt_db_stats_list(pt_conn *c, uint32_t tenant, pt_stat_cb cb, void *ctx);

#endif
