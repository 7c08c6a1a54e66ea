/* Unit tests for objections (Art. 21) in the consent rules (core/policy.c):
 * who may object to what, what `check` answers afterwards, and how an
 * objection is lifted. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/policy.h"

static const pt_purpose_rule LI = {.basis = PT_BASIS_LEGITIMATE_INTEREST,
                                   .validity_days = 365,
                                   .channels = PT_CH_EMAIL | PT_CH_POST,
                                   .revision = 1};
static const pt_purpose_rule CONSENT = {.basis = PT_BASIS_CONSENT,
                                        .validity_days = 730,
                                        .channels = PT_CH_EMAIL | PT_CH_SMS,
                                        .revision = 1};
static const pt_purpose_rule CONTRACT = {.basis = PT_BASIS_CONTRACT, .channels = PT_CH_EMAIL};

static pt_event_in ev(pt_action a, int64_t t)
{
    pt_event_in e = {.action = a, .occurred_at = t};
    memset(e.event, (int)a + 1, sizeof e.event);
    return e;
}

static pt_result apply(const pt_purpose_rule *p, pt_consent_state *st, pt_action a, int64_t t)
{
    bool changed;
    pt_err err;
    pt_event_in e = ev(a, t);
    return pt_policy_apply(p, st, &e, &changed, &err);
}

Test(objection, legitimate_interest_stands_until_the_person_objects)
{
    pt_consent_state st = {0};
    pt_check_out o = pt_policy_check(&LI, &st, true, false, PT_CH_EMAIL, 10);
    cr_assert(o.allowed);
    cr_assert_eq(apply(&LI, &st, PT_ACT_OBJECT, 100), PT_OK);
    cr_assert_eq(st.state, PT_ST_OBJECTED);
    o = pt_policy_check(&LI, &st, true, false, PT_CH_EMAIL, 200);
    cr_assert_not(o.allowed);
    cr_assert_eq(o.reason, PT_REASON_OBJECTED);
    cr_assert_str_eq(pt_reason_name(o.reason), "objected");
    /* on every channel, and for good: no expiry */
    o = pt_policy_check(&LI, &st, true, false, 0, 100LL * 365 * PT_MS_PER_DAY);
    cr_assert_eq(o.reason, PT_REASON_OBJECTED);
}

Test(objection, a_later_grant_lifts_it_an_older_one_does_not)
{
    pt_consent_state st = {0};
    cr_assert_eq(apply(&LI, &st, PT_ACT_OBJECT, 100), PT_OK);
    cr_assert_eq(apply(&LI, &st, PT_ACT_GRANT, 50), PT_OK); /* older: history only */
    cr_assert_eq(st.state, PT_ST_OBJECTED);
    cr_assert_eq(apply(&LI, &st, PT_ACT_GRANT, 150), PT_OK);
    cr_assert_eq(st.state, PT_ST_GRANTED);
    cr_assert_eq(st.expires_at, 0, "lifting an objection starts no validity period");
    cr_assert(pt_policy_check(&LI, &st, true, false, PT_CH_POST, 10LL * 365 * PT_MS_PER_DAY)
                  .allowed);
}

Test(objection, legitimate_interest_refuses_other_actions)
{
    const pt_action refused[] = {PT_ACT_DENY, PT_ACT_WITHDRAW, PT_ACT_RENEW};
    for (size_t i = 0; i < 3; i++) {
        pt_consent_state st = {0};
        cr_assert_eq(apply(&LI, &st, refused[i], 100), PT_ERR_POLICY, "%s",
                     pt_action_name(refused[i]));
        cr_assert_eq(st.state, PT_ST_NONE, "nothing changed");
    }
}

Test(objection, contract_and_legal_obligation_take_no_objection)
{
    pt_purpose_rule legal = CONTRACT;
    legal.basis = PT_BASIS_LEGAL_OBLIGATION;
    const pt_purpose_rule *rules[] = {&CONTRACT, &legal};
    for (size_t i = 0; i < 2; i++) {
        pt_consent_state st = {0};
        cr_assert_eq(apply(rules[i], &st, PT_ACT_OBJECT, 100), PT_ERR_POLICY);
        cr_assert_eq(st.state, PT_ST_NONE);
        cr_assert(pt_policy_check(rules[i], &st, true, false, PT_CH_EMAIL, 200).allowed);
    }
}

Test(objection, on_a_consent_purpose_it_refuses_like_a_withdrawal_until_a_new_grant)
{
    pt_consent_state st = {0};
    cr_assert_eq(apply(&CONSENT, &st, PT_ACT_GRANT, 100), PT_OK);
    cr_assert_eq(apply(&CONSENT, &st, PT_ACT_OBJECT, 200), PT_OK);
    pt_check_out o = pt_policy_check(&CONSENT, &st, true, false, PT_CH_SMS, 300);
    cr_assert_not(o.allowed);
    cr_assert_eq(o.reason, PT_REASON_OBJECTED);
    cr_assert_eq(st.expires_at, 0);
    cr_assert_eq(apply(&CONSENT, &st, PT_ACT_RENEW, 400), PT_ERR_POLICY, "nothing to renew");
    cr_assert_eq(apply(&CONSENT, &st, PT_ACT_GRANT, 500), PT_OK);
    cr_assert(pt_policy_check(&CONSENT, &st, true, false, PT_CH_SMS, 600).allowed);
}

Test(objection, names_parse_and_print)
{
    cr_assert_eq(pt_action_parse("object"), PT_ACT_OBJECT);
    cr_assert_str_eq(pt_action_name(PT_ACT_OBJECT), "object");
    cr_assert_str_eq(pt_state_name(PT_ST_OBJECTED), "objected");
}
