/* test_erasure.c - black-box: DELETE /v1/subjects/{subject}, the right to
 * erasure by crypto-shredding (see harness.h). What the files hold after
 * an erasure (byte scans), backups, restores and KEK rotation are in
 * tests/erasure/erasure_test.py; here is the HTTP contract: the receipt
 * and its proof, what every read answers for an erased subject, what is
 * refused, and that nothing else changes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ADMIN bb_key("admin")
#define OPERATOR bb_key("operator")
#define KEY_B bb_key_b()

TestSuite(erasure, .init = bb_suite_init, .fini = bb_suite_fini, .timeout = 60);

int main(int argc, char **argv)
{
    return bb_main(argc, argv);
}

/* ------------------------------------------------------------ helpers */

/* A person with an e-mail, a phone, a profile and a marketing grant with
 * evidence; returns the subject id. */
static const char *person(const char *key, const char **email, const char **evidence_sha)
{
    static int seq;
    const char *e = bb_fmt("%s@erasure.example.org", bb_unique("person"));
    const char *phone = bb_fmt("+39%03d%07d", ++seq % 1000, (int)(getpid() % 10000000));
    bb_resp *c = bb_send("POST", "/v1/subjects", key,
                         json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:{s:s, s:s}}", "identifiers",
                                   "type", "email", "value", e, "type", "phone", "value", phone,
                                   "profile", "name", "Ada Erasure", "city", "Trento"));
    bb_assert_json(c, 201);
    const char *s = bb_strdup(bb_jstr(c->json, "subject"));
    bb_resp *g = bb_send("POST", "/v1/consents", key,
                         json_pack("{s:s, s:s, s:s, s:[s], s:{s:s, s:s}, s:s, s:{s:s, s:s}}",
                                   "subject", s, "purpose", "marketing", "action", "grant",
                                   "channels", "email", "notice", "notice", "privacy", "version",
                                   "1", "collected_via", "web_form", "evidence", "ip",
                                   "203.0.113.9", "ua", "Ada's browser"));
    bb_assert_json(g, 201);
    if (email) *email = e;
    if (evidence_sha) *evidence_sha = bb_strdup(bb_jstr(bb_jobj(g->json, "receipt"),
                                                        "evidence_sha256"));
    return s;
}

static bb_resp *erase(const char *key, const char *subject)
{
    return bb_http("DELETE", bb_fmt("/v1/subjects/%s", subject), key, NULL, NULL);
}

static int b64v(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with padding; a tracked NUL-terminated string. */
static char *b64_decode(const char *in)
{
    size_t n = strlen(in);
    char *out = bb_strdup(in); /* decoded is shorter */
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && in[i] != '='; i++) {
        int v = b64v(in[i]);
        cr_assert_geq(v, 0, "not base64: %s", in);
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------ the erasure */

Test(erasure, erase_answers_a_receipt_with_its_proof)
{
    const char *s = person(ADMIN, NULL, NULL);
    int64_t t0 = bb_now_ms();
    bb_resp *r = erase(OPERATOR, s);
    bb_assert_json(r, 200);
    cr_assert_str_eq(bb_jstr(r->json, "subject"), s);
    cr_assert_str_eq(bb_jstr(r->json, "version"), "patto-erasure-receipt/1");
    cr_assert_str_eq(bb_jstr(bb_jobj(r->json, "controller"), "tenant"), BB_TENANT_A);
    int64_t at = bb_parse_time(bb_jstr(r->json, "erased_at"));
    cr_assert(at >= t0 - 1000 && at <= bb_now_ms() + 1000, "erased_at %s", r->body);
    json_t *d = bb_jobj(r->json, "destroyed");
    cr_assert(bb_jbool(d, "data_key"));
    cr_assert(bb_jbool(d, "profile"));
    cr_assert_eq(bb_jint(d, "identifiers"), 2, "%s", r->body);
    bb_jstr(r->json, "retained");
    /* the proof bundle of a subject.erased leaf, under a signed checkpoint */
    json_t *p = bb_jobj(r->json, "proof");
    cr_assert_str_eq(bb_jstr(p, "format"), "patto-proof/1");
    char *leaf = b64_decode(bb_jstr(p, "leaf"));
    json_t *l = bb_track_json(json_loads(leaf, 0, NULL));
    cr_assert_not_null(l, "leaf %s", leaf);
    cr_assert_str_eq(bb_jstr(l, "kind"), "subject.erased");
    cr_assert_str_eq(bb_jstr(l, "tenant"), BB_TENANT_A);
    cr_assert_str_eq(bb_jstr(l, "subject"), s);
    cr_assert_str_eq(bb_jstr(l, "at"), bb_jstr(r->json, "erased_at"));
    cr_assert_null(strstr(leaf, "@erasure.example.org"), "the leaf holds personal data: %s", leaf);
    cr_assert_null(strstr(leaf, "Ada"), "the leaf holds personal data: %s", leaf);
    json_int_t idx = bb_jint(p, "leaf_index"), size = bb_jint(p, "tree_size");
    cr_assert_lt(idx, size);
    cr_assert(strstr(bb_jstr(p, "checkpoint"), bb_fmt("\n%lld\n", (long long)size)) != NULL,
              "%s", bb_jstr(p, "checkpoint"));
    /* the log agrees */
    bb_resp *inc = bb_get(bb_fmt("/v1/log/proof/inclusion?index=%lld&size=%lld", (long long)idx,
                                 (long long)size),
                          ADMIN);
    bb_assert_json(inc, 200);
    cr_assert(json_equal(json_object_get(inc->json, "inclusion"), json_object_get(p, "inclusion")),
              "%s vs %s", inc->body, r->body);
    bb_resp *lv = bb_get(bb_fmt("/v1/log/leaves?start=%lld&end=%lld", (long long)idx,
                                (long long)idx + 1),
                         ADMIN);
    bb_assert_json(lv, 200);
    cr_assert_str_eq(bb_jstr(json_array_get(bb_jarr(lv->json, "leaves"), 0), "leaf"),
                     bb_jstr(p, "leaf"));
}

Test(erasure, check_answers_subject_erased_at_once)
{
    const char *s = person(ADMIN, NULL, NULL);
    bb_resp *c = bb_check(ADMIN, s, "marketing", "email", NULL);
    bb_assert_json(c, 200);
    cr_assert(bb_jbool(c->json, "allowed"), "%s", c->body);
    bb_assert_json(erase(ADMIN, s), 200);
    /* the cache took the erasure before the answer was sent */
    const char *chans[] = {"email", NULL};
    for (size_t i = 0; i < 2; i++) {
        bb_resp *k = bb_check(bb_key("marketing"), s, "marketing", chans[i], NULL);
        bb_assert_json(k, 200);
        cr_assert(!bb_jbool(k->json, "allowed"), "%s", k->body);
        cr_assert_str_eq(bb_jstr(k->json, "reason"), "subject_erased", "%s", k->body);
    }
}

Test(erasure, reads_of_an_erased_subject)
{
    const char *email, *sha;
    const char *s = person(ADMIN, &email, &sha);
    bb_assert_json(erase(ADMIN, s), 200);

    /* GET: 200, nothing personal left */
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), OPERATOR);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "subject"), s);
    bb_parse_time(bb_jstr(g->json, "erased_at"));
    bb_parse_time(bb_jstr(g->json, "created_at"));
    cr_assert_eq(json_array_size(bb_jarr(g->json, "identifiers")), 0, "%s", g->body);
    cr_assert(bb_jnull(g->json, "profile"), "%s", g->body);
    cr_assert_null(strstr(g->body, "Ada"), "%s", g->body);

    /* the identifiers are gone: the e-mail finds nobody */
    bb_assert_problem(bb_get(bb_fmt("/v1/subjects?identifier_type=email&identifier=%s",
                                    bb_urlencode(email)),
                             ADMIN),
                      404, "identifier");

    /* states: the decisions stay, the subject reads erased */
    bb_resp *st = bb_get(bb_fmt("/v1/subjects/%s/consents", s), bb_key("auditor"));
    bb_assert_json(st, 200);
    cr_assert(bb_jbool(st->json, "erased"), "%s", st->body);

    /* history: the event stays as proof; evidence unreadable, its hash kept */
    bb_resp *h = bb_get(bb_fmt("/v1/subjects/%s/consents/history", s), bb_key("auditor"));
    bb_assert_json(h, 200);
    json_t *evs = bb_jarr(h->json, "events");
    cr_assert_eq(json_array_size(evs), 1, "%s", h->body);
    json_t *ev = json_array_get(evs, 0);
    cr_assert(bb_jnull(ev, "evidence"), "%s", h->body);
    cr_assert_str_eq(bb_jstr(ev, "evidence_sha256"), sha);
    cr_assert_str_eq(bb_jstr(ev, "action"), "grant");
    cr_assert_null(strstr(h->body, "203.0.113.9"), "%s", h->body);

    /* the consent receipt still verifies against the log */
    bb_assert_json(bb_get(bb_fmt("/v1/receipts/%s", bb_jstr(ev, "event")), ADMIN), 200);
}

Test(erasure, no_consent_is_recorded_for_an_erased_subject)
{
    const char *s = person(ADMIN, NULL, NULL);
    bb_assert_json(erase(ADMIN, s), 200);
    const char *actions[] = {"grant", "withdraw", "deny", "renew"};
    for (size_t i = 0; i < 4; i++)
        bb_assert_problem(bb_consent(OPERATOR, s, "marketing", actions[i], NULL, NULL), 422,
                          "subject");
    cr_assert_eq(bb_history_len(ADMIN, s), 1);
}

Test(erasure, a_second_erasure_is_409_and_changes_nothing)
{
    const char *s = person(ADMIN, NULL, NULL);
    bb_resp *first = erase(ADMIN, s);
    bb_assert_json(first, 200);
    bb_resp *cp = bb_get("/v1/log/checkpoint", ADMIN);
    cr_assert_eq(cp->status, 200);
    bb_resp *again = erase(OPERATOR, s);
    bb_assert_problem(again, 409, "subject");
    cr_assert_str_eq(bb_jstr(again->json, "type"), "urn:patto:problem:conflict");
    cr_assert(strstr(bb_jstr(again->json, "detail"), "erased already") != NULL, "%s",
              again->body);
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "erased_at"), bb_jstr(first->json, "erased_at"));
}

Test(erasure, unknown_and_malformed_ids_are_404)
{
    const char *bad[] = {bb_random_subject_id(), "nonsense", "sub_", "sub_0", "evt_06h2g9jcr80016gsa8qb85hgw0",
                         bb_fmt("%s0", bb_random_subject_id()), "sub_%20x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bb_resp *r = erase(ADMIN, bad[i]);
        bb_assert_problem(r, 404, NULL);
    }
    bb_assert_problem(erase(ADMIN, bb_random_subject_id()), 404, "subject");
    /* a body is refused, and nothing is erased */
    const char *s = person(ADMIN, NULL, NULL);
    bb_resp *b = bb_http("DELETE", bb_fmt("/v1/subjects/%s", s), ADMIN, "application/json", "{}");
    bb_assert_problem(b, 400, "body");
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(bb_jobj(g->json, "profile"), "name"), "Ada Erasure");
    /* a query string is refused too */
    bb_assert_problem(bb_http("DELETE", bb_fmt("/v1/subjects/%s?force=1", s), ADMIN, NULL, NULL),
                      400, "force");
    bb_assert_json(bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN), 200);
}

Test(erasure, another_tenants_subject_is_404_and_untouched)
{
    bb_resp *n = bb_send("POST", "/v1/notices", KEY_B,
                         json_pack("{s:s, s:s, s:s, s:s}", "notice", "privacy", "version", "1",
                                   "language", "en", "text", "Tenant B's notice."));
    cr_assert(n->status == 201 || n->status == 200 || n->status == 409, "%ld %s", n->status,
              n->body);
    const char *s = person(KEY_B, NULL, NULL);
    bb_resp *r = erase(ADMIN, s);
    bb_assert_problem(r, 404, "subject");
    cr_assert_null(strstr(r->body, "erasure.example.org"));
    bb_assert_problem(erase(OPERATOR, s), 404, "subject");
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), KEY_B);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(bb_jobj(g->json, "profile"), "name"), "Ada Erasure");
    cr_assert_eq(json_array_size(bb_jarr(g->json, "identifiers")), 2);
    bb_resp *k = bb_check(KEY_B, s, "marketing", "email", NULL);
    bb_assert_json(k, 200);
    cr_assert(bb_jbool(k->json, "allowed"), "%s", k->body);
    /* and its own tenant may erase it */
    bb_assert_json(erase(KEY_B, s), 200);
}

Test(erasure, others_are_untouched)
{
    const char *email_a, *email_b;
    const char *a = person(ADMIN, &email_a, NULL);
    const char *b = person(ADMIN, &email_b, NULL);
    bb_assert_json(erase(ADMIN, a), 200);
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", b), ADMIN);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(bb_jobj(g->json, "profile"), "name"), "Ada Erasure");
    cr_assert(strstr(g->body, email_b) != NULL, "%s", g->body);
    bb_resp *l = bb_get(bb_fmt("/v1/subjects?identifier_type=email&identifier=%s",
                               bb_urlencode(email_b)),
                        ADMIN);
    bb_assert_json(l, 200);
    cr_assert_str_eq(bb_jstr(l->json, "subject"), b);
    bb_resp *k = bb_check(ADMIN, b, "marketing", "email", NULL);
    bb_assert_json(k, 200);
    cr_assert(bb_jbool(k->json, "allowed"), "%s", k->body);
    bb_resp *h = bb_get(bb_fmt("/v1/subjects/%s/consents/history", b), ADMIN);
    bb_assert_json(h, 200);
    cr_assert_str_eq(bb_jstr(bb_jobj(json_array_get(bb_jarr(h->json, "events"), 0), "evidence"),
                             "ip"),
                     "203.0.113.9");
    /* the freed e-mail may be used by a new person */
    bb_resp *c = bb_send("POST", "/v1/subjects", ADMIN,
                         json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "email", "value",
                                   email_a));
    bb_assert_json(c, 201);
    cr_assert_str_neq(bb_jstr(c->json, "subject"), a);
}

Test(erasure, erasing_a_merged_person_shreds_every_id)
{
    const char *email_a, *email_b;
    const char *a = person(ADMIN, &email_a, NULL);
    const char *b = person(ADMIN, &email_b, NULL);
    bb_resp *m = bb_send("POST", bb_fmt("/v1/subjects/%s/merge", a), ADMIN,
                         json_pack("{s:s}", "from", b));
    cr_assert(m->status == 200 || m->status == 201, "merge: %ld %s", m->status, m->body);
    /* the merged id stands for the person */
    bb_resp *r = erase(OPERATOR, b);
    bb_assert_json(r, 200);
    cr_assert_str_eq(bb_jstr(r->json, "subject"), a);
    json_t *d = bb_jobj(r->json, "destroyed");
    cr_assert_eq(bb_jint(d, "merged_subjects"), 1, "%s", r->body);
    cr_assert_eq(bb_jint(d, "identifiers"), 4, "%s", r->body);
    const char *ids[] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        bb_resp *k = bb_check(ADMIN, ids[i], "marketing", "email", NULL);
        bb_assert_json(k, 200);
        cr_assert_str_eq(bb_jstr(k->json, "reason"), "subject_erased", "%s: %s", ids[i], k->body);
        bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", ids[i]), ADMIN);
        bb_assert_json(g, 200);
        cr_assert(bb_jnull(g->json, "profile"), "%s", g->body);
        bb_parse_time(bb_jstr(g->json, "erased_at"));
    }
    const char *emails[] = {email_a, email_b};
    for (size_t i = 0; i < 2; i++)
        bb_assert_problem(bb_get(bb_fmt("/v1/subjects?identifier_type=email&identifier=%s",
                                        bb_urlencode(emails[i])),
                                 ADMIN),
                          404, "identifier");
    /* every event of both stays, none readable */
    bb_resp *h = bb_get(bb_fmt("/v1/subjects/%s/consents/history", a), ADMIN);
    bb_assert_json(h, 200);
    cr_assert_null(strstr(h->body, "203.0.113.9"), "%s", h->body);
    bb_assert_problem(erase(ADMIN, a), 409, "subject");
}
