/* sqlite.c - the SQLite backend of store.h.
 *
 * One sqlite_store is a path (plus the VFS to use); connections are opened on
 * demand, one sqlite3 handle each, opened SQLITE_OPEN_NOMUTEX because a
 * sqlite_conn is used by one thread at a time and the library's own global
 * state is serialised by SQLite itself (we refuse a SQLITE_THREADSAFE=0
 * build). Every connection runs in WAL mode with synchronous=FULL, so a
 * COMMIT returns only once the WAL is fsynced.
 *
 * Statements are prepared lazily, once per connection, into a fixed array
 * indexed by enum stmt_id, and reset after each use. Scans step the
 * statement and hand each row to the callback, so nothing is ever
 * materialised. If a callback re-enters the same operation on the same
 * connection, the nested call gets a private one-shot statement instead of
 * resetting the one being iterated.
 *
 * Error details name only the kind of object and the operation, never a
 * value: values are personal data or key material. For the same reason we
 * never copy sqlite3_errmsg() (it can quote values) into a pt_err. */
#include "backend.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Schema migrations. Append only: never edit a shipped entry, add a new
 * one. Entry i is schema version i + 1. Each pending migration runs in its
 * own BEGIN IMMEDIATE ... COMMIT together with its schema_migrations row,
 * so a crash mid-migration rolls back and the next start resumes there. */

static const char *const MIGRATIONS[] = {
    /* 1: initial schema. Optional times ("0 = none") are stored as NULL. */
    "CREATE TABLE meta("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"

    "CREATE TABLE tenants("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL);"

    "CREATE TABLE api_keys("
    "  id BLOB PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  role INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  label TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER);"
    "CREATE INDEX api_keys_tenant ON api_keys(tenant_id);"

    "CREATE TABLE purposes("
    "  tenant_id INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  basis TEXT NOT NULL,"
    "  validity_days INTEGER NOT NULL,"
    "  renew_before_days INTEGER NOT NULL,"
    "  channels INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  title TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  dpv TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY(tenant_id, name),"
    "  UNIQUE(tenant_id, idx));"

    "CREATE TABLE notices("
    "  tenant_id INTEGER NOT NULL,"
    "  notice TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  id BLOB NOT NULL UNIQUE,"
    "  language TEXT NOT NULL,"
    "  text TEXT NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY(tenant_id, notice, version));"

    /* row is the rowid: it only grows because subjects are never deleted
     * (erasure clears wrapped_dek/profile and sets erased_at). */
    "CREATE TABLE subjects("
    "  row INTEGER PRIMARY KEY,"
    "  id BLOB NOT NULL UNIQUE,"
    "  tenant_id INTEGER NOT NULL,"
    "  kek_epoch INTEGER NOT NULL,"
    "  wrapped_dek BLOB,"
    "  profile BLOB,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  erased_at INTEGER);"

    "CREATE TABLE identifiers("
    "  tenant_id INTEGER NOT NULL,"
    "  type INTEGER NOT NULL,"
    "  blind BLOB NOT NULL,"
    "  subject_id BLOB NOT NULL,"
    "  value BLOB,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY(tenant_id, type, blind));"
    "CREATE INDEX identifiers_subject ON identifiers(subject_id);"

    /* seq is the rowid: the ledger is append-only, so max+1 allocation
     * gives the global commit order. */
    "CREATE TABLE events("
    "  seq INTEGER PRIMARY KEY,"
    "  id BLOB NOT NULL UNIQUE,"
    "  tenant_id INTEGER NOT NULL,"
    "  subject_id BLOB NOT NULL,"
    "  purpose TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  channels INTEGER NOT NULL,"
    "  notice TEXT,"
    "  notice_version TEXT,"
    "  notice_sha256 TEXT,"
    "  collected_via TEXT NOT NULL,"
    "  evidence BLOB,"
    "  evidence_sha256 TEXT,"
    "  occurred_at INTEGER NOT NULL,"
    "  recorded_at INTEGER NOT NULL,"
    "  expires_at INTEGER);"
    "CREATE INDEX events_subject ON events(subject_id, seq);"
    "CREATE INDEX events_tenant ON events(tenant_id, seq);"

    "CREATE TABLE consent_state("
    "  subject_id BLOB NOT NULL,"
    "  purpose_idx INTEGER NOT NULL,"
    "  tenant_id INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  channels INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  decided_at INTEGER NOT NULL,"
    "  granted_at INTEGER,"
    "  expires_at INTEGER,"
    "  event_id BLOB NOT NULL,"
    "  event_seq INTEGER NOT NULL,"
    "  PRIMARY KEY(subject_id, purpose_idx)) WITHOUT ROWID;",
    /* 2: the proof log (docs/log.md). Append-only; nodes hold the hashes
     * of complete subtrees of level >= 1 (level 0 is the leaf's hash). */
    "CREATE TABLE log_leaves("
    "  tenant_id INTEGER NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  ref BLOB NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  data BLOB NOT NULL,"
    "  PRIMARY KEY(tenant_id, idx)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX log_leaves_ref ON log_leaves(tenant_id, ref);"
    "CREATE TABLE log_nodes("
    "  tenant_id INTEGER NOT NULL,"
    "  level INTEGER NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  PRIMARY KEY(tenant_id, level, idx)) WITHOUT ROWID;"
    "CREATE TABLE log_heads("
    "  tenant_id INTEGER PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  root BLOB NOT NULL,"
    "  event_seq INTEGER NOT NULL,"
    "  checkpoint TEXT NOT NULL,"
    "  signed_at INTEGER NOT NULL);"
    "CREATE TABLE log_keys("
    "  verifier TEXT PRIMARY KEY,"
    "  created_at INTEGER NOT NULL);",
    /* No index on consent_state(event_seq): every state_put would then pay
     * a random delete plus an insert in it (~20% of the write path), and
     * nodes re-sync through events (seq) + state per subject instead.
     * state_scan(after_seq > 0) is a filtered streaming full scan. */
    /* 3: identity across devices. A merged subject's id answers as the
     * survivor (one hop); seq is the rowid, never reused (aliases are never
     * deleted), so nodes follow merges by seq. */
    "CREATE TABLE subject_aliases("
    "  seq INTEGER PRIMARY KEY,"
    "  id BLOB NOT NULL UNIQUE,"
    "  tenant_id INTEGER NOT NULL,"
    "  subject_id BLOB NOT NULL,"
    "  merge_id BLOB NOT NULL,"
    "  merged_at INTEGER NOT NULL);"
    "CREATE INDEX subject_aliases_subject ON subject_aliases(subject_id);",
    /* 4: erasure. Each erasure takes the next erased_seq (max + 1: the
     * writer lock orders them as commits), so that a node finds the
     * erasures made by another process or node (cache sync); the index
     * holds only erased subjects. */
    "ALTER TABLE subjects ADD COLUMN erased_seq INTEGER;"
    "CREATE UNIQUE INDEX subjects_erased ON subjects(erased_seq) WHERE erased_seq IS NOT NULL;",
    /* 5: statistics of anonymised people: no identifier, generalised
     * quasi-identifiers only (core/kanon.h), counted by group. */
    "CREATE TABLE stats_records("
    "  tenant_id INTEGER NOT NULL,"
    "  age TEXT NOT NULL,"
    "  region TEXT NOT NULL,"
    "  sex TEXT NOT NULL,"
    "  states TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX stats_records_group ON stats_records(tenant_id, age, region, sex);",
    /* 6: a purpose based on legitimate interest names its assessment (a
     * published notice: versioned, hashed, immutable). */
    "ALTER TABLE purposes ADD COLUMN assessment TEXT;"
    "ALTER TABLE purposes ADD COLUMN assessment_version TEXT;"
    "ALTER TABLE purposes ADD COLUMN assessment_sha256 TEXT;",
};
#define SCHEMA_VERSION ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* ------------------------------------------------------------------------
 * Cached statements. */

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
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
#define SUBJECT_COLS "row, id, tenant_id, kek_epoch, wrapped_dek, created_at, updated_at, erased_at"
#define IDENT_COLS "tenant_id, type, blind, subject_id, value, created_at"
#define EVENT_COLS                                                                                 \
    "seq, id, tenant_id, subject_id, purpose, action, channels, notice, notice_version, "          \
    "notice_sha256, collected_via, evidence, evidence_sha256, occurred_at, recorded_at, "          \
    "expires_at"
#define STATE_COLS                                                                                 \
    "subject_id, tenant_id, event_seq, purpose_idx, state, channels, revision, decided_at, "       \
    "granted_at, expires_at, event_id"
#define ALIAS_COLS "seq, id, tenant_id, subject_id, merge_id, merged_at"

static const char *const SQL[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT j",
    [S_RELEASE] = "RELEASE j",
    [S_ROLLBACK_TO] = "ROLLBACK TO j",
    [S_DATA_VERSION] = "PRAGMA data_version",

    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value",

    [S_TENANT_INSERT] = "INSERT INTO tenants(id, name, created_at) VALUES(?1, ?2, ?3)",
    [S_TENANT_BY_NAME] = "SELECT id, name, created_at FROM tenants WHERE name = ?1",
    [S_TENANT_BY_ID] = "SELECT id, name, created_at FROM tenants WHERE id = ?1",
    [S_TENANT_LIST] = "SELECT id, name, created_at FROM tenants ORDER BY id",

    [S_KEY_INSERT] = "INSERT INTO api_keys(" KEY_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_KEY_LIST_ALL] = "SELECT " KEY_COLS " FROM api_keys ORDER BY tenant_id, created_at, id",
    [S_KEY_LIST_TENANT] = "SELECT " KEY_COLS " FROM api_keys WHERE tenant_id = ?1 "
                          "ORDER BY created_at, id",
    [S_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?3 "
                     "WHERE id = ?1 AND tenant_id = ?2 AND revoked_at IS NULL",

    /* idx is assigned once: an update that tries to move it matches no row
     * (the WHERE) and is reported as a conflict. created_at is kept. */
    [S_PURPOSE_PUT] = "INSERT INTO purposes(" PURPOSE_COLS ") "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                      "?16) "
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
    [S_PURPOSE_GET] = "SELECT " PURPOSE_COLS " FROM purposes WHERE tenant_id = ?1 AND name = ?2",
    [S_PURPOSE_LIST_ALL] = "SELECT " PURPOSE_COLS " FROM purposes ORDER BY tenant_id, idx",
    [S_PURPOSE_LIST_TENANT] = "SELECT " PURPOSE_COLS " FROM purposes WHERE tenant_id = ?1 "
                              "ORDER BY idx",

    [S_NOTICE_INSERT] = "INSERT INTO notices(tenant_id, id, notice, version, language, sha256, "
                        "created_at, text) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_NOTICE_GET] = "SELECT " NOTICE_COLS ", text FROM notices "
                     "WHERE tenant_id = ?1 AND notice = ?2 AND version = ?3",
    /* text is not selected: its overflow pages are then never read. */
    [S_NOTICE_LIST] = "SELECT " NOTICE_COLS " FROM notices WHERE tenant_id = ?1 "
                      "ORDER BY notice, created_at, version",

    [S_SUBJECT_INSERT] = "INSERT INTO subjects(id, tenant_id, kek_epoch, wrapped_dek, profile, "
                         "created_at, updated_at, erased_at) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_SUBJECT_GET] = "SELECT " SUBJECT_COLS ", profile FROM subjects WHERE id = ?1",
    [S_SUBJECT_UPDATE_PROFILE] = "UPDATE subjects SET profile = ?2, updated_at = ?3 WHERE id = ?1",
    [S_SUBJECT_SCAN] = "SELECT " SUBJECT_COLS " FROM subjects WHERE row > ?1 ORDER BY row",

    [S_IDENT_INSERT] = "INSERT INTO identifiers(" IDENT_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_IDENT_LOOKUP] = "SELECT subject_id FROM identifiers "
                       "WHERE tenant_id = ?1 AND type = ?2 AND blind = ?3",
    [S_IDENT_LIST] = "SELECT " IDENT_COLS " FROM identifiers WHERE subject_id = ?1 "
                     "ORDER BY type, created_at",

    [S_EVENT_INSERT] = "INSERT INTO events(id, tenant_id, subject_id, purpose, action, channels, "
                       "notice, notice_version, notice_sha256, collected_via, evidence, "
                       "evidence_sha256, occurred_at, recorded_at, expires_at) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    /* LIMIT -1 means "no limit" in SQLite; limit 0 is bound as -1. */
    [S_EVENT_LIST_SUBJECT] = "SELECT " EVENT_COLS " FROM events "
                             "WHERE subject_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [S_EVENT_LIST_ALL] = "SELECT " EVENT_COLS " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [S_EVENT_LIST_TENANT] = "SELECT " EVENT_COLS " FROM events "
                            "WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [S_EVENT_MAX_SEQ] = "SELECT coalesce(max(seq), 0) FROM events",

    [S_STATE_GET] = "SELECT " STATE_COLS " FROM consent_state "
                    "WHERE subject_id = ?1 AND purpose_idx = ?2",
    [S_STATE_PUT] = "INSERT INTO consent_state(subject_id, tenant_id, event_seq, purpose_idx, "
                    "state, channels, revision, decided_at, granted_at, expires_at, event_id) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                    "ON CONFLICT(subject_id, purpose_idx) DO UPDATE SET "
                    "tenant_id = excluded.tenant_id, event_seq = excluded.event_seq, "
                    "state = excluded.state, channels = excluded.channels, "
                    "revision = excluded.revision, decided_at = excluded.decided_at, "
                    "granted_at = excluded.granted_at, expires_at = excluded.expires_at, "
                    "event_id = excluded.event_id",
    [S_STATE_LIST_SUBJECT] = "SELECT " STATE_COLS " FROM consent_state WHERE subject_id = ?1 "
                             "ORDER BY purpose_idx",
    /* Both walk the table in key order (no event_seq index, see the
     * schema), streaming. */
    [S_STATE_SCAN_ALL] = "SELECT " STATE_COLS " FROM consent_state",
    [S_STATE_SCAN_AFTER] = "SELECT " STATE_COLS " FROM consent_state WHERE event_seq > ?1",

    [S_LOG_LEAF_INSERT] = "INSERT INTO log_leaves(tenant_id, idx, ref, hash, data) "
                          "VALUES(?1, ?2, ?3, ?4, ?5)",
    /* a subtree hash is written once; the same one again is harmless, another
     * one is a fork and refused (sq_db_log_node_put compares) */
    [S_LOG_NODE_PUT] = "INSERT INTO log_nodes(tenant_id, level, idx, hash) VALUES(?1, ?2, ?3, ?4)",
    [S_LOG_NODE_GET] = "SELECT hash FROM log_nodes WHERE tenant_id = ?1 AND level = ?2 AND idx = ?3",
    [S_LOG_LEAF_HASH] = "SELECT hash FROM log_leaves WHERE tenant_id = ?1 AND idx = ?2",
    [S_LOG_LEAF_BY_REF] = "SELECT tenant_id, idx, ref, hash, data FROM log_leaves "
                          "WHERE tenant_id = ?1 AND ref = ?2",
    [S_LOG_LEAF_LIST] = "SELECT tenant_id, idx, ref, hash, data FROM log_leaves "
                        "WHERE tenant_id = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
    [S_LOG_HEAD_GET] = "SELECT tenant_id, size, root, event_seq, checkpoint, signed_at "
                       "FROM log_heads WHERE tenant_id = ?1",
    [S_LOG_HEAD_PUT] = "INSERT INTO log_heads(tenant_id, size, root, event_seq, checkpoint, "
                       "signed_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                       "ON CONFLICT(tenant_id) DO UPDATE SET size = excluded.size, "
                       "root = excluded.root, event_seq = excluded.event_seq, "
                       "checkpoint = excluded.checkpoint, signed_at = excluded.signed_at",
    [S_LOG_HEAD_LIST] = "SELECT tenant_id, size, root, event_seq, checkpoint, signed_at "
                        "FROM log_heads ORDER BY tenant_id",
    [S_LOG_KEY_ADD] = "INSERT INTO log_keys(verifier, created_at) VALUES(?1, ?2) "
                      "ON CONFLICT DO NOTHING",
    [S_LOG_KEY_LIST] = "SELECT verifier, created_at FROM log_keys ORDER BY created_at, verifier",
    [S_LOG_NODE_LIST] = "SELECT tenant_id, level, idx, hash FROM log_nodes WHERE tenant_id = ?1 "
                        "ORDER BY level, idx",

    [S_SUBJECT_RESOLVE] = "SELECT " SUBJECT_COLS ", profile FROM subjects WHERE id = "
                          "coalesce((SELECT subject_id FROM subject_aliases WHERE id = ?1), ?1)",
    [S_ALIAS_INSERT] = "INSERT INTO subject_aliases(id, tenant_id, subject_id, merge_id, merged_at) "
                       "VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_ALIAS_GET] = "SELECT " ALIAS_COLS " FROM subject_aliases WHERE id = ?1",
    [S_ALIAS_REPOINT] = "UPDATE subject_aliases SET subject_id = ?2 WHERE subject_id = ?1",
    [S_ALIAS_LIST] = "SELECT " ALIAS_COLS " FROM subject_aliases WHERE subject_id = ?1 ORDER BY seq",
    [S_ALIAS_SCAN] = "SELECT " ALIAS_COLS " FROM subject_aliases WHERE seq > ?1 ORDER BY seq",
    [S_IDENT_MOVE] = "UPDATE identifiers SET subject_id = ?4, value = ?5 "
                     "WHERE tenant_id = ?1 AND type = ?2 AND blind = ?3",
    [S_STATE_DELETE_SUBJECT] = "DELETE FROM consent_state WHERE subject_id = ?1",
    /* the merged ids are few: one index range each, then a small sort */
    [S_EVENT_LIST_PERSON] = "SELECT " EVENT_COLS " FROM events WHERE subject_id IN "
                            "(SELECT ?1 UNION ALL SELECT id FROM subject_aliases "
                            "WHERE subject_id = ?1) AND seq > ?2 ORDER BY seq LIMIT ?3",

    /* erasure: the key and the profile go, the row stays (rows only grow) */
    [S_SUBJECT_ERASE] = "UPDATE subjects SET wrapped_dek = NULL, profile = NULL, "
                        "erased_at = ?2, updated_at = ?2, erased_seq = (SELECT "
                        "coalesce(max(erased_seq), 0) + 1 FROM subjects WHERE erased_seq IS NOT NULL) "
                        "WHERE id = ?1 AND erased_at IS NULL",
    [S_IDENT_ERASE] = "DELETE FROM identifiers WHERE subject_id = ?1",
    [S_SUBJECT_ERASED_SCAN] = "SELECT " SUBJECT_COLS ", erased_seq FROM subjects "
                              "WHERE erased_seq IS NOT NULL AND erased_seq > ?1 ORDER BY erased_seq",
    [S_SUBJECT_REWRAP] = "UPDATE subjects SET kek_epoch = ?2, wrapped_dek = ?3 "
                         "WHERE id = ?1 AND erased_at IS NULL",
    [S_STATS_INSERT] = "INSERT INTO stats_records(tenant_id, age, region, sex, states, created_at) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_STATS_COUNT] = "SELECT count(*) FROM stats_records "
                      "WHERE tenant_id = ?1 AND age = ?2 AND region = ?3 AND sex = ?4",
    [S_STATS_LIST] = "SELECT tenant_id, age, region, sex, states, created_at FROM stats_records "
                     "WHERE tenant_id = ?1",
};

/* ------------------------------------------------------------------------
 * Types. */

#define FAULT_VFS_NAME "patto-fault"

typedef struct sqlite_store {
    struct pt_store base; /* first: the dispatch table */
    char *path;
    const char *vfs; /* NULL = SQLite's default VFS */
    int schema_version;
} sqlite_store;

typedef struct sqlite_conn {
    struct pt_conn base; /* first: the dispatch table */
    sqlite_store *store;
    sqlite3 *db;
    /* Set once an fsync/IO error was seen: after a failed fsync the state
     * of the file is unknown, so this connection refuses new transactions
     * (the caller must stop the server anyway). */
    bool fatal;
    sqlite3_stmt *st[S__COUNT];
    bool busy[S__COUNT];
} sqlite_conn;

/* ------------------------------------------------------------------------
 * Fault injection: TEST-ONLY hooks for the crash and fault tests. They are
 * inert unless PATTO_FAULT_FSYNC_AFTER or PATTO_FAULT_FULL_AFTER is set in
 * the environment when a store is opened; that store's connections then go
 * through a shim VFS wrapping the default one:
 *   PATTO_FAULT_FSYNC_AFTER=N: after N successful xSync calls (any file,
 *     process-wide) every further xSync fails with SQLITE_IOERR_FSYNC.
 *     Sticky, like a real failed fsync.
 *   PATTO_FAULT_FULL_AFTER=N: after N successful xWrite calls to a main
 *     database or -wal file, further writes fail with SQLITE_FULL for as
 *     long as the variable stays set (unsetting it "frees the disk").
 * Counters restart when a store is opened with the variable set. They are
 * atomics because several connection threads share them. */

typedef struct fault_file {
    sqlite3_file base;
    sqlite3_file *real; /* the wrapped file, allocated right after us */
    bool counted;       /* main db or WAL: subject to the FULL fault */
} fault_file;

static sqlite3_vfs *g_real_vfs;
static sqlite3_vfs g_fault_vfs;
static pthread_once_t g_fault_once = PTHREAD_ONCE_INIT;
static int g_fault_reg_rc = SQLITE_ERROR;
static atomic_llong g_sync_limit = -1; /* -1 = no fault */
static atomic_llong g_sync_count;
static atomic_llong g_write_limit = -1;
static atomic_llong g_write_count;

#define REAL(f) (((fault_file *)(f))->real)

static int ff_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int ff_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int ff_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    long long limit = atomic_load(&g_write_limit);
    if (limit >= 0 && ((fault_file *)f)->counted) {
        /* Claim a slot first so that concurrent writers cannot overshoot N. */
        long long seen = atomic_fetch_add(&g_write_count, 1);
        if (seen >= limit) {
            if (getenv("PATTO_FAULT_FULL_AFTER")) return SQLITE_FULL;
        } else {
            int rc = REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
            if (rc != SQLITE_OK) atomic_fetch_sub(&g_write_count, 1);
            return rc;
        }
    }
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int ff_sync(sqlite3_file *f, int flags)
{
    long long limit = atomic_load(&g_sync_limit);
    if (limit >= 0) {
        long long seen = atomic_fetch_add(&g_sync_count, 1);
        if (seen >= limit) return SQLITE_IOERR_FSYNC;
        int rc = REAL(f)->pMethods->xSync(REAL(f), flags);
        if (rc != SQLITE_OK) atomic_fetch_sub(&g_sync_count, 1);
        return rc;
    }
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int ff_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int ff_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int ff_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int ff_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int ff_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int ff_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int ff_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void ff_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int ff_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* One table per io_methods version: SQLite never calls a member beyond
 * iVersion, so each file advertises exactly what the wrapped file has. */
#define FF_METHODS(v)                                                                              \
    {                                                                                              \
        v, ff_close, ff_read, ff_write, ff_truncate, ff_sync, ff_file_size, ff_lock, ff_unlock,    \
            ff_check_reserved, ff_file_control, ff_sector_size, ff_device_chars, ff_shm_map,       \
            ff_shm_lock, ff_shm_barrier, ff_shm_unmap, ff_fetch, ff_unfetch                        \
    }
static const sqlite3_io_methods FF_IO[3] = {FF_METHODS(1), FF_METHODS(2), FF_METHODS(3)};

static int fv_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    (void)vfs;
    fault_file *p = (fault_file *)f;
    p->real = (sqlite3_file *)(p + 1);
    p->counted = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
    int rc = g_real_vfs->xOpen(g_real_vfs, name, p->real, flags, out_flags);
    /* SQLite calls xClose whenever pMethods is set, even after a failed
     * open, so mirror exactly what the wrapped VFS did. */
    if (p->real->pMethods) {
        int v = p->real->pMethods->iVersion;
        if (v < 1) v = 1;
        if (v > 3) v = 3;
        f->pMethods = &FF_IO[v - 1];
    } else {
        f->pMethods = NULL;
    }
    return rc;
}

static int fv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return g_real_vfs->xDelete(g_real_vfs, name, sync_dir);
}

static int fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return g_real_vfs->xAccess(g_real_vfs, name, flags, out);
}

static int fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return g_real_vfs->xFullPathname(g_real_vfs, name, n, out);
}

static void *fv_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return g_real_vfs->xDlOpen(g_real_vfs, name);
}

static void fv_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    g_real_vfs->xDlError(g_real_vfs, n, msg);
}

static void (*fv_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return g_real_vfs->xDlSym(g_real_vfs, h, sym);
}

static void fv_dl_close(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    g_real_vfs->xDlClose(g_real_vfs, h);
}

static int fv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return g_real_vfs->xRandomness(g_real_vfs, n, out);
}

static int fv_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return g_real_vfs->xSleep(g_real_vfs, us);
}

static int fv_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return g_real_vfs->xCurrentTime(g_real_vfs, out);
}

static int fv_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return g_real_vfs->xGetLastError(g_real_vfs, n, out);
}

static int fv_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return g_real_vfs->xCurrentTimeInt64(g_real_vfs, out);
}

static int fv_set_syscall(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr fn)
{
    (void)vfs;
    return g_real_vfs->xSetSystemCall(g_real_vfs, name, fn);
}

static sqlite3_syscall_ptr fv_get_syscall(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return g_real_vfs->xGetSystemCall(g_real_vfs, name);
}

static const char *fv_next_syscall(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return g_real_vfs->xNextSystemCall(g_real_vfs, name);
}

static void fault_register_once(void)
{
    g_real_vfs = sqlite3_vfs_find(NULL);
    if (!g_real_vfs) return;
    sqlite3_vfs *v = &g_fault_vfs;
    v->iVersion = g_real_vfs->iVersion < 3 ? g_real_vfs->iVersion : 3;
    v->szOsFile = (int)sizeof(fault_file) + g_real_vfs->szOsFile;
    v->mxPathname = g_real_vfs->mxPathname;
    v->zName = FAULT_VFS_NAME;
    v->xOpen = fv_open;
    v->xDelete = fv_delete;
    v->xAccess = fv_access;
    v->xFullPathname = fv_full_pathname;
    v->xDlOpen = fv_dl_open;
    v->xDlError = fv_dl_error;
    v->xDlSym = fv_dl_sym;
    v->xDlClose = fv_dl_close;
    v->xRandomness = fv_randomness;
    v->xSleep = fv_sleep;
    v->xCurrentTime = fv_current_time;
    v->xGetLastError = fv_last_error;
    v->xCurrentTimeInt64 = fv_current_time64;
    v->xSetSystemCall = fv_set_syscall;
    v->xGetSystemCall = fv_get_syscall;
    v->xNextSystemCall = fv_next_syscall;
    g_fault_reg_rc = sqlite3_vfs_register(v, 0);
}

/* Reads one fault variable: 1 and *n set when present, 0 when absent,
 * -1 when malformed (a typo must not silently disable the fault). */
static int fault_env(const char *name, long long *n)
{
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) return -1;
    *n = v;
    return 1;
}

/* Decides which VFS a store being opened uses. */
static pt_result fault_setup(sqlite_store *s, pt_err *err)
{
    long long fsync_n = -1, full_n = -1;
    int a = fault_env("PATTO_FAULT_FSYNC_AFTER", &fsync_n);
    int b = fault_env("PATTO_FAULT_FULL_AFTER", &full_n);
    if (a < 0 || b < 0)
        return pt_err_set(err, PT_ERR_INVALID,
                          a < 0 ? "PATTO_FAULT_FSYNC_AFTER" : "PATTO_FAULT_FULL_AFTER",
                          "fault injection variable must be a non-negative integer");
    if (a == 0 && b == 0) return PT_OK;
    pthread_once(&g_fault_once, fault_register_once);
    if (g_fault_reg_rc != SQLITE_OK)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "cannot register the fault-injection VFS");
    atomic_store(&g_sync_count, 0);
    atomic_store(&g_write_count, 0);
    atomic_store(&g_sync_limit, a ? fsync_n : -1);
    atomic_store(&g_write_limit, b ? full_n : -1);
    s->vfs = FAULT_VFS_NAME;
    return PT_OK;
}

/* ------------------------------------------------------------------------
 * Error mapping. */

/* Maps an SQLite result code. what names the operation ("event insert"),
 * conflict_field/conflict_detail describe a unique violation in terms of
 * the object, never its value. */
static pt_result fail_ex(sqlite_conn *c, int rc, pt_err *err, const char *what,
                         const char *conflict_field, const char *conflict_detail)
{
    pt_result r;
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return pt_err_set(err, PT_ERR_CONFLICT, conflict_field ? conflict_field : "", "%s",
                              conflict_detail ? conflict_detail : "already exists");
        /* The only foreign key is api_keys.tenant_id. */
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return pt_err_set(err, PT_ERR_INVALID, "tenant", "%s: unknown tenant", what);
        return pt_err_set(err, PT_ERR_INVALID, "", "%s: violates a database constraint", what);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
        return pt_err_set(err, PT_ERR_STORAGE, "", "%s: database unavailable (%s)", what,
                          sqlite3_errstr(rc));
    case SQLITE_FULL:
        return pt_err_set(err, PT_ERR_STORAGE_FULL, "", "%s: disk full", what);
    case SQLITE_NOMEM:
        return pt_err_set(err, PT_ERR_NOMEM, "", "%s: out of memory", what);
    case SQLITE_TOOBIG:
        return pt_err_set(err, PT_ERR_TOO_LARGE, "", "%s: value too large for the database", what);
    case SQLITE_IOERR:
        if (rc == SQLITE_IOERR_NOMEM)
            return pt_err_set(err, PT_ERR_NOMEM, "", "%s: out of memory", what);
        /* fall through */
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        r = pt_err_set(err, PT_ERR_STORAGE_FATAL, "", "%s: %s (sqlite %d); stop and check the disk",
                       what, sqlite3_errstr(rc), rc);
        if (c) c->fatal = true;
        return r;
    default:
        return pt_err_set(err, PT_ERR_INTERNAL, "", "%s: %s (sqlite %d)", what, sqlite3_errstr(rc),
                          rc);
    }
}

static pt_result fail(sqlite_conn *c, int rc, pt_err *err, const char *what)
{
    return fail_ex(c, rc, err, what, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Statement cache. */

static int stmt_get(sqlite_conn *c, enum stmt_id id, sqlite3_stmt **out)
{
    *out = NULL;
    if (c->busy[id]) {
        /* Re-entered from a callback of the same operation: resetting the
         * cached statement would break the outer iteration. */
        return sqlite3_prepare_v2(c->db, SQL[id], -1, out, NULL);
    }
    if (!c->st[id]) {
        int rc =
            sqlite3_prepare_v3(c->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
        if (rc != SQLITE_OK) return rc;
    }
    c->busy[id] = true;
    *out = c->st[id];
    return SQLITE_OK;
}

static void stmt_put(sqlite_conn *c, enum stmt_id id, sqlite3_stmt *st)
{
    if (!st) return;
    if (st == c->st[id]) {
        /* Ends any read transaction the statement held open. The bindings
         * stay (SQLITE_STATIC pointers) but are always rebound before the
         * next step. */
        sqlite3_reset(st);
        c->busy[id] = false;
    } else {
        sqlite3_finalize(st);
    }
}

/* Binding helpers: each is a no-op once *rc holds an error, so a run of
 * binds is checked once. Memory is SQLITE_STATIC: it is the caller's and
 * lives for the call. */
static void b_i64(sqlite3_stmt *st, int *rc, int i, int64_t v)
{
    if (*rc == SQLITE_OK) *rc = sqlite3_bind_int64(st, i, v);
}

/* 0 means "none" for optional times and is stored as NULL. */
static void b_opt_i64(sqlite3_stmt *st, int *rc, int i, int64_t v)
{
    if (*rc == SQLITE_OK) *rc = v ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

/* Fixed NUL-terminated buffer of capacity cap; strnlen guards a missing NUL. */
static void b_str(sqlite3_stmt *st, int *rc, int i, const char *s, size_t cap)
{
    if (*rc != SQLITE_OK) return;
    if (!s) s = "";
    *rc = sqlite3_bind_text64(st, i, s, strnlen(s, cap), SQLITE_STATIC, SQLITE_UTF8);
}

/* "" is stored as NULL. */
static void b_opt_str(sqlite3_stmt *st, int *rc, int i, const char *s, size_t cap)
{
    if (*rc != SQLITE_OK) return;
    if (!s || !*s)
        *rc = sqlite3_bind_null(st, i);
    else
        *rc = sqlite3_bind_text64(st, i, s, strnlen(s, cap), SQLITE_STATIC, SQLITE_UTF8);
}

static void b_blob(sqlite3_stmt *st, int *rc, int i, const void *p, size_t n)
{
    if (*rc != SQLITE_OK) return;
    if (!p)
        *rc = sqlite3_bind_null(st, i);
    else
        *rc = sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

static void col_str(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    size_t n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap) n = cap - 1; /* only a foreign or damaged file has longer values */
    if (n) memcpy(dst, s, n);
    dst[n] = '\0';
}

static void col_fixed(sqlite3_stmt *st, int i, uint8_t *dst, size_t n)
{
    const void *b = sqlite3_column_blob(st, i);
    size_t len = b ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (len > n) len = n;
    if (len) memcpy(dst, b, len);
    if (len < n) memset(dst + len, 0, n - len);
}

/* NULL reads back as 0, which is exactly the "none" convention. */
static int64_t col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int64(st, i);
}

/* Runs a statement that returns no rows of interest (BEGIN, COMMIT...). */
static int exec_one(sqlite_conn *c, enum stmt_id id)
{
    sqlite3_stmt *st;
    int rc = stmt_get(c, id, &st);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    stmt_put(c, id, st);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

/* Steps a bound write statement; returns the SQLite code (DONE on success). */
static int step_write(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

typedef pt_result (*visit_fn)(sqlite3_stmt *st, void *arg, int *stop);

/* Streams every row of a bound statement to visit. */
static pt_result scan_rows(sqlite_conn *c, sqlite3_stmt *st, const char *what, visit_fn visit,
                           void *arg)
{
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) return PT_OK;
        if (rc != SQLITE_ROW) return fail(c, rc, NULL, what);
        int stop = 0;
        pt_result r = visit(st, arg, &stop);
        if (r != PT_OK) return r;
        if (stop) return PT_OK;
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * Opening. */

static const char *url_path(const char *url)
{
    if (strncmp(url, "sqlite:", 7) == 0) return url + 7;
    if (strncmp(url, "file:", 5) == 0) return url + 5;
    return url;
}

/* Per-connection settings. busy_timeout comes first so that switching to
 * WAL waits for a concurrent opener instead of failing. */
static int configure(sqlite3 *db, pt_err *err)
{
    static const char PRAGMAS[] =
        "PRAGMA busy_timeout = 5000;"
        /* Only takes effect when the file is created. 8 KiB pages made
         * event_insert + state_put about 1.5x faster than 4 KiB: shallower
         * trees, and half the write calls per dirty byte at commit. */
        "PRAGMA page_size = 8192;"
        "PRAGMA synchronous = FULL;"
        "PRAGMA foreign_keys = ON;"
        /* deleted/overwritten content is zeroed, so erased data does not
         * linger in free pages; old copies in the WAL go once it is
         * checkpointed and overwritten or truncated */
        "PRAGMA secure_delete = ON;"
        /* Per connection, grown only as used; readers stay at 8 MiB and
         * pt_conn_tune gives the writer and bulk imports more. */
        "PRAGMA cache_size = -8192;"
        /* Savepoint journals (one per op of a group commit) in memory, not
         * in a temporary file rewritten for every batch. */
        "PRAGMA temp_store = MEMORY;"
        /* Checkpoint about every 128 MiB of WAL (8 KiB pages) rather than
         * every 1000 pages: a batch dirties thousands of random index pages,
         * and copying them to the database after every commit doubled the
         * commit cost. A larger WAL only costs a longer recovery after a
         * crash. */
        "PRAGMA wal_autocheckpoint = 16384;"
        /* ...and give the space back after a bulk import. */
        "PRAGMA journal_size_limit = 134217728;";
    sqlite3_extended_result_codes(db, 1);
    /* Defensive: no writable_schema or other ways to corrupt the file; no
     * double-quoted string literals (they hide typos in column names). */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
    int rc = sqlite3_exec(db, PRAGMAS, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rc;

    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        if (!mode || strcmp((const char *)mode, "wal") != 0) {
            pt_err_set(err, PT_ERR_STORAGE, "", "database cannot use WAL journal mode");
            rc = SQLITE_CANTOPEN;
        } else {
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static pt_result open_db(sqlite_store *s, int create, sqlite3 **out, pt_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
    if (create) flags |= SQLITE_OPEN_CREATE;
    sqlite3 *db = NULL;
    pt_result r = PT_OK;
    pt_err_clear(err);
    int rc = sqlite3_open_v2(s->path, &db, flags, s->vfs);
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_CANTOPEN)
            r = pt_err_set(err, create ? PT_ERR_STORAGE : PT_ERR_NOT_FOUND, "",
                           "cannot open database file %s", s->path);
        else
            r = fail(NULL, rc, err, "database open");
        goto out;
    }
    rc = configure(db, err);
    if (rc != SQLITE_OK) {
        if (err && err->code != PT_OK)
            r = err->code;
        else if ((rc & 0xff) == SQLITE_NOTADB)
            r = pt_err_set(err, PT_ERR_INVALID, "", "%s is not an SQLite database", s->path);
        else
            r = fail(NULL, rc, err, "database setup");
        goto out;
    }
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return r;
}

/* Highest applied migration, 0 for a fresh file. */
static int read_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = NULL;
    *out = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM sqlite_master "
                                "WHERE type = 'table' AND name = 'schema_migrations'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = SQLITE_OK; /* no table yet */
        goto out;
    }
    if (rc != SQLITE_ROW) goto out;
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1, &st,
                            NULL);
    if (rc != SQLITE_OK) goto out;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) goto out;
    int64_t v = sqlite3_column_int64(st, 0);
    *out = v > INT_MAX ? INT_MAX : (int)v;
    rc = SQLITE_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static pt_result too_new(pt_err *err, int v)
{
    return pt_err_set(err, PT_ERR_INVALID, "",
                      "database schema version %d is newer than this binary supports (%d); "
                      "upgrade patto",
                      v, SCHEMA_VERSION);
}

static pt_result migrate(sqlite_store *s, sqlite3 *db, pt_err *err)
{
    int cur = 0;
    int rc = read_version(db, &cur);
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_NOTADB)
            return pt_err_set(err, PT_ERR_INVALID, "", "%s is not an SQLite database", s->path);
        return fail(NULL, rc, err, "schema version read");
    }
    if (cur > SCHEMA_VERSION) return too_new(err, cur);

    for (int v = cur + 1; v <= SCHEMA_VERSION; v++) {
        pt_result r = PT_OK;
        sqlite3_stmt *st = NULL;
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) return fail(NULL, rc, err, "migration begin");
        /* Another process may have migrated while we waited for the lock. */
        rc = sqlite3_exec(db,
                          "CREATE TABLE IF NOT EXISTS schema_migrations("
                          "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                          NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = read_version(db, &cur);
        if (rc != SQLITE_OK) {
            r = fail(NULL, rc, err, "migration");
            goto rollback;
        }
        if (cur > SCHEMA_VERSION) {
            r = too_new(err, cur);
            goto rollback;
        }
        if (cur >= v) {
            v = cur;
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            if (rc != SQLITE_OK) {
                r = fail(NULL, rc, err, "migration commit");
                goto rollback;
            }
            continue;
        }
        rc = sqlite3_exec(db, MIGRATIONS[v - 1], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(db,
                                    "INSERT INTO schema_migrations(version, applied_at) "
                                    "VALUES(?1, ?2)",
                                    -1, &st, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 1, v);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, now_ms());
        if (rc == SQLITE_OK) rc = step_write(st);
        if (rc == SQLITE_DONE) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) {
            char what[48];
            snprintf(what, sizeof what, "schema migration %d", v);
            r = fail(NULL, rc, err, what);
            goto rollback;
        }
        continue;
    rollback:
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    s->schema_version = SCHEMA_VERSION > cur ? SCHEMA_VERSION : cur;
    return PT_OK;
}

static void sq_store_close(pt_store *base);

static pt_result sq_store_open(const char *url, int create, pt_store **out, pt_err *err)
{
    sqlite_store *s = NULL;
    sqlite3 *db = NULL;
    pt_result r = PT_OK;
    pt_err_clear(err);
    if (!url || !out) return pt_err_set(err, PT_ERR_INVALID, "url", "no database url");
    *out = NULL;
    const char *path = url_path(url);
    if (!*path) return pt_err_set(err, PT_ERR_INVALID, "url", "empty database path");
    /* Every connection would get its own private database. */
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file::memory:", 13) == 0)
        return pt_err_set(err, PT_ERR_INVALID, "url", "in-memory databases are not supported");
    /* We open with SQLITE_OPEN_NOMUTEX and rely on SQLite serialising its
     * own global state; a single-threaded build cannot do that. */
    if (sqlite3_threadsafe() == 0)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "SQLite was built without thread support");

    if (!create) {
        struct stat sb;
        if (stat(path, &sb) != 0 && errno == ENOENT)
            return pt_err_set(err, PT_ERR_NOT_FOUND, "url",
                              "database file %s does not exist (not creating it)", path);
    }

    s = calloc(1, sizeof *s);
    if (!s) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    s->path = strdup(path);
    if (!s->path) {
        r = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    r = fault_setup(s, err);
    if (r != PT_OK) goto out;
    r = open_db(s, create, &db, err);
    if (r != PT_OK) goto out;
    r = migrate(s, db, err);
    if (r != PT_OK) goto out;
    s->base.ops = &pt_sqlite_ops;
    *out = &s->base;
    s = NULL;
out:
    sqlite3_close(db);
    sq_store_close(s ? &s->base : NULL);
    return r;
}

static void sq_store_close(pt_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    if (!s) return;
    free(s->path);
    free(s);
}

static int sq_store_schema_version(pt_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    return s ? s->schema_version : 0;
}

static pt_result sq_conn_open(pt_store *base, pt_conn **out, pt_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    pt_err_clear(err);
    if (!s || !out) return pt_err_set(err, PT_ERR_INVALID, "", "no store");
    *out = NULL;
    sqlite_conn *c = calloc(1, sizeof *c);
    if (!c) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    /* s is read-only after pt_store_open, so no lock is needed here. */
    pt_result r = open_db(s, 0, &c->db, err);
    if (r != PT_OK) {
        free(c);
        return r;
    }
    c->store = s;
    c->base.ops = &pt_sqlite_ops;
    *out = &c->base;
    return PT_OK;
}

static int64_t sq_changes(pt_conn *base)
{
    return (int64_t)sqlite3_total_changes64(((sqlite_conn *)base)->db);
}

static void sq_conn_tune(pt_conn *base, pt_conn_role role)
{
    sqlite_conn *c = (sqlite_conn *)base;
    /* The writer's working set is the random index pages (subject,
     * consent state) its batches touch; an import's single transaction
     * must not spill dirty pages to the WAL and read them back. */
    const char *sql = role == PT_CONN_BULK     ? "PRAGMA cache_size = -1048576;" /* 1 GiB */
                      : role == PT_CONN_WRITER ? "PRAGMA cache_size = -65536;"   /* 64 MiB */
                                               : "PRAGMA cache_size = -8192;";   /* 8 MiB */
    sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (role == PT_CONN_READER) sqlite3_db_release_memory(c->db);
}

static void sq_conn_close(pt_conn *base)
{
    sqlite_conn *c = (sqlite_conn *)base;
    if (!c) return;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(c->st[i]);
    /* An open transaction is rolled back by sqlite3_close. */
    sqlite3_close(c->db);
    free(c);
}

/* ------------------------------------------------------------------------
 * Transactions. */

static pt_result sq_tx_begin(pt_conn *c_base, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (c->fatal)
        return pt_err_set(err, PT_ERR_STORAGE_FATAL, "",
                          "an earlier I/O error left the database in an unknown state; restart");
    int rc = exec_one(c, S_BEGIN);
    if (rc != SQLITE_DONE) return fail(c, rc, err, "transaction begin");
    return PT_OK;
}

static pt_result sq_tx_commit(pt_conn *c_base, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    /* SQLite rolls the whole transaction back on some errors (disk full,
     * I/O error); committing then would report success for nothing. */
    if (sqlite3_get_autocommit(c->db))
        return pt_err_set(err, PT_ERR_STORAGE, "",
                          "transaction was rolled back by an earlier storage error");
    int rc = exec_one(c, S_COMMIT);
    if (rc == SQLITE_DONE) return PT_OK;
    pt_result r = fail(c, rc, err, "transaction commit");
    /* Leave the connection clean: a failed commit is a rolled-back one
     * (for an fsync failure the caller must stop anyway). */
    if (!sqlite3_get_autocommit(c->db)) exec_one(c, S_ROLLBACK);
    return r;
}

static void sq_tx_rollback(pt_conn *c_base)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!c || sqlite3_get_autocommit(c->db)) return;
    exec_one(c, S_ROLLBACK);
}

static pt_result sq_tx_savepoint(pt_conn *c_base, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    int rc = exec_one(c, S_SAVEPOINT);
    if (rc != SQLITE_DONE) return fail(c, rc, err, "savepoint");
    return PT_OK;
}

static pt_result sq_tx_release(pt_conn *c_base, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    int rc = exec_one(c, S_RELEASE);
    if (rc != SQLITE_DONE) return fail(c, rc, err, "savepoint release");
    return PT_OK;
}

static void sq_tx_rollback_to(pt_conn *c_base)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!c || sqlite3_get_autocommit(c->db)) return;
    /* ROLLBACK TO keeps the savepoint open; RELEASE pops it so that
     * savepoints do not pile up across the jobs of a group commit. */
    if (exec_one(c, S_ROLLBACK_TO) == SQLITE_DONE) exec_one(c, S_RELEASE);
}

static pt_result sq_db_data_version(pt_conn *c_base, int64_t *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_DATA_VERSION, &st);
    if (rc != SQLITE_OK) return fail(c, rc, NULL, "data version");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = col_i64(st, 0);
    stmt_put(c, S_DATA_VERSION, st);
    return rc == SQLITE_ROW ? PT_OK : fail(c, rc, NULL, "data version");
}

/* ------------------------------------------------------------------------
 * Meta. */

static pt_result sq_db_meta_get(pt_conn *c_base, const char *key, char *value, size_t cap)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!key || !value || cap == 0) return PT_ERR_INVALID;
    sqlite3_stmt *st;
    pt_result r = PT_OK;
    int rc = stmt_get(c, S_META_GET, &st);
    if (rc == SQLITE_OK) b_str(st, &rc, 1, key, SIZE_MAX);
    if (rc != SQLITE_OK) {
        r = fail(c, rc, NULL, "meta get");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = PT_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = fail(c, rc, NULL, "meta get");
        goto out;
    }
    const unsigned char *v = sqlite3_column_text(st, 0);
    size_t n = v ? (size_t)sqlite3_column_bytes(st, 0) : 0;
    if (n >= cap) {
        r = PT_ERR_TOO_LARGE; /* never hand back a silently truncated value */
        goto out;
    }
    if (n) memcpy(value, v, n);
    value[n] = '\0';
out:
    stmt_put(c, S_META_GET, st);
    return r;
}

static pt_result sq_db_meta_set(pt_conn *c_base, const char *key, const char *value)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!key || !value) return PT_ERR_INVALID;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_META_SET, &st);
    b_str(st, &rc, 1, key, SIZE_MAX);
    b_str(st, &rc, 2, value, SIZE_MAX);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_META_SET, st);
    return rc == SQLITE_DONE ? PT_OK : fail(c, rc, NULL, "meta set");
}

/* ------------------------------------------------------------------------
 * Tenants. */

static void read_tenant(sqlite3_stmt *st, pt_tenant_rec *r)
{
    memset(r, 0, sizeof *r);
    r->id = (uint32_t)col_i64(st, 0);
    col_str(st, 1, r->name, sizeof r->name);
    r->created_at = col_i64(st, 2);
}

static pt_result sq_db_tenant_insert(pt_conn *c_base, pt_tenant_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_TENANT_INSERT, &st);
    /* id 0 lets the database allocate one; a set id (restore) is kept. */
    if (r->id)
        b_i64(st, &rc, 1, r->id);
    else if (rc == SQLITE_OK)
        rc = sqlite3_bind_null(st, 1);
    b_str(st, &rc, 2, r->name, sizeof r->name);
    b_i64(st, &rc, 3, r->created_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    if (rc == SQLITE_DONE) r->id = (uint32_t)sqlite3_last_insert_rowid(c->db);
    stmt_put(c, S_TENANT_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return fail_ex(c, rc, err, "tenant insert", "id", "a tenant with that id already exists");
    return fail_ex(c, rc, err, "tenant insert", "name", "a tenant with that name already exists");
}

static pt_result tenant_get(sqlite_conn *c, enum stmt_id id, const char *name, uint32_t tid,
                            pt_tenant_rec *out)
{
    sqlite3_stmt *st;
    int rc = stmt_get(c, id, &st);
    if (name)
        b_str(st, &rc, 1, name, SIZE_MAX);
    else
        b_i64(st, &rc, 1, tid);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_tenant(st, out);
    stmt_put(c, id, st);
    if (rc == SQLITE_ROW) return PT_OK;
    if (rc == SQLITE_DONE) return PT_ERR_NOT_FOUND;
    return fail(c, rc, NULL, "tenant get");
}

static pt_result sq_db_tenant_by_name(pt_conn *c_base, const char *name, pt_tenant_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!name) return PT_ERR_INVALID;
    return tenant_get(c, S_TENANT_BY_NAME, name, 0, out);
}

static pt_result sq_db_tenant_by_id(pt_conn *c_base, uint32_t id, pt_tenant_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    return tenant_get(c, S_TENANT_BY_ID, NULL, id, out);
}

struct tenant_scan {
    pt_tenant_cb cb;
    void *ctx;
};

static pt_result visit_tenant(sqlite3_stmt *st, void *arg, int *stop)
{
    struct tenant_scan *a = arg;
    pt_tenant_rec r;
    read_tenant(st, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_tenant_list(pt_conn *c_base, pt_tenant_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct tenant_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_TENANT_LIST, &st);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "tenant list", visit_tenant, &a)
                                  : fail(c, rc, NULL, "tenant list");
    stmt_put(c, S_TENANT_LIST, st);
    return r;
}

/* ------------------------------------------------------------------------
 * API keys. */

static pt_result sq_db_key_insert(pt_conn *c_base, const pt_key_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_KEY_INSERT, &st);
    b_blob(st, &rc, 1, r->id, sizeof r->id);
    b_i64(st, &rc, 2, r->tenant);
    b_i64(st, &rc, 3, (int64_t)r->role);
    b_blob(st, &rc, 4, r->hash, sizeof r->hash);
    b_str(st, &rc, 5, r->label, sizeof r->label);
    b_i64(st, &rc, 6, r->created_at);
    b_opt_i64(st, &rc, 7, r->revoked_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_KEY_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail_ex(c, rc, err, "api key insert", "id", "an api key with that id already exists");
}

struct key_scan {
    pt_key_cb cb;
    void *ctx;
};

static pt_result visit_key(sqlite3_stmt *st, void *arg, int *stop)
{
    struct key_scan *a = arg;
    pt_key_rec r;
    memset(&r, 0, sizeof r);
    col_fixed(st, 0, r.id, sizeof r.id);
    r.tenant = (uint32_t)col_i64(st, 1);
    r.role = (pt_role)col_i64(st, 2);
    col_fixed(st, 3, r.hash, sizeof r.hash);
    col_str(st, 4, r.label, sizeof r.label);
    r.created_at = col_i64(st, 5);
    r.revoked_at = col_i64(st, 6);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_key_list(pt_conn *c_base, uint32_t tenant, pt_key_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct key_scan a = {cb, ctx};
    enum stmt_id id = tenant ? S_KEY_LIST_TENANT : S_KEY_LIST_ALL;
    sqlite3_stmt *st;
    int rc = stmt_get(c, id, &st);
    if (tenant) b_i64(st, &rc, 1, tenant);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "api key list", visit_key, &a)
                                  : fail(c, rc, NULL, "api key list");
    stmt_put(c, id, st);
    return r;
}

static pt_result sq_db_key_revoke(pt_conn *c_base, uint32_t tenant, const uint8_t id[PT_ID_BYTES], int64_t at)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_KEY_REVOKE, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    b_i64(st, &rc, 2, tenant);
    b_i64(st, &rc, 3, at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_KEY_REVOKE, st);
    if (rc != SQLITE_DONE) return fail(c, rc, NULL, "api key revoke");
    return sqlite3_changes(c->db) ? PT_OK : PT_ERR_NOT_FOUND;
}

/* ------------------------------------------------------------------------
 * Purposes. */

static pt_result read_purpose(sqlite3_stmt *st, pt_purpose_rec *r)
{
    memset(r, 0, sizeof *r);
    r->tenant = (uint32_t)col_i64(st, 0);
    col_str(st, 1, r->name, sizeof r->name);
    r->idx = (uint16_t)col_i64(st, 2);
    const unsigned char *basis = sqlite3_column_text(st, 3);
    int b = basis ? pt_basis_parse((const char *)basis) : -1;
    if (b < 0) return PT_ERR_INTERNAL; /* written by a newer or broken binary */
    r->rule.basis = (pt_basis)b;
    r->rule.validity_days = (uint32_t)col_i64(st, 4);
    r->rule.renew_before_days = (uint32_t)col_i64(st, 5);
    r->rule.channels = (uint8_t)col_i64(st, 6);
    r->rule.revision = (uint16_t)col_i64(st, 7);
    col_str(st, 8, r->title, sizeof r->title);
    col_str(st, 9, r->description, sizeof r->description);
    col_str(st, 10, r->dpv, sizeof r->dpv);
    r->created_at = col_i64(st, 11);
    r->updated_at = col_i64(st, 12);
    col_str(st, 13, r->assessment, sizeof r->assessment);
    col_str(st, 14, r->assessment_version, sizeof r->assessment_version);
    col_str(st, 15, r->assessment_sha256, sizeof r->assessment_sha256);
    return PT_OK;
}

static pt_result sq_db_purpose_put(pt_conn *c_base, const pt_purpose_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if ((unsigned)r->rule.basis >= PT_BASIS__COUNT)
        return pt_err_set(err, PT_ERR_INVALID, "basis", "unknown legal basis");
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_PURPOSE_PUT, &st);
    b_i64(st, &rc, 1, r->tenant);
    b_str(st, &rc, 2, r->name, sizeof r->name);
    b_i64(st, &rc, 3, r->idx);
    b_str(st, &rc, 4, pt_basis_name(r->rule.basis), SIZE_MAX);
    b_i64(st, &rc, 5, r->rule.validity_days);
    b_i64(st, &rc, 6, r->rule.renew_before_days);
    b_i64(st, &rc, 7, r->rule.channels);
    b_i64(st, &rc, 8, r->rule.revision);
    b_str(st, &rc, 9, r->title, sizeof r->title);
    b_str(st, &rc, 10, r->description, sizeof r->description);
    b_str(st, &rc, 11, r->dpv, sizeof r->dpv);
    b_i64(st, &rc, 12, r->created_at);
    b_i64(st, &rc, 13, r->updated_at);
    b_opt_str(st, &rc, 14, r->assessment, sizeof r->assessment);
    b_opt_str(st, &rc, 15, r->assessment_version, sizeof r->assessment_version);
    b_opt_str(st, &rc, 16, r->assessment_sha256, sizeof r->assessment_sha256);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_PURPOSE_PUT, st);
    if (rc != SQLITE_DONE)
        return fail_ex(c, rc, err, "purpose put", "idx",
                       "another purpose of this tenant already has that index");
    if (sqlite3_changes(c->db) == 0)
        return pt_err_set(err, PT_ERR_CONFLICT, "idx",
                          "a purpose's index is assigned once and cannot change");
    return PT_OK;
}

static pt_result sq_db_purpose_get(pt_conn *c_base, uint32_t tenant, const char *name, pt_purpose_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!name) return PT_ERR_INVALID;
    sqlite3_stmt *st;
    pt_result r = PT_OK;
    int rc = stmt_get(c, S_PURPOSE_GET, &st);
    b_i64(st, &rc, 1, tenant);
    b_str(st, &rc, 2, name, SIZE_MAX);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = read_purpose(st, out);
    else if (rc == SQLITE_DONE)
        r = PT_ERR_NOT_FOUND;
    else
        r = fail(c, rc, NULL, "purpose get");
    stmt_put(c, S_PURPOSE_GET, st);
    return r;
}

struct purpose_scan {
    pt_purpose_cb cb;
    void *ctx;
    pt_purpose_rec r; /* 4.7 KB: kept off the stack of every row */
};

static pt_result visit_purpose(sqlite3_stmt *st, void *arg, int *stop)
{
    struct purpose_scan *a = arg;
    pt_result r = read_purpose(st, &a->r);
    if (r != PT_OK) return r;
    *stop = a->cb(a->ctx, &a->r);
    return PT_OK;
}

static pt_result sq_db_purpose_list(pt_conn *c_base, uint32_t tenant, pt_purpose_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct purpose_scan *a = malloc(sizeof *a);
    if (!a) return PT_ERR_NOMEM;
    a->cb = cb;
    a->ctx = ctx;
    enum stmt_id id = tenant ? S_PURPOSE_LIST_TENANT : S_PURPOSE_LIST_ALL;
    sqlite3_stmt *st;
    int rc = stmt_get(c, id, &st);
    if (tenant) b_i64(st, &rc, 1, tenant);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "purpose list", visit_purpose, a)
                                  : fail(c, rc, NULL, "purpose list");
    stmt_put(c, id, st);
    free(a);
    return r;
}

/* ------------------------------------------------------------------------
 * Notices. */


static void read_notice(sqlite3_stmt *st, pt_notice_rec *r)
{
    memset(r, 0, sizeof *r);
    r->tenant = (uint32_t)col_i64(st, 0);
    col_fixed(st, 1, r->id, sizeof r->id);
    col_str(st, 2, r->notice, sizeof r->notice);
    col_str(st, 3, r->version, sizeof r->version);
    col_str(st, 4, r->language, sizeof r->language);
    col_str(st, 5, r->sha256, sizeof r->sha256);
    r->created_at = col_i64(st, 6);
}

static pt_result sq_db_notice_insert(pt_conn *c_base, const pt_notice_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_NOTICE_INSERT, &st);
    b_i64(st, &rc, 1, r->tenant);
    b_blob(st, &rc, 2, r->id, sizeof r->id);
    b_str(st, &rc, 3, r->notice, sizeof r->notice);
    b_str(st, &rc, 4, r->version, sizeof r->version);
    b_str(st, &rc, 5, r->language, sizeof r->language);
    b_str(st, &rc, 6, r->sha256, sizeof r->sha256);
    b_i64(st, &rc, 7, r->created_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text64(st, 8, r->text ? r->text : "", r->text ? r->text_len : 0,
                                 SQLITE_STATIC, SQLITE_UTF8);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_NOTICE_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    /* The primary key is (tenant, notice, version); the id has its own
     * UNIQUE index. */
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return fail_ex(c, rc, err, "notice insert", "id", "a notice with that id already exists");
    return fail_ex(c, rc, err, "notice insert", "version",
                   "this version of the notice already exists");
}

static pt_result sq_db_notice_get(pt_conn *c_base, uint32_t tenant, const char *notice, const char *version,
                           pt_notice_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!notice || !version) return PT_ERR_INVALID;
    sqlite3_stmt *st;
    pt_result r = PT_OK;
    int rc = stmt_get(c, S_NOTICE_GET, &st);
    b_i64(st, &rc, 1, tenant);
    b_str(st, &rc, 2, notice, SIZE_MAX);
    b_str(st, &rc, 3, version, SIZE_MAX);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = PT_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = fail(c, rc, NULL, "notice get");
        goto out;
    }
    read_notice(st, out);
    const unsigned char *t = sqlite3_column_text(st, 7);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, 7) : 0;
    out->text = malloc(n + 1);
    if (!out->text) {
        r = PT_ERR_NOMEM;
        goto out;
    }
    if (n) memcpy(out->text, t, n);
    out->text[n] = '\0';
    out->text_len = n;
out:
    stmt_put(c, S_NOTICE_GET, st);
    return r;
}

struct notice_scan {
    pt_notice_cb cb;
    void *ctx;
};

static pt_result visit_notice(sqlite3_stmt *st, void *arg, int *stop)
{
    struct notice_scan *a = arg;
    pt_notice_rec r;
    read_notice(st, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_notice_list(pt_conn *c_base, uint32_t tenant, pt_notice_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct notice_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_NOTICE_LIST, &st);
    b_i64(st, &rc, 1, tenant);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "notice list", visit_notice, &a)
                                  : fail(c, rc, NULL, "notice list");
    stmt_put(c, S_NOTICE_LIST, st);
    return r;
}

/* ------------------------------------------------------------------------
 * Subjects. */


static void read_subject(sqlite3_stmt *st, pt_subject_rec *r)
{
    memset(r, 0, sizeof *r);
    r->row = col_i64(st, 0);
    col_fixed(st, 1, r->id, sizeof r->id);
    r->tenant = (uint32_t)col_i64(st, 2);
    r->kek_epoch = (uint32_t)col_i64(st, 3);
    col_fixed(st, 4, r->wrapped_dek, sizeof r->wrapped_dek); /* NULL once shredded: zeros */
    r->created_at = col_i64(st, 5);
    r->updated_at = col_i64(st, 6);
    r->erased_at = col_i64(st, 7);
}

static pt_result sq_db_subject_insert(pt_conn *c_base, pt_subject_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_SUBJECT_INSERT, &st);
    b_blob(st, &rc, 1, r->id, sizeof r->id);
    b_i64(st, &rc, 2, r->tenant);
    b_i64(st, &rc, 3, r->kek_epoch);
    b_blob(st, &rc, 4, r->wrapped_dek, sizeof r->wrapped_dek);
    b_blob(st, &rc, 5, r->profile, r->profile_len);
    b_i64(st, &rc, 6, r->created_at);
    b_i64(st, &rc, 7, r->updated_at);
    b_opt_i64(st, &rc, 8, r->erased_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    if (rc == SQLITE_DONE) r->row = sqlite3_last_insert_rowid(c->db);
    stmt_put(c, S_SUBJECT_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail_ex(c, rc, err, "subject insert", "id", "a subject with that id already exists");
}

static pt_result sq_db_subject_get(pt_conn *c_base, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    pt_result r = PT_OK;
    int rc = stmt_get(c, S_SUBJECT_GET, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = PT_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = fail(c, rc, NULL, "subject get");
        goto out;
    }
    read_subject(st, out);
    const void *p = sqlite3_column_blob(st, 8);
    size_t n = p ? (size_t)sqlite3_column_bytes(st, 8) : 0;
    if (p) {
        out->profile = malloc(n ? n : 1);
        if (!out->profile) {
            r = PT_ERR_NOMEM;
            goto out;
        }
        if (n) memcpy(out->profile, p, n);
        out->profile_len = n;
    }
out:
    stmt_put(c, S_SUBJECT_GET, st);
    return r;
}

static pt_result sq_db_subject_update_profile(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                       const uint8_t *profile, size_t len, int64_t at)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_SUBJECT_UPDATE_PROFILE, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    b_blob(st, &rc, 2, profile, len);
    b_i64(st, &rc, 3, at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_SUBJECT_UPDATE_PROFILE, st);
    if (rc != SQLITE_DONE) return fail(c, rc, NULL, "subject profile update");
    return sqlite3_changes(c->db) ? PT_OK : PT_ERR_NOT_FOUND;
}

struct subject_scan {
    pt_subject_cb cb;
    void *ctx;
};

static pt_result visit_subject(sqlite3_stmt *st, void *arg, int *stop)
{
    struct subject_scan *a = arg;
    pt_subject_rec r;
    read_subject(st, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_subject_scan(pt_conn *c_base, int64_t after_row, pt_subject_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct subject_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_SUBJECT_SCAN, &st);
    b_i64(st, &rc, 1, after_row);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "subject scan", visit_subject, &a)
                                  : fail(c, rc, NULL, "subject scan");
    stmt_put(c, S_SUBJECT_SCAN, st);
    return r;
}

/* ------------------------------------------------------------------------
 * Identifiers. */

static pt_result sq_db_ident_insert(pt_conn *c_base, const pt_ident_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_IDENT_INSERT, &st);
    b_i64(st, &rc, 1, r->tenant);
    b_i64(st, &rc, 2, r->type);
    b_blob(st, &rc, 3, r->blind, sizeof r->blind);
    b_blob(st, &rc, 4, r->subject, sizeof r->subject);
    b_blob(st, &rc, 5, r->value, r->value_len);
    b_i64(st, &rc, 6, r->created_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_IDENT_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail_ex(c, rc, err, "identifier insert", "identifier",
                   "this identifier already belongs to a subject");
}

static pt_result sq_db_ident_lookup(pt_conn *c_base, uint32_t tenant, int type,
                             const uint8_t blind[PT_BLIND_BYTES], uint8_t subject[PT_ID_BYTES])
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_IDENT_LOOKUP, &st);
    b_i64(st, &rc, 1, tenant);
    b_i64(st, &rc, 2, type);
    b_blob(st, &rc, 3, blind, PT_BLIND_BYTES);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) col_fixed(st, 0, subject, PT_ID_BYTES);
    stmt_put(c, S_IDENT_LOOKUP, st);
    if (rc == SQLITE_ROW) return PT_OK;
    if (rc == SQLITE_DONE) return PT_ERR_NOT_FOUND;
    return fail(c, rc, NULL, "identifier lookup");
}

struct ident_scan {
    pt_ident_cb cb;
    void *ctx;
};

static pt_result visit_ident(sqlite3_stmt *st, void *arg, int *stop)
{
    struct ident_scan *a = arg;
    pt_ident_rec r;
    memset(&r, 0, sizeof r);
    r.tenant = (uint32_t)col_i64(st, 0);
    r.type = (int)col_i64(st, 1);
    col_fixed(st, 2, r.blind, sizeof r.blind);
    col_fixed(st, 3, r.subject, sizeof r.subject);
    r.value = sqlite3_column_blob(st, 4); /* valid until the next step */
    r.value_len = r.value ? (size_t)sqlite3_column_bytes(st, 4) : 0;
    r.created_at = col_i64(st, 5);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_ident_list(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES], pt_ident_cb cb,
                           void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct ident_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_IDENT_LIST, &st);
    b_blob(st, &rc, 1, subject, PT_ID_BYTES);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "identifier list", visit_ident, &a)
                                  : fail(c, rc, NULL, "identifier list");
    stmt_put(c, S_IDENT_LIST, st);
    return r;
}

/* ------------------------------------------------------------------------
 * Events. */

static pt_result sq_db_event_insert(pt_conn *c_base, pt_event_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if ((unsigned)r->action >= PT_ACT__COUNT)
        return pt_err_set(err, PT_ERR_INVALID, "action", "unknown consent action");
    if ((unsigned)r->via >= PT_VIA__COUNT)
        return pt_err_set(err, PT_ERR_INVALID, "collected_via", "unknown collection channel");
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_EVENT_INSERT, &st);
    b_blob(st, &rc, 1, r->id, sizeof r->id);
    b_i64(st, &rc, 2, r->tenant);
    b_blob(st, &rc, 3, r->subject, sizeof r->subject);
    b_str(st, &rc, 4, r->purpose, sizeof r->purpose);
    b_str(st, &rc, 5, pt_action_name(r->action), SIZE_MAX);
    b_i64(st, &rc, 6, r->channels);
    b_opt_str(st, &rc, 7, r->notice, sizeof r->notice);
    b_opt_str(st, &rc, 8, r->notice_version, sizeof r->notice_version);
    b_opt_str(st, &rc, 9, r->notice_sha256, sizeof r->notice_sha256);
    b_str(st, &rc, 10, pt_via_name(r->via), SIZE_MAX);
    b_blob(st, &rc, 11, r->evidence, r->evidence_len);
    b_opt_str(st, &rc, 12, r->evidence_sha256, sizeof r->evidence_sha256);
    b_i64(st, &rc, 13, r->occurred_at);
    b_i64(st, &rc, 14, r->recorded_at);
    b_opt_i64(st, &rc, 15, r->expires_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    if (rc == SQLITE_DONE) r->seq = sqlite3_last_insert_rowid(c->db);
    stmt_put(c, S_EVENT_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail_ex(c, rc, err, "event insert", "id", "an event with that id already exists");
}

struct event_scan {
    pt_event_cb cb;
    void *ctx;
};

static pt_result visit_event(sqlite3_stmt *st, void *arg, int *stop)
{
    struct event_scan *a = arg;
    pt_event_rec r;
    memset(&r, 0, sizeof r);
    r.seq = col_i64(st, 0);
    col_fixed(st, 1, r.id, sizeof r.id);
    r.tenant = (uint32_t)col_i64(st, 2);
    col_fixed(st, 3, r.subject, sizeof r.subject);
    col_str(st, 4, r.purpose, sizeof r.purpose);
    const unsigned char *action = sqlite3_column_text(st, 5);
    int act = action ? pt_action_parse((const char *)action) : -1;
    r.channels = (uint8_t)col_i64(st, 6);
    col_str(st, 7, r.notice, sizeof r.notice);
    col_str(st, 8, r.notice_version, sizeof r.notice_version);
    col_str(st, 9, r.notice_sha256, sizeof r.notice_sha256);
    const unsigned char *via = sqlite3_column_text(st, 10);
    int v = via ? pt_via_parse((const char *)via) : -1;
    if (act < 0 || v < 0) return PT_ERR_INTERNAL; /* written by a newer or broken binary */
    r.action = (pt_action)act;
    r.via = (pt_collected_via)v;
    r.evidence = sqlite3_column_blob(st, 11); /* valid until the next step */
    r.evidence_len = r.evidence ? (size_t)sqlite3_column_bytes(st, 11) : 0;
    col_str(st, 12, r.evidence_sha256, sizeof r.evidence_sha256);
    r.occurred_at = col_i64(st, 13);
    r.recorded_at = col_i64(st, 14);
    r.expires_at = col_i64(st, 15);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

/* LIMIT 0 would return nothing; the contract's 0 means "all". */
static int64_t limit_of(uint32_t limit)
{
    return limit ? (int64_t)limit : -1;
}

static pt_result sq_db_event_list_subject(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                   int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct event_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_EVENT_LIST_SUBJECT, &st);
    b_blob(st, &rc, 1, subject, PT_ID_BYTES);
    b_i64(st, &rc, 2, after_seq);
    b_i64(st, &rc, 3, limit_of(limit));
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "event list", visit_event, &a)
                                  : fail(c, rc, NULL, "event list");
    stmt_put(c, S_EVENT_LIST_SUBJECT, st);
    return r;
}

static pt_result sq_db_event_list_tenant(pt_conn *c_base, uint32_t tenant, int64_t after_seq, uint32_t limit,
                                  pt_event_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct event_scan a = {cb, ctx};
    enum stmt_id id = tenant ? S_EVENT_LIST_TENANT : S_EVENT_LIST_ALL;
    sqlite3_stmt *st;
    int rc = stmt_get(c, id, &st);
    int i = 1;
    if (tenant) b_i64(st, &rc, i++, tenant);
    b_i64(st, &rc, i++, after_seq);
    b_i64(st, &rc, i, limit_of(limit));
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "event list", visit_event, &a)
                                  : fail(c, rc, NULL, "event list");
    stmt_put(c, id, st);
    return r;
}

static pt_result sq_db_event_max_seq(pt_conn *c_base, int64_t *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_EVENT_MAX_SEQ, &st);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = col_i64(st, 0);
    stmt_put(c, S_EVENT_MAX_SEQ, st);
    return rc == SQLITE_ROW ? PT_OK : fail(c, rc, NULL, "event max seq");
}

/* ------------------------------------------------------------------------
 * Consent state. */

static void read_state(sqlite3_stmt *st, pt_state_rec *r)
{
    memset(r, 0, sizeof *r);
    col_fixed(st, 0, r->subject, sizeof r->subject);
    r->tenant = (uint32_t)col_i64(st, 1);
    r->event_seq = col_i64(st, 2);
    r->st.purpose_idx = (uint16_t)col_i64(st, 3);
    r->st.state = (uint8_t)col_i64(st, 4);
    r->st.channels = (uint8_t)col_i64(st, 5);
    r->st.revision = (uint16_t)col_i64(st, 6);
    r->st.decided_at = col_i64(st, 7);
    r->st.granted_at = col_i64(st, 8);
    r->st.expires_at = col_i64(st, 9);
    col_fixed(st, 10, r->st.event, sizeof r->st.event);
}

static pt_result sq_db_state_get(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES], uint16_t purpose_idx,
                          pt_state_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_STATE_GET, &st);
    b_blob(st, &rc, 1, subject, PT_ID_BYTES);
    b_i64(st, &rc, 2, purpose_idx);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_state(st, out);
    stmt_put(c, S_STATE_GET, st);
    if (rc == SQLITE_ROW) return PT_OK;
    if (rc == SQLITE_DONE) return PT_ERR_NOT_FOUND;
    return fail(c, rc, NULL, "consent state get");
}

static pt_result sq_db_state_put(pt_conn *c_base, const pt_state_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_STATE_PUT, &st);
    b_blob(st, &rc, 1, r->subject, sizeof r->subject);
    b_i64(st, &rc, 2, r->tenant);
    b_i64(st, &rc, 3, r->event_seq);
    b_i64(st, &rc, 4, r->st.purpose_idx);
    b_i64(st, &rc, 5, r->st.state);
    b_i64(st, &rc, 6, r->st.channels);
    b_i64(st, &rc, 7, r->st.revision);
    b_i64(st, &rc, 8, r->st.decided_at);
    b_opt_i64(st, &rc, 9, r->st.granted_at);
    b_opt_i64(st, &rc, 10, r->st.expires_at);
    b_blob(st, &rc, 11, r->st.event, sizeof r->st.event);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_STATE_PUT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail(c, rc, err, "consent state put");
}

struct state_scan {
    pt_state_cb cb;
    void *ctx;
};

static pt_result visit_state(sqlite3_stmt *st, void *arg, int *stop)
{
    struct state_scan *a = arg;
    pt_state_rec r;
    read_state(st, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_state_list_subject(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES], pt_state_cb cb,
                                   void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct state_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_STATE_LIST_SUBJECT, &st);
    b_blob(st, &rc, 1, subject, PT_ID_BYTES);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "consent state list", visit_state, &a)
                                  : fail(c, rc, NULL, "consent state list");
    stmt_put(c, S_STATE_LIST_SUBJECT, st);
    return r;
}

static pt_result sq_db_state_scan(pt_conn *c_base, int64_t after_seq, pt_state_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct state_scan a = {cb, ctx};
    enum stmt_id id = after_seq > 0 ? S_STATE_SCAN_AFTER : S_STATE_SCAN_ALL;
    sqlite3_stmt *st;
    int rc = stmt_get(c, id, &st);
    if (after_seq > 0) b_i64(st, &rc, 1, after_seq);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "consent state scan", visit_state, &a)
                                  : fail(c, rc, NULL, "consent state scan");
    stmt_put(c, id, st);
    return r;
}

/* ------------------------------------------------------------------------
 * The proof log. */

static pt_result sq_db_log_leaf_insert(pt_conn *c_base, const pt_leaf_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (r->idx > INT64_MAX) return pt_err_set(err, PT_ERR_INVALID, "", "leaf index out of range");
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_LEAF_INSERT, &st);
    b_i64(st, &rc, 1, r->tenant);
    b_i64(st, &rc, 2, (int64_t)r->idx);
    b_blob(st, &rc, 3, r->ref, sizeof r->ref);
    b_blob(st, &rc, 4, r->hash, sizeof r->hash);
    b_blob(st, &rc, 5, r->data ? (const void *)r->data : "", r->len);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_LOG_LEAF_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail_ex(c, rc, err, "log leaf insert", "", "that leaf is already in the log");
}

static pt_result sq_db_log_node_get(pt_conn *c_base, uint32_t tenant, unsigned level, uint64_t idx,
                                    uint8_t hash[PT_LOG_HASH]);

static pt_result sq_db_log_node_put(pt_conn *c_base, uint32_t tenant, unsigned level, uint64_t idx,
                                    const uint8_t hash[PT_LOG_HASH], pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_NODE_PUT, &st);
    b_i64(st, &rc, 1, tenant);
    b_i64(st, &rc, 2, level);
    b_i64(st, &rc, 3, (int64_t)idx);
    b_blob(st, &rc, 4, hash, PT_LOG_HASH);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_LOG_NODE_PUT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        uint8_t have[PT_LOG_HASH];
        if (sq_db_log_node_get(c_base, tenant, level, idx, have) == PT_OK &&
            memcmp(have, hash, PT_LOG_HASH) == 0)
            return PT_OK;
        return pt_err_set(err, PT_ERR_CONFLICT, "",
                          "a different hash is stored for that subtree: the log would fork");
    }
    return fail(c, rc, err, "log node insert");
}

static pt_result sq_db_log_node_get(pt_conn *c_base, uint32_t tenant, unsigned level, uint64_t idx,
                                    uint8_t hash[PT_LOG_HASH])
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    enum stmt_id id = level ? S_LOG_NODE_GET : S_LOG_LEAF_HASH;
    if (idx > INT64_MAX) return PT_ERR_NOT_FOUND;
    sqlite3_stmt *st;
    int rc = stmt_get(c, id, &st);
    int i = 1;
    b_i64(st, &rc, i++, tenant);
    if (level) b_i64(st, &rc, i++, level);
    b_i64(st, &rc, i, (int64_t)idx);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != PT_LOG_HASH)
            rc = SQLITE_CORRUPT;
        else
            memcpy(hash, sqlite3_column_blob(st, 0), PT_LOG_HASH);
    }
    stmt_put(c, id, st);
    if (rc == SQLITE_ROW) return PT_OK;
    if (rc == SQLITE_DONE) return PT_ERR_NOT_FOUND;
    return fail(c, rc, NULL, "log node read");
}

struct leaf_scan {
    pt_leaf_cb cb;
    void *ctx;
    bool seen;
};

static pt_result visit_leaf(sqlite3_stmt *st, void *arg, int *stop)
{
    struct leaf_scan *a = arg;
    pt_leaf_rec r;
    memset(&r, 0, sizeof r);
    r.tenant = (uint32_t)col_i64(st, 0);
    r.idx = (uint64_t)col_i64(st, 1);
    col_fixed(st, 2, r.ref, sizeof r.ref);
    col_fixed(st, 3, r.hash, sizeof r.hash);
    r.data = sqlite3_column_blob(st, 4); /* valid until the next step */
    r.len = r.data ? (size_t)sqlite3_column_bytes(st, 4) : 0;
    a->seen = true;
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_log_leaf_by_ref(pt_conn *c_base, uint32_t tenant,
                                       const uint8_t ref[PT_ID_BYTES], pt_leaf_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct leaf_scan a = {cb, ctx, false};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_LEAF_BY_REF, &st);
    b_i64(st, &rc, 1, tenant);
    b_blob(st, &rc, 2, ref, PT_ID_BYTES);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "log leaf read", visit_leaf, &a)
                                  : fail(c, rc, NULL, "log leaf read");
    stmt_put(c, S_LOG_LEAF_BY_REF, st);
    if (r == PT_OK && !a.seen) r = PT_ERR_NOT_FOUND;
    return r;
}

static pt_result sq_db_log_leaf_list(pt_conn *c_base, uint32_t tenant, uint64_t start,
                                     uint64_t end, pt_leaf_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    if (start > INT64_MAX) return PT_OK;
    if (end > INT64_MAX) end = INT64_MAX;
    struct leaf_scan a = {cb, ctx, false};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_LEAF_LIST, &st);
    b_i64(st, &rc, 1, tenant);
    b_i64(st, &rc, 2, (int64_t)start);
    b_i64(st, &rc, 3, (int64_t)end);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "log leaf list", visit_leaf, &a)
                                  : fail(c, rc, NULL, "log leaf list");
    stmt_put(c, S_LOG_LEAF_LIST, st);
    return r;
}

static void read_head(sqlite3_stmt *st, pt_log_head_rec *h)
{
    memset(h, 0, sizeof *h);
    h->tenant = (uint32_t)col_i64(st, 0);
    h->size = (uint64_t)col_i64(st, 1);
    col_fixed(st, 2, h->root, sizeof h->root);
    h->event_seq = col_i64(st, 3);
    col_str(st, 4, h->checkpoint, sizeof h->checkpoint);
    h->signed_at = col_i64(st, 5);
}

/* A checkpoint longer than the record holds (a damaged or foreign file)
 * is refused rather than cut, as PostgreSQL does. */
static bool head_fits(sqlite3_stmt *st)
{
    return (size_t)sqlite3_column_bytes(st, 4) < PT_CHECKPOINT_MAX;
}

static pt_result sq_db_log_head_get(pt_conn *c_base, uint32_t tenant, pt_log_head_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_HEAD_GET, &st);
    b_i64(st, &rc, 1, tenant);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    bool fits = rc == SQLITE_ROW && head_fits(st);
    if (fits) read_head(st, out);
    stmt_put(c, S_LOG_HEAD_GET, st);
    if (rc == SQLITE_ROW) return fits ? PT_OK : PT_ERR_TOO_LARGE;
    if (rc == SQLITE_DONE) return PT_ERR_NOT_FOUND;
    return fail(c, rc, NULL, "log head read");
}

static pt_result sq_db_log_head_put(pt_conn *c_base, const pt_log_head_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (r->size > INT64_MAX) return pt_err_set(err, PT_ERR_INVALID, "", "tree size out of range");
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_HEAD_PUT, &st);
    b_i64(st, &rc, 1, r->tenant);
    b_i64(st, &rc, 2, (int64_t)r->size);
    b_blob(st, &rc, 3, r->root, sizeof r->root);
    b_i64(st, &rc, 4, r->event_seq);
    b_str(st, &rc, 5, r->checkpoint, sizeof r->checkpoint);
    b_i64(st, &rc, 6, r->signed_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_LOG_HEAD_PUT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail(c, rc, err, "log head write");
}

struct head_scan {
    pt_log_head_cb cb;
    void *ctx;
};

static pt_result visit_head(sqlite3_stmt *st, void *arg, int *stop)
{
    struct head_scan *a = arg;
    if (!head_fits(st)) return PT_ERR_TOO_LARGE;
    pt_log_head_rec *h = malloc(sizeof *h); /* 2 KiB: not on a callback's stack */
    if (!h) return PT_ERR_NOMEM;
    read_head(st, h);
    *stop = a->cb(a->ctx, h);
    free(h);
    return PT_OK;
}

static pt_result sq_db_log_head_list(pt_conn *c_base, pt_log_head_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct head_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_HEAD_LIST, &st);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "log head list", visit_head, &a)
                                  : fail(c, rc, NULL, "log head list");
    stmt_put(c, S_LOG_HEAD_LIST, st);
    return r;
}

static pt_result sq_db_log_key_add(pt_conn *c_base, const char *verifier, int64_t at, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_KEY_ADD, &st);
    b_str(st, &rc, 1, verifier, SIZE_MAX);
    b_i64(st, &rc, 2, at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_LOG_KEY_ADD, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail(c, rc, err, "log key write");
}

struct key_scan_v {
    pt_log_key_cb cb;
    void *ctx;
};

static pt_result visit_log_key(sqlite3_stmt *st, void *arg, int *stop)
{
    struct key_scan_v *a = arg;
    const unsigned char *v = sqlite3_column_text(st, 0);
    *stop = a->cb(a->ctx, v ? (const char *)v : "", col_i64(st, 1));
    return PT_OK;
}

static pt_result sq_db_log_key_list(pt_conn *c_base, pt_log_key_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct key_scan_v a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_KEY_LIST, &st);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "log key list", visit_log_key, &a)
                                  : fail(c, rc, NULL, "log key list");
    stmt_put(c, S_LOG_KEY_LIST, st);
    return r;
}

struct node_scan_v {
    pt_log_node_cb cb;
    void *ctx;
};

static pt_result visit_log_node(sqlite3_stmt *st, void *arg, int *stop)
{
    struct node_scan_v *a = arg;
    uint8_t hash[PT_LOG_HASH];
    col_fixed(st, 3, hash, sizeof hash);
    *stop = a->cb(a->ctx, (uint32_t)col_i64(st, 0), (unsigned)col_i64(st, 1),
                  (uint64_t)col_i64(st, 2), hash);
    return PT_OK;
}

static pt_result sq_db_log_node_list(pt_conn *c_base, uint32_t tenant, pt_log_node_cb cb,
                                     void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct node_scan_v a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_LOG_NODE_LIST, &st);
    b_i64(st, &rc, 1, tenant);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "log node list", visit_log_node, &a)
                                  : fail(c, rc, NULL, "log node list");
    stmt_put(c, S_LOG_NODE_LIST, st);
    return r;
}

/* ------------------------------------------------------------------------
 * Identity across devices: merged ids (aliases). */

static pt_result sq_db_subject_resolve(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                       pt_subject_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    pt_result r = PT_OK;
    int rc = stmt_get(c, S_SUBJECT_RESOLVE, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = PT_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = fail(c, rc, NULL, "subject resolve");
        goto out;
    }
    read_subject(st, out);
    const void *p = sqlite3_column_blob(st, 8);
    size_t n = p ? (size_t)sqlite3_column_bytes(st, 8) : 0;
    if (p) {
        out->profile = malloc(n ? n : 1);
        if (!out->profile) {
            r = PT_ERR_NOMEM;
            goto out;
        }
        if (n) memcpy(out->profile, p, n);
        out->profile_len = n;
    }
out:
    stmt_put(c, S_SUBJECT_RESOLVE, st);
    return r;
}

static void read_alias(sqlite3_stmt *st, pt_alias_rec *r)
{
    memset(r, 0, sizeof *r);
    r->seq = col_i64(st, 0);
    col_fixed(st, 1, r->id, sizeof r->id);
    r->tenant = (uint32_t)col_i64(st, 2);
    col_fixed(st, 3, r->subject, sizeof r->subject);
    col_fixed(st, 4, r->merge, sizeof r->merge);
    r->merged_at = col_i64(st, 5);
}

static pt_result sq_db_alias_insert(pt_conn *c_base, pt_alias_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_ALIAS_INSERT, &st);
    b_blob(st, &rc, 1, r->id, sizeof r->id);
    b_i64(st, &rc, 2, r->tenant);
    b_blob(st, &rc, 3, r->subject, sizeof r->subject);
    b_blob(st, &rc, 4, r->merge, sizeof r->merge);
    b_i64(st, &rc, 5, r->merged_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    if (rc == SQLITE_DONE) r->seq = sqlite3_last_insert_rowid(c->db);
    stmt_put(c, S_ALIAS_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail_ex(c, rc, err, "alias insert", "from", "this subject was already merged");
}

static pt_result sq_db_alias_get(pt_conn *c_base, const uint8_t id[PT_ID_BYTES], pt_alias_rec *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_ALIAS_GET, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_alias(st, out);
    stmt_put(c, S_ALIAS_GET, st);
    if (rc == SQLITE_ROW) return PT_OK;
    if (rc == SQLITE_DONE) return PT_ERR_NOT_FOUND;
    return fail(c, rc, NULL, "alias get");
}

static pt_result sq_db_alias_repoint(pt_conn *c_base, const uint8_t from[PT_ID_BYTES],
                                     const uint8_t to[PT_ID_BYTES], pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_ALIAS_REPOINT, &st);
    b_blob(st, &rc, 1, from, PT_ID_BYTES);
    b_blob(st, &rc, 2, to, PT_ID_BYTES);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_ALIAS_REPOINT, st);
    return rc == SQLITE_DONE ? PT_OK : fail(c, rc, err, "alias repoint");
}

struct alias_scan {
    pt_alias_cb cb;
    void *ctx;
};

static pt_result visit_alias(sqlite3_stmt *st, void *arg, int *stop)
{
    struct alias_scan *a = arg;
    pt_alias_rec r;
    read_alias(st, &r);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_alias_list(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                  pt_alias_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct alias_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_ALIAS_LIST, &st);
    b_blob(st, &rc, 1, subject, PT_ID_BYTES);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "alias list", visit_alias, &a)
                                  : fail(c, rc, NULL, "alias list");
    stmt_put(c, S_ALIAS_LIST, st);
    return r;
}

static pt_result sq_db_alias_scan(pt_conn *c_base, int64_t after_seq, pt_alias_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct alias_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_ALIAS_SCAN, &st);
    b_i64(st, &rc, 1, after_seq);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "alias scan", visit_alias, &a)
                                  : fail(c, rc, NULL, "alias scan");
    stmt_put(c, S_ALIAS_SCAN, st);
    return r;
}

static pt_result sq_db_ident_move(pt_conn *c_base, uint32_t tenant, int type,
                                  const uint8_t blind[PT_BLIND_BYTES],
                                  const uint8_t subject[PT_ID_BYTES], const uint8_t *value,
                                  size_t len, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_IDENT_MOVE, &st);
    b_i64(st, &rc, 1, tenant);
    b_i64(st, &rc, 2, type);
    b_blob(st, &rc, 3, blind, PT_BLIND_BYTES);
    b_blob(st, &rc, 4, subject, PT_ID_BYTES);
    b_blob(st, &rc, 5, value, len);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_IDENT_MOVE, st);
    if (rc != SQLITE_DONE) return fail(c, rc, err, "identifier move");
    return sqlite3_changes(c->db) ? PT_OK : PT_ERR_NOT_FOUND;
}

static pt_result sq_db_state_delete_subject(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                            pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_STATE_DELETE_SUBJECT, &st);
    b_blob(st, &rc, 1, subject, PT_ID_BYTES);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_STATE_DELETE_SUBJECT, st);
    return rc == SQLITE_DONE ? PT_OK : fail(c, rc, err, "consent state delete");
}

static pt_result sq_db_event_list_person(pt_conn *c_base, const uint8_t subject[PT_ID_BYTES],
                                         int64_t after_seq, uint32_t limit, pt_event_cb cb,
                                         void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct event_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_EVENT_LIST_PERSON, &st);
    b_blob(st, &rc, 1, subject, PT_ID_BYTES);
    b_i64(st, &rc, 2, after_seq);
    b_i64(st, &rc, 3, limit_of(limit));
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "event list", visit_event, &a)
                                  : fail(c, rc, NULL, "event list");
    stmt_put(c, S_EVENT_LIST_PERSON, st);
    return r;
}

/* ------------------------------------------------------------------------
 * Erasure, backups, key rotation. */

static pt_result sq_db_subject_erase(pt_conn *c_base, const uint8_t id[PT_ID_BYTES], int64_t at,
                                     int64_t *identifiers, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    if (identifiers) *identifiers = 0;
    int rc = stmt_get(c, S_SUBJECT_ERASE, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    b_i64(st, &rc, 2, at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_SUBJECT_ERASE, st);
    if (rc != SQLITE_DONE) return fail(c, rc, err, "subject erase");
    if (sqlite3_changes(c->db) == 0)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such subject, or erased already");
    rc = stmt_get(c, S_IDENT_ERASE, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_IDENT_ERASE, st);
    if (rc != SQLITE_DONE) return fail(c, rc, err, "identifier erase");
    if (identifiers) *identifiers = sqlite3_changes(c->db);
    return PT_OK;
}

struct erased_scan {
    pt_erased_cb cb;
    void *ctx;
};

static pt_result visit_erased(sqlite3_stmt *st, void *arg, int *stop)
{
    struct erased_scan *a = arg;
    pt_subject_rec r;
    read_subject(st, &r);
    *stop = a->cb(a->ctx, &r, col_i64(st, 8));
    return PT_OK;
}

static pt_result sq_db_subject_erased_scan(pt_conn *c_base, int64_t after_seq, pt_erased_cb cb,
                                           void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct erased_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_SUBJECT_ERASED_SCAN, &st);
    b_i64(st, &rc, 1, after_seq);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "erased subject scan", visit_erased, &a)
                                  : fail(c, rc, NULL, "erased subject scan");
    stmt_put(c, S_SUBJECT_ERASED_SCAN, st);
    return r;
}

static pt_result sq_db_subject_rewrap(pt_conn *c_base, const uint8_t id[PT_ID_BYTES],
                                      uint32_t epoch, const uint8_t wrapped[PT_WRAPPED_KEY_BYTES],
                                      pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_SUBJECT_REWRAP, &st);
    b_blob(st, &rc, 1, id, PT_ID_BYTES);
    b_i64(st, &rc, 2, epoch);
    b_blob(st, &rc, 3, wrapped, PT_WRAPPED_KEY_BYTES);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_SUBJECT_REWRAP, st);
    if (rc != SQLITE_DONE) return fail(c, rc, err, "subject key rewrap");
    if (sqlite3_changes(c->db) == 0)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such live subject");
    return PT_OK;
}

/* With secure_delete on, SQLite zeroes deleted cells and freed pages in
 * the pages it writes, but the pages' previous images stay in the -wal
 * file (and, until the checkpoint copies the new images back, in the
 * database file). A TRUNCATE checkpoint copies every frame into the
 * database file, waits for readers still on an older snapshot (busy
 * timeout), and truncates the -wal file to zero bytes. */
static pt_result sq_db_scrub(pt_conn *c_base, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!sqlite3_get_autocommit(c->db))
        return pt_err_set(err, PT_ERR_INTERNAL, "", "a WAL checkpoint cannot run in a transaction");
    int frames = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_TRUNCATE, &frames, &done);
    if (rc == SQLITE_OK) return PT_OK;
    return fail(c, rc, err, "WAL checkpoint (truncate)");
}

/* Makes dest's content and its directory entry durable. */
static int fsync_file_and_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return -1;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1; /* "/file" */
        if (n >= sizeof dir) return -1;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* VACUUM INTO reads the database in one read transaction (a consistent
 * snapshot; writers go on meanwhile, WAL readers never block them) and
 * writes a compact copy: only live content, no free pages, no WAL. The
 * file is created first, empty and 0600, as VACUUM INTO accepts. */
static pt_result sq_db_backup(pt_conn *c_base, const char *dest, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!dest || !*dest) return pt_err_set(err, PT_ERR_INVALID, "dest", "no backup file given");
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return pt_err_set(err, errno == EEXIST ? PT_ERR_CONFLICT : PT_ERR_IO, "dest",
                          errno == EEXIST ? "%s exists already; give a new file"
                                          : "cannot create %s",
                          dest);
    close(fd);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "VACUUM INTO ?1", -1, &st, NULL);
    b_str(st, &rc, 1, dest, SIZE_MAX);
    if (rc == SQLITE_OK) rc = step_write(st);
    sqlite3_finalize(st);
    pt_result r = PT_OK;
    if (rc != SQLITE_DONE)
        r = fail(c, rc, err, "backup (VACUUM INTO)");
    else if (fsync_file_and_dir(dest) != 0)
        r = pt_err_set(err, PT_ERR_IO, "dest", "cannot fsync the backup %s", dest);
    if (r != PT_OK) unlink(dest);
    return r;
}

/* SQLite's backup API copies every page of src into this database in one
 * write transaction (the destination's WAL), so an interrupted restore
 * leaves the database as it was. src is opened read-only. */
static pt_result sq_db_restore(pt_conn *c_base, const char *src, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3 *from = NULL;
    pt_result r = PT_OK;
    if (!sqlite3_get_autocommit(c->db))
        return pt_err_set(err, PT_ERR_INTERNAL, "", "a restore cannot run in a transaction");
    int rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                             c->store->vfs);
    if (rc != SQLITE_OK) {
        r = pt_err_set(err, PT_ERR_IO, "src", "cannot open %s", src);
        goto out;
    }
    sqlite3_busy_timeout(from, 5000);
    sqlite3_backup *b = sqlite3_backup_init(c->db, "main", from, "main");
    if (!b) {
        r = fail(c, sqlite3_extended_errcode(c->db), err, "restore");
        goto out;
    }
    rc = sqlite3_backup_step(b, -1);
    int frc = sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE) rc = frc;
    if (rc == SQLITE_READONLY)
        r = pt_err_set(err, PT_ERR_INVALID, "src",
                       "%s cannot be copied into this database (a different page size?)", src);
    else if (rc != SQLITE_OK && rc != SQLITE_DONE)
        r = fail(c, rc, err, "restore");
out:
    sqlite3_close(from);
    return r;
}

/* ------------------------------------------------------------------------
 * Statistics of anonymised people. */

static pt_result sq_db_stats_insert(pt_conn *c_base, const pt_stat_rec *r, pt_err *err)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_STATS_INSERT, &st);
    b_i64(st, &rc, 1, r->tenant);
    b_str(st, &rc, 2, r->age, sizeof r->age);
    b_str(st, &rc, 3, r->region, sizeof r->region);
    b_str(st, &rc, 4, r->sex, sizeof r->sex);
    b_str(st, &rc, 5, r->states ? r->states : "{}", PT_STAT_STATES_MAX);
    b_i64(st, &rc, 6, r->created_at);
    if (rc == SQLITE_OK) rc = step_write(st);
    stmt_put(c, S_STATS_INSERT, st);
    if (rc == SQLITE_DONE) return PT_OK;
    return fail(c, rc, err, "statistics insert");
}

static pt_result sq_db_stats_count(pt_conn *c_base, uint32_t tenant, const char *age,
                                   const char *region, const char *sex, int64_t *out)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_STATS_COUNT, &st);
    b_i64(st, &rc, 1, tenant);
    b_str(st, &rc, 2, age, PT_STAT_AGE_MAX + 1);
    b_str(st, &rc, 3, region, PT_STAT_REGION_MAX + 1);
    b_str(st, &rc, 4, sex, PT_STAT_SEX_MAX + 1);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = col_i64(st, 0);
    stmt_put(c, S_STATS_COUNT, st);
    return rc == SQLITE_ROW ? PT_OK : fail(c, rc, NULL, "statistics count");
}

struct stat_scan {
    pt_stat_cb cb;
    void *ctx;
};

static pt_result visit_stat(sqlite3_stmt *st, void *arg, int *stop)
{
    struct stat_scan *a = arg;
    pt_stat_rec r;
    memset(&r, 0, sizeof r);
    r.tenant = (uint32_t)col_i64(st, 0);
    col_str(st, 1, r.age, sizeof r.age);
    col_str(st, 2, r.region, sizeof r.region);
    col_str(st, 3, r.sex, sizeof r.sex);
    const unsigned char *states = sqlite3_column_text(st, 4); /* valid until the next step */
    r.states = states ? (const char *)states : "{}";
    r.created_at = col_i64(st, 5);
    *stop = a->cb(a->ctx, &r);
    return PT_OK;
}

static pt_result sq_db_stats_list(pt_conn *c_base, uint32_t tenant, pt_stat_cb cb, void *ctx)
{
    sqlite_conn *c = (sqlite_conn *)c_base;
    if (!cb) return PT_ERR_INVALID;
    struct stat_scan a = {cb, ctx};
    sqlite3_stmt *st;
    int rc = stmt_get(c, S_STATS_LIST, &st);
    b_i64(st, &rc, 1, tenant);
    pt_result r = rc == SQLITE_OK ? scan_rows(c, st, "statistics list", visit_stat, &a)
                                  : fail(c, rc, NULL, "statistics list");
    stmt_put(c, S_STATS_LIST, st);
    return r;
}

/* ------------------------------------------------------------------------
 * The dispatch table. */

static int sq_accepts(const char *url)
{
    return strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0;
}

const pt_store_ops pt_sqlite_ops = {
    .name = "sqlite",
    .accepts = sq_accepts,
    .store_open = sq_store_open,
    .store_close = sq_store_close,
    .store_schema_version = sq_store_schema_version,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .conn_tune = sq_conn_tune,
    .changes = sq_changes,
    .tx_begin = sq_tx_begin,
    .tx_commit = sq_tx_commit,
    .tx_rollback = sq_tx_rollback,
    .tx_savepoint = sq_tx_savepoint,
    .tx_release = sq_tx_release,
    .tx_rollback_to = sq_tx_rollback_to,
    .db_data_version = sq_db_data_version,
    .db_meta_get = sq_db_meta_get,
    .db_meta_set = sq_db_meta_set,
    .db_tenant_insert = sq_db_tenant_insert,
    .db_tenant_by_name = sq_db_tenant_by_name,
    .db_tenant_by_id = sq_db_tenant_by_id,
    .db_tenant_list = sq_db_tenant_list,
    .db_key_insert = sq_db_key_insert,
    .db_key_list = sq_db_key_list,
    .db_key_revoke = sq_db_key_revoke,
    .db_purpose_put = sq_db_purpose_put,
    .db_purpose_get = sq_db_purpose_get,
    .db_purpose_list = sq_db_purpose_list,
    .db_notice_insert = sq_db_notice_insert,
    .db_notice_get = sq_db_notice_get,
    .db_notice_list = sq_db_notice_list,
    .db_subject_insert = sq_db_subject_insert,
    .db_subject_get = sq_db_subject_get,
    .db_subject_update_profile = sq_db_subject_update_profile,
    .db_subject_scan = sq_db_subject_scan,
    .db_ident_insert = sq_db_ident_insert,
    .db_ident_lookup = sq_db_ident_lookup,
    .db_ident_list = sq_db_ident_list,
    .db_event_insert = sq_db_event_insert,
    .db_event_list_subject = sq_db_event_list_subject,
    .db_event_list_tenant = sq_db_event_list_tenant,
    .db_event_max_seq = sq_db_event_max_seq,
    .db_state_get = sq_db_state_get,
    .db_state_put = sq_db_state_put,
    .db_state_list_subject = sq_db_state_list_subject,
    .db_state_scan = sq_db_state_scan,
    .db_log_leaf_insert = sq_db_log_leaf_insert,
    .db_log_node_put = sq_db_log_node_put,
    .db_log_node_get = sq_db_log_node_get,
    .db_log_leaf_by_ref = sq_db_log_leaf_by_ref,
    .db_log_leaf_list = sq_db_log_leaf_list,
    .db_log_head_get = sq_db_log_head_get,
    .db_log_head_put = sq_db_log_head_put,
    .db_log_head_list = sq_db_log_head_list,
    .db_log_key_add = sq_db_log_key_add,
    .db_log_key_list = sq_db_log_key_list,
    .db_log_node_list = sq_db_log_node_list,
    .db_subject_resolve = sq_db_subject_resolve,
    .db_alias_insert = sq_db_alias_insert,
    .db_alias_get = sq_db_alias_get,
    .db_alias_repoint = sq_db_alias_repoint,
    .db_alias_list = sq_db_alias_list,
    .db_alias_scan = sq_db_alias_scan,
    .db_ident_move = sq_db_ident_move,
    .db_state_delete_subject = sq_db_state_delete_subject,
    .db_event_list_person = sq_db_event_list_person,
    .db_subject_erase = sq_db_subject_erase,
    .db_subject_erased_scan = sq_db_subject_erased_scan,
    .db_subject_rewrap = sq_db_subject_rewrap,
    .db_scrub = sq_db_scrub,
    .db_backup = sq_db_backup,
    .db_restore = sq_db_restore,
    .db_stats_insert = sq_db_stats_insert,
    .db_stats_count = sq_db_stats_count,
    .db_stats_list = sq_db_stats_list,
};
