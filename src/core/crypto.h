/* crypto.h - every cryptographic operation of patto, over libsodium.
 *
 * Vault: each subject has a random 32-byte data key (DEK). Personal fields
 * are sealed with XChaCha20-Poly1305 under the DEK, with associated data
 * binding table, column and subject id, so that a ciphertext moved to
 * another row or column fails to open. The DEK is stored wrapped by the
 * key-encryption key (KEK) of an epoch; destroying the wrapped DEK shreds
 * the subject. DEKs are random, never derived: a derived key could be
 * re-derived and so could never be shredded.
 *
 * Blind index: identifiers are looked up by HMAC-SHA-256 over tenant,
 * type and normalised value under a dedicated key; the value itself is
 * never stored in clear.
 *
 * Secrets passed in are borrowed; functions wipe their own temporaries
 * with sodium_memzero. Pure module: the only "I/O" is the OS RNG. */
#ifndef PT_CRYPTO_H
#define PT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "result.h"

#define PT_KEY_BYTES 32
#define PT_NONCE_BYTES 24
#define PT_TAG_BYTES 16
/* version byte + nonce + tag */
#define PT_SEAL_OVERHEAD (1 + PT_NONCE_BYTES + PT_TAG_BYTES)
#define PT_WRAPPED_KEY_BYTES (PT_SEAL_OVERHEAD + PT_KEY_BYTES)
#define PT_BLIND_BYTES 32
#define PT_SHA256_HEX 65

/* Must be called once before anything else; returns -1 if libsodium fails. */
int pt_crypto_init(void);

void pt_random(void *buf, size_t n);

/* Seals plaintext under key with AD = "patto:v1:" table ":" column ":" subject.
 * out must hold n + PT_SEAL_OVERHEAD bytes. */
void pt_seal(const uint8_t key[PT_KEY_BYTES], const char *table, const char *column,
             const uint8_t subject[PT_ID_BYTES], const uint8_t *plain, size_t n, uint8_t *out);
/* Opens; out must hold n - PT_SEAL_OVERHEAD bytes. PT_ERR_CRYPTO if forged,
 * moved or truncated. */
pt_result pt_open(const uint8_t key[PT_KEY_BYTES], const char *table, const char *column,
                  const uint8_t subject[PT_ID_BYTES], const uint8_t *in, size_t n, uint8_t *out);

/* Key wrapping: a DEK sealed under the KEK, bound to the subject and epoch. */
void pt_key_wrap(const uint8_t kek[PT_KEY_BYTES], uint32_t epoch,
                 const uint8_t subject[PT_ID_BYTES], const uint8_t dek[PT_KEY_BYTES],
                 uint8_t out[PT_WRAPPED_KEY_BYTES]);
pt_result pt_key_unwrap(const uint8_t kek[PT_KEY_BYTES], uint32_t epoch,
                        const uint8_t subject[PT_ID_BYTES],
                        const uint8_t in[PT_WRAPPED_KEY_BYTES], uint8_t dek[PT_KEY_BYTES]);

/* HMAC-SHA-256(blind_key, tenant_be32 || type || 0x00 || normalised). */
void pt_blind_index(const uint8_t blind_key[PT_KEY_BYTES], uint32_t tenant, int type,
                    const char *normalised, size_t n, uint8_t out[PT_BLIND_BYTES]);

/* API key secrets are 160-bit random; a fast keyed hash is enough. */
void pt_secret_hash(const uint8_t *secret, size_t n, uint8_t out[32]);
/* Constant-time equality; returns 1 when equal. */
int pt_ct_equal(const void *a, const void *b, size_t n);

/* Lower-case hex SHA-256 of data. */
void pt_sha256_hex(const void *data, size_t n, char out[PT_SHA256_HEX]);

/* The digest of a consent's evidence that the ledger and the proof log
 * keep: lower-case hex SHA-256(salt || data), salt = BLAKE2b-128 keyed by
 * the person's data key over "patto:v1:evidence-salt:" || event id.
 * Evidence is low-entropy (an IP address, a form name), so a plain hash
 * could be reversed by trying values; the salt makes that need the data
 * key, and destroying the key (erasure) leaves the digest unlinkable while
 * the proof structure stays intact. salt_out (may be NULL) gets the salt,
 * which the person's export discloses so that anyone can re-check. */
#define PT_EVIDENCE_SALT_BYTES 16
void pt_evidence_digest(const uint8_t dek[PT_KEY_BYTES], const uint8_t event_id[PT_ID_BYTES],
                        const void *data, size_t n, uint8_t *salt_out,
                        char out[PT_SHA256_HEX]);

void pt_wipe(void *p, size_t n);

#endif
