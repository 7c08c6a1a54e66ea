/* main.c - the `patto` command: a thin shell that turns flags into the
 * same service calls the HTTP API makes.
 * Exit status: 0 success, 1 a check that answered "not allowed", 2 usage,
 * 3 runtime failure (one line on stderr saying what and what to do). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "core/crypto.h"
#include "http/http.h"
#include "service/service.h"
#include "service/verify.h"
#include "service/witness.h"

#define EXIT_DENIED 1
#define EXIT_USAGE 2
#define EXIT_FAIL 3
#define MAX_OPTS 24

typedef struct opt_spec {
    const char *name; /* without "--" */
    int has_value;
} opt_spec;

typedef struct args {
    const char *names[MAX_OPTS];
    const char *values[MAX_OPTS];
    int nopts;
    const char *pos[8];
    int npos;
    int help;
} args;

static const char *arg(const args *a, const char *name)
{
    for (int i = 0; i < a->nopts; i++)
        if (strcmp(a->names[i], name) == 0) return a->values[i];
    return NULL;
}

static int usage_error(const char *cmd, const char *fmt, const char *what)
{
    fprintf(stderr, "patto %s: ", cmd);
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (see `patto %s --help`)\n", cmd);
    return EXIT_USAGE;
}

/* Parses argv against spec; "--name value" or "--name=value". */
static int parse(const char *cmd, int argc, char **argv, const opt_spec *spec, args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            a->help = 1;
            continue;
        }
        if (strncmp(s, "--", 2) != 0 || strcmp(s, "-") == 0) {
            if (a->npos == 8) return usage_error(cmd, "too many arguments%s", "");
            a->pos[a->npos++] = s;
            continue;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt_spec *o = NULL;
        for (const opt_spec *p = spec; p->name; p++)
            if (strlen(p->name) == nlen && strncmp(p->name, name, nlen) == 0) o = p;
        if (!o) return usage_error(cmd, "unknown option %s", s);
        if (a->nopts == MAX_OPTS) return usage_error(cmd, "too many options%s", "");
        a->names[a->nopts] = o->name;
        if (o->has_value) {
            if (eq)
                a->values[a->nopts] = eq + 1;
            else if (i + 1 < argc)
                a->values[a->nopts] = argv[++i];
            else
                return usage_error(cmd, "option --%s needs a value", o->name);
        } else {
            a->values[a->nopts] = "1";
        }
        a->nopts++;
    }
    return 0;
}

static int fail(const char *cmd, const pt_err *e)
{
    if (e->field[0])
        fprintf(stderr, "patto %s: %s [%s]\n", cmd, e->detail, e->field);
    else
        fprintf(stderr, "patto %s: %s\n", cmd, e->detail);
    return EXIT_FAIL;
}

static void print_json(const json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2));
    if (s) {
        puts(s);
        free(s);
    }
}

/* Common: --db, --keyring, --config resolve into an opened app. */
static int open_app(const char *cmd, const args *a, bool create, bool serve, unsigned readers,
                    pt_config *cfg, pt_app **app)
{
    pt_err e;
    pt_keyring kr;
    pt_config_defaults(cfg);
    if (pt_config_load(cfg, arg(a, "config"), &e) != PT_OK) return fail(cmd, &e);
    static const char *const keys[] = {"db", "listen", "threads", "keyring", NULL};
    for (const char *const *k = keys; *k; k++)
        if (arg(a, *k) && pt_config_set(cfg, *k, arg(a, *k), &e) != PT_OK) return fail(cmd, &e);
    if (arg(a, "erasure-journal") &&
        pt_config_set(cfg, "erasure_journal", arg(a, "erasure-journal"), &e) != PT_OK)
        return fail(cmd, &e);
    char journal[1100];
    pt_config_erasure_journal_path(cfg, journal, sizeof journal);
    if (pt_config_keyring(cfg, &kr, arg(a, "keyring") != NULL, &e) != PT_OK) return fail(cmd, &e);
    pt_app_config ac = {.db_url = cfg->db, .keyring = &kr, .create = create, .serve = serve,
                        .readers = readers, .erasure_journal = journal[0] ? journal : NULL};
    pt_result rc = pt_app_open(&ac, app, &e);
    pt_keyring_wipe(&kr);
    if (rc != PT_OK) return fail(cmd, &e);
    return 0;
}

static int need_tenant(const char *cmd, pt_app *app, const args *a, uint32_t *tenant)
{
    pt_err e;
    pt_tenant_rec t;
    const char *name = arg(a, "tenant");
    if (!name) return usage_error(cmd, "--tenant NAME is required%s", "");
    if (pt_tenant_find(app, name, &t, &e) != PT_OK) return fail(cmd, &e);
    *tenant = t.id;
    return 0;
}

static int run_op(const char *cmd, pt_app *app, pt_op *op, json_t **out)
{
    pt_result rc = pt_app_write(app, op);
    if (rc != PT_OK) {
        int x = fail(cmd, &op->err);
        pt_op_clear(op);
        return x;
    }
    *out = op->out;
    op->out = NULL;
    pt_op_clear(op);
    return 0;
}

#define COMMON {"db", 1}, {"keyring", 1}, {"config", 1}, {"erasure-journal", 1}

/* ------------------------------------------------------------ init */

static const char DEMO_NOTICE[] =
    "Demo privacy notice (replace it with your own before collecting real consents).\n"
    "We process your data to handle your orders and, with your consent, to send you offers "
    "(marketing, 24 months) and to personalise content (profiling, 12 months). You can change "
    "or withdraw each consent at any time from the link in every e-mail.\n";

static int write_keyring_file(const char *path, const pt_keyring *kr, pt_err *e)
{
    char text[PT_KEYRING_TEXT_MAX];
    size_t n = pt_keyring_format(kr, text);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        pt_wipe(text, sizeof text);
        return pt_err_set(e, PT_ERR_IO, "keyring", "cannot create keyring %s: %s", path,
                          strerror(errno));
    }
    ssize_t w = write(fd, text, n);
    int ok = w == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    pt_wipe(text, sizeof text);
    if (!ok) {
        unlink(path);
        return pt_err_set(e, PT_ERR_IO, "keyring", "cannot write keyring %s", path);
    }
    return PT_OK;
}

static int db_is_postgres(const char *db)
{
    return strncmp(db, "postgres://", 11) == 0 || strncmp(db, "postgresql://", 13) == 0;
}

static int count_tenant(void *ctx, const pt_tenant_rec *r)
{
    (void)r;
    (*(size_t *)ctx)++;
    return 0;
}

/* For init on PostgreSQL, in place of "the file exists": does the
 * database hold patto tenants already? 1 yes, 0 no (or no patto schema
 * yet), -1 error in e. */
static int pg_has_tenants(const char *url, pt_err *e)
{
    pt_store *s = NULL;
    pt_conn *c = NULL;
    size_t n = 0;
    pt_result rc = pt_store_open(url, 0, &s, e);
    if (rc == PT_ERR_NOT_FOUND) return 0;
    if (rc == PT_OK) rc = pt_conn_open(s, &c, e);
    if (rc == PT_OK) {
        rc = pt_db_tenant_list(c, count_tenant, &n);
        if (rc != PT_OK) pt_err_set(e, rc, "db", "cannot read the tenants of the database");
    }
    pt_conn_close(c);
    pt_store_close(s);
    if (rc != PT_OK) return -1;
    return n > 0;
}

static int cmd_init(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"tenant", 1}, {NULL, 0}};
    args a;
    int x = parse("init", argc, argv, spec, &a);
    if (x) return x;
    if (a.help) {
        puts("usage: patto init [--db PATH] [--tenant NAME] [--keyring FILE]\n"
             "Creates the database, the installation's keyring (PATH.keyring, mode 0600,\n"
             "unless PATTO_KEYRING_DATA holds one) and a tenant (default 'demo') with the\n"
             "default purposes and a demo notice 'privacy' version '1'. Prints the tenant's\n"
             "first admin API key alone on stdout: it is shown only once.");
        return 0;
    }
    pt_config cfg;
    pt_err e;
    pt_config_defaults(&cfg);
    if (pt_config_load(&cfg, arg(&a, "config"), &e) != PT_OK) return fail("init", &e);
    if (arg(&a, "db")) pt_config_set(&cfg, "db", arg(&a, "db"), &e);
    if (arg(&a, "keyring") && pt_config_set(&cfg, "keyring", arg(&a, "keyring"), &e) != PT_OK)
        return fail("init", &e);
    const char *dbpath = cfg.db;
    bool pg = db_is_postgres(cfg.db);
    char kpath[1100];
    pt_config_keyring_path(&cfg, kpath, sizeof kpath);
    const char *data = getenv("PATTO_KEYRING_DATA");
    if (pg && !kpath[0] && !(data && *data)) {
        pt_err_set(&e, PT_ERR_INVALID, "keyring",
                   "a PostgreSQL database needs its keyring named: give --keyring FILE, "
                   "PATTO_KEYRING or PATTO_KEYRING_DATA");
        return fail("init", &e);
    }
    if (pg) {
        int has = pg_has_tenants(cfg.db, &e);
        if (has < 0) return fail("init", &e);
        if (has) {
            pt_err_set(&e, PT_ERR_CONFLICT, "db",
                       "the PostgreSQL database holds patto tenants already; use `patto tenant "
                       "create` to add a tenant");
            return fail("init", &e);
        }
    } else {
        if (strncmp(dbpath, "sqlite:", 7) == 0) dbpath += 7;
        if (access(dbpath, F_OK) == 0) {
            pt_err_set(&e, PT_ERR_CONFLICT, "db",
                       "%s exists already; use `patto tenant create` to add a tenant", dbpath);
            return fail("init", &e);
        }
    }
    if (!(data && *data)) {
        if (access(kpath, F_OK) != 0) {
            pt_keyring kr;
            pt_keyring_generate(&kr);
            pt_result rc = write_keyring_file(kpath, &kr, &e);
            pt_keyring_wipe(&kr);
            if (rc != PT_OK) return fail("init", &e);
            fprintf(stderr, "patto: created keyring %s (keep it secret, back it up apart)\n",
                    kpath);
        } else {
            fprintf(stderr, "patto: using existing keyring %s\n", kpath);
        }
    }
    pt_app *app = NULL;
    x = open_app("init", &a, true, false, 2, &cfg, &app);
    if (x) return x;
    const char *tname = arg(&a, "tenant") ? arg(&a, "tenant") : "demo";
    pt_op op;
    json_t *out = NULL;
    if (pt_tenant_create_prepare(app, tname, &op, &e) != PT_OK) {
        pt_app_close(app);
        return fail("init", &e);
    }
    x = run_op("init", app, &op, &out);
    if (x) {
        pt_app_close(app);
        return x;
    }
    /* the demo tenant gets a notice so that the quick start can record a
     * consent straight away */
    pt_tenant_rec t;
    if (pt_tenant_find(app, tname, &t, &e) == PT_OK) {
        json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "notice", "privacy", "version", "1",
                                 "language", "en", "text", DEMO_NOTICE);
        json_t *nout = NULL;
        if (pt_notice_publish_prepare(app, t.id, body, &op, &e) == PT_OK)
            run_op("init", app, &op, &nout);
        json_decref(nout);
        json_decref(body);
    }
    /* a url may hold a password: not echoed */
    fprintf(stderr, "patto: created %s with tenant '%s'; its admin API key follows\n",
            pg ? "the PostgreSQL database" : cfg.db, tname);
    printf("%s\n", json_string_value(json_object_get(json_object_get(out, "admin_key"), "api_key")));
    json_decref(out);
    pt_app_close(app);
    return 0;
}

/* ------------------------------------------------------------ serve */

static int cmd_serve(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"listen", 1}, {"threads", 1}, {"witness-url", 1},
                                    {"witness-email", 1}, {"witness-from", 1}, {"smtp-url", 1},
                                    {"witness-interval", 1}, {NULL, 0}};
    args a;
    int x = parse("serve", argc, argv, spec, &a);
    if (x) return x;
    if (a.help) {
        puts("usage: patto serve [--db PATH] [--listen HOST:PORT] [--threads N] [--keyring FILE]\n"
             "                   [--config FILE] [--witness-url URL] [--witness-email ADDR]\n"
             "                   [--witness-from ADDR] [--smtp-url URL] [--witness-interval S]\n"
             "Serves the HTTP API until SIGTERM or SIGINT, then drains and exits 0.\n"
             "Publishes each tenant's latest checkpoint to the witnesses configured.\n"
             "First replays the erasure journal (--erasure-journal FILE, default\n"
             "PATH.erasures): anyone it names whom the database still holds is erased.\n"
             "Writes 'listening on HOST:PORT' to stderr once it accepts connections.\n"
             "Port 0 picks a free port. Exits 3 if storage fails (a failed fsync).");
        return 0;
    }
    /* Signals are taken synchronously by this thread; every thread started
     * below inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    x = open_app("serve", &a, false, true, 0, &cfg, &app);
    if (x) return x;
    /* before any connection: a restored backup must not show anyone erased since */
    pt_erasure_replay_stats rs;
    if (pt_erasure_replay(app, &rs, &e) != PT_OK) {
        pt_app_close(app);
        return fail("serve", &e);
    }
    if (rs.erased)
        fprintf(stderr, "patto serve: the erasure journal names %llu subject%s this database still "
                        "held: erased again\n",
                (unsigned long long)rs.erased, rs.erased == 1 ? "" : "s");
    if (rs.bad)
        fprintf(stderr, "patto serve: skipped %llu torn or malformed line%s of the erasure journal\n",
                (unsigned long long)rs.bad, rs.bad == 1 ? "" : "s");
    if (!pt_app_erasure_journal(app))
        fputs("patto serve: warning: no erasure journal (set erasure_journal): a restored backup "
              "could bring erased people back\n",
              stderr);
    static const char *const wflags[][2] = {
        {"witness-url", "witness_url"},   {"witness-email", "witness_email"},
        {"witness-from", "witness_from"}, {"smtp-url", "smtp_url"},
        {"witness-interval", "witness_interval"}};
    for (size_t i = 0; i < sizeof wflags / sizeof wflags[0]; i++) {
        const char *v = arg(&a, wflags[i][0]);
        if (v && pt_config_set(&cfg, wflags[i][1], v, &e) != PT_OK) {
            pt_app_close(app);
            return fail("serve", &e);
        }
    }
    (void)app;
    char host[256];
    snprintf(host, sizeof host, "%s", cfg.listen);
    char *colon = strrchr(host, ':');
    char *endp = NULL;
    unsigned long port = colon ? strtoul(colon + 1, &endp, 10) : 0;
    if (!colon || !*(colon + 1) || *endp || port > 65535) {
        pt_app_close(app);
        return usage_error("serve", "--listen must be HOST:PORT, e.g. 127.0.0.1:8080%s", "");
    }
    *colon = '\0';
    char *h = host;
    if (h[0] == '[') { /* [::1]:8080 */
        h++;
        size_t n = strlen(h);
        if (n && h[n - 1] == ']') h[n - 1] = '\0';
    }
    /* before the HTTP threads: libcurl's global init is not thread-safe */
    pt_witness_config wc = {.url = cfg.witness_url, .email = cfg.witness_email,
                            .from = cfg.witness_from, .smtp_url = cfg.smtp_url,
                            .interval = cfg.witness_interval};
    pt_witness *wit = NULL;
    pt_result wrc = pt_witness_start(app, &wc, &wit, &e);
    pt_wipe(cfg.smtp_url, sizeof cfg.smtp_url); /* the witness keeps its own copy */
    if (wrc != PT_OK) {
        pt_app_close(app);
        return fail("serve", &e);
    }
    pt_http_config hc = {.host = h, .port = (uint16_t)port, .threads = cfg.threads,
                         .body_max = cfg.body_max};
    pt_http *srv = NULL;
    if (pt_http_start(app, &hc, &srv, &e) != PT_OK) {
        pt_witness_stop(wit);
        pt_app_close(app);
        return fail("serve", &e);
    }
    fprintf(stderr, "listening on %s%s%s:%u\n", strchr(h, ':') ? "[" : "", h,
            strchr(h, ':') ? "]" : "", pt_http_port(srv));
    fflush(stderr);
    int status = 0;
    for (;;) {
        struct timespec ts = {0, 100 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) break;
        if (pt_app_fatal(app)) {
            fprintf(stderr, "patto serve: storage failed (fsync or I/O error); stopping so that "
                            "nothing unsafe is acknowledged. Check the disk, then restart.\n");
            status = EXIT_FAIL;
            break;
        }
    }
    pt_http_stop(srv);
    pt_witness_stop(wit);
    pt_app_close(app);
    return status;
}

/* ------------------------------------------------------------ tenant, key */

static int cmd_tenant(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {NULL, 0}};
    args a;
    const char *sub = argc > 0 ? argv[0] : "";
    int x = parse("tenant", argc > 0 ? argc - 1 : 0, argv + 1, spec, &a);
    if (x) return x;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) a.help = 1;
    if (a.help || !*sub || (strcmp(sub, "create") && strcmp(sub, "list"))) {
        puts("usage: patto tenant create [--db PATH] NAME   prints the new tenant's admin key\n"
             "       patto tenant list [--db PATH]");
        return a.help ? 0 : EXIT_USAGE;
    }
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    json_t *out = NULL;
    if (strcmp(sub, "create") == 0 && a.npos != 1)
        return usage_error("tenant create", "give the tenant's NAME%s", "");
    x = open_app("tenant", &a, false, false, 2, &cfg, &app);
    if (x) return x;
    if (strcmp(sub, "list") == 0) {
        if (pt_tenant_list(app, &out, &e) != PT_OK) x = fail("tenant list", &e);
        else print_json(out);
    } else {
        pt_op op;
        if (pt_tenant_create_prepare(app, a.pos[0], &op, &e) != PT_OK)
            x = fail("tenant create", &e);
        else if (!(x = run_op("tenant create", app, &op, &out)))
            printf("%s\n", json_string_value(
                               json_object_get(json_object_get(out, "admin_key"), "api_key")));
    }
    json_decref(out);
    pt_app_close(app);
    return x;
}

static int cmd_key(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"tenant", 1}, {"role", 1}, {"label", 1}, {NULL, 0}};
    args a;
    const char *sub = argc > 0 ? argv[0] : "";
    int x = parse("key", argc > 0 ? argc - 1 : 0, argv + 1, spec, &a);
    if (x) return x;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) a.help = 1;
    if (a.help || (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke"))) {
        puts("usage: patto key create --tenant NAME --role ROLE [--label TEXT]   prints the key\n"
             "       patto key list --tenant NAME\n"
             "       patto key revoke --tenant NAME KEY_ID\n"
             "Roles: admin, operator, marketing, auditor, recipient. A key is shown once and\n"
             "stored only as a hash.");
        return a.help ? 0 : EXIT_USAGE;
    }
    if (strcmp(sub, "create") == 0 && !arg(&a, "role"))
        return usage_error("key create", "--role is required%s", "");
    if (strcmp(sub, "revoke") == 0 && a.npos != 1)
        return usage_error("key revoke", "give the KEY_ID (key_...)%s", "");
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    json_t *out = NULL;
    x = open_app("key", &a, false, false, 2, &cfg, &app);
    if (x) return x;
    if ((x = need_tenant("key", app, &a, &tenant))) goto out;
    if (strcmp(sub, "list") == 0) {
        if (pt_key_list(app, tenant, &out, &e) != PT_OK) x = fail("key list", &e);
        else print_json(out);
    } else if (strcmp(sub, "create") == 0) {
        pt_op op;
        json_t *body = json_pack("{s:s, s:s?}", "role", arg(&a, "role"), "label", arg(&a, "label"));
        if (pt_key_create_prepare(app, tenant, body, &op, &e) != PT_OK)
            x = fail("key create", &e);
        else if (!(x = run_op("key create", app, &op, &out)))
            printf("%s\n", json_string_value(json_object_get(out, "api_key")));
        json_decref(body);
    } else {
        pt_op op;
        if (pt_key_revoke_prepare(app, tenant, a.pos[0], &op, &e) != PT_OK)
            x = fail("key revoke", &e);
        else if (!(x = run_op("key revoke", app, &op, &out)))
            print_json(out);
    }
out:
    json_decref(out);
    pt_app_close(app);
    return x;
}

/* ------------------------------------------------------------ notice */

static char *slurp(FILE *f, size_t max, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap >= max) break;
            char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static int cmd_notice(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON,        {"tenant", 1},   {"notice", 1},
                                    {"version", 1}, {"language", 1}, {NULL, 0}};
    args a;
    const char *sub = argc > 0 ? argv[0] : "";
    int x = parse("notice", argc > 0 ? argc - 1 : 0, argv + 1, spec, &a);
    if (x) return x;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) a.help = 1;
    if (a.help || strcmp(sub, "publish") || a.npos != 1) {
        puts("usage: patto notice publish --tenant NAME --notice NAME --version V --language L FILE\n"
             "Publishes the exact text in FILE ('-' for stdin); texts are immutable.");
        return a.help ? 0 : EXIT_USAGE;
    }
    FILE *f = strcmp(a.pos[0], "-") == 0 ? stdin : fopen(a.pos[0], "rb");
    if (!f) {
        fprintf(stderr, "patto notice: cannot read %s: %s\n", a.pos[0], strerror(errno));
        return EXIT_FAIL;
    }
    size_t len = 0;
    char *text = slurp(f, 70000, &len);
    if (f != stdin) fclose(f);
    if (!text) return EXIT_FAIL;
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    json_t *out = NULL;
    x = open_app("notice", &a, false, false, 2, &cfg, &app);
    if (!x && !(x = need_tenant("notice", app, &a, &tenant))) {
        json_t *body = json_pack("{s:s?, s:s?, s:s?, s:s%}", "notice", arg(&a, "notice"),
                                 "version", arg(&a, "version"), "language", arg(&a, "language"),
                                 "text", text, len);
        pt_op op;
        if (!body) {
            fprintf(stderr, "patto notice: the text is not valid UTF-8\n");
            x = EXIT_FAIL;
        } else if (pt_notice_publish_prepare(app, tenant, body, &op, &e) != PT_OK) {
            x = fail("notice publish", &e);
        } else if (!(x = run_op("notice publish", app, &op, &out))) {
            print_json(out);
        }
        json_decref(body);
    }
    free(text);
    json_decref(out);
    pt_app_close(app);
    return x;
}

/* ------------------------------------------------------------ consent */

static int cmd_consent(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON,           {"tenant", 1},      {"subject", 1},
                                    {"email", 1},     {"phone", 1},       {"identifier", 1},
                                    {"purpose", 1},   {"channels", 1},    {"channel", 1},
                                    {"recipient", 1}, {"notice", 1},      {"notice-version", 1},
                                    {"via", 1},       {"evidence", 1},    {"occurred-at", 1},
                                    {"cursor", 1},    {"limit", 1},       {NULL, 0}};
    args a;
    const char *sub = argc > 0 ? argv[0] : "";
    int x = parse("consent", argc > 0 ? argc - 1 : 0, argv + 1, spec, &a);
    if (x) return x;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) a.help = 1;
    bool record = !strcmp(sub, "grant") || !strcmp(sub, "withdraw") || !strcmp(sub, "deny") ||
                  !strcmp(sub, "renew");
    if (a.help || (!record && strcmp(sub, "check") && strcmp(sub, "history"))) {
        puts("usage: patto consent grant|deny|withdraw|renew --tenant T\n"
             "           (--subject sub_... | --email E | --phone +39... | --identifier TYPE:VALUE)\n"
             "           --purpose P [--channels email,sms] [--notice N --notice-version V]\n"
             "           [--via web_form|phone|email_link|paper|import|api] [--evidence JSON]\n"
             "           [--occurred-at 2026-11-29T12:00:00.000Z]\n"
             "       patto consent check --tenant T (--subject sub_... | --email E | --phone P |\n"
             "                           --identifier TYPE:VALUE) --purpose P [--channel C]\n"
             "           [--recipient R]     exit 0 if allowed, 1 if not\n"
             "       patto consent history --tenant T --subject sub_... [--limit N] [--cursor C]\n"
             "grant and renew need the notice shown (--notice, --notice-version).");
        return a.help ? 0 : EXIT_USAGE;
    }
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    json_t *out = NULL, *body = NULL;
    x = open_app("consent", &a, false, false, 2, &cfg, &app);
    if (x) return x;
    if ((x = need_tenant("consent", app, &a, &tenant))) goto out;
    if (!strcmp(sub, "check")) {
        /* by an identifier instead of the subject id, as GET /v1/check */
        const char *itype = arg(&a, "email") ? "email" : arg(&a, "phone") ? "phone" : NULL;
        const char *ivalue = itype ? arg(&a, itype) : NULL;
        char cbuf[512];
        if (!itype && arg(&a, "identifier")) {
            snprintf(cbuf, sizeof cbuf, "%s", arg(&a, "identifier"));
            char *colon = strchr(cbuf, ':');
            if (!colon) {
                x = usage_error("consent check", "--identifier takes TYPE:VALUE%s", "");
                goto out;
            }
            *colon = '\0';
            itype = cbuf;
            ivalue = colon + 1;
        }
        if (itype && arg(&a, "subject")) {
            x = usage_error("consent check", "give --subject or an identifier, not both%s", "");
            goto out;
        }
        pt_result crc =
            itype ? pt_consent_check_identifier(app, tenant, itype, ivalue, arg(&a, "purpose"),
                                                arg(&a, "channel"), arg(&a, "recipient"), &out,
                                                &e)
                  : pt_consent_check(app, tenant, arg(&a, "subject"), arg(&a, "purpose"),
                                     arg(&a, "channel"), arg(&a, "recipient"), &out, &e);
        if (crc != PT_OK) {
            x = fail("consent check", &e);
        } else {
            print_json(out);
            x = json_is_true(json_object_get(out, "allowed")) ? 0 : EXIT_DENIED;
        }
        goto out;
    }
    if (!strcmp(sub, "history")) {
        long limit = arg(&a, "limit") ? strtol(arg(&a, "limit"), NULL, 10) : 1000;
        if (limit < 1 || limit > 1000) {
            x = usage_error("consent history", "--limit is 1 to 1000%s", "");
            goto out;
        }
        if (pt_consent_history(app, tenant, arg(&a, "subject"), arg(&a, "cursor"),
                               (uint32_t)limit, &out, &e) != PT_OK)
            x = fail("consent history", &e);
        else
            print_json(out);
        goto out;
    }
    body = json_pack("{s:s, s:s?, s:s}", "action", sub, "purpose", arg(&a, "purpose"),
                     "collected_via", arg(&a, "via") ? arg(&a, "via") : "api");
    if (arg(&a, "subject")) json_object_set_new(body, "subject", json_string(arg(&a, "subject")));
    const char *itype = NULL, *ival = NULL;
    char ibuf[512];
    if (arg(&a, "email")) itype = "email", ival = arg(&a, "email");
    if (arg(&a, "phone")) itype = "phone", ival = arg(&a, "phone");
    if (arg(&a, "identifier")) {
        snprintf(ibuf, sizeof ibuf, "%s", arg(&a, "identifier"));
        char *c = strchr(ibuf, ':');
        if (!c) {
            x = usage_error("consent", "--identifier takes TYPE:VALUE%s", "");
            goto out;
        }
        *c = '\0';
        itype = ibuf;
        ival = c + 1;
    }
    if (itype) json_object_set_new(body, "identifier", json_pack("{s:s, s:s}", "type", itype, "value", ival));
    if (arg(&a, "channels")) {
        json_t *ch = json_array();
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", arg(&a, "channels"));
        for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(ch, json_string(t));
        json_object_set_new(body, "channels", ch);
    }
    if (arg(&a, "notice") || arg(&a, "notice-version"))
        json_object_set_new(body, "notice", json_pack("{s:s?, s:s?}", "notice", arg(&a, "notice"),
                                                      "version", arg(&a, "notice-version")));
    if (arg(&a, "occurred-at"))
        json_object_set_new(body, "occurred_at", json_string(arg(&a, "occurred-at")));
    if (arg(&a, "evidence")) {
        json_t *ev = json_loads(arg(&a, "evidence"), JSON_REJECT_DUPLICATES, NULL);
        if (!ev) {
            x = usage_error("consent", "--evidence must be a JSON object%s", "");
            goto out;
        }
        json_object_set_new(body, "evidence", ev);
    }
    pt_op op;
    if (pt_consent_prepare(app, tenant, body, &op, &e) != PT_OK)
        x = fail("consent", &e);
    else if (!(x = run_op("consent", app, &op, &out)))
        print_json(out);
out:
    json_decref(body);
    json_decref(out);
    pt_app_close(app);
    return x;
}

/* ------------------------------------------------------------ import/export */

static int cmd_import(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"tenant", 1}, {"format", 1}, {NULL, 0}};
    args a;
    int x = parse("import", argc, argv, spec, &a);
    if (x) return x;
    if (a.help || a.npos != 1) {
        puts("usage: patto import --tenant NAME [--format jsonl|csv] FILE|-\n"
             "Imports consent events recorded elsewhere, with their original times and\n"
             "evidence, in one transaction: a bad record aborts with its line and nothing is\n"
             "written. JSON Lines: one POST /v1/consents body per line. CSV: a header row with\n"
             "columns subject, identifier_type, identifier, purpose, action, channels,\n"
             "notice, notice_version, collected_via, occurred_at, evidence. An unknown\n"
             "identifier or subject id creates the subject.");
        return a.help ? 0 : EXIT_USAGE;
    }
    const char *fmt = arg(&a, "format");
    pt_import_format f = PT_IMPORT_JSONL;
    if (fmt ? !strcmp(fmt, "csv") : (strlen(a.pos[0]) > 4 && !strcmp(a.pos[0] + strlen(a.pos[0]) - 4, ".csv")))
        f = PT_IMPORT_CSV;
    else if (fmt && strcmp(fmt, "jsonl"))
        return usage_error("import", "--format is jsonl or csv%s", "");
    FILE *in = strcmp(a.pos[0], "-") == 0 ? stdin : fopen(a.pos[0], "rb");
    if (!in) {
        fprintf(stderr, "patto import: cannot read %s: %s\n", a.pos[0], strerror(errno));
        return EXIT_FAIL;
    }
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    x = open_app("import", &a, false, false, 2, &cfg, &app);
    if (!x && !(x = need_tenant("import", app, &a, &tenant))) {
        pt_import_stats st;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (pt_import(app, tenant, in, f, &st, &e) != PT_OK) {
            x = fail("import", &e);
        } else {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
            fprintf(stderr, "patto import: %llu events, %llu new subjects in %.2f s (%.0f events/s)\n",
                    (unsigned long long)st.events, (unsigned long long)st.subjects_created, s,
                    s > 0 ? (double)st.events / s : 0.0);
        }
    }
    if (in != stdin) fclose(in);
    pt_app_close(app);
    return x;
}

static int cmd_export(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"tenant", 1}, {NULL, 0}};
    args a;
    int x = parse("export", argc, argv, spec, &a);
    if (x) return x;
    if (a.help || a.npos > 1) {
        puts("usage: patto export --tenant NAME [FILE|-]\n"
             "Writes every consent event of the tenant as JSON Lines, oldest first.");
        return a.help ? 0 : EXIT_USAGE;
    }
    FILE *out = a.npos == 0 || strcmp(a.pos[0], "-") == 0 ? stdout : fopen(a.pos[0], "wb");
    if (!out) {
        fprintf(stderr, "patto export: cannot write %s: %s\n", a.pos[0], strerror(errno));
        return EXIT_FAIL;
    }
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    uint64_t n = 0;
    x = open_app("export", &a, false, false, 2, &cfg, &app);
    if (!x && !(x = need_tenant("export", app, &a, &tenant))) {
        if (pt_export(app, tenant, out, &n, &e) != PT_OK) x = fail("export", &e);
        else if (fflush(out) != 0) {
            fprintf(stderr, "patto export: cannot write the output\n");
            x = EXIT_FAIL;
        } else
            fprintf(stderr, "patto export: %llu events\n", (unsigned long long)n);
    }
    if (out != stdout && fclose(out) != 0 && !x) x = EXIT_FAIL;
    pt_app_close(app);
    return x;
}

/* ------------------------------------------------------------ anonymise */

static int cmd_anonymise(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"tenant", 1}, {"k", 1}, {NULL, 0}};
    args a;
    int x = parse("anonymise", argc, argv, spec, &a);
    if (x) return x;
    if (a.help || a.npos) {
        puts("usage: patto anonymise --tenant NAME [--k N]\n"
             "Turns the tenant's people whose basis for `processing` lapsed (consent expired,\n"
             "withdrawn, denied or objected to; an objection to legitimate interest) into\n"
             "statistical records: their personal data shredded as by an erasure, their age,\n"
             "region and sex generalised so that every group holds at least k people\n"
             "(default and minimum 5). One transaction: all or nothing.");
        return a.help ? 0 : EXIT_USAGE;
    }
    long k = PT_ANONYMISE_K_MIN;
    const char *ks = arg(&a, "k");
    if (ks) {
        char *end = NULL;
        k = strtol(ks, &end, 10);
        if (!*ks || *end || k < PT_ANONYMISE_K_MIN || k > 1000) {
            fprintf(stderr, "patto anonymise: --k must be a number from %d to 1000\n",
                    PT_ANONYMISE_K_MIN);
            return EXIT_USAGE;
        }
    }
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    x = open_app("anonymise", &a, false, false, 2, &cfg, &app);
    if (!x && !(x = need_tenant("anonymise", app, &a, &tenant))) {
        pt_anonymise_stats st;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (pt_anonymise_run(app, tenant, (unsigned)k, &st, &e) != PT_OK) {
            x = fail("anonymise", &e);
        } else {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
            fprintf(stderr,
                    "patto anonymise: %llu people looked at, %llu anonymised (%llu of them "
                    "suppressed: group under k=%ld) in %.2f s (%.0f people/s)\n",
                    (unsigned long long)st.scanned, (unsigned long long)st.anonymised,
                    (unsigned long long)st.suppressed, k, s,
                    s > 0 ? (double)st.anonymised / s : 0.0);
        }
    }
    pt_app_close(app);
    return x;
}

/* ------------------------------------------------------------ migrate */

static int cmd_migrate(int argc, char **argv)
{
    static const opt_spec spec[] = {{"from", 1}, {"to", 1}, {"keyring", 1}, {"config", 1},
                                    {NULL, 0}};
    args a;
    int x = parse("migrate", argc, argv, spec, &a);
    if (x) return x;
    if (a.help) {
        puts("usage: patto migrate --from URL --to URL [--keyring FILE]\n"
             "Copies a whole installation (tenants, keys, purposes, notices, subjects,\n"
             "identifiers, every consent event in order, consent states) from one database\n"
             "to another, e.g. --from sqlite:patto.db --to postgres://user@host/patto, in one\n"
             "transaction: all or nothing. The destination must be empty (a new database);\n"
             "writers to the source wait while it is read, so stop the servers first.\n"
             "Personal data moves sealed: the source's keyring (--keyring, PATTO_KEYRING or\n"
             "SOURCE.keyring) is required and keeps working with the destination.\n"
             "Prints what it copied to stderr.");
        return 0;
    }
    if (a.npos) return usage_error("migrate", "unexpected argument %s", a.pos[0]);
    const char *from = arg(&a, "from"), *to = arg(&a, "to");
    if (!from || !to) return usage_error("migrate", "--from URL and --to URL are required%s", "");
    pt_config cfg;
    pt_err e;
    pt_keyring kr;
    pt_config_defaults(&cfg);
    if (pt_config_load(&cfg, arg(&a, "config"), &e) != PT_OK) return fail("migrate", &e);
    /* the keyring belongs to the source: FROM.keyring unless named */
    if (pt_config_set(&cfg, "db", from, &e) != PT_OK) return fail("migrate", &e);
    if (arg(&a, "keyring") && pt_config_set(&cfg, "keyring", arg(&a, "keyring"), &e) != PT_OK)
        return fail("migrate", &e);
    if (pt_config_keyring(&cfg, &kr, arg(&a, "keyring") != NULL, &e) != PT_OK)
        return fail("migrate", &e);
    pt_migrate_stats st;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pt_result rc = pt_migrate(from, to, &kr, &st, &e);
    pt_keyring_wipe(&kr);
    if (rc != PT_OK) return fail("migrate", &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr,
            "patto migrate: copied %llu tenants, %llu API keys, %llu purposes, %llu notices, "
            "%llu subjects, %llu identifiers, %llu events, %llu consent states, "
            "%llu proof-log leaves (%llu subtree hashes, %llu signed heads) in %.2f s\n",
            (unsigned long long)st.tenants, (unsigned long long)st.keys,
            (unsigned long long)st.purposes, (unsigned long long)st.notices,
            (unsigned long long)st.subjects, (unsigned long long)st.identifiers,
            (unsigned long long)st.events, (unsigned long long)st.states,
            (unsigned long long)st.log_leaves, (unsigned long long)st.log_nodes,
            (unsigned long long)st.log_heads, s);
    return 0;
}

/* ------------------------------------------------------------ erasure, backups, keys */

/* Config and keyring as open_app resolves them, without opening the app
 * (restore and rotation open the database themselves). */
static int load_config(const char *cmd, const args *a, pt_config *cfg, char *journal, size_t cap)
{
    pt_err e;
    pt_config_defaults(cfg);
    if (pt_config_load(cfg, arg(a, "config"), &e) != PT_OK) return fail(cmd, &e);
    static const char *const keys[] = {"db", "keyring", NULL};
    for (const char *const *k = keys; *k; k++)
        if (arg(a, *k) && pt_config_set(cfg, *k, arg(a, *k), &e) != PT_OK) return fail(cmd, &e);
    if (arg(a, "erasure-journal") &&
        pt_config_set(cfg, "erasure_journal", arg(a, "erasure-journal"), &e) != PT_OK)
        return fail(cmd, &e);
    pt_config_erasure_journal_path(cfg, journal, cap);
    return 0;
}

/* patto subject export: GET /v1/subjects/{subject}/export (rights.c). */
static int cmd_subject_export(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"tenant", 1}, {NULL, 0}};
    args a;
    int x = parse("subject export", argc, argv, spec, &a);
    if (x) return x;
    if (a.help || a.npos != 1) {
        puts("usage: patto subject export --tenant NAME [--db PATH] SUBJECT\n"
             "Prints everything held on the person (GDPR Art. 15 and 20) as one JSON document,\n"
             "as GET /v1/subjects/SUBJECT/export does: profile and identifiers decrypted, every\n"
             "consent event with its notice and evidence, the current consents, the ids merged\n"
             "into the person. SUBJECT may be an id merged into another: the survivor answers.");
        return a.help ? 0 : EXIT_USAGE;
    }
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    json_t *out = NULL;
    x = open_app("subject export", &a, false, false, 2, &cfg, &app);
    if (x) return x;
    if (!(x = need_tenant("subject export", app, &a, &tenant))) {
        if (pt_subject_export(app, tenant, a.pos[0], &out, &e) != PT_OK)
            x = fail("subject export", &e);
        else
            print_json(out);
    }
    json_decref(out);
    pt_app_close(app);
    return x;
}

static int cmd_subject(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {"tenant", 1}, {NULL, 0}};
    args a;
    if (argc > 0 && !strcmp(argv[0], "export")) return cmd_subject_export(argc - 1, argv + 1);
    const char *sub = argc > 0 ? argv[0] : "";
    int x = parse("subject", argc > 0 ? argc - 1 : 0, argv + 1, spec, &a);
    if (x) return x;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) a.help = 1;
    if (a.help || strcmp(sub, "erase") || a.npos != 1) {
        puts("usage: patto subject erase --tenant NAME [--db PATH] SUBJECT\n"
             "       patto subject export --tenant NAME [--db PATH] SUBJECT   (see --help)\n"
             "Erases a person (GDPR Art. 17) by crypto-shredding, as DELETE /v1/subjects/SUBJECT\n"
             "does: the person's data key, profile and identifiers are destroyed, the consent\n"
             "events stay (their evidence unreadable), the erasure is appended to the erasure\n"
             "journal (PATH.erasures) and to the proof log. Prints the erasure receipt.");
        return a.help ? 0 : EXIT_USAGE;
    }
    pt_config cfg;
    pt_app *app = NULL;
    pt_err e;
    uint32_t tenant;
    json_t *out = NULL;
    x = open_app("subject erase", &a, false, false, 2, &cfg, &app);
    if (x) return x;
    if (!(x = need_tenant("subject erase", app, &a, &tenant))) {
        pt_op op;
        if (pt_subject_erase_prepare(app, tenant, a.pos[0], &op, &e) != PT_OK)
            x = fail("subject erase", &e);
        else if (!(x = run_op("subject erase", app, &op, &out)))
            print_json(out);
    }
    json_decref(out);
    pt_app_close(app);
    return x;
}

static int cmd_backup(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {NULL, 0}};
    args a;
    int x = parse("backup", argc, argv, spec, &a);
    if (x) return x;
    if (a.help || a.npos != 1) {
        puts("usage: patto backup [--db PATH] DEST\n"
             "Writes a consistent copy of the SQLite database to the new file DEST (mode 0600)\n"
             "while the server keeps running. Needs no keyring: keep the keyring apart.\n"
             "PostgreSQL: use pg_dump or continuous archiving (PITR) instead.");
        return a.help ? 0 : EXIT_USAGE;
    }
    pt_config cfg;
    pt_err e;
    char journal[1100];
    if ((x = load_config("backup", &a, &cfg, journal, sizeof journal))) return x;
    if (pt_backup(cfg.db, a.pos[0], &e) != PT_OK) return fail("backup", &e);
    fprintf(stderr, "patto backup: wrote %s\n", a.pos[0]);
    return 0;
}

static int cmd_restore(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {NULL, 0}};
    args a;
    int x = parse("restore", argc, argv, spec, &a);
    if (x) return x;
    if (a.help || a.npos != 1) {
        puts("usage: patto restore [--db PATH] [--keyring FILE] [--erasure-journal FILE] SRC\n"
             "Replaces the SQLite database with the backup SRC (made by patto backup), in one\n"
             "transaction, after replaying the erasure journal (PATH.erasures) into it: every\n"
             "person erased since the backup is erased again. Stop patto serve first.\n"
             "Refuses a backup whose people are wrapped under a key epoch the keyring no\n"
             "longer holds (destroyed by patto keys rotate).");
        return a.help ? 0 : EXIT_USAGE;
    }
    pt_config cfg;
    pt_err e;
    pt_keyring kr;
    char journal[1100];
    if ((x = load_config("restore", &a, &cfg, journal, sizeof journal))) return x;
    if (pt_config_keyring(&cfg, &kr, arg(&a, "keyring") != NULL, &e) != PT_OK)
        return fail("restore", &e);
    pt_app_config ac = {.db_url = cfg.db, .keyring = &kr, .readers = 2,
                        .erasure_journal = journal[0] ? journal : NULL};
    pt_erasure_replay_stats st;
    pt_result rc = pt_restore(&ac, a.pos[0], &st, &e);
    pt_keyring_wipe(&kr);
    if (rc != PT_OK) return fail("restore", &e);
    fprintf(stderr,
            "patto restore: restored %s from %s; erasure journal: %llu entries, %llu erased "
            "again, %llu erased in the backup already, %llu not in it, %llu skipped\n",
            cfg.db, a.pos[0], (unsigned long long)st.entries, (unsigned long long)st.erased,
            (unsigned long long)st.already, (unsigned long long)st.absent,
            (unsigned long long)st.bad);
    if (!journal[0])
        fputs("patto restore: warning: no erasure journal configured: nobody erased since the "
              "backup was erased again\n",
              stderr);
    return 0;
}

static int cmd_keys(int argc, char **argv)
{
    static const opt_spec spec[] = {COMMON, {NULL, 0}};
    args a;
    const char *sub = argc > 0 ? argv[0] : "";
    int x = parse("keys", argc > 0 ? argc - 1 : 0, argv + 1, spec, &a);
    if (x) return x;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) a.help = 1;
    if (a.help || strcmp(sub, "rotate") || a.npos) {
        puts("usage: patto keys rotate [--db PATH] [--keyring FILE]\n"
             "Rotates the key-encryption key: adds a new epoch to the keyring file, re-wraps\n"
             "every live person's data key under it, then removes the old epochs from the file\n"
             "(their bytes overwritten). Backups taken before then no longer decrypt with the\n"
             "keyring. Safe to interrupt: run it again to finish. Stop patto serve first, and\n"
             "start it again afterwards.");
        return a.help ? 0 : EXIT_USAGE;
    }
    pt_config cfg;
    pt_err e;
    char journal[1100], kpath[1100];
    if ((x = load_config("keys rotate", &a, &cfg, journal, sizeof journal))) return x;
    const char *data = getenv("PATTO_KEYRING_DATA");
    if (!arg(&a, "keyring") && data && *data) {
        pt_err_set(&e, PT_ERR_INVALID, "keyring",
                   "keys rotate rewrites the keyring file; the keyring comes from "
                   "PATTO_KEYRING_DATA: write it to a file, rotate with --keyring FILE, then store "
                   "the new file's text in place of the old");
        return fail("keys rotate", &e);
    }
    pt_config_keyring_path(&cfg, kpath, sizeof kpath);
    if (!kpath[0]) {
        pt_err_set(&e, PT_ERR_INVALID, "keyring", "name the keyring file with --keyring FILE");
        return fail("keys rotate", &e);
    }
    pt_app_config ac = {.db_url = cfg.db, .readers = 2,
                        .erasure_journal = journal[0] ? journal : NULL};
    pt_rotate_stats st;
    if (pt_keys_rotate(&ac, kpath, &st, &e) != PT_OK) return fail("keys rotate", &e);
    fprintf(stderr,
            "patto keys rotate: %s%llu data keys re-wrapped under key epoch %u; %u old epoch%s "
            "destroyed in %s\n",
            st.resumed ? "finished an interrupted rotation: " : "",
            (unsigned long long)st.rewrapped, st.epoch, st.dropped, st.dropped == 1 ? "" : "s",
            kpath);
    return 0;
}

/* ------------------------------------------------------------ verify */

/* Reads all of path ("-" for stdin when allow_stdin) if it holds at most
 * max bytes; otherwise NULL with a one-line reason in why. */
static char *read_bounded(const char *path, bool allow_stdin, size_t max, size_t *len,
                          char *why, size_t why_cap)
{
    bool in = allow_stdin && strcmp(path, "-") == 0;
    FILE *f = in ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(why, why_cap, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 2);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    bool failed = !buf || ferror(f);
    if (!in) fclose(f);
    if (failed || n > max) {
        if (!buf)
            snprintf(why, why_cap, "out of memory");
        else if (failed)
            snprintf(why, why_cap, "cannot read %s", in ? "standard input" : path);
        else
            snprintf(why, why_cap, "%s is larger than %zu bytes", in ? "standard input" : path,
                     max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Exit 0 verified, 1 not verified (or unreadable), 2 usage: docs/log.md. */
static int cmd_verify(int argc, char **argv)
{
    static const opt_spec spec[] = {{"checkpoint", 1}, {"key", 1}, {NULL, 0}};
    args a;
    int x = parse("verify", argc, argv, spec, &a);
    if (x) return x;
    if (a.help) {
        puts("usage: patto verify RECEIPT.json [--checkpoint FILE] [--key VERIFIER]\n"
             "Checks a consent receipt offline, with no database and no keyring: the\n"
             "checkpoint's Ed25519 signature, the leaf's inclusion proof under it, and that\n"
             "the signed leaf says what the receipt says. RECEIPT.json is a receipt or a\n"
             "saved POST /v1/consents answer ('-' for stdin).\n"
             "  --key VERIFIER     the log key you trust (NAME+KEYID+BASE64, as\n"
             "                     GET /v1/log/keys lists it); without it the receipt's own\n"
             "                     public_key is used\n"
             "  --checkpoint FILE  a later signed checkpoint of the same size (same root), or\n"
             "                     the JSON of GET /v1/log/proof/consistency?from=TREE_SIZE,\n"
             "                     which must prove that the later log extends the receipt's\n"
             "Exit 0 verified; 1 not verified, with one line on stderr saying why; 2 usage.");
        return 0;
    }
    if (a.npos != 1) return usage_error("verify", "give one RECEIPT.json%s", "");
    const char *cpath = arg(&a, "checkpoint"), *key = arg(&a, "key");
    char why[512];
    size_t rlen = 0, llen = 0;
    char *receipt = read_bounded(a.pos[0], true, PT_VERIFY_RECEIPT_MAX, &rlen, why, sizeof why);
    char *later = NULL;
    if (receipt && cpath)
        later = read_bounded(cpath, false, PT_VERIFY_LATER_MAX, &llen, why, sizeof why);
    if (!receipt || (cpath && !later)) {
        fprintf(stderr, "patto verify: %s\n", why);
        free(receipt);
        return EXIT_DENIED;
    }
    pt_verify_input in = {.receipt = receipt, .receipt_len = rlen, .later = later,
                          .later_len = llen, .key = key, .key_len = key ? strlen(key) : 0};
    pt_verify_info info;
    pt_err e;
    if (pt_verify_receipt(&in, &info, &e) != PT_OK) {
        if (e.field[0])
            fprintf(stderr, "patto verify: not verified: %s [%s]\n", e.detail, e.field);
        else
            fprintf(stderr, "patto verify: not verified: %s\n", e.detail);
        x = EXIT_DENIED;
    } else {
        printf("verified: %s is leaf %llu of %s at size %llu, signed by %s+%s", info.event,
               (unsigned long long)info.leaf_index, info.origin,
               (unsigned long long)info.tree_size, info.key_name, info.key_id);
        if (later)
            printf("; the checkpoint at size %llu %s it", (unsigned long long)info.later_size,
                   info.later_size == info.tree_size ? "confirms" : "extends");
        putchar('\n');
        if (!key)
            fputs("patto verify: the key is the receipt's own public_key; pass --key with the "
                  "log's key (GET /v1/log/keys) to pin it\n",
                  stderr);
    }
    free(receipt);
    free(later);
    return x;
}

static int cmd_routes(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    pt_route_info r[64];
    size_t n = pt_http_routes(r, 64);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && i < 64; i++) {
        json_t *roles = json_array();
        for (int k = 0; k < PT_ROLE__COUNT; k++)
            if (r[i].roles & PT_ROLE_BIT(k)) json_array_append_new(roles, json_string(pt_role_name((pt_role)k)));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:b}", "method", r[i].method, "path",
                                             r[i].path, "roles", roles, "public", r[i].roles == 0));
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(arr);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: patto COMMAND [options]   (patto COMMAND --help for each)\n"
          "  init          create a database, its keyring and a first tenant\n"
          "  serve         serve the HTTP API\n"
          "  tenant        create | list tenants\n"
          "  key           create | list | revoke API keys\n"
          "  notice        publish a notice text\n"
          "  consent       grant | deny | withdraw | renew | check | history\n"
          "  import        import consent events (CSV or JSON Lines)\n"
          "  export        export consent events (JSON Lines)\n"
          "  migrate       copy a whole installation to another database\n"
          "  subject       erase a person (crypto-shredding)\n"
          "  backup        write a consistent copy of the database\n"
          "  restore       restore a backup, replaying the erasure journal\n"
          "  keys          rotate the key-encryption key\n"
          "  anonymise     turn people whose basis lapsed into k-anonymous statistics\n"
          "  routes        print the HTTP route table\n"
          "  verify        check a consent receipt and its proof offline\n"
          "  --version     print the version\n",
          f);
}

int main(int argc, char **argv)
{
    if (pt_crypto_init() != 0) {
        fputs("patto: libsodium failed to initialise\n", stderr);
        return EXIT_FAIL;
    }
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("patto %s\n", PATTO_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } CMDS[] = {{"init", cmd_init},       {"serve", cmd_serve},   {"tenant", cmd_tenant},
                {"key", cmd_key},         {"notice", cmd_notice}, {"consent", cmd_consent},
                {"import", cmd_import},   {"export", cmd_export}, {"routes", cmd_routes},
                {"migrate", cmd_migrate}, {"verify", cmd_verify},
                {"subject", cmd_subject}, {"backup", cmd_backup}, {"restore", cmd_restore},
                {"keys", cmd_keys},       {"anonymise", cmd_anonymise}};
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
        if (!strcmp(cmd, CMDS[i].name)) return CMDS[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "patto: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
