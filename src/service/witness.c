/* witness.c - see witness.h. One thread, one round at a time; libcurl easy
 * handles for the webhook and for SMTP. */
#include "service/witness.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/note.h"
#include "store/store.h"

#ifndef PATTO_VERSION
#define PATTO_VERSION "0"
#endif

#define CONNECT_TIMEOUT_S 10L
#define TRANSFER_TIMEOUT_S 30L

enum { W_HOOK = 0, W_MAIL, W_N };

/* What was last delivered to each witness, per tenant. */
typedef struct wmark {
    uint32_t tenant;
    bool sent[W_N];
    uint64_t size[W_N];
} wmark;

typedef struct whead {
    uint32_t tenant;
    uint64_t size;
    char *note;
} whead;

typedef struct hvec {
    whead *v;
    size_t n, cap;
    bool nomem;
} hvec;

struct pt_witness {
    pt_app *app;
    char *url;   /* NULL = no webhook */
    char *email; /* NULL = no e-mail */
    char *from;
    char *smtp;  /* may hold a password: wiped on stop */
    bool smtp_tls_implicit;
    bool smtp_tls_required; /* credentials to a non-loopback relay: never in clear */
    char url_log[256], smtp_log[256];
    struct curl_slist *rcpt;
    unsigned interval;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stopping;     /* under mu */
    atomic_bool abort; /* read by curl's progress callback */

    wmark *marks; /* sorted by tenant; the witness thread's alone */
    size_t nmarks, capmarks;
};

/* ------------------------------------------------------------ helpers */

const char *pt_witness_url_for_log(const char *url, char *out, size_t cap)
{
    snprintf(out, cap, "(invalid url)");
    CURLU *u = url ? curl_url() : NULL;
    if (!u) return out;
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK) port = NULL;
        snprintf(out, cap, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

static int check_address(const char *s, size_t n)
{
    size_t at = n;
    if (n == 0 || n > 254) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || strchr("<>\",;()[]\\", ch)) return -1;
        if (ch == '@') {
            if (at != n) return -1;
            at = i;
        }
    }
    return at == 0 || at >= n - 1 ? -1 : 0;
}

int pt_witness_check_addresses(const char *s, int list)
{
    if (!s || !*s) return -1;
    int count = 0;
    for (const char *p = s;;) {
        while (*p == ' ') p++;
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && p[n - 1] == ' ') n--;
        if (check_address(p, n) != 0) return -1;
        count++;
        if (!e) break;
        p = e + 1;
    }
    return count == 1 || (list && count > 1) ? 0 : -1;
}

/* Origin and size of a signed checkpoint note (validated by the core
 * parser on the note's text, the part before the blank line). */
static int note_checkpoint(const char *note, pt_checkpoint *cp)
{
    const char *blank = note ? strstr(note, "\n\n") : NULL;
    if (!blank) return -1;
    return pt_checkpoint_parse(note, (size_t)(blank - note) + 1, cp);
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool bad;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->bad) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->bad = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* An RFC 2047 subject when text is not plain ASCII: encoded words of at
 * most 45 bytes each, never splitting a UTF-8 sequence, folded. */
static void sb_subject(sbuf *b, const char *text)
{
    bool ascii = true;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p >= 0x7f) ascii = false;
    if (ascii) {
        sb_str(b, text);
        return;
    }
    size_t n = strlen(text), i = 0;
    while (i < n) {
        size_t k = n - i > 45 ? 45 : n - i;
        while (k > 1 && i + k < n && ((unsigned char)text[i + k] & 0xC0) == 0x80) k--;
        char b64[sodium_base64_ENCODED_LEN(45, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)text + i, k,
                          sodium_base64_VARIANT_ORIGINAL);
        if (i) sb_str(b, "\r\n ");
        sb_str(b, "=?UTF-8?B?");
        sb_str(b, b64);
        sb_str(b, "?=");
        i += k;
    }
}

char *pt_witness_mail_format(const char *from, const char *to, const char *note, long long date)
{
    static const char *const DAY[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const MON[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    pt_checkpoint cp;
    if (note_checkpoint(note, &cp) != 0) return NULL;
    time_t t = (time_t)date;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return NULL;
    char line[512];
    sbuf b = {0};
    snprintf(line, sizeof line, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
             DAY[tm.tm_wday % 7], tm.tm_mday, MON[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    sb_str(&b, line);
    sb_str(&b, "From: ");
    sb_str(&b, from);
    sb_str(&b, "\r\nTo: ");
    sb_str(&b, to);
    sb_str(&b, "\r\nSubject: ");
    snprintf(line, sizeof line, "patto checkpoint %s, tree size %llu", cp.origin,
             (unsigned long long)cp.size);
    sb_subject(&b, line);
    sb_str(&b, "\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n"
               "\r\n");
    /* the note verbatim, its line ends as SMTP wants them */
    for (const char *p = note; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        sb_put(&b, p, n);
        sb_str(&b, "\r\n");
        if (!e) break;
        p = e + 1;
    }
    if (b.bad) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ------------------------------------------------------------ delivery */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    pt_witness *w = ctx;
    return atomic_load(&w->abort) ? 1 : 0;
}

typedef struct rsrc {
    const char *p;
    size_t left;
} rsrc;

static size_t read_msg(char *out, size_t size, size_t n, void *ctx)
{
    rsrc *s = ctx;
    size_t k = size * n < s->left ? size * n : s->left;
    memcpy(out, s->p, k);
    s->p += k;
    s->left -= k;
    return k;
}

static void common_opts(pt_witness *w, CURL *cu)
{
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, TRANSFER_TIMEOUT_S);
    curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(cu, CURLOPT_XFERINFODATA, w);
    curl_easy_setopt(cu, CURLOPT_USERAGENT, "patto/" PATTO_VERSION);
}

/* One line on stderr; names no credentials and no address. */
static void failed(pt_witness *w, int target, const pt_checkpoint *cp, const char *why)
{
    if (atomic_load(&w->abort)) return; /* stopping: not a failure */
    fprintf(stderr,
            "patto serve: witness %s%s: checkpoint %s size %llu not delivered: %s; "
            "retrying next round\n",
            target == W_HOOK ? "" : "e-mail via ", target == W_HOOK ? w->url_log : w->smtp_log,
            cp->origin, (unsigned long long)cp->size, why);
}

/* 0 delivered, 1 refused (try the next tenant), -1 witness unreachable
 * (skip it for the rest of this round). */
static int deliver_hook(pt_witness *w, const whead *h, const pt_checkpoint *cp)
{
    CURL *cu = curl_easy_init();
    if (!cu) {
        failed(w, W_HOOK, cp, "out of memory");
        return -1;
    }
    char origin[PT_NOTE_NAME_MAX + 32];
    snprintf(origin, sizeof origin, "Patto-Log-Origin: %s", cp->origin);
    struct curl_slist *hdr = NULL, *t;
    const char *const lines[] = {"Content-Type: text/plain; charset=utf-8", origin, "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!(t = curl_slist_append(hdr, lines[i]))) {
            curl_slist_free_all(hdr);
            curl_easy_cleanup(cu);
            failed(w, W_HOOK, cp, "out of memory");
            return -1;
        }
        hdr = t;
    }
    common_opts(w, cu);
    curl_easy_setopt(cu, CURLOPT_URL, w->url);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(cu, CURLOPT_POST, 1L);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, h->note);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(h->note));
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(cu);
    long status = 0;
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(cu);
    if (rc != CURLE_OK) {
        failed(w, W_HOOK, cp, curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        char why[64];
        snprintf(why, sizeof why, "HTTP %ld", status);
        failed(w, W_HOOK, cp, why);
        return 1;
    }
    return 0;
}

static int deliver_mail(pt_witness *w, const whead *h, const pt_checkpoint *cp)
{
    char *msg = pt_witness_mail_format(w->from, w->email, h->note, (long long)time(NULL));
    CURL *cu = msg ? curl_easy_init() : NULL;
    if (!cu) {
        free(msg);
        failed(w, W_MAIL, cp, "out of memory");
        return -1;
    }
    char from[300];
    snprintf(from, sizeof from, "<%s>", w->from);
    rsrc src = {msg, strlen(msg)};
    common_opts(w, cu);
    curl_easy_setopt(cu, CURLOPT_URL, w->smtp);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    /* STARTTLS when offered; required when a password would otherwise go
     * in clear past this machine (a downgrade must not leak it) */
    if (!w->smtp_tls_implicit)
        curl_easy_setopt(cu, CURLOPT_USE_SSL,
                         (long)(w->smtp_tls_required ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    curl_easy_setopt(cu, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(cu, CURLOPT_MAIL_RCPT, w->rcpt);
    curl_easy_setopt(cu, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(cu, CURLOPT_READFUNCTION, read_msg);
    curl_easy_setopt(cu, CURLOPT_READDATA, &src);
    curl_easy_setopt(cu, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src.left);
    CURLcode rc = curl_easy_perform(cu);
    long code = 0;
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(cu);
    free(msg);
    if (rc != CURLE_OK) {
        char why[160];
        if (code)
            snprintf(why, sizeof why, "%s (SMTP %ld)", curl_easy_strerror(rc), code);
        else
            snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
        failed(w, W_MAIL, cp, why);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ rounds */

static int collect_head(void *ctx, const pt_log_head_rec *r)
{
    hvec *hv = ctx;
    if (!r->checkpoint[0]) return 0;
    if (hv->n == hv->cap) {
        size_t cap = hv->cap ? hv->cap * 2 : 16;
        whead *v = realloc(hv->v, cap * sizeof *v);
        if (!v) {
            hv->nomem = true;
            return 1;
        }
        hv->v = v;
        hv->cap = cap;
    }
    char *note = strndup(r->checkpoint, sizeof r->checkpoint);
    if (!note) {
        hv->nomem = true;
        return 1;
    }
    hv->v[hv->n++] = (whead){.tenant = r->tenant, .size = r->size, .note = note};
    return 0;
}

/* The tenant's mark, inserted if new; NULL when out of memory. */
static wmark *mark_get(pt_witness *w, uint32_t tenant)
{
    size_t lo = 0, hi = w->nmarks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->marks[mid].tenant < tenant)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < w->nmarks && w->marks[lo].tenant == tenant) return &w->marks[lo];
    if (w->nmarks == w->capmarks) {
        size_t cap = w->capmarks ? w->capmarks * 2 : 16;
        wmark *m = realloc(w->marks, cap * sizeof *m);
        if (!m) return NULL;
        w->marks = m;
        w->capmarks = cap;
    }
    memmove(&w->marks[lo + 1], &w->marks[lo], (w->nmarks - lo) * sizeof *w->marks);
    w->nmarks++;
    w->marks[lo] = (wmark){.tenant = tenant};
    return &w->marks[lo];
}

static void round_once(pt_witness *w)
{
    pt_err e;
    pt_err_clear(&e);
    pt_conn *c = pt_app_reader(w->app, &e);
    if (!c) {
        fprintf(stderr, "patto serve: witness: cannot read the checkpoints (%s); retrying next "
                        "round\n", pt_result_str(e.code));
        return;
    }
    hvec hv = {0};
    pt_result rc = pt_db_log_head_list(c, collect_head, &hv);
    pt_app_reader_release(w->app, c);
    if (rc != PT_OK || hv.nomem) {
        fprintf(stderr, "patto serve: witness: cannot read the checkpoints (%s); retrying next "
                        "round\n", hv.nomem ? "out of memory" : pt_result_str(rc));
    } else {
        bool skip[W_N] = {w->url == NULL, w->email == NULL};
        for (size_t i = 0; i < hv.n && !atomic_load(&w->abort); i++) {
            const whead *h = &hv.v[i];
            pt_checkpoint cp;
            if (note_checkpoint(h->note, &cp) != 0) {
                fprintf(stderr, "patto serve: witness: tenant %u has a malformed checkpoint; "
                                "not sent\n", (unsigned)h->tenant);
                continue;
            }
            wmark *m = mark_get(w, h->tenant);
            for (int t = 0; t < W_N && !atomic_load(&w->abort); t++) {
                if (skip[t] || (m && m->sent[t] && m->size[t] == cp.size)) continue;
                int r = t == W_HOOK ? deliver_hook(w, h, &cp) : deliver_mail(w, h, &cp);
                if (r == 0 && m) {
                    m->sent[t] = true;
                    m->size[t] = cp.size;
                }
                if (r < 0) skip[t] = true;
            }
        }
    }
    for (size_t i = 0; i < hv.n; i++) free(hv.v[i].note);
    free(hv.v);
}

static void *witness_main(void *arg)
{
    pt_witness *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        struct timespec next;
        clock_gettime(CLOCK_MONOTONIC, &next);
        next.tv_sec += (time_t)w->interval;
        pthread_mutex_unlock(&w->mu);
        round_once(w);
        pthread_mutex_lock(&w->mu);
        while (!w->stopping && pthread_cond_timedwait(&w->cv, &w->mu, &next) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ------------------------------------------------------------ start, stop */

static void witness_free(pt_witness *w)
{
    if (!w) return;
    if (w->smtp) {
        pt_wipe(w->smtp, strlen(w->smtp));
        free(w->smtp);
    }
    free(w->url);
    free(w->email);
    free(w->from);
    curl_slist_free_all(w->rcpt);
    free(w->marks);
    free(w);
}

/* Scheme of url as curl parses it, or -1 if it does not parse. */
static int url_scheme(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host;
    if (ok) snprintf(out, cap, "%s", scheme);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok ? 0 : -1;
}

/* Does the URL carry a password for a relay that is not on this machine? */
static bool smtp_has_password_off_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *pw = NULL, *host = NULL;
    bool r = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK && pw && *pw &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        r = strcmp(host, "localhost") != 0 && strncmp(host, "127.", 4) != 0 &&
            strcmp(host, "[::1]") != 0;
    curl_free(pw);
    curl_free(host);
    curl_url_cleanup(u);
    return r;
}

static pt_result setup(pt_witness *w, const pt_witness_config *cfg, pt_err *err)
{
    char scheme[16];
    if (cfg->url && *cfg->url) {
        if (url_scheme(cfg->url, scheme, sizeof scheme) != 0 ||
            (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
            return pt_err_set(err, PT_ERR_INVALID, "witness_url",
                              "witness_url must be an http:// or https:// URL");
        if (!(w->url = strdup(cfg->url))) return PT_ERR_NOMEM;
        pt_witness_url_for_log(w->url, w->url_log, sizeof w->url_log);
    }
    if (cfg->email && *cfg->email) {
        if (pt_witness_check_addresses(cfg->email, 1) != 0)
            return pt_err_set(err, PT_ERR_INVALID, "witness_email",
                              "witness_email must be one or more e-mail addresses "
                              "(name@domain), separated by commas");
        const char *from = cfg->from && *cfg->from ? cfg->from : PT_WITNESS_FROM_DEFAULT;
        if (pt_witness_check_addresses(from, 0) != 0 || strlen(from) > 256)
            return pt_err_set(err, PT_ERR_INVALID, "witness_from",
                              "witness_from must be one e-mail address (name@domain)");
        if (!cfg->smtp_url || !*cfg->smtp_url)
            return pt_err_set(err, PT_ERR_INVALID, "smtp_url",
                              "witness_email needs smtp_url (smtp://host:port or "
                              "smtps://host:port)");
        if (url_scheme(cfg->smtp_url, scheme, sizeof scheme) != 0 ||
            (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0))
            return pt_err_set(err, PT_ERR_INVALID, "smtp_url",
                              "smtp_url must be an smtp:// or smtps:// URL");
        w->smtp_tls_implicit = strcmp(scheme, "smtps") == 0;
        w->smtp_tls_required = smtp_has_password_off_loopback(cfg->smtp_url);
        if (!(w->email = strdup(cfg->email)) || !(w->from = strdup(from)) ||
            !(w->smtp = strdup(cfg->smtp_url)))
            return PT_ERR_NOMEM;
        pt_witness_url_for_log(w->smtp, w->smtp_log, sizeof w->smtp_log);
        for (const char *p = w->email;;) {
            while (*p == ' ') p++;
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            while (n && p[n - 1] == ' ') n--;
            char rcpt[260];
            snprintf(rcpt, sizeof rcpt, "<%.*s>", (int)n, p);
            struct curl_slist *t = curl_slist_append(w->rcpt, rcpt);
            if (!t) return PT_ERR_NOMEM;
            w->rcpt = t;
            if (!e) break;
            p = e + 1;
        }
    }
    w->interval = cfg->interval ? cfg->interval : PT_WITNESS_INTERVAL_DEFAULT;
    if (w->interval > PT_WITNESS_INTERVAL_MAX)
        return pt_err_set(err, PT_ERR_INVALID, "witness_interval",
                          "witness_interval must be 1 to %u seconds", PT_WITNESS_INTERVAL_MAX);
    return PT_OK;
}

pt_result pt_witness_start(pt_app *app, const pt_witness_config *cfg, pt_witness **out,
                           pt_err *err)
{
    *out = NULL;
    if ((!cfg->url || !*cfg->url) && (!cfg->email || !*cfg->email)) return PT_OK;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return pt_err_set(err, PT_ERR_INTERNAL, "", "cannot initialise libcurl");
    pt_witness *w = calloc(1, sizeof *w);
    if (!w) {
        curl_global_cleanup();
        return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    }
    w->app = app;
    atomic_init(&w->abort, false);
    pt_result rc = setup(w, cfg, err);
    if (rc == PT_ERR_NOMEM) pt_err_set(err, rc, "", "out of memory");
    if (rc != PT_OK) {
        witness_free(w);
        curl_global_cleanup();
        return rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    if (pthread_create(&w->thread, NULL, witness_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        witness_free(w);
        curl_global_cleanup();
        return pt_err_set(err, PT_ERR_INTERNAL, "", "cannot start the witness thread");
    }
    *out = w;
    return PT_OK;
}

void pt_witness_stop(pt_witness *w)
{
    if (!w) return;
    atomic_store(&w->abort, true);
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    witness_free(w);
    curl_global_cleanup();
}
