#!/usr/bin/env bash
# bench/run.sh - patto's performance figures, end to end, each printed as a
# ratio against a ceiling measured in the same run (machines are shared
# and noisy, so absolute numbers from another day mean little).
#
#   1. check in process: pt_cache_get + pt_policy_check on one thread
#      vs the same loop over a plain array of the same records.
#      Also the RSS the cache adds for SUBJECTS x 3 purposes.
#   2. import: `patto import` of SUBJECTS x 3 events (JSON Lines)
#      vs raw SQLite inserting as many rows of the same width, one prepared
#      statement, one transaction, same pragmas, same disk.
#   3. GET /v1/check, keep-alive, wrk -t2 -c64, random subjects
#      vs nginx answering `return 200` with a body of the same size.
#      Also patto's VmRSS while serving.
#   4. POST /v1/consents (durable), wrk -t2 -c64, grants and withdrawals of
#      random subjects, counting 201s only
#      vs one 4 KiB write + fdatasync per request on the same filesystem.
#      4b. the same with the proof log off (PATTO_BENCH_NO_LOG=1, a switch
#      for this benchmark only): what the log costs the durable write path.
#   5. proof log (bench_log): appending leaves (stored, one transaction) vs
#      raw SQLite inserting the same leaf rows; inclusion proofs in a log of
#      BENCH_LOG_LEAVES leaves, store warm, vs the bare log2(n) reads.
#   6. erasure (bench_erase): DELETE /v1/subjects/{subject} through the
#      writer (journal fdatasync, commit, WAL checkpoint with truncate), one
#      at a time in a database of BENCH_ERASE_SUBJECTS people, with
#      BENCH_ERASE_WRITES single commits before each (the WAL the checkpoint
#      copies back); p99 vs one 4 KiB write + fdatasync; target < 50 ms.
#   7. export of one person (bench_export): pt_subject_export + serialising
#      the document, for a person with BENCH_EXPORT_EVENTS events (a fifth of
#      them recorded for a second id merged into the person), store warm,
#      vs the raw reads of the same rows with plain prepared statements;
#      target < 5 ms for 100 events.
#
# Environment (all optional):
#   BENCH_SUBJECTS=1000000   subjects (x 3 purposes = events)
#   BENCH_BUILD=<repo>/build meson build directory (set up if missing)
#   BENCH_TMP=$TMPDIR|/tmp   where the temporary directory goes (its disk is
#                            the one measured)
#   BENCH_THREADS=nproc      patto serve --threads, and nginx workers
#   BENCH_DURATION=10s       each wrk run
#   BENCH_CONNECTIONS=64     wrk connections;  BENCH_WRK_THREADS=2
#   BENCH_HTTP_ROUNDS=2      figure 3 alternates patto and nginx this many
#                            times and keeps the best run of each
#   BENCH_CHECK_SECONDS=1    each timed loop of figure 1 (3 rounds of 5 loops)
#   BENCH_SQLITE_INDEXED=0   1: also time raw SQLite with patto's event indexes
#                            (a diagnostic, not the ceiling; ~2 min at 1M)
#   BENCH_PERF=0             1: `perf record --call-graph dwarf` the import and
#                            the server under each wrk load (perturbs the
#                            figures; inclusive-time reports are kept in the
#                            temporary directory)
#   BENCH_KEEP=0             1: keep the temporary directory
#   BENCH_LOG_APPEND=1000000 leaves appended in figure 5
#   BENCH_LOG_LEAVES=10000000  size of the log the proofs of figure 5 use
#   BENCH_LOG_PROOFS=100000  proofs timed
#   BENCH_ERASE_SUBJECTS=100000, BENCH_ERASE_COUNT=100, BENCH_ERASE_WRITES=50
#   BENCH_EXPORT_EVENTS=100, BENCH_EXPORT_ROUNDS=2000
#
# Traffic goes to 127.0.0.1 only. Every loop is bounded in count and time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
N=${BENCH_SUBJECTS:-1000000}
THREADS=${BENCH_THREADS:-$(nproc)}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
HTTP_ROUNDS=${BENCH_HTTP_ROUNDS:-2}
CHECK_SECONDS=${BENCH_CHECK_SECONDS:-1}
SQLITE_INDEXED=${BENCH_SQLITE_INDEXED:-0}
PERF=${BENCH_PERF:-0}
KEEP=${BENCH_KEEP:-0}

die() {
    echo "bench: $*" >&2
    exit 1
}
case $N in '' | *[!0-9]*) die "BENCH_SUBJECTS must be a number" ;; esac
if [ "$N" -lt 100 ] || [ "$N" -gt 20000000 ]; then die "BENCH_SUBJECTS must be 100..20000000"; fi
case $DURATION in [1-9]s | [1-9][0-9]s) ;; *) die "BENCH_DURATION must be 1s..99s" ;; esac
case $HTTP_ROUNDS in [1-5]) ;; *) die "BENCH_HTTP_ROUNDS must be 1..5" ;; esac
for tool in wrk nginx python3 curl meson ninja; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
if [ "$PERF" = 1 ]; then command -v perf >/dev/null || die "perf is needed for BENCH_PERF=1"; fi

T=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/patto-bench.XXXXXX")
PATTO_PID=
NGINX_PID=

stop_pid() { # PID [SECONDS]: TERM, wait up to SECONDS (30), then KILL
    local pid=$1 secs=${2:-30} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    set +e
    [ -n "$PATTO_PID" ] && stop_pid "$PATTO_PID"
    [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID"
    if [ "$KEEP" = 1 ] || [ "$PERF" = 1 ]; then
        echo "bench: kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# value of KEY on the RESULT line of FILE
result() { sed -n "s/^.*RESULT.* $2=\([^ ]*\).*$/\1/p" "$1" | tail -1; }
# value of KEY on the LUA line (printed by the wrk scripts) of FILE
lua() { sed -n "s/^LUA.* $2=\([^ ]*\).*$/\1/p" "$1" | tail -1; }
wrk_rate() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
max_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# wait_http URL SECONDS [CURL ARGS...]: until it answers 200
wait_http() {
    local url=$1 secs=$2 i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
# CPU time in ns (scheduler run time, all threads) of PID and of its child
# processes (nginx's workers)
tree_cpu_ns() {
    local p
    # shellcheck disable=SC2046
    for p in "$1" $(pgrep -P "$1" || true); do
        cat /proc/"$p"/task/*/schedstat 2>/dev/null || true
    done | awk '{ t += $1 } END { printf "%.0f\n", t }'
}
# run_wrk OUT PID SCRIPT URL [KEY]: wrk in the background while the
# server's VmRSS is sampled once a second; prints the highest sample (KiB)
# and the CPU time (ns) the server (PID and its children) used meanwhile.
run_wrk() {
    local out=$1 pid=$2 script=$3 url=$4 key=${5:-} wpid perfpid="" max=0 r i c0 c1
    c0=$(tree_cpu_ns "$pid")
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency -s "$HERE/$script" \
        "$url" -- "$T/ids.txt" "$key" >"$out" 2>&1 &
    wpid=$!
    if [ "$PERF" = 1 ] && [ "$pid" = "$PATTO_PID" ]; then
        perf record -F 199 --call-graph dwarf,16384 -o "$out.perf" -p "$pid" -- \
            sleep "$((${DURATION%s} + 1))" >/dev/null 2>&1 &
        perfpid=$!
    fi
    for ((i = 0; i < 600; i++)); do
        r=$(rss_kb "$pid")
        [ "${r:-0}" -gt "$max" ] && max=$r
        kill -0 "$wpid" 2>/dev/null || break
        sleep 1
    done
    wait "$wpid" || {
        cat "$out" >&2
        die "wrk failed"
    }
    c1=$(tree_cpu_ns "$pid")
    if [ -n "$perfpid" ]; then
        wait "$perfpid" || true
        perf report -i "$out.perf" --children --sort symbol -g none --percent-limit 0.5 \
            --stdio >"$out.perf.txt" 2>/dev/null || true
    fi
    echo "$max $((c1 - c0))"
}
# server_cpu NS OUT: "<cores busy> <CPU microseconds per answer>"
server_cpu() {
    awk -v t="$1" -v s="$(lua "$2" seconds)" -v n="$(lua "$2" ok)" \
        'BEGIN { printf "%.2f %.1f\n", (s > 0 ? t / 1e9 / s : 0), (n > 0 ? t / 1e3 / n : 0) }'
}

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
if ! git --no-optional-locks -C "$ROOT" diff --quiet HEAD -- src meson.build 2>/dev/null; then
    REV="$REV + uncommitted changes in src/"
fi
echo "== patto benchmarks: $N subjects x 3 purposes, $(nproc) cores, source $REV, tmp $T"

# ---------------------------------------------------------------- build
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$ROOT" >/dev/null
fi
ninja -C "$BUILD" patto bench/bench_check bench/bench_sqlite_ceiling bench/bench_fsync \
    bench/bench_log bench/bench_erase bench/bench_export >/dev/null
PATTO=$BUILD/patto
BB=$BUILD/bench

# ---------------------------------------------------------------- 1. check in process
echo
echo "== 1. check in process (1 thread), vs a plain array of the same records"
"$BB/bench_check" "$N" "$CHECK_SECONDS" 3 | tee "$T/check.out"
C_RATE=$(result "$T/check.out" check_per_s)
C_CEIL=$(result "$T/check.out" ceiling_per_s)
C_RSS_KB=$(result "$T/check.out" rss_growth_kb)
C_BPS=$(result "$T/check.out" bytes_per_subject)

# ---------------------------------------------------------------- 2. import
echo
echo "== 2. import of $((3 * N)) events, vs raw SQLite inserts of the same width"
t0=$(date +%s.%N)
python3 "$HERE/gen_events.py" "$N" "$T/events.jsonl"
echo "generated $(wc -l <"$T/events.jsonl") events ($(du -m "$T/events.jsonl" | cut -f1) MiB) in $(since "$t0") s"
DB=$T/patto.db
KEY=$("$PATTO" init --db "$DB" 2>"$T/init.err" | tail -1)
case $KEY in patto_*) ;; *)
    cat "$T/init.err" >&2
    die "patto init gave no key"
    ;;
esac
(umask 077 && echo "$KEY" >"$T/admin.key") # for a look afterwards (BENCH_KEEP=1)
if [ "$PERF" = 1 ]; then
    perf record -F 29 --call-graph dwarf,16384 -o "$T/import.perf" -- \
        "$PATTO" import --db "$DB" --tenant demo --format jsonl "$T/events.jsonl" 2>"$T/import.err"
    perf report -i "$T/import.perf" --children --sort symbol -g none --percent-limit 0.5 \
        --stdio >"$T/import.perf.txt" 2>/dev/null || true
else
    "$PATTO" import --db "$DB" --tenant demo --format jsonl "$T/events.jsonl" 2>"$T/import.err"
fi
cat "$T/import.err"
I_RATE=$(sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' "$T/import.err")
[ -n "$I_RATE" ] || die "patto import printed no rate"
rm -f "$T/events.jsonl"
echo "database: $(du -cm "$DB"* | tail -1 | cut -f1) MiB"
"$BB/bench_sqlite_ceiling" "$T/ceiling.db" "$((3 * N))" | tee "$T/sqlite.out"
I_CEIL=$(result "$T/sqlite.out" rows_per_s)
rm -f "$T/ceiling.db" "$T/ceiling.db-wal" "$T/ceiling.db-shm"
I_IDX=
if [ "$SQLITE_INDEXED" = 1 ]; then
    "$BB/bench_sqlite_ceiling" "$T/ceiling.db" "$((3 * N))" --indexed | tee "$T/sqlite_idx.out"
    I_IDX=$(result "$T/sqlite_idx.out" rows_per_s)
    rm -f "$T/ceiling.db" "$T/ceiling.db-wal" "$T/ceiling.db-shm"
fi

# ---------------------------------------------------------------- 3. GET /v1/check
echo
echo "== 3. GET /v1/check keep-alive (wrk -t$WRK_THREADS -c$CONNS -d$DURATION), vs nginx"
t0=$(date +%s.%N)
"$PATTO" export --db "$DB" --tenant demo 2>"$T/export.err" |
    grep -o '"subject":"sub_[0-9a-z]*"' | cut -d'"' -f4 | sort -u >"$T/ids.txt"
NIDS=$(wc -l <"$T/ids.txt")
echo "exported $NIDS subject ids in $(since "$t0") s"
[ "$NIDS" -eq "$N" ] || die "expected $N subject ids, got $NIDS"

t0=$(date +%s.%N)
"$PATTO" serve --db "$DB" --listen 127.0.0.1:0 --threads "$THREADS" 2>"$T/serve.err" &
PATTO_PID=$!
for ((i = 0; i < 6000; i++)); do # up to 10 minutes to load the cache
    grep -q '^listening on' "$T/serve.err" && break
    kill -0 "$PATTO_PID" 2>/dev/null || {
        cat "$T/serve.err" >&2
        die "patto serve exited"
    }
    sleep 0.1
done
PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/serve.err")
[ -n "$PORT" ] || die "patto serve did not start"
echo "patto serve (threads $THREADS) listening on 127.0.0.1:$PORT after $(since "$t0") s;" \
    "VmRSS $(($(rss_kb "$PATTO_PID") / 1024)) MiB"
FIRST=$(head -1 "$T/ids.txt")
CHECK_URL="http://127.0.0.1:$PORT/v1/check?subject=$FIRST&purpose=marketing"
wait_http "$CHECK_URL" 30 -H "Authorization: Bearer $KEY" || die "patto does not answer checks"
curl -s -H "Authorization: Bearer $KEY" "$CHECK_URL" >"$T/answer.json"
echo "a check answer, $(wc -c <"$T/answer.json") bytes: $(cat "$T/answer.json")"

# nginx: its own minimal config in a temp dir, a body of the same size
NG=$T/nginx
mkdir -p "$NG/tmp"
NPORT=$(free_port)
# the body goes into a single-quoted nginx string: patto's JSON has no ' or \
tr "'\\\\" '__' <"$T/answer.json" >"$NG/body"
cat >"$NG/nginx.conf" <<NGINX_CONF
daemon off;
worker_processes $THREADS;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$NPORT;
        location / {
            default_type application/json;
            add_header Cache-Control no-store;
            return 200 '$(cat "$NG/body")';
        }
    }
}
NGINX_CONF
nginx -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NPORT/v1/check" 10 || {
    cat "$NG/error.log" >&2
    die "nginx did not start"
}
echo "nginx (workers $THREADS) on 127.0.0.1:$NPORT, body" \
    "$(curl -s "http://127.0.0.1:$NPORT/v1/check" | wc -c) bytes"

# Rounds alternate patto and nginx; the best run of each is kept.
# The server's CPU per answer is printed too: on a small machine wrk shares
# the cores with the server and may be what limits the request rate.
H_RATE=0 N_RATE=0 S_RSS_KB=0 H_OK=0 H_OTHER=0 H_US=0 N_US=0
for ((round = 1; round <= HTTP_ROUNDS; round++)); do
    out=$T/wrk_check.$round.out
    read -r r cpu_ns < <(run_wrk "$out" "$PATTO_PID" wrk_check.lua "http://127.0.0.1:$PORT" "$KEY")
    read -r cores us < <(server_cpu "$cpu_ns" "$out")
    S_RSS_KB=$(max_of "$S_RSS_KB" "$r")
    echo "round $round patto: $(wrk_rate "$out") req/s; server CPU $cores cores," \
        "$us us/answer; $(grep '^LUA' "$out" | cut -c5-)"
    if ge "$(wrk_rate "$out")" "$H_RATE"; then H_RATE=$(wrk_rate "$out") H_US=$us; fi
    H_OK=$((H_OK + $(lua "$out" ok)))
    H_OTHER=$((H_OTHER + $(lua "$out" other)))
    out=$T/wrk_nginx.$round.out
    read -r r cpu_ns < <(run_wrk "$out" "$NGINX_PID" wrk_check.lua "http://127.0.0.1:$NPORT")
    read -r cores us < <(server_cpu "$cpu_ns" "$out")
    echo "round $round nginx: $(wrk_rate "$out") req/s; server CPU $cores cores," \
        "$us us/answer; $(grep '^LUA' "$out" | cut -c5-)"
    if ge "$(wrk_rate "$out")" "$N_RATE"; then N_RATE=$(wrk_rate "$out") N_US=$us; fi
done
S_HWM_KB=$(hwm_kb "$PATTO_PID")
echo "patto VmRSS while serving: max $((S_RSS_KB / 1024)) MiB (VmHWM $((S_HWM_KB / 1024)) MiB)"
stop_pid "$NGINX_PID"
NGINX_PID=

# ---------------------------------------------------------------- 4. POST /v1/consents
echo
echo "== 4. POST /v1/consents durable (wrk -t$WRK_THREADS -c$CONNS -d$DURATION)," \
    "vs one fdatasync per request"
"$BB/bench_fsync" "$T/fsync.test" 3 | tee "$T/fsync.out"
F_RATE=$(result "$T/fsync.out" syncs_per_s)
out=$T/wrk_post.out
read -r W_RSS_KB cpu_ns < <(run_wrk "$out" "$PATTO_PID" wrk_consent.lua "http://127.0.0.1:$PORT" "$KEY")
read -r cores us < <(server_cpu "$cpu_ns" "$out")
echo "patto: $(wrk_rate "$out") req/s; server CPU $cores cores, $us us/201;" \
    "$(grep '^LUA' "$out" | cut -c5-)"
W_RATE=$(lua "$out" ok_per_s)
W_OK=$(lua "$out" ok)
W_OTHER=$(lua "$out" other)
W_STATUSES=$(lua "$out" statuses)
echo "patto VmRSS under writes: max $((W_RSS_KB / 1024)) MiB"
t0=$(date +%s.%N)
stop_pid "$PATTO_PID" 60
PATTO_PID=
echo "patto serve stopped $(since "$t0") s after SIGTERM"

echo
echo "== 4b. the same with the proof log off (PATTO_BENCH_NO_LOG=1)"
PATTO_BENCH_NO_LOG=1 "$PATTO" serve --db "$DB" --listen 127.0.0.1:0 --threads "$THREADS" \
    2>"$T/serve_nolog.err" &
PATTO_PID=$!
for ((i = 0; i < 6000; i++)); do
    grep -q '^listening on' "$T/serve_nolog.err" && break
    kill -0 "$PATTO_PID" 2>/dev/null || die "patto serve (log off) exited"
    sleep 0.1
done
PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/serve_nolog.err")
out=$T/wrk_post_nolog.out
read -r _ _ < <(run_wrk "$out" "$PATTO_PID" wrk_consent.lua "http://127.0.0.1:$PORT" "$KEY")
NL_RATE=$(lua "$out" ok_per_s)
echo "patto, log off: $NL_RATE 201/s (log on: $W_RATE 201/s)"
stop_pid "$PATTO_PID" 60
PATTO_PID=

echo
echo "== 5. proof log: append and inclusion proofs (bench_log)"
mkdir -p "$T/log"
"$BB/bench_log" "$T/log" "${BENCH_LOG_APPEND:-1000000}" "${BENCH_LOG_LEAVES:-10000000}" \
    "${BENCH_LOG_PROOFS:-100000}" | tee "$T/log.out"
L_APP=$(result "$T/log.out" leaves_per_s)
L_CEIL=$(result "$T/log.out" rows_per_s)
L_US=$(sed -n 's/^RESULT proof .*us_per_proof=\([^ ]*\).*$/\1/p' "$T/log.out")
L_CUS=$(sed -n 's/^RESULT proof_ceiling .*us_per_proof=\([^ ]*\).*$/\1/p' "$T/log.out")
rm -rf "$T/log"

echo
echo "== 6. erasure, durable commit and WAL truncation included (bench_erase)"
mkdir -p "$T/erase"
"$BB/bench_erase" "$T/erase" "${BENCH_ERASE_SUBJECTS:-100000}" "${BENCH_ERASE_COUNT:-100}" \
    "${BENCH_ERASE_WRITES:-50}" | tee "$T/erase.out"
E_P50=$(sed -n 's/^RESULT erase_loaded .*p50_ms=\([^ ]*\).*$/\1/p' "$T/erase.out")
E_P99=$(sed -n 's/^RESULT erase_loaded .*p99_ms=\([^ ]*\).*$/\1/p' "$T/erase.out")
E_IDLE=$(sed -n 's/^RESULT erase_idle .*p50_ms=\([^ ]*\).*$/\1/p' "$T/erase.out")
E_IMPORT=$(sed -n 's/^RESULT erase_after_import ms=\([^ ]*\).*$/\1/p' "$T/erase.out")
E_FSYNC=$(sed -n 's/^RESULT fsync_ceiling ms=\([^ ]*\).*$/\1/p' "$T/erase.out")
rm -rf "$T/erase"

echo
echo "== 7. export of one person, ${BENCH_EXPORT_EVENTS:-100} events (bench_export)"
mkdir -p "$T/export"
"$BB/bench_export" "$T/export" "${BENCH_EXPORT_EVENTS:-100}" "${BENCH_EXPORT_ROUNDS:-2000}" |
    tee "$T/export.out"
X_MEAN=$(sed -n 's/^RESULT export .*mean_ms=\([^ ]*\).*$/\1/p' "$T/export.out")
X_P99=$(sed -n 's/^RESULT export .*p99_ms=\([^ ]*\).*$/\1/p' "$T/export.out")
X_CEIL=$(sed -n 's/^RESULT export_ceiling_raw_reads .*mean_ms=\([^ ]*\).*$/\1/p' "$T/export.out")
rm -rf "$T/export"

# ---------------------------------------------------------------- summary
mark() { if "$@"; then echo "met"; else echo "MISSED"; fi; }
row() { printf '%-34s %15s %17s %6s  %-20s %s\n' "$@"; }
H_RATIO=$(fdiv "$H_RATE" "$N_RATE")
echo
echo "== summary: $N subjects x 3 purposes; each ratio is against a ceiling measured in this run"
row "figure" "value" "ceiling" "ratio" "target" ""
row "1. check in process, 1 thread" "$C_RATE/s" "$C_CEIL/s" "$(fdiv "$C_RATE" "$C_CEIL")" \
    ">= 5000000/s" "$(mark ge "$C_RATE" 5000000)"
row "   cache RSS growth" "$((C_RSS_KB / 1024)) MiB" "" "" "($C_BPS B/subject)" ""
row "2. import" "$I_RATE ev/s" "$I_CEIL rows/s" "$(fdiv "$I_RATE" "$I_CEIL")" \
    ">= 100000 ev/s" "$(mark ge "$I_RATE" 100000)"
if [ -n "$I_IDX" ]; then
    row "   vs raw SQLite + events indexes" "" "$I_IDX rows/s" "$(fdiv "$I_RATE" "$I_IDX")" \
        "(diagnostic)" ""
fi
row "3. GET /v1/check vs nginx" "$H_RATE/s" "$N_RATE/s" "$H_RATIO" ">= 0.50 of nginx" \
    "$(mark ge "$H_RATIO" 0.5)"
row "   server CPU per answer" "$H_US us" "$N_US us" "$(fdiv "$N_US" "$H_US")" "(nginx/patto)" ""
row "   answers 200 / other" "$H_OK / $H_OTHER" "" "" "other = 0" "$(mark [ "$H_OTHER" = 0 ])"
row "   patto VmRSS serving (max)" "$((S_RSS_KB / 1024)) MiB" "" "" "<= 300 MiB" \
    "$(mark le "$((S_RSS_KB / 1024))" 300)"
row "4. POST /v1/consents, 201/s" "$W_RATE/s" "$F_RATE fsync/s" "$(fdiv "$W_RATE" "$F_RATE")" \
    ">= 20000/s" "$(mark ge "$W_RATE" 20000)"
row "   201 / non-201" "$W_OK / $W_OTHER" "" "" "($W_STATUSES)" ""
row "4b. POST, log on / log off" "$W_RATE/s" "$NL_RATE/s" "$(fdiv "$W_RATE" "$NL_RATE")" \
    ">= 0.85 (log costs <= 15%)" "$(mark ge "$(fdiv "$W_RATE" "$NL_RATE")" 0.85)"
row "5. log append (stored)" "$L_APP leaves/s" "$L_CEIL rows/s" "$(fdiv "$L_APP" "$L_CEIL")" \
    ">= 300000 leaves/s" "$(mark ge "$L_APP" 300000)"
row "   inclusion proof, ${BENCH_LOG_LEAVES:-10000000} leaves" "$L_US us" "$L_CUS us" \
    "$(fdiv "$L_CUS" "$L_US")" "<= 50 us" "$(mark le "$L_US" 50)"
row "6. erasure p99 (writes between)" "$E_P99 ms" "$E_FSYNC ms fsync" \
    "$(fdiv "$E_P99" "$E_FSYNC")" "< 50 ms" "$(mark le "$E_P99" 50)"
row "   erasure p50, loaded / idle" "$E_P50 / $E_IDLE ms" "" "" "" ""
row "   first erasure after an import" "$E_IMPORT ms" "" "" "(checkpoints its WAL)" ""
row "7. export, ${BENCH_EXPORT_EVENTS:-100} events, mean" "$X_MEAN ms" "$X_CEIL ms reads" \
    "$(fdiv "$X_CEIL" "$X_MEAN")" "< 5 ms" "$(mark le "$X_MEAN" 5)"
row "   export p99" "$X_P99 ms" "" "" "" ""
row "   patto VmRSS under POST (max)" "$((W_RSS_KB / 1024)) MiB" "" "" "<= 300 MiB" \
    "$(mark le "$((W_RSS_KB / 1024))" 300)"
if [ "$PERF" = 1 ]; then
    echo
    echo "perf reports: $T/import.perf.txt $T/wrk_check.*.out.perf.txt $T/wrk_post.out.perf.txt"
fi
