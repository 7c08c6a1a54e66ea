/* witness.h - publishing every tenant's latest signed checkpoint to
 * witnesses, so that the operator cannot quietly fork a tenant's log.
 *
 * While `patto serve` runs, one thread wakes at start and then every
 * `interval` seconds, reads the latest checkpoint of every tenant
 * (pt_db_log_head_list on a borrowed read connection) and sends each one
 * whose tree size changed since its last successful delivery:
 *   - to a webhook: HTTP(S) POST, the signed note as the body
 *     (text/plain; charset=utf-8) and a header `Patto-Log-Origin: <origin>`;
 *     a 2xx answer is a delivery, anything else is retried next round;
 *   - by e-mail through an SMTP server: a plain-text message whose
 *     subject names the origin and tree size, the note verbatim as body.
 * What was delivered is remembered in memory only, per tenant and witness:
 * after a restart every tenant's checkpoint is sent again (harmless: a
 * witness only ever learns a checkpoint it could already have).
 *
 * One line goes to stderr per failed delivery. It names the witness by
 * scheme, host and port only (never user, password, path or query, which
 * may carry tokens) and never the e-mail addresses. */
#ifndef PT_WITNESS_H
#define PT_WITNESS_H

#include <stddef.h>

#include "core/result.h"
#include "service/app.h"

#define PT_WITNESS_INTERVAL_DEFAULT 3600u
#define PT_WITNESS_INTERVAL_MAX 604800u /* a week */
#define PT_WITNESS_FROM_DEFAULT "patto@localhost"

typedef struct pt_witness_config {
    const char *url;      /* webhook, http:// or https://; NULL or "" = none */
    const char *email;    /* recipients, comma-separated; NULL or "" = none */
    const char *from;     /* envelope and header sender; NULL or "" = default */
    const char *smtp_url; /* smtp://[user:pass@]host[:port] or smtps://; needed by email */
    unsigned interval;    /* seconds between rounds; 0 = the default */
} pt_witness_config;

typedef struct pt_witness pt_witness;

/* Validates cfg (copied) and starts the witness thread. With neither a url
 * nor an email configured nothing is started and *out is NULL. */
pt_result pt_witness_start(pt_app *app, const pt_witness_config *cfg, pt_witness **out,
                           pt_err *err);
/* Stops the thread (a delivery in flight is aborted) and frees w. Accepts
 * NULL. Call before pt_app_close. */
void pt_witness_stop(pt_witness *w);

/* ---- helpers, exposed for the unit tests ---- */

/* "scheme://host[:port]" of url for log lines, without credentials, path or
 * query; "(invalid url)" when url does not parse. Returns out. */
const char *pt_witness_url_for_log(const char *url, char *out, size_t cap);
/* Checks a comma-separated list of addresses (one or more when list != 0,
 * exactly one otherwise): each local@domain, printable ASCII, no spaces,
 * quotes, angle brackets or commas. 0 or -1. */
int pt_witness_check_addresses(const char *s, int list);
/* The e-mail message (headers and body, CRLF line ends) for one
 * checkpoint note; date is Unix seconds. malloc'd, NUL-terminated, or NULL
 * if the note is not a checkpoint. */
char *pt_witness_mail_format(const char *from, const char *to, const char *note, long long date);

#endif
