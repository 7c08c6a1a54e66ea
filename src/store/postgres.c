/* postgres.c - the PostgreSQL backend of store.h, through libpq.
 *
 * A pg_store is a connection url ("postgres://..." or "postgresql://...");
 * pt_store_open connects once to run the migrations and keeps only the url.
 * Each pg_conn is one PGconn, used by one thread at a time (the services
 * pool them). Connections ask for synchronous_commit=on when the server
 * has it off, so that COMMIT returns only once the WAL is flushed.
 *
 * Statements are prepared lazily, once per connection (PQprepare), and run
 * with binary parameters and binary results. Scans use single-row mode, so
 * nothing is materialised however many rows match. While a scan is being
 * read the connection cannot run another statement: a callback that calls
 * back into the store on the same connection is served by a second
 * connection opened on demand, which is only correct outside a
 * transaction (inside one such a call fails). A callback that stops a
 * scan early makes us read and drop the remaining rows: cancelling would
 * abort an enclosing transaction.
 *
 * Writers are serialised like SQLite's BEGIN IMMEDIATE: tx_begin takes a
 * transaction-level advisory lock. That also makes the identity columns
 * events.seq and subjects.row grow in commit order, which the services'
 * cache sync relies on (a rolled-back insert leaves a gap, which they
 * tolerate). Under that lock a node's writer numbers its events itself,
 * and a bulk connection reserves seqs and rows in blocks: both move the
 * sequence before COMMIT, so the order is kept (see "Deferred writes" and
 * "Bulk mode").
 *
 * Round trips are what a write costs here. The writer (PT_CONN_WRITER)
 * sends the writes nobody waits for in pipeline mode, with the next
 * statement that needs an answer ("Deferred writes"); an import or a
 * migration (PT_CONN_BULK) sends its rows with COPY in chunks ("Bulk
 * mode"). Every COMMIT that wrote also NOTIFYs patto_changes, which the
 * other nodes' sync connections LISTEN to (pg_db_data_version).
 *
 * Unlike SQLite, PostgreSQL aborts the whole transaction when a statement
 * fails; inserts therefore use ON CONFLICT DO NOTHING and report a
 * conflict from the row count, leaving the transaction usable as SQLite
 * does. Any other failure is undone by the services' per-job savepoint,
 * which is sent lazily, pipelined with the job's first statement.
 *
 * A lost connection (server restart, failover) fails the call with
 * PT_ERR_STORAGE and is re-established on next use outside a transaction;
 * a read or a BEGIN that finds the connection dead is retried once at
 * once, since nothing was done yet. A COMMIT cut off by a lost connection
 * is reported as PT_ERR_STORAGE although it may have been applied.
 *
 * Error details name the kind of object and the operation, or a SQLSTATE,
 * never a value, and never the server's message text (it can quote
 * values: personal data or key material). */
#include "backend.h"

#include <libpq-fe.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Type OIDs, fixed by PostgreSQL (catalog/pg_type.h is a server header). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

/* Advisory lock keys ("patto" + a number), one space for both. */
#define LOCK_MIGRATE "7022353773412335617"
#define LOCK_WRITER "7022353773412335618"

/* Like SQLite's busy_timeout: a writer waits this long for another one. */
#define LOCK_TIMEOUT "'5s'"

/* ------------------------------------------------------------------------
 * Schema migrations. Append only, and in step with sqlite.c: entry i is
 * schema version i + 1 on both backends. Each pending migration runs in
 * its own transaction together with its schema_migrations row, under an
 * advisory lock, so two nodes starting together migrate once. */

static const char *const MIGRATION_1[] = {
    /* Optional times ("0 = none") are stored as NULL; every integer is
     * BIGINT. Text that is sorted is COLLATE "C": byte order, as SQLite. */
    "CREATE TABLE meta("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL)",

    "CREATE TABLE tenants("
    "  id BIGINT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at BIGINT NOT NULL)",

    "CREATE TABLE api_keys("
    "  id BYTEA PRIMARY KEY,"
    "  tenant_id BIGINT NOT NULL REFERENCES tenants(id),"
    "  role BIGINT NOT NULL,"
    "  hash BYTEA NOT NULL,"
    "  label TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  revoked_at BIGINT)",
    "CREATE INDEX api_keys_tenant ON api_keys(tenant_id)",

    "CREATE TABLE purposes("
    "  tenant_id BIGINT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  idx BIGINT NOT NULL,"
    "  basis TEXT NOT NULL,"
    "  validity_days BIGINT NOT NULL,"
    "  renew_before_days BIGINT NOT NULL,"
    "  channels BIGINT NOT NULL,"
    "  revision BIGINT NOT NULL,"
    "  title TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  dpv TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  PRIMARY KEY(tenant_id, name),"
    "  UNIQUE(tenant_id, idx))",

    "CREATE TABLE notices("
    "  tenant_id BIGINT NOT NULL,"
    "  notice TEXT COLLATE \"C\" NOT NULL,"
    "  version TEXT COLLATE \"C\" NOT NULL,"
    "  id BYTEA NOT NULL UNIQUE,"
    "  language TEXT NOT NULL,"
    "  text TEXT NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  PRIMARY KEY(tenant_id, notice, version))",

    /* row only grows: subjects are never deleted (erasure clears
     * wrapped_dek/profile and sets erased_at). */
    "CREATE TABLE subjects("
    "  \"row\" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id BYTEA NOT NULL UNIQUE,"
    "  tenant_id BIGINT NOT NULL,"
    "  kek_epoch BIGINT NOT NULL,"
    "  wrapped_dek BYTEA,"
    "  profile BYTEA,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  erased_at BIGINT)",

    "CREATE TABLE identifiers("
    "  tenant_id BIGINT NOT NULL,"
    "  type BIGINT NOT NULL,"
    "  blind BYTEA NOT NULL,"
    "  subject_id BYTEA NOT NULL,"
    "  value BYTEA,"
    "  created_at BIGINT NOT NULL,"
    "  PRIMARY KEY(tenant_id, type, blind))",
    "CREATE INDEX identifiers_subject ON identifiers(subject_id)",

    /* seq: the ledger is append-only; writers are serialised (see the
     * top), so seq order is commit order. */
    "CREATE TABLE events("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id BYTEA NOT NULL UNIQUE,"
    "  tenant_id BIGINT NOT NULL,"
    "  subject_id BYTEA NOT NULL,"
    "  purpose TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  channels BIGINT NOT NULL,"
    "  notice TEXT,"
    "  notice_version TEXT,"
    "  notice_sha256 TEXT,"
    "  collected_via TEXT NOT NULL,"
    "  evidence BYTEA,"
    "  evidence_sha256 TEXT,"
    "  occurred_at BIGINT NOT NULL,"
    "  recorded_at BIGINT NOT NULL,"
    "  expires_at BIGINT)",
    "CREATE INDEX events_subject ON events(subject_id, seq)",
    "CREATE INDEX events_tenant ON events(tenant_id, seq)",

    /* No index on event_seq, as in sqlite.c. */
    "CREATE TABLE consent_state("
    "  subject_id BYTEA NOT NULL,"
    "  purpose_idx BIGINT NOT NULL,"
    "  tenant_id BIGINT NOT NULL,"
    "  state BIGINT NOT NULL,"
    "  channels BIGINT NOT NULL,"
    "  revision BIGINT NOT NULL,"
    "  decided_at BIGINT NOT NULL,"
    "  granted_at BIGINT,"
    "  expires_at BIGINT,"
    "  event_id BYTEA NOT NULL,"
    "  event_seq BIGINT NOT NULL,"
    "  PRIMARY KEY(subject_id, purpose_idx))",

    /* PostgreSQL-only: bumped by every change to tenants, keys, purposes
     * and notices, so that data_version sees them (events and subjects
     * are seen through their growing seq and row). */
    "CREATE TABLE changes("
    "  id BIGINT PRIMARY KEY CHECK (id = 1),"
    "  n BIGINT NOT NULL)",
    "INSERT INTO changes(id, n) VALUES(1, 0)",
    NULL,
};

/* The proof log (docs/log.md), as sqlite.c's migration 2. Append-only:
 * leaves, and the hashes of complete subtrees of level >= 1 (level 0 is
 * the leaf's own hash); one head per tenant; every signing key. */
static const char *const MIGRATION_2[] = {
    "CREATE TABLE log_leaves("
    "  tenant_id BIGINT NOT NULL,"
    "  idx BIGINT NOT NULL,"
    "  ref BYTEA NOT NULL,"
    "  hash BYTEA NOT NULL,"
    "  data BYTEA NOT NULL,"
    "  PRIMARY KEY(tenant_id, idx))",
    "CREATE UNIQUE INDEX log_leaves_ref ON log_leaves(tenant_id, ref)",

    "CREATE TABLE log_nodes("
    "  tenant_id BIGINT NOT NULL,"
    "  level BIGINT NOT NULL,"
    "  idx BIGINT NOT NULL,"
    "  hash BYTEA NOT NULL,"
    "  PRIMARY KEY(tenant_id, level, idx))",

    "CREATE TABLE log_heads("
    "  tenant_id BIGINT PRIMARY KEY,"
    "  size BIGINT NOT NULL,"
    "  root BYTEA NOT NULL,"
    "  event_seq BIGINT NOT NULL,"
    "  checkpoint TEXT NOT NULL,"
    "  signed_at BIGINT NOT NULL)",

    "CREATE TABLE log_keys("
    "  verifier TEXT COLLATE \"C\" PRIMARY KEY,"
    "  created_at BIGINT NOT NULL)",
    NULL,
};

/* Identity across devices, as sqlite.c's migration 3: a merged subject's
 * id answers as the survivor (one hop). seq grows with commits (writers
 * are serialised), so nodes follow merges by seq. */
static const char *const MIGRATION_3[] = {
    "CREATE TABLE subject_aliases("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id BYTEA NOT NULL UNIQUE,"
    "  tenant_id BIGINT NOT NULL,"
    "  subject_id BYTEA NOT NULL,"
    "  merge_id BYTEA NOT NULL,"
    "  merged_at BIGINT NOT NULL)",
    "CREATE INDEX subject_aliases_subject ON subject_aliases(subject_id)",
    NULL,
};

/* Erasure, as sqlite.c's migration 4: each erasure takes the next
 * erased_seq (max + 1 under the writer lock: commit order), so that a node
 * sees erasures made through another node (cache sync). */
static const char *const MIGRATION_4[] = {
    "ALTER TABLE subjects ADD COLUMN erased_seq BIGINT",
    "CREATE UNIQUE INDEX subjects_erased ON subjects(erased_seq) WHERE erased_seq IS NOT NULL",
    NULL,
};

/* Statistics of anonymised people, as sqlite.c's migration 5. */
static const char *const MIGRATION_5[] = {
    "CREATE TABLE stats_records("
    "  tenant_id BIGINT NOT NULL,"
    "  age TEXT NOT NULL,"
    "  region TEXT NOT NULL,"
    "  sex TEXT NOT NULL,"
    "  states TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL)",
    "CREATE INDEX stats_records_group ON stats_records(tenant_id, age, region, sex)",
    NULL,
};

/* A legitimate interest's assessment, as sqlite.c's migration 6. */
static const char *const MIGRATION_6[] = {
    "ALTER TABLE purposes ADD COLUMN assessment TEXT",
    "ALTER TABLE purposes ADD COLUMN assessment_version TEXT",
    "ALTER TABLE purposes ADD COLUMN assessment_sha256 TEXT",
    NULL,
};

static const char *const *const MIGRATIONS[] = {MIGRATION_1, MIGRATION_2, MIGRATION_3,
                                                  MIGRATION_4, MIGRATION_5, MIGRATION_6};
#define SCHEMA_VERSION ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* ------------------------------------------------------------------------
 * Prepared statements. */

enum stmt_id {
    S_DATA_VERSION,
    S_META_GET,
    S_META_SET,
    S_TENANT_INSERT,
    S_TENANT_BY_NAME,
    S_TENANT_BY_ID,
    S_TENANT_LIST,
    S_KEY_INSERT,
    S_KEY_LIST_ALL,
    S_KEY_LIST_TENANT,
    S_KEY_REVOKE,
    S_PURPOSE_PUT,
    S_PURPOSE_GET,
    S_PURPOSE_LIST_ALL,
    S_PURPOSE_LIST_TENANT,
    S_NOTICE_INSERT,
    S_NOTICE_EXISTS,
    S_NOTICE_GET,
    S_NOTICE_LIST,
    S_SUBJECT_INSERT,
    S_SUBJECT_GET,
    S_SUBJECT_UPDATE_PROFILE,
    S_SUBJECT_SCAN,
    S_IDENT_INSERT,
    S_IDENT_LOOKUP,
    S_IDENT_LIST,
    S_EVENT_INSERT,
    S_EVENT_INSERT_SEQ,
    S_EVENT_LIST_SUBJECT,
    S_EVENT_LIST_ALL,
    S_EVENT_LIST_TENANT,
    S_EVENT_MAX_SEQ,
    S_STATE_GET,
    S_STATE_PUT,
    S_STATE_LIST_SUBJECT,
    S_STATE_SCAN_ALL,
    S_STATE_SCAN_AFTER,
    S_LOG_LEAF_INSERT,
    S_LOG_NODE_PUT,
    S_LOG_NODE_GET,
    S_LOG_LEAF_HASH,
    S_LOG_LEAF_BY_REF,
    S_LOG_LEAF_LIST,
    S_LOG_HEAD_GET,
    S_LOG_HEAD_PUT,
    S_LOG_HEAD_LIST,
    S_LOG_KEY_ADD,
    S_LOG_KEY_LIST,
    S_LOG_NODE_LIST,
    S_SUBJECT_RESOLVE,
    S_ALIAS_INSERT,
    S_ALIAS_GET,
    S_ALIAS_REPOINT,
    S_ALIAS_LIST,
    S_ALIAS_SCAN,
    S_IDENT_MOVE,
    S_STATE_DELETE_SUBJECT,
    S_EVENT_LIST_PERSON,
    S_SUBJECT_ERASE,
    S_IDENT_ERASE,
    S_SUBJECT_ERASED_SCAN,
    S_SUBJECT_REWRAP,
    S_STATS_INSERT,
    S_STATS_COUNT,
    S_STATS_LIST,
    S__COUNT
};

#define KEY_COLS "id, tenant_id, role, hash, label, created_at, revoked_at"
#define PURPOSE_COLS                                                                               \
    "tenant_id, name, idx, basis, validity_days, renew_before_days, channels, revision, title, "   \
    "description, dpv, created_at, updated_at, assessment, assessment_version, assessment_sha256"
#define NOTICE_COLS "tenant_id, id, notice, version, language, sha256, created_at"
#define SUBJECT_COLS                                                                               \
    "\"row\", id, tenant_id, kek_epoch, wrapped_dek, created_at, updated_at, erased_at"
#define IDENT_COLS "tenant_id, type, blind, subject_id, value, created_at"
#define EVENT_COLS                                                                                 \
    "seq, id, tenant_id, subject_id, purpose, action, channels, notice, notice_version, "          \
    "notice_sha256, collected_via, evidence, evidence_sha256, occurred_at, recorded_at, "          \
    "expires_at"
#define STATE_COLS                                                                                 \
    "subject_id, tenant_id, event_seq, purpose_idx, state, channels, revision, decided_at, "       \
    "granted_at, expires_at, event_id"

#define LEAF_COLS "tenant_id, idx, ref, hash, data"
#define HEAD_COLS "tenant_id, size, root, event_seq, checkpoint, signed_at"
#define ALIAS_COLS "seq, id, tenant_id, subject_id, merge_id, merged_at"

/* Prefix of the statements that change what data_version must see. The
 * CTE runs whatever the main statement does (a no-op conflict only costs
 * the other nodes a needless reload). */
#define BUMP "WITH bump AS (UPDATE changes SET n = n + 1 WHERE id = 1) "

/* types: one letter per parameter, i = int8, t = text, b = bytea. */
typedef struct stmt_def {
    const char *sql;
    const char *types;
} stmt_def;

static const stmt_def SQL[S__COUNT] = {
    /* Every component only grows, so the sum changes whenever one does.
     * The proof log's heads are counted too (a tree never shrinks): a
     * commit that only appends old events to the log is seen as well. */
    [S_DATA_VERSION] = {"SELECT (SELECT coalesce(max(seq), 0) FROM events) + "
                        "(SELECT coalesce(max(\"row\"), 0) FROM subjects) + "
                        "(SELECT n FROM changes WHERE id = 1) + "
                        "(SELECT coalesce(sum(size), 0)::bigint FROM log_heads)",
                        ""},

    [S_META_GET] = {"SELECT value FROM meta WHERE key = $1", "t"},
    [S_META_SET] = {"INSERT INTO meta(key, value) VALUES($1, $2) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    "tt"},

    /* id NULL: the next one (max + 1, as SQLite's rowid; writers hold the
     * writer lock). A set id (restore) is kept. */
    [S_TENANT_INSERT] = {BUMP
                         "INSERT INTO tenants(id, name, created_at) "
                         "SELECT coalesce($1, (SELECT coalesce(max(id), 0) + 1 FROM tenants)), "
                         "$2, $3 ON CONFLICT DO NOTHING RETURNING id",
                         "iti"},
    [S_TENANT_BY_NAME] = {"SELECT id, name, created_at FROM tenants WHERE name = $1", "t"},
    [S_TENANT_BY_ID] = {"SELECT id, name, created_at FROM tenants WHERE id = $1", "i"},
    [S_TENANT_LIST] = {"SELECT id, name, created_at FROM tenants ORDER BY id", ""},

    [S_KEY_INSERT] = {BUMP "INSERT INTO api_keys(" KEY_COLS ") VALUES($1, $2, $3, $4, $5, $6, $7) "
                           "ON CONFLICT DO NOTHING",
                      "biibtii"},
    [S_KEY_LIST_ALL] = {"SELECT " KEY_COLS " FROM api_keys ORDER BY tenant_id, created_at, id", ""},
    [S_KEY_LIST_TENANT] = {"SELECT " KEY_COLS " FROM api_keys WHERE tenant_id = $1 "
                           "ORDER BY created_at, id",
                           "i"},
    [S_KEY_REVOKE] = {BUMP "UPDATE api_keys SET revoked_at = $3 "
                           "WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
                      "bii"},

    /* idx is assigned once: an update that tries to move it matches no row
     * (the WHERE) and is reported as a conflict. created_at is kept. */
    [S_PURPOSE_PUT] = {BUMP "INSERT INTO purposes(" PURPOSE_COLS ") "
                            "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                            "$15, $16) "
                            "ON CONFLICT(tenant_id, name) DO UPDATE SET "
                            "basis = excluded.basis, validity_days = excluded.validity_days, "
                            "renew_before_days = excluded.renew_before_days, "
                            "channels = excluded.channels, revision = excluded.revision, "
                            "title = excluded.title, description = excluded.description, "
                            "dpv = excluded.dpv, updated_at = excluded.updated_at, "
                            "assessment = excluded.assessment, "
                            "assessment_version = excluded.assessment_version, "
                            "assessment_sha256 = excluded.assessment_sha256 "
                            "WHERE purposes.idx = excluded.idx",
                       "ititiiiitttiittt"},
    [S_PURPOSE_GET] = {"SELECT " PURPOSE_COLS " FROM purposes WHERE tenant_id = $1 AND name = $2",
                       "it"},
    [S_PURPOSE_LIST_ALL] = {"SELECT " PURPOSE_COLS " FROM purposes ORDER BY tenant_id, idx", ""},
    [S_PURPOSE_LIST_TENANT] = {"SELECT " PURPOSE_COLS " FROM purposes WHERE tenant_id = $1 "
                               "ORDER BY idx",
                               "i"},

    [S_NOTICE_INSERT] = {BUMP "INSERT INTO notices(tenant_id, id, notice, version, language, "
                              "sha256, created_at, text) VALUES($1, $2, $3, $4, $5, $6, $7, $8) "
                              "ON CONFLICT DO NOTHING",
                         "ibttttit"},
    [S_NOTICE_EXISTS] = {"SELECT 1 FROM notices WHERE tenant_id = $1 AND notice = $2 "
                         "AND version = $3",
                         "itt"},
    [S_NOTICE_GET] = {"SELECT " NOTICE_COLS ", text FROM notices "
                      "WHERE tenant_id = $1 AND notice = $2 AND version = $3",
                      "itt"},
    [S_NOTICE_LIST] = {"SELECT " NOTICE_COLS " FROM notices WHERE tenant_id = $1 "
                       "ORDER BY notice, created_at, version",
                       "i"},

    [S_SUBJECT_INSERT] = {"INSERT INTO subjects(id, tenant_id, kek_epoch, wrapped_dek, profile, "
                          "created_at, updated_at, erased_at) "
                          "VALUES($1, $2, $3, $4, $5, $6, $7, $8) "
                          "ON CONFLICT DO NOTHING RETURNING \"row\"",
                          "biibbiii"},
    [S_SUBJECT_GET] = {"SELECT " SUBJECT_COLS ", profile FROM subjects WHERE id = $1", "b"},
    [S_SUBJECT_UPDATE_PROFILE] = {"UPDATE subjects SET profile = $2, updated_at = $3 WHERE id = $1",
                                  "bbi"},
    [S_SUBJECT_SCAN] = {"SELECT " SUBJECT_COLS " FROM subjects WHERE \"row\" > $1 ORDER BY \"row\"",
                        "i"},

    [S_IDENT_INSERT] = {"INSERT INTO identifiers(" IDENT_COLS ") VALUES($1, $2, $3, $4, $5, $6) "
                        "ON CONFLICT DO NOTHING",
                        "iibbbi"},
    [S_IDENT_LOOKUP] = {"SELECT subject_id FROM identifiers "
                        "WHERE tenant_id = $1 AND type = $2 AND blind = $3",
                        "iib"},
    [S_IDENT_LIST] = {"SELECT " IDENT_COLS " FROM identifiers WHERE subject_id = $1 "
                      "ORDER BY type, created_at",
                      "b"},

    [S_EVENT_INSERT] = {"INSERT INTO events(id, tenant_id, subject_id, purpose, action, channels, "
                        "notice, notice_version, notice_sha256, collected_via, evidence, "
                        "evidence_sha256, occurred_at, recorded_at, expires_at) "
                        "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
                        "ON CONFLICT DO NOTHING RETURNING seq",
                        "bibttittttbtiii"},
    /* the writer's deferred insert: seq given (see "Deferred writes"); a
     * conflict is an error, never a row silently not written */
    [S_EVENT_INSERT_SEQ] = {"INSERT INTO events(seq, id, tenant_id, subject_id, purpose, action, "
                            "channels, notice, notice_version, notice_sha256, collected_via, "
                            "evidence, evidence_sha256, occurred_at, recorded_at, expires_at) "
                            "OVERRIDING SYSTEM VALUE VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                            "$10, $11, $12, $13, $14, $15, $16)",
                            "ibibttittttbtiii"},
    /* LIMIT NULL is no limit: limit 0 ("all") is bound as NULL. */
    [S_EVENT_LIST_SUBJECT] = {"SELECT " EVENT_COLS " FROM events "
                              "WHERE subject_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                              "bii"},
    [S_EVENT_LIST_ALL] = {"SELECT " EVENT_COLS " FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                          "ii"},
    [S_EVENT_LIST_TENANT] = {"SELECT " EVENT_COLS " FROM events "
                             "WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                             "iii"},
    [S_EVENT_MAX_SEQ] = {"SELECT coalesce(max(seq), 0) FROM events", ""},

    [S_STATE_GET] = {"SELECT " STATE_COLS " FROM consent_state "
                     "WHERE subject_id = $1 AND purpose_idx = $2",
                     "bi"},
    [S_STATE_PUT] = {"INSERT INTO consent_state(subject_id, tenant_id, event_seq, purpose_idx, "
                     "state, channels, revision, decided_at, granted_at, expires_at, event_id) "
                     "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                     "ON CONFLICT(subject_id, purpose_idx) DO UPDATE SET "
                     "tenant_id = excluded.tenant_id, event_seq = excluded.event_seq, "
                     "state = excluded.state, channels = excluded.channels, "
                     "revision = excluded.revision, decided_at = excluded.decided_at, "
                     "granted_at = excluded.granted_at, expires_at = excluded.expires_at, "
                     "event_id = excluded.event_id",
                     "biiiiiiiiib"},
    [S_STATE_LIST_SUBJECT] = {"SELECT " STATE_COLS " FROM consent_state WHERE subject_id = $1 "
                              "ORDER BY purpose_idx",
                              "b"},
    [S_STATE_SCAN_ALL] = {"SELECT " STATE_COLS " FROM consent_state", ""},
    [S_STATE_SCAN_AFTER] = {"SELECT " STATE_COLS " FROM consent_state WHERE event_seq > $1", "i"},

    /* Conflicts on (tenant, idx) and on (tenant, ref) both insert nothing. */
    [S_LOG_LEAF_INSERT] = {"INSERT INTO log_leaves(" LEAF_COLS ") VALUES($1, $2, $3, $4, $5) "
                           "ON CONFLICT DO NOTHING",
                           "iibbb"},
    /* 1 when the node is there now with this hash: newly inserted, or
     * already written by a retried append (the SELECT sees the table as
     * it was before the INSERT); 0 when it holds another hash. */
    [S_LOG_NODE_PUT] = {"WITH ins AS (INSERT INTO log_nodes(tenant_id, level, idx, hash) "
                        "VALUES($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1) "
                        "SELECT (SELECT count(*) FROM ins) + (SELECT count(*) FROM log_nodes "
                        "WHERE tenant_id = $1 AND level = $2 AND idx = $3 AND hash = $4)",
                        "iiib"},
    [S_LOG_NODE_GET] = {"SELECT hash FROM log_nodes WHERE tenant_id = $1 AND level = $2 "
                        "AND idx = $3",
                        "iii"},
    [S_LOG_LEAF_HASH] = {"SELECT hash FROM log_leaves WHERE tenant_id = $1 AND idx = $2", "ii"},
    [S_LOG_LEAF_BY_REF] = {"SELECT " LEAF_COLS " FROM log_leaves WHERE tenant_id = $1 AND ref = $2",
                           "ib"},
    [S_LOG_LEAF_LIST] = {"SELECT " LEAF_COLS " FROM log_leaves "
                         "WHERE tenant_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
                         "iii"},
    [S_LOG_HEAD_GET] = {"SELECT " HEAD_COLS " FROM log_heads WHERE tenant_id = $1", "i"},
    [S_LOG_HEAD_PUT] = {"INSERT INTO log_heads(" HEAD_COLS ") VALUES($1, $2, $3, $4, $5, $6) "
                        "ON CONFLICT(tenant_id) DO UPDATE SET size = excluded.size, "
                        "root = excluded.root, event_seq = excluded.event_seq, "
                        "checkpoint = excluded.checkpoint, signed_at = excluded.signed_at",
                        "iibiti"},
    [S_LOG_HEAD_LIST] = {"SELECT " HEAD_COLS " FROM log_heads ORDER BY tenant_id", ""},
    [S_LOG_KEY_ADD] = {"INSERT INTO log_keys(verifier, created_at) VALUES($1, $2) "
                       "ON CONFLICT DO NOTHING",
                       "ti"},
    [S_LOG_KEY_LIST] = {"SELECT verifier, created_at FROM log_keys ORDER BY created_at, verifier",
                        ""},
    [S_LOG_NODE_LIST] = {"SELECT tenant_id, level, idx, hash FROM log_nodes WHERE tenant_id = $1 "
                         "ORDER BY level, idx",
                         "i"},

    [S_SUBJECT_RESOLVE] = {"SELECT " SUBJECT_COLS ", profile FROM subjects WHERE id = "
                           "coalesce((SELECT subject_id FROM subject_aliases WHERE id = $1), $1)",
                           "b"},
    /* bumps the change counter, so that other nodes' caches learn of merges */
    [S_ALIAS_INSERT] = {BUMP "INSERT INTO subject_aliases(id, tenant_id, subject_id, merge_id, "
                        "merged_at) VALUES($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING seq",
                        "bibbi"},
    [S_ALIAS_GET] = {"SELECT " ALIAS_COLS " FROM subject_aliases WHERE id = $1", "b"},
    [S_ALIAS_REPOINT] = {"UPDATE subject_aliases SET subject_id = $2 WHERE subject_id = $1", "bb"},
    [S_ALIAS_LIST] = {"SELECT " ALIAS_COLS " FROM subject_aliases WHERE subject_id = $1 "
                      "ORDER BY seq",
                      "b"},
    [S_ALIAS_SCAN] = {"SELECT " ALIAS_COLS " FROM subject_aliases WHERE seq > $1 ORDER BY seq", "i"},
    [S_IDENT_MOVE] = {"UPDATE identifiers SET subject_id = $4, value = $5 "
                      "WHERE tenant_id = $1 AND type = $2 AND blind = $3",
                      "iibbb"},
    [S_STATE_DELETE_SUBJECT] = {"DELETE FROM consent_state WHERE subject_id = $1", "b"},
    [S_EVENT_LIST_PERSON] = {"SELECT " EVENT_COLS " FROM events WHERE subject_id IN "
                             "(SELECT $1 UNION ALL SELECT id FROM subject_aliases "
                             "WHERE subject_id = $1) AND seq > $2 ORDER BY seq LIMIT $3",
                             "bii"},

    /* erasure: the key and the profile go, the row stays (rows only
     * grow); bumps the change counter, so that other nodes look */
    [S_SUBJECT_ERASE] = {BUMP "UPDATE subjects SET wrapped_dek = NULL, profile = NULL, "
                              "erased_at = $2, updated_at = $2, erased_seq = (SELECT "
                              "coalesce(max(erased_seq), 0) + 1 FROM subjects WHERE erased_seq "
                              "IS NOT NULL) WHERE id = $1 AND erased_at IS NULL",
                         "bi"},
    [S_IDENT_ERASE] = {"DELETE FROM identifiers WHERE subject_id = $1", "b"},
    [S_SUBJECT_ERASED_SCAN] = {"SELECT " SUBJECT_COLS ", erased_seq FROM subjects "
                               "WHERE erased_seq IS NOT NULL AND erased_seq > $1 ORDER BY erased_seq",
                               "i"},
    [S_SUBJECT_REWRAP] = {"UPDATE subjects SET kek_epoch = $2, wrapped_dek = $3 "
                          "WHERE id = $1 AND erased_at IS NULL",
                          "bib"},
    [S_STATS_INSERT] = {"INSERT INTO stats_records(tenant_id, age, region, sex, states, "
                        "created_at) VALUES($1, $2, $3, $4, $5, $6)",
                        "itttti"},
    [S_STATS_COUNT] = {"SELECT count(*) FROM stats_records "
                       "WHERE tenant_id = $1 AND age = $2 AND region = $3 AND sex = $4",
                       "ittt"},
    [S_STATS_LIST] = {"SELECT tenant_id, age, region, sex, states, created_at FROM stats_records "
                      "WHERE tenant_id = $1",
                      "i"},
};

/* ------------------------------------------------------------------------
 * Types. */

typedef struct pg_store {
    struct pt_store base; /* first: the dispatch table */
    char *url;
    int schema_version;
    /* This process's NOTIFY payload: its sync connection ignores its own
     * commits (the writer has put them in the caches already). */
    char token[24];
    /* The VACUUM after erasures (pg_db_scrub) runs on a thread and
     * connection of its own, never on the writer; one at a time, a request
     * made meanwhile runs it once more. */
    pthread_mutex_t vac_mu;
    pthread_t vac_thread;
    bool vac_joinable, vac_running, vac_again, vac_stop;
    PGcancel *vac_cancel;
} pg_store;

struct bulk; /* bulk mode: see "Bulk mode" below */

typedef struct pg_conn {
    struct pt_conn base; /* first: the dispatch table */
    pg_store *store;
    PGconn *pg;
    bool in_tx; /* between our BEGIN and COMMIT/ROLLBACK */
    /* Savepoints are sent lazily (see pg_tx_savepoint): */
    bool sp_wanted;       /* SAVEPOINT j is to be sent before the next statement */
    bool sp_open;         /* SAVEPOINT j was sent and not released */
    bool release_pending; /* RELEASE of the last savepoint, sent with the next SAVEPOINT */
    bool streaming;       /* a scan is being read: the connection is busy */
    /* Set once an I/O or corruption error was seen: this connection then
     * refuses new transactions (the caller must stop the server anyway). */
    bool fatal;
    bool wrote;           /* this transaction ran a write: its COMMIT notifies */
    /* deferred writes (PT_CONN_WRITER), see "Deferred writes" */
    bool defer;
    int npend, pendcap;   /* commands sent in pipeline mode, answers unread */
    uint8_t *pend;        /* what a good answer of each is */
    pt_result dfail;      /* a deferred write failed: the transaction is lost */
    pt_err dfail_err;
    int64_t seq_next;     /* the next events.seq this transaction gives (0: nextval) */
    int64_t seq_first;    /* seq_next at BEGIN */
    /* data_version (the sync connection): LISTENs to patto_changes */
    bool listening;       /* LISTEN sent on this session */
    bool dv_known;        /* dv holds the value read at dv_at */
    int64_t dv, dv_at;
    struct bulk *bulk;    /* set by pt_conn_tune(c, PT_CONN_BULK) */
    struct pg_conn *side; /* serves calls made from a scan's callback */
    bool prepared[S__COUNT];
} pg_conn;

static pt_result conn_new(pg_store *s, pg_conn **out, pt_err *err);
static void pg_conn_close(pt_conn *base);

/* ------------------------------------------------------------------------
 * Error mapping. */

static bool conn_bad(const pg_conn *c)
{
    return !c->pg || PQstatus(c->pg) != CONNECTION_OK;
}

/* Maps a failed result (NULL: libpq could not even send). what names the
 * operation. Only the SQLSTATE is quoted, never the message. */
static pt_result fail_res(pg_conn *c, const PGresult *res, pt_err *err, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *sev = res ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    if (sev && strcmp(sev, "PANIC") == 0) {
        c->fatal = true;
        return pt_err_set(err, PT_ERR_STORAGE_FATAL, "",
                          "%s: the database server panicked; stop and check it", what);
    }
    if (!state) {
        if (conn_bad(c))
            return pt_err_set(err, PT_ERR_STORAGE, "", "%s: database connection lost", what);
        if (!res || PQresultStatus(res) == PGRES_FATAL_ERROR)
            return pt_err_set(err, PT_ERR_INTERNAL, "", "%s: database client error", what);
        return pt_err_set(err, PT_ERR_INTERNAL, "", "%s: unexpected database result", what);
    }
    if (strcmp(state, "23505") == 0) return pt_err_set(err, PT_ERR_CONFLICT, "", "already exists");
    /* The only foreign key is api_keys.tenant_id. */
    if (strcmp(state, "23503") == 0)
        return pt_err_set(err, PT_ERR_INVALID, "tenant", "%s: unknown tenant", what);
    if (strncmp(state, "23", 2) == 0)
        return pt_err_set(err, PT_ERR_INVALID, "", "%s: violates a database constraint", what);
    if (strcmp(state, "53100") == 0)
        return pt_err_set(err, PT_ERR_STORAGE_FULL, "", "%s: disk full", what);
    if (strcmp(state, "53200") == 0)
        return pt_err_set(err, PT_ERR_NOMEM, "", "%s: database out of memory", what);
    if (strcmp(state, "54000") == 0 || strcmp(state, "22001") == 0)
        return pt_err_set(err, PT_ERR_TOO_LARGE, "", "%s: value too large for the database", what);
    if (strncmp(state, "58", 2) == 0 || strcmp(state, "XX001") == 0 ||
        strcmp(state, "XX002") == 0) {
        c->fatal = true;
        return pt_err_set(err, PT_ERR_STORAGE_FATAL, "",
                          "%s: database I/O error or corruption (SQLSTATE %s); stop and check it",
                          what, state);
    }
    /* connection, resources, operator intervention, lock or serialization
     * failures: transient */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strncmp(state, "40", 2) == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "55006") == 0 || conn_bad(c))
        return pt_err_set(err, PT_ERR_STORAGE, "", "%s: database unavailable (SQLSTATE %s)", what,
                          state);
    if (strncmp(state, "22", 2) == 0)
        return pt_err_set(err, PT_ERR_INVALID, "", "%s: value not accepted by the database", what);
    /* e.g. PostgreSQL 15 lets only the owner create tables in "public" */
    if (strcmp(state, "42501") == 0)
        return pt_err_set(err, PT_ERR_INTERNAL, "",
                          "%s: permission denied to the database user (SQLSTATE 42501)", what);
    return pt_err_set(err, PT_ERR_INTERNAL, "", "%s: database error (SQLSTATE %s)", what, state);
}

/* One line of a connection failure. libpq's text names host, port, user
 * and the reason: no data values. */
static pt_result conn_fail(PGconn *pg, pt_err *err, const char *what)
{
    char msg[200];
    const char *m = pg ? PQerrorMessage(pg) : "out of memory";
    size_t n = strcspn(m, "\n");
    if (n >= sizeof msg) n = sizeof msg - 1;
    memcpy(msg, m, n);
    msg[n] = '\0';
    return pt_err_set(err, PT_ERR_STORAGE, "", "%s: cannot connect to PostgreSQL: %s", what,
                      n ? msg : "unknown error");
}

/* ------------------------------------------------------------------------
 * Parameters: binary, kept in the struct for the duration of the call. */

#define MAX_PARAMS 16

typedef struct pargs {
    int n;
    bool too_big;
    const char *v[MAX_PARAMS];
    int len[MAX_PARAMS];
    int fmt[MAX_PARAMS];
    unsigned char ib[MAX_PARAMS][8];
} pargs;

static void p_null(pargs *a)
{
    if (a->n >= MAX_PARAMS) return;
    int i = a->n++;
    a->v[i] = NULL;
    a->len[i] = 0;
    a->fmt[i] = 1;
}

static void p_i64(pargs *a, int64_t x)
{
    if (a->n >= MAX_PARAMS) return;
    int i = a->n++;
    uint64_t u = (uint64_t)x;
    for (int k = 7; k >= 0; k--) {
        a->ib[i][k] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
    a->v[i] = (const char *)a->ib[i];
    a->len[i] = 8;
    a->fmt[i] = 1;
}

/* 0 means "none" for optional times and is stored as NULL. */
static void p_opt_i64(pargs *a, int64_t x)
{
    if (x)
        p_i64(a, x);
    else
        p_null(a);
}

/* NULL pointer: NULL; else n bytes (0 bytes is an empty value). */
static void p_bytes(pargs *a, const void *p, size_t n)
{
    if (!p) {
        p_null(a);
        return;
    }
    if (a->n >= MAX_PARAMS) return;
    if (n > INT_MAX) {
        a->too_big = true;
        n = 0;
    }
    int i = a->n++;
    a->v[i] = p;
    a->len[i] = (int)n;
    a->fmt[i] = 1; /* binary text is the raw UTF-8 bytes */
}

/* Fixed NUL-terminated buffer of capacity cap; strnlen guards a missing NUL. */
static void p_str(pargs *a, const char *s, size_t cap)
{
    if (!s) s = "";
    p_bytes(a, s, strnlen(s, cap));
}

/* "" is stored as NULL. */
static void p_opt_str(pargs *a, const char *s, size_t cap)
{
    if (!s || !*s)
        p_null(a);
    else
        p_str(a, s, cap);
}

/* ------------------------------------------------------------------------
 * Columns (binary results). */

static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return 0; /* NULL reads back as 0: the "none" convention */
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < len && i < 8; i++)
        v = v << 8 | p[i];
    switch (len) {
    case 8:
        return (int64_t)v;
    case 4:
        return (int32_t)(uint32_t)v;
    case 2:
        return (int16_t)(uint16_t)v;
    default:
        return 0;
    }
}

static void col_str(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    size_t n = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
    if (n >= cap) n = cap - 1; /* only a foreign or damaged database has longer values */
    if (n) memcpy(dst, PQgetvalue(r, row, col), n);
    dst[n] = '\0';
}

static void col_fixed(const PGresult *r, int row, int col, uint8_t *dst, size_t n)
{
    size_t len = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
    if (len > n) len = n;
    if (len) memcpy(dst, PQgetvalue(r, row, col), len);
    if (len < n) memset(dst + len, 0, n - len);
}

/* Pointer into the result (valid until PQclear), NULL for NULL. */
static const uint8_t *col_blob(const PGresult *r, int row, int col, size_t *len)
{
    if (PQgetisnull(r, row, col)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)PQgetlength(r, row, col);
    return (const uint8_t *)PQgetvalue(r, row, col);
}

static int64_t affected(PGresult *r)
{
    const char *t = PQcmdTuples(r);
    return t && *t ? strtoll(t, NULL, 10) : 0;
}

/* ------------------------------------------------------------------------
 * Running statements. */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs (e.g. "already exists, skipping") are not errors */
}

/* Per-session settings, after every (re)connection. */
static int session_setup(PGconn *pg)
{
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    /* A COMMIT must be durable: only "off" is not (local, remote_* are). */
    PGresult *r = PQexec(pg, "SELECT set_config('synchronous_commit', 'on', false) "
                             "WHERE current_setting('synchronous_commit') = 'off'");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok ? 0 : -1;
}

static PGconn *pg_connect(const char *url, pt_err *err, const char *what)
{
    /* Keywords before dbname are defaults the url may override; those
     * after it are forced. */
    static const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname",
                                       "client_encoding", NULL};
    const char *vals[] = {"10", "patto", url, "UTF8", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg) {
        pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        conn_fail(pg, err, what);
        PQfinish(pg);
        return NULL;
    }
    if (session_setup(pg) != 0) {
        pt_err_set(err, PT_ERR_STORAGE, "", "%s: cannot set up the database session", what);
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* Makes the connection usable: after a lost connection, reconnects,
 * unless a transaction was open (it is gone: that must fail). */
static pt_result ready(pg_conn *c, pt_err *err, const char *what)
{
    if (!conn_bad(c)) return PT_OK;
    if (c->in_tx)
        return pt_err_set(err, PT_ERR_STORAGE, "", "%s: database connection lost in a transaction",
                          what);
    PQreset(c->pg);
    memset(c->prepared, 0, sizeof c->prepared);
    c->release_pending = c->sp_wanted = c->sp_open = false;
    c->listening = c->dv_known = false; /* a new session listens to nothing */
    c->npend = 0;
    if (conn_bad(c)) return conn_fail(c->pg, err, what);
    if (session_setup(c->pg) != 0)
        return pt_err_set(err, PT_ERR_STORAGE, "", "%s: cannot set up the database session", what);
    return PT_OK;
}

/* The connection to run a statement on: c itself, or while c is busy
 * with a scan (a callback calling back), its side connection. */
static pt_result bulk_check(pg_conn *c, pt_err *err);
static void bulk_idle(pg_conn *c);

static pt_result target(pg_conn *c, pg_conn **out, pt_err *err, const char *what)
{
    pt_result r0 = bulk_check(c, err); /* a bulk connection's sender is done */
    if (r0 != PT_OK) return r0;
    while (c->streaming) {
        if (c->in_tx)
            return pt_err_set(err, PT_ERR_INTERNAL, "",
                              "%s: nested database call during a scan in a transaction", what);
        if (!c->side) {
            pt_result r = conn_new(c->store, &c->side, err);
            if (r != PT_OK) return r;
        }
        c = c->side;
    }
    *out = c;
    return PT_OK;
}

static void stmt_name(enum stmt_id id, char name[16])
{
    snprintf(name, 16, "patto_%d", (int)id);
}

static pt_result prepare(pg_conn *c, enum stmt_id id, const pargs *a, pt_err *err, const char *what)
{
    const char *types = SQL[id].types;
    int n = (int)strlen(types);
    if (a->n != n || n > MAX_PARAMS)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "%s: parameter count mismatch", what);
    if (a->too_big)
        return pt_err_set(err, PT_ERR_TOO_LARGE, "", "%s: value too large for the database", what);
    if (c->prepared[id]) return PT_OK;
    Oid oids[MAX_PARAMS];
    for (int i = 0; i < n; i++)
        oids[i] = types[i] == 'i' ? OID_INT8 : types[i] == 'b' ? OID_BYTEA : OID_TEXT;
    char name[16];
    stmt_name(id, name);
    PGresult *r = PQprepare(c->pg, name, SQL[id].sql, n, oids);
    pt_result rc = PQresultStatus(r) == PGRES_COMMAND_OK ? PT_OK : fail_res(c, r, err, what);
    PQclear(r);
    if (rc == PT_OK) c->prepared[id] = true;
    return rc;
}

/* libpq notices a dead connection (server restart, failover) only when
 * it next uses it. A read outside a transaction that failed that way is
 * tried once more on a fresh connection: nothing was done, so the caller
 * need not see the failure (every pooled connection would, once). */
static bool retry_read(const pg_conn *c, enum stmt_id id, int attempt)
{
    return attempt == 0 && !c->in_tx && conn_bad(c) && strncmp(SQL[id].sql, "SELECT", 6) == 0;
}

/* Runs SQL without parameters (transaction control, migrations). */
static pt_result pipe_sync(pg_conn *c, PGresult **out, pt_err *err, const char *what);

static pt_result exec_sql(pg_conn *c, const char *sql, pt_err *err, const char *what)
{
    bulk_idle(c);
    if (c->pg && PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF) { /* deferred writes first */
        pt_result r0 = pipe_sync(c, NULL, err, what);
        if (r0 != PT_OK) return r0;
    }
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    pt_result r =
        st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? PT_OK : fail_res(c, res, err, what);
    PQclear(res);
    return r;
}

/* Sends a wanted savepoint now, on its own (before a scan). */
static pt_result flush_savepoint(pg_conn *c, pt_err *err, const char *what)
{
    if (!c->sp_wanted) return PT_OK;
    const char *sql = c->release_pending ? "RELEASE SAVEPOINT j; SAVEPOINT j" : "SAVEPOINT j";
    c->sp_wanted = c->release_pending = false;
    pt_result r = exec_sql(c, sql, err, what);
    c->sp_open = r == PT_OK;
    return r;
}

/* Runs a prepared statement preceded by the wanted savepoint (and the
 * pending release of the previous one) in a single round trip, with
 * libpq's pipeline mode. Same contract as run(). */
static pt_result run_pipelined(pg_conn *c, const char *name, const pargs *a, PGresult **out,
                               pt_err *err, const char *what)
{
    bool rel = c->release_pending;
    c->sp_wanted = c->release_pending = false;
    if (!PQenterPipelineMode(c->pg)) return fail_res(c, NULL, err, what);
    int ok = !rel || PQsendQueryParams(c->pg, "RELEASE SAVEPOINT j", 0, NULL, NULL, NULL, NULL, 0);
    ok = ok && PQsendQueryParams(c->pg, "SAVEPOINT j", 0, NULL, NULL, NULL, NULL, 0);
    ok = ok && PQsendQueryPrepared(c->pg, name, a->n, a->v, a->len, a->fmt, 1);
    ok = ok && PQpipelineSync(c->pg);
    pt_result r = ok ? PT_OK : fail_res(c, NULL, err, what);
    /* Results: one group per command, each ended by NULL, then the sync.
     * The first failure is the one reported; the commands after it come
     * back PIPELINE_ABORTED. */
    int nq = rel ? 3 : 2, q = 0; /* q: index of the command being read */
    PGresult *res;
    while (ok && !conn_bad(c) && q <= nq) {
        res = PQgetResult(c->pg);
        if (!res) {
            q++;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            if (q == nq - 2) c->sp_open = true; /* SAVEPOINT j done */
            if (q == nq - 1 && r == PT_OK && !*out) {
                *out = res; /* the statement's result */
                continue;
            }
        } else if (r == PT_OK) {
            r = fail_res(c, res, err, what);
        }
        PQclear(res);
    }
    if (!PQexitPipelineMode(c->pg)) {
        /* results left over (a broken connection): drop them */
        while ((res = PQgetResult(c->pg)) != NULL)
            PQclear(res);
        PQexitPipelineMode(c->pg);
    }
    if (r == PT_OK && !*out) r = fail_res(c, NULL, err, what);
    if (r != PT_OK) {
        PQclear(*out);
        *out = NULL;
    }
    return r;
}

/* ------------------------------------------------------------------------
 * Deferred writes (pt_conn_tune(c, PT_CONN_WRITER): a node's writer).
 *
 * A group commit runs a few statements per op, most of them writes whose
 * answer nobody waits for: consent states, proof-log leaves, subtree
 * hashes and heads. Inside a transaction such a write is sent in libpq's
 * pipeline mode and not waited for; it travels with the next statement
 * that needs an answer (a read, an insert that reports a conflict, the
 * COMMIT), which then costs the one round trip for all of them. The server
 * runs them in order, so a read sees every write sent before it.
 *
 * What the deferred writes answer is checked at that next round trip. A
 * failure there (a lost connection, a full disk, a constraint only a bug
 * could break) cannot be pinned on its op any more, so it sticks: every
 * later statement of the transaction and its COMMIT fail with it, and the
 * whole batch is answered 503 with nothing written. */

enum { K_OK, K_ONE, K_AFFECTED1, K_RESULT };
#define PIPE_MAX 256 /* commands in flight before a sync: their answers must not fill the socket */

static pt_result pipe_sync(pg_conn *c, PGresult **out, pt_err *err, const char *what);

static bool deferring(const pg_conn *c) { return c->defer && c->in_tx; }

static pt_result defer_failed(pg_conn *c, pt_err *err)
{
    if (err) *err = c->dfail_err;
    return c->dfail;
}

/* Queues a command's answer (kind) to be read at the next sync. */
static pt_result pipe_push(pg_conn *c, int ok, uint8_t kind, pt_err *err, const char *what)
{
    if (!ok) return fail_res(c, NULL, err, what);
    if (c->npend == c->pendcap) {
        int cap = c->pendcap ? c->pendcap * 2 : 64;
        uint8_t *p = realloc(c->pend, (size_t)cap);
        if (!p) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        c->pend = p;
        c->pendcap = cap;
    }
    c->pend[c->npend++] = kind;
    return PT_OK;
}

/* Enters pipeline mode and queues the wanted savepoint (and the pending
 * release of the last one). */
static pt_result pipe_open(pg_conn *c, pt_err *err, const char *what)
{
    if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c->pg))
        return fail_res(c, NULL, err, what);
    pt_result r = PT_OK;
    if (c->sp_wanted) {
        if (c->release_pending)
            r = pipe_push(c, PQsendQueryParams(c->pg, "RELEASE SAVEPOINT j", 0, NULL, NULL, NULL,
                                               NULL, 0),
                          K_OK, err, what);
        if (r == PT_OK)
            r = pipe_push(c, PQsendQueryParams(c->pg, "SAVEPOINT j", 0, NULL, NULL, NULL, NULL, 0),
                          K_OK, err, what);
        c->sp_wanted = c->release_pending = false;
        c->sp_open = true; /* if it failed, the sync says so, and it sticks */
    }
    return r;
}

/* Makes the statement ready outside the pipeline (PQprepare cannot run in
 * it): the first use of each statement on a connection syncs once. */
static pt_result pipe_prepare(pg_conn *c, enum stmt_id id, const pargs *a, pt_err *err,
                              const char *what)
{
    if (c->prepared[id]) return prepare(c, id, a, err, what); /* the argument checks */
    pt_result r = c->npend || PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF
                      ? pipe_sync(c, NULL, err, what)
                      : PT_OK;
    return r != PT_OK ? r : prepare(c, id, a, err, what);
}

/* Sends a write and does not wait for it. kind says what a good answer is:
 * K_OK any, K_ONE a first column of 1, K_AFFECTED1 one row changed. */
static pt_result run_defer(pg_conn *c0, enum stmt_id id, const pargs *a, uint8_t kind,
                           pt_err *err, const char *what)
{
    pg_conn *c;
    pt_result r = target(c0, &c, err, what);
    if (r != PT_OK) return r;
    if (c->dfail) return defer_failed(c, err);
    r = ready(c, err, what);
    if (r == PT_OK) r = pipe_prepare(c, id, a, err, what);
    if (r == PT_OK) r = pipe_open(c, err, what);
    if (r != PT_OK) return r;
    char name[16];
    stmt_name(id, name);
    r = pipe_push(c, PQsendQueryPrepared(c->pg, name, a->n, a->v, a->len, a->fmt, 1), kind, err,
                  what);
    if (r != PT_OK) return r;
    c->wrote = true;
    return c->npend >= PIPE_MAX ? pipe_sync(c, NULL, err, what) : PT_OK;
}

/* A statement whose answer is wanted, on a deferring connection: sent
 * after the deferred writes, in the same round trip. */
static pt_result run_piped(pg_conn *c, enum stmt_id id, const pargs *a, PGresult **out,
                           pt_err *err, const char *what)
{
    if (c->dfail) return defer_failed(c, err);
    pt_result r = pipe_prepare(c, id, a, err, what);
    if (r == PT_OK) r = pipe_open(c, err, what);
    if (r != PT_OK) return r;
    char name[16];
    stmt_name(id, name);
    r = pipe_push(c, PQsendQueryPrepared(c->pg, name, a->n, a->v, a->len, a->fmt, 1), K_RESULT,
                  err, what);
    return r != PT_OK ? r : pipe_sync(c, out, err, what);
}

/* Sends a sync and reads every answer queued: the deferred writes' (a
 * failure sticks, see above) and, if out, the one K_RESULT statement's
 * (its own failure is returned as run() would). Leaves pipeline mode. */
static pt_result pipe_sync(pg_conn *c, PGresult **out, pt_err *err, const char *what)
{
    if (out) *out = NULL;
    if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF) return c->dfail ? defer_failed(c, err) : PT_OK;
    pt_result r = PT_OK, d = PT_OK; /* the statement's failure; a deferred write's */
    pt_err de;
    pt_err_clear(&de);
    PGresult *res;
    if (!PQpipelineSync(c->pg)) {
        d = fail_res(c, NULL, &de, what);
    } else {
        for (int q = 0; q < c->npend && !conn_bad(c); q++) {
            /* A command answers with its rows, then its completion; the rows
             * come one result each if libpq kept single-row mode from a scan
             * (it does for the first command of a pipeline). */
            uint8_t k = c->pend[q];
            PGresult *rows = NULL, *done = NULL;
            bool bad = false;
            while ((res = PQgetResult(c->pg)) != NULL) {
                ExecStatusType st = PQresultStatus(res);
                if (st == PGRES_SINGLE_TUPLE || (st == PGRES_TUPLES_OK && PQntuples(res) > 0)) {
                    if (!rows) {
                        rows = res;
                        continue;
                    }
                } else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                    PQclear(done);
                    done = res;
                    continue;
                } else if (!bad) {
                    bad = true;
                    if (st == PGRES_PIPELINE_ABORTED)
                        ; /* an earlier command failed: that one is reported */
                    else if (k == K_RESULT && r == PT_OK && d == PT_OK)
                        r = fail_res(c, res, err, what);
                    else if (k != K_RESULT && d == PT_OK)
                        d = fail_res(c, res, &de, what);
                }
                PQclear(res);
            }
            if (!bad && k == K_ONE && !(rows && PQntuples(rows) == 1 && col_i64(rows, 0, 0) == 1)) {
                if (d == PT_OK)
                    d = pt_err_set(&de, PT_ERR_CONFLICT, "",
                                   "the log already holds another hash for that subtree");
            } else if (!bad && k == K_AFFECTED1 && (!done || affected(done) != 1)) {
                if (d == PT_OK) d = pt_err_set(&de, PT_ERR_CONFLICT, "", "%s: already there", what);
            } else if (!bad && k == K_RESULT && out && !*out && r == PT_OK && (rows || done)) {
                /* the row if any (callers of run() read one), else the completion */
                *out = rows ? rows : done;
                if (rows)
                    rows = NULL;
                else
                    done = NULL;
            }
            PQclear(rows);
            PQclear(done);
        }
        if (!conn_bad(c) && (res = PQgetResult(c->pg)) != NULL) /* the sync */
            PQclear(res);
    }
    c->npend = 0;
    if (!PQexitPipelineMode(c->pg)) {
        /* answers left over (a broken connection): drop them */
        while ((res = PQgetResult(c->pg)) != NULL) PQclear(res);
        PQexitPipelineMode(c->pg);
    }
    if (d == PT_OK && conn_bad(c))
        d = pt_err_set(&de, PT_ERR_STORAGE, "", "%s: database connection lost", what);
    if (d != PT_OK && !c->dfail) {
        c->dfail = d;
        c->dfail_err = de;
    }
    if (c->dfail) r = defer_failed(c, err);
    if (r == PT_OK && out && !*out) r = fail_res(c, NULL, err, what);
    if (r != PT_OK && out) {
        PQclear(*out);
        *out = NULL;
    }
    return r;
}

static bool bulk_pending(const pg_conn *c);
static pt_result bulk_flush(pg_conn *c, pt_err *err);

/* Runs a prepared statement to completion, without first sending the rows
 * a bulk connection holds (see "Bulk mode"); *out (on PT_OK) must be
 * PQclear'ed. */
static pt_result run_now(pg_conn *c0, enum stmt_id id, const pargs *a, PGresult **out,
                         pt_err *err, const char *what)
{
    *out = NULL;
    pg_conn *c;
    pt_result r = target(c0, &c, err, what);
    if (r != PT_OK) return r;
    if (c->in_tx && strncmp(SQL[id].sql, "SELECT", 6) != 0) c->wrote = true;
    for (int attempt = 0;; attempt++) {
        r = ready(c, err, what);
        if (r == PT_OK && deferring(c)) return run_piped(c, id, a, out, err, what);
        if (r == PT_OK) r = prepare(c, id, a, err, what);
        if (r != PT_OK) return r;
        char name[16];
        stmt_name(id, name);
        if (c->sp_wanted) return run_pipelined(c, name, a, out, err, what);
        PGresult *res = PQexecPrepared(c->pg, name, a->n, a->v, a->len, a->fmt, 1);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *out = res;
            return PT_OK;
        }
        if (retry_read(c, id, attempt)) {
            PQclear(res);
            continue;
        }
        r = fail_res(c, res, err, what);
        PQclear(res);
        return r;
    }
}

/* Runs a prepared statement to completion; *out (on PT_OK) must be
 * PQclear'ed. A bulk connection first sends the rows it holds: the
 * statement may read or change them. */
static pt_result run(pg_conn *c0, enum stmt_id id, const pargs *a, PGresult **out, pt_err *err,
                     const char *what)
{
    *out = NULL;
    if (bulk_pending(c0)) {
        pt_result r = bulk_flush(c0, err);
        if (r != PT_OK) return r;
    }
    return run_now(c0, id, a, out, err, what);
}

typedef pt_result (*visit_fn)(const PGresult *res, void *arg, int *stop);

/* Streams every row of a statement to visit, one row in memory at a time. */
static pt_result scan(pg_conn *c0, enum stmt_id id, const pargs *a, const char *what,
                      visit_fn visit, void *arg)
{
    pg_conn *c;
    pt_result r = bulk_pending(c0) ? bulk_flush(c0, NULL) : PT_OK;
    if (r != PT_OK) return r;
    r = target(c0, &c, NULL, what);
    if (r != PT_OK) return r;
    for (int attempt = 0;; attempt++) {
        r = ready(c, NULL, what);
        if (r == PT_OK && PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF) /* deferred writes first */
            r = pipe_sync(c, NULL, NULL, what);
        if (r == PT_OK && deferring(c) && c->dfail) r = c->dfail;
        if (r == PT_OK) r = prepare(c, id, a, NULL, what);
        if (r == PT_OK) r = flush_savepoint(c, NULL, what);
        if (r != PT_OK) return r;
        char name[16];
        stmt_name(id, name);
        if (!PQsendQueryPrepared(c->pg, name, a->n, a->v, a->len, a->fmt, 1)) {
            if (retry_read(c, id, attempt)) continue;
            return fail_res(c, NULL, NULL, what);
        }
        PQsetSingleRowMode(c->pg); /* cannot fail right after sending */
        c->streaming = true;
        int stop = 0;
        bool delivered = false, lost = false;
        PGresult *res;
        /* Always read to the end: the connection is usable only then. */
        while ((res = PQgetResult(c->pg)) != NULL) {
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_SINGLE_TUPLE) {
                if (r == PT_OK && !stop) r = visit(res, arg, &stop);
                delivered = true;
            } else if (st != PGRES_TUPLES_OK && r == PT_OK) {
                if (!delivered && retry_read(c, id, attempt))
                    lost = true; /* no row was seen yet: the whole scan can be redone */
                else
                    r = fail_res(c, res, NULL, what);
            }
            PQclear(res);
        }
        c->streaming = false;
        if (!lost) return r;
    }
}

/* ------------------------------------------------------------------------
 * Bulk mode: pt_conn_tune(c, PT_CONN_BULK), for `patto import`, the proof
 * log's catch-up and `patto migrate`: one long transaction of appends.
 *
 * Inside a transaction such a connection does not send the rows of
 * subject_insert, ident_insert, event_insert, state_put, log_leaf_insert
 * and log_node_put one statement (one round trip) each: it encodes them in
 * COPY's binary format and sends each table's rows with one COPY ... FROM
 * STDIN per chunk of BULK_FLUSH_BYTES, at commit, and before any other
 * statement on the connection (run() and scan() flush first: any read may
 * need the rows, any write may depend on them). A full chunk is handed to
 * a sender thread, which runs its COPYs while the caller encodes the next
 * one (the server's work, one backend, is most of an import's time; the
 * caller's parsing, sealing and hashing then overlaps it). Anything else
 * that needs the connection first waits for the sender (bulk_idle). The three reads an import
 * makes per person are answered without a flush: subject_get, state_get and
 * ident_lookup first look at the rows held (by key, so a row held is the
 * only one that can answer), then ask the server, which cannot hold a row
 * with that key that we hold.
 *
 * events.seq and subjects.row are taken from their identity sequences in
 * blocks (setval(nextval + n - 1), under the writer lock that tx_begin
 * took, so still in commit order; COPY writes the given values into an
 * identity column) and what is left of the last block is handed back
 * before COMMIT, so an import leaves no gap. A block never outlives its
 * transaction: another node may commit higher seqs in between.
 *
 * consent_state is an upsert: the latest row per (subject, purpose) is
 * held, and at a flush the rows of subjects inserted in the same chunk
 * (new for certain) are copied straight in, the others into a temporary
 * table and moved with one INSERT ... ON CONFLICT DO UPDATE.
 *
 * Identifier look-ups of a new person find nothing, which would still cost
 * a round trip each; after IDENT_LOAD_AFTER of them in one transaction,
 * the tenant's identifiers (if at most IDENT_LOAD_MAX) are read into
 * memory once: the writer lock keeps them from changing under us, and
 * every ident_insert of the transaction is added, so the set then answers
 * alone.
 *
 * A failure found by a COPY (a constraint, the disk) fails the next call
 * that writes or reads, which may be a later record than the one at fault;
 * the transaction is then aborted as a whole, which is what an import is. */

#define BULK_FLUSH_BYTES ((size_t)16 << 20)
#define BULK_FLUSH_ROWS 100000 /* held states or subjects */
#define BULK_BLOCK_MIN 64      /* ids reserved at once, x8 each time up to ... */
#define BULK_BLOCK_MAX ((int64_t)1 << 20)
#define IDENT_LOAD_AFTER 256
#define IDENT_LOAD_MAX 4000000

enum copy_table {
    CT_SUBJECTS,
    CT_IDENTS,
    CT_EVENTS,
    CT_STATES,        /* new rows: straight into consent_state */
    CT_STATES_UPSERT, /* into the temporary table, then upserted */
    CT_LEAVES,
    CT_NODES,
    CT__COUNT
};

#define STATE_COPY_COLS                                                                            \
    "subject_id, tenant_id, event_seq, purpose_idx, state, channels, revision, decided_at, "       \
    "granted_at, expires_at, event_id"

static const char *const COPY_SQL[CT__COUNT] = {
    [CT_SUBJECTS] = "COPY subjects(\"row\", id, tenant_id, kek_epoch, wrapped_dek, profile, "
                    "created_at, updated_at, erased_at) FROM STDIN (FORMAT binary)",
    [CT_IDENTS] = "COPY identifiers(" IDENT_COLS ") FROM STDIN (FORMAT binary)",
    [CT_EVENTS] = "COPY events(seq, id, tenant_id, subject_id, purpose, action, channels, notice, "
                  "notice_version, notice_sha256, collected_via, evidence, evidence_sha256, "
                  "occurred_at, recorded_at, expires_at) FROM STDIN (FORMAT binary)",
    [CT_STATES] = "COPY consent_state(" STATE_COPY_COLS ") FROM STDIN (FORMAT binary)",
    [CT_STATES_UPSERT] = "COPY patto_bulk_state(" STATE_COPY_COLS ") FROM STDIN (FORMAT binary)",
    [CT_LEAVES] = "COPY log_leaves(" LEAF_COLS ") FROM STDIN (FORMAT binary)",
    [CT_NODES] = "COPY log_nodes(tenant_id, level, idx, hash) FROM STDIN (FORMAT binary)",
};

/* What a COPY is called in an error message. */
static const char *const COPY_WHAT[CT__COUNT] = {
    "subject insert",     "identifier insert", "event insert",    "consent state put",
    "consent state put",  "log leaf insert",   "log node insert",
};

typedef struct cbuf {
    unsigned char *p;
    size_t n, cap;
    size_t rows;
} cbuf;

/* Open addressing over fixed-size keys and values: a slot is the value
 * (8-aligned), the key, then a used byte. Only grows; cleared whole. */
typedef struct hmap {
    unsigned char *slot;
    size_t cap, n;
    size_t ks, vs, es;
} hmap;

typedef struct idblock {
    int64_t next, end; /* free: next..end */
    int64_t last;      /* last handed out */
    int64_t grow;      /* size of the next block */
} idblock;

typedef struct ident_key {
    uint32_t tenant;
    int32_t type;
    uint8_t blind[PT_BLIND_BYTES];
} ident_key;

typedef struct state_key {
    uint8_t subject[PT_ID_BYTES];
    uint16_t purpose;
} state_key;

struct bulk {
    cbuf chunk[2][CT__COUNT]; /* chunk[cur] is being filled, the other sent */
    int cur;
    hmap subjects;  /* id -> pt_subject_rec (profile malloc'd): rows not sent yet */
    hmap states;    /* state_key -> pt_state_rec: the latest, not sent yet */
    hmap idents;    /* ident_key -> subject id: not sent yet, or (all) the tenant's */
    bool idents_all; /* idents holds every identifier of idents_tenant */
    bool idents_tried;
    uint32_t idents_tenant;
    unsigned ident_misses;
    idblock seq, row;
    bool oom;
    /* the sender thread; the fields below mu are guarded by it */
    pg_conn *c;
    bool started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int job;  /* the chunk being sent, or -1 */
    bool quit;
    pt_result send_rc; /* the first failure of a sent chunk */
    pt_err send_err;
};

static uint64_t hash_key(const void *key, size_t n)
{
    const unsigned char *k = key;
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
        k += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, k, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

static void hm_init(hmap *m, size_t ks, size_t vs)
{
    memset(m, 0, sizeof *m);
    m->ks = ks;
    m->vs = (vs + 7) & ~(size_t)7;
    m->es = (m->vs + ks + 1 + 7) & ~(size_t)7;
}

static unsigned char *hm_slot(const hmap *m, size_t i) { return m->slot + i * m->es; }

/* The value stored under key, or NULL. */
static void *hm_find(const hmap *m, const void *key)
{
    if (!m->n) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash_key(key, m->ks) & mask;; i = (i + 1) & mask) {
        unsigned char *s = hm_slot(m, i);
        if (!s[m->vs + m->ks]) return NULL;
        if (memcmp(s + m->vs, key, m->ks) == 0) return s;
    }
}

static bool hm_grow(hmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    unsigned char *slot = calloc(cap, m->es);
    if (!slot) return false;
    for (size_t j = 0; j < m->cap; j++) {
        unsigned char *s = hm_slot(m, j);
        if (!s[m->vs + m->ks]) continue;
        size_t i = hash_key(s + m->vs, m->ks) & (cap - 1);
        while (slot[i * m->es + m->vs + m->ks]) i = (i + 1) & (cap - 1);
        memcpy(slot + i * m->es, s, m->es);
    }
    free(m->slot);
    m->slot = slot;
    m->cap = cap;
    return true;
}

/* The value slot for key (zeroed when new, *fresh set), or NULL (memory). */
static void *hm_put(hmap *m, const void *key, bool *fresh)
{
    if ((m->n + 1) * 4 > m->cap * 3 && !hm_grow(m)) return NULL;
    size_t mask = m->cap - 1;
    size_t i = hash_key(key, m->ks) & mask;
    for (;; i = (i + 1) & mask) {
        unsigned char *s = hm_slot(m, i);
        if (!s[m->vs + m->ks]) break;
        if (memcmp(s + m->vs, key, m->ks) == 0) {
            *fresh = false;
            return s;
        }
    }
    unsigned char *s = hm_slot(m, i);
    memcpy(s + m->vs, key, m->ks);
    s[m->vs + m->ks] = 1;
    m->n++;
    *fresh = true;
    return s;
}

/* Calls fn on every value. */
static void hm_each(hmap *m, void (*fn)(void *value, const void *key, void *ctx), void *ctx)
{
    for (size_t i = 0; m->n && i < m->cap; i++) {
        unsigned char *s = hm_slot(m, i);
        if (s[m->vs + m->ks]) fn(s, s + m->vs, ctx);
    }
}

static void hm_clear(hmap *m)
{
    if (!m->n) return;
    if (m->cap > ((size_t)1 << 20)) { /* give a big table back rather than wipe it */
        free(m->slot);
        m->slot = NULL;
        m->cap = 0;
    } else {
        memset(m->slot, 0, m->cap * m->es);
    }
    m->n = 0;
}

static void hm_free(hmap *m)
{
    free(m->slot);
    m->slot = NULL;
    m->cap = m->n = 0;
}

/* ---- COPY's binary format: per row a field count, then per field its
 * length (-1: NULL) and bytes; integers are big-endian. */

static unsigned char *cb_room(struct bulk *b, cbuf *c, size_t n)
{
    if (c->cap - c->n < n) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap - c->n < n) cap *= 2;
        unsigned char *p = realloc(c->p, cap);
        if (!p) {
            b->oom = true;
            return NULL;
        }
        c->p = p;
        c->cap = cap;
    }
    unsigned char *p = c->p + c->n;
    c->n += n;
    return p;
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static void cb_row(struct bulk *b, cbuf *c, int fields)
{
    unsigned char *p = cb_room(b, c, 2);
    if (p) put_be(p, (uint64_t)fields, 2);
    c->rows++;
}

static void cb_null(struct bulk *b, cbuf *c)
{
    unsigned char *p = cb_room(b, c, 4);
    if (p) put_be(p, 0xffffffffu, 4);
}

static void cb_i64(struct bulk *b, cbuf *c, int64_t v)
{
    unsigned char *p = cb_room(b, c, 12);
    if (!p) return;
    put_be(p, 8, 4);
    put_be(p + 4, (uint64_t)v, 8);
}

static void cb_opt_i64(struct bulk *b, cbuf *c, int64_t v)
{
    if (v)
        cb_i64(b, c, v);
    else
        cb_null(b, c);
}

/* NULL pointer: NULL (as p_bytes). Callers bound n (fixed buffers, or
 * checked against INT_MAX). */
static void cb_bytes(struct bulk *b, cbuf *c, const void *v, size_t n)
{
    if (!v) {
        cb_null(b, c);
        return;
    }
    unsigned char *p = cb_room(b, c, 4 + n);
    if (!p) return;
    put_be(p, n, 4);
    if (n) memcpy(p + 4, v, n);
}

static void cb_str(struct bulk *b, cbuf *c, const char *s, size_t cap)
{
    if (!s) s = "";
    cb_bytes(b, c, s, strnlen(s, cap));
}

static void cb_opt_str(struct bulk *b, cbuf *c, const char *s, size_t cap)
{
    if (!s || !*s)
        cb_null(b, c);
    else
        cb_str(b, c, s, cap);
}

static bool bulk_on(const pg_conn *c) { return c->bulk && c->in_tx; }

static size_t bulk_bytes(const struct bulk *b)
{
    size_t n = b->states.n * 160;
    for (int t = 0; t < CT__COUNT; t++) n += b->chunk[b->cur][t].n;
    return n;
}

/* Waits until the sender is done with its chunk (the connection is ours
 * again). The sender itself never waits. */
static void bulk_idle(pg_conn *c)
{
    struct bulk *b = c->bulk;
    if (!b || !b->started || pthread_equal(pthread_self(), b->thread)) return;
    pthread_mutex_lock(&b->mu);
    while (b->job >= 0) pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

/* bulk_idle, then the failure of a chunk sent, if any (the transaction is
 * then aborted on the server). */
static pt_result bulk_check(pg_conn *c, pt_err *err)
{
    struct bulk *b = c->bulk;
    if (!b || !b->started || pthread_equal(pthread_self(), b->thread)) return PT_OK;
    bulk_idle(c);
    if (b->send_rc == PT_OK) return PT_OK;
    if (err) *err = b->send_err;
    return b->send_rc;
}

static bool bulk_pending(const pg_conn *c)
{
    if (!bulk_on(c)) return false;
    const struct bulk *b = c->bulk;
    if (b->states.n || b->send_rc != PT_OK) return true;
    for (int t = 0; t < CT__COUNT; t++)
        if (b->chunk[b->cur][t].rows) return true;
    return false;
}

static void free_profile(void *value, const void *key, void *ctx)
{
    (void)key;
    (void)ctx;
    pt_subject_rec_clear(value);
}

/* Forgets the rows held (handed to the sender, or rolled back). */
static void bulk_drop_rows(struct bulk *b)
{
    for (int t = 0; t < CT__COUNT; t++) {
        cbuf *cb = &b->chunk[b->cur][t];
        cb->n = cb->rows = 0;
        if (cb->cap > 4 * BULK_FLUSH_BYTES) {
            free(cb->p);
            cb->p = NULL;
            cb->cap = 0;
        }
    }
    hm_each(&b->subjects, free_profile, NULL);
    hm_clear(&b->subjects);
    hm_clear(&b->states);
    if (!b->idents_all) hm_clear(&b->idents);
    b->oom = false;
}

/* Forgets everything: the transaction ended. */
static void bulk_reset(pg_conn *c)
{
    struct bulk *b = c->bulk;
    bulk_idle(c);
    b->send_rc = PT_OK;
    pt_err_clear(&b->send_err);
    b->idents_all = false;
    bulk_drop_rows(b);
    hm_free(&b->idents);
    b->idents_tried = false;
    b->ident_misses = 0;
    b->seq = (idblock){0, 0, 0, 0};
    b->row = (idblock){0, 0, 0, 0};
}

static void bulk_free(pg_conn *c)
{
    struct bulk *b = c->bulk;
    if (!b) return;
    bulk_reset(c);
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->quit = true;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < CT__COUNT; t++) free(b->chunk[i][t].p);
    hm_free(&b->subjects);
    hm_free(&b->states);
    free(b);
    c->bulk = NULL;
}

static struct bulk *bulk_new(pg_conn *c)
{
    struct bulk *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    hm_init(&b->subjects, PT_ID_BYTES, sizeof(pt_subject_rec));
    hm_init(&b->states, sizeof(state_key), sizeof(pt_state_rec));
    hm_init(&b->idents, sizeof(ident_key), PT_ID_BYTES);
    b->c = c;
    b->job = -1;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    return b;
}

/* Runs one statement of the bulk machinery (text parameters, text result). */
static pt_result bulk_exec(pg_conn *c, const char *sql, int n, const char *const *params,
                           PGresult **out, pt_err *err, const char *what)
{
    pt_result r0 = bulk_check(c, err);
    if (r0 != PT_OK) return r0;
    PGresult *res = PQexecParams(c->pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = res;
        else
            PQclear(res);
        return PT_OK;
    }
    pt_result r = fail_res(c, res, err, what);
    PQclear(res);
    return r;
}

/* The next value of an identity column's sequence, from a block reserved
 * in this transaction. */
static pt_result bulk_next_id(pg_conn *c, idblock *k, const char *table, const char *col,
                              int64_t *out, pt_err *err)
{
    if (!k->next || k->next > k->end) {
        int64_t n = k->grow ? k->grow : BULK_BLOCK_MIN;
        k->grow = n < BULK_BLOCK_MAX ? n * 8 : n;
        char sql[256], num[24];
        snprintf(sql, sizeof sql,
                 "SELECT setval(s, nextval(s) + $1::bigint) FROM "
                 "(SELECT pg_get_serial_sequence('%s', '%s')::regclass AS s) q",
                 table, col);
        snprintf(num, sizeof num, "%lld", (long long)(n - 1));
        const char *params[1] = {num};
        PGresult *res;
        pt_result r = bulk_exec(c, sql, 1, params, &res, err, "bulk id reservation");
        if (r != PT_OK) return r;
        int64_t end = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        PQclear(res);
        if (end < n) return pt_err_set(err, PT_ERR_INTERNAL, "", "bulk id reservation failed");
        k->end = end;
        k->next = end - n + 1;
    }
    *out = k->last = k->next++;
    return PT_OK;
}

/* Hands back what is left of the last block, so that the next nextval
 * follows the last value used. */
static pt_result bulk_give_back(pg_conn *c, idblock *k, const char *table, const char *col,
                                pt_err *err)
{
    if (!k->next || k->next > k->end) return PT_OK;
    char sql[256], num[24];
    snprintf(sql, sizeof sql, "SELECT setval(pg_get_serial_sequence('%s', '%s'), $1::bigint)",
             table, col);
    snprintf(num, sizeof num, "%lld", (long long)k->last);
    const char *params[1] = {num};
    k->next = k->end = 0;
    return bulk_exec(c, sql, 1, params, NULL, err, "bulk id reservation");
}

static pt_result copy_send(pg_conn *c, int t, const cbuf *b, pt_err *err)
{
    static const unsigned char header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n',
                                             0,   0,   0,   0,   0,   0,   0,    0,    0};
    static const unsigned char trailer[2] = {0xff, 0xff};
    const char *what = COPY_WHAT[t];
    PGresult *res = PQexec(c->pg, COPY_SQL[t]);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        pt_result r = fail_res(c, res, err, what);
        PQclear(res);
        return r;
    }
    PQclear(res);
    int ok = PQputCopyData(c->pg, (const char *)header, sizeof header) == 1;
    for (size_t off = 0; ok && off < b->n;) {
        size_t n = b->n - off < (1u << 20) ? b->n - off : (1u << 20);
        ok = PQputCopyData(c->pg, (const char *)b->p + off, (int)n) == 1;
        off += n;
    }
    ok = ok && PQputCopyData(c->pg, (const char *)trailer, sizeof trailer) == 1;
    int end = PQputCopyEnd(c->pg, ok ? NULL : "patto: bulk copy interrupted");
    pt_result r = PT_OK;
    while ((res = PQgetResult(c->pg)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && r == PT_OK) r = fail_res(c, res, err, what);
        PQclear(res);
    }
    if (r == PT_OK && (!ok || end != 1)) r = fail_res(c, NULL, err, what);
    return r;
}

static void encode_state(void *value, const void *key, void *ctx)
{
    (void)key;
    struct bulk *b = ctx;
    const pt_state_rec *r = value;
    /* a subject inserted in this chunk has no row in the table yet */
    cbuf *c = &b->chunk[b->cur][hm_find(&b->subjects, r->subject) ? CT_STATES : CT_STATES_UPSERT];
    cb_row(b, c, 11);
    cb_bytes(b, c, r->subject, sizeof r->subject);
    cb_i64(b, c, r->tenant);
    cb_i64(b, c, r->event_seq);
    cb_i64(b, c, r->st.purpose_idx);
    cb_i64(b, c, r->st.state);
    cb_i64(b, c, r->st.channels);
    cb_i64(b, c, r->st.revision);
    cb_i64(b, c, r->st.decided_at);
    cb_opt_i64(b, c, r->st.granted_at);
    cb_opt_i64(b, c, r->st.expires_at);
    cb_bytes(b, c, r->st.event, sizeof r->st.event);
}

/* Sends one chunk: a COPY per table (on the sender thread). */
static pt_result send_chunk(pg_conn *c, cbuf *chunk, pt_err *err)
{
    pt_result r = PT_OK;
    for (int t = 0; t < CT__COUNT && r == PT_OK; t++) {
        if (!chunk[t].rows) continue;
        if (t == CT_STATES_UPSERT)
            r = exec_sql(c,
                         "CREATE TEMP TABLE IF NOT EXISTS patto_bulk_state "
                         "(LIKE consent_state) ON COMMIT DELETE ROWS",
                         err, "consent state put");
        if (r == PT_OK) r = copy_send(c, t, &chunk[t], err);
        if (r == PT_OK && t == CT_STATES_UPSERT)
            r = exec_sql(c,
                         "INSERT INTO consent_state(" STATE_COPY_COLS ") "
                         "SELECT " STATE_COPY_COLS " FROM patto_bulk_state "
                         "ON CONFLICT(subject_id, purpose_idx) DO UPDATE SET "
                         "tenant_id = excluded.tenant_id, event_seq = excluded.event_seq, "
                         "state = excluded.state, channels = excluded.channels, "
                         "revision = excluded.revision, decided_at = excluded.decided_at, "
                         "granted_at = excluded.granted_at, expires_at = excluded.expires_at, "
                         "event_id = excluded.event_id; "
                         "TRUNCATE patto_bulk_state",
                         err, "consent state put");
    }
    return r;
}

static void *bulk_sender(void *arg)
{
    struct bulk *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (b->job < 0 && !b->quit) pthread_cond_wait(&b->cv, &b->mu);
        if (b->job < 0) break;
        int job = b->job;
        pthread_mutex_unlock(&b->mu);
        pt_err e;
        pt_err_clear(&e);
        pt_result r = send_chunk(b->c, b->chunk[job], &e);
        pthread_mutex_lock(&b->mu);
        if (r != PT_OK && b->send_rc == PT_OK) {
            b->send_rc = r;
            b->send_err = e;
        }
        b->job = -1;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Hands the rows held to the sender (once it is done with the last
 * chunk), or sends them here if no thread can be had. */
static pt_result bulk_handoff(pg_conn *c, pt_err *err)
{
    struct bulk *b = c->bulk;
    pt_result r = bulk_check(c, err);
    if (r != PT_OK) goto out;
    hm_each(&b->states, encode_state, b);
    if (b->oom) {
        r = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    bool rows = false;
    for (int t = 0; t < CT__COUNT; t++) rows = rows || b->chunk[b->cur][t].rows;
    if (!rows) goto out;
    if (conn_bad(c)) {
        r = pt_err_set(err, PT_ERR_STORAGE, "", "bulk write: database connection lost");
        goto out;
    }
    r = flush_savepoint(c, err, "bulk write");
    if (r != PT_OK) goto out;
    c->wrote = true;
    if (!b->started) b->started = pthread_create(&b->thread, NULL, bulk_sender, b) == 0;
    if (!b->started) {
        r = send_chunk(c, b->chunk[b->cur], err);
        goto out;
    }
    pthread_mutex_lock(&b->mu);
    b->job = b->cur;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    b->cur ^= 1; /* the other chunk was sent: bulk_check waited for it */
out:
    bulk_drop_rows(b);
    return r;
}

/* Sends every row held, and waits until they are written. */
static pt_result bulk_flush(pg_conn *c, pt_err *err)
{
    pt_result r = bulk_handoff(c, err);
    return r != PT_OK ? r : bulk_check(c, err);
}

/* After a buffered write: hands the chunk over once it is full. */
static pt_result bulk_held(pg_conn *c, pt_err *err)
{
    struct bulk *b = c->bulk;
    if (b->oom) {
        bulk_drop_rows(b);
        return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    if (bulk_bytes(b) >= BULK_FLUSH_BYTES || b->states.n >= BULK_FLUSH_ROWS ||
        b->subjects.n >= BULK_FLUSH_ROWS)
        return bulk_handoff(c, err);
    return PT_OK;
}

static pt_result bulk_subject_insert(pg_conn *c, pt_subject_rec *r, pt_err *err)
{
    struct bulk *b = c->bulk;
    if (r->profile && r->profile_len > INT_MAX)
        return pt_err_set(err, PT_ERR_TOO_LARGE, "", "subject insert: value too large");
    if (hm_find(&b->subjects, r->id))
        return pt_err_set(err, PT_ERR_CONFLICT, "id", "a subject with that id already exists");
    int64_t row;
    pt_result rc = bulk_next_id(c, &b->row, "subjects", "row", &row, err);
    if (rc != PT_OK) return rc;
    bool fresh;
    pt_subject_rec *s = hm_put(&b->subjects, r->id, &fresh);
    if (!s) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    *s = *r;
    s->row = row;
    s->profile = NULL;
    s->profile_len = 0;
    if (r->profile) {
        s->profile = malloc(r->profile_len ? r->profile_len : 1);
        if (!s->profile) {
            b->oom = true;
        } else {
            if (r->profile_len) memcpy(s->profile, r->profile, r->profile_len);
            s->profile_len = r->profile_len;
        }
    }
    cbuf *cb = &b->chunk[b->cur][CT_SUBJECTS];
    cb_row(b, cb, 9);
    cb_i64(b, cb, row);
    cb_bytes(b, cb, r->id, sizeof r->id);
    cb_i64(b, cb, r->tenant);
    cb_i64(b, cb, r->kek_epoch);
    cb_bytes(b, cb, r->wrapped_dek, sizeof r->wrapped_dek);
    cb_bytes(b, cb, r->profile, r->profile_len);
    cb_i64(b, cb, r->created_at);
    cb_i64(b, cb, r->updated_at);
    cb_opt_i64(b, cb, r->erased_at);
    r->row = row;
    return bulk_held(c, err);
}

static ident_key make_ident_key(uint32_t tenant, int type, const uint8_t blind[PT_BLIND_BYTES])
{
    ident_key k;
    memset(&k, 0, sizeof k);
    k.tenant = tenant;
    k.type = type;
    memcpy(k.blind, blind, PT_BLIND_BYTES);
    return k;
}

static pt_result bulk_ident_insert(pg_conn *c, const pt_ident_rec *r, pt_err *err)
{
    struct bulk *b = c->bulk;
    if (r->value && r->value_len > INT_MAX)
        return pt_err_set(err, PT_ERR_TOO_LARGE, "", "identifier insert: value too large");
    ident_key k = make_ident_key(r->tenant, r->type, r->blind);
    bool fresh;
    uint8_t *v = hm_put(&b->idents, &k, &fresh);
    if (!v) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    if (!fresh)
        return pt_err_set(err, PT_ERR_CONFLICT, "identifier",
                          "this identifier already belongs to a subject");
    memcpy(v, r->subject, PT_ID_BYTES);
    cbuf *cb = &b->chunk[b->cur][CT_IDENTS];
    cb_row(b, cb, 6);
    cb_i64(b, cb, r->tenant);
    cb_i64(b, cb, r->type);
    cb_bytes(b, cb, r->blind, sizeof r->blind);
    cb_bytes(b, cb, r->subject, sizeof r->subject);
    cb_bytes(b, cb, r->value, r->value_len);
    cb_i64(b, cb, r->created_at);
    return bulk_held(c, err);
}

static pt_result bulk_event_insert(pg_conn *c, pt_event_rec *r, pt_err *err)
{
    struct bulk *b = c->bulk;
    if (r->evidence && r->evidence_len > INT_MAX)
        return pt_err_set(err, PT_ERR_TOO_LARGE, "", "event insert: value too large");
    int64_t seq;
    pt_result rc = bulk_next_id(c, &b->seq, "events", "seq", &seq, err);
    if (rc != PT_OK) return rc;
    const char *action = pt_action_name(r->action), *via = pt_via_name(r->via);
    cbuf *cb = &b->chunk[b->cur][CT_EVENTS];
    cb_row(b, cb, 16);
    cb_i64(b, cb, seq);
    cb_bytes(b, cb, r->id, sizeof r->id);
    cb_i64(b, cb, r->tenant);
    cb_bytes(b, cb, r->subject, sizeof r->subject);
    cb_str(b, cb, r->purpose, sizeof r->purpose);
    cb_str(b, cb, action, strlen(action));
    cb_i64(b, cb, r->channels);
    cb_opt_str(b, cb, r->notice, sizeof r->notice);
    cb_opt_str(b, cb, r->notice_version, sizeof r->notice_version);
    cb_opt_str(b, cb, r->notice_sha256, sizeof r->notice_sha256);
    cb_str(b, cb, via, strlen(via));
    cb_bytes(b, cb, r->evidence, r->evidence_len);
    cb_opt_str(b, cb, r->evidence_sha256, sizeof r->evidence_sha256);
    cb_i64(b, cb, r->occurred_at);
    cb_i64(b, cb, r->recorded_at);
    cb_opt_i64(b, cb, r->expires_at);
    r->seq = seq;
    return bulk_held(c, err);
}

/* The row as the table gives it back (what read_state fills). */
static void state_stored(const pt_state_rec *r, pt_state_rec *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->subject, r->subject, sizeof out->subject);
    out->tenant = r->tenant;
    out->event_seq = r->event_seq;
    out->st.purpose_idx = r->st.purpose_idx;
    out->st.state = r->st.state;
    out->st.channels = r->st.channels;
    out->st.revision = r->st.revision;
    out->st.decided_at = r->st.decided_at;
    out->st.granted_at = r->st.granted_at;
    out->st.expires_at = r->st.expires_at;
    memcpy(out->st.event, r->st.event, sizeof out->st.event);
}

static state_key make_state_key(const uint8_t subject[PT_ID_BYTES], uint16_t purpose)
{
    state_key k;
    memset(&k, 0, sizeof k);
    memcpy(k.subject, subject, PT_ID_BYTES);
    k.purpose = purpose;
    return k;
}

static pt_result bulk_state_put(pg_conn *c, const pt_state_rec *r, pt_err *err)
{
    struct bulk *b = c->bulk;
    state_key k = make_state_key(r->subject, r->st.purpose_idx);
    bool fresh;
    pt_state_rec *v = hm_put(&b->states, &k, &fresh);
    if (!v) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    state_stored(r, v);
    return bulk_held(c, err);
}

static pt_result bulk_leaf_insert(pg_conn *c, const pt_leaf_rec *r, pt_err *err)
{
    struct bulk *b = c->bulk;
    if (r->data && r->len > INT_MAX)
        return pt_err_set(err, PT_ERR_TOO_LARGE, "", "log leaf insert: value too large");
    cbuf *cb = &b->chunk[b->cur][CT_LEAVES];
    cb_row(b, cb, 5);
    cb_i64(b, cb, r->tenant);
    cb_i64(b, cb, (int64_t)r->idx);
    cb_bytes(b, cb, r->ref, sizeof r->ref);
    cb_bytes(b, cb, r->hash, sizeof r->hash);
    cb_bytes(b, cb, r->data ? (const void *)r->data : "", r->data ? r->len : 0);
    return bulk_held(c, err);
}

static pt_result bulk_node_put(pg_conn *c, uint32_t tenant, unsigned level, uint64_t idx,
                               const uint8_t hash[PT_LOG_HASH], pt_err *err)
{
    struct bulk *b = c->bulk;
    cbuf *cb = &b->chunk[b->cur][CT_NODES];
    cb_row(b, cb, 4);
    cb_i64(b, cb, tenant);
    cb_i64(b, cb, level);
    cb_i64(b, cb, (int64_t)idx);
    cb_bytes(b, cb, hash, PT_LOG_HASH);
    return bulk_held(c, err);
}

/* Reads every identifier of a tenant into b->idents (after a flush, so
 * the table holds them all); leaves idents_all false when there are too
 * many or on any failure, and look-ups then ask the server. */
static pt_result bulk_load_idents(pg_conn *c, uint32_t tenant)
{
    struct bulk *b = c->bulk;
    b->idents_tried = true;
    pt_result r = bulk_flush(c, NULL);
    if (r != PT_OK) return r;
    char t[24], lim[24];
    snprintf(t, sizeof t, "%lu", (unsigned long)tenant);
    snprintf(lim, sizeof lim, "%d", IDENT_LOAD_MAX + 1);
    const char *params[2] = {t, lim};
    PGresult *res;
    r = bulk_exec(c,
                  "SELECT count(*) FROM (SELECT 1 FROM identifiers WHERE tenant_id = $1::bigint "
                  "LIMIT $2::bigint) q",
                  2, params, &res, NULL, "identifier lookup");
    if (r != PT_OK) return r;
    long long n = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    if (n < 0 || n > IDENT_LOAD_MAX) return PT_OK;
    hm_clear(&b->idents); /* all sent: the table has them */
    if (!PQsendQueryParams(c->pg,
                           "SELECT type, blind, subject_id FROM identifiers "
                           "WHERE tenant_id = $1::bigint",
                           1, NULL, params, NULL, NULL, 1))
        return fail_res(c, NULL, NULL, "identifier lookup");
    PQsetSingleRowMode(c->pg);
    bool ok = true;
    while ((res = PQgetResult(c->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && ok) {
            uint8_t blind[PT_BLIND_BYTES];
            col_fixed(res, 0, 1, blind, sizeof blind);
            ident_key k = make_ident_key(tenant, (int)col_i64(res, 0, 0), blind);
            bool fresh;
            uint8_t *v = hm_put(&b->idents, &k, &fresh);
            if (v)
                col_fixed(res, 0, 2, v, PT_ID_BYTES);
            else
                ok = false;
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && r == PT_OK) {
            r = fail_res(c, res, NULL, "identifier lookup");
        }
        PQclear(res);
    }
    if (r == PT_OK && ok) {
        b->idents_all = true;
        b->idents_tenant = tenant;
    } else {
        hm_clear(&b->idents);
    }
    return r;
}

/* ident_lookup on a bulk connection: PT_OK, NOT_FOUND, or -1 when the
 * server must be asked. */
static int bulk_ident_lookup(pg_conn *c, uint32_t tenant, int type,
                             const uint8_t blind[PT_BLIND_BYTES], uint8_t subject[PT_ID_BYTES],
                             pt_result *rc)
{
    struct bulk *b = c->bulk;
    ident_key k = make_ident_key(tenant, type, blind);
    for (;;) {
        const uint8_t *v = hm_find(&b->idents, &k);
        if (v) {
            memcpy(subject, v, PT_ID_BYTES);
            *rc = PT_OK;
            return 0;
        }
        if (b->idents_all && b->idents_tenant == tenant) {
            *rc = PT_ERR_NOT_FOUND;
            return 0;
        }
        if (b->idents_tried || ++b->ident_misses < IDENT_LOAD_AFTER) return -1;
        *rc = bulk_load_idents(c, tenant);
        if (*rc != PT_OK) return 0;
    }
}

static void pg_conn_tune(pt_conn *c_base, pt_conn_role role)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!c || c->in_tx) return; /* between transactions only */
    /* see "Deferred writes"; PATTO_BENCH_PG_NO_PIPELINE is for bench/pg.sh
     * only, which measures what they gain */
    c->defer = role == PT_CONN_WRITER && !getenv("PATTO_BENCH_PG_NO_PIPELINE");
    if (role == PT_CONN_BULK) {
        if (!c->bulk) c->bulk = bulk_new(c); /* out of memory: statements, as before */
    } else {
        bulk_free(c);
    }
}

/* ------------------------------------------------------------------------
 * Opening and migrations. */

/* Highest applied migration; -1 when there is no schema_migrations table. */
static pt_result read_version(pg_conn *c, int *out, pt_err *err)
{
    *out = -1;
    PGresult *res = PQexec(c->pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    pt_result r = PT_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        r = fail_res(c, res, err, "schema version read");
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) goto out;
    PQclear(res);
    res = PQexec(c->pg, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        r = fail_res(c, res, err, "schema version read");
        goto out;
    }
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *out = v > INT_MAX ? INT_MAX : v < 0 ? 0 : (int)v;
out:
    PQclear(res);
    return r;
}

static pt_result too_new(pt_err *err, int v)
{
    return pt_err_set(err, PT_ERR_INVALID, "",
                      "database schema version %d is newer than this binary supports (%d); "
                      "upgrade patto",
                      v, SCHEMA_VERSION);
}

static pt_result migrate(pg_store *s, pg_conn *c, int create, pt_err *err)
{
    int cur;
    pt_result r = read_version(c, &cur, err);
    if (r != PT_OK) return r;
    if (cur < 0 && !create)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "url",
                          "the PostgreSQL database holds no patto schema (not creating it); "
                          "run `patto init` first");
    if (cur > SCHEMA_VERSION) return too_new(err, cur);

    for (int v = (cur < 0 ? 0 : cur) + 1; v <= SCHEMA_VERSION; v++) {
        char what[48];
        snprintf(what, sizeof what, "schema migration %d", v);
        r = exec_sql(c,
                     "BEGIN; SELECT pg_advisory_xact_lock(" LOCK_MIGRATE ");"
                     "CREATE TABLE IF NOT EXISTS schema_migrations("
                     "version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                     err, what);
        /* Another node may have migrated while we waited for the lock. */
        if (r == PT_OK) r = read_version(c, &cur, err);
        if (r != PT_OK) goto rollback;
        if (cur > SCHEMA_VERSION) {
            r = too_new(err, cur);
            goto rollback;
        }
        if (cur >= v) {
            v = cur;
            r = exec_sql(c, "COMMIT", err, what);
            if (r != PT_OK) goto rollback;
            continue;
        }
        for (const char *const *q = MIGRATIONS[v - 1]; *q && r == PT_OK; q++)
            r = exec_sql(c, *q, err, what);
        if (r != PT_OK) goto rollback;
        char sql[128];
        snprintf(sql, sizeof sql,
                 "INSERT INTO schema_migrations(version, applied_at) VALUES(%d, %lld)", v,
                 (long long)now_ms());
        r = exec_sql(c, sql, err, what);
        if (r == PT_OK) {
            PGresult *res = PQexec(c->pg, "COMMIT");
            if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0)
                r = PQresultStatus(res) == PGRES_COMMAND_OK
                        ? pt_err_set(err, PT_ERR_STORAGE, "", "%s: rolled back", what)
                        : fail_res(c, res, err, what);
            PQclear(res);
        }
        if (r != PT_OK) goto rollback;
        cur = v;
        continue;
    rollback:
        if (!conn_bad(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            PQclear(PQexec(c->pg, "ROLLBACK"));
        return r;
    }
    s->schema_version = SCHEMA_VERSION > cur ? SCHEMA_VERSION : cur;
    return PT_OK;
}

static int pg_accepts(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

static void vacuum_stop(pg_store *s);

static void pg_store_close(pt_store *base)
{
    pg_store *s = (pg_store *)base;
    if (!s) return;
    vacuum_stop(s);
    pthread_mutex_destroy(&s->vac_mu);
    free(s->url);
    free(s);
}

static pt_result pg_store_open(const char *url, int create, pt_store **out, pt_err *err)
{
    pt_err_clear(err);
    if (!url || !out) return pt_err_set(err, PT_ERR_INVALID, "url", "no database url");
    *out = NULL;
    if (!pg_accepts(url)) return pt_err_set(err, PT_ERR_INVALID, "url", "not a PostgreSQL url");
    if (!PQisthreadsafe())
        return pt_err_set(err, PT_ERR_INTERNAL, "", "libpq was built without thread support");
    pg_store *s = calloc(1, sizeof *s);
    if (!s) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    pthread_mutex_init(&s->vac_mu, NULL);
    s->url = strdup(url);
    if (!s->url) {
        pthread_mutex_destroy(&s->vac_mu);
        free(s);
        return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    s->base.ops = &pt_postgres_ops;
    uint8_t tok[8];
    pt_random(tok, sizeof tok);
    for (size_t i = 0; i < sizeof tok; i++) snprintf(s->token + 2 * i, 3, "%02x", tok[i]);
    pg_conn *c = NULL;
    pt_result r = conn_new(s, &c, err);
    if (r == PT_OK) r = migrate(s, c, create, err);
    pg_conn_close(c ? &c->base : NULL);
    if (r != PT_OK) {
        pg_store_close(&s->base);
        return r;
    }
    *out = &s->base;
    return PT_OK;
}

static int pg_store_schema_version(pt_store *base)
{
    pg_store *s = (pg_store *)base;
    return s ? s->schema_version : 0;
}

static pt_result conn_new(pg_store *s, pg_conn **out, pt_err *err)
{
    *out = NULL;
    pg_conn *c = calloc(1, sizeof *c);
    if (!c) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    /* s is read-only after pt_store_open, so no lock is needed here. */
    c->pg = pg_connect(s->url, err, "database open");
    if (!c->pg) {
        free(c);
        return err && err->code != PT_OK ? err->code : PT_ERR_STORAGE;
    }
    c->store = s;
    c->base.ops = &pt_postgres_ops;
    *out = c;
    return PT_OK;
}

static pt_result pg_conn_open(pt_store *base, pt_conn **out, pt_err *err)
{
    pg_store *s = (pg_store *)base;
    pt_err_clear(err);
    if (!s || !out) return pt_err_set(err, PT_ERR_INVALID, "", "no store");
    *out = NULL;
    pg_conn *c;
    pt_result r = conn_new(s, &c, err);
    if (r == PT_OK) *out = &c->base;
    return r;
}

static void pg_conn_close(pt_conn *base)
{
    pg_conn *c = (pg_conn *)base;
    if (!c) return;
    pg_conn_close(c->side ? &c->side->base : NULL);
    bulk_free(c);
    free(c->pend);
    /* An open transaction is rolled back by the server when we go. */
    PQfinish(c->pg);
    free(c);
}

/* ------------------------------------------------------------------------
 * Transactions. */

static pt_result pg_tx_begin(pt_conn *c_base, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (c->fatal)
        return pt_err_set(err, PT_ERR_STORAGE_FATAL, "",
                          "an earlier I/O error left the database in an unknown state; restart");
    if (c->streaming || c->in_tx)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "transaction begin: connection busy");
    pt_result r;
    for (int attempt = 0;; attempt++) {
        r = ready(c, err, "transaction begin");
        if (r != PT_OK) return r;
        /* The writer lock, as SQLite's BEGIN IMMEDIATE: taken at once, with
         * SQLite's busy timeout. */
#define BEGIN_SQL                                                                                  \
    "BEGIN; SET LOCAL lock_timeout = " LOCK_TIMEOUT ";"                                            \
    "SELECT pg_advisory_xact_lock(" LOCK_WRITER ")"
        if (!c->defer) {
            r = exec_sql(c, BEGIN_SQL, err, "transaction begin");
        } else {
            /* and, under the lock, where events.seq is: this writer numbers
             * its events from there (see "Deferred writes") */
            PGresult *res = PQexec(c->pg, BEGIN_SQL "; SELECT coalesce(pg_sequence_last_value("
                                                    "pg_get_serial_sequence('events', 'seq')::"
                                                    "regclass), 0)");
            if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
                c->seq_first = c->seq_next = strtoll(PQgetvalue(res, 0, 0), NULL, 10) + 1;
                r = PT_OK;
            } else {
                r = fail_res(c, res, err, "transaction begin");
            }
            PQclear(res);
        }
#undef BEGIN_SQL
        /* a connection found dead here had nothing in flight: reconnect once */
        if (r == PT_OK || attempt > 0 || !conn_bad(c)) break;
        pt_err_clear(err);
    }
    if (r != PT_OK) {
        if (!conn_bad(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            PQclear(PQexec(c->pg, "ROLLBACK"));
        return r;
    }
    c->in_tx = true;
    c->wrote = false;
    c->dfail = PT_OK;
    c->npend = 0;
    if (!c->defer) c->seq_first = c->seq_next = 0;
    c->release_pending = c->sp_wanted = c->sp_open = false;
    if (c->bulk) bulk_reset(c);
    return PT_OK;
}

static pt_result pg_tx_commit(pt_conn *c_base, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!c->in_tx)
        return pt_err_set(err, PT_ERR_STORAGE, "",
                          "transaction was rolled back by an earlier storage error");
    c->release_pending = c->sp_wanted = c->sp_open = false; /* COMMIT releases them all */
    if (c->bulk) {
        /* a chunk that failed; the rows still held; what is left of the
         * id blocks */
        pt_result rb = bulk_check(c, err);
        if (rb == PT_OK && !conn_bad(c) && PQtransactionStatus(c->pg) != PQTRANS_INERROR) {
            rb = bulk_flush(c, err);
            if (rb == PT_OK) rb = bulk_give_back(c, &c->bulk->seq, "events", "seq", err);
            if (rb == PT_OK) rb = bulk_give_back(c, &c->bulk->row, "subjects", "row", err);
        }
        if (rb != PT_OK) {
            bulk_reset(c);
            if (!conn_bad(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
                PQclear(PQexec(c->pg, "ROLLBACK"));
            c->in_tx = false;
            return rb;
        }
    }
    if (c->bulk) bulk_reset(c);
    if (c->defer && !conn_bad(c)) {
        /* deferred writes: they, the sequence moved past the events this
         * transaction numbered, the NOTIFY and the COMMIT in one round trip */
        pt_result r = c->dfail ? defer_failed(c, err) : pipe_open(c, err, "transaction commit");
        char note[80], last[24];
        snprintf(note, sizeof note, "NOTIFY patto_changes, '%s'", c->store->token);
        snprintf(last, sizeof last, "%lld", (long long)(c->seq_next - 1));
        const char *params[1] = {last};
        if (r == PT_OK && c->seq_next > c->seq_first)
            r = pipe_push(c, PQsendQueryParams(c->pg,
                                               "SELECT setval(pg_get_serial_sequence('events', "
                                               "'seq'), $1::bigint)",
                                               1, NULL, params, NULL, NULL, 0),
                          K_OK, err, "transaction commit");
        if (r == PT_OK && c->wrote)
            r = pipe_push(c, PQsendQueryParams(c->pg, note, 0, NULL, NULL, NULL, NULL, 0), K_OK,
                          err, "transaction commit");
        if (r == PT_OK)
            r = pipe_push(c, PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0),
                          K_RESULT, err, "transaction commit");
        PGresult *res = NULL;
        if (r == PT_OK) r = pipe_sync(c, &res, err, "transaction commit");
        if (r == PT_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0) /* "ROLLBACK" */
            r = pt_err_set(err, PT_ERR_STORAGE, "",
                           "transaction commit: rolled back by the database");
        PQclear(res);
        if (r != PT_OK && !conn_bad(c)) {
            if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF) pipe_sync(c, NULL, NULL, "rollback");
            if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) PQclear(PQexec(c->pg, "ROLLBACK"));
        }
        c->in_tx = false;
        c->dfail = PT_OK;
        return r;
    }
    if (conn_bad(c)) {
        c->in_tx = false;
        return pt_err_set(err, PT_ERR_STORAGE, "",
                          "transaction commit: database connection lost; rolled back");
    }
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        PQclear(PQexec(c->pg, "ROLLBACK"));
        c->in_tx = false;
        return pt_err_set(err, PT_ERR_STORAGE, "",
                          "transaction was rolled back by an earlier database error");
    }
    /* Other nodes' sync connections LISTEN: a commit that wrote wakes
     * them at once (NOTIFY is delivered at COMMIT, after it is visible),
     * in the same round trip. */
    char sql[80] = "COMMIT";
    if (c->wrote) snprintf(sql, sizeof sql, "NOTIFY patto_changes, '%s'; COMMIT", c->store->token);
    PGresult *res = PQexec(c->pg, sql);
    pt_result r = PT_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = fail_res(c, res, err, "transaction commit");
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) /* "ROLLBACK": it was aborted */
        r = pt_err_set(err, PT_ERR_STORAGE, "", "transaction commit: rolled back by the database");
    PQclear(res);
    /* Leave the connection clean: a failed commit is a rolled-back one. */
    if (r != PT_OK && !conn_bad(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
    c->in_tx = false;
    return r;
}

static void pg_tx_rollback(pt_conn *c_base)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!c || !c->in_tx) return;
    bulk_idle(c);
    c->in_tx = false;
    c->release_pending = c->sp_wanted = c->sp_open = false;
    if (c->bulk) bulk_reset(c);
    if (!conn_bad(c) && PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF) /* deferred writes */
        pipe_sync(c, NULL, NULL, "rollback");
    c->dfail = PT_OK;
    if (!conn_bad(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

/* A savepoint costs a round trip and, in PostgreSQL, a subtransaction.
 * So SAVEPOINT is only noted here and sent together with the job's first
 * statement (see run_pipelined); a job that runs no statement sends none.
 * Its RELEASE travels with the next job's SAVEPOINT, or is made moot by
 * COMMIT. Savepoints do not nest (the services never nest them). */
static pt_result pg_tx_savepoint(pt_conn *c_base, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!c->in_tx) return pt_err_set(err, PT_ERR_INTERNAL, "", "savepoint outside a transaction");
    bulk_idle(c);
    if (c->sp_wanted || c->sp_open)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "savepoint: savepoints do not nest");
    if (conn_bad(c))
        return pt_err_set(err, PT_ERR_STORAGE, "", "savepoint: database connection lost");
    if (bulk_pending(c)) { /* the rows held belong before the savepoint */
        pt_result r = bulk_flush(c, err);
        if (r != PT_OK) return r;
    }
    c->sp_wanted = true;
    return PT_OK;
}

static pt_result pg_tx_release(pt_conn *c_base, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    bulk_idle(c);
    if (c->sp_wanted) { /* never sent: nothing to release */
        c->sp_wanted = false;
        return PT_OK;
    }
    if (!c->sp_open) return pt_err_set(err, PT_ERR_INTERNAL, "", "savepoint release: no savepoint");
    if (conn_bad(c))
        return pt_err_set(err, PT_ERR_STORAGE, "", "savepoint release: database connection lost");
    /* libpq knows the transaction state without a round trip: a statement
     * of this job failed (and was ignored by its caller). */
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        return pt_err_set(err, PT_ERR_INTERNAL, "",
                          "savepoint release: a database statement of this job failed");
    c->sp_open = false;
    c->release_pending = true;
    return PT_OK;
}

static void pg_tx_rollback_to(pt_conn *c_base)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!c) return;
    /* Every row held or being sent came after the savepoint (it flushed):
     * drop them, and the identifier set, which may list some. */
    bulk_idle(c);
    if (bulk_on(c)) {
        struct bulk *b = c->bulk;
        b->idents_all = false;
        bulk_drop_rows(b);
        hm_clear(&b->idents);
        b->idents_tried = false;
    }
    if (c->sp_wanted) { /* never sent: nothing ran since */
        c->sp_wanted = false;
        return;
    }
    if (!c->in_tx || !c->sp_open || conn_bad(c)) return;
    c->sp_open = false;
    /* ROLLBACK TO keeps the savepoint open; RELEASE pops it so that
     * savepoints do not pile up across the jobs of a group commit. */
    exec_sql(c, "ROLLBACK TO SAVEPOINT j; RELEASE SAVEPOINT j", NULL, "savepoint rollback");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* data_version is what a node's sync thread polls (often: it is meant to
 * be cheap). Outside a transaction the connection LISTENs to
 * patto_changes, which every commit that wrote NOTIFYs (pg_tx_commit):
 * while no other process has notified, the value read last is given again
 * without a round trip, for up to DV_REREAD_MS; a notification, or that
 * much time, makes it read the counter again. Notifications can be lost
 * (a reconnect, a pooler that drops them): the re-read bounds that. */
#define DV_REREAD_MS 200

static pt_result pg_db_data_version(pt_conn *c_base, int64_t *out)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!c->in_tx && !c->streaming && !conn_bad(c)) {
        if (!c->listening) {
            c->dv_known = false;
            c->listening = exec_sql(c, "LISTEN patto_changes", NULL, "listen") == PT_OK;
        }
        bool woken = false;
        if (c->listening) {
            PQconsumeInput(c->pg); /* reads what arrived, never waits */
            PGnotify *n;
            while ((n = PQnotifies(c->pg)) != NULL) {
                if (strcmp(n->extra, c->store->token) != 0) woken = true; /* not our own */
                PQfreemem(n);
            }
        }
        if (c->listening && c->dv_known && !woken && !conn_bad(c) &&
            mono_ms() - c->dv_at < DV_REREAD_MS) {
            *out = c->dv;
            return PT_OK;
        }
    }
    pargs a = {0};
    PGresult *res;
    int64_t at = mono_ms();
    pt_result r = run(c, S_DATA_VERSION, &a, &res, NULL, "data version");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 1) {
        *out = col_i64(res, 0, 0);
        c->dv = *out;
        c->dv_at = at;
        c->dv_known = c->listening && !c->in_tx;
    } else {
        r = PT_ERR_INTERNAL;
    }
    PQclear(res);
    return r;
}

/* ------------------------------------------------------------------------
 * Meta. */

static pt_result pg_db_meta_get(pt_conn *c_base, const char *key, char *value, size_t cap)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!key || !value || cap == 0) return PT_ERR_INVALID;
    pargs a = {0};
    p_str(&a, key, SIZE_MAX);
    PGresult *res;
    pt_result r = run(c, S_META_GET, &a, &res, NULL, "meta get");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0) {
        r = PT_ERR_NOT_FOUND;
    } else {
        size_t n = (size_t)PQgetlength(res, 0, 0);
        if (n >= cap) {
            r = PT_ERR_TOO_LARGE; /* never hand back a silently truncated value */
        } else {
            if (n) memcpy(value, PQgetvalue(res, 0, 0), n);
            value[n] = '\0';
        }
    }
    PQclear(res);
    return r;
}

static pt_result pg_db_meta_set(pt_conn *c_base, const char *key, const char *value)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!key || !value) return PT_ERR_INVALID;
    pargs a = {0};
    p_str(&a, key, SIZE_MAX);
    p_str(&a, value, SIZE_MAX);
    PGresult *res;
    pt_result r = run(c, S_META_SET, &a, &res, NULL, "meta set");
    PQclear(res);
    return r;
}

/* ------------------------------------------------------------------------
 * Tenants. */

static void read_tenant(const PGresult *res, int row, pt_tenant_rec *r)
{
    memset(r, 0, sizeof *r);
    r->id = (uint32_t)col_i64(res, row, 0);
    col_str(res, row, 1, r->name, sizeof r->name);
    r->created_at = col_i64(res, row, 2);
}

static pt_result tenant_get(pg_conn *c, enum stmt_id id, const char *name, uint32_t tid,
                            pt_tenant_rec *out)
{
    pargs a = {0};
    if (name)
        p_str(&a, name, SIZE_MAX);
    else
        p_i64(&a, tid);
    PGresult *res;
    pt_result r = run(c, id, &a, &res, NULL, "tenant get");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0)
        r = PT_ERR_NOT_FOUND;
    else
        read_tenant(res, 0, out);
    PQclear(res);
    return r;
}

static pt_result pg_db_tenant_insert(pt_conn *c_base, pt_tenant_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    /* id 0 lets the database allocate one; a set id (restore) is kept. */
    if (r->id)
        p_i64(&a, r->id);
    else
        p_null(&a);
    p_str(&a, r->name, sizeof r->name);
    p_i64(&a, r->created_at);
    PGresult *res;
    pt_result rc = run(c, S_TENANT_INSERT, &a, &res, err, "tenant insert");
    if (rc != PT_OK) return rc;
    int rows = PQntuples(res);
    if (rows == 1) r->id = (uint32_t)col_i64(res, 0, 0);
    PQclear(res);
    if (rows == 1) return PT_OK;
    pt_tenant_rec other;
    if (r->id && tenant_get(c, S_TENANT_BY_ID, NULL, r->id, &other) == PT_OK)
        return pt_err_set(err, PT_ERR_CONFLICT, "id", "a tenant with that id already exists");
    return pt_err_set(err, PT_ERR_CONFLICT, "name", "a tenant with that name already exists");
}

static pt_result pg_db_tenant_by_name(pt_conn *c_base, const char *name, pt_tenant_rec *out)
{
    if (!name) return PT_ERR_INVALID;
    return tenant_get((pg_conn *)c_base, S_TENANT_BY_NAME, name, 0, out);
}

static pt_result pg_db_tenant_by_id(pt_conn *c_base, uint32_t id, pt_tenant_rec *out)
{
    return tenant_get((pg_conn *)c_base, S_TENANT_BY_ID, NULL, id, out);
}

struct tenant_scan {
    pt_tenant_cb cb;
    void *ctx;
};

static pt_result visit_tenant(const PGresult *res, void *arg, int *stop)
{
    struct tenant_scan *a = arg;
    pt_tenant_rec r;
    read_tenant(res, 0, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_tenant_list(pt_conn *c_base, pt_tenant_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct tenant_scan s = {cb, ctx};
    pargs a = {0};
    return scan((pg_conn *)c_base, S_TENANT_LIST, &a, "tenant list", visit_tenant, &s);
}

/* ------------------------------------------------------------------------
 * API keys. */

static pt_result pg_db_key_insert(pt_conn *c_base, const pt_key_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, r->id, sizeof r->id);
    p_i64(&a, r->tenant);
    p_i64(&a, (int64_t)r->role);
    p_bytes(&a, r->hash, sizeof r->hash);
    p_str(&a, r->label, sizeof r->label);
    p_i64(&a, r->created_at);
    p_opt_i64(&a, r->revoked_at);
    PGresult *res;
    pt_result rc = run(c, S_KEY_INSERT, &a, &res, err, "api key insert");
    if (rc != PT_OK) return rc;
    int64_t n = affected(res);
    PQclear(res);
    if (n == 1) return PT_OK;
    return pt_err_set(err, PT_ERR_CONFLICT, "id", "an api key with that id already exists");
}

struct key_scan {
    pt_key_cb cb;
    void *ctx;
};

static pt_result visit_key(const PGresult *res, void *arg, int *stop)
{
    struct key_scan *a = arg;
    pt_key_rec r;
    memset(&r, 0, sizeof r);
    col_fixed(res, 0, 0, r.id, sizeof r.id);
    r.tenant = (uint32_t)col_i64(res, 0, 1);
    r.role = (pt_role)col_i64(res, 0, 2);
    col_fixed(res, 0, 3, r.hash, sizeof r.hash);
    col_str(res, 0, 4, r.label, sizeof r.label);
    r.created_at = col_i64(res, 0, 5);
    r.revoked_at = col_i64(res, 0, 6);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_key_list(pt_conn *c_base, uint32_t tenant, pt_key_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct key_scan s = {cb, ctx};
    pargs a = {0};
    if (tenant) p_i64(&a, tenant);
    return scan((pg_conn *)c_base, tenant ? S_KEY_LIST_TENANT : S_KEY_LIST_ALL, &a, "api key list",
                visit_key, &s);
}

static pt_result pg_db_key_revoke(pt_conn *c_base, uint32_t tenant, const uint8_t id[PT_ID_BYTES],
                                  int64_t at)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    p_i64(&a, tenant);
    p_i64(&a, at);
    PGresult *res;
    pt_result r = run(c, S_KEY_REVOKE, &a, &res, NULL, "api key revoke");
    if (r != PT_OK) return r;
    int64_t n = affected(res);
    PQclear(res);
    return n ? PT_OK : PT_ERR_NOT_FOUND;
}

/* ------------------------------------------------------------------------
 * Purposes. */

static pt_result read_purpose(const PGresult *res, pt_purpose_rec *r)
{
    memset(r, 0, sizeof *r);
    r->tenant = (uint32_t)col_i64(res, 0, 0);
    col_str(res, 0, 1, r->name, sizeof r->name);
    r->idx = (uint16_t)col_i64(res, 0, 2);
    char basis[32];
    col_str(res, 0, 3, basis, sizeof basis);
    int b = pt_basis_parse(basis);
    if (b < 0) return PT_ERR_INTERNAL; /* written by a newer or broken binary */
    r->rule.basis = (pt_basis)b;
    r->rule.validity_days = (uint32_t)col_i64(res, 0, 4);
    r->rule.renew_before_days = (uint32_t)col_i64(res, 0, 5);
    r->rule.channels = (uint8_t)col_i64(res, 0, 6);
    r->rule.revision = (uint16_t)col_i64(res, 0, 7);
    col_str(res, 0, 8, r->title, sizeof r->title);
    col_str(res, 0, 9, r->description, sizeof r->description);
    col_str(res, 0, 10, r->dpv, sizeof r->dpv);
    r->created_at = col_i64(res, 0, 11);
    r->updated_at = col_i64(res, 0, 12);
    col_str(res, 0, 13, r->assessment, sizeof r->assessment);
    col_str(res, 0, 14, r->assessment_version, sizeof r->assessment_version);
    col_str(res, 0, 15, r->assessment_sha256, sizeof r->assessment_sha256);
    return PT_OK;
}

static pt_result pg_db_purpose_put(pt_conn *c_base, const pt_purpose_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if ((unsigned)r->rule.basis >= PT_BASIS__COUNT)
        return pt_err_set(err, PT_ERR_INVALID, "basis", "unknown legal basis");
    pargs a = {0};
    p_i64(&a, r->tenant);
    p_str(&a, r->name, sizeof r->name);
    p_i64(&a, r->idx);
    p_str(&a, pt_basis_name(r->rule.basis), SIZE_MAX);
    p_i64(&a, r->rule.validity_days);
    p_i64(&a, r->rule.renew_before_days);
    p_i64(&a, r->rule.channels);
    p_i64(&a, r->rule.revision);
    p_str(&a, r->title, sizeof r->title);
    p_str(&a, r->description, sizeof r->description);
    p_str(&a, r->dpv, sizeof r->dpv);
    p_i64(&a, r->created_at);
    p_i64(&a, r->updated_at);
    p_opt_str(&a, r->assessment, sizeof r->assessment);
    p_opt_str(&a, r->assessment_version, sizeof r->assessment_version);
    p_opt_str(&a, r->assessment_sha256, sizeof r->assessment_sha256);
    PGresult *res;
    pt_result rc = run(c, S_PURPOSE_PUT, &a, &res, err, "purpose put");
    if (rc == PT_ERR_CONFLICT) /* the other unique key, (tenant_id, idx) */
        return pt_err_set(err, PT_ERR_CONFLICT, "idx",
                          "another purpose of this tenant already has that index");
    if (rc != PT_OK) return rc;
    int64_t n = affected(res);
    PQclear(res);
    if (n == 0)
        return pt_err_set(err, PT_ERR_CONFLICT, "idx",
                          "a purpose's index is assigned once and cannot change");
    return PT_OK;
}

static pt_result pg_db_purpose_get(pt_conn *c_base, uint32_t tenant, const char *name,
                                   pt_purpose_rec *out)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!name) return PT_ERR_INVALID;
    pargs a = {0};
    p_i64(&a, tenant);
    p_str(&a, name, SIZE_MAX);
    PGresult *res;
    pt_result r = run(c, S_PURPOSE_GET, &a, &res, NULL, "purpose get");
    if (r != PT_OK) return r;
    r = PQntuples(res) == 0 ? PT_ERR_NOT_FOUND : read_purpose(res, out);
    PQclear(res);
    return r;
}

struct purpose_scan {
    pt_purpose_cb cb;
    void *ctx;
    pt_purpose_rec r; /* 4.7 KB: kept off the stack of every row */
};

static pt_result visit_purpose(const PGresult *res, void *arg, int *stop)
{
    struct purpose_scan *a = arg;
    pt_result r = read_purpose(res, &a->r);
    if (r != PT_OK) return r;
    *stop = a->cb(a->ctx, &a->r);
    return PT_OK;
}

static pt_result pg_db_purpose_list(pt_conn *c_base, uint32_t tenant, pt_purpose_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct purpose_scan *s = malloc(sizeof *s);
    if (!s) return PT_ERR_NOMEM;
    s->cb = cb;
    s->ctx = ctx;
    pargs a = {0};
    if (tenant) p_i64(&a, tenant);
    pt_result r = scan((pg_conn *)c_base, tenant ? S_PURPOSE_LIST_TENANT : S_PURPOSE_LIST_ALL, &a,
                       "purpose list", visit_purpose, s);
    free(s);
    return r;
}

/* ------------------------------------------------------------------------
 * Notices. */

static void read_notice(const PGresult *res, pt_notice_rec *r)
{
    memset(r, 0, sizeof *r);
    r->tenant = (uint32_t)col_i64(res, 0, 0);
    col_fixed(res, 0, 1, r->id, sizeof r->id);
    col_str(res, 0, 2, r->notice, sizeof r->notice);
    col_str(res, 0, 3, r->version, sizeof r->version);
    col_str(res, 0, 4, r->language, sizeof r->language);
    col_str(res, 0, 5, r->sha256, sizeof r->sha256);
    r->created_at = col_i64(res, 0, 6);
}

static pt_result pg_db_notice_insert(pt_conn *c_base, const pt_notice_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_i64(&a, r->tenant);
    p_bytes(&a, r->id, sizeof r->id);
    p_str(&a, r->notice, sizeof r->notice);
    p_str(&a, r->version, sizeof r->version);
    p_str(&a, r->language, sizeof r->language);
    p_str(&a, r->sha256, sizeof r->sha256);
    p_i64(&a, r->created_at);
    p_bytes(&a, r->text ? r->text : "", r->text ? r->text_len : 0);
    PGresult *res;
    pt_result rc = run(c, S_NOTICE_INSERT, &a, &res, err, "notice insert");
    if (rc != PT_OK) return rc;
    int64_t n = affected(res);
    PQclear(res);
    if (n == 1) return PT_OK;
    /* The primary key is (tenant, notice, version); the id is UNIQUE too. */
    pargs q = {0};
    p_i64(&q, r->tenant);
    p_str(&q, r->notice, sizeof r->notice);
    p_str(&q, r->version, sizeof r->version);
    bool version_taken = false;
    if (run(c, S_NOTICE_EXISTS, &q, &res, NULL, "notice insert") == PT_OK) {
        version_taken = PQntuples(res) > 0;
        PQclear(res);
    }
    if (!version_taken)
        return pt_err_set(err, PT_ERR_CONFLICT, "id", "a notice with that id already exists");
    return pt_err_set(err, PT_ERR_CONFLICT, "version", "this version of the notice already exists");
}

static pt_result pg_db_notice_get(pt_conn *c_base, uint32_t tenant, const char *notice,
                                  const char *version, pt_notice_rec *out)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!notice || !version) return PT_ERR_INVALID;
    pargs a = {0};
    p_i64(&a, tenant);
    p_str(&a, notice, SIZE_MAX);
    p_str(&a, version, SIZE_MAX);
    PGresult *res;
    pt_result r = run(c, S_NOTICE_GET, &a, &res, NULL, "notice get");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return PT_ERR_NOT_FOUND;
    }
    read_notice(res, out);
    size_t n = PQgetisnull(res, 0, 7) ? 0 : (size_t)PQgetlength(res, 0, 7);
    out->text = malloc(n + 1);
    if (!out->text) {
        r = PT_ERR_NOMEM;
    } else {
        if (n) memcpy(out->text, PQgetvalue(res, 0, 7), n);
        out->text[n] = '\0';
        out->text_len = n;
    }
    PQclear(res);
    return r;
}

struct notice_scan {
    pt_notice_cb cb;
    void *ctx;
};

static pt_result visit_notice(const PGresult *res, void *arg, int *stop)
{
    struct notice_scan *a = arg;
    pt_notice_rec r;
    read_notice(res, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_notice_list(pt_conn *c_base, uint32_t tenant, pt_notice_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct notice_scan s = {cb, ctx};
    pargs a = {0};
    p_i64(&a, tenant);
    return scan((pg_conn *)c_base, S_NOTICE_LIST, &a, "notice list", visit_notice, &s);
}

/* ------------------------------------------------------------------------
 * Subjects. */

static void read_subject(const PGresult *res, pt_subject_rec *r)
{
    memset(r, 0, sizeof *r);
    r->row = col_i64(res, 0, 0);
    col_fixed(res, 0, 1, r->id, sizeof r->id);
    r->tenant = (uint32_t)col_i64(res, 0, 2);
    r->kek_epoch = (uint32_t)col_i64(res, 0, 3);
    col_fixed(res, 0, 4, r->wrapped_dek, sizeof r->wrapped_dek); /* NULL once shredded: zeros */
    r->created_at = col_i64(res, 0, 5);
    r->updated_at = col_i64(res, 0, 6);
    r->erased_at = col_i64(res, 0, 7);
}

static pt_result pg_db_subject_insert(pt_conn *c_base, pt_subject_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (bulk_on(c)) return bulk_subject_insert(c, r, err);
    pargs a = {0};
    p_bytes(&a, r->id, sizeof r->id);
    p_i64(&a, r->tenant);
    p_i64(&a, r->kek_epoch);
    p_bytes(&a, r->wrapped_dek, sizeof r->wrapped_dek);
    p_bytes(&a, r->profile, r->profile_len);
    p_i64(&a, r->created_at);
    p_i64(&a, r->updated_at);
    p_opt_i64(&a, r->erased_at);
    PGresult *res;
    pt_result rc = run(c, S_SUBJECT_INSERT, &a, &res, err, "subject insert");
    if (rc != PT_OK) return rc;
    int rows = PQntuples(res);
    if (rows == 1) r->row = col_i64(res, 0, 0);
    PQclear(res);
    if (rows == 1) return PT_OK;
    return pt_err_set(err, PT_ERR_CONFLICT, "id", "a subject with that id already exists");
}

/* subject_get and subject_resolve on a bulk connection: a subject held is
 * answered from memory (the server has no other row with that id, and no
 * alias for it: an alias is written by a statement, which sends the rows
 * held first); true when answered, with *r set. Otherwise the statement
 * runs without sending the rows held: none of them can change its answer. */
static bool bulk_subject_held(pg_conn *c, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out,
                              pt_result *r)
{
    if (!bulk_on(c)) return false;
    const pt_subject_rec *held = hm_find(&c->bulk->subjects, id);
    if (!held) return false;
    *out = *held;
    out->profile = NULL;
    out->profile_len = 0;
    *r = PT_OK;
    if (!held->profile) return true;
    out->profile = malloc(held->profile_len ? held->profile_len : 1);
    if (!out->profile) {
        *r = PT_ERR_NOMEM;
        return true;
    }
    if (held->profile_len) memcpy(out->profile, held->profile, held->profile_len);
    out->profile_len = held->profile_len;
    return true;
}

static pt_result pg_db_subject_get(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                   pt_subject_rec *out)
{
    pg_conn *c = (pg_conn *)c_base;
    pt_result r;
    if (bulk_subject_held(c, id, out, &r)) return r;
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    PGresult *res;
    r = run_now(c, S_SUBJECT_GET, &a, &res, NULL, "subject get");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return PT_ERR_NOT_FOUND;
    }
    read_subject(res, out);
    size_t n;
    const uint8_t *p = col_blob(res, 0, 8, &n);
    if (p) {
        out->profile = malloc(n ? n : 1);
        if (!out->profile) {
            r = PT_ERR_NOMEM;
        } else {
            if (n) memcpy(out->profile, p, n);
            out->profile_len = n;
        }
    }
    PQclear(res);
    return r;
}

static pt_result pg_db_subject_update_profile(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                              const uint8_t *profile, size_t len, int64_t at)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    p_bytes(&a, profile, len);
    p_i64(&a, at);
    PGresult *res;
    pt_result r = run(c, S_SUBJECT_UPDATE_PROFILE, &a, &res, NULL, "subject profile update");
    if (r != PT_OK) return r;
    int64_t n = affected(res);
    PQclear(res);
    return n ? PT_OK : PT_ERR_NOT_FOUND;
}

struct subject_scan {
    pt_subject_cb cb;
    void *ctx;
};

static pt_result visit_subject(const PGresult *res, void *arg, int *stop)
{
    struct subject_scan *a = arg;
    pt_subject_rec r;
    read_subject(res, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_subject_scan(pt_conn *c_base, int64_t after_row, pt_subject_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct subject_scan s = {cb, ctx};
    pargs a = {0};
    p_i64(&a, after_row);
    return scan((pg_conn *)c_base, S_SUBJECT_SCAN, &a, "subject scan", visit_subject, &s);
}

/* ------------------------------------------------------------------------
 * Identifiers. */

static pt_result pg_db_ident_insert(pt_conn *c_base, const pt_ident_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (bulk_on(c)) return bulk_ident_insert(c, r, err);
    pargs a = {0};
    p_i64(&a, r->tenant);
    p_i64(&a, r->type);
    p_bytes(&a, r->blind, sizeof r->blind);
    p_bytes(&a, r->subject, sizeof r->subject);
    p_bytes(&a, r->value, r->value_len);
    p_i64(&a, r->created_at);
    PGresult *res;
    pt_result rc = run(c, S_IDENT_INSERT, &a, &res, err, "identifier insert");
    if (rc != PT_OK) return rc;
    int64_t n = affected(res);
    PQclear(res);
    if (n == 1) return PT_OK;
    return pt_err_set(err, PT_ERR_CONFLICT, "identifier",
                      "this identifier already belongs to a subject");
}

static pt_result pg_db_ident_lookup(pt_conn *c_base, uint32_t tenant, int type,
                                    const uint8_t blind[PT_BLIND_BYTES],
                                    uint8_t subject[PT_ID_BYTES])
{
    pg_conn *c = (pg_conn *)c_base;
    pt_result r;
    if (bulk_on(c) && bulk_ident_lookup(c, tenant, type, blind, subject, &r) == 0) return r;
    pargs a = {0};
    p_i64(&a, tenant);
    p_i64(&a, type);
    p_bytes(&a, blind, PT_BLIND_BYTES);
    PGresult *res;
    r = run_now(c, S_IDENT_LOOKUP, &a, &res, NULL, "identifier lookup");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0)
        r = PT_ERR_NOT_FOUND;
    else
        col_fixed(res, 0, 0, subject, PT_ID_BYTES);
    PQclear(res);
    return r;
}

struct ident_scan {
    pt_ident_cb cb;
    void *ctx;
};

static pt_result visit_ident(const PGresult *res, void *arg, int *stop)
{
    struct ident_scan *a = arg;
    pt_ident_rec r;
    memset(&r, 0, sizeof r);
    r.tenant = (uint32_t)col_i64(res, 0, 0);
    r.type = (int)col_i64(res, 0, 1);
    col_fixed(res, 0, 2, r.blind, sizeof r.blind);
    col_fixed(res, 0, 3, r.subject, sizeof r.subject);
    r.value = col_blob(res, 0, 4, &r.value_len); /* valid during the callback */
    r.created_at = col_i64(res, 0, 5);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_ident_list(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                  pt_ident_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct ident_scan s = {cb, ctx};
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    return scan((pg_conn *)c_base, S_IDENT_LIST, &a, "identifier list", visit_ident, &s);
}

/* ------------------------------------------------------------------------
 * Events. */

static pt_result pg_db_event_insert(pt_conn *c_base, pt_event_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if ((unsigned)r->action >= PT_ACT__COUNT)
        return pt_err_set(err, PT_ERR_INVALID, "action", "unknown consent action");
    if ((unsigned)r->via >= PT_VIA__COUNT)
        return pt_err_set(err, PT_ERR_INVALID, "collected_via", "unknown collection channel");
    if (bulk_on(c)) return bulk_event_insert(c, r, err);
    pargs a = {0};
    /* the writer numbers its events itself: the seq read at BEGIN, under
     * the writer lock, and onwards (see "Deferred writes") */
    int64_t seq = deferring(c) && c->seq_next > 0 ? c->seq_next : 0;
    if (seq) p_i64(&a, seq);
    p_bytes(&a, r->id, sizeof r->id);
    p_i64(&a, r->tenant);
    p_bytes(&a, r->subject, sizeof r->subject);
    p_str(&a, r->purpose, sizeof r->purpose);
    p_str(&a, pt_action_name(r->action), SIZE_MAX);
    p_i64(&a, r->channels);
    p_opt_str(&a, r->notice, sizeof r->notice);
    p_opt_str(&a, r->notice_version, sizeof r->notice_version);
    p_opt_str(&a, r->notice_sha256, sizeof r->notice_sha256);
    p_str(&a, pt_via_name(r->via), SIZE_MAX);
    p_bytes(&a, r->evidence, r->evidence_len);
    p_opt_str(&a, r->evidence_sha256, sizeof r->evidence_sha256);
    p_i64(&a, r->occurred_at);
    p_i64(&a, r->recorded_at);
    p_opt_i64(&a, r->expires_at);
    if (seq) {
        pt_result rd = run_defer(c, S_EVENT_INSERT_SEQ, &a, K_AFFECTED1, err, "event insert");
        if (rd != PT_OK) return rd;
        c->seq_next++;
        r->seq = seq;
        return PT_OK;
    }
    PGresult *res;
    pt_result rc = run(c, S_EVENT_INSERT, &a, &res, err, "event insert");
    if (rc != PT_OK) return rc;
    int rows = PQntuples(res);
    if (rows == 1) r->seq = col_i64(res, 0, 0);
    PQclear(res);
    if (rows == 1) return PT_OK;
    return pt_err_set(err, PT_ERR_CONFLICT, "id", "an event with that id already exists");
}

struct event_scan {
    pt_event_cb cb;
    void *ctx;
};

static pt_result visit_event(const PGresult *res, void *arg, int *stop)
{
    struct event_scan *a = arg;
    pt_event_rec r;
    memset(&r, 0, sizeof r);
    r.seq = col_i64(res, 0, 0);
    col_fixed(res, 0, 1, r.id, sizeof r.id);
    r.tenant = (uint32_t)col_i64(res, 0, 2);
    col_fixed(res, 0, 3, r.subject, sizeof r.subject);
    col_str(res, 0, 4, r.purpose, sizeof r.purpose);
    char action[32], via[32];
    col_str(res, 0, 5, action, sizeof action);
    r.channels = (uint8_t)col_i64(res, 0, 6);
    col_str(res, 0, 7, r.notice, sizeof r.notice);
    col_str(res, 0, 8, r.notice_version, sizeof r.notice_version);
    col_str(res, 0, 9, r.notice_sha256, sizeof r.notice_sha256);
    col_str(res, 0, 10, via, sizeof via);
    int act = pt_action_parse(action);
    int v = pt_via_parse(via);
    if (act < 0 || v < 0) return PT_ERR_INTERNAL; /* written by a newer or broken binary */
    r.action = (pt_action)act;
    r.via = (pt_collected_via)v;
    r.evidence = col_blob(res, 0, 11, &r.evidence_len); /* valid during the callback */
    col_str(res, 0, 12, r.evidence_sha256, sizeof r.evidence_sha256);
    r.occurred_at = col_i64(res, 0, 13);
    r.recorded_at = col_i64(res, 0, 14);
    r.expires_at = col_i64(res, 0, 15);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_event_list_subject(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                          int64_t after_seq, uint32_t limit, pt_event_cb cb,
                                          void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct event_scan s = {cb, ctx};
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    p_i64(&a, after_seq);
    p_opt_i64(&a, limit); /* 0 = all: LIMIT NULL */
    return scan((pg_conn *)c_base, S_EVENT_LIST_SUBJECT, &a, "event list", visit_event, &s);
}

static pt_result pg_db_event_list_tenant(pt_conn *c_base, uint32_t tenant, int64_t after_seq,
                                         uint32_t limit, pt_event_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct event_scan s = {cb, ctx};
    pargs a = {0};
    if (tenant) p_i64(&a, tenant);
    p_i64(&a, after_seq);
    p_opt_i64(&a, limit);
    return scan((pg_conn *)c_base, tenant ? S_EVENT_LIST_TENANT : S_EVENT_LIST_ALL, &a,
                "event list", visit_event, &s);
}

static pt_result pg_db_event_max_seq(pt_conn *c_base, int64_t *out)
{
    pargs a = {0};
    PGresult *res;
    pt_result r = run((pg_conn *)c_base, S_EVENT_MAX_SEQ, &a, &res, NULL, "event max seq");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 1)
        *out = col_i64(res, 0, 0);
    else
        r = PT_ERR_INTERNAL;
    PQclear(res);
    return r;
}

/* ------------------------------------------------------------------------
 * Consent state. */

static void read_state(const PGresult *res, pt_state_rec *r)
{
    memset(r, 0, sizeof *r);
    col_fixed(res, 0, 0, r->subject, sizeof r->subject);
    r->tenant = (uint32_t)col_i64(res, 0, 1);
    r->event_seq = col_i64(res, 0, 2);
    r->st.purpose_idx = (uint16_t)col_i64(res, 0, 3);
    r->st.state = (uint8_t)col_i64(res, 0, 4);
    r->st.channels = (uint8_t)col_i64(res, 0, 5);
    r->st.revision = (uint16_t)col_i64(res, 0, 6);
    r->st.decided_at = col_i64(res, 0, 7);
    r->st.granted_at = col_i64(res, 0, 8);
    r->st.expires_at = col_i64(res, 0, 9);
    col_fixed(res, 0, 10, r->st.event, sizeof r->st.event);
}

static pt_result pg_db_state_get(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                 uint16_t purpose_idx, pt_state_rec *out)
{
    pg_conn *c = (pg_conn *)c_base;
    if (bulk_on(c)) { /* the latest row held answers, else the table's */
        state_key k = make_state_key(subject, purpose_idx);
        const pt_state_rec *held = hm_find(&c->bulk->states, &k);
        if (held) {
            *out = *held;
            return PT_OK;
        }
        /* a subject held is new: it has no state but those held */
        if (hm_find(&c->bulk->subjects, subject)) return PT_ERR_NOT_FOUND;
    }
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    p_i64(&a, purpose_idx);
    PGresult *res;
    pt_result r = run_now(c, S_STATE_GET, &a, &res, NULL, "consent state get");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0)
        r = PT_ERR_NOT_FOUND;
    else
        read_state(res, out);
    PQclear(res);
    return r;
}

static pt_result pg_db_state_put(pt_conn *c_base, const pt_state_rec *r, pt_err *err)
{
    if (bulk_on((pg_conn *)c_base)) return bulk_state_put((pg_conn *)c_base, r, err);
    pargs a = {0};
    p_bytes(&a, r->subject, sizeof r->subject);
    p_i64(&a, r->tenant);
    p_i64(&a, r->event_seq);
    p_i64(&a, r->st.purpose_idx);
    p_i64(&a, r->st.state);
    p_i64(&a, r->st.channels);
    p_i64(&a, r->st.revision);
    p_i64(&a, r->st.decided_at);
    p_opt_i64(&a, r->st.granted_at);
    p_opt_i64(&a, r->st.expires_at);
    p_bytes(&a, r->st.event, sizeof r->st.event);
    if (deferring((pg_conn *)c_base))
        return run_defer((pg_conn *)c_base, S_STATE_PUT, &a, K_OK, err, "consent state put");
    PGresult *res;
    pt_result rc = run((pg_conn *)c_base, S_STATE_PUT, &a, &res, err, "consent state put");
    PQclear(res);
    return rc;
}

struct state_scan {
    pt_state_cb cb;
    void *ctx;
};

static pt_result visit_state(const PGresult *res, void *arg, int *stop)
{
    struct state_scan *a = arg;
    pt_state_rec r;
    read_state(res, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_state_list_subject(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                          pt_state_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct state_scan s = {cb, ctx};
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    return scan((pg_conn *)c_base, S_STATE_LIST_SUBJECT, &a, "consent state list", visit_state, &s);
}

static pt_result pg_db_state_scan(pt_conn *c_base, int64_t after_seq, pt_state_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct state_scan s = {cb, ctx};
    pargs a = {0};
    if (after_seq > 0) p_i64(&a, after_seq);
    return scan((pg_conn *)c_base, after_seq > 0 ? S_STATE_SCAN_AFTER : S_STATE_SCAN_ALL, &a,
                "consent state scan", visit_state, &s);
}

/* ------------------------------------------------------------------------
 * The proof log. Indexes are uint64_t in store.h and BIGINT here: an index
 * past INT64_MAX cannot be stored, so it is refused on write and found
 * nowhere on read. */

static pt_result pg_db_log_leaf_insert(pt_conn *c_base, const pt_leaf_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (r->idx > INT64_MAX) return pt_err_set(err, PT_ERR_INVALID, "", "leaf index out of range");
    if (bulk_on(c)) return bulk_leaf_insert(c, r, err);
    pargs a = {0};
    p_i64(&a, r->tenant);
    p_i64(&a, (int64_t)r->idx);
    p_bytes(&a, r->ref, sizeof r->ref);
    p_bytes(&a, r->hash, sizeof r->hash);
    p_bytes(&a, r->data ? (const void *)r->data : "", r->data ? r->len : 0);
    if (deferring(c)) return run_defer(c, S_LOG_LEAF_INSERT, &a, K_AFFECTED1, err, "log leaf insert");
    PGresult *res;
    pt_result rc = run(c, S_LOG_LEAF_INSERT, &a, &res, err, "log leaf insert");
    if (rc != PT_OK) return rc;
    int64_t n = affected(res);
    PQclear(res);
    if (n == 1) return PT_OK;
    return pt_err_set(err, PT_ERR_CONFLICT, "", "that leaf is already in the log");
}

static pt_result pg_db_log_node_put(pt_conn *c_base, uint32_t tenant, unsigned level, uint64_t idx,
                                    const uint8_t hash[PT_LOG_HASH], pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (idx > INT64_MAX) return pt_err_set(err, PT_ERR_INVALID, "", "node index out of range");
    if (bulk_on(c)) return bulk_node_put(c, tenant, level, idx, hash, err);
    pargs a = {0};
    p_i64(&a, tenant);
    p_i64(&a, level);
    p_i64(&a, (int64_t)idx);
    p_bytes(&a, hash, PT_LOG_HASH);
    if (deferring(c)) return run_defer(c, S_LOG_NODE_PUT, &a, K_ONE, err, "log node insert");
    PGresult *res;
    pt_result rc = run(c, S_LOG_NODE_PUT, &a, &res, err, "log node insert");
    if (rc != PT_OK) return rc;
    int64_t n = PQntuples(res) == 1 ? col_i64(res, 0, 0) : -1;
    PQclear(res);
    if (n == 1) return PT_OK;
    if (n < 0) return pt_err_set(err, PT_ERR_INTERNAL, "", "log node insert: unexpected result");
    /* The same subtree cannot have two hashes: the tree would be forked. */
    return pt_err_set(err, PT_ERR_CONFLICT, "",
                      "the log already holds another hash for that subtree");
}

static pt_result pg_db_log_node_get(pt_conn *c_base, uint32_t tenant, unsigned level, uint64_t idx,
                                    uint8_t hash[PT_LOG_HASH])
{
    pg_conn *c = (pg_conn *)c_base;
    if (idx > INT64_MAX) return PT_ERR_NOT_FOUND;
    pargs a = {0};
    p_i64(&a, tenant);
    if (level) p_i64(&a, level);
    p_i64(&a, (int64_t)idx);
    PGresult *res;
    pt_result r = run(c, level ? S_LOG_NODE_GET : S_LOG_LEAF_HASH, &a, &res, NULL, "log node read");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0)
        r = PT_ERR_NOT_FOUND;
    else if (PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) != PT_LOG_HASH)
        r = PT_ERR_INTERNAL; /* a foreign or damaged database */
    else
        memcpy(hash, PQgetvalue(res, 0, 0), PT_LOG_HASH);
    PQclear(res);
    return r;
}

/* The record borrows data from res (valid until PQclear). */
static void read_leaf(const PGresult *res, pt_leaf_rec *r)
{
    memset(r, 0, sizeof *r);
    r->tenant = (uint32_t)col_i64(res, 0, 0);
    r->idx = (uint64_t)col_i64(res, 0, 1);
    col_fixed(res, 0, 2, r->ref, sizeof r->ref);
    col_fixed(res, 0, 3, r->hash, sizeof r->hash);
    r->data = col_blob(res, 0, 4, &r->len);
}

/* One row, read in full before cb runs: cb may call back into the store on
 * this connection, even inside a transaction. */
static pt_result pg_db_log_leaf_by_ref(pt_conn *c_base, uint32_t tenant,
                                       const uint8_t ref[PT_ID_BYTES], pt_leaf_cb cb, void *ctx)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    pargs a = {0};
    p_i64(&a, tenant);
    p_bytes(&a, ref, PT_ID_BYTES);
    PGresult *res;
    pt_result r = run(c, S_LOG_LEAF_BY_REF, &a, &res, NULL, "log leaf read");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0) {
        r = PT_ERR_NOT_FOUND;
    } else {
        pt_leaf_rec leaf;
        read_leaf(res, &leaf);
        cb(ctx, &leaf);
    }
    PQclear(res);
    return r;
}

struct leaf_scan {
    pt_leaf_cb cb;
    void *ctx;
};

static pt_result visit_leaf(const PGresult *res, void *arg, int *stop)
{
    struct leaf_scan *a = arg;
    pt_leaf_rec r;
    read_leaf(res, &r); /* data valid during the callback */
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_log_leaf_list(pt_conn *c_base, uint32_t tenant, uint64_t start,
                                     uint64_t end, pt_leaf_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    if (start > INT64_MAX || start >= end) return PT_OK;
    if (end > INT64_MAX) end = INT64_MAX; /* e.g. UINT64_MAX: to the end */
    struct leaf_scan s = {cb, ctx};
    pargs a = {0};
    p_i64(&a, tenant);
    p_i64(&a, (int64_t)start);
    p_i64(&a, (int64_t)end);
    return scan((pg_conn *)c_base, S_LOG_LEAF_LIST, &a, "log leaf list", visit_leaf, &s);
}

static pt_result read_head(const PGresult *res, pt_log_head_rec *h)
{
    memset(h, 0, sizeof *h);
    h->tenant = (uint32_t)col_i64(res, 0, 0);
    h->size = (uint64_t)col_i64(res, 0, 1);
    col_fixed(res, 0, 2, h->root, sizeof h->root);
    h->event_seq = col_i64(res, 0, 3);
    /* never hand back a silently truncated (so unverifiable) checkpoint */
    if (!PQgetisnull(res, 0, 4) && (size_t)PQgetlength(res, 0, 4) >= sizeof h->checkpoint)
        return PT_ERR_TOO_LARGE;
    col_str(res, 0, 4, h->checkpoint, sizeof h->checkpoint);
    h->signed_at = col_i64(res, 0, 5);
    return PT_OK;
}

static pt_result pg_db_log_head_get(pt_conn *c_base, uint32_t tenant, pt_log_head_rec *out)
{
    pargs a = {0};
    p_i64(&a, tenant);
    PGresult *res;
    pt_result r = run((pg_conn *)c_base, S_LOG_HEAD_GET, &a, &res, NULL, "log head read");
    if (r != PT_OK) return r;
    r = PQntuples(res) == 0 ? PT_ERR_NOT_FOUND : read_head(res, out);
    PQclear(res);
    return r;
}

static pt_result pg_db_log_head_put(pt_conn *c_base, const pt_log_head_rec *r, pt_err *err)
{
    if (r->size > INT64_MAX) return pt_err_set(err, PT_ERR_INVALID, "", "tree size out of range");
    pargs a = {0};
    p_i64(&a, r->tenant);
    p_i64(&a, (int64_t)r->size);
    p_bytes(&a, r->root, sizeof r->root);
    p_i64(&a, r->event_seq);
    p_str(&a, r->checkpoint, sizeof r->checkpoint);
    p_i64(&a, r->signed_at);
    if (deferring((pg_conn *)c_base))
        return run_defer((pg_conn *)c_base, S_LOG_HEAD_PUT, &a, K_OK, err, "log head write");
    PGresult *res;
    pt_result rc = run((pg_conn *)c_base, S_LOG_HEAD_PUT, &a, &res, err, "log head write");
    PQclear(res);
    return rc;
}

struct head_scan {
    pt_log_head_cb cb;
    void *ctx;
    pt_log_head_rec h; /* 2 KiB: kept off the stack of every row */
};

static pt_result visit_head(const PGresult *res, void *arg, int *stop)
{
    struct head_scan *a = arg;
    pt_result r = read_head(res, &a->h);
    if (r != PT_OK) return r;
    *stop = a->cb(a->ctx, &a->h);
    return PT_OK;
}

static pt_result pg_db_log_head_list(pt_conn *c_base, pt_log_head_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct head_scan *s = malloc(sizeof *s);
    if (!s) return PT_ERR_NOMEM;
    s->cb = cb;
    s->ctx = ctx;
    pargs a = {0};
    pt_result r = scan((pg_conn *)c_base, S_LOG_HEAD_LIST, &a, "log head list", visit_head, s);
    free(s);
    return r;
}

static pt_result pg_db_log_key_add(pt_conn *c_base, const char *verifier, int64_t at, pt_err *err)
{
    if (!verifier || !*verifier) return pt_err_set(err, PT_ERR_INVALID, "", "no public key");
    pargs a = {0};
    p_str(&a, verifier, SIZE_MAX);
    p_i64(&a, at);
    PGresult *res;
    pt_result rc = run((pg_conn *)c_base, S_LOG_KEY_ADD, &a, &res, err, "log key write");
    PQclear(res); /* no row inserted: the key was listed already */
    return rc;
}

struct log_key_scan {
    pt_log_key_cb cb;
    void *ctx;
};

static pt_result visit_log_key(const PGresult *res, void *arg, int *stop)
{
    struct log_key_scan *a = arg;
    /* libpq ends every value with a NUL, binary ones too; text holds none */
    const char *v = PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
    *stop = a->cb(a->ctx, v, col_i64(res, 0, 1));
    return PT_OK;
}

static pt_result pg_db_log_key_list(pt_conn *c_base, pt_log_key_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct log_key_scan s = {cb, ctx};
    pargs a = {0};
    return scan((pg_conn *)c_base, S_LOG_KEY_LIST, &a, "log key list", visit_log_key, &s);
}

struct log_node_scan {
    pt_log_node_cb cb;
    void *ctx;
};

static pt_result visit_log_node(const PGresult *res, void *arg, int *stop)
{
    struct log_node_scan *a = arg;
    uint8_t hash[PT_LOG_HASH];
    col_fixed(res, 0, 3, hash, sizeof hash);
    *stop = a->cb(a->ctx, (uint32_t)col_i64(res, 0, 0), (unsigned)col_i64(res, 0, 1),
                  (uint64_t)col_i64(res, 0, 2), hash);
    return PT_OK;
}

static pt_result pg_db_log_node_list(pt_conn *c_base, uint32_t tenant, pt_log_node_cb cb,
                                     void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct log_node_scan s = {cb, ctx};
    pargs a = {0};
    p_i64(&a, tenant);
    return scan((pg_conn *)c_base, S_LOG_NODE_LIST, &a, "log node list", visit_log_node, &s);
}

/* ------------------------------------------------------------------------
 * Identity across devices: merged ids (aliases). */

static pt_result pg_db_subject_resolve(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                       pt_subject_rec *out)
{
    pg_conn *c = (pg_conn *)c_base;
    pt_result r;
    if (bulk_subject_held(c, id, out, &r)) return r; /* (postgres.c, "Bulk mode") */
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    PGresult *res;
    r = run_now(c, S_SUBJECT_RESOLVE, &a, &res, NULL, "subject resolve");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return PT_ERR_NOT_FOUND;
    }
    read_subject(res, out);
    size_t n;
    const uint8_t *p = col_blob(res, 0, 8, &n);
    if (p) {
        out->profile = malloc(n ? n : 1);
        if (!out->profile) {
            r = PT_ERR_NOMEM;
        } else {
            if (n) memcpy(out->profile, p, n);
            out->profile_len = n;
        }
    }
    PQclear(res);
    return r;
}

static void read_alias(const PGresult *res, pt_alias_rec *r)
{
    memset(r, 0, sizeof *r);
    r->seq = col_i64(res, 0, 0);
    col_fixed(res, 0, 1, r->id, sizeof r->id);
    r->tenant = (uint32_t)col_i64(res, 0, 2);
    col_fixed(res, 0, 3, r->subject, sizeof r->subject);
    col_fixed(res, 0, 4, r->merge, sizeof r->merge);
    r->merged_at = col_i64(res, 0, 5);
}

static pt_result pg_db_alias_insert(pt_conn *c_base, pt_alias_rec *r, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, r->id, sizeof r->id);
    p_i64(&a, r->tenant);
    p_bytes(&a, r->subject, sizeof r->subject);
    p_bytes(&a, r->merge, sizeof r->merge);
    p_i64(&a, r->merged_at);
    PGresult *res;
    pt_result rc = run(c, S_ALIAS_INSERT, &a, &res, err, "alias insert");
    if (rc != PT_OK) return rc;
    int rows = PQntuples(res);
    if (rows == 1) r->seq = col_i64(res, 0, 0);
    PQclear(res);
    if (rows == 1) return PT_OK;
    return pt_err_set(err, PT_ERR_CONFLICT, "from", "this subject was already merged");
}

static pt_result pg_db_alias_get(pt_conn *c_base, const uint8_t id[PT_ID_BYTES], pt_alias_rec *out)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    PGresult *res;
    pt_result r = run(c, S_ALIAS_GET, &a, &res, NULL, "alias get");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 0)
        r = PT_ERR_NOT_FOUND;
    else
        read_alias(res, out);
    PQclear(res);
    return r;
}

static pt_result pg_db_alias_repoint(pt_conn *c_base, const uint8_t from[PT_ID_BYTES],
                                     const uint8_t to[PT_ID_BYTES], pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, from, PT_ID_BYTES);
    p_bytes(&a, to, PT_ID_BYTES);
    PGresult *res;
    pt_result r = run(c, S_ALIAS_REPOINT, &a, &res, err, "alias repoint");
    if (r == PT_OK) PQclear(res);
    return r;
}

struct alias_scan {
    pt_alias_cb cb;
    void *ctx;
};

static pt_result visit_alias(const PGresult *res, void *arg, int *stop)
{
    struct alias_scan *a = arg;
    pt_alias_rec r;
    read_alias(res, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_alias_list(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                  pt_alias_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct alias_scan s = {cb, ctx};
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    return scan((pg_conn *)c_base, S_ALIAS_LIST, &a, "alias list", visit_alias, &s);
}

static pt_result pg_db_alias_scan(pt_conn *c_base, int64_t after_seq, pt_alias_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct alias_scan s = {cb, ctx};
    pargs a = {0};
    p_i64(&a, after_seq);
    return scan((pg_conn *)c_base, S_ALIAS_SCAN, &a, "alias scan", visit_alias, &s);
}

static pt_result pg_db_ident_move(pt_conn *c_base, uint32_t tenant, int type,
                                  const uint8_t blind[PT_BLIND_BYTES],
                                  const uint8_t subject[PT_ID_BYTES], const uint8_t *value,
                                  size_t len, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_i64(&a, tenant);
    p_i64(&a, type);
    p_bytes(&a, blind, PT_BLIND_BYTES);
    p_bytes(&a, subject, PT_ID_BYTES);
    p_bytes(&a, value, len);
    PGresult *res;
    pt_result r = run(c, S_IDENT_MOVE, &a, &res, err, "identifier move");
    if (r != PT_OK) return r;
    int64_t n = affected(res);
    PQclear(res);
    return n ? PT_OK : PT_ERR_NOT_FOUND;
}

static pt_result pg_db_state_delete_subject(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                            pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    PGresult *res;
    pt_result r = run(c, S_STATE_DELETE_SUBJECT, &a, &res, err, "consent state delete");
    if (r == PT_OK) PQclear(res);
    return r;
}

static pt_result pg_db_event_list_person(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                         int64_t after_seq, uint32_t limit, pt_event_cb cb,
                                         void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct event_scan s = {cb, ctx};
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    p_i64(&a, after_seq);
    p_opt_i64(&a, limit); /* 0 = all: LIMIT NULL */
    return scan((pg_conn *)c_base, S_EVENT_LIST_PERSON, &a, "event list", visit_event, &s);
}

/* ------------------------------------------------------------------------
 * Erasure, backups, key rotation. */

static pt_result pg_db_subject_erase(pt_conn *c_base, const uint8_t id[PT_ID_BYTES], int64_t at,
                                     int64_t *identifiers, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (identifiers) *identifiers = 0;
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    p_i64(&a, at);
    PGresult *res;
    pt_result r = run(c, S_SUBJECT_ERASE, &a, &res, err, "subject erase");
    if (r != PT_OK) return r;
    int64_t n = affected(res);
    PQclear(res);
    if (n == 0)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such subject, or erased already");
    pargs b = {0};
    p_bytes(&b, id, PT_ID_BYTES);
    r = run(c, S_IDENT_ERASE, &b, &res, err, "identifier erase");
    if (r != PT_OK) return r;
    if (identifiers) *identifiers = affected(res);
    PQclear(res);
    return PT_OK;
}

struct erased_scan {
    pt_erased_cb cb;
    void *ctx;
};

static pt_result visit_erased(const PGresult *res, void *arg, int *stop)
{
    struct erased_scan *a = arg;
    pt_subject_rec r;
    read_subject(res, &r);
    *stop = a->cb(a->ctx, &r, col_i64(res, 0, 8));
    return PT_OK;
}

static pt_result pg_db_subject_erased_scan(pt_conn *c_base, int64_t after_seq, pt_erased_cb cb,
                                           void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct erased_scan s = {cb, ctx};
    pargs a = {0};
    p_i64(&a, after_seq);
    return scan((pg_conn *)c_base, S_SUBJECT_ERASED_SCAN, &a, "erased subject scan",
                visit_erased, &s);
}

static pt_result pg_db_subject_rewrap(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                      uint32_t epoch, const uint8_t wrapped[PT_WRAPPED_KEY_BYTES],
                                      pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    p_i64(&a, epoch);
    p_bytes(&a, wrapped, PT_WRAPPED_KEY_BYTES);
    PGresult *res;
    pt_result r = run(c, S_SUBJECT_REWRAP, &a, &res, err, "subject key rewrap");
    if (r != PT_OK) return r;
    int64_t n = affected(res);
    PQclear(res);
    return n ? PT_OK : pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such live subject");
}

/* PostgreSQL never overwrites a row in place: an erasure leaves the old
 * row version (wrapped key, sealed profile) as a dead tuple in its heap
 * page, and the deleted identifiers' entries (blind-index values) in the
 * indexes, until VACUUM prunes them; pruned space is not zeroed, and the
 * bytes stay in the WAL segments until those are recycled, and in any WAL
 * archive or base backup for as long as those are kept. The VACUUM here
 * makes the live tables forget them now rather than whenever autovacuum
 * comes by; the rest is what KEK rotation is for (docs/architecture.md,
 * "Erasure"). INDEX_CLEANUP ON removes the index entries even when the
 * dead tuples are few, which costs a pass over each index: so it runs on
 * a thread and connection of its own, never holding up the writer, and
 * SKIP_LOCKED leaves a table that another VACUUM holds to that one. */
static void *vacuum_main(void *arg)
{
    pg_store *s = arg;
    for (;;) {
        PGconn *pg = pg_connect(s->url, NULL, "vacuum after an erasure");
        pthread_mutex_lock(&s->vac_mu);
        if (pg && !s->vac_stop) s->vac_cancel = PQgetCancel(pg);
        bool stop = s->vac_stop;
        pthread_mutex_unlock(&s->vac_mu);
        if (pg && !stop)
            PQclear(PQexec(pg, "VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON) subjects, identifiers"));
        pthread_mutex_lock(&s->vac_mu);
        if (s->vac_cancel) PQfreeCancel(s->vac_cancel);
        s->vac_cancel = NULL;
        bool again = s->vac_again && !s->vac_stop;
        s->vac_again = false;
        if (!again) s->vac_running = false;
        pthread_mutex_unlock(&s->vac_mu);
        if (pg) PQfinish(pg);
        if (!again) return NULL;
    }
}

/* At close: a VACUUM under way is cancelled (it is only an early start on
 * autovacuum's work) and its thread joined. */
static void vacuum_stop(pg_store *s)
{
    pthread_mutex_lock(&s->vac_mu);
    s->vac_stop = true;
    if (s->vac_cancel) {
        char buf[128];
        PQcancel(s->vac_cancel, buf, sizeof buf);
    }
    bool join = s->vac_joinable;
    s->vac_joinable = false;
    pthread_mutex_unlock(&s->vac_mu);
    if (join) pthread_join(s->vac_thread, NULL);
}

static pt_result pg_db_scrub(pt_conn *c_base, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    pg_store *s = c->store;
    if (c->in_tx || c->streaming)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "VACUUM cannot run in a transaction");
    pt_result r = PT_OK;
    pthread_mutex_lock(&s->vac_mu);
    if (s->vac_stop) {
        /* closing */
    } else if (s->vac_running) {
        s->vac_again = true;
    } else {
        if (s->vac_joinable) pthread_join(s->vac_thread, NULL); /* finished: reap it */
        s->vac_joinable = false;
        s->vac_running = true;
        if (pthread_create(&s->vac_thread, NULL, vacuum_main, s) == 0) {
            s->vac_joinable = true;
        } else {
            s->vac_running = false;
            r = pt_err_set(err, PT_ERR_INTERNAL, "", "cannot start the VACUUM after an erasure");
        }
    }
    pthread_mutex_unlock(&s->vac_mu);
    return r;
}

static pt_result pg_db_backup(pt_conn *c_base, const char *dest, pt_err *err)
{
    (void)c_base;
    (void)dest;
    return pt_err_set(err, PT_ERR_INVALID, "db",
                      "patto backup copies SQLite databases only; back PostgreSQL up with "
                      "pg_dump or continuous archiving (PITR)");
}

static pt_result pg_db_restore(pt_conn *c_base, const char *src, pt_err *err)
{
    (void)c_base;
    (void)src;
    return pt_err_set(err, PT_ERR_INVALID, "db",
                      "patto restore restores SQLite databases only; restore PostgreSQL with "
                      "pg_restore or PITR, then start patto serve, which replays the erasure "
                      "journal");
}

/* ------------------------------------------------------------------------
 * Statistics of anonymised people. */

static pt_result pg_db_stats_insert(pt_conn *c_base, const pt_stat_rec *r, pt_err *err)
{
    pargs a = {0};
    p_i64(&a, r->tenant);
    p_str(&a, r->age, sizeof r->age);
    p_str(&a, r->region, sizeof r->region);
    p_str(&a, r->sex, sizeof r->sex);
    p_str(&a, r->states ? r->states : "{}", PT_STAT_STATES_MAX);
    p_i64(&a, r->created_at);
    PGresult *res;
    pt_result rc = run((pg_conn *)c_base, S_STATS_INSERT, &a, &res, err, "statistics insert");
    PQclear(res);
    return rc;
}

static pt_result pg_db_stats_count(pt_conn *c_base, uint32_t tenant, const char *age,
                                   const char *region, const char *sex, int64_t *out)
{
    pargs a = {0};
    p_i64(&a, tenant);
    p_str(&a, age, PT_STAT_AGE_MAX + 1);
    p_str(&a, region, PT_STAT_REGION_MAX + 1);
    p_str(&a, sex, PT_STAT_SEX_MAX + 1);
    PGresult *res;
    pt_result rc = run((pg_conn *)c_base, S_STATS_COUNT, &a, &res, NULL, "statistics count");
    if (rc == PT_OK) *out = PQntuples(res) ? col_i64(res, 0, 0) : 0;
    PQclear(res);
    return rc;
}

struct stat_scan {
    pt_stat_cb cb;
    void *ctx;
};

static pt_result visit_stat(const PGresult *res, void *arg, int *stop)
{
    struct stat_scan *a = arg;
    pt_stat_rec r;
    memset(&r, 0, sizeof r);
    r.tenant = (uint32_t)col_i64(res, 0, 0);
    col_str(res, 0, 1, r.age, sizeof r.age);
    col_str(res, 0, 2, r.region, sizeof r.region);
    col_str(res, 0, 3, r.sex, sizeof r.sex);
    r.states = PQgetisnull(res, 0, 4) ? "{}" : PQgetvalue(res, 0, 4);
    r.created_at = col_i64(res, 0, 5);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result pg_db_stats_list(pt_conn *c_base, uint32_t tenant, pt_stat_cb cb, void *ctx)
{
    if (!cb) return PT_ERR_INVALID;
    struct stat_scan s = {cb, ctx};
    pargs a = {0};
    p_i64(&a, tenant);
    return scan((pg_conn *)c_base, S_STATS_LIST, &a, "statistics list", visit_stat, &s);
}

/* ------------------------------------------------------------------------
 * The dispatch table. */

const pt_store_ops pt_postgres_ops = {
    .name = "postgres",
    .accepts = pg_accepts,
    .store_open = pg_store_open,
    .store_close = pg_store_close,
    .store_schema_version = pg_store_schema_version,
    .conn_open = pg_conn_open,
    .conn_close = pg_conn_close,
    .conn_tune = pg_conn_tune,
    .tx_begin = pg_tx_begin,
    .tx_commit = pg_tx_commit,
    .tx_rollback = pg_tx_rollback,
    .tx_savepoint = pg_tx_savepoint,
    .tx_release = pg_tx_release,
    .tx_rollback_to = pg_tx_rollback_to,
    .db_data_version = pg_db_data_version,
    .db_meta_get = pg_db_meta_get,
    .db_meta_set = pg_db_meta_set,
    .db_tenant_insert = pg_db_tenant_insert,
    .db_tenant_by_name = pg_db_tenant_by_name,
    .db_tenant_by_id = pg_db_tenant_by_id,
    .db_tenant_list = pg_db_tenant_list,
    .db_key_insert = pg_db_key_insert,
    .db_key_list = pg_db_key_list,
    .db_key_revoke = pg_db_key_revoke,
    .db_purpose_put = pg_db_purpose_put,
    .db_purpose_get = pg_db_purpose_get,
    .db_purpose_list = pg_db_purpose_list,
    .db_notice_insert = pg_db_notice_insert,
    .db_notice_get = pg_db_notice_get,
    .db_notice_list = pg_db_notice_list,
    .db_subject_insert = pg_db_subject_insert,
    .db_subject_get = pg_db_subject_get,
    .db_subject_update_profile = pg_db_subject_update_profile,
    .db_subject_scan = pg_db_subject_scan,
    .db_ident_insert = pg_db_ident_insert,
    .db_ident_lookup = pg_db_ident_lookup,
    .db_ident_list = pg_db_ident_list,
    .db_event_insert = pg_db_event_insert,
    .db_event_list_subject = pg_db_event_list_subject,
    .db_event_list_tenant = pg_db_event_list_tenant,
    .db_event_max_seq = pg_db_event_max_seq,
    .db_state_get = pg_db_state_get,
    .db_state_put = pg_db_state_put,
    .db_state_list_subject = pg_db_state_list_subject,
    .db_state_scan = pg_db_state_scan,
    .db_log_leaf_insert = pg_db_log_leaf_insert,
    .db_log_node_put = pg_db_log_node_put,
    .db_log_node_get = pg_db_log_node_get,
    .db_log_leaf_by_ref = pg_db_log_leaf_by_ref,
    .db_log_leaf_list = pg_db_log_leaf_list,
    .db_log_head_get = pg_db_log_head_get,
    .db_log_head_put = pg_db_log_head_put,
    .db_log_head_list = pg_db_log_head_list,
    .db_log_key_add = pg_db_log_key_add,
    .db_log_key_list = pg_db_log_key_list,
    .db_log_node_list = pg_db_log_node_list,
    .db_subject_resolve = pg_db_subject_resolve,
    .db_alias_insert = pg_db_alias_insert,
    .db_alias_get = pg_db_alias_get,
    .db_alias_repoint = pg_db_alias_repoint,
    .db_alias_list = pg_db_alias_list,
    .db_alias_scan = pg_db_alias_scan,
    .db_ident_move = pg_db_ident_move,
    .db_state_delete_subject = pg_db_state_delete_subject,
    .db_event_list_person = pg_db_event_list_person,
    .db_subject_erase = pg_db_subject_erase,
    .db_subject_erased_scan = pg_db_subject_erased_scan,
    .db_subject_rewrap = pg_db_subject_rewrap,
    .db_scrub = pg_db_scrub,
    .db_backup = pg_db_backup,
    .db_restore = pg_db_restore,
    .db_stats_insert = pg_db_stats_insert,
    .db_stats_count = pg_db_stats_count,
    .db_stats_list = pg_db_stats_list,
};
