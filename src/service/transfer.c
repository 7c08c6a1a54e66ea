/* transfer.c - bulk movement of consent history: `patto import` of events
 * recorded elsewhere (CSV or JSON Lines, with their original times and
 * evidence) and `patto export` as JSON Lines.
 *
 * An import runs in one transaction: a bad record aborts it with its line
 * number and nothing is written. Each record goes through the same parse
 * and apply as POST /v1/consents, so an import obeys the same rules. */
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/csv.h"
#include "core/ids.h"
#include "core/jsonscan.h"
#include "ledger.h"
#include "service.h"
#include "vault.h"

#define PT_IMPORT_LINE_MAX (64 * 1024)

/* CSV columns that may appear in the header row, mapped to the JSON body. */
static const char *const CSV_COLUMNS[] = {
    "subject",       "identifier_type", "identifier",  "purpose",  "action", "channels",
    "notice",        "notice_version",  "collected_via", "occurred_at", "evidence", NULL};

typedef struct import_ctx {
    pt_app *app;
    uint32_t tenant;
    FILE *in;
    pt_import_format fmt;
    pt_import_stats *stats;
    char *buf; /* CSV: whole input */
    pt_subject_hint hint;
} import_ctx;

static json_t *csv_row_to_json(char **names, size_t ncols, char **fields, size_t nfields,
                               pt_err *err)
{
    json_t *o = json_object();
    const char *itype = NULL, *ival = NULL, *nname = NULL, *nver = NULL;
    for (size_t i = 0; i < ncols && i < nfields; i++) {
        const char *k = names[i], *v = fields[i];
        if (!*v) continue; /* an empty cell is an absent field */
        if (strcmp(k, "identifier_type") == 0)
            itype = v;
        else if (strcmp(k, "identifier") == 0)
            ival = v;
        else if (strcmp(k, "notice") == 0)
            nname = v;
        else if (strcmp(k, "notice_version") == 0)
            nver = v;
        else if (strcmp(k, "channels") == 0) {
            /* "email;sms" or "email sms" */
            json_t *a = json_array();
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", v);
            for (char *save = NULL, *t = strtok_r(tmp, "; ,", &save); t;
                 t = strtok_r(NULL, "; ,", &save))
                json_array_append_new(a, json_string(t));
            json_object_set_new(o, "channels", a);
        } else if (strcmp(k, "evidence") == 0) {
            json_error_t je;
            json_t *ev = json_loads(v, JSON_REJECT_DUPLICATES, &je);
            if (!ev) {
                json_decref(o);
                pt_err_set(err, PT_ERR_INVALID, "evidence", "column evidence is not JSON");
                return NULL;
            }
            json_object_set_new(o, "evidence", ev);
        } else {
            json_object_set_new(o, k, json_string(v));
        }
    }
    if (itype || ival)
        json_object_set_new(o, "identifier",
                            json_pack("{s:s?, s:s?}", "type", itype, "value", ival));
    if (nname || nver)
        json_object_set_new(o, "notice", json_pack("{s:s?, s:s?}", "notice", nname, "version", nver));
    return o;
}

static pt_result import_one(pt_wctx *w, import_ctx *x, const json_t *body, pt_err *err)
{
    pt_consent_arg a;
    pt_result rc = pt_consent_parse(x->app, x->tenant, body, &a, err);
    if (rc == PT_OK) {
        a.create_missing_subject = true;
        a.hint = &x->hint;
        rc = pt_consent_apply(w, &a, NULL, err);
        if (rc == PT_OK) {
            x->stats->events++;
            if (a.created_subject) x->stats->subjects_created++;
        }
    }
    pt_consent_arg_clear(&a);
    return rc;
}

static pt_result with_line(pt_err *err, size_t line)
{
    char detail[PT_ERR_DETAIL_MAX];
    snprintf(detail, sizeof detail, "line %zu: %.280s", line, err->detail);
    memcpy(err->detail, detail, sizeof detail);
    return err->code;
}

static pt_result import_jsonl(pt_wctx *w, import_ctx *x, pt_err *err)
{
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    pt_result rc = PT_OK;
    while ((len = getline(&line, &cap, x->in)) != -1) {
        n++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if ((size_t)len > PT_IMPORT_LINE_MAX ||
            pt_jsonscan(line, (size_t)len, PT_JSON_MAX_DEPTH, NULL) != PT_JSONSCAN_OK) {
            pt_err_set(err, PT_ERR_INVALID, "", "not a JSON object within limits");
            rc = with_line(err, n);
            break;
        }
        json_error_t je;
        json_t *body = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je);
        if (!body) {
            pt_err_set(err, PT_ERR_INVALID, "", "malformed JSON at column %d", je.column);
            rc = with_line(err, n);
            break;
        }
        rc = import_one(w, x, body, err);
        json_decref(body);
        if (rc != PT_OK) {
            rc = with_line(err, n);
            break;
        }
    }
    if (rc == PT_OK && ferror(x->in)) rc = pt_err_set(err, PT_ERR_IO, "", "cannot read the input");
    free(line);
    return rc;
}

static pt_result import_csv(pt_wctx *w, import_ctx *x, pt_err *err)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    pt_result rc = PT_OK;
    if (!buf) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, x->in);
        len += r;
        if (r == 0) break;
    }
    if (len == cap) { /* room for the reader's final NUL */
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        }
        buf = nb;
    }
    if (ferror(x->in)) {
        free(buf);
        return pt_err_set(err, PT_ERR_IO, "", "cannot read the input");
    }
    if (!pt_utf8_valid(buf, len)) {
        free(buf);
        return pt_err_set(err, PT_ERR_INVALID, "", "the CSV is not valid UTF-8");
    }
    pt_csv csv;
    char *names[PT_CSV_MAX_FIELDS], *fields[PT_CSV_MAX_FIELDS];
    size_t lens[PT_CSV_MAX_FIELDS];
    pt_csv_init(&csv, buf, len);
    int ncols = pt_csv_next(&csv, names, lens);
    if (ncols <= 0) {
        free(buf);
        return pt_err_set(err, PT_ERR_INVALID, "", "the CSV needs a header row naming columns");
    }
    for (int i = 0; i < ncols; i++) {
        bool known = false;
        for (const char *const *c = CSV_COLUMNS; *c; c++) known = known || strcmp(*c, names[i]) == 0;
        if (!known) {
            rc = pt_err_set(err, PT_ERR_INVALID, names[i],
                            "unknown CSV column '%.64s'; columns: subject, identifier_type, "
                            "identifier, purpose, action, channels, notice, notice_version, "
                            "collected_via, occurred_at, evidence",
                            names[i]);
            free(buf);
            return rc;
        }
    }
    int nf;
    while ((nf = pt_csv_next(&csv, fields, lens)) > 0) {
        if (nf != ncols) {
            pt_err_set(err, PT_ERR_INVALID, "", "%d fields where the header has %d", nf, ncols);
            rc = with_line(err, csv.line);
            break;
        }
        json_t *body = csv_row_to_json(names, (size_t)ncols, fields, (size_t)nf, err);
        if (!body) {
            rc = with_line(err, csv.line);
            break;
        }
        rc = import_one(w, x, body, err);
        json_decref(body);
        if (rc != PT_OK) {
            rc = with_line(err, csv.line);
            break;
        }
    }
    if (rc == PT_OK && nf < 0) {
        pt_err_set(err, PT_ERR_INVALID, "", "malformed CSV record (quotes?)");
        rc = with_line(err, csv.line);
    }
    free(buf);
    return rc;
}

static pt_result import_fn(pt_wctx *w, void *arg, pt_err *err)
{
    import_ctx *x = arg;
    return x->fmt == PT_IMPORT_CSV ? import_csv(w, x, err) : import_jsonl(w, x, err);
}

pt_result pt_import(pt_app *app, uint32_t tenant, FILE *in, pt_import_format fmt,
                    pt_import_stats *stats, pt_err *err)
{
    import_ctx x = {.app = app, .tenant = tenant, .in = in, .fmt = fmt, .stats = stats};
    memset(stats, 0, sizeof *stats);
    pt_result rc = pt_app_bulk(app, import_fn, &x, err);
    pt_wipe(&x.hint, sizeof x.hint);
    if (rc != PT_OK) memset(stats, 0, sizeof *stats);
    return rc;
}

/* ---- export ---- */

typedef struct export_ctx {
    pt_app *app;
    pt_conn *c;
    FILE *out;
    uint64_t n;
    uint8_t last[PT_ID_BYTES];
    uint8_t dek[PT_KEY_BYTES];
    bool have_dek;
    pt_result rc;
} export_ctx;

static int export_event(void *ctx, const pt_event_rec *e)
{
    export_ctx *x = ctx;
    if (e->evidence && (!x->have_dek || memcmp(x->last, e->subject, PT_ID_BYTES) != 0)) {
        pt_subject_rec s;
        x->have_dek = false;
        if (pt_db_subject_get(x->c, e->subject, &s) == PT_OK) {
            x->have_dek = !s.erased_at && pt_vault_dek(x->app, &s, x->dek, NULL) == PT_OK;
            pt_subject_rec_clear(&s);
        }
        memcpy(x->last, e->subject, PT_ID_BYTES);
    }
    json_t *doc = pt_event_doc(e, x->have_dek ? x->dek : NULL);
    json_object_del(doc, "seq");
    char *line = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!line || fputs(line, x->out) == EOF || fputc('\n', x->out) == EOF) {
        x->rc = PT_ERR_IO;
        free(line);
        return 1;
    }
    free(line);
    x->n++;
    return 0;
}

pt_result pt_export(pt_app *app, uint32_t tenant, FILE *out, uint64_t *count, pt_err *err)
{
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err ? err->code : PT_ERR_STORAGE;
    export_ctx x = {.app = app, .c = c, .out = out, .rc = PT_OK};
    /* a second connection reads subjects while the first streams events */
    pt_conn *c2 = pt_app_reader(app, err);
    if (!c2) {
        pt_app_reader_release(app, c);
        return err ? err->code : PT_ERR_STORAGE;
    }
    x.c = c2;
    pt_result rc = pt_db_event_list_tenant(c, tenant, 0, 0, export_event, &x);
    if (rc == PT_OK) rc = x.rc;
    pt_wipe(x.dek, sizeof x.dek);
    pt_app_reader_release(app, c2);
    pt_app_reader_release(app, c);
    if (count) *count = x.n;
    if (rc == PT_ERR_IO) return pt_err_set(err, rc, "", "cannot write the output");
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read events");
    return PT_OK;
}
