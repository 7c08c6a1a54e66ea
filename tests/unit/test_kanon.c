/* Unit tests for k-anonymous generalisation (core/kanon.c), on generated
 * populations: after any sequence of runs, every distinct stored (age band,
 * region, sex) holds at least k records; each record's generalisation is
 * true of the person (the age falls in the band, region and sex are the
 * person's or "*"); nothing is suppressed that could have been placed. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kanon.h"

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* The stored table: generalised records. */
typedef struct table {
    pt_qi_gen *g;
    size_t n, cap;
} table;

static size_t count(void *ctx, const pt_qi_gen *g)
{
    table *t = ctx;
    size_t c = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->g[i].age, g->age) && !strcmp(t->g[i].region, g->region) &&
            !strcmp(t->g[i].sex, g->sex))
            c++;
    return c;
}

static void store(table *t, const pt_qi_gen *g)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->g = realloc(t->g, t->cap * sizeof *t->g);
        cr_assert_not_null(t->g);
    }
    t->g[t->n++] = *g;
}

static const char *const REGIONS[] = {"lombardia", "lazio",   "campania", "sicilia", "veneto",
                                      "piemonte",  "liguria", "molise",   "umbria",  "valle-d-aosta"};

/* Skewed: a few big regions, a long tail, some unknowns. */
static pt_qi person(void)
{
    pt_qi q;
    memset(&q, 0, sizeof q);
    uint64_t r = rnd();
    q.age = (r % 20 == 0) ? -1 : (int)(18 + rnd() % 70);
    unsigned ri = (unsigned)(rnd() % 100);
    int reg = ri < 40 ? 0 : ri < 60 ? 1 : ri < 72 ? 2 : ri < 80 ? 3 : ri < 86 ? 4 : (int)(5 + ri % 5);
    if (rnd() % 25 == 0)
        q.region[0] = '\0';
    else
        strcpy(q.region, REGIONS[reg]);
    uint64_t sx = rnd() % 100;
    q.sex = sx < 48 ? 'f' : sx < 96 ? 'm' : sx < 98 ? 'x' : 0;
    return q;
}

static void assert_true_of(const pt_qi *q, const pt_qi_gen *g)
{
    if (strcmp(g->age, "*") && strcmp(g->age, "unknown")) {
        int lo, hi;
        cr_assert_eq(sscanf(g->age, "%d-%d", &lo, &hi), 2, "%s", g->age);
        cr_assert(q->age >= lo && q->age <= hi, "age %d not in %s", q->age, g->age);
    } else if (!strcmp(g->age, "unknown")) {
        cr_assert(q->age < 0);
    }
    if (strcmp(g->region, "*"))
        cr_assert_str_eq(g->region, q->region[0] ? q->region : "unknown");
    if (strcmp(g->sex, "*")) {
        char want[8];
        snprintf(want, sizeof want, "%c", q->sex);
        cr_assert_str_eq(g->sex, q->sex ? want : "unknown");
    }
}

static void assert_k_anonymous(const table *t, unsigned k)
{
    for (size_t i = 0; i < t->n; i++) {
        size_t c = count((void *)t, &t->g[i]);
        cr_assert_geq(c, k, "group %s/%s/%s holds %zu < %u", t->g[i].age, t->g[i].region,
                      t->g[i].sex, c, k);
    }
}

static void run_population(size_t total, size_t batches, unsigned k, uint64_t seed)
{
    rs = seed;
    table t = {0};
    size_t suppressed = 0;
    for (size_t b = 0; b < batches; b++) {
        size_t n = total / batches + (b < total % batches);
        pt_qi *q = calloc(n ? n : 1, sizeof *q);
        pt_qi_gen *g = calloc(n ? n : 1, sizeof *g);
        for (size_t i = 0; i < n; i++) q[i] = person();
        cr_assert_eq(pt_kanon_place(q, n, k, count, &t, g), 0);
        size_t sup = 0;
        for (size_t i = 0; i < n; i++) {
            if (g[i].level < 0) {
                sup++;
                continue;
            }
            assert_true_of(&q[i], &g[i]);
            store(&t, &g[i]);
        }
        /* suppression only when even the coarsest group cannot reach k */
        if (sup) {
            pt_qi_gen all = {.age = "*", .region = "*", .sex = "*"};
            cr_assert_lt(sup + count(&t, &all), k, "suppressed %zu that could have joined", sup);
        }
        suppressed += sup;
        assert_k_anonymous(&t, k);
        free(q);
        free(g);
    }
    cr_assert_eq(t.n + suppressed, total);
    free(t.g);
}

Test(kanon, one_run_of_ten_thousand_is_5_anonymous)
{
    run_population(10000, 1, 5, 1);
}

Test(kanon, many_small_runs_stay_5_anonymous)
{
    /* the scheduler anonymises a few people at a time */
    run_population(3000, 300, 5, 2);
    run_population(500, 250, 5, 3); /* batches of 2: mostly too small alone */
}

Test(kanon, other_k_and_tiny_populations)
{
    for (unsigned k = 1; k <= 10; k++)
        for (size_t n = 0; n <= 30; n += 3) run_population(n, 1 + n % 4, k, 100 + k * 31 + n);
}

Test(kanon, a_big_group_keeps_fine_values)
{
    pt_qi q[6];
    for (int i = 0; i < 6; i++) {
        memset(&q[i], 0, sizeof q[i]);
        q[i].age = 31 + (i % 3);
        strcpy(q[i].region, "lazio");
        q[i].sex = 'f';
    }
    pt_qi_gen g[6];
    cr_assert_eq(pt_kanon_place(q, 6, 5, NULL, NULL, g), 0);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(g[i].level, 0);
        cr_assert_str_eq(g[i].age, "30-34");
        cr_assert_str_eq(g[i].region, "lazio");
        cr_assert_str_eq(g[i].sex, "f");
    }
    /* four alone cannot be placed at all */
    cr_assert_eq(pt_kanon_place(q, 4, 5, NULL, NULL, g), 0);
    for (int i = 0; i < 4; i++) cr_assert_eq(g[i].level, -1);
}

Test(kanon, a_region_called_star_is_unknown)
{
    pt_qi q = {.age = 40, .region = "*", .sex = 'm'};
    pt_qi_gen g;
    pt_kanon_generalise(&q, 0, &g);
    cr_assert_str_eq(g.region, "unknown");
    q.age = 151;
    pt_kanon_generalise(&q, 1, &g);
    cr_assert_str_eq(g.age, "unknown");
}
