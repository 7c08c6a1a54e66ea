#include "store_backends.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *pg_base(void)
{
    const char *v = getenv("PATTO_TEST_PG");
    return v && *v ? v : NULL;
}

/* base with its database name replaced by db (query string kept). */
static void pg_url(const char *base, const char *db, char *out, size_t cap)
{
    const char *p = strstr(base, "://");
    cr_assert(p, "PATTO_TEST_PG is not a url: %s", base);
    p += 3;
    const char *q = strchr(p, '?');
    const char *slash = strchr(p, '/');
    if (slash && q && slash > q) slash = NULL;
    size_t head = slash ? (size_t)(slash - base) : q ? (size_t)(q - base) : strlen(base);
    snprintf(out, cap, "%.*s/%s%s", (int)head, base, db, q ? q : "");
}

static void pg_admin(const char *sql)
{
    PGconn *pg = PQconnectdb(pg_base());
    cr_assert_eq(PQstatus(pg), CONNECTION_OK, "cannot connect to %s: %s", pg_base(),
                 PQerrorMessage(pg));
    PGresult *r = PQexec(pg, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
}

static void open_backend(backend *b, bool postgres, const char *tag, int min_schema)
{
    memset(b, 0, sizeof *b);
    pt_err err;
    if (postgres) {
        b->name = "postgres";
        snprintf(b->pgdb, sizeof b->pgdb, "patto_%s_%ld_%u", tag, (long)getpid(),
                 (unsigned)(rand() & 0xffffff));
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", b->pgdb);
        pg_admin(sql);
        pg_url(pg_base(), b->pgdb, b->url, sizeof b->url);
    } else {
        b->name = "sqlite";
        const char *tmp = getenv("TMPDIR");
        snprintf(b->dir, sizeof b->dir, "%s/patto-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
        cr_assert(mkdtemp(b->dir));
        snprintf(b->url, sizeof b->url, "sqlite:%s/patto.db", b->dir);
    }
    cr_assert_eq(pt_store_open(b->url, 1, &b->store, &err), PT_OK, "%s: open: %s", b->name,
                 err.detail);
    cr_assert_geq(pt_store_schema_version(b->store), min_schema, "%s: schema too old", b->name);
    cr_assert_eq(pt_conn_open(b->store, &b->c, &err), PT_OK, "%s: %s", b->name, err.detail);
}

static void close_backend(backend *b)
{
    pt_conn_close(b->c);
    pt_store_close(b->store);
    if (b->pgdb[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", b->pgdb);
        pg_admin(sql);
    }
    if (b->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
        cr_assert_eq(system(cmd), 0);
    }
}

void store_each_backend(void (*fn)(backend *b), const char *tag, int min_schema)
{
    srand((unsigned)getpid());
    for (int pg = 0; pg <= (pg_base() ? 1 : 0); pg++) {
        backend b;
        open_backend(&b, pg, tag, min_schema);
        fn(&b);
        close_backend(&b);
    }
}
