#!/usr/bin/env bash
# pg.sh - a throwaway PostgreSQL 15 cluster for testing the postgres backend.
#
#   scripts/pg.sh start   creates (if needed) and starts a cluster in a fresh
#                         temporary directory, listening only on 127.0.0.1 port
#                         ${PATTO_PG_PORT:-55432}, trust auth, fsync on; prints
#                         its base url: postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg.sh stop    stops it and removes the directory
#   scripts/pg.sh url     prints the base url of the running cluster
#
# Then: PATTO_TEST_PG=$(scripts/pg.sh start) meson test -C build --suite blackbox
#
# As root the server runs as the postgres user (initdb refuses root); the
# Debian server binaries are installed with apt-get when missing.
set -euo pipefail

PORT=${PATTO_PG_PORT:-55432}
BIN=${PATTO_PG_BIN:-/usr/lib/postgresql/15/bin}
POINTER=${TMPDIR:-/tmp}/patto-pg-$PORT.dir # holds the cluster's directory
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

die() { echo "pg.sh: $*" >&2; exit 1; }

as_owner() { # runs a command as the cluster's owner
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  [ -f "$POINTER" ] || return 1
  local dir; dir=$(cat "$POINTER")
  [ -d "$dir/data" ] && as_owner "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

install_server() {
  [ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ] && command -v psql >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL 15 is not installed (run as root to install it)"
  echo "pg.sh: installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q postgresql-15 postgresql-client-15 >/dev/null
  [ -x "$BIN/initdb" ] || die "no $BIN/initdb after installing postgresql-15"
}

start() {
  if running; then echo "$URL"; return 0; fi
  install_server
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/patto-pg-$PORT.XXXXXX")
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  as_owner "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # only loopback, trust
  cat >"$dir/data/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 300
EOF
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/data/pg_hba.conf"
  echo "$dir" >"$POINTER"
  as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; die "the server did not start"; }
  echo "$URL"
}

stop() {
  [ -f "$POINTER" ] || return 0
  local dir; dir=$(cat "$POINTER")
  if [ -d "$dir/data" ]; then
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  case "$dir" in */patto-pg-*) rm -rf "$dir" ;; esac
  rm -f "$POINTER"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) running && echo "$URL" || die "not running" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
