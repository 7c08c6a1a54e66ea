#!/usr/bin/env bash
# bench/pg.sh - patto on PostgreSQL, each figure as a ratio against a ceiling
# measured in the same run on the same cluster (machines are shared and
# noisy: a ratio is comparable across days, a raw number is not).
#
#   1. import: `patto import` of BENCH_PG_EVENTS events (JSON Lines from
#      gen_events.py: people x 3 purposes) into a fresh database, which
#      sends its rows with COPY in chunks (src/store/postgres.c, "Bulk mode")
#      vs (a) raw COPY, with psql, of the same event rows (dumped from the
#          import) into a table of the same width without indexes: the
#          figure's ceiling;
#         (b) raw COPY of every row the import wrote (subjects, identifiers,
#          events, consent states, proof-log leaves and subtree hashes) into
#          copies of those tables with their indexes, as events per second:
#          the server's share of the import, which one transaction cannot
#          spread over several backends (a diagnostic).
#   2. durable POST /v1/consents (wrk -tBENCH_WRK_THREADS -cBENCH_CONNECTIONS,
#      wrk_consent.lua: grants and withdrawals of random imported people),
#      counting 201s, with the writer's deferred writes (pipeline mode,
#      "Deferred writes") and without them (PATTO_BENCH_PG_NO_PIPELINE=1, a
#      switch for this benchmark only), BENCH_PG_ROUNDS rounds alternating,
#      the best of each kept
#      vs pgbench with as many clients, each transaction one INSERT of an
#      event row into a copy of the events table with its indexes: what the
#      cluster gives durable one-row commits (PostgreSQL groups their WAL
#      flushes as patto groups its batches).
#
# Environment (all optional):
#   BENCH_PG_EVENTS=1000000   events imported (people = events / 3)
#   BENCH_BUILD=<repo>/build  meson build directory (set up if missing)
#   BENCH_TMP=$TMPDIR|/tmp    temporary directory (input file, dumps)
#   PATTO_PG_PORT=55432       the scripts/pg.sh cluster's port; started (and
#                             stopped at the end) if it is not running
#   BENCH_THREADS=nproc       patto serve --threads
#   BENCH_DURATION=10s        each wrk and pgbench run
#   BENCH_CONNECTIONS=64      wrk connections and pgbench clients
#   BENCH_WRK_THREADS=2       wrk -t and pgbench -j
#   BENCH_PG_ROUNDS=2         rounds of figure 2
#   BENCH_PG_SKIP_POST=0      1: figure 1 only
#   BENCH_KEEP=0              1: keep the temporary directory and database
#
# Traffic goes to 127.0.0.1 only. Every loop is bounded in count and time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
EVENTS=${BENCH_PG_EVENTS:-1000000}
THREADS=${BENCH_THREADS:-$(nproc)}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
ROUNDS=${BENCH_PG_ROUNDS:-2}
SKIP_POST=${BENCH_PG_SKIP_POST:-0}
KEEP=${BENCH_KEEP:-0}
export PATTO_PG_PORT=${PATTO_PG_PORT:-55432}
PGBIN=${PATTO_PG_BIN:-/usr/lib/postgresql/15/bin}

die() {
    echo "bench/pg: $*" >&2
    exit 1
}
case $EVENTS in '' | *[!0-9]*) die "BENCH_PG_EVENTS must be a number" ;; esac
if [ "$EVENTS" -lt 300 ] || [ "$EVENTS" -gt 30000000 ]; then die "BENCH_PG_EVENTS: 300..30000000"; fi
case $DURATION in [1-9]s | [1-9][0-9]s) ;; *) die "BENCH_DURATION must be 1s..99s" ;; esac
case $ROUNDS in [1-5]) ;; *) die "BENCH_PG_ROUNDS must be 1..5" ;; esac
for tool in python3 psql meson ninja; do command -v "$tool" >/dev/null || die "$tool is needed"; done
if [ "$SKIP_POST" != 1 ]; then
    command -v wrk >/dev/null || die "wrk is needed (or BENCH_PG_SKIP_POST=1)"
    [ -x "$PGBIN/pgbench" ] || die "$PGBIN/pgbench is needed (or BENCH_PG_SKIP_POST=1)"
fi

T=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/patto-pgbench.XXXXXX")
DB=patto_bench_$$
URL=postgres://postgres@127.0.0.1:$PATTO_PG_PORT/$DB
PATTO_PID=
STARTED_PG=0

psql_q() { psql -X -h 127.0.0.1 -p "$PATTO_PG_PORT" -U postgres -qtA "$@"; }
stop_pid() { # PID: TERM, wait up to 60 s, then KILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    set +e
    [ -n "$PATTO_PID" ] && stop_pid "$PATTO_PID"
    if [ "$KEEP" = 1 ]; then
        echo "bench/pg: kept $T and database $DB" >&2
    else
        psql_q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
        rm -rf "$T"
    fi
    [ "$STARTED_PG" = 1 ] && "$ROOT/scripts/pg.sh" stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
max_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print 0 }'; }
lua() { sed -n "s/^LUA.* $2=\([^ ]*\).*$/\1/p" "$1" | tail -1; }

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
if ! git --no-optional-locks -C "$ROOT" diff --quiet HEAD -- src meson.build 2>/dev/null; then
    REV="$REV + uncommitted changes in src/"
fi
echo "== patto on PostgreSQL: $EVENTS events, $(nproc) cores, source $REV, tmp $T"

# ---------------------------------------------------------------- build, cluster
if [ ! -f "$BUILD/build.ninja" ]; then meson setup "$BUILD" "$ROOT" >/dev/null; fi
ninja -C "$BUILD" patto >/dev/null
PATTO=$BUILD/patto
if ! "$ROOT/scripts/pg.sh" url >/dev/null 2>&1; then
    "$ROOT/scripts/pg.sh" start >/dev/null || die "cannot start PostgreSQL"
    STARTED_PG=1
fi
echo "PostgreSQL $(psql_q -d postgres -c 'SHOW server_version') on port $PATTO_PG_PORT" \
    "(fsync $(psql_q -d postgres -c 'SHOW fsync'), synchronous_commit" \
    "$(psql_q -d postgres -c 'SHOW synchronous_commit'))"

# ---------------------------------------------------------------- 1. import
echo
echo "== 1. import of $EVENTS events with COPY, vs raw COPY of the same rows"
PEOPLE=$(((EVENTS + 2) / 3))
t0=$(now)
python3 "$HERE/gen_events.py" "$PEOPLE" "$T/events.jsonl"
NEV=$(wc -l <"$T/events.jsonl")
echo "generated $NEV events of $PEOPLE people ($(du -m "$T/events.jsonl" | cut -f1) MiB) in $(since "$t0") s"
psql_q -d postgres -c "CREATE DATABASE $DB" >/dev/null
KEY=$("$PATTO" init --db "$URL" --keyring "$T/keyring" 2>"$T/init.err" | tail -1)
case $KEY in patto_*) ;; *)
    cat "$T/init.err" >&2
    die "patto init gave no key"
    ;;
esac
"$PATTO" import --db "$URL" --keyring "$T/keyring" --tenant demo --format jsonl \
    "$T/events.jsonl" 2>"$T/import.err" || {
    cat "$T/import.err" >&2
    die "patto import failed"
}
cat "$T/import.err"
I_RATE=$(sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' "$T/import.err")
[ -n "$I_RATE" ] || die "patto import printed no rate"
rm -f "$T/events.jsonl"
echo "database: $(psql_q -d "$DB" -c "SELECT pg_size_pretty(pg_database_size('$DB'))")"

# the rows the import wrote, in COPY's binary format
TABLES="subjects identifiers events consent_state log_leaves log_nodes"
for t in $TABLES; do
    psql_q -d "$DB" -c "\\copy $t TO '$T/$t.bin' (FORMAT binary)"
done
N_EV=$(psql_q -d "$DB" -c "SELECT count(*) FROM events")
# (a) the event rows into a table of the same width, no index
psql_q -d "$DB" -c "CREATE TABLE ceiling_width (LIKE events)"
t0=$(now)
psql_q -d "$DB" -c "\\copy ceiling_width FROM '$T/events.bin' (FORMAT binary)"
S_A=$(since "$t0")
C_A=$(rate "$N_EV" "$S_A")
echo "ceiling (a): raw COPY of $N_EV event rows, no index: $S_A s ($C_A rows/s)"
# (b) every row, into copies of the tables with their indexes, one transaction
{
    echo "BEGIN;"
    for t in $TABLES; do echo "CREATE TABLE ceiling_$t (LIKE $t INCLUDING ALL);"; done
    for t in $TABLES; do echo "\\copy ceiling_$t FROM '$T/$t.bin' (FORMAT binary)"; done
    echo "COMMIT;"
} >"$T/ceiling_b.sql"
t0=$(now)
psql_q -d "$DB" -v ON_ERROR_STOP=1 -f "$T/ceiling_b.sql" >/dev/null
S_B=$(since "$t0")
C_B=$(rate "$N_EV" "$S_B")
echo "ceiling (b): raw COPY of every row written ($TABLES), with indexes, one transaction:" \
    "$S_B s ($C_B events/s)"
for t in $TABLES; do
    psql_q -d "$DB" -c "DROP TABLE ceiling_$t" >/dev/null
    rm -f "$T/$t.bin"
done
psql_q -d "$DB" -c "DROP TABLE ceiling_width" >/dev/null

# ---------------------------------------------------------------- 2. POST
W_BEST=0 NP_BEST=0 G_BEST=0 W_P99='' NP_P99=''
if [ "$SKIP_POST" != 1 ]; then
    echo
    echo "== 2. durable POST /v1/consents (wrk -t$WRK_THREADS -c$CONNS -d$DURATION), vs pgbench"
    "$PATTO" export --db "$URL" --keyring "$T/keyring" --tenant demo 2>/dev/null |
        grep -o '"subject":"sub_[0-9a-z]*"' | cut -d'"' -f4 | sort -u >"$T/ids.txt"
    echo "$(wc -l <"$T/ids.txt") subject ids"
    psql_q -d "$DB" -c "CREATE TABLE pgbench_events (LIKE events INCLUDING ALL)"
    cat >"$T/insert.sql" <<'SQL'
INSERT INTO pgbench_events(id, tenant_id, subject_id, purpose, action, channels, notice, notice_version, notice_sha256, collected_via, evidence_sha256, occurred_at, recorded_at, expires_at) VALUES (decode(md5(random()::text), 'hex'), 1, decode(md5(random()::text), 'hex'), 'marketing', 'grant', 15, 'privacy', '1', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'api', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 1764000000000, 1764000000000, 1827000000000);
SQL
    post() { # OUT [ENV...]: serve, wrk, stop; prints the 201 rate
        local out=$1 port i
        shift
        env "$@" "$PATTO" serve --db "$URL" --keyring "$T/keyring" --listen 127.0.0.1:0 \
            --threads "$THREADS" 2>"$out.serve" &
        PATTO_PID=$!
        for ((i = 0; i < 6000; i++)); do
            grep -q '^listening on' "$out.serve" && break
            kill -0 "$PATTO_PID" 2>/dev/null || {
                cat "$out.serve" >&2
                die "patto serve exited"
            }
            sleep 0.1
        done
        port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out.serve")
        [ -n "$port" ] || die "patto serve did not start"
        wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency \
            -s "$HERE/wrk_consent.lua" "http://127.0.0.1:$port" -- "$T/ids.txt" "$KEY" \
            >"$out" 2>&1 || {
            cat "$out" >&2
            die "wrk failed"
        }
        stop_pid "$PATTO_PID"
        PATTO_PID=
        lua "$out" ok_per_s
    }
    for ((round = 1; round <= ROUNDS; round++)); do
        r=$(post "$T/wrk.$round")
        echo "round $round, deferred writes: $r 201/s; $(grep '^LUA' "$T/wrk.$round" | cut -c5-)"
        if ge "$r" "$W_BEST"; then W_BEST=$r W_P99=$(lua "$T/wrk.$round" p99_ms); fi
        r=$(post "$T/wrk_np.$round" PATTO_BENCH_PG_NO_PIPELINE=1)
        echo "round $round, one round trip per statement: $r 201/s;" \
            "$(grep '^LUA' "$T/wrk_np.$round" | cut -c5-)"
        if ge "$r" "$NP_BEST"; then NP_BEST=$r NP_P99=$(lua "$T/wrk_np.$round" p99_ms); fi
        "$PGBIN/pgbench" -h 127.0.0.1 -p "$PATTO_PG_PORT" -U postgres -n -c "$CONNS" \
            -j "$WRK_THREADS" -T "${DURATION%s}" -f "$T/insert.sql" "$DB" >"$T/pgbench.$round" 2>&1 ||
            die "pgbench failed: $(tail -3 "$T/pgbench.$round")"
        g=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$T/pgbench.$round" | cut -d. -f1)
        echo "round $round, pgbench one-row commits: $g tps;" \
            "$(grep 'latency average' "$T/pgbench.$round")"
        G_BEST=$(max_of "$G_BEST" "$g")
    done
fi

# ---------------------------------------------------------------- summary
mark() { if "$@"; then echo "met"; else echo "MISSED"; fi; }
row() { printf '%-36s %16s %20s %6s  %-16s %s\n' "$@"; }
echo
echo "== summary: each ratio is against a ceiling measured in this run"
row "figure" "value" "ceiling" "ratio" "target" ""
row "1. import, COPY in chunks" "$I_RATE ev/s" "$C_A rows/s" "$(fdiv "$I_RATE" "$C_A")" \
    ">= 150000 ev/s" "$(mark ge "$I_RATE" 150000)"
row "   vs every row raw, with indexes" "" "$C_B ev/s" "$(fdiv "$I_RATE" "$C_B")" "(diagnostic)" ""
if [ "$SKIP_POST" != 1 ]; then
    row "2. POST durable, deferred writes" "$W_BEST/s" "$G_BEST tps" "$(fdiv "$W_BEST" "$G_BEST")" \
        ">= 10000/s" "$(mark ge "$W_BEST" 10000)"
    row "   p99" "$W_P99 ms" "" "" "" ""
    row "   one round trip per statement" "$NP_BEST/s" "$G_BEST tps" \
        "$(fdiv "$NP_BEST" "$G_BEST")" "(before)" ""
    row "   p99" "$NP_P99 ms" "" "" "" ""
    row "   deferred / one per statement" "" "" "$(fdiv "$W_BEST" "$NP_BEST")" "" ""
fi
