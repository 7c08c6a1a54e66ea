/* note.h - C2SP signed notes with Ed25519 signatures, and C2SP
 * tlog-checkpoint bodies. Pure (libsodium for Ed25519 and SHA-256).
 *
 *   key id      = first 4 bytes of SHA-256(name || 0x0A || 0x01 || pubkey)
 *   verifier    = "<name>+<hex8 key id>+<base64(0x01 || pubkey)>"
 *   signed note = text (ends with '\n'), then '\n', then lines
 *                 "\u2014 <name> <base64(keyid(4) || signature(64))>\n"
 *   checkpoint  = "<origin>\n<size decimal>\n<base64 root hash>\n" followed
 *                 by optional extension lines, as the note text. */
#ifndef PT_NOTE_H
#define PT_NOTE_H

#include <stddef.h>
#include <stdint.h>

#define PT_NOTE_NAME_MAX 128
#define PT_NOTE_MAX 8192
#define PT_ED25519_PK 32
#define PT_ED25519_SK 64
#define PT_VERIFIER_MAX 256

typedef struct pt_note_verifier {
    char name[PT_NOTE_NAME_MAX + 1];
    uint8_t key_id[4];
    uint8_t pk[PT_ED25519_PK];
} pt_note_verifier;

/* Key id for a name and Ed25519 public key. */
void pt_note_key_id(const char *name, const uint8_t pk[PT_ED25519_PK], uint8_t id[4]);
/* "<name>+<hex id>+<base64(0x01||pk)>" into out (PT_VERIFIER_MAX). */
int pt_note_verifier_format(const char *name, const uint8_t pk[PT_ED25519_PK], char *out,
                            size_t cap);
/* Parses a verifier string; checks the key id matches. 0 or -1. */
int pt_note_verifier_parse(const char *s, size_t len, pt_note_verifier *v);

/* Signs text, which must be a valid note text as signed-note.md defines
 * it (non-empty, ending in '\n'). Writes the whole signed note into out
 * (cap bytes, NUL-terminated); returns its length or -1. */
long pt_note_sign(const char *text, size_t len, const char *name,
                  const uint8_t sk[PT_ED25519_SK], char *out, size_t cap);

/* Verifies that note (a complete signed note) carries a valid signature by
 * v. On success sets *text_len to the length of the signed text (which
 * starts at note[0]). Returns 0 or -1. Unknown signers are ignored;
 * malformed notes are refused. */
int pt_note_verify(const char *note, size_t len, const pt_note_verifier *v, size_t *text_len);

/* Checkpoint bodies. */
typedef struct pt_checkpoint {
    char origin[PT_NOTE_NAME_MAX + 1];
    uint64_t size;
    uint8_t root[32];
} pt_checkpoint;
/* Writes "<origin>\n<size>\n<b64 root>\n"; returns length or -1. */
long pt_checkpoint_format(const pt_checkpoint *c, char *out, size_t cap);
/* Parses the first three lines of a checkpoint text (extension lines
 * allowed after); 0 or -1. */
int pt_checkpoint_parse(const char *text, size_t len, pt_checkpoint *c);

#endif
