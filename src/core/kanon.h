/* kanon.h - k-anonymous generalisation of quasi-identifiers, pure.
 *
 * Anonymisation turns a person whose basis for processing lapsed into a
 * statistical record: no identifier, only quasi-identifiers generalised so
 * that every group of identical records holds at least k people. A record's
 * quasi-identifiers are an age, a region and a sex; they are generalised
 * along one ladder, finest first:
 *
 *   level 0   age in 5-year bands   region   sex
 *   level 1   age in 10-year bands  region   sex
 *   level 2   age in 20-year bands  region   sex
 *   level 3   age in 20-year bands  *        sex
 *   level 4   *                     *        sex
 *   level 5   *                     *        *
 *
 * New records are placed, group by group, at the finest level where their
 * group (the new records with the same generalised values, plus the records
 * already stored with exactly those values) holds at least k; what is left
 * after level 5 is suppressed (not stored). Stored groups only grow, so a
 * table built by successive runs stays k-anonymous: every distinct stored
 * (age band, region, sex) holds at least k records. */
#ifndef PT_KANON_H
#define PT_KANON_H

#include <stdbool.h>
#include <stddef.h>

#define PT_KANON_REGION_MAX 48
#define PT_KANON_BAND_MAX 8 /* "100-119", "*" */
#define PT_KANON_LEVELS 6

typedef struct pt_qi {
    int age;                               /* years; < 0 unknown */
    char region[PT_KANON_REGION_MAX + 1];  /* "" unknown */
    char sex;                              /* 'f', 'm', 'x'; 0 unknown */
} pt_qi;

typedef struct pt_qi_gen {
    char age[PT_KANON_BAND_MAX + 1];       /* "30-34", "30-39", "20-39", "unknown" or "*" */
    char region[PT_KANON_REGION_MAX + 1];  /* a region, "unknown" or "*" */
    char sex[8];                           /* "f", "m", "x", "unknown" or "*" */
    int level;                             /* 0..5; -1 = suppressed */
} pt_qi_gen;

/* The generalisation of q at level (0..5). */
void pt_kanon_generalise(const pt_qi *q, int level, pt_qi_gen *out);

/* How many stored records have exactly these generalised values. */
typedef size_t (*pt_kanon_count_fn)(void *ctx, const pt_qi_gen *g);

/* Places n new records (k >= 1): out[i] gets record i's generalised values
 * and level, or level -1 when it must be suppressed. Returns 0, or -1 when
 * out of memory. */
int pt_kanon_place(const pt_qi *recs, size_t n, unsigned k, pt_kanon_count_fn stored, void *ctx,
                   pt_qi_gen *out);

#endif
