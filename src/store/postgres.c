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
 * tolerate).
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

static const char *const *const MIGRATIONS[] = {MIGRATION_1, MIGRATION_2};
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
    S__COUNT
};

#define KEY_COLS "id, tenant_id, role, hash, label, created_at, revoked_at"
#define PURPOSE_COLS                                                                               \
    "tenant_id, name, idx, basis, validity_days, renew_before_days, channels, revision, title, "   \
    "description, dpv, created_at, updated_at"
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
                            "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
                            "ON CONFLICT(tenant_id, name) DO UPDATE SET "
                            "basis = excluded.basis, validity_days = excluded.validity_days, "
                            "renew_before_days = excluded.renew_before_days, "
                            "channels = excluded.channels, revision = excluded.revision, "
                            "title = excluded.title, description = excluded.description, "
                            "dpv = excluded.dpv, updated_at = excluded.updated_at "
                            "WHERE purposes.idx = excluded.idx",
                       "ititiiiitttii"},
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
};

/* ------------------------------------------------------------------------
 * Types. */

typedef struct pg_store {
    struct pt_store base; /* first: the dispatch table */
    char *url;
    int schema_version;
} pg_store;

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
    if (conn_bad(c)) return conn_fail(c->pg, err, what);
    if (session_setup(c->pg) != 0)
        return pt_err_set(err, PT_ERR_STORAGE, "", "%s: cannot set up the database session", what);
    return PT_OK;
}

/* The connection to run a statement on: c itself, or while c is busy
 * with a scan (a callback calling back), its side connection. */
static pt_result target(pg_conn *c, pg_conn **out, pt_err *err, const char *what)
{
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
static pt_result exec_sql(pg_conn *c, const char *sql, pt_err *err, const char *what)
{
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

/* Runs a prepared statement to completion; *out (on PT_OK) must be
 * PQclear'ed. */
static pt_result run(pg_conn *c0, enum stmt_id id, const pargs *a, PGresult **out, pt_err *err,
                     const char *what)
{
    *out = NULL;
    pg_conn *c;
    pt_result r = target(c0, &c, err, what);
    if (r != PT_OK) return r;
    for (int attempt = 0;; attempt++) {
        r = ready(c, err, what);
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

typedef pt_result (*visit_fn)(const PGresult *res, void *arg, int *stop);

/* Streams every row of a statement to visit, one row in memory at a time. */
static pt_result scan(pg_conn *c0, enum stmt_id id, const pargs *a, const char *what,
                      visit_fn visit, void *arg)
{
    pg_conn *c;
    pt_result r = target(c0, &c, NULL, what);
    if (r != PT_OK) return r;
    for (int attempt = 0;; attempt++) {
        r = ready(c, NULL, what);
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

static void pg_store_close(pt_store *base)
{
    pg_store *s = (pg_store *)base;
    if (!s) return;
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
    s->url = strdup(url);
    if (!s->url) {
        free(s);
        return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    s->base.ops = &pt_postgres_ops;
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
        r = exec_sql(c,
                     "BEGIN; SET LOCAL lock_timeout = " LOCK_TIMEOUT ";"
                     "SELECT pg_advisory_xact_lock(" LOCK_WRITER ")",
                     err, "transaction begin");
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
    c->release_pending = c->sp_wanted = c->sp_open = false;
    return PT_OK;
}

static pt_result pg_tx_commit(pt_conn *c_base, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
    if (!c->in_tx)
        return pt_err_set(err, PT_ERR_STORAGE, "",
                          "transaction was rolled back by an earlier storage error");
    c->release_pending = c->sp_wanted = c->sp_open = false; /* COMMIT releases them all */
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
    PGresult *res = PQexec(c->pg, "COMMIT");
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
    c->in_tx = false;
    c->release_pending = c->sp_wanted = c->sp_open = false;
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
    if (c->sp_wanted || c->sp_open)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "savepoint: savepoints do not nest");
    if (conn_bad(c))
        return pt_err_set(err, PT_ERR_STORAGE, "", "savepoint: database connection lost");
    c->sp_wanted = true;
    return PT_OK;
}

static pt_result pg_tx_release(pt_conn *c_base, pt_err *err)
{
    pg_conn *c = (pg_conn *)c_base;
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

static pt_result pg_db_data_version(pt_conn *c_base, int64_t *out)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    PGresult *res;
    pt_result r = run(c, S_DATA_VERSION, &a, &res, NULL, "data version");
    if (r != PT_OK) return r;
    if (PQntuples(res) == 1)
        *out = col_i64(res, 0, 0);
    else
        r = PT_ERR_INTERNAL;
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

static pt_result pg_db_subject_get(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                   pt_subject_rec *out)
{
    pg_conn *c = (pg_conn *)c_base;
    pargs a = {0};
    p_bytes(&a, id, PT_ID_BYTES);
    PGresult *res;
    pt_result r = run(c, S_SUBJECT_GET, &a, &res, NULL, "subject get");
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
    pargs a = {0};
    p_i64(&a, tenant);
    p_i64(&a, type);
    p_bytes(&a, blind, PT_BLIND_BYTES);
    PGresult *res;
    pt_result r = run(c, S_IDENT_LOOKUP, &a, &res, NULL, "identifier lookup");
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
    pargs a = {0};
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
    pargs a = {0};
    p_bytes(&a, subject, PT_ID_BYTES);
    p_i64(&a, purpose_idx);
    PGresult *res;
    pt_result r = run((pg_conn *)c_base, S_STATE_GET, &a, &res, NULL, "consent state get");
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
    pargs a = {0};
    p_i64(&a, r->tenant);
    p_i64(&a, (int64_t)r->idx);
    p_bytes(&a, r->ref, sizeof r->ref);
    p_bytes(&a, r->hash, sizeof r->hash);
    p_bytes(&a, r->data ? (const void *)r->data : "", r->data ? r->len : 0);
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
    pargs a = {0};
    p_i64(&a, tenant);
    p_i64(&a, level);
    p_i64(&a, (int64_t)idx);
    p_bytes(&a, hash, PT_LOG_HASH);
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
 * The dispatch table. */

const pt_store_ops pt_postgres_ops = {
    .name = "postgres",
    .accepts = pg_accepts,
    .store_open = pg_store_open,
    .store_close = pg_store_close,
    .store_schema_version = pg_store_schema_version,
    .conn_open = pg_conn_open,
    .conn_close = pg_conn_close,
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
};
