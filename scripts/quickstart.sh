#!/usr/bin/env bash
# Quick start: installs what is missing, builds build/patto, creates
# ./patto.db with a demo tenant (printing its admin API key) unless it
# exists, and serves the API on 127.0.0.1:8080 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
DB=${PATTO_DB:-patto.db}
if [ ! -e "$DB" ]; then
  key=$(build/patto init --db "$DB")
  echo "demo tenant 'demo' created in $DB; admin API key (shown once):"
  echo "  $key"
  echo "try:  curl -H \"Authorization: Bearer $key\" http://127.0.0.1:8080/v1/purposes"
else
  echo "$DB exists; using it (its admin key was printed when it was created)"
fi
exec build/patto serve --db "$DB" --listen "${PATTO_LISTEN:-127.0.0.1:8080}"
