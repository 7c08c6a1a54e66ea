#include "policy.h"

#include <string.h>

static const char *const BASIS[] = {"consent", "legitimate_interest", "contract",
                                    "legal_obligation"};
static const char *const ACTIONS[] = {"grant", "deny", "withdraw", "renew", "object"};
static const char *const STATES[] = {"none",    "granted",          "denied",  "withdrawn",
                                     "expired", "reconsent_needed", "objected"};
static const char *const CHANNELS[PT_CH_COUNT] = {"email", "sms",  "phone", "post",
                                                  "web",   "app",  "push",  "ads"};
static const char *const VIAS[] = {"web_form", "phone", "email_link", "paper", "import", "api"};
static const char *const REASONS[] = {"",
                                      "no_consent",
                                      "denied",
                                      "withdrawn",
                                      "expired",
                                      "channel_not_granted",
                                      "channel_not_offered",
                                      "reconsent_needed",
                                      "unknown_subject",
                                      "subject_erased",
                                      "recipient_not_allowed",
                                      "objected"};
static const char *const ROLES[] = {"admin", "operator", "marketing", "auditor", "recipient"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int lookup(const char *const *table, int n, const char *s)
{
    if (!s) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(table[i], s) == 0) return i;
    return -1;
}

int pt_basis_parse(const char *s) { return lookup(BASIS, COUNT(BASIS), s); }
const char *pt_basis_name(pt_basis b) { return (unsigned)b < PT_BASIS__COUNT ? BASIS[b] : "?"; }
int pt_action_parse(const char *s) { return lookup(ACTIONS, COUNT(ACTIONS), s); }
const char *pt_action_name(pt_action a) { return (unsigned)a < PT_ACT__COUNT ? ACTIONS[a] : "?"; }
const char *pt_state_name(pt_state s) { return (unsigned)s < PT_ST__COUNT ? STATES[s] : "?"; }
int pt_via_parse(const char *s) { return lookup(VIAS, COUNT(VIAS), s); }
const char *pt_via_name(pt_collected_via v) { return (unsigned)v < PT_VIA__COUNT ? VIAS[v] : "?"; }
int pt_role_parse(const char *s) { return lookup(ROLES, COUNT(ROLES), s); }
const char *pt_role_name(pt_role r) { return (unsigned)r < PT_ROLE__COUNT ? ROLES[r] : "?"; }

const char *pt_reason_name(pt_reason r)
{
    return (unsigned)r < PT_REASON__COUNT ? REASONS[r] : "?";
}

int pt_channel_parse(const char *s)
{
    int i = lookup(CHANNELS, PT_CH_COUNT, s);
    return i < 0 ? -1 : (1 << i);
}

const char *pt_channel_name(unsigned bit)
{
    for (int i = 0; i < PT_CH_COUNT; i++)
        if (bit == (1u << i)) return CHANNELS[i];
    return "?";
}

bool pt_purpose_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PT_PURPOSE_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
    }
    return true;
}

pt_result pt_policy_apply(const pt_purpose_rule *p, pt_consent_state *st, const pt_event_in *ev,
                          bool *changed, pt_err *err)
{
    *changed = false;
    /* Art. 21: one may object to processing based on legitimate interest
     * (and to direct marketing, which a consent purpose covers); not to what
     * a contract or the law requires. On a legitimate-interest purpose a
     * grant lifts an objection; nothing else applies to it. */
    if (p->basis == PT_BASIS_LEGITIMATE_INTEREST) {
        if (ev->action != PT_ACT_OBJECT && ev->action != PT_ACT_GRANT)
            return pt_err_set(err, PT_ERR_POLICY, "action",
                              "the purpose's legal basis is legitimate_interest: it takes "
                              "'object' (the person objects) and 'grant' (the person lifts an "
                              "objection), not %s",
                              pt_action_name(ev->action));
    } else if (p->basis != PT_BASIS_CONSENT) {
        return pt_err_set(err, PT_ERR_POLICY, "purpose",
                          "the purpose's legal basis is %s, not consent: consent events and "
                          "objections do not apply to it",
                          pt_basis_name(p->basis));
    }
    if (ev->channels & ~p->channels)
        return pt_err_set(err, PT_ERR_INVALID, "channels",
                          "a channel given is not one the purpose uses");

    /* An event older than the decision in force is kept as history only:
     * an import of old records must never overturn a newer decision. */
    if (st->state != PT_ST_NONE && ev->occurred_at < st->decided_at) return PT_OK;

    switch (ev->action) {
    case PT_ACT_GRANT:
        st->state = PT_ST_GRANTED;
        st->channels = ev->channels ? ev->channels : p->channels;
        st->granted_at = ev->occurred_at;
        break;
    case PT_ACT_RENEW:
        if (st->state != PT_ST_GRANTED)
            return pt_err_set(err, PT_ERR_POLICY, "action",
                              "there is no grant to renew for this purpose: record a grant");
        if (ev->channels) st->channels = ev->channels;
        st->granted_at = ev->occurred_at;
        break;
    case PT_ACT_DENY:
        st->state = PT_ST_DENIED;
        st->channels = 0;
        st->granted_at = 0;
        st->expires_at = 0;
        break;
    case PT_ACT_OBJECT:
        /* an objection covers every channel and needs no precondition */
        st->state = PT_ST_OBJECTED;
        st->channels = 0;
        st->granted_at = 0;
        st->expires_at = 0;
        break;
    case PT_ACT_WITHDRAW:
        /* A withdrawal is always accepted, even of nothing: saying no needs no
         * precondition. Channels given withdraw only those channels. */
        if (ev->channels && st->state == PT_ST_GRANTED) {
            st->channels &= (uint8_t)~ev->channels;
            if (st->channels != 0) break;
        }
        st->state = PT_ST_WITHDRAWN;
        st->channels = 0;
        st->expires_at = 0;
        break;
    default:
        return pt_err_set(err, PT_ERR_INVALID, "action", "unknown action");
    }
    if (ev->action == PT_ACT_GRANT || ev->action == PT_ACT_RENEW) {
        /* legitimate interest stands on its own: lifting an objection does
         * not start a validity period */
        st->expires_at = p->validity_days && p->basis == PT_BASIS_CONSENT
                             ? ev->occurred_at + (int64_t)p->validity_days * PT_MS_PER_DAY
                             : 0;
        st->revision = p->revision;
    }
    st->decided_at = ev->occurred_at;
    memcpy(st->event, ev->event, PT_ID_BYTES);
    *changed = true;
    return PT_OK;
}

pt_state pt_policy_effective(const pt_purpose_rule *p, const pt_consent_state *st, int64_t now)
{
    if (!st) return PT_ST_NONE;
    if (st->state != PT_ST_GRANTED) return (pt_state)st->state;
    if (st->expires_at && now >= st->expires_at) return PT_ST_EXPIRED;
    if (st->revision < p->revision) return PT_ST_RECONSENT_NEEDED;
    return PT_ST_GRANTED;
}

pt_check_out pt_policy_check(const pt_purpose_rule *p, const pt_consent_state *st,
                             bool subject_known, bool subject_erased, uint8_t channel,
                             int64_t now)
{
    pt_check_out o = {.allowed = false, .reason = PT_REASON_NONE, .basis = p->basis};
    if (!subject_known) {
        o.reason = PT_REASON_UNKNOWN_SUBJECT;
        return o;
    }
    if (subject_erased) {
        o.reason = PT_REASON_SUBJECT_ERASED;
        return o;
    }
    if (channel && !(p->channels & channel)) {
        o.reason = PT_REASON_CHANNEL_NOT_OFFERED;
        return o;
    }
    o.has_event = st && st->state != PT_ST_NONE;
    if (p->basis != PT_BASIS_CONSENT) {
        /* contract, legal obligation and legitimate interest stand without a
         * consent event; the basis itself is the answer, unless the person
         * objected to a legitimate interest. */
        if (p->basis == PT_BASIS_LEGITIMATE_INTEREST && st && st->state == PT_ST_OBJECTED) {
            o.reason = PT_REASON_OBJECTED;
            return o;
        }
        o.allowed = true;
        return o;
    }
    switch (pt_policy_effective(p, st, now)) {
    case PT_ST_NONE:
        o.reason = PT_REASON_NO_CONSENT;
        break;
    case PT_ST_DENIED:
        o.reason = PT_REASON_DENIED;
        break;
    case PT_ST_WITHDRAWN:
        o.reason = PT_REASON_WITHDRAWN;
        break;
    case PT_ST_OBJECTED:
        o.reason = PT_REASON_OBJECTED;
        break;
    case PT_ST_EXPIRED:
        o.reason = PT_REASON_EXPIRED;
        o.expires_at = st->expires_at;
        break;
    case PT_ST_RECONSENT_NEEDED:
        o.reason = PT_REASON_RECONSENT_NEEDED;
        break;
    case PT_ST_GRANTED:
        o.expires_at = st->expires_at;
        if (channel && !(st->channels & channel)) {
            o.reason = PT_REASON_CHANNEL_NOT_GRANTED;
            break;
        }
        o.allowed = true;
        break;
    default:
        o.reason = PT_REASON_NO_CONSENT;
    }
    return o;
}

pt_merge_pick pt_policy_merge(const pt_consent_state *keep, const pt_consent_state *from,
                              pt_consent_state *out)
{
    bool k = keep && keep->state != PT_ST_NONE, f = from && from->state != PT_ST_NONE;
    pt_merge_pick pick = PT_MERGE_NONE;
    if (k && f) {
        if (from->decided_at != keep->decided_at)
            pick = from->decided_at > keep->decided_at ? PT_MERGE_FROM : PT_MERGE_KEEP;
        else /* the same instant: a refusal beats a grant (privacy first) */
            pick = keep->state == PT_ST_GRANTED && from->state != PT_ST_GRANTED ? PT_MERGE_FROM
                                                                                  : PT_MERGE_KEEP;
    } else if (k) {
        pick = PT_MERGE_KEEP;
    } else if (f) {
        pick = PT_MERGE_FROM;
    }
    if (pick == PT_MERGE_KEEP)
        *out = *keep;
    else if (pick == PT_MERGE_FROM)
        *out = *from;
    else
        memset(out, 0, sizeof *out);
    return pick;
}
