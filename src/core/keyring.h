/* keyring.h - the installation's secrets, as a small text file:
 *
 *     # patto keyring v1
 *     blind <base64 of 32 bytes>
 *     kek <epoch> <base64 of 32 bytes>      (one line per live epoch)
 *     sign <base64 of a 32-byte Ed25519 seed> (signs the proof log's checkpoints)
 *
 * `patto init` creates it with mode 0600 next to the database
 * (PATH.keyring); `--keyring FILE` or PATTO_KEYRING chooses another file,
 * and PATTO_KEYRING_DATA may hold the whole text instead of a file (for
 * secret stores that inject environment variables). The keyring is never
 * stored in the database: a stolen database file alone decrypts nothing.
 * Pure module: parses and formats text; the CLI reads and writes files. */
#ifndef PT_KEYRING_H
#define PT_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "result.h"

#define PT_KEYRING_MAX_EPOCHS 16
#define PT_KEYRING_TEXT_MAX 4096

typedef struct pt_keyring {
    uint8_t blind[PT_KEY_BYTES];
    uint32_t n_epochs;
    uint32_t epochs[PT_KEYRING_MAX_EPOCHS]; /* ascending */
    uint8_t kek[PT_KEYRING_MAX_EPOCHS][PT_KEY_BYTES];
    uint8_t sign_seed[PT_KEY_BYTES]; /* Ed25519 seed of the checkpoint signer */
} pt_keyring;

/* Fresh random keyring with epoch 1 and a signing key. */
void pt_keyring_generate(pt_keyring *kr);
pt_result pt_keyring_parse(pt_keyring *kr, const char *text, size_t len, pt_err *err);
/* out must hold PT_KEYRING_TEXT_MAX bytes; returns length. */
size_t pt_keyring_format(const pt_keyring *kr, char *out);
/* The newest epoch's KEK, used for new wraps. */
uint32_t pt_keyring_current_epoch(const pt_keyring *kr);
/* NULL if that epoch is not (or no longer) in the keyring. */
const uint8_t *pt_keyring_kek(const pt_keyring *kr, uint32_t epoch);
/* A value stored in the database to detect a mismatched keyring at start:
 * HMAC of a constant under the blind key, hex. */
void pt_keyring_fingerprint(const pt_keyring *kr, char out[PT_SHA256_HEX]);
/* The signer's Ed25519 key pair, derived from sign_seed. */
void pt_keyring_sign_keypair(const pt_keyring *kr, uint8_t pk[32], uint8_t sk[64]);
void pt_keyring_wipe(pt_keyring *kr);

#endif
