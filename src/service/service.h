/* service.h - what the shells (HTTP, CLI) may ask of patto. Every
 * operation takes the caller's tenant, validates its input completely
 * before changing anything, and reports failures through pt_err naming the
 * field. Documents in and out are jansson values: the HTTP shell passes the
 * parsed body, the CLI builds the same document from its flags, so both
 * get the same rules and the same messages.
 *
 * Writes come in two steps: pt_X_prepare() validates and fills a pt_op;
 * the caller runs it with pt_app_write() (blocking) or pt_app_submit()
 * (asynchronous, HTTP). On success op->out holds the response document and
 * op->status the HTTP status. Ownership: the caller owns the op and calls
 * pt_op_clear() when done; documents returned through json_t **out are
 * owned by the caller. */
#ifndef PT_SERVICE_H
#define PT_SERVICE_H

#include <stdio.h>

#include "app.h"
#include "catalog.h"

/* ---- tenants and keys (tenants.c) ---- */
pt_result pt_tenant_create_prepare(pt_app *app, const char *name, pt_op *op, pt_err *err);
pt_result pt_tenant_find(pt_app *app, const char *name, pt_tenant_rec *out, pt_err *err);
pt_result pt_tenant_list(pt_app *app, json_t **out, pt_err *err);
pt_result pt_tenant_get(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);
/* body: {role, label?} */
pt_result pt_key_create_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                pt_err *err);
pt_result pt_key_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);
pt_result pt_key_revoke_prepare(pt_app *app, uint32_t tenant, const char *key_id, pt_op *op,
                                pt_err *err);

/* ---- catalog (purposes.c, notices.c) ---- */
pt_result pt_purpose_put_prepare(pt_app *app, uint32_t tenant, const char *name,
                                 const json_t *body, pt_op *op, pt_err *err);
pt_result pt_purpose_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);
pt_result pt_purpose_get(pt_app *app, uint32_t tenant, const char *name, json_t **out,
                         pt_err *err);
pt_result pt_notice_publish_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                    pt_err *err);
pt_result pt_notice_get(pt_app *app, uint32_t tenant, const char *notice, const char *version,
                        json_t **out, pt_err *err);
pt_result pt_notice_list(pt_app *app, uint32_t tenant, json_t **out, pt_err *err);

/* ---- subjects (subjects.c) ---- */
pt_result pt_subject_create_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                                    pt_err *err);
pt_result pt_subject_get(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                         pt_err *err);
pt_result pt_subject_lookup(pt_app *app, uint32_t tenant, const char *type, const char *value,
                            json_t **out, pt_err *err);

/* ---- consents (ledger.c) ---- */
pt_result pt_consent_prepare(pt_app *app, uint32_t tenant, const json_t *body, pt_op *op,
                             pt_err *err);
/* channel and recipient may be NULL. Served from the node's cache when
 * serving, from the store otherwise. */
pt_result pt_consent_check(pt_app *app, uint32_t tenant, const char *subject,
                           const char *purpose, const char *channel, const char *recipient,
                           json_t **out, pt_err *err);
pt_result pt_consent_states(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                            pt_err *err);
/* cursor: NULL or the next_cursor of a previous page; limit 1..1000. */
pt_result pt_consent_history(pt_app *app, uint32_t tenant, const char *subject,
                             const char *cursor, uint32_t limit, json_t **out, pt_err *err);

/* ---- bulk (transfer.c) ---- */
typedef enum pt_import_format { PT_IMPORT_JSONL, PT_IMPORT_CSV } pt_import_format;
typedef struct pt_import_stats {
    uint64_t events;
    uint64_t subjects_created;
} pt_import_stats;
/* All or nothing: one transaction; the first bad record aborts with its
 * line number in err. */
pt_result pt_import(pt_app *app, uint32_t tenant, FILE *in, pt_import_format fmt,
                    pt_import_stats *stats, pt_err *err);
/* Every event of the tenant as JSON Lines, oldest first, evidence
 * decrypted (it is the tenant's own data). */
pt_result pt_export(pt_app *app, uint32_t tenant, FILE *out, uint64_t *count, pt_err *err);

/* ---- migration between stores (migrate.c) ---- */
typedef struct pt_migrate_stats {
    uint64_t tenants, keys, purposes, notices, subjects, identifiers, events, states;
    uint64_t log_leaves, log_nodes, log_heads, log_keys; /* the proof log, verbatim */
    uint64_t stats; /* statistics of anonymised people */
} pt_migrate_stats;
/* Copies a whole installation from the store at url `from` to the one at
 * `to` (e.g. sqlite:patto.db to postgres://...), in one transaction on the
 * destination: all or nothing. The destination must hold no tenant,
 * subject or event (CONFLICT otherwise); the source is locked against
 * writers while it is read. Sealed data moves as it is, so kr (which must
 * be the source's keyring: INVALID otherwise) keeps working on the copy.
 * Event seqs are the destination's own; their order is kept. The proof log
 * (leaves, subtree hashes, signed heads, signing keys) is copied as it is,
 * so that receipts and checkpoints issued before keep verifying. An
 * interrupted migration leaves the destination as it was (at most its
 * schema created): run it again. st may be NULL; it is zeroed on failure. */
pt_result pt_migrate(const char *from, const char *to, const pt_keyring *kr, pt_migrate_stats *st,
                     pt_err *err);

/* ---- erasure (erasure.c) ----
 * DELETE /v1/subjects/{subject}: crypto-shredding in one write op (the
 * wrapped data key, the sealed profile and the identifiers go; the events
 * stay, their evidence unreadable), a `subject.erased` proof-log leaf, an
 * entry in the erasure journal (fsynced before the commit), and a scrub
 * of the store after the commit. op->out is the erasure receipt (with its
 * "proof" once durable); status 200. A subject erased already is
 * CONFLICT (409); an unknown, malformed or other tenant's id NOT_FOUND. */
pt_result pt_subject_erase_prepare(pt_app *app, uint32_t tenant, const char *subject, pt_op *op,
                                   pt_err *err);
/* What GET /v1/subjects/{subject} answers for an erased subject: its id,
 * times and erased_at, no identifiers, profile null. */
json_t *pt_subject_erased_doc(const pt_subject_rec *s);
typedef struct pt_erasure_replay_stats {
    uint64_t entries; /* well-formed lines */
    uint64_t erased;  /* erased again now */
    uint64_t already; /* erased in the database already */
    uint64_t absent;  /* not in the database (created after its snapshot) */
    uint64_t bad;     /* torn, malformed, or naming another tenant */
} pt_erasure_replay_stats;
/* Replays the app's erasure journal: every subject it names that the
 * database holds and has not erased is erased again (not re-journaled).
 * No journal configured, or no file yet: nothing to do. st may be NULL. */
pt_result pt_erasure_replay(pt_app *app, pt_erasure_replay_stats *st, pt_err *err);

/* ---- backups and key rotation (backup.c) ---- */
/* A consistent online copy of the SQLite database at db_url into the new
 * file dest (no keyring needed). PostgreSQL: INVALID (pg_dump or PITR). */
pt_result pt_backup(const char *db_url, const char *dest, pt_err *err);
/* Replaces the SQLite database cfg->db_url (created if missing) with the
 * backup src, after checking it against cfg->keyring (fingerprint, and the
 * key epochs its subjects need) and replaying cfg->erasure_journal into
 * it. All or nothing; stop the servers on it first. */
pt_result pt_restore(const pt_app_config *cfg, const char *src, pt_erasure_replay_stats *st,
                     pt_err *err);
typedef struct pt_rotate_stats {
    uint32_t from_epoch; /* the oldest epoch the keyring held */
    uint32_t epoch;      /* the new (now only) epoch */
    uint32_t dropped;    /* epochs destroyed */
    bool resumed;        /* finished a rotation interrupted earlier */
    uint64_t rewrapped;  /* data keys re-wrapped */
} pt_rotate_stats;
/* KEK rotation of the database cfg->db_url whose keyring is the file
 * keyring_path (cfg->keyring is not used): a new epoch, every live data
 * key re-wrapped under it, the old epochs removed from the file. Safe to
 * interrupt and run again (backup.c says how). Stop the servers first. */
pt_result pt_keys_rotate(const pt_app_config *cfg, const char *keyring_path, pt_rotate_stats *st,
                         pt_err *err);

/* ---- identity across devices (identity.c) ----
 * A subject id given to any of these may be an id merged into another
 * subject: it answers as the survivor. */
/* body: {type, value}. 201 when linked; 200 when the subject held it
 * already; CONFLICT (field value) when another subject holds it, never
 * saying which. A leaf `identifier.linked` (subject, type, at). */
pt_result pt_identifier_link_prepare(pt_app *app, uint32_t tenant, const char *subject,
                                     const json_t *body, pt_op *op, pt_err *err);
/* body: {from}. Merges person `from` into `subject`: identifiers move,
 * missing profile fields are taken, per purpose the most recent explicit
 * decision stands (pt_policy_merge), `from` answers as `subject` from then
 * on. A leaf `subject.merged` (subject, from, at); the answer carries its
 * receipt. POLICY for itself or an erased person, NOT_FOUND for another
 * tenant's, CONFLICT when already merged. */
pt_result pt_subject_merge_prepare(pt_app *app, uint32_t tenant, const char *subject,
                                   const json_t *body, pt_op *op, pt_err *err);
/* `check` for the subject holding an identifier: the answer of
 * pt_consent_check, with `subject` the holder's id (null, and reason
 * unknown_subject, when no subject holds it) and `identifier_type`. One
 * blind-index read. */
pt_result pt_consent_check_identifier(pt_app *app, uint32_t tenant, const char *type,
                                      const char *value, const char *purpose,
                                      const char *channel, const char *recipient, json_t **out,
                                      pt_err *err);

/* ---- access, portability, rectification (rights.c) ---- */
/* Everything held on the person (Art. 15 and 20), as one document of
 * format patto-subject-export/1 (docs/openapi.yaml, SubjectExport). */
pt_result pt_subject_export(pt_app *app, uint32_t tenant, const char *subject, json_t **out,
                            pt_err *err);
/* body: {profile: MERGE_PATCH | null}, RFC 7396 applied to the profile;
 * the changed fields are re-sealed and a leaf `subject.rectified`
 * (subject, fields: [names], at) is logged. Nothing changed: no leaf. */
pt_result pt_subject_rectify_prepare(pt_app *app, uint32_t tenant, const char *subject,
                                     const json_t *body, pt_op *op, pt_err *err);

/* Appends lines ("erased <subject> <tenant> <at>\n"...) to the erasure
 * journal at path with one fdatasync (and the directory's, for a new file);
 * writes the header first on a new file and ends a torn last line. */
pt_result pt_erasure_journal_append(const char *path, const char *lines, pt_err *err);

/* ---- anonymisation and statistics (anonymise.c) ---- */
#define PT_ANONYMISE_K_MIN 5
typedef struct pt_anonymise_stats {
    uint64_t scanned;    /* people looked at */
    uint64_t candidates; /* whose basis for processing lapsed */
    uint64_t anonymised; /* shredded (all candidates) */
    uint64_t suppressed; /* of those, not kept even as statistics (group < k) */
} pt_anonymise_stats;
/* One all-or-nothing run over a tenant's people (see anonymise.c). */
pt_result pt_anonymise_run(pt_app *app, uint32_t tenant, unsigned k, pt_anonymise_stats *st,
                           pt_err *err);
/* Counts of statistical records grouped by `by` (comma-separated region,
 * sex, age, purpose; "" = one total); with purpose, by that purpose's state.
 * Cells under k are hidden (counted in "hidden"). */
pt_result pt_stats_query(pt_app *app, uint32_t tenant, const char *by, const char *purpose,
                         unsigned k, json_t **out, pt_err *err);

#endif
