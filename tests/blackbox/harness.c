/* harness.c - see harness.h. */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const bb_roles[BB_NROLES] = {"admin", "operator", "marketing", "auditor", "recipient"};

/* Settings that would make the binary read something other than the
 * test's own database and keyring. */
static const char *const PATTO_ENV[] = {
    "PATTO_CONFIG",  "PATTO_DB",           "PATTO_LISTEN",   "PATTO_THREADS",
    "PATTO_KEYRING", "PATTO_KEYRING_DATA", "PATTO_BODY_MAX", NULL};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *bb_bin(void)
{
    static char path[PATH_MAX];
    if (path[0]) return path;
    const char *b = getenv("PATTO_BIN");
    if (!b || !*b) b = "build/patto";
    if (!realpath(b, path)) snprintf(path, sizeof path, "%s", b);
    return path;
}

/* ------------------------------------------------------------ processes */

static void child_exec(char *const argv[], int out_fd, const char *stderr_path)
{
    for (const char *const *e = PATTO_ENV; *e; e++)
        unsetenv(*e);
    /* the server must not outlive the process that started it */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) dup2(null, 0);
    if (out_fd >= 0)
        dup2(out_fd, 1);
    else if (null >= 0)
        dup2(null, 1);
    int err =
        stderr_path ? open(stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : null;
    if (err >= 0) dup2(err, 2);
    execv(argv[0], argv);
    fprintf(stderr, "blackbox: cannot exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int bb_cli(char *out, size_t cap, bool last_line, const char *stderr_path, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)bb_bin();
    va_list ap;
    va_start(ap, stderr_path);
    for (const char *a; n < 39 && (a = va_arg(ap, const char *));)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;

    int p[2];
    if (pipe(p) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        child_exec(argv, p[1], stderr_path);
    }
    close(p[1]);
    size_t len = 0;
    char buf[4096];
    if (out && cap) out[0] = '\0';
    for (;;) {
        ssize_t r = read(p[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (out && cap) {
            size_t take = (size_t)r;
            if (take > cap - 1 - len) take = cap - 1 - len;
            memcpy(out + len, buf, take);
            len += take;
            out[len] = '\0';
        }
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    if (out && cap && last_line) {
        while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
            out[--len] = '\0';
        char *nl = strrchr(out, '\n');
        if (nl) memmove(out, nl + 1, strlen(nl + 1) + 1);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------ PostgreSQL mode */

/* The base url of PostgreSQL mode, or NULL for SQLite. */
static const char *pg_base(void)
{
    const char *v = getenv("PATTO_TEST_PG");
    return v && *v ? v : NULL;
}

/* Runs one SQL command with psql on the base url; its output goes to log
 * (NULL: /dev/null). Returns psql's exit status, or -1. */
static int pg_psql(const char *sql, const char *log)
{
    const char *psql = getenv("PATTO_TEST_PSQL");
    if (!psql || !*psql) psql = "psql";
    char *argv[] = {(char *)psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", (char *)pg_base(),
                    "-c", (char *)sql, NULL};
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        int out = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : null;
        if (null >= 0) dup2(null, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* base with its database name replaced by db (query string kept). */
static int pg_url(const char *base, const char *db, char *out, size_t cap)
{
    const char *p = strstr(base, "://");
    if (!p) return -1;
    p += 3;
    const char *q = strchr(p, '?');
    const char *slash = strchr(p, '/');
    if (slash && q && slash > q) slash = NULL;
    size_t head = slash ? (size_t)(slash - base) : q ? (size_t)(q - base) : strlen(base);
    int n = snprintf(out, cap, "%.*s/%s%s", (int)head, base, db, q ? q : "");
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Creates a fresh database for s and fills s->db, s->pgdb, s->keyring. */
static int pg_create(bb_server *s, const char *log, char *err, size_t errcap)
{
    unsigned char rnd[4] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) memset(rnd, 0, sizeof rnd);
        close(fd);
    }
    snprintf(s->pgdb, sizeof s->pgdb, "patto_bb_%ld_%02x%02x%02x%02x", (long)getpid(), rnd[0],
             rnd[1], rnd[2], rnd[3]);
    if (pg_url(pg_base(), s->pgdb, s->db, sizeof s->db) != 0) {
        snprintf(err, errcap, "PATTO_TEST_PG='%s' is not a postgres:// url", pg_base());
        s->pgdb[0] = '\0';
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", s->pgdb);
    int rc = pg_psql(sql, log);
    if (rc != 0) {
        snprintf(err, errcap, "psql exited %d creating database %s on %s (see %s)", rc, s->pgdb,
                 pg_base(), log);
        s->pgdb[0] = '\0';
        return -1;
    }
    snprintf(s->keyring, sizeof s->keyring, "%s/keyring", s->dir);
    return 0;
}

static void pg_drop(bb_server *s)
{
    if (!s->pgdb[0] || !pg_base()) return;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->pgdb);
    if (pg_psql(sql, NULL) != 0)
        fprintf(stderr, "blackbox: could not drop database %s\n", s->pgdb);
    s->pgdb[0] = '\0';
}

int bb_server_init_db(bb_server *s, const char *tenant, char *err, size_t errcap)
{
    memset(s, 0, sizeof *s);
    s->pid = -1;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    snprintf(s->dir, sizeof s->dir, "%s/patto-bb-XXXXXX", tmp);
    if (!mkdtemp(s->dir)) {
        snprintf(err, errcap, "mkdtemp %s: %s", s->dir, strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->db, sizeof s->db, "%s/patto.db", s->dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", s->dir);
    char clilog[700];
    snprintf(clilog, sizeof clilog, "%s/cli.log", s->dir);
    if (pg_base() && pg_create(s, clilog, err, errcap) != 0) return -1;
    /* SQLite mode: the NULL after --tenant NAME ends the arguments */
    int rc = bb_cli(s->admin_key, sizeof s->admin_key, true, clilog, "init", "--db", s->db,
                    "--tenant", tenant ? tenant : BB_TENANT_A,
                    s->keyring[0] ? "--keyring" : NULL, s->keyring, (char *)NULL);
    if (rc != 0 || strncmp(s->admin_key, "patto_", 6) != 0) {
        snprintf(err, errcap, "`%s init --db %s` exited %d and printed '%s' (see %s)", bb_bin(),
                 s->db, rc, s->admin_key, clilog);
        return -1;
    }
    return 0;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

static void read_from(const char *path, off_t off, char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = pread(fd, buf, cap - 1, off);
    close(fd);
    if (n > 0) buf[n] = '\0';
}

int bb_server_spawn(bb_server *s, char *err, size_t errcap)
{
    char listen_arg[] = "127.0.0.1:0";
    char *argv[] = {(char *)bb_bin(), "serve", "--db", s->db, "--listen", listen_arg,
                    s->keyring[0] ? "--keyring" : NULL, s->keyring, NULL};
    off_t start = file_size(s->log);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errcap, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) child_exec(argv, -1, s->log);
    s->pid = pid;
    s->port = 0;
    char buf[8192];
    for (int waited = 0; waited < 30000; waited += 10) {
        read_from(s->log, start, buf, sizeof buf);
        const char *l = strstr(buf, "listening on 127.0.0.1:");
        if (l && strchr(l, '\n')) {
            s->port = atoi(l + strlen("listening on 127.0.0.1:"));
            if (s->port > 0 && s->port < 65536) return 0;
            snprintf(err, errcap, "cannot parse the port from: %.200s", l);
            return -1;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = -1;
            snprintf(err, errcap, "patto serve died before listening (status %d): %.2000s", st,
                     buf);
            return -1;
        }
        sleep_ms(10);
    }
    snprintf(err, errcap, "patto serve did not print 'listening on' within 30 s: %.2000s", buf);
    return -1;
}

int bb_server_stop(bb_server *s, bool *exited0)
{
    int st = -1;
    *exited0 = false;
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    for (int waited = 0; waited < 20000; waited += 5) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = -1;
            *exited0 = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            return st;
        }
        if (r < 0 && errno != EINTR) break;
        sleep_ms(5);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = -1;
    return st;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bb_server_cleanup(bb_server *s)
{
    pg_drop(s);
    if (s->dir[0]) nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = '\0';
}

/* ------------------------------------------------------------ runner main */

static void env_name(char *out, size_t cap, const char *role)
{
    snprintf(out, cap, "BB_KEY_%s", role);
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
}

int bb_main(int argc, char **argv)
{
    struct criterion_test_set *tests = criterion_initialize();
    if (!criterion_handle_args(argc, argv, true)) {
        criterion_finalize(tests);
        return 0;
    }
    bb_server srv;
    char err[2600], clilog[700];
    if (bb_server_init_db(&srv, BB_TENANT_A, err, sizeof err) != 0) {
        fprintf(stderr, "blackbox: %s\n", err);
        if (!getenv("BB_KEEP")) pg_drop(&srv);
        criterion_finalize(tests);
        return 1;
    }
    /* PostgreSQL mode: every CLI call names the keyring; in SQLite mode
     * the NULL in its place ends the arguments */
    const char *kr_flag = srv.keyring[0] ? "--keyring" : NULL;
    snprintf(clilog, sizeof clilog, "%s/cli.log", srv.dir);
    setenv("PATTO_BIN", bb_bin(), 1);
    setenv("BB_KEY_ADMIN", srv.admin_key, 1);
    for (int i = 1; i < BB_NROLES; i++) {
        char key[160], name[64];
        int rc = bb_cli(key, sizeof key, true, clilog, "key", "create", "--db", srv.db, "--tenant",
                        BB_TENANT_A, "--role", bb_roles[i], kr_flag, srv.keyring, (char *)NULL);
        if (rc != 0 || strncmp(key, "patto_", 6) != 0) {
            fprintf(stderr, "blackbox: `patto key create --role %s` exited %d: '%s'\n", bb_roles[i],
                    rc, key);
            if (!getenv("BB_KEEP")) pg_drop(&srv);
            criterion_finalize(tests);
            return 1;
        }
        env_name(name, sizeof name, bb_roles[i]);
        setenv(name, key, 1);
    }
    char keyb[160];
    int rc = bb_cli(keyb, sizeof keyb, true, clilog, "tenant", "create", "--db", srv.db,
                    BB_TENANT_B, kr_flag, srv.keyring, (char *)NULL);
    if (rc != 0 || strncmp(keyb, "patto_", 6) != 0) {
        fprintf(stderr, "blackbox: `patto tenant create %s` exited %d: '%s'\n", BB_TENANT_B, rc,
                keyb);
        if (!getenv("BB_KEEP")) pg_drop(&srv);
        criterion_finalize(tests);
        return 1;
    }
    setenv("BB_KEY_B", keyb, 1);
    if (bb_server_spawn(&srv, err, sizeof err) != 0) {
        fprintf(stderr, "blackbox: %s\n", err);
        if (!getenv("BB_KEEP")) pg_drop(&srv);
        criterion_finalize(tests);
        return 1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", srv.port);
    setenv("BB_PORT", port, 1);
    setenv("BB_DB", srv.db, 1);
    setenv("BB_DIR", srv.dir, 1);

    int result = criterion_run_all_tests(tests) ? 0 : 1;

    bool ok;
    int st = bb_server_stop(&srv, &ok);
    if (!ok) {
        char log[4096];
        read_from(srv.log, file_size(srv.log) > 3000 ? file_size(srv.log) - 3000 : 0, log,
                  sizeof log);
        fprintf(stderr,
                "blackbox: FAIL: `patto serve` did not exit 0 on SIGTERM (wait status %d:%s "
                "%d); its stderr ends with:\n%s\n",
                st, WIFEXITED(st) ? " exit" : " signal",
                WIFEXITED(st)     ? WEXITSTATUS(st)
                : WIFSIGNALED(st) ? WTERMSIG(st)
                                  : -1,
                log);
        result = 1;
    }
    if (result == 0 && !getenv("BB_KEEP")) {
        bb_server_cleanup(&srv);
    } else {
        if (!getenv("BB_KEEP")) pg_drop(&srv); /* BB_KEEP keeps the database too */
        fprintf(stderr, "blackbox: kept %s%s%s for inspection\n", srv.dir,
                srv.pgdb[0] ? " and database " : "", srv.pgdb);
    }
    criterion_finalize(tests);
    return result;
}

/* ------------------------------------------------------------ worker context */

static struct {
    int port;
    const char *db, *dir, *keys[BB_NROLES], *key_b;
    bool curl;
} ctx;

static pthread_mutex_t track_mu = PTHREAD_MUTEX_INITIALIZER;
enum { T_MEM, T_RESP, T_JSON };
static struct tracked {
    void *p;
    int kind;
} * track;
static size_t ntrack, track_cap;

static void *tracked(void *p, int kind)
{
    if (!p) return NULL;
    pthread_mutex_lock(&track_mu);
    if (ntrack == track_cap) {
        size_t nc = track_cap ? track_cap * 2 : 256;
        struct tracked *nt = realloc(track, nc * sizeof *nt);
        if (!nt) abort();
        track = nt;
        track_cap = nc;
    }
    track[ntrack].p = p;
    track[ntrack].kind = kind;
    ntrack++;
    pthread_mutex_unlock(&track_mu);
    return p;
}

static const char *env_req(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v,
              "environment variable %s is not set: run the test binary itself (its main "
              "starts the server), not through another runner",
              name);
    return v;
}

void bb_suite_init(void)
{
    ctx.port = atoi(env_req("BB_PORT"));
    ctx.db = env_req("BB_DB");
    ctx.dir = env_req("BB_DIR");
    for (int i = 0; i < BB_NROLES; i++) {
        char name[64];
        env_name(name, sizeof name, bb_roles[i]);
        ctx.keys[i] = env_req(name);
    }
    ctx.key_b = env_req("BB_KEY_B");
    if (!ctx.curl) {
        cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
        ctx.curl = true;
    }
}

static CURL *shared_handle;

void bb_suite_fini(void)
{
    pthread_mutex_lock(&track_mu);
    for (size_t i = 0; i < ntrack; i++) {
        if (track[i].kind == T_JSON) {
            json_decref(track[i].p);
            continue;
        }
        if (track[i].kind == T_RESP) bb_resp_clear(track[i].p);
        free(track[i].p);
    }
    free(track);
    track = NULL;
    ntrack = track_cap = 0;
    pthread_mutex_unlock(&track_mu);
    if (shared_handle) curl_easy_cleanup(shared_handle);
    shared_handle = NULL;
    if (ctx.curl) curl_global_cleanup();
    ctx.curl = false;
}

int bb_port(void)
{
    return ctx.port;
}
const char *bb_db(void)
{
    return ctx.db;
}
const char *bb_dir(void)
{
    return ctx.dir;
}
const char *bb_key_b(void)
{
    return ctx.key_b;
}

const char *bb_key(const char *role)
{
    for (int i = 0; i < BB_NROLES; i++)
        if (strcmp(bb_roles[i], role) == 0) return ctx.keys[i];
    cr_assert_fail("no key for role '%s'", role);
    return NULL;
}

/* ------------------------------------------------------------ HTTP */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    buf *b = ud;
    size_t n = size * nmemb;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return 0;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static void header_value(char *dst, size_t cap, const char *line, size_t n, size_t name_len)
{
    const char *v = line + name_len;
    size_t vl = n - name_len;
    while (vl && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= cap) vl = cap - 1;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    bb_resp *r = ud;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue): forget the previous headers */
        r->content_type[0] = r->www_authenticate[0] = r->allow[0] = r->cache_control[0] = '\0';
        return n;
    }
    static const struct {
        const char *name;
        size_t off, cap;
    } H[] = {
        {"content-type:", offsetof(bb_resp, content_type), sizeof((bb_resp *)0)->content_type},
        {"www-authenticate:", offsetof(bb_resp, www_authenticate),
         sizeof((bb_resp *)0)->www_authenticate},
        {"allow:", offsetof(bb_resp, allow), sizeof((bb_resp *)0)->allow},
        {"cache-control:", offsetof(bb_resp, cache_control), sizeof((bb_resp *)0)->cache_control},
    };
    for (size_t i = 0; i < sizeof H / sizeof H[0]; i++) {
        size_t nl = strlen(H[i].name);
        if (n >= nl && strncasecmp(data, H[i].name, nl) == 0)
            header_value((char *)r + H[i].off, H[i].cap, data, n, nl);
    }
    return n;
}

typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
    upload *u = ud;
    size_t n = size * nmemb;
    if (n > u->left) n = u->left;
    if (n > 1000) n = 1000; /* several chunks */
    memcpy(dst, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

void bb_resp_clear(bb_resp *r)
{
    if (!r) return;
    free(r->body);
    r->body = NULL;
    json_decref(r->json);
    r->json = NULL;
}

int bb_request(CURL *h, const bb_req *q, bb_resp *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->method, sizeof out->method, "%s", q->method);
    snprintf(out->path, sizeof out->path, "%s", q->path);
    curl_easy_reset(h);
    char url[700], line[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", ctx.port, q->path);
    struct curl_slist *hdrs = NULL;
    if (q->auth_header) {
        hdrs = curl_slist_append(hdrs, q->auth_header);
    } else if (q->key) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", q->key);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (q->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", q->content_type);
        hdrs = curl_slist_append(hdrs, line);
    } else if (q->has_body) {
        hdrs = curl_slist_append(hdrs, "Content-Type:"); /* none at all */
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    upload up = {q->body, q->body_len};
    if (q->has_body && q->chunked) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
    } else if (q->has_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    } else if (strcmp(q->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(q->method, "GET") != 0 || q->has_body)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    buf b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, out->curl_error);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        if (!out->curl_error[0])
            snprintf(out->curl_error, sizeof out->curl_error, "%s", curl_easy_strerror(rc));
        free(b.p);
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &out->connects);
    if (!b.p) {
        b.p = calloc(1, 1);
        if (!b.p) return -1;
    }
    out->body = b.p;
    out->body_len = b.n;
    if (b.n) out->json = json_loadb(b.p, b.n, 0, NULL);
    return 0;
}

bb_resp *bb_do(const bb_req *req)
{
    if (!shared_handle) shared_handle = curl_easy_init();
    cr_assert_not_null(shared_handle);
    bb_resp *r = tracked(calloc(1, sizeof *r), T_RESP);
    cr_assert_not_null(r);
    int rc = bb_request(shared_handle, req, r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", req->method, req->path, r->curl_error);
    return r;
}

bb_resp *bb_http(const char *method, const char *path, const char *key, const char *content_type,
                 const char *body)
{
    bb_req q = {.method = method,
                .path = path,
                .key = key,
                .content_type = content_type,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .has_body = body != NULL};
    return bb_do(&q);
}

bb_resp *bb_get(const char *path, const char *key)
{
    return bb_http("GET", path, key, NULL, NULL);
}

bb_resp *bb_send(const char *method, const char *path, const char *key, json_t *body)
{
    cr_assert_not_null(body, "%s %s: the test built no JSON body", method, path);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    cr_assert_not_null(s);
    tracked(s, T_MEM);
    return bb_http(method, path, key, "application/json", s);
}

static bool media_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void bb_assert_problem(const bb_resp *r, long status, const char *field)
{
    cr_assert_eq(r->status, status, "%s %s: status %ld, expected %ld; body: %.400s", r->method,
                 r->path, r->status, status, r->body);
    cr_assert(media_type_is(r->content_type, "application/problem+json"),
              "%s %s (%ld): Content-Type '%s', expected application/problem+json", r->method,
              r->path, r->status, r->content_type);
    cr_assert(json_is_object(r->json), "%s %s (%ld): the problem body is not a JSON object: %.300s",
              r->method, r->path, r->status, r->body);
    const json_t *t = json_object_get(r->json, "type");
    cr_assert(json_is_string(t) && strncmp(json_string_value(t), "urn:patto:problem:", 18) == 0 &&
                  json_string_length(t) > 18,
              "%s %s: problem type must be urn:patto:problem:<slug>: %.300s", r->method, r->path,
              r->body);
    const json_t *ti = json_object_get(r->json, "title");
    cr_assert(json_is_string(ti) && json_string_length(ti) > 0,
              "%s %s: problem title missing: %.300s", r->method, r->path, r->body);
    const json_t *st = json_object_get(r->json, "status");
    cr_assert(json_is_integer(st) && json_integer_value(st) == status,
              "%s %s: problem status member must be %ld: %.300s", r->method, r->path, status,
              r->body);
    const json_t *d = json_object_get(r->json, "detail");
    cr_assert(json_is_string(d) && json_string_length(d) > 0,
              "%s %s: problem detail missing: %.300s", r->method, r->path, r->body);
    const json_t *in = json_object_get(r->json, "instance");
    cr_assert(json_is_string(in), "%s %s: problem instance missing: %.300s", r->method, r->path,
              r->body);
    if (field) {
        const json_t *f = json_object_get(r->json, "field");
        cr_assert(json_is_string(f) && strcmp(json_string_value(f), field) == 0,
                  "%s %s: problem field must be '%s': %.400s", r->method, r->path, field, r->body);
    }
}

void bb_assert_json(const bb_resp *r, long status)
{
    cr_assert_eq(r->status, status, "%s %s: status %ld, expected %ld; body: %.600s", r->method,
                 r->path, r->status, status, r->body);
    cr_assert(media_type_is(r->content_type, "application/json"),
              "%s %s: Content-Type '%s', expected application/json", r->method, r->path,
              r->content_type);
    cr_assert(json_is_object(r->json), "%s %s: the body is not a JSON object: %.300s", r->method,
              r->path, r->body);
}

json_t *bb_track_json(json_t *v)
{
    cr_assert_not_null(v);
    return tracked(v, T_JSON);
}

char *bb_server_log_tail(const bb_server *s, size_t max)
{
    char *buf = tracked(malloc(max + 1), T_MEM);
    cr_assert_not_null(buf);
    off_t size = file_size(s->log);
    read_from(s->log, size > (off_t)max ? size - (off_t)max : 0, buf, max + 1);
    return buf;
}

/* ------------------------------------------------------------ strings */

char *bb_strdup(const char *s)
{
    char *d = tracked(strdup(s), T_MEM);
    cr_assert_not_null(d);
    return d;
}

char *bb_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0);
    return tracked(s, T_MEM);
}

char *bb_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *o = tracked(malloc(3 * n + 1), T_MEM);
    cr_assert_not_null(o);
    char *p = o;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return o;
}

char *bb_unique(const char *prefix)
{
    static int counter;
    return bb_fmt("%s-%ld-%d", prefix, (long)getpid(), ++counter);
}

char *bb_random_subject_id(void)
{
    static const char alpha[] = "0123456789abcdefghjkmnpqrstvwxyz";
    static const char last[] = "048cgmrw"; /* the two padding bits zero */
    unsigned char rnd[26];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(read(fd, rnd, sizeof rnd), (ssize_t)sizeof rnd);
    close(fd);
    char id[32] = "sub_";
    for (int i = 0; i < 25; i++)
        id[4 + i] = alpha[rnd[i] & 31];
    id[29] = last[rnd[25] & 7];
    id[30] = '\0';
    return bb_strdup(id);
}

/* ------------------------------------------------------------ JSON */

static const char *dump(const json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    return s ? tracked(s, T_MEM) : "(null)";
}

const char *bb_jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "member '%s' is not a string in %.500s", key, dump(o));
    return json_string_value(v);
}

json_int_t bb_jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "member '%s' is not an integer in %.500s", key, dump(o));
    return json_integer_value(v);
}

bool bb_jbool(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_boolean(v), "member '%s' is not a boolean in %.500s", key, dump(o));
    return json_is_true(v);
}

json_t *bb_jarr(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_array(v), "member '%s' is not an array in %.500s", key, dump(o));
    return v;
}

json_t *bb_jobj(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_object(v), "member '%s' is not an object in %.500s", key, dump(o));
    return v;
}

bool bb_jnull(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert_not_null(v, "member '%s' is missing in %.500s", key, dump(o));
    return json_is_null(v);
}

/* ------------------------------------------------------------ time */

int64_t bb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *bb_time(int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    return bb_fmt("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int64_t bb_parse_time(const char *s)
{
    struct tm tm;
    int ms = 0, used = 0;
    memset(&tm, 0, sizeof tm);
    int n = sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used);
    cr_assert(n == 7 && used == 24 && s[used] == '\0',
              "'%s' is not an RFC 3339 UTC time with milliseconds", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ------------------------------------------------------------ SHA-256 */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void bb_sha256_hex(const void *data, size_t len, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t left = len;
    while (left >= 64) {
        sha_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t tail[128];
    memset(tail, 0, sizeof tail);
    if (left) memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha_block(h, tail);
    if (tl == 128) sha_block(h, tail + 64);
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* ------------------------------------------------------------ API shortcuts */

char *bb_create_subject(const char *key, const char *email)
{
    json_t *body =
        email ? json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "email", "value", email)
              : json_pack("{s:{s:s}}", "profile", "note", "blackbox");
    bb_resp *r = bb_send("POST", "/v1/subjects", key, body);
    bb_assert_json(r, 201);
    const char *id = bb_jstr(r->json, "subject");
    cr_assert(strncmp(id, "sub_", 4) == 0, "subject id '%s' lacks the sub_ prefix", id);
    return bb_strdup(id);
}

bb_resp *bb_consent(const char *key, const char *subject, const char *purpose, const char *action,
                    const char *channels, const char *occurred_at)
{
    json_t *b = json_pack("{s:s, s:s, s:s, s:s}", "subject", subject, "purpose", purpose, "action",
                          action, "collected_via", "api");
    if (strcmp(action, "grant") == 0 || strcmp(action, "renew") == 0)
        json_object_set_new(b, "notice",
                            json_pack("{s:s, s:s}", "notice", "privacy", "version", "1"));
    if (channels) {
        json_t *c = json_loads(channels, 0, NULL);
        cr_assert_not_null(c, "bad channels text in the test: %s", channels);
        json_object_set_new(b, "channels", c);
    }
    if (occurred_at) json_object_set_new(b, "occurred_at", json_string(occurred_at));
    return bb_send("POST", "/v1/consents", key, b);
}

size_t bb_history_len(const char *key, const char *subject)
{
    size_t n = 0;
    const char *cursor = NULL;
    for (int pages = 0; pages < 100; pages++) {
        char *path = cursor ? bb_fmt("/v1/subjects/%s/consents/history?limit=1000&cursor=%s",
                                     subject, bb_urlencode(cursor))
                            : bb_fmt("/v1/subjects/%s/consents/history?limit=1000", subject);
        bb_resp *r = bb_get(path, key);
        bb_assert_json(r, 200);
        n += json_array_size(bb_jarr(r->json, "events"));
        if (bb_jnull(r->json, "next_cursor")) return n;
        cursor = bb_jstr(r->json, "next_cursor");
    }
    cr_assert_fail("history of %s does not end after 100 pages", subject);
    return n;
}

bb_resp *bb_check(const char *key, const char *subject, const char *purpose, const char *channel,
                  const char *recipient)
{
    char *path = bb_fmt("/v1/check?subject=%s&purpose=%s%s%s%s%s", bb_urlencode(subject),
                        bb_urlencode(purpose), channel ? "&channel=" : "",
                        channel ? bb_urlencode(channel) : "", recipient ? "&recipient=" : "",
                        recipient ? bb_urlencode(recipient) : "");
    return bb_get(path, key);
}
