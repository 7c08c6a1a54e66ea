/* test_badinput.c - black-box: what the API refuses, and that a refused
 * write changes nothing. Every refusal must be an RFC 9457 problem.
 *
 * The "world" (tenant A's purposes, notices and keys, and the history and
 * check answer of the test's own subject) is read before and after each
 * bad request and must be identical. No test in this file makes a
 * successful change to purposes, notices or keys, so the comparison holds
 * while tests run in parallel. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ADMIN bb_key("admin")
#define JSON "application/json"

TestSuite(badinput, .init = bb_suite_init, .fini = bb_suite_fini, .timeout = 60);

int main(int argc, char **argv)
{
    return bb_main(argc, argv);
}

/* ------------------------------------------------------------ the world */

typedef struct world {
    json_t *purposes, *notices, *keys, *history, *check;
} world;

static const char *subject; /* the test's own subject, granted marketing once */

static json_t *get_json(const char *path)
{
    bb_resp *r = bb_get(path, ADMIN);
    bb_assert_json(r, 200);
    return r->json;
}

static world snap(void)
{
    world w = {get_json("/v1/purposes"), get_json("/v1/notices"), get_json("/v1/keys"), NULL, NULL};
    if (subject) {
        w.history = get_json(bb_fmt("/v1/subjects/%s/consents/history?limit=1000", subject));
        bb_resp *c = bb_check(ADMIN, subject, "marketing", NULL, NULL);
        bb_assert_json(c, 200);
        w.check = c->json; /* freed with the response */
        json_object_del(w.check, "checked_at");
    }
    return w;
}

static void same_world(const world *a, const world *b, const char *what)
{
    cr_assert(json_equal(a->purposes, b->purposes), "%s changed the purposes", what);
    cr_assert(json_equal(a->notices, b->notices), "%s changed the notices", what);
    cr_assert(json_equal(a->keys, b->keys), "%s changed the keys", what);
    if (a->history) {
        cr_assert(json_equal(a->history, b->history), "%s changed the subject's history", what);
        cr_assert(json_equal(a->check, b->check), "%s changed the check answer", what);
    }
}

static void fixture_subject(void)
{
    subject = bb_create_subject(ADMIN, NULL);
    bb_resp *g = bb_consent(ADMIN, subject, "marketing", "grant", "[\"email\"]", NULL);
    bb_assert_json(g, 201);
}

/* A refused request: the problem (status, field) and an unchanged world. */
static const bb_resp *refused_raw(const char *method, const char *path, const char *ctype,
                                  const char *body, size_t len, long status, const char *field)
{
    world before = snap();
    bb_req q = {.method = method,
                .path = path,
                .key = ADMIN,
                .content_type = ctype,
                .body = body,
                .body_len = len,
                .has_body = body != NULL};
    bb_resp *r = bb_do(&q);
    bb_assert_problem(r, status, field);
    world after = snap();
    same_world(&before, &after,
               bb_fmt("%s %s %.80s (%ld)", method, path, body ? body : "", status));
    return r;
}

static const bb_resp *refused(const char *method, const char *path, const char *body, long status,
                              const char *field)
{
    return refused_raw(method, path, JSON, body, body ? strlen(body) : 0, status, field);
}

/* A consent body for the fixture subject with the given extra members
 * (a JSON fragment starting with a comma, or ""). */
__attribute__((returns_nonnull)) static const char *consent_body(const char *extra)
{
    return bb_fmt(
        "{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"grant\","
        "\"collected_via\":\"api\",\"notice\":{\"notice\":\"privacy\",\"version\":\"1\"}%s}",
        subject, extra);
}

static const char *PURPOSE_OK =
    "{\"title\":\"Marketing communications\",\"legal_basis\":\"consent\",\"validity_days\":730,"
    "\"channels\":[\"email\",\"sms\",\"phone\",\"post\"]";

static const char *purpose_body(const char *extra)
{
    return bb_fmt("%s%s}", PURPOSE_OK, extra);
}

static const char *notice_body(const char *extra)
{
    return bb_fmt("{\"notice\":\"privacy\",\"version\":\"1\",\"language\":\"en\","
                  "\"text\":\"another text\"%s}",
                  extra);
}

/* A valid body in each case proves that the refusal is the extra member's. */
static void valid_bodies_are_accepted_here(void)
{
    cr_assert_eq(bb_history_len(ADMIN, subject), 1);
    bb_resp *r =
        bb_http("POST", "/v1/consents", ADMIN, JSON, consent_body(",\"channels\":[\"email\"]"));
    bb_assert_json(r, 201);
    cr_assert_eq(bb_history_len(ADMIN, subject), 2);
}

/* ------------------------------------------------------------ syntax */

Test(badinput, malformed_json)
{
    fixture_subject();
    const char *bodies[] = {"{",
                            "{\"role\":",
                            "{role: \"auditor\"}",
                            "{\"role\":\"auditor\",}",
                            "{\"role\":\"auditor\"} trailing",
                            "{\"role\":\"auditor\"}{}",
                            "{'role':'auditor'}",
                            "{\"role\":\"auditor\" \"label\":\"x\"}",
                            "{\"role\":\"audi\ntor\"}",
                            "{\"n\":01}",
                            "{\"n\":NaN}",
                            "\xef\xbb\xbf{\"role\":\"auditor\"}"};
    const char *paths[][2] = {{"POST", "/v1/keys"},
                              {"POST", "/v1/consents"},
                              {"PUT", "/v1/purposes/marketing"},
                              {"POST", "/v1/notices"},
                              {"POST", "/v1/subjects"}};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++)
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
            refused(paths[p][0], paths[p][1], bodies[i], 400, "body");
    /* a truncated copy of a valid consent */
    const char *ok = consent_body("");
    refused("POST", "/v1/consents", bb_fmt("%.*s", (int)strlen(ok) - 1, ok), 400, "body");
    valid_bodies_are_accepted_here();
}

Test(badinput, invalid_utf8)
{
    fixture_subject();
    const char *bad[] = {"\xc3\x28",         /* C3 then not a continuation */
                         "\x80",             /* a lone continuation byte */
                         "\xc0\xaf",         /* overlong '/' */
                         "\xe0\x80\xaf",     /* overlong, 3 bytes */
                         "\xed\xa0\x80",     /* a UTF-16 surrogate */
                         "\xf4\x90\x80\x80", /* above U+10FFFF */
                         "\xff",
                         "\xe2\x82"}; /* truncated sequence */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *b = consent_body(bb_fmt(",\"evidence\":{\"note\":\"x%sy\"}", bad[i]));
        const bb_resp *r = refused("POST", "/v1/consents", b, 400, "body");
        cr_assert(strstr(bb_jstr(r->json, "detail"), "UTF-8") != NULL, "%s", r->body);
        refused("PUT", "/v1/purposes/marketing",
                purpose_body(bb_fmt(",\"description\":\"%s\"", bad[i])), 400, "body");
        refused("POST", "/v1/notices",
                bb_fmt("{\"notice\":\"n%zu\",\"version\":\"1\",\"language\":\"en\","
                       "\"text\":\"%s\"}",
                       i, bad[i]),
                400, "body");
        /* in a member name too */
        refused("POST", "/v1/subjects", bb_fmt("{\"profile\":{\"a%s\":1}}", bad[i]), 400, "body");
    }
    /* escaped lone surrogates are not text either */
    refused("POST", "/v1/consents", consent_body(",\"evidence\":{\"note\":\"\\ud800\"}"), 400,
            "body");
    /* a raw NUL byte */
    const char *ok = consent_body("");
    char *nul = bb_strdup(ok);
    nul[10] = '\0';
    refused_raw("POST", "/v1/consents", JSON, nul, strlen(ok), 400, "body");
    /* an escaped NUL inside a string value would cut C strings short */
    refused("PUT", "/v1/purposes/marketing",
            bb_fmt("{\"title\":\"Mark\\u0000eting\",\"legal_basis\":\"consent\","
                   "\"channels\":[\"email\"]}"),
            400, NULL);
    /* valid multi-byte UTF-8 is of course fine */
    bb_resp *r =
        bb_http("POST", "/v1/consents", ADMIN, JSON,
                consent_body(",\"evidence\":{\"note\":\"\xc3\xa8\xe2\x82\xac\xf0\x9f\x99\x82\"}"));
    bb_assert_json(r, 201);
}

Test(badinput, deeply_nested_json)
{
    fixture_subject();
    for (int depth = 100; depth <= 10000; depth *= 10) {
        size_t n = (size_t)depth;
        char *b = bb_strdup(bb_fmt("%*s", (int)(2 * n + 64), ""));
        static const char pre[] = "{\"evidence\":";
        memcpy(b, pre, sizeof pre - 1);
        size_t o = sizeof pre - 1;
        for (size_t i = 0; i < n; i++)
            b[o++] = '[';
        for (size_t i = 0; i < n; i++)
            b[o++] = ']';
        b[o++] = '}';
        b[o] = '\0';
        refused("POST", "/v1/consents", b, 400, "body");
        /* unbalanced: only openers */
        b[12 + n] = '\0';
        refused("POST", "/v1/consents", b, 400, "body");
    }
    /* objects nested 100 deep inside the profile */
    char *b = bb_strdup(bb_fmt("%*s", 2000, ""));
    size_t o = (size_t)sprintf(b, "{\"profile\":");
    for (int i = 0; i < 100; i++)
        o += (size_t)sprintf(b + o, "{\"a\":");
    o += (size_t)sprintf(b + o, "1");
    for (int i = 0; i < 101; i++)
        b[o++] = '}';
    b[o] = '\0';
    refused("POST", "/v1/subjects", b, 400, "body");
}

Test(badinput, duplicate_keys)
{
    fixture_subject();
    refused("POST", "/v1/keys", "{\"role\":\"auditor\",\"role\":\"admin\"}", 400, "body");
    refused("POST", "/v1/keys", "{\"role\":\"auditor\",\"label\":\"a\",\"label\":\"a\"}", 400,
            "body");
    refused("POST", "/v1/consents", consent_body(",\"action\":\"withdraw\""), 400, "body");
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"grant\","
                   "\"collected_via\":\"api\",\"notice\":{\"notice\":\"privacy\","
                   "\"notice\":\"privacy\",\"version\":\"1\"}}",
                   subject),
            400, "body");
    refused("PUT", "/v1/purposes/marketing", purpose_body(",\"title\":\"Other\""), 400, "body");
    refused("POST", "/v1/subjects", "{\"profile\":{\"a\":1,\"a\":2}}", 400, "body");
}

Test(badinput, body_must_be_one_json_object)
{
    fixture_subject();
    const char *bodies[] = {
        "[]", "[{\"role\":\"auditor\"}]", "\"auditor\"", "42", "null", "true", "   ", "\n"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        refused("POST", "/v1/keys", bodies[i], 400, "body");
        refused("POST", "/v1/consents", bodies[i], 400, "body");
        refused("PUT", "/v1/purposes/marketing", bodies[i], 400, "body");
    }
    refused("POST", "/v1/consents", bb_fmt("[%s]", consent_body("")), 400, "body");
}

Test(badinput, empty_body)
{
    fixture_subject();
    const char *paths[][2] = {{"POST", "/v1/keys"},
                              {"POST", "/v1/consents"},
                              {"PUT", "/v1/purposes/marketing"},
                              {"POST", "/v1/notices"},
                              {"POST", "/v1/subjects"}};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        refused_raw(paths[p][0], paths[p][1], JSON, "", 0, 400, "body");
        /* no body at all (no Content-Length either) */
        world before = snap();
        bb_req q = {.method = paths[p][0], .path = paths[p][1], .key = ADMIN, .content_type = JSON};
        bb_assert_problem(bb_do(&q), 400, "body");
        world after = snap();
        same_world(&before, &after, "a bodiless write");
    }
}

Test(badinput, oversize_body)
{
    fixture_subject();
    size_t big = 70 * 1024;
    char *pad = bb_strdup(bb_fmt("%*s", (int)big, ""));
    memset(pad, 'a', big);
    const char *b = consent_body(bb_fmt(",\"evidence\":{\"pad\":\"%s\"}", pad));
    refused("POST", "/v1/consents", b, 413, NULL);
    refused("PUT", "/v1/purposes/marketing", purpose_body(bb_fmt(",\"description\":\"%s\"", pad)),
            413, NULL);
    refused(
        "POST", "/v1/notices",
        bb_fmt("{\"notice\":\"big\",\"version\":\"1\",\"language\":\"en\",\"text\":\"%s\"}", pad),
        413, NULL);
    /* a megabyte */
    char *huge = bb_strdup(bb_fmt("%*s", 1 << 20, ""));
    memset(huge, ' ', 1 << 20);
    huge[0] = '{';
    huge[(1 << 20) - 1] = '}';
    refused("POST", "/v1/subjects", huge, 413, NULL);

    /* chunked, so that no Content-Length announces the size */
    world before = snap();
    bb_req q = {.method = "POST",
                .path = "/v1/consents",
                .key = ADMIN,
                .content_type = JSON,
                .body = b,
                .body_len = strlen(b),
                .has_body = true,
                .chunked = true};
    bb_assert_problem(bb_do(&q), 413, NULL);
    world after = snap();
    same_world(&before, &after, "a chunked oversize body");

    /* 64 KiB exactly is within the limit: refused for its evidence size, not 413 */
    const char *head = consent_body(",\"evidence\":{\"pad\":\"");
    size_t fill = 64 * 1024 - (strlen(head) - 1) - 3; /* head ends with '}' we drop */
    size_t hl = strlen(head) - 1;
    char *exact = bb_fmt("%*s", (int)(hl + fill + 3), "");
    memcpy(exact, head, hl);
    memset(exact + hl, 'b', fill);
    memcpy(exact + hl + fill, "\"}}", 3);
    cr_assert_eq(strlen(exact), 64 * 1024);
    refused("POST", "/v1/consents", exact, 400, "evidence");
    /* and a chunked valid body is fine */
    const char *ok = consent_body("");
    bb_req q2 = {.method = "POST",
                 .path = "/v1/consents",
                 .key = ADMIN,
                 .content_type = JSON,
                 .body = ok,
                 .body_len = strlen(ok),
                 .has_body = true,
                 .chunked = true};
    bb_assert_json(bb_do(&q2), 201);
}

/* ------------------------------------------------------------ media type */

Test(badinput, content_type_must_be_json)
{
    fixture_subject();
    const char *types[] = {"text/plain",
                           "application/x-www-form-urlencoded",
                           "application/xml",
                           "application/jsonp",
                           "application/json-patch+json",
                           "text/json",
                           "multipart/form-data; boundary=x",
                           "*/*"};
    const char *ok_consent = consent_body("");
    const char *ok_key = "{\"role\":\"auditor\"}";
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        refused_raw("POST", "/v1/consents", types[i], ok_consent, strlen(ok_consent), 415, NULL);
        refused_raw("POST", "/v1/keys", types[i], ok_key, strlen(ok_key), 415, NULL);
        refused_raw("PUT", "/v1/purposes/marketing", types[i], purpose_body(""),
                    strlen(purpose_body("")), 415, NULL);
    }
    /* no Content-Type at all */
    refused_raw("POST", "/v1/consents", NULL, ok_consent, strlen(ok_consent), 415, NULL);
    refused_raw("POST", "/v1/keys", NULL, ok_key, strlen(ok_key), 415, NULL);
    refused_raw("POST", "/v1/notices", NULL, notice_body(""), strlen(notice_body("")), 415, NULL);

    /* parameters and case do not matter */
    const char *fine[] = {"application/json; charset=utf-8", "Application/JSON",
                          "application/json;charset=UTF-8"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        bb_resp *r = bb_http("POST", "/v1/subjects", ADMIN, fine[i], "{\"profile\":{\"a\":1}}");
        bb_assert_json(r, 201);
    }
}

/* ------------------------------------------------------------ query string */

Test(badinput, api_key_in_query_string)
{
    fixture_subject();
    const char *names[] = {"api_key", "key", "token", "access_token", "authorization", "API_KEY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *q = bb_fmt("%s=%s", names[i], bb_urlencode(ADMIN));
        /* with and without a header: refused either way, and never authorised by it */
        const bb_resp *r = refused("GET", bb_fmt("/v1/purposes?%s", q), NULL, 400, names[i]);
        cr_assert(strstr(bb_jstr(r->json, "detail"), "query string") != NULL, "%s", r->body);
        cr_assert_null(strstr(r->body, ADMIN), "the problem echoes the key");
        world before = snap();
        bb_resp *nokey = bb_get(bb_fmt("/v1/purposes?%s", q), NULL);
        bb_assert_problem(nokey, 400, names[i]);
        cr_assert_null(strstr(nokey->body, ADMIN), "the problem echoes the key");
        refused("POST", bb_fmt("/v1/consents?%s", q), consent_body(""), 400, names[i]);
        world after = snap();
        same_world(&before, &after, "a key in the query string");
    }
}

Test(badinput, unknown_query_parameter)
{
    fixture_subject();
    const bb_resp *r = refused("GET", "/v1/purposes?foo=1", NULL, 400, "foo");
    cr_assert(strstr(bb_jstr(r->json, "detail"), "foo") != NULL, "%s", r->body);
    refused("GET", bb_fmt("/v1/check?subject=%s&purpose=marketing&colour=red", subject), NULL, 400,
            "colour");
    refused("GET", bb_fmt("/v1/subjects/%s/consents/history?limit=1&offset=2", subject), NULL, 400,
            "offset");
    refused("GET", bb_fmt("/v1/subjects/%s?fields=all", subject), NULL, 400, "fields");
    refused("POST", "/v1/consents?dry_run=1", consent_body(""), 400, "dry_run");
    refused("PUT", "/v1/purposes/marketing?force=true", purpose_body(""), 400, "force");
    /* a known parameter of another route is unknown here */
    refused("GET", "/v1/purposes?limit=1", NULL, 400, "limit");
}

/* ------------------------------------------------------------ members */

Test(badinput, wrong_types)
{
    fixture_subject();
    static const struct {
        const char *extra, *field;
    } consent[] = {
        {",\"channels\":\"email\"", "channels"},
        {",\"channels\":[\"email\",3]", "channels"},
        {",\"channels\":[]", "channels"},
        {",\"channels\":{}", "channels"},
        {",\"evidence\":\"ip=1.2.3.4\"", "evidence"},
        {",\"evidence\":[1]", "evidence"},
        {",\"occurred_at\":1700000000000", "occurred_at"},
        {",\"occurred_at\":\"2026-13-01T00:00:00.000Z\"", "occurred_at"},
    };
    for (size_t i = 0; i < sizeof consent / sizeof consent[0]; i++)
        refused("POST", "/v1/consents", consent_body(consent[i].extra), 400, consent[i].field);

    static const struct {
        const char *member, *value;
    } scalars[] = {{"subject", "12"},   {"purpose", "5"},
                   {"action", "true"},  {"collected_via", "[\"api\"]"},
                   {"purpose", "null"}, {"action", "\"\""}};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        json_t *b = json_loads(consent_body(""), 0, NULL);
        cr_assert_not_null(b);
        json_object_set_new(b, scalars[i].member,
                            json_loads(scalars[i].value, JSON_DECODE_ANY, NULL));
        char *s = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        const char *body = bb_strdup(s);
        free(s);
        refused("POST", "/v1/consents", body, 400, scalars[i].member);
    }

    static const struct {
        const char *body, *field;
    } purpose[] = {
        {"{\"title\":5,\"legal_basis\":\"consent\",\"channels\":[\"email\"]}", "title"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"validity_days\":\"90\",\"channels\":["
         "\"email\"]}",
         "validity_days"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"validity_days\":1.5,\"channels\":["
         "\"email\"]}",
         "validity_days"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"validity_days\":0,\"channels\":[\"email\"]"
         "}",
         "validity_days"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"validity_days\":100000,\"channels\":["
         "\"email\"]}",
         "validity_days"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"validity_days\":-1,\"channels\":["
         "\"email\"]}",
         "validity_days"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"channels\":{\"email\":true}}", "channels"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"channels\":[\"fax\"]}", "channels"},
        {"{\"title\":\"T\",\"legal_basis\":null,\"channels\":[\"email\"]}", "legal_basis"},
        {"{\"title\":\"T\",\"legal_basis\":\"vibes\",\"channels\":[\"email\"]}", "legal_basis"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\"}", "channels"},
        {"{\"legal_basis\":\"consent\",\"channels\":[\"email\"]}", "title"},
        {"{\"title\":\"\",\"legal_basis\":\"consent\",\"channels\":[\"email\"]}", "title"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"validity_days\":30,\"renew_before_days\":"
         "30,\"channels\":[\"email\"]}",
         "renew_before_days"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"renew_before_days\":3,\"channels\":["
         "\"email\"]}",
         "renew_before_days"},
        {"{\"title\":\"T\",\"legal_basis\":\"consent\",\"dpv\":[],\"channels\":[\"email\"]}",
         "dpv"},
    };
    for (size_t i = 0; i < sizeof purpose / sizeof purpose[0]; i++) {
        refused("PUT", "/v1/purposes/marketing", purpose[i].body, 400, purpose[i].field);
        refused("PUT", "/v1/purposes/bb.never", purpose[i].body, 400, purpose[i].field);
    }
    bb_assert_problem(bb_get("/v1/purposes/bb.never", ADMIN), 404, "purpose");

    static const struct {
        const char *body, *field;
    } keys[] = {
        {"{\"role\":1}", "role"},
        {"{\"role\":\"root\"}", "role"},
        {"{\"label\":\"x\"}", "role"},
        {"{\"role\":\"auditor\",\"label\":[]}", "label"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        refused("POST", "/v1/keys", keys[i].body, 400, keys[i].field);

    static const struct {
        const char *body, *field;
    } notices[] = {
        {"{\"notice\":\"n\",\"version\":1,\"language\":\"en\",\"text\":\"t\"}", "version"},
        {"{\"notice\":\"n\",\"version\":\"1\",\"language\":\"en\",\"text\":5}", "text"},
        {"{\"notice\":\"n\",\"version\":\"1\",\"language\":\"en\"}", "text"},
        {"{\"notice\":\"n\",\"version\":\"1\",\"language\":\"english\",\"text\":\"t\"}",
         "language"},
        {"{\"notice\":\"Bad Name!\",\"version\":\"1\",\"language\":\"en\",\"text\":\"t\"}",
         "notice"},
        {"{\"notice\":\"n\",\"version\":\"1/2\",\"language\":\"en\",\"text\":\"t\"}", "version"},
    };
    for (size_t i = 0; i < sizeof notices / sizeof notices[0]; i++)
        refused("POST", "/v1/notices", notices[i].body, 400, notices[i].field);

    static const struct {
        const char *body, *field;
    } subjects[] = {
        {"{\"identifiers\":{\"type\":\"email\",\"value\":\"a@b.it\"}}", "identifiers"},
        {"{\"profile\":[1,2]}", "profile"},
        {"{\"profile\":{\"Nested\":{\"a\":1}}}", "profile.Nested"},
        {"{\"profile\":{\"ok\":{\"a\":1}}}", "profile.ok"},
        {"{\"identifiers\":[{\"type\":\"fax\",\"value\":\"123\"}]}", "identifiers[0].type"},
        {"{\"identifiers\":[{\"type\":\"email\",\"value\":7}]}", "identifiers[0].value"},
        {"{\"identifiers\":[{\"type\":\"email\"}]}", "identifiers[0].value"},
    };
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++)
        refused("POST", "/v1/subjects", subjects[i].body, 400, subjects[i].field);
    valid_bodies_are_accepted_here();
}

/* The field must name the member ("notice"), not a prefix ("notice."). */
Test(badinput, nested_object_of_wrong_type_names_the_member_notice)
{
    fixture_subject();
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"grant\","
                   "\"collected_via\":\"api\",\"notice\":\"privacy\"}",
                   subject),
            400, "notice");
}

Test(badinput, nested_object_of_wrong_type_names_the_member_identifier)
{
    fixture_subject();
    refused("POST", "/v1/consents",
            "{\"identifier\":\"a@b.it\",\"purpose\":\"marketing\",\"action\":\"deny\","
            "\"collected_via\":\"api\"}",
            400, "identifier");
}

Test(badinput, nested_object_of_wrong_type_names_the_member_identifiers)
{
    fixture_subject();
    refused("POST", "/v1/subjects", "{\"identifiers\":[\"a@b.it\"]}", 400, "identifiers[0]");
}

Test(badinput, invalid_values)
{
    fixture_subject();
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"maybe\","
                   "\"collected_via\":\"api\"}",
                   subject),
            400, "action");
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"deny\","
                   "\"collected_via\":\"pigeon\"}",
                   subject),
            400, "collected_via");
    refused("POST", "/v1/consents",
            "{\"subject\":\"not-an-id\",\"purpose\":\"marketing\",\"action\":\"deny\","
            "\"collected_via\":\"api\"}",
            400, "subject");
    refused("POST", "/v1/consents",
            "{\"subject\":\"key_x17pt0rjj26ybkcy9jb89dsxs4\",\"purpose\":\"marketing\","
            "\"action\":\"deny\",\"collected_via\":\"api\"}",
            400, "subject");
    /* exactly one of subject and identifier */
    refused("POST", "/v1/consents",
            "{\"purpose\":\"marketing\",\"action\":\"deny\",\"collected_via\":\"api\"}", 400,
            "subject");
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"identifier\":{\"type\":\"email\",\"value\":\"x@y.it\"},"
                   "\"purpose\":\"marketing\",\"action\":\"deny\",\"collected_via\":\"api\"}",
                   subject),
            400, "identifier");
    /* required members */
    refused(
        "POST", "/v1/consents",
        bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"collected_via\":\"api\"}", subject),
        400, "action");
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"deny\"}", subject),
            400, "collected_via");
    /* a channel the purpose does not use */
    refused("POST", "/v1/consents", consent_body(",\"channels\":[\"web\"]"), 400, "channels");
    /* evidence larger than 8 KiB */
    char *pad = bb_strdup(bb_fmt("%*s", 9000, ""));
    memset(pad, 'e', 9000);
    refused("POST", "/v1/consents", consent_body(bb_fmt(",\"evidence\":{\"x\":\"%s\"}", pad)), 400,
            "evidence");
    /* purpose names in the path */
    refused("PUT", "/v1/purposes/Bad%20Name", purpose_body(""), 400, "purpose");
    refused("PUT", "/v1/purposes/.dot", purpose_body(""), 400, "purpose");
    refused("PUT", bb_fmt("/v1/purposes/%065d", 7), purpose_body(""), 400, "purpose");
    valid_bodies_are_accepted_here();
}

Test(badinput, identifiers_are_validated_without_echoing_them)
{
    fixture_subject();
    static const struct {
        const char *type, *value;
    } bad[] = {{"email", "no-at-sign.example.com"},
               {"email", "two@@example.com"},
               {"email", "mario@localhost"},
               {"email", "ma rio@example.com"},
               {"email", "mario@example..com"},
               {"phone", "5551234567"},
               {"phone", "+39 333 12a4567"},
               {"phone", "+0393331234567"},
               {"phone", "+4412"},
               {"cookie", "has space"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const bb_resp *r = refused("POST", "/v1/subjects",
                                   bb_fmt("{\"identifiers\":[{\"type\":\"%s\",\"value\":\"%s\"}]}",
                                          bad[i].type, bad[i].value),
                                   400, "identifiers[0].value");
        cr_assert_null(strstr(r->body, bad[i].value), "the problem echoes personal data: %s",
                       r->body);
        const bb_resp *c = refused(
            "POST", "/v1/consents",
            bb_fmt("{\"identifier\":{\"type\":\"%s\",\"value\":\"%s\"},\"purpose\":\"marketing\","
                   "\"action\":\"deny\",\"collected_via\":\"api\"}",
                   bad[i].type, bad[i].value),
            400, "identifier.value");
        cr_assert_null(strstr(c->body, bad[i].value), "the problem echoes personal data: %s",
                       c->body);
        bb_resp *l = bb_get(bb_fmt("/v1/subjects?identifier_type=%s&identifier=%s", bad[i].type,
                                   bb_urlencode(bad[i].value)),
                            ADMIN);
        bb_assert_problem(l, 400, "identifier");
        cr_assert_null(strstr(l->body, bad[i].value), "the problem echoes personal data");
    }
    refused("POST", "/v1/subjects",
            "{\"identifiers\":[{\"type\":\"email\",\"value\":\"a@b.it\"},"
            "{\"type\":\"email\",\"value\":\"A@B.IT\"}]}",
            400, "identifiers[1]");
    bb_assert_problem(bb_get("/v1/subjects?identifier_type=email", ADMIN), 400, "identifier");
    bb_assert_problem(bb_get("/v1/subjects?identifier=a%40b.it", ADMIN), 400, "identifier_type");
    bb_assert_problem(bb_get("/v1/subjects?identifier_type=fax&identifier=1", ADMIN), 400,
                      "identifier_type");
}

Test(badinput, unknown_field_is_named)
{
    fixture_subject();
    static const struct {
        const char *method, *path, *body, *field;
    } cases[] = {
        {"POST", "/v1/keys", "{\"role\":\"auditor\",\"scope\":\"all\"}", "scope"},
        {"POST", "/v1/subjects", "{\"profile\":{\"a\":1},\"name\":\"Mario\"}", "name"},
        {"POST", "/v1/subjects",
         "{\"identifiers\":[{\"type\":\"email\",\"value\":\"u1@example.com\",\"primary\":true}]}",
         "identifiers[0].primary"},
        {"POST", "/v1/notices",
         "{\"notice\":\"uf\",\"version\":\"1\",\"language\":\"en\",\"text\":\"t\",\"author\":"
         "\"x\"}",
         "author"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bb_resp *r =
            refused(cases[i].method, cases[i].path, cases[i].body, 400, cases[i].field);
        cr_assert(strstr(bb_jstr(r->json, "detail"), cases[i].field) != NULL, "%s", r->body);
    }
    const bb_resp *r =
        refused("POST", "/v1/consents", consent_body(",\"colour\":\"red\""), 400, "colour");
    cr_assert(strstr(bb_jstr(r->json, "detail"), "colour") != NULL, "%s", r->body);
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"grant\","
                   "\"collected_via\":\"api\",\"notice\":{\"notice\":\"privacy\","
                   "\"version\":\"1\",\"extra\":1}}",
                   subject),
            400, "notice.extra");
    refused("POST", "/v1/consents",
            "{\"identifier\":{\"type\":\"email\",\"value\":\"u2@example.com\",\"x\":1},"
            "\"purpose\":\"marketing\",\"action\":\"deny\",\"collected_via\":\"api\"}",
            400, "identifier.x");
    refused("PUT", "/v1/purposes/marketing", purpose_body(",\"foo\":1"), 400, "foo");
    /* case matters: "Action" is not "action" */
    refused("POST", "/v1/consents", consent_body(",\"Purpose\":\"marketing\""), 400, "Purpose");
    /* the subjects that the refused bodies name were not created */
    bb_assert_problem(
        bb_get("/v1/subjects?identifier_type=email&identifier=u1%40example.com", ADMIN), 404, NULL);
    bb_assert_problem(
        bb_get("/v1/subjects?identifier_type=email&identifier=u2%40example.com", ADMIN), 404, NULL);
    bb_assert_problem(bb_get("/v1/notices/uf/1", ADMIN), 404, NULL);
    valid_bodies_are_accepted_here();
}

Test(badinput, read_only_fields_are_refused)
{
    fixture_subject();
    static const struct {
        const char *method, *path, *extra, *field;
    } cases[] = {
        {"PUT", "/v1/purposes/marketing", ",\"tenant\":\"beta\"", "tenant"},
        {"PUT", "/v1/purposes/marketing", ",\"revision\":9", "revision"},
        {"PUT", "/v1/purposes/marketing", ",\"purpose\":\"other\"", "purpose"},
        {"PUT", "/v1/purposes/marketing", ",\"created_at\":\"2020-01-01T00:00:00.000Z\"",
         "created_at"},
        {"POST", "/v1/consents", ",\"recorded_at\":\"2020-01-01T00:00:00.000Z\"", "recorded_at"},
        {"POST", "/v1/consents", ",\"event\":\"evt_x17pt0rjj26ybkcy9jb89dsxs4\"", "event"},
        {"POST", "/v1/consents", ",\"tenant\":\"beta\"", "tenant"},
        {"POST", "/v1/consents", ",\"expires_at\":\"2099-01-01T00:00:00.000Z\"", "expires_at"},
        {"POST", "/v1/consents", ",\"receipt\":{}", "receipt"},
        {"POST", "/v1/notices", ",\"sha256\":\"00\"", "sha256"},
        {"POST", "/v1/notices", ",\"tenant\":\"beta\"", "tenant"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *body = strcmp(cases[i].path, "/v1/consents") == 0 ? consent_body(cases[i].extra)
                           : strcmp(cases[i].path, "/v1/notices") == 0
                               ? bb_fmt("{\"notice\":\"ro\",\"version\":\"1\",\"language\":"
                                        "\"en\",\"text\":\"t\"%s}",
                                        cases[i].extra)
                               : purpose_body(cases[i].extra);
        const bb_resp *r = refused(cases[i].method, cases[i].path, body, 400, cases[i].field);
        cr_assert(strstr(bb_jstr(r->json, "detail"), "read-only") != NULL, "%s", r->body);
    }
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"grant\","
                   "\"collected_via\":\"api\",\"notice\":{\"notice\":\"privacy\","
                   "\"version\":\"1\",\"sha256\":\"00\"}}",
                   subject),
            400, "notice.sha256");
    refused("POST", "/v1/keys", "{\"role\":\"auditor\",\"api_key\":\"patto_x\"}", 400, "api_key");
    refused("POST", "/v1/subjects", "{\"subject\":\"sub_x\",\"profile\":{}}", 400, "subject");
    bb_assert_problem(bb_get("/v1/notices/ro/1", ADMIN), 404, NULL);
}

/* ------------------------------------------------------------ policy */

Test(badinput, unknown_purpose)
{
    fixture_subject();
    const char *b = bb_fmt("{\"subject\":\"%s\",\"purpose\":\"no.such.purpose\","
                           "\"action\":\"grant\",\"collected_via\":\"api\","
                           "\"notice\":{\"notice\":\"privacy\",\"version\":\"1\"}}",
                           subject);
    refused("POST", "/v1/consents", b, 422, "purpose");
    refused("POST", "/v1/consents",
            bb_fmt("{\"subject\":\"%s\",\"purpose\":\"Marketing\",\"action\":\"deny\","
                   "\"collected_via\":\"api\"}",
                   subject),
            422, "purpose");
    /* by identifier: refused before any subject is created */
    char *email = bb_fmt("%s@example.com", bb_unique("up"));
    refused("POST", "/v1/consents",
            bb_fmt("{\"identifier\":{\"type\":\"email\",\"value\":\"%s\"},\"purpose\":\"nope\","
                   "\"action\":\"deny\",\"collected_via\":\"api\"}",
                   email),
            422, "purpose");
    bb_assert_problem(
        bb_get(bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(email)),
               ADMIN),
        404, NULL);
    bb_assert_problem(bb_check(ADMIN, subject, "no.such.purpose", NULL, NULL), 422, "purpose");
}

Test(badinput, grant_needs_a_published_notice)
{
    fixture_subject();
    const char *base = "{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"%s\","
                       "\"collected_via\":\"api\"%s}";
    refused("POST", "/v1/consents", bb_fmt(base, subject, "grant", ""), 400, "notice");
    refused("POST", "/v1/consents", bb_fmt(base, subject, "renew", ""), 400, "notice");
    refused("POST", "/v1/consents", bb_fmt(base, subject, "grant", ",\"notice\":null"), 400,
            "notice");
    refused("POST", "/v1/consents",
            bb_fmt(base, subject, "grant", ",\"notice\":{\"notice\":\"privacy\"}"), 400,
            "notice.version");
    /* well-formed but not published: 422 */
    refused("POST", "/v1/consents",
            bb_fmt(base, subject, "grant",
                   ",\"notice\":{\"notice\":\"never-published\",\"version\":\"1\"}"),
            422, "notice");
    refused(
        "POST", "/v1/consents",
        bb_fmt(base, subject, "grant", ",\"notice\":{\"notice\":\"privacy\",\"version\":\"99\"}"),
        422, "notice");
    refused(
        "POST", "/v1/consents",
        bb_fmt(base, subject, "renew", ",\"notice\":{\"notice\":\"privacy\",\"version\":\"2\"}"),
        422, "notice");
    /* a deny or a withdrawal needs no notice */
    bb_assert_json(bb_http("POST", "/v1/consents", ADMIN, JSON, bb_fmt(base, subject, "deny", "")),
                   201);
}

/* ------------------------------------------------------------ HTTP */

Test(badinput, body_on_get_or_delete)
{
    fixture_subject();
    refused("GET", "/v1/purposes", "{}", 400, "body");
    refused("GET", bb_fmt("/v1/check?subject=%s&purpose=marketing", subject), "{}", 400, "body");
    refused("GET", "/v1/tenant", "x", 400, "body");
    refused_raw("GET", "/v1/keys", NULL, "{}", 2, 400, "body");
    /* a DELETE with a body is refused and revokes nothing */
    bb_resp *l = bb_get("/v1/keys", ADMIN);
    bb_assert_json(l, 200);
    const char *rid = NULL;
    size_t i;
    json_t *k;
    json_array_foreach(bb_jarr(l->json, "keys"), i, k)
    {
        if (strcmp(bb_jstr(k, "role"), "recipient") == 0) rid = bb_jstr(k, "key");
    }
    cr_assert_not_null(rid, "the recipient key made by the CLI is not listed");
    refused("DELETE", bb_fmt("/v1/keys/%s", rid), "{}", 400, "body");
    bb_assert_json(bb_get("/v1/tenant", bb_key("recipient")), 200);
}

static bool allow_is(const char *allow, const char *const *want)
{
    size_t n = 0, got = 0;
    for (const char *const *w = want; *w; w++)
        n++;
    char *copy = bb_strdup(allow), *save = NULL;
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        bool known = false;
        for (const char *const *w = want; *w; w++)
            known = known || !strcmp(*w, t);
        if (!known) return false;
        got++;
    }
    return got == n;
}

Test(badinput, wrong_method_is_405_with_allow)
{
    fixture_subject();
    static const struct {
        const char *method, *path;
        const char *allow[3];
    } cases[] = {
        {"DELETE", "/v1/purposes", {"GET", NULL}},
        {"POST", "/v1/purposes", {"GET", NULL}},
        {"PATCH", "/v1/purposes/marketing", {"GET", "PUT", NULL}},
        {"DELETE", "/v1/purposes/marketing", {"GET", "PUT", NULL}},
        {"POST", "/v1/check", {"GET", NULL}},
        {"PUT", "/v1/consents", {"POST", NULL}},
        {"GET", "/v1/consents", {"POST", NULL}},
        {"GET", "/v1/keys/key_x17pt0rjj26ybkcy9jb89dsxs4", {"DELETE", NULL}},
        {"DELETE", "/v1/subjects", {"GET", "POST", NULL}},
        {"PUT", "/v1/health", {"GET", NULL}},
        {"POST", "/v1/openapi.yaml", {"GET", NULL}},
        {"DELETE", "/v1/notices/privacy/1", {"GET", NULL}},
        {"PUT", "/v1/tenant", {"GET", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool body = strcmp(cases[i].method, "GET") && strcmp(cases[i].method, "DELETE");
        const bb_resp *r = refused(cases[i].method, cases[i].path, body ? "{}" : NULL, 405, NULL);
        cr_assert(allow_is(r->allow, cases[i].allow), "%s %s: Allow '%s'", cases[i].method,
                  cases[i].path, r->allow);
        /* and without a key */
        bb_req q = {.method = cases[i].method, .path = cases[i].path};
        bb_resp *nk = bb_do(&q);
        cr_assert(nk->status == 405 || nk->status == 401, "%s %s without a key: %ld",
                  cases[i].method, cases[i].path, nk->status);
        bb_assert_problem(nk, nk->status, NULL);
    }
    const bb_resp *s = refused("PUT", bb_fmt("/v1/subjects/%s", subject), "{}", 405, NULL);
    const char *const get[] = {"GET", "DELETE", "PATCH", NULL};
    cr_assert(allow_is(s->allow, get), "Allow '%s'", s->allow);
}

Test(badinput, unknown_path_is_404)
{
    fixture_subject();
    const char *paths[] = {"/",
                           "/v1",
                           "/v1/",
                           "/v1/nope",
                           "/v2/purposes",
                           "/v1/purposes/",
                           "/v1/purposes/marketing/extra",
                           "/v1/notices/privacy",
                           "/v1/notices/privacy/1/text",
                           "/V1/purposes",
                           "/v1//purposes",
                           "/v1/subjects/x/consents/history/more",
                           "/v1/check/x"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        refused("GET", paths[i], NULL, 404, NULL);
        bb_assert_problem(bb_get(paths[i], NULL), 404, NULL);
    }
    refused("POST", "/v1/nothing", "{}", 404, NULL);
}

Test(badinput, every_error_is_problem_json_without_a_key_too)
{
    /* 401s are problems as well, with the Bearer challenge */
    static const char *paths[] = {"/v1/tenant", "/v1/purposes", "/v1/keys"};
    for (size_t i = 0; i < 3; i++) {
        bb_resp *r = bb_get(paths[i], NULL);
        bb_assert_problem(r, 401, NULL);
        cr_assert_str_eq(r->www_authenticate, "Bearer");
        cr_assert_str_eq(bb_jstr(r->json, "type"), "urn:patto:problem:unauthorized");
        cr_assert_str_eq(bb_jstr(r->json, "instance"), paths[i]);
    }
    bb_resp *v = bb_http("POST", "/v1/keys", ADMIN, JSON, "{");
    bb_assert_problem(v, 400, "body");
    cr_assert_str_eq(bb_jstr(v->json, "type"), "urn:patto:problem:invalid-input");
    bb_resp *u = bb_http("POST", "/v1/keys", ADMIN, "text/plain", "{}");
    bb_assert_problem(u, 415, NULL);
    cr_assert_str_eq(bb_jstr(u->json, "type"), "urn:patto:problem:unsupported-media-type");
}
