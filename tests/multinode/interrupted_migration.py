#!/usr/bin/env python3
"""`patto migrate` killed half-way, then run again.

`patto migrate` writes the destination in one transaction, so a migration
that dies (SIGKILL: no handler, no clean-up) must leave the destination
without a single row, and running it again must copy everything exactly
once. The test:

  1. builds a SQLite installation large enough that a migration takes
     a second or more (PATTO_TEST_MIG_SUBJECTS people, default 20000, two
     consent events each, by `patto import`; plus a key and a notice), so
     with a proof log of some 40000 leaves;
  2. SQLite -> PostgreSQL: starts `patto migrate`, waits until PostgreSQL
     shows its destination connection copying events (the destination
     connection sends rows in chunks with COPY: catalog done, subjects and
     events going), SIGKILLs it; checks the destination holds no row in
     any table; the same again killed while the proof log is being copied
     (the last step);
  3. runs the migration again: it succeeds, and every table of the
     destination equals the source's row for row (ids, sealed bytes, event
     order, consent states pointing at the same events, proof log leaves,
     subtree hashes, signed heads and keys byte for byte). The killed runs
     used up identity values, so the destination's event seqs differ from
     the source's: the log heads' catch-up marks must point at the same
     events all the same;
  4. serves the copy: the node starts without appending anything to the
     log (its catch-up agrees with the copied heads), answers the same
     signed checkpoint and the same receipt (inclusion proof included) as
     the source, and appends a new consent as leaf n of the copied tree;
  5. PostgreSQL -> SQLite: killed while the subjects are being copied, the
     SQLite file holds no row and passes integrity_check; run again, it
     equals the PostgreSQL database table for table and serves the same
     checkpoint.

Usage: interrupted_migration.py PATTO_BIN. Needs the cluster of
scripts/pg.sh on 127.0.0.1:${PATTO_PG_PORT:-55432} (run.sh starts it).
Creates uniquely named databases and drops them. Prints 'N passed, N
failed'; exits non-zero on failure. Python 3 standard library only.
"""
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import patto_proc  # noqa: E402  (init)

BIN = os.path.abspath(sys.argv[1])
PGPORT = os.environ.get("PATTO_PG_PORT", "55432")
SUBJECTS = int(os.environ.get("PATTO_TEST_MIG_SUBJECTS", "20000"))
KILL_WAIT = 60.0  # seconds to see the migration reach the point to kill it at

results = []
tmp = tempfile.mkdtemp(prefix="patto-intmig-")
dbs = []
procs = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + (f"  ({info})" if info and not cond else ""),
          flush=True)
    return cond


def psql(sql, db="postgres"):
    """Rows of a query, fields split on the unit separator."""
    out = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres",
                          "-d", db, "-qtA", "-F", "\x1f", "-R", "\x1e", "-c", sql],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(r.split("\x1f")) for r in out.strip("\n").split("\x1e") if r.strip("\n")]


def newdb(tag):
    name = f"patto_intmig_{os.getpid()}_{random.randrange(1 << 30)}_{tag}"
    psql(f"CREATE DATABASE {name}")
    dbs.append(name)
    return name


def pg_url(name):
    return f"postgres://postgres@127.0.0.1:{PGPORT}/{name}"


def sq_rows(path, sql):
    con = sqlite3.connect(path)
    try:
        return [tuple("" if v is None else str(v) for v in r) for r in con.execute(sql)]
    finally:
        con.close()


# ---------------------------------------------------------------- the tables
# Each table as rows of strings, the same on both backends: blobs and text in
# hex, NULL as ''. Seqs and subject rows are each backend's own, so they are
# left out; their order is compared instead (ORDER BY), and what points at an
# event by seq is compared through that event's id.

def dialect(pg):
    if pg:
        h = lambda x: f"coalesce(encode({x}, 'hex'), '')"  # noqa: E731
        t = lambda x: f"coalesce(encode(convert_to({x}, 'UTF8'), 'hex'), '')"  # noqa: E731
        n = lambda x: f"coalesce({x}::text, '')"  # noqa: E731
        row = '"row"'
    else:
        h = lambda x: f"coalesce(lower(hex({x})), '')"  # noqa: E731
        t = h
        n = lambda x: f"coalesce({x}, '')"  # noqa: E731
        row = "row"
    ev = lambda seq: f"(SELECT {h('e.id')} FROM events e WHERE e.seq = {seq})"  # noqa: E731
    return {
        "tenants": f"SELECT id, {t('name')}, created_at FROM tenants ORDER BY id",
        "api_keys": f"SELECT {h('id')}, tenant_id, role, {h('hash')}, {t('label')}, created_at, "
                    f"{n('revoked_at')} FROM api_keys",
        "purposes": f"SELECT tenant_id, {t('name')}, idx, {t('basis')}, validity_days, "
                    f"renew_before_days, channels, revision, {t('title')}, {t('description')}, "
                    f"{t('dpv')}, created_at, updated_at FROM purposes",
        "notices": f"SELECT tenant_id, {t('notice')}, {t('version')}, {h('id')}, "
                   f"{t('language')}, {t('text')}, {t('sha256')}, created_at FROM notices",
        "subjects": f"SELECT {h('id')}, tenant_id, kek_epoch, {h('wrapped_dek')}, "
                    f"{h('profile')}, created_at, updated_at, {n('erased_at')} FROM subjects "
                    f"ORDER BY {row}",
        "identifiers": f"SELECT tenant_id, type, {h('blind')}, {h('subject_id')}, {h('value')}, "
                       f"created_at FROM identifiers",
        "events": f"SELECT {h('id')}, tenant_id, {h('subject_id')}, {t('purpose')}, "
                  f"{t('action')}, channels, {t('notice')}, {t('notice_version')}, "
                  f"{t('notice_sha256')}, {t('collected_via')}, {h('evidence')}, "
                  f"{t('evidence_sha256')}, occurred_at, recorded_at, {n('expires_at')} "
                  f"FROM events ORDER BY seq",
        "consent_state": f"SELECT {h('subject_id')}, purpose_idx, tenant_id, state, channels, "
                         f"revision, decided_at, {n('granted_at')}, {n('expires_at')}, "
                         f"{h('event_id')}, {ev('consent_state.event_seq')} FROM consent_state",
        "log_leaves": f"SELECT tenant_id, idx, {h('ref')}, {h('hash')}, {h('data')} "
                      f"FROM log_leaves",
        "log_nodes": f"SELECT tenant_id, level, idx, {h('hash')} FROM log_nodes",
        "log_heads": f"SELECT tenant_id, size, {h('root')}, {t('checkpoint')}, signed_at, "
                     f"{ev('log_heads.event_seq')} FROM log_heads",
        "log_keys": f"SELECT {t('verifier')}, created_at FROM log_keys",
        "meta": f"SELECT {t('key')}, {t('value')} FROM meta WHERE key = 'keyring_fingerprint'",
    }


TABLES = list(dialect(False))
ORDERED = {"tenants", "subjects", "events"}  # compared in the order of the query


def dump_pg(db):
    out = {}
    for name, sql in dialect(True).items():
        rows = psql(sql, db)
        out[name] = rows if name in ORDERED else sorted(rows)
    return out


def dump_sq(path):
    out = {}
    for name, sql in dialect(False).items():
        rows = sq_rows(path, sql)
        out[name] = rows if name in ORDERED else sorted(rows)
    return out


def compare(label, a, b):
    for name in TABLES:
        check(f"{label}: {name} equal ({len(a[name])} rows)", a[name] == b[name],
              f"{len(a[name])} vs {len(b[name])} rows; first difference at "
              f"{next((i for i, (x, y) in enumerate(zip(a[name], b[name])) if x != y), '-')}")


def counts_pg(db):
    return {t: int(psql(f"SELECT count(*) FROM {t}", db)[0][0]) for t in TABLES if t != "meta"}


def counts_sq(path):
    return {t: int(sq_rows(path, f"SELECT count(*) FROM {t}")[0][0])
            for t in TABLES if t != "meta"}


# ---------------------------------------------------------------- killing

def migrate(src, dst, keyring):
    return subprocess.Popen([BIN, "migrate", "--from", src, "--to", dst, "--keyring", keyring],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(p, seen, what, settle=0.3):
    """SIGKILLs p once seen() is true (after `settle` seconds more, so that
    rows are being written); returns True if p was still running then."""
    deadline = time.time() + KILL_WAIT
    while time.time() < deadline and p.poll() is None:
        if seen():
            time.sleep(settle)
            break
        time.sleep(0.05)
    else:
        p.kill()
        p.wait()
        return check(f"migration reached {what} before {KILL_WAIT:.0f} s", False,
                     f"exit {p.returncode}: {p.stderr.read()[:300]}")
    alive = p.poll() is None
    p.send_signal(signal.SIGKILL)
    rc = p.wait()
    err = p.stderr.read()
    return check(f"SIGKILLed while {what}", alive and rc == -signal.SIGKILL,
                 f"still running: {alive}, exit {rc}; raise PATTO_TEST_MIG_SUBJECTS; {err[:300]}")


def pg_query_seen(db, pattern):
    """Some connection to db is running, or last ran, a statement like pattern."""
    def seen():
        r = psql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                 f"'{db}' AND query LIKE '{pattern}' AND pid <> pg_backend_pid()")
        return int(r[0][0]) > 0
    return seen


def pg_sessions_gone(db):
    """Waits until no session but ours is connected to db (the killed
    client's backend has rolled back and exited)."""
    for _ in range(200):
        r = psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' "
                 "AND pid <> pg_backend_pid()")
        if int(r[0][0]) == 0:
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- HTTP

class Node:
    """`patto serve` on a free port; what it wrote to stderr before
    "listening on" (the proof log's catch-up reports there) is kept."""

    def __init__(self, db, keyring, key, name):
        self.p = subprocess.Popen([BIN, "serve", "--db", db, "--keyring", keyring,
                                   "--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
        procs.append(self.p)
        self.early = ""
        line = self.p.stderr.readline()
        while line and not line.startswith("listening on"):
            self.early += line
            line = self.p.stderr.readline()
        if not line:
            raise RuntimeError(f"patto serve ({name}) did not start: {self.early[:300]}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.key = key
        self.name = name

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Authorization": "Bearer " + self.key}
        if body is not None:
            h["Content-Type"] = "application/json"
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r.status, data

    def stop(self):
        """Stops the node; returns everything it wrote to stderr."""
        self.p.send_signal(signal.SIGTERM)
        try:
            err = self.p.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            self.p.kill()
            err = self.p.communicate()[1]
        return self.early + (err or "")


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in dbs:
        try:
            psql(f"DROP DATABASE IF EXISTS {d} WITH (FORCE)")
        except subprocess.CalledProcessError:
            print(f"could not drop database {d}", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    # ------------------------------------------------------------ the source
    src = os.path.join(tmp, "s.db")
    kr = src + ".keyring"
    key = patto_proc.init(BIN, src)
    subprocess.run([BIN, "key", "create", "--db", src, "--tenant", "demo", "--role", "auditor"],
                   capture_output=True, check=True)
    notice = os.path.join(tmp, "notice.txt")
    with open(notice, "w") as f:
        f.write("Informativa v2\n")
    subprocess.run([BIN, "notice", "publish", "--db", src, "--tenant", "demo", "--notice",
                    "privacy", "--version", "2", "--language", "it", notice],
                   capture_output=True, check=True)
    events = os.path.join(tmp, "events.jsonl")
    with open(events, "w") as f:
        for i in range(SUBJECTS):
            ident = {"type": "email", "value": f"p{i}@example.com"}
            f.write(json.dumps({"identifier": ident, "purpose": "marketing", "action": "grant",
                                "notice": {"notice": "privacy", "version": "1"},
                                "collected_via": "import",
                                "occurred_at": "2026-01-01T00:00:00.000Z",
                                "evidence": {"ip": f"192.0.2.{i % 250}"}}) + "\n")
            f.write(json.dumps({"identifier": ident, "purpose": "profiling", "action": "deny",
                                "collected_via": "import",
                                "occurred_at": "2026-01-02T00:00:00.000Z"}) + "\n")
    r = subprocess.run([BIN, "import", "--db", src, "--tenant", "demo", events],
                       capture_output=True, text=True)
    check("import into the source", r.returncode == 0, r.stderr[:300])
    src_counts = counts_sq(src)
    check(f"source has {SUBJECTS} subjects and a proof log",
          src_counts["subjects"] == SUBJECTS and src_counts["log_leaves"] >= 2 * SUBJECTS
          and src_counts["log_heads"] >= 1 and src_counts["log_keys"] >= 1, str(src_counts))
    src_dump = dump_sq(src)

    # ------------------------------------------------ SQLite -> PostgreSQL
    db = newdb("pg")
    url = pg_url(db)
    empty = {t: 0 for t in src_counts}
    # a COPY of a chunk takes a fraction of a second: kill soon after it shows
    for what, pattern in (("copying events", "COPY events%"),
                          ("copying the proof log", "COPY log_leaves%")):
        p = migrate("sqlite:" + src, url, kr)
        if not kill_when(p, pg_query_seen(db, pattern), what, settle=0.05):
            return
        check(f"killed client's session ended ({what})", pg_sessions_gone(db))
        c = counts_pg(db)
        check(f"destination holds no row after the kill ({what})", c == empty, str(c))
        check(f"no keyring fingerprint left behind ({what})",
              not psql("SELECT 1 FROM meta", db))
    # rows inserted by aborted transactions count in n_tup_ins; the pages
    # they filled may already be gone (autovacuum truncates an empty tail)
    written = int(psql("SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables "
                       "WHERE relname = 'events'", db)[0][0])
    check("the killed runs had written events (rolled back)", written > 0, f"{written} rows")

    t0 = time.time()
    r = subprocess.run([BIN, "migrate", "--from", "sqlite:" + src, "--to", url, "--keyring", kr],
                       capture_output=True, text=True)
    check("migration run again completes", r.returncode == 0, r.stderr[:300])
    print(f"     (full migration: {time.time() - t0:.1f} s; {r.stderr.strip()})")
    check("it copied every event", f"{2 * SUBJECTS} events" in r.stderr, r.stderr[:300])
    pg_counts = counts_pg(db)
    check("row counts equal the source's", pg_counts == src_counts,
          f"source {src_counts}, destination {pg_counts}")
    pg_dump = dump_pg(db)
    compare("sqlite -> postgres", src_dump, pg_dump)
    first_seq = int(psql("SELECT min(seq) FROM events", db)[0][0])
    check("the destination's event seqs differ from the source's (used up by the killed runs)",
          first_seq > 1, f"first seq {first_seq}")

    # ------------------------------------------------ serving the copy
    a = Node(src, kr, key, "sqlite")
    b = Node(url, kr, key, "postgres")
    sa, cpa = a.req("GET", "/v1/log/checkpoint")
    sb, cpb = b.req("GET", "/v1/log/checkpoint")
    check("both serve a signed checkpoint", sa == 200 and sb == 200, f"{sa} {sb}: {cpb[:200]}")
    check("the copy serves the source's checkpoint", cpa == cpb, f"{cpa!r} vs {cpb!r}")
    # an imported consent, as the API names it: from its subject's history
    st, body = a.req("GET", "/v1/subjects?identifier_type=email&identifier=p3@example.com")
    sub = json.loads(body)["subject"] if st == 200 else None
    st, hist = a.req("GET", f"/v1/subjects/{sub}/consents/history")
    evt = json.loads(hist)["events"][0]["event"] if st == 200 else None
    ra = a.req("GET", f"/v1/receipts/{evt}")
    rb = b.req("GET", f"/v1/receipts/{evt}")
    check("the copy serves the same receipt, proof included",
          ra[0] == 200 and ra == rb and "inclusion" in ra[1], f"{ra[0]} {rb[0]} {rb[1][:200]}")
    size = int(cpb.split("\n")[1]) if cpb.count("\n") > 2 else -1
    st, body = b.req("POST", "/v1/consents",
                     {"subject": sub, "purpose": "cookies.ads", "action": "grant",
                      "notice": {"notice": "privacy", "version": "2"},
                      "collected_via": "web_form"})
    proof = json.loads(body).get("receipt", {}).get("proof", {}) if st == 201 else {}
    check("the copy appends a new consent as the next leaf of the copied tree",
          st == 201 and proof.get("leaf_index") == size and proof.get("tree_size") == size + 1,
          f"{st} size {size}: {body[:300]}")
    for n in (a, b):
        err = n.stop()
        check(f"{n.name} node: nothing to catch up on at start (the heads' marks hold)",
              "appended" not in err, err[:300])

    # ------------------------------------------------ PostgreSQL -> SQLite
    back = os.path.join(tmp, "back.db")
    p = migrate(url, "sqlite:" + back, kr)
    if not kill_when(p, pg_query_seen(db, '%FROM subjects WHERE "row" >%'), "copying subjects"):
        return
    pg_sessions_gone(db)
    c = counts_sq(back)
    check("SQLite destination holds no row after the kill", c == empty, str(c))
    check("SQLite destination passes integrity_check",
          sq_rows(back, "PRAGMA integrity_check") == [("ok",)])
    r = subprocess.run([BIN, "migrate", "--from", url, "--to", "sqlite:" + back, "--keyring", kr],
                       capture_output=True, text=True)
    check("postgres -> sqlite run again completes", r.returncode == 0, r.stderr[:300])
    compare("postgres -> sqlite", dump_pg(db), dump_sq(back))
    c = Node(back, kr, key, "sqlite copy")
    st, cpc = c.req("GET", "/v1/log/checkpoint")
    sb2 = Node(url, kr, key, "postgres again")
    st2, cpb2 = sb2.req("GET", "/v1/log/checkpoint")
    check("the SQLite copy serves the PostgreSQL checkpoint", st == 200 and cpc == cpb2,
          f"{st} {cpc[:200]!r} vs {cpb2[:200]!r}")
    for n in (c, sb2):
        err = n.stop()
        check(f"{n.name} node: nothing to catch up on at start", "appended" not in err, err[:300])


try:
    main()
except Exception as e:  # a failed step must still be counted and cleaned up
    import traceback
    traceback.print_exc()
    check("test ran to the end", False, repr(e))
finally:
    cleanup()
failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
