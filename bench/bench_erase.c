/* bench_erase.c - erasure latency, durable commit included, against a
 * ceiling measured in the same run on the same disk.
 *
 *   erase: pt_app_write of a DELETE /v1/subjects/{subject} op (what the
 *     writer runs for the HTTP request, HTTP excluded): the erasure journal
 *     appended and fdatasynced, the transaction (key, profile, identifiers,
 *     proof-log leaf, signed checkpoint) committed with its fsync, then the
 *     WAL checkpoint with truncate that takes the old page images out of the
 *     files. Timed one erasure at a time in a database of SUBJECTS people
 *     (2 identifiers and a profile each):
 *       after_import: the first one, whose checkpoint copies back the
 *               whole WAL the import (one transaction) left;
 *       idle:   erasures back to back (the WAL holds only the last one);
 *       loaded: WRITES single-subject commits before each erasure, so that
 *               the checkpoint has that many commits' pages to copy back.
 *   ceiling: one 4 KiB write + fdatasync on the same filesystem (what one
 *     durable write costs at least), timed right before each erasure, so
 *     that both see the same load on a shared machine; the ratio is the
 *     median of erasure / fsync over the erasures (an erasure is about
 *     five syncs: the journal's, the commit's, and the checkpoint's).
 *
 * usage: bench_erase DIR SUBJECTS ERASURES WRITES
 * DIR must exist; erase.db* and fsync.test are created there.
 * Prints RESULT lines. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "core/keyring.h"
#include "service/service.h"
#include "service/vault.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const pt_err *e)
{
    fprintf(stderr, "bench_erase: %s: %s\n", what, e ? e->detail : "");
    exit(1);
}

typedef struct fill_arg {
    uint32_t tenant;
    uint64_t n;
    uint8_t (*ids)[PT_ID_BYTES];
} fill_arg;

/* n people in one transaction: 2 identifiers and a ~150-byte profile each */
static pt_result fill(pt_wctx *w, void *arg, pt_err *err)
{
    fill_arg *a = arg;
    for (uint64_t i = 0; i < a->n; i++) {
        pt_ident_in id[2];
        memset(id, 0, sizeof id);
        id[0].type = PT_IDENT_EMAIL;
        snprintf(id[0].norm, sizeof id[0].norm, "person.%llu@bench.example.org",
                 (unsigned long long)i);
        id[0].len = strlen(id[0].norm);
        id[1].type = PT_IDENT_PHONE;
        snprintf(id[1].norm, sizeof id[1].norm, "+39333%07llu", (unsigned long long)i);
        id[1].len = strlen(id[1].norm);
        char profile[256];
        snprintf(profile, sizeof profile,
                 "{\"birth_year\":1980,\"city\":\"Trento\",\"name\":\"Person %llu\","
                 "\"preferences\":[\"shoes\",\"travel\"],\"region\":\"Trentino\"}",
                 (unsigned long long)i);
        pt_subject_rec s;
        uint8_t dek[PT_KEY_BYTES];
        pt_result rc = pt_vault_subject_create(w, a->tenant, NULL, id, 2, profile, &s, dek, err);
        pt_wipe(dek, sizeof dek);
        if (rc != PT_OK) return rc;
        memcpy(a->ids[i], s.id, PT_ID_BYTES);
    }
    return PT_OK;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void report(const char *name, double *ms, double *sync, long n, long writes)
{
    double *ratio = calloc((size_t)n, sizeof *ratio);
    if (!ratio) die("out of memory", NULL);
    for (long i = 0; i < n; i++) ratio[i] = sync[i] > 0 ? ms[i] / sync[i] : 0;
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    qsort(sync, (size_t)n, sizeof *sync, cmp_double);
    qsort(ratio, (size_t)n, sizeof *ratio, cmp_double);
    double sum = 0;
    for (long i = 0; i < n; i++) sum += ms[i];
    printf("RESULT %s erasures=%ld writes_between=%ld mean_ms=%.2f p50_ms=%.2f p99_ms=%.2f "
           "max_ms=%.2f fsync_p50_ms=%.3f ratio_p50=%.1f\n",
           name, n, writes, sum / (double)n, ms[n / 2], ms[(n * 99) / 100], ms[n - 1],
           sync[n / 2], ratio[n / 2]);
    fflush(stdout);
    free(ratio);
}

/* one 4 KiB write + fdatasync into a preallocated file, in ms */
static int sync_fd = -1;
static double fsync_ms(const char *path)
{
    static char buf[4096];
    static int next;
    if (sync_fd < 0) {
        sync_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (sync_fd < 0) die("fsync file", NULL);
        memset(buf, 'x', sizeof buf);
        for (int i = 0; i < 256; i++)
            if (write(sync_fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("fsync write", NULL);
        fsync(sync_fd);
    }
    double t0 = now_s();
    if (pwrite(sync_fd, buf, sizeof buf, (off_t)(next++ % 256) * 4096) != (ssize_t)sizeof buf ||
        fdatasync(sync_fd) != 0)
        die("fdatasync", NULL);
    return (now_s() - t0) * 1000;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_erase DIR SUBJECTS ERASURES WRITES\n");
        return 2;
    }
    const char *dir = argv[1];
    uint64_t n = strtoull(argv[2], NULL, 10);
    long erasures = strtol(argv[3], NULL, 10), writes = strtol(argv[4], NULL, 10);
    if (n < 10 || erasures < 1 || writes < 0 || (uint64_t)erasures * 2 > n) return 2;
    if (pt_crypto_init() != 0) die("libsodium", NULL);
    char path[4096], journal[4200];
    snprintf(path, sizeof path, "%s/erase.db", dir);
    snprintf(journal, sizeof journal, "%s/erase.db.erasures", dir);
    pt_err e;
    pt_keyring kr;
    pt_keyring_generate(&kr);
    pt_app_config cfg = {.db_url = path, .keyring = &kr, .create = true, .readers = 2,
                         .erasure_journal = journal};
    pt_app *app;
    if (pt_app_open(&cfg, &app, &e) != PT_OK) die("open", &e);
    pt_op op;
    if (pt_tenant_create_prepare(app, "bench", &op, &e) != PT_OK) die("tenant", &e);
    if (pt_app_write(app, &op) != PT_OK) die("tenant", &op.err);
    pt_op_clear(&op);
    pt_tenant_rec t;
    if (pt_tenant_find(app, "bench", &t, &e) != PT_OK) die("tenant", &e);

    fill_arg fa = {.tenant = t.id, .n = n, .ids = calloc(n, PT_ID_BYTES)};
    double t0 = now_s();
    if (pt_app_bulk(app, fill, &fa, &e) != PT_OK) die("fill", &e);
    printf("RESULT fill subjects=%llu seconds=%.2f\n", (unsigned long long)n, now_s() - t0);

    double *ms = calloc((size_t)erasures, sizeof *ms);
    double *sync = calloc((size_t)erasures, sizeof *sync);
    char spath[4200];
    snprintf(spath, sizeof spath, "%s/fsync.test", dir);
    uint64_t next = 0, stride = n / (uint64_t)(2 * erasures + 1);
    /* the first erasure after the import checkpoints the import's WAL */
    {
        char sid[PT_ID_STR_MAX];
        pt_id_format("sub", fa.ids[next], sid);
        next += stride;
        if (pt_subject_erase_prepare(app, t.id, sid, &op, &e) != PT_OK) die("erase", &e);
        double s0 = now_s();
        if (pt_app_write(app, &op) != PT_OK) die("erase", &op.err);
        printf("RESULT erase_after_import ms=%.2f\n", (now_s() - s0) * 1000);
        pt_op_clear(&op);
    }
    for (int phase = 0; phase < 2; phase++) {
        long between = phase ? writes : 0;
        if (phase && !writes) break;
        for (long i = 0; i < erasures; i++) {
            for (long k = 0; k < between; k++) {
                json_t *body = json_pack("{s:{s:s}}", "profile", "name", "a new person");
                if (pt_subject_create_prepare(app, t.id, body, &op, &e) != PT_OK) die("new", &e);
                if (pt_app_write(app, &op) != PT_OK) die("new", &op.err);
                pt_op_clear(&op);
                json_decref(body);
            }
            char sid[PT_ID_STR_MAX];
            pt_id_format("sub", fa.ids[next], sid);
            next += stride;
            if (pt_subject_erase_prepare(app, t.id, sid, &op, &e) != PT_OK) die("erase", &e);
            sync[i] = fsync_ms(spath);
            double s0 = now_s();
            if (pt_app_write(app, &op) != PT_OK) die("erase", &op.err);
            ms[i] = (now_s() - s0) * 1000;
            pt_op_clear(&op);
        }
        report(phase ? "erase_loaded" : "erase_idle", ms, sync, erasures, between);
    }
    close(sync_fd);
    unlink(spath);
    pt_app_close(app);
    free(ms);
    free(sync);
    free(fa.ids);
    pt_keyring_wipe(&kr);
    return 0;
}
