/* bench_check.c - in-process `check` throughput on one thread.
 *
 * Fills a pt_cache with N random subjects x 3 purposes (the demo tenant's
 * processing, marketing, profiling), then times pt_cache_get +
 * pt_policy_check over a stream of random subject ids. The ceiling is the
 * same loop over a plain array of the same records, indexed directly (no
 * hashing, no locks, no copy): what the memory system allows.
 *
 * To show where the gap comes from, three variants of the plain-array loop
 * add the cache's costs one at a time: a per-shard rwlock taken around
 * each look-up (with the state copied out under it), the states held out
 * of line behind a pointer, and both. What remains is the hash probe.
 *
 * Every round runs each loop for SECONDS_PER_ROUND; rates are per second
 * of the thread's CPU time and the best round of each loop is kept, since
 * the machine is shared and noisy. Also reports the growth
 * of VmRSS caused by filling the cache.
 *
 * usage: bench_check [SUBJECTS [SECONDS_PER_ROUND [ROUNDS]]]
 * Prints human-readable lines, then one "RESULT key=value ..." line. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/policy.h"
#include "service/cache.h"

#define PURPOSES 3
#define TENANT 1u
#define QUERIES (1u << 20) /* power of two: the query stream is cycled */
#define BATCH 4096u        /* checks between two looks at the clock */
#define MAX_CHECKS_PER_ROUND 2000000000ull

typedef struct query {
    uint8_t id[PT_ID_BYTES];
    uint32_t idx;     /* the subject's slot in the plain array */
    uint16_t purpose; /* purpose_idx */
    uint16_t pad;
} query;

/* The same record the cache keeps, laid out flat. */
typedef struct rec {
    uint8_t id[PT_ID_BYTES];
    uint32_t tenant;
    uint8_t erased;
    uint8_t n;
    pt_consent_state st[PURPOSES];
} rec;

/* The cache's layout without its hash table: a 32-byte entry pointing to
 * a separately allocated array of states. */
typedef struct rec_ool {
    uint8_t id[PT_ID_BYTES];
    uint32_t tenant;
    uint8_t erased;
    uint8_t n;
    pt_consent_state *st;
} rec_ool;

#define SHARDS 256

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: time the scheduler gives to other processes on
 * a shared machine is not counted against the loop. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* VmRSS of this process in KiB, or -1. */
static long vm_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* The demo tenant's consent purposes (tenants.c): validity and channels. */
static void make_rules(pt_purpose_rule r[PURPOSES])
{
    memset(r, 0, sizeof(pt_purpose_rule) * PURPOSES);
    static const uint32_t days[PURPOSES] = {730, 730, 365};
    static const uint8_t ch[PURPOSES] = {PT_CH_ALL, PT_CH_EMAIL | PT_CH_SMS | PT_CH_PHONE | PT_CH_POST,
                                         PT_CH_WEB | PT_CH_APP | PT_CH_EMAIL};
    for (int i = 0; i < PURPOSES; i++) {
        r[i].basis = PT_BASIS_CONSENT;
        r[i].validity_days = days[i];
        r[i].renew_before_days = 30;
        r[i].channels = ch[i];
        r[i].revision = 1;
    }
}

/* A plausible state: mostly granted within the last year, some withdrawn
 * or denied, so that the check takes its different branches. */
static void make_state(const pt_purpose_rule *rules, uint16_t p, int64_t now, pt_consent_state *st)
{
    memset(st, 0, sizeof *st);
    uint64_t r = rng();
    st->purpose_idx = p;
    st->revision = 1;
    st->decided_at = now - (int64_t)(r % (365ull * PT_MS_PER_DAY));
    unsigned kind = (unsigned)((r >> 40) % 10);
    if (kind < 8) {
        st->state = PT_ST_GRANTED;
        st->channels = rules[p].channels;
        st->granted_at = st->decided_at;
        st->expires_at = st->decided_at + (int64_t)rules[p].validity_days * PT_MS_PER_DAY;
    } else {
        st->state = kind == 8 ? PT_ST_WITHDRAWN : PT_ST_DENIED;
    }
    uint64_t e0 = rng(), e1 = rng();
    memcpy(st->event, &e0, 8);
    memcpy(st->event + 8, &e1, 8);
}

static volatile uint64_t sink;

static uint64_t loop_cache(pt_cache *c, const query *q, const pt_purpose_rule *rules, int64_t now,
                           uint64_t n)
{
    uint64_t allowed = 0;
    for (uint64_t k = 0; k < n; k++) {
        const query *x = &q[k & (QUERIES - 1)];
        pt_cache_hit h;
        pt_cache_get(c, x->id, x->purpose, &h);
        pt_check_out o = pt_policy_check(&rules[x->purpose], h.has_state ? &h.st : NULL,
                                         h.known && h.tenant == TENANT, h.erased, 0, now);
        allowed += o.allowed;
    }
    return allowed;
}

static uint64_t loop_array(const rec *arr, const query *q, const pt_purpose_rule *rules,
                           int64_t now, uint64_t n)
{
    uint64_t allowed = 0;
    for (uint64_t k = 0; k < n; k++) {
        const query *x = &q[k & (QUERIES - 1)];
        const rec *r = &arr[x->idx];
        bool known = memcmp(r->id, x->id, PT_ID_BYTES) == 0 && r->tenant == TENANT;
        const pt_consent_state *st = NULL;
        for (uint8_t i = 0; i < r->n; i++)
            if (r->st[i].purpose_idx == x->purpose) {
                st = &r->st[i];
                break;
            }
        pt_check_out o = pt_policy_check(&rules[x->purpose], st, known, r->erased, 0, now);
        allowed += o.allowed;
    }
    return allowed;
}

/* The plain-array loop with the cache's costs added one by one: locks
 * (NULL: none) and out-of-line states (ool NULL: inline). */
static uint64_t loop_variant(const rec *arr, const rec_ool *ool, pthread_rwlock_t *locks,
                             const query *q, const pt_purpose_rule *rules, int64_t now,
                             uint64_t n)
{
    uint64_t allowed = 0;
    for (uint64_t k = 0; k < n; k++) {
        const query *x = &q[k & (QUERIES - 1)];
        pthread_rwlock_t *l = locks ? &locks[x->id[0]] : NULL;
        bool known, erased;
        const pt_consent_state *st = NULL;
        pt_consent_state copy;
        if (l) pthread_rwlock_rdlock(l);
        if (ool) {
            const rec_ool *r = &ool[x->idx];
            known = memcmp(r->id, x->id, PT_ID_BYTES) == 0 && r->tenant == TENANT;
            erased = r->erased;
            for (uint8_t i = 0; i < r->n; i++)
                if (r->st[i].purpose_idx == x->purpose) {
                    st = &r->st[i];
                    break;
                }
        } else {
            const rec *r = &arr[x->idx];
            known = memcmp(r->id, x->id, PT_ID_BYTES) == 0 && r->tenant == TENANT;
            erased = r->erased;
            for (uint8_t i = 0; i < r->n; i++)
                if (r->st[i].purpose_idx == x->purpose) {
                    st = &r->st[i];
                    break;
                }
        }
        if (st) { /* copied out under the lock, as pt_cache_get does */
            copy = *st;
            st = &copy;
        }
        if (l) pthread_rwlock_unlock(l);
        pt_check_out o = pt_policy_check(&rules[x->purpose], st, known, erased, 0, now);
        allowed += o.allowed;
    }
    return allowed;
}

typedef struct variant {
    const rec_ool *ool;
    pthread_rwlock_t *locks;
} variant;

/* Runs one timed round: batches of BATCH checks until `secs` of wall time
 * have passed or MAX_CHECKS_PER_ROUND are done. Returns checks per second
 * of this thread's CPU time. */
static double round_rate(int which, pt_cache *c, const rec *arr, const variant *v,
                         const query *q, const pt_purpose_rule *rules, double secs)
{
    uint64_t done = 0, acc = 0;
    double t0 = now_s(), c0 = cpu_s(), t;
    do {
        /* `now` is read once per batch in both loops: the clock is not
         * what is measured */
        int64_t now = wall_ms();
        const query *qb = q + (done & (QUERIES - 1));
        if (which == 2)
            acc += loop_variant(arr, v->ool, v->locks, qb, rules, now, BATCH);
        else if (which == 1)
            acc += loop_array(arr, qb, rules, now, BATCH);
        else
            acc += loop_cache(c, qb, rules, now, BATCH);
        done += BATCH;
        t = now_s() - t0;
    } while (t < secs && done < MAX_CHECKS_PER_ROUND);
    sink += acc;
    double cpu = cpu_s() - c0;
    return (double)done / (cpu > 0 ? cpu : t);
}

int main(int argc, char **argv)
{
    long nsub = argc > 1 ? atol(argv[1]) : 1000000;
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    if (nsub < 1 || nsub > 100000000 || !(secs > 0 && secs <= 60) || rounds < 1 || rounds > 20) {
        fprintf(stderr, "usage: bench_check [SUBJECTS (1..1e8) [SECONDS_PER_ROUND (<=60) [ROUNDS (1..20)]]]\n");
        return 2;
    }
    size_t n = (size_t)nsub;
    pt_purpose_rule rules[PURPOSES];
    make_rules(rules);
    int64_t now = wall_ms();

    /* Everything but the cache is allocated and touched before the first
     * RSS reading, so that the difference is the cache alone. */
    rec *arr = calloc(n, sizeof *arr);
    query *q = calloc(QUERIES, sizeof *q);
    if (!arr || !q) {
        fprintf(stderr, "bench_check: out of memory\n");
        return 3;
    }
    for (size_t i = 0; i < n; i++) {
        rec *r = &arr[i];
        uint64_t a = rng(), b = rng();
        memcpy(r->id, &a, 8);
        memcpy(r->id + 8, &b, 8);
        r->tenant = TENANT;
        r->erased = (rng() % 1000) == 0; /* a few erased subjects */
        r->n = PURPOSES;
        for (uint16_t p = 0; p < PURPOSES; p++) make_state(rules, p, now, &r->st[p]);
    }
    for (uint32_t k = 0; k < QUERIES; k++) {
        uint64_t r = rng();
        q[k].idx = (uint32_t)(r % n);
        q[k].purpose = (uint16_t)((r >> 32) % PURPOSES);
        memcpy(q[k].id, arr[q[k].idx].id, PT_ID_BYTES);
    }

    long rss0 = vm_rss_kb();
    double tf = now_s();
    pt_cache *c = pt_cache_new();
    if (!c) {
        fprintf(stderr, "bench_check: pt_cache_new failed\n");
        return 3;
    }
    for (size_t i = 0; i < n; i++) {
        const rec *r = &arr[i];
        if (pt_cache_subject_put(c, r->id, r->tenant, r->erased) != 0) {
            fprintf(stderr, "bench_check: pt_cache_subject_put failed at %zu\n", i);
            return 3;
        }
        for (int p = 0; p < PURPOSES; p++)
            if (pt_cache_state_put(c, r->id, &r->st[p]) != 0) {
                fprintf(stderr, "bench_check: pt_cache_state_put failed at %zu\n", i);
                return 3;
            }
    }
    double fill_s = now_s() - tf;
    long rss1 = vm_rss_kb();
    if (pt_cache_subjects(c) != n) {
        fprintf(stderr, "bench_check: the cache holds %zu subjects, expected %zu\n",
                pt_cache_subjects(c), n);
        return 3;
    }

    /* Same answers from both loops over one pass of the query stream. */
    uint64_t a1 = loop_cache(c, q, rules, now, QUERIES);
    uint64_t a2 = loop_array(arr, q, rules, now, QUERIES);
    if (a1 != a2) {
        fprintf(stderr, "bench_check: the cache and the array disagree (%llu vs %llu allowed)\n",
                (unsigned long long)a1, (unsigned long long)a2);
        return 3;
    }

    /* The array loop plus the cache's costs one by one, to show where the
     * gap comes from. */
    rec_ool *ool = calloc(n, sizeof *ool);
    pthread_rwlock_t *locks = calloc(SHARDS, sizeof *locks);
    if (!ool || !locks) {
        fprintf(stderr, "bench_check: out of memory\n");
        return 3;
    }
    for (int i = 0; i < SHARDS; i++) pthread_rwlock_init(&locks[i], NULL);
    for (size_t i = 0; i < n; i++) {
        memcpy(ool[i].id, arr[i].id, PT_ID_BYTES);
        ool[i].tenant = arr[i].tenant;
        ool[i].erased = arr[i].erased;
        ool[i].n = arr[i].n;
        ool[i].st = malloc(sizeof arr[i].st);
        if (!ool[i].st) {
            fprintf(stderr, "bench_check: out of memory\n");
            return 3;
        }
        memcpy(ool[i].st, arr[i].st, sizeof arr[i].st);
    }
    static const char *const VNAMES[3] = {"plain array + per-shard rwlock + copy-out",
                                          "plain array, states out of line",
                                          "plain array, states out of line + rwlock + copy-out"};
    const variant vs[3] = {{NULL, locks}, {ool, NULL}, {ool, locks}};
    for (int k = 0; k < 3; k++)
        if (loop_variant(arr, vs[k].ool, vs[k].locks, q, rules, now, QUERIES) != a1) {
            fprintf(stderr, "bench_check: variant %d disagrees with the cache\n", k);
            return 3;
        }

    /* Each round runs every loop once; the best round of each is kept. */
    double best_cache = 0, best_array = 0, vrate[3] = {0, 0, 0};
    for (int r = 0; r < rounds; r++) {
        double ra = round_rate(1, c, arr, NULL, q, rules, secs);
        double rc = round_rate(0, c, arr, NULL, q, rules, secs);
        printf("  round %d: cache %.0f checks/s, plain array %.0f checks/s\n", r + 1, rc, ra);
        if (rc > best_cache) best_cache = rc;
        if (ra > best_array) best_array = ra;
        for (int k = 0; k < 3; k++) {
            double rv = round_rate(2, c, arr, &vs[k], q, rules, secs);
            if (rv > vrate[k]) vrate[k] = rv;
        }
    }

    double growth_kb = (double)(rss1 - rss0);
    printf("cache fill: %zu subjects x %d purposes in %.2f s\n", n, PURPOSES, fill_s);
    printf("cache RSS growth: %.1f MiB (%.0f bytes/subject)\n", growth_kb / 1024.0,
           growth_kb * 1024.0 / (double)n);
    printf("check (pt_cache_get + pt_policy_check, 1 thread): %.0f checks/s (per CPU second, best of %d)\n",
           best_cache, rounds);
    printf("ceiling (plain array, same loop): %.0f checks/s; ratio %.2f\n", best_array,
           best_array > 0 ? best_cache / best_array : 0.0);
    printf("where the gap goes (best of %d rounds each, same query stream):\n", rounds);
    for (int k = 0; k < 3; k++)
        printf("  %-52s %10.0f checks/s (%.2f of the plain array)\n", VNAMES[k], vrate[k],
               best_array > 0 ? vrate[k] / best_array : 0.0);
    printf("  %-52s %10.0f checks/s (%.2f)\n", "pt_cache (hash probe, locks, out-of-line states)",
           best_cache, best_array > 0 ? best_cache / best_array : 0.0);
    printf("RESULT check_per_s=%.0f ceiling_per_s=%.0f ratio=%.3f rss_growth_kb=%ld "
           "bytes_per_subject=%.0f subjects=%zu\n",
           best_cache, best_array, best_array > 0 ? best_cache / best_array : 0.0, rss1 - rss0,
           growth_kb * 1024.0 / (double)n, n);
    for (size_t i = 0; i < n; i++) free(ool[i].st);
    for (int i = 0; i < SHARDS; i++) pthread_rwlock_destroy(&locks[i]);
    free(locks);
    free(ool);
    pt_cache_free(c);
    free(q);
    free(arr);
    return 0;
}
