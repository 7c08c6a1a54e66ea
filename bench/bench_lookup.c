/* bench_lookup.c - identifier look-up in process (issue 4: >= 1M/s):
 * pt_vault_find (the keyed blind index of the normalised identifier, then
 * the identifiers index) for random known e-mails, one thread, store warm,
 * vs the ceiling: the same indexed read with the blind index precomputed
 * (the storage alone), measured in the same run.
 *
 * usage: bench_lookup DB KEYRING PEOPLE LOOKUPS
 * DB holds tenant 1 with people lapsedN@example.com, N < PEOPLE (as
 * bench/anonymise.sh imports them); KEYRING is its keyring file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/keyring.h"
#include "service/app.h"
#include "service/vault.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_lookup DB KEYRING PEOPLE LOOKUPS\n");
        return 2;
    }
    long people = strtol(argv[3], NULL, 10), n = strtol(argv[4], NULL, 10);
    if (people < 1 || n < 1) return 2;
    if (pt_crypto_init() != 0) return 1;
    FILE *f = fopen(argv[2], "rb");
    static char text[PT_KEYRING_TEXT_MAX];
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    pt_keyring kr;
    pt_err e;
    if (pt_keyring_parse(&kr, text, len, &e) != PT_OK) {
        fprintf(stderr, "bench_lookup: keyring: %s\n", e.detail);
        return 1;
    }
    pt_app *app;
    pt_app_config cfg = {.db_url = argv[1], .keyring = &kr, .readers = 1};
    if (pt_app_open(&cfg, &app, &e) != PT_OK) {
        fprintf(stderr, "bench_lookup: %s\n", e.detail);
        return 1;
    }
    pt_conn *c = pt_app_reader(app, &e);
    pt_conn_tune(c, PT_CONN_WRITER); /* a warm cache for the index, as a serving node has */
    uint8_t sid[PT_ID_BYTES];
    long found = 0;
    double best = 1e9, best_ceil = 1e9;
    for (int round = 0; round < 3; round++) {
        rs = 0x9e3779b97f4a7c15ull;
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            pt_ident_in id = {.type = 0};
            id.len = (size_t)snprintf(id.norm, sizeof id.norm, "lapsed%lu@example.com",
                                      (unsigned long)(rnd() % (uint64_t)people));
            found += pt_vault_find(app, c, 1, &id, sid) == PT_OK;
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        /* the ceiling: the same reads, blind indexes computed beforehand */
        rs = 0x9e3779b97f4a7c15ull;
        uint8_t(*blind)[PT_BLIND_BYTES] = malloc((size_t)n * PT_BLIND_BYTES);
        for (long i = 0; i < n; i++) {
            char norm[64];
            size_t l = (size_t)snprintf(norm, sizeof norm, "lapsed%lu@example.com",
                                        (unsigned long)(rnd() % (uint64_t)people));
            pt_blind_index(pt_app_keyring(app)->blind, 1, 0, norm, l, blind[i]);
        }
        t0 = now_s();
        for (long i = 0; i < n; i++) found += pt_db_ident_lookup(c, 1, 0, blind[i], sid) == PT_OK;
        dt = now_s() - t0;
        if (dt < best_ceil) best_ceil = dt;
        free(blind);
    }
    pt_app_reader_release(app, c);
    pt_app_close(app);
    pt_keyring_wipe(&kr);
    printf("RESULT lookup lookups=%ld found=%ld per_s=%.0f ceiling_per_s=%.0f ratio=%.2f\n", n,
           found / 6, (double)n / best, (double)n / best_ceil, best_ceil / best);
    return 0;
}
