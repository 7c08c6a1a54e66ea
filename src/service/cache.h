/* cache.h - the node's materialised consent state, in memory, so that
 * `check` never touches storage: subject id -> (tenant, erased, one
 * pt_consent_state per purpose the subject has an event for).
 *
 * The cache is a copy: the store is the truth. It is filled at start from
 * the store, updated by the writer after each durable commit, and re-synced
 * from the store when another process commits (see app.c).
 *
 * Thread-safe: 256 shards by the last id byte, each an open-addressing
 * table under its own rwlock; readers never block each other. */
#ifndef PT_CACHE_H
#define PT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ids.h"
#include "core/policy.h"

typedef struct pt_cache pt_cache;

pt_cache *pt_cache_new(void);
void pt_cache_free(pt_cache *c); /* accepts NULL */

/* Adds or updates a subject. */
int pt_cache_subject_put(pt_cache *c, const uint8_t id[PT_ID_BYTES], uint32_t tenant,
                         bool erased);
/* Sets the state of one purpose; the subject must have been put first
 * (returns -1 otherwise, or when out of memory). */
int pt_cache_state_put(pt_cache *c, const uint8_t id[PT_ID_BYTES], const pt_consent_state *st);

/* Makes id a merged subject's id: it answers as `to` (its survivor) from
 * now on, and its own states are dropped. Chains (A into B, B into C) are
 * followed. Returns -1 when out of memory. */
int pt_cache_alias_put(pt_cache *c, const uint8_t id[PT_ID_BYTES], const uint8_t to[PT_ID_BYTES],
                       uint32_t tenant);

typedef struct pt_cache_hit {
    bool known;
    bool erased;
    bool has_state;
    uint32_t tenant;
    pt_consent_state st;
} pt_cache_hit;

/* Copies out what is known of (id, purpose_idx); a merged id answers as
 * its survivor. */
void pt_cache_get(pt_cache *c, const uint8_t id[PT_ID_BYTES], uint16_t purpose_idx,
                  pt_cache_hit *out);

size_t pt_cache_subjects(pt_cache *c);

#endif
