/* store.c - routes the storage interface to the backend that owns the
 * url (postgres:// or postgresql:// to PostgreSQL, sqlite: or a path to
 * SQLite), and the record helpers shared by every backend. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static const pt_store_ops *const BACKENDS[] = {&pt_postgres_ops, &pt_sqlite_ops};

pt_result pt_store_open(const char *url, int create, pt_store **out, pt_err *err)
{
    if (!url || !*url) return pt_err_set(err, PT_ERR_INVALID, "db", "no database given");
    for (size_t i = 0; i < sizeof BACKENDS / sizeof BACKENDS[0]; i++)
        if (BACKENDS[i]->accepts(url)) return BACKENDS[i]->store_open(url, create, out, err);
    return pt_err_set(err, PT_ERR_INVALID, "db",
                      "no storage backend for this database url (use a file path, sqlite:PATH or "
                      "postgres://...)");
}

int64_t pt_db_changes(pt_conn *c)
{
    return c->ops->changes ? c->ops->changes(c) : -1;
}

void pt_conn_tune(pt_conn *c, pt_conn_role role)
{
    if (c && c->ops->conn_tune) c->ops->conn_tune(c, role);
}

void pt_notice_rec_clear(pt_notice_rec *n)
{
    if (!n) return;
    free(n->text);
    n->text = NULL;
    n->text_len = 0;
}

void pt_subject_rec_clear(pt_subject_rec *s)
{
    if (!s) return;
    free(s->profile);
    s->profile = NULL;
    s->profile_len = 0;
}

void pt_store_close(pt_store *s)
{
    if (!s) return;
    s->ops->store_close(s);
}

int pt_store_schema_version(pt_store *s)
{
    return s->ops->store_schema_version(s);
}

pt_result pt_conn_open(pt_store *s, pt_conn **out, pt_err *err)
{
    return s->ops->conn_open(s, out, err);
}

void pt_conn_close(pt_conn *c)
{
    if (!c) return;
    c->ops->conn_close(c);
}

pt_result pt_tx_begin(pt_conn *c, pt_err *err)
{
    return c->ops->tx_begin(c, err);
}

pt_result pt_tx_commit(pt_conn *c, pt_err *err)
{
    return c->ops->tx_commit(c, err);
}

void pt_tx_rollback(pt_conn *c)
{
    c->ops->tx_rollback(c);
}

pt_result pt_tx_savepoint(pt_conn *c, pt_err *err)
{
    return c->ops->tx_savepoint(c, err);
}

pt_result pt_tx_release(pt_conn *c, pt_err *err)
{
    return c->ops->tx_release(c, err);
}

void pt_tx_rollback_to(pt_conn *c)
{
    c->ops->tx_rollback_to(c);
}

pt_result pt_db_data_version(pt_conn *c, int64_t *out)
{
    return c->ops->db_data_version(c, out);
}

pt_result pt_db_meta_get(pt_conn *c, const char *key, char *value, size_t cap)
{
    return c->ops->db_meta_get(c, key, value, cap);
}

pt_result pt_db_meta_set(pt_conn *c, const char *key, const char *value)
{
    return c->ops->db_meta_set(c, key, value);
}

pt_result pt_db_tenant_insert(pt_conn *c, pt_tenant_rec *r, pt_err *err)
{
    return c->ops->db_tenant_insert(c, r, err);
}

pt_result pt_db_tenant_by_name(pt_conn *c, const char *name, pt_tenant_rec *out)
{
    return c->ops->db_tenant_by_name(c, name, out);
}

pt_result pt_db_tenant_by_id(pt_conn *c, uint32_t id, pt_tenant_rec *out)
{
    return c->ops->db_tenant_by_id(c, id, out);
}

pt_result pt_db_tenant_list(pt_conn *c, pt_tenant_cb cb, void *ctx)
{
    return c->ops->db_tenant_list(c, cb, ctx);
}

pt_result pt_db_key_insert(pt_conn *c, const pt_key_rec *r, pt_err *err)
{
    return c->ops->db_key_insert(c, r, err);
}

pt_result pt_db_key_list(pt_conn *c, uint32_t tenant, pt_key_cb cb, void *ctx)
{
    return c->ops->db_key_list(c, tenant, cb, ctx);
}

pt_result pt_db_key_revoke(pt_conn *c, uint32_t tenant, const uint8_t id[PT_ID_BYTES], int64_t at)
{
    return c->ops->db_key_revoke(c, tenant, id, at);
}

pt_result pt_db_purpose_put(pt_conn *c, const pt_purpose_rec *r, pt_err *err)
{
    return c->ops->db_purpose_put(c, r, err);
}

pt_result pt_db_purpose_get(pt_conn *c, uint32_t tenant, const char *name, pt_purpose_rec *out)
{
    return c->ops->db_purpose_get(c, tenant, name, out);
}

pt_result pt_db_purpose_list(pt_conn *c, uint32_t tenant, pt_purpose_cb cb, void *ctx)
{
    return c->ops->db_purpose_list(c, tenant, cb, ctx);
}

pt_result pt_db_notice_insert(pt_conn *c, const pt_notice_rec *r, pt_err *err)
{
    return c->ops->db_notice_insert(c, r, err);
}

pt_result pt_db_notice_get(pt_conn *c, uint32_t tenant, const char *notice, const char *version, pt_notice_rec *out)
{
    return c->ops->db_notice_get(c, tenant, notice, version, out);
}

pt_result pt_db_notice_list(pt_conn *c, uint32_t tenant, pt_notice_cb cb, void *ctx)
{
    return c->ops->db_notice_list(c, tenant, cb, ctx);
}

pt_result pt_db_subject_insert(pt_conn *c, pt_subject_rec *r, pt_err *err)
{
    return c->ops->db_subject_insert(c, r, err);
}

pt_result pt_db_subject_get(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out)
{
    return c->ops->db_subject_get(c, id, out);
}

pt_result pt_db_subject_update_profile(pt_conn *c, const uint8_t id[PT_ID_BYTES], const uint8_t *profile, size_t len, int64_t at)
{
    return c->ops->db_subject_update_profile(c, id, profile, len, at);
}

pt_result pt_db_subject_scan(pt_conn *c, int64_t after_row, pt_subject_cb cb, void *ctx)
{
    return c->ops->db_subject_scan(c, after_row, cb, ctx);
}

pt_result pt_db_ident_insert(pt_conn *c, const pt_ident_rec *r, pt_err *err)
{
    return c->ops->db_ident_insert(c, r, err);
}

pt_result pt_db_ident_lookup(pt_conn *c, uint32_t tenant, int type, const uint8_t blind[PT_BLIND_BYTES], uint8_t subject[PT_ID_BYTES])
{
    return c->ops->db_ident_lookup(c, tenant, type, blind, subject);
}

pt_result pt_db_ident_list(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_ident_cb cb, void *ctx)
{
    return c->ops->db_ident_list(c, subject, cb, ctx);
}

pt_result pt_db_event_insert(pt_conn *c, pt_event_rec *r, pt_err *err)
{
    return c->ops->db_event_insert(c, r, err);
}

pt_result pt_db_event_list_subject(pt_conn *c, const uint8_t subject[PT_ID_BYTES], int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx)
{
    return c->ops->db_event_list_subject(c, subject, after_seq, limit, cb, ctx);
}

pt_result pt_db_event_list_tenant(pt_conn *c, uint32_t tenant, int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx)
{
    return c->ops->db_event_list_tenant(c, tenant, after_seq, limit, cb, ctx);
}

pt_result pt_db_event_max_seq(pt_conn *c, int64_t *out)
{
    return c->ops->db_event_max_seq(c, out);
}

pt_result pt_db_state_get(pt_conn *c, const uint8_t subject[PT_ID_BYTES], uint16_t purpose_idx, pt_state_rec *out)
{
    return c->ops->db_state_get(c, subject, purpose_idx, out);
}

pt_result pt_db_state_put(pt_conn *c, const pt_state_rec *r, pt_err *err)
{
    return c->ops->db_state_put(c, r, err);
}

pt_result pt_db_state_list_subject(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_state_cb cb, void *ctx)
{
    return c->ops->db_state_list_subject(c, subject, cb, ctx);
}

pt_result pt_db_state_scan(pt_conn *c, int64_t after_seq, pt_state_cb cb, void *ctx)
{
    return c->ops->db_state_scan(c, after_seq, cb, ctx);
}

pt_result pt_db_log_leaf_insert(pt_conn *c, const pt_leaf_rec *r, pt_err *err)
{
    return c->ops->db_log_leaf_insert(c, r, err);
}

pt_result pt_db_log_node_put(pt_conn *c, uint32_t tenant, unsigned level, uint64_t idx,
                             const uint8_t hash[PT_LOG_HASH], pt_err *err)
{
    if (level == 0) return pt_err_set(err, PT_ERR_INVALID, "", "level 0 hashes live in leaves");
    return c->ops->db_log_node_put(c, tenant, level, idx, hash, err);
}

pt_result pt_db_log_node_get(pt_conn *c, uint32_t tenant, unsigned level, uint64_t idx,
                             uint8_t hash[PT_LOG_HASH])
{
    return c->ops->db_log_node_get(c, tenant, level, idx, hash);
}

pt_result pt_db_log_leaf_by_ref(pt_conn *c, uint32_t tenant, const uint8_t ref[PT_ID_BYTES],
                                pt_leaf_cb cb, void *ctx)
{
    return c->ops->db_log_leaf_by_ref(c, tenant, ref, cb, ctx);
}

pt_result pt_db_log_leaf_list(pt_conn *c, uint32_t tenant, uint64_t start, uint64_t end,
                              pt_leaf_cb cb, void *ctx)
{
    return c->ops->db_log_leaf_list(c, tenant, start, end, cb, ctx);
}

pt_result pt_db_log_head_get(pt_conn *c, uint32_t tenant, pt_log_head_rec *out)
{
    return c->ops->db_log_head_get(c, tenant, out);
}

pt_result pt_db_log_head_put(pt_conn *c, const pt_log_head_rec *r, pt_err *err)
{
    return c->ops->db_log_head_put(c, r, err);
}

pt_result pt_db_log_head_list(pt_conn *c, pt_log_head_cb cb, void *ctx)
{
    return c->ops->db_log_head_list(c, cb, ctx);
}

pt_result pt_db_log_key_add(pt_conn *c, const char *verifier, int64_t at, pt_err *err)
{
    return c->ops->db_log_key_add(c, verifier, at, err);
}

pt_result pt_db_log_key_list(pt_conn *c, pt_log_key_cb cb, void *ctx)
{
    return c->ops->db_log_key_list(c, cb, ctx);
}

pt_result pt_db_log_node_list(pt_conn *c, uint32_t tenant, pt_log_node_cb cb, void *ctx)
{
    return c->ops->db_log_node_list(c, tenant, cb, ctx);
}

pt_result pt_db_subject_resolve(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out)
{
    return c->ops->db_subject_resolve(c, id, out);
}

pt_result pt_db_alias_insert(pt_conn *c, pt_alias_rec *r, pt_err *err)
{
    return c->ops->db_alias_insert(c, r, err);
}

pt_result pt_db_alias_get(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_alias_rec *out)
{
    return c->ops->db_alias_get(c, id, out);
}

pt_result pt_db_alias_repoint(pt_conn *c, const uint8_t from[PT_ID_BYTES],
                              const uint8_t to[PT_ID_BYTES], pt_err *err)
{
    return c->ops->db_alias_repoint(c, from, to, err);
}

pt_result pt_db_alias_list(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_alias_cb cb,
                           void *ctx)
{
    return c->ops->db_alias_list(c, subject, cb, ctx);
}

pt_result pt_db_alias_scan(pt_conn *c, int64_t after_seq, pt_alias_cb cb, void *ctx)
{
    return c->ops->db_alias_scan(c, after_seq, cb, ctx);
}

pt_result pt_db_ident_move(pt_conn *c, uint32_t tenant, int type,
                           const uint8_t blind[PT_BLIND_BYTES], const uint8_t subject[PT_ID_BYTES],
                           const uint8_t *value, size_t len, pt_err *err)
{
    return c->ops->db_ident_move(c, tenant, type, blind, subject, value, len, err);
}

pt_result pt_db_state_delete_subject(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_err *err)
{
    return c->ops->db_state_delete_subject(c, subject, err);
}

pt_result pt_db_event_list_person(pt_conn *c, const uint8_t subject[PT_ID_BYTES],
                                  int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx)
{
    return c->ops->db_event_list_person(c, subject, after_seq, limit, cb, ctx);
}

pt_result pt_db_subject_erase(pt_conn *c, const uint8_t id[PT_ID_BYTES], int64_t at,
                              int64_t *identifiers, pt_err *err)
{
    return c->ops->db_subject_erase(c, id, at, identifiers, err);
}

pt_result pt_db_subject_erased_scan(pt_conn *c, int64_t after_seq, pt_erased_cb cb, void *ctx)
{
    return c->ops->db_subject_erased_scan(c, after_seq, cb, ctx);
}

pt_result pt_db_subject_rewrap(pt_conn *c, const uint8_t id[PT_ID_BYTES], uint32_t epoch,
                               const uint8_t wrapped[PT_WRAPPED_KEY_BYTES], pt_err *err)
{
    return c->ops->db_subject_rewrap(c, id, epoch, wrapped, err);
}

pt_result pt_db_scrub(pt_conn *c, pt_err *err)
{
    return c->ops->db_scrub(c, err);
}

pt_result pt_db_backup(pt_conn *c, const char *dest, pt_err *err)
{
    return c->ops->db_backup(c, dest, err);
}

pt_result pt_db_restore(pt_conn *c, const char *src, pt_err *err)
{
    return c->ops->db_restore(c, src, err);
}

pt_result pt_db_stats_insert(pt_conn *c, const pt_stat_rec *r, pt_err *err)
{
    return c->ops->db_stats_insert(c, r, err);
}

pt_result pt_db_stats_count(pt_conn *c, uint32_t tenant, const char *age, const char *region,
                            const char *sex, int64_t *out)
{
    return c->ops->db_stats_count(c, tenant, age, region, sex, out);
}

pt_result pt_db_stats_list(pt_conn *c, uint32_t tenant, pt_stat_cb cb, void *ctx)
{
    return c->ops->db_stats_list(c, tenant, cb, ctx);
}
