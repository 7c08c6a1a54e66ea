/* bench_sqlite_ceiling.c - the import ceiling: raw SQLite inserting ROWS
 * rows as wide as patto's ledger events (same columns, same kinds of
 * values: 16-byte ids, short texts, a hex SHA-256, three times), with one
 * prepared statement in one transaction, under the pragmas patto's
 * src/store/sqlite.c sets (WAL, synchronous=FULL, secure_delete, 8 KiB
 * pages, 64 MiB page cache, checkpoint every 16384 pages); keep them in
 * step when those change.
 *
 * Plain: a rowid table and nothing else - the ideal.
 * --indexed: also patto's UNIQUE(id) and its two secondary indexes on
 * events, to show what the indexes alone cost (a diagnostic, not the
 * ceiling).
 * --cache-mib N: page cache of N MiB instead of patto's 64 (a diagnostic:
 * how much of the cost is dirty pages spilled to the WAL and read back).
 *
 * usage: bench_sqlite_ceiling DBPATH ROWS [--indexed] [--cache-mib N]
 * DBPATH must not exist. Prints one "RESULT rows=N seconds=S rows_per_s=R" line. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUBJECT_EVENTS 3
#define MAX_ROWS 100000000L

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rand16(uint8_t out[16])
{
    uint64_t a = rng(), b = rng();
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_sqlite_ceiling: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int indexed = 0;
    long cache_mib = 64;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--indexed") == 0) {
            indexed = 1;
        } else if (strcmp(argv[i], "--cache-mib") == 0 && i + 1 < argc) {
            cache_mib = atol(argv[++i]);
            if (cache_mib < 1 || cache_mib > 65536) argc = 0; /* usage below */
        } else {
            argc = 0;
        }
    }
    if (argc < 3) {
        fprintf(stderr, "usage: bench_sqlite_ceiling DBPATH ROWS [--indexed] [--cache-mib 1..65536]\n");
        return 2;
    }
    const char *path = argv[1];
    long rows = atol(argv[2]);
    if (rows < 1 || rows > MAX_ROWS) {
        fprintf(stderr, "bench_sqlite_ceiling: ROWS must be 1..%ld\n", MAX_ROWS);
        return 2;
    }
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "bench_sqlite_ceiling: %s exists; give a new path\n", path);
        return 2;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_sqlite_ceiling: cannot open %s\n", path);
        return 3;
    }
    char pragmas[512];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA page_size = 8192;"
             "PRAGMA journal_mode = WAL;"
             "PRAGMA synchronous = FULL;"
             "PRAGMA secure_delete = ON;"
             "PRAGMA cache_size = -%ld;"
             "PRAGMA wal_autocheckpoint = 16384;"
             "PRAGMA journal_size_limit = 134217728;",
             cache_mib * 1024);
    if (exec(db, pragmas) != 0 ||
        exec(db, indexed ? "CREATE TABLE events("
                           "  seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
                           "  tenant_id INTEGER NOT NULL, subject_id BLOB NOT NULL,"
                           "  purpose TEXT NOT NULL, action TEXT NOT NULL, channels INTEGER NOT NULL,"
                           "  notice TEXT, notice_version TEXT, notice_sha256 TEXT,"
                           "  collected_via TEXT NOT NULL, evidence BLOB, evidence_sha256 TEXT,"
                           "  occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL,"
                           "  expires_at INTEGER);"
                           "CREATE INDEX events_subject ON events(subject_id, seq);"
                           "CREATE INDEX events_tenant ON events(tenant_id, seq);"
                         : "CREATE TABLE events("
                           "  seq INTEGER PRIMARY KEY, id BLOB NOT NULL,"
                           "  tenant_id INTEGER NOT NULL, subject_id BLOB NOT NULL,"
                           "  purpose TEXT NOT NULL, action TEXT NOT NULL, channels INTEGER NOT NULL,"
                           "  notice TEXT, notice_version TEXT, notice_sha256 TEXT,"
                           "  collected_via TEXT NOT NULL, evidence BLOB, evidence_sha256 TEXT,"
                           "  occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL,"
                           "  expires_at INTEGER);") != 0) {
        sqlite3_close(db);
        return 3;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO events(id, tenant_id, subject_id, purpose, action, channels,"
                           " notice, notice_version, notice_sha256, collected_via, evidence,"
                           " evidence_sha256, occurred_at, recorded_at, expires_at)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,NULL,NULL,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_sqlite_ceiling: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 3;
    }
    static const char *const PURPOSE[SUBJECT_EVENTS] = {"processing", "marketing", "profiling"};
    static const int CHANNELS[SUBJECT_EVENTS] = {255, 15, 49};
    static const char SHA[] = "5dc531d369b9fc7ba48ea3670528b11dfefcd45024d2a833fedff9abc1c49268";
    const int64_t year_ms = 365LL * 86400000LL;
    int64_t now = (int64_t)time(NULL) * 1000;
    uint8_t id[16], subject[16];

    double t0 = now_s();
    if (exec(db, "BEGIN IMMEDIATE") != 0) return 3;
    for (long i = 0; i < rows; i++) {
        int p = (int)(i % SUBJECT_EVENTS);
        if (p == 0) rand16(subject);
        rand16(id);
        int64_t occurred = now - (int64_t)(rng() % (uint64_t)year_ms);
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, 1);
        sqlite3_bind_blob(st, 3, subject, 16, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, PURPOSE[p], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, "grant", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, CHANNELS[p]);
        sqlite3_bind_text(st, 7, "privacy", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, "1", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, SHA, 64, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, "import", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, occurred);
        sqlite3_bind_int64(st, 12, now);
        sqlite3_bind_int64(st, 13, occurred + 730LL * 86400000LL);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "bench_sqlite_ceiling: insert %ld: %s\n", i, sqlite3_errmsg(db));
            sqlite3_finalize(st);
            sqlite3_close(db);
            return 3;
        }
        sqlite3_reset(st);
    }
    if (exec(db, "COMMIT") != 0) return 3;
    double secs = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("raw SQLite%s, %ld MiB page cache: %ld rows in %.2f s (%.0f rows/s)\n",
           indexed ? " with patto's events indexes" : "", cache_mib, rows, secs,
           (double)rows / secs);
    printf("RESULT rows=%ld seconds=%.3f rows_per_s=%.0f\n", rows, secs, (double)rows / secs);
    return 0;
}
