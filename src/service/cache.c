#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 256
#define INITIAL_SLOTS 64
#define ALIAS 2
#define ALIAS_HOPS 16 /* A merged into B merged into C: a chain, followed at most this far */

typedef struct entry {
    uint8_t id[PT_ID_BYTES];
    uint32_t tenant;
    uint8_t used; /* 0 free, 1 a subject, ALIAS a merged id: states holds the survivor's id */
    uint8_t erased;
    uint8_t n; /* states in use */
    uint8_t cap;
    pt_consent_state *states;
} entry;

typedef struct shard {
    pthread_rwlock_t lock;
    entry *slots;
    size_t mask; /* slots - 1, power of two */
    size_t count;
} shard;

struct pt_cache {
    shard shards[SHARDS];
};

/* Ids end in 64 random bits (they start with the creation time, see
 * pt_ordered_id), so those bytes are already a good hash: byte 15 picks
 * the shard, bytes 8..15 the slot. */
#define SHARD_OF(id) ((id)[PT_ID_BYTES - 1])
static size_t slot_of(const uint8_t id[PT_ID_BYTES], size_t mask)
{
    uint64_t h;
    memcpy(&h, id + 8, sizeof h);
    return (size_t)h & mask;
}

pt_cache *pt_cache_new(void)
{
    pt_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        pthread_rwlock_init(&s->lock, NULL);
        s->slots = calloc(INITIAL_SLOTS, sizeof(entry));
        if (!s->slots) {
            pt_cache_free(c);
            return NULL;
        }
        s->mask = INITIAL_SLOTS - 1;
    }
    return c;
}

void pt_cache_free(pt_cache *c)
{
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        if (s->slots)
            for (size_t j = 0; j <= s->mask; j++) free(s->slots[j].states);
        free(s->slots);
        pthread_rwlock_destroy(&s->lock);
    }
    free(c);
}

static entry *find(shard *s, const uint8_t id[PT_ID_BYTES])
{
    for (size_t i = slot_of(id, s->mask);; i = (i + 1) & s->mask) {
        entry *e = &s->slots[i];
        if (!e->used) return NULL;
        if (memcmp(e->id, id, PT_ID_BYTES) == 0) return e;
    }
}

static entry *insert_slot(entry *slots, size_t mask, const uint8_t id[PT_ID_BYTES])
{
    for (size_t i = slot_of(id, mask);; i = (i + 1) & mask)
        if (!slots[i].used) return &slots[i];
}

static int grow(shard *s)
{
    size_t nmask = (s->mask << 1) | 1;
    entry *ns = calloc(nmask + 1, sizeof(entry));
    if (!ns) return -1;
    for (size_t i = 0; i <= s->mask; i++)
        if (s->slots[i].used) *insert_slot(ns, nmask, s->slots[i].id) = s->slots[i];
    free(s->slots);
    s->slots = ns;
    s->mask = nmask;
    return 0;
}

int pt_cache_subject_put(pt_cache *c, const uint8_t id[PT_ID_BYTES], uint32_t tenant, bool erased)
{
    shard *s = &c->shards[SHARD_OF(id)];
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    entry *e = find(s, id);
    if (!e) {
        /* keep the load under 3/4 so probes stay short */
        if ((s->count + 1) * 4 > (s->mask + 1) * 3 && grow(s) != 0) {
            rc = -1;
            goto out;
        }
        e = insert_slot(s->slots, s->mask, id);
        memcpy(e->id, id, PT_ID_BYTES);
        e->used = 1;
        s->count++;
    }
    e->tenant = tenant;
    e->erased = erased;
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int pt_cache_state_put(pt_cache *c, const uint8_t id[PT_ID_BYTES], const pt_consent_state *st)
{
    shard *s = &c->shards[SHARD_OF(id)];
    int rc = -1;
    pthread_rwlock_wrlock(&s->lock);
    entry *e = find(s, id);
    if (!e) goto out;
    if (e->used == ALIAS) { /* its consents moved to the survivor */
        rc = 0;
        goto out;
    }
    for (uint8_t i = 0; i < e->n; i++)
        if (e->states[i].purpose_idx == st->purpose_idx) {
            e->states[i] = *st;
            rc = 0;
            goto out;
        }
    if (e->n == e->cap) {
        if (e->cap == 255) goto out;
        /* grow by one: most subjects hold 1..5 purposes and memory matters
         * more than the rare realloc */
        uint8_t ncap = (uint8_t)(e->cap + 1);
        pt_consent_state *ns = realloc(e->states, ncap * sizeof *ns);
        if (!ns) goto out;
        e->states = ns;
        e->cap = ncap;
    }
    e->states[e->n++] = *st;
    rc = 0;
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

static void fill_hit(const entry *e, uint16_t purpose_idx, pt_cache_hit *out)
{
    out->known = true;
    out->erased = e->erased;
    out->tenant = e->tenant;
    for (uint8_t i = 0; i < e->n; i++)
        if (e->states[i].purpose_idx == purpose_idx) {
            out->st = e->states[i];
            out->has_state = true;
            break;
        }
}

void pt_cache_get(pt_cache *c, const uint8_t id0[PT_ID_BYTES], uint16_t purpose_idx,
                  pt_cache_hit *out)
{
    uint8_t id[PT_ID_BYTES];
    memcpy(id, id0, PT_ID_BYTES);
    memset(out, 0, sizeof *out);
    for (int hop = 0; hop <= ALIAS_HOPS; hop++) {
        shard *s = &c->shards[SHARD_OF(id)];
        pthread_rwlock_rdlock(&s->lock);
        entry *e = find(s, id);
        if (e && e->used == ALIAS && hop < ALIAS_HOPS) {
            /* a merged id answers as its survivor */
            memcpy(id, e->states, PT_ID_BYTES);
            pthread_rwlock_unlock(&s->lock);
            continue;
        }
        if (e && e->used != ALIAS) fill_hit(e, purpose_idx, out);
        pthread_rwlock_unlock(&s->lock);
        return;
    }
}

int pt_cache_alias_put(pt_cache *c, const uint8_t id[PT_ID_BYTES], const uint8_t to[PT_ID_BYTES],
                       uint32_t tenant)
{
    shard *s = &c->shards[SHARD_OF(id)];
    uint8_t *target = malloc(PT_ID_BYTES);
    if (!target) return -1;
    memcpy(target, to, PT_ID_BYTES);
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    entry *e = find(s, id);
    if (!e) {
        if ((s->count + 1) * 4 > (s->mask + 1) * 3 && grow(s) != 0) {
            free(target);
            rc = -1;
            goto out;
        }
        e = insert_slot(s->slots, s->mask, id);
        memcpy(e->id, id, PT_ID_BYTES);
        s->count++;
    }
    free(e->states);
    e->used = ALIAS;
    e->tenant = tenant;
    e->erased = 0;
    e->n = e->cap = 0;
    e->states = (pt_consent_state *)(void *)target;
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

size_t pt_cache_subjects(pt_cache *c)
{
    size_t n = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_rwlock_rdlock(&c->shards[i].lock);
        n += c->shards[i].count;
        pthread_rwlock_unlock(&c->shards[i].lock);
    }
    return n;
}
