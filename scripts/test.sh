#!/usr/bin/env bash
# The whole test suite: unit and black-box tests (gcc, SQLite), the
# black-box suite again on PostgreSQL, migration and two nodes on
# PostgreSQL, unit and black-box tests under
# ASan+UBSan (clang), the SIGKILL crash test (which also rebuilds the
# proof log), the command line, group commits with failing ops, witnesses,
# the proof log (patto verify, an independent signed-note check, the
# signer's refusals), anonymisation, storage fault tests, erasure (byte
# scans, backup/restore, KEK rotation, two PostgreSQL nodes), and a short
# fuzzing run.
# Ends with one line "N passed, N failed" counting every test case.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
CRASH_ROUNDS=${CRASH_ROUNDS:-50}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
passed=0; failed=0
log=$(mktemp)

count_criterion() { # sums Criterion's "Synthesis" lines of a meson test log
  python3 - "$1" <<'PY'
import re, sys
p = f = 0
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", line)
    if m:
        p += int(m.group(2)); f += int(m.group(3)) + int(m.group(4))
print(p, f)
PY
}

run_meson() { # dir label [meson test args...]
  local dir=$1 label=$2; shift 2
  echo "== $label"
  if meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" >"$log" 2>&1; then :; else
    tail -60 "$log"; fi
  grep -E '^ *[0-9]+/[0-9]+ ' "$log" | sed 's/^/   /'
  read -r p f < <(count_criterion "$dir/meson-logs/testlog.txt")
  # a test binary that died before its synthesis line still counts as failed
  local bad
  bad=$(grep -cE '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)' "$log" || true)
  [ "$f" -eq 0 ] && [ "$bad" -gt 0 ] && f=$bad
  echo "   $label: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
}

echo "== build (gcc)"
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null || { echo "build failed"; ninja -C build | tail -30; echo "0 passed, 1 failed"; exit 1; }
run_meson build "unit + black-box (gcc)"

echo "== PostgreSQL: a throwaway cluster"
if pgurl=$(./scripts/pg.sh start 2>"$log"); then
  PATTO_TEST_PG=$pgurl run_meson build "black-box and store on PostgreSQL (gcc)" --suite blackbox --suite pg
  ./scripts/pg.sh stop >/dev/null 2>&1 || true
else
  cat "$log"; echo "   cannot start PostgreSQL"; failed=$((failed + 1))
fi

echo "== PostgreSQL: migrate from SQLite, two nodes on one database"
out=$(tests/multinode/run.sh build/patto 2>&1); echo "$out" | grep -vE '^(ok|  ok)' | sed 's/^/   /'
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done \
  < <(echo "$out" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p')
echo "$out" | grep -q "multinode: all passed" || failed=$((failed + 1))

echo "== build (clang, ASan+UBSan)"
[ -d build-asan ] || CC=clang meson setup build-asan -Db_sanitize=address,undefined \
  -Db_lundef=false -Dc_args=-fno-sanitize-recover=all >/dev/null
if ninja -C build-asan >/dev/null; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_meson build-asan "unit + black-box (clang ASan+UBSan)"
else
  echo "sanitizer build failed"; failed=$((failed + 1))
fi

# suite TITLE [--all] COMMAND...: a script test that ends with "N passed,
# N failed"; its "ok" lines are left out unless --all
suite() {
  local title=$1 all=0 out p f
  shift
  if [ "$1" = --all ]; then all=1; shift; fi
  echo "== $title"
  out=$("$@" 2>&1)
  if [ $all = 1 ]; then echo "$out"; else echo "$out" | grep -v '^ok'; fi | sed 's/^/   /'
  read -r p f < <(echo "$out" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
}

suite "crash test ($CRASH_ROUNDS SIGKILL rounds)" --all \
  python3 tests/crash/crash_test.py build/patto "$CRASH_ROUNDS"
suite "command line" bash tests/cli/cli_test.sh build/patto
suite "group commit with failing ops" python3 tests/batch/batch_test.py build/patto
suite "witnesses (webhook and e-mail)" python3 tests/log/witness_test.py build/patto
suite "proof log: independent signed-note check, patto verify" \
  python3 tests/log/log_test.py build/patto
suite "proof log: the signer refuses a tree that does not extend its last checkpoint" \
  python3 tests/log/signer_test.py build/patto
suite "anonymisation: k-anonymous statistics, the lapsed shredded" \
  python3 tests/anonymise/anonymise_test.py build/patto
suite "storage fault test" --all python3 tests/fault/fault_test.py build/patto
suite "erasure: byte scans, backup and restore, KEK rotation" \
  python3 tests/erasure/erasure_test.py build/patto
suite "erasure on PostgreSQL: two nodes, a restored pg_dump" \
  python3 tests/erasure/pg_erasure_test.py build/patto

echo "== fuzz (${FUZZ_SECONDS}s per target)"
if ./scripts/fuzz.sh "$FUZZ_SECONDS" 2>&1 | sed 's/^/   /'; [ "${PIPESTATUS[0]}" -eq 0 ]; then
  passed=$((passed + 4)); else failed=$((failed + 1)); fi

rm -f "$log"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
