/* migrate.c - copies a whole installation from one store to another (for
 * instance from SQLite to PostgreSQL) through store.h alone, so that any
 * pair of backends works.
 *
 * What moves, in this order: the installation's keyring fingerprint,
 * tenants (ids kept), API keys, purposes, notices (with their texts),
 * subjects (wrapped data keys and sealed profiles byte for byte: the same
 * keyring opens them), their identifiers, every event in seq order, the
 * consent states, and the proof log: every tenant's leaves and subtree
 * hashes, the signed heads and the signing keys, byte for byte, so that
 * receipts, checkpoints and consistency proofs issued by the source keep
 * verifying against the destination. Nothing is decrypted: the keyring
 * only proves that the caller holds the source's keys.
 *
 * Event seqs and subject rows are the destination's own (a backend assigns
 * them), so they may differ from the source's; their order is kept, and
 * each consent state's event_seq is rewritten to its event's new seq, as
 * is each log head's (the mark from which the log catches up on events).
 *
 * Consistency. The source is read inside a transaction of its own, which
 * takes the source's writer lock (SQLite BEGIN IMMEDIATE, the PostgreSQL
 * backend's advisory lock): no patto writer commits while we copy, so the
 * copy is a consistent cut. It is rolled back at the end (nothing was
 * written). Reads made while a scan of the source is being read (a notice's
 * text, a subject's profile and identifiers) go to a second source
 * connection: store.h forbids calling back into a scanning connection
 * inside a transaction.
 *
 * The destination is written in one transaction: all or nothing. It must
 * hold no tenant, subject, event or log head; that check runs inside the
 * same transaction (under the destination's writer lock), so two
 * migrations into one database cannot both succeed. A migration that is
 * killed or fails half-way therefore leaves no row behind (the database
 * rolls the transaction back; only the schema, created by pt_store_open in
 * transactions of its own, stays) and is simply run again
 * (tests/multinode/interrupted_migration.py). */
#include <stdlib.h>
#include <string.h>

#include "service.h"

/* Old seq -> new seq, as runs where both advance by one. Both sequences
 * increase, so there is a run per gap in either of them (typically a
 * handful), not an entry per event. */
typedef struct seq_run {
    int64_t old_start, new_start, len;
} seq_run;

typedef struct mig {
    pt_conn *src;  /* holds the source's writer lock; runs the scans */
    pt_conn *side; /* source reads made from inside a scan of src */
    pt_conn *dst;  /* the one destination transaction */
    pt_migrate_stats *st;
    pt_result rc;
    pt_err *err;
    uint32_t *tenants;
    size_t ntenants, cap_tenants;
    seq_run *runs;
    size_t nruns, cap_runs;
    int64_t last_old, last_new;
    uint64_t found; /* emptiness check */
} mig;

/* Records a failure inside a callback; returns 1 to stop the scan. */
static int stop_with(mig *m, pt_result rc)
{
    m->rc = rc;
    return 1;
}

/* A destination write failed: say so, keeping the backend's reason. */
static pt_result dst_fail(mig *m, pt_result rc, const char *what)
{
    char why[PT_ERR_DETAIL_MAX], field[PT_ERR_FIELD_MAX];
    snprintf(why, sizeof why, "%s", m->err->detail[0] ? m->err->detail : pt_result_str(rc));
    snprintf(field, sizeof field, "%s", m->err->field);
    pt_err_set(m->err, rc, field, "cannot write %s to the destination: %s", what, why);
    return rc;
}

/* After a scan: its own failure, else the first failure of a callback. */
static pt_result scanned(mig *m, pt_result rc, const char *what)
{
    if (rc != PT_OK)
        return pt_err_set(m->err, rc, "from", "cannot read %s from the source: %s", what,
                          pt_result_str(rc));
    return m->rc;
}

/* ---- emptiness of the destination ---- */

static int found_tenant(void *ctx, const pt_tenant_rec *r)
{
    (void)r;
    ((mig *)ctx)->found++;
    return 0;
}

static int found_subject(void *ctx, const pt_subject_rec *r)
{
    (void)r;
    ((mig *)ctx)->found++;
    return 1;
}

static int found_head(void *ctx, const pt_log_head_rec *r)
{
    (void)r;
    ((mig *)ctx)->found++;
    return 1;
}

static pt_result check_empty(mig *m)
{
    int64_t max_seq = 0;
    pt_result rc = pt_db_tenant_list(m->dst, found_tenant, m);
    if (rc == PT_OK && !m->found) rc = pt_db_subject_scan(m->dst, 0, found_subject, m);
    if (rc == PT_OK && !m->found) rc = pt_db_event_max_seq(m->dst, &max_seq);
    if (rc == PT_OK && !m->found && !max_seq) rc = pt_db_log_head_list(m->dst, found_head, m);
    if (rc != PT_OK)
        return pt_err_set(m->err, rc, "to", "cannot read the destination database: %s",
                          pt_result_str(rc));
    if (m->found || max_seq)
        return pt_err_set(m->err, PT_ERR_CONFLICT, "to",
                          "the destination database is not empty (it holds patto tenants or "
                          "data already); migrate only into a new, empty database");
    return PT_OK;
}

/* ---- catalog ---- */

static int copy_tenant(void *ctx, const pt_tenant_rec *r)
{
    mig *m = ctx;
    pt_tenant_rec t = *r;
    if (!t.id) {
        pt_err_set(m->err, PT_ERR_INTERNAL, "from", "the source holds a tenant with id 0");
        return stop_with(m, PT_ERR_INTERNAL);
    }
    pt_result rc = pt_db_tenant_insert(m->dst, &t, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a tenant"));
    if (t.id != r->id) {
        pt_err_set(m->err, PT_ERR_INTERNAL, "to", "the destination did not keep a tenant's id");
        return stop_with(m, PT_ERR_INTERNAL);
    }
    if (m->ntenants == m->cap_tenants) {
        size_t nc = m->cap_tenants ? m->cap_tenants * 2 : 16;
        uint32_t *p = realloc(m->tenants, nc * sizeof *p);
        if (!p) return stop_with(m, pt_err_set(m->err, PT_ERR_NOMEM, "", "out of memory"));
        m->tenants = p;
        m->cap_tenants = nc;
    }
    m->tenants[m->ntenants++] = r->id;
    m->st->tenants++;
    return 0;
}

static int copy_key(void *ctx, const pt_key_rec *r)
{
    mig *m = ctx;
    pt_result rc = pt_db_key_insert(m->dst, r, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "an API key"));
    m->st->keys++;
    return 0;
}

static int copy_purpose(void *ctx, const pt_purpose_rec *r)
{
    mig *m = ctx;
    pt_result rc = pt_db_purpose_put(m->dst, r, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a purpose"));
    m->st->purposes++;
    return 0;
}

/* Listings carry no text: it is read on the side connection. */
static int copy_notice(void *ctx, const pt_notice_rec *r)
{
    mig *m = ctx;
    pt_notice_rec n;
    memset(&n, 0, sizeof n);
    pt_result rc = pt_db_notice_get(m->side, r->tenant, r->notice, r->version, &n);
    if (rc != PT_OK) {
        pt_err_set(m->err, rc, "from", "cannot read a notice text from the source: %s",
                   pt_result_str(rc));
        pt_notice_rec_clear(&n);
        return stop_with(m, rc);
    }
    rc = pt_db_notice_insert(m->dst, &n, m->err);
    pt_notice_rec_clear(&n);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a notice"));
    m->st->notices++;
    return 0;
}

/* ---- subjects and identifiers ---- */

static int copy_ident(void *ctx, const pt_ident_rec *r)
{
    mig *m = ctx;
    pt_result rc = pt_db_ident_insert(m->dst, r, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "an identifier"));
    m->st->identifiers++;
    return 0;
}

/* The scan carries no profile: the whole record is read on the side
 * connection, then its identifiers. */
static int copy_subject(void *ctx, const pt_subject_rec *r)
{
    mig *m = ctx;
    pt_subject_rec s;
    memset(&s, 0, sizeof s);
    pt_result rc = pt_db_subject_get(m->side, r->id, &s);
    if (rc != PT_OK) {
        pt_err_set(m->err, rc, "from", "cannot read a subject from the source: %s",
                   pt_result_str(rc));
        pt_subject_rec_clear(&s);
        return stop_with(m, rc);
    }
    s.row = 0;
    rc = pt_db_subject_insert(m->dst, &s, m->err);
    pt_subject_rec_clear(&s);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a subject"));
    m->st->subjects++;
    rc = scanned(m, pt_db_ident_list(m->side, r->id, copy_ident, m), "identifiers");
    return rc != PT_OK ? stop_with(m, rc) : 0;
}

/* ---- events and states ---- */

static int seq_map_add(mig *m, int64_t old_seq, int64_t new_seq)
{
    if (old_seq <= m->last_old || new_seq <= m->last_new) {
        pt_err_set(m->err, PT_ERR_INTERNAL, "",
                   "event order not kept (source seq %lld, destination seq %lld)",
                   (long long)old_seq, (long long)new_seq);
        return -1;
    }
    m->last_old = old_seq;
    m->last_new = new_seq;
    if (m->nruns) {
        seq_run *l = &m->runs[m->nruns - 1];
        if (l->old_start + l->len == old_seq && l->new_start + l->len == new_seq) {
            l->len++;
            return 0;
        }
    }
    if (m->nruns == m->cap_runs) {
        size_t nc = m->cap_runs ? m->cap_runs * 2 : 64;
        seq_run *p = realloc(m->runs, nc * sizeof *p);
        if (!p) {
            pt_err_set(m->err, PT_ERR_NOMEM, "", "out of memory");
            return -1;
        }
        m->runs = p;
        m->cap_runs = nc;
    }
    m->runs[m->nruns++] = (seq_run){old_seq, new_seq, 1};
    return 0;
}

/* The new seq of the last copied event whose old seq is <= old_seq; 0 if
 * none. Since the order is kept, the events at or below a mark in the
 * source are exactly those at or below the mapped mark in the destination. */
static int64_t seq_map_floor(const mig *m, int64_t old_seq)
{
    size_t lo = 0, hi = m->nruns; /* first run with old_start > old_seq */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->runs[mid].old_start <= old_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return 0;
    const seq_run *r = &m->runs[lo - 1];
    int64_t off = old_seq - r->old_start;
    return r->new_start + (off < r->len ? off : r->len - 1);
}

/* 0 when old_seq is not the seq of a copied event. */
static int64_t seq_map(const mig *m, int64_t old_seq)
{
    size_t lo = 0, hi = m->nruns; /* first run with old_start > old_seq */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->runs[mid].old_start <= old_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return 0;
    const seq_run *r = &m->runs[lo - 1];
    if (old_seq >= r->old_start + r->len) return 0;
    return r->new_start + (old_seq - r->old_start);
}

static int copy_event(void *ctx, const pt_event_rec *r)
{
    mig *m = ctx;
    pt_event_rec e = *r; /* evidence stays borrowed from the scan */
    e.seq = 0;
    pt_result rc = pt_db_event_insert(m->dst, &e, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "an event"));
    if (seq_map_add(m, r->seq, e.seq) != 0) return stop_with(m, m->err->code);
    m->st->events++;
    return 0;
}

static int copy_state(void *ctx, const pt_state_rec *r)
{
    mig *m = ctx;
    pt_state_rec s = *r;
    s.event_seq = seq_map(m, r->event_seq);
    if (!s.event_seq) {
        pt_err_set(m->err, PT_ERR_INTERNAL, "from",
                   "a consent state refers to event seq %lld, which the source does not hold",
                   (long long)r->event_seq);
        return stop_with(m, PT_ERR_INTERNAL);
    }
    pt_result rc = pt_db_state_put(m->dst, &s, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a consent state"));
    m->st->states++;
    return 0;
}

/* Merged ids (identity.c): their seqs are the destination's own, in order. */
static int copy_alias(void *ctx, const pt_alias_rec *r)
{
    mig *m = ctx;
    pt_alias_rec a = *r;
    a.seq = 0;
    pt_result rc = pt_db_alias_insert(m->dst, &a, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a merged subject"));
    return 0;
}

/* ---- the proof log, verbatim ---- */

static int copy_leaf(void *ctx, const pt_leaf_rec *r)
{
    mig *m = ctx;
    pt_result rc = pt_db_log_leaf_insert(m->dst, r, m->err); /* data borrowed from the scan */
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a proof log leaf"));
    m->st->log_leaves++;
    return 0;
}

static int copy_node(void *ctx, uint32_t tenant, unsigned level, uint64_t idx,
                     const uint8_t hash[PT_LOG_HASH])
{
    mig *m = ctx;
    pt_result rc = pt_db_log_node_put(m->dst, tenant, level, idx, hash, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a proof log node"));
    m->st->log_nodes++;
    return 0;
}

static int copy_head(void *ctx, const pt_log_head_rec *r)
{
    mig *m = ctx;
    pt_log_head_rec *h = malloc(sizeof *h); /* 2 KiB */
    if (!h) return stop_with(m, pt_err_set(m->err, PT_ERR_NOMEM, "", "out of memory"));
    *h = *r;
    /* the head's mark of logged events, in the destination's seqs */
    h->event_seq = r->event_seq > 0 ? seq_map_floor(m, r->event_seq) : r->event_seq;
    pt_result rc = pt_db_log_head_put(m->dst, h, m->err);
    free(h);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a proof log head"));
    m->st->log_heads++;
    return 0;
}

static int copy_log_key(void *ctx, const char *verifier, int64_t created_at)
{
    mig *m = ctx;
    pt_result rc = pt_db_log_key_add(m->dst, verifier, created_at, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "a proof log key"));
    m->st->log_keys++;
    return 0;
}

static pt_result copy_log(mig *m)
{
    pt_result rc = PT_OK;
    for (size_t i = 0; rc == PT_OK && i < m->ntenants; i++) {
        rc = scanned(m, pt_db_log_leaf_list(m->src, m->tenants[i], 0, UINT64_MAX, copy_leaf, m),
                     "proof log leaves");
        if (rc == PT_OK)
            rc = scanned(m, pt_db_log_node_list(m->src, m->tenants[i], copy_node, m),
                         "proof log nodes");
    }
    if (rc == PT_OK) rc = scanned(m, pt_db_log_head_list(m->src, copy_head, m), "proof log heads");
    if (rc == PT_OK) rc = scanned(m, pt_db_log_key_list(m->src, copy_log_key, m), "proof log keys");
    return rc;
}

static int copy_stat(void *ctx, const pt_stat_rec *r)
{
    mig *m = ctx;
    pt_result rc = pt_db_stats_insert(m->dst, r, m->err);
    if (rc != PT_OK) return stop_with(m, dst_fail(m, rc, "statistics"));
    m->st->stats++;
    return 0;
}

/* ---- the whole copy ---- */

static pt_result copy_all(mig *m, const char *fingerprint)
{
    pt_result rc = check_empty(m);
    if (rc != PT_OK) return rc;
    rc = pt_db_meta_set(m->dst, "keyring_fingerprint", fingerprint);
    if (rc != PT_OK) return dst_fail(m, rc, "the keyring fingerprint");

    rc = scanned(m, pt_db_tenant_list(m->src, copy_tenant, m), "tenants");
    if (rc == PT_OK) rc = scanned(m, pt_db_key_list(m->src, 0, copy_key, m), "API keys");
    if (rc == PT_OK) rc = scanned(m, pt_db_purpose_list(m->src, 0, copy_purpose, m), "purposes");
    for (size_t i = 0; rc == PT_OK && i < m->ntenants; i++)
        rc = scanned(m, pt_db_notice_list(m->src, m->tenants[i], copy_notice, m), "notices");
    if (rc == PT_OK) rc = scanned(m, pt_db_subject_scan(m->src, 0, copy_subject, m), "subjects");
    if (rc == PT_OK)
        rc = scanned(m, pt_db_event_list_tenant(m->src, 0, 0, 0, copy_event, m), "events");
    if (rc == PT_OK) rc = scanned(m, pt_db_state_scan(m->src, 0, copy_state, m), "consent states");
    if (rc == PT_OK) rc = scanned(m, pt_db_alias_scan(m->src, 0, copy_alias, m), "merged subjects");
    if (rc == PT_OK) rc = copy_log(m);
    for (size_t i = 0; rc == PT_OK && i < m->ntenants; i++)
        rc = scanned(m, pt_db_stats_list(m->src, m->tenants[i], copy_stat, m), "statistics");
    return rc;
}

pt_result pt_migrate(const char *from, const char *to, const pt_keyring *kr, pt_migrate_stats *st,
                     pt_err *err)
{
    pt_err local;
    if (!err) err = &local;
    pt_err_clear(err);
    pt_migrate_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    if (!from || !*from) return pt_err_set(err, PT_ERR_INVALID, "from", "no source database given");
    if (!to || !*to)
        return pt_err_set(err, PT_ERR_INVALID, "to", "no destination database given");
    if (!kr) return pt_err_set(err, PT_ERR_INVALID, "keyring", "no keyring given");
    if (strcmp(from, to) == 0)
        return pt_err_set(err, PT_ERR_INVALID, "to", "the source and the destination are the same");

    mig m = {.st = st, .rc = PT_OK, .err = err};
    pt_store *src_store = NULL, *dst_store = NULL;
    bool src_tx = false, dst_tx = false;
    char fp[PT_SHA256_HEX], stored[PT_SHA256_HEX + 8];

    pt_result rc = pt_store_open(from, 0, &src_store, err);
    if (rc != PT_OK) goto out;
    rc = pt_conn_open(src_store, &m.src, err);
    if (rc == PT_OK) rc = pt_conn_open(src_store, &m.side, err);
    if (rc != PT_OK) goto out;

    /* The keyring must be the source's, checked before the destination is
     * even opened (and so, for SQLite, created). A source never opened by
     * a service has no fingerprint yet: it gets this keyring's, as
     * pt_app_open would give it. */
    pt_keyring_fingerprint(kr, fp);
    rc = pt_db_meta_get(m.src, "keyring_fingerprint", stored, sizeof stored);
    if (rc == PT_OK && strcmp(stored, fp) != 0) {
        rc = pt_err_set(err, PT_ERR_INVALID, "keyring",
                        "this keyring does not belong to the source database; give the keyring "
                        "it was created with (--keyring or PATTO_KEYRING)");
        goto out;
    }
    if (rc != PT_OK && rc != PT_ERR_NOT_FOUND) {
        pt_err_set(err, rc, "from", "cannot read the source database: %s", pt_result_str(rc));
        goto out;
    }

    /* A consistent cut: no patto writer commits to the source meanwhile. */
    rc = pt_tx_begin(m.src, err);
    if (rc != PT_OK) {
        char why[PT_ERR_DETAIL_MAX];
        snprintf(why, sizeof why, "%s", err->detail);
        pt_err_set(err, rc, "from",
                   "cannot lock the source against writes (is a server writing to it?): %s", why);
        goto out;
    }
    src_tx = true;

    rc = pt_store_open(to, 1, &dst_store, err);
    if (rc == PT_OK) rc = pt_conn_open(dst_store, &m.dst, err);
    if (rc == PT_OK) {
        pt_conn_tune(m.dst, PT_CONN_BULK); /* one long transaction, like an import */
        rc = pt_tx_begin(m.dst, err);
    }
    if (rc != PT_OK) {
        if (!err->field[0]) snprintf(err->field, sizeof err->field, "to");
        goto out;
    }
    dst_tx = true;

    rc = copy_all(&m, fp);
    if (rc == PT_OK) rc = pt_tx_commit(m.dst, err);
    if (rc == PT_OK) dst_tx = false; /* else rolled back below, as after any failed commit */

out:
    if (dst_tx) pt_tx_rollback(m.dst);
    if (src_tx) pt_tx_rollback(m.src);
    pt_conn_close(m.dst);
    pt_conn_close(m.side);
    pt_conn_close(m.src);
    pt_store_close(dst_store);
    pt_store_close(src_store);
    free(m.tenants);
    free(m.runs);
    if (rc != PT_OK) memset(st, 0, sizeof *st);
    return rc;
}
