#include "keyring.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYRING_HEADER "# patto keyring v1"

void pt_keyring_generate(pt_keyring *kr)
{
    memset(kr, 0, sizeof *kr);
    randombytes_buf(kr->blind, sizeof kr->blind);
    kr->n_epochs = 1;
    kr->epochs[0] = 1;
    randombytes_buf(kr->kek[0], PT_KEY_BYTES);
    randombytes_buf(kr->sign_seed, PT_KEY_BYTES);
}

void pt_keyring_sign_keypair(const pt_keyring *kr, uint8_t pk[32], uint8_t sk[64])
{
    crypto_sign_seed_keypair(pk, sk, kr->sign_seed);
}

static int decode_key(const char *b64, size_t len, uint8_t out[PT_KEY_BYTES])
{
    size_t bin_len = 0;
    if (sodium_base642bin(out, PT_KEY_BYTES, b64, len, NULL, &bin_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    return bin_len == PT_KEY_BYTES ? 0 : -1;
}

pt_result pt_keyring_parse(pt_keyring *kr, const char *text, size_t len, pt_err *err)
{
    pt_result rc = PT_OK;
    int have_blind = 0, have_sign = 0;
    size_t line_no = 0;
    memset(kr, 0, sizeof *kr);
    if (len > PT_KEYRING_TEXT_MAX)
        return pt_err_set(err, PT_ERR_INVALID, "keyring", "keyring is larger than %d bytes",
                          PT_KEYRING_TEXT_MAX);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        char line[256];
        size_t n = (size_t)(le - p);
        line_no++;
        if (n >= sizeof line) {
            rc = pt_err_set(err, PT_ERR_INVALID, "keyring", "keyring line %zu is too long",
                            line_no);
            goto out;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        if (n && line[n - 1] == '\r') line[--n] = '\0';
        p = nl ? nl + 1 : end;
        if (n == 0 || line[0] == '#') continue;

        char word[16], a[128], b[128];
        int k = sscanf(line, "%15s %127s %127s", word, a, b);
        if (k == 2 && strcmp(word, "blind") == 0) {
            if (decode_key(a, strlen(a), kr->blind) != 0) goto bad;
            have_blind = 1;
        } else if (k == 2 && strcmp(word, "sign") == 0) {
            if (decode_key(a, strlen(a), kr->sign_seed) != 0) goto bad;
            have_sign = 1;
        } else if (k == 3 && strcmp(word, "kek") == 0) {
            char *e = NULL;
            unsigned long ep = strtoul(a, &e, 10);
            if (!e || *e || ep == 0 || ep > 0xffffffffUL) goto bad;
            if (kr->n_epochs == PT_KEYRING_MAX_EPOCHS) goto bad;
            if (kr->n_epochs && kr->epochs[kr->n_epochs - 1] >= ep) goto bad;
            if (decode_key(b, strlen(b), kr->kek[kr->n_epochs]) != 0) goto bad;
            kr->epochs[kr->n_epochs++] = (uint32_t)ep;
        } else {
            goto bad;
        }
        sodium_memzero(line, sizeof line);
        sodium_memzero(a, sizeof a);
        sodium_memzero(b, sizeof b);
        continue;
    bad:
        sodium_memzero(line, sizeof line);
        sodium_memzero(a, sizeof a);
        sodium_memzero(b, sizeof b);
        rc = pt_err_set(err, PT_ERR_INVALID, "keyring",
                        "keyring line %zu is not 'blind <base64>', 'sign <base64>' or "
                        "'kek <epoch> <base64>' with epochs ascending",
                        line_no);
        goto out;
    }
    if (!have_blind || !have_sign || kr->n_epochs == 0)
        rc = pt_err_set(err, PT_ERR_INVALID, "keyring",
                        "keyring needs a 'blind' line, a 'sign' line and at least one 'kek' "
                        "line");
out:
    if (rc != PT_OK) pt_keyring_wipe(kr);
    return rc;
}

size_t pt_keyring_format(const pt_keyring *kr, char *out)
{
    char b64[sodium_base64_ENCODED_LEN(PT_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    size_t n = 0;
    n += (size_t)snprintf(out + n, PT_KEYRING_TEXT_MAX - n,
                          KEYRING_HEADER "\n# Keep secret and back it up apart from the database:"
                                         " without it nothing in the database decrypts.\n");
    sodium_bin2base64(b64, sizeof b64, kr->blind, PT_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
    n += (size_t)snprintf(out + n, PT_KEYRING_TEXT_MAX - n, "blind %s\n", b64);
    sodium_bin2base64(b64, sizeof b64, kr->sign_seed, PT_KEY_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    n += (size_t)snprintf(out + n, PT_KEYRING_TEXT_MAX - n, "sign %s\n", b64);
    for (uint32_t i = 0; i < kr->n_epochs; i++) {
        sodium_bin2base64(b64, sizeof b64, kr->kek[i], PT_KEY_BYTES,
                          sodium_base64_VARIANT_ORIGINAL);
        n += (size_t)snprintf(out + n, PT_KEYRING_TEXT_MAX - n, "kek %u %s\n", kr->epochs[i],
                              b64);
    }
    sodium_memzero(b64, sizeof b64);
    return n;
}

uint32_t pt_keyring_current_epoch(const pt_keyring *kr)
{
    return kr->n_epochs ? kr->epochs[kr->n_epochs - 1] : 0;
}

const uint8_t *pt_keyring_kek(const pt_keyring *kr, uint32_t epoch)
{
    for (uint32_t i = 0; i < kr->n_epochs; i++)
        if (kr->epochs[i] == epoch) return kr->kek[i];
    return NULL;
}

void pt_keyring_fingerprint(const pt_keyring *kr, char out[PT_SHA256_HEX])
{
    static const uint8_t label[] = "patto keyring fingerprint v1";
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, kr->blind, PT_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, label, sizeof label - 1);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, PT_SHA256_HEX, mac, sizeof mac);
}

void pt_keyring_wipe(pt_keyring *kr) { sodium_memzero(kr, sizeof *kr); }
