#!/usr/bin/env bash
# migrate_test.sh - `patto migrate` from SQLite to PostgreSQL (and back).
#
# Builds a SQLite installation through the CLI and the HTTP API (two
# tenants, keys, a custom purpose, notices, subjects with profiles and
# identifiers, grants, denials, withdrawals, an import), migrates it into a
# fresh PostgreSQL database, then serves both with the same keyring and
# checks that subjects decrypt, checks answer the same, and `patto export`
# is identical line for line. A second migration into the same database, a
# wrong keyring and a non-empty destination are refused; a round trip back
# to SQLite gives the same export again.
#
# Usage: migrate_test.sh PATTO_BIN. Needs the cluster of scripts/pg.sh
# running on 127.0.0.1:${PATTO_PG_PORT:-55432} (run.sh starts it).
# Prints 'N passed, N failed'; exits non-zero on failure.
set -u
BIN=$(realpath "$1")
PGPORT=${PATTO_PG_PORT:-55432}
T=$(mktemp -d /tmp/patto-migrate-XXXXXX)
DBS=()
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  for d in "${DBS[@]}"; do
    psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1
  done
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
expect() { # name, expected exit status, command...
  local name=$1 want=$2; shift 2
  "$@" >out.txt 2>err.txt; local got=$?
  if [ "$got" -eq "$want" ]; then ok "$name"; else no "$name (exit $got, want $want: $(head -c 300 err.txt))"; fi
}
has() { # name, pattern, file
  if grep -q -- "$2" "$3"; then ok "$1"; else no "$1 ('$2' not in $3: $(head -c 300 "$3"))"; fi
}
check() { # name, command...: passes when the command succeeds
  local name=$1; shift
  if "$@"; then ok "$name"; else no "$name"; fi
}

# newdb SUFFIX: a fresh, uniquely named PostgreSQL database (dropped at
# exit); sets DBNAME and DBURL.
newdb() {
  DBNAME="patto_mig_$$_${RANDOM}_$1"
  DBURL="postgres://postgres@127.0.0.1:$PGPORT/$DBNAME"
  psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE $DBNAME" >/dev/null || return 1
  DBS+=("$DBNAME")
}

# serve DB KEYRING NAME: starts a server; sets PORT_<NAME>.
serve() {
  local log="$T/serve-$3.log"
  "$BIN" serve --db "$1" --keyring "$2" --listen 127.0.0.1:0 --threads 4 2>"$log" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  local port
  port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
  [ -n "$port" ] || { echo "server $3 did not start: $(cat "$log")" >&2; return 1; }
  printf -v "PORT_$3" '%s' "$port"
}

# http METHOD PORT PATH [BODY]: body to body.json, prints the status.
http() {
  local args=(-s -o body.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $KEY")
  [ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  curl "${args[@]}" "http://127.0.0.1:$2$3"
}

SQ=sqlite:$T/s.db
KR=$T/s.db.keyring

# ---------------------------------------------------------------- the source
expect "init sqlite" 0 "$BIN" init --db "$T/s.db"
KEY=$(tail -1 out.txt)
expect "second tenant" 0 "$BIN" tenant create --db "$T/s.db" acme
ACME_KEY=$(tail -1 out.txt)
expect "key create" 0 "$BIN" key create --db "$T/s.db" --tenant demo --role auditor --label dpo
printf 'Informativa privacy v2\nSecond line.\n' > notice.txt
expect "notice v2" 0 "$BIN" notice publish --db "$T/s.db" --tenant demo --notice privacy --version 2 --language it notice.txt
expect "acme notice" 0 "$BIN" notice publish --db "$T/s.db" --tenant acme --notice terms --version 2026-01 --language en notice.txt
expect "grant by email (cli)" 0 "$BIN" consent grant --db "$T/s.db" --tenant demo --email anna@example.it --purpose marketing --channels email,sms --notice privacy --notice-version 2 --via phone --evidence '{"recording":"rec-1"}'
SUB1=$(jq -r .subject out.txt)
expect "grant profiling (cli)" 0 "$BIN" consent grant --db "$T/s.db" --tenant demo --subject "$SUB1" --purpose profiling --notice privacy --notice-version 1
expect "withdraw marketing (cli)" 0 "$BIN" consent withdraw --db "$T/s.db" --tenant demo --subject "$SUB1" --purpose marketing
expect "acme grant (cli)" 0 "$BIN" consent grant --db "$T/s.db" --tenant acme --phone +393331234567 --purpose marketing --notice terms --notice-version 2026-01

cat > ev.jsonl <<'J'
{"identifier":{"type":"email","value":"p1@example.com"},"purpose":"marketing","action":"grant","notice":{"notice":"privacy","version":"1"},"collected_via":"import","occurred_at":"2026-01-01T00:00:00.000Z","evidence":{"ip":"192.0.2.1"}}
{"identifier":{"type":"email","value":"p1@example.com"},"purpose":"profiling","action":"deny","collected_via":"import","occurred_at":"2026-01-02T00:00:00.000Z"}
{"identifier":{"type":"email","value":"p2@example.com"},"purpose":"marketing","action":"grant","channels":["email"],"notice":{"notice":"privacy","version":"2"},"collected_via":"import","occurred_at":"2026-01-03T00:00:00.000Z"}
{"identifier":{"type":"email","value":"p2@example.com"},"purpose":"marketing","action":"withdraw","collected_via":"import","occurred_at":"2026-01-04T00:00:00.000Z"}
J
expect "import" 0 "$BIN" import --db "$T/s.db" --tenant demo ev.jsonl

# over HTTP
if serve "$T/s.db" "$KR" sq1; then ok "serve sqlite"; else no "serve sqlite"; fi
P=${PORT_sq1:-0}
st=$(http PUT "$P" /v1/purposes/newsletter '{"title":"Newsletter","legal_basis":"consent","channels":["email"],"validity_days":365}')
[[ $st == 20? ]] && ok "purpose put (http)" || no "purpose put (http): $st $(cat body.json)"
st=$(http POST "$P" /v1/subjects '{"identifiers":[{"type":"email","value":"mario@example.it"},{"type":"phone","value":"+390612345678"}],"profile":{"name":"Mario Rossi","city":"Roma","tags":["vip",1]}}')
[ "$st" = 201 ] && ok "subject create (http)" || no "subject create (http): $st $(cat body.json)"
SUB2=$(jq -r .subject body.json)
st=$(http POST "$P" /v1/subjects '{"identifiers":[{"type":"email","value":"lucia@example.it"}]}')
SUB3=$(jq -r .subject body.json)
for body in \
  "{\"subject\":\"$SUB2\",\"purpose\":\"marketing\",\"action\":\"grant\",\"channels\":[\"email\",\"post\"],\"notice\":{\"notice\":\"privacy\",\"version\":\"2\"},\"collected_via\":\"web_form\",\"evidence\":{\"ip\":\"198.51.100.7\",\"agent\":\"test\"}}" \
  "{\"subject\":\"$SUB2\",\"purpose\":\"newsletter\",\"action\":\"grant\",\"notice\":{\"notice\":\"privacy\",\"version\":\"2\"},\"collected_via\":\"web_form\"}" \
  "{\"subject\":\"$SUB2\",\"purpose\":\"profiling\",\"action\":\"deny\",\"collected_via\":\"web_form\"}" \
  "{\"subject\":\"$SUB3\",\"purpose\":\"cookies.analytics\",\"action\":\"grant\",\"notice\":{\"notice\":\"privacy\",\"version\":\"1\"},\"collected_via\":\"web_form\"}" \
  "{\"subject\":\"$SUB3\",\"purpose\":\"cookies.analytics\",\"action\":\"withdraw\",\"collected_via\":\"email_link\"}" \
  "{\"subject\":\"$SUB3\",\"purpose\":\"cookies.ads\",\"action\":\"grant\",\"notice\":{\"notice\":\"privacy\",\"version\":\"1\"},\"collected_via\":\"web_form\"}"; do
  st=$(http POST "$P" /v1/consents "$body")
  [ "$st" = 201 ] && ok "consent (http)" || no "consent (http): $st $(cat body.json)"
done
# a merge (identity.c): SUB3 answers as SUB2 from now on, on both sides
st=$(http POST "$P" "/v1/subjects/$SUB2/merge" "{\"from\":\"$SUB3\"}")
[ "$st" = 200 ] && ok "merge (http)" || no "merge (http): $st $(cat body.json)"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null
PIDS=("${PIDS[@]:0:${#PIDS[@]}-1}")

# ---------------------------------------------------------------- migrate
newdb main && ok "create database" || no "create database"
PG=$DBURL
expect "migrate sqlite -> postgres" 0 "$BIN" migrate --from "$SQ" --to "$PG" --keyring "$KR"
has "migrate prints counts" "copied 2 tenants" err.txt
has "migrate counts events" "14 events" err.txt
expect "second migrate into the same database is refused" 3 "$BIN" migrate --from "$SQ" --to "$PG" --keyring "$KR"
has "refusal says why" "not empty" err.txt

expect "other installation" 0 "$BIN" init --db "$T/o.db"
newdb wrongkey
PG2=$DBURL
expect "migrate with the wrong keyring is refused" 3 "$BIN" migrate --from "$SQ" --to "$PG2" --keyring "$T/o.db.keyring"
has "wrong keyring says so" "does not belong to the source" err.txt
t=$(psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$DBNAME" -tAc "SELECT to_regclass('tenants') IS NULL")
[ "$t" = t ] && ok "wrong keyring leaves the destination untouched" || no "wrong keyring leaves the destination untouched ($t)"
expect "migrate into an initialised database is refused" 3 "$BIN" migrate --from "$SQ" --to "$T/o.db" --keyring "$KR"
expect "migrate needs --to" 2 "$BIN" migrate --from "$SQ"
expect "migrate from nothing" 3 "$BIN" migrate --from "$T/none.db" --to "$T/none2.db" --keyring "$KR"
[ ! -e "$T/none2.db" ] && ok "a failed source open creates no destination" || no "a failed source open creates no destination"

# ---------------------------------------------------------------- compare
for tn in demo acme; do
  "$BIN" export --db "$SQ" --keyring "$KR" --tenant "$tn" > "sq-$tn.jsonl" 2>/dev/null
  "$BIN" export --db "$PG" --keyring "$KR" --tenant "$tn" > "pg-$tn.jsonl" 2>/dev/null
  [ -s "sq-$tn.jsonl" ] && ok "export $tn not empty ($(wc -l < "sq-$tn.jsonl") lines)" || no "export $tn not empty"
  check "export $tn identical line for line" cmp -s "sq-$tn.jsonl" "pg-$tn.jsonl"
done
check "evidence decrypts on postgres" grep -q '"rec-1"' pg-demo.jsonl

if serve "$SQ" "$KR" sq2; then ok "serve sqlite again"; else no "serve sqlite again"; fi
if serve "$PG" "$KR" pg1; then ok "serve postgres with the same keyring"; else no "serve postgres"; fi
A=${PORT_sq2:-0}; B=${PORT_pg1:-0}

st=$(http GET "$B" "/v1/subjects/$SUB2")
[ "$st" = 200 ] && ok "GET subject on postgres" || no "GET subject on postgres: $st $(cat body.json)"
check "profile decrypts on postgres" test "$(jq -r .profile.name body.json)" = "Mario Rossi"
check "identifiers decrypt on postgres" grep -q '+390612345678' body.json
jq -S . body.json > pg-sub.json
http GET "$A" "/v1/subjects/$SUB2" >/dev/null
jq -S . body.json > sq-sub.json
check "subject document identical" cmp -s sq-sub.json pg-sub.json
st=$(http GET "$B" "/v1/subjects/$SUB3")
[ "$st" = 200 ] && [ "$(jq -r .subject body.json)" = "$SUB2" ] && ok "a merged id answers as its survivor on postgres" || no "a merged id on postgres: $st $(cat body.json)"
http GET "$A" "/v1/subjects/$SUB3/export" >/dev/null; jq -S 'del(.exported_at)' body.json > x1.json
http GET "$B" "/v1/subjects/$SUB3/export" >/dev/null; jq -S 'del(.exported_at)' body.json > x2.json
check "export through a merged id identical" cmp -s x1.json x2.json
check "the export holds the merge" test "$(jq -r '.merges[0].subject' x2.json)" = "$SUB3"
st=$(http GET "$B" "/v1/subjects?identifier_type=email&identifier=anna@example.it")
[ "$st" = 200 ] && [ "$(jq -r .subject body.json)" = "$SUB1" ] && ok "lookup by identifier on postgres" || no "lookup by identifier on postgres: $st $(cat body.json)"

same=0; diff=0
for sub in "$SUB1" "$SUB2" "$SUB3"; do
  for pur in marketing profiling newsletter cookies.analytics cookies.ads processing; do
    for ch in "" email sms post web; do
      q="/v1/check?subject=$sub&purpose=$pur${ch:+&channel=$ch}"
      http GET "$A" "$q" >/dev/null; jq -S 'del(.checked_at)' body.json > c1.json
      http GET "$B" "$q" >/dev/null; jq -S 'del(.checked_at)' body.json > c2.json
      if cmp -s c1.json c2.json; then same=$((same + 1)); else diff=$((diff + 1)); echo "  differs: $q"; fi
    done
  done
done
[ "$diff" -eq 0 ] && ok "checks answer the same ($same checks)" || no "checks answer the same ($diff of $((same + diff)) differ)"
allowed=$(http GET "$B" "/v1/check?subject=$SUB2&purpose=marketing&channel=post" >/dev/null; jq -r .allowed body.json)
check "a granted consent is allowed on postgres" test "$allowed" = true
allowed=$(http GET "$B" "/v1/check?subject=$SUB1&purpose=marketing" >/dev/null; jq -r .allowed body.json)
check "a withdrawn consent is denied on postgres" test "$allowed" = false
for sub in "$SUB1" "$SUB2" "$SUB3"; do
  http GET "$A" "/v1/subjects/$sub/consents/history" >/dev/null; jq -S . body.json > h1.json
  http GET "$B" "/v1/subjects/$sub/consents/history" >/dev/null; jq -S . body.json > h2.json
  check "history of $sub identical" cmp -s h1.json h2.json
  http GET "$A" "/v1/subjects/$sub/consents" >/dev/null; jq -S . body.json > s1.json
  http GET "$B" "/v1/subjects/$sub/consents" >/dev/null; jq -S . body.json > s2.json
  check "consent states of $sub identical" cmp -s s1.json s2.json
done
KEY_SAVE=$KEY; KEY=$ACME_KEY
st=$(http GET "$B" /v1/notices/terms/2026-01)
[ "$st" = 200 ] && grep -q "Second line" body.json && ok "notice text on postgres (tenant id kept, acme key works)" || no "notice text on postgres: $st $(cat body.json)"
KEY=$KEY_SAVE
st=$(http POST "$B" /v1/consents "{\"subject\":\"$SUB3\",\"purpose\":\"marketing\",\"action\":\"grant\",\"channels\":[\"sms\"],\"notice\":{\"notice\":\"privacy\",\"version\":\"2\"},\"collected_via\":\"web_form\"}")
[ "$st" = 201 ] && ok "postgres takes new writes after migration" || no "postgres takes new writes: $st $(cat body.json)"
st=$(http POST "$B" /v1/subjects '{"identifiers":[{"type":"email","value":"anna@example.it"}]}')
[ "$st" = 409 ] && ok "blind index migrated (identifier taken)" || no "blind index migrated: $st $(cat body.json)"
st=$(http POST "$B" /v1/subjects '{"identifiers":[{"type":"email","value":"new@example.it"}]}')
[ "$st" = 201 ] && ok "new subject after migration" || no "new subject after migration: $st $(cat body.json)"
"$BIN" tenant create --db "$PG" --keyring "$KR" third >/dev/null 2>err.txt && ok "tenant create after migration (id after the kept ones)" || no "tenant create after migration: $(cat err.txt)"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
PIDS=()

# ---------------------------------------------------------------- and back
expect "migrate postgres -> sqlite" 0 "$BIN" migrate --from "$PG" --keyring "$KR" --to "sqlite:$T/back.db"
"$BIN" export --db "$PG" --keyring "$KR" --tenant demo > pg2.jsonl 2>/dev/null
"$BIN" export --db "$T/back.db" --keyring "$KR" --tenant demo > back.jsonl 2>/dev/null
check "round trip export identical" cmp -s pg2.jsonl back.jsonl
check "round trip keeps the new event" test "$(wc -l < back.jsonl)" -eq "$(( $(wc -l < sq-demo.jsonl) + 1 ))"
expect "check on the round-tripped copy" 0 "$BIN" consent check --db "$T/back.db" --keyring "$KR" --tenant demo --subject "$SUB3" --purpose marketing --channel sms

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
