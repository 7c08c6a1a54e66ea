/* bench_export.c - figure 7: the export of everything held on one person
 * (GET /v1/subjects/{subject}/export, Art. 15 and 20), against a ceiling
 * measured in the same run on the same file:
 *
 *   export: pt_subject_export (what the route runs: subject, keys of the
 *     person and of the id merged into it, profile and identifiers
 *     decrypted, every event with its evidence decrypted, states, merges)
 *     plus serialising the document (json_dumps, as the HTTP shell does),
 *     HTTP excluded, store warm
 *   vs the raw reads: the same rows read with plain prepared SQLite
 *     statements on a connection of its own (subject, identifiers,
 *     aliases, events of the person, consent states), every column
 *     touched, nothing decrypted or built.
 *
 * The person: 3 identifiers, a profile, EVENTS consent events with
 * evidence over four purposes, a fifth of them recorded for a second id
 * (a phone) merged into the person before, so the export reads two keys.
 *
 * usage: bench_export DIR EVENTS ROUNDS
 * Prints RESULT lines; the target is < 5 ms per export of 100 events. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "core/keyring.h"
#include "service/service.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const pt_err *e)
{
    fprintf(stderr, "bench_export: %s: %s\n", what, e ? e->detail : "");
    exit(1);
}

static json_t *run(pt_app *app, pt_result prep_rc, pt_op *op, pt_err *e, const char *what)
{
    if (prep_rc != PT_OK) die(what, e);
    if (pt_app_write(app, op) != PT_OK) die(what, &op->err);
    json_t *out = json_incref(op->out);
    pt_op_clear(op);
    return out;
}

static char *new_subject(pt_app *app, uint32_t tenant, const char *email, const char *cookie,
                         const char *phone)
{
    pt_op op;
    pt_err e;
    json_t *ids = json_array();
    json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "email", "value", email));
    if (cookie) json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "cookie", "value", cookie));
    if (phone) json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "phone", "value", phone));
    json_t *body = json_pack("{s:o, s:{s:s, s:s, s:s, s:i, s:[s, s]}}", "identifiers", ids,
                             "profile", "first_name", "Giulia", "last_name", "Ferrari", "region",
                             "Emilia-Romagna", "birth_year", 1984, "preferences", "travel",
                             "books");
    json_t *out = run(app, pt_subject_create_prepare(app, tenant, body, &op, &e), &op, &e,
                      "subject");
    json_decref(body);
    char *id = strdup(json_string_value(json_object_get(out, "subject")));
    json_decref(out);
    return id;
}

static void events(pt_app *app, uint32_t tenant, const char *subject, int n, int64_t t0)
{
    static const char *const purposes[] = {"marketing", "profiling", "cookies.analytics",
                                           "cookies.ads"};
    for (int i = 0; i < n; i++) {
        pt_op op;
        pt_err e;
        bool grant = i % 3 != 2;
        char when[40], ip[32];
        time_t s = (time_t)((t0 + (int64_t)i * 60000) / 1000);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&s));
        snprintf(ip, sizeof ip, "203.0.113.%d", i % 250 + 1);
        json_t *body = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "subject", subject, "purpose",
            purposes[i % 4], "action", grant ? "grant" : "withdraw", "collected_via", "web_form",
            "occurred_at", when, "evidence", "ip", ip, "user_agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "form",
            "preferences-center");
        if (grant)
            json_object_set_new(body, "notice",
                                json_pack("{s:s, s:s}", "notice", "privacy", "version", "1"));
        json_decref(run(app, pt_consent_prepare(app, tenant, body, &op, &e), &op, &e, "consent"));
        json_decref(body);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, double *t, long n, size_t bytes)
{
    double sum = 0;
    for (long i = 0; i < n; i++) sum += t[i];
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    printf("RESULT %s rounds=%ld mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f bytes=%zu\n", name, n,
           sum / (double)n * 1e3, t[n / 2] * 1e3, t[(long)((double)n * 0.99)] * 1e3, bytes);
}

/* The ceiling: patto's reads of one export, raw. */
typedef struct raw {
    sqlite3 *db;
    sqlite3_stmt *st[5];
} raw;

static const char *const RAW_SQL[5] = {
    "SELECT row, id, tenant_id, kek_epoch, wrapped_dek, created_at, updated_at, erased_at, profile "
    "FROM subjects WHERE id = coalesce((SELECT subject_id FROM subject_aliases WHERE id = ?1), ?1)",
    "SELECT seq, id, tenant_id, subject_id, merge_id, merged_at FROM subject_aliases "
    "WHERE subject_id = ?1 ORDER BY seq",
    "SELECT tenant_id, type, blind, subject_id, value, created_at FROM identifiers "
    "WHERE subject_id = ?1 ORDER BY type, created_at",
    "SELECT seq, id, tenant_id, subject_id, purpose, action, channels, notice, notice_version, "
    "notice_sha256, collected_via, evidence, evidence_sha256, occurred_at, recorded_at, expires_at "
    "FROM events WHERE subject_id IN (SELECT ?1 UNION ALL SELECT id FROM subject_aliases "
    "WHERE subject_id = ?1) AND seq > 0 ORDER BY seq",
    "SELECT subject_id, tenant_id, event_seq, purpose_idx, state, channels, revision, decided_at, "
    "granted_at, expires_at, event_id FROM consent_state WHERE subject_id = ?1 "
    "ORDER BY purpose_idx",
};

static size_t raw_rows(sqlite3_stmt *st, const uint8_t id[PT_ID_BYTES])
{
    size_t touched = 0;
    sqlite3_bind_blob(st, 1, id, PT_ID_BYTES, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_count(st);
        for (int c = 0; c < n; c++) {
            const void *p = sqlite3_column_blob(st, c);
            touched += (size_t)sqlite3_column_bytes(st, c) + (p ? ((const uint8_t *)p)[0] : 0);
        }
    }
    sqlite3_reset(st);
    return touched;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_export DIR EVENTS ROUNDS\n");
        return 2;
    }
    int n_events = atoi(argv[2]);
    long rounds = strtol(argv[3], NULL, 10);
    if (n_events < 5 || rounds < 10) return 2;
    if (pt_crypto_init() != 0) die("libsodium", NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/export.db", argv[1]);
    pt_keyring kr;
    pt_keyring_generate(&kr);
    pt_app_config cfg = {.db_url = path, .keyring = &kr, .create = true, .readers = 2};
    pt_app *app;
    pt_err e;
    pt_op op;
    if (pt_app_open(&cfg, &app, &e) != PT_OK) die("open", &e);
    json_decref(run(app, pt_tenant_create_prepare(app, "bench", &op, &e), &op, &e, "tenant"));
    pt_tenant_rec t;
    if (pt_tenant_find(app, "bench", &t, &e) != PT_OK) die("tenant", &e);
    json_t *nb = json_pack("{s:s, s:s, s:s, s:s}", "notice", "privacy", "version", "1", "language",
                           "it", "text", "Informativa sulla privacy (testo di prova).");
    json_decref(run(app, pt_notice_publish_prepare(app, t.id, nb, &op, &e), &op, &e, "notice"));
    json_decref(nb);

    /* the person (PC) and their phone, merged: a fifth of the events are the phone's */
    int64_t t0 = 1764000000000LL;
    char *pc = new_subject(app, t.id, "giulia.ferrari@example.it", "ck-4f1c2a9e", NULL);
    char *phone = new_subject(app, t.id, "g.ferrari@example.com", NULL, "+393471234567");
    int on_phone = n_events / 5;
    events(app, t.id, phone, on_phone, t0);
    events(app, t.id, pc, n_events - on_phone, t0 + (int64_t)on_phone * 60000);
    json_t *mb = json_pack("{s:s}", "from", phone);
    json_decref(run(app, pt_subject_merge_prepare(app, t.id, pc, mb, &op, &e), &op, &e, "merge"));
    json_decref(mb);

    /* check the document once */
    json_t *doc = NULL;
    if (pt_subject_export(app, t.id, pc, &doc, &e) != PT_OK) die("export", &e);
    size_t nev = json_array_size(json_object_get(doc, "events"));
    if ((int)nev != n_events) {
        fprintf(stderr, "bench_export: %zu events exported, %d recorded\n", nev, n_events);
        return 1;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    size_t bytes = strlen(text);
    free(text);
    json_decref(doc);

    double *tx = malloc((size_t)rounds * sizeof *tx), *tr = malloc((size_t)rounds * sizeof *tr);
    if (!tx || !tr) die("memory", NULL);
    /* export, warm */
    for (long i = 0; i < rounds / 10 + 1; i++) {
        if (pt_subject_export(app, t.id, pc, &doc, &e) != PT_OK) die("export", &e);
        json_decref(doc);
    }
    double build = 0, dump = 0;
    for (long i = 0; i < rounds; i++) {
        double a = now_s();
        if (pt_subject_export(app, t.id, pc, &doc, &e) != PT_OK) die("export", &e);
        double b = now_s();
        char *s = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        free(s);
        tx[i] = now_s() - a;
        build += b - a;
        dump += tx[i] - (b - a);
    }

    /* the ceiling: the same rows, raw, on a connection of its own */
    raw r;
    if (sqlite3_open_v2(path, &r.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) die("sqlite", NULL);
    for (int k = 0; k < 5; k++)
        if (sqlite3_prepare_v3(r.db, RAW_SQL[k], -1, SQLITE_PREPARE_PERSISTENT, &r.st[k], NULL) !=
            SQLITE_OK)
            die(sqlite3_errmsg(r.db), NULL);
    uint8_t id[PT_ID_BYTES];
    if (pt_id_parse("sub", pc, strlen(pc), id) != 0) die("id", NULL);
    size_t sink = 0;
    for (long i = 0; i < rounds / 10 + 1; i++)
        for (int k = 0; k < 5; k++) sink += raw_rows(r.st[k], id);
    for (long i = 0; i < rounds; i++) {
        double a = now_s();
        sqlite3_exec(r.db, "BEGIN", NULL, NULL, NULL);
        for (int k = 0; k < 5; k++) sink += raw_rows(r.st[k], id);
        sqlite3_exec(r.db, "COMMIT", NULL, NULL, NULL);
        tr[i] = now_s() - a;
    }
    for (int k = 0; k < 5; k++) sqlite3_finalize(r.st[k]);
    sqlite3_close(r.db);

    printf("RESULT person events=%d merged_ids=1 identifiers=4\n", n_events);
    report("export", tx, rounds, bytes);
    printf("RESULT export_split build_mean_ms=%.3f serialise_mean_ms=%.3f\n",
           build / (double)rounds * 1e3, dump / (double)rounds * 1e3);
    report("export_ceiling_raw_reads", tr, rounds, 0);
    if (!sink) die("the raw reads read nothing", NULL);
    free(tx);
    free(tr);
    free(pc);
    free(phone);
    pt_app_close(app);
    pt_keyring_wipe(&kr);
    return 0;
}
