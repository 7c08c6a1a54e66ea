/* harness.h - black-box test harness: starts the real `patto` binary and
 * speaks HTTP to it.
 *
 * Criterion runs every test in its own worker process (re-executed, so
 * globals set by the runner are not inherited). One server per test file
 * is therefore started by the runner, in bb_main() (each test file's main
 * calls it), before any test runs; the port, the API keys and the paths
 * are handed to the workers through the environment (BB_*). The runner
 * stops the server with SIGTERM after the last test and fails the run
 * unless it exits 0. TestSuite .init/.fini (bb_suite_init/bb_suite_fini)
 * load that context in each worker and free what the test allocated.
 *
 * The server's database lives in a fresh temporary directory: tenant A
 * ("demo", from `patto init`) with one key per role, and tenant B
 * ("beta", from `patto tenant create`) with its admin key.
 *
 * PostgreSQL mode: with PATTO_TEST_PG set to a base url (such as
 * postgres://postgres@127.0.0.1:55432/postgres, see scripts/pg.sh), every
 * server gets a fresh database patto_bb_<pid>_<random> on that server
 * instead (created and dropped with psql, PATTO_TEST_PSQL to override),
 * and the CLI is given --keyring DIR/keyring; the directory still holds
 * the logs. */
#ifndef PATTO_BLACKBOX_HARNESS_H
#define PATTO_BLACKBOX_HARNESS_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BB_NROLES 5
extern const char *const bb_roles[BB_NROLES]; /* admin, operator, marketing, auditor, recipient */

/* ------------------------------------------------------------ runner side */

typedef struct bb_server {
    pid_t pid;
    int port;
    char dir[512];       /* temporary directory, removed by bb_server_cleanup */
    char db[640];        /* database path, or url in PostgreSQL mode */
    char keyring[640];   /* PostgreSQL mode: the keyring file; "" otherwise */
    char pgdb[64];       /* PostgreSQL mode: the database to drop; "" otherwise */
    char log[640];       /* the server's stderr */
    char admin_key[160]; /* tenant A's first admin key (last stdout line of init) */
} bb_server;

/* Path of the binary: $PATTO_BIN, default build/patto (made absolute). */
const char *bb_bin(void);

/* Runs `patto ARGS...` (NULL-terminated), stdout captured into out (the
 * last non-empty line if last_line), stderr to the given file or
 * /dev/null. Returns the exit status, or -1 if it did not exit normally. */
int bb_cli(char *out, size_t cap, bool last_line, const char *stderr_path, ...)
    __attribute__((sentinel));

/* Creates a temporary directory and `patto init --db DIR/patto.db --tenant NAME`
 * (PostgreSQL mode: a fresh database, and --keyring DIR/keyring). */
int bb_server_init_db(bb_server *s, const char *tenant, char *err, size_t errcap);
/* Starts `patto serve --listen 127.0.0.1:0` and waits for "listening on". */
int bb_server_spawn(bb_server *s, char *err, size_t errcap);
/* SIGTERM, then waits (10 s at most, then SIGKILL). Returns the wait
 * status; *exited0 says whether it exited normally with status 0. */
int bb_server_stop(bb_server *s, bool *exited0);
/* Removes the directory (and drops the PostgreSQL mode database). */
void bb_server_cleanup(bb_server *s);
/* The last max bytes of the server's stderr (tracked: worker side only). */
char *bb_server_log_tail(const bb_server *s, size_t max);

/* The runner's main: starts the per-file server, runs the tests, stops
 * the server (exit status 0 required). */
int bb_main(int argc, char **argv);

/* ------------------------------------------------------------ worker side */

void bb_suite_init(void);
void bb_suite_fini(void);

int bb_port(void);
const char *bb_db(void);
const char *bb_dir(void);
const char *bb_key(const char *role); /* tenant A */
const char *bb_key_b(void);           /* tenant B's admin key */
#define BB_TENANT_A "demo"
#define BB_TENANT_B "beta"

typedef struct bb_resp {
    long status;
    char method[16];
    char path[512];
    char content_type[128];
    char www_authenticate[128];
    char allow[128];
    char cache_control[64];
    char *body; /* NUL-terminated */
    size_t body_len;
    json_t *json;  /* the body parsed, or NULL */
    long connects; /* new connections this transfer made (keep-alive check) */
    char curl_error[CURL_ERROR_SIZE];
} bb_resp;

typedef struct bb_req {
    const char *method;
    const char *path;         /* with the query string */
    const char *key;          /* NULL: no Authorization header */
    const char *auth_header;  /* overrides key: the whole header line */
    const char *content_type; /* NULL with a body: no Content-Type at all */
    const char *body;
    size_t body_len;
    bool has_body;
    bool chunked;
} bb_req;

/* Untracked, thread-safe core: out must be bb_resp_clear'ed. h may be
 * reused for keep-alive. Returns 0, or -1 if the transfer failed. */
int bb_request(CURL *h, const bb_req *req, bb_resp *out);
void bb_resp_clear(bb_resp *r);

/* Tracked (freed by bb_suite_fini), for use in tests. Never NULL: a
 * transfer failure fails the test. */
bb_resp *bb_do(const bb_req *req);
bb_resp *bb_http(const char *method, const char *path, const char *key, const char *content_type,
                 const char *body);
bb_resp *bb_get(const char *path, const char *key);
/* JSON body (the reference is stolen), Content-Type: application/json. */
bb_resp *bb_send(const char *method, const char *path, const char *key, json_t *body);

/* Asserts an RFC 9457 problem: Content-Type application/problem+json,
 * {type: urn:patto:problem:..., title, status, detail, instance}, with
 * status and (when field is not NULL) field as given. */
void bb_assert_problem(const bb_resp *r, long status, const char *field);
/* Asserts status and application/json with a parsed object body. */
void bb_assert_json(const bb_resp *r, long status);

/* Tracked JSON: decref'ed by bb_suite_fini (the reference is stolen). */
json_t *bb_track_json(json_t *v);

/* Tracked strings. */
/* Never NULL: they fail the test when out of memory. */
char *bb_strdup(const char *s) __attribute__((returns_nonnull));
char *bb_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));
char *bb_urlencode(const char *s);
/* "prefix-PID-N": unique within a run of one test file. */
char *bb_unique(const char *prefix);
/* A well-formed subject id that no tenant holds. */
char *bb_random_subject_id(void);

/* JSON accessors that fail the test on a missing member or wrong type. */
const char *bb_jstr(const json_t *o, const char *key);
json_int_t bb_jint(const json_t *o, const char *key);
bool bb_jbool(const json_t *o, const char *key);
json_t *bb_jarr(const json_t *o, const char *key);
json_t *bb_jobj(const json_t *o, const char *key);
bool bb_jnull(const json_t *o, const char *key);

/* Time: RFC 3339 with milliseconds, UTC. */
int64_t bb_now_ms(void);
char *bb_time(int64_t ms);
int64_t bb_parse_time(const char *s); /* fails the test if malformed */
#define BB_DAY_MS INT64_C(86400000)

void bb_sha256_hex(const void *data, size_t len, char out[65]);

/* ------------------------------------------------------------ API shortcuts */

/* POST /v1/subjects with an optional e-mail; returns the subject id. */
char *bb_create_subject(const char *key, const char *email);
/* POST /v1/consents for a subject. channels: NULL, or a JSON array text
 * such as "[\"email\"]"; notice NULL: the "privacy" version "1" notice
 * for grant/renew, none otherwise; occurred_at NULL: not sent. */
bb_resp *bb_consent(const char *key, const char *subject, const char *purpose, const char *action,
                    const char *channels, const char *occurred_at);
/* Number of events in a subject's history (all pages). */
size_t bb_history_len(const char *key, const char *subject);
/* GET /v1/check; recipient and channel may be NULL. */
bb_resp *bb_check(const char *key, const char *subject, const char *purpose, const char *channel,
                  const char *recipient);

#endif
