#include "kanon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGE_MAX 150 /* beyond: not an age, treated as unknown */

static const int BAND[] = {5, 10, 20, 20}; /* years, levels 0..3 */

void pt_kanon_generalise(const pt_qi *q, int level, pt_qi_gen *out)
{
    memset(out, 0, sizeof *out);
    out->level = level;
    if (level >= 4) {
        strcpy(out->age, "*");
    } else if (q->age < 0 || q->age > AGE_MAX) {
        strcpy(out->age, "unknown");
    } else {
        /* ages are 0..150 here, so a band fits "140-159" */
        unsigned w = (unsigned)BAND[level], lo = (unsigned)q->age - (unsigned)q->age % w;
        snprintf(out->age, sizeof out->age, "%u-%u", lo % 1000u, (lo + w - 1) % 1000u);
    }
    /* "*" is the ladder's own word: a region spelled so counts as unknown */
    if (level >= 3)
        strcpy(out->region, "*");
    else if (!q->region[0] || strcmp(q->region, "*") == 0)
        strcpy(out->region, "unknown");
    else
        snprintf(out->region, sizeof out->region, "%s", q->region);
    if (level >= 5)
        strcpy(out->sex, "*");
    else if (q->sex == 'f' || q->sex == 'm' || q->sex == 'x')
        snprintf(out->sex, sizeof out->sex, "%c", q->sex);
    else
        strcpy(out->sex, "unknown");
}

static int gen_cmp(const pt_qi_gen *a, const pt_qi_gen *b)
{
    int c = strcmp(a->age, b->age);
    if (!c) c = strcmp(a->region, b->region);
    if (!c) c = strcmp(a->sex, b->sex);
    return c;
}

typedef struct slot {
    pt_qi_gen g;
    size_t i; /* index into recs */
} slot;

static int slot_cmp(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    int c = gen_cmp(&x->g, &y->g);
    if (c) return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

int pt_kanon_place(const pt_qi *recs, size_t n, unsigned k, pt_kanon_count_fn stored, void *ctx,
                   pt_qi_gen *out)
{
    if (!n) return 0;
    if (k < 1) k = 1;
    slot *s = malloc(n * sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < n; i++) out[i].level = -1;
    for (int level = 0; level < PT_KANON_LEVELS; level++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (out[i].level < 0) {
                pt_kanon_generalise(&recs[i], level, &s[m].g);
                s[m++].i = i;
            }
        if (!m) break;
        qsort(s, m, sizeof *s, slot_cmp);
        for (size_t a = 0, b; a < m; a = b) {
            for (b = a + 1; b < m && gen_cmp(&s[a].g, &s[b].g) == 0;) b++;
            size_t have = (b - a) + (stored ? stored(ctx, &s[a].g) : 0);
            if (have < k) continue; /* too small here: try coarser */
            for (size_t j = a; j < b; j++) out[s[j].i] = s[j].g;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (out[i].level < 0) {
            memset(&out[i], 0, sizeof out[i]);
            out[i].level = -1;
        }
    free(s);
    return 0;
}
