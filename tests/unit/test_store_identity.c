/* The identity ops of store.h (merged ids: aliases, resolving, moving
 * identifiers, a person's events) on every backend: SQLite always;
 * PostgreSQL too when PATTO_TEST_PG names a server's base url, each test in
 * a database of its own. The same assertions run on both. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store_backends.h"

/* Every test runs on each backend (store_backends.c). */
#define each_backend(fn) store_each_backend(fn, "ident", 3)

/* ---- helpers ----------------------------------------------------------- */

static void mk_id(uint8_t id[PT_ID_BYTES], unsigned n)
{
    for (int i = 0; i < PT_ID_BYTES; i++) id[i] = (uint8_t)(n * 37u + (unsigned)i * 11u + 3u);
}

static void subject(backend *b, unsigned n, uint32_t tenant)
{
    pt_err err;
    pt_subject_rec s;
    memset(&s, 0, sizeof s);
    mk_id(s.id, n);
    s.tenant = tenant;
    s.kek_epoch = 1;
    memset(s.wrapped_dek, (int)n, sizeof s.wrapped_dek);
    uint8_t profile[8] = {(uint8_t)n, 1, 2, 3, 4, 5, 6, 7};
    s.profile = profile;
    s.profile_len = sizeof profile;
    s.created_at = s.updated_at = 1000 + n;
    cr_assert_eq(pt_db_subject_insert(b->c, &s, &err), PT_OK, "%s: %s", b->name, err.detail);
}

static void event(backend *b, unsigned subj, unsigned n)
{
    pt_err err;
    pt_event_rec e;
    memset(&e, 0, sizeof e);
    mk_id(e.id, 1000 + n);
    e.tenant = 1;
    mk_id(e.subject, subj);
    strcpy(e.purpose, "marketing");
    e.action = PT_ACT_GRANT;
    e.via = PT_VIA_API;
    e.occurred_at = e.recorded_at = 5000 + n;
    cr_assert_eq(pt_db_event_insert(b->c, &e, &err), PT_OK, "%s: %s", b->name, err.detail);
}

static int count_event(void *ctx, const pt_event_rec *r)
{
    int64_t *last = ctx;
    cr_assert_gt(r->seq, last[0], "events in seq order");
    last[0] = r->seq;
    last[1]++;
    return 0;
}

typedef struct aliases {
    pt_alias_rec r[8];
    int n;
} aliases;

static int collect_alias(void *ctx, const pt_alias_rec *r)
{
    aliases *a = ctx;
    cr_assert_lt(a->n, 8);
    a->r[a->n++] = *r;
    return 0;
}

static void tx(backend *b, bool begin)
{
    pt_err err;
    cr_assert_eq(begin ? pt_tx_begin(b->c, &err) : pt_tx_commit(b->c, &err), PT_OK, "%s: %s",
                 b->name, err.detail);
}

/* ---- tests ------------------------------------------------------------- */

static void aliases_resolve_and_repoint(backend *b)
{
    pt_err err;
    uint8_t a[PT_ID_BYTES], c[PT_ID_BYTES], d[PT_ID_BYTES], m[PT_ID_BYTES];
    mk_id(a, 1);
    mk_id(c, 3);
    mk_id(d, 4);
    tx(b, true);
    for (unsigned i = 1; i <= 4; i++) subject(b, i, 1);
    tx(b, false);
    pt_subject_rec s;
    /* no alias: resolve is subject_get */
    cr_assert_eq(pt_db_subject_resolve(b->c, c, &s), PT_OK);
    cr_assert(memcmp(s.id, c, PT_ID_BYTES) == 0);
    cr_assert_eq(s.profile_len, 8);
    cr_assert_eq(s.profile[0], 3);
    pt_subject_rec_clear(&s);
    cr_assert_eq(pt_db_subject_resolve(b->c, (uint8_t[PT_ID_BYTES]){0}, &s), PT_ERR_NOT_FOUND);
    cr_assert_eq(pt_db_alias_get(b->c, c, &(pt_alias_rec){0}), PT_ERR_NOT_FOUND);

    /* c merged into a */
    tx(b, true);
    pt_alias_rec r = {.tenant = 1, .merged_at = 7000};
    memcpy(r.id, c, PT_ID_BYTES);
    memcpy(r.subject, a, PT_ID_BYTES);
    mk_id(m, 99);
    memcpy(r.merge, m, PT_ID_BYTES);
    cr_assert_eq(pt_db_alias_repoint(b->c, c, a, &err), PT_OK, "%s: %s", b->name, err.detail);
    cr_assert_eq(pt_db_alias_insert(b->c, &r, &err), PT_OK, "%s: %s", b->name, err.detail);
    int64_t first_seq = r.seq;
    cr_assert_gt(first_seq, 0);
    /* the same id twice is a conflict, and the transaction stays usable */
    pt_alias_rec dup = r;
    cr_assert_eq(pt_db_alias_insert(b->c, &dup, &err), PT_ERR_CONFLICT, "%s", b->name);
    tx(b, false);
    cr_assert_eq(pt_db_subject_resolve(b->c, c, &s), PT_OK);
    cr_assert(memcmp(s.id, a, PT_ID_BYTES) == 0, "%s: c answers as a", b->name);
    cr_assert_eq(s.profile[0], 1);
    pt_subject_rec_clear(&s);
    /* subject_get still reads c's own row */
    cr_assert_eq(pt_db_subject_get(b->c, c, &s), PT_OK);
    cr_assert(memcmp(s.id, c, PT_ID_BYTES) == 0);
    pt_subject_rec_clear(&s);
    pt_alias_rec got;
    cr_assert_eq(pt_db_alias_get(b->c, c, &got), PT_OK);
    cr_assert(memcmp(got.subject, a, PT_ID_BYTES) == 0 && memcmp(got.merge, m, PT_ID_BYTES) == 0);
    cr_assert_eq(got.merged_at, 7000);
    cr_assert_eq(got.tenant, 1);

    /* then a merged into d: c is repointed, one hop */
    tx(b, true);
    pt_alias_rec r2 = {.tenant = 1, .merged_at = 8000};
    memcpy(r2.id, a, PT_ID_BYTES);
    memcpy(r2.subject, d, PT_ID_BYTES);
    cr_assert_eq(pt_db_alias_repoint(b->c, a, d, &err), PT_OK);
    cr_assert_eq(pt_db_alias_insert(b->c, &r2, &err), PT_OK);
    tx(b, false);
    cr_assert_gt(r2.seq, first_seq);
    cr_assert_eq(pt_db_subject_resolve(b->c, c, &s), PT_OK);
    cr_assert(memcmp(s.id, d, PT_ID_BYTES) == 0, "%s: c answers as d", b->name);
    pt_subject_rec_clear(&s);
    aliases l = {0};
    cr_assert_eq(pt_db_alias_list(b->c, d, collect_alias, &l), PT_OK);
    cr_assert_eq(l.n, 2);
    cr_assert(memcmp(l.r[0].id, c, PT_ID_BYTES) == 0 && memcmp(l.r[1].id, a, PT_ID_BYTES) == 0);
    aliases none = {0};
    cr_assert_eq(pt_db_alias_list(b->c, a, collect_alias, &none), PT_OK);
    cr_assert_eq(none.n, 0);
    aliases all = {0};
    cr_assert_eq(pt_db_alias_scan(b->c, 0, collect_alias, &all), PT_OK);
    cr_assert_eq(all.n, 2);
    aliases later = {0};
    cr_assert_eq(pt_db_alias_scan(b->c, first_seq, collect_alias, &later), PT_OK);
    cr_assert_eq(later.n, 1);
    cr_assert(memcmp(later.r[0].id, a, PT_ID_BYTES) == 0);
}

Test(store_identity, aliases_resolve_and_repoint)
{
    each_backend(aliases_resolve_and_repoint);
}

static void move_delete_and_person_events(backend *b)
{
    pt_err err;
    uint8_t a[PT_ID_BYTES], c[PT_ID_BYTES], blind[PT_BLIND_BYTES], holder[PT_ID_BYTES];
    mk_id(a, 1);
    mk_id(c, 2);
    memset(blind, 0x5a, sizeof blind);
    tx(b, true);
    subject(b, 1, 1);
    subject(b, 2, 1);
    pt_ident_rec ir = {.tenant = 1, .type = 2, .value = (const uint8_t *)"sealed-c", .value_len = 8,
                       .created_at = 1};
    memcpy(ir.blind, blind, sizeof blind);
    memcpy(ir.subject, c, PT_ID_BYTES);
    cr_assert_eq(pt_db_ident_insert(b->c, &ir, &err), PT_OK);
    for (unsigned i = 0; i < 3; i++) event(b, 1, i);
    for (unsigned i = 3; i < 5; i++) event(b, 2, i);
    event(b, 1, 5);
    pt_state_rec st = {.tenant = 1, .event_seq = 1, .st = {.purpose_idx = 0, .state = 1}};
    memcpy(st.subject, c, PT_ID_BYTES);
    cr_assert_eq(pt_db_state_put(b->c, &st, &err), PT_OK);
    st.st.purpose_idx = 1;
    cr_assert_eq(pt_db_state_put(b->c, &st, &err), PT_OK);
    tx(b, false);

    /* the identifier moves, with its new sealed value */
    tx(b, true);
    cr_assert_eq(pt_db_ident_move(b->c, 1, 2, blind, a, (const uint8_t *)"sealed-for-a", 12, &err),
                 PT_OK, "%s: %s", b->name, err.detail);
    uint8_t other[PT_BLIND_BYTES];
    memset(other, 0x11, sizeof other);
    cr_assert_eq(pt_db_ident_move(b->c, 1, 2, other, a, (const uint8_t *)"x", 1, &err),
                 PT_ERR_NOT_FOUND);
    cr_assert_eq(pt_db_ident_move(b->c, 2, 2, blind, a, (const uint8_t *)"x", 1, &err),
                 PT_ERR_NOT_FOUND, "another tenant's index");
    cr_assert_eq(pt_db_state_delete_subject(b->c, c, &err), PT_OK);
    pt_alias_rec r = {.tenant = 1, .merged_at = 9};
    memcpy(r.id, c, PT_ID_BYTES);
    memcpy(r.subject, a, PT_ID_BYTES);
    cr_assert_eq(pt_db_alias_insert(b->c, &r, &err), PT_OK);
    tx(b, false);
    cr_assert_eq(pt_db_ident_lookup(b->c, 1, 2, blind, holder), PT_OK);
    cr_assert(memcmp(holder, a, PT_ID_BYTES) == 0, "%s: the identifier is a's", b->name);
    pt_state_rec got;
    cr_assert_eq(pt_db_state_get(b->c, c, 0, &got), PT_ERR_NOT_FOUND);
    cr_assert_eq(pt_db_state_get(b->c, c, 1, &got), PT_ERR_NOT_FOUND);

    /* a's history: its own events and c's, in seq order, pageable */
    int64_t acc[2] = {0, 0};
    cr_assert_eq(pt_db_event_list_person(b->c, a, 0, 0, count_event, acc), PT_OK);
    cr_assert_eq(acc[1], 6, "%s: %lld events", b->name, (long long)acc[1]);
    int64_t page[2] = {0, 0};
    cr_assert_eq(pt_db_event_list_person(b->c, a, 0, 4, count_event, page), PT_OK);
    cr_assert_eq(page[1], 4);
    int64_t rest[2] = {page[0], 0};
    cr_assert_eq(pt_db_event_list_person(b->c, a, page[0], 0, count_event, rest), PT_OK);
    cr_assert_eq(rest[1], 2);
    int64_t own[2] = {0, 0};
    cr_assert_eq(pt_db_event_list_person(b->c, c, 0, 0, count_event, own), PT_OK);
    cr_assert_eq(own[1], 2, "a merged id's own events stay its own");
}

Test(store_identity, move_delete_and_person_events)
{
    each_backend(move_delete_and_person_events);
}
