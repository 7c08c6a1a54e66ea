/* erasure.c - the right to erasure (GDPR Art. 17) by crypto-shredding.
 *
 * An erasure is one write op: it destroys the subject's wrapped data key
 * and sealed profile, deletes its identifiers (sealed values and blind
 * index entries) and sets erased_at, all in one transaction of the group
 * commit; the ledger keeps the person's consent events, whose evidence
 * stays sealed under the destroyed key (unreadable; its SHA-256 stays in
 * clear as the proof). A `subject.erased` leaf goes to the tenant's proof
 * log, and the answer is an erasure receipt with that leaf's proof bundle.
 * Once the batch has committed, the writer scrubs (SQLite: a WAL
 * checkpoint with truncate, secure_delete being on) before it answers, so
 * that no old page image keeps the person's data in the files.
 *
 * The erasure journal. A backup taken before an erasure still holds the
 * person. So every erasure is also appended, fsynced, to a journal kept
 * outside the database (by default PATH.erasures), written ahead: before
 * the transaction commits, so that every erasure the database holds is in
 * the journal (an entry whose transaction then failed is simply completed
 * at the next replay). `patto restore` and `patto serve` replay it: every
 * subject it names that the database holds and has not erased is erased
 * again. A line is
 *
 *     erased <subject id> <tenant name> <erased_at, RFC 3339>
 *
 * and holds no personal data: the id is random, and after the erasure
 * nothing links it to a person. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ids.h"
#include "core/timefmt.h"
#include "catalog.h"
#include "jsonutil.h"
#include "log.h"
#include "service.h"
#include "vault.h"

#define JOURNAL_HEADER                                                                             \
    "# patto erasure journal v1: erased <subject> <tenant> <erased_at>; replayed by patto "        \
    "restore and patto serve\n"
#define JOURNAL_LINE_MAX 256

/* ---------------------------------------------------------------- journal */

static pt_result fsync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1;
        if (n >= sizeof dir) return PT_ERR_IO;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PT_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? PT_OK : PT_ERR_IO;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Appends one line, durably: fdatasync, and the directory too when the
 * file is new. A torn last line (a crash while appending) is ended first,
 * so that it cannot run into this one. */
pt_result pt_erasure_journal_append(const char *path, const char *line, pt_err *err)
{
    struct stat st;
    bool existed = stat(path, &st) == 0;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return pt_err_set(err, PT_ERR_STORAGE, "", "cannot open the erasure journal %s: %s", path,
                          strerror(errno));
    bool ok = true;
    if (existed && st.st_size > 0) {
        char last = '\n';
        if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') ok = write_all(fd, "\n", 1);
    } else {
        ok = write_all(fd, JOURNAL_HEADER, strlen(JOURNAL_HEADER));
    }
    ok = ok && write_all(fd, line, strlen(line)) && fdatasync(fd) == 0;
    int e = errno;
    close(fd);
    if (ok && !existed && fsync_dir_of(path) != PT_OK) {
        ok = false;
        e = errno;
    }
    if (!ok)
        return pt_err_set(err, e == ENOSPC ? PT_ERR_STORAGE_FULL : PT_ERR_STORAGE, "",
                          "cannot write the erasure journal %s: %s", path, strerror(e));
    return PT_OK;
}

/* ---------------------------------------------------------------- the op */

/* The ids merged into a person (identity.c): each kept its own row and
 * key, sealing the evidence of its events; an erasure shreds them too. */
typedef struct merged_ids {
    uint8_t (*id)[PT_ID_BYTES];
    size_t n, cap;
    bool oom;
} merged_ids;

static int merged_collect(void *ctx, const pt_alias_rec *r)
{
    merged_ids *m = ctx;
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        void *np = realloc(m->id, nc * PT_ID_BYTES);
        if (!np) {
            m->oom = true;
            return 1;
        }
        m->id = np;
        m->cap = nc;
    }
    memcpy(m->id[m->n++], r->id, PT_ID_BYTES);
    return 0;
}

typedef struct erase_arg {
    pt_op *op;
    uint32_t tenant;
    uint8_t id[PT_ID_BYTES];
    bool journal; /* append to the journal (not when replaying it) */
} erase_arg;

json_t *pt_subject_erased_doc(const pt_subject_rec *s)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:[], s:n}", "subject", pt_json_id_value("sub", s->id),
                     "created_at", pt_json_time_value(s->created_at), "updated_at",
                     pt_json_time_value(s->updated_at), "erased_at",
                     pt_json_time_value(s->erased_at), "identifiers", "profile");
}

static pt_result erase_fn(pt_wctx *w, void *arg, pt_err *err)
{
    erase_arg *a = arg;
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    int64_t now = pt_wctx_now(w);
    char sid[PT_ID_STR_MAX], at[PT_TIME_STR_MAX], tname[PT_TENANT_NAME_MAX + 1];
    pt_subject_rec s;
    merged_ids m = {0};
    char *lines = NULL;
    char *leaf = NULL;
    memset(&s, 0, sizeof s);

    /* 1. the person: a merged id stands for its survivor; another
     * tenant's subject is nobody, as everywhere */
    pt_result rc = pt_db_subject_resolve(c, a->id, &s);
    bool had_profile = s.profile != NULL;
    pt_subject_rec_clear(&s); /* the sealed profile is not needed */
    if (rc == PT_OK && s.tenant != a->tenant) rc = PT_ERR_NOT_FOUND;
    if (rc == PT_ERR_NOT_FOUND) return pt_err_set(err, rc, "subject", "no such subject");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read subjects");
    pt_id_format("sub", s.id, sid);
    if (s.erased_at) {
        pt_time_format(s.erased_at, at);
        return pt_err_set(err, PT_ERR_CONFLICT, "subject", "subject %s was erased already, at %s",
                          sid, at);
    }
    rc = pt_db_alias_list(c, s.id, merged_collect, &m);
    if (rc == PT_OK && m.oom) rc = PT_ERR_NOMEM;
    if (rc != PT_OK) {
        rc = pt_err_set(err, rc, "", "cannot read merged subjects");
        goto out;
    }
    rc = pt_wctx_tenant_name(w, a->tenant, tname);
    if (rc != PT_OK) {
        rc = pt_err_set(err, rc, "", "cannot read the tenant");
        goto out;
    }
    pt_time_format(now, at);

    /* 2. the journal, before anything changes: an erasure the database
     * holds is always in the journal. One line per id, the merged ones
     * too: an older backup may hold them as people of their own. */
    const char *journal = pt_app_erasure_journal(app);
    if (a->journal && journal) {
        size_t cap = (m.n + 1) * JOURNAL_LINE_MAX, len = 0;
        lines = malloc(cap);
        if (!lines) {
            rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
            goto out;
        }
        len += (size_t)snprintf(lines + len, cap - len, "erased %s %s %s\n", sid, tname, at);
        for (size_t i = 0; i < m.n; i++) {
            char mid[PT_ID_STR_MAX];
            pt_id_format("sub", m.id[i], mid);
            len += (size_t)snprintf(lines + len, cap - len, "erased %s %s %s\n", mid, tname, at);
        }
        rc = pt_erasure_journal_append(journal, lines, err);
        if (rc != PT_OK) goto out;
    }

    /* 3. shred: the keys, the profile, the identifiers */
    int64_t nident = 0, k = 0;
    rc = pt_db_subject_erase(c, s.id, now, &nident, err);
    if (rc != PT_OK) goto out;
    size_t merged = 0;
    for (size_t i = 0; i < m.n; i++) {
        pt_err e2;
        rc = pt_db_subject_erase(c, m.id[i], now, &k, &e2);
        if (rc == PT_ERR_NOT_FOUND) continue; /* shredded before */
        if (rc != PT_OK) {
            if (err) *err = e2;
            goto out;
        }
        merged++;
        nident += k;
    }
    s.erased_at = s.updated_at = now;
    s.row = 0; /* an old row: it must not move the cache's row mark */
    pt_wctx_subject_added(w, &s);
    pt_wctx_scrub(w);

    /* 4. the receipt and its leaf (the proof is added once signed) */
    json_t *receipt = json_pack(
        "{s:s, s:{s:s}, s:s, s:s, s:{s:b, s:b, s:I, s:I}, s:s, s:b}", "version",
        "patto-erasure-receipt/1", "controller", "tenant", tname, "subject", sid, "erased_at", at,
        "destroyed", "data_key", 1, "profile", had_profile, "identifiers", (json_int_t)nident,
        "merged_subjects", (json_int_t)merged, "retained",
        "the consent events, as the ledger's proof: their evidence stays sealed under the "
        "destroyed key (unreadable), their hashes stay",
        "journaled", a->journal && journal != NULL);
    if (!receipt) {
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    a->op->out = receipt;
    const pt_leaf_member lm[] = {{"subject", sid, NULL}, {"at", at, NULL}};
    size_t len;
    leaf = pt_leaf_build("subject.erased", tname, lm, 2, &len);
    if (!leaf) {
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    uint8_t ref[PT_ID_BYTES];
    pt_ordered_id(ref); /* the erasure's own id: a leaf's ref is unique */
    rc = pt_wctx_log(w, a->tenant, ref, 0, leaf, len, receipt, err);
out:
    free(leaf);
    free(lines);
    free(m.id);
    return rc;
}

static pt_result erase_prepare(uint32_t tenant, const uint8_t id[PT_ID_BYTES], bool journal,
                               pt_op *op, pt_err *err)
{
    erase_arg *a = calloc(1, sizeof *a);
    if (!a) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    memset(op, 0, sizeof *op);
    a->op = op;
    a->tenant = tenant;
    a->journal = journal;
    memcpy(a->id, id, PT_ID_BYTES);
    op->fn = erase_fn;
    op->arg = a;
    op->free_arg = free;
    op->status = 200;
    return PT_OK;
}

pt_result pt_subject_erase_prepare(pt_app *app, uint32_t tenant, const char *subject, pt_op *op,
                                   pt_err *err)
{
    (void)app;
    uint8_t id[PT_ID_BYTES];
    /* a malformed id is answered like an unknown one, as GET does */
    if (!subject || pt_id_parse("sub", subject, strlen(subject), id) != 0)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "subject", "no such subject");
    return erase_prepare(tenant, id, true, op, err);
}

/* ---------------------------------------------------------------- replay */

/* Parses "erased <sub> <tenant> <time>"; 0 on success. */
static int parse_line(char *line, uint8_t id[PT_ID_BYTES], char tenant[PT_TENANT_NAME_MAX + 1])
{
    char *save = NULL;
    const char *w0 = strtok_r(line, " \t", &save);
    const char *w1 = strtok_r(NULL, " \t", &save);
    const char *w2 = strtok_r(NULL, " \t", &save);
    const char *w3 = strtok_r(NULL, " \t", &save);
    int64_t t;
    if (!w0 || !w1 || !w2 || !w3 || strtok_r(NULL, " \t", &save)) return -1;
    if (strcmp(w0, "erased") != 0) return -1;
    if (pt_id_parse("sub", w1, strlen(w1), id) != 0) return -1;
    if (strlen(w2) > PT_TENANT_NAME_MAX) return -1;
    if (pt_time_parse(w3, strlen(w3), &t) != 0) return -1;
    snprintf(tenant, PT_TENANT_NAME_MAX + 1, "%s", w2);
    return 0;
}

pt_result pt_erasure_replay(pt_app *app, pt_erasure_replay_stats *st, pt_err *err)
{
    pt_erasure_replay_stats z;
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    const char *path = pt_app_erasure_journal(app);
    if (!path) return PT_OK;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return PT_OK; /* nobody erased yet */
        return pt_err_set(err, PT_ERR_IO, "erasure_journal",
                          "cannot read the erasure journal %s: %s", path, strerror(errno));
    }
    char line[JOURNAL_LINE_MAX + 2];
    pt_result rc = PT_OK;
    while (rc == PT_OK && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            /* a torn last line (its transaction never committed), or an
             * overlong one: neither names an erasure */
            st->bad++;
            if (n == sizeof line - 1)
                while (n && line[n - 1] != '\n' && fgets(line, sizeof line, f)) n = strlen(line);
            continue;
        }
        line[--n] = '\0';
        if (n == 0 || line[0] == '#') continue;
        uint8_t id[PT_ID_BYTES];
        char tname[PT_TENANT_NAME_MAX + 1];
        if (parse_line(line, id, tname) != 0) {
            st->bad++;
            continue;
        }
        st->entries++;
        pt_conn *c = pt_app_reader(app, err);
        if (!c) {
            rc = err ? err->code : PT_ERR_STORAGE;
            break;
        }
        pt_subject_rec s;
        memset(&s, 0, sizeof s);
        pt_result r = pt_db_subject_get(c, id, &s);
        pt_app_reader_release(app, c);
        pt_subject_rec_clear(&s);
        if (r == PT_ERR_NOT_FOUND) {
            st->absent++; /* created after this database's snapshot */
            continue;
        }
        if (r != PT_OK) {
            rc = pt_err_set(err, r, "", "cannot read subjects");
            break;
        }
        if (s.erased_at) {
            st->already++;
            continue;
        }
        char have[PT_TENANT_NAME_MAX + 1];
        if (pt_catalog_tenant_name(app, s.tenant, have) != PT_OK || strcmp(have, tname) != 0) {
            /* ids are random and unique: this cannot be the same person */
            st->bad++;
            continue;
        }
        pt_op op;
        rc = erase_prepare(s.tenant, id, false, &op, err);
        if (rc != PT_OK) break;
        rc = pt_app_write(app, &op);
        if (rc == PT_OK) {
            st->erased++;
        } else if (op.rc == PT_ERR_CONFLICT) {
            st->already++; /* erased meanwhile */
            rc = PT_OK;
        } else if (err) {
            *err = op.err;
        }
        pt_op_clear(&op);
    }
    if (rc == PT_OK && ferror(f))
        rc = pt_err_set(err, PT_ERR_IO, "erasure_journal", "cannot read the erasure journal %s",
                        path);
    fclose(f);
    return rc;
}
