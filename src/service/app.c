#include "app.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "catalog.h"
#include "core/crypto.h"
#include "log.h"

#define MAX_BATCH 1024
/* The sync thread asks the store whether anyone committed this often. The
 * question is cheap: SQLite's PRAGMA data_version reads shared memory;
 * PostgreSQL's connection LISTENs for the committers' NOTIFY and re-reads
 * its change counter only when notified or 200 ms after the last read. */
#define SYNC_TICK_MS 10
#define MAX_READERS 64

typedef struct cat_entry {
    uint32_t tenant;
    char name[PT_PURPOSE_NAME_MAX + 1];
    pt_purpose_ref ref;
} cat_entry;

typedef struct tenant_entry {
    uint32_t id;
    char name[PT_TENANT_NAME_MAX + 1];
} tenant_entry;

/* Notices are immutable, so the hash of a published (committed) version
 * can be remembered for good. */
#define NOTICE_CACHE_MAX 256
typedef struct notice_entry {
    uint32_t tenant;
    char notice[PT_NOTICE_NAME_MAX + 1];
    char version[PT_NOTICE_VERSION_MAX + 1];
    char sha256[PT_SHA256_HEX];
} notice_entry;

typedef struct key_entry {
    uint8_t id[PT_ID_BYTES];
    uint32_t tenant;
    pt_role role;
    uint8_t hash[32];
    int revoked;
} key_entry;

typedef enum { D_SUBJECT, D_STATE, D_ALIAS } delta_kind;
typedef struct delta {
    delta_kind kind;
    bool erased;
    pt_state_rec rec; /* D_SUBJECT uses subject, tenant and event_seq (= row) */
    uint8_t to[PT_ID_BYTES]; /* D_ALIAS: rec.subject answers as `to`; event_seq = alias seq */
} delta;

/* A leaf waiting for the end of the batch, when leaves get their indexes
 * in commit order and one checkpoint is signed for them all. */
typedef struct log_pending {
    uint32_t tenant;
    uint8_t ref[PT_ID_BYTES];
    int64_t seq;
    uint8_t *leaf;
    size_t len;
    uint64_t idx;
    json_t *receipt; /* borrowed from the op's result */
} log_pending;

struct pt_wctx {
    pt_app *app;
    pt_conn *conn;
    int64_t now;
    delta *d;
    size_t n, cap;
    bool reload_catalog, reload_keys;
    bool scrub; /* an op deleted personal data: pt_db_scrub after commit */
    bool oom;
    bool bulk;       /* one op, all or nothing: leaves are appended at once */
    log_pending *lp; /* batches: leaves queued until the ops are done */
    size_t nlp, caplp;
    pt_log_tx *ltx;
};

struct pt_app {
    pt_store *store;
    pt_keyring kr;
    bool serve;

    pthread_rwlock_t cat_lock;
    cat_entry *cat;
    size_t ncat;
    tenant_entry *tenants;
    size_t ntenants;
    notice_entry notices[NOTICE_CACHE_MAX];
    size_t nnotices;
    key_entry *keys;
    size_t nkeys;

    pt_cache *cache;
    pt_log *log;
    bool log_off; /* PATTO_BENCH_NO_LOG: benchmarks measure the log's cost */
    char *erasure_journal;    /* NULL = none */
    atomic_bool scrub_pending; /* a scrub failed: retried after the next commit */

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    pt_conn *pool_free[MAX_READERS];
    unsigned nfree, nopen, maxreaders;

    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv;
    pt_op *q_head, *q_tail;
    bool stopping;
    bool writer_started, sync_started;
    pthread_t writer_thread, sync_thread;
    pt_conn *wconn;
    pthread_mutex_t wconn_mu; /* the inline (CLI) write path shares wconn */
    atomic_bool fatal;

    /* cache high-water marks: everything at or below is in the cache */
    pthread_mutex_t sync_mu;
    int64_t mark_seq, mark_row;
    int64_t mark_alias; /* merged ids (subject_aliases.seq) */
    int64_t mark_erased; /* erasure seq: every erasure up to it is in the cache */
    pt_conn *sync_conn;
    pthread_cond_t stop_cv;
};

int64_t pt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pt_ordered_id(uint8_t id[PT_ID_BYTES])
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static int64_t last_ms;
    static uint32_t seq;
    int64_t ms = pt_now_ms();
    pthread_mutex_lock(&mu);
    if (ms <= last_ms) {
        /* same millisecond (or the clock stepped back): count on; past
         * 65535 ids in one millisecond, borrow the next one */
        if (++seq > 0xffff) {
            seq = 0;
            last_ms++;
        }
        ms = last_ms;
    } else {
        last_ms = ms;
        seq = 0;
    }
    uint32_t n = seq;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 6; i++) id[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    id[6] = (uint8_t)(n >> 8);
    id[7] = (uint8_t)n;
    pt_random(id + 8, PT_ID_BYTES - 8);
}

bool pt_app_fatal(pt_app *app) { return atomic_load(&app->fatal); }
pt_store *pt_app_store(pt_app *app) { return app->store; }
const pt_keyring *pt_app_keyring(pt_app *app) { return &app->kr; }
pt_cache *pt_app_cache(pt_app *app) { return app->cache; }
pt_log *pt_app_log(pt_app *app) { return app->log; }
const char *pt_app_erasure_journal(pt_app *app) { return app->erasure_journal; }
pt_conn *pt_wctx_conn(pt_wctx *w) { return w->conn; }
pt_app *pt_wctx_app(pt_wctx *w) { return w->app; }
int64_t pt_wctx_now(pt_wctx *w) { return w->now; }

void pt_op_clear(pt_op *op)
{
    if (!op) return;
    if (op->free_arg && op->arg) op->free_arg(op->arg);
    op->arg = NULL;
    json_decref(op->out);
    op->out = NULL;
}

/* ---------------------------------------------------------------- catalog */

static int cat_cmp(const void *a, const void *b)
{
    const cat_entry *x = a, *y = b;
    if (x->tenant != y->tenant) return x->tenant < y->tenant ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int key_cmp(const void *a, const void *b)
{
    return memcmp(((const key_entry *)a)->id, ((const key_entry *)b)->id, PT_ID_BYTES);
}

typedef struct vec {
    void *p;
    size_t n, cap, size;
    bool oom;
} vec;

static void *vec_push(vec *v)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        void *np = realloc(v->p, nc * v->size);
        if (!np) {
            v->oom = true;
            return NULL;
        }
        v->p = np;
        v->cap = nc;
    }
    return (char *)v->p + v->size * v->n++;
}

static int cat_collect(void *ctx, const pt_purpose_rec *r)
{
    cat_entry *e = vec_push(ctx);
    if (!e) return 1;
    e->tenant = r->tenant;
    memcpy(e->name, r->name, sizeof e->name);
    e->ref.idx = r->idx;
    e->ref.rule = r->rule;
    return 0;
}

static int key_collect(void *ctx, const pt_key_rec *r)
{
    key_entry *e = vec_push(ctx);
    if (!e) return 1;
    memcpy(e->id, r->id, PT_ID_BYTES);
    e->tenant = r->tenant;
    e->role = r->role;
    memcpy(e->hash, r->hash, 32);
    e->revoked = r->revoked_at != 0;
    return 0;
}

static int tenant_collect(void *ctx, const pt_tenant_rec *r)
{
    tenant_entry *e = vec_push(ctx);
    if (!e) return 1;
    e->id = r->id;
    memcpy(e->name, r->name, sizeof e->name);
    return 0;
}

static pt_result reload_catalog(pt_app *app, pt_conn *c)
{
    vec v = {.size = sizeof(cat_entry)}, t = {.size = sizeof(tenant_entry)};
    pt_result rc = pt_db_purpose_list(c, 0, cat_collect, &v);
    if (rc == PT_OK) rc = pt_db_tenant_list(c, tenant_collect, &t);
    if (rc == PT_OK && (v.oom || t.oom)) rc = PT_ERR_NOMEM;
    if (rc != PT_OK) {
        free(v.p);
        free(t.p);
        return rc;
    }
    if (v.n) qsort(v.p, v.n, sizeof(cat_entry), cat_cmp);
    pthread_rwlock_wrlock(&app->cat_lock);
    free(app->cat);
    app->cat = v.p;
    app->ncat = v.n;
    free(app->tenants);
    app->tenants = t.p;
    app->ntenants = t.n;
    pthread_rwlock_unlock(&app->cat_lock);
    return PT_OK;
}

pt_result pt_catalog_tenant_name(pt_app *app, uint32_t tenant, char name[PT_TENANT_NAME_MAX + 1])
{
    pt_result rc = PT_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&app->cat_lock);
    for (size_t i = 0; i < app->ntenants; i++)
        if (app->tenants[i].id == tenant) {
            memcpy(name, app->tenants[i].name, PT_TENANT_NAME_MAX + 1);
            rc = PT_OK;
            break;
        }
    pthread_rwlock_unlock(&app->cat_lock);
    return rc;
}

pt_result pt_catalog_notice_hash(pt_app *app, uint32_t tenant, const char *notice,
                                 const char *version, char sha256[PT_SHA256_HEX])
{
    pt_result rc = PT_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&app->cat_lock);
    for (size_t i = 0; i < app->nnotices; i++) {
        notice_entry *e = &app->notices[i];
        if (e->tenant == tenant && !strcmp(e->notice, notice) && !strcmp(e->version, version)) {
            memcpy(sha256, e->sha256, PT_SHA256_HEX);
            rc = PT_OK;
            break;
        }
    }
    pthread_rwlock_unlock(&app->cat_lock);
    return rc;
}

void pt_catalog_notice_remember(pt_app *app, uint32_t tenant, const char *notice,
                                const char *version, const char sha256[PT_SHA256_HEX])
{
    char have[PT_SHA256_HEX];
    if (pt_catalog_notice_hash(app, tenant, notice, version, have) == PT_OK) return;
    pthread_rwlock_wrlock(&app->cat_lock);
    if (app->nnotices < NOTICE_CACHE_MAX) {
        notice_entry *e = &app->notices[app->nnotices++];
        e->tenant = tenant;
        snprintf(e->notice, sizeof e->notice, "%s", notice);
        snprintf(e->version, sizeof e->version, "%s", version);
        memcpy(e->sha256, sha256, PT_SHA256_HEX);
    }
    pthread_rwlock_unlock(&app->cat_lock);
}

static pt_result reload_keys(pt_app *app, pt_conn *c)
{
    vec v = {.size = sizeof(key_entry)};
    pt_result rc = pt_db_key_list(c, 0, key_collect, &v);
    if (rc == PT_OK && v.oom) rc = PT_ERR_NOMEM;
    if (rc != PT_OK) {
        free(v.p);
        return rc;
    }
    if (v.n) qsort(v.p, v.n, sizeof(key_entry), key_cmp);
    pthread_rwlock_wrlock(&app->cat_lock);
    free(app->keys);
    app->keys = v.p;
    app->nkeys = v.n;
    pthread_rwlock_unlock(&app->cat_lock);
    return PT_OK;
}

pt_result pt_catalog_find(pt_app *app, uint32_t tenant, const char *name, pt_purpose_ref *out)
{
    cat_entry key = {.tenant = tenant};
    if (strlen(name) > PT_PURPOSE_NAME_MAX) return PT_ERR_NOT_FOUND;
    strcpy(key.name, name);
    pt_result rc = PT_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&app->cat_lock);
    cat_entry *e = app->ncat ? bsearch(&key, app->cat, app->ncat, sizeof *e, cat_cmp) : NULL;
    if (e) {
        *out = e->ref;
        rc = PT_OK;
    }
    pthread_rwlock_unlock(&app->cat_lock);
    return rc;
}

pt_result pt_catalog_name(pt_app *app, uint32_t tenant, uint16_t idx,
                           char name[PT_PURPOSE_NAME_MAX + 1], pt_purpose_ref *out)
{
    pt_result rc = PT_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&app->cat_lock);
    for (size_t i = 0; i < app->ncat; i++)
        if (app->cat[i].tenant == tenant && app->cat[i].ref.idx == idx) {
            memcpy(name, app->cat[i].name, PT_PURPOSE_NAME_MAX + 1);
            if (out) *out = app->cat[i].ref;
            rc = PT_OK;
            break;
        }
    pthread_rwlock_unlock(&app->cat_lock);
    return rc;
}

pt_result pt_auth(pt_app *app, const char *token, size_t len, pt_principal *out)
{
    const size_t plen = sizeof PT_APIKEY_PREFIX - 1;
    const size_t slen = 32; /* base32 of 20 bytes */
    uint8_t secret[PT_APIKEY_SECRET_BYTES];
    key_entry key;
    char idstr[PT_ID_STR_MAX];
    if (len != plen + PT_ID_B32_LEN + 1 + slen) return PT_ERR_UNAUTHORIZED;
    if (memcmp(token, PT_APIKEY_PREFIX, plen) != 0 || token[plen + PT_ID_B32_LEN] != '_')
        return PT_ERR_UNAUTHORIZED;
    snprintf(idstr, sizeof idstr, "key_%.*s", PT_ID_B32_LEN, token + plen);
    if (pt_id_parse("key", idstr, strlen(idstr), key.id) != 0) return PT_ERR_UNAUTHORIZED;
    if (pt_b32_decode(token + plen + PT_ID_B32_LEN + 1, slen, secret, sizeof secret) !=
        PT_APIKEY_SECRET_BYTES)
        return PT_ERR_UNAUTHORIZED;
    uint8_t h[32];
    pt_secret_hash(secret, sizeof secret, h);
    pt_wipe(secret, sizeof secret);

    pt_result rc = PT_ERR_UNAUTHORIZED;
    pthread_rwlock_rdlock(&app->cat_lock);
    key_entry *e = app->nkeys ? bsearch(&key, app->keys, app->nkeys, sizeof *e, key_cmp) : NULL;
    if (e && pt_ct_equal(e->hash, h, 32) && !e->revoked) {
        out->tenant = e->tenant;
        out->role = e->role;
        memcpy(out->key_id, e->id, PT_ID_BYTES);
        rc = PT_OK;
    }
    pthread_rwlock_unlock(&app->cat_lock);
    return rc;
}

/* ---------------------------------------------------------------- readers */

pt_conn *pt_app_reader(pt_app *app, pt_err *err)
{
    pt_conn *c = NULL;
    pthread_mutex_lock(&app->pool_mu);
    while (app->nfree == 0 && app->nopen >= app->maxreaders)
        pthread_cond_wait(&app->pool_cv, &app->pool_mu);
    if (app->nfree > 0) {
        c = app->pool_free[--app->nfree];
        pthread_mutex_unlock(&app->pool_mu);
        return c;
    }
    app->nopen++;
    pthread_mutex_unlock(&app->pool_mu);
    if (pt_conn_open(app->store, &c, err) != PT_OK) {
        pthread_mutex_lock(&app->pool_mu);
        app->nopen--;
        pthread_cond_signal(&app->pool_cv);
        pthread_mutex_unlock(&app->pool_mu);
        return NULL;
    }
    return c;
}

void pt_app_reader_release(pt_app *app, pt_conn *c)
{
    if (!c) return;
    pthread_mutex_lock(&app->pool_mu);
    app->pool_free[app->nfree++] = c;
    pthread_cond_signal(&app->pool_cv);
    pthread_mutex_unlock(&app->pool_mu);
}

/* ---------------------------------------------------------------- deltas */

static delta *delta_push(pt_wctx *w)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        delta *nd = realloc(w->d, nc * sizeof *nd);
        if (!nd) {
            w->oom = true;
            return NULL;
        }
        w->d = nd;
        w->cap = nc;
    }
    return &w->d[w->n++];
}

void pt_wctx_subject_added(pt_wctx *w, const pt_subject_rec *s)
{
    if (!w->app->cache) return; /* nothing to keep in step (CLI) */
    delta *d = delta_push(w);
    if (!d) return;
    memset(d, 0, sizeof *d);
    d->kind = D_SUBJECT;
    d->erased = s->erased_at != 0;
    memcpy(d->rec.subject, s->id, PT_ID_BYTES);
    d->rec.tenant = s->tenant;
    d->rec.event_seq = s->row;
}

void pt_wctx_alias_added(pt_wctx *w, const pt_alias_rec *a)
{
    if (!w->app->cache) return;
    delta *d = delta_push(w);
    if (!d) return;
    memset(d, 0, sizeof *d);
    d->kind = D_ALIAS;
    memcpy(d->rec.subject, a->id, PT_ID_BYTES);
    d->rec.tenant = a->tenant;
    d->rec.event_seq = a->seq;
    memcpy(d->to, a->subject, PT_ID_BYTES);
}

void pt_wctx_state_set(pt_wctx *w, const pt_state_rec *r)
{
    if (!w->app->cache) return;
    delta *d = delta_push(w);
    if (!d) return;
    d->kind = D_STATE;
    d->erased = false;
    d->rec = *r;
}

pt_result pt_wctx_log(pt_wctx *w, uint32_t tenant, const uint8_t ref[PT_ID_BYTES],
                      int64_t event_seq, const void *leaf, size_t len, json_t *receipt,
                      pt_err *err)
{
    if (w->app->log_off) return PT_OK;
    if (w->bulk) {
        if (!w->ltx) w->ltx = pt_log_tx_new(w->app->log, w->conn, false);
        if (!w->ltx) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        return pt_log_tx_append(w->ltx, tenant, ref, event_seq, leaf, len, NULL, err);
    }
    if (w->nlp == w->caplp) {
        size_t nc = w->caplp ? w->caplp * 2 : 64;
        log_pending *np = realloc(w->lp, nc * sizeof *np);
        if (!np) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        w->lp = np;
        w->caplp = nc;
    }
    log_pending *p = &w->lp[w->nlp];
    p->leaf = malloc(len ? len : 1);
    if (!p->leaf) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    memcpy(p->leaf, leaf, len);
    p->len = len;
    p->tenant = tenant;
    memcpy(p->ref, ref, PT_ID_BYTES);
    p->seq = event_seq;
    p->receipt = receipt;
    w->nlp++;
    return PT_OK;
}

static void log_truncate(pt_wctx *w, size_t mark)
{
    while (w->nlp > mark) free(w->lp[--w->nlp].leaf);
}


pt_result pt_wctx_tenant_name(pt_wctx *w, uint32_t tenant, char name[PT_TENANT_NAME_MAX + 1])
{
    if (pt_catalog_tenant_name(w->app, tenant, name) == PT_OK) return PT_OK;
    /* created in this very batch: not in the catalog snapshot yet */
    pt_tenant_rec t;
    pt_result rc = pt_db_tenant_by_id(w->conn, tenant, &t);
    if (rc == PT_OK) memcpy(name, t.name, sizeof t.name);
    return rc;
}

static pt_result tenant_name_of(void *ctx, uint32_t tenant, char name[PT_TENANT_NAME_MAX + 1])
{
    return pt_wctx_tenant_name(ctx, tenant, name);
}

/* Gives the batch's leaves their places, signs one checkpoint per tenant
 * and completes the receipts; inside the transaction, before commit. */
static pt_result log_seal(pt_wctx *w, pt_err *err)
{
    pt_result rc = PT_OK;
    if (!w->bulk && w->nlp) {
        w->ltx = pt_log_tx_new(w->app->log, w->conn, true);
        if (!w->ltx) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        for (size_t i = 0; i < w->nlp && rc == PT_OK; i++) {
            log_pending *p = &w->lp[i];
            rc = pt_log_tx_append(w->ltx, p->tenant, p->ref, p->seq, p->leaf, p->len, &p->idx,
                                  err);
        }
    }
    if (!w->ltx || rc != PT_OK) return rc;
    rc = pt_log_tx_seal(w->ltx, w->now, tenant_name_of, w, err);
    for (size_t i = 0; rc == PT_OK && i < w->nlp; i++) {
        log_pending *p = &w->lp[i];
        if (!p->receipt) continue;
        json_t *proof = pt_log_tx_proof(w->ltx, p->tenant, p->idx, p->leaf, p->len);
        if (!proof) rc = pt_err_set(err, PT_ERR_INTERNAL, "", "cannot build the receipt's proof");
        else json_object_set_new(p->receipt, "proof", proof);
    }
    return rc;
}

void pt_wctx_reload_catalog(pt_wctx *w) { w->reload_catalog = true; }
void pt_wctx_reload_keys(pt_wctx *w) { w->reload_keys = true; }
void pt_wctx_scrub(pt_wctx *w) { w->scrub = true; }

/* Applies a committed batch's changes to the caches. Called with sync_mu held. */
static void apply_deltas(pt_app *app, pt_wctx *w)
{
    if (w->reload_catalog) reload_catalog(app, w->conn);
    if (w->reload_keys) reload_keys(app, w->conn);
    if (!app->cache) return;
    int64_t lo[2] = {0, 0}, hi[2] = {0, 0}, alias_lo = 0, alias_hi = 0;
    for (size_t i = 0; i < w->n; i++) {
        delta *d = &w->d[i];
        if (d->kind == D_ALIAS) {
            pt_cache_alias_put(app->cache, d->rec.subject, d->to, d->rec.tenant);
            if (!alias_lo || d->rec.event_seq < alias_lo) alias_lo = d->rec.event_seq;
            if (d->rec.event_seq > alias_hi) alias_hi = d->rec.event_seq;
            continue;
        }
        int k = d->kind == D_SUBJECT;
        if (k)
            pt_cache_subject_put(app->cache, d->rec.subject, d->rec.tenant, d->erased);
        else
            pt_cache_state_put(app->cache, d->rec.subject, &d->rec.st);
        if (!lo[k] || d->rec.event_seq < lo[k]) lo[k] = d->rec.event_seq;
        if (d->rec.event_seq > hi[k]) hi[k] = d->rec.event_seq;
    }
    /* SQLite hands out event seqs and subject rows as max+1, so a batch
     * that starts right after the mark leaves no gap and the mark may move
     * past it; otherwise another process committed in between and the sync
     * thread catches up from the store. */
    if (lo[0] && lo[0] <= app->mark_seq + 1 && hi[0] > app->mark_seq) app->mark_seq = hi[0];
    if (lo[1] && lo[1] <= app->mark_row + 1 && hi[1] > app->mark_row) app->mark_row = hi[1];
    if (alias_lo && alias_lo <= app->mark_alias + 1 && alias_hi > app->mark_alias)
        app->mark_alias = alias_hi;
}

/* ---------------------------------------------------------------- writer */

/* After a commit that deleted personal data (pt_wctx_scrub), before its
 * ops are answered: the old page images must leave the files. */
static void scrub_after_commit(pt_app *app, pt_conn *conn)
{
    pt_err e;
    pt_err_clear(&e);
    pt_result rc = pt_db_scrub(conn, &e);
    atomic_store(&app->scrub_pending, rc != PT_OK);
    if (rc == PT_OK) return;
    if (rc == PT_ERR_STORAGE_FATAL) atomic_store(&app->fatal, true);
    fprintf(stderr, "patto: scrubbing after an erasure failed: %s; retried after the next commit\n",
            e.detail[0] ? e.detail : pt_result_str(rc));
}

static bool storage_error(pt_result rc)
{
    return rc == PT_ERR_STORAGE || rc == PT_ERR_STORAGE_FULL || rc == PT_ERR_STORAGE_FATAL;
}

/* Runs a batch of ops in one transaction on conn; sets every op's rc.
 *
 * A savepoint per op costs a copy of every page the op touches first, so
 * a batch first runs without them: an op refused before it wrote anything
 * (the usual case: validation comes first) needs no rollback. If an op
 * fails after writing, the transaction is rolled back and the batch runs
 * again with a savepoint per op. A backend that cannot count changes
 * (pt_db_changes < 0) always uses savepoints. A bulk batch (one op, all or
 * nothing) never runs twice: its input may be a stream. */
static void run_batch(pt_app *app, pt_conn *conn, pt_op *batch, bool bulk)
{
    pt_wctx w = {.app = app, .conn = conn, .now = pt_now_ms(), .bulk = bulk};
    pt_err err;
    pt_err_clear(&err);
    pt_result rc = PT_OK;
    bool safe = !bulk && pt_db_changes(conn) < 0;
again:
    if (atomic_load(&app->fatal)) {
        rc = pt_err_set(&err, PT_ERR_STORAGE_FATAL, "", "storage failed earlier; stopping");
        goto fail_all;
    }
    rc = pt_tx_begin(conn, &err);
    if (rc != PT_OK) goto fail_all;
    for (pt_op *op = batch; op; op = op->next) {
        pt_err_clear(&op->err);
        op->delta_mark = w.n;
        op->log_mark = w.nlp;
        bool rl_cat = w.reload_catalog, rl_keys = w.reload_keys;
        int64_t before = safe ? 0 : pt_db_changes(conn);
        op->rc = safe ? pt_tx_savepoint(conn, &op->err) : PT_OK;
        if (op->rc == PT_OK) op->rc = op->fn(&w, op->arg, &op->err);
        if (op->rc == PT_OK && w.oom) op->rc = pt_err_set(&op->err, PT_ERR_NOMEM, "", "out of memory");
        if (op->rc == PT_OK && safe) op->rc = pt_tx_release(conn, &op->err);
        if (op->rc == PT_OK) continue;
        json_decref(op->out);
        op->out = NULL;
        if (storage_error(op->rc) || bulk) {
            rc = op->rc;
            err = op->err;
            pt_tx_rollback(conn);
            goto fail_all;
        }
        if (safe) {
            pt_tx_rollback_to(conn);
        } else if (pt_db_changes(conn) != before) {
            /* it wrote before failing: start over, one savepoint per op */
            pt_tx_rollback(conn);
            for (pt_op *o = batch; o; o = o->next) {
                json_decref(o->out);
                o->out = NULL;
            }
            w.n = 0;
            log_truncate(&w, 0);
            w.oom = false;
            w.reload_catalog = w.reload_keys = false;
            w.scrub = false;
            safe = true;
            goto again;
        }
        w.n = op->delta_mark;
        log_truncate(&w, op->log_mark);
        w.reload_catalog = rl_cat;
        w.reload_keys = rl_keys;
    }
    rc = log_seal(&w, &err);
    if (rc != PT_OK) {
        pt_tx_rollback(conn);
        goto fail_all;
    }
    pthread_mutex_lock(&app->sync_mu);
    rc = pt_tx_commit(conn, &err);
    if (rc == PT_OK) apply_deltas(app, &w);
    pthread_mutex_unlock(&app->sync_mu);
    if (rc != PT_OK) {
        pt_tx_rollback(conn);
        goto fail_all;
    }
    pt_log_tx_done(w.ltx, true);
    w.ltx = NULL;
    if (w.scrub || atomic_load(&app->scrub_pending)) scrub_after_commit(app, conn);
    goto out;
fail_all:
    if (rc == PT_ERR_STORAGE_FATAL) atomic_store(&app->fatal, true);
    for (pt_op *op = batch; op; op = op->next) {
        op->rc = rc;
        op->err = err;
        if (!op->err.detail[0])
            snprintf(op->err.detail, sizeof op->err.detail, "%s", pt_result_str(rc));
        json_decref(op->out);
        op->out = NULL;
    }
out:
    pt_log_tx_done(w.ltx, false);
    log_truncate(&w, 0);
    free(w.lp);
    free(w.d);
}

static void *writer_main(void *arg)
{
    pt_app *app = arg;
    for (;;) {
        pthread_mutex_lock(&app->wq_mu);
        while (!app->q_head && !app->stopping) pthread_cond_wait(&app->wq_cv, &app->wq_mu);
        if (!app->q_head) {
            pthread_mutex_unlock(&app->wq_mu);
            break;
        }
        pt_op *batch = app->q_head, *last = batch;
        size_t n = 1;
        while (last->next && n < MAX_BATCH) {
            last = last->next;
            n++;
        }
        app->q_head = last->next;
        if (!app->q_head) app->q_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&app->wq_mu);

        run_batch(app, app->wconn, batch, false);
        for (pt_op *op = batch, *next; op; op = next) {
            next = op->next; /* done() may free op */
            op->next = NULL;
            if (op->done) op->done(op);
        }
    }
    return NULL;
}

void pt_app_submit(pt_app *app, pt_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&app->wq_mu);
    if (app->q_tail)
        app->q_tail->next = op;
    else
        app->q_head = op;
    app->q_tail = op;
    pthread_cond_signal(&app->wq_cv);
    pthread_mutex_unlock(&app->wq_mu);
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} sync_wait;

static void sync_done(pt_op *op)
{
    sync_wait *sw = op->done_ctx;
    pthread_mutex_lock(&sw->mu);
    sw->done = true;
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
}

pt_result pt_app_write(pt_app *app, pt_op *op)
{
    if (app->writer_started) {
        sync_wait sw = {.done = false};
        pthread_mutex_init(&sw.mu, NULL);
        pthread_cond_init(&sw.cv, NULL);
        op->done = sync_done;
        op->done_ctx = &sw;
        pt_app_submit(app, op);
        pthread_mutex_lock(&sw.mu);
        while (!sw.done) pthread_cond_wait(&sw.cv, &sw.mu);
        pthread_mutex_unlock(&sw.mu);
        pthread_mutex_destroy(&sw.mu);
        pthread_cond_destroy(&sw.cv);
        return op->rc;
    }
    op->next = NULL;
    pthread_mutex_lock(&app->wconn_mu);
    run_batch(app, app->wconn, op, false);
    pthread_mutex_unlock(&app->wconn_mu);
    return op->rc;
}

pt_result pt_app_bulk(pt_app *app, pt_write_fn fn, void *arg, pt_err *err)
{
    pt_op op = {.fn = fn, .arg = arg};
    pt_conn *c = NULL;
    pt_result rc = pt_conn_open(app->store, &c, err);
    if (rc != PT_OK) return rc;
    pt_conn_tune(c, PT_CONN_BULK);
    run_batch(app, c, &op, true);
    pt_conn_close(c);
    if (op.rc != PT_OK && err) *err = op.err;
    json_decref(op.out);
    return op.rc;
}

/* ---------------------------------------------------------------- sync */

typedef struct sync_ctx {
    pt_app *app;
    vec subjects; /* uint8_t[16] */
    int64_t max;
} sync_ctx;

static int sync_subject(void *ctx, const pt_subject_rec *r)
{
    sync_ctx *s = ctx;
    pt_cache_subject_put(s->app->cache, r->id, r->tenant, r->erased_at != 0);
    if (r->row > s->max) s->max = r->row;
    return 0;
}

static int sync_event(void *ctx, const pt_event_rec *r)
{
    sync_ctx *s = ctx;
    uint8_t *id = vec_push(&s->subjects);
    if (id) memcpy(id, r->subject, PT_ID_BYTES);
    if (r->seq > s->max) s->max = r->seq;
    return 0;
}

static int sync_erased(void *ctx, const pt_subject_rec *r, int64_t erased_seq)
{
    sync_ctx *s = ctx;
    pt_cache_subject_put(s->app->cache, r->id, r->tenant, true);
    if (erased_seq > s->app->mark_erased) s->app->mark_erased = erased_seq;
    return 0;
}

static int sync_state(void *ctx, const pt_state_rec *r)
{
    sync_ctx *s = ctx;
    pt_cache_state_put(s->app->cache, r->subject, &r->st);
    return 0;
}

/* A merge: the merged id answers as the survivor, whose states the merge
 * changed (they are re-read after the scan). */
static int sync_alias(void *ctx, const pt_alias_rec *r)
{
    sync_ctx *s = ctx;
    pt_cache_alias_put(s->app->cache, r->id, r->subject, r->tenant);
    uint8_t *id = vec_push(&s->subjects);
    if (id) memcpy(id, r->subject, PT_ID_BYTES);
    if (r->seq > s->max) s->max = r->seq;
    return 0;
}

/* Merged ids past the mark, then the states of their survivors. */
static pt_result sync_aliases(pt_app *app, pt_conn *c, sync_ctx *s)
{
    s->subjects.n = 0;
    s->max = app->mark_alias;
    pt_result rc = pt_db_alias_scan(c, app->mark_alias, sync_alias, s);
    for (size_t i = 0; rc == PT_OK && i < s->subjects.n; i++)
        rc = pt_db_state_list_subject(c, (const uint8_t *)s->subjects.p + i * PT_ID_BYTES,
                                      sync_state, s);
    if (rc == PT_OK) app->mark_alias = s->max;
    return rc;
}

/* Brings the cache up to date with commits made by anyone (this node's
 * writer included: re-reading is harmless, the store is the truth). */
static pt_result sync_from_store(pt_app *app, pt_conn *c, bool full)
{
    pt_result rc;
    sync_ctx s = {.app = app, .subjects = {.size = PT_ID_BYTES}};
    s.max = app->mark_row;
    rc = pt_db_subject_scan(c, app->mark_row, sync_subject, &s);
    if (rc != PT_OK) goto out;
    app->mark_row = s.max;
    if (full) {
        /* the row scan carried every erasure committed so far; this
         * reads their seqs (few: the index holds erased subjects only) */
        rc = pt_db_subject_erased_scan(c, 0, sync_erased, &s);
        if (rc != PT_OK) goto out;
        rc = pt_db_state_scan(c, 0, sync_state, &s);
        if (rc != PT_OK) goto out;
        rc = pt_db_event_max_seq(c, &app->mark_seq);
        if (rc == PT_OK) rc = sync_aliases(app, c, &s);
        goto out;
    }
    /* erasures by another process or node: an erased subject keeps its
     * row, so the row scan does not see them */
    rc = pt_db_subject_erased_scan(c, app->mark_erased, sync_erased, &s);
    if (rc != PT_OK) goto out;
    s.max = app->mark_seq;
    rc = pt_db_event_list_tenant(c, 0, app->mark_seq, 0, sync_event, &s);
    if (rc != PT_OK) goto out;
    for (size_t i = 0; i < s.subjects.n; i++) {
        const uint8_t *id = (const uint8_t *)s.subjects.p + i * PT_ID_BYTES;
        rc = pt_db_state_list_subject(c, id, sync_state, &s);
        if (rc != PT_OK) goto out;
    }
    app->mark_seq = s.max;
    rc = sync_aliases(app, c, &s);
out:
    free(s.subjects.p);
    return rc;
}

static void *sync_main(void *arg)
{
    pt_app *app = arg;
    int64_t last = -1;
    pthread_mutex_lock(&app->wq_mu);
    while (!app->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SYNC_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&app->stop_cv, &app->wq_mu, &ts);
        if (app->stopping) break;
        pthread_mutex_unlock(&app->wq_mu);
        int64_t dv = 0;
        if (pt_db_data_version(app->sync_conn, &dv) == PT_OK && dv != last) {
            pthread_mutex_lock(&app->sync_mu);
            if (sync_from_store(app, app->sync_conn, false) == PT_OK &&
                reload_catalog(app, app->sync_conn) == PT_OK &&
                reload_keys(app, app->sync_conn) == PT_OK)
                last = dv;
            pthread_mutex_unlock(&app->sync_mu);
        }
        pthread_mutex_lock(&app->wq_mu);
    }
    pthread_mutex_unlock(&app->wq_mu);
    return NULL;
}

/* ---------------------------------------------------------------- life */

/* The log's name is part of every checkpoint's origin: it is fixed in the
 * database the first time and a different configured name is refused
 * rather than silently starting a second history. */
static pt_result open_log(pt_app *app, const pt_app_config *cfg, pt_err *err)
{
    char name[PT_LOG_NAME_MAX + 8];
    const char *want = cfg->log_name && *cfg->log_name ? cfg->log_name : NULL;
    /* under the write lock: two nodes starting at once on a new database
     * must not each fix a name of their own */
    pt_result rc = pt_tx_begin(app->wconn, err);
    if (rc != PT_OK) return rc;
    rc = pt_db_meta_get(app->wconn, "log_name", name, sizeof name);
    if (rc == PT_ERR_NOT_FOUND) {
        snprintf(name, sizeof name, "%s", want ? want : "patto");
        if (!pt_log_name_valid(name)) {
            pt_tx_rollback(app->wconn);
            return pt_err_set(err, PT_ERR_INVALID, "log_name",
                              "log_name must be 1-64 characters of A-Z a-z 0-9 . _ - /");
        }
        rc = pt_db_meta_set(app->wconn, "log_name", name);
    } else if (rc == PT_OK && want && strcmp(want, name) != 0) {
        pt_tx_rollback(app->wconn);
        return pt_err_set(err, PT_ERR_INVALID, "log_name",
                          "this database's proof log is named '%s'; the log name cannot change",
                          name);
    }
    if (rc == PT_OK) rc = pt_tx_commit(app->wconn, err);
    else pt_tx_rollback(app->wconn);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read the database");
    app->log = pt_log_new(&app->kr, name);
    if (!app->log) return pt_err_set(err, PT_ERR_INVALID, "log_name", "invalid log name '%s'", name);
    app->log_off = getenv("PATTO_BENCH_NO_LOG") != NULL;
    rc = pt_db_log_key_add(app->wconn, pt_log_verifier(app->log), pt_now_ms(), err);
    if (rc != PT_OK) return rc;
    return app->log_off ? PT_OK : pt_log_catch_up(app, err);
}

pt_result pt_app_open(const pt_app_config *cfg, pt_app **out, pt_err *err)
{
    pt_result rc;
    char fp[PT_SHA256_HEX], stored[PT_SHA256_HEX + 8];
    pt_app *app = calloc(1, sizeof *app);
    if (!app) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    app->kr = *cfg->keyring;
    app->serve = cfg->serve;
    app->maxreaders = cfg->readers ? cfg->readers : 4;
    if (cfg->erasure_journal && *cfg->erasure_journal) {
        app->erasure_journal = strdup(cfg->erasure_journal);
        if (!app->erasure_journal) {
            free(app);
            return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        }
    }
    if (app->maxreaders > MAX_READERS) app->maxreaders = MAX_READERS;
    pthread_rwlock_init(&app->cat_lock, NULL);
    pthread_mutex_init(&app->pool_mu, NULL);
    pthread_cond_init(&app->pool_cv, NULL);
    pthread_mutex_init(&app->wq_mu, NULL);
    pthread_cond_init(&app->wq_cv, NULL);
    pthread_cond_init(&app->stop_cv, NULL);
    pthread_mutex_init(&app->sync_mu, NULL);
    pthread_mutex_init(&app->wconn_mu, NULL);

    rc = pt_store_open(cfg->db_url, cfg->create, &app->store, err);
    if (rc != PT_OK) goto fail;
    rc = pt_conn_open(app->store, &app->wconn, err);
    if (rc != PT_OK) goto fail;
    pt_conn_tune(app->wconn, PT_CONN_WRITER);

    /* The database remembers which keyring it belongs to, so that starting
     * with the wrong one fails now instead of failing to decrypt later. */
    pt_keyring_fingerprint(&app->kr, fp);
    rc = pt_db_meta_get(app->wconn, "keyring_fingerprint", stored, sizeof stored);
    if (rc == PT_ERR_NOT_FOUND) {
        rc = pt_db_meta_set(app->wconn, "keyring_fingerprint", fp);
        if (rc != PT_OK) {
            pt_err_set(err, rc, "", "cannot write to the database");
            goto fail;
        }
    } else if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot read the database");
        goto fail;
    } else if (strcmp(stored, fp) != 0) {
        rc = pt_err_set(err, PT_ERR_INVALID, "keyring",
                        "this keyring does not belong to this database; use the keyring "
                        "that `patto init` created for it (--keyring or PATTO_KEYRING)");
        goto fail;
    }

    rc = reload_catalog(app, app->wconn);
    if (rc == PT_OK) rc = reload_keys(app, app->wconn);
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot load the catalog");
        goto fail;
    }

    rc = open_log(app, cfg, err);
    if (rc != PT_OK) goto fail;

    if (cfg->serve) {
        app->cache = pt_cache_new();
        if (!app->cache) {
            rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
            goto fail;
        }
        rc = pt_conn_open(app->store, &app->sync_conn, err);
        if (rc != PT_OK) goto fail;
        rc = sync_from_store(app, app->sync_conn, true);
        if (rc != PT_OK) {
            pt_err_set(err, rc, "", "cannot load the consent state");
            goto fail;
        }
        pt_conn_tune(app->sync_conn, PT_CONN_READER); /* give back the scan's pages */
        if (pthread_create(&app->writer_thread, NULL, writer_main, app) != 0) {
            rc = pt_err_set(err, PT_ERR_INTERNAL, "", "cannot start the writer thread");
            goto fail;
        }
        app->writer_started = true;
        if (pthread_create(&app->sync_thread, NULL, sync_main, app) != 0) {
            rc = pt_err_set(err, PT_ERR_INTERNAL, "", "cannot start the sync thread");
            goto fail;
        }
        app->sync_started = true;
    }
    *out = app;
    return PT_OK;
fail:
    pt_app_close(app);
    return rc;
}

void pt_app_close(pt_app *app)
{
    if (!app) return;
    pthread_mutex_lock(&app->wq_mu);
    app->stopping = true;
    pthread_cond_broadcast(&app->wq_cv);
    pthread_cond_broadcast(&app->stop_cv);
    pthread_mutex_unlock(&app->wq_mu);
    if (app->writer_started) pthread_join(app->writer_thread, NULL);
    if (app->sync_started) pthread_join(app->sync_thread, NULL);
    for (unsigned i = 0; i < app->nfree; i++) pt_conn_close(app->pool_free[i]);
    pt_conn_close(app->sync_conn);
    pt_conn_close(app->wconn);
    pt_store_close(app->store);
    pt_cache_free(app->cache);
    pt_log_free(app->log);
    free(app->cat);
    free(app->tenants);
    free(app->keys);
    free(app->erasure_journal);
    pt_keyring_wipe(&app->kr);
    pthread_rwlock_destroy(&app->cat_lock);
    pthread_mutex_destroy(&app->pool_mu);
    pthread_cond_destroy(&app->pool_cv);
    pthread_mutex_destroy(&app->wq_mu);
    pthread_cond_destroy(&app->wq_cv);
    pthread_cond_destroy(&app->stop_cv);
    pthread_mutex_destroy(&app->sync_mu);
    pthread_mutex_destroy(&app->wconn_mu);
    free(app);
}
