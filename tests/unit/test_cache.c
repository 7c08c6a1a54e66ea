/* Unit tests for the node's consent-state cache (service/cache.c). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "service/cache.h"

static void id_of(uint32_t n, uint8_t id[PT_ID_BYTES])
{
    /* spread like random ids: every byte depends on n */
    uint64_t x = n * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < PT_ID_BYTES; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        id[i] = (uint8_t)(x >> 56);
    }
}

Test(cache, put_get_many)
{
    pt_cache *c = pt_cache_new();
    cr_assert_not_null(c);
    const uint32_t N = 100000;
    uint8_t id[PT_ID_BYTES];
    for (uint32_t i = 0; i < N; i++) {
        id_of(i, id);
        cr_assert_eq(pt_cache_subject_put(c, id, i % 3 + 1, i % 10 == 0), 0);
        for (uint16_t p = 0; p < 3; p++) {
            pt_consent_state st = {.purpose_idx = p, .state = PT_ST_GRANTED, .granted_at = i};
            cr_assert_eq(pt_cache_state_put(c, id, &st), 0);
        }
    }
    cr_assert_eq(pt_cache_subjects(c), N);
    for (uint32_t i = 0; i < N; i++) {
        pt_cache_hit h;
        id_of(i, id);
        pt_cache_get(c, id, 2, &h);
        cr_assert(h.known && h.has_state);
        cr_assert_eq(h.tenant, i % 3 + 1);
        cr_assert_eq(h.erased, i % 10 == 0);
        cr_assert_eq(h.st.granted_at, i);
        pt_cache_get(c, id, 7, &h);
        cr_assert(h.known);
        cr_assert_not(h.has_state);
    }
    id_of(N + 1, id);
    pt_cache_hit h;
    pt_cache_get(c, id, 0, &h);
    cr_assert_not(h.known);
    pt_cache_free(c);
}

Test(cache, state_update_replaces)
{
    pt_cache *c = pt_cache_new();
    uint8_t id[PT_ID_BYTES] = {1, 2, 3};
    pt_consent_state st = {.purpose_idx = 4, .state = PT_ST_GRANTED};
    cr_assert_eq(pt_cache_state_put(c, id, &st), -1, "subject must exist first");
    pt_cache_subject_put(c, id, 9, false);
    cr_assert_eq(pt_cache_state_put(c, id, &st), 0);
    st.state = PT_ST_WITHDRAWN;
    cr_assert_eq(pt_cache_state_put(c, id, &st), 0);
    pt_cache_hit h;
    pt_cache_get(c, id, 4, &h);
    cr_assert_eq(h.st.state, PT_ST_WITHDRAWN);
    pt_cache_free(c);
    pt_cache_free(NULL);
}

typedef struct {
    pt_cache *c;
    uint32_t from, n;
} work;

static void *writer(void *arg)
{
    work *w = arg;
    uint8_t id[PT_ID_BYTES];
    for (uint32_t i = w->from; i < w->from + w->n; i++) {
        id_of(i, id);
        pt_cache_subject_put(w->c, id, 1, false);
        pt_consent_state st = {.purpose_idx = 1, .granted_at = i};
        pt_cache_state_put(w->c, id, &st);
    }
    return NULL;
}

Test(cache, concurrent_writers)
{
    pt_cache *c = pt_cache_new();
    pthread_t t[4];
    work w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (work){c, (uint32_t)i * 20000, 20000};
        pthread_create(&t[i], NULL, writer, &w[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    cr_assert_eq(pt_cache_subjects(c), 80000);
    uint8_t id[PT_ID_BYTES];
    for (uint32_t i = 0; i < 80000; i++) {
        pt_cache_hit h;
        id_of(i, id);
        pt_cache_get(c, id, 1, &h);
        cr_assert(h.has_state && h.st.granted_at == i);
    }
    pt_cache_free(c);
}

/* A merged id answers as its survivor (identity across devices). */
Test(cache, alias_answers_as_the_survivor)
{
    pt_cache *c = pt_cache_new();
    cr_assert_not_null(c);
    uint8_t a[PT_ID_BYTES], b[PT_ID_BYTES], d[PT_ID_BYTES], nobody[PT_ID_BYTES];
    id_of(1, a);
    id_of(2, b);
    id_of(3, d);
    id_of(4, nobody);
    cr_assert_eq(pt_cache_subject_put(c, a, 7, false), 0);
    cr_assert_eq(pt_cache_subject_put(c, b, 7, false), 0);
    pt_consent_state sa = {.purpose_idx = 1, .state = PT_ST_GRANTED, .granted_at = 10};
    pt_consent_state sb = {.purpose_idx = 1, .state = PT_ST_WITHDRAWN, .decided_at = 20};
    cr_assert_eq(pt_cache_state_put(c, a, &sa), 0);
    cr_assert_eq(pt_cache_state_put(c, b, &sb), 0);
    /* b merged into a: b's own states are gone, it reads a's */
    cr_assert_eq(pt_cache_alias_put(c, b, a, 7), 0);
    pt_cache_hit h;
    pt_cache_get(c, b, 1, &h);
    cr_assert(h.known && h.has_state && !h.erased);
    cr_assert_eq(h.tenant, 7);
    cr_assert_eq(h.st.state, PT_ST_GRANTED);
    /* a later change of the survivor shows through the old id */
    sa.state = PT_ST_DENIED;
    cr_assert_eq(pt_cache_state_put(c, a, &sa), 0);
    pt_cache_get(c, b, 1, &h);
    cr_assert_eq(h.st.state, PT_ST_DENIED);
    /* a state put on the old id (a late sync) changes nothing */
    cr_assert_eq(pt_cache_state_put(c, b, &sb), 0);
    pt_cache_get(c, b, 1, &h);
    cr_assert_eq(h.st.state, PT_ST_DENIED);
    /* a re-put of the old subject row keeps it an alias */
    cr_assert_eq(pt_cache_subject_put(c, b, 7, false), 0);
    pt_cache_get(c, b, 1, &h);
    cr_assert_eq(h.st.state, PT_ST_DENIED);
    /* chains: a merged into d, b follows through a; an erased survivor is erased */
    cr_assert_eq(pt_cache_subject_put(c, d, 7, true), 0);
    cr_assert_eq(pt_cache_alias_put(c, a, d, 7), 0);
    pt_cache_get(c, b, 1, &h);
    cr_assert(h.known && h.erased && !h.has_state);
    /* an alias of nobody known is nobody; a cycle ends */
    cr_assert_eq(pt_cache_alias_put(c, nobody, nobody, 7), 0);
    pt_cache_get(c, nobody, 1, &h);
    cr_assert(!h.known);
    cr_assert_eq(pt_cache_subjects(c), 4);
    pt_cache_free(c);
}
