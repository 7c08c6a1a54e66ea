/* backend.h - what a storage backend implements: the dispatch table
 * behind store.h. Each backend's store and connection structs begin with
 * struct pt_store / struct pt_conn, whose only member names the table;
 * store.c routes every pt_* call through it. Only store.c and the backends
 * include this header. */
#ifndef PT_BACKEND_H
#define PT_BACKEND_H

#include "store.h"

typedef struct pt_store_ops {
    const char *name;
    /* does this backend open this url? */
    int (*accepts)(const char *url);
    pt_result (*store_open)(const char *url, int create, pt_store **out, pt_err *err);
    void (*store_close)(pt_store *s);
    int (*store_schema_version)(pt_store *s);
    pt_result (*conn_open)(pt_store *s, pt_conn **out, pt_err *err);
    void (*conn_close)(pt_conn *c);
    void (*conn_tune)(pt_conn *c, pt_conn_role role); /* may be NULL */
    int64_t (*changes)(pt_conn *c);                    /* may be NULL: -1 */
    pt_result (*tx_begin)(pt_conn *c, pt_err *err);
    pt_result (*tx_commit)(pt_conn *c, pt_err *err);
    void (*tx_rollback)(pt_conn *c);
    pt_result (*tx_savepoint)(pt_conn *c, pt_err *err);
    pt_result (*tx_release)(pt_conn *c, pt_err *err);
    void (*tx_rollback_to)(pt_conn *c);
    pt_result (*db_data_version)(pt_conn *c, int64_t *out);
    pt_result (*db_meta_get)(pt_conn *c, const char *key, char *value, size_t cap);
    pt_result (*db_meta_set)(pt_conn *c, const char *key, const char *value);
    pt_result (*db_tenant_insert)(pt_conn *c, pt_tenant_rec *r, pt_err *err);
    pt_result (*db_tenant_by_name)(pt_conn *c, const char *name, pt_tenant_rec *out);
    pt_result (*db_tenant_by_id)(pt_conn *c, uint32_t id, pt_tenant_rec *out);
    pt_result (*db_tenant_list)(pt_conn *c, pt_tenant_cb cb, void *ctx);
    pt_result (*db_key_insert)(pt_conn *c, const pt_key_rec *r, pt_err *err);
    pt_result (*db_key_list)(pt_conn *c, uint32_t tenant, pt_key_cb cb, void *ctx);
    pt_result (*db_key_revoke)(pt_conn *c, uint32_t tenant, const uint8_t id[PT_ID_BYTES], int64_t at);
    pt_result (*db_purpose_put)(pt_conn *c, const pt_purpose_rec *r, pt_err *err);
    pt_result (*db_purpose_get)(pt_conn *c, uint32_t tenant, const char *name, pt_purpose_rec *out);
    pt_result (*db_purpose_list)(pt_conn *c, uint32_t tenant, pt_purpose_cb cb, void *ctx);
    pt_result (*db_notice_insert)(pt_conn *c, const pt_notice_rec *r, pt_err *err);
    pt_result (*db_notice_get)(pt_conn *c, uint32_t tenant, const char *notice, const char *version, pt_notice_rec *out);
    pt_result (*db_notice_list)(pt_conn *c, uint32_t tenant, pt_notice_cb cb, void *ctx);
    pt_result (*db_subject_insert)(pt_conn *c, pt_subject_rec *r, pt_err *err);
    pt_result (*db_subject_get)(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out);
    pt_result (*db_subject_update_profile)(pt_conn *c, const uint8_t id[PT_ID_BYTES], const uint8_t *profile, size_t len, int64_t at);
    pt_result (*db_subject_scan)(pt_conn *c, int64_t after_row, pt_subject_cb cb, void *ctx);
    pt_result (*db_ident_insert)(pt_conn *c, const pt_ident_rec *r, pt_err *err);
    pt_result (*db_ident_lookup)(pt_conn *c, uint32_t tenant, int type, const uint8_t blind[PT_BLIND_BYTES], uint8_t subject[PT_ID_BYTES]);
    pt_result (*db_ident_list)(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_ident_cb cb, void *ctx);
    pt_result (*db_event_insert)(pt_conn *c, pt_event_rec *r, pt_err *err);
    pt_result (*db_event_list_subject)(pt_conn *c, const uint8_t subject[PT_ID_BYTES], int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx);
    pt_result (*db_event_list_tenant)(pt_conn *c, uint32_t tenant, int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx);
    pt_result (*db_event_max_seq)(pt_conn *c, int64_t *out);
    pt_result (*db_state_get)(pt_conn *c, const uint8_t subject[PT_ID_BYTES], uint16_t purpose_idx, pt_state_rec *out);
    pt_result (*db_state_put)(pt_conn *c, const pt_state_rec *r, pt_err *err);
    pt_result (*db_state_list_subject)(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_state_cb cb, void *ctx);
    pt_result (*db_state_scan)(pt_conn *c, int64_t after_seq, pt_state_cb cb, void *ctx);
    pt_result (*db_log_leaf_insert)(pt_conn *c, const pt_leaf_rec *r, pt_err *err);
    pt_result (*db_log_node_put)(pt_conn *c, uint32_t tenant, unsigned level, uint64_t idx, const uint8_t hash[PT_LOG_HASH], pt_err *err);
    pt_result (*db_log_node_get)(pt_conn *c, uint32_t tenant, unsigned level, uint64_t idx, uint8_t hash[PT_LOG_HASH]);
    pt_result (*db_log_leaf_by_ref)(pt_conn *c, uint32_t tenant, const uint8_t ref[PT_ID_BYTES], pt_leaf_cb cb, void *ctx);
    pt_result (*db_log_leaf_list)(pt_conn *c, uint32_t tenant, uint64_t start, uint64_t end, pt_leaf_cb cb, void *ctx);
    pt_result (*db_log_head_get)(pt_conn *c, uint32_t tenant, pt_log_head_rec *out);
    pt_result (*db_log_head_put)(pt_conn *c, const pt_log_head_rec *r, pt_err *err);
    pt_result (*db_log_head_list)(pt_conn *c, pt_log_head_cb cb, void *ctx);
    pt_result (*db_log_key_add)(pt_conn *c, const char *verifier, int64_t at, pt_err *err);
    pt_result (*db_log_key_list)(pt_conn *c, pt_log_key_cb cb, void *ctx);
    pt_result (*db_log_node_list)(pt_conn *c, uint32_t tenant, pt_log_node_cb cb, void *ctx);
    pt_result (*db_subject_resolve)(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_subject_rec *out);
    pt_result (*db_alias_insert)(pt_conn *c, pt_alias_rec *r, pt_err *err);
    pt_result (*db_alias_get)(pt_conn *c, const uint8_t id[PT_ID_BYTES], pt_alias_rec *out);
    pt_result (*db_alias_repoint)(pt_conn *c, const uint8_t from[PT_ID_BYTES], const uint8_t to[PT_ID_BYTES], pt_err *err);
    pt_result (*db_alias_list)(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_alias_cb cb, void *ctx);
    pt_result (*db_alias_scan)(pt_conn *c, int64_t after_seq, pt_alias_cb cb, void *ctx);
    pt_result (*db_ident_move)(pt_conn *c, uint32_t tenant, int type, const uint8_t blind[PT_BLIND_BYTES], const uint8_t subject[PT_ID_BYTES], const uint8_t *value, size_t len, pt_err *err);
    pt_result (*db_state_delete_subject)(pt_conn *c, const uint8_t subject[PT_ID_BYTES], pt_err *err);
    pt_result (*db_event_list_person)(pt_conn *c, const uint8_t subject[PT_ID_BYTES], int64_t after_seq, uint32_t limit, pt_event_cb cb, void *ctx);
    pt_result (*db_subject_erase)(pt_conn *c, const uint8_t id[PT_ID_BYTES], int64_t at, int64_t *identifiers, pt_err *err);
    pt_result (*db_subject_erased_scan)(pt_conn *c, int64_t after_seq, pt_erased_cb cb, void *ctx);
    pt_result (*db_subject_rewrap)(pt_conn *c, const uint8_t id[PT_ID_BYTES], uint32_t epoch, const uint8_t wrapped[PT_WRAPPED_KEY_BYTES], pt_err *err);
    pt_result (*db_scrub)(pt_conn *c, pt_err *err);
    pt_result (*db_backup)(pt_conn *c, const char *dest, pt_err *err);
    pt_result (*db_restore)(pt_conn *c, const char *src, pt_err *err);
    pt_result (*db_stats_insert)(pt_conn *c, const pt_stat_rec *r, pt_err *err);
    pt_result (*db_stats_count)(pt_conn *c, uint32_t tenant, const char *age, const char *region, const char *sex, int64_t *out);
    pt_result (*db_stats_list)(pt_conn *c, uint32_t tenant, pt_stat_cb cb, void *ctx);
} pt_store_ops;

struct pt_store {
    const pt_store_ops *ops;
};

struct pt_conn {
    const pt_store_ops *ops;
};

extern const pt_store_ops pt_sqlite_ops;
extern const pt_store_ops pt_postgres_ops;

#endif
