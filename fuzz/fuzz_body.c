/* libFuzzer target: an HTTP request body as the server decodes it (size,
 * UTF-8, depth, JSON), then the strict validation of every write document
 * (consent, subject, purpose, notice, key), against a real store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto.h"
#include "http/http.h"
#include "service/ledger.h"
#include "service/service.h"

static pt_app *app;
static uint32_t tenant;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pt_crypto_init();
    char dir[] = "/tmp/patto-fuzz-XXXXXX";
    if (!mkdtemp(dir)) abort();
    char db[128];
    snprintf(db, sizeof db, "%s/fuzz.db", dir);
    pt_keyring kr;
    pt_keyring_generate(&kr);
    pt_app_config cfg = {.db_url = db, .keyring = &kr, .create = true, .readers = 2};
    pt_err err;
    if (pt_app_open(&cfg, &app, &err) != PT_OK) abort();
    pt_op op;
    if (pt_tenant_create_prepare(app, "fuzz", &op, &err) != PT_OK) abort();
    if (pt_app_write(app, &op) != PT_OK) abort();
    pt_op_clear(&op);
    pt_tenant_rec t;
    if (pt_tenant_find(app, "fuzz", &t, &err) != PT_OK) abort();
    tenant = t.id;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_err err;
    json_t *body = pt_http_decode_body((const char *)data, size, PT_HTTP_BODY_MAX, &err);
    if (!body) return 0;
    pt_consent_arg a;
    pt_consent_parse(app, tenant, body, &a, &err);
    pt_consent_arg_clear(&a);
    pt_op op;
    if (pt_subject_create_prepare(app, tenant, body, &op, &err) == PT_OK) pt_op_clear(&op);
    if (pt_purpose_put_prepare(app, tenant, "fuzzed", body, &op, &err) == PT_OK) pt_op_clear(&op);
    if (pt_notice_publish_prepare(app, tenant, body, &op, &err) == PT_OK) pt_op_clear(&op);
    if (pt_key_create_prepare(app, tenant, body, &op, &err) == PT_OK) pt_op_clear(&op);
    json_decref(body);
    return 0;
}
