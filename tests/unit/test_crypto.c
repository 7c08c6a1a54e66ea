/* Unit tests for the vault primitives and the keyring (core/crypto.c,
 * core/keyring.c). */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/keyring.h"

static void setup(void) { cr_assert_eq(pt_crypto_init(), 0); }

TestSuite(crypto, .init = setup);

Test(crypto, seal_open_round_trip_and_binding)
{
    uint8_t key[PT_KEY_BYTES], subj[PT_ID_BYTES], other[PT_ID_BYTES];
    pt_random(key, sizeof key);
    pt_random(subj, sizeof subj);
    memcpy(other, subj, sizeof other);
    other[0] ^= 1;
    const char msg[] = "{\"name\":\"Mario\"}";
    uint8_t ct[sizeof msg + PT_SEAL_OVERHEAD], pt[sizeof msg];
    pt_seal(key, "subjects", "profile", subj, (const uint8_t *)msg, sizeof msg, ct);
    cr_assert_eq(pt_open(key, "subjects", "profile", subj, ct, sizeof ct, pt), PT_OK);
    cr_assert_eq(memcmp(pt, msg, sizeof msg), 0);
    /* moved to another subject, column or table: refused */
    cr_assert_eq(pt_open(key, "subjects", "profile", other, ct, sizeof ct, pt), PT_ERR_CRYPTO);
    cr_assert_eq(pt_open(key, "subjects", "email", subj, ct, sizeof ct, pt), PT_ERR_CRYPTO);
    cr_assert_eq(pt_open(key, "events", "profile", subj, ct, sizeof ct, pt), PT_ERR_CRYPTO);
    /* every single-bit flip is refused */
    for (size_t i = 0; i < sizeof ct; i++)
        for (int b = 0; b < 8; b++) {
            ct[i] ^= (uint8_t)(1u << b);
            cr_assert_eq(pt_open(key, "subjects", "profile", subj, ct, sizeof ct, pt),
                         PT_ERR_CRYPTO, "flip at byte %zu bit %d accepted", i, b);
            ct[i] ^= (uint8_t)(1u << b);
        }
    cr_assert_eq(pt_open(key, "subjects", "profile", subj, ct, PT_SEAL_OVERHEAD - 1, pt),
                 PT_ERR_CRYPTO);
}

Test(crypto, seal_is_randomised)
{
    uint8_t key[PT_KEY_BYTES] = {1}, subj[PT_ID_BYTES] = {2};
    uint8_t a[4 + PT_SEAL_OVERHEAD], b[4 + PT_SEAL_OVERHEAD];
    pt_seal(key, "t", "c", subj, (const uint8_t *)"abcd", 4, a);
    pt_seal(key, "t", "c", subj, (const uint8_t *)"abcd", 4, b);
    cr_assert_neq(memcmp(a, b, sizeof a), 0, "the same plaintext must not seal the same");
}

Test(crypto, key_wrap_binds_epoch_and_subject)
{
    uint8_t kek[PT_KEY_BYTES], dek[PT_KEY_BYTES], back[PT_KEY_BYTES], subj[PT_ID_BYTES];
    uint8_t w[PT_WRAPPED_KEY_BYTES];
    pt_random(kek, sizeof kek);
    pt_random(dek, sizeof dek);
    pt_random(subj, sizeof subj);
    pt_key_wrap(kek, 3, subj, dek, w);
    cr_assert_eq(pt_key_unwrap(kek, 3, subj, w, back), PT_OK);
    cr_assert_eq(memcmp(back, dek, sizeof dek), 0);
    cr_assert_eq(pt_key_unwrap(kek, 4, subj, w, back), PT_ERR_CRYPTO);
    subj[5] ^= 0x80;
    cr_assert_eq(pt_key_unwrap(kek, 3, subj, w, back), PT_ERR_CRYPTO);
}

Test(crypto, blind_index_separates_tenant_and_type)
{
    uint8_t k[PT_KEY_BYTES] = {7}, a[32], b[32], c[32], d[32];
    pt_blind_index(k, 1, 0, "a@b.it", 6, a);
    pt_blind_index(k, 1, 0, "a@b.it", 6, b);
    pt_blind_index(k, 2, 0, "a@b.it", 6, c);
    pt_blind_index(k, 1, 4, "a@b.it", 6, d);
    cr_assert_eq(memcmp(a, b, 32), 0, "deterministic");
    cr_assert_neq(memcmp(a, c, 32), 0, "tenants apart");
    cr_assert_neq(memcmp(a, d, 32), 0, "types apart");
}

Test(crypto, sha256_known_vector)
{
    char hex[PT_SHA256_HEX];
    pt_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(crypto, keyring_round_trip)
{
    pt_keyring kr, back;
    pt_err err;
    char text[PT_KEYRING_TEXT_MAX];
    pt_keyring_generate(&kr);
    size_t n = pt_keyring_format(&kr, text);
    cr_assert_eq(pt_keyring_parse(&back, text, n, &err), PT_OK, "%s", err.detail);
    cr_assert_eq(memcmp(&kr, &back, sizeof kr), 0);
    cr_assert_eq(pt_keyring_current_epoch(&back), 1);
    cr_assert_not_null(pt_keyring_kek(&back, 1));
    cr_assert_null(pt_keyring_kek(&back, 2));
    char f1[PT_SHA256_HEX], f2[PT_SHA256_HEX];
    pt_keyring_fingerprint(&kr, f1);
    pt_keyring_generate(&back);
    pt_keyring_fingerprint(&back, f2);
    cr_assert_str_neq(f1, f2);
}

Test(crypto, keyring_refuses_bad_text)
{
    pt_keyring kr;
    pt_err err;
#define K "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define SIGN "sign " K "\n"
    /* each case is valid but for one defect */
    const char *bad[] = {
        "",
        ("blind AAAA\n" SIGN "kek 1 " K "\n"),          /* short key */
        (SIGN "kek 1 " K "\n"),                         /* no blind */
        ("blind " K "\n" SIGN),                         /* no kek */
        ("blind " K "\nkek 1 " K "\n"),                 /* no sign */
        ("blind " K "\n" SIGN "kek 2 " K "\nkek 1 " K "\n"), /* epochs descending */
        ("blind " K "\n" SIGN "kek 0 " K "\n"),         /* epoch 0 */
        ("blind " K "\n" SIGN "kek 1 " K "\nbogus line\n"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(pt_keyring_parse(&kr, bad[i], strlen(bad[i]), &err), PT_ERR_INVALID,
                     "case %zu accepted", i);
    const char *good = "# c\r\nblind AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
                       "sign AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                       "kek 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nkek 7 "
                       "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    cr_assert_eq(pt_keyring_parse(&kr, good, strlen(good), &err), PT_OK, "%s", err.detail);
    cr_assert_eq(pt_keyring_current_epoch(&kr), 7);
    cr_assert_eq(pt_keyring_kek(&kr, 7)[0], 1);
    cr_assert_eq(kr.sign_seed[0], 2);
}

Test(crypto, constant_time_equal)
{
    cr_assert(pt_ct_equal("abcd", "abcd", 4));
    cr_assert_not(pt_ct_equal("abcd", "abce", 4));
}

Test(crypto, random_never_repeats_and_forks_apart)
{
    uint8_t a[32], b[32];
    pt_random(a, sizeof a);
    pt_random(b, sizeof b);
    cr_assert_neq(memcmp(a, b, 32), 0);
    /* crossing block boundaries and large requests */
    uint8_t big[5000] = {0};
    pt_random(big, sizeof big);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof big; i++) zeros += big[i] == 0;
    cr_assert_lt(zeros, 80, "about 20 zero bytes expected in 5000");
    /* a child must not replay the parent's stream */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        uint8_t c[32];
        pt_random(c, sizeof c);
        ssize_t w = write(fds[1], c, sizeof c);
        _exit(w == (ssize_t)sizeof c ? 0 : 1);
    }
    uint8_t mine[32], child[32];
    pt_random(mine, sizeof mine);
    cr_assert_eq(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    waitpid(pid, NULL, 0);
    cr_assert_neq(memcmp(mine, child, 32), 0, "parent and child drew the same bytes");
}

Test(crypto, evidence_digest_is_salted_by_the_data_key)
{
    uint8_t k1[PT_KEY_BYTES], k2[PT_KEY_BYTES], id[PT_ID_BYTES], salt[PT_EVIDENCE_SALT_BYTES];
    memset(k1, 1, sizeof k1);
    memset(k2, 2, sizeof k2);
    memset(id, 7, sizeof id);
    const char *ev = "{\"ip\":\"203.0.113.7\"}";
    char a[PT_SHA256_HEX], b[PT_SHA256_HEX], c[PT_SHA256_HEX], plain[PT_SHA256_HEX];
    pt_evidence_digest(k1, id, ev, strlen(ev), salt, a);
    pt_evidence_digest(k1, id, ev, strlen(ev), NULL, b);
    cr_assert_str_eq(a, b, "deterministic for one key and event");
    pt_evidence_digest(k2, id, ev, strlen(ev), NULL, c);
    cr_assert_str_neq(a, c, "another key, another digest: without the key it cannot be guessed");
    id[0] ^= 1;
    pt_evidence_digest(k1, id, ev, strlen(ev), NULL, c);
    cr_assert_str_neq(a, c, "per event");
    pt_sha256_hex(ev, strlen(ev), plain);
    cr_assert_str_neq(a, plain);
    /* the disclosed salt lets anyone holding the evidence re-check */
    uint8_t buf[64];
    memcpy(buf, salt, sizeof salt);
    memcpy(buf + sizeof salt, ev, strlen(ev));
    pt_sha256_hex(buf, sizeof salt + strlen(ev), c);
    cr_assert_str_eq(a, c);
}
