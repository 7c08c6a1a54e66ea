/* The proof log's storage ops (store.h, "the proof log") on every backend:
 * SQLite always; PostgreSQL too when PATTO_TEST_PG names a server's base
 * url (scripts/pg.sh start prints one), each test in a database of its own
 * created and dropped here. The same assertions run on both, so that the
 * backends keep one contract. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store_backends.h"

/* Every test runs on each backend (store_backends.c). */
#define each_backend(fn) store_each_backend(fn, "store", 2)

/* ---- helpers ----------------------------------------------------------- */

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
}

/* Leaf i of tenant t: ref and hash derived from (t, i); data "leaf-t-i". */
typedef struct leaf_buf {
    pt_leaf_rec r;
    char data[64];
} leaf_buf;

static const pt_leaf_rec *mk_leaf(leaf_buf *b, uint32_t t, uint64_t i)
{
    memset(b, 0, sizeof *b);
    b->r.tenant = t;
    b->r.idx = i;
    fill(b->r.ref, sizeof b->r.ref, t * 1000u + (unsigned)i);
    fill(b->r.hash, sizeof b->r.hash, t * 5000u + (unsigned)i);
    int n = snprintf(b->data, sizeof b->data, "{\"leaf\":\"%u-%llu\"}", t, (unsigned long long)i);
    b->r.data = (const uint8_t *)b->data;
    b->r.len = (size_t)n;
    return &b->r;
}

static void insert_leaves(backend *b, uint32_t t, uint64_t n)
{
    pt_err err;
    leaf_buf lb;
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(pt_db_log_leaf_insert(b->c, mk_leaf(&lb, t, i), &err), PT_OK,
                     "%s: leaf %llu: %s", b->name, (unsigned long long)i, err.detail);
}

typedef struct seen {
    uint64_t n;
    uint64_t idx[64];
    uint32_t tenant[64];
    bool data_ok;
    int stop_after; /* 0: never stop */
} seen;

static int on_leaf(void *ctx, const pt_leaf_rec *r)
{
    seen *s = ctx;
    leaf_buf want;
    mk_leaf(&want, r->tenant, r->idx);
    if (r->len != want.r.len || memcmp(r->data, want.r.data, r->len) != 0 ||
        memcmp(r->ref, want.r.ref, sizeof r->ref) != 0 ||
        memcmp(r->hash, want.r.hash, sizeof r->hash) != 0)
        s->data_ok = false;
    if (s->n < 64) {
        s->idx[s->n] = r->idx;
        s->tenant[s->n] = r->tenant;
    }
    s->n++;
    return s->stop_after && s->n >= (uint64_t)s->stop_after;
}

/* ---- leaves ------------------------------------------------------------ */

static void leaves_conflicts(backend *b)
{
    pt_err err;
    leaf_buf lb;
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK, "%s: %s", b->name, err.detail);
    insert_leaves(b, 1, 3);
    /* same (tenant, idx), another ref */
    mk_leaf(&lb, 1, 9);
    lb.r.idx = 2;
    cr_assert_eq(pt_db_log_leaf_insert(b->c, &lb.r, &err), PT_ERR_CONFLICT, "%s", b->name);
    /* same (tenant, ref), another idx */
    mk_leaf(&lb, 1, 1);
    lb.r.idx = 3;
    cr_assert_eq(pt_db_log_leaf_insert(b->c, &lb.r, &err), PT_ERR_CONFLICT, "%s", b->name);
    /* the same ref in another tenant is fine, and the transaction is still usable */
    mk_leaf(&lb, 1, 1);
    lb.r.tenant = 2;
    lb.r.idx = 0;
    cr_assert_eq(pt_db_log_leaf_insert(b->c, &lb.r, &err), PT_OK, "%s: %s", b->name, err.detail);
    insert_leaves(b, 1, 0);
    cr_assert_eq(pt_db_log_leaf_insert(b->c, mk_leaf(&lb, 1, 3), &err), PT_OK, "%s: %s", b->name,
                 err.detail);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK, "%s: commit after conflicts: %s", b->name,
                 err.detail);
    seen s = {.data_ok = true};
    cr_assert_eq(pt_db_log_leaf_list(b->c, 1, 0, UINT64_MAX, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 4, "%s: %llu leaves", b->name, (unsigned long long)s.n);
    cr_assert(s.data_ok, "%s", b->name);
}

Test(store_log, leaf_insert_conflicts)
{
    each_backend(leaves_conflicts);
}

static void leaves_rollback(backend *b)
{
    pt_err err;
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    insert_leaves(b, 1, 5);
    pt_tx_rollback(b->c);
    seen s = {.data_ok = true};
    cr_assert_eq(pt_db_log_leaf_list(b->c, 1, 0, UINT64_MAX, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 0, "%s: rolled-back leaves are there", b->name);
    uint8_t h[PT_LOG_HASH];
    cr_assert_eq(pt_db_log_node_get(b->c, 1, 0, 0, h), PT_ERR_NOT_FOUND, "%s", b->name);
}

Test(store_log, rollback_discards)
{
    each_backend(leaves_rollback);
}

static void leaves_list(backend *b)
{
    insert_leaves(b, 1, 10);
    insert_leaves(b, 2, 3);
    seen s = {.data_ok = true};
    cr_assert_eq(pt_db_log_leaf_list(b->c, 1, 3, 7, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 4, "%s", b->name);
    for (uint64_t i = 0; i < 4; i++) {
        cr_assert_eq(s.idx[i], 3 + i, "%s: leaf %llu is %llu", b->name, (unsigned long long)i,
                     (unsigned long long)s.idx[i]);
        cr_assert_eq(s.tenant[i], 1);
    }
    cr_assert(s.data_ok, "%s: leaf bytes differ", b->name);

    memset(&s, 0, sizeof s);
    s.data_ok = true;
    cr_assert_eq(pt_db_log_leaf_list(b->c, 1, 8, UINT64_MAX, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 2, "%s: to the end", b->name);
    memset(&s, 0, sizeof s);
    cr_assert_eq(pt_db_log_leaf_list(b->c, 1, 5, 5, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 0, "%s: empty range", b->name);
    cr_assert_eq(pt_db_log_leaf_list(b->c, 1, UINT64_MAX - 1, UINT64_MAX, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 0, "%s: past the end", b->name);
    cr_assert_eq(pt_db_log_leaf_list(b->c, 3, 0, UINT64_MAX, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 0, "%s: no such tenant", b->name);

    /* a callback that stops early; the connection is usable afterwards */
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    cr_assert_eq(pt_db_log_leaf_list(b->c, 1, 0, UINT64_MAX, on_leaf, &s), PT_OK);
    cr_assert_eq(s.n, 2, "%s: stop", b->name);
    uint8_t h[PT_LOG_HASH];
    cr_assert_eq(pt_db_log_node_get(b->c, 2, 0, 2, h), PT_OK, "%s", b->name);
}

Test(store_log, leaf_list)
{
    each_backend(leaves_list);
}

struct by_ref {
    backend *b;
    int calls;
    uint64_t idx;
    bool data_ok;
    pt_result nested;
};

/* Reads the store again from the callback, on the same connection. */
static int on_ref(void *ctx, const pt_leaf_rec *r)
{
    struct by_ref *a = ctx;
    leaf_buf want;
    mk_leaf(&want, r->tenant, r->idx);
    a->calls++;
    a->idx = r->idx;
    a->data_ok = r->len == want.r.len && memcmp(r->data, want.r.data, r->len) == 0 &&
                 memcmp(r->hash, want.r.hash, PT_LOG_HASH) == 0;
    uint8_t h[PT_LOG_HASH];
    a->nested = pt_db_log_node_get(a->b->c, r->tenant, 0, r->idx, h);
    return 0;
}

static void leaves_by_ref(backend *b)
{
    pt_err err;
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    insert_leaves(b, 1, 6);
    insert_leaves(b, 2, 2);
    leaf_buf lb;
    mk_leaf(&lb, 1, 4);
    struct by_ref a = {.b = b};
    cr_assert_eq(pt_db_log_leaf_by_ref(b->c, 1, lb.r.ref, on_ref, &a), PT_OK, "%s", b->name);
    cr_assert_eq(a.calls, 1, "%s", b->name);
    cr_assert_eq(a.idx, 4, "%s", b->name);
    cr_assert(a.data_ok, "%s", b->name);
    cr_assert_eq(a.nested, PT_OK, "%s: a store call from the callback in a transaction", b->name);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK, "%s: %s", b->name, err.detail);

    /* tenant 1's ref is not tenant 2's */
    memset(&a, 0, sizeof a);
    a.b = b;
    mk_leaf(&lb, 1, 5);
    cr_assert_eq(pt_db_log_leaf_by_ref(b->c, 2, lb.r.ref, on_ref, &a), PT_ERR_NOT_FOUND);
    uint8_t none[PT_ID_BYTES] = {0};
    cr_assert_eq(pt_db_log_leaf_by_ref(b->c, 1, none, on_ref, &a), PT_ERR_NOT_FOUND);
    cr_assert_eq(a.calls, 0, "%s", b->name);
}

Test(store_log, leaf_by_ref)
{
    each_backend(leaves_by_ref);
}

/* ---- nodes ------------------------------------------------------------- */

struct nodes_seen {
    int n;
    uint32_t tenant[16];
    unsigned level[16];
    uint64_t idx[16];
    uint8_t first[PT_LOG_HASH];
};

static int on_node(void *ctx, uint32_t tenant, unsigned level, uint64_t idx,
                   const uint8_t hash[PT_LOG_HASH])
{
    struct nodes_seen *s = ctx;
    if (s->n == 0) memcpy(s->first, hash, PT_LOG_HASH);
    if (s->n < 16) {
        s->tenant[s->n] = tenant;
        s->level[s->n] = level;
        s->idx[s->n] = idx;
    }
    s->n++;
    return 0;
}

static void nodes(backend *b)
{
    pt_err err;
    insert_leaves(b, 1, 4);
    uint8_t h[PT_LOG_HASH], want[PT_LOG_HASH], other[PT_LOG_HASH];
    leaf_buf lb;

    /* level 0 is the leaf's hash */
    cr_assert_eq(pt_db_log_node_get(b->c, 1, 0, 3, h), PT_OK, "%s", b->name);
    mk_leaf(&lb, 1, 3);
    cr_assert_arr_eq(h, lb.r.hash, PT_LOG_HASH, "%s", b->name);
    cr_assert_eq(pt_db_log_node_get(b->c, 1, 0, 4, h), PT_ERR_NOT_FOUND, "%s", b->name);
    cr_assert_eq(pt_db_log_node_get(b->c, 1, 0, UINT64_MAX, h), PT_ERR_NOT_FOUND, "%s", b->name);
    /* put refuses level 0 (store.c) */
    fill(want, sizeof want, 77);
    cr_assert_eq(pt_db_log_node_put(b->c, 1, 0, 0, want, &err), PT_ERR_INVALID, "%s", b->name);

    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_log_node_put(b->c, 1, 2, 0, want, &err), PT_OK, "%s: %s", b->name,
                 err.detail);
    fill(h, sizeof h, 78);
    cr_assert_eq(pt_db_log_node_put(b->c, 1, 1, 1, h, &err), PT_OK, "%s", b->name);
    fill(h, sizeof h, 79);
    cr_assert_eq(pt_db_log_node_put(b->c, 1, 1, 0, h, &err), PT_OK, "%s", b->name);
    /* a retried append writes the same hash again */
    cr_assert_eq(pt_db_log_node_put(b->c, 1, 2, 0, want, &err), PT_OK, "%s: %s", b->name,
                 err.detail);
    /* another hash for the same subtree never replaces the first: both
     * backends refuse it (a fork) and leave the transaction usable */
    fill(other, sizeof other, 80);
    pt_result rc = pt_db_log_node_put(b->c, 1, 2, 0, other, &err);
    cr_assert_eq(rc, PT_ERR_CONFLICT, "%s: %s", b->name, pt_result_str(rc));
    cr_assert_eq(pt_db_log_node_put(b->c, 2, 2, 0, other, &err), PT_OK, "%s", b->name);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK, "%s: %s", b->name, err.detail);

    cr_assert_eq(pt_db_log_node_get(b->c, 1, 2, 0, h), PT_OK, "%s", b->name);
    cr_assert_arr_eq(h, want, PT_LOG_HASH, "%s", b->name);
    cr_assert_eq(pt_db_log_node_get(b->c, 2, 2, 0, h), PT_OK, "%s", b->name);
    cr_assert_arr_eq(h, other, PT_LOG_HASH, "%s", b->name);
    cr_assert_eq(pt_db_log_node_get(b->c, 1, 2, 1, h), PT_ERR_NOT_FOUND, "%s", b->name);
    cr_assert_eq(pt_db_log_node_get(b->c, 1, 3, 0, h), PT_ERR_NOT_FOUND, "%s", b->name);
    cr_assert_eq(pt_db_log_node_get(b->c, 3, 1, 0, h), PT_ERR_NOT_FOUND, "%s", b->name);

    /* listed by level then idx, one tenant at a time; leaves are not nodes */
    struct nodes_seen s = {0};
    cr_assert_eq(pt_db_log_node_list(b->c, 1, on_node, &s), PT_OK, "%s", b->name);
    cr_assert_eq(s.n, 3, "%s: %d nodes", b->name, s.n);
    cr_assert(s.level[0] == 1 && s.idx[0] == 0, "%s", b->name);
    cr_assert(s.level[1] == 1 && s.idx[1] == 1, "%s", b->name);
    cr_assert(s.level[2] == 2 && s.idx[2] == 0, "%s", b->name);
    cr_assert(s.tenant[0] == 1 && s.tenant[2] == 1, "%s", b->name);
    fill(h, sizeof h, 79);
    cr_assert_arr_eq(s.first, h, PT_LOG_HASH, "%s", b->name);
    memset(&s, 0, sizeof s);
    cr_assert_eq(pt_db_log_node_list(b->c, 3, on_node, &s), PT_OK, "%s", b->name);
    cr_assert_eq(s.n, 0, "%s", b->name);
}

Test(store_log, nodes)
{
    each_backend(nodes);
}

/* ---- heads ------------------------------------------------------------- */

struct heads_seen {
    int n;
    uint32_t tenant[8];
    uint64_t size[8];
    char last_checkpoint[PT_CHECKPOINT_MAX];
};

static int on_head(void *ctx, const pt_log_head_rec *r)
{
    struct heads_seen *s = ctx;
    if (s->n < 8) {
        s->tenant[s->n] = r->tenant;
        s->size[s->n] = r->size;
    }
    snprintf(s->last_checkpoint, sizeof s->last_checkpoint, "%s", r->checkpoint);
    s->n++;
    return 0;
}

static pt_log_head_rec *mk_head(uint32_t t, uint64_t size)
{
    static pt_log_head_rec h;
    memset(&h, 0, sizeof h);
    h.tenant = t;
    h.size = size;
    fill(h.root, sizeof h.root, (unsigned)(t * 100 + size));
    h.event_seq = (int64_t)(size * 10);
    snprintf(h.checkpoint, sizeof h.checkpoint,
             "patto/t%u\n%llu\nroot\xe2\x80\x94\n\n\xe2\x80\x94 patto sig\n", t,
             (unsigned long long)size);
    h.signed_at = 1700000000000 + (int64_t)size;
    return &h;
}

static void heads(backend *b)
{
    pt_err err;
    pt_log_head_rec got;
    cr_assert_eq(pt_db_log_head_get(b->c, 1, &got), PT_ERR_NOT_FOUND, "%s", b->name);
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_log_head_put(b->c, mk_head(3, 1), &err), PT_OK, "%s: %s", b->name,
                 err.detail);
    cr_assert_eq(pt_db_log_head_put(b->c, mk_head(1, 5), &err), PT_OK, "%s", b->name);
    cr_assert_eq(pt_db_log_head_put(b->c, mk_head(1, 7), &err), PT_OK, "%s: upsert", b->name);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK, "%s: %s", b->name, err.detail);

    cr_assert_eq(pt_db_log_head_get(b->c, 1, &got), PT_OK, "%s", b->name);
    pt_log_head_rec *want = mk_head(1, 7);
    cr_assert_eq(got.tenant, 1);
    cr_assert_eq(got.size, 7, "%s", b->name);
    cr_assert_arr_eq(got.root, want->root, PT_LOG_HASH, "%s", b->name);
    cr_assert_eq(got.event_seq, 70, "%s", b->name);
    cr_assert_str_eq(got.checkpoint, want->checkpoint, "%s", b->name);
    cr_assert_eq(got.signed_at, want->signed_at, "%s", b->name);

    struct heads_seen s = {0};
    cr_assert_eq(pt_db_log_head_list(b->c, on_head, &s), PT_OK, "%s", b->name);
    cr_assert_eq(s.n, 2, "%s", b->name);
    cr_assert(s.tenant[0] == 1 && s.size[0] == 7, "%s", b->name);
    cr_assert(s.tenant[1] == 3 && s.size[1] == 1, "%s", b->name);
    cr_assert_str_eq(s.last_checkpoint, mk_head(3, 1)->checkpoint, "%s", b->name);

    /* a rolled-back put leaves the head as it was */
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_log_head_put(b->c, mk_head(1, 9), &err), PT_OK, "%s", b->name);
    pt_tx_rollback(b->c);
    cr_assert_eq(pt_db_log_head_get(b->c, 1, &got), PT_OK, "%s", b->name);
    cr_assert_eq(got.size, 7, "%s", b->name);
}

Test(store_log, heads)
{
    each_backend(heads);
}

/* ---- signing keys ------------------------------------------------------ */

struct keys_seen {
    int n;
    char v[8][64];
    int64_t at[8];
};

static int on_key(void *ctx, const char *verifier, int64_t created_at)
{
    struct keys_seen *s = ctx;
    if (s->n < 8) {
        snprintf(s->v[s->n], sizeof s->v[s->n], "%s", verifier);
        s->at[s->n] = created_at;
    }
    s->n++;
    return 0;
}

static void keys(backend *b)
{
    pt_err err;
    cr_assert_eq(pt_tx_begin(b->c, &err), PT_OK);
    cr_assert_eq(pt_db_log_key_add(b->c, "patto+bbbb+KEY2", 200, &err), PT_OK, "%s: %s", b->name,
                 err.detail);
    cr_assert_eq(pt_db_log_key_add(b->c, "patto+aaaa+KEY1", 200, &err), PT_OK, "%s", b->name);
    cr_assert_eq(pt_db_log_key_add(b->c, "patto+cccc+KEY0", 100, &err), PT_OK, "%s", b->name);
    /* already there: ignored, the first time kept */
    cr_assert_eq(pt_db_log_key_add(b->c, "patto+bbbb+KEY2", 50, &err), PT_OK, "%s", b->name);
    cr_assert_eq(pt_tx_commit(b->c, &err), PT_OK, "%s: %s", b->name, err.detail);
    struct keys_seen s = {0};
    cr_assert_eq(pt_db_log_key_list(b->c, on_key, &s), PT_OK, "%s", b->name);
    cr_assert_eq(s.n, 3, "%s", b->name);
    cr_assert_str_eq(s.v[0], "patto+cccc+KEY0", "%s", b->name);
    cr_assert_str_eq(s.v[1], "patto+aaaa+KEY1", "%s", b->name);
    cr_assert_str_eq(s.v[2], "patto+bbbb+KEY2", "%s", b->name);
    cr_assert_eq(s.at[0], 100);
    cr_assert_eq(s.at[2], 200, "%s", b->name);
}

Test(store_log, keys)
{
    each_backend(keys);
}
