#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/crypto.h"
#include "service/witness.h"

void pt_config_defaults(pt_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->db, sizeof c->db, "patto.db");
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
    c->threads = 4;
    c->body_max = 64 * 1024;
    snprintf(c->witness_from, sizeof c->witness_from, "%s", PT_WITNESS_FROM_DEFAULT);
    c->witness_interval = PT_WITNESS_INTERVAL_DEFAULT;
}

pt_result pt_config_set(pt_config *c, const char *key, const char *value, pt_err *err)
{
    char *end = NULL;
    if (strcmp(key, "db") == 0) {
        if (strlen(value) >= sizeof c->db) goto toolong;
        snprintf(c->db, sizeof c->db, "%s", value);
    } else if (strcmp(key, "listen") == 0) {
        if (strlen(value) >= sizeof c->listen) goto toolong;
        snprintf(c->listen, sizeof c->listen, "%s", value);
    } else if (strcmp(key, "keyring") == 0) {
        if (strlen(value) >= sizeof c->keyring) goto toolong;
        snprintf(c->keyring, sizeof c->keyring, "%s", value);
    } else if (strcmp(key, "threads") == 0) {
        unsigned long v = strtoul(value, &end, 10);
        if (!*value || *end || v < 1 || v > 256)
            return pt_err_set(err, PT_ERR_INVALID, key, "threads must be 1 to 256");
        c->threads = (unsigned)v;
    } else if (strcmp(key, "body_max") == 0) {
        unsigned long v = strtoul(value, &end, 10);
        if (!*value || *end || v < 1024 || v > 16 * 1024 * 1024)
            return pt_err_set(err, PT_ERR_INVALID, key,
                              "body_max must be 1024 to 16777216 bytes");
        c->body_max = v;
    } else if (strcmp(key, "witness_url") == 0) {
        if (strlen(value) >= sizeof c->witness_url) goto toolong;
        snprintf(c->witness_url, sizeof c->witness_url, "%s", value);
    } else if (strcmp(key, "witness_email") == 0) {
        if (strlen(value) >= sizeof c->witness_email) goto toolong;
        snprintf(c->witness_email, sizeof c->witness_email, "%s", value);
    } else if (strcmp(key, "witness_from") == 0) {
        if (strlen(value) >= sizeof c->witness_from) goto toolong;
        snprintf(c->witness_from, sizeof c->witness_from, "%s", value);
    } else if (strcmp(key, "smtp_url") == 0) {
        if (strlen(value) >= sizeof c->smtp_url) goto toolong;
        snprintf(c->smtp_url, sizeof c->smtp_url, "%s", value);
    } else if (strcmp(key, "witness_interval") == 0) {
        unsigned long v = strtoul(value, &end, 10);
        if (!*value || *end || v < 1 || v > PT_WITNESS_INTERVAL_MAX)
            return pt_err_set(err, PT_ERR_INVALID, key,
                              "witness_interval must be 1 to %u seconds",
                              PT_WITNESS_INTERVAL_MAX);
        c->witness_interval = (unsigned)v;
    } else if (strcmp(key, "erasure_journal") == 0) {
        if (strlen(value) >= sizeof c->erasure_journal) goto toolong;
        snprintf(c->erasure_journal, sizeof c->erasure_journal, "%s", value);
    } else {
        return pt_err_set(err, PT_ERR_INVALID, key,
                          "unknown setting '%s' (known: db, listen, threads, keyring, body_max, "
                          "witness_url, witness_email, witness_from, smtp_url, witness_interval, "
                          "erasure_journal)",
                          key);
    }
    return PT_OK;
toolong:
    return pt_err_set(err, PT_ERR_INVALID, key, "%s is too long", key);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

pt_result pt_config_load(pt_config *c, const char *path, pt_err *err)
{
    if (!path) path = getenv("PATTO_CONFIG");
    if (path && *path) {
        FILE *f = fopen(path, "r");
        if (!f)
            return pt_err_set(err, PT_ERR_IO, "config", "cannot read config file %s: %s", path,
                              strerror(errno));
        char line[2048];
        int n = 0;
        while (fgets(line, sizeof line, f)) {
            n++;
            char *s = trim(line);
            if (!*s || *s == '#') continue;
            char *eq = strchr(s, '=');
            if (!eq) {
                fclose(f);
                return pt_err_set(err, PT_ERR_INVALID, "config",
                                  "%s line %d: expected 'key = value'", path, n);
            }
            *eq = '\0';
            pt_result rc = pt_config_set(c, trim(s), trim(eq + 1), err);
            if (rc != PT_OK) {
                fclose(f);
                return rc;
            }
        }
        fclose(f);
    }
    static const struct {
        const char *env, *key;
    } ENV[] = {{"PATTO_DB", "db"},
               {"PATTO_LISTEN", "listen"},
               {"PATTO_THREADS", "threads"},
               {"PATTO_KEYRING", "keyring"},
               {"PATTO_BODY_MAX", "body_max"},
               {"PATTO_WITNESS_URL", "witness_url"},
               {"PATTO_WITNESS_EMAIL", "witness_email"},
               {"PATTO_WITNESS_FROM", "witness_from"},
               {"PATTO_SMTP_URL", "smtp_url"},
               {"PATTO_WITNESS_INTERVAL", "witness_interval"},
               {"PATTO_ERASURE_JOURNAL", "erasure_journal"}};
    for (size_t i = 0; i < sizeof ENV / sizeof ENV[0]; i++) {
        const char *v = getenv(ENV[i].env);
        if (v && *v) {
            pt_result rc = pt_config_set(c, ENV[i].key, v, err);
            if (rc != PT_OK) return rc;
        }
    }
    return PT_OK;
}

static int db_is_postgres(const char *db)
{
    return strncmp(db, "postgres://", 11) == 0 || strncmp(db, "postgresql://", 13) == 0;
}

void pt_config_keyring_path(const pt_config *c, char *out, size_t cap)
{
    if (c->keyring[0]) {
        snprintf(out, cap, "%s", c->keyring);
        return;
    }
    /* a PostgreSQL database has no file to name the keyring after: "" */
    if (db_is_postgres(c->db)) {
        if (cap) out[0] = '\0';
        return;
    }
    const char *db = c->db;
    if (strncmp(db, "sqlite:", 7) == 0) db += 7;
    if (strncmp(db, "file:", 5) == 0) db += 5;
    snprintf(out, cap, "%s.keyring", db);
}

void pt_config_erasure_journal_path(const pt_config *c, char *out, size_t cap)
{
    if (cap) out[0] = '\0';
    if (strcmp(c->erasure_journal, "none") == 0) return;
    if (c->erasure_journal[0]) {
        snprintf(out, cap, "%s", c->erasure_journal);
        return;
    }
    /* a PostgreSQL database has no file to put it next to: none unless set */
    if (db_is_postgres(c->db)) return;
    const char *db = c->db;
    if (strncmp(db, "sqlite:", 7) == 0) db += 7;
    if (strncmp(db, "file:", 5) == 0) db += 5;
    snprintf(out, cap, "%s.erasures", db);
}

pt_result pt_config_keyring(const pt_config *c, pt_keyring *kr, int flag_given, pt_err *err)
{
    const char *data = getenv("PATTO_KEYRING_DATA");
    if (!flag_given && data && *data) return pt_keyring_parse(kr, data, strlen(data), err);
    char path[1100];
    pt_config_keyring_path(c, path, sizeof path);
    if (!path[0])
        return pt_err_set(err, PT_ERR_INVALID, "keyring",
                          "a PostgreSQL database needs its keyring named: give --keyring FILE, "
                          "PATTO_KEYRING or PATTO_KEYRING_DATA");
    FILE *f = fopen(path, "r");
    if (!f)
        return pt_err_set(err, PT_ERR_IO, "keyring",
                          "cannot read the keyring %s: %s (give --keyring FILE, PATTO_KEYRING or "
                          "PATTO_KEYRING_DATA; `patto init` creates it)",
                          path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "patto: warning: keyring %s is readable by others; chmod 600 it\n", path);
    char buf[PT_KEYRING_TEXT_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    pt_result rc = n > PT_KEYRING_TEXT_MAX
                       ? pt_err_set(err, PT_ERR_INVALID, "keyring", "keyring file too large")
                       : pt_keyring_parse(kr, buf, n, err);
    pt_wipe(buf, sizeof buf);
    return rc;
}
