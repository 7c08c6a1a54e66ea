#include "crypto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#define SEAL_VERSION 1
#define AD_MAX 160

int pt_crypto_init(void) { return sodium_init() < 0 ? -1 : 0; }

/* A per-thread ChaCha20 generator with fast key erasure, seeded from the
 * OS: the write path draws several random values per event (ids, nonces,
 * keys) and a getrandom() system call for each was a tenth of an import's
 * time. After every block the first 32 bytes become the next key, so a
 * later memory disclosure cannot recover values already handed out. A
 * forked child starts over from the OS (pthread_atfork). */
#define DRBG_BLOCK 1024
typedef struct drbg {
    uint8_t key[crypto_stream_chacha20_ietf_KEYBYTES];
    uint8_t buf[DRBG_BLOCK];
    size_t pos; /* next unread byte of buf; DRBG_BLOCK = empty */
    int seeded;
} drbg;

static _Thread_local drbg rng;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Only the forking thread exists in the child, and it must not replay the
 * parent's stream. */
static void drbg_forget(void)
{
    sodium_memzero(&rng, sizeof rng);
}

static void drbg_atfork(void) { pthread_atfork(NULL, NULL, drbg_forget); }

static void drbg_refill(void)
{
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    if (!rng.seeded) {
        pthread_once(&atfork_once, drbg_atfork);
        randombytes_buf(rng.key, sizeof rng.key);
        rng.seeded = 1;
    }
    crypto_stream_chacha20_ietf(rng.buf, sizeof rng.buf, nonce, rng.key);
    memcpy(rng.key, rng.buf, sizeof rng.key);
    sodium_memzero(rng.buf, sizeof rng.key);
    rng.pos = sizeof rng.key;
}

void pt_random(void *buf, size_t n)
{
    uint8_t *out = buf;
    if (n > DRBG_BLOCK / 2) { /* large requests: straight from the OS */
        randombytes_buf(buf, n);
        return;
    }
    while (n > 0) {
        if (!rng.seeded || rng.pos >= DRBG_BLOCK) drbg_refill();
        size_t k = DRBG_BLOCK - rng.pos < n ? DRBG_BLOCK - rng.pos : n;
        memcpy(out, rng.buf + rng.pos, k);
        sodium_memzero(rng.buf + rng.pos, k); /* handed out: not kept */
        rng.pos += k;
        out += k;
        n -= k;
    }
}

void pt_wipe(void *p, size_t n) { sodium_memzero(p, n); }

int pt_ct_equal(const void *a, const void *b, size_t n) { return sodium_memcmp(a, b, n) == 0; }

/* The associated data names where a ciphertext belongs; the subject id is
 * appended raw, so the AD is not a C string. */
static size_t make_ad(uint8_t ad[AD_MAX], const char *table, const char *column,
                      const uint8_t subject[PT_ID_BYTES])
{
    int n = snprintf((char *)ad, AD_MAX - PT_ID_BYTES, "patto:v1:%s:%s:", table, column);
    if (n < 0 || n >= AD_MAX - PT_ID_BYTES) n = AD_MAX - PT_ID_BYTES - 1;
    memcpy(ad + n, subject, PT_ID_BYTES);
    return (size_t)n + PT_ID_BYTES;
}

void pt_seal(const uint8_t key[PT_KEY_BYTES], const char *table, const char *column,
             const uint8_t subject[PT_ID_BYTES], const uint8_t *plain, size_t n, uint8_t *out)
{
    uint8_t ad[AD_MAX];
    size_t adlen = make_ad(ad, table, column, subject);
    out[0] = SEAL_VERSION;
    pt_random(out + 1, PT_NONCE_BYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + PT_NONCE_BYTES, &clen, plain, n, ad,
                                               adlen, NULL, out + 1, key);
}

pt_result pt_open(const uint8_t key[PT_KEY_BYTES], const char *table, const char *column,
                  const uint8_t subject[PT_ID_BYTES], const uint8_t *in, size_t n, uint8_t *out)
{
    if (n < PT_SEAL_OVERHEAD || in[0] != SEAL_VERSION) return PT_ERR_CRYPTO;
    uint8_t ad[AD_MAX];
    size_t adlen = make_ad(ad, table, column, subject);
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL, in + 1 + PT_NONCE_BYTES,
                                                   n - 1 - PT_NONCE_BYTES, ad, adlen, in + 1,
                                                   key) != 0)
        return PT_ERR_CRYPTO;
    return PT_OK;
}

static void epoch_column(uint32_t epoch, char col[24])
{
    snprintf(col, 24, "dek.e%u", epoch);
}

void pt_key_wrap(const uint8_t kek[PT_KEY_BYTES], uint32_t epoch,
                 const uint8_t subject[PT_ID_BYTES], const uint8_t dek[PT_KEY_BYTES],
                 uint8_t out[PT_WRAPPED_KEY_BYTES])
{
    char col[24];
    epoch_column(epoch, col);
    pt_seal(kek, "subjects", col, subject, dek, PT_KEY_BYTES, out);
}

pt_result pt_key_unwrap(const uint8_t kek[PT_KEY_BYTES], uint32_t epoch,
                        const uint8_t subject[PT_ID_BYTES],
                        const uint8_t in[PT_WRAPPED_KEY_BYTES], uint8_t dek[PT_KEY_BYTES])
{
    char col[24];
    epoch_column(epoch, col);
    return pt_open(kek, "subjects", col, subject, in, PT_WRAPPED_KEY_BYTES, dek);
}

void pt_blind_index(const uint8_t blind_key[PT_KEY_BYTES], uint32_t tenant, int type,
                    const char *normalised, size_t n, uint8_t out[PT_BLIND_BYTES])
{
    crypto_auth_hmacsha256_state st;
    uint8_t head[6] = {(uint8_t)(tenant >> 24), (uint8_t)(tenant >> 16), (uint8_t)(tenant >> 8),
                       (uint8_t)tenant, (uint8_t)type, 0};
    crypto_auth_hmacsha256_init(&st, blind_key, PT_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, head, sizeof head);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)normalised, n);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void pt_secret_hash(const uint8_t *secret, size_t n, uint8_t out[32])
{
    static const uint8_t personal[] = "patto api key v1";
    crypto_generichash(out, 32, secret, n, personal, sizeof personal - 1);
}

void pt_evidence_digest(const uint8_t dek[PT_KEY_BYTES], const uint8_t event_id[PT_ID_BYTES],
                        const void *data, size_t n, uint8_t *salt_out, char out[PT_SHA256_HEX])
{
    static const char label[] = "patto:v1:evidence-salt:";
    uint8_t msg[sizeof label - 1 + PT_ID_BYTES], salt[PT_EVIDENCE_SALT_BYTES];
    memcpy(msg, label, sizeof label - 1);
    memcpy(msg + sizeof label - 1, event_id, PT_ID_BYTES);
    crypto_generichash(salt, sizeof salt, msg, sizeof msg, dek, PT_KEY_BYTES);
    crypto_hash_sha256_state st;
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, salt, sizeof salt);
    crypto_hash_sha256_update(&st, data, n);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(out, PT_SHA256_HEX, h, sizeof h);
    if (salt_out) memcpy(salt_out, salt, sizeof salt);
    sodium_memzero(salt, sizeof salt);
}

void pt_sha256_hex(const void *data, size_t n, char out[PT_SHA256_HEX])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, n);
    sodium_bin2hex(out, PT_SHA256_HEX, h, sizeof h);
}
