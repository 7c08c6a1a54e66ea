/* Unit tests for the offline receipt verifier (service/verify.c). Each test
 * builds its receipts itself from the core functions: canonical consent
 * leaves as docs/log.md shows them, an in-memory RFC 9162 tree, a checkpoint
 * signed with a fresh Ed25519 key, inclusion and consistency proofs. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/merkle.h"
#include "core/note.h"
#include "service/verify.h"

#define MAX_LEAVES 16
#define LEAF_CAP 768
#define NOTE_CAP 1024
#define ORIGIN "patto.example/acme"

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(verify, .init = setup);

/* ---- building blocks --------------------------------------------------- */

typedef struct signer {
    char name[64];
    uint8_t pk[PT_ED25519_PK], sk[PT_ED25519_SK];
    char vkey[PT_VERIFIER_MAX];
} signer;

static void new_signer(signer *s, const char *name)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    crypto_sign_keypair(s->pk, s->sk);
    cr_assert_eq(pt_note_verifier_format(name, s->pk, s->vkey, sizeof s->vkey), 0);
}

/* An in-memory log: leaf bytes and leaf hashes. */
typedef struct tree {
    char leaf[MAX_LEAVES][LEAF_CAP];
    pt_hash lh[MAX_LEAVES];
    uint64_t n;
} tree;

static int mem_get(void *ctx, unsigned level, uint64_t index, pt_hash out)
{
    const tree *t = ctx;
    if (level == 0) {
        if (index >= t->n) return -1;
        memcpy(out, t->lh[index], PT_HASH_BYTES);
        return 0;
    }
    pt_hash l, r;
    if (mem_get(ctx, level - 1, 2 * index, l) || mem_get(ctx, level - 1, 2 * index + 1, r))
        return -1;
    pt_merkle_node_hash(l, r, out);
    return 0;
}

static void add_leaf(tree *t, const char *bytes)
{
    cr_assert_lt(t->n, MAX_LEAVES);
    snprintf(t->leaf[t->n], LEAF_CAP, "%s", bytes);
    pt_merkle_leaf_hash(bytes, strlen(bytes), t->lh[t->n]);
    t->n++;
}

static const char NOTICE_SHA[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char EVIDENCE_SHA[] =
    "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/* A canonical version 1 consent leaf, as docs/log.md shows it. */
static void consent_leaf(tree *t, int i, const char *action, int with_notice)
{
    char buf[LEAF_CAP], notice[256], evidence[100];
    if (with_notice)
        snprintf(notice, sizeof notice,
                 "{\"notice\":\"privacy\",\"version\":\"3\",\"sha256\":\"%s\"}", NOTICE_SHA);
    else
        snprintf(notice, sizeof notice, "null");
    if (with_notice)
        snprintf(evidence, sizeof evidence, "\"%s\"", EVIDENCE_SHA);
    else
        snprintf(evidence, sizeof evidence, "null");
    snprintf(buf, sizeof buf,
             "{\"v\":1,\"kind\":\"consent\",\"tenant\":\"acme\",\"event\":\"evt_%026d\","
             "\"subject\":\"sub_%026d\",\"purpose\":\"marketing\",\"basis\":\"consent\","
             "\"action\":\"%s\","
             "\"channels\":[\"email\",\"sms\"],\"via\":\"web_form\","
             "\"occurred_at\":\"2026-11-29T10:00:%02d.000Z\","
             "\"recorded_at\":\"2026-11-29T10:00:%02d.120Z\",\"expires_at\":%s,"
             "\"notice\":%s,\"evidence_sha256\":%s}",
             i, i % 3, action, i, i, with_notice ? "\"2028-11-28T10:00:00.000Z\"" : "null", notice,
             evidence);
    add_leaf(t, buf);
}

/* Leaves 0..n-1: grants, a withdrawal at 1, a key.created leaf at 2. */
static void fill(tree *t, uint64_t n)
{
    memset(t, 0, sizeof *t);
    for (uint64_t i = 0; i < n; i++) {
        if (i == 1)
            consent_leaf(t, (int)i, "withdraw", 0);
        else if (i == 2)
            add_leaf(t, "{\"v\":1,\"kind\":\"key.created\",\"tenant\":\"acme\",\"key\":\"key_1\","
                        "\"role\":\"admin\",\"at\":\"2026-11-29T10:00:02.000Z\"}");
        else
            consent_leaf(t, (int)i, "grant", 1);
    }
}

static void root_of(const tree *t, uint64_t size, pt_hash root)
{
    cr_assert_eq(pt_merkle_root(size, mem_get, (void *)t, root), 0);
}

static void sign_checkpoint(const signer *s, const char *origin, uint64_t size, const pt_hash root,
                            char *out)
{
    pt_checkpoint c;
    snprintf(c.origin, sizeof c.origin, "%s", origin);
    c.size = size;
    memcpy(c.root, root, PT_HASH_BYTES);
    char text[512];
    long n = pt_checkpoint_format(&c, text, sizeof text);
    cr_assert_gt(n, 0);
    cr_assert_gt(pt_note_sign(text, (size_t)n, s->name, s->sk, out, NOTE_CAP), 0);
}

static json_t *b64(const void *p, size_t n)
{
    char buf[4096];
    sodium_bin2base64(buf, sizeof buf, p, n, sodium_base64_VARIANT_ORIGINAL);
    return json_string(buf);
}

/* The receipt of leaf `index` of t under a checkpoint of `size` signed by
 * s: the Kantara fields taken from the leaf itself, plus the proof. */
static json_t *make_receipt(const tree *t, uint64_t index, uint64_t size, const signer *s)
{
    json_t *leaf = json_loads(t->leaf[index], 0, NULL);
    cr_assert_not_null(leaf);
    pt_hash proof[PT_MERKLE_MAX_PROOF], root;
    size_t np = 0;
    cr_assert_eq(pt_merkle_inclusion_proof(index, size, mem_get, (void *)t, proof, &np), 0);
    json_t *incl = json_array();
    for (size_t i = 0; i < np; i++)
        json_array_append_new(incl, b64(proof[i], PT_HASH_BYTES));
    root_of(t, size, root);
    char note[NOTE_CAP];
    sign_checkpoint(s, ORIGIN, size, root, note);

#define L(k) json_incref(json_object_get(leaf, k))
    json_t *r = json_pack(
        "{s:s, s:o, s:s, s:{s:o}, s:o, s:{s:o}, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o}",
        "version", "patto-receipt/1 (Kantara CR v1.1, ISO/IEC 27560 fields)", "receipt_id",
        L("event"), "jurisdiction", "EU (GDPR)", "controller", "tenant", L("tenant"), "subject",
        L("subject"), "purpose", "purpose", L("purpose"), "legal_basis", L("basis"), "action",
        L("action"), "channels", L("channels"), "collection_method", L("via"), "consent_timestamp",
        L("occurred_at"), "recorded_at", L("recorded_at"), "retention_until", L("expires_at"),
        "withdrawal_method",
        "POST /v1/consents with action 'withdraw', or the withdrawal link in any e-mail",
        "notice", L("notice"));
#undef L
    cr_assert_not_null(r);
    json_t *ev = json_object_get(leaf, "evidence_sha256");
    if (json_is_string(ev)) json_object_set(r, "evidence_sha256", ev);
    json_object_set_new(r, "proof",
                        json_pack("{s:s, s:o, s:I, s:I, s:o, s:s, s:s}", "format", "patto-proof/1",
                                  "leaf", b64(t->leaf[index], strlen(t->leaf[index])), "leaf_index",
                                  (json_int_t)index, "tree_size", (json_int_t)size, "inclusion",
                                  incl, "checkpoint", note, "public_key", s->vkey));
    json_decref(leaf);
    return r;
}

static json_t *consistency_doc(const tree *t, uint64_t from, uint64_t to, const signer *s)
{
    pt_hash proof[PT_MERKLE_MAX_PROOF], root;
    size_t np = 0;
    cr_assert_eq(pt_merkle_consistency_proof(from, to, mem_get, (void *)t, proof, &np), 0);
    json_t *arr = json_array();
    for (size_t i = 0; i < np; i++)
        json_array_append_new(arr, b64(proof[i], PT_HASH_BYTES));
    root_of(t, to, root);
    char note[NOTE_CAP];
    sign_checkpoint(s, ORIGIN, to, root, note);
    return json_pack("{s:I, s:I, s:o, s:s}", "from", (json_int_t)from, "to", (json_int_t)to,
                     "proof", arr, "checkpoint", note);
}

static pt_result run(const json_t *receipt, const char *later, const char *key, pt_err *e,
                     pt_verify_info *info)
{
    char *text = json_dumps(receipt, JSON_INDENT(2));
    cr_assert_not_null(text);
    pt_verify_input in = {.receipt = text,
                          .receipt_len = strlen(text),
                          .later = later,
                          .later_len = later ? strlen(later) : 0,
                          .key = key,
                          .key_len = key ? strlen(key) : 0};
    pt_result r = pt_verify_receipt(&in, info, e);
    free(text);
    return r;
}

static void expect_ok(const json_t *receipt, const char *later, const char *key)
{
    pt_err e;
    pt_verify_info info;
    pt_result r = run(receipt, later, key, &e, &info);
    cr_assert_eq(r, PT_OK, "refused: %s [%s]", e.detail, e.field);
}

static void expect_refused(const json_t *receipt, const char *later, const char *key,
                           const char *field, const char *what)
{
    pt_err e;
    pt_result r = run(receipt, later, key, &e, NULL);
    cr_assert_neq(r, PT_OK, "%s: verified", what);
    cr_assert_str_eq(e.field, field, "%s: field '%s' (%s), want '%s'", what, e.field, e.detail,
                     field);
    cr_assert_gt(strlen(e.detail), 0);
    cr_assert_null(strchr(e.detail, '\n'), "%s: the reason is not one line", what);
}

/* dotted path set: "purpose.purpose", "proof.leaf_index" */
static void set_path(json_t *r, const char *path, json_t *v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strchr(buf, '.');
    if (dot) {
        *dot = '\0';
        r = json_object_get(r, buf);
        cr_assert(json_is_object(r), "no object %s", buf);
        path = path + (dot - buf) + 1;
    }
    cr_assert_eq(json_object_set_new(r, path, v), 0);
}

static json_t *proof_of(json_t *r)
{
    return json_object_get(r, "proof");
}

/* Flips one bit of the bytes that the base64 string v encodes. */
static json_t *flip_b64(const json_t *v, size_t byte, unsigned bit)
{
    uint8_t buf[4096];
    size_t n = 0;
    cr_assert_eq(sodium_base642bin(buf, sizeof buf, json_string_value(v), json_string_length(v),
                                   NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL),
                 0);
    cr_assert_lt(byte, n);
    buf[byte] ^= (uint8_t)(1u << bit);
    return b64(buf, n);
}

/* ---- a good receipt ---------------------------------------------------- */

Test(verify, good_receipts_verify_at_every_index_and_size)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 9);
    for (uint64_t size = 1; size <= 9; size++)
        for (uint64_t i = 0; i < size; i++) {
            if (i == 2) continue; /* the key.created leaf */
            json_t *r = make_receipt(&t, i, size, &s);
            pt_err e;
            pt_verify_info info;
            cr_assert_eq(run(r, NULL, NULL, &e, &info), PT_OK, "index %llu size %llu: %s [%s]",
                         (unsigned long long)i, (unsigned long long)size, e.detail, e.field);
            cr_assert_eq(info.leaf_index, i);
            cr_assert_eq(info.tree_size, size);
            cr_assert_eq(info.later_size, 0);
            cr_assert_str_eq(info.origin, ORIGIN);
            cr_assert_str_eq(info.key_name, "patto.example");
            cr_assert_str_eq(info.event, json_string_value(json_object_get(r, "receipt_id")));
            /* and with the right --key */
            expect_ok(r, NULL, s.vkey);
            json_decref(r);
        }
}

Test(verify, a_saved_post_answer_verifies)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 5);
    json_t *r = make_receipt(&t, 3, 5, &s);
    json_t *answer = json_pack("{s:O, s:s, s:O}", "event", json_object_get(r, "receipt_id"),
                               "state", "granted", "receipt", r);
    expect_ok(answer, NULL, NULL);
    /* the answer's own copy of the event id is bound to the leaf too */
    json_object_set_new(answer, "event", json_string("evt_x"));
    expect_refused(answer, NULL, NULL, "event", "around the receipt");
    json_decref(answer);
    json_decref(r);
}

Test(verify, a_withdrawal_without_notice_or_evidence_verifies)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 4);
    json_t *r = make_receipt(&t, 1, 4, &s);
    cr_assert(json_is_null(json_object_get(r, "notice")));
    cr_assert_null(json_object_get(r, "evidence_sha256"));
    expect_ok(r, NULL, NULL);
    /* evidence_sha256 null is the same as absent */
    json_object_set_new(r, "evidence_sha256", json_null());
    expect_ok(r, NULL, NULL);
    /* but a hash the leaf has not is refused */
    json_object_set_new(r, "evidence_sha256", json_string(EVIDENCE_SHA));
    expect_refused(r, NULL, NULL, "evidence_sha256", "evidence added");
    json_object_set_new(r, "evidence_sha256", json_null());
    json_object_set_new(
        r, "notice",
        json_pack("{s:s, s:s, s:s}", "notice", "privacy", "version", "3", "sha256", NOTICE_SHA));
    expect_refused(r, NULL, NULL, "notice", "notice added");
    json_decref(r);
}

/* ---- the receipt says what the leaf says ---------------------------------- */

Test(verify, every_field_the_leaf_covers_is_bound)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 6);
    static const struct {
        const char *path;
        const char *json; /* the altered value */
    } CASES[] = {
        {"receipt_id", "\"evt_00000000000000000000000099\""},
        {"subject", "\"sub_00000000000000000000000009\""},
        {"purpose.purpose", "\"profiling\""},
        {"legal_basis", "\"legitimate_interest\""},
        {"action", "\"deny\""},
        {"channels", "[\"email\"]"},
        {"channels", "[\"sms\",\"email\"]"},
        {"collection_method", "\"phone\""},
        {"consent_timestamp", "\"2026-11-29T10:00:05.001Z\""},
        {"consent_timestamp", "null"},
        {"recorded_at", "\"2026-11-29T10:00:05.121Z\""},
        {"retention_until", "\"2029-11-28T10:00:00.000Z\""},
        {"retention_until", "null"},
        {"notice.sha256", "\"0f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\""},
        {"notice.version", "\"4\""},
        {"notice.notice", "\"cookies\""},
        {"evidence_sha256", "\"3c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\""},
        {"evidence_sha256", "null"},
        {"controller.tenant", "\"acme2\""},
        {"controller.tenant", "\"cme\""},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        json_t *r = make_receipt(&t, 5, 6, &s);
        expect_ok(r, NULL, NULL);
        json_t *v = json_loads(CASES[i].json, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(v);
        set_path(r, CASES[i].path, v);
        char what[128];
        snprintf(what, sizeof what, "%s = %s", CASES[i].path, CASES[i].json);
        expect_refused(r, NULL, NULL, CASES[i].path, what);
        json_decref(r);
    }
    /* a field taken away is refused too, not skipped */
    static const char *const REQUIRED[] = {"receipt_id",  "subject",           "action",
                                           "channels",    "collection_method", "consent_timestamp",
                                           "recorded_at", "retention_until",   "notice"};
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++) {
        json_t *r = make_receipt(&t, 5, 6, &s);
        json_object_del(r, REQUIRED[i]);
        expect_refused(r, NULL, NULL, REQUIRED[i], REQUIRED[i]);
        json_decref(r);
    }
    /* what the leaf cannot vouch for cannot be changed or added either:
     * the fixed texts, extra members, and a POST answer around the receipt */
    const char *fixed[] = {"version", "jurisdiction", "withdrawal_method"};
    for (size_t i = 0; i < 3; i++) {
        json_t *r = make_receipt(&t, 5, 6, &s);
        set_path(r, fixed[i], json_string("elsewhere"));
        expect_refused(r, NULL, NULL, fixed[i], fixed[i]);
        json_decref(r);
    }
    const char *extra[] = {"consent_scope", "controller.name", "purpose.title", "notice.text"};
    const char *field[] = {"receipt", "controller", "purpose", "notice"};
    for (size_t i = 0; i < 4; i++) {
        json_t *r = make_receipt(&t, 5, 6, &s);
        set_path(r, extra[i], json_string("unvouched"));
        expect_refused(r, NULL, NULL, field[i], "vouch");
        json_decref(r);
    }
    json_t *r = make_receipt(&t, 5, 6, &s);
    json_t *answer = json_pack("{s:O, s:O, s:O, s:s, s:O}", "event", json_object_get(r, "receipt_id"),
                               "subject", json_object_get(r, "subject"), "purpose",
                               json_object_get(json_object_get(r, "purpose"), "purpose"), "state",
                               "granted", "receipt", r);
    expect_ok(answer, NULL, NULL);
    json_object_set_new(answer, "purpose", json_string("processing"));
    expect_refused(answer, NULL, NULL, "purpose", "around the receipt");
    json_object_del(answer, "purpose");
    json_object_set_new(answer, "discount", json_string("50%"));
    expect_refused(answer, NULL, NULL, "discount", "around the receipt");
    json_decref(answer);
    json_decref(r);
}

Test(verify, the_legal_basis_is_bound_wherever_the_receipt_shows_it)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 4);
    json_t *r = make_receipt(&t, 3, 4, &s);
    /* inside the purpose instead of beside it */
    json_object_del(r, "legal_basis");
    set_path(r, "purpose.legal_basis", json_string("consent"));
    expect_ok(r, NULL, NULL);
    set_path(r, "purpose.legal_basis", json_string("contract"));
    expect_refused(r, NULL, NULL, "purpose.legal_basis", "inner legal_basis altered");
    /* in both places: both are bound */
    json_object_set_new(r, "legal_basis", json_string("consent"));
    expect_refused(r, NULL, NULL, "purpose.legal_basis", "one of two copies altered");
    set_path(r, "purpose.legal_basis", json_string("consent"));
    expect_ok(r, NULL, NULL);
    json_object_set_new(r, "legal_basis", json_string("contract"));
    expect_refused(r, NULL, NULL, "legal_basis", "the other copy altered");
    /* in neither */
    json_object_del(json_object_get(r, "purpose"), "legal_basis");
    json_object_del(r, "legal_basis");
    expect_refused(r, NULL, NULL, "legal_basis", "no legal basis");
    json_decref(r);
}

Test(verify, a_receipt_about_a_leaf_of_another_kind_is_refused)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 4);
    json_t *r = make_receipt(&t, 3, 4, &s);
    /* point the proof at the key.created leaf (index 2) with its own proof */
    json_t *other = make_receipt(&t, 0, 4, &s);
    pt_hash proof[PT_MERKLE_MAX_PROOF];
    size_t np = 0;
    cr_assert_eq(pt_merkle_inclusion_proof(2, 4, mem_get, &t, proof, &np), 0);
    json_t *incl = json_array();
    for (size_t i = 0; i < np; i++)
        json_array_append_new(incl, b64(proof[i], PT_HASH_BYTES));
    json_object_set_new(proof_of(r), "inclusion", incl);
    json_object_set_new(proof_of(r), "leaf_index", json_integer(2));
    json_object_set_new(proof_of(r), "leaf", b64(t.leaf[2], strlen(t.leaf[2])));
    expect_refused(r, NULL, NULL, "proof.leaf", "key.created leaf");
    json_decref(other);
    json_decref(r);
}

Test(verify, a_leaf_with_an_unknown_member_is_refused)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 1);
    /* a log that signed a leaf with one more member */
    char leaf[LEAF_CAP];
    snprintf(leaf, sizeof leaf, "%.*s,\"revoked\":true}", (int)strlen(t.leaf[0]) - 1, t.leaf[0]);
    memset(&t, 0, sizeof t);
    add_leaf(&t, leaf);
    json_t *r = make_receipt(&t, 0, 1, &s);
    expect_refused(r, NULL, NULL, "proof.leaf", "unknown leaf member");
    json_decref(r);
}

/* ---- proofs and signatures ------------------------------------------------- */

Test(verify, a_flipped_bit_in_the_leaf_is_refused)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 7);
    json_t *r0 = make_receipt(&t, 4, 7, &s);
    size_t n = strlen(t.leaf[4]);
    for (size_t byte = 0; byte < n; byte += 7)
        for (unsigned bit = 0; bit < 8; bit += 3) {
            json_t *r = json_deep_copy(r0);
            json_t *p = proof_of(r);
            json_object_set_new(p, "leaf", flip_b64(json_object_get(p, "leaf"), byte, bit));
            expect_refused(r, NULL, NULL, "proof.inclusion", "flipped leaf bit");
            json_decref(r);
        }
    json_decref(r0);
}

Test(verify, a_flipped_bit_in_each_inclusion_hash_is_refused)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 11);
    json_t *r0 = make_receipt(&t, 5, 11, &s);
    json_t *incl = json_object_get(proof_of(r0), "inclusion");
    cr_assert_geq(json_array_size(incl), 3);
    for (size_t i = 0; i < json_array_size(incl); i++)
        for (size_t byte = 0; byte < PT_HASH_BYTES; byte += 5) {
            json_t *r = json_deep_copy(r0);
            json_t *a = json_object_get(proof_of(r), "inclusion");
            json_array_set_new(a, i, flip_b64(json_array_get(a, i), byte, (unsigned)(byte % 8)));
            expect_refused(r, NULL, NULL, "proof.inclusion", "flipped inclusion bit");
            json_decref(r);
        }
    /* one hash too many or too few */
    json_t *r = json_deep_copy(r0);
    json_array_append_new(json_object_get(proof_of(r), "inclusion"),
                          json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    expect_refused(r, NULL, NULL, "proof.inclusion", "extra hash");
    json_array_remove(json_object_get(proof_of(r), "inclusion"), 0);
    json_array_remove(json_object_get(proof_of(r), "inclusion"), 0);
    expect_refused(r, NULL, NULL, "proof.inclusion", "missing hash");
    json_decref(r);
    json_decref(r0);
}

/* Rebuilds a signed note with one bit of the signature (after the key id)
 * or of the root hash flipped. */
static json_t *tamper_note(const char *note, int in_signature, size_t byte)
{
    char text[NOTE_CAP];
    snprintf(text, sizeof text, "%s", note);
    const char *dash = strstr(text, "\xE2\x80\x94 ");
    cr_assert_not_null(dash);
    char *b = in_signature ? strrchr(text, ' ') + 1 : strchr(strchr(text, '\n') + 1, '\n') + 1;
    size_t len = strcspn(b, "\n");
    json_t *enc = json_stringn(b, len);
    json_t *flipped = flip_b64(enc, byte, 0);
    cr_assert_eq(json_string_length(flipped), len);
    memcpy(b, json_string_value(flipped), len);
    json_decref(enc);
    json_decref(flipped);
    return json_string(text);
}

Test(verify, a_flipped_bit_in_the_checkpoint_signature_is_refused)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 5);
    json_t *r0 = make_receipt(&t, 4, 5, &s);
    const char *note = json_string_value(json_object_get(proof_of(r0), "checkpoint"));
    for (size_t byte = 4; byte < 4 + 64; byte += 3) {
        json_t *r = json_deep_copy(r0);
        json_object_set_new(proof_of(r), "checkpoint", tamper_note(note, 1, byte));
        expect_refused(r, NULL, NULL, "proof.checkpoint", "flipped signature bit");
        json_decref(r);
    }
    /* in the key id: then no signature by the key is left */
    json_t *r = json_deep_copy(r0);
    json_object_set_new(proof_of(r), "checkpoint", tamper_note(note, 1, 0));
    expect_refused(r, NULL, NULL, "proof.checkpoint", "flipped key id bit");
    json_decref(r);
    json_decref(r0);
}

Test(verify, a_flipped_bit_in_the_root_is_refused)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 6);
    json_t *r0 = make_receipt(&t, 3, 6, &s);
    const char *note = json_string_value(json_object_get(proof_of(r0), "checkpoint"));
    for (size_t byte = 0; byte < PT_HASH_BYTES; byte += 4) {
        /* in the signed note as it is: the signature no longer holds */
        json_t *r = json_deep_copy(r0);
        json_object_set_new(proof_of(r), "checkpoint", tamper_note(note, 0, byte));
        expect_refused(r, NULL, NULL, "proof.checkpoint", "flipped root bit");
        json_decref(r);
        /* signed again by the right key: the inclusion proof no longer holds */
        pt_hash root;
        root_of(&t, 6, root);
        root[byte] ^= 0x10;
        char resigned[NOTE_CAP];
        sign_checkpoint(&s, ORIGIN, 6, root, resigned);
        r = json_deep_copy(r0);
        json_object_set_new(proof_of(r), "checkpoint", json_string(resigned));
        expect_refused(r, NULL, NULL, "proof.inclusion", "re-signed wrong root");
        json_decref(r);
    }
    json_decref(r0);
}

Test(verify, leaf_index_and_tree_size_off_by_one_are_refused)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 8);
    json_t *r0 = make_receipt(&t, 4, 7, &s);
    json_t *r = json_deep_copy(r0);
    set_path(r, "proof.leaf_index", json_integer(5));
    expect_refused(r, NULL, NULL, "proof.inclusion", "leaf_index + 1");
    set_path(r, "proof.leaf_index", json_integer(3));
    expect_refused(r, NULL, NULL, "proof.inclusion", "leaf_index - 1");
    set_path(r, "proof.leaf_index", json_integer(7));
    expect_refused(r, NULL, NULL, "proof.leaf_index", "leaf_index = tree_size");
    set_path(r, "proof.leaf_index", json_integer(-1));
    expect_refused(r, NULL, NULL, "proof.leaf_index", "negative leaf_index");
    json_decref(r);
    r = json_deep_copy(r0);
    set_path(r, "proof.tree_size", json_integer(8));
    expect_refused(r, NULL, NULL, "proof.tree_size", "tree_size + 1");
    set_path(r, "proof.tree_size", json_integer(6));
    expect_refused(r, NULL, NULL, "proof.tree_size", "tree_size - 1");
    json_decref(r);
    /* the last leaf: index + 1 reaches the size */
    r = make_receipt(&t, 6, 7, &s);
    set_path(r, "proof.leaf_index", json_integer(7));
    expect_refused(r, NULL, NULL, "proof.leaf_index", "last leaf + 1");
    json_decref(r);
    json_decref(r0);
}

Test(verify, the_trusted_key_must_be_the_signer)
{
    signer s, other, same_name;
    tree t;
    new_signer(&s, "patto.example");
    new_signer(&other, "other.example");
    new_signer(&same_name, "patto.example");
    fill(&t, 3);
    json_t *r = make_receipt(&t, 0, 3, &s);
    expect_ok(r, NULL, s.vkey);
    expect_refused(r, NULL, other.vkey, "--key", "another key");
    expect_refused(r, NULL, same_name.vkey, "--key", "another key of the same name");
    expect_refused(r, NULL, "patto.example+00000000+AAAA", "--key", "malformed key");
    /* a receipt whose public_key is swapped for another key fails its signature */
    set_path(r, "proof.public_key", json_string(same_name.vkey));
    expect_refused(r, NULL, NULL, "proof.checkpoint", "public_key swapped");
    json_decref(r);
    /* a receipt forged whole under another key holds together: only --key
     * tells it apart */
    r = make_receipt(&t, 0, 3, &same_name);
    expect_ok(r, NULL, NULL);
    expect_refused(r, NULL, s.vkey, "--key", "forged under another key");
    json_decref(r);
}

/* ---- a later checkpoint ------------------------------------------------------ */

Test(verify, a_later_checkpoint_of_the_same_size_must_have_the_same_root)
{
    signer s, other;
    tree t;
    new_signer(&s, "patto.example");
    new_signer(&other, "patto.example");
    fill(&t, 9);
    json_t *r = make_receipt(&t, 4, 6, &s);
    pt_hash root;
    root_of(&t, 6, root);
    char note[NOTE_CAP];
    sign_checkpoint(&s, ORIGIN, 6, root, note);
    expect_ok(r, note, NULL);
    expect_ok(r, note, s.vkey);
    pt_err e;
    pt_verify_info info;
    cr_assert_eq(run(r, note, NULL, &e, &info), PT_OK);
    cr_assert_eq(info.later_size, 6);

    /* signed by another key (same name, same tree) */
    sign_checkpoint(&other, ORIGIN, 6, root, note);
    expect_refused(r, note, NULL, "--checkpoint", "later checkpoint by another key");
    /* same size, another root */
    pt_hash forked;
    memcpy(forked, root, sizeof forked);
    forked[31] ^= 1;
    sign_checkpoint(&s, ORIGIN, 6, forked, note);
    expect_refused(r, note, NULL, "--checkpoint", "same size, another root");
    /* another log of the same key */
    sign_checkpoint(&s, "patto.example/other", 6, root, note);
    expect_refused(r, note, NULL, "--checkpoint", "another origin");
    /* smaller */
    root_of(&t, 5, root);
    sign_checkpoint(&s, ORIGIN, 5, root, note);
    expect_refused(r, note, NULL, "--checkpoint", "smaller later checkpoint");
    /* larger: a bare checkpoint proves nothing about extension */
    root_of(&t, 9, root);
    sign_checkpoint(&s, ORIGIN, 9, root, note);
    expect_refused(r, note, NULL, "--checkpoint", "larger bare checkpoint");
    /* not a note at all */
    expect_refused(r, "hello\n", NULL, "--checkpoint", "garbage");
    expect_refused(r, "", NULL, "--checkpoint", "empty file");
    json_decref(r);
}

Test(verify, a_consistency_proof_to_a_larger_tree_verifies)
{
    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 16);
    for (uint64_t m = 1; m <= 16; m++)
        for (uint64_t n = m; n <= 16; n += 3) {
            uint64_t idx = m - 1 == 2 ? 0 : m - 1;
            json_t *r = make_receipt(&t, idx, m, &s);
            json_t *c = consistency_doc(&t, m, n, &s);
            char *later = json_dumps(c, 0);
            pt_err e;
            pt_verify_info info;
            cr_assert_eq(run(r, later, s.vkey, &e, &info), PT_OK, "%llu -> %llu: %s [%s]",
                         (unsigned long long)m, (unsigned long long)n, e.detail, e.field);
            cr_assert_eq(info.later_size, n);
            free(later);
            json_decref(c);
            json_decref(r);
        }
}

static void expect_later_refused(const json_t *r, const json_t *c, const char *field,
                                 const char *what)
{
    char *later = json_dumps(c, 0);
    expect_refused(r, later, NULL, field, what);
    free(later);
}

Test(verify, a_bad_consistency_answer_is_refused)
{
    signer s, other;
    tree t;
    new_signer(&s, "patto.example");
    new_signer(&other, "patto.example");
    fill(&t, 13);
    json_t *r = make_receipt(&t, 4, 6, &s);
    json_t *c0 = consistency_doc(&t, 6, 13, &s);
    char *good = json_dumps(c0, 0);
    expect_ok(r, good, NULL);
    free(good);

    /* every bit position class of every proof hash */
    json_t *proof = json_object_get(c0, "proof");
    cr_assert_geq(json_array_size(proof), 3);
    for (size_t i = 0; i < json_array_size(proof); i++)
        for (size_t byte = 0; byte < PT_HASH_BYTES; byte += 7) {
            json_t *c = json_deep_copy(c0);
            json_t *a = json_object_get(c, "proof");
            json_array_set_new(a, i, flip_b64(json_array_get(a, i), byte, (unsigned)(i % 8)));
            expect_later_refused(r, c, "--checkpoint.proof", "corrupted consistency proof");
            json_decref(c);
        }
    json_t *c = json_deep_copy(c0);
    json_array_remove(json_object_get(c, "proof"), 0);
    expect_later_refused(r, c, "--checkpoint.proof", "a proof hash missing");
    json_decref(c);

    /* the later checkpoint signed by another key */
    c = consistency_doc(&t, 6, 13, &other);
    expect_later_refused(r, c, "--checkpoint.checkpoint", "later checkpoint by another key");
    json_decref(c);

    /* a later size smaller than the receipt's */
    c = consistency_doc(&t, 4, 6, &s);
    json_object_set_new(c, "from", json_integer(6));
    json_object_set_new(c, "to", json_integer(4));
    expect_later_refused(r, c, "--checkpoint.to", "smaller later size");
    json_decref(c);

    /* from another size than the receipt's */
    c = consistency_doc(&t, 5, 13, &s);
    expect_later_refused(r, c, "--checkpoint.from", "from another size");
    json_decref(c);

    /* to that is not the checkpoint's size */
    c = json_deep_copy(c0);
    json_object_set_new(c, "to", json_integer(12));
    expect_later_refused(r, c, "--checkpoint.to", "to not the checkpoint's size");
    json_decref(c);

    /* a proof to another tree of the same size (a fork after the receipt) */
    tree fork;
    memcpy(&fork, &t, sizeof fork);
    fork.n = 6;
    for (int i = 6; i < 13; i++)
        consent_leaf(&fork, 100 + i, "grant", 1);
    c = consistency_doc(&fork, 6, 13, &s);
    json_t *mixed = json_deep_copy(c0);
    json_object_set(mixed, "checkpoint", json_object_get(c, "checkpoint"));
    expect_later_refused(r, mixed, "--checkpoint.proof", "proof of another tree");
    json_decref(mixed);
    json_decref(c);

    /* without its checkpoint, and malformed members */
    c = json_deep_copy(c0);
    json_object_del(c, "checkpoint");
    expect_later_refused(r, c, "--checkpoint.checkpoint", "no checkpoint");
    json_object_set_new(c, "checkpoint", json_integer(1));
    expect_later_refused(r, c, "--checkpoint.checkpoint", "checkpoint not a string");
    json_decref(c);
    c = json_deep_copy(c0);
    json_object_set_new(c, "proof", json_string("x"));
    expect_later_refused(r, c, "--checkpoint.proof", "proof not an array");
    json_array_append_new(json_object_get(c0, "proof"), json_string("not base64!"));
    expect_later_refused(r, c0, "--checkpoint.proof", "proof entry not base64");
    json_decref(c);
    expect_refused(r, "{\"from\":6,\"from\":6}", NULL, "--checkpoint", "duplicate member");
    expect_refused(r, "{", NULL, "--checkpoint", "not JSON");
    json_decref(c0);
    json_decref(r);
}

/* ---- malformed receipts ---------------------------------------------------- */

static void expect_text_refused(const char *text, pt_result code, const char *field)
{
    pt_err e;
    pt_verify_input in = {.receipt = text, .receipt_len = strlen(text)};
    cr_assert_eq(pt_verify_receipt(&in, NULL, &e), code, "%s: %s [%s]", text, e.detail, e.field);
    cr_assert_str_eq(e.field, field, "%s: %s", text, e.detail);
    cr_assert_null(strchr(e.detail, '\n'));
}

Test(verify, malformed_receipts_are_refused)
{
    expect_text_refused("", PT_ERR_INVALID, "");
    expect_text_refused("[]", PT_ERR_INVALID, "");
    expect_text_refused("{\"a\":1,\"a\":1}", PT_ERR_INVALID, "");
    expect_text_refused("{\"a\":1,}", PT_ERR_INVALID, "");
    expect_text_refused("{\"a\":\"\xC3\x28\"}", PT_ERR_INVALID, "");
    expect_text_refused("{\"controller\":{\"tenant\":\"acme\"}}", PT_ERR_INVALID, "proof");
    expect_text_refused("{\"controller\":{}}", PT_ERR_INVALID, "controller.tenant");
    expect_text_refused("{\"controller\":{\"tenant\":\"acme\"},\"proof\":{\"format\":\"x\"}}",
                        PT_ERR_INVALID, "proof.format");

    signer s;
    tree t;
    new_signer(&s, "patto.example");
    fill(&t, 4);
    json_t *r0 = make_receipt(&t, 3, 4, &s);
    static const struct {
        const char *path, *json, *field;
    } CASES[] = {
        {"proof.leaf", "\"not base64\"", "proof.leaf"},
        {"proof.leaf", "\"\"", "proof.leaf"},
        {"proof.leaf", "\"YQ\"", "proof.leaf"},
        {"proof.leaf", "\"YR==\"", "proof.leaf"}, /* non-canonical padding bits */
        {"proof.leaf_index", "\"3\"", "proof.leaf_index"},
        {"proof.leaf_index", "3.0", "proof.leaf_index"},
        {"proof.tree_size", "null", "proof.tree_size"},
        {"proof.tree_size", "0", "proof.leaf_index"},
        {"proof.inclusion", "{}", "proof.inclusion"},
        {"proof.inclusion", "[\"AAAA\"]", "proof.inclusion"},
        {"proof.checkpoint", "7", "proof.checkpoint"},
        {"proof.checkpoint", "\"patto.example/acme\\n4\\n\"", "proof.checkpoint"},
        {"proof.public_key", "\"patto.example\"", "proof.public_key"},
        {"proof.format", "\"patto-proof/2\"", "proof.format"},
        {"controller", "\"acme\"", "controller"},
        {"purpose", "\"marketing\"", "purpose.purpose"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        json_t *r = json_deep_copy(r0);
        json_t *v = json_loads(CASES[i].json, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(v, "%s", CASES[i].json);
        set_path(r, CASES[i].path, v);
        expect_refused(r, NULL, NULL, CASES[i].field, CASES[i].json);
        json_decref(r);
    }
    /* too large */
    size_t big = PT_VERIFY_RECEIPT_MAX + 1;
    char *text = malloc(big + 1);
    memset(text, ' ', big);
    text[0] = '{';
    text[big - 1] = '}';
    text[big] = '\0';
    pt_err e;
    pt_verify_input in = {.receipt = text, .receipt_len = big};
    cr_assert_eq(pt_verify_receipt(&in, NULL, &e), PT_ERR_TOO_LARGE);
    free(text);
    json_decref(r0);
}
