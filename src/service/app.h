/* app.h - the service layer's shared handle and its write path.
 *
 * pt_app owns: the store, the keyring, the node's in-memory caches (consent
 * state, catalog, API keys), the pool of read connections, and - when
 * serving - the writer thread and the sync thread.
 *
 * Writes. Every change to the database is a pt_op: a function that runs on
 * the single writer connection inside a savepoint of a group commit. The
 * writer takes every op queued, runs them in one transaction, commits once
 * (one fsync for the batch), applies the ops' cache changes, then reports
 * each op done. So an op is acknowledged only once durable, concurrent
 * requests share an fsync, and a failing op is rolled back alone. Without
 * the writer thread (the CLI) pt_app_write runs the same op inline.
 *
 * A failed fsync (PT_ERR_STORAGE_FATAL) fails the whole batch and sets
 * pt_app_fatal(): the server stops rather than pretend.
 *
 * Reads go to a pooled connection (pt_app_reader) or, for `check`, to the
 * caches only. */
#ifndef PT_APP_H
#define PT_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/keyring.h"
#include "core/result.h"
#include "store/store.h"

typedef struct pt_app pt_app;
typedef struct pt_cache pt_cache;
typedef struct pt_wctx pt_wctx;

typedef struct pt_app_config {
    const char *db_url;
    const pt_keyring *keyring; /* copied */
    bool create;               /* allow creating the database (init) */
    bool serve;                /* writer thread, sync thread, caches */
    unsigned readers;          /* read connections in the pool (>= 1) */
    const char *log_name;      /* proof log name for a new database; NULL = "patto" */
    const char *erasure_journal; /* file every erasure is appended to (erasure.c); NULL = none */
} pt_app_config;

pt_result pt_app_open(const pt_app_config *cfg, pt_app **out, pt_err *err);
/* Drains the writer, stops threads, closes everything. Accepts NULL. */
void pt_app_close(pt_app *app);

int64_t pt_now_ms(void);
/* A fresh id that sorts by creation: 48 bits of the current time in ms,
 * a 16-bit counter within the millisecond, then 64 random bits. Opaque,
 * unguessable, never derived from anything about a person, and appended
 * at the end of every index it keys instead of dirtying a random page. */
void pt_ordered_id(uint8_t id[PT_ID_BYTES]);
bool pt_app_fatal(pt_app *app);
pt_store *pt_app_store(pt_app *app);
const pt_keyring *pt_app_keyring(pt_app *app);
pt_cache *pt_app_cache(pt_app *app); /* NULL when not serving */
typedef struct pt_log pt_log;
pt_log *pt_app_log(pt_app *app);
/* The erasure journal's path (pt_app_config), or NULL. */
const char *pt_app_erasure_journal(pt_app *app);

/* Borrow a read connection; never NULL unless the store is unavailable. */
pt_conn *pt_app_reader(pt_app *app, pt_err *err);
void pt_app_reader_release(pt_app *app, pt_conn *c);

/* ---- writes ---- */
typedef pt_result (*pt_write_fn)(pt_wctx *w, void *arg, pt_err *err);

typedef struct pt_op {
    pt_write_fn fn;
    void *arg;
    void (*free_arg)(void *arg); /* may be NULL; called by pt_op_clear */
    json_t *out;                 /* set by fn on success; owned by the op */
    int status;                  /* HTTP status for success, set by prepare (200/201) */
    pt_result rc;
    pt_err err;
    /* async completion: called on the writer thread once rc is final */
    void (*done)(struct pt_op *op);
    void *done_ctx;
    /* writer internals */
    struct pt_op *next;
    size_t delta_mark, log_mark;
} pt_op;

void pt_op_clear(pt_op *op);

/* Runs op to completion (durable) and returns op->rc; op->out holds the result. */
pt_result pt_app_write(pt_app *app, pt_op *op);
/* Queues op; op->done(op) is called from the writer thread when durable or
 * failed. Only while serving. */
void pt_app_submit(pt_app *app, pt_op *op);

/* Inside a write fn. */
pt_conn *pt_wctx_conn(pt_wctx *w);
pt_app *pt_wctx_app(pt_wctx *w);
int64_t pt_wctx_now(pt_wctx *w);
/* Cache changes, applied only after the batch commits. */
void pt_wctx_subject_added(pt_wctx *w, const pt_subject_rec *s);
void pt_wctx_state_set(pt_wctx *w, const pt_state_rec *r);
/* A merged id now answers as its survivor (identity.c). */
void pt_wctx_alias_added(pt_wctx *w, const pt_alias_rec *a);
void pt_wctx_reload_catalog(pt_wctx *w);
void pt_wctx_reload_keys(pt_wctx *w);
/* The op deleted personal data: once the batch has committed, and before
 * any op of it is answered, the writer asks the store to drop the old
 * copies of the pages (pt_db_scrub: SQLite's WAL checkpoint with
 * truncate). A scrub that fails (readers held it off) is retried after
 * the next commit and reported on stderr. */
void pt_wctx_scrub(pt_wctx *w);
/* Appends a leaf to the tenant's proof log in this transaction (leaf is
 * copied). receipt, if not NULL, is a JSON object owned by the op's result:
 * once the batch's checkpoint is signed it gets its "proof" member. The
 * leaf index is assigned in commit order when the batch is sealed. */
/* The tenant's name, also for a tenant created earlier in this batch. */
pt_result pt_wctx_tenant_name(pt_wctx *w, uint32_t tenant, char name[PT_TENANT_NAME_MAX + 1]);
pt_result pt_wctx_log(pt_wctx *w, uint32_t tenant, const uint8_t ref[PT_ID_BYTES],
                      int64_t event_seq, const void *leaf, size_t len, json_t *receipt,
                      pt_err *err);

/* ---- bulk writes (import) ----
 * Runs fn(w, arg) inside one transaction of its own on a dedicated write
 * connection, outside the writer queue: all or nothing. */
pt_result pt_app_bulk(pt_app *app, pt_write_fn fn, void *arg, pt_err *err);

#endif
