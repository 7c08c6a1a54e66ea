/* test_leaf.c - the proof log's leaves: canonical bytes (a golden leaf, so
 * that a change of format is a decision, not an accident), escaping, and the
 * receipt built from an event equal to the receipt built from its leaf (the
 * write path builds the first, GET /v1/receipts the second). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "service/log.h"

static pt_event_rec event(void)
{
    pt_event_rec e;
    memset(&e, 0, sizeof e);
    for (int i = 0; i < 16; i++) {
        e.id[i] = (uint8_t)i;
        e.subject[i] = (uint8_t)(0xf0 + i);
    }
    strcpy(e.purpose, "marketing");
    e.action = PT_ACT_GRANT;
    e.channels = PT_CH_EMAIL | PT_CH_SMS;
    e.via = PT_VIA_WEB_FORM;
    strcpy(e.notice, "privacy");
    strcpy(e.notice_version, "3");
    memset(e.notice_sha256, 'a', 64);
    memset(e.evidence_sha256, 'b', 64);
    e.occurred_at = 1796000000000LL;
    e.recorded_at = 1796000000120LL;
    e.expires_at = 1859072000000LL;
    return e;
}

Test(leaf, consent_leaf_is_canonical)
{
    pt_event_rec e = event();
    size_t len;
    char *leaf = pt_leaf_consent("acme", "consent", &e, &len);
    cr_assert_not_null(leaf);
    cr_assert_eq(strlen(leaf), len);
    cr_assert_str_eq(
        leaf,
        "{\"v\":1,\"kind\":\"consent\",\"tenant\":\"acme\",\"event\":\"evt_000g40r40m30e209185gr38e1w\","
        "\"subject\":\"sub_y3rz5wzmyqvffy7szbxzszfyzw\",\"purpose\":\"marketing\",\"basis\":\"consent\","
        "\"action\":\"grant\",\"channels\":[\"email\",\"sms\"],\"via\":\"web_form\","
        "\"occurred_at\":\"2026-11-30T00:53:20.000Z\",\"recorded_at\":\"2026-11-30T00:53:20.120Z\","
        "\"expires_at\":\"2028-11-29T00:53:20.000Z\",\"notice\":{\"notice\":\"privacy\","
        "\"version\":\"3\",\"sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
        "\"evidence_sha256\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}");
    free(leaf);
}

Test(leaf, strings_are_escaped_and_round_trip)
{
    pt_event_rec e = event();
    strcpy(e.notice, "pri\"va\\cy\n\x01" "\xc3\xa8");
    size_t len;
    char *leaf = pt_leaf_consent("acme", NULL, &e, &len);
    json_error_t je;
    json_t *j = json_loadb(leaf, len, 0, &je);
    cr_assert_not_null(j, "%s: %s", je.text, leaf);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "notice"), "notice")),
                     e.notice);
    cr_assert(json_is_null(json_object_get(j, "basis")));
    cr_assert_not_null(strstr(leaf, "pri\\\"va\\\\cy\\u000a\\u0001\xc3\xa8"), "%s", leaf);
    json_decref(j);
    free(leaf);
}

static void same_receipt(const pt_event_rec *e, const char *basis)
{
    size_t len;
    char *leaf = pt_leaf_consent("acme", basis, e, &len);
    json_t *a = pt_receipt_from_leaf(leaf, len), *b = pt_receipt_from_event("acme", basis, e);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
    cr_assert(json_equal(a, b), "from leaf: %s\nfrom event: %s", sa, sb);
    free(sa);
    free(sb);
    json_decref(a);
    json_decref(b);
    free(leaf);
}

Test(leaf, receipt_from_event_equals_receipt_from_leaf)
{
    pt_event_rec e = event();
    same_receipt(&e, "consent");
    e.notice[0] = '\0';
    e.evidence_sha256[0] = '\0';
    e.expires_at = 0;
    e.action = PT_ACT_WITHDRAW;
    e.channels = 0;
    same_receipt(&e, NULL);
    e.via = PT_VIA_IMPORT;
    e.channels = 0xff;
    same_receipt(&e, "legitimate_interest");
}

Test(leaf, other_kinds_and_members)
{
    pt_leaf_member m[] = {{"subject", "sub_x", NULL}, {"fields", NULL, "[\"name\",\"city\"]"},
                          {"note", NULL, NULL}};
    size_t len;
    char *leaf = pt_leaf_build("subject.rectified", "acme", m, 3, &len);
    cr_assert_str_eq(leaf, "{\"v\":1,\"kind\":\"subject.rectified\",\"tenant\":\"acme\","
                           "\"subject\":\"sub_x\",\"fields\":[\"name\",\"city\"],\"note\":null}");
    cr_assert_null(pt_receipt_from_leaf(leaf, len), "only consent leaves make receipts");
    free(leaf);
}
