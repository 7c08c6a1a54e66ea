/* The erasure, key-rotation and backup ops of store.h ("erasure, backups,
 * key rotation") on every backend: SQLite always; PostgreSQL too when
 * PATTO_TEST_PG names a server's base url, each test in a database of its
 * own. The same assertions run on both, so that the backends keep one
 * contract (backup and restore are SQLite's; PostgreSQL refuses them). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store_backends.h"

/* Every test runs on each backend (store_backends.c). */
#define each_backend(fn) store_each_backend(fn, "store_er", 4)

/* ---- helpers ----------------------------------------------------------- */

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
}

/* Subject i of tenant 1 with two identifiers and a profile; tenant rows
 * are not needed by these ops. */
static void mk_subject(backend *b, unsigned i, pt_subject_rec *s)
{
    pt_err err;
    static uint8_t profile[40];
    memset(s, 0, sizeof *s);
    fill(s->id, sizeof s->id, 100 + i);
    s->tenant = 1;
    s->kek_epoch = 1;
    fill(s->wrapped_dek, sizeof s->wrapped_dek, 200 + i);
    fill(profile, sizeof profile, 300 + i);
    s->profile = profile;
    s->profile_len = sizeof profile;
    s->created_at = s->updated_at = 1000 + i;
    cr_assert_eq(pt_db_subject_insert(b->c, s, &err), PT_OK, "%s: %s", b->name, err.detail);
    for (int t = 0; t < 2; t++) {
        uint8_t value[24];
        pt_ident_rec r = {.tenant = 1, .type = t, .created_at = 1000 + i};
        fill(r.blind, sizeof r.blind, 400 + i * 2 + (unsigned)t);
        memcpy(r.subject, s->id, PT_ID_BYTES);
        fill(value, sizeof value, 500 + i);
        r.value = value;
        r.value_len = sizeof value;
        cr_assert_eq(pt_db_ident_insert(b->c, &r, &err), PT_OK, "%s: %s", b->name, err.detail);
    }
    s->profile = NULL;
    s->profile_len = 0;
}

typedef struct seen {
    int n;
    uint8_t id[8][PT_ID_BYTES];
    int64_t at[8];
} seen;

static int on_subject(void *ctx, const pt_subject_rec *r)
{
    seen *s = ctx;
    if (s->n < 8) {
        memcpy(s->id[s->n], r->id, PT_ID_BYTES);
        s->at[s->n] = r->erased_at;
    }
    s->n++;
    return 0;
}

static int count_ident(void *ctx, const pt_ident_rec *r)
{
    (void)r;
    (*(int *)ctx)++;
    return 0;
}

/* ---- erase ------------------------------------------------------------- */

static void erase_shreds(backend *b)
{
    pt_err err;
    pt_subject_rec s[3], got;
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    for (unsigned i = 0; i < 3; i++) mk_subject(b, i, &s[i]);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK);

    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    int64_t n = -1;
    cr_assert_eq(pt_db_subject_erase(b->c, s[1].id, 5000, &n, &err), PT_OK, "%s: %s", b->name,
                 err.detail);
    cr_assert_eq(n, 2, "%s: %lld identifiers", b->name, (long long)n);
    /* a second erasure, in the same transaction, finds nothing to erase and
     * leaves the transaction usable */
    cr_assert_eq(pt_db_subject_erase(b->c, s[1].id, 6000, &n, &err), PT_ERR_NOT_FOUND, "%s",
                 b->name);
    uint8_t nobody[PT_ID_BYTES];
    fill(nobody, sizeof nobody, 999);
    cr_assert_eq(pt_db_subject_erase(b->c, nobody, 6000, NULL, &err), PT_ERR_NOT_FOUND);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK, "%s: %s", b->name, err.detail);

    cr_assert_eq(pt_db_subject_get(b->c, s[1].id, &got), PT_OK);
    cr_assert_eq(got.erased_at, 5000);
    cr_assert_eq(got.updated_at, 5000);
    cr_assert_null(got.profile, "%s: the profile survived", b->name);
    uint8_t zero[PT_WRAPPED_KEY_BYTES] = {0};
    cr_assert_eq(memcmp(got.wrapped_dek, zero, sizeof zero), 0, "%s: the key survived", b->name);
    pt_subject_rec_clear(&got);
    int idents = 0;
    cr_assert_eq(pt_db_ident_list(b->c, s[1].id, count_ident, &idents), PT_OK);
    cr_assert_eq(idents, 0, "%s", b->name);
    uint8_t blind[PT_BLIND_BYTES], who[PT_ID_BYTES];
    fill(blind, sizeof blind, 400 + 1 * 2);
    cr_assert_eq(pt_db_ident_lookup(b->c, 1, 0, blind, who), PT_ERR_NOT_FOUND, "%s", b->name);
    /* the others are untouched */
    for (int i = 0; i < 3; i += 2) {
        cr_assert_eq(pt_db_subject_get(b->c, s[i].id, &got), PT_OK);
        cr_assert_eq(got.erased_at, 0);
        cr_assert_eq(memcmp(got.wrapped_dek, s[i].wrapped_dek, sizeof got.wrapped_dek), 0);
        cr_assert_not_null(got.profile);
        pt_subject_rec_clear(&got);
        idents = 0;
        cr_assert_eq(pt_db_ident_list(b->c, s[i].id, count_ident, &idents), PT_OK);
        cr_assert_eq(idents, 2, "%s", b->name);
    }
    /* the row stays: a scan from 0 still sees three subjects */
    seen all = {0};
    cr_assert_eq(pt_db_subject_scan(b->c, 0, on_subject, &all), PT_OK);
    cr_assert_eq(all.n, 3, "%s", b->name);
}

Test(store_erasure, erase_shreds_key_profile_and_identifiers)
{
    each_backend(erase_shreds);
}

typedef struct eseen {
    int n;
    uint8_t id[8][PT_ID_BYTES];
    int64_t seq[8];
} eseen;

static int on_erased(void *ctx, const pt_subject_rec *r, int64_t seq)
{
    eseen *s = ctx;
    cr_assert_neq(r->erased_at, 0);
    if (s->n < 8) {
        memcpy(s->id[s->n], r->id, PT_ID_BYTES);
        s->seq[s->n] = seq;
    }
    s->n++;
    return 0;
}

static void erased_scan(backend *b)
{
    pt_err err;
    pt_subject_rec s[4];
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    for (unsigned i = 0; i < 4; i++) mk_subject(b, i, &s[i]);
    /* the erasure order, not erased_at (a clock), orders the scan */
    cr_assert_eq(pt_db_subject_erase(b->c, s[2].id, 9000, NULL, &err), PT_OK);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK);
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_subject_erase(b->c, s[0].id, 7000, NULL, &err), PT_OK);
    cr_assert_eq(pt_db_subject_erase(b->c, s[3].id, 8000, NULL, &err), PT_OK);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK);
    eseen all = {0};
    cr_assert_eq(pt_db_subject_erased_scan(b->c, 0, on_erased, &all), PT_OK);
    cr_assert_eq(all.n, 3, "%s: live subjects are not listed (%d)", b->name, all.n);
    cr_assert_eq(memcmp(all.id[0], s[2].id, PT_ID_BYTES), 0, "%s: in erasure order", b->name);
    cr_assert_eq(memcmp(all.id[1], s[0].id, PT_ID_BYTES), 0);
    cr_assert_eq(memcmp(all.id[2], s[3].id, PT_ID_BYTES), 0);
    cr_assert(all.seq[0] < all.seq[1] && all.seq[1] < all.seq[2], "%s", b->name);
    eseen after = {0};
    cr_assert_eq(pt_db_subject_erased_scan(b->c, all.seq[0], on_erased, &after), PT_OK);
    cr_assert_eq(after.n, 2, "%s", b->name);
    cr_assert_eq(memcmp(after.id[0], s[0].id, PT_ID_BYTES), 0);
    /* a rolled-back erasure takes no seq for good */
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_subject_erase(b->c, s[1].id, 9500, NULL, &err), PT_OK);
    pt_tx_rollback(b->c);
    eseen none = {0};
    cr_assert_eq(pt_db_subject_erased_scan(b->c, all.seq[2], on_erased, &none), PT_OK);
    cr_assert_eq(none.n, 0, "%s", b->name);
}

Test(store_erasure, erased_scan_lists_erasures_in_commit_order)
{
    each_backend(erased_scan);
}

/* ---- rewrap ------------------------------------------------------------ */

static void rewrap(backend *b)
{
    pt_err err;
    pt_subject_rec s[2], got;
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    for (unsigned i = 0; i < 2; i++) mk_subject(b, i, &s[i]);
    cr_assert_eq(pt_db_subject_erase(b->c, s[1].id, 7000, NULL, &err), PT_OK);
    uint8_t w[PT_WRAPPED_KEY_BYTES];
    fill(w, sizeof w, 77);
    cr_assert_eq(pt_db_subject_rewrap(b->c, s[0].id, 2, w, &err), PT_OK, "%s: %s", b->name,
                 err.detail);
    cr_assert_eq(pt_db_subject_rewrap(b->c, s[1].id, 2, w, &err), PT_ERR_NOT_FOUND,
                 "%s: an erased key must stay destroyed", b->name);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_subject_get(b->c, s[0].id, &got), PT_OK);
    cr_assert_eq(got.kek_epoch, 2);
    cr_assert_eq(memcmp(got.wrapped_dek, w, sizeof w), 0);
    cr_assert_not_null(got.profile, "%s: the profile stays", b->name);
    pt_subject_rec_clear(&got);
    cr_assert_eq(pt_db_subject_get(b->c, s[1].id, &got), PT_OK);
    uint8_t zero[PT_WRAPPED_KEY_BYTES] = {0};
    cr_assert_eq(memcmp(got.wrapped_dek, zero, sizeof zero), 0);
    pt_subject_rec_clear(&got);
}

Test(store_erasure, rewrap_replaces_live_keys_only)
{
    each_backend(rewrap);
}

/* ---- scrub, backup, restore -------------------------------------------- */

static void scrub(backend *b)
{
    pt_err err;
    pt_subject_rec s;
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    mk_subject(b, 0, &s);
    cr_assert_eq(pt_db_scrub(b->c, &err), PT_ERR_INTERNAL, "%s: scrub inside a transaction",
                 b->name);
    cr_assert_eq(pt_db_subject_erase(b->c, s.id, 7000, NULL, &err), PT_OK);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_scrub(b->c, &err), PT_OK, "%s: %s", b->name, err.detail);
    if (b->dir[0]) {
        char wal[300];
        struct stat st;
        snprintf(wal, sizeof wal, "%s/patto.db-wal", b->dir);
        cr_assert_eq(stat(wal, &st), 0);
        cr_assert_eq(st.st_size, 0, "the -wal file holds %lld bytes after the scrub",
                     (long long)st.st_size);
    }
    /* the connection still works */
    pt_subject_rec got;
    cr_assert_eq(pt_db_subject_get(b->c, s.id, &got), PT_OK);
    pt_subject_rec_clear(&got);
}

Test(store_erasure, scrub_runs_after_a_commit)
{
    each_backend(scrub);
}

static void backup_restore(backend *b)
{
    pt_err err;
    pt_subject_rec s[2], got;
    char dest[300];
    snprintf(dest, sizeof dest, "%s/backup.db", b->dir[0] ? b->dir : "/tmp");
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    for (unsigned i = 0; i < 2; i++) mk_subject(b, i, &s[i]);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK);
    if (!b->dir[0]) {
        cr_assert_eq(pt_db_backup(b->c, dest, &err), PT_ERR_INVALID, "%s", b->name);
        cr_assert(strstr(err.detail, "pg_dump") != NULL, "%s", err.detail);
        cr_assert_eq(pt_db_restore(b->c, dest, &err), PT_ERR_INVALID, "%s", b->name);
        return;
    }
    cr_assert_eq(pt_db_backup(b->c, dest, &err), PT_OK, "%s", err.detail);
    struct stat st;
    cr_assert_eq(stat(dest, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(pt_db_backup(b->c, dest, &err), PT_ERR_CONFLICT, "an existing file is kept");
    /* erase one, then restore the backup: the subject is back, as it was */
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_subject_erase(b->c, s[0].id, 7000, NULL, &err), PT_OK);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_restore(b->c, dest, &err), PT_OK, "%s", err.detail);
    cr_assert_eq(pt_db_subject_get(b->c, s[0].id, &got), PT_OK);
    cr_assert_eq(got.erased_at, 0, "the backup's state is restored");
    cr_assert_eq(memcmp(got.wrapped_dek, s[0].wrapped_dek, sizeof got.wrapped_dek), 0);
    pt_subject_rec_clear(&got);
    cr_assert_eq(pt_db_scrub(b->c, &err), PT_OK, "%s", err.detail);
    /* a file that is not a database changes nothing */
    char junk[300];
    snprintf(junk, sizeof junk, "%s/junk.db", b->dir);
    FILE *f = fopen(junk, "w");
    cr_assert_not_null(f);
    fputs("not a database at all, certainly not one of patto's...........................", f);
    fclose(f);
    cr_assert_neq(pt_db_restore(b->c, junk, &err), PT_OK);
    cr_assert_eq(pt_db_subject_get(b->c, s[1].id, &got), PT_OK);
    pt_subject_rec_clear(&got);
}

Test(store_erasure, backup_and_restore)
{
    each_backend(backup_restore);
}
