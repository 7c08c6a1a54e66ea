#!/usr/bin/env bash
# Black-box tests of the `patto` command line: every subcommand, its exit
# status and output, import (JSON Lines and CSV, all or nothing) and export.
# Usage: cli_test.sh PATTO_BIN. Prints 'N passed, N failed'.
set -u
BIN=$(realpath "$1")
T=$(mktemp -d /tmp/patto-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
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

expect "version" 0 "$BIN" --version
has "version prints the version" "patto 0" out.txt
expect "no command is a usage error" 2 "$BIN"
expect "unknown command" 2 "$BIN" frobnicate
for c in init serve tenant key notice consent import export; do
  expect "$c --help" 0 "$BIN" $c --help
  has "$c --help says usage" "usage: patto" out.txt
done

expect "init" 0 "$BIN" init --db d.db
KEY=$(tail -1 out.txt)
[ "$(wc -l <out.txt)" -eq 1 ] && [[ $KEY == patto_* ]] && ok "init prints the key alone" || no "init prints the key alone"
[ "$(stat -c %a d.db.keyring)" = 600 ] && ok "keyring is 0600" || no "keyring is 0600"
expect "init refuses an existing database" 3 "$BIN" init --db d.db
has "init says why" "exists already" err.txt
expect "unknown option" 2 "$BIN" init --db d.db --bogus
expect "wrong keyring refused" 3 env PATTO_KEYRING_DATA="$(printf 'blind %s\nsign %s\nkek 1 %s\n' AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=)" "$BIN" tenant list --db d.db
has "wrong keyring says so" "does not belong" err.txt

expect "tenant create" 0 "$BIN" tenant create --db d.db acme
[[ $(cat out.txt) == patto_* ]] && ok "tenant create prints a key" || no "tenant create prints a key"
expect "tenant create twice" 3 "$BIN" tenant create --db d.db acme
expect "bad tenant name" 3 "$BIN" tenant create --db d.db "Bad Name"
expect "tenant list" 0 "$BIN" tenant list --db d.db
has "tenant list shows acme" '"acme"' out.txt

expect "key create" 0 "$BIN" key create --db d.db --tenant demo --role auditor --label "dpo"
[[ $(cat out.txt) == patto_* ]] && ok "key create prints the key alone" || no "key create prints the key alone"
expect "key create bad role" 3 "$BIN" key create --db d.db --tenant demo --role king
expect "key create unknown tenant" 3 "$BIN" key create --db d.db --tenant nope --role admin
expect "key list" 0 "$BIN" key list --db d.db --tenant demo
KID=$(python3 -c 'import json,sys; print([k["key"] for k in json.load(open("out.txt"))["keys"] if k["label"]=="dpo"][0])')
if ! grep -q "patto_" out.txt; then ok "key list shows no secrets"; else no "key list shows no secrets"; fi
expect "key revoke" 0 "$BIN" key revoke --db d.db --tenant demo "$KID"
expect "key revoke twice" 3 "$BIN" key revoke --db d.db --tenant demo "$KID"

printf 'Informativa privacy v2\n' > notice.txt
expect "notice publish" 0 "$BIN" notice publish --db d.db --tenant demo --notice privacy --version 2 --language it notice.txt
has "notice hash" "$(sha256sum notice.txt | cut -c1-64)" out.txt
printf 'different\n' > other.txt
expect "notice republish with other text" 3 "$BIN" notice publish --db d.db --tenant demo --notice privacy --version 2 --language it other.txt

expect "consent grant by email" 0 "$BIN" consent grant --db d.db --tenant demo --email Anna@Example.it --purpose marketing --channels email,sms --notice privacy --notice-version 2 --via phone --evidence '{"recording":"rec-1","sha256":"ab"}'
SUB=$(python3 -c 'import json; print(json.load(open("out.txt"))["subject"])')
expect "check allowed" 0 "$BIN" consent check --db d.db --tenant demo --subject "$SUB" --purpose marketing --channel email
expect "check other channel denied" 1 "$BIN" consent check --db d.db --tenant demo --subject "$SUB" --purpose marketing --channel phone
has "reason channel_not_granted" channel_not_granted out.txt
expect "check by e-mail, normalised" 0 "$BIN" consent check --db d.db --tenant demo --email ANNA@example.IT --purpose marketing --channel email
has "check by e-mail names the holder" "$SUB" out.txt
expect "check by TYPE:VALUE" 0 "$BIN" consent check --db d.db --tenant demo --identifier email:anna@example.it --purpose marketing
expect "check by an unknown e-mail" 1 "$BIN" consent check --db d.db --tenant demo --email nobody@example.it --purpose marketing
has "unknown e-mail: unknown_subject" unknown_subject out.txt
expect "check by subject and e-mail at once" 2 "$BIN" consent check --db d.db --tenant demo --subject "$SUB" --email anna@example.it --purpose marketing
expect "check by identifier without a colon" 2 "$BIN" consent check --db d.db --tenant demo --identifier email --purpose marketing
expect "grant needs a notice" 3 "$BIN" consent grant --db d.db --tenant demo --subject "$SUB" --purpose profiling
has "error names the field" "\[notice\]" err.txt
expect "withdraw" 0 "$BIN" consent withdraw --db d.db --tenant demo --subject "$SUB" --purpose marketing
expect "check after withdraw" 1 "$BIN" consent check --db d.db --tenant demo --subject "$SUB" --purpose marketing
has "reason withdrawn" '"withdrawn"' out.txt
expect "history" 0 "$BIN" consent history --db d.db --tenant demo --subject "$SUB"
has "history keeps evidence" "rec-1" out.txt

# verify: a receipt checked offline, with no database
expect "verify --help" 0 "$BIN" verify --help
has "verify --help says usage" "usage: patto verify" out.txt
expect "grant for a receipt" 0 "$BIN" consent grant --db d.db --tenant demo --subject "$SUB" --purpose profiling --notice privacy --notice-version 2 --evidence '{"form":"f-9"}'
cp out.txt answer.json
python3 -c 'import json; json.dump(json.load(open("answer.json"))["receipt"], open("receipt.json", "w"))'
VKEY=$(python3 -c 'import json; print(json.load(open("receipt.json"))["proof"]["public_key"])')
expect "verify a receipt" 0 "$BIN" verify receipt.json
has "verify says verified" "^verified: evt_" out.txt
expect "verify a whole answer with --key" 0 "$BIN" verify --key "$VKEY" answer.json
expect "verify from stdin" 0 sh -c "\"$BIN\" verify - < receipt.json"
sed 's/"profiling"/"marketing"/' receipt.json > tampered.json
expect "verify refuses a tampered receipt" 1 "$BIN" verify tampered.json
has "verify names the field" "\[purpose.purpose\]" err.txt
[ "$(wc -l <err.txt)" -eq 1 ] && ok "verify's reason is one line" || no "verify's reason is one line"
expect "verify refuses another key" 1 "$BIN" verify receipt.json --key "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
expect "verify a missing file" 1 "$BIN" verify nope.json
expect "verify a missing --checkpoint file" 1 "$BIN" verify receipt.json --checkpoint nope.txt
expect "verify without a receipt" 2 "$BIN" verify
expect "verify unknown option" 2 "$BIN" verify receipt.json --bogus
expect "verify needs no database" 0 env -i PATH="$PATH" PATTO_DB=/nonexistent/x.db "$BIN" verify receipt.json

# import: JSON Lines, several events per person, then a newer and an older decision
cat > ev.jsonl <<'J'
{"identifier":{"type":"email","value":"p1@example.com"},"purpose":"marketing","action":"grant","notice":{"notice":"privacy","version":"1"},"collected_via":"import","occurred_at":"2026-01-01T00:00:00.000Z","evidence":{"ip":"192.0.2.1"}}
{"identifier":{"type":"email","value":"p1@example.com"},"purpose":"profiling","action":"grant","notice":{"notice":"privacy","version":"1"},"collected_via":"import","occurred_at":"2026-01-01T00:00:00.000Z"}
{"identifier":{"type":"email","value":"p1@example.com"},"purpose":"marketing","action":"withdraw","collected_via":"import","occurred_at":"2026-03-01T00:00:00.000Z"}
{"identifier":{"type":"email","value":"p2@example.com"},"purpose":"marketing","action":"grant","notice":{"notice":"privacy","version":"1"},"collected_via":"import","occurred_at":"2026-02-01T00:00:00.000Z"}
{"identifier":{"type":"email","value":"p1@example.com"},"purpose":"marketing","action":"grant","notice":{"notice":"privacy","version":"1"},"collected_via":"import","occurred_at":"2025-06-01T00:00:00.000Z"}
J
expect "import jsonl" 0 "$BIN" import --db d.db --tenant demo ev.jsonl
has "import counts" "5 events, 2 new subjects" err.txt
# look p1 up through a fresh grant-less check: use export to find its id
"$BIN" export --db d.db --tenant demo > all.jsonl 2>/dev/null
P1=$(python3 -c '
import json
ev=[json.loads(l) for l in open("all.jsonl")]
print([e["subject"] for e in ev if e["evidence"]=={"ip":"192.0.2.1"}][0])')
expect "imported withdrawal holds" 1 "$BIN" consent check --db d.db --tenant demo --subject "$P1" --purpose marketing
has "an older imported grant did not overturn it" '"withdrawn"' out.txt
expect "imported profiling granted" 0 "$BIN" consent check --db d.db --tenant demo --subject "$P1" --purpose profiling

# import: CSV, and all or nothing
cat > ev.csv <<'C'
identifier_type,identifier,purpose,action,channels,notice,notice_version,collected_via,occurred_at,evidence
email,c1@example.com,marketing,grant,email;sms,privacy,1,paper,2026-05-01T10:00:00Z,"{""form"":""paper-7""}"
phone,+39 333 000 1111,marketing,grant,sms,privacy,1,phone,2026-05-01T10:00:00Z,
C
expect "import csv" 0 "$BIN" import --db d.db --tenant demo ev.csv
has "csv counts" "2 events, 2 new subjects" err.txt
before=$("$BIN" export --db d.db --tenant demo 2>/dev/null | wc -l)
printf '%s\n' "$(head -1 ev.jsonl | sed 's/p1@/p9@/')" '{"identifier":{"type":"email","value":"p10@example.com"},"purpose":"nope","action":"grant","collected_via":"import"}' > bad.jsonl
expect "bad import fails" 3 "$BIN" import --db d.db --tenant demo bad.jsonl
has "bad import names the line" "line 2" err.txt
after=$("$BIN" export --db d.db --tenant demo 2>/dev/null | wc -l)
[ "$before" = "$after" ] && ok "a failed import writes nothing" || no "a failed import writes nothing ($before -> $after)"
expect "export to file" 0 "$BIN" export --db d.db --tenant demo out.jsonl
[ "$(wc -l <out.jsonl)" = "$after" ] && ok "export writes every event" || no "export writes every event"
python3 -c 'import json; [json.loads(l) for l in open("out.jsonl")]' && ok "export is JSON Lines" || no "export is JSON Lines"
expect "export other tenant is empty" 0 "$BIN" export --db d.db --tenant acme
[ ! -s out.txt ] && ok "tenants are apart in export" || no "tenants are apart in export"

# serve: config file, environment, SIGTERM
printf 'listen = 127.0.0.1:0\nthreads = 2\n' > patto.conf
PATTO_DB=d.db "$BIN" serve --config patto.conf 2>serve.err &
SP=$!
for i in $(seq 50); do grep -q "listening on" serve.err && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.err)
[ -n "$PORT" ] && ok "serve from config file and environment" || no "serve from config file and environment"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/check?subject=$P1&purpose=profiling")
[ "$code" = 200 ] && ok "served check" || no "served check ($code)"
kill -TERM $SP; wait $SP; [ $? -eq 0 ] && ok "SIGTERM exits 0" || no "SIGTERM exits 0"
expect "serve bad listen" 2 "$BIN" serve --db d.db --listen nonsense

# erasure, backup, restore, key rotation (tests/erasure has the byte scans)
for c in subject backup restore keys; do
  expect "$c --help" 0 "$BIN" $c --help
  has "$c --help says usage" "usage: patto" out.txt
done
expect "subject without erase is usage" 2 "$BIN" subject --db d.db --tenant demo
expect "subject erase needs a tenant" 2 "$BIN" subject erase --db d.db "$P1"
expect "subject erase" 0 "$BIN" subject erase --db d.db --tenant demo "$P1"
has "subject erase prints the receipt" '"data_key": true' out.txt
has "the erasure is journaled" "erased $P1 demo" d.db.erasures
expect "subject erase twice" 3 "$BIN" subject erase --db d.db --tenant demo "$P1"
has "a second erasure says so" "erased already" err.txt
expect "subject erase in another tenant" 3 "$BIN" subject erase --db d.db --tenant acme "$P1"
expect "check after erase" 1 "$BIN" consent check --db d.db --tenant demo --subject "$P1" --purpose profiling
has "check says subject_erased" "subject_erased" out.txt
expect "backup" 0 "$BIN" backup --db d.db b.db
[ "$(stat -c %a b.db)" = 600 ] && ok "backup is 0600" || no "backup is 0600"
expect "backup refuses an existing file" 3 "$BIN" backup --db d.db b.db
expect "backup refuses postgres" 3 "$BIN" backup --db postgres://u@127.0.0.1:1/x b2.db
has "backup names pg_dump" "pg_dump" err.txt
expect "restore" 0 "$BIN" restore --db r.db --keyring d.db.keyring --erasure-journal d.db.erasures b.db
has "restore reports the journal" "erasure journal: 1 entries" err.txt
expect "restore of a missing file" 3 "$BIN" restore --db r.db --keyring d.db.keyring nope.db
expect "keys rotate" 0 "$BIN" keys rotate --db d.db
has "keys rotate reports" "re-wrapped under key epoch 2" err.txt
[ "$(grep -c '^kek ' d.db.keyring)" = 1 ] && grep -q '^kek 2 ' d.db.keyring && ok "the keyring holds epoch 2 only" || no "the keyring holds epoch 2 only"
expect "export after rotation" 0 "$BIN" export --db d.db --tenant demo
expect "restoring the pre-rotation backup is refused" 3 "$BIN" restore --db r2.db --keyring d.db.keyring b.db
has "the refusal names the destroyed epoch" "no longer holds" err.txt

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
