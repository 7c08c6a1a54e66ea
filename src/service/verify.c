/* verify.c - offline verification of consent receipts (see verify.h and
 * docs/log.md). Everything is read strictly: duplicate JSON members,
 * non-canonical base64, unknown leaf members and mistyped values are
 * refused. Messages never quote the inputs' strings (they may hold
 * anything, including newlines); they quote numbers, and names that the
 * note parser has already checked to be one line. */
#include "verify.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "core/jsonscan.h"
#include "core/merkle.h"

#define PROOF_FORMAT "patto-proof/1"
#define LEAF_VERSION 1
#define LEAF_KIND "consent"

typedef unsigned long long ull;

/* ---- errors ------------------------------------------------------------ */

/* Sets err with field = prefix + name. */
static pt_result bad(pt_err *err, pt_result code, const char *prefix, const char *name,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static pt_result bad(pt_err *err, pt_result code, const char *prefix, const char *name,
                     const char *fmt, ...)
{
    char field[PT_ERR_FIELD_MAX], detail[PT_ERR_DETAIL_MAX];
    snprintf(field, sizeof field, "%s%s", prefix, name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return pt_err_set(err, code, field, "%s", detail);
}

/* ---- readers ----------------------------------------------------------- */

/* Strict standard base64 with padding, exactly s[0..n): the canonical
 * encoding only. Returns the decoded length or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4 != 0) return -1;
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, cap, s, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != s + n)
        return -1;
    if (sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL) - 1 != n) return -1;
    return (long)len;
}

/* Parses text as one JSON object: bounded size and depth, valid UTF-8,
 * no duplicate members. what names it in messages ("the receipt"). */
static pt_result load_object(const char *text, size_t len, size_t max, const char *field,
                             const char *what, json_t **out, pt_err *err)
{
    *out = NULL;
    if (!text) return pt_err_set(err, PT_ERR_INVALID, field, "%s is missing", what);
    if (len > max)
        return pt_err_set(err, PT_ERR_TOO_LARGE, field, "%s is larger than %zu bytes", what, max);
    size_t off = 0;
    switch (pt_jsonscan(text, len, PT_JSON_MAX_DEPTH, &off)) {
    case PT_JSONSCAN_OK:
        break;
    case PT_JSONSCAN_TOO_DEEP:
        return pt_err_set(err, PT_ERR_INVALID, field, "%s nests deeper than %d levels (byte %zu)",
                          what, PT_JSON_MAX_DEPTH, off);
    case PT_JSONSCAN_BAD_UTF8:
        return pt_err_set(err, PT_ERR_INVALID, field, "%s is not valid UTF-8 (byte %zu)", what,
                          off);
    case PT_JSONSCAN_NUL:
    default:
        return pt_err_set(err, PT_ERR_INVALID, field, "%s holds a NUL byte (byte %zu)", what, off);
    }
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        /* jansson's text may quote the input: keep it on one line */
        for (char *p = je.text; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        return pt_err_set(err, PT_ERR_INVALID, field, "%s is not valid JSON: %.120s (line %d)",
                          what, je.text, je.line);
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return pt_err_set(err, PT_ERR_INVALID, field, "%s is not a JSON object", what);
    }
    *out = doc;
    return PT_OK;
}

/* obj[name], which must be present; prefix names obj in the field. */
static pt_result member(const json_t *obj, const char *prefix, const char *name, json_t **v,
                        pt_err *err)
{
    *v = json_object_get(obj, name);
    if (!*v) return bad(err, PT_ERR_INVALID, prefix, name, "'%s%s' is missing", prefix, name);
    return PT_OK;
}

static pt_result member_obj(const json_t *obj, const char *prefix, const char *name, json_t **v,
                            pt_err *err)
{
    pt_result r = member(obj, prefix, name, v, err);
    if (r == PT_OK && !json_is_object(*v))
        r = bad(err, PT_ERR_INVALID, prefix, name, "'%s%s' must be an object", prefix, name);
    return r;
}

/* A string member without NUL bytes. */
static pt_result member_str(const json_t *obj, const char *prefix, const char *name, const char **s,
                            size_t *n, pt_err *err)
{
    json_t *v;
    pt_result r = member(obj, prefix, name, &v, err);
    if (r != PT_OK) return r;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return bad(err, PT_ERR_INVALID, prefix, name, "'%s%s' must be a string", prefix, name);
    *s = json_string_value(v);
    *n = json_string_length(v);
    return PT_OK;
}

static pt_result member_u64(const json_t *obj, const char *prefix, const char *name, uint64_t *u,
                            pt_err *err)
{
    json_t *v;
    pt_result r = member(obj, prefix, name, &v, err);
    if (r != PT_OK) return r;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bad(err, PT_ERR_INVALID, prefix, name, "'%s%s' must be a non-negative integer",
                   prefix, name);
    *u = (uint64_t)json_integer_value(v);
    return PT_OK;
}

/* An array of base64 SHA-256 hashes, at most PT_MERKLE_MAX_PROOF. */
static pt_result member_hashes(const json_t *obj, const char *prefix, const char *name,
                               pt_hash *out, size_t *n, pt_err *err)
{
    json_t *v;
    pt_result r = member(obj, prefix, name, &v, err);
    if (r != PT_OK) return r;
    if (!json_is_array(v) || json_array_size(v) > PT_MERKLE_MAX_PROOF)
        return bad(err, PT_ERR_INVALID, prefix, name,
                   "'%s%s' must be an array of at most %d base64 hashes", prefix, name,
                   PT_MERKLE_MAX_PROOF);
    size_t i;
    json_t *h;
    json_array_foreach(v, i, h)
    {
        if (!json_is_string(h) || b64_decode(json_string_value(h), json_string_length(h), out[i],
                                             PT_HASH_BYTES) != PT_HASH_BYTES)
            return bad(err, PT_ERR_INVALID, prefix, name,
                       "'%s%s' entry %zu is not the base64 of a 32-byte hash", prefix, name, i);
    }
    *n = json_array_size(v);
    return PT_OK;
}

/* ---- the receipt ------------------------------------------------------- */

typedef struct receipt {
    json_t *doc;     /* owned */
    const json_t *r; /* the receipt object, inside doc */
    const char *tenant;
    size_t tenant_len;
    uint8_t leaf[PT_VERIFY_LEAF_MAX];
    size_t leaf_len;
    uint64_t index, size;
    pt_hash incl[PT_MERKLE_MAX_PROOF];
    size_t nincl;
    const char *note;
    size_t note_len;
    const char *vkey;
    size_t vkey_len;
} receipt;

static pt_result parse_receipt(const pt_verify_input *in, receipt *rc, pt_err *err)
{
    pt_result r = load_object(in->receipt, in->receipt_len, PT_VERIFY_RECEIPT_MAX, "",
                              "the receipt", &rc->doc, err);
    if (r != PT_OK) return r;
    /* a saved POST /v1/consents answer holds the receipt as a member */
    const json_t *doc = rc->doc, *inner = json_object_get(doc, "receipt");
    rc->r = json_is_object(inner) && !json_object_get(doc, "proof") ? inner : doc;

    json_t *controller, *proof;
    const char *s;
    size_t n;
    if ((r = member_obj(rc->r, "", "controller", &controller, err)) != PT_OK ||
        (r = member_str(controller, "controller.", "tenant", &rc->tenant, &rc->tenant_len, err)) !=
            PT_OK)
        return r;
    if (!json_object_get(rc->r, "proof"))
        return pt_err_set(err, PT_ERR_INVALID, "proof",
                          "the receipt has no proof (it was issued before the proof log, or "
                          "cut); GET /v1/receipts/{event} gives one with its proof");
    if ((r = member_obj(rc->r, "", "proof", &proof, err)) != PT_OK) return r;

    if ((r = member_str(proof, "proof.", "format", &s, &n, err)) != PT_OK) return r;
    if (n != strlen(PROOF_FORMAT) || memcmp(s, PROOF_FORMAT, n) != 0)
        return pt_err_set(err, PT_ERR_INVALID, "proof.format",
                          "unknown proof format; this verifier reads " PROOF_FORMAT);

    if ((r = member_str(proof, "proof.", "leaf", &s, &n, err)) != PT_OK) return r;
    long ll = b64_decode(s, n, rc->leaf, sizeof rc->leaf);
    if (ll <= 0)
        return pt_err_set(err, PT_ERR_INVALID, "proof.leaf",
                          "'proof.leaf' is not the base64 of 1 to %d bytes", PT_VERIFY_LEAF_MAX);
    rc->leaf_len = (size_t)ll;

    if ((r = member_u64(proof, "proof.", "leaf_index", &rc->index, err)) != PT_OK ||
        (r = member_u64(proof, "proof.", "tree_size", &rc->size, err)) != PT_OK)
        return r;
    if (rc->index >= rc->size)
        return pt_err_set(err, PT_ERR_INVALID, "proof.leaf_index",
                          "leaf_index %llu is not below tree_size %llu", (ull)rc->index,
                          (ull)rc->size);
    if ((r = member_hashes(proof, "proof.", "inclusion", rc->incl, &rc->nincl, err)) != PT_OK ||
        (r = member_str(proof, "proof.", "checkpoint", &rc->note, &rc->note_len, err)) != PT_OK ||
        (r = member_str(proof, "proof.", "public_key", &rc->vkey, &rc->vkey_len, err)) != PT_OK)
        return r;
    return PT_OK;
}

/* ---- 1. the checkpoint ------------------------------------------------- */

static int same_key(const pt_note_verifier *a, const pt_note_verifier *b)
{
    return strcmp(a->name, b->name) == 0 && memcmp(a->key_id, b->key_id, 4) == 0 &&
           memcmp(a->pk, b->pk, PT_ED25519_PK) == 0;
}

static pt_result check_checkpoint(const pt_verify_input *in, const receipt *rc, pt_note_verifier *v,
                                  pt_checkpoint *cp, pt_err *err)
{
    if (pt_note_verifier_parse(rc->vkey, rc->vkey_len, v) != 0)
        return pt_err_set(err, PT_ERR_INVALID, "proof.public_key",
                          "'proof.public_key' is not an Ed25519 verifier string "
                          "(NAME+KEYID+BASE64)");
    if (in->key) {
        pt_note_verifier t;
        if (pt_note_verifier_parse(in->key, in->key_len, &t) != 0)
            return pt_err_set(err, PT_ERR_INVALID, "--key",
                              "--key is not an Ed25519 verifier string (NAME+KEYID+BASE64, as "
                              "GET /v1/log/keys lists it)");
        if (!same_key(&t, v))
            return pt_err_set(err, PT_ERR_CRYPTO, "--key",
                              "the receipt is signed by key %s+%02x%02x%02x%02x, not by the "
                              "trusted --key",
                              v->name, v->key_id[0], v->key_id[1], v->key_id[2], v->key_id[3]);
    }
    size_t tl = 0;
    if (pt_note_verify(rc->note, rc->note_len, v, &tl) != 0)
        return pt_err_set(err, PT_ERR_CRYPTO, "proof.checkpoint",
                          "the checkpoint carries no valid signature by public_key");
    if (pt_checkpoint_parse(rc->note, tl, cp) != 0)
        return pt_err_set(err, PT_ERR_INVALID, "proof.checkpoint",
                          "the signed text is not a checkpoint (origin, size, root hash lines)");
    size_t ol = strlen(cp->origin);
    if (ol < rc->tenant_len + 2 || cp->origin[ol - rc->tenant_len - 1] != '/' ||
        memcmp(cp->origin + ol - rc->tenant_len, rc->tenant, rc->tenant_len) != 0)
        return pt_err_set(err, PT_ERR_CRYPTO, "controller.tenant",
                          "the checkpoint's origin %s is not the log of the receipt's "
                          "controller.tenant",
                          cp->origin);
    if (cp->size != rc->size)
        return pt_err_set(err, PT_ERR_CRYPTO, "proof.tree_size",
                          "tree_size %llu is not the checkpoint's size %llu", (ull)rc->size,
                          (ull)cp->size);
    return PT_OK;
}

/* ---- 2. inclusion ------------------------------------------------------ */

static pt_result check_inclusion(const receipt *rc, const pt_checkpoint *cp, pt_err *err)
{
    pt_hash lh;
    pt_merkle_leaf_hash(rc->leaf, rc->leaf_len, lh);
    if (pt_merkle_verify_inclusion(rc->index, rc->size, lh, (const pt_hash *)rc->incl, rc->nincl,
                                   cp->root) != 0)
        return pt_err_set(err, PT_ERR_CRYPTO, "proof.inclusion",
                          "the inclusion proof does not verify: the leaf is not leaf %llu of the "
                          "checkpoint's tree of %llu",
                          (ull)rc->index, (ull)rc->size);
    return PT_OK;
}

/* ---- 3. the leaf says what the receipt says ----------------------------- */

enum { T_STR = 1, T_NULL = 2, T_ARR = 4, T_OBJ = 8, T_INT = 16 };

/* The members of a version 1 consent leaf, exactly. */
static const struct {
    const char *name;
    unsigned types;
} LEAF_MEMBERS[] = {
    {"v", T_INT},
    {"kind", T_STR},
    {"tenant", T_STR},
    {"event", T_STR},
    {"subject", T_STR},
    {"purpose", T_STR},
    {"basis", T_STR},
    {"action", T_STR},
    {"channels", T_ARR},
    {"via", T_STR},
    {"occurred_at", T_STR | T_NULL},
    {"recorded_at", T_STR | T_NULL},
    {"expires_at", T_STR | T_NULL},
    {"notice", T_OBJ | T_NULL},
    {"evidence_sha256", T_STR | T_NULL},
};
#define N_LEAF_MEMBERS (sizeof LEAF_MEMBERS / sizeof LEAF_MEMBERS[0])

static const char *const NOTICE_MEMBERS[] = {"notice", "version", "sha256"};

/* Which receipt member each leaf member must equal (dotted paths). alt is
 * another place a receipt may show the same value (the legal basis inside
 * the purpose, as Kantara receipts and patto's first receipts put it);
 * every copy shown is bound, and at least one must be there. */
static const struct {
    const char *leaf, *receipt, *alt;
} MATCHES[] = {
    {"tenant", "controller.tenant", NULL},
    {"event", "receipt_id", NULL},
    {"subject", "subject", NULL},
    {"purpose", "purpose.purpose", NULL},
    {"basis", "legal_basis", "purpose.legal_basis"},
    {"action", "action", NULL},
    {"channels", "channels", NULL},
    {"via", "collection_method", NULL},
    {"occurred_at", "consent_timestamp", NULL},
    {"recorded_at", "recorded_at", NULL},
    {"expires_at", "retention_until", NULL},
    {"notice", "notice", NULL},
    {"evidence_sha256", "evidence_sha256", NULL},
};

static unsigned type_of(const json_t *v)
{
    if (json_is_string(v)) return strlen(json_string_value(v)) == json_string_length(v) ? T_STR : 0;
    if (json_is_null(v)) return T_NULL;
    if (json_is_array(v)) return T_ARR;
    if (json_is_object(v)) return T_OBJ;
    if (json_is_integer(v)) return T_INT;
    return 0;
}

static int leaf_member_known(const char *k)
{
    for (size_t i = 0; i < N_LEAF_MEMBERS; i++)
        if (strcmp(LEAF_MEMBERS[i].name, k) == 0) return 1;
    return 0;
}

/* The leaf is a version 1 consent leaf with exactly its members, typed. */
static pt_result leaf_shape(const json_t *leaf, pt_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)leaf, k, v)
    {
        (void)v;
        if (!leaf_member_known(k))
            return pt_err_set(err, PT_ERR_INVALID, "proof.leaf",
                              "the leaf has a member that a version 1 consent leaf has not");
    }
    for (size_t i = 0; i < N_LEAF_MEMBERS; i++) {
        json_t *m = json_object_get(leaf, LEAF_MEMBERS[i].name);
        if (!m || !(type_of(m) & LEAF_MEMBERS[i].types))
            return pt_err_set(err, PT_ERR_INVALID, "proof.leaf",
                              "the leaf's '%s' is missing or mistyped", LEAF_MEMBERS[i].name);
    }
    json_t *ver = json_object_get(leaf, "v");
    if (json_integer_value(ver) != LEAF_VERSION)
        return pt_err_set(err, PT_ERR_INVALID, "proof.leaf",
                          "the leaf is of version %lld; this verifier reads version %d",
                          (long long)json_integer_value(ver), LEAF_VERSION);
    if (strcmp(json_string_value(json_object_get(leaf, "kind")), LEAF_KIND) != 0)
        return pt_err_set(err, PT_ERR_CRYPTO, "proof.leaf",
                          "the leaf is not a consent event: the receipt cannot be about it");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(leaf, "channels"), i, c)
    {
        if (type_of(c) != T_STR)
            return pt_err_set(err, PT_ERR_INVALID, "proof.leaf",
                              "the leaf's channels are not strings");
    }
    json_t *notice = json_object_get(leaf, "notice");
    if (json_is_object(notice)) {
        if (json_object_size(notice) != 3)
            return pt_err_set(err, PT_ERR_INVALID, "proof.leaf",
                              "the leaf's notice is not {notice, version, sha256}");
        for (size_t j = 0; j < 3; j++)
            if (type_of(json_object_get(notice, NOTICE_MEMBERS[j])) != T_STR)
                return pt_err_set(err, PT_ERR_INVALID, "proof.leaf",
                                  "the leaf's notice is not {notice, version, sha256}");
    }
    return PT_OK;
}

/* The receipt's member at a dotted path ("purpose.purpose"), or NULL. */
static json_t *path_get(const json_t *obj, const char *path)
{
    char part[64];
    const char *dot;
    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(part, sizeof part, "%.*s", (int)(dot - path), path);
        obj = json_object_get(obj, part);
        if (!json_is_object(obj)) return NULL;
        path = dot + 1;
    }
    return json_object_get(obj, path);
}

static pt_result differs(pt_err *err, const char *rfield, const char *lfield)
{
    const char *dot = strrchr(rfield, '.');
    if (strcmp(dot ? dot + 1 : rfield, lfield) == 0)
        return pt_err_set(err, PT_ERR_CRYPTO, rfield, "'%s' differs from the signed leaf's",
                          rfield);
    return pt_err_set(err, PT_ERR_CRYPTO, rfield, "'%s' differs from the signed leaf's '%s'",
                      rfield, lfield);
}

/* What the leaf cannot vouch for must not be able to say anything: the
 * receipt's other members are fixed texts, and nothing else may be there.
 * A saved POST answer around the receipt repeats some of the leaf's values;
 * those are bound too, so that a file that says "verified" says nothing the
 * log does not. */
static const char *const RECEIPT_MEMBERS[] = {
    "version",   "receipt_id",        "jurisdiction",      "controller",  "subject",
    "purpose",   "legal_basis",       "action",            "channels",    "collection_method",
    "consent_timestamp", "recorded_at", "retention_until", "withdrawal_method", "notice",
    "evidence_sha256",   "proof"};
static const struct {
    const char *member, *text;
} RECEIPT_FIXED[] = {
    {"version", "patto-receipt/1 (Kantara CR v1.1, ISO/IEC 27560 fields)"},
    {"jurisdiction", "EU (GDPR)"},
    {"withdrawal_method",
     "POST /v1/consents with action 'withdraw', or the withdrawal link in any e-mail"},
};
/* the POST answer's members and the leaf member each repeats (NULL: not
 * bound - "state" is derived at answer time and says nothing lasting) */
static const struct {
    const char *outer, *leaf;
} OUTER[] = {
    {"event", "event"},         {"subject", "subject"},         {"purpose", "purpose"},
    {"action", "action"},       {"channels", "channels"},       {"occurred_at", "occurred_at"},
    {"recorded_at", "recorded_at"}, {"expires_at", "expires_at"}, {"state", NULL},
    {"receipt", NULL},
};

static bool in_list(const char *const *list, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], k) == 0) return true;
    return false;
}

static pt_result bind_the_rest(const receipt *rc, const json_t *leaf, pt_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rc->r, k, v)
    {
        if (!in_list(RECEIPT_MEMBERS, sizeof RECEIPT_MEMBERS / sizeof RECEIPT_MEMBERS[0], k))
            return pt_err_set(err, PT_ERR_CRYPTO, "receipt",
                              "the receipt has a member the signed leaf does not vouch for");
    }
    for (size_t i = 0; i < sizeof RECEIPT_FIXED / sizeof RECEIPT_FIXED[0]; i++) {
        json_t *m = json_object_get(rc->r, RECEIPT_FIXED[i].member);
        if (m && !(json_is_string(m) && strcmp(json_string_value(m), RECEIPT_FIXED[i].text) == 0))
            return pt_err_set(err, PT_ERR_CRYPTO, RECEIPT_FIXED[i].member,
                              "'%s' is not the text patto writes there",
                              RECEIPT_FIXED[i].member);
    }
    static const char *const CONTROLLER[] = {"tenant"}, *const PURPOSE[] = {"purpose",
                                                                            "legal_basis"};
    json_object_foreach(json_object_get(rc->r, "controller"), k, v)
    {
        if (!in_list(CONTROLLER, 1, k))
            return pt_err_set(err, PT_ERR_CRYPTO, "controller",
                              "the controller has a member the signed leaf does not vouch for");
    }
    json_object_foreach(json_object_get(rc->r, "purpose"), k, v)
    {
        if (!in_list(PURPOSE, 2, k))
            return pt_err_set(err, PT_ERR_CRYPTO, "purpose",
                              "the purpose has a member the signed leaf does not vouch for");
    }
    json_t *notice = json_object_get(rc->r, "notice");
    if (json_is_object(notice) && json_object_size(notice) != 3)
        return pt_err_set(err, PT_ERR_CRYPTO, "notice",
                          "the notice has a member the signed leaf does not vouch for");
    if (rc->r == rc->doc) return PT_OK;
    json_object_foreach((json_t *)rc->doc, k, v)
    {
        size_t i = 0, n = sizeof OUTER / sizeof OUTER[0];
        while (i < n && strcmp(OUTER[i].outer, k) != 0) i++;
        if (i == n)
            return pt_err_set(err, PT_ERR_CRYPTO, k,
                              "the answer around the receipt has a member the signed leaf "
                              "does not vouch for");
        if (OUTER[i].leaf && !json_equal(v, json_object_get(leaf, OUTER[i].leaf)))
            return pt_err_set(err, PT_ERR_CRYPTO, k,
                              "'%s' of the answer around the receipt differs from the signed "
                              "leaf's",
                              k);
    }
    return PT_OK;
}

static pt_result check_leaf(const receipt *rc, pt_verify_info *info, pt_err *err)
{
    json_t *leaf = NULL;
    pt_result r = load_object((const char *)rc->leaf, rc->leaf_len, PT_VERIFY_LEAF_MAX,
                              "proof.leaf", "the leaf", &leaf, err);
    if (r == PT_OK) r = leaf_shape(leaf, err);
    for (size_t i = 0; r == PT_OK && i < sizeof MATCHES / sizeof MATCHES[0]; i++) {
        const char *rf = MATCHES[i].receipt, *lf = MATCHES[i].leaf, *alt = MATCHES[i].alt;
        json_t *lv = json_object_get(leaf, lf), *rv = path_get(rc->r, rf);
        if (alt) {
            json_t *av = path_get(rc->r, alt);
            if (av && !json_equal(av, lv)) {
                r = differs(err, alt, lf);
                break;
            }
            if (av && !rv) continue;
        }
        if (!rv && strcmp(rf, "evidence_sha256") == 0) rv = json_null(); /* absent: none */
        if (!rv) {
            r = pt_err_set(err, PT_ERR_INVALID, rf, "'%s' is missing", rf);
        } else if (json_is_object(lv) && json_is_object(rv)) {
            /* the notice: its name, version and hash (the receipt may say more) */
            for (size_t j = 0; r == PT_OK && j < 3; j++) {
                const char *m = NOTICE_MEMBERS[j];
                json_t *x = json_object_get(rv, m);
                char field[PT_ERR_FIELD_MAX];
                snprintf(field, sizeof field, "%s.%s", rf, m);
                if (!x)
                    r = pt_err_set(err, PT_ERR_INVALID, field, "'%s' is missing", field);
                else if (!json_equal(x, json_object_get(lv, m)))
                    r = differs(err, field, m);
            }
        } else if (!json_equal(lv, rv)) {
            r = differs(err, rf, lf);
        }
    }
    if (r == PT_OK) r = bind_the_rest(rc, leaf, err);
    if (r == PT_OK && info) {
        /* for a one-line report: control characters shown as '?' */
        snprintf(info->event, sizeof info->event, "%s",
                 json_string_value(json_object_get(leaf, "event")));
        for (char *p = info->event; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    }
    json_decref(leaf);
    return r;
}

/* ---- 4. a later checkpoint --------------------------------------------- */

static pt_result later_note(const char *note, size_t len, const char *field,
                            const pt_note_verifier *v, const pt_checkpoint *cp,
                            pt_checkpoint *later, pt_err *err)
{
    size_t tl = 0;
    if (pt_note_verify(note, len, v, &tl) != 0)
        return pt_err_set(err, PT_ERR_CRYPTO, field,
                          "the later checkpoint carries no valid signature by the receipt's key "
                          "%s+%02x%02x%02x%02x",
                          v->name, v->key_id[0], v->key_id[1], v->key_id[2], v->key_id[3]);
    if (pt_checkpoint_parse(note, tl, later) != 0)
        return pt_err_set(err, PT_ERR_INVALID, field,
                          "the later signed text is not a checkpoint (origin, size, root hash)");
    if (strcmp(later->origin, cp->origin) != 0)
        return pt_err_set(err, PT_ERR_CRYPTO, field,
                          "the later checkpoint is of log %s, not of the receipt's %s",
                          later->origin, cp->origin);
    return PT_OK;
}

static pt_result check_consistency(const char *text, size_t len, const pt_note_verifier *v,
                                   const pt_checkpoint *cp, pt_checkpoint *later, pt_err *err)
{
    static const char P[] = "--checkpoint.";
    json_t *doc = NULL, *cj;
    uint64_t from = 0, to = 0;
    pt_hash proof[PT_MERKLE_MAX_PROOF];
    size_t n = 0;
    const char *note = NULL;
    size_t note_len = 0;
    pt_result r = load_object(text, len, PT_VERIFY_LATER_MAX, "--checkpoint",
                              "the --checkpoint file", &doc, err);
    if (r != PT_OK) return r;
    if ((r = member_u64(doc, P, "from", &from, err)) != PT_OK ||
        (r = member_u64(doc, P, "to", &to, err)) != PT_OK ||
        (r = member_hashes(doc, P, "proof", proof, &n, err)) != PT_OK)
        goto out;
    if (!(cj = json_object_get(doc, "checkpoint")) || json_is_null(cj)) {
        r = pt_err_set(err, PT_ERR_INVALID, "--checkpoint.checkpoint",
                       "the consistency proof comes without its checkpoint: ask "
                       "GET /v1/log/proof/consistency?from=%llu without 'to'",
                       (ull)cp->size);
        goto out;
    }
    if ((r = member_str(doc, P, "checkpoint", &note, &note_len, err)) != PT_OK) goto out;
    if (from != cp->size) {
        r = pt_err_set(err, PT_ERR_CRYPTO, "--checkpoint.from",
                       "the consistency proof starts at size %llu, not at the receipt's "
                       "tree_size %llu",
                       (ull)from, (ull)cp->size);
        goto out;
    }
    if (to < from) {
        r = pt_err_set(err, PT_ERR_CRYPTO, "--checkpoint.to",
                       "the later size %llu is smaller than the receipt's %llu", (ull)to,
                       (ull)from);
        goto out;
    }
    if ((r = later_note(note, note_len, "--checkpoint.checkpoint", v, cp, later, err)) != PT_OK)
        goto out;
    if (later->size != to) {
        r = pt_err_set(err, PT_ERR_CRYPTO, "--checkpoint.to",
                       "'to' is %llu but the later checkpoint's size is %llu", (ull)to,
                       (ull)later->size);
        goto out;
    }
    if (pt_merkle_verify_consistency(from, to, cp->root, later->root, (const pt_hash *)proof, n) !=
        0)
        r = pt_err_set(err, PT_ERR_CRYPTO, "--checkpoint.proof",
                       "the consistency proof does not verify: the tree of size %llu does not "
                       "extend the receipt's of size %llu",
                       (ull)to, (ull)from);
out:
    json_decref(doc);
    return r;
}

static pt_result check_later(const char *text, size_t len, const pt_note_verifier *v,
                             const pt_checkpoint *cp, uint64_t *later_size, pt_err *err)
{
    if (len > PT_VERIFY_LATER_MAX)
        return pt_err_set(err, PT_ERR_TOO_LARGE, "--checkpoint",
                          "the --checkpoint file is larger than %d bytes", PT_VERIFY_LATER_MAX);
    pt_checkpoint later;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    pt_result r;
    if (i < len && text[i] == '{') {
        r = check_consistency(text, len, v, cp, &later, err);
    } else {
        /* a signed checkpoint: of the receipt's size, with its root */
        r = later_note(text, len, "--checkpoint", v, cp, &later, err);
        if (r == PT_OK && later.size < cp->size)
            r = pt_err_set(err, PT_ERR_CRYPTO, "--checkpoint",
                           "the later checkpoint's size %llu is smaller than the receipt's %llu",
                           (ull)later.size, (ull)cp->size);
        else if (r == PT_OK && later.size > cp->size)
            r = pt_err_set(err, PT_ERR_INVALID, "--checkpoint",
                           "the later checkpoint is larger (size %llu) than the receipt's (%llu): "
                           "give the JSON of GET /v1/log/proof/consistency?from=%llu, which "
                           "proves that it extends it",
                           (ull)later.size, (ull)cp->size, (ull)cp->size);
        else if (r == PT_OK && memcmp(later.root, cp->root, PT_HASH_BYTES) != 0)
            r = pt_err_set(err, PT_ERR_CRYPTO, "--checkpoint",
                           "the later checkpoint has the receipt's size %llu but another root: "
                           "the log was forked or rewritten",
                           (ull)cp->size);
    }
    if (r == PT_OK) *later_size = later.size;
    return r;
}

/* ---- all of it ----------------------------------------------------------- */

pt_result pt_verify_receipt(const pt_verify_input *in, pt_verify_info *info, pt_err *err)
{
    pt_err_clear(err);
    if (!in || !in->receipt) return pt_err_set(err, PT_ERR_INVALID, "", "no receipt given");
    receipt *rc = calloc(1, sizeof *rc);
    if (!rc) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    pt_verify_info tmp;
    memset(&tmp, 0, sizeof tmp);
    pt_note_verifier v;
    pt_checkpoint cp;
    pt_result r = parse_receipt(in, rc, err);
    if (r == PT_OK) r = check_checkpoint(in, rc, &v, &cp, err);
    if (r == PT_OK) r = check_inclusion(rc, &cp, err);
    if (r == PT_OK) r = check_leaf(rc, &tmp, err);
    if (r == PT_OK && in->later)
        r = check_later(in->later, in->later_len, &v, &cp, &tmp.later_size, err);
    if (r == PT_OK && info) {
        snprintf(tmp.origin, sizeof tmp.origin, "%s", cp.origin);
        snprintf(tmp.key_name, sizeof tmp.key_name, "%s", v.name);
        snprintf(tmp.key_id, sizeof tmp.key_id, "%02x%02x%02x%02x", v.key_id[0], v.key_id[1],
                 v.key_id[2], v.key_id[3]);
        tmp.leaf_index = rc->index;
        tmp.tree_size = rc->size;
        *info = tmp;
    }
    json_decref(rc->doc);
    free(rc);
    return r;
}
