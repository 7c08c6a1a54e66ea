/* backup.c - backups, restores and KEK rotation: what makes an erasure
 * final beyond the live database.
 *
 * Backup: a consistent online copy (the store's pt_db_backup: SQLite's
 * VACUUM INTO, one read transaction, so the server keeps writing). It
 * needs no keyring: a backup host never sees a key.
 *
 * Restore: the backup is copied next to the database (PATH.restoring) and
 * opened there: migrations, the keyring check, the key epochs it needs,
 * then the erasure journal is replayed into it, so that nobody erased
 * since the backup comes back; only then does the copy replace the
 * database's content, in one transaction (pt_db_restore), and the
 * database is scrubbed. An interrupted restore leaves the database as it
 * was.
 *
 * Rotation: every live subject's data key is re-wrapped under a new KEK
 * epoch and the old KEKs are destroyed, so that the wrapped keys held by
 * older backups (and by dead pages or WAL segments the store could not
 * scrub) no longer open with the keyring. The order survives a crash at
 * any point, each step leaving a keyring that opens every subject:
 *   1. the keyring file is replaced (write, fsync, rename, fsync the
 *      directory) by one holding the old epochs and the new one;
 *   2. subjects are re-wrapped under the new epoch, 1000 per transaction;
 *   3. once no live subject uses an old epoch, the keyring file is
 *      replaced by one holding only the new epoch, and the old file's
 *      bytes are overwritten with zeros.
 * Run again after a crash, rotate finds a keyring with several epochs and
 * resumes at step 2 towards the newest. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "service.h"

#define REWRAP_CHUNK 1000

static bool url_is_postgres(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

static const char *url_path(const char *url)
{
    if (strncmp(url, "sqlite:", 7) == 0) return url + 7;
    if (strncmp(url, "file:", 5) == 0) return url + 5;
    return url;
}

static int fsync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1;
        if (n >= sizeof dir) return -1;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static bool write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* ---------------------------------------------------------------- backup */

pt_result pt_backup(const char *db_url, const char *dest, pt_err *err)
{
    if (url_is_postgres(db_url))
        return pt_err_set(err, PT_ERR_INVALID, "db",
                          "patto backup copies SQLite databases only; back PostgreSQL up with "
                          "pg_dump or continuous archiving (PITR)");
    pt_store *s = NULL;
    pt_conn *c = NULL;
    pt_result rc = pt_store_open(db_url, 0, &s, err);
    if (rc == PT_OK) rc = pt_conn_open(s, &c, err);
    if (rc == PT_OK) rc = pt_db_backup(c, dest, err);
    pt_conn_close(c);
    pt_store_close(s);
    return rc;
}

/* ---------------------------------------------------------------- restore */

static pt_result copy_file(const char *from, const char *to, pt_err *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return pt_err_set(err, PT_ERR_IO, "src", "cannot read %s: %s", from, strerror(errno));
    unlink(to);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return pt_err_set(err, PT_ERR_IO, "db", "cannot create %s: %s", to, strerror(e));
    }
    static char buf[1 << 16];
    bool ok = true;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ok = false;
        if (n <= 0) break;
        if (!write_all(out, buf, (size_t)n)) {
            ok = false;
            break;
        }
    }
    ok = ok && fsync(out) == 0;
    close(in);
    close(out);
    if (!ok) {
        unlink(to);
        return pt_err_set(err, PT_ERR_IO, "db", "cannot copy %s to %s", from, to);
    }
    return PT_OK;
}

static void remove_db_files(const char *path)
{
    char p[4200];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

typedef struct epoch_check {
    const pt_keyring *kr;
    uint64_t missing;
    uint32_t epoch; /* one of the missing epochs */
} epoch_check;

static int check_epoch(void *ctx, const pt_subject_rec *r)
{
    epoch_check *x = ctx;
    if (!r->erased_at && !pt_keyring_kek(x->kr, r->kek_epoch)) {
        x->missing++;
        x->epoch = r->kek_epoch;
    }
    return 0;
}

pt_result pt_restore(const pt_app_config *cfg, const char *src, pt_erasure_replay_stats *st,
                     pt_err *err)
{
    pt_erasure_replay_stats z;
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    if (url_is_postgres(cfg->db_url))
        return pt_err_set(err, PT_ERR_INVALID, "db",
                          "patto restore restores SQLite databases only; restore PostgreSQL with "
                          "pg_restore or PITR, then start patto serve, which replays the erasure "
                          "journal");
    const char *path = url_path(cfg->db_url);
    char tmp[4200], wal[4200];
    struct stat sb;
    snprintf(wal, sizeof wal, "%s-wal", src);
    if (stat(wal, &sb) == 0 && sb.st_size > 0)
        return pt_err_set(err, PT_ERR_INVALID, "src",
                          "%s has a -wal file: it is a live database, not a backup; make one "
                          "with `patto backup`",
                          src);
    if (snprintf(tmp, sizeof tmp, "%s.restoring", path) >= (int)sizeof tmp)
        return pt_err_set(err, PT_ERR_INVALID, "db", "database path too long");
    remove_db_files(tmp); /* left by an interrupted restore */
    pt_result rc = copy_file(src, tmp, err);
    if (rc != PT_OK) return rc;

    /* 1. the copy, opened as a database of its own: migrated, checked
     * against the keyring, and the journal replayed into it */
    pt_app_config tc = *cfg;
    tc.db_url = tmp;
    tc.create = false;
    tc.serve = false;
    tc.readers = 2;
    pt_app *app = NULL;
    rc = pt_app_open(&tc, &app, err);
    if (rc != PT_OK) goto out;
    epoch_check ec = {.kr = cfg->keyring};
    pt_conn *c = pt_app_reader(app, err);
    if (!c) {
        rc = err ? err->code : PT_ERR_STORAGE;
        goto out;
    }
    rc = pt_db_subject_scan(c, 0, check_epoch, &ec);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot read the backup's subjects");
        goto out;
    }
    if (ec.missing) {
        rc = pt_err_set(err, PT_ERR_INVALID, "keyring",
                        "%s holds %llu people whose keys are wrapped under key epoch %u, which "
                        "this keyring no longer holds (`patto keys rotate` destroyed it): they "
                        "cannot be decrypted with it. Restore with the keyring kept with that "
                        "backup (--keyring FILE), or not at all",
                        src, (unsigned long long)ec.missing, ec.epoch);
        goto out;
    }
    rc = pt_erasure_replay(app, st, err);
    if (rc != PT_OK) goto out;
    pt_app_close(app);
    app = NULL;

    /* 2. the database takes the copy's content in one transaction */
    pt_store *s = NULL;
    pt_conn *d = NULL;
    rc = pt_store_open(cfg->db_url, 1, &s, err);
    if (rc == PT_OK) rc = pt_conn_open(s, &d, err);
    if (rc == PT_OK) rc = pt_db_restore(d, tmp, err);
    if (rc == PT_OK) rc = pt_db_scrub(d, err);
    pt_conn_close(d);
    pt_store_close(s);
out:
    pt_app_close(app);
    remove_db_files(tmp);
    fsync_dir_of(path);
    return rc;
}

/* ---------------------------------------------------------------- rotation */

/* Replaces the keyring file with kr's text: write a temporary file, fsync
 * it, rename it over the old one, fsync the directory; then overwrite the
 * old file's bytes, still reachable through a descriptor opened before the
 * rename, with zeros. */
static pt_result keyring_replace(const char *path, const pt_keyring *kr, pt_err *err)
{
    char tmp[4200];
    char text[PT_KEYRING_TEXT_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return pt_err_set(err, PT_ERR_INVALID, "keyring", "keyring path too long");
    size_t n = pt_keyring_format(kr, text);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        pt_wipe(text, sizeof text);
        return pt_err_set(err, PT_ERR_IO, "keyring", "cannot create %s: %s", tmp,
                          strerror(errno));
    }
    bool ok = write_all(fd, text, n) && fsync(fd) == 0;
    close(fd);
    pt_wipe(text, sizeof text);
    if (!ok) {
        unlink(tmp);
        return pt_err_set(err, PT_ERR_IO, "keyring", "cannot write %s", tmp);
    }
    int old = open(path, O_RDWR | O_CLOEXEC);
    if (rename(tmp, path) != 0 || fsync_dir_of(path) != 0) {
        int e = errno;
        if (old >= 0) close(old);
        unlink(tmp);
        return pt_err_set(err, PT_ERR_IO, "keyring", "cannot replace the keyring %s: %s", path,
                          strerror(e));
    }
    if (old >= 0) {
        struct stat sb;
        if (fstat(old, &sb) == 0 && sb.st_size > 0) {
            static const char zeros[4096];
            off_t left = sb.st_size;
            bool wiped = lseek(old, 0, SEEK_SET) == 0;
            while (wiped && left > 0) {
                size_t k = left > (off_t)sizeof zeros ? sizeof zeros : (size_t)left;
                wiped = write_all(old, zeros, k);
                left -= (off_t)k;
            }
            if (wiped) fsync(old);
        }
        close(old);
    }
    return PT_OK;
}

static pt_result keyring_read(const char *path, pt_keyring *kr, pt_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return pt_err_set(err, PT_ERR_IO, "keyring", "cannot read the keyring %s: %s", path,
                          strerror(errno));
    char buf[PT_KEYRING_TEXT_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    pt_result rc = n > PT_KEYRING_TEXT_MAX
                       ? pt_err_set(err, PT_ERR_INVALID, "keyring", "keyring file too large")
                       : pt_keyring_parse(kr, buf, n, err);
    pt_wipe(buf, sizeof buf);
    return rc;
}

typedef struct id_list {
    uint8_t (*ids)[PT_ID_BYTES];
    size_t n, cap;
    uint32_t epoch;
    bool oom;
} id_list;

static int collect_old(void *ctx, const pt_subject_rec *r)
{
    id_list *l = ctx;
    if (r->erased_at || r->kek_epoch == l->epoch) return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        void *np = realloc(l->ids, nc * PT_ID_BYTES);
        if (!np) {
            l->oom = true;
            return 1;
        }
        l->ids = np;
        l->cap = nc;
    }
    memcpy(l->ids[l->n++], r->id, PT_ID_BYTES);
    return 0;
}

typedef struct rewrap_arg {
    const uint8_t (*ids)[PT_ID_BYTES];
    size_t n;
    uint32_t epoch;
    bool scrub;
    uint64_t rewrapped;
} rewrap_arg;

static pt_result rewrap_fn(pt_wctx *w, void *arg, pt_err *err)
{
    rewrap_arg *a = arg;
    pt_conn *c = pt_wctx_conn(w);
    const pt_keyring *kr = pt_app_keyring(pt_wctx_app(w));
    const uint8_t *kek = pt_keyring_kek(kr, a->epoch);
    pt_result rc = PT_OK;
    a->rewrapped = 0;
    for (size_t i = 0; i < a->n && rc == PT_OK; i++) {
        pt_subject_rec s;
        memset(&s, 0, sizeof s);
        rc = pt_db_subject_get(c, a->ids[i], &s);
        pt_subject_rec_clear(&s);
        if (rc == PT_ERR_NOT_FOUND || (rc == PT_OK && (s.erased_at || s.kek_epoch == a->epoch))) {
            rc = PT_OK; /* erased or re-wrapped meanwhile */
            continue;
        }
        if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read subjects");
        const uint8_t *old = pt_keyring_kek(kr, s.kek_epoch);
        uint8_t dek[PT_KEY_BYTES], wrapped[PT_WRAPPED_KEY_BYTES];
        if (!old || pt_key_unwrap(old, s.kek_epoch, s.id, s.wrapped_dek, dek) != PT_OK) {
            char sid[PT_ID_STR_MAX];
            pt_id_format("sub", s.id, sid);
            return pt_err_set(err, PT_ERR_CRYPTO, "keyring",
                              "the key of %s (epoch %u) does not unwrap with this keyring", sid,
                              s.kek_epoch);
        }
        pt_key_wrap(kek, a->epoch, s.id, dek, wrapped);
        pt_wipe(dek, sizeof dek);
        rc = pt_db_subject_rewrap(c, s.id, a->epoch, wrapped, err);
        if (rc == PT_OK) a->rewrapped++;
    }
    if (rc == PT_OK && a->scrub) pt_wctx_scrub(w); /* the old wrapped keys leave the WAL */
    return rc;
}

pt_result pt_keys_rotate(const pt_app_config *cfg, const char *keyring_path, pt_rotate_stats *st,
                         pt_err *err)
{
    pt_rotate_stats z;
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    pt_keyring kr;
    pt_app *app = NULL;
    id_list l = {0};
    pt_result rc = keyring_read(keyring_path, &kr, err);
    if (rc != PT_OK) return rc;

    /* 1. a keyring with the old epochs and the new one */
    st->from_epoch = kr.epochs[0];
    if (kr.n_epochs > 1) {
        st->resumed = true; /* an interrupted rotation: finish it */
    } else {
        uint32_t next = pt_keyring_current_epoch(&kr) + 1;
        if (next == 0) {
            rc = pt_err_set(err, PT_ERR_INVALID, "keyring", "no key epoch left");
            goto out;
        }
        kr.epochs[kr.n_epochs] = next;
        pt_random(kr.kek[kr.n_epochs], PT_KEY_BYTES);
        kr.n_epochs++;
        rc = keyring_replace(keyring_path, &kr, err);
        if (rc != PT_OK) goto out;
    }
    st->epoch = pt_keyring_current_epoch(&kr);

    /* 2. every live subject re-wrapped under it, in transactions of
     * REWRAP_CHUNK; a second pass catches subjects created meanwhile */
    pt_app_config ac = *cfg;
    ac.keyring = &kr;
    ac.create = false;
    ac.serve = false;
    ac.readers = 2;
    rc = pt_app_open(&ac, &app, err);
    if (rc != PT_OK) goto out;
    for (int pass = 0;; pass++) {
        l.n = 0;
        l.epoch = st->epoch;
        pt_conn *c = pt_app_reader(app, err);
        if (!c) {
            rc = err ? err->code : PT_ERR_STORAGE;
            goto out;
        }
        rc = pt_db_subject_scan(c, 0, collect_old, &l);
        pt_app_reader_release(app, c);
        if (rc == PT_OK && l.oom) rc = PT_ERR_NOMEM;
        if (rc != PT_OK) {
            pt_err_set(err, rc, "", "cannot read subjects");
            goto out;
        }
        if (l.n == 0) break;
        if (pass == 3) {
            rc = pt_err_set(err, PT_ERR_CONFLICT, "",
                            "subjects keep being created under the old key epoch: stop every "
                            "patto serve on this database, then run patto keys rotate again");
            goto out;
        }
        for (size_t i = 0; i < l.n; i += REWRAP_CHUNK) {
            rewrap_arg ra = {.ids = (const uint8_t (*)[PT_ID_BYTES])l.ids + i,
                             .n = l.n - i < REWRAP_CHUNK ? l.n - i : REWRAP_CHUNK,
                             .epoch = st->epoch,
                             .scrub = i + REWRAP_CHUNK >= l.n};
            pt_op op = {.fn = rewrap_fn, .arg = &ra, .status = 200};
            rc = pt_app_write(app, &op);
            if (rc != PT_OK && err) *err = op.err;
            pt_op_clear(&op);
            if (rc != PT_OK) goto out;
            st->rewrapped += ra.rewrapped;
        }
    }
    pt_app_close(app);
    app = NULL;

    /* 3. the old epochs destroyed */
    st->dropped = kr.n_epochs - 1;
    if (kr.n_epochs > 1) {
        size_t last = kr.n_epochs - 1;
        kr.epochs[0] = kr.epochs[last];
        memcpy(kr.kek[0], kr.kek[last], PT_KEY_BYTES);
        for (size_t i = 1; i < kr.n_epochs; i++) pt_wipe(kr.kek[i], PT_KEY_BYTES);
        kr.n_epochs = 1;
        rc = keyring_replace(keyring_path, &kr, err);
    }
out:
    pt_app_close(app);
    free(l.ids);
    pt_keyring_wipe(&kr);
    return rc;
}
