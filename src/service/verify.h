/* verify.h - offline verification of a consent receipt, as `patto verify`
 * does it (docs/log.md, "Receipts"). Needs no database and no keyring:
 *
 *   1. the receipt's checkpoint is signed by its public_key (and, when the
 *      caller names a trusted key, public_key is that key); the origin ends
 *      in "/<controller.tenant>"; the size equals proof.tree_size;
 *   2. SHA-256(0x00 || leaf) is at proof.leaf_index under the checkpoint's
 *      root (RFC 9162 inclusion proof);
 *   3. the leaf, a version 1 consent leaf, says what the receipt says
 *      (every member of the leaf is bound to a receipt member);
 *   4. optionally, a later checkpoint agrees with it: either a signed
 *      checkpoint of the same size and root, or the JSON answer of
 *      GET /v1/log/proof/consistency?from=<tree_size> whose checkpoint is
 *      signed by the same key and whose proof shows that the later tree
 *      extends the receipt's.
 *
 * No I/O: the caller passes the texts. The receipt text is the receipt
 * object, or a document holding it as member "receipt" (a saved
 * POST /v1/consents response).
 *
 * Results: PT_OK when everything holds; PT_ERR_INVALID when an input is
 * malformed (not JSON, a member missing or mistyped, bad base64, not a
 * signed note); PT_ERR_CRYPTO when it is well formed but does not verify (a
 * signature, a proof, a leaf that says something else, another key);
 * PT_ERR_TOO_LARGE beyond the limits below; PT_ERR_NOMEM. err->field names
 * what failed: a receipt member ("subject", "purpose.purpose",
 * "proof.inclusion"), "--key", or "--checkpoint" and "--checkpoint.<member>"
 * for the later file. err->detail is one line. */
#ifndef PT_VERIFY_H
#define PT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/note.h"
#include "core/result.h"

/* Input limits, in bytes. A receipt is a few KiB; a consistency answer at
 * most 64 hashes and one checkpoint. */
#define PT_VERIFY_RECEIPT_MAX (256 * 1024)
#define PT_VERIFY_LATER_MAX (64 * 1024)
#define PT_VERIFY_LEAF_MAX 16384
#define PT_VERIFY_EVENT_MAX 64

typedef struct pt_verify_input {
    const char *receipt; /* the receipt file's text */
    size_t receipt_len;
    const char *later; /* the --checkpoint file's text, or NULL */
    size_t later_len;
    const char *key; /* the trusted verifier string (--key), or NULL */
    size_t key_len;
} pt_verify_input;

/* What was verified, for the caller to report. */
typedef struct pt_verify_info {
    char event[PT_VERIFY_EVENT_MAX + 1]; /* the leaf's event id */
    char origin[PT_NOTE_NAME_MAX + 1];   /* the checkpoint's origin */
    char key_name[PT_NOTE_NAME_MAX + 1]; /* the signing key's name */
    char key_id[9];                      /* its key id, 8 hex digits */
    uint64_t leaf_index;
    uint64_t tree_size;
    uint64_t later_size; /* the later checkpoint's size; 0 without one */
} pt_verify_info;

/* Runs every check above; info (may be NULL) is filled on PT_OK. */
pt_result pt_verify_receipt(const pt_verify_input *in, pt_verify_info *info, pt_err *err);

#endif
