/* anonymise.c - people whose basis for processing lapsed become statistics
 * ("data only for statistics" in the brief).
 *
 * A person is anonymised when they no longer have a valid basis for the
 * tenant's `processing` purpose: on a consent basis, a decision was
 * recorded and it is now expired, withdrawn, denied or objected to; on a
 * legitimate-interest basis, they objected; contract and legal obligation
 * stand. The run is one all-or-nothing transaction:
 *   1. the candidates' quasi-identifiers (age, region, sex) are read from
 *      their decrypted profiles and generalised together so that every
 *      stored group holds at least k people (core/kanon.h; groups smaller
 *      than k even at the coarsest level are suppressed: not stored);
 *   2. each person is crypto-shredded as an erasure is (data key, profile,
 *      identifiers; merged ids too), journaled in the erasure journal so a
 *      restored backup cannot bring them back, with a `subject.anonymised`
 *      leaf in the proof log;
 *   3. a statistics record is stored: the generalised values and the
 *      person's purpose states, nothing that identifies anyone.
 * GET /v1/stats reads the records back by any of region, sex, age band and
 * one purpose's state, hiding cells under k. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog.h"
#include "core/ids.h"
#include "core/kanon.h"
#include "core/timefmt.h"
#include "jsonutil.h"
#include "log.h"
#include "service.h"
#include "vault.h"

#define PROCESSING "processing"

/* ---------------------------------------------------------- profile -> qi */

static int year_of(int64_t ms, int *month, int *day)
{
    char t[PT_TIME_STR_MAX];
    pt_time_format(ms, t);
    int y = 0, m = 0, d = 0;
    sscanf(t, "%d-%d-%d", &y, &m, &d);
    *month = m;
    *day = d;
    return y;
}

/* The person's quasi-identifiers, from whichever profile fields hold them:
 * birth_date ("YYYY-MM-DD" or "YYYY"), birth_year or age; region, else the
 * first two characters of postcode; sex or gender. Unknown stays unknown. */
static void qi_of(const json_t *profile, int64_t now, pt_qi *q)
{
    memset(q, 0, sizeof *q);
    q->age = -1;
    int ny, nm, nd;
    ny = year_of(now, &nm, &nd);
    const char *bd = json_string_value(json_object_get(profile, "birth_date"));
    json_t *by = json_object_get(profile, "birth_year"), *age = json_object_get(profile, "age");
    int y = 0, m = 0, d = 0;
    if (bd && sscanf(bd, "%4d-%2d-%2d", &y, &m, &d) >= 1 && y > 1800 && y <= ny) {
        q->age = ny - y;
        if (m && (m > nm || (m == nm && d > nd))) q->age--; /* no birthday yet this year */
    } else if (json_is_integer(by) && json_integer_value(by) > 1800 &&
               json_integer_value(by) <= ny) {
        q->age = ny - (int)json_integer_value(by);
    } else if (json_is_integer(age) && json_integer_value(age) >= 0 &&
               json_integer_value(age) <= 150) {
        q->age = (int)json_integer_value(age);
    }
    const char *region = json_string_value(json_object_get(profile, "region"));
    const char *pc = json_string_value(json_object_get(profile, "postcode"));
    if (region && *region) {
        size_t j = 0;
        for (const char *p = region; *p && j < PT_KANON_REGION_MAX; p++) {
            char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
            q->region[j++] = ch == ' ' ? '-' : ch;
        }
        q->region[j] = '\0';
    } else if (pc && strlen(pc) >= 2) {
        snprintf(q->region, sizeof q->region, "postcode-%.2s", pc);
    }
    const char *sex = json_string_value(json_object_get(profile, "sex"));
    if (!sex) sex = json_string_value(json_object_get(profile, "gender"));
    if (sex) {
        static const char *const F[] = {"f", "female", "donna", "femmina", "woman"};
        static const char *const M[] = {"m", "male", "uomo", "maschio", "man"};
        static const char *const X[] = {"x", "other", "non-binary", "nonbinary", "altro"};
        for (size_t i = 0; i < 5; i++) {
            if (!strcasecmp(sex, F[i])) q->sex = 'f';
            if (!strcasecmp(sex, M[i])) q->sex = 'm';
            if (!strcasecmp(sex, X[i])) q->sex = 'x';
        }
    }
}

/* --------------------------------------------------------------- the run */

typedef struct cand {
    uint8_t id[PT_ID_BYTES];
    pt_qi qi;
    char *states; /* compact JSON, purpose -> state */
} cand;

typedef struct run_ctx {
    uint32_t tenant;
    unsigned k;
    pt_purpose_ref processing;
    uint8_t (*ids)[PT_ID_BYTES];
    size_t nids, capids;
    cand *c;
    size_t n, cap;
    pt_anonymise_stats *st;
    pt_conn *conn;
    bool oom;
} run_ctx;

static int collect_subject(void *ctx, const pt_subject_rec *r)
{
    run_ctx *x = ctx;
    if (r->tenant != x->tenant || r->erased_at) return 0;
    if (x->nids == x->capids) {
        size_t nc = x->capids ? x->capids * 2 : 1024;
        void *np = realloc(x->ids, nc * PT_ID_BYTES);
        if (!np) {
            x->oom = true;
            return 1;
        }
        x->ids = np;
        x->capids = nc;
    }
    memcpy(x->ids[x->nids++], r->id, PT_ID_BYTES);
    return 0;
}

static bool lapsed(const pt_purpose_ref *p, const pt_state_rec *sr, int64_t now)
{
    if (p->rule.basis == PT_BASIS_LEGITIMATE_INTEREST) return sr->st.state == PT_ST_OBJECTED;
    if (p->rule.basis != PT_BASIS_CONSENT) return false; /* contract, law: the basis stands */
    switch (pt_policy_effective(&p->rule, &sr->st, now)) {
    case PT_ST_EXPIRED:
    case PT_ST_WITHDRAWN:
    case PT_ST_DENIED:
    case PT_ST_OBJECTED:
        return true;
    default:
        return false;
    }
}

typedef struct states_ctx {
    pt_app *app;
    uint32_t tenant;
    int64_t now;
    json_t *obj;
} states_ctx;

static int state_member(void *ctx, const pt_state_rec *r)
{
    states_ctx *s = ctx;
    char name[PT_PURPOSE_NAME_MAX + 1];
    pt_purpose_ref ref;
    if (pt_catalog_name(s->app, s->tenant, r->st.purpose_idx, name, &ref) == PT_OK)
        json_object_set_new(s->obj, name,
                            json_string(pt_state_name(pt_policy_effective(&ref.rule, &r->st,
                                                                          s->now))));
    return 0;
}

static size_t stored_count(void *ctx, const pt_qi_gen *g)
{
    run_ctx *x = ctx;
    int64_t n = 0;
    if (pt_db_stats_count(x->conn, x->tenant, g->age, g->region, g->sex, &n) != PT_OK) return 0;
    return n > 0 ? (size_t)n : 0;
}

/* Reads one candidate's profile and states; a merged id is skipped (its
 * survivor is a person of its own). */
static pt_result load_candidate(pt_app *app, run_ctx *x, const uint8_t id[PT_ID_BYTES],
                                int64_t now, pt_err *err)
{
    pt_subject_rec s;
    memset(&s, 0, sizeof s);
    pt_result rc = pt_db_subject_resolve(x->conn, id, &s);
    if (rc != PT_OK || memcmp(s.id, id, PT_ID_BYTES) != 0 || s.erased_at) {
        pt_subject_rec_clear(&s);
        return rc == PT_ERR_NOT_FOUND || rc == PT_OK ? PT_OK : pt_err_set(err, rc, "", "cannot read subjects");
    }
    json_t *profile = NULL;
    if (s.profile && s.profile_len > PT_SEAL_OVERHEAD) {
        uint8_t dek[PT_KEY_BYTES];
        size_t n = s.profile_len - PT_SEAL_OVERHEAD;
        char *plain = malloc(n + 1);
        rc = plain ? pt_vault_dek(app, &s, dek, err) : pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        if (rc == PT_OK &&
            pt_open(dek, "subjects", "profile", s.id, s.profile, s.profile_len, (uint8_t *)plain) ==
                PT_OK) {
            plain[n] = '\0';
            profile = json_loads(plain, 0, NULL);
        }
        pt_wipe(dek, sizeof dek);
        if (plain) pt_wipe(plain, n);
        free(plain);
        if (rc != PT_OK) {
            pt_subject_rec_clear(&s);
            return rc;
        }
    }
    pt_subject_rec_clear(&s);
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 256;
        cand *np = realloc(x->c, nc * sizeof *np);
        if (!np) {
            json_decref(profile);
            return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        }
        x->c = np;
        x->cap = nc;
    }
    cand *c = &x->c[x->n];
    memcpy(c->id, id, PT_ID_BYTES);
    qi_of(profile, now, &c->qi);
    json_decref(profile);
    states_ctx sc = {app, x->tenant, now, json_object()};
    rc = pt_db_state_list_subject(x->conn, id, state_member, &sc);
    c->states = rc == PT_OK ? json_dumps(sc.obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(sc.obj);
    if (rc != PT_OK) return pt_err_set(err, rc, "", "cannot read consent states");
    if (!c->states) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    x->n++;
    return PT_OK;
}

/* The ids merged into a person (identity.c): shredded and journaled with
 * it, since an older backup may hold them as people of their own. */
typedef struct id_list {
    uint8_t (*id)[PT_ID_BYTES];
    size_t n, cap;
    bool oom;
} id_list;

static int alias_collect(void *ctx, const pt_alias_rec *r)
{
    id_list *l = ctx;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        void *np = realloc(l->id, nc * PT_ID_BYTES);
        if (!np) {
            l->oom = true;
            return 1;
        }
        l->id = np;
        l->cap = nc;
    }
    memcpy(l->id[l->n++], r->id, PT_ID_BYTES);
    return 0;
}

/* Appends "erased <id> <tenant> <at>" to the run's journal text. */
static bool journal_line(char **j, size_t *len, size_t *cap, const uint8_t id[PT_ID_BYTES],
                         const char *tenant, const char *at)
{
    if (*len + 256 > *cap) {
        size_t nc = *cap ? *cap * 2 : 65536;
        char *nj = realloc(*j, nc);
        if (!nj) return false;
        *j = nj;
        *cap = nc;
    }
    char sid[PT_ID_STR_MAX];
    pt_id_format("sub", id, sid);
    *len += (size_t)snprintf(*j + *len, *cap - *len, "erased %s %s %s\n", sid, tenant, at);
    return true;
}

typedef struct anon_arg {
    uint32_t tenant;
    unsigned k;
    pt_anonymise_stats *st;
} anon_arg;

static pt_result anonymise_fn(pt_wctx *w, void *arg, pt_err *err)
{
    anon_arg *a = arg;
    pt_app *app = pt_wctx_app(w);
    int64_t now = pt_wctx_now(w);
    run_ctx x = {.tenant = a->tenant, .k = a->k, .st = a->st, .conn = pt_wctx_conn(w)};
    pt_qi *qi = NULL;
    pt_qi_gen *gen = NULL;
    char *journal = NULL;
    size_t jlen = 0, jcap = 0;
    char tname[PT_TENANT_NAME_MAX + 1], at[PT_TIME_STR_MAX];
    pt_result rc = pt_wctx_tenant_name(w, a->tenant, tname);
    if (rc != PT_OK) return pt_err_set(err, rc, "tenant", "no such tenant");
    if (pt_catalog_find(app, a->tenant, PROCESSING, &x.processing) != PT_OK) return PT_OK;
    pt_time_format(now, at);

    /* 1. who lapsed */
    rc = pt_db_subject_scan(x.conn, 0, collect_subject, &x);
    if (rc == PT_OK && x.oom) rc = PT_ERR_NOMEM;
    if (rc != PT_OK) {
        pt_err_set(err, rc, "", "cannot read subjects");
        goto out;
    }
    a->st->scanned += x.nids;
    for (size_t i = 0; i < x.nids; i++) {
        pt_state_rec sr;
        if (pt_db_state_get(x.conn, x.ids[i], x.processing.idx, &sr) != PT_OK) continue;
        if (!lapsed(&x.processing, &sr, now)) continue;
        rc = load_candidate(app, &x, x.ids[i], now, err);
        if (rc != PT_OK) goto out;
    }
    a->st->candidates += x.n;
    if (!x.n) goto out;

    /* 2. generalise together */
    qi = malloc(x.n * sizeof *qi);
    gen = malloc(x.n * sizeof *gen);
    if (!qi || !gen) {
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < x.n; i++) qi[i] = x.c[i].qi;
    if (pt_kanon_place(qi, x.n, a->k, stored_count, &x, gen) != 0) {
        rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
        goto out;
    }

    /* 3. shred, record, log */
    for (size_t i = 0; i < x.n; i++) {
        char sid[PT_ID_STR_MAX];
        pt_id_format("sub", x.c[i].id, sid);
        id_list al = {0};
        rc = pt_db_alias_list(x.conn, x.c[i].id, alias_collect, &al);
        if (rc == PT_OK && al.oom) rc = PT_ERR_NOMEM;
        bool ok = rc == PT_OK && journal_line(&journal, &jlen, &jcap, x.c[i].id, tname, at);
        for (size_t j = 0; ok && j < al.n; j++) {
            int64_t k = 0;
            pt_err e2;
            pt_db_subject_erase(x.conn, al.id[j], now, &k, &e2); /* NOT_FOUND: shredded before */
            ok = journal_line(&journal, &jlen, &jcap, al.id[j], tname, at);
        }
        free(al.id);
        if (!ok) {
            rc = pt_err_set(err, rc != PT_OK ? rc : PT_ERR_NOMEM, "",
                            rc != PT_OK ? "cannot read merged subjects" : "out of memory");
            goto out;
        }
        int64_t nident = 0;
        rc = pt_db_subject_erase(x.conn, x.c[i].id, now, &nident, err);
        if (rc != PT_OK) goto out;
        pt_subject_rec s;
        memset(&s, 0, sizeof s);
        memcpy(s.id, x.c[i].id, PT_ID_BYTES);
        s.tenant = a->tenant;
        s.erased_at = s.updated_at = now;
        pt_wctx_subject_added(w, &s);
        if (gen[i].level >= 0) {
            pt_stat_rec r = {.tenant = a->tenant, .states = x.c[i].states, .created_at = now};
            snprintf(r.age, sizeof r.age, "%s", gen[i].age);
            snprintf(r.region, sizeof r.region, "%s", gen[i].region);
            snprintf(r.sex, sizeof r.sex, "%s", gen[i].sex);
            rc = pt_db_stats_insert(x.conn, &r, err);
            if (rc != PT_OK) goto out;
        } else {
            a->st->suppressed++;
        }
        const pt_leaf_member lm[] = {{"subject", sid, NULL}, {"at", at, NULL}};
        size_t len;
        char *leaf = pt_leaf_build("subject.anonymised", tname, lm, 2, &len);
        if (!leaf) {
            rc = pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
            goto out;
        }
        uint8_t ref[PT_ID_BYTES];
        pt_ordered_id(ref);
        rc = pt_wctx_log(w, a->tenant, ref, 0, leaf, len, NULL, err);
        free(leaf);
        if (rc != PT_OK) goto out;
        a->st->anonymised++;
    }
    pt_wctx_scrub(w);
    /* written ahead of the commit, as erasure.c does: an entry whose
     * transaction then fails is simply completed at the next replay */
    const char *jpath = pt_app_erasure_journal(app);
    if (jpath) rc = pt_erasure_journal_append(jpath, journal, err);
out:
    for (size_t i = 0; i < x.n; i++) free(x.c[i].states);
    free(x.c);
    free(x.ids);
    free(qi);
    free(gen);
    free(journal);
    return rc;
}

pt_result pt_anonymise_run(pt_app *app, uint32_t tenant, unsigned k, pt_anonymise_stats *st,
                           pt_err *err)
{
    memset(st, 0, sizeof *st);
    if (k < PT_ANONYMISE_K_MIN)
        return pt_err_set(err, PT_ERR_INVALID, "k", "k must be at least %d",
                          PT_ANONYMISE_K_MIN);
    anon_arg a = {tenant, k, st};
    return pt_app_bulk(app, anonymise_fn, &a, err);
}

/* ------------------------------------------------------------- the stats */

static const char *const DIMS[] = {"region", "sex", "age", "purpose"};
#define NDIMS 4

typedef struct agg {
    bool by[NDIMS];
    const char *purpose;
    json_t *groups; /* key -> count */
    uint64_t total;
} agg;

static int agg_row(void *ctx, const pt_stat_rec *r)
{
    agg *g = ctx;
    json_t *states = g->by[3] ? json_loads(r->states, 0, NULL) : NULL;
    const char *st = json_string_value(json_object_get(states, g->purpose));
    char key[256];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s", g->by[0] ? r->region : "",
             g->by[1] ? r->sex : "", g->by[2] ? r->age : "", g->by[3] ? (st ? st : "none") : "");
    json_decref(states);
    json_t *c = json_object_get(g->groups, key);
    json_object_set_new(g->groups, key, json_integer(c ? json_integer_value(c) + 1 : 1));
    g->total++;
    return 0;
}

pt_result pt_stats_query(pt_app *app, uint32_t tenant, const char *by, const char *purpose,
                         unsigned k, json_t **out, pt_err *err)
{
    agg g = {.purpose = purpose};
    if (by && *by) {
        char buf[128];
        if (strlen(by) >= sizeof buf)
            return pt_err_set(err, PT_ERR_INVALID, "by", "by is too long");
        snprintf(buf, sizeof buf, "%s", by);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            size_t i = 0;
            while (i < NDIMS && strcmp(t, DIMS[i]) != 0) i++;
            if (i == NDIMS)
                return pt_err_set(err, PT_ERR_INVALID, "by",
                                  "by takes region, sex, age and purpose, comma-separated");
            g.by[i] = true;
        }
    }
    if (g.by[3] && (!purpose || !*purpose))
        return pt_err_set(err, PT_ERR_INVALID, "purpose",
                          "grouping by purpose needs purpose=<name>: whose state to count");
    if (!g.by[3] && purpose)
        return pt_err_set(err, PT_ERR_INVALID, "purpose", "purpose goes with by=...,purpose");
    pt_purpose_ref ref;
    if (purpose && pt_catalog_find(app, tenant, purpose, &ref) != PT_OK)
        return pt_err_set(err, PT_ERR_POLICY, "purpose", "unknown purpose '%s'", purpose);
    pt_conn *c = pt_app_reader(app, err);
    if (!c) return err->code ? err->code : PT_ERR_STORAGE;
    g.groups = json_object();
    pt_result rc = pt_db_stats_list(c, tenant, agg_row, &g);
    pt_app_reader_release(app, c);
    if (rc != PT_OK) {
        json_decref(g.groups);
        return pt_err_set(err, rc, "", "cannot read statistics");
    }
    json_t *arr = json_array();
    uint64_t hidden = 0;
    const char *key;
    json_t *v;
    json_object_foreach(g.groups, key, v)
    {
        json_int_t n = json_integer_value(v);
        /* the stored table is k-anonymous; a cell of one purpose's state
         * can still be small, and is hidden then */
        if ((unsigned long long)n < k) {
            hidden += (uint64_t)n;
            continue;
        }
        char parts[4][128] = {{0}};
        const char *p = key;
        for (int i = 0; i < 4; i++) {
            const char *e = strchr(p, '\x1f');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            snprintf(parts[i], sizeof parts[i], "%.*s", (int)len, p);
            p = e ? e + 1 : p + len;
        }
        json_t *row = json_object();
        for (int i = 0; i < 3; i++)
            if (g.by[i]) json_object_set_new(row, DIMS[i], json_string(parts[i]));
        if (g.by[3]) json_object_set_new(row, "state", json_string(parts[3]));
        json_object_set_new(row, "count", json_integer(n));
        json_array_append_new(arr, row);
    }
    json_decref(g.groups);
    *out = json_pack("{s:I, s:I, s:I, s:o}", "k", (json_int_t)k, "total", (json_int_t)g.total,
                     "hidden", (json_int_t)hidden, "groups", arr);
    if (purpose) json_object_set_new(*out, "purpose", json_string(purpose));
    return PT_OK;
}
