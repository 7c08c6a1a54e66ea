/* test_api.c - black-box: every route of src/http/routes.c used as an
 * integrator would, against the real binary (see harness.h). Tests run in
 * parallel against one server, so each works on its own subjects, purposes
 * and notices. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ADMIN bb_key("admin")
#define OPERATOR bb_key("operator")
#define MARKETING bb_key("marketing")
#define AUDITOR bb_key("auditor")

TestSuite(api, .init = bb_suite_init, .fini = bb_suite_fini, .timeout = 60);

int main(int argc, char **argv)
{
    return bb_main(argc, argv);
}

/* ------------------------------------------------------------ helpers */

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const json_t *v = json_object_get(e, key);
        if (json_is_string(v) && strcmp(json_string_value(v), value) == 0) return e;
    }
    return NULL;
}

static bool channels_are(const json_t *arr, const char *const *want)
{
    size_t n = 0;
    for (const char *const *w = want; *w; w++)
        n++;
    if (!json_is_array(arr) || json_array_size(arr) != n) return false;
    for (const char *const *w = want; *w; w++) {
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)arr, i, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), *w) == 0) found = true;
        }
        if (!found) return false;
    }
    return true;
}

static const char *js(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return "(null)";
    const char *t = bb_strdup(s);
    free(s);
    return t;
}

static bb_resp *grant(const char *subject, const char *purpose, const char *channels,
                      const char *occurred_at)
{
    bb_resp *r = bb_consent(ADMIN, subject, purpose, "grant", channels, occurred_at);
    bb_assert_json(r, 201);
    return r;
}

static bb_resp *check_ok(const char *subject, const char *purpose, const char *channel,
                         const char *recipient)
{
    bb_resp *r = bb_check(MARKETING, subject, purpose, channel, recipient);
    bb_assert_json(r, 200);
    return r;
}

static void assert_denied_because(const bb_resp *r, const char *reason)
{
    cr_assert(!bb_jbool(r->json, "allowed"), "%s: expected allowed:false (%s), got %s", r->path,
              reason, r->body);
    cr_assert(!bb_jnull(r->json, "reason"), "%s: reason is null: %s", r->path, r->body);
    cr_assert_str_eq(bb_jstr(r->json, "reason"), reason, "%s: %s", r->path, r->body);
}

static void assert_allowed(const bb_resp *r)
{
    cr_assert(bb_jbool(r->json, "allowed"), "%s: expected allowed:true, got %s", r->path, r->body);
    cr_assert(bb_jnull(r->json, "reason"), "%s: an allowed answer has reason null: %s", r->path,
              r->body);
}

static json_t *state_of(const char *subject, const char *purpose)
{
    bb_resp *r = bb_get(bb_fmt("/v1/subjects/%s/consents", subject), AUDITOR);
    bb_assert_json(r, 200);
    cr_assert_str_eq(bb_jstr(r->json, "subject"), subject);
    return find_by(bb_jarr(r->json, "consents"), "purpose", purpose);
}

static json_t *history(const char *subject, const char *query)
{
    bb_resp *r =
        bb_get(bb_fmt("/v1/subjects/%s/consents/history%s", subject, query ? query : ""), AUDITOR);
    bb_assert_json(r, 200);
    return r->json;
}

static void put_purpose(const char *name, json_t *body, long expect)
{
    bb_resp *r = bb_send("PUT", bb_fmt("/v1/purposes/%s", name), ADMIN, body);
    bb_assert_json(r, expect);
    cr_assert_str_eq(bb_jstr(r->json, "purpose"), name);
}

/* ------------------------------------------------------------ public routes */

Test(api, health_is_public_and_ok)
{
    bb_resp *r = bb_get("/v1/health", NULL);
    bb_assert_json(r, 200);
    cr_assert_str_eq(bb_jstr(r->json, "status"), "ok");
    cr_assert_gt(strlen(bb_jstr(r->json, "version")), 0);
    cr_assert_str_eq(r->cache_control, "no-store");
    /* a key does no harm */
    bb_assert_json(bb_get("/v1/health", ADMIN), 200);
}

Test(api, openapi_yaml_is_public_and_documents_every_route)
{
    bb_resp *r = bb_get("/v1/openapi.yaml", NULL);
    cr_assert_eq(r->status, 200, "status %ld", r->status);
    cr_assert(strstr(r->content_type, "yaml") != NULL, "Content-Type '%s' is not YAML",
              r->content_type);
    cr_assert_gt(r->body_len, 1000);
    cr_assert_eq(strncmp(r->body, "openapi: 3.", 11), 0, "not an OpenAPI 3 document: %.40s",
                 r->body);
    bb_resp *r2 = bb_get("/v1/openapi.yaml", ADMIN);
    cr_assert_eq(r2->status, 200);
    cr_assert_eq(r2->body_len, r->body_len);

    char out[16384];
    cr_assert_eq(bb_cli(out, sizeof out, false, NULL, "routes", (char *)NULL), 0);
    json_t *routes = bb_track_json(json_loads(out, 0, NULL));
    cr_assert(json_is_array(routes) && json_array_size(routes) > 0, "patto routes: %.200s", out);
    size_t i;
    json_t *rt;
    json_array_foreach(routes, i, rt)
    {
        const char *path = json_string_value(json_object_get(rt, "path"));
        cr_assert_not_null(path);
        char *needle = bb_fmt("\n  %s:", path);
        cr_assert(strstr(r->body, needle) != NULL, "route %s is not documented in openapi.yaml",
                  path);
    }
}

/* ------------------------------------------------------------ tenant, keys */

Test(api, tenant_info_names_tenant_and_role)
{
    for (int i = 0; i < BB_NROLES; i++) {
        bb_resp *r = bb_get("/v1/tenant", bb_key(bb_roles[i]));
        bb_assert_json(r, 200);
        cr_assert_str_eq(bb_jstr(r->json, "tenant"), BB_TENANT_A);
        cr_assert_str_eq(bb_jstr(r->json, "role"), bb_roles[i]);
        bb_parse_time(bb_jstr(r->json, "created_at"));
    }
    bb_resp *b = bb_get("/v1/tenant", bb_key_b());
    bb_assert_json(b, 200);
    cr_assert_str_eq(bb_jstr(b->json, "tenant"), BB_TENANT_B);
    cr_assert_str_eq(bb_jstr(b->json, "role"), "admin");
}

Test(api, keys_create_list_revoke)
{
    char *label = bb_unique("label");
    bb_resp *c = bb_send("POST", "/v1/keys", ADMIN,
                         json_pack("{s:s, s:s}", "role", "marketing", "label", label));
    bb_assert_json(c, 201);
    const char *id = bb_jstr(c->json, "key");
    const char *secret = bb_jstr(c->json, "api_key");
    cr_assert_eq(strncmp(id, "key_", 4), 0, "%s", id);
    cr_assert_eq(strncmp(secret, "patto_", 6), 0, "%s", secret);
    cr_assert_str_eq(bb_jstr(c->json, "role"), "marketing");
    cr_assert_str_eq(bb_jstr(c->json, "label"), label);
    bb_parse_time(bb_jstr(c->json, "created_at"));
    /* the secret names the key: patto_<id without prefix>_<secret> */
    cr_assert_eq(strncmp(secret + 6, id + 4, strlen(id + 4)), 0, "%s vs %s", secret, id);

    /* usable at once, with its role */
    bb_resp *t = bb_get("/v1/tenant", secret);
    bb_assert_json(t, 200);
    cr_assert_str_eq(bb_jstr(t->json, "role"), "marketing");

    /* listed, live, and the secret is never shown again */
    bb_resp *l = bb_get("/v1/keys", ADMIN);
    bb_assert_json(l, 200);
    json_t *k = find_by(bb_jarr(l->json, "keys"), "key", id);
    cr_assert_not_null(k, "new key %s not listed: %.300s", id, l->body);
    cr_assert_str_eq(bb_jstr(k, "role"), "marketing");
    cr_assert_str_eq(bb_jstr(k, "label"), label);
    cr_assert(bb_jnull(k, "revoked_at"));
    cr_assert_null(json_object_get(k, "api_key"), "the list shows a secret: %s", js(k));
    cr_assert_null(strstr(l->body, secret + 6 + 27), "the list holds the secret");
    /* the role keys made by the CLI are listed too */
    cr_assert_geq(json_array_size(bb_jarr(l->json, "keys")), 6);

    /* revoke: 200, then the key is refused with 401 */
    bb_resp *d = bb_http("DELETE", bb_fmt("/v1/keys/%s", id), ADMIN, NULL, NULL);
    bb_assert_json(d, 200);
    cr_assert_str_eq(bb_jstr(d->json, "key"), id);
    bb_parse_time(bb_jstr(d->json, "revoked_at"));
    bb_resp *after = bb_get("/v1/tenant", secret);
    bb_assert_problem(after, 401, NULL);
    cr_assert_str_eq(after->www_authenticate, "Bearer");
    bb_assert_problem(bb_check(secret, bb_random_subject_id(), "marketing", NULL, NULL), 401, NULL);

    l = bb_get("/v1/keys", ADMIN);
    bb_assert_json(l, 200);
    k = find_by(bb_jarr(l->json, "keys"), "key", id);
    cr_assert_not_null(k);
    cr_assert(!bb_jnull(k, "revoked_at"), "revoked key listed as live: %s", js(k));

    /* revoking again: no live key with that id */
    bb_assert_problem(bb_http("DELETE", bb_fmt("/v1/keys/%s", id), ADMIN, NULL, NULL), 404, "key");
    /* the other keys still work */
    bb_assert_json(bb_get("/v1/tenant", MARKETING), 200);
}

/* ------------------------------------------------------------ purposes */

Test(api, default_purposes_of_a_new_tenant)
{
    /* tenant B is left untouched by this file's other tests */
    bb_resp *r = bb_get("/v1/purposes", bb_key_b());
    bb_assert_json(r, 200);
    json_t *ps = bb_jarr(r->json, "purposes");
    cr_assert_eq(json_array_size(ps), 5, "%s", r->body);
    static const struct {
        const char *name;
        json_int_t days;
        const char *channels[9];
    } want[] = {
        {"processing", 730, {"email", "sms", "phone", "post", "web", "app", "push", "ads", NULL}},
        {"marketing", 730, {"email", "sms", "phone", "post", NULL}},
        {"profiling", 365, {"web", "app", "email", NULL}},
        {"cookies.analytics", 180, {"web", "app", NULL}},
        {"cookies.ads", 180, {"web", "app", "ads", NULL}},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *p = find_by(ps, "purpose", want[i].name);
        cr_assert_not_null(p, "default purpose %s missing: %s", want[i].name, r->body);
        cr_assert_str_eq(bb_jstr(p, "legal_basis"), "consent", "%s", js(p));
        cr_assert_eq(bb_jint(p, "validity_days"), want[i].days, "%s", js(p));
        cr_assert(channels_are(json_object_get(p, "channels"), want[i].channels), "%s", js(p));
        cr_assert_eq(bb_jint(p, "revision"), 1);
        cr_assert_gt(strlen(bb_jstr(p, "title")), 0);
        cr_assert_gt(strlen(bb_jstr(p, "description")), 0);
    }
    /* the same through GET /v1/purposes/{purpose} */
    bb_resp *m = bb_get("/v1/purposes/marketing", bb_key_b());
    bb_assert_json(m, 200);
    cr_assert_eq(bb_jint(m->json, "validity_days"), 730);
    const char *const mk[] = {"email", "sms", "phone", "post", NULL};
    cr_assert(channels_are(json_object_get(m->json, "channels"), mk), "%s", m->body);
    bb_assert_problem(bb_get("/v1/purposes/no.such.purpose", ADMIN), 404, "purpose");
}

Test(api, purpose_put_creates_then_updates_with_revision_bump)
{
    char *name = bb_fmt("bb.news%ld", (long)getpid());
    put_purpose(name,
                json_pack("{s:s, s:s, s:s, s:i, s:[s], s:s}", "title", "Newsletter", "description",
                          "Weekly news.", "legal_basis", "consent", "validity_days", 90, "channels",
                          "email", "dpv", "dpv:Marketing"),
                201);
    bb_resp *g = bb_get(bb_fmt("/v1/purposes/%s", name), OPERATOR);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "title"), "Newsletter");
    cr_assert_str_eq(bb_jstr(g->json, "description"), "Weekly news.");
    cr_assert_str_eq(bb_jstr(g->json, "legal_basis"), "consent");
    cr_assert_str_eq(bb_jstr(g->json, "dpv"), "dpv:Marketing");
    cr_assert_eq(bb_jint(g->json, "validity_days"), 90);
    cr_assert_eq(bb_jint(g->json, "renew_before_days"), 30); /* the default for >= 60 days */
    cr_assert_eq(bb_jint(g->json, "revision"), 1);
    const char *const em[] = {"email", NULL};
    cr_assert(channels_are(json_object_get(g->json, "channels"), em), "%s", g->body);
    const char *created = bb_strdup(bb_jstr(g->json, "created_at"));

    /* the same again: 200, not a material change */
    put_purpose(name,
                json_pack("{s:s, s:s, s:s, s:i, s:[s], s:s}", "title", "Newsletter", "description",
                          "Weekly news.", "legal_basis", "consent", "validity_days", 90, "channels",
                          "email", "dpv", "dpv:Marketing"),
                200);
    g = bb_get(bb_fmt("/v1/purposes/%s", name), ADMIN);
    cr_assert_eq(bb_jint(g->json, "revision"), 1, "%s", g->body);

    /* a new description is material: revision 2 */
    bb_resp *u =
        bb_send("PUT", bb_fmt("/v1/purposes/%s", name), ADMIN,
                json_pack("{s:s, s:s, s:s, s:i, s:[s], s:s}", "title", "Newsletter", "description",
                          "Daily news.", "legal_basis", "consent", "validity_days", 90, "channels",
                          "email", "dpv", "dpv:Marketing"));
    bb_assert_json(u, 200);
    cr_assert_eq(bb_jint(u->json, "revision"), 2, "%s", u->body);
    g = bb_get(bb_fmt("/v1/purposes/%s", name), AUDITOR);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "description"), "Daily news.");
    cr_assert_eq(bb_jint(g->json, "revision"), 2);
    cr_assert_str_eq(bb_jstr(g->json, "created_at"), created);
    cr_assert_geq(bb_parse_time(bb_jstr(g->json, "updated_at")), bb_parse_time(created));

    bb_resp *l = bb_get("/v1/purposes", MARKETING);
    bb_assert_json(l, 200);
    json_t *p = find_by(bb_jarr(l->json, "purposes"), "purpose", name);
    cr_assert_not_null(p, "%s not listed", name);
    cr_assert_eq(bb_jint(p, "revision"), 2);
}

Test(api, purpose_revision_bump_asks_consent_again)
{
    char *name = bb_fmt("bb.rev%ld", (long)getpid());
    put_purpose(name,
                json_pack("{s:s, s:s, s:s, s:i, s:[s,s]}", "title", "Offers", "description", "A",
                          "legal_basis", "consent", "validity_days", 100, "channels", "email",
                          "sms"),
                201);
    char *s = bb_create_subject(OPERATOR, NULL);
    grant(s, name, NULL, NULL);
    assert_allowed(check_ok(s, name, "email", NULL));
    put_purpose(name,
                json_pack("{s:s, s:s, s:s, s:i, s:[s,s]}", "title", "Offers", "description", "B",
                          "legal_basis", "consent", "validity_days", 100, "channels", "email",
                          "sms"),
                200);
    assert_denied_because(check_ok(s, name, "email", NULL), "reconsent_needed");
    cr_assert_str_eq(bb_jstr(state_of(s, name), "state"), "reconsent_needed");
    grant(s, name, NULL, NULL);
    assert_allowed(check_ok(s, name, "email", NULL));
}

/* ------------------------------------------------------------ notices */

Test(api, notices_publish_idempotent_immutable_with_sha256)
{
    char *name = bb_fmt("bb-terms-%ld", (long)getpid());
    const char *text = "Informativa privacy \xc3\xa8 \xe2\x82\xac \xf0\x9f\x99\x82\n"
                       "We keep your e-mail address for 24 months.";
    char sha[65];
    bb_sha256_hex(text, strlen(text), sha);

    bb_resp *p = bb_send("POST", "/v1/notices", ADMIN,
                         json_pack("{s:s, s:s, s:s, s:s}", "notice", name, "version", "2026-11",
                                   "language", "it", "text", text));
    bb_assert_json(p, 201);
    cr_assert_str_eq(bb_jstr(p->json, "notice"), name);
    cr_assert_str_eq(bb_jstr(p->json, "version"), "2026-11");
    cr_assert_str_eq(bb_jstr(p->json, "language"), "it");
    cr_assert_str_eq(bb_jstr(p->json, "sha256"), sha);

    /* identical republish: 200, same hash */
    bb_resp *again = bb_send("POST", "/v1/notices", ADMIN,
                             json_pack("{s:s, s:s, s:s, s:s}", "notice", name, "version", "2026-11",
                                       "language", "it", "text", text));
    bb_assert_json(again, 200);
    cr_assert_str_eq(bb_jstr(again->json, "sha256"), sha);

    /* another text under the same version: 409 */
    bb_resp *conflict = bb_send("POST", "/v1/notices", ADMIN,
                                json_pack("{s:s, s:s, s:s, s:s}", "notice", name, "version",
                                          "2026-11", "language", "it", "text", "Something else"));
    bb_assert_problem(conflict, 409, "version");

    /* read back with its text, unchanged */
    bb_resp *g = bb_get(bb_fmt("/v1/notices/%s/2026-11", name), AUDITOR);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "text"), text);
    cr_assert_str_eq(bb_jstr(g->json, "sha256"), sha);
    cr_assert_str_eq(bb_jstr(g->json, "language"), "it");
    cr_assert_eq(strncmp(bb_jstr(g->json, "id"), "ntc_", 4), 0);

    /* a second version is a new notice */
    bb_resp *v2 = bb_send("POST", "/v1/notices", ADMIN,
                          json_pack("{s:s, s:s, s:s, s:s}", "notice", name, "version", "2027-01",
                                    "language", "en", "text", "Version two."));
    bb_assert_json(v2, 201);
    char sha2[65];
    bb_sha256_hex("Version two.", 12, sha2);
    cr_assert_str_eq(bb_jstr(v2->json, "sha256"), sha2);

    bb_resp *l = bb_get("/v1/notices", OPERATOR);
    bb_assert_json(l, 200);
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(bb_jarr(l->json, "notices"), i, e)
    {
        if (strcmp(bb_jstr(e, "notice"), name) != 0) continue;
        n++;
        cr_assert_null(json_object_get(e, "text"), "the list carries texts: %s", js(e));
    }
    cr_assert_eq(n, 2, "%s", l->body);
    bb_assert_problem(bb_get(bb_fmt("/v1/notices/%s/9", name), ADMIN), 404, NULL);
}

/* ------------------------------------------------------------ subjects */

Test(api, subject_create_get_decrypts_and_normalises)
{
    char *local = bb_unique("Mario.Rossi");
    char *email = bb_fmt("%s@Example.IT", local);
    int pid = (int)getpid() % 100000;
    char *phone = bb_fmt("+39 333 %05d 12", pid);
    bb_resp *c =
        bb_send("POST", "/v1/subjects", OPERATOR,
                json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:{s:s, s:s, s:i, s:b, s:[s,s]}}",
                          "identifiers", "type", "email", "value", email, "type", "phone", "value",
                          phone, "profile", "first_name", "Mario", "city", "Milano \xc3\xa8", "age",
                          42, "vip", 1, "tags", "wine", "cheese"));
    bb_assert_json(c, 201);
    const char *id = bb_jstr(c->json, "subject");
    cr_assert_eq(strncmp(id, "sub_", 4), 0);
    bb_parse_time(bb_jstr(c->json, "created_at"));

    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", id), ADMIN);
    bb_assert_json(g, 200);
    cr_assert_str_eq(bb_jstr(g->json, "subject"), id);
    json_t *ids = bb_jarr(g->json, "identifiers");
    cr_assert_eq(json_array_size(ids), 2, "%s", g->body);
    json_t *e = find_by(ids, "type", "email");
    cr_assert_not_null(e);
    char *lower = bb_strdup(email);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    cr_assert_str_eq(bb_jstr(e, "value"), lower);
    json_t *ph = find_by(ids, "type", "phone");
    cr_assert_not_null(ph);
    cr_assert_str_eq(bb_jstr(ph, "value"), bb_fmt("+39333%05d12", pid));
    json_t *want =
        bb_track_json(json_pack("{s:s, s:s, s:i, s:b, s:[s,s]}", "first_name", "Mario", "city",
                                "Milano \xc3\xa8", "age", 42, "vip", 1, "tags", "wine", "cheese"));
    cr_assert(json_equal(bb_jobj(g->json, "profile"), want), "profile %s, expected %s",
              js(json_object_get(g->json, "profile")), js(want));

    /* identifiers and profile are personal data: encrypted at rest, so in
     * none of the database's files (the WAL holds the latest writes) */
    const char *files[] = {bb_db(), bb_fmt("%s-wal", bb_db())};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) continue;
        static char dbbuf[32 << 20];
        size_t n = fread(dbbuf, 1, sizeof dbbuf, f);
        fclose(f);
        cr_assert_null(memmem(dbbuf, n, lower, strlen(lower)), "the e-mail is in %s", files[i]);
        cr_assert_null(memmem(dbbuf, n, local, strlen(local)), "the e-mail is in %s", files[i]);
        cr_assert_null(memmem(dbbuf, n, "Milano", 6), "the profile is in %s", files[i]);
    }

    bb_assert_problem(bb_get(bb_fmt("/v1/subjects/%s", bb_random_subject_id()), ADMIN), 404,
                      "subject");
}

Test(api, subject_lookup_by_identifier)
{
    char *local = bb_unique("anna.b");
    char *email = bb_fmt("%s@shop.example.com", local);
    int pid = (int)getpid() % 100000;
    char *phone = bb_fmt("+44%05d77123", pid);
    bb_resp *c = bb_send("POST", "/v1/subjects", ADMIN,
                         json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "identifiers", "type", "email",
                                   "value", email, "type", "phone", "value", phone));
    bb_assert_json(c, 201);
    const char *id = bb_strdup(bb_jstr(c->json, "subject"));

    char *upper = bb_strdup(email);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    const char *variants[] = {email, upper, bb_fmt("  %s ", email)};
    for (size_t i = 0; i < 3; i++) {
        bb_resp *l = bb_get(
            bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(variants[i])),
            MARKETING);
        bb_assert_json(l, 200);
        cr_assert_str_eq(bb_jstr(l->json, "subject"), id, "lookup of '%s'", variants[i]);
    }
    /* E.164 with spaces and the 00 prefix */
    const char *phones[] = {bb_fmt("+44 %05d 77123", pid), bb_fmt("0044%05d77123", pid),
                            bb_fmt("+44 (%05d) 77-123", pid)};
    for (size_t i = 0; i < 3; i++) {
        bb_resp *l = bb_get(
            bb_fmt("/v1/subjects?identifier_type=phone&identifier=%s", bb_urlencode(phones[i])),
            OPERATOR);
        bb_assert_json(l, 200);
        cr_assert_str_eq(bb_jstr(l->json, "subject"), id, "lookup of '%s'", phones[i]);
    }
    bb_resp *miss = bb_get(bb_fmt("/v1/subjects?identifier_type=email&identifier=%s",
                                  bb_urlencode(bb_fmt("x%s", email))),
                           ADMIN);
    bb_assert_problem(miss, 404, "identifier");
    /* the same identifier cannot be given to a second subject */
    bb_assert_problem(
        bb_send("POST", "/v1/subjects", ADMIN,
                json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "email", "value", upper)),
        409, NULL);
}

/* ------------------------------------------------------------ consents */

Test(api, grant_then_check_allowed_until_expiry)
{
    char *s = bb_create_subject(OPERATOR, NULL);
    int64_t at = bb_now_ms() - 3600 * 1000;
    bb_resp *g = bb_consent(OPERATOR, s, "marketing", "grant", "[\"email\",\"sms\"]", bb_time(at));
    bb_assert_json(g, 201);
    const char *evt = bb_strdup(bb_jstr(g->json, "event"));
    cr_assert_eq(strncmp(evt, "evt_", 4), 0);
    cr_assert_str_eq(bb_jstr(g->json, "subject"), s);
    cr_assert_str_eq(bb_jstr(g->json, "purpose"), "marketing");
    cr_assert_str_eq(bb_jstr(g->json, "action"), "grant");
    cr_assert_str_eq(bb_jstr(g->json, "state"), "granted");
    cr_assert_eq(bb_parse_time(bb_jstr(g->json, "occurred_at")), at);
    int64_t expires = at + 730 * BB_DAY_MS;
    cr_assert_eq(bb_parse_time(bb_jstr(g->json, "expires_at")), expires, "%s", g->body);
    cr_assert_geq(bb_parse_time(bb_jstr(g->json, "recorded_at")), at);
    const char *const es[] = {"email", "sms", NULL};
    cr_assert(channels_are(json_object_get(g->json, "channels"), es), "%s", g->body);
    json_t *rcpt = bb_jobj(g->json, "receipt");
    cr_assert_str_eq(bb_jstr(rcpt, "receipt_id"), evt);
    cr_assert_str_eq(bb_jstr(rcpt, "subject"), s);
    cr_assert_str_eq(bb_jstr(bb_jobj(rcpt, "controller"), "tenant"), BB_TENANT_A);

    for (int i = 0; i < 2; i++) {
        bb_resp *c = check_ok(s, "marketing", i ? "sms" : "email", NULL);
        assert_allowed(c);
        cr_assert_str_eq(bb_jstr(c->json, "basis"), "consent");
        cr_assert_str_eq(bb_jstr(c->json, "event"), evt);
        cr_assert_eq(bb_parse_time(bb_jstr(c->json, "expires_at")), expires, "%s", c->body);
    }
    assert_allowed(check_ok(s, "marketing", NULL, NULL));
    /* other purposes are untouched */
    assert_denied_because(check_ok(s, "profiling", NULL, NULL), "no_consent");
}

Test(api, withdraw_takes_effect_before_the_response)
{
    for (int i = 0; i < 10; i++) {
        char *s = bb_create_subject(ADMIN, NULL);
        grant(s, "profiling", NULL, NULL);
        assert_allowed(check_ok(s, "profiling", "web", NULL));
        bb_resp *w = bb_consent(OPERATOR, s, "profiling", "withdraw", NULL, NULL);
        bb_assert_json(w, 201);
        cr_assert_str_eq(bb_jstr(w->json, "state"), "withdrawn");
        cr_assert(bb_jnull(w->json, "expires_at"), "%s", w->body);
        /* no delay: the very next request must see it */
        bb_resp *c = check_ok(s, "profiling", "web", NULL);
        assert_denied_because(c, "withdrawn");
        cr_assert_str_eq(bb_jstr(c->json, "event"), bb_jstr(w->json, "event"));
        assert_denied_because(check_ok(s, "profiling", NULL, NULL), "withdrawn");
        cr_assert_str_eq(bb_jstr(state_of(s, "profiling"), "state"), "withdrawn");
    }
}

Test(api, partial_withdraw_of_one_channel)
{
    char *s = bb_create_subject(ADMIN, NULL);
    grant(s, "marketing", "[\"email\",\"sms\"]", NULL);
    bb_assert_json(bb_consent(ADMIN, s, "marketing", "withdraw", "[\"sms\"]", NULL), 201);
    assert_allowed(check_ok(s, "marketing", "email", NULL));
    assert_denied_because(check_ok(s, "marketing", "sms", NULL), "channel_not_granted");
}

Test(api, deny_answers_denied)
{
    char *s = bb_create_subject(ADMIN, NULL);
    bb_resp *d = bb_consent(ADMIN, s, "cookies.ads", "deny", NULL, NULL);
    bb_assert_json(d, 201);
    cr_assert_str_eq(bb_jstr(d->json, "state"), "denied");
    assert_denied_because(check_ok(s, "cookies.ads", NULL, NULL), "denied");
    assert_denied_because(check_ok(s, "cookies.ads", "ads", NULL), "denied");
    cr_assert_str_eq(bb_jstr(state_of(s, "cookies.ads"), "state"), "denied");
    /* a later grant overrides the denial */
    grant(s, "cookies.ads", NULL, NULL);
    assert_allowed(check_ok(s, "cookies.ads", "ads", NULL));
}

Test(api, channel_not_granted_and_not_offered)
{
    char *s = bb_create_subject(ADMIN, NULL);
    grant(s, "marketing", "[\"email\"]", NULL);
    assert_allowed(check_ok(s, "marketing", "email", NULL));
    assert_denied_because(check_ok(s, "marketing", "sms", NULL), "channel_not_granted");
    assert_denied_because(check_ok(s, "marketing", "post", NULL), "channel_not_granted");
    /* marketing is by email/sms/phone/post: web is not offered */
    assert_denied_because(check_ok(s, "marketing", "web", NULL), "channel_not_offered");
    assert_denied_because(check_ok(s, "marketing", "ads", NULL), "channel_not_offered");
    /* grant without channels: every channel of the purpose */
    char *s2 = bb_create_subject(ADMIN, NULL);
    bb_resp *g = grant(s2, "marketing", NULL, NULL);
    const char *const all[] = {"email", "sms", "phone", "post", NULL};
    cr_assert(channels_are(json_object_get(g->json, "channels"), all), "%s", g->body);
    assert_allowed(check_ok(s2, "marketing", "post", NULL));
    assert_denied_because(check_ok(s2, "marketing", "push", NULL), "channel_not_offered");
    bb_assert_problem(bb_check(MARKETING, s2, "marketing", "pigeon", NULL), 400, "channel");
}

Test(api, expired_grant)
{
    char *s = bb_create_subject(ADMIN, NULL);
    int64_t at = bb_now_ms() - 800 * BB_DAY_MS;
    bb_resp *g = bb_consent(ADMIN, s, "marketing", "grant", NULL, bb_time(at));
    bb_assert_json(g, 201);
    cr_assert_str_eq(bb_jstr(g->json, "state"), "expired", "%s", g->body);
    cr_assert_eq(bb_parse_time(bb_jstr(g->json, "expires_at")), at + 730 * BB_DAY_MS);
    bb_resp *c = check_ok(s, "marketing", "email", NULL);
    assert_denied_because(c, "expired");
    cr_assert_eq(bb_parse_time(bb_jstr(c->json, "expires_at")), at + 730 * BB_DAY_MS);
    json_t *st = state_of(s, "marketing");
    cr_assert_not_null(st);
    cr_assert_str_eq(bb_jstr(st, "state"), "expired", "%s", js(st));
}

Test(api, renew_needs_a_grant_and_extends_expiry)
{
    char *s = bb_create_subject(ADMIN, NULL);
    bb_resp *r = bb_consent(ADMIN, s, "marketing", "renew", NULL, NULL);
    bb_assert_problem(r, 422, "action");
    cr_assert_eq(bb_history_len(AUDITOR, s), 0, "a refused renew left an event");

    int64_t t0 = bb_now_ms() - 100 * BB_DAY_MS;
    bb_resp *g = grant(s, "marketing", NULL, bb_time(t0));
    cr_assert_eq(bb_parse_time(bb_jstr(g->json, "expires_at")), t0 + 730 * BB_DAY_MS);
    int64_t t1 = bb_now_ms() - 1000;
    bb_resp *n = bb_consent(OPERATOR, s, "marketing", "renew", NULL, bb_time(t1));
    bb_assert_json(n, 201);
    cr_assert_str_eq(bb_jstr(n->json, "state"), "granted");
    int64_t exp = bb_parse_time(bb_jstr(n->json, "expires_at"));
    cr_assert_eq(exp, t1 + 730 * BB_DAY_MS, "%s", n->body);
    cr_assert_gt(exp, t0 + 730 * BB_DAY_MS);
    bb_resp *c = check_ok(s, "marketing", NULL, NULL);
    assert_allowed(c);
    cr_assert_eq(bb_parse_time(bb_jstr(c->json, "expires_at")), exp);
    cr_assert_str_eq(bb_jstr(c->json, "event"), bb_jstr(n->json, "event"));
    /* the renewal keeps the granted channels */
    const char *const all[] = {"email", "sms", "phone", "post", NULL};
    cr_assert(channels_are(json_object_get(state_of(s, "marketing"), "channels"), all));
    cr_assert_eq(bb_history_len(AUDITOR, s), 2);

    /* renewing after a withdrawal is refused too */
    bb_assert_json(bb_consent(ADMIN, s, "marketing", "withdraw", NULL, NULL), 201);
    bb_assert_problem(bb_consent(ADMIN, s, "marketing", "renew", NULL, NULL), 422, "action");
    cr_assert_eq(bb_history_len(AUDITOR, s), 3);
}

Test(api, check_unknown_subject)
{
    const char *nobody = bb_random_subject_id();
    bb_resp *c = check_ok(nobody, "marketing", "email", NULL);
    assert_denied_because(c, "unknown_subject");
    cr_assert(bb_jnull(c->json, "event"));
    cr_assert_str_eq(bb_jstr(c->json, "subject"), nobody);
    /* a subject with no event at all is known: no_consent */
    char *s = bb_create_subject(ADMIN, NULL);
    assert_denied_because(check_ok(s, "marketing", NULL, NULL), "no_consent");
    /* and recording a consent for an unknown subject id is 404 */
    bb_assert_problem(bb_consent(ADMIN, nobody, "marketing", "grant", NULL, NULL), 404, "subject");
}

Test(api, consent_by_identifier_creates_the_subject)
{
    char *local = bb_unique("New.Person");
    char *email = bb_fmt("%s@Example.com", local);
    json_t *b = json_pack("{s:{s:s, s:s}, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "identifier",
                          "type", "email", "value", email, "purpose", "profiling", "action",
                          "grant", "collected_via", "web_form", "notice", "notice", "privacy",
                          "version", "1", "evidence", "ip", "192.0.2.7", "ua", "blackbox");
    bb_resp *r = bb_send("POST", "/v1/consents", OPERATOR, b);
    bb_assert_json(r, 201);
    const char *s = bb_strdup(bb_jstr(r->json, "subject"));
    cr_assert_eq(strncmp(s, "sub_", 4), 0);

    bb_resp *l = bb_get(
        bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(email)), MARKETING);
    bb_assert_json(l, 200);
    cr_assert_str_eq(bb_jstr(l->json, "subject"), s);
    assert_allowed(check_ok(s, "profiling", "web", NULL));

    /* the same identifier again: the same subject */
    char *lower = bb_strdup(email);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    bb_resp *r2 = bb_send("POST", "/v1/consents", OPERATOR,
                          json_pack("{s:{s:s, s:s}, s:s, s:s, s:s}", "identifier", "type", "email",
                                    "value", lower, "purpose", "profiling", "action", "withdraw",
                                    "collected_via", "email_link"));
    bb_assert_json(r2, 201);
    cr_assert_str_eq(bb_jstr(r2->json, "subject"), s);
    assert_denied_because(check_ok(s, "profiling", "web", NULL), "withdrawn");

    /* the subject holds the identifier, and the event its evidence */
    bb_resp *g = bb_get(bb_fmt("/v1/subjects/%s", s), ADMIN);
    bb_assert_json(g, 200);
    json_t *e = find_by(bb_jarr(g->json, "identifiers"), "type", "email");
    cr_assert_not_null(e);
    cr_assert_str_eq(bb_jstr(e, "value"), lower);
    json_t *h = history(s, NULL);
    json_t *evs = bb_jarr(h, "events");
    cr_assert_eq(json_array_size(evs), 2);
    json_t *ev0 = json_array_get(evs, 0);
    cr_assert_str_eq(bb_jstr(ev0, "collected_via"), "web_form");
    json_t *want = bb_track_json(json_pack("{s:s, s:s}", "ip", "192.0.2.7", "ua", "blackbox"));
    cr_assert(json_equal(bb_jobj(ev0, "evidence"), want), "%s", js(ev0));
    /* the digest is salted (evidence is guessable: an IP address); the
     * salt comes with the decrypted evidence, so its holder can re-check */
    const char *canon = "{\"ip\":\"192.0.2.7\",\"ua\":\"blackbox\"}";
    const char *salt_hex = bb_jstr(ev0, "evidence_salt");
    cr_assert_eq(strlen(salt_hex), 32, "%s", js(ev0));
    unsigned char buf[256];
    size_t n = 0;
    for (size_t i = 0; i < 16; i++) {
        unsigned v;
        cr_assert_eq(sscanf(salt_hex + 2 * i, "%2x", &v), 1);
        buf[n++] = (unsigned char)v;
    }
    memcpy(buf + n, canon, strlen(canon));
    n += strlen(canon);
    char sha[65], plain[65];
    bb_sha256_hex(buf, n, sha);
    cr_assert_str_eq(bb_jstr(ev0, "evidence_sha256"), sha);
    bb_sha256_hex(canon, strlen(canon), plain);
    cr_assert_str_neq(bb_jstr(ev0, "evidence_sha256"), plain, "an unsalted digest is guessable");
}

Test(api, history_oldest_first_with_paging)
{
    char *s = bb_create_subject(ADMIN, NULL);
    int64_t base = bb_now_ms() - 10 * BB_DAY_MS;
    const char *actions[] = {"grant", "withdraw", "grant", "deny"};
    const char *ids[4];
    for (int i = 0; i < 4; i++) {
        bb_resp *r =
            bb_consent(ADMIN, s, "marketing", actions[i], NULL, bb_time(base + i * BB_DAY_MS));
        bb_assert_json(r, 201);
        ids[i] = bb_strdup(bb_jstr(r->json, "event"));
    }
    json_t *h = history(s, NULL);
    cr_assert_str_eq(bb_jstr(h, "subject"), s);
    cr_assert(bb_jnull(h, "next_cursor"));
    json_t *evs = bb_jarr(h, "events");
    cr_assert_eq(json_array_size(evs), 4, "%s", js(h));
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(evs, i);
        cr_assert_str_eq(bb_jstr(e, "event"), ids[i], "event %zu out of order", i);
        cr_assert_str_eq(bb_jstr(e, "action"), actions[i]);
        cr_assert_str_eq(bb_jstr(e, "purpose"), "marketing");
        cr_assert_str_eq(bb_jstr(e, "subject"), s);
        cr_assert_eq(bb_parse_time(bb_jstr(e, "occurred_at")), base + (int64_t)i * BB_DAY_MS);
        bb_parse_time(bb_jstr(e, "recorded_at"));
    }
    /* grants carry the notice they were given on */
    json_t *n0 = bb_jobj(json_array_get(evs, 0), "notice");
    cr_assert_str_eq(bb_jstr(n0, "notice"), "privacy");
    cr_assert(bb_jnull(json_array_get(evs, 1), "notice"));

    /* pages of one */
    const char *cursor = NULL;
    size_t seen = 0;
    for (int page = 0; page < 10; page++) {
        json_t *p =
            history(s, cursor ? bb_fmt("?limit=1&cursor=%s", bb_urlencode(cursor)) : "?limit=1");
        json_t *pe = bb_jarr(p, "events");
        if (seen == 4) {
            cr_assert_fail("a page after the last one: %s", js(p));
        }
        cr_assert_eq(json_array_size(pe), 1, "page %d: %s", page, js(p));
        cr_assert_str_eq(bb_jstr(json_array_get(pe, 0), "event"), ids[seen], "page %d", page);
        seen++;
        if (bb_jnull(p, "next_cursor")) break;
        cursor = bb_strdup(bb_jstr(p, "next_cursor"));
    }
    cr_assert_eq(seen, 4);
    /* a page of 3 then the rest */
    json_t *p3 = history(s, "?limit=3");
    cr_assert_eq(json_array_size(bb_jarr(p3, "events")), 3);
    json_t *rest =
        history(s, bb_fmt("?limit=3&cursor=%s", bb_urlencode(bb_jstr(p3, "next_cursor"))));
    cr_assert_eq(json_array_size(bb_jarr(rest, "events")), 1);
    cr_assert_str_eq(bb_jstr(json_array_get(bb_jarr(rest, "events"), 0), "event"), ids[3]);
    cr_assert(bb_jnull(rest, "next_cursor"));
    /* bad limits */
    bb_assert_problem(bb_get(bb_fmt("/v1/subjects/%s/consents/history?limit=0", s), ADMIN), 400,
                      "limit");
    bb_assert_problem(bb_get(bb_fmt("/v1/subjects/%s/consents/history?limit=abc", s), ADMIN), 400,
                      "limit");
    bb_assert_problem(bb_get(bb_fmt("/v1/subjects/%s/consents/history?cursor=x", s), ADMIN), 400,
                      "cursor");
}

Test(api, consent_states_carry_the_notice)
{
    bb_resp *n = bb_get("/v1/notices/privacy/1", ADMIN);
    bb_assert_json(n, 200);
    const char *text = bb_jstr(n->json, "text");
    char sha[65];
    bb_sha256_hex(text, strlen(text), sha);
    cr_assert_str_eq(bb_jstr(n->json, "sha256"), sha);

    char *s = bb_create_subject(ADMIN, NULL);
    int64_t at = bb_now_ms() - 5000;
    bb_resp *g = grant(s, "marketing", "[\"post\"]", bb_time(at));
    bb_assert_json(bb_consent(ADMIN, s, "cookies.analytics", "deny", NULL, NULL), 201);

    bb_resp *r = bb_get(bb_fmt("/v1/subjects/%s/consents", s), MARKETING);
    bb_assert_json(r, 200);
    cr_assert(!bb_jbool(r->json, "erased"));
    json_t *cs = bb_jarr(r->json, "consents");
    cr_assert_eq(json_array_size(cs), 2, "%s", r->body);
    json_t *m = find_by(cs, "purpose", "marketing");
    cr_assert_not_null(m);
    cr_assert_str_eq(bb_jstr(m, "state"), "granted");
    const char *const post[] = {"post", NULL};
    cr_assert(channels_are(json_object_get(m, "channels"), post), "%s", js(m));
    cr_assert_eq(bb_parse_time(bb_jstr(m, "granted_at")), at);
    cr_assert_eq(bb_parse_time(bb_jstr(m, "expires_at")), at + 730 * BB_DAY_MS);
    json_t *mn = bb_jobj(m, "notice");
    cr_assert_str_eq(bb_jstr(mn, "notice"), "privacy");
    cr_assert_str_eq(bb_jstr(mn, "version"), "1");
    cr_assert_str_eq(bb_jstr(mn, "sha256"), sha);
    cr_assert_str_eq(bb_jstr(m, "event"), bb_jstr(g->json, "event"));
    json_t *a = find_by(cs, "purpose", "cookies.analytics");
    cr_assert_not_null(a);
    cr_assert_str_eq(bb_jstr(a, "state"), "denied");
    cr_assert_eq(json_array_size(bb_jarr(a, "channels")), 0);
}

Test(api, contract_basis_needs_no_consent_and_refuses_consent_events)
{
    char *name = bb_fmt("bb.contract%ld", (long)getpid());
    put_purpose(name,
                json_pack("{s:s, s:s, s:[s,s]}", "title", "Order fulfilment", "legal_basis",
                          "contract", "channels", "email", "post"),
                201);
    char *s = bb_create_subject(ADMIN, NULL);
    bb_resp *c = check_ok(s, name, "email", NULL);
    assert_allowed(c);
    cr_assert_str_eq(bb_jstr(c->json, "basis"), "contract");
    cr_assert(bb_jnull(c->json, "expires_at"));
    /* consent events do not apply */
    const char *actions[] = {"grant", "deny", "withdraw"};
    for (int i = 0; i < 3; i++)
        bb_assert_problem(bb_consent(ADMIN, s, name, actions[i], NULL, NULL), 422, "purpose");
    cr_assert_eq(bb_history_len(ADMIN, s), 0);
    assert_allowed(check_ok(s, name, NULL, NULL));
    /* channels still bound: web is not one of this purpose's */
    assert_denied_because(check_ok(s, name, "web", NULL), "channel_not_offered");
}

Test(api, recipient_needs_the_transfer_purpose)
{
    char *rcpt = bb_fmt("acme%ld", (long)getpid());
    char *tname = bb_fmt("transfer.%s", rcpt);
    put_purpose(tname,
                json_pack("{s:s, s:s, s:i, s:[s,s,s,s]}", "title", "Transfer to a partner",
                          "legal_basis", "consent", "validity_days", 365, "channels", "email",
                          "sms", "phone", "post"),
                201);
    char *s = bb_create_subject(ADMIN, NULL);
    grant(s, "marketing", NULL, NULL);
    bb_resp *c = check_ok(s, "marketing", "email", rcpt);
    assert_denied_because(c, "recipient_not_allowed");
    cr_assert_str_eq(bb_jstr(c->json, "recipient"), rcpt);

    int64_t at = bb_now_ms() - 1000;
    grant(s, tname, NULL, bb_time(at));
    c = check_ok(s, "marketing", "email", rcpt);
    assert_allowed(c);
    cr_assert_str_eq(bb_jstr(c->json, "recipient"), rcpt);
    /* the earlier of the two expiries */
    cr_assert_eq(bb_parse_time(bb_jstr(c->json, "expires_at")), at + 365 * BB_DAY_MS, "%s",
                 c->body);
    /* without the recipient the transfer does not matter */
    assert_allowed(check_ok(s, "marketing", "email", NULL));
    /* withdrawing the transfer stops it */
    bb_assert_json(bb_consent(ADMIN, s, tname, "withdraw", NULL, NULL), 201);
    assert_denied_because(check_ok(s, "marketing", "email", rcpt), "recipient_not_allowed");
    /* an unknown recipient */
    bb_assert_problem(bb_check(MARKETING, s, "marketing", NULL, "nobody-at-all"), 422, "recipient");
}

Test(api, occurred_at_in_the_future_is_refused)
{
    char *s = bb_create_subject(ADMIN, NULL);
    bb_resp *r = bb_consent(ADMIN, s, "marketing", "grant", NULL, bb_time(bb_now_ms() + BB_DAY_MS));
    bb_assert_problem(r, 400, "occurred_at");
    bb_assert_problem(
        bb_consent(ADMIN, s, "marketing", "deny", NULL, bb_time(bb_now_ms() + 3600 * 1000)), 400,
        "occurred_at");
    cr_assert_eq(bb_history_len(ADMIN, s), 0);
    assert_denied_because(check_ok(s, "marketing", NULL, NULL), "no_consent");
    /* not a time at all */
    bb_resp *bad =
        bb_send("POST", "/v1/consents", ADMIN,
                json_pack("{s:s, s:s, s:s, s:s, s:s}", "subject", s, "purpose", "marketing",
                          "action", "deny", "collected_via", "api", "occurred_at", "yesterday"));
    bb_assert_problem(bad, 400, "occurred_at");
    cr_assert_eq(bb_history_len(ADMIN, s), 0);
}

Test(api, older_event_recorded_later_does_not_overturn_newer_decision)
{
    char *s = bb_create_subject(ADMIN, NULL);
    int64_t newer = bb_now_ms() - BB_DAY_MS;
    bb_resp *g = grant(s, "marketing", NULL, bb_time(newer));
    const char *gid = bb_strdup(bb_jstr(g->json, "event"));

    /* an import of an old withdrawal, recorded after the grant */
    json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s}", "subject", s, "purpose", "marketing",
                          "action", "withdraw", "collected_via", "import", "occurred_at",
                          bb_time(newer - 10 * BB_DAY_MS));
    bb_resp *w = bb_send("POST", "/v1/consents", ADMIN, b);
    bb_assert_json(w, 201);
    cr_assert_str_eq(bb_jstr(w->json, "state"), "granted", "%s", w->body);

    bb_resp *c = check_ok(s, "marketing", "email", NULL);
    assert_allowed(c);
    cr_assert_str_eq(bb_jstr(c->json, "event"), gid);
    json_t *st = state_of(s, "marketing");
    cr_assert_str_eq(bb_jstr(st, "state"), "granted");
    cr_assert_eq(bb_parse_time(bb_jstr(st, "decided_at")), newer);
    /* kept as history all the same */
    cr_assert_eq(bb_history_len(AUDITOR, s), 2);

    /* an old grant after a newer denial does not grant either */
    char *s2 = bb_create_subject(ADMIN, NULL);
    bb_assert_json(bb_consent(ADMIN, s2, "marketing", "deny", NULL, bb_time(newer)), 201);
    bb_assert_json(
        bb_consent(ADMIN, s2, "marketing", "grant", NULL, bb_time(newer - 5 * BB_DAY_MS)), 201);
    assert_denied_because(check_ok(s2, "marketing", NULL, NULL), "denied");
}

/* ------------------------------------------------------------ lifecycle */

/* Its own server, so that its exit can be watched (under ASan, a leak
 * makes the exit status non-zero, and this test names the culprit). */
Test(api, sigterm_exits_0_and_data_survives_a_restart)
{
    bb_server s;
    char err[2600];
    cr_assert_eq(bb_server_init_db(&s, "solo", err, sizeof err), 0, "%s", err);
    cr_assert_eq(bb_server_spawn(&s, err, sizeof err), 0, "%s", err);
    /* the harness context points at the file's server: aim at this one */
    int saved = bb_port();
    setenv("BB_PORT", bb_fmt("%d", s.port), 1);
    bb_suite_init();
    bb_resp *c = bb_send(
        "POST", "/v1/subjects", s.admin_key,
        json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "email", "value", "solo@example.org"));
    bb_assert_json(c, 201);
    const char *id = bb_strdup(bb_jstr(c->json, "subject"));
    bb_assert_json(bb_consent(s.admin_key, id, "marketing", "grant", NULL, NULL), 201);
    /* an idempotent republish of the notice that init published */
    bb_resp *n = bb_get("/v1/notices/privacy/1", s.admin_key);
    bb_assert_json(n, 200);
    bb_assert_json(
        bb_send("POST", "/v1/notices", s.admin_key,
                json_pack("{s:s, s:s, s:s, s:s}", "notice", "privacy", "version", "1", "language",
                          bb_jstr(n->json, "language"), "text", bb_jstr(n->json, "text"))),
        200);

    bool ok;
    int st = bb_server_stop(&s, &ok);
    cr_assert(ok, "patto serve: wait status %d after SIGTERM; its stderr ends with:\n%s", st,
              bb_server_log_tail(&s, 3000));
    cr_assert_eq(bb_server_spawn(&s, err, sizeof err), 0, "%s", err);
    setenv("BB_PORT", bb_fmt("%d", s.port), 1);
    bb_suite_init();
    bb_resp *after = bb_check(s.admin_key, id, "marketing", NULL, NULL);
    bb_assert_json(after, 200);
    assert_allowed(after);
    bb_resp *l =
        bb_get("/v1/subjects?identifier_type=email&identifier=solo%40example.org", s.admin_key);
    bb_assert_json(l, 200);
    cr_assert_str_eq(bb_jstr(l->json, "subject"), id);
    st = bb_server_stop(&s, &ok);
    cr_assert(ok, "patto serve: wait status %d after SIGTERM; its stderr ends with:\n%s", st,
              bb_server_log_tail(&s, 3000));
    setenv("BB_PORT", bb_fmt("%d", saved), 1);
    bb_suite_init();
    bb_server_cleanup(&s);
}

/* ------------------------------------------------------------ the proof log
 * Structure and agreement only: the cryptographic checks are done offline
 * by `patto verify` and by an independent verifier in tests/log. */


Test(api, receipts_carry_a_proof_under_the_latest_checkpoint)
{
    char *s = bb_create_subject(OPERATOR, NULL);
    json_int_t last = -1;
    const char *evt = NULL;
    json_t *first = NULL;
    for (int i = 0; i < 3; i++) {
        bb_resp *g = bb_consent(OPERATOR, s, "marketing", i % 2 ? "withdraw" : "grant", NULL, NULL);
        bb_assert_json(g, 201);
        json_t *proof = bb_jobj(bb_jobj(g->json, "receipt"), "proof");
        cr_assert_str_eq(bb_jstr(proof, "format"), "patto-proof/1");
        json_int_t idx = bb_jint(proof, "leaf_index"), size = bb_jint(proof, "tree_size");
        cr_assert_lt(idx, size);
        cr_assert_gt(idx, last, "leaves are appended in commit order");
        last = idx;
        const char *cp = bb_jstr(proof, "checkpoint");
        cr_assert(strstr(cp, bb_fmt("/%s\n%lld\n", BB_TENANT_A, (long long)size)) != NULL,
                  "checkpoint: %s", cp);
        cr_assert(strstr(cp, "\n\n\xe2\x80\x94 ") != NULL, "not a signed note: %s", cp);
        cr_assert(strstr(bb_jstr(proof, "public_key"), "+") != NULL);
        if (!i) {
            evt = bb_strdup(bb_jstr(g->json, "event"));
            first = json_deep_copy(bb_jobj(g->json, "receipt"));
        }
    }
    /* a fresh receipt says the same, with a proof against the latest tree */
    bb_resp *r = bb_get(bb_fmt("/v1/receipts/%s", evt), AUDITOR);
    bb_assert_json(r, 200);
    json_t *fresh = json_deep_copy(r->json), *old = json_deep_copy(first);
    json_object_del(fresh, "proof");
    json_object_del(old, "proof");
    cr_assert(json_equal(fresh, old), "fresh receipt differs: %s", r->body);
    json_t *fp = bb_jobj(r->json, "proof"), *op = bb_jobj(first, "proof");
    cr_assert_str_eq(bb_jstr(fp, "leaf"), bb_jstr(op, "leaf"));
    cr_assert_eq(bb_jint(fp, "leaf_index"), bb_jint(op, "leaf_index"));
    cr_assert_geq(bb_jint(fp, "tree_size"), last + 1);
    /* the served checkpoint is the fresh receipt's or a later one (other
     * tests write to the same server concurrently) */
    bb_resp *c = bb_get("/v1/log/checkpoint", AUDITOR);
    cr_assert_eq(c->status, 200, "%s", c->body);
    const char *nl = strchr(c->body, '\n');
    cr_assert_not_null(nl);
    cr_assert_geq(strtoll(nl + 1, NULL, 10), bb_jint(fp, "tree_size"), "%s", c->body);
    json_decref(fresh);
    json_decref(old);
    json_decref(first);
    bb_assert_problem(bb_get("/v1/receipts/evt_00000000000000000000000000", AUDITOR), 404,
                      "event");
}

Test(api, log_proof_routes_answer_and_refuse_bad_queries)
{
    char *s = bb_create_subject(OPERATOR, NULL);
    bb_resp *g = bb_consent(OPERATOR, s, "marketing", "grant", NULL, NULL);
    bb_assert_json(g, 201);
    const char *evt = bb_jstr(g->json, "event");
    bb_resp *inc = bb_get(bb_fmt("/v1/log/proof/inclusion?event=%s", evt), AUDITOR);
    bb_assert_json(inc, 200);
    json_int_t size = bb_jint(inc->json, "tree_size"), idx = bb_jint(inc->json, "leaf_index");
    cr_assert_str_eq(bb_jstr(inc->json, "leaf"),
                     bb_jstr(bb_jobj(bb_jobj(g->json, "receipt"), "proof"), "leaf"));
    bb_resp *byi = bb_get(bb_fmt("/v1/log/proof/inclusion?index=%lld&size=%lld", (long long)idx,
                                 (long long)size),
                          ADMIN);
    bb_assert_json(byi, 200);
    cr_assert(json_equal(bb_jarr(byi->json, "inclusion"), bb_jarr(inc->json, "inclusion")));
    bb_resp *con = bb_get("/v1/log/proof/consistency?from=1", AUDITOR);
    bb_assert_json(con, 200);
    /* other tests append concurrently: the tree only grows */
    cr_assert_geq(bb_jint(con->json, "to"), size);
    cr_assert_not_null(json_object_get(con->json, "checkpoint"));
    bb_resp *lv = bb_get(bb_fmt("/v1/log/leaves?start=%lld&end=%lld", (long long)idx,
                                (long long)idx + 1),
                         AUDITOR);
    bb_assert_json(lv, 200);
    cr_assert_str_eq(bb_jstr(json_array_get(bb_jarr(lv->json, "leaves"), 0), "leaf"),
                     bb_jstr(inc->json, "leaf"));
    bb_resp *keys = bb_get("/v1/log/keys", AUDITOR);
    bb_assert_json(keys, 200);
    cr_assert_geq(json_array_size(bb_jarr(keys->json, "keys")), 1);

    bb_assert_problem(bb_get("/v1/log/proof/inclusion", ADMIN), 400, "event");
    bb_assert_problem(bb_get("/v1/log/proof/inclusion?event=nope", ADMIN), 400, "event");
    bb_assert_problem(bb_get("/v1/log/proof/inclusion?index=-1", ADMIN), 400, "index");
    /* far beyond any size the concurrent tests can reach */
    const long long beyond = 1000000000000LL;
    bb_assert_problem(bb_get(bb_fmt("/v1/log/proof/inclusion?index=%lld", beyond), ADMIN), 400,
                      "index");
    bb_assert_problem(bb_get(bb_fmt("/v1/log/proof/inclusion?index=0&size=%lld", beyond), ADMIN),
                      400, "size");
    bb_assert_problem(bb_get("/v1/log/proof/consistency", ADMIN), 400, "from");
    bb_assert_problem(bb_get("/v1/log/proof/consistency?from=0", ADMIN), 400, "from");
    bb_assert_problem(bb_get(bb_fmt("/v1/log/proof/consistency?from=1&to=%lld", beyond), ADMIN),
                      400, "to");
    bb_assert_problem(bb_get("/v1/log/leaves?start=5&end=5", ADMIN), 400, "end");
    bb_assert_problem(bb_get("/v1/log/leaves?start=0&end=1001", ADMIN), 400, "end");
    bb_assert_problem(bb_get("/v1/log/leaves?start=x", ADMIN), 400, "start");
    /* beyond what an int64 holds: refused, not wrapped to a negative index */
    bb_assert_problem(bb_get("/v1/log/leaves?start=9999999999999999000", ADMIN), 400, "start");
    bb_assert_problem(bb_get("/v1/log/proof/inclusion?index=9223372036854775808", ADMIN), 400,
                      "index");
}

/* ------------------------------------------------------------ objections (Art. 21) */

Test(api, objection_to_legitimate_interest_is_honoured_until_lifted)
{
    char *name = bb_fmt("bb.li%ld", (long)getpid());
    /* a legitimate interest rests on its published assessment */
    bb_resp *miss = bb_send("PUT", bb_fmt("/v1/purposes/%s", name), ADMIN,
                            json_pack("{s:s, s:s, s:[s]}", "title", "Surveys", "legal_basis",
                                      "legitimate_interest", "channels", "email"));
    bb_assert_problem(miss, 400, "assessment");
    bb_resp *unpub = bb_send(
        "PUT", bb_fmt("/v1/purposes/%s", name), ADMIN,
        json_pack("{s:s, s:s, s:[s], s:{s:s, s:s}}", "title", "Surveys", "legal_basis",
                  "legitimate_interest", "channels", "email", "assessment", "notice",
                  "lia-never-published", "version", "1"));
    bb_assert_problem(unpub, 422, "assessment");
    bb_resp *on_consent = bb_send(
        "PUT", bb_fmt("/v1/purposes/%s.c", name), ADMIN,
        json_pack("{s:s, s:s, s:[s], s:{s:s, s:s}}", "title", "Surveys", "legal_basis",
                  "consent", "channels", "email", "assessment", "notice", "x", "version", "1"));
    bb_assert_problem(on_consent, 400, "assessment");
    const char *lia = bb_fmt("lia-%s", name);
    bb_resp *n = bb_send("POST", "/v1/notices", ADMIN,
                         json_pack("{s:s, s:s, s:s, s:s}", "notice", lia, "version", "1",
                                   "language", "en",
                                   "text", "Legitimate interest assessment: purpose, necessity, "
                                           "balancing; surveys of existing customers only."));
    cr_assert(n->status == 201, "%ld %s", n->status, n->body);
    put_purpose(name,
                json_pack("{s:s, s:s, s:[s,s], s:{s:s, s:s}}", "title",
                          "Customer satisfaction surveys", "legal_basis", "legitimate_interest",
                          "channels", "email", "post", "assessment", "notice", lia, "version",
                          "1"),
                201);
    bb_resp *pg = bb_get(bb_fmt("/v1/purposes/%s", name), ADMIN);
    bb_assert_json(pg, 200);
    cr_assert_str_eq(bb_jstr(bb_jobj(pg->json, "assessment"), "sha256"),
                     bb_jstr(n->json, "sha256"), "%s", pg->body);
    char *s = bb_create_subject(OPERATOR, NULL);
    assert_allowed(check_ok(s, name, "email", NULL));
    /* only object and grant apply to legitimate interest */
    const char *refused[] = {"deny", "withdraw", "renew"};
    for (int i = 0; i < 3; i++)
        bb_assert_problem(bb_consent(OPERATOR, s, name, refused[i], NULL, NULL), 422, "action");
    cr_assert_eq(bb_history_len(ADMIN, s), 0);

    bb_resp *o = bb_consent(OPERATOR, s, name, "object", NULL, NULL);
    bb_assert_json(o, 201);
    cr_assert_str_eq(bb_jstr(o->json, "state"), "objected");
    cr_assert_str_eq(bb_jstr(bb_jobj(o->json, "receipt"), "action"), "object");
    cr_assert_not_null(json_object_get(bb_jobj(o->json, "receipt"), "proof"));
    assert_denied_because(check_ok(s, name, "email", NULL), "objected");
    assert_denied_because(check_ok(s, name, NULL, NULL), "objected");
    /* the person lifts it */
    bb_assert_json(bb_consent(OPERATOR, s, name, "grant", NULL, NULL), 201);
    bb_resp *c = check_ok(s, name, "post", NULL);
    assert_allowed(c);
    cr_assert(bb_jnull(c->json, "expires_at"), "%s", c->body);
}

Test(api, objection_on_a_consent_purpose_refuses_until_a_new_grant)
{
    char *s = bb_create_subject(OPERATOR, NULL);
    bb_assert_json(bb_consent(OPERATOR, s, "marketing", "grant", NULL, NULL), 201);
    bb_assert_json(bb_consent(OPERATOR, s, "marketing", "object", NULL, NULL), 201);
    assert_denied_because(check_ok(s, "marketing", "email", NULL), "objected");
    bb_assert_problem(bb_consent(OPERATOR, s, "marketing", "renew", NULL, NULL), 422, "action");
    bb_assert_json(bb_consent(OPERATOR, s, "marketing", "grant", NULL, NULL), 201);
    assert_allowed(check_ok(s, "marketing", "email", NULL));
}

Test(api, objection_does_not_apply_to_a_contract)
{
    char *name = bb_fmt("bb.contract.obj%ld", (long)getpid());
    put_purpose(name,
                json_pack("{s:s, s:s, s:[s]}", "title", "Invoices", "legal_basis", "contract",
                          "channels", "email"),
                201);
    char *s = bb_create_subject(OPERATOR, NULL);
    bb_assert_problem(bb_consent(OPERATOR, s, name, "object", NULL, NULL), 422, "purpose");
    assert_allowed(check_ok(s, name, "email", NULL));
}
