/* merkle.h - RFC 9162 (RFC 6962) Merkle tree hashing and proofs, pure.
 *
 *   leaf hash  = SHA-256(0x00 || leaf bytes)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH(empty) = SHA-256("")
 *
 * Proof generation reads hashes of complete subtrees through a callback,
 * so that a log stored anywhere (SQLite, PostgreSQL, memory) needs
 * O(log n) reads per proof: the store keeps, for every complete subtree
 * [k*2^level, (k+1)*2^level), its hash (level 0 = leaf hashes).
 * Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 strictly:
 * exact proof lengths, 32-byte hashes, size1 = 0 refused for consistency. */
#ifndef PT_MERKLE_H
#define PT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define PT_HASH_BYTES 32
#define PT_MERKLE_MAX_PROOF 64 /* enough for 2^63 leaves */

typedef uint8_t pt_hash[PT_HASH_BYTES];

void pt_merkle_leaf_hash(const void *leaf, size_t n, pt_hash out);
void pt_merkle_node_hash(const pt_hash left, const pt_hash right, pt_hash out);
void pt_merkle_empty_root(pt_hash out);

/* Reads the hash of the complete subtree covering leaves
 * [index << level, (index + 1) << level). Returns 0, or -1 on failure. */
typedef int (*pt_subtree_fn)(void *ctx, unsigned level, uint64_t index, pt_hash out);

/* Root of the first `size` leaves (size >= 1; size 0 gives the empty root),
 * with O(log size) subtree reads. Returns 0 or -1. */
int pt_merkle_root(uint64_t size, pt_subtree_fn get, void *ctx, pt_hash out);

/* Inclusion proof of leaf `index` in the tree of `size` leaves: fills
 * proof[] and *n. Returns 0 or -1 (index >= size or a read failed). */
int pt_merkle_inclusion_proof(uint64_t index, uint64_t size, pt_subtree_fn get, void *ctx,
                              pt_hash proof[PT_MERKLE_MAX_PROOF], size_t *n);

/* Consistency proof from size1 to size2 (0 < size1 <= size2). */
int pt_merkle_consistency_proof(uint64_t size1, uint64_t size2, pt_subtree_fn get, void *ctx,
                                pt_hash proof[PT_MERKLE_MAX_PROOF], size_t *n);

/* Verifiers: return 0 when the proof holds, -1 otherwise. */
int pt_merkle_verify_inclusion(uint64_t index, uint64_t size, const pt_hash leaf_hash,
                               const pt_hash *proof, size_t n, const pt_hash root);
int pt_merkle_verify_consistency(uint64_t size1, uint64_t size2, const pt_hash root1,
                                 const pt_hash root2, const pt_hash *proof, size_t n);

/* Incremental append for the store: given the new leaf's index and hash,
 * calls `put` for the leaf (level 0) and every complete subtree the leaf
 * completes (at most log2 n + 1 puts), reading left siblings with `get`. */
typedef int (*pt_subtree_put_fn)(void *ctx, unsigned level, uint64_t index, const pt_hash h);
int pt_merkle_append(uint64_t index, const pt_hash leaf_hash, pt_subtree_fn get,
                     pt_subtree_put_fn put, void *ctx);

#endif
