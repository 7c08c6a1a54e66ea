/* merkle.c - RFC 9162 Merkle tree hashing, proof generation and strict
 * proof verification (see merkle.h).
 *
 * Every range the RFC's recursive definitions (MTH, PATH, SUBPROOF) touch
 * is [start, start + len) with start a multiple of a power of two that is
 * at least len. Such a range splits, following the binary digits of len
 * from the highest, into complete subtrees that the store keeps, so the
 * hash of any such range costs popcount(len) reads. */
#include "merkle.h"

#include <sodium.h>
#include <string.h>

/* ---- hashing ---------------------------------------------------------- */

void pt_merkle_leaf_hash(const void *leaf, size_t n, pt_hash out)
{
    static const uint8_t prefix = 0x00;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    if (n > 0) crypto_hash_sha256_update(&st, (const uint8_t *)leaf, n);
    crypto_hash_sha256_final(&st, out);
}

void pt_merkle_node_hash(const pt_hash left, const pt_hash right, pt_hash out)
{
    uint8_t buf[1 + 2 * PT_HASH_BYTES];
    buf[0] = 0x01;
    memcpy(buf + 1, left, PT_HASH_BYTES);
    memcpy(buf + 1 + PT_HASH_BYTES, right, PT_HASH_BYTES);
    crypto_hash_sha256(out, buf, sizeof buf); /* out may alias left or right */
}

void pt_merkle_empty_root(pt_hash out)
{
    crypto_hash_sha256(out, (const uint8_t *)"", 0);
}

/* ---- helpers ---------------------------------------------------------- */

/* Number of significant bits of x (0 for 0). */
static unsigned bit_len(uint64_t x)
{
    unsigned n = 0;
    while (x) {
        n++;
        x >>= 1;
    }
    return n;
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
    return (uint64_t)1 << (bit_len(n - 1) - 1);
}

/* MTH of leaves [start, start + len), len >= 1, start aligned as explained
 * at the top of the file: the complete subtrees are read from the left and
 * folded from the right. */
static int range_hash(uint64_t start, uint64_t len, pt_subtree_fn get, void *ctx, pt_hash out)
{
    pt_hash parts[64];
    unsigned n = 0;
    uint64_t pos = start;
    for (unsigned level = 64; level-- > 0;) {
        uint64_t w = (uint64_t)1 << level;
        if (!(len & w)) continue;
        if (get(ctx, level, pos >> level, parts[n]) != 0) return -1;
        n++;
        pos += w;
    }
    if (n == 0) return -1;
    memcpy(out, parts[n - 1], PT_HASH_BYTES);
    for (unsigned i = n - 1; i-- > 0;)
        pt_merkle_node_hash(parts[i], out, out);
    return 0;
}

/* The proofs are produced top-down and stored leaf-first. */
static void reverse(pt_hash *p, size_t n)
{
    for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
        pt_hash t;
        memcpy(t, p[i], PT_HASH_BYTES);
        memcpy(p[i], p[j - 1], PT_HASH_BYTES);
        memcpy(p[j - 1], t, PT_HASH_BYTES);
    }
}

/* ---- root and proof generation ---------------------------------------- */

int pt_merkle_root(uint64_t size, pt_subtree_fn get, void *ctx, pt_hash out)
{
    if (size == 0) {
        pt_merkle_empty_root(out);
        return 0;
    }
    if (!get) return -1;
    return range_hash(0, size, get, ctx, out);
}

/* PATH(m, D[n]) of RFC 9162 2.1.3.1, unrolled: the current range is
 * [lo, hi); the sibling of the half holding `index` is pushed. */
int pt_merkle_inclusion_proof(uint64_t index, uint64_t size, pt_subtree_fn get, void *ctx,
                              pt_hash proof[PT_MERKLE_MAX_PROOF], size_t *n)
{
    if (!get || !proof || !n || index >= size) return -1;
    size_t count = 0;
    uint64_t lo = 0, hi = size;
    while (hi - lo > 1) {
        uint64_t k = split_point(hi - lo);
        if (count >= PT_MERKLE_MAX_PROOF) return -1;
        if (index < lo + k) {
            if (range_hash(lo + k, hi - lo - k, get, ctx, proof[count]) != 0) return -1;
            hi = lo + k;
        } else {
            if (range_hash(lo, k, get, ctx, proof[count]) != 0) return -1;
            lo += k;
        }
        count++;
    }
    reverse(proof, count);
    *n = count;
    return 0;
}

/* SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1, unrolled: m counts the old
 * tree's leaves inside the current range [lo, hi). */
int pt_merkle_consistency_proof(uint64_t size1, uint64_t size2, pt_subtree_fn get, void *ctx,
                                pt_hash proof[PT_MERKLE_MAX_PROOF], size_t *n)
{
    if (!get || !proof || !n || size1 == 0 || size1 > size2) return -1;
    size_t count = 0;
    uint64_t lo = 0, hi = size2, m = size1;
    int whole_old_tree = 1; /* the RFC's flag b */
    for (;;) {
        uint64_t len = hi - lo;
        if (m == len) {
            if (!whole_old_tree) {
                if (count >= PT_MERKLE_MAX_PROOF) return -1;
                if (range_hash(lo, len, get, ctx, proof[count]) != 0) return -1;
                count++;
            }
            break;
        }
        uint64_t k = split_point(len);
        if (count >= PT_MERKLE_MAX_PROOF) return -1;
        if (m <= k) {
            if (range_hash(lo + k, len - k, get, ctx, proof[count]) != 0) return -1;
            hi = lo + k;
        } else {
            if (range_hash(lo, k, get, ctx, proof[count]) != 0) return -1;
            lo += k;
            m -= k;
            whole_old_tree = 0;
        }
        count++;
    }
    reverse(proof, count);
    *n = count;
    return 0;
}

/* ---- verification ----------------------------------------------------- */

static int hash_eq(const pt_hash a, const pt_hash b)
{
    return memcmp(a, b, PT_HASH_BYTES) == 0;
}

/* RFC 9162 2.1.3.2. The proof length is fixed by (index, size): a longer
 * proof hits sn == 0 early, a shorter one leaves sn != 0. */
int pt_merkle_verify_inclusion(uint64_t index, uint64_t size, const pt_hash leaf_hash,
                               const pt_hash *proof, size_t n, const pt_hash root)
{
    if (!leaf_hash || !root || (n > 0 && !proof)) return -1;
    if (index >= size || n > PT_MERKLE_MAX_PROOF) return -1;
    uint64_t fn = index, sn = size - 1;
    pt_hash r;
    memcpy(r, leaf_hash, PT_HASH_BYTES);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0) return -1;
        if ((fn & 1) || fn == sn) {
            pt_merkle_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            pt_merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && hash_eq(r, root) ? 0 : -1;
}

/* RFC 9162 2.1.4.2. Equal sizes need an empty proof and equal roots (the
 * RFC's PROOF(n, D[n]) is empty); size1 = 0 is refused. */
int pt_merkle_verify_consistency(uint64_t size1, uint64_t size2, const pt_hash root1,
                                 const pt_hash root2, const pt_hash *proof, size_t n)
{
    if (!root1 || !root2 || (n > 0 && !proof)) return -1;
    if (size1 == 0 || size1 > size2 || n > PT_MERKLE_MAX_PROOF) return -1;
    if (size1 == size2) return n == 0 && hash_eq(root1, root2) ? 0 : -1;
    if (n == 0) return -1;

    /* When size1 is a power of two, root1 is the path's first element. */
    int prepend = (size1 & (size1 - 1)) == 0;
    size_t total = n + (prepend ? 1 : 0);
#define PATH_AT(i) (prepend ? ((i) == 0 ? root1 : proof[(i)-1]) : proof[(i)])

    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    pt_hash fr, sr;
    memcpy(fr, PATH_AT(0), PT_HASH_BYTES);
    memcpy(sr, PATH_AT(0), PT_HASH_BYTES);
    for (size_t i = 1; i < total; i++) {
        const uint8_t *c = PATH_AT(i);
        if (sn == 0) return -1;
        if ((fn & 1) || fn == sn) {
            pt_merkle_node_hash(c, fr, fr);
            pt_merkle_node_hash(c, sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            pt_merkle_node_hash(sr, c, sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
#undef PATH_AT
    return sn == 0 && hash_eq(fr, root1) && hash_eq(sr, root2) ? 0 : -1;
}

/* ---- incremental append ----------------------------------------------- */

int pt_merkle_append(uint64_t index, const pt_hash leaf_hash, pt_subtree_fn get,
                     pt_subtree_put_fn put, void *ctx)
{
    if (!leaf_hash || !get || !put || index == UINT64_MAX) return -1;
    pt_hash h, left;
    memcpy(h, leaf_hash, PT_HASH_BYTES);
    if (put(ctx, 0, index, h) != 0) return -1;
    unsigned level = 0;
    uint64_t i = index;
    /* A right child completes its parent: combine while the index is odd. */
    while (i & 1) {
        if (get(ctx, level, i - 1, left) != 0) return -1;
        pt_merkle_node_hash(left, h, h);
        level++;
        i >>= 1;
        if (put(ctx, level, i, h) != 0) return -1;
    }
    return 0;
}
