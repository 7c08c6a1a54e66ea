/* bench_log.c - the proof log's figures, each against a ceiling measured
 * in the same run on the same disk:
 *
 *   append: N consent-sized leaves through pt_log_tx_append (leaf row, the
 *     subtree hashes it completes, SHA-256s) in one transaction, sealed
 *     (one signed checkpoint) and committed
 *     vs raw SQLite inserting the same leaf rows (no hashing, no subtree
 *     rows) with one prepared statement in one transaction.
 *   proof: inclusion proofs for random leaves of a log of L leaves, through
 *     pt_log_inclusion (what GET /v1/log/proof/inclusion runs, JSON and
 *     base64 included, HTTP excluded), store warm
 *     vs the bare reads a proof needs: log2(L) primary-key SELECTs of one
 *     subtree hash each, one prepared statement.
 *
 * usage: bench_log DIR APPEND_LEAVES PROOF_LEAVES PROOFS
 * DIR must exist and be empty-ish (files append.db, ceiling.db, proof.db
 * are created). Prints RESULT lines. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/keyring.h"
#include "service/app.h"
#include "service/log.h"
#include "store/store.h"

#define CHUNK 1000000 /* leaves per transaction when building the proof log */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void die(const char *what, const pt_err *e)
{
    fprintf(stderr, "bench_log: %s: %s\n", what, e ? e->detail : "");
    exit(1);
}

static pt_result name_of(void *ctx, uint32_t tenant, char name[PT_TENANT_NAME_MAX + 1])
{
    (void)ctx;
    (void)tenant;
    strcpy(name, "bench");
    return PT_OK;
}

/* A leaf of a real consent event's size: only the event and subject ids
 * differ from one leaf to the next. */
static char *make_leaf(uint64_t i, size_t *len)
{
    pt_event_rec e;
    memset(&e, 0, sizeof e);
    for (int k = 0; k < 8; k++) e.id[k] = (uint8_t)(i >> (56 - 8 * k));
    uint64_t r = rng();
    memcpy(e.id + 8, &r, 8);
    r = rng();
    memcpy(e.subject, &r, 8);
    strcpy(e.purpose, "marketing");
    e.action = PT_ACT_GRANT;
    e.channels = PT_CH_EMAIL | PT_CH_SMS;
    e.via = PT_VIA_WEB_FORM;
    strcpy(e.notice, "privacy");
    strcpy(e.notice_version, "3");
    memset(e.notice_sha256, 'a', PT_SHA256_HEX - 1);
    memset(e.evidence_sha256, 'b', PT_SHA256_HEX - 1);
    e.occurred_at = 1796000000000LL + (int64_t)i;
    e.recorded_at = e.occurred_at + 5;
    e.expires_at = e.occurred_at + 63072000000LL;
    return pt_leaf_consent("bench", "consent", &e, len);
}

/* Appends n leaves to tenant 1's log in transactions of at most chunk. */
static double append_leaves(pt_store *s, pt_log *log, uint64_t n, uint64_t chunk)
{
    pt_conn *c;
    pt_err e;
    if (pt_conn_open(s, &c, &e) != PT_OK) die("open", &e);
    pt_conn_tune(c, PT_CONN_BULK);
    double t0 = now_s();
    for (uint64_t done = 0; done < n;) {
        if (pt_tx_begin(c, &e) != PT_OK) die("begin", &e);
        pt_log_tx *t = pt_log_tx_new(log, c, false);
        uint64_t end = done + chunk < n ? done + chunk : n;
        for (; done < end; done++) {
            size_t len;
            char *leaf = make_leaf(done, &len);
            uint8_t ref[PT_ID_BYTES];
            memcpy(ref, leaf + 40, 8); /* any unique 16 bytes */
            for (int k = 0; k < 8; k++) ref[8 + k] = (uint8_t)(done >> (8 * k));
            if (pt_log_tx_append(t, 1, ref, 0, leaf, len, NULL, &e) != PT_OK) die("append", &e);
            free(leaf);
        }
        if (pt_log_tx_seal(t, 1, name_of, NULL, &e) != PT_OK) die("seal", &e);
        if (pt_tx_commit(c, &e) != PT_OK) die("commit", &e);
        pt_log_tx_done(t, true);
    }
    double dt = now_s() - t0;
    pt_conn_close(c);
    return dt;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_log: %s: %s\n", sql, msg ? msg : "?");
        exit(1);
    }
}

/* The ceiling of figure 1: the same leaf rows, raw. Pragmas as patto's. */
static double ceiling_append(const char *path, uint64_t n)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) die("sqlite open", NULL);
    exec(db, "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
             "PRAGMA cache_size=-1048576; PRAGMA temp_store=MEMORY;"
             "CREATE TABLE log_leaves(tenant_id INTEGER NOT NULL, idx INTEGER NOT NULL,"
             " ref BLOB NOT NULL, hash BLOB NOT NULL, data BLOB NOT NULL,"
             " PRIMARY KEY(tenant_id, idx)) WITHOUT ROWID;"
             "CREATE UNIQUE INDEX log_leaves_ref ON log_leaves(tenant_id, ref);");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO log_leaves VALUES(1, ?1, ?2, ?3, ?4)", -1, &st, NULL);
    uint8_t hash[32] = {0};
    double t0 = now_s();
    exec(db, "BEGIN IMMEDIATE");
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        char *leaf = make_leaf(i, &len);
        uint8_t ref[16];
        memcpy(ref, leaf + 40, 8);
        for (int k = 0; k < 8; k++) ref[8 + k] = (uint8_t)(i >> (8 * k));
        memcpy(hash, &i, sizeof i); /* distinct, not computed: the ceiling does no hashing */
        sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
        sqlite3_bind_blob(st, 2, ref, 16, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, leaf, (int)len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) die("ceiling insert", NULL);
        sqlite3_reset(st);
        free(leaf);
    }
    exec(db, "COMMIT");
    double dt = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return dt;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_log DIR APPEND_LEAVES PROOF_LEAVES PROOFS\n");
        return 2;
    }
    const char *dir = argv[1];
    uint64_t n_append = strtoull(argv[2], NULL, 10), n_log = strtoull(argv[3], NULL, 10);
    long n_proofs = strtol(argv[4], NULL, 10);
    if (!n_append || n_log < 2 || n_proofs < 1) return 2;
    char path[4096];
    pt_err e;
    pt_keyring kr;
    pt_keyring_generate(&kr);
    pt_log *log = pt_log_new(&kr, "patto");

    /* 1. append */
    snprintf(path, sizeof path, "%s/append.db", dir);
    pt_store *s;
    if (pt_store_open(path, 1, &s, &e) != PT_OK) die("store", &e);
    double dt = append_leaves(s, log, n_append, n_append);
    pt_store_close(s);
    snprintf(path, sizeof path, "%s/ceiling.db", dir);
    double ct = ceiling_append(path, n_append);
    printf("RESULT append leaves=%llu seconds=%.3f leaves_per_s=%.0f\n",
           (unsigned long long)n_append, dt, (double)n_append / dt);
    printf("RESULT append_ceiling rows=%llu seconds=%.3f rows_per_s=%.0f\n",
           (unsigned long long)n_append, ct, (double)n_append / ct);
    fflush(stdout);

    /* 2. proofs in a log of n_log leaves */
    pt_log_free(log);
    log = pt_log_new(&kr, "patto");
    snprintf(path, sizeof path, "%s/proof.db", dir);
    if (pt_store_open(path, 1, &s, &e) != PT_OK) die("store", &e);
    double bt = append_leaves(s, log, n_log, CHUNK);
    pt_store_close(s);
    printf("RESULT build leaves=%llu seconds=%.1f\n", (unsigned long long)n_log, bt);
    fflush(stdout);

    pt_app *app;
    pt_app_config cfg = {.db_url = path, .keyring = &kr, .readers = 1, .log_name = "patto"};
    if (pt_app_open(&cfg, &app, &e) != PT_OK) die("app", &e);
    /* warm: the same number of proofs first, then the timed ones */
    double pt = 0;
    for (int round = 0; round < 2; round++) {
        rng_state = 42;
        double t0 = now_s();
        for (long i = 0; i < n_proofs; i++) {
            json_t *doc = NULL;
            uint64_t idx = rng() % n_log;
            if (pt_log_inclusion(app, 1, NULL, idx, 0, &doc, &e) != PT_OK) die("proof", &e);
            json_decref(doc);
        }
        pt = now_s() - t0;
    }
    pt_app_close(app);

    /* the ceiling: the bare point reads of one proof, log2(n) per proof */
    sqlite3 *db;
    sqlite3_open(path, &db);
    exec(db, "PRAGMA cache_size=-65536");
    if (getenv("BENCH_MMAP")) {
        char q[64];
        snprintf(q, sizeof q, "PRAGMA mmap_size=%s", getenv("BENCH_MMAP"));
        exec(db, q);
    }
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "SELECT hash FROM log_nodes WHERE tenant_id = 1 AND level = ?1 AND "
                       "idx = ?2",
                       -1, &st, NULL);
    int levels = (int)ceil(log2((double)n_log));
    double rt = 0;
    for (int round = 0; round < 2; round++) {
        rng_state = 42;
        double t0 = now_s();
        for (long i = 0; i < n_proofs; i++) {
            uint64_t idx = rng() % n_log;
            for (int l = 1; l <= levels; l++) {
                uint64_t sib = ((idx >> l) ^ 1);
                sqlite3_bind_int(st, 1, l);
                sqlite3_bind_int64(st, 2, (sqlite3_int64)(sib % ((n_log >> l) + 1)));
                sqlite3_step(st);
                sqlite3_reset(st);
            }
        }
        rt = now_s() - t0;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("RESULT proof log_leaves=%llu proofs=%ld us_per_proof=%.2f\n",
           (unsigned long long)n_log, n_proofs, pt * 1e6 / (double)n_proofs);
    printf("RESULT proof_ceiling reads_per_proof=%d us_per_proof=%.2f\n", levels,
           rt * 1e6 / (double)n_proofs);
    pt_log_free(log);
    pt_keyring_wipe(&kr);
    return 0;
}
