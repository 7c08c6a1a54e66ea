#!/usr/bin/env python3
"""`patto import` into PostgreSQL: COPY in chunks, all or nothing, the same
result as SQLite, a proof log that verifies.

On PostgreSQL an import's connection holds its rows and sends them with
COPY ... FROM STDIN in chunks of 16 MiB, a sender thread writing one chunk
while the next is encoded; look-ups of rows written earlier in the same
transaction are answered from what is held, or after a flush (see "Bulk
mode" in src/store/postgres.c). The test:

  1. seeds both backends with the same small import (people who exist
     before the big one: their look-ups and consent states come from the
     tables, not from the rows held);
  2. builds a file of some PATTO_TEST_IMPORT_PEOPLE people (default 12000)
     with one to four events each, shuffled so that a person's records are
     far apart (look-ups then find rows held, rows in a chunk being sent,
     or rows already written), by e-mail, by phone and by new subject ids,
     with channels, partial withdrawals and evidence: several chunks;
  3. imports it with a bad line at the end: the import fails naming that
     line, and not one row of any table was written, nor a head signed;
     meanwhile a node serving the database keeps answering;
  4. imports it without the bad line into PostgreSQL and into SQLite: the
     same row counts, `patto export` identical once ids are numbered by
     first appearance, and the consent states identical row for row; the
     events' seqs and the subjects' rows of the import are contiguous (the
     ids reserved in blocks and not used were handed back);
  5. the proof log: every leaf hash is SHA-256(0x00 || leaf), every stored
     subtree hash is the hash of its two children, the root of all leaves
     is the signed head's root, the signed checkpoint names that size and
     root, and receipts of imported events fetched from a node pass
     `patto verify`;
  6. the node that was serving all along sees the imported consents
     promptly (the import's COMMIT notifies it).

Usage: import_test.py PATTO_BIN. Needs the cluster of scripts/pg.sh on
127.0.0.1:${PATTO_PG_PORT:-55432} (run.sh starts it). Creates uniquely
named databases and drops them. Prints 'N passed, N failed'; exits non-zero
on failure. Python 3 standard library only.
"""
import base64
import hashlib
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

BIN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
PGPORT = os.environ.get("PATTO_PG_PORT", "55432")
PEOPLE = int(os.environ.get("PATTO_TEST_IMPORT_PEOPLE", "12000"))
SEEDED = 300
TABLES = ["subjects", "identifiers", "events", "consent_state", "log_leaves", "log_nodes",
          "log_heads"]
B32 = "0123456789abcdefghjkmnpqrstvwxyz"

results = []
tmp = tempfile.mkdtemp(prefix="patto-import-") if __name__ == "__main__" else None
dbs = []
procs = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + (f"  ({info})" if info and not cond else ""),
          flush=True)
    return cond


def psql(sql, db="postgres"):
    out = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres",
                          "-d", db, "-qtA", "-F", "\x1f", "-R", "\x1e", "-c", sql],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(r.split("\x1f")) for r in out.strip("\n").split("\x1e") if r.strip("\n")]


def sq(path, sql):
    con = sqlite3.connect(path)
    try:
        return [tuple("" if v is None else v for v in r) for r in con.execute(sql)]
    finally:
        con.close()


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True)


def sub_id(rnd):
    """A syntactically valid subject id (16 random bytes, Crockford base32)."""
    v = int.from_bytes(rnd.randbytes(16), "big") << 2  # 130 bits, last 2 zero
    return "sub_" + "".join(B32[(v >> (125 - 5 * i)) & 31] for i in range(26))


def id_hex(s):
    """The 16 bytes of an evt_/sub_ id, in hex (as the tables hold them)."""
    body = s.split("_", 1)[1]
    v = 0
    for ch in body:
        v = v << 5 | B32.index(ch)
    return (v >> 2).to_bytes(16, "big").hex()


# ---------------------------------------------------------------- the input

def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def records(rnd):
    """The seed file's records and the main file's (shuffled)."""
    now = int(time.time() * 1000)
    year = 365 * 86400 * 1000
    notice = {"notice": "privacy", "version": "1"}

    def event(who, purpose, action, t):
        r = dict(who)
        r.update({"purpose": purpose, "action": action, "collected_via": "import",
                  "occurred_at": iso(t)})
        if action == "grant":
            r["notice"] = notice
            if purpose == "marketing":
                r["channels"] = rnd.choice([["email"], ["email", "sms"], ["sms", "phone"]])
        elif action == "withdraw" and purpose == "marketing" and rnd.random() < 0.3:
            r["channels"] = ["sms"]  # a partial withdrawal
        if rnd.random() < 0.3:
            r["evidence"] = {"ip": f"198.51.100.{rnd.randrange(1, 255)}", "n": rnd.randrange(1000)}
        return r

    seed = []
    for i in range(SEEDED):
        who = {"identifier": {"type": "email", "value": f"seed{i}@example.com"}}
        seed.append(event(who, "marketing", "grant", now - year + i))
    people = [{"identifier": {"type": "email", "value": f"seed{i}@example.com"}}
              for i in range(SEEDED)]
    for i in range(PEOPLE):
        r = rnd.random()
        if r < 0.7:
            people.append({"identifier": {"type": "email", "value": f"p{i}@example.com"}})
        elif r < 0.8:
            people.append({"identifier": {"type": "phone", "value": f"+3933{i:08d}"}})
        else:
            people.append({"subject": sub_id(rnd)})
    main = []
    for who in people:
        t = now - year // 2 - rnd.randrange(year // 4)
        for _ in range(rnd.randrange(1, 5)):
            t += rnd.randrange(1, 86400 * 1000)
            main.append(event(who, rnd.choice(["marketing", "profiling", "processing"]),
                              rnd.choice(["grant", "grant", "deny", "withdraw"]), t))
    rnd.shuffle(main)
    return seed, main, [p["subject"] for p in people if "subject" in p]


def write_jsonl(name, recs, extra=""):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
        f.write(extra)
    return path


# ---------------------------------------------------------------- comparing

def export(db, keyring):
    r = run("export", "--db", db, "--keyring", keyring, "--tenant", "demo")
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return [json.loads(line) for line in r.stdout.splitlines()]


def numbered(events):
    """Export lines with event and subject ids numbered by first appearance
    and what each import draws itself dropped (its time, the evidence hash's
    random salt and so the hash); and the maps (hex id -> number)."""
    subs, evts, out = {}, {}, []
    for e in events:
        e = dict(e)
        e["event"] = evts.setdefault(id_hex(e["event"]), len(evts))
        e["subject"] = subs.setdefault(id_hex(e["subject"]), len(subs))
        for k in ("recorded_at", "evidence_salt", "evidence_sha256"):  # the import's own
            e.pop(k, None)
        out.append(json.dumps(e, sort_keys=True))
    return out, subs, evts


STATE_COLS = ("purpose_idx, state, channels, revision, decided_at, granted_at, expires_at")


def states_pg(db, subs, evts):
    rows = psql(f"SELECT encode(subject_id, 'hex'), encode(event_id, 'hex'), {STATE_COLS} "
                "FROM consent_state", db)
    return sorted((subs.get(r[0], r[0]), evts.get(r[1], r[1])) + tuple(x or "0" for x in r[2:])
                  for r in rows)


def states_sq(path, subs, evts):
    rows = sq(path, f"SELECT lower(hex(subject_id)), lower(hex(event_id)), {STATE_COLS} "
                    "FROM consent_state")
    return sorted((subs.get(r[0], r[0]), evts.get(r[1], r[1])) + tuple(str(x or 0) for x in r[2:])
                  for r in rows)


def counts_pg(db):
    return {t: int(psql(f"SELECT count(*) FROM {t}", db)[0][0]) for t in TABLES}


def counts_sq(path):
    return {t: int(sq(path, f"SELECT count(*) FROM {t}")[0][0]) for t in TABLES}


# ---------------------------------------------------------------- the log

def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes):
    """RFC 9162 Merkle tree hash of leaf hashes."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def check_log(db, check=check, tenant=1):
    """The proof log of a tenant, from the tables: leaf hashes, every stored
    subtree hash, the signed head's root and its checkpoint."""
    leaves = psql("SELECT idx, encode(hash, 'hex'), encode(data, 'hex') FROM log_leaves "
                  f"WHERE tenant_id = {tenant} ORDER BY idx", db)
    check("leaf indexes are 0..n-1", [int(r[0]) for r in leaves] == list(range(len(leaves))))
    hashes = [bytes.fromhex(r[1]) for r in leaves]
    bad = [r[0] for r, h in zip(leaves, hashes)
           if hashlib.sha256(b"\x00" + bytes.fromhex(r[2])).digest() != h]
    check(f"every leaf hash is SHA-256(0x00 || leaf) ({len(leaves)} leaves)", not bad,
          f"{len(bad)} differ, e.g. {bad[:3]}")
    levels = [hashes]
    while len(levels[-1]) > 1:
        lv = levels[-1]
        levels.append([node_hash(lv[2 * i], lv[2 * i + 1]) for i in range(len(lv) // 2)])
    nodes = psql("SELECT level, idx, encode(hash, 'hex') FROM log_nodes "
                 f"WHERE tenant_id = {tenant}", db)
    wrong = [(lv, ix) for lv, ix, h in nodes
             if int(lv) >= len(levels) or int(ix) >= len(levels[int(lv)])
             or levels[int(lv)][int(ix)].hex() != h]
    want = sum(len(lv) for lv in levels[1:])
    check(f"every stored subtree hash is its children's ({len(nodes)} of {want} complete "
          "subtrees)", not wrong and len(nodes) == want, f"{len(wrong)} wrong, e.g. {wrong[:3]}")
    head = psql("SELECT size, encode(root, 'hex'), checkpoint FROM log_heads "
                f"WHERE tenant_id = {tenant}", db)[0]
    root = mth(hashes)
    check("the root of the leaves is the signed head's root",
          int(head[0]) == len(hashes) and head[1] == root.hex(), f"{head[:2]} vs {len(hashes)}")
    lines = head[2].split("\n")
    check("the signed checkpoint names that size and root",
          len(lines) > 3 and lines[1] == str(len(hashes))
          and base64.b64decode(lines[2]) == root, head[2][:200])


# ---------------------------------------------------------------- a node

class Node:
    def __init__(self, db, keyring, key):
        self.p = subprocess.Popen([BIN, "serve", "--db", db, "--keyring", keyring,
                                   "--listen", "127.0.0.1:0", "--threads", "2"],
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        procs.append(self.p)
        line = self.p.stderr.readline()
        while line and not line.startswith("listening on"):
            line = self.p.stderr.readline()
        if not line:
            raise RuntimeError("patto serve did not start")
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.key = key

    def req(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", path, headers={"Authorization": "Bearer " + self.key})
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r.status, data

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def main():
    rnd = random.Random(20261129)
    seed, main_recs, new_ids = records(rnd)
    seed_file = write_jsonl("seed.jsonl", seed)
    good = write_jsonl("main.jsonl", main_recs)
    bad_line = json.dumps({"identifier": {"type": "email", "value": "last@example.com"},
                           "purpose": "no_such_purpose", "action": "grant",
                           "collected_via": "import"}) + "\n"
    bad = write_jsonl("bad.jsonl", main_recs, bad_line)
    print(f"     {len(main_recs)} events of {PEOPLE + SEEDED} people "
          f"({os.path.getsize(good) >> 20} MiB)", flush=True)

    db = f"patto_imp_{os.getpid()}_{random.randrange(1 << 30)}"
    psql(f"CREATE DATABASE {db}")
    dbs.append(db)
    url = f"postgres://postgres@127.0.0.1:{PGPORT}/{db}"
    pkr = os.path.join(tmp, "pg.keyring")
    r = run("init", "--db", url, "--keyring", pkr)
    check("init on postgres", r.returncode == 0, r.stderr)
    key = r.stdout.strip().splitlines()[-1]
    sdb = os.path.join(tmp, "s.db")
    r = run("init", "--db", sdb)
    check("init on sqlite", r.returncode == 0, r.stderr)
    skr = sdb + ".keyring"

    for name, d, kr in (("postgres", url, pkr), ("sqlite", sdb, skr)):
        r = run("import", "--db", d, "--keyring", kr, "--tenant", "demo", seed_file)
        check(f"seed import into {name}", r.returncode == 0, r.stderr)

    node = Node(url, pkr, key)
    before = counts_pg(db)
    head0 = psql("SELECT checkpoint FROM log_heads", db)
    t0 = time.time()
    r = run("import", "--db", url, "--keyring", pkr, "--tenant", "demo", bad)
    n_bad = len(main_recs) + 1
    check("an import with a bad last line fails", r.returncode == 3, f"{r.returncode} {r.stderr}")
    check(f"it names that line ({n_bad})", f"line {n_bad}:" in r.stderr, r.stderr.strip())
    print(f"     (failed import: {time.time() - t0:.1f} s)", flush=True)
    check("not one row was written", counts_pg(db) == before, f"{before} vs {counts_pg(db)}")
    check("no head was signed", psql("SELECT checkpoint FROM log_heads", db) == head0)
    st, _ = node.req("/v1/health")
    check("the serving node kept answering", st == 200, st)

    seq0, row0 = (int(x) for x in psql('SELECT (SELECT max(seq) FROM events), '
                                       '(SELECT max("row") FROM subjects)', db)[0])
    r = run("import", "--db", url, "--keyring", pkr, "--tenant", "demo", good)
    check("the import without the bad line succeeds on postgres", r.returncode == 0, r.stderr)
    print(f"     postgres: {r.stderr.strip()}", flush=True)
    t_done = time.time()

    # 6. (first, while it is fresh) the node saw the import
    probe = None
    for rec in main_recs:
        if "subject" in rec and rec["action"] == "grant":
            probe = rec
    seen = None
    if probe:
        path = f"/v1/check?subject={probe['subject']}&purpose={probe['purpose']}"
        while time.time() - t_done < 10:
            st, body = node.req(path)
            if st == 200 and json.loads(body).get("reason") != "unknown_subject":
                seen = time.time() - t_done
                break
            time.sleep(0.01)
    check("the node serving all along knows the imported subjects (NOTIFY at commit)",
          seen is not None, "not within 10 s")
    if seen is not None:
        print(f"     (the node answered for an imported subject {seen * 1000:.0f} ms after the "
              "import returned)", flush=True)

    r = run("import", "--db", sdb, "--tenant", "demo", good)
    check("and on sqlite", r.returncode == 0, r.stderr)
    print(f"     sqlite:   {r.stderr.strip()}", flush=True)

    # 4. the same result as SQLite
    pc, sc = counts_pg(db), counts_sq(sdb)
    check("row counts equal SQLite's", pc == sc, f"postgres {pc}, sqlite {sc}")
    pe, subs, evts = numbered(export(url, pkr))
    se, ssubs, sevts = numbered(export(sdb, skr))
    diff = next((i for i, (a, b) in enumerate(zip(pe, se)) if a != b), None)
    check(f"export equal to SQLite's ({len(pe)} events)", pe == se,
          f"{len(pe)} vs {len(se)}; first difference at {diff}: "
          f"{pe[diff] if diff is not None else ''} vs {se[diff] if diff is not None else ''}")
    ps, ss = states_pg(db, subs, evts), states_sq(sdb, ssubs, sevts)
    check(f"consent states equal to SQLite's ({len(ps)} rows)", ps == ss,
          f"first difference: {next(((a, b) for a, b in zip(ps, ss) if a != b), None)}")
    ids = {p for p in new_ids}
    have = {r[0] for r in psql("SELECT encode(id, 'hex') FROM subjects", db)}
    check("subjects given by a new id were created with that id",
          all(id_hex(i) in have for i in ids), f"{len(ids)} ids")
    # ids are reserved in blocks: none skipped inside the import, what was
    # left handed back (the failed import's blocks are a gap before it)
    lo, hi, n = (int(x) for x in psql(f"SELECT min(seq), max(seq), count(*) FROM events "
                                      f"WHERE seq > {seq0}", db)[0])
    check("the import's event seqs are contiguous", hi - lo + 1 == n == len(main_recs),
          f"{lo}..{hi} for {n} events (want {len(main_recs)})")
    nxt = int(psql("SELECT nextval(pg_get_serial_sequence('events', 'seq'))", db)[0][0])
    check("the next event seq follows the import's last", nxt == hi + 1, f"{nxt} after {hi}")
    lo, hi, n = (int(x) for x in psql(f'SELECT min("row"), max("row"), count(*) FROM subjects '
                                      f'WHERE "row" > {row0}', db)[0])
    check("the import's subject rows are contiguous", hi - lo + 1 == n, f"{lo}..{hi} for {n}")

    # 5. the proof log
    check_log(db)
    picks = [e for e in export(url, pkr)]
    picks = [picks[0], picks[len(picks) // 2], picks[-1]] + rnd.sample(picks, 3)
    ok = 0
    for e in picks:
        st, body = node.req(f"/v1/receipts/{e['event']}")
        if st != 200:
            print(f"     receipt {e['event']}: {st} {body[:200]}")
            continue
        path = os.path.join(tmp, "receipt.json")
        with open(path, "w") as f:
            f.write(body)
        v = subprocess.run([BIN, "verify", path], capture_output=True, text=True)
        if v.returncode == 0:
            ok += 1
        else:
            print(f"     verify {e['event']}: {v.stdout} {v.stderr}")
    check(f"receipts of imported events pass `patto verify` ({ok} of {len(picks)})",
          ok == len(picks))
    check("the node stops cleanly", node.stop() == 0)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash of the harness is a failure, not a pass
        import traceback
        traceback.print_exc()
        check("test ran to the end", False, repr(e))
    finally:
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

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)
