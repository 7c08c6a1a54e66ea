/* store_backends.h - the store-contract tests' backends: each test runs
 * the same assertions on SQLite always, and on PostgreSQL too when
 * PATTO_TEST_PG names a server's base url (scripts/pg.sh start prints
 * one), each run in a database of its own, created and dropped here. */
#ifndef PT_TEST_STORE_BACKENDS_H
#define PT_TEST_STORE_BACKENDS_H

#include <stdbool.h>

#include "store/store.h"

typedef struct backend {
    const char *name;
    char url[512];
    char dir[256]; /* SQLite: the temporary directory */
    char pgdb[64]; /* PostgreSQL: the database to drop */
    pt_store *store;
    pt_conn *c;
} backend;

/* Runs fn on SQLite, then on PostgreSQL when a server is given. tag names
 * the databases and directories ([a-z_]); the store must be at least at
 * schema version min_schema (what the test's ops need). */
void store_each_backend(void (*fn)(backend *b), const char *tag, int min_schema);

#endif
