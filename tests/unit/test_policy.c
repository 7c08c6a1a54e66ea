/* Unit tests for the consent rules (core/policy.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "core/policy.h"

#define DAY PT_MS_PER_DAY
static const pt_purpose_rule MARKETING = {.basis = PT_BASIS_CONSENT,
                                          .validity_days = 730,
                                          .channels = PT_CH_EMAIL | PT_CH_SMS | PT_CH_PHONE,
                                          .revision = 1};

static pt_event_in ev(pt_action a, uint8_t ch, int64_t t)
{
    pt_event_in e = {.action = a, .channels = ch, .occurred_at = t};
    memset(e.event, (int)a + 1, sizeof e.event);
    return e;
}

static pt_consent_state apply_ok(const pt_purpose_rule *p, pt_consent_state st, pt_event_in e,
                                 bool expect_changed)
{
    bool changed = false;
    pt_err err;
    cr_assert_eq(pt_policy_apply(p, &st, &e, &changed, &err), PT_OK, "%s", err.detail);
    cr_assert_eq(changed, expect_changed);
    return st;
}

Test(policy, grant_sets_expiry_and_all_channels)
{
    pt_consent_state st = {0};
    st = apply_ok(&MARKETING, st, ev(PT_ACT_GRANT, 0, 1000), true);
    cr_assert_eq(st.state, PT_ST_GRANTED);
    cr_assert_eq(st.channels, MARKETING.channels);
    cr_assert_eq(st.granted_at, 1000);
    cr_assert_eq(st.expires_at, 1000 + 730 * DAY);
    cr_assert_eq(st.revision, 1);
    cr_assert_eq(pt_policy_effective(&MARKETING, &st, 1000 + 730 * DAY - 1), PT_ST_GRANTED);
    cr_assert_eq(pt_policy_effective(&MARKETING, &st, 1000 + 730 * DAY), PT_ST_EXPIRED);
}

Test(policy, no_validity_never_expires)
{
    pt_purpose_rule p = MARKETING;
    p.validity_days = 0;
    pt_consent_state st = apply_ok(&p, (pt_consent_state){0}, ev(PT_ACT_GRANT, 0, 5), true);
    cr_assert_eq(st.expires_at, 0);
    cr_assert_eq(pt_policy_effective(&p, &st, INT64_MAX / 2), PT_ST_GRANTED);
}

Test(policy, partial_withdraw_keeps_other_channels)
{
    pt_consent_state st = apply_ok(&MARKETING, (pt_consent_state){0},
                                   ev(PT_ACT_GRANT, PT_CH_EMAIL | PT_CH_SMS, 10), true);
    st = apply_ok(&MARKETING, st, ev(PT_ACT_WITHDRAW, PT_CH_SMS, 20), true);
    cr_assert_eq(st.state, PT_ST_GRANTED);
    cr_assert_eq(st.channels, PT_CH_EMAIL);
    st = apply_ok(&MARKETING, st, ev(PT_ACT_WITHDRAW, PT_CH_EMAIL, 30), true);
    cr_assert_eq(st.state, PT_ST_WITHDRAWN);
    cr_assert_eq(st.channels, 0);
}

Test(policy, withdraw_of_nothing_is_recorded)
{
    pt_consent_state st = apply_ok(&MARKETING, (pt_consent_state){0},
                                   ev(PT_ACT_WITHDRAW, 0, 10), true);
    cr_assert_eq(st.state, PT_ST_WITHDRAWN);
}

Test(policy, renew_needs_a_grant)
{
    pt_consent_state st = {0};
    bool changed;
    pt_err err;
    pt_event_in e = ev(PT_ACT_RENEW, 0, 10);
    cr_assert_eq(pt_policy_apply(&MARKETING, &st, &e, &changed, &err), PT_ERR_POLICY);
    cr_assert_str_eq(err.field, "action");
    st = apply_ok(&MARKETING, st, ev(PT_ACT_DENY, 0, 10), true);
    cr_assert_eq(pt_policy_apply(&MARKETING, &st, &e, &changed, &err), PT_ERR_POLICY);
}

Test(policy, renew_of_expired_grant_extends)
{
    pt_consent_state st = apply_ok(&MARKETING, (pt_consent_state){0},
                                   ev(PT_ACT_GRANT, PT_CH_EMAIL, 0), true);
    int64_t later = 800 * DAY;
    cr_assert_eq(pt_policy_effective(&MARKETING, &st, later), PT_ST_EXPIRED);
    st = apply_ok(&MARKETING, st, ev(PT_ACT_RENEW, 0, later), true);
    cr_assert_eq(st.channels, PT_CH_EMAIL, "renew keeps the channels");
    cr_assert_eq(st.expires_at, later + 730 * DAY);
    cr_assert_eq(pt_policy_effective(&MARKETING, &st, later + 1), PT_ST_GRANTED);
}

Test(policy, older_event_does_not_overturn_newer_decision)
{
    pt_consent_state st = apply_ok(&MARKETING, (pt_consent_state){0},
                                   ev(PT_ACT_WITHDRAW, 0, 100), true);
    st = apply_ok(&MARKETING, st, ev(PT_ACT_GRANT, 0, 50), false);
    cr_assert_eq(st.state, PT_ST_WITHDRAWN);
    /* the same instant is not older: the later-recorded event wins */
    st = apply_ok(&MARKETING, st, ev(PT_ACT_GRANT, 0, 100), true);
    cr_assert_eq(st.state, PT_ST_GRANTED);
}

Test(policy, channels_outside_purpose_refused)
{
    pt_consent_state st = {0};
    bool changed;
    pt_err err;
    pt_event_in e = ev(PT_ACT_GRANT, PT_CH_WEB, 1);
    cr_assert_eq(pt_policy_apply(&MARKETING, &st, &e, &changed, &err), PT_ERR_INVALID);
    cr_assert_str_eq(err.field, "channels");
    cr_assert_eq(st.state, PT_ST_NONE, "refused events change nothing");
}

Test(policy, non_consent_basis_refuses_consent_events_and_allows)
{
    pt_purpose_rule p = {.basis = PT_BASIS_CONTRACT, .channels = PT_CH_EMAIL, .revision = 1};
    pt_consent_state st = {0};
    bool changed;
    pt_err err;
    pt_event_in e = ev(PT_ACT_GRANT, 0, 1);
    cr_assert_eq(pt_policy_apply(&p, &st, &e, &changed, &err), PT_ERR_POLICY);
    pt_check_out o = pt_policy_check(&p, NULL, true, false, PT_CH_EMAIL, 10);
    cr_assert(o.allowed);
    cr_assert_eq(o.basis, PT_BASIS_CONTRACT);
    o = pt_policy_check(&p, NULL, false, false, 0, 10);
    cr_assert_not(o.allowed);
    cr_assert_eq(o.reason, PT_REASON_UNKNOWN_SUBJECT);
}

Test(policy, check_reasons)
{
    pt_consent_state st = {0};
    pt_check_out o = pt_policy_check(&MARKETING, NULL, true, false, 0, 1);
    cr_assert_eq(o.reason, PT_REASON_NO_CONSENT);
    o = pt_policy_check(&MARKETING, NULL, false, false, 0, 1);
    cr_assert_eq(o.reason, PT_REASON_UNKNOWN_SUBJECT);
    o = pt_policy_check(&MARKETING, NULL, true, true, 0, 1);
    cr_assert_eq(o.reason, PT_REASON_SUBJECT_ERASED);
    o = pt_policy_check(&MARKETING, NULL, true, false, PT_CH_WEB, 1);
    cr_assert_eq(o.reason, PT_REASON_CHANNEL_NOT_OFFERED);

    st = apply_ok(&MARKETING, st, ev(PT_ACT_GRANT, PT_CH_EMAIL, 0), true);
    o = pt_policy_check(&MARKETING, &st, true, false, PT_CH_EMAIL, 1);
    cr_assert(o.allowed);
    cr_assert_eq(o.expires_at, 730 * DAY);
    o = pt_policy_check(&MARKETING, &st, true, false, PT_CH_SMS, 1);
    cr_assert_eq(o.reason, PT_REASON_CHANNEL_NOT_GRANTED);
    o = pt_policy_check(&MARKETING, &st, true, false, PT_CH_EMAIL, 730 * DAY);
    cr_assert_eq(o.reason, PT_REASON_EXPIRED);

    pt_purpose_rule changed_p = MARKETING;
    changed_p.revision = 2;
    o = pt_policy_check(&changed_p, &st, true, false, 0, 1);
    cr_assert_eq(o.reason, PT_REASON_RECONSENT_NEEDED);

    pt_consent_state d = apply_ok(&MARKETING, (pt_consent_state){0}, ev(PT_ACT_DENY, 0, 1), true);
    cr_assert_eq(pt_policy_check(&MARKETING, &d, true, false, 0, 2).reason, PT_REASON_DENIED);
    pt_consent_state w =
        apply_ok(&MARKETING, (pt_consent_state){0}, ev(PT_ACT_WITHDRAW, 0, 1), true);
    cr_assert_eq(pt_policy_check(&MARKETING, &w, true, false, 0, 2).reason, PT_REASON_WITHDRAWN);
}

Test(policy, names_round_trip)
{
    for (int i = 0; i < PT_ACT__COUNT; i++)
        cr_assert_eq(pt_action_parse(pt_action_name((pt_action)i)), i);
    for (int i = 0; i < PT_BASIS__COUNT; i++)
        cr_assert_eq(pt_basis_parse(pt_basis_name((pt_basis)i)), i);
    for (int i = 0; i < PT_VIA__COUNT; i++)
        cr_assert_eq(pt_via_parse(pt_via_name((pt_collected_via)i)), i);
    for (int i = 0; i < PT_ROLE__COUNT; i++)
        cr_assert_eq(pt_role_parse(pt_role_name((pt_role)i)), i);
    for (int i = 0; i < PT_CH_COUNT; i++)
        cr_assert_eq(pt_channel_parse(pt_channel_name(1u << i)), 1 << i);
    cr_assert_eq(pt_action_parse("GRANT"), -1);
    cr_assert_eq(pt_channel_parse("fax"), -1);
}

Test(policy, purpose_names)
{
    cr_assert(pt_purpose_name_valid("marketing"));
    cr_assert(pt_purpose_name_valid("cookies.analytics"));
    cr_assert(pt_purpose_name_valid("transfer.call-center_1"));
    cr_assert_not(pt_purpose_name_valid(""));
    cr_assert_not(pt_purpose_name_valid(".x"));
    cr_assert_not(pt_purpose_name_valid("Marketing"));
    cr_assert_not(pt_purpose_name_valid("a b"));
    char longname[70];
    memset(longname, 'a', 65);
    longname[65] = 0;
    cr_assert_not(pt_purpose_name_valid(longname));
    longname[64] = 0;
    cr_assert(pt_purpose_name_valid(longname));
}
