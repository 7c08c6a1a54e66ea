/* test_rights.c - black-box: one person across devices (linking an
 * identifier, merging two people, check by identifier) and the rights that
 * read or correct what is held (export, rectification), against the real
 * binary (see harness.h). Tests run in parallel against one server, so
 * each works on its own people. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ADMIN bb_key("admin")
#define OPERATOR bb_key("operator")
#define AUDITOR bb_key("auditor")

TestSuite(rights, .init = bb_suite_init, .fini = bb_suite_fini, .timeout = 60);

int main(int argc, char **argv)
{
    return bb_main(argc, argv);
}

/* ------------------------------------------------------------ helpers */

/* A person with an e-mail, a cookie and a profile. */
static char *person(const char *key, const char *tag, const char **email, const char **cookie,
                    json_t *profile)
{
    const char *e = bb_fmt("%s@rights.example.com", bb_unique(tag));
    const char *c = bb_unique(bb_fmt("%s-cookie", tag));
    json_t *body = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "identifiers", "type", "email",
                             "value", e, "type", "cookie", "value", c);
    if (profile) json_object_set_new(body, "profile", profile);
    bb_resp *r = bb_send("POST", "/v1/subjects", key, body);
    bb_assert_json(r, 201);
    if (email) *email = e;
    if (cookie) *cookie = c;
    return bb_strdup(bb_jstr(r->json, "subject"));
}

static bb_resp *consent_ev(const char *subject, const char *purpose, const char *action,
                           const char *occurred_at, const char *evidence_ip)
{
    json_t *b = json_pack("{s:s, s:s, s:s, s:s}", "subject", subject, "purpose", purpose, "action",
                          action, "collected_via", "web_form");
    if (!strcmp(action, "grant") || !strcmp(action, "renew"))
        json_object_set_new(b, "notice", json_pack("{s:s, s:s}", "notice", "privacy", "version", "1"));
    if (occurred_at) json_object_set_new(b, "occurred_at", json_string(occurred_at));
    if (evidence_ip) json_object_set_new(b, "evidence", json_pack("{s:s}", "ip", evidence_ip));
    return bb_send("POST", "/v1/consents", ADMIN, b);
}

static json_t *state_of(json_t *consents_doc, const char *purpose)
{
    size_t i;
    json_t *e;
    json_array_foreach(bb_jarr(consents_doc, "consents"), i, e) if (!strcmp(bb_jstr(e, "purpose"), purpose)) return e;
    return NULL;
}

static const char *lookup(const char *type, const char *value)
{
    bb_resp *r = bb_get(bb_fmt("/v1/subjects?identifier_type=%s&identifier=%s", type,
                               bb_urlencode(value)),
                        ADMIN);
    if (r->status != 200) return NULL;
    return bb_strdup(bb_jstr(r->json, "subject"));
}

static bb_resp *merge(const char *key, const char *into, const char *from)
{
    return bb_send("POST", bb_fmt("/v1/subjects/%s/merge", into), key,
                   json_pack("{s:s}", "from", from));
}

static bb_resp *patch(const char *subject, const char *body)
{
    return bb_http("PATCH", bb_fmt("/v1/subjects/%s", subject), ADMIN, "application/json", body);
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with padding; returns the length. */
static size_t b64dec(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = b64val(*s);
        cr_assert_geq(v, 0, "not base64: %s", s);
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert_lt(n, cap);
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static void sha256(const unsigned char *p, size_t n, unsigned char out[32])
{
    char hex[65];
    bb_sha256_hex(p, n, hex);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static void node(const unsigned char l[32], const unsigned char r[32], unsigned char out[32])
{
    unsigned char b[65];
    b[0] = 1;
    memcpy(b + 1, l, 32);
    memcpy(b + 33, r, 32);
    sha256(b, sizeof b, out);
}

/* The receipt's proof holds its leaf (returned, decoded as JSON) under its
 * signed checkpoint: RFC 9162 inclusion against the checkpoint's root. */
static json_t *proven_leaf(const json_t *receipt)
{
    json_t *proof = bb_jobj(receipt, "proof");
    cr_assert_str_eq(bb_jstr(proof, "format"), "patto-proof/1");
    static unsigned char leaf[8192];
    size_t len = b64dec(bb_jstr(proof, "leaf"), leaf + 1, sizeof leaf - 1);
    leaf[0] = 0;
    unsigned char r[32], root[32], p[32];
    sha256(leaf, len + 1, r);
    uint64_t fn = (uint64_t)bb_jint(proof, "leaf_index"),
             sn = (uint64_t)bb_jint(proof, "tree_size") - 1;
    size_t i;
    json_t *h;
    json_array_foreach(bb_jarr(proof, "inclusion"), i, h)
    {
        cr_assert_eq(b64dec(json_string_value(h), p, sizeof p), 32);
        cr_assert_neq(sn, 0, "inclusion proof too long");
        if ((fn & 1) || fn == sn) {
            node(p, r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            node(r, p, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    cr_assert_eq(sn, 0, "inclusion proof too short");
    const char *cp = bb_jstr(proof, "checkpoint");
    const char *l2 = strchr(cp, '\n');
    cr_assert_not_null(l2);
    const char *l3 = strchr(l2 + 1, '\n');
    cr_assert_not_null(l3);
    char rootb64[64];
    size_t rl = strcspn(l3 + 1, "\n");
    cr_assert_lt(rl, sizeof rootb64);
    memcpy(rootb64, l3 + 1, rl);
    rootb64[rl] = '\0';
    cr_assert_eq(b64dec(rootb64, root, sizeof root), 32);
    cr_assert(memcmp(r, root, 32) == 0, "the inclusion proof does not lead to the signed root");
    json_t *doc = json_loadb((const char *)leaf + 1, len, 0, NULL);
    cr_assert_not_null(doc, "the leaf is not JSON");
    return bb_track_json(doc);
}

/* Every leaf of tenant A's log, as one text (for "no personal data" scans). */
static char *all_leaves(void)
{
    size_t cap = 1 << 20, n = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    for (long long start = 0;; start += 1000) {
        bb_resp *r =
            bb_get(bb_fmt("/v1/log/leaves?start=%lld&end=%lld", start, start + 1000), AUDITOR);
        if (r->status != 200) break;
        size_t i;
        json_t *l;
        json_array_foreach(bb_jarr(r->json, "leaves"), i, l)
        {
            static unsigned char leaf[8192];
            size_t len = b64dec(bb_jstr(l, "leaf"), leaf, sizeof leaf - 1);
            if (n + len + 2 > cap) {
                cap *= 2;
                out = realloc(out, cap);
                cr_assert_not_null(out);
            }
            memcpy(out + n, leaf, len);
            n += len;
            out[n++] = '\n';
        }
        if (json_array_size(bb_jarr(r->json, "leaves")) < 1000) break;
    }
    out[n] = '\0';
    char *t = bb_strdup(out);
    free(out);
    return t;
}

/* ------------------------------------------------------------ linking identifiers */

Test(rights, link_an_identifier_to_a_person)
{
    const char *email;
    char *s = person(OPERATOR, "link", &email, NULL, NULL);
    const char *phone = "+39 02 1234 5678";
    bb_resp *r = bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", s), OPERATOR,
                         json_pack("{s:s, s:s}", "type", "phone", "value", phone));
    bb_assert_json(r, 201);
    cr_assert_str_eq(bb_jstr(r->json, "subject"), s);
    cr_assert_str_eq(bb_jstr(r->json, "type"), "phone");
    cr_assert_str_eq(bb_jstr(r->json, "value"), "+390212345678", "normalised as on creation");
    cr_assert(bb_jbool(r->json, "linked"));
    /* the ledger event names the subject and the type, never the value */
    json_t *leaf = proven_leaf(bb_jobj(r->json, "receipt"));
    cr_assert_str_eq(bb_jstr(leaf, "kind"), "identifier.linked");
    cr_assert_str_eq(bb_jstr(leaf, "subject"), s);
    cr_assert_str_eq(bb_jstr(leaf, "type"), "phone");
    cr_assert_str_eq(bb_jstr(leaf, "at"), bb_jstr(r->json, "linked_at"));
    char *text = json_dumps(leaf, 0);
    cr_assert_null(strstr(text, "12345678"), "the leaf holds the number: %s", text);
    free(text);
    /* found by it, and shown with the others */
    cr_assert_str_eq(lookup("phone", "+390212345678"), s);
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN);
    bb_assert_json(g, 200);
    cr_assert(strstr(g->body, "+390212345678") && strstr(g->body, email), "%s", g->body);
    /* again: already this person's, nothing recorded */
    bb_resp *again = bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", s), ADMIN,
                             json_pack("{s:s, s:s}", "type", "phone", "value", "0039021234-5678"));
    bb_assert_json(again, 200);
    cr_assert(!bb_jbool(again->json, "linked"));
    cr_assert(bb_jnull(again->json, "receipt"));
}

Test(rights, an_identifier_of_someone_else_is_409_without_the_owner)
{
    const char *email;
    char *owner = person(ADMIN, "owner", &email, NULL, NULL);
    char *other = person(ADMIN, "other", NULL, NULL, NULL);
    bb_resp *before = bb_get(bb_fmt("/v1/subjects/%s", other), ADMIN);
    bb_assert_json(before, 200);
    /* written differently, the same e-mail once normalised */
    char *upper = bb_strdup(email);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    bb_resp *r = bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", other), ADMIN,
                         json_pack("{s:s, s:s}", "type", "email", "value", upper));
    bb_assert_problem(r, 409, "value");
    cr_assert_null(strstr(r->body, owner), "names the owner: %s", r->body);
    cr_assert_null(strstr(r->body, email), "echoes the value: %s", r->body);
    bb_resp *after = bb_get(bb_fmt("/v1/subjects/%s", other), ADMIN);
    cr_assert_str_eq(after->body, before->body, "a refused link changed the subject");
    cr_assert_str_eq(lookup("email", email), owner);
}

Test(rights, link_refuses_bad_input_and_unknown_people)
{
    char *s = person(ADMIN, "linkbad", NULL, NULL, NULL);
    const char *path = bb_fmt("/v1/subjects/%s/identifiers", s);
    bb_assert_problem(bb_send("POST", path, ADMIN, json_pack("{s:s, s:s}", "type", "fax", "value", "1")),
                      400, "type");
    bb_assert_problem(
        bb_send("POST", path, ADMIN, json_pack("{s:s, s:s}", "type", "phone", "value", "12")), 400,
        "value");
    bb_assert_problem(bb_send("POST", path, ADMIN, json_pack("{s:s}", "type", "email")), 400,
                      "value");
    bb_assert_problem(bb_send("POST", path, ADMIN,
                              json_pack("{s:s, s:s, s:s}", "type", "cookie", "value", "c1", "x", "y")),
                      400, "x");
    bb_assert_problem(bb_send("POST", path, ADMIN,
                              json_pack("{s:s, s:s, s:s}", "type", "cookie", "value", "c1",
                                        "subject", s)),
                      400, "subject");
    bb_assert_problem(bb_http("POST", path, ADMIN, "text/plain", "{}"), 415, NULL);
    bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", bb_random_subject_id()),
                              ADMIN, json_pack("{s:s, s:s}", "type", "cookie", "value", "c2")),
                      404, "subject");
    bb_assert_problem(bb_send("POST", "/v1/subjects/sub_nonsense/identifiers", ADMIN,
                              json_pack("{s:s, s:s}", "type", "cookie", "value", "c3")),
                      404, "subject");
    /* the auditor, marketing and recipient roles may not */
    bb_assert_problem(bb_send("POST", path, bb_key("marketing"),
                              json_pack("{s:s, s:s}", "type", "cookie", "value", "c4")),
                      403, NULL);
    cr_assert_null(lookup("cookie", "c1"));
    cr_assert_null(lookup("cookie", "c4"));
}

/* ------------------------------------------------------------ merging */

Test(rights, merge_two_devices_into_one_person)
{
    const char *ea, *ca, *eb, *cb;
    char *a = person(OPERATOR, "pc", &ea, &ca, json_pack("{s:s, s:s}", "name", "Anna", "city", "Milano"));
    char *b = person(OPERATOR, "phone", &eb, &cb,
                     json_pack("{s:s, s:i, s:[s]}", "name", "A. Rossi", "age", 41, "preferences",
                               "shoes"));
    int64_t now = bb_now_ms();
    /* marketing: a's grant, then b's later withdrawal: the withdrawal stands */
    bb_assert_json(consent_ev(a, "marketing", "grant", bb_time(now - 3 * BB_DAY_MS), "198.51.100.1"),
                   201);
    bb_assert_json(consent_ev(b, "marketing", "withdraw", bb_time(now - 2 * BB_DAY_MS), "198.51.100.2"),
                   201);
    /* processing: b's older denial, a's later grant: the grant stands */
    bb_assert_json(consent_ev(b, "processing", "deny", bb_time(now - 5 * BB_DAY_MS), NULL), 201);
    bb_assert_json(consent_ev(a, "processing", "grant", bb_time(now - 4 * BB_DAY_MS), NULL), 201);
    /* profiling: only b, a grant long expired (12 months): it stays expired */
    bb_assert_json(consent_ev(b, "profiling", "grant", bb_time(now - 400 * BB_DAY_MS), NULL), 201);
    /* cookies.analytics: only b, granted: it follows */
    bb_assert_json(consent_ev(b, "cookies.analytics", "grant", NULL, "198.51.100.3"), 201);
    size_t events = bb_history_len(ADMIN, a) + bb_history_len(ADMIN, b);

    bb_resp *m = merge(OPERATOR, a, b);
    bb_assert_json(m, 200);
    cr_assert_str_eq(bb_jstr(m->json, "subject"), a);
    cr_assert_str_eq(bb_jstr(m->json, "from"), b);
    cr_assert(strncmp(bb_jstr(m->json, "merge"), "mrg_", 4) == 0);
    cr_assert_eq(bb_jint(m->json, "identifiers_moved"), 2);
    json_t *taken = bb_jarr(m->json, "profile_fields_taken");
    cr_assert_eq(json_array_size(taken), 2, "%s", m->body);
    cr_assert_str_eq(json_string_value(json_array_get(taken, 0)), "age");
    cr_assert_str_eq(json_string_value(json_array_get(taken, 1)), "preferences");
    /* the merge is a ledger event, with a receipt that proves it */
    json_t *receipt = bb_jobj(m->json, "receipt");
    cr_assert_str_eq(bb_jstr(receipt, "kind"), "subject.merged");
    cr_assert_str_eq(bb_jstr(receipt, "receipt_id"), bb_jstr(m->json, "merge"));
    json_t *leaf = proven_leaf(receipt);
    cr_assert_str_eq(bb_jstr(leaf, "kind"), "subject.merged");
    cr_assert_str_eq(bb_jstr(leaf, "tenant"), BB_TENANT_A);
    cr_assert_str_eq(bb_jstr(leaf, "subject"), a);
    cr_assert_str_eq(bb_jstr(leaf, "from"), b);
    cr_assert_str_eq(bb_jstr(leaf, "at"), bb_jstr(m->json, "merged_at"));

    /* identifiers moved: every one finds the survivor */
    cr_assert_str_eq(lookup("email", ea), a);
    cr_assert_str_eq(lookup("email", eb), a);
    cr_assert_str_eq(lookup("cookie", cb), a);
    /* the old id answers as the survivor, everywhere */
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", b), ADMIN);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "subject"), a);
    json_t *prof = bb_jobj(g->json, "profile");
    cr_assert_str_eq(bb_jstr(prof, "name"), "Anna", "the survivor's own values win");
    cr_assert_str_eq(bb_jstr(prof, "city"), "Milano");
    cr_assert_eq(bb_jint(prof, "age"), 41);
    cr_assert_eq(json_array_size(bb_jarr(g->json, "identifiers")), 4);
    bb_resp *ga = bb_get(bb_fmt("/v1/subjects/%s", a), ADMIN);
    cr_assert_str_eq(ga->body, g->body);

    bb_resp *cs = bb_get(bb_fmt("/v1/subjects/%s/consents", b), ADMIN);
    bb_assert_json(cs, 200);
    cr_assert_str_eq(bb_jstr(state_of(cs->json, "marketing"), "state"), "withdrawn");
    cr_assert_str_eq(bb_jstr(state_of(cs->json, "processing"), "state"), "granted");
    cr_assert_str_eq(bb_jstr(state_of(cs->json, "profiling"), "state"), "expired");
    cr_assert_str_eq(bb_jstr(state_of(cs->json, "cookies.analytics"), "state"), "granted");

    const char *who[] = {a, b};
    for (int i = 0; i < 2; i++) {
        bb_resp *k = bb_check(ADMIN, who[i], "marketing", "email", NULL);
        bb_assert_json(k, 200);
        cr_assert_str_eq(bb_jstr(k->json, "reason"), "withdrawn", "%s", k->body);
        k = bb_check(ADMIN, who[i], "profiling", NULL, NULL);
        cr_assert_str_eq(bb_jstr(k->json, "reason"), "expired", "expired ones do not revive: %s",
                         k->body);
        k = bb_check(bb_key("marketing"), who[i], "cookies.analytics", NULL, NULL);
        cr_assert(bb_jbool(k->json, "allowed"), "%s", k->body);
        k = bb_check(ADMIN, who[i], "processing", NULL, NULL);
        cr_assert(bb_jbool(k->json, "allowed"), "%s", k->body);
    }
    /* the whole history, both devices', evidence decrypted, oldest first */
    bb_resp *h = bb_get(bb_fmt("/v1/subjects/%s/consents/history?limit=1000", b), AUDITOR);
    bb_assert_json(h, 200);
    json_t *evs = bb_jarr(h->json, "events");
    cr_assert_eq(json_array_size(evs), events);
    cr_assert_eq(bb_history_len(ADMIN, a), events, "paging over both ids' events");
    cr_assert(strstr(h->body, "198.51.100.1") && strstr(h->body, "198.51.100.2") &&
                  strstr(h->body, "198.51.100.3"),
              "evidence of both: %s", h->body);
    json_int_t last = 0;
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        cr_assert_gt(bb_jint(e, "seq"), last);
        last = bb_jint(e, "seq");
    }
    /* a consent recorded for the old id lands on the survivor */
    bb_resp *late = consent_ev(b, "marketing", "grant", NULL, NULL);
    bb_assert_json(late, 201);
    cr_assert_str_eq(bb_jstr(late->json, "subject"), a);
    bb_resp *k = bb_check(ADMIN, a, "marketing", "email", NULL);
    cr_assert(bb_jbool(k->json, "allowed"), "%s", k->body);
    /* and by identifier (the phone's cookie) */
    bb_resp *ki = bb_get(bb_fmt("/v1/check?identifier_type=cookie&identifier=%s&purpose=marketing&"
                                "channel=email",
                                bb_urlencode(cb)),
                         bb_key("marketing"));
    bb_assert_json(ki, 200);
    cr_assert(bb_jbool(ki->json, "allowed"), "%s", ki->body);
    cr_assert_str_eq(bb_jstr(ki->json, "subject"), a);
    cr_assert_str_eq(bb_jstr(ki->json, "identifier_type"), "cookie");
}

Test(rights, merge_refusals_change_nothing)
{
    char *a = person(ADMIN, "mra", NULL, NULL, json_pack("{s:s}", "name", "A"));
    char *b = person(ADMIN, "mrb", NULL, NULL, json_pack("{s:s}", "name", "B"));
    bb_assert_json(consent_ev(b, "marketing", "grant", NULL, NULL), 201);
    bb_resp *ga = bb_get(bb_fmt("/v1/subjects/%s", a), ADMIN);
    bb_resp *gb = bb_get(bb_fmt("/v1/subjects/%s", b), ADMIN);
    size_t ha = bb_history_len(ADMIN, a);
    /* into itself */
    bb_assert_problem(merge(ADMIN, a, a), 422, "from");
    /* malformed, missing, unknown fields */
    bb_assert_problem(merge(ADMIN, a, "evt_x"), 400, "from");
    bb_assert_problem(merge(ADMIN, a, "sub_nonsense"), 400, "from");
    bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/merge", a), ADMIN, json_object()),
                      400, "from");
    bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/merge", a), ADMIN,
                              json_pack("{s:s, s:s}", "from", b, "into", a)),
                      400, "into");
    bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/merge", a), ADMIN,
                              json_pack("{s:i}", "from", 7)),
                      400, "from");
    /* unknown people */
    bb_assert_problem(merge(ADMIN, a, bb_random_subject_id()), 404, "from");
    bb_assert_problem(merge(ADMIN, bb_random_subject_id(), b), 404, "subject");
    /* roles that may not */
    bb_assert_problem(merge(bb_key("auditor"), a, b), 403, NULL);
    bb_assert_problem(merge(bb_key("marketing"), a, b), 403, NULL);
    cr_assert_str_eq(bb_get(bb_fmt("/v1/subjects/%s", a), ADMIN)->body, ga->body);
    cr_assert_str_eq(bb_get(bb_fmt("/v1/subjects/%s", b), ADMIN)->body, gb->body);
    cr_assert_eq(bb_history_len(ADMIN, a), ha);
    bb_resp *k = bb_check(ADMIN, a, "marketing", NULL, NULL);
    cr_assert_str_eq(bb_jstr(k->json, "reason"), "no_consent", "%s", k->body);

    /* a merged profile past 64 fields is refused, nothing changed */
    json_t *pa = json_object(), *pb = json_object();
    for (int i = 0; i < 40; i++) {
        json_object_set_new(pa, bb_fmt("a%d", i), json_integer(i));
        json_object_set_new(pb, bb_fmt("b%d", i), json_integer(i));
    }
    char *fa = person(ADMIN, "mrfa", NULL, NULL, pa);
    const char *ebig;
    char *fb = person(ADMIN, "mrfb", &ebig, NULL, pb);
    bb_assert_problem(merge(ADMIN, fa, fb), 422, "from");
    cr_assert_str_eq(lookup("email", ebig), fb);

    /* once merged, again is a conflict; and either way round */
    bb_assert_json(merge(ADMIN, a, b), 200);
    bb_assert_problem(merge(ADMIN, a, b), 409, "from");
    bb_assert_problem(merge(ADMIN, b, a), 409, "from");
}

Test(rights, merges_chain_and_the_oldest_id_still_answers)
{
    const char *ec;
    char *a = person(ADMIN, "cha", NULL, NULL, NULL);
    char *b = person(ADMIN, "chb", NULL, NULL, NULL);
    char *c = person(ADMIN, "chc", &ec, NULL, NULL);
    bb_assert_json(consent_ev(c, "profiling", "grant", NULL, "203.0.113.9"), 201);
    bb_assert_json(merge(ADMIN, b, c), 200); /* c into b */
    bb_assert_json(merge(ADMIN, a, b), 200); /* b (and with it c) into a */
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", c), ADMIN);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "subject"), a);
    cr_assert_str_eq(lookup("email", ec), a);
    bb_resp *k = bb_check(ADMIN, c, "profiling", NULL, NULL);
    cr_assert(bb_jbool(k->json, "allowed"), "%s", k->body);
    /* merging an old id merges the person it answers as: already a */
    bb_assert_problem(merge(ADMIN, a, c), 409, "from");
    /* a merge named by old ids on both sides */
    char *d = person(ADMIN, "chd", NULL, NULL, NULL);
    bb_resp *m = merge(ADMIN, d, c);
    bb_assert_json(m, 200);
    cr_assert_str_eq(bb_jstr(m->json, "from"), a, "the person c answers as");
    bb_resp *x = bb_get(bb_fmt("/v1/subjects/%s/export", c), ADMIN);
    bb_assert_json(x, 200);
    cr_assert_str_eq(bb_jstr(x->json, "subject"), d);
    json_t *merges = bb_jarr(x->json, "merges");
    cr_assert_eq(json_array_size(merges), 3, "%s", x->body);
    cr_assert(strstr(x->body, "203.0.113.9"), "c's evidence reaches d's export");
}

/* ------------------------------------------------------------ export */

Test(rights, export_holds_everything_on_the_person)
{
    const char *email, *cookie;
    char *s = person(OPERATOR, "exp", &email, &cookie,
                     json_pack("{s:s, s:s}", "name", "Giulia", "region", "Lazio"));
    char *old = person(OPERATOR, "expold", NULL, NULL, NULL);
    bb_assert_json(consent_ev(old, "profiling", "deny", NULL, "192.0.2.77"), 201);
    bb_assert_json(merge(ADMIN, s, old), 200);
    for (int i = 0; i < 6; i++)
        bb_assert_json(consent_ev(s, "marketing", i % 2 ? "withdraw" : "grant", NULL,
                                  bb_fmt("192.0.2.%d", i + 1)),
                       201);
    bb_resp *x = bb_get(bb_fmt("/v1/subjects/%s/export", s), OPERATOR);
    bb_assert_json(x, 200);
    json_t *d = x->json;
    cr_assert_str_eq(bb_jstr(d, "format"), "patto-subject-export/1");
    cr_assert_str_eq(bb_jstr(bb_jobj(d, "controller"), "tenant"), BB_TENANT_A);
    cr_assert_str_eq(bb_jstr(d, "subject"), s);
    bb_parse_time(bb_jstr(d, "exported_at"));
    cr_assert(bb_jnull(d, "erased_at"));
    cr_assert_str_eq(bb_jstr(bb_jobj(d, "profile"), "name"), "Giulia");
    json_t *ids = bb_jarr(d, "identifiers");
    cr_assert_eq(json_array_size(ids), 4);
    cr_assert(strstr(x->body, email) && strstr(x->body, cookie));
    bb_parse_time(bb_jstr(json_array_get(ids, 0), "linked_at"));
    /* every event of both ids, evidence decrypted, with the notice's hash and reference */
    json_t *evs = bb_jarr(d, "events");
    cr_assert_eq(json_array_size(evs), 7);
    cr_assert_str_eq(bb_jstr(json_array_get(evs, 0), "subject"), old);
    cr_assert_str_eq(bb_jstr(bb_jobj(json_array_get(evs, 0), "evidence"), "ip"), "192.0.2.77");
    json_t *g = json_array_get(evs, 1);
    cr_assert_str_eq(bb_jstr(g, "action"), "grant");
    json_t *n = bb_jobj(g, "notice");
    cr_assert_str_eq(bb_jstr(n, "href"), "/v1/notices/privacy/1");
    cr_assert_eq(strlen(bb_jstr(n, "sha256")), 64);
    bb_resp *nt = bb_get(bb_jstr(n, "href"), ADMIN);
    bb_assert_json(nt, 200);
    cr_assert_str_eq(bb_jstr(nt->json, "sha256"), bb_jstr(n, "sha256"));
    cr_assert_str_eq(bb_jstr(bb_jobj(g, "evidence"), "ip"), "192.0.2.1");
    cr_assert_eq(strlen(bb_jstr(g, "evidence_sha256")), 64);
    /* the current consents */
    cr_assert_str_eq(bb_jstr(state_of(d, "marketing"), "state"), "withdrawn");
    cr_assert_str_eq(bb_jstr(state_of(d, "profiling"), "state"), "denied");
    /* merges; reminders and transfers named, empty for now */
    json_t *merges = bb_jarr(d, "merges");
    cr_assert_eq(json_array_size(merges), 1);
    cr_assert_str_eq(bb_jstr(json_array_get(merges, 0), "subject"), old);
    cr_assert(strncmp(bb_jstr(json_array_get(merges, 0), "merge"), "mrg_", 4) == 0);
    cr_assert_eq(json_array_size(bb_jarr(d, "reminders")), 0);
    cr_assert_eq(json_array_size(bb_jarr(d, "transfers")), 0);
    /* readers outside admin and operator may not; another id is 404 */
    bb_assert_problem(bb_get(bb_fmt("/v1/subjects/%s/export", s), AUDITOR), 403, NULL);
    bb_assert_problem(bb_get(bb_fmt("/v1/subjects/%s/export", bb_random_subject_id()), ADMIN), 404,
                      "subject");
    bb_assert_problem(bb_get("/v1/subjects/nonsense/export", ADMIN), 404, "subject");
}

Test(rights, cli_export_equals_the_api)
{
    char *s = person(ADMIN, "cliexp", NULL, NULL, json_pack("{s:s}", "name", "Carla"));
    bb_assert_json(consent_ev(s, "marketing", "grant", NULL, "192.0.2.200"), 201);
    bb_resp *x = bb_get(bb_fmt("/v1/subjects/%s/export", s), ADMIN);
    bb_assert_json(x, 200);
    static char out[262144];
    int rc;
    if (strncmp(bb_db(), "postgres", 8) == 0)
        rc = bb_cli(out, sizeof out, false, bb_fmt("%s/cli.err", bb_dir()), "subject", "export",
                    "--db", bb_db(), "--keyring", bb_fmt("%s/keyring", bb_dir()), "--tenant",
                    BB_TENANT_A, s, (char *)NULL);
    else
        rc = bb_cli(out, sizeof out, false, NULL, "subject", "export", "--db", bb_db(), "--tenant",
                    BB_TENANT_A, s, (char *)NULL);
    cr_assert_eq(rc, 0, "patto subject export exited %d: %s", rc, out);
    json_t *cli = bb_track_json(json_loads(out, 0, NULL));
    cr_assert_not_null(cli, "not JSON: %.200s", out);
    json_t *api = json_deep_copy(x->json);
    json_object_del(cli, "exported_at");
    json_object_del(api, "exported_at");
    cr_assert(json_equal(cli, api), "CLI and API differ:\n%s\n%s", out, x->body);
    json_decref(api);
    rc = bb_cli(out, sizeof out, false, NULL, "subject", "export", "--tenant", BB_TENANT_A,
                (char *)NULL);
    cr_assert_eq(rc, 2, "no SUBJECT is a usage error");
}

/* ------------------------------------------------------------ rectification */

Test(rights, rectify_with_a_merge_patch)
{
    char *s = person(OPERATOR, "rect", NULL, NULL,
                     json_pack("{s:s, s:s, s:s}", "name", "Marco", "city", "Torino", "region",
                               "Piemonte"));
    bb_resp *r = bb_http("PATCH", bb_fmt("/v1/subjects/%s", s), OPERATOR,
                         "application/merge-patch+json",
                         "{\"profile\":{\"name\":\"Marco Bianchi\",\"city\":null,\"region\":"
                         "\"Piemonte\",\"sex\":\"m\"}}");
    bb_assert_json(r, 200);
    json_t *ch = bb_jarr(r->json, "changed");
    cr_assert_eq(json_array_size(ch), 3, "%s", r->body);
    cr_assert_str_eq(json_string_value(json_array_get(ch, 0)), "city");
    cr_assert_str_eq(json_string_value(json_array_get(ch, 1)), "name");
    cr_assert_str_eq(json_string_value(json_array_get(ch, 2)), "sex");
    /* the ledger event names the fields, never the values */
    json_t *leaf = proven_leaf(bb_jobj(r->json, "receipt"));
    cr_assert_str_eq(bb_jstr(leaf, "kind"), "subject.rectified");
    cr_assert_str_eq(bb_jstr(leaf, "subject"), s);
    cr_assert(json_equal(bb_jarr(leaf, "fields"), ch));
    char *text = json_dumps(leaf, 0);
    cr_assert_null(strstr(text, "Bianchi"), "%s", text);
    cr_assert_null(strstr(text, "Torino"), "%s", text);
    free(text);
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN);
    bb_assert_json(g, 200);
    json_t *p = bb_jobj(g->json, "profile");
    cr_assert_str_eq(bb_jstr(p, "name"), "Marco Bianchi");
    cr_assert_null(json_object_get(p, "city"));
    cr_assert_str_eq(bb_jstr(p, "region"), "Piemonte");
    cr_assert_str_eq(bb_jstr(p, "sex"), "m");
    cr_assert_str_eq(bb_jstr(g->json, "updated_at"), bb_jstr(r->json, "updated_at"));
    /* the same again changes nothing and records nothing */
    bb_resp *same = patch(s, "{\"profile\":{\"name\":\"Marco Bianchi\",\"city\":null}}");
    bb_assert_json(same, 200);
    cr_assert_eq(json_array_size(bb_jarr(same->json, "changed")), 0);
    cr_assert(bb_jnull(same->json, "receipt"));
    /* null clears the whole profile */
    bb_resp *clear = patch(s, "{\"profile\":null}");
    bb_assert_json(clear, 200);
    cr_assert_eq(json_array_size(bb_jarr(clear->json, "changed")), 3);
    bb_resp *g2 = bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN);
    cr_assert_eq(json_object_size(bb_jobj(g2->json, "profile")), 0, "%s", g2->body);
    /* an old id is rectified as its survivor */
    char *old = person(ADMIN, "rectold", NULL, NULL, NULL);
    bb_assert_json(merge(ADMIN, s, old), 200);
    bb_resp *via = patch(old, "{\"profile\":{\"name\":\"M\"}}");
    bb_assert_json(via, 200);
    cr_assert_str_eq(bb_jstr(via->json, "subject"), s);
}

Test(rights, rectify_refuses_bad_patches_and_changes_nothing)
{
    char *s = person(ADMIN, "rectbad", NULL, NULL, json_pack("{s:s}", "name", "Luca"));
    bb_resp *before = bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN);
    bb_assert_problem(patch(s, "{}"), 400, "profile");
    bb_assert_problem(patch(s, "{\"profile\":[1]}"), 400, "profile");
    bb_assert_problem(patch(s, "{\"profile\":{\"Bad Name\":1}}"), 400, "profile.Bad Name");
    bb_assert_problem(patch(s, "{\"profile\":{\"nested\":{\"a\":1}}}"), 400, "profile.nested");
    bb_assert_problem(patch(s, "{\"profile\":{\"name\":\"x\"},\"identifiers\":[]}"), 400,
                      "identifiers");
    bb_assert_problem(patch(s, "{\"profile\":{\"name\":\"x\"},\"color\":1}"), 400, "color");
    bb_assert_problem(bb_http("PATCH", bb_fmt("/v1/subjects/%s", s), ADMIN, "text/plain",
                              "{\"profile\":{}}"),
                      415, NULL);
    bb_assert_problem(patch(bb_random_subject_id(), "{\"profile\":{\"name\":\"x\"}}"), 404,
                      "subject");
    /* more than 64 fields once applied: well-formed, refused */
    json_t *big = json_object();
    for (int i = 0; i < 64; i++) json_object_set_new(big, bb_fmt("f%d", i), json_integer(i));
    char *bigtext = json_dumps(bb_track_json(json_pack("{s:o}", "profile", big)), JSON_COMPACT);
    bb_assert_problem(patch(s, bigtext), 422, "profile");
    free(bigtext);
    bb_assert_problem(bb_http("PATCH", bb_fmt("/v1/subjects/%s", s), bb_key("marketing"),
                              "application/json", "{\"profile\":{\"name\":\"x\"}}"),
                      403, NULL);
    cr_assert_str_eq(bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN)->body, before->body);
}

/* ------------------------------------------------------------ erased people */

Test(rights, erased_people_cannot_be_linked_merged_or_rectified)
{
    char *a = person(ADMIN, "era", NULL, NULL, NULL);
    const char *eb;
    char *b = person(ADMIN, "erb", &eb, NULL, json_pack("{s:s}", "name", "Zoe"));
    bb_assert_json(consent_ev(b, "marketing", "grant", NULL, "192.0.2.99"), 201);
    bb_resp *d = bb_http("DELETE", bb_fmt("/v1/subjects/%s", b), ADMIN, NULL, NULL);
    if (d->status == 405) cr_skip_test("no erasure route in this build");
    cr_assert(d->status == 200 || d->status == 201, "erasure: %ld %s", d->status, d->body);
    bb_assert_problem(merge(ADMIN, a, b), 422, "from");
    bb_assert_problem(merge(ADMIN, b, a), 422, "subject");
    bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", b), ADMIN,
                              json_pack("{s:s, s:s}", "type", "cookie", "value", "erased-ck")),
                      422, "subject");
    bb_assert_problem(patch(b, "{\"profile\":{\"name\":\"x\"}}"), 422, "subject");
    cr_assert_null(lookup("cookie", "erased-ck"));
    /* the export of an erased person: the events (their proof), nothing personal */
    bb_resp *x = bb_get(bb_fmt("/v1/subjects/%s/export", b), ADMIN);
    bb_assert_json(x, 200);
    cr_assert(!bb_jnull(x->json, "erased_at"));
    cr_assert(bb_jnull(x->json, "profile"));
    cr_assert_eq(json_array_size(bb_jarr(x->json, "identifiers")), 0);
    cr_assert_eq(json_array_size(bb_jarr(x->json, "events")), 1);
    cr_assert_null(strstr(x->body, "192.0.2.99"), "evidence survives erasure: %s", x->body);
    cr_assert_null(strstr(x->body, eb));
    cr_assert_null(strstr(x->body, "Zoe"));
}

Test(rights, after_erasing_a_survivor_nothing_merged_into_it_reads_back)
{
    char *a = person(ADMIN, "sura", NULL, NULL, NULL);
    char *b = person(ADMIN, "surb", NULL, NULL, NULL);
    bb_assert_json(consent_ev(b, "marketing", "grant", NULL, "192.0.2.123"), 201);
    bb_assert_json(merge(ADMIN, a, b), 200);
    bb_resp *d = bb_http("DELETE", bb_fmt("/v1/subjects/%s", a), ADMIN, NULL, NULL);
    if (d->status == 405) cr_skip_test("no erasure route in this build");
    cr_assert(d->status == 200 || d->status == 201, "erasure: %ld %s", d->status, d->body);
    const char *who[] = {a, b};
    for (int i = 0; i < 2; i++) {
        bb_resp *k = bb_check(ADMIN, who[i], "marketing", NULL, NULL);
        bb_assert_json(k, 200);
        cr_assert_str_eq(bb_jstr(k->json, "reason"), "subject_erased", "%s", k->body);
        bb_resp *h = bb_get(bb_fmt("/v1/subjects/%s/consents/history", who[i]), ADMIN);
        bb_assert_json(h, 200);
        cr_assert_null(strstr(h->body, "192.0.2.123"), "the merged id's evidence: %s", h->body);
    }
}

/* ------------------------------------------------------------ the log holds no personal data */

Test(rights, leaves_of_links_merges_and_rectifications_hold_no_personal_data)
{
    const char *email, *cookie;
    char *a = person(ADMIN, "pii", &email, &cookie, json_pack("{s:s}", "name", "Ottavia"));
    char *b = person(ADMIN, "pii2", NULL, NULL, NULL);
    bb_assert_json(bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", a), ADMIN,
                           json_pack("{s:s, s:s}", "type", "phone", "value", "+393401112233")),
                   201);
    bb_assert_json(merge(ADMIN, a, b), 200);
    bb_assert_json(patch(a, "{\"profile\":{\"name\":\"Ottavia Neri\"}}"), 200);
    char *leaves = all_leaves();
    cr_assert(strstr(leaves, "\"kind\":\"subject.merged\""));
    cr_assert(strstr(leaves, "\"kind\":\"subject.rectified\""));
    cr_assert(strstr(leaves, "\"kind\":\"identifier.linked\""));
    const char *pii[] = {email, cookie, "393401112233", "Ottavia", "Neri"};
    for (size_t i = 0; i < sizeof pii / sizeof pii[0]; i++)
        cr_assert_null(strstr(leaves, pii[i]), "a leaf holds '%s'", pii[i]);
}

Test(rights, check_by_identifier_answers_like_check_by_id)
{
    const char *email;
    char *s = person(ADMIN, "chk", &email, NULL, NULL);
    bb_assert_json(consent_ev(s, "marketing", "grant", NULL, NULL), 201);
    bb_resp *byid = bb_check(ADMIN, s, "marketing", "sms", NULL);
    char *upper = bb_strdup(email);
    upper[0] = (char)(upper[0] - 'a' + 'A');
    bb_resp *byident = bb_get(bb_fmt("/v1/check?identifier_type=email&identifier=%s&"
                                     "purpose=marketing&channel=sms",
                                     bb_urlencode(upper)),
                              ADMIN);
    bb_assert_json(byident, 200);
    cr_assert_str_eq(bb_jstr(byident->json, "identifier_type"), "email");
    json_t *x = json_deep_copy(byid->json), *y = json_deep_copy(byident->json);
    json_object_del(x, "checked_at");
    json_object_del(y, "checked_at");
    json_object_del(y, "identifier_type");
    cr_assert(json_equal(x, y), "%s vs %s", byid->body, byident->body);
    json_decref(x);
    json_decref(y);
    cr_assert_null(strstr(byident->body, email), "echoes the identifier: %s", byident->body);
    /* nobody holds it */
    bb_resp *nobody = bb_get("/v1/check?identifier_type=email&identifier=nobody%40nowhere.example"
                             "&purpose=marketing",
                             ADMIN);
    bb_assert_json(nobody, 200);
    cr_assert_str_eq(bb_jstr(nobody->json, "reason"), "unknown_subject");
    cr_assert(bb_jnull(nobody->json, "subject"));
    /* refusals */
    bb_assert_problem(bb_get(bb_fmt("/v1/check?identifier_type=email&purpose=marketing"), ADMIN),
                      400, "identifier");
    bb_assert_problem(bb_get("/v1/check?identifier=x%40y.example&purpose=marketing", ADMIN), 400,
                      "identifier_type");
    bb_assert_problem(bb_get("/v1/check?identifier_type=fax&identifier=1&purpose=marketing", ADMIN),
                      400, "identifier_type");
    bb_assert_problem(bb_get("/v1/check?identifier_type=phone&identifier=12&purpose=marketing", ADMIN),
                      400, "identifier");
    bb_assert_problem(bb_get(bb_fmt("/v1/check?subject=%s&identifier_type=email&identifier=%s&"
                                    "purpose=marketing",
                                    s, bb_urlencode(email)),
                             ADMIN),
                      400, "subject");
    bb_assert_problem(bb_get(bb_fmt("/v1/check?identifier_type=email&identifier=%s&purpose=nope",
                                    bb_urlencode(email)),
                             ADMIN),
                      422, "purpose");
}
