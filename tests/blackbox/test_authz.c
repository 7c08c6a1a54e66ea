/* test_authz.c - black-box: the authorization matrix.
 *
 * `patto routes` enumerates the route table; FIXTURES below map each
 * "METHOD PATH" to a function that builds a concrete request (parameters
 * substituted, a valid body) and, for writes, a probe that tells whether
 * the write happened. A route without a fixture fails the run, so a new
 * route cannot ship without its authorization tests. The table also pins
 * the reviewed role policy of each route: a change of roles in routes.c
 * must be reflected here, on purpose.
 *
 * For every non-public route: no key and bad keys answer 401 with the
 * Bearer challenge; every role outside the route's roles answers 403 and
 * changes nothing; every role inside gets through. Objects of tenant B are
 * invisible to tenant A's admin (404) and stay unchanged. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ADMIN bb_key("admin")

static void authz_fini(void);
TestSuite(authz, .init = bb_suite_init, .fini = authz_fini, .timeout = 120);

int main(int argc, char **argv)
{
    return bb_main(argc, argv);
}

/* ------------------------------------------------------------ fixtures */

typedef struct fx_req {
    const char *path;
    const char *body; /* JSON, or NULL */
    /* for writes: GET probe_path with probe_key (tenant A admin if NULL);
     * the write happened iff the answer is 200 (and holds probe_needle),
     * or, with probe_inverse, iff it is not 200 */
    const char *probe_path, *probe_key, *probe_needle;
    bool probe_inverse;
} fx_req;

typedef void (*fixture_fn)(fx_req *q);

static const char *a_email;
static const char *a_subject_id;

/* Tenant A's subject, with an e-mail, made once per test process. */
static const char *a_subject(void)
{
    if (!a_subject_id) {
        a_email = bb_fmt("%s@a.example.com", bb_unique("authz"));
        a_subject_id = bb_create_subject(ADMIN, a_email);
    }
    return a_subject_id;
}

static void fx_same(fx_req *q)
{
    (void)q;
} /* the route's path as it is */

static void fx_key_create(fx_req *q)
{
    const char *label = bb_unique("authz-key");
    q->body = bb_fmt("{\"role\":\"auditor\",\"label\":\"%s\"}", label);
    q->probe_path = "/v1/keys";
    q->probe_needle = bb_fmt("\"%s\"", label);
}

static void fx_key_revoke(fx_req *q)
{
    bb_resp *c = bb_send("POST", "/v1/keys", ADMIN, json_pack("{s:s}", "role", "auditor"));
    bb_assert_json(c, 201);
    q->path = bb_fmt("/v1/keys/%s", bb_jstr(c->json, "key"));
    q->probe_path = "/v1/tenant";
    q->probe_key = bb_strdup(bb_jstr(c->json, "api_key"));
    q->probe_inverse = true;
}

static void fx_purpose_get(fx_req *q)
{
    q->path = "/v1/purposes/marketing";
}

static void fx_purpose_put(fx_req *q)
{
    q->path = bb_fmt("/v1/purposes/authz.%s", bb_unique("p"));
    q->body = "{\"title\":\"Authz\",\"legal_basis\":\"consent\",\"channels\":[\"email\"]}";
    q->probe_path = q->path;
}

static void fx_notice_publish(fx_req *q)
{
    const char *name = bb_unique("authz-notice");
    q->body =
        bb_fmt("{\"notice\":\"%s\",\"version\":\"1\",\"language\":\"en\",\"text\":\"t\"}", name);
    q->probe_path = bb_fmt("/v1/notices/%s/1", name);
}

static void fx_notice_get(fx_req *q)
{
    q->path = "/v1/notices/privacy/1";
}

static void fx_subject_create(fx_req *q)
{
    const char *email = bb_fmt("%s@a.example.com", bb_unique("authz-new"));
    q->body = bb_fmt("{\"identifiers\":[{\"type\":\"email\",\"value\":\"%s\"}]}", email);
    q->probe_path = bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(email));
}

static void fx_subject_lookup(fx_req *q)
{
    a_subject();
    q->path = bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(a_email));
}

static void fx_subject_get(fx_req *q)
{
    q->path = bb_fmt("/v1/subjects/%s", a_subject());
}

static void fx_consent_states(fx_req *q)
{
    q->path = bb_fmt("/v1/subjects/%s/consents", a_subject());
}

static void fx_consent_history(fx_req *q)
{
    q->path = bb_fmt("/v1/subjects/%s/consents/history", a_subject());
}

static void fx_consent_record(fx_req *q)
{
    /* by identifier: the probe sees whether a subject came to exist */
    const char *email = bb_fmt("%s@a.example.com", bb_unique("authz-consent"));
    q->body = bb_fmt("{\"identifier\":{\"type\":\"email\",\"value\":\"%s\"},"
                     "\"purpose\":\"marketing\",\"action\":\"grant\",\"collected_via\":\"api\","
                     "\"notice\":{\"notice\":\"privacy\",\"version\":\"1\"}}",
                     email);
    q->probe_path = bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(email));
}

static void fx_check(fx_req *q)
{
    q->path = bb_fmt("/v1/check?subject=%s&purpose=marketing&channel=email", a_subject());
}

/* Tenant A's consent event, recorded once per test process. */
static const char *a_event_id;
static const char *a_event(void)
{
    if (!a_event_id) {
        bb_resp *r = bb_consent(ADMIN, a_subject(), "marketing", "grant", NULL, NULL);
        bb_assert_json(r, 201);
        a_event_id = bb_strdup(bb_jstr(r->json, "event"));
    }
    return a_event_id;
}

static void fx_log_inclusion(fx_req *q)
{
    q->path = bb_fmt("/v1/log/proof/inclusion?event=%s", a_event());
}

static void fx_log_consistency(fx_req *q)
{
    a_event();
    q->path = "/v1/log/proof/consistency?from=1";
}

static void fx_log_leaves(fx_req *q)
{
    a_event();
    q->path = "/v1/log/leaves?start=0&end=2";
}

static void fx_log_checkpoint(fx_req *q)
{
    a_event();
    (void)q;
}

static void fx_receipt(fx_req *q)
{
    q->path = bb_fmt("/v1/receipts/%s", a_event());
}

/* Identity, access, rectification (identity.c, rights.c): each build gets
 * fresh people, so that a write that happened shows in its probe only. */
static void fx_identifier_link(fx_req *q)
{
    const char *s = bb_create_subject(ADMIN, bb_fmt("%s@a.example.com", bb_unique("authz-link")));
    const char *cookie = bb_unique("authz-cookie");
    q->path = bb_fmt("/v1/subjects/%s/identifiers", s);
    q->body = bb_fmt("{\"type\":\"cookie\",\"value\":\"%s\"}", cookie);
    q->probe_path = bb_fmt("/v1/subjects?identifier_type=cookie&identifier=%s", bb_urlencode(cookie));
    q->probe_needle = bb_fmt("\"%s\"", s);
}

static void fx_subject_merge(fx_req *q)
{
    const char *keep = bb_create_subject(ADMIN, bb_fmt("%s@a.example.com", bb_unique("authz-keep")));
    const char *from = bb_create_subject(ADMIN, bb_fmt("%s@a.example.com", bb_unique("authz-from")));
    q->path = bb_fmt("/v1/subjects/%s/merge", keep);
    q->body = bb_fmt("{\"from\":\"%s\"}", from);
    /* once merged, the old id answers as the survivor */
    q->probe_path = bb_fmt("/v1/subjects/%s", from);
    q->probe_needle = bb_fmt("\"subject\":\"%s\"", keep);
}

static void fx_subject_export(fx_req *q)
{
    q->path = bb_fmt("/v1/subjects/%s/export", a_subject());
}

static void fx_subject_rectify(fx_req *q)
{
    const char *nick = bb_unique("authz-nick");
    q->path = bb_fmt("/v1/subjects/%s", a_subject());
    q->body = bb_fmt("{\"profile\":{\"nickname\":\"%s\"}}", nick);
    q->probe_path = q->path;
    q->probe_needle = bb_fmt("\"%s\"", nick);
}

/* Erasure (erasure.c): a fresh person per build; the write happened iff
 * the subject now reads erased. */
static void fx_subject_erase(fx_req *q)
{
    const char *s = bb_create_subject(ADMIN, bb_fmt("%s@a.example.com", bb_unique("authz-erase")));
    q->path = bb_fmt("/v1/subjects/%s", s);
    q->probe_path = q->path;
    q->probe_needle = "\"erased_at\"";
}

#define ANY "admin,operator,marketing,auditor,recipient"
#define READERS "admin,operator,marketing,auditor"

static const struct fixture {
    const char *route; /* "METHOD PATH" exactly as `patto routes` lists it */
    const char *roles; /* the reviewed policy; "" = public */
    fixture_fn fx;
} FIXTURES[] = {
    {"GET /v1/openapi.yaml", "", fx_same},
    {"GET /v1/health", "", fx_same},
    {"GET /v1/tenant", ANY, fx_same},
    {"GET /v1/keys", "admin", fx_same},
    {"POST /v1/keys", "admin", fx_key_create},
    {"DELETE /v1/keys/{key}", "admin", fx_key_revoke},
    {"GET /v1/purposes", READERS, fx_same},
    {"GET /v1/purposes/{purpose}", READERS, fx_purpose_get},
    {"PUT /v1/purposes/{purpose}", "admin", fx_purpose_put},
    {"GET /v1/notices", READERS, fx_same},
    {"POST /v1/notices", "admin", fx_notice_publish},
    {"GET /v1/notices/{notice}/{version}", READERS, fx_notice_get},
    {"POST /v1/subjects", "admin,operator", fx_subject_create},
    {"GET /v1/subjects", "admin,operator,marketing", fx_subject_lookup},
    {"GET /v1/subjects/{subject}", "admin,operator", fx_subject_get},
    {"GET /v1/subjects/{subject}/consents", READERS, fx_consent_states},
    {"GET /v1/subjects/{subject}/consents/history", "admin,operator,auditor", fx_consent_history},
    {"POST /v1/consents", "admin,operator", fx_consent_record},
    {"GET /v1/check", "admin,operator,marketing", fx_check},
    {"GET /v1/log/checkpoint", "admin,auditor", fx_log_checkpoint},
    {"GET /v1/log/keys", "admin,auditor", fx_same},
    {"GET /v1/log/proof/inclusion", "admin,auditor", fx_log_inclusion},
    {"GET /v1/log/proof/consistency", "admin,auditor", fx_log_consistency},
    {"GET /v1/log/leaves", "admin,auditor", fx_log_leaves},
    {"GET /v1/receipts/{event}", "admin,operator,auditor", fx_receipt},
    {"POST /v1/subjects/{subject}/identifiers", "admin,operator", fx_identifier_link},
    {"POST /v1/subjects/{subject}/merge", "admin,operator", fx_subject_merge},
    {"GET /v1/subjects/{subject}/export", "admin,operator", fx_subject_export},
    {"PATCH /v1/subjects/{subject}", "admin,operator", fx_subject_rectify},
    {"DELETE /v1/subjects/{subject}", "admin,operator", fx_subject_erase},
    {"GET /v1/stats", READERS, fx_same},
};
#define NFIXTURES (sizeof FIXTURES / sizeof FIXTURES[0])

/* ------------------------------------------------------------ the route table */

typedef struct route {
    const char *method, *path, *name;
    bool pub;
    bool role[BB_NROLES];
    const struct fixture *fx;
} route;

static json_t *routes_json;
static route routes[128];
static size_t nroutes;

static void authz_fini(void)
{
    json_decref(routes_json);
    routes_json = NULL;
    bb_suite_fini();
}

static int role_index(const char *r)
{
    for (int i = 0; i < BB_NROLES; i++)
        if (strcmp(bb_roles[i], r) == 0) return i;
    return -1;
}

/* Loads `patto routes`; missing fixtures are reported by every_route_has_a_fixture. */
static void load_routes(void)
{
    if (routes_json) return;
    static char out[65536];
    int rc = bb_cli(out, sizeof out, false, NULL, "routes", (char *)NULL);
    cr_assert_eq(rc, 0, "`patto routes` exited %d", rc);
    routes_json = json_loads(out, 0, NULL);
    cr_assert(json_is_array(routes_json), "`patto routes` is not a JSON array: %.200s", out);
    cr_assert_leq(json_array_size(routes_json), 128);
    size_t i;
    json_t *r;
    json_array_foreach(routes_json, i, r)
    {
        route *rt = &routes[nroutes++];
        memset(rt, 0, sizeof *rt);
        rt->method = bb_jstr(r, "method");
        rt->path = bb_jstr(r, "path");
        rt->pub = bb_jbool(r, "public");
        rt->name = bb_fmt("%s %s", rt->method, rt->path);
        size_t k;
        json_t *ro;
        json_array_foreach(bb_jarr(r, "roles"), k, ro)
        {
            cr_assert(json_is_string(ro));
            int ix = role_index(json_string_value(ro));
            cr_assert_geq(ix, 0, "%s: unknown role '%s'", rt->name, json_string_value(ro));
            rt->role[ix] = true;
        }
        bool any = false;
        for (int x = 0; x < BB_NROLES; x++)
            any = any || rt->role[x];
        cr_assert_eq(any, !rt->pub, "%s: public must mean no roles", rt->name);
        for (size_t f = 0; f < NFIXTURES; f++)
            if (strcmp(FIXTURES[f].route, rt->name) == 0) rt->fx = &FIXTURES[f];
    }
    cr_assert_gt(nroutes, 0);
}

static fx_req build(const route *rt)
{
    fx_req q = {.path = rt->path};
    cr_assert_not_null(rt->fx, "route %s has no fixture in test_authz.c", rt->name);
    rt->fx->fx(&q);
    return q;
}

static bb_resp *send_req(const route *rt, const fx_req *q, const char *key, const char *auth_header)
{
    bb_req r = {.method = rt->method, .path = q->path, .key = key, .auth_header = auth_header};
    if (q->body) {
        r.content_type = "application/json";
        r.body = q->body;
        r.body_len = strlen(q->body);
        r.has_body = true;
    }
    return bb_do(&r);
}

static bool happened(const fx_req *q)
{
    bb_resp *p = bb_get(q->probe_path, q->probe_key ? q->probe_key : ADMIN);
    bool ok = p->status == 200 && (!q->probe_needle || strstr(p->body, q->probe_needle));
    if (!q->probe_inverse)
        cr_assert(p->status == 200 || p->status == 404, "probe %s: %ld %s", q->probe_path,
                  p->status, p->body);
    return q->probe_inverse ? !ok : ok;
}

static void assert_unauthorized(const route *rt, const bb_resp *r, const char *how)
{
    bb_assert_problem(r, 401, NULL);
    cr_assert_str_eq(r->www_authenticate, "Bearer", "%s with %s: WWW-Authenticate '%s'", rt->name,
                     how, r->www_authenticate);
    cr_assert_str_eq(bb_jstr(r->json, "type"), "urn:patto:problem:unauthorized");
}

/* ------------------------------------------------------------ the table itself */

Test(authz, every_route_has_a_fixture)
{
    load_routes();
    char missing[4096] = "";
    for (size_t i = 0; i < nroutes; i++)
        if (!routes[i].fx)
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " [%s]",
                     routes[i].name);
    cr_assert_eq(missing[0], '\0',
                 "routes without an authorization fixture in tests/blackbox/test_authz.c:%s",
                 missing);
    /* and no fixture for a route that is gone */
    for (size_t f = 0; f < NFIXTURES; f++) {
        bool found = false;
        for (size_t i = 0; i < nroutes; i++)
            found = found || routes[i].fx == &FIXTURES[f];
        cr_assert(found, "fixture %s names no route of `patto routes`", FIXTURES[f].route);
    }
}

Test(authz, roles_match_the_reviewed_policy)
{
    load_routes();
    for (size_t i = 0; i < nroutes; i++) {
        const route *rt = &routes[i];
        if (!rt->fx) continue; /* reported above */
        char have[128] = "";
        for (int x = 0; x < BB_NROLES; x++)
            if (rt->role[x])
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s",
                         have[0] ? "," : "", bb_roles[x]);
        cr_assert_str_eq(have, rt->fx->roles,
                         "%s: the route table grants [%s], the reviewed policy is [%s]", rt->name,
                         have, rt->fx->roles);
    }
}

/* ------------------------------------------------------------ 401 */

Test(authz, public_routes_need_no_key)
{
    load_routes();
    size_t n = 0;
    for (size_t i = 0; i < nroutes; i++) {
        if (!routes[i].pub) continue;
        fx_req q = build(&routes[i]);
        bb_resp *r = send_req(&routes[i], &q, NULL, NULL);
        cr_assert_eq(r->status, 200, "%s without a key: %ld", routes[i].name, r->status);
        n++;
    }
    cr_assert_eq(n, 2, "expected exactly the health and openapi routes to be public");
}

Test(authz, no_key_is_401_with_bearer_challenge)
{
    load_routes();
    for (size_t i = 0; i < nroutes; i++) {
        const route *rt = &routes[i];
        if (rt->pub) continue;
        fx_req q = build(rt);
        assert_unauthorized(rt, send_req(rt, &q, NULL, NULL), "no key");
        if (q.probe_path) cr_assert(!happened(&q), "%s without a key changed something", rt->name);
    }
}

Test(authz, bad_keys_are_401)
{
    load_routes();
    const char *k = ADMIN;
    size_t n = strlen(k);
    char *wrong_secret = bb_strdup(k);
    wrong_secret[n - 1] = wrong_secret[n - 1] == 'a' ? 'b' : 'a';
    char *wrong_id = bb_strdup(k);
    wrong_id[8] = wrong_id[8] == 'a' ? 'b' : 'a';
    const char *headers[] = {
        "Authorization: Bearer nonsense",
        bb_fmt("Authorization: Bearer %s", wrong_secret),
        bb_fmt("Authorization: Bearer %s", wrong_id),
        bb_fmt("Authorization: Bearer %.*s", (int)n - 1, k),
        bb_fmt("Authorization: Bearer %sx", k),
        bb_fmt("Authorization: Bearer %s", bb_random_subject_id()),
        bb_fmt("Authorization: Basic %s", k),
        bb_fmt("Authorization: %s", k),
        "Authorization: Bearer",
        "Authorization: Bearer ",
        "Authorization:",
    };
    for (size_t i = 0; i < nroutes; i++) {
        const route *rt = &routes[i];
        if (rt->pub) continue;
        for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
            fx_req q = build(rt);
            assert_unauthorized(rt, send_req(rt, &q, NULL, headers[h]), headers[h]);
            if (q.probe_path)
                cr_assert(!happened(&q), "%s with '%s' changed something", rt->name, headers[h]);
        }
    }
}

/* ------------------------------------------------------------ 403 and through */

Test(authz, roles_outside_the_route_are_403_and_change_nothing)
{
    load_routes();
    size_t checked = 0;
    for (size_t i = 0; i < nroutes; i++) {
        const route *rt = &routes[i];
        if (rt->pub) continue;
        for (int x = 0; x < BB_NROLES; x++) {
            if (rt->role[x]) continue;
            fx_req q = build(rt);
            bb_resp *r = send_req(rt, &q, bb_key(bb_roles[x]), NULL);
            bb_assert_problem(r, 403, NULL);
            cr_assert_str_eq(bb_jstr(r->json, "type"), "urn:patto:problem:forbidden");
            cr_assert(strstr(bb_jstr(r->json, "detail"), bb_roles[x]) != NULL, "%s", r->body);
            if (q.probe_path)
                cr_assert(!happened(&q), "%s as %s: 403 but the write happened", rt->name,
                          bb_roles[x]);
            checked++;
        }
    }
    cr_assert_gt(checked, 20);
}

Test(authz, roles_of_the_route_get_through)
{
    load_routes();
    for (size_t i = 0; i < nroutes; i++) {
        const route *rt = &routes[i];
        if (rt->pub) continue;
        for (int x = 0; x < BB_NROLES; x++) {
            if (!rt->role[x]) continue;
            fx_req q = build(rt);
            bb_resp *r = send_req(rt, &q, bb_key(bb_roles[x]), NULL);
            cr_assert(r->status != 401 && r->status != 403, "%s as %s: %ld %s", rt->name,
                      bb_roles[x], r->status, r->body);
            cr_assert(r->status >= 200 && r->status < 300, "%s as %s: %ld %s", rt->name,
                      bb_roles[x], r->status, r->body);
            if (q.probe_path)
                cr_assert(happened(&q), "%s as %s: %ld but the write is not visible", rt->name,
                          bb_roles[x], r->status);
        }
    }
}

Test(authz, lower_case_bearer_scheme_is_accepted)
{
    bb_req q = {.method = "GET",
                .path = "/v1/tenant",
                .auth_header = bb_fmt("Authorization: bearer %s", ADMIN)};
    bb_assert_json(bb_do(&q), 200);
}

/* ------------------------------------------------------------ tenant B's objects */

#define KEY_B bb_key_b()

static const char *B_NOTICE_TEXT = "Tenant B's own privacy notice.";

/* Tenant B's subject with an e-mail and a marketing grant. */
static const char *b_subject(const char **email)
{
    bb_resp *n = bb_send("POST", "/v1/notices", KEY_B,
                         json_pack("{s:s, s:s, s:s, s:s}", "notice", "privacy", "version", "1",
                                   "language", "en", "text", B_NOTICE_TEXT));
    cr_assert(n->status == 201 || n->status == 200, "B's notice: %ld %s", n->status, n->body);
    const char *e = bb_fmt("%s@b.example.com", bb_unique("tenant-b"));
    const char *s = bb_create_subject(KEY_B, e);
    bb_assert_json(bb_consent(KEY_B, s, "marketing", "grant", NULL, NULL), 201);
    if (email) *email = e;
    return s;
}

static json_t *b_view(const char *s)
{
    json_t *v = bb_track_json(json_object());
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), KEY_B);
    bb_assert_json(g, 200);
    json_object_set(v, "subject", g->json);
    bb_resp *h = bb_get(bb_fmt("/v1/subjects/%s/consents/history", s), KEY_B);
    bb_assert_json(h, 200);
    json_object_set(v, "history", h->json);
    bb_resp *c = bb_get(bb_fmt("/v1/subjects/%s/consents", s), KEY_B);
    bb_assert_json(c, 200);
    json_object_set(v, "consents", c->json);
    bb_resp *k = bb_check(KEY_B, s, "marketing", "email", NULL);
    bb_assert_json(k, 200);
    cr_assert(bb_jbool(k->json, "allowed"), "B's own check: %s", k->body);
    return v;
}

static void assert_b_unchanged(const char *s, json_t *before)
{
    json_t *after = b_view(s);
    cr_assert(json_equal(before, after), "tenant A changed tenant B's subject %s", s);
}

Test(authz, other_tenant_subject_is_404_on_every_subject_route)
{
    const char *s = b_subject(NULL);
    json_t *before = b_view(s);
    const char *paths[] = {bb_fmt("/v1/subjects/%s", s), bb_fmt("/v1/subjects/%s/consents", s),
                           bb_fmt("/v1/subjects/%s/consents/history", s),
                           bb_fmt("/v1/subjects/%s/consents/history?limit=1", s)};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        for (int x = 0; x < BB_NROLES; x++) {
            bb_resp *r = bb_get(paths[i], bb_key(bb_roles[x]));
            /* 403 where the role may not; never 200 */
            cr_assert(r->status == 404 || r->status == 403, "%s as A's %s: %ld %s", paths[i],
                      bb_roles[x], r->status, r->body);
            bb_assert_problem(r, r->status, NULL);
            cr_assert_null(strstr(r->body, "@b.example.com"), "leaks B's data: %s", r->body);
        }
        bb_assert_problem(bb_get(paths[i], ADMIN), 404, "subject");
    }
    assert_b_unchanged(s, before);
}

Test(authz, other_tenant_subject_in_a_consent_body_is_404)
{
    const char *s = b_subject(NULL);
    json_t *before = b_view(s);
    const char *actions[] = {"withdraw", "deny", "grant", "renew"};
    for (size_t i = 0; i < 4; i++) {
        bb_resp *r = bb_consent(ADMIN, s, "marketing", actions[i], NULL, NULL);
        bb_assert_problem(r, 404, "subject");
        bb_resp *o = bb_consent(bb_key("operator"), s, "marketing", actions[i], NULL, NULL);
        bb_assert_problem(o, 404, "subject");
    }
    assert_b_unchanged(s, before);
}

Test(authz, other_tenant_events_are_404_in_the_log_and_receipts)
{
    const char *s = b_subject(NULL);
    bb_resp *h = bb_get(bb_fmt("/v1/subjects/%s/consents/history", s), KEY_B);
    bb_assert_json(h, 200);
    json_t *ev = json_array_get(json_object_get(h->json, "events"), 0);
    cr_assert_not_null(ev, "%s", h->body);
    const char *event = bb_jstr(ev, "event");
    bb_assert_json(bb_get(bb_fmt("/v1/receipts/%s", event), KEY_B), 200);
    bb_assert_problem(bb_get(bb_fmt("/v1/receipts/%s", event), ADMIN), 404, "event");
    bb_assert_problem(bb_get(bb_fmt("/v1/log/proof/inclusion?event=%s", event), ADMIN), 404,
                      "event");
    /* each tenant's checkpoint names its own log */
    bb_resp *ca = bb_get("/v1/log/checkpoint", ADMIN), *cb = bb_get("/v1/log/checkpoint", KEY_B);
    cr_assert_eq(ca->status, 200, "%s", ca->body);
    cr_assert_eq(cb->status, 200, "%s", cb->body);
    cr_assert(strcmp(ca->body, cb->body) != 0);
    cr_assert_null(strstr(ca->body, "@b.example.com"));
}

Test(authz, check_never_reveals_another_tenants_subject)
{
    const char *s = b_subject(NULL);
    json_t *before = b_view(s);
    const char *nobody = bb_random_subject_id();
    const char *chans[] = {NULL, "email"};
    for (size_t c = 0; c < 2; c++) {
        bb_resp *r = bb_check(ADMIN, s, "marketing", chans[c], NULL);
        bb_assert_json(r, 200);
        cr_assert(!bb_jbool(r->json, "allowed"), "A sees B's consent: %s", r->body);
        cr_assert_str_eq(bb_jstr(r->json, "reason"), "unknown_subject", "%s", r->body);
        cr_assert(bb_jnull(r->json, "event"), "%s", r->body);
        cr_assert(bb_jnull(r->json, "expires_at"), "%s", r->body);
        /* the same answer as for a subject that does not exist anywhere */
        bb_resp *u = bb_check(ADMIN, nobody, "marketing", chans[c], NULL);
        bb_assert_json(u, 200);
        json_t *a = r->json, *b = u->json; /* freed with the responses */
        const char *drop[] = {"subject", "checked_at"};
        for (size_t d = 0; d < 2; d++) {
            json_object_del(a, drop[d]);
            json_object_del(b, drop[d]);
        }
        cr_assert(json_equal(a, b), "B's subject answers differently from nobody: %s vs %s",
                  r->body, u->body);
    }
    /* the marketing role likewise */
    bb_resp *m = bb_check(bb_key("marketing"), s, "marketing", NULL, NULL);
    bb_assert_json(m, 200);
    cr_assert_str_eq(bb_jstr(m->json, "reason"), "unknown_subject");
    assert_b_unchanged(s, before);
}

Test(authz, lookup_of_another_tenants_identifier_is_404)
{
    const char *email;
    const char *s = b_subject(&email);
    const char *path =
        bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(email));
    bb_resp *b = bb_get(path, KEY_B);
    bb_assert_json(b, 200);
    cr_assert_str_eq(bb_jstr(b->json, "subject"), s);
    const char *roles[] = {"admin", "operator", "marketing"};
    for (size_t i = 0; i < 3; i++) {
        bb_resp *r = bb_get(path, bb_key(roles[i]));
        bb_assert_problem(r, 404, "identifier");
        cr_assert_null(strstr(r->body, s), "leaks B's subject id: %s", r->body);
    }
}

Test(authz, same_identifier_in_two_tenants_is_two_subjects)
{
    const char *email;
    const char *s = b_subject(&email);
    json_t *before = b_view(s);
    /* A may hold the same person: no conflict (which would reveal B's) */
    bb_resp *c =
        bb_send("POST", "/v1/subjects", ADMIN,
                json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "email", "value", email));
    bb_assert_json(c, 201);
    const char *sa = bb_strdup(bb_jstr(c->json, "subject"));
    cr_assert_str_neq(sa, s);
    /* consent by identifier in A lands on A's subject */
    bb_resp *g =
        bb_send("POST", "/v1/consents", ADMIN,
                json_pack("{s:{s:s, s:s}, s:s, s:s, s:s}", "identifier", "type", "email", "value",
                          email, "purpose", "profiling", "action", "deny", "collected_via", "api"));
    bb_assert_json(g, 201);
    cr_assert_str_eq(bb_jstr(g->json, "subject"), sa);
    bb_resp *la = bb_get(
        bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(email)), ADMIN);
    bb_assert_json(la, 200);
    cr_assert_str_eq(bb_jstr(la->json, "subject"), sa);
    assert_b_unchanged(s, before);
    /* B's subject got no profiling event */
    bb_resp *k = bb_check(KEY_B, s, "profiling", NULL, NULL);
    bb_assert_json(k, 200);
    cr_assert_str_eq(bb_jstr(k->json, "reason"), "no_consent");
}

Test(authz, other_tenant_key_cannot_be_revoked)
{
    bb_resp *c = bb_send("POST", "/v1/keys", KEY_B,
                         json_pack("{s:s, s:s}", "role", "operator", "label", "b-operator"));
    bb_assert_json(c, 201);
    const char *id = bb_strdup(bb_jstr(c->json, "key"));
    const char *secret = bb_strdup(bb_jstr(c->json, "api_key"));
    bb_resp *r = bb_http("DELETE", bb_fmt("/v1/keys/%s", id), ADMIN, NULL, NULL);
    bb_assert_problem(r, 404, "key");
    /* still alive, in B, with its role */
    bb_resp *t = bb_get("/v1/tenant", secret);
    bb_assert_json(t, 200);
    cr_assert_str_eq(bb_jstr(t->json, "tenant"), BB_TENANT_B);
    cr_assert_str_eq(bb_jstr(t->json, "role"), "operator");
    bb_resp *lb = bb_get("/v1/keys", KEY_B);
    bb_assert_json(lb, 200);
    cr_assert(strstr(lb->body, id) != NULL);
    /* A's list does not show B's keys */
    bb_resp *la = bb_get("/v1/keys", ADMIN);
    bb_assert_json(la, 200);
    cr_assert_null(strstr(la->body, id), "A lists B's key");
    /* nor B's first admin key */
    bb_resp *tb = bb_get("/v1/tenant", KEY_B);
    bb_assert_json(tb, 200);
    /* and B's key cannot act on A */
    bb_resp *x = bb_get(bb_fmt("/v1/subjects/%s", a_subject()), secret);
    bb_assert_problem(x, 404, "subject");
}

Test(authz, other_tenant_purpose_is_404_and_a_same_name_put_is_a_new_purpose)
{
    const char *name = bb_fmt("bonly.%ld", (long)getpid());
    bb_resp *p = bb_send("PUT", bb_fmt("/v1/purposes/%s", name), KEY_B,
                         json_pack("{s:s, s:s, s:[s]}", "title", "B only", "legal_basis", "consent",
                                   "channels", "email"));
    bb_assert_json(p, 201);
    bb_assert_problem(bb_get(bb_fmt("/v1/purposes/%s", name), ADMIN), 404, "purpose");
    bb_resp *la = bb_get("/v1/purposes", ADMIN);
    bb_assert_json(la, 200);
    cr_assert_null(strstr(la->body, name), "A lists B's purpose");
    /* checks and consents on it: no such purpose in A */
    bb_assert_problem(bb_check(ADMIN, a_subject(), name, NULL, NULL), 422, "purpose");
    bb_assert_problem(bb_consent(ADMIN, a_subject(), name, "deny", NULL, NULL), 422, "purpose");

    /* A's PUT of the same name creates A's own (201, revision 1) */
    bb_resp *a = bb_send("PUT", bb_fmt("/v1/purposes/%s", name), ADMIN,
                         json_pack("{s:s, s:s, s:[s]}", "title", "A's own", "legal_basis",
                                   "contract", "channels", "post"));
    bb_assert_json(a, 201);
    cr_assert_eq(bb_jint(a->json, "revision"), 1);
    bb_resp *b = bb_get(bb_fmt("/v1/purposes/%s", name), KEY_B);
    bb_assert_json(b, 200);
    cr_assert_str_eq(bb_jstr(b->json, "title"), "B only");
    cr_assert_str_eq(bb_jstr(b->json, "legal_basis"), "consent");
    cr_assert_eq(bb_jint(b->json, "revision"), 1);
}

Test(authz, other_tenant_notice_is_404_and_the_same_version_is_independent)
{
    const char *name = bb_unique("bnotice");
    bb_resp *p = bb_send("POST", "/v1/notices", KEY_B,
                         json_pack("{s:s, s:s, s:s, s:s}", "notice", name, "version", "1",
                                   "language", "en", "text", "B's text"));
    bb_assert_json(p, 201);
    bb_assert_problem(bb_get(bb_fmt("/v1/notices/%s/1", name), ADMIN), 404, "notice");
    bb_resp *la = bb_get("/v1/notices", ADMIN);
    bb_assert_json(la, 200);
    cr_assert_null(strstr(la->body, name), "A lists B's notice");
    /* A cannot record a grant on B's notice */
    bb_resp *g = bb_send("POST", "/v1/consents", ADMIN,
                         json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "subject", a_subject(),
                                   "purpose", "marketing", "action", "grant", "collected_via",
                                   "api", "notice", "notice", name, "version", "1"));
    bb_assert_problem(g, 422, "notice");
    /* A publishing the same name and version with another text: its own, no conflict */
    bb_resp *a = bb_send("POST", "/v1/notices", ADMIN,
                         json_pack("{s:s, s:s, s:s, s:s}", "notice", name, "version", "1",
                                   "language", "en", "text", "A's text"));
    bb_assert_json(a, 201);
    bb_resp *b = bb_get(bb_fmt("/v1/notices/%s/1", name), KEY_B);
    bb_assert_json(b, 200);
    cr_assert_str_eq(bb_jstr(b->json, "text"), "B's text");
    bb_resp *aa = bb_get(bb_fmt("/v1/notices/%s/1", name), ADMIN);
    bb_assert_json(aa, 200);
    cr_assert_str_eq(bb_jstr(aa->json, "text"), "A's text");
}

Test(authz, other_tenant_subject_is_404_on_the_identity_and_rights_routes)
{
    const char *email;
    const char *s = b_subject(&email);
    json_t *before = b_view(s);
    const char *mine = a_subject();
    const char *roles[] = {"admin", "operator"};
    for (size_t i = 0; i < 2; i++) {
        const char *k = bb_key(roles[i]);
        bb_resp *x = bb_get(bb_fmt("/v1/subjects/%s/export", s), k);
        bb_assert_problem(x, 404, "subject");
        cr_assert_null(strstr(x->body, "@b.example.com"), "leaks B's data: %s", x->body);
        /* linking to B's person */
        bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", s), k,
                                  json_pack("{s:s, s:s}", "type", "cookie", "value",
                                            bb_unique("b-cookie"))),
                          404, "subject");
        bb_assert_problem(bb_send("PATCH", bb_fmt("/v1/subjects/%s", s), k,
                                  json_pack("{s:{s:s}}", "profile", "name", "Mallory")),
                          404, "subject");
        /* merging B's person into A's, or A's into B's */
        bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/merge", mine), k,
                                  json_pack("{s:s}", "from", s)),
                          404, "from");
        bb_assert_problem(bb_send("POST", bb_fmt("/v1/subjects/%s/merge", s), k,
                                  json_pack("{s:s}", "from", mine)),
                          404, "subject");
    }
    assert_b_unchanged(s, before);
    /* B's e-mail is no business of A's: A may hold it too, and no 409
     * reveals that B does */
    const char *other = bb_create_subject(ADMIN, NULL);
    bb_resp *l = bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", other), ADMIN,
                         json_pack("{s:s, s:s}", "type", "email", "value", email));
    bb_assert_json(l, 201);
    cr_assert_str_eq(bb_jstr(l->json, "subject"), other);
    /* check by B's identifier in A: A's own person, not B's */
    bb_resp *c2 = bb_get(bb_fmt("/v1/check?identifier_type=email&identifier=%s&purpose=marketing",
                                bb_urlencode(email)),
                         ADMIN);
    bb_assert_json(c2, 200);
    cr_assert_str_eq(bb_jstr(c2->json, "subject"), other, "%s", c2->body);
    cr_assert_str_eq(bb_jstr(c2->json, "reason"), "no_consent", "%s", c2->body);
    /* check by an identifier of B's that A does not hold: nobody in A */
    const char *bcookie = bb_unique("b-only-cookie");
    bb_assert_json(bb_send("POST", bb_fmt("/v1/subjects/%s/identifiers", s), KEY_B,
                           json_pack("{s:s, s:s}", "type", "cookie", "value", bcookie)),
                   201);
    before = b_view(s);
    bb_resp *c = bb_get(bb_fmt("/v1/check?identifier_type=cookie&identifier=%s&purpose=marketing",
                               bb_urlencode(bcookie)),
                        ADMIN);
    bb_assert_json(c, 200);
    cr_assert(!bb_jbool(c->json, "allowed"), "%s", c->body);
    cr_assert_str_eq(bb_jstr(c->json, "reason"), "unknown_subject", "%s", c->body);
    cr_assert(bb_jnull(c->json, "subject"), "%s", c->body);
    assert_b_unchanged(s, before);
    /* A's own subject is as it was: B's profile did not arrive */
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", mine), ADMIN);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "subject"), mine);
    cr_assert_null(strstr(g->body, "Mallory"));
}
