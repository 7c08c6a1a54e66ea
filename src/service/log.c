#include "log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "catalog.h"
#include "core/ids.h"
#include "core/merkle.h"
#include "core/note.h"
#include "core/timefmt.h"
#include "jsonutil.h"

#define LEVELS 64

/* One tenant's tree as the right edge needs it: f[l] is the hash of the
 * complete subtree of 2^l leaves ending the tree when bit l of size is set. */
typedef struct edge {
    uint32_t tenant;
    uint64_t size;
    uint8_t root[PT_HASH_BYTES];
    uint8_t f[LEVELS][PT_HASH_BYTES];
} edge;

/* A direct-mapped cache of stored subtree hashes of level >= NC_MIN_LEVEL.
 * A complete subtree's hash never changes, so an entry is never stale; the
 * upper levels are few (n / 2^8 nodes) and shared by every proof, so they
 * stay here while the lower, per-leaf levels are read from the store. */
#define NC_SLOTS (1u << 16)
#define NC_MIN_LEVEL 8
typedef struct nc_ent {
    uint64_t idx;
    uint32_t tenant;
    uint8_t level; /* 0 = empty slot */
    uint8_t h[PT_HASH_BYTES];
} nc_ent;

struct pt_log {
    pthread_mutex_t mu;
    pthread_mutex_t nc_mu;
    nc_ent *nc;
    edge *e;
    size_t n, cap;
    char name[PT_LOG_NAME_MAX + 1];
    uint8_t pk[PT_ED25519_PK];
    uint8_t sk[PT_ED25519_SK];
    char verifier[PT_VERIFIER_MAX];
};

/* A tenant touched by a tx. */
typedef struct touched {
    edge cur;
    uint64_t size0; /* the last signed checkpoint's */
    uint8_t root0[PT_HASH_BYTES];
    int64_t event_seq;
    uint64_t appended;
    char checkpoint[PT_CHECKPOINT_MAX];
} touched;

typedef struct node_ent {
    uint64_t idx;
    uint32_t tenant;
    uint8_t level;
    uint8_t h[PT_HASH_BYTES];
} node_ent;

struct pt_log_tx {
    pt_log *log;
    pt_conn *c;
    touched *t;
    size_t nt, tcap;
    bool keep;
    node_ent *nodes;
    size_t nn, ncap;
    uint32_t *slots; /* index + 1 into nodes; 0 = empty */
    size_t nslots;
    bool oom;
};

/* ------------------------------------------------------------------ log */

bool pt_log_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PT_LOG_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_' || ch == '/'))
            return false;
    }
    return true;
}

pt_log *pt_log_new(const pt_keyring *kr, const char *name)
{
    if (!pt_log_name_valid(name)) return NULL;
    pt_log *log = calloc(1, sizeof *log);
    if (!log) return NULL;
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->nc_mu, NULL);
    log->nc = calloc(NC_SLOTS, sizeof *log->nc);
    if (!log->nc) {
        pt_log_free(log);
        return NULL;
    }
    snprintf(log->name, sizeof log->name, "%s", name);
    pt_keyring_sign_keypair(kr, log->pk, log->sk);
    if (pt_note_verifier_format(log->name, log->pk, log->verifier, sizeof log->verifier) != 0) {
        pt_log_free(log);
        return NULL;
    }
    return log;
}

void pt_log_free(pt_log *log)
{
    if (!log) return;
    sodium_memzero(log->sk, sizeof log->sk);
    free(log->e);
    free(log->nc);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->nc_mu);
    free(log);
}

const char *pt_log_verifier(const pt_log *log) { return log->verifier; }

static size_t nc_slot(uint32_t tenant, unsigned level, uint64_t idx)
{
    uint64_t h = (idx + ((uint64_t)level << 48) + ((uint64_t)tenant << 53)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 48) & (NC_SLOTS - 1);
}

static bool nc_get(pt_log *log, uint32_t tenant, unsigned level, uint64_t idx, uint8_t *out)
{
    bool hit = false;
    nc_ent *e = &log->nc[nc_slot(tenant, level, idx)];
    pthread_mutex_lock(&log->nc_mu);
    if (e->level == level && e->idx == idx && e->tenant == tenant) {
        memcpy(out, e->h, PT_HASH_BYTES);
        hit = true;
    }
    pthread_mutex_unlock(&log->nc_mu);
    return hit;
}

static void nc_put(pt_log *log, uint32_t tenant, unsigned level, uint64_t idx, const uint8_t *h)
{
    nc_ent *e = &log->nc[nc_slot(tenant, level, idx)];
    pthread_mutex_lock(&log->nc_mu);
    e->tenant = tenant;
    e->level = (uint8_t)level;
    e->idx = idx;
    memcpy(e->h, h, PT_HASH_BYTES);
    pthread_mutex_unlock(&log->nc_mu);
}

static bool cache_get(pt_log *log, uint32_t tenant, edge *out)
{
    bool found = false;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->n; i++)
        if (log->e[i].tenant == tenant) {
            *out = log->e[i];
            found = true;
            break;
        }
    pthread_mutex_unlock(&log->mu);
    return found;
}

static void cache_put(pt_log *log, const edge *e)
{
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->n; i++)
        if (log->e[i].tenant == e->tenant) {
            log->e[i] = *e;
            pthread_mutex_unlock(&log->mu);
            return;
        }
    if (log->n == log->cap) {
        size_t nc = log->cap ? log->cap * 2 : 8;
        edge *ne = realloc(log->e, nc * sizeof *ne);
        if (!ne) { /* only a cache: the next tx reloads from the store */
            pthread_mutex_unlock(&log->mu);
            return;
        }
        log->e = ne;
        log->cap = nc;
    }
    log->e[log->n++] = *e;
    pthread_mutex_unlock(&log->mu);
}

/* ---------------------------------------------------------------- leaves */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024; /* a consent leaf fits at once */
        while (nc < b->n + n + 1) nc *= 2;
        if (nc > PT_LOG_LEAF_MAX) {
            b->oom = true;
            return;
        }
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_raw(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string: '"' '\' and control characters escaped, the rest as is
 * (the inputs are validated UTF-8). */
static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        sb_put(b, run, (size_t)(p - run)); /* the plain run before it, in one copy */
        run = p + 1;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            sb_put(b, esc, 2);
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            sb_put(b, esc, 6);
        }
    }
    sb_put(b, run, strlen(run));
    sb_put(b, "\"", 1);
}

static void sb_member(sbuf *b, const char *key, const char *value) /* value NULL = null */
{
    sb_put(b, ",", 1);
    sb_str(b, key);
    sb_put(b, ":", 1);
    if (value)
        sb_str(b, value);
    else
        sb_raw(b, "null");
}

static void sb_time(sbuf *b, const char *key, int64_t ms) /* 0 = null */
{
    char t[PT_TIME_STR_MAX];
    if (ms) pt_time_format(ms, t);
    sb_member(b, key, ms ? t : NULL);
}

static void sb_head(sbuf *b, const char *kind, const char *tenant)
{
    sb_raw(b, "{\"v\":1,\"kind\":");
    sb_str(b, kind);
    sb_member(b, "tenant", tenant);
}

static char *sb_done(sbuf *b, size_t *len)
{
    sb_put(b, "}", 1);
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    *len = b->n;
    return b->p;
}

char *pt_leaf_consent(const char *tenant, const char *basis, const pt_event_rec *e, size_t *len)
{
    sbuf b = {0};
    char id[PT_ID_STR_MAX];
    sb_head(&b, "consent", tenant);
    pt_id_format("evt", e->id, id);
    sb_member(&b, "event", id);
    pt_id_format("sub", e->subject, id);
    sb_member(&b, "subject", id);
    sb_member(&b, "purpose", e->purpose);
    sb_member(&b, "basis", basis);
    sb_member(&b, "action", pt_action_name(e->action));
    sb_raw(&b, ",\"channels\":[");
    bool first = true;
    for (unsigned i = 0; i < PT_CH_COUNT; i++)
        if (e->channels & (1u << i)) {
            if (!first) sb_put(&b, ",", 1);
            sb_str(&b, pt_channel_name((uint8_t)(1u << i)));
            first = false;
        }
    sb_put(&b, "]", 1);
    sb_member(&b, "via", pt_via_name(e->via));
    sb_time(&b, "occurred_at", e->occurred_at);
    sb_time(&b, "recorded_at", e->recorded_at);
    sb_time(&b, "expires_at", e->expires_at);
    if (e->notice[0]) {
        sb_raw(&b, ",\"notice\":{\"notice\":");
        sb_str(&b, e->notice);
        sb_member(&b, "version", e->notice_version);
        sb_member(&b, "sha256", e->notice_sha256);
        sb_put(&b, "}", 1);
    } else {
        sb_raw(&b, ",\"notice\":null");
    }
    sb_member(&b, "evidence_sha256", e->evidence_sha256[0] ? e->evidence_sha256 : NULL);
    return sb_done(&b, len);
}

char *pt_leaf_key(const char *kind, const char *tenant, const uint8_t key[PT_ID_BYTES],
                  const char *role, int64_t at, size_t *len)
{
    sbuf b = {0};
    char id[PT_ID_STR_MAX];
    sb_head(&b, kind, tenant);
    pt_id_format("key", key, id);
    sb_member(&b, "key", id);
    if (role) sb_member(&b, "role", role);
    sb_time(&b, "at", at);
    return sb_done(&b, len);
}

char *pt_leaf_notice(const char *tenant, const pt_notice_rec *n, size_t *len)
{
    sbuf b = {0};
    sb_head(&b, "notice.published", tenant);
    sb_member(&b, "notice", n->notice);
    sb_member(&b, "version", n->version);
    sb_member(&b, "language", n->language);
    sb_member(&b, "sha256", n->sha256);
    sb_time(&b, "at", n->created_at);
    return sb_done(&b, len);
}

char *pt_leaf_build(const char *kind, const char *tenant, const pt_leaf_member *m, size_t n,
                    size_t *len)
{
    sbuf b = {0};
    sb_head(&b, kind, tenant);
    for (size_t i = 0; i < n; i++) {
        if (m[i].raw) {
            sb_put(&b, ",", 1);
            sb_str(&b, m[i].key);
            sb_put(&b, ":", 1);
            sb_raw(&b, m[i].raw);
        } else {
            sb_member(&b, m[i].key, m[i].str);
        }
    }
    return sb_done(&b, len);
}

json_t *pt_receipt_from_leaf(const char *leaf, size_t len)
{
    json_t *l = json_loadb(leaf, len, 0, NULL);
    json_t *r = NULL;
    const char *kind = json_string_value(json_object_get(l, "kind"));
    if (!kind || strcmp(kind, "consent") != 0) goto out;
    json_t *ev = json_object_get(l, "evidence_sha256");
    r = json_pack("{s:s, s:O, s:s, s:{s:O}, s:O, s:{s:O}, s:O, s:O, s:O, s:O, s:O, s:O, s:O, "
                  "s:s, s:O, s:O}",
                  "version", "patto-receipt/1 (Kantara CR v1.1, ISO/IEC 27560 fields)",
                  "receipt_id", json_object_get(l, "event"), "jurisdiction", "EU (GDPR)",
                  "controller", "tenant", json_object_get(l, "tenant"), "subject",
                  json_object_get(l, "subject"), "purpose", "purpose",
                  json_object_get(l, "purpose"), "legal_basis", json_object_get(l, "basis"),
                  "action", json_object_get(l, "action"), "channels",
                  json_object_get(l, "channels"), "collection_method",
                  json_object_get(l, "via"), "consent_timestamp",
                  json_object_get(l, "occurred_at"), "recorded_at",
                  json_object_get(l, "recorded_at"), "retention_until",
                  json_object_get(l, "expires_at"), "withdrawal_method",
                  "POST /v1/consents with action 'withdraw', or the withdrawal link in any e-mail",
                  "notice", json_object_get(l, "notice"), "evidence_sha256",
                  ev ? ev : json_null());
out:
    json_decref(l);
    return r;
}

json_t *pt_receipt_from_event(const char *tenant, const char *basis, const pt_event_rec *e)
{
    char eid[PT_ID_STR_MAX], sid[PT_ID_STR_MAX];
    pt_id_format("evt", e->id, eid);
    pt_id_format("sub", e->subject, sid);
    json_t *notice = e->notice[0] ? json_pack("{s:s, s:s, s:s}", "notice", e->notice, "version",
                                              e->notice_version, "sha256", e->notice_sha256)
                                  : json_null();
    return json_pack(
        "{s:s, s:s, s:s, s:{s:s}, s:s, s:{s:s}, s:o, s:s, s:o, s:s, s:o, s:o, s:o, s:s, s:o, "
        "s:o}",
        "version", "patto-receipt/1 (Kantara CR v1.1, ISO/IEC 27560 fields)", "receipt_id", eid,
        "jurisdiction", "EU (GDPR)", "controller", "tenant", tenant, "subject", sid, "purpose",
        "purpose", e->purpose, "legal_basis", basis ? json_string(basis) : json_null(), "action",
        pt_action_name(e->action), "channels", pt_json_channels_value(e->channels),
        "collection_method", pt_via_name(e->via), "consent_timestamp",
        pt_json_time_value(e->occurred_at), "recorded_at", pt_json_time_value(e->recorded_at),
        "retention_until", pt_json_time_value(e->expires_at), "withdrawal_method",
        "POST /v1/consents with action 'withdraw', or the withdrawal link in any e-mail", "notice",
        notice, "evidence_sha256",
        e->evidence_sha256[0] ? json_string(e->evidence_sha256) : json_null());
}

/* ------------------------------------------------------------- node map */

static size_t slot_of(uint32_t tenant, unsigned level, uint64_t idx, size_t nslots)
{
    uint64_t h = idx * 0x9E3779B97F4A7C15ull ^ ((uint64_t)level << 56) ^ ((uint64_t)tenant << 32);
    h ^= h >> 29;
    return (size_t)(h & (nslots - 1));
}

static node_ent *map_find(pt_log_tx *t, uint32_t tenant, unsigned level, uint64_t idx)
{
    if (!t->nslots) return NULL;
    for (size_t s = slot_of(tenant, level, idx, t->nslots);; s = (s + 1) & (t->nslots - 1)) {
        uint32_t k = t->slots[s];
        if (!k) return NULL;
        node_ent *e = &t->nodes[k - 1];
        if (e->idx == idx && e->level == level && e->tenant == tenant) return e;
    }
}

static void map_add(pt_log_tx *t, uint32_t tenant, unsigned level, uint64_t idx,
                    const uint8_t h[PT_HASH_BYTES])
{
    if (!t->keep || t->oom) return;
    if (map_find(t, tenant, level, idx)) return;
    if (t->nn == t->ncap) {
        size_t nc = t->ncap ? t->ncap * 2 : 256;
        node_ent *nn = realloc(t->nodes, nc * sizeof *nn);
        if (!nn) {
            t->oom = true;
            return;
        }
        t->nodes = nn;
        t->ncap = nc;
    }
    if ((t->nn + 1) * 2 > t->nslots) {
        size_t ns = t->nslots ? t->nslots * 2 : 512;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl) {
            t->oom = true;
            return;
        }
        free(t->slots);
        t->slots = sl;
        t->nslots = ns;
        for (size_t i = 0; i < t->nn; i++) {
            node_ent *e = &t->nodes[i];
            size_t s = slot_of(e->tenant, e->level, e->idx, ns);
            while (sl[s]) s = (s + 1) & (ns - 1);
            sl[s] = (uint32_t)i + 1;
        }
    }
    node_ent *e = &t->nodes[t->nn++];
    e->tenant = tenant;
    e->level = (uint8_t)level;
    e->idx = idx;
    memcpy(e->h, h, PT_HASH_BYTES);
    size_t s = slot_of(tenant, level, idx, t->nslots);
    while (t->slots[s]) s = (s + 1) & (t->nslots - 1);
    t->slots[s] = (uint32_t)t->nn;
}

typedef struct getter {
    pt_log_tx *t; /* may be NULL: store only */
    pt_log *log;  /* may be NULL: no upper-level cache */
    pt_conn *c;
    uint32_t tenant;
    int reads;
} getter;

static int get_subtree(void *ctx, unsigned level, uint64_t index, pt_hash out)
{
    getter *g = ctx;
    node_ent *e = g->t ? map_find(g->t, g->tenant, level, index) : NULL;
    if (e) {
        memcpy(out, e->h, PT_HASH_BYTES);
        return 0;
    }
    bool cacheable = g->log && level >= NC_MIN_LEVEL;
    if (cacheable && nc_get(g->log, g->tenant, level, index, out)) return 0;
    g->reads++;
    if (pt_db_log_node_get(g->c, g->tenant, level, index, out) != PT_OK) return -1;
    if (cacheable) nc_put(g->log, g->tenant, level, index, out);
    return 0;
}

/* ------------------------------------------------------------------ edge */

static void edge_root(const edge *e, uint8_t out[PT_HASH_BYTES])
{
    bool have = false;
    uint8_t r[PT_HASH_BYTES];
    if (!e->size) {
        pt_merkle_empty_root(out);
        return;
    }
    for (unsigned l = 0; l < LEVELS; l++) {
        if (!((e->size >> l) & 1)) continue;
        if (!have) {
            memcpy(r, e->f[l], PT_HASH_BYTES);
            have = true;
        } else {
            pt_merkle_node_hash(e->f[l], r, r);
        }
    }
    memcpy(out, r, PT_HASH_BYTES);
}

/* Loads a right edge from the stored subtree hashes: one read per set bit. */
static pt_result edge_load(pt_conn *c, uint32_t tenant, uint64_t size, edge *e)
{
    memset(e, 0, sizeof *e);
    e->tenant = tenant;
    e->size = size;
    for (unsigned l = 0; l < LEVELS; l++)
        if ((size >> l) & 1) {
            pt_result rc = pt_db_log_node_get(c, tenant, l, (size >> l) - 1, e->f[l]);
            if (rc != PT_OK) return rc == PT_ERR_NOT_FOUND ? PT_ERR_INTERNAL : rc;
        }
    edge_root(e, e->root);
    return PT_OK;
}

/* ------------------------------------------------------------- write side */

pt_log_tx *pt_log_tx_new(pt_log *log, pt_conn *c, bool keep_nodes)
{
    pt_log_tx *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->log = log;
    t->c = c;
    t->keep = keep_nodes;
    return t;
}

static pt_result tx_tenant(pt_log_tx *t, uint32_t tenant, touched **out, pt_err *err)
{
    for (size_t i = 0; i < t->nt; i++)
        if (t->t[i].cur.tenant == tenant) {
            *out = &t->t[i];
            return PT_OK;
        }
    if (t->nt == t->tcap) {
        size_t nc = t->tcap ? t->tcap * 2 : 4;
        touched *nt = realloc(t->t, nc * sizeof *nt);
        if (!nt) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        t->t = nt;
        t->tcap = nc;
    }
    touched *x = &t->t[t->nt];
    memset(x, 0, sizeof *x);
    pt_log_head_rec *h = malloc(sizeof *h);
    if (!h) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    pt_result rc = pt_db_log_head_get(t->c, tenant, h);
    if (rc == PT_ERR_NOT_FOUND) {
        x->cur.tenant = tenant;
        pt_merkle_empty_root(x->cur.root);
        memcpy(x->root0, x->cur.root, PT_HASH_BYTES);
        rc = PT_OK;
    } else if (rc == PT_OK) {
        x->size0 = h->size;
        memcpy(x->root0, h->root, PT_HASH_BYTES);
        x->event_seq = h->event_seq;
        /* the node's cached edge holds unless someone else appended since */
        edge prev;
        bool had = cache_get(t->log, tenant, &prev);
        if (had && (h->size < prev.size ||
                    (h->size == prev.size && memcmp(prev.root, h->root, PT_HASH_BYTES) != 0))) {
            /* the stored tree went back (a failover that lost commits, a
             * restored copy): this signer already signed a larger or other
             * tree, and signing this one would fork the log */
            rc = pt_err_set(err, PT_ERR_INTERNAL, "",
                            "the stored proof log is behind what this node already signed; "
                            "refusing to fork it (see docs/log.md, Checkpoints)");
        } else if (had && h->size == prev.size) {
            x->cur = prev;
        } else {
            rc = edge_load(t->c, tenant, h->size, &x->cur);
            if (rc == PT_OK && memcmp(x->cur.root, h->root, PT_HASH_BYTES) != 0)
                rc = pt_err_set(err, PT_ERR_INTERNAL, "",
                                "the stored proof log does not match its signed head; "
                                "refusing to extend it (run `patto verify` on the log)");
            else if (rc != PT_OK)
                pt_err_set(err, rc, "", "cannot read the proof log");
            /* another node appended: its tree must extend the one we signed */
            if (rc == PT_OK && had && prev.size > 0) {
                pt_hash proof[PT_MERKLE_MAX_PROOF];
                size_t n = 0;
                getter g = {.c = t->c, .tenant = tenant};
                if (pt_merkle_consistency_proof(prev.size, h->size, get_subtree, &g, proof, &n) !=
                        0 ||
                    pt_merkle_verify_consistency(prev.size, h->size, prev.root, h->root,
                                                 (const pt_hash *)proof, n) != 0)
                    rc = pt_err_set(err, PT_ERR_INTERNAL, "",
                                    "the stored proof log does not extend what this node "
                                    "signed; refusing to fork it");
            }
        }
    } else {
        pt_err_set(err, rc, "", "cannot read the proof log");
    }
    free(h);
    if (rc != PT_OK) return rc;
    /* old right edge: the proofs of this tx's leaves start from it */
    for (unsigned l = 0; l < LEVELS; l++)
        if ((x->cur.size >> l) & 1) map_add(t, tenant, l, (x->cur.size >> l) - 1, x->cur.f[l]);
    t->nt++;
    *out = x;
    return PT_OK;
}

pt_result pt_log_tx_append(pt_log_tx *t, uint32_t tenant, const uint8_t ref[PT_ID_BYTES],
                           int64_t event_seq, const void *leaf, size_t len, uint64_t *idx,
                           pt_err *err)
{
    touched *x = NULL;
    pt_result rc = tx_tenant(t, tenant, &x, err);
    if (rc != PT_OK) return rc;
    edge *e = &x->cur;
    pt_leaf_rec r = {.tenant = tenant, .idx = e->size, .data = leaf, .len = len};
    memcpy(r.ref, ref, PT_ID_BYTES);
    pt_merkle_leaf_hash(leaf, len, r.hash);
    rc = pt_db_log_leaf_insert(t->c, &r, err);
    if (rc != PT_OK) return rc;
    map_add(t, tenant, 0, r.idx, r.hash);
    uint8_t carry[PT_HASH_BYTES];
    memcpy(carry, r.hash, PT_HASH_BYTES);
    unsigned l = 0;
    while ((e->size >> l) & 1) {
        pt_merkle_node_hash(e->f[l], carry, carry);
        l++;
        rc = pt_db_log_node_put(t->c, tenant, l, r.idx >> l, carry, err);
        if (rc != PT_OK) return rc;
        map_add(t, tenant, l, r.idx >> l, carry);
    }
    memcpy(e->f[l], carry, PT_HASH_BYTES);
    e->size++;
    x->appended++;
    if (event_seq > x->event_seq) x->event_seq = event_seq;
    if (idx) *idx = r.idx;
    if (t->oom) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    return PT_OK;
}

pt_result pt_log_tx_seal(pt_log_tx *t, int64_t now, pt_tenant_name_fn name_of, void *ctx,
                         pt_err *err)
{
    pt_result rc = PT_OK;
    pt_log_head_rec *h = malloc(sizeof *h);
    if (!h) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    for (size_t i = 0; i < t->nt; i++) {
        touched *x = &t->t[i];
        if (!x->appended) continue;
        edge_root(&x->cur, x->cur.root);
        /* The signer's own check, independent of how the edge was kept: the
         * new tree must extend the last one signed, or nothing is signed. */
        if (x->size0 > 0) {
            pt_hash proof[PT_MERKLE_MAX_PROOF];
            size_t n = 0;
            getter g = {.t = t, .c = t->c, .tenant = x->cur.tenant};
            if (x->cur.size < x->size0 ||
                pt_merkle_consistency_proof(x->size0, x->cur.size, get_subtree, &g, proof, &n) !=
                    0 ||
                pt_merkle_verify_consistency(x->size0, x->cur.size, x->root0, x->cur.root,
                                             (const pt_hash *)proof, n) != 0) {
                rc = pt_err_set(err, PT_ERR_INTERNAL, "",
                                "refusing to sign a checkpoint that does not extend the last one");
                goto out;
            }
        }
        char tenant[PT_TENANT_NAME_MAX + 1];
        rc = name_of(ctx, x->cur.tenant, tenant);
        if (rc != PT_OK) {
            pt_err_set(err, rc, "", "unknown tenant in the proof log");
            goto out;
        }
        pt_checkpoint cp;
        memset(&cp, 0, sizeof cp);
        size_t ln = strlen(t->log->name), tn = strlen(tenant);
        if (ln + 1 + tn >= sizeof cp.origin) {
            rc = pt_err_set(err, PT_ERR_INTERNAL, "", "log origin too long");
            goto out;
        }
        memcpy(cp.origin, t->log->name, ln);
        cp.origin[ln] = '/';
        memcpy(cp.origin + ln + 1, tenant, tn + 1);
        cp.size = x->cur.size;
        memcpy(cp.root, x->cur.root, PT_HASH_BYTES);
        char body[PT_CHECKPOINT_MAX];
        long bl = pt_checkpoint_format(&cp, body, sizeof body);
        long nl = bl < 0 ? -1
                         : pt_note_sign(body, (size_t)bl, t->log->name, t->log->sk, x->checkpoint,
                                        sizeof x->checkpoint);
        if (nl < 0) {
            rc = pt_err_set(err, PT_ERR_INTERNAL, "", "cannot sign the checkpoint");
            goto out;
        }
        memset(h, 0, sizeof *h);
        h->tenant = x->cur.tenant;
        h->size = x->cur.size;
        memcpy(h->root, x->cur.root, PT_HASH_BYTES);
        h->event_seq = x->event_seq;
        memcpy(h->checkpoint, x->checkpoint, sizeof h->checkpoint);
        h->signed_at = now;
        rc = pt_db_log_head_put(t->c, h, err);
        if (rc != PT_OK) goto out;
    }
out:
    free(h);
    return rc;
}

static json_t *b64_value(const void *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char stackbuf[64];
    char *buf = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!buf) return NULL;
    sodium_bin2base64(buf, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
    json_t *v = json_string(buf);
    if (buf != stackbuf) free(buf);
    return v;
}

static json_t *hashes_value(const pt_hash *h, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, b64_value(h[i], PT_HASH_BYTES));
    return a;
}

static json_t *proof_doc(const void *leaf, size_t len, uint64_t idx, uint64_t size,
                         const pt_hash *proof, size_t n, const char *checkpoint,
                         const char *verifier)
{
    return json_pack("{s:s, s:o, s:I, s:I, s:o, s:s, s:s}", "format", "patto-proof/1", "leaf",
                     b64_value(leaf, len), "leaf_index", (json_int_t)idx, "tree_size",
                     (json_int_t)size, "inclusion", hashes_value(proof, n), "checkpoint",
                     checkpoint, "public_key", verifier);
}

json_t *pt_log_tx_proof(pt_log_tx *t, uint32_t tenant, uint64_t idx, const void *leaf,
                        size_t len)
{
    for (size_t i = 0; i < t->nt; i++) {
        touched *x = &t->t[i];
        if (x->cur.tenant != tenant) continue;
        pt_hash proof[PT_MERKLE_MAX_PROOF];
        size_t n = 0;
        getter g = {.t = t, .c = t->c, .tenant = tenant};
        if (pt_merkle_inclusion_proof(idx, x->cur.size, get_subtree, &g, proof, &n) != 0)
            return NULL;
        return proof_doc(leaf, len, idx, x->cur.size, (const pt_hash *)proof, n, x->checkpoint,
                         t->log->verifier);
    }
    return NULL;
}

void pt_log_tx_done(pt_log_tx *t, bool committed)
{
    if (!t) return;
    if (committed)
        for (size_t i = 0; i < t->nt; i++)
            if (t->t[i].appended) cache_put(t->log, &t->t[i].cur);
    free(t->t);
    free(t->nodes);
    free(t->slots);
    free(t);
}

/* -------------------------------------------------------------- read side */

typedef struct head_ctx {
    pt_log_head_rec h;
} head_ctx;

static pt_result read_head(pt_app *app, pt_conn *c, uint32_t tenant, pt_log_head_rec *h,
                           pt_err *err)
{
    (void)app;
    pt_result rc = pt_db_log_head_get(c, tenant, h);
    if (rc == PT_ERR_NOT_FOUND)
        return pt_err_set(err, PT_ERR_NOT_FOUND, "", "the log is empty: nothing recorded yet");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read the proof log");
    return PT_OK;
}

pt_result pt_log_checkpoint(pt_app *app, uint32_t tenant, char **text, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err->code ? err->code : PT_ERR_STORAGE;
    pt_log_head_rec *h = malloc(sizeof *h);
    pt_result rc = h ? read_head(app, c, tenant, h, err)
                     : pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    if (rc == PT_OK) {
        *text = strdup(h->checkpoint);
        if (!*text) rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    free(h);
    pt_app_reader_release(app, c);
    return rc;
}

static int key_doc(void *ctx, const char *verifier, int64_t at)
{
    json_array_append_new(ctx, json_pack("{s:s, s:o}", "public_key", verifier, "created_at",
                                         pt_json_time_value(at)));
    return 0;
}

pt_result pt_log_keys(pt_app *app, json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err->code ? err->code : PT_ERR_STORAGE;
    json_t *a = json_array();
    pt_result rc = pt_db_log_key_list(c, key_doc, a);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        json_decref(a);
        return pt_err_set(err, rc, "", "cannot read the log keys");
    }
    *out = json_pack("{s:o, s:s}", "keys", a, "current", pt_log_verifier(pt_app_log(app)));
    return PT_OK;
}

typedef struct leaf_copy {
    uint64_t idx;
    uint8_t hash[PT_HASH_BYTES];
    uint8_t *data;
    size_t len;
} leaf_copy;

static int copy_leaf(void *ctx, const pt_leaf_rec *r)
{
    leaf_copy *l = ctx;
    l->idx = r->idx;
    memcpy(l->hash, r->hash, PT_HASH_BYTES);
    l->data = malloc(r->len ? r->len : 1);
    if (l->data) {
        memcpy(l->data, r->data, r->len);
        l->len = r->len;
    }
    return 1;
}

pt_result pt_log_inclusion(pt_app *app, uint32_t tenant, const char *event, uint64_t index,
                           uint64_t size, json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err->code ? err->code : PT_ERR_STORAGE;
    leaf_copy leaf = {0};
    pt_hash proof[PT_MERKLE_MAX_PROOF];
    size_t n = 0;
    pt_log_head_rec *h = malloc(sizeof *h);
    pt_result rc = h ? read_head(app, c, tenant, h, err)
                     : pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    if (rc != PT_OK) goto out;
    if (event) {
        uint8_t id[PT_ID_BYTES];
        if (pt_id_parse("evt", event, strlen(event), id) != 0) {
            rc = pt_err_set(err, PT_ERR_INVALID, "event", "not an event id (evt_...)");
            goto out;
        }
        rc = pt_db_log_leaf_by_ref(c, tenant, id, copy_leaf, &leaf);
        if (rc == PT_OK && !leaf.data) rc = PT_ERR_NOMEM;
        if (rc != PT_OK) {
            pt_err_set(err, rc, rc == PT_ERR_NOT_FOUND ? "event" : "",
                       rc == PT_ERR_NOT_FOUND ? "no such event in this tenant's log"
                                              : "cannot read the proof log");
            goto out;
        }
        index = leaf.idx;
        size = 0;
    }
    if (!size) size = h->size;
    if (size > h->size) {
        rc = pt_err_set(err, PT_ERR_INVALID, "size", "the log has only %llu leaves",
                        (unsigned long long)h->size);
        goto out;
    }
    if (index >= size) {
        rc = pt_err_set(err, PT_ERR_INVALID, "index", "index must be below size");
        goto out;
    }
    getter g = {.c = c, .tenant = tenant, .log = pt_app_log(app)};
    uint8_t lh[PT_HASH_BYTES];
    if (pt_merkle_inclusion_proof(index, size, get_subtree, &g, proof, &n) != 0 ||
        get_subtree(&g, 0, index, lh) != 0) {
        rc = pt_err_set(err, PT_ERR_STORAGE, "", "cannot read the proof log");
        goto out;
    }
    json_t *doc = json_pack("{s:I, s:I, s:o, s:o}", "leaf_index", (json_int_t)index, "tree_size",
                            (json_int_t)size, "leaf_hash", b64_value(lh, PT_HASH_BYTES),
                            "inclusion", hashes_value((const pt_hash *)proof, n));
    if (event) {
        json_object_set_new(doc, "event", json_string(event));
        json_object_set_new(doc, "leaf", b64_value(leaf.data, leaf.len));
    }
    if (size == h->size) json_object_set_new(doc, "checkpoint", json_string(h->checkpoint));
    *out = doc;
    rc = PT_OK;
out:
    free(leaf.data);
    free(h);
    pt_app_reader_release(app, c);
    return rc;
}

pt_result pt_log_consistency(pt_app *app, uint32_t tenant, uint64_t from, uint64_t to,
                             json_t **out, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err->code ? err->code : PT_ERR_STORAGE;
    pt_hash proof[PT_MERKLE_MAX_PROOF];
    size_t n = 0;
    pt_log_head_rec *h = malloc(sizeof *h);
    pt_result rc = h ? read_head(app, c, tenant, h, err)
                     : pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    if (rc != PT_OK) goto out;
    if (!to) to = h->size;
    if (to > h->size) {
        rc = pt_err_set(err, PT_ERR_INVALID, "to", "the log has only %llu leaves",
                        (unsigned long long)h->size);
        goto out;
    }
    if (from == 0 || from > to) {
        rc = pt_err_set(err, PT_ERR_INVALID, "from", "from must be between 1 and to");
        goto out;
    }
    getter g = {.c = c, .tenant = tenant, .log = pt_app_log(app)};
    if (pt_merkle_consistency_proof(from, to, get_subtree, &g, proof, &n) != 0) {
        rc = pt_err_set(err, PT_ERR_STORAGE, "", "cannot read the proof log");
        goto out;
    }
    json_t *doc = json_pack("{s:I, s:I, s:o}", "from", (json_int_t)from, "to", (json_int_t)to,
                            "proof", hashes_value((const pt_hash *)proof, n));
    if (to == h->size) json_object_set_new(doc, "checkpoint", json_string(h->checkpoint));
    *out = doc;
out:
    free(h);
    pt_app_reader_release(app, c);
    return rc;
}

static int leaf_doc(void *ctx, const pt_leaf_rec *r)
{
    json_array_append_new(ctx, json_pack("{s:I, s:o, s:o}", "index", (json_int_t)r->idx, "leaf",
                                         b64_value(r->data, r->len), "hash",
                                         b64_value(r->hash, PT_HASH_BYTES)));
    return 0;
}

pt_result pt_log_leaves(pt_app *app, uint32_t tenant, uint64_t start, uint64_t end, json_t **out,
                        pt_err *err)
{
    if (end <= start)
        return pt_err_set(err, PT_ERR_INVALID, "end", "end must be greater than start");
    if (end - start > PT_LOG_LEAVES_PAGE)
        return pt_err_set(err, PT_ERR_INVALID, "end", "at most %d leaves per call",
                          PT_LOG_LEAVES_PAGE);
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err->code ? err->code : PT_ERR_STORAGE;
    json_t *a = json_array();
    pt_result rc = pt_db_log_leaf_list(c, tenant, start, end, leaf_doc, a);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        json_decref(a);
        return pt_err_set(err, rc, "", "cannot read the proof log");
    }
    *out = json_pack("{s:I, s:I, s:o}", "start", (json_int_t)start, "end", (json_int_t)end,
                     "leaves", a);
    return PT_OK;
}

pt_result pt_receipt_get(pt_app *app, uint32_t tenant, const char *event, json_t **out,
                         pt_err *err)
{
    json_t *inc = NULL;
    pt_result rc = pt_log_inclusion(app, tenant, event, 0, 0, &inc, err);
    if (rc != PT_OK) return rc;
    const char *b64 = json_string_value(json_object_get(inc, "leaf"));
    size_t cap = b64 ? strlen(b64) : 0, len = 0;
    uint8_t *leaf = malloc(cap + 1);
    json_t *r = NULL;
    if (leaf && b64 &&
        sodium_base642bin(leaf, cap, b64, cap, NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0)
        r = pt_receipt_from_leaf((const char *)leaf, len);
    if (!r) {
        rc = pt_err_set(err, PT_ERR_NOT_FOUND, "event", "no consent event with that id");
    } else {
        json_t *proof = json_pack(
            "{s:s, s:O, s:O, s:O, s:O, s:O, s:s}", "format", "patto-proof/1", "leaf",
            json_object_get(inc, "leaf"), "leaf_index", json_object_get(inc, "leaf_index"),
            "tree_size", json_object_get(inc, "tree_size"), "inclusion",
            json_object_get(inc, "inclusion"), "checkpoint", json_object_get(inc, "checkpoint"),
            "public_key", pt_log_verifier(pt_app_log(app)));
        json_object_set_new(r, "proof", proof);
        *out = r;
        rc = PT_OK;
    }
    free(leaf);
    json_decref(inc);
    return rc;
}

/* ------------------------------------------------------------- catch-up */

#define CATCH_UP_CHUNK 1000

typedef struct ev_vec {
    pt_event_rec *e;
    size_t n, cap;
    bool oom;
} ev_vec;

static int collect_event(void *ctx, const pt_event_rec *r)
{
    ev_vec *v = ctx;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        pt_event_rec *ne = realloc(v->e, nc * sizeof *ne);
        if (!ne) {
            v->oom = true;
            return 1;
        }
        v->e = ne;
        v->cap = nc;
    }
    v->e[v->n] = *r;
    v->e[v->n].evidence = NULL; /* borrowed; the leaf needs only its hash */
    v->e[v->n].evidence_len = 0;
    v->n++;
    return 0;
}

typedef struct tenant_ids {
    uint32_t *id;
    size_t n, cap;
} tenant_ids;

static int collect_tenant(void *ctx, const pt_tenant_rec *r)
{
    tenant_ids *t = ctx;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 8;
        uint32_t *ni = realloc(t->id, nc * sizeof *ni);
        if (!ni) return 1;
        t->id = ni;
        t->cap = nc;
    }
    t->id[t->n++] = r->id;
    return 0;
}

typedef struct catch_arg {
    uint32_t tenant;
    int64_t after;
    size_t done;
} catch_arg;

static pt_result catch_up_fn(pt_wctx *w, void *arg, pt_err *err)
{
    catch_arg *a = arg;
    pt_app *app = pt_wctx_app(w);
    pt_conn *c = pt_wctx_conn(w);
    ev_vec v = {0};
    char tname[PT_TENANT_NAME_MAX + 1];
    pt_result rc = pt_catalog_tenant_name(app, a->tenant, tname);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "unknown tenant");
    /* under the write lock now: another process may have caught up since
     * the look outside it */
    pt_log_head_rec *h = malloc(sizeof *h);
    if (!h) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    rc = pt_db_log_head_get(c, a->tenant, h);
    if (rc == PT_OK) a->after = h->event_seq;
    free(h);
    if (rc != PT_OK && rc != PT_ERR_NOT_FOUND) return pt_err_set(err, rc, "", "cannot read the proof log");
    rc = PT_OK;
    for (;;) {
        v.n = 0;
        rc = pt_db_event_list_tenant(c, a->tenant, a->after, CATCH_UP_CHUNK, collect_event, &v);
        if (rc == PT_OK && v.oom) rc = PT_ERR_NOMEM;
        if (rc != PT_OK) {
            pt_err_set(err, rc, "", "cannot read events");
            break;
        }
        if (!v.n) break;
        for (size_t i = 0; i < v.n && rc == PT_OK; i++) {
            pt_purpose_ref p;
            const char *basis = pt_catalog_find(app, a->tenant, v.e[i].purpose, &p) == PT_OK
                                    ? pt_basis_name(p.rule.basis)
                                    : NULL;
            size_t len;
            char *leaf = pt_leaf_consent(tname, basis, &v.e[i], &len);
            if (!leaf) {
                rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
                break;
            }
            rc = pt_wctx_log(w, a->tenant, v.e[i].id, v.e[i].seq, leaf, len, NULL, err);
            free(leaf);
            a->after = v.e[i].seq;
            a->done++;
        }
        if (rc != PT_OK) break;
    }
    free(v.e);
    return rc;
}

pt_result pt_log_catch_up(pt_app *app, pt_err *err)
{
    tenant_ids t = {0};
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err->code ? err->code : PT_ERR_STORAGE;
    pt_result rc = pt_db_tenant_list(c, collect_tenant, &t);
    for (size_t i = 0; rc == PT_OK && i < t.n; i++) {
        pt_log_head_rec *h = malloc(sizeof *h);
        if (!h) {
            rc = PT_ERR_NOMEM;
            break;
        }
        int64_t after = pt_db_log_head_get(c, t.id[i], h) == PT_OK ? h->event_seq : 0;
        free(h);
        ev_vec v = {0};
        rc = pt_db_event_list_tenant(c, t.id[i], after, 1, collect_event, &v);
        size_t missing = v.n;
        free(v.e);
        if (rc != PT_OK || !missing) continue;
        pt_app_reader_release(app, c);
        c = NULL;
        catch_arg a = {.tenant = t.id[i], .after = after};
        rc = pt_app_bulk(app, catch_up_fn, &a, err);
        if (rc == PT_OK)
            fprintf(stderr, "patto: proof log: appended %zu earlier events of tenant %u\n", a.done,
                    t.id[i]);
        c = pt_app_reader(app, err);
        if (!c) rc = PT_ERR_STORAGE;
    }
    pt_app_reader_release(app, c);
    free(t.id);
    if (rc != PT_OK && !err->detail[0]) pt_err_set(err, rc, "", "cannot bring the proof log up to date");
    return rc;
}
