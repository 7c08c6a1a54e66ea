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

/* ---- merging two people: the most recent explicit decision wins ---- */

static pt_consent_state granted_at(int64_t t, uint8_t ch, uint8_t ev_byte)
{
    pt_consent_state st = {0};
    pt_event_in e = ev(PT_ACT_GRANT, ch, t);
    memset(e.event, ev_byte, sizeof e.event);
    return apply_ok(&MARKETING, st, e, true);
}

static pt_consent_state decided(pt_action a, int64_t t, uint8_t ev_byte)
{
    pt_consent_state st = {0};
    pt_event_in e = ev(a, 0, t);
    memset(e.event, ev_byte, sizeof e.event);
    return apply_ok(&MARKETING, st, e, true);
}

Test(policy, merge_nothing_recorded_on_either_side)
{
    pt_consent_state out, none = {0};
    memset(&out, 0xaa, sizeof out);
    cr_assert_eq(pt_policy_merge(NULL, NULL, &out), PT_MERGE_NONE);
    cr_assert_eq(out.state, PT_ST_NONE);
    cr_assert_eq(pt_policy_merge(&none, &none, &out), PT_MERGE_NONE);
    cr_assert_eq(out.decided_at, 0);
}

Test(policy, merge_one_side_only_is_taken_as_it_is)
{
    pt_consent_state g = granted_at(100, PT_CH_EMAIL, 7), none = {0}, out;
    cr_assert_eq(pt_policy_merge(NULL, &g, &out), PT_MERGE_FROM);
    cr_assert(memcmp(&out, &g, sizeof g) == 0);
    cr_assert_eq(pt_policy_merge(&none, &g, &out), PT_MERGE_FROM);
    cr_assert_eq(pt_policy_merge(&g, NULL, &out), PT_MERGE_KEEP);
    cr_assert(memcmp(&out, &g, sizeof g) == 0);
    cr_assert_eq(pt_policy_merge(&g, &none, &out), PT_MERGE_KEEP);
}

Test(policy, merge_most_recent_decision_wins_either_way)
{
    pt_consent_state g = granted_at(100, 0, 1), w = decided(PT_ACT_WITHDRAW, 200, 2), out;
    /* a later withdrawal on the other device stands */
    cr_assert_eq(pt_policy_merge(&g, &w, &out), PT_MERGE_FROM);
    cr_assert_eq(out.state, PT_ST_WITHDRAWN);
    cr_assert_eq(pt_policy_merge(&w, &g, &out), PT_MERGE_KEEP);
    cr_assert_eq(out.state, PT_ST_WITHDRAWN);
    /* and a later grant beats an older denial */
    pt_consent_state d = decided(PT_ACT_DENY, 50, 3);
    cr_assert_eq(pt_policy_merge(&d, &g, &out), PT_MERGE_FROM);
    cr_assert_eq(out.state, PT_ST_GRANTED);
    cr_assert_eq(out.event[0], 1, "the deciding event comes with the decision");
    cr_assert_eq(pt_policy_merge(&g, &d, &out), PT_MERGE_KEEP);
    cr_assert_eq(out.state, PT_ST_GRANTED);
}

Test(policy, merge_expired_grant_stays_expired)
{
    int64_t now = 100 + 800 * DAY; /* past the 730-day validity of a grant at 100 */
    pt_consent_state old = granted_at(100, 0, 1), out;
    cr_assert_eq(pt_policy_effective(&MARKETING, &old, now), PT_ST_EXPIRED);
    /* alone: kept as it is, not re-dated to the merge */
    cr_assert_eq(pt_policy_merge(NULL, &old, &out), PT_MERGE_FROM);
    cr_assert_eq(out.expires_at, old.expires_at);
    cr_assert_eq(out.granted_at, 100);
    cr_assert_eq(pt_policy_effective(&MARKETING, &out, now), PT_ST_EXPIRED);
    /* the most recent decision, even expired, is the decision: an older
     * grant that would still run (a longer validity then) does not revive it */
    pt_purpose_rule longer = MARKETING;
    longer.validity_days = 3650;
    pt_consent_state older_long = apply_ok(&longer, (pt_consent_state){0},
                                           ev(PT_ACT_GRANT, 0, 50), true);
    cr_assert_eq(pt_policy_effective(&longer, &older_long, now), PT_ST_GRANTED);
    cr_assert_eq(pt_policy_merge(&older_long, &old, &out), PT_MERGE_FROM);
    cr_assert_eq(pt_policy_effective(&MARKETING, &out, now), PT_ST_EXPIRED);
    /* an expired grant older than a withdrawal loses */
    pt_consent_state w = decided(PT_ACT_WITHDRAW, 200, 2);
    cr_assert_eq(pt_policy_merge(&w, &old, &out), PT_MERGE_KEEP);
    cr_assert_eq(out.state, PT_ST_WITHDRAWN);
}

Test(policy, merge_tie_refusal_beats_grant_else_survivor)
{
    pt_consent_state g = granted_at(100, 0, 1), d = decided(PT_ACT_DENY, 100, 2), out;
    cr_assert_eq(pt_policy_merge(&g, &d, &out), PT_MERGE_FROM);
    cr_assert_eq(out.state, PT_ST_DENIED);
    cr_assert_eq(pt_policy_merge(&d, &g, &out), PT_MERGE_KEEP);
    cr_assert_eq(out.state, PT_ST_DENIED);
    pt_consent_state g2 = granted_at(100, PT_CH_SMS, 3);
    cr_assert_eq(pt_policy_merge(&g, &g2, &out), PT_MERGE_KEEP);
    cr_assert_eq(out.event[0], 1);
}

Test(policy, merge_never_combines_channels_or_revisions)
{
    pt_consent_state a = granted_at(100, PT_CH_EMAIL, 1), b = granted_at(200, PT_CH_SMS, 2), out;
    b.revision = 0; /* granted under an older revision of the purpose */
    cr_assert_eq(pt_policy_merge(&a, &b, &out), PT_MERGE_FROM);
    cr_assert_eq(out.channels, PT_CH_SMS);
    cr_assert_eq(out.revision, 0);
    cr_assert_eq(pt_policy_effective(&MARKETING, &out, 300), PT_ST_RECONSENT_NEEDED);
}

Test(policy, merge_then_older_event_does_not_overturn)
{
    /* the merged state is a state like any other: an event older than its
     * decision is history only */
    pt_consent_state w = decided(PT_ACT_WITHDRAW, 500, 2), g = granted_at(100, 0, 1), out;
    cr_assert_eq(pt_policy_merge(&g, &w, &out), PT_MERGE_FROM);
    out = apply_ok(&MARKETING, out, ev(PT_ACT_GRANT, 0, 400), false);
    cr_assert_eq(out.state, PT_ST_WITHDRAWN);
}
