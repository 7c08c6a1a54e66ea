/* Unit tests for RFC 9162 Merkle hashing and proofs (core/merkle.c):
 * the public transparency-dev probes, and an exhaustive comparison with
 * the RFC's recursive definitions for every tree of 1..256 leaves. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/merkle.h"

/* In C17 a pt_hash * does not convert implicitly to the verifiers'
 * const pt_hash * (qualified array element; gcc -Wpedantic refuses it):
 * callers holding a mutable proof array cast it. */
#define CPROOF(p) ((const pt_hash *)(p))

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(merkle, .init = setup);

/* ---- known answers ---------------------------------------------------- */

static void from_hex(const char *hex, pt_hash out)
{
    size_t len = 0;
    cr_assert_eq(sodium_hex2bin(out, PT_HASH_BYTES, hex, strlen(hex), NULL, &len, NULL), 0);
    cr_assert_eq(len, PT_HASH_BYTES);
}

Test(merkle, known_hashes)
{
    pt_hash h, want;
    pt_merkle_empty_root(h);
    from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
    cr_assert_eq(memcmp(h, want, 32), 0);
    pt_merkle_leaf_hash("", 0, h);
    from_hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", want);
    cr_assert_eq(memcmp(h, want, 32), 0);
    pt_merkle_leaf_hash(NULL, 0, h);
    cr_assert_eq(memcmp(h, want, 32), 0);
    /* node hash = SHA-256(0x01 || l || r) */
    pt_hash l, r;
    memset(l, 0x11, 32);
    memset(r, 0x22, 32);
    uint8_t buf[65];
    buf[0] = 1;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    crypto_hash_sha256(want, buf, sizeof buf);
    pt_merkle_node_hash(l, r, h);
    cr_assert_eq(memcmp(h, want, 32), 0);
    /* in place */
    pt_merkle_node_hash(l, r, l);
    cr_assert_eq(memcmp(l, want, 32), 0);
}

/* ---- public probes ---------------------------------------------------- */

#define PROBES_TOTAL 196
/* The one probe that contradicts the 32-byte rule: equal sizes, empty
 * proof, equal roots of 12 bytes ("don't care 2"), marked as valid. A
 * pt_hash cannot carry it; this verifier refuses it, as merkle.h requires. */
#define PROBE_SHORT_BUT_VALID "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* PATTO_SHARED_DATA when set (and then only it), else ../shared/data
 * relative to the repository: "../shared/data" from the repository root,
 * "../../shared/data" from the build folder, or /work/shared/data. */
static const char *shared_data_dir(void)
{
    static char found[1024];
    const char *env = getenv("PATTO_SHARED_DATA");
    const char *defaults[] = {"../shared/data", "../../shared/data", "/work/shared/data"};
    const char *only_env[] = {env};
    int use_env = env && *env;
    const char **cands = use_env ? only_env : defaults;
    size_t n = use_env ? 1 : sizeof defaults / sizeof defaults[0];
    for (size_t i = 0; i < n; i++) {
        char probe[1100];
        snprintf(probe, sizeof probe, "%.1000s/merkle/inclusion", cands[i]);
        if (is_dir(probe)) {
            snprintf(found, sizeof found, "%.1000s", cands[i]);
            return found;
        }
    }
    return NULL;
}

/* Decodes a base64 hash; returns 1 only for exactly 32 bytes. */
static int b64_hash(json_t *j, pt_hash out)
{
    if (!json_is_string(j)) return 0;
    const char *s = json_string_value(j);
    size_t sl = strlen(s), len = 0;
    uint8_t buf[256];
    if (sodium_base642bin(buf, sizeof buf, s, sl, NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return 0;
    if (len != PT_HASH_BYTES) return 0;
    memcpy(out, buf, PT_HASH_BYTES);
    return 1;
}

/* Sizes and indices are JSON numbers up to 2^64 - 1 (e.g. leafIdx 0 - 1
 * wrapped), beyond jansson's json_int_t: the loader turns digit runs of
 * 19 or more characters outside strings into strings, parsed here. */
static uint64_t json_u64(json_t *o, const char *key)
{
    json_t *j = json_object_get(o, key);
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        cr_assert_geq(v, 0, "%s negative", key);
        return (uint64_t)v;
    }
    cr_assert(json_is_string(j), "%s missing", key);
    const char *s = json_string_value(j);
    uint64_t v = 0;
    cr_assert(*s, "%s empty", key);
    for (; *s; s++) {
        cr_assert(*s >= '0' && *s <= '9', "%s not a number", key);
        unsigned d = (unsigned)(*s - '0');
        cr_assert_leq(v, (UINT64_MAX - d) / 10, "%s above 2^64 - 1", key);
        v = v * 10 + d;
    }
    return v;
}

static json_t *load_probe(const char *path, json_error_t *err)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char in[16384], out[20000];
    size_t n = fread(in, 1, sizeof in, f);
    cr_assert(feof(f), "%s too large", path);
    fclose(f);
    size_t o = 0;
    int in_str = 0;
    for (size_t i = 0; i < n;) {
        if (in_str) {
            if (in[i] == '\\' && i + 1 < n)
                out[o++] = in[i++];
            else if (in[i] == '"')
                in_str = 0;
            out[o++] = in[i++];
        } else if (in[i] == '"') {
            in_str = 1;
            out[o++] = in[i++];
        } else if (in[i] >= '0' && in[i] <= '9') {
            size_t e = i;
            while (e < n && in[e] >= '0' && in[e] <= '9')
                e++;
            int big = e - i >= 19;
            if (big) out[o++] = '"';
            memcpy(out + o, in + i, e - i);
            o += e - i;
            if (big) out[o++] = '"';
            i = e;
        } else {
            out[o++] = in[i++];
        }
        cr_assert_lt(o, sizeof out - 4);
    }
    return json_loadb(out, o, 0, err);
}

/* Returns 1 when the probe is accepted; *well_formed is 0 when a hash is
 * not 32 bytes (such a probe is refused before any hashing). */
static int run_probe(json_t *o, int inclusion, int *well_formed)
{
    pt_hash proof[PT_MERKLE_MAX_PROOF + 8];
    size_t n = 0;
    int ok = 1;
    json_t *pj = json_object_get(o, "proof");
    if (json_is_array(pj)) {
        size_t i;
        json_t *e;
        json_array_foreach(pj, i, e)
        {
            if (n >= sizeof proof / sizeof proof[0]) {
                ok = 0;
                break;
            }
            ok &= b64_hash(e, proof[n++]);
        }
    } else {
        cr_assert(json_is_null(pj), "proof is neither an array nor null");
    }
    if (inclusion) {
        pt_hash root, leaf;
        ok &= b64_hash(json_object_get(o, "root"), root);
        ok &= b64_hash(json_object_get(o, "leafHash"), leaf);
        uint64_t idx = json_u64(o, "leafIdx"), size = json_u64(o, "treeSize");
        *well_formed = ok;
        return ok && pt_merkle_verify_inclusion(idx, size, leaf, CPROOF(proof), n, root) == 0;
    }
    pt_hash r1, r2;
    ok &= b64_hash(json_object_get(o, "root1"), r1);
    ok &= b64_hash(json_object_get(o, "root2"), r2);
    uint64_t s1 = json_u64(o, "size1"), s2 = json_u64(o, "size2");
    *well_formed = ok;
    return ok && pt_merkle_verify_consistency(s1, s2, r1, r2, CPROOF(proof), n) == 0;
}

/* Relative paths ("inclusion/1/happy-path.json") of every probe under
 * merkle/, found by walking the folders (they nest to two levels). */
#define PROBES_MAX 512
static char probe_paths[PROBES_MAX][256];
static size_t n_probe_paths;

static void collect_probes(const char *root, const char *rel)
{
    char dir[1400];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    char subs[64][256];
    size_t n_subs = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char child[256], full[1700];
        int cl = snprintf(child, sizeof child, "%.*s/%.*s", 120, rel, 120, de->d_name);
        cr_assert(cl > 0 && (size_t)cl < sizeof child && strlen(rel) <= 120 &&
                      strlen(de->d_name) <= 120,
                  "path too long under %s", rel);
        snprintf(full, sizeof full, "%s/%s", root, child);
        size_t fl = strlen(de->d_name);
        if (is_dir(full)) {
            if (n_subs < 64) snprintf(subs[n_subs++], sizeof subs[0], "%s", child);
        } else if (fl > 5 && strcmp(de->d_name + fl - 5, ".json") == 0 &&
                   n_probe_paths < PROBES_MAX) {
            snprintf(probe_paths[n_probe_paths++], sizeof probe_paths[0], "%s", child);
        }
    }
    closedir(d);
    cr_assert_lt(n_subs, 64);
    for (size_t i = 0; i < n_subs; i++)
        collect_probes(root, subs[i]);
}

typedef struct {
    int total, accepted, refused, short_but_valid;
} probe_stats;

static void run_probe_file(const char *root, const char *rel, probe_stats *st)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    json_error_t err;
    json_t *o = load_probe(path, &err);
    cr_assert_not_null(o, "%s: %s", rel, err.text);
    json_t *we = json_object_get(o, "wantErr");
    cr_assert(json_is_boolean(we), "%s: wantErr missing", rel);
    int want_ok = !json_is_true(we);
    int well_formed = 1;
    int got_ok = run_probe(o, strncmp(rel, "inclusion/", 10) == 0, &well_formed);
    if (!well_formed && want_ok) {
        /* see PROBE_SHORT_BUT_VALID */
        cr_assert_str_eq(rel, PROBE_SHORT_BUT_VALID, "%s: hashes not 32 bytes but marked valid",
                         rel);
        cr_assert_not(got_ok);
        st->short_but_valid++;
    } else {
        cr_assert_eq(got_ok, want_ok, "%s (%s): want %s", rel,
                     json_string_value(json_object_get(o, "desc")),
                     want_ok ? "accepted" : "refused");
    }
    st->total++;
    if (got_ok)
        st->accepted++;
    else
        st->refused++;
    json_decref(o);
}

Test(merkle, public_probes)
{
    const char *base = shared_data_dir();
    cr_assert_not_null(base, "shared data not found (set PATTO_SHARED_DATA)");
    char root[1100];
    snprintf(root, sizeof root, "%s/merkle", base);
    n_probe_paths = 0;
    collect_probes(root, "inclusion");
    size_t n_inclusion = n_probe_paths;
    collect_probes(root, "consistency");
    probe_stats inc = {0}, con = {0};
    for (size_t i = 0; i < n_probe_paths; i++)
        run_probe_file(root, probe_paths[i], i < n_inclusion ? &inc : &con);
    cr_assert_eq(inc.total + con.total, PROBES_TOTAL, "found %d probes under %s, want %d",
                 inc.total + con.total, root, PROBES_TOTAL);
    cr_assert_eq(inc.total, 98);
    cr_assert_eq(con.total, 98);
    /* 6 valid inclusion probes; 5 valid consistency probes plus the one
     * with 12-byte roots, refused */
    cr_assert_eq(inc.accepted, 6);
    cr_assert_eq(con.accepted, 5);
    cr_assert_eq(inc.short_but_valid, 0);
    cr_assert_eq(con.short_but_valid, 1);
}

/* ---- in-memory store -------------------------------------------------- */

#define MAXN 256
#define LEVELS 9 /* 2^8 = 256 */

typedef struct {
    pt_hash h[LEVELS][MAXN];
    uint8_t have[LEVELS][MAXN];
    unsigned reads, puts;
} store;

static int store_get(void *ctx, unsigned level, uint64_t index, pt_hash out)
{
    store *s = ctx;
    s->reads++;
    if (level >= LEVELS || index >= (uint64_t)(MAXN >> level) || !s->have[level][index]) return -1;
    memcpy(out, s->h[level][index], PT_HASH_BYTES);
    return 0;
}

static int store_put(void *ctx, unsigned level, uint64_t index, const pt_hash h)
{
    store *s = ctx;
    s->puts++;
    cr_assert_lt(level, LEVELS);
    cr_assert_lt(index, (uint64_t)(MAXN >> level));
    cr_assert_not(s->have[level][index], "subtree (%u,%llu) written twice", level,
                  (unsigned long long)index);
    memcpy(s->h[level][index], h, PT_HASH_BYTES);
    s->have[level][index] = 1;
    return 0;
}

static int failing_get(void *ctx, unsigned level, uint64_t index, pt_hash out)
{
    (void)ctx;
    (void)level;
    (void)index;
    (void)out;
    return -1;
}

/* ---- naive reference from the RFC's recursive definitions ------------ */

static pt_hash leaves[MAXN];
static pt_hash mth_memo[MAXN + 1][MAXN + 1]; /* [start][len] */
static uint8_t mth_have[MAXN + 1][MAXN + 1];

static uint64_t largest_pow2_below(uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

/* MTH(D[start : start + n]), n >= 1. */
static const uint8_t *mth(unsigned start, unsigned n)
{
    if (!mth_have[start][n]) {
        if (n == 1) {
            memcpy(mth_memo[start][n], leaves[start], 32);
        } else {
            unsigned k = (unsigned)largest_pow2_below(n);
            pt_hash l, r;
            memcpy(l, mth(start, k), 32);
            memcpy(r, mth(start + k, n - k), 32);
            pt_merkle_node_hash(l, r, mth_memo[start][n]);
        }
        mth_have[start][n] = 1;
    }
    return mth_memo[start][n];
}

/* PATH(m, D[start : start + n]) */
static void ref_path(unsigned m, unsigned start, unsigned n, pt_hash *out, size_t *cnt)
{
    if (n <= 1) return;
    unsigned k = (unsigned)largest_pow2_below(n);
    if (m < k) {
        ref_path(m, start, k, out, cnt);
        memcpy(out[(*cnt)++], mth(start + k, n - k), 32);
    } else {
        ref_path(m - k, start + k, n - k, out, cnt);
        memcpy(out[(*cnt)++], mth(start, k), 32);
    }
}

/* SUBPROOF(m, D[start : start + n], b) */
static void ref_subproof(unsigned m, unsigned start, unsigned n, int b, pt_hash *out, size_t *cnt)
{
    if (m == n) {
        if (!b) memcpy(out[(*cnt)++], mth(start, n), 32);
        return;
    }
    unsigned k = (unsigned)largest_pow2_below(n);
    if (m <= k) {
        ref_subproof(m, start, k, b, out, cnt);
        memcpy(out[(*cnt)++], mth(start + k, n - k), 32);
    } else {
        ref_subproof(m - k, start + k, n - k, 0, out, cnt);
        memcpy(out[(*cnt)++], mth(start, k), 32);
    }
}

/* Reference verifiers, recursive over the same definitions: recompute the
 * root(s) from the proof, consuming it in the order PATH / SUBPROOF emit
 * it. They accept iff every element is used and the roots match. */
static int ref_incl_rec(uint64_t m, uint64_t n, const pt_hash leaf, const pt_hash *p, size_t np,
                        size_t *pos, pt_hash out)
{
    if (n == 1) {
        memcpy(out, leaf, 32);
        return 1;
    }
    uint64_t k = largest_pow2_below(n);
    pt_hash sub;
    if (!ref_incl_rec(m < k ? m : m - k, m < k ? k : n - k, leaf, p, np, pos, sub)) return 0;
    if (*pos >= np) return 0;
    if (m < k)
        pt_merkle_node_hash(sub, p[*pos], out);
    else
        pt_merkle_node_hash(p[*pos], sub, out);
    (*pos)++;
    return 1;
}

static int ref_verify_inclusion(uint64_t m, uint64_t n, const pt_hash leaf, const pt_hash *p,
                                size_t np, const pt_hash root)
{
    if (m >= n || n > 4 * MAXN) return 0;
    size_t pos = 0;
    pt_hash r;
    return ref_incl_rec(m, n, leaf, p, np, &pos, r) && pos == np && memcmp(r, root, 32) == 0;
}

static int ref_cons_rec(uint64_t m, uint64_t n, int b, const pt_hash root1, const pt_hash *p,
                        size_t np, size_t *pos, pt_hash old, pt_hash new_)
{
    if (m == n) {
        if (b) {
            memcpy(old, root1, 32);
        } else {
            if (*pos >= np) return 0;
            memcpy(old, p[(*pos)++], 32);
        }
        memcpy(new_, old, 32);
        return 1;
    }
    uint64_t k = largest_pow2_below(n);
    pt_hash o, w;
    if (m <= k) {
        if (!ref_cons_rec(m, k, b, root1, p, np, pos, o, w) || *pos >= np) return 0;
        memcpy(old, o, 32);
        pt_merkle_node_hash(w, p[(*pos)++], new_);
    } else {
        if (!ref_cons_rec(m - k, n - k, 0, root1, p, np, pos, o, w) || *pos >= np) return 0;
        pt_merkle_node_hash(p[*pos], o, old);
        pt_merkle_node_hash(p[*pos], w, new_);
        (*pos)++;
    }
    return 1;
}

static int ref_verify_consistency(uint64_t m, uint64_t n, const pt_hash r1, const pt_hash r2,
                                  const pt_hash *p, size_t np)
{
    if (m == 0 || m > n || n > 4 * MAXN) return 0;
    if (m == n) return np == 0 && memcmp(r1, r2, 32) == 0;
    size_t pos = 0;
    pt_hash o, w;
    return ref_cons_rec(m, n, 1, r1, p, np, &pos, o, w) && pos == np && memcmp(o, r1, 32) == 0 &&
           memcmp(w, r2, 32) == 0;
}

/* ---- exhaustive self-test --------------------------------------------- */

static store st; /* grows one leaf at a time */

static void build(void)
{
    memset(&st, 0, sizeof st);
    memset(mth_have, 0, sizeof mth_have);
    for (unsigned i = 0; i < MAXN; i++) {
        char data[32];
        int dl = snprintf(data, sizeof data, "leaf %u", i);
        pt_merkle_leaf_hash(data, (size_t)dl, leaves[i]);
    }
}

static unsigned ceil_log2(uint64_t n)
{
    unsigned l = 0;
    while (((uint64_t)1 << l) < n)
        l++;
    return l;
}

/* Appends leaf n-1 and checks the store: one put for the leaf and one per
 * subtree it completes, all stored subtrees equal to the reference, and
 * the root of n leaves (O(log n) reads). */
static void grow_to(unsigned n)
{
    st.puts = 0;
    cr_assert_eq(pt_merkle_append(n - 1, leaves[n - 1], store_get, store_put, &st), 0);
    unsigned trailing_ones = 0;
    while ((n - 1) >> trailing_ones & 1)
        trailing_ones++;
    cr_assert_eq(st.puts, 1 + trailing_ones, "n=%u", n);
    for (unsigned lv = 0; lv < LEVELS; lv++)
        for (unsigned i = 0; ((i + 1) << lv) <= n; i++) {
            cr_assert(st.have[lv][i], "n=%u: subtree (%u,%u) missing", n, lv, i);
            cr_assert_eq(memcmp(st.h[lv][i], mth(i << lv, 1u << lv), 32), 0);
        }
    pt_hash r;
    st.reads = 0;
    cr_assert_eq(pt_merkle_root(n, store_get, &st, r), 0);
    cr_assert_leq(st.reads, ceil_log2(n) + 1);
    cr_assert_eq(memcmp(r, mth(0, n), 32), 0, "root of %u leaves differs", n);
}

static void flip(uint8_t *h, unsigned bit)
{
    h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* Single-bit flips applied to each hash of one proof check. Sizes up to
 * 64 are covered fully: every proof is mutated; one designated proof per
 * size gets all 256 bits of every hash, the others 4 bits (one per 64-bit
 * quarter, rotating with salt so that all positions are hit across the
 * sweep). Beyond 64 the sampled proofs get one rotating bit. */
static unsigned flip_plan(unsigned n, int designated, unsigned salt, unsigned bits[256])
{
    unsigned k = 0;
    if (designated) {
        for (unsigned b = 0; b < 256; b++)
            bits[k++] = b;
    } else if (n <= 64) {
        for (unsigned q = 0; q < 4; q++)
            bits[k++] = q * 64 + (salt * 11 + q * 23) % 64;
    } else {
        bits[k++] = (salt * 37) % 256;
    }
    return k;
}

/* Inclusion proofs of every leaf of a tree of n leaves. */
static void check_inclusion(unsigned n)
{
    pt_hash root;
    memcpy(root, mth(0, n), 32);
    for (unsigned m = 0; m < n; m++) {
        pt_hash proof[PT_MERKLE_MAX_PROOF], ref[PT_MERKLE_MAX_PROOF];
        size_t np = 99, nr = 0;
        st.reads = 0;
        cr_assert_eq(pt_merkle_inclusion_proof(m, n, store_get, &st, proof, &np), 0, "n=%u m=%u", n,
                     m);
        cr_assert_leq(st.reads, 2 * ceil_log2(n) + 1, "n=%u m=%u: %u reads", n, m, st.reads);
        ref_path(m, 0, n, ref, &nr);
        cr_assert_eq(np, nr, "n=%u m=%u", n, m);
        cr_assert_eq(memcmp(proof, ref, np * 32), 0, "n=%u m=%u: proof differs", n, m);
        cr_assert_eq(pt_merkle_verify_inclusion(m, n, leaves[m], CPROOF(proof), np, root), 0,
                     "n=%u m=%u", n, m);

        if (n > 64 && m % 4 != n % 4) continue; /* mutations: sampled beyond 64 */
        unsigned bits[256];
        unsigned nb = flip_plan(n, m == n / 2, n + m, bits);
        /* single-bit flips of every proof hash, of the root and of the leaf */
        for (size_t j = 0; j < np; j++)
            for (unsigned t = 0; t < nb; t++) {
                unsigned b = (bits[t] + (unsigned)j * 5) % 256;
                flip(proof[j], b);
                cr_assert_eq(pt_merkle_verify_inclusion(m, n, leaves[m], CPROOF(proof), np, root),
                             -1, "n=%u m=%u: flip of proof[%zu] bit %u", n, m, j, b);
                flip(proof[j], b);
            }
        for (unsigned t = 0; t < nb; t++) {
            flip(root, bits[t]);
            cr_assert_eq(pt_merkle_verify_inclusion(m, n, leaves[m], CPROOF(proof), np, root), -1,
                         "n=%u m=%u: flip of root bit %u", n, m, bits[t]);
            flip(root, bits[t]);
            pt_hash leaf;
            memcpy(leaf, leaves[m], 32);
            flip(leaf, bits[t]);
            cr_assert_eq(pt_merkle_verify_inclusion(m, n, leaf, CPROOF(proof), np, root), -1,
                         "n=%u m=%u: flip of leaf bit %u", n, m, bits[t]);
        }
        /* index +-1 with the same root: refused */
        if (m > 0)
            cr_assert_eq(pt_merkle_verify_inclusion(m - 1, n, leaves[m], CPROOF(proof), np, root),
                         -1);
        cr_assert_eq(pt_merkle_verify_inclusion(m + 1, n, leaves[m], CPROOF(proof), np, root), -1);
        /* size +-1 against that size's own root: refused */
        if (m < n - 1)
            cr_assert_eq(
                pt_merkle_verify_inclusion(m, n - 1, leaves[m], CPROOF(proof), np, mth(0, n - 1)),
                -1, "n=%u m=%u", n, m);
        if (n < MAXN)
            cr_assert_eq(
                pt_merkle_verify_inclusion(m, n + 1, leaves[m], CPROOF(proof), np, mth(0, n + 1)),
                -1, "n=%u m=%u", n, m);
        /* size +-1 against the same root: an inclusion proof alone does not
         * bind the size (leaf 0 of 3 leaves and of 4 leaves has the same
         * proof shape), so the verifier must agree with the reference */
        for (int d = -1; d <= 1; d += 2) {
            uint64_t n2 = (uint64_t)((int64_t)n + d);
            cr_assert_eq(pt_merkle_verify_inclusion(m, n2, leaves[m], CPROOF(proof), np, root) == 0,
                         ref_verify_inclusion(m, n2, leaves[m], CPROOF(proof), np, root),
                         "n=%u m=%u d=%d", n, m, d);
        }
        /* truncated and extended proofs */
        if (np > 0)
            cr_assert_eq(pt_merkle_verify_inclusion(m, n, leaves[m], CPROOF(proof), np - 1, root),
                         -1);
        memcpy(proof[np], root, 32);
        cr_assert_eq(pt_merkle_verify_inclusion(m, n, leaves[m], CPROOF(proof), np + 1, root), -1);
    }
    /* out of range */
    pt_hash proof[PT_MERKLE_MAX_PROOF];
    size_t np;
    cr_assert_eq(pt_merkle_inclusion_proof(n, n, store_get, &st, proof, &np), -1);
    cr_assert_eq(pt_merkle_verify_inclusion(n, n, leaves[0], CPROOF(proof), 0, root), -1);
}

/* Consistency proofs from every size1 <= n to n. */
static void check_consistency(unsigned n)
{
    const uint8_t *root2 = mth(0, n);
    for (unsigned m = 1; m <= n; m++) {
        pt_hash proof[PT_MERKLE_MAX_PROOF], ref[PT_MERKLE_MAX_PROOF];
        size_t np = 99, nr = 0;
        pt_hash r1, r2;
        memcpy(r1, mth(0, m), 32);
        memcpy(r2, root2, 32);
        st.reads = 0;
        cr_assert_eq(pt_merkle_consistency_proof(m, n, store_get, &st, proof, &np), 0, "m=%u n=%u",
                     m, n);
        cr_assert_leq(st.reads, 2 * ceil_log2(n) + 2, "m=%u n=%u: %u reads", m, n, st.reads);
        if (m < n) ref_subproof(m, 0, n, 1, ref, &nr);
        cr_assert_eq(np, nr, "m=%u n=%u", m, n);
        cr_assert_eq(memcmp(proof, ref, np * 32), 0, "m=%u n=%u: proof differs", m, n);
        cr_assert_eq(pt_merkle_verify_consistency(m, n, r1, r2, CPROOF(proof), np), 0, "m=%u n=%u",
                     m, n);

        if (n > 64 && m % 8 != n % 8) continue; /* mutations: sampled beyond 64 */
        unsigned bits[256];
        unsigned nb = flip_plan(n, m == (n + 1) / 2, n + m, bits);
        for (size_t j = 0; j < np; j++)
            for (unsigned t = 0; t < nb; t++) {
                unsigned b = (bits[t] + (unsigned)j * 5) % 256;
                flip(proof[j], b);
                cr_assert_eq(pt_merkle_verify_consistency(m, n, r1, r2, CPROOF(proof), np), -1,
                             "m=%u n=%u: flip of proof[%zu] bit %u", m, n, j, b);
                flip(proof[j], b);
            }
        for (unsigned t = 0; t < nb; t++) {
            flip(r1, bits[t]);
            cr_assert_eq(pt_merkle_verify_consistency(m, n, r1, r2, CPROOF(proof), np), -1,
                         "m=%u n=%u: flip of root1 bit %u", m, n, bits[t]);
            flip(r1, bits[t]);
            flip(r2, bits[t]);
            cr_assert_eq(pt_merkle_verify_consistency(m, n, r1, r2, CPROOF(proof), np), -1,
                         "m=%u n=%u: flip of root2 bit %u", m, n, bits[t]);
            flip(r2, bits[t]);
        }
        for (int d = -1; d <= 1; d += 2) {
            uint64_t m2 = (uint64_t)((int64_t)m + d), n2 = (uint64_t)((int64_t)n + d);
            /* size +-1 against that size's own root: refused */
            if (m2 >= 1 && m2 <= n)
                cr_assert_eq(pt_merkle_verify_consistency(m2, n, mth(0, (unsigned)m2), r2,
                                                          CPROOF(proof), np),
                             -1, "m=%u n=%u: size1 %llu accepted", m, n, (unsigned long long)m2);
            if (n2 >= m && n2 <= MAXN)
                cr_assert_eq(pt_merkle_verify_consistency(m, n2, r1, mth(0, (unsigned)n2),
                                                          CPROOF(proof), np),
                             -1, "m=%u n=%u: size2 %llu accepted", m, n, (unsigned long long)n2);
            /* size +-1 with the same roots: exactly what the reference says */
            cr_assert_eq(pt_merkle_verify_consistency(m2, n, r1, r2, CPROOF(proof), np) == 0,
                         ref_verify_consistency(m2, n, r1, r2, CPROOF(proof), np), "m=%u n=%u d=%d",
                         m, n, d);
            cr_assert_eq(pt_merkle_verify_consistency(m, n2, r1, r2, CPROOF(proof), np) == 0,
                         ref_verify_consistency(m, n2, r1, r2, CPROOF(proof), np), "m=%u n=%u d=%d",
                         m, n, d);
        }
        /* swapped roots, truncated and extended proofs */
        if (m < n) {
            cr_assert_eq(pt_merkle_verify_consistency(m, n, r2, r1, CPROOF(proof), np), -1);
            cr_assert_eq(pt_merkle_verify_consistency(m, n, r1, r2, CPROOF(proof), np - 1), -1);
        }
        if (np < PT_MERKLE_MAX_PROOF) {
            memcpy(proof[np], r1, 32);
            cr_assert_eq(pt_merkle_verify_consistency(m, n, r1, r2, CPROOF(proof), np + 1), -1);
        }
    }
    /* size1 = 0 and size1 > size2 are refused */
    pt_hash proof[PT_MERKLE_MAX_PROOF], empty;
    size_t np;
    pt_merkle_empty_root(empty);
    cr_assert_eq(pt_merkle_consistency_proof(0, n, store_get, &st, proof, &np), -1);
    cr_assert_eq(pt_merkle_consistency_proof(n + 1, n, store_get, &st, proof, &np), -1);
    cr_assert_eq(pt_merkle_verify_consistency(0, n, empty, root2, CPROOF(proof), 0), -1);
    cr_assert_eq(pt_merkle_verify_consistency(0, 0, empty, empty, CPROOF(proof), 0), -1);
}

/* The store grows one leaf at a time and every proof of a tree of n
 * leaves is made right after leaf n-1 is appended, so proofs can only read
 * subtrees that a store of n leaves holds. */
Test(merkle, inclusion_every_leaf_every_size_1_to_256, .timeout = 120)
{
    build();
    pt_hash r, empty;
    cr_assert_eq(pt_merkle_root(0, failing_get, NULL, r), 0);
    pt_merkle_empty_root(empty);
    cr_assert_eq(memcmp(r, empty, 32), 0);
    for (unsigned n = 1; n <= MAXN; n++) {
        grow_to(n);
        check_inclusion(n);
    }
}

Test(merkle, consistency_every_pair_1_to_256, .timeout = 120)
{
    build();
    for (unsigned n = 1; n <= MAXN; n++) {
        grow_to(n);
        check_consistency(n);
    }
}

Test(merkle, read_failures_and_bad_arguments)
{
    pt_hash h, proof[PT_MERKLE_MAX_PROOF], leaf = {0};
    size_t n;
    cr_assert_eq(pt_merkle_root(5, failing_get, NULL, h), -1);
    cr_assert_eq(pt_merkle_inclusion_proof(1, 5, failing_get, NULL, proof, &n), -1);
    cr_assert_eq(pt_merkle_consistency_proof(2, 5, failing_get, NULL, proof, &n), -1);
    /* a single-leaf tree: the proof is empty and needs no read */
    cr_assert_eq(pt_merkle_inclusion_proof(0, 1, failing_get, NULL, proof, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(pt_merkle_consistency_proof(7, 7, failing_get, NULL, proof, &n), 0);
    cr_assert_eq(n, 0);
    /* append: the left sibling cannot be read */
    store s;
    memset(&s, 0, sizeof s);
    cr_assert_eq(pt_merkle_append(1, leaf, store_get, store_put, &s), -1);
    /* verifiers: over-long proofs and sizes out of range */
    pt_hash many[PT_MERKLE_MAX_PROOF + 1];
    memset(many, 0, sizeof many);
    cr_assert_eq(pt_merkle_verify_inclusion(0, UINT64_MAX, leaf, CPROOF(many),
                                            PT_MERKLE_MAX_PROOF + 1, leaf),
                 -1);
    cr_assert_eq(pt_merkle_verify_inclusion(0, 0, leaf, CPROOF(many), 0, leaf), -1);
    cr_assert_eq(pt_merkle_verify_consistency(1, UINT64_MAX, leaf, leaf, CPROOF(many),
                                              PT_MERKLE_MAX_PROOF + 1),
                 -1);
    cr_assert_eq(pt_merkle_verify_consistency(2, 1, leaf, leaf, CPROOF(many), 0), -1);
    /* a one-leaf tree proves itself */
    cr_assert_eq(pt_merkle_verify_inclusion(0, 1, leaf, NULL, 0, leaf), 0);
    cr_assert_eq(pt_merkle_verify_consistency(3, 3, leaf, leaf, NULL, 0), 0);
}

/* A virtual tree of up to 2^64 - 1 leaves: every leaf hashes to the same
 * value except a few marked ones, so a complete subtree without a marked
 * leaf has a per-level constant hash and the others are computed from
 * their children. Exercises the top levels with consistent hashes. */
static const uint64_t marked[] = {0,
                                  1,
                                  ((uint64_t)1 << 62) + 12345,
                                  ((uint64_t)1 << 63) - 1,
                                  (uint64_t)1 << 63,
                                  ((uint64_t)1 << 63) + 4};
#define N_MARKED (sizeof marked / sizeof marked[0])

static void virtual_hash(unsigned level, uint64_t index, pt_hash out)
{
    uint64_t lo = index << level, hi = lo + (((uint64_t)1 << level) - 1); /* inclusive */
    int has_mark = 0;
    for (size_t i = 0; i < N_MARKED; i++)
        if (marked[i] >= lo && marked[i] <= hi) has_mark = 1;
    if (level == 0) {
        char data[32];
        int dl = has_mark ? snprintf(data, sizeof data, "marked %llu", (unsigned long long)index)
                          : snprintf(data, sizeof data, "plain");
        pt_merkle_leaf_hash(data, (size_t)dl, out);
        return;
    }
    if (!has_mark) {
        static pt_hash plain[64];
        static unsigned plain_levels = 0;
        if (plain_levels == 0) {
            virtual_hash(0, 2, plain[0]); /* leaf 2 is not marked */
            plain_levels = 1;
        }
        while (plain_levels <= level) {
            pt_merkle_node_hash(plain[plain_levels - 1], plain[plain_levels - 1],
                                plain[plain_levels]);
            plain_levels++;
        }
        memcpy(out, plain[level], 32);
        return;
    }
    /* subtrees holding a marked leaf: memoised */
    static struct {
        unsigned level;
        uint64_t index;
        pt_hash h;
    } memo[N_MARKED * 64 + 8];
    static size_t n_memo = 0;
    for (size_t i = 0; i < n_memo; i++)
        if (memo[i].level == level && memo[i].index == index) {
            memcpy(out, memo[i].h, 32);
            return;
        }
    pt_hash l, r;
    virtual_hash(level - 1, index * 2, l);
    virtual_hash(level - 1, index * 2 + 1, r);
    pt_merkle_node_hash(l, r, out);
    if (n_memo < sizeof memo / sizeof memo[0]) {
        memo[n_memo].level = level;
        memo[n_memo].index = index;
        memcpy(memo[n_memo].h, out, 32);
        n_memo++;
    }
}

static int virtual_get(void *ctx, unsigned level, uint64_t index, pt_hash out)
{
    unsigned *reads = ctx;
    (*reads)++;
    if (level > 63) return -1;
    virtual_hash(level, index, out);
    return 0;
}

Test(merkle, huge_virtual_tree)
{
    const uint64_t size = ((uint64_t)1 << 63) + 5;
    unsigned reads = 0;
    pt_hash root, proof[PT_MERKLE_MAX_PROOF], leaf;
    size_t n = 0;
    cr_assert_eq(pt_merkle_root(size, virtual_get, &reads, root), 0);
    cr_assert_eq(reads, 3); /* 2^63 + 4 + 1 */
    for (size_t i = 0; i < N_MARKED; i++) {
        reads = 0;
        cr_assert_eq(pt_merkle_inclusion_proof(marked[i], size, virtual_get, &reads, proof, &n), 0);
        cr_assert_leq(reads, 2 * 64);
        cr_assert_leq(n, PT_MERKLE_MAX_PROOF);
        virtual_hash(0, marked[i], leaf);
        cr_assert_eq(pt_merkle_verify_inclusion(marked[i], size, leaf, CPROOF(proof), n, root), 0,
                     "i=%zu", i);
        cr_assert_eq(pt_merkle_verify_inclusion(marked[i] ^ 1, size, leaf, CPROOF(proof), n, root),
                     -1);
        proof[n / 2][7] ^= 0x10;
        cr_assert_eq(pt_merkle_verify_inclusion(marked[i], size, leaf, CPROOF(proof), n, root), -1);
    }
    /* Consistency proofs take up to ceil(log2 size2) + 1 hashes: 64 fit up
     * to 2^63 leaves (merkle.h); beyond, a 65-hash proof is refused. */
    cr_assert_eq(pt_merkle_consistency_proof(3, size, virtual_get, &reads, proof, &n), -1);
    const uint64_t size2 = ((uint64_t)1 << 63) - 3;
    pt_hash root2;
    cr_assert_eq(pt_merkle_root(size2, virtual_get, &reads, root2), 0);
    const uint64_t s1[] = {1, 3, ((uint64_t)1 << 62) + 7, (uint64_t)1 << 62, size2 - 1, size2};
    for (size_t i = 0; i < sizeof s1 / sizeof s1[0]; i++) {
        pt_hash r1;
        cr_assert_eq(pt_merkle_root(s1[i], virtual_get, &reads, r1), 0);
        reads = 0;
        cr_assert_eq(pt_merkle_consistency_proof(s1[i], size2, virtual_get, &reads, proof, &n), 0,
                     "i=%zu", i);
        cr_assert_leq(reads, 2 * 64);
        cr_assert_eq(pt_merkle_verify_consistency(s1[i], size2, r1, root2, CPROOF(proof), n), 0,
                     "i=%zu", i);
        r1[0] ^= 1;
        cr_assert_eq(pt_merkle_verify_consistency(s1[i], size2, r1, root2, CPROOF(proof), n), -1);
    }
}
