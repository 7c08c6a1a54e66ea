/* policy.h - the consent rules, as pure functions over plain structs:
 * how an event changes the state of one (subject, purpose), when a grant
 * expires, and what `check` answers. No I/O, no clock: `now` is passed in.
 *
 * The ledger is append-only; the state is a fold of events in the order of
 * their occurred_at (ties by ledger sequence). An event older than the last
 * decision applied is recorded but does not change the state, so that an
 * import of old history can never overturn a newer decision. */
#ifndef PT_POLICY_H
#define PT_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "ids.h"
#include "result.h"

#define PT_PURPOSE_NAME_MAX 64 /* [a-z0-9][a-z0-9._-]{0,63} */
#define PT_MS_PER_DAY 86400000LL

typedef enum pt_basis {
    PT_BASIS_CONSENT = 0,
    PT_BASIS_LEGITIMATE_INTEREST,
    PT_BASIS_CONTRACT,
    PT_BASIS_LEGAL_OBLIGATION,
    PT_BASIS__COUNT
} pt_basis;

typedef enum pt_action {
    PT_ACT_GRANT = 0,
    PT_ACT_DENY,
    PT_ACT_WITHDRAW,
    PT_ACT_RENEW,
    PT_ACT_OBJECT, /* Art. 21: the person objects (legitimate interest, direct marketing) */
    PT_ACT__COUNT
} pt_action;

/* Stored states. "expired" and "reconsent_needed" are derived at read time
 * from expires_at and the purpose revision, never stored. */
typedef enum pt_state {
    PT_ST_NONE = 0,
    PT_ST_GRANTED,
    PT_ST_DENIED,
    PT_ST_WITHDRAWN,
    PT_ST_EXPIRED,          /* derived */
    PT_ST_RECONSENT_NEEDED, /* derived */
    PT_ST_OBJECTED,         /* stored: an objection stands */
    PT_ST__COUNT
} pt_state;

/* Channels are a fixed vocabulary so that a state fits in a bitmask. */
typedef enum pt_channel {
    PT_CH_EMAIL = 1u << 0,
    PT_CH_SMS = 1u << 1,
    PT_CH_PHONE = 1u << 2,
    PT_CH_POST = 1u << 3,
    PT_CH_WEB = 1u << 4,
    PT_CH_APP = 1u << 5,
    PT_CH_PUSH = 1u << 6,
    PT_CH_ADS = 1u << 7,
} pt_channel;
#define PT_CH_COUNT 8
#define PT_CH_ALL 0xffu

typedef enum pt_collected_via {
    PT_VIA_WEB_FORM = 0,
    PT_VIA_PHONE,
    PT_VIA_EMAIL_LINK,
    PT_VIA_PAPER,
    PT_VIA_IMPORT,
    PT_VIA_API,
    PT_VIA__COUNT
} pt_collected_via;

typedef enum pt_reason {
    PT_REASON_NONE = 0, /* allowed */
    PT_REASON_NO_CONSENT,
    PT_REASON_DENIED,
    PT_REASON_WITHDRAWN,
    PT_REASON_EXPIRED,
    PT_REASON_CHANNEL_NOT_GRANTED,
    PT_REASON_CHANNEL_NOT_OFFERED, /* the purpose does not use that channel */
    PT_REASON_RECONSENT_NEEDED,
    PT_REASON_UNKNOWN_SUBJECT,
    PT_REASON_SUBJECT_ERASED,
    PT_REASON_RECIPIENT_NOT_ALLOWED,
    PT_REASON_OBJECTED, /* the person objected (Art. 21) */
    PT_REASON__COUNT
} pt_reason;

/* A purpose as the rules need it (the catalog holds the texts). */
typedef struct pt_purpose_rule {
    pt_basis basis;
    uint32_t validity_days;     /* 0 = does not expire */
    uint32_t renew_before_days; /* reminder window, for renewal flows */
    uint8_t channels;           /* channels the purpose may use */
    uint16_t revision;          /* bumped on a material change */
} pt_purpose_rule;

/* The materialised state of one (subject, purpose): 48 bytes, kept in the
 * node's memory for every subject. */
typedef struct pt_consent_state {
    uint16_t purpose_idx; /* dense per-tenant purpose number */
    uint8_t state;        /* pt_state, stored values only */
    uint8_t channels;     /* granted channels */
    uint16_t revision;    /* purpose revision the decision was made under */
    uint16_t pad_;
    int64_t decided_at;   /* occurred_at of the event that set this state */
    int64_t granted_at;   /* 0 when never granted */
    int64_t expires_at;   /* 0 = no expiry */
    uint8_t event[PT_ID_BYTES];
} pt_consent_state;

typedef struct pt_event_in {
    pt_action action;
    uint8_t channels; /* 0 = not given */
    int64_t occurred_at;
    uint8_t event[PT_ID_BYTES];
} pt_event_in;

/* Applies ev to *st (st->state == PT_ST_NONE for a first event).
 * Returns PT_OK and sets *changed; PT_ERR_POLICY with err filled when the
 * rules refuse the event (renewing nothing, a consent event on a purpose
 * whose basis is not consent, channels the purpose does not offer).
 * expires_at is computed from occurred_at + validity_days. */
pt_result pt_policy_apply(const pt_purpose_rule *p, pt_consent_state *st, const pt_event_in *ev,
                          bool *changed, pt_err *err);

/* The state a reader sees at `now`: folds in expiry and reconsent. */
pt_state pt_policy_effective(const pt_purpose_rule *p, const pt_consent_state *st, int64_t now);

typedef struct pt_check_out {
    bool allowed;
    pt_reason reason;
    pt_basis basis;
    int64_t expires_at; /* 0 = none */
    bool has_event;
} pt_check_out;

/* channel: 0 = any channel, or exactly one PT_CH_ bit. st may be NULL (no
 * event yet). subject_known/erased describe the subject. */
pt_check_out pt_policy_check(const pt_purpose_rule *p, const pt_consent_state *st,
                             bool subject_known, bool subject_erased, uint8_t channel,
                             int64_t now);

/* Merging two people into one (identity across devices): for one purpose,
 * the state the survivor keeps, given its own (keep) and that of the person
 * merged into it (from); either may be NULL or PT_ST_NONE (no decision).
 * The rule: the most recent explicit decision wins (later decided_at); at
 * the same instant a refusal (deny, withdraw) beats a grant, and otherwise
 * the survivor's stands. The winner is copied verbatim - expires_at,
 * revision, channels, deciding event - so an expired grant stays expired
 * and nothing is revived or extended by a merge: a merge is not a consent.
 * Channels of two grants are not combined. *out gets the winner (zeroed
 * for PT_MERGE_NONE). */
typedef enum pt_merge_pick { PT_MERGE_NONE = 0, PT_MERGE_KEEP, PT_MERGE_FROM } pt_merge_pick;
pt_merge_pick pt_policy_merge(const pt_consent_state *keep, const pt_consent_state *from,
                              pt_consent_state *out);

typedef enum pt_role {
    PT_ROLE_ADMIN = 0,
    PT_ROLE_OPERATOR,
    PT_ROLE_MARKETING,
    PT_ROLE_AUDITOR,
    PT_ROLE_RECIPIENT,
    PT_ROLE__COUNT
} pt_role;

/* Which roles may call a route: a bitmask of (1u << pt_role). */
#define PT_ROLE_BIT(r) (1u << (r))

/* Name tables; parse returns -1 for unknown names. */
int pt_basis_parse(const char *s);
const char *pt_basis_name(pt_basis b);
int pt_action_parse(const char *s);
const char *pt_action_name(pt_action a);
const char *pt_state_name(pt_state s);
int pt_channel_parse(const char *s); /* returns the bit */
const char *pt_channel_name(unsigned bit);
int pt_via_parse(const char *s);
const char *pt_via_name(pt_collected_via v);
const char *pt_reason_name(pt_reason r);
int pt_role_parse(const char *s);
const char *pt_role_name(pt_role r);
bool pt_purpose_name_valid(const char *s);

#endif
