#!/usr/bin/env bash
# bench/anonymise.sh - anonymising lapsed people, as a ratio against a
# ceiling measured in the same run on the same disk.
#
#   patto anonymise over N people whose consent to `processing` was
#   withdrawn (imported: a grant and a withdrawal each)
#   vs the same writes done set-wise by raw SQLite on a copy of the same
#   database (one UPDATE of every subject, one DELETE of every identifier,
#   one INSERT of as many statistics rows, one transaction, same pragmas):
#   what the storage alone costs, without reading, decrypting, generalising,
#   journaling or logging anybody.
#
# usage: bench/anonymise.sh [N]   (default 100000; BENCH_BUILD, BENCH_TMP)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${BENCH_BUILD:-$HERE/../build}
N=${1:-100000}
case $N in '' | *[!0-9]*) echo "N must be a number" >&2; exit 2 ;; esac
T=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/patto-anon.XXXXXX")
trap 'rm -rf "$T"' EXIT
ninja -C "$BUILD" patto >/dev/null
PATTO=$BUILD/patto

python3 - "$N" "$T/ev.jsonl" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
with open(out, "w", buffering=1 << 20) as f:
    for i in range(n):
        who = '{"identifier":{"type":"email","value":"lapsed%d@example.com"},"purpose":"processing",' % i
        f.write(who + '"action":"grant","notice":{"notice":"privacy","version":"1"},'
                '"collected_via":"import","occurred_at":"2025-01-01T00:00:00Z"}\n')
        f.write(who + '"action":"withdraw","collected_via":"import",'
                '"occurred_at":"2025-06-01T00:00:00Z"}\n')
PY
"$PATTO" init --db "$T/a.db" >/dev/null 2>&1
"$PATTO" import --db "$T/a.db" --tenant demo --format jsonl "$T/ev.jsonl" 2>&1 | tail -1
cp "$T/a.db" "$T/ceiling.db"

"$PATTO" anonymise --db "$T/a.db" --tenant demo 2>&1 | tee "$T/anon.out"
RATE=$(sed -n 's/.*(\([0-9]*\) people\/s).*/\1/p' "$T/anon.out")

CEIL=$(python3 - "$T/ceiling.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("PRAGMA secure_delete=ON")
db.execute("PRAGMA cache_size=-65536")
n = db.execute("SELECT count(*) FROM subjects").fetchone()[0]
t0 = time.time()
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE subjects SET wrapped_dek = NULL, profile = NULL, erased_at = 1")
db.execute("DELETE FROM identifiers")
db.execute("INSERT INTO stats_records(tenant_id, age, region, sex, states, created_at) "
           "SELECT tenant_id, 'unknown', 'unknown', 'unknown', '{}', 1 FROM subjects")
db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(int(n / (time.time() - t0)))
PY
)
echo "RESULT anonymise people_per_s=$RATE ceiling_per_s=$CEIL ratio=$(awk -v a="$RATE" -v b="$CEIL" 'BEGIN{printf "%.2f", a/b}')"
