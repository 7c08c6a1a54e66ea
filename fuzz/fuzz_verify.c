/* libFuzzer target: `patto verify`'s parsers, fed from outside. Each input
 * is tried as a receipt file (with and without a trusted --key) and as the
 * --checkpoint file (a signed checkpoint or a consistency answer) of a
 * good receipt built at start-up under a fixed key. Invariants: a reason
 * is always one line; a receipt can only verify under the fixed key if it
 * is about a leaf of the start-up tree, at one of the sizes signed.
 *
 * The seed corpus (fuzz/corpus/verify) is this file's own output:
 *   cc -DFUZZ_VERIFY_SEEDS -Isrc fuzz/fuzz_verify.c build/libpatto.a \
 *      $(pkg-config --cflags --libs jansson libsodium) -o /tmp/seeds && /tmp/seeds DIR */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/merkle.h"
#include "core/note.h"
#include "service/verify.h"

#define LEAVES 5
#define RECEIPT_SIZE 4 /* the receipt is of leaf 3 under a checkpoint of size 4 */
#define ORIGIN "fuzz.example/acme"

static char leaves[LEAVES][512];
static pt_hash lh[LEAVES];
static uint8_t pk[PT_ED25519_PK], sk[PT_ED25519_SK];
static char vkey[PT_VERIFIER_MAX];
static char *receipt, *consistency, *checkpoint;

static int get(void *ctx, unsigned level, uint64_t index, pt_hash out)
{
    (void)ctx;
    if (level == 0) {
        if (index >= LEAVES) return -1;
        memcpy(out, lh[index], PT_HASH_BYTES);
        return 0;
    }
    pt_hash l, r;
    if (get(NULL, level - 1, 2 * index, l) || get(NULL, level - 1, 2 * index + 1, r)) return -1;
    pt_merkle_node_hash(l, r, out);
    return 0;
}

static json_t *b64(const void *p, size_t n)
{
    char buf[1024];
    sodium_bin2base64(buf, sizeof buf, p, n, sodium_base64_VARIANT_ORIGINAL);
    return json_string(buf);
}

static json_t *signed_checkpoint(uint64_t size)
{
    pt_checkpoint c;
    snprintf(c.origin, sizeof c.origin, "%s", ORIGIN);
    c.size = size;
    if (pt_merkle_root(size, get, NULL, c.root) != 0) abort();
    char text[256], note[1024];
    long n = pt_checkpoint_format(&c, text, sizeof text);
    if (n < 0 || pt_note_sign(text, (size_t)n, "fuzz.example", sk, note, sizeof note) < 0) abort();
    return json_string(note);
}

static json_t *hashes(const pt_hash *h, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, b64(h[i], PT_HASH_BYTES));
    return a;
}

static void build(void)
{
    if (sodium_init() < 0) abort();
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, 0x2a, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    if (pt_note_verifier_format("fuzz.example", pk, vkey, sizeof vkey) != 0) abort();
    for (int i = 0; i < LEAVES; i++) {
        snprintf(leaves[i], sizeof leaves[i],
                 "{\"v\":1,\"kind\":\"consent\",\"tenant\":\"acme\",\"event\":\"evt_%d\","
                 "\"subject\":\"sub_%d\",\"purpose\":\"marketing\",\"basis\":\"consent\","
                 "\"action\":\"grant\","
                 "\"channels\":[\"email\"],\"via\":\"api\","
                 "\"occurred_at\":\"2026-11-29T10:00:00.000Z\","
                 "\"recorded_at\":\"2026-11-29T10:00:00.100Z\","
                 "\"expires_at\":\"2028-11-28T10:00:00.000Z\","
                 "\"notice\":{\"notice\":\"privacy\",\"version\":\"1\",\"sha256\":\"%064d\"},"
                 "\"evidence_sha256\":null}",
                 i, i, i);
        pt_merkle_leaf_hash(leaves[i], strlen(leaves[i]), lh[i]);
    }
    pt_hash proof[PT_MERKLE_MAX_PROOF];
    size_t n = 0;
    const uint64_t idx = RECEIPT_SIZE - 1;
    if (pt_merkle_inclusion_proof(idx, RECEIPT_SIZE, get, NULL, proof, &n) != 0) abort();
    json_t *leaf = json_loads(leaves[idx], 0, NULL);
#define L(k) json_incref(json_object_get(leaf, k))
    json_t *r = json_pack(
        "{s:o, s:{s:o}, s:o, s:{s:o, s:o}, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:s, s:o, "
        "s:I, s:I, s:o, s:o, s:s}}",
        "receipt_id", L("event"), "controller", "tenant", L("tenant"), "subject", L("subject"),
        "purpose", "purpose", L("purpose"), "legal_basis", L("basis"), "action", L("action"),
        "channels", L("channels"), "collection_method", L("via"), "consent_timestamp",
        L("occurred_at"), "recorded_at", L("recorded_at"), "retention_until", L("expires_at"),
        "notice", L("notice"), "proof", "format", "patto-proof/1", "leaf",
        b64(leaves[idx], strlen(leaves[idx])), "leaf_index", (json_int_t)idx, "tree_size",
        (json_int_t)RECEIPT_SIZE, "inclusion", hashes(proof, n), "checkpoint",
        signed_checkpoint(RECEIPT_SIZE), "public_key", vkey);
#undef L
    if (!r) abort();
    receipt = json_dumps(r, JSON_INDENT(2));
    json_decref(r);
    json_decref(leaf);

    if (pt_merkle_consistency_proof(RECEIPT_SIZE, LEAVES, get, NULL, proof, &n) != 0) abort();
    json_t *c = json_pack("{s:I, s:I, s:o, s:o}", "from", (json_int_t)RECEIPT_SIZE, "to",
                          (json_int_t)LEAVES, "proof", hashes(proof, n), "checkpoint",
                          signed_checkpoint(LEAVES));
    consistency = json_dumps(c, JSON_INDENT(2));
    json_decref(c);
    json_t *cp = signed_checkpoint(RECEIPT_SIZE);
    checkpoint = strdup(json_string_value(cp));
    json_decref(cp);
    if (!receipt || !consistency || !checkpoint) abort();
}

static pt_result verify(const char *r, size_t rl, const char *later, size_t ll, const char *key,
                        pt_verify_info *info)
{
    pt_verify_input in = {.receipt = r,
                          .receipt_len = rl,
                          .later = later,
                          .later_len = ll,
                          .key = key,
                          .key_len = key ? strlen(key) : 0};
    pt_err err;
    pt_result rc = pt_verify_receipt(&in, info, &err);
    if (rc != PT_OK && (!err.detail[0] || strchr(err.detail, '\n'))) abort();
    return rc;
}

#ifdef FUZZ_VERIFY_SEEDS
static void put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) abort();
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    build();
    put(argv[1], "receipt.json", receipt);
    put(argv[1], "consistency.json", consistency);
    put(argv[1], "checkpoint.txt", checkpoint);
    return 0;
}
#else
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    build();
    /* the start-up receipt holds, alone and with each later file */
    if (verify(receipt, strlen(receipt), NULL, 0, vkey, NULL) != PT_OK ||
        verify(receipt, strlen(receipt), consistency, strlen(consistency), vkey, NULL) != PT_OK ||
        verify(receipt, strlen(receipt), checkpoint, strlen(checkpoint), NULL, NULL) != PT_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    pt_verify_info info;
    verify(s, size, NULL, 0, NULL, &info);
    if (verify(s, size, NULL, 0, vkey, &info) == PT_OK) {
        /* only what was signed at start-up can verify under the fixed key */
        if (strcmp(info.origin, ORIGIN) != 0 || info.tree_size < 1 || info.tree_size > LEAVES)
            abort();
        if (strncmp(info.event, "evt_", 4) != 0) abort();
    }
    if (verify(receipt, strlen(receipt), s, size, NULL, &info) == PT_OK &&
        (info.later_size < RECEIPT_SIZE || info.later_size > LEAVES))
        abort();
    return 0;
}
#endif
