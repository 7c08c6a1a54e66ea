#!/usr/bin/env bash
# run.sh - the multi-node tests: `patto migrate` (SQLite -> PostgreSQL and
# back; and killed half-way, then run again: interrupted_migration.py),
# `patto import` into PostgreSQL with COPY (import_test.py), group commits
# with the writer's deferred writes (group_commit_pg.py), two `patto
# serve` nodes sharing one PostgreSQL database, and
# PostgreSQL going away under a node (outage_test.py, which runs its own
# cluster on port ${PATTO_OUTAGE_PG_PORT:-55441}).
#
#   tests/multinode/run.sh build/patto
#
# Starts the throwaway cluster of scripts/pg.sh (127.0.0.1, port
# ${PATTO_PG_PORT:-55432}; as root it installs postgresql-15 if needed) and
# stops it at the end. A cluster that was already running is used and left
# running. Each test creates uniquely named databases and drops them.
# Exits non-zero if any test failed.
set -u
BIN=$(realpath "${1:?usage: run.sh PATTO_BIN}")
HERE=$(cd "$(dirname "$0")" && pwd)
PG_SH="$HERE/../../scripts/pg.sh"
export PATTO_PG_PORT=${PATTO_PG_PORT:-55432}

started=0
if ! "$PG_SH" url >/dev/null 2>&1; then
  "$PG_SH" start >/dev/null || { echo "run.sh: cannot start PostgreSQL" >&2; exit 1; }
  started=1
fi
stop() { [ "$started" -eq 1 ] && "$PG_SH" stop; }
trap stop EXIT

status=0
echo "== migrate_test.sh"
"$HERE/migrate_test.sh" "$BIN" || status=1
echo "== interrupted_migration.py"
python3 "$HERE/interrupted_migration.py" "$BIN" || status=1
echo "== import_test.py"
python3 "$HERE/import_test.py" "$BIN" || status=1
echo "== group_commit_pg.py"
python3 "$HERE/group_commit_pg.py" "$BIN" || status=1
echo "== two_nodes.py"
python3 "$HERE/two_nodes.py" "$BIN" || status=1
echo "== outage_test.py"
python3 "$HERE/outage_test.py" "$BIN" || status=1
[ "$status" -eq 0 ] && echo "multinode: all passed" || echo "multinode: FAILED"
exit "$status"
