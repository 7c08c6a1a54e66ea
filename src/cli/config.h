/* config.h - settings for the CLI: flags over PATTO_* environment over a
 * config file (key = value lines) over defaults. */
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include <stddef.h>

#include "core/keyring.h"
#include "core/result.h"

typedef struct pt_config {
    char db[1024];
    char listen[256];
    unsigned threads;
    char keyring[1024]; /* file; "" = derived from db */
    size_t body_max;
    /* witnesses (service/witness.h): "" = none */
    char witness_url[2048];
    char witness_email[1024];
    char witness_from[256];
    char smtp_url[1024]; /* may hold user:password: never printed */
    unsigned witness_interval; /* seconds */
    /* erasure journal (service/erasure.c): "" = DB.erasures for SQLite,
     * none for PostgreSQL; "none" = none */
    char erasure_journal[1024];
} pt_config;

void pt_config_defaults(pt_config *c);
/* Applies PATTO_CONFIG (or path if given) then the environment. */
pt_result pt_config_load(pt_config *c, const char *path, pt_err *err);
/* Sets one key ("db", "listen", "threads", "keyring", "body_max", "witness_url",
 * "witness_email", "witness_from", "smtp_url", "witness_interval"). */
pt_result pt_config_set(pt_config *c, const char *key, const char *value, pt_err *err);
/* The keyring path for this config: explicit, or DB.keyring. */
void pt_config_keyring_path(const pt_config *c, char *out, size_t cap);
/* The erasure journal's path for this config, "" for none. */
void pt_config_erasure_journal_path(const pt_config *c, char *out, size_t cap);
/* Loads the keyring: from the file when given as a flag (flag_given),
 * else from PATTO_KEYRING_DATA if set, else from the keyring file. */
pt_result pt_config_keyring(const pt_config *c, pt_keyring *kr, int flag_given, pt_err *err);

#endif
