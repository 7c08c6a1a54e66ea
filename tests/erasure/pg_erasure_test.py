#!/usr/bin/env python3
"""Erasure on PostgreSQL: two `patto serve` nodes on one database, and a
restored pg_dump.

  1. A person erased through node A is answered subject_erased by node A at
     once and by node B within 1 second (B's sync thread finds erasures by
     erased_at, since an erased subject keeps its row); the same for an
     erasure made with `patto subject erase` against the database.
  2. A pg_dump taken before an erasure, restored with pg_restore into a new
     database: `patto serve` on it replays the erasure journal at start, so
     the person is erased again before the first request. Then KEK rotation
     on that database.

Usage: pg_erasure_test.py PATTO_BIN. Starts the cluster of scripts/pg.sh
(port $PATTO_PG_PORT, default 55432) if it is not running, and then stops
it; creates uniquely named databases and drops them. Prints
'N passed, N failed'. Python 3 standard library only.
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1])
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_SH = os.path.join(ROOT, "scripts", "pg.sh")
PGPORT = os.environ.get("PATTO_PG_PORT", "55432")
PGBIN = os.environ.get("PATTO_PG_BIN", "/usr/lib/postgresql/15/bin")
results = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({info})"), flush=True)
    return cond


def psql(sql, db="postgres"):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", "-d", db,
                           "-qtAc", sql], capture_output=True, text=True, check=True).stdout


def url_of(db):
    return f"postgres://postgres@127.0.0.1:{PGPORT}/{db}"


class Node:
    def __init__(self, name, url, keyring, journal, tmp):
        self.log = os.path.join(tmp, f"serve-{name}.log")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--db", url, "--keyring", keyring, "--erasure-journal", journal,
             "--listen", "127.0.0.1:0"], stderr=self.logf, stdout=subprocess.DEVNULL)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            with open(self.log) as f:
                for line in f:
                    if line.startswith("listening on"):
                        self.port = int(line.strip().rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            raise RuntimeError(f"node {name} did not start: {open(self.log).read()[-400:]}")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)

    def call(self, key, method, path, body=None):
        h = {"Authorization": "Bearer " + key}
        if body is not None:
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, json.dumps(body) if body is not None else None, h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)

    def reason(self, key, sid):
        st, doc = self.call(key, "GET", f"/v1/check?subject={sid}&purpose=marketing&channel=email")
        return doc.get("reason") if st == 200 else f"HTTP {st}"

    def stop(self):
        self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.logf.close()
        return rc


def person(node, key, n):
    st, doc = node.call(key, "POST", "/v1/subjects", {
        "identifiers": [{"type": "email", "value": f"pg.person{n}@erasure.example.org"}],
        "profile": {"name": f"PG Person {n}"}})
    assert st == 201, (st, doc)
    sid = doc["subject"]
    st, doc = node.call(key, "POST", "/v1/consents", {
        "subject": sid, "purpose": "marketing", "action": "grant", "channels": ["email"],
        "notice": {"notice": "privacy", "version": "1"}, "collected_via": "api"})
    assert st == 201, (st, doc)
    return sid


def until(fn, want, limit=1.0):
    t0 = time.monotonic()
    got = None
    while time.monotonic() - t0 < limit:
        got = fn()
        if got == want:
            return True, time.monotonic() - t0
        time.sleep(0.01)
    return False, got


def main():
    started = subprocess.run([PG_SH, "url"], capture_output=True,
                             env=dict(os.environ, PATTO_PG_PORT=PGPORT)).returncode != 0
    if started:
        subprocess.run([PG_SH, "start"], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, PATTO_PG_PORT=PGPORT))
    tmp = tempfile.mkdtemp(prefix="patto-pg-erasure-")
    tag = f"{os.getpid()}_{random.randrange(1 << 30)}"
    db, db2 = f"patto_er_{tag}", f"patto_er2_{tag}"
    keyring = os.path.join(tmp, "keyring")
    journal = os.path.join(tmp, "erasures")
    nodes = []
    try:
        psql(f"CREATE DATABASE {db}")
        p = subprocess.run([BIN, "init", "--db", url_of(db), "--keyring", keyring],
                           capture_output=True, text=True, check=True)
        key = p.stdout.strip().splitlines()[-1]
        nodes = [Node("A", url_of(db), keyring, journal, tmp),
                 Node("B", url_of(db), keyring, journal, tmp)]
        a, b = nodes
        subs = [person(a, key, i) for i in range(4)]
        ok, _ = until(lambda: b.reason(key, subs[0]), None)
        check("node B sees the grant made on node A", ok)

        # 1. an erasure through node A
        st, doc = a.call(key, "DELETE", f"/v1/subjects/{subs[0]}")
        check("DELETE on node A answers the receipt", st == 200 and doc["subject"] == subs[0],
              (st, doc))
        check("node A answers subject_erased at once", a.reason(key, subs[0]) == "subject_erased")
        ok, t = until(lambda: b.reason(key, subs[0]), "subject_erased")
        check("node B answers subject_erased within 1 s", ok, t)
        if ok:
            print(f"     (node B followed after {1000 * t:.0f} ms)")
        st, doc = b.call(key, "GET", f"/v1/subjects/{subs[0]}")
        check("node B reads the subject as erased", st == 200 and doc.get("profile") is None
              and doc.get("erased_at"), (st, doc))
        check("the others still decrypt on node B",
              all(b.call(key, "GET", f"/v1/subjects/{s}")[1]["profile"]["name"]
                  == f"PG Person {i + 1}" for i, s in enumerate(subs[1:])))
        ok, _ = until(lambda: psql("SELECT count(*) FROM pg_stat_user_tables WHERE relname IN "
                                   "('subjects', 'identifiers') AND last_vacuum IS NOT NULL",
                                   db).strip(), "2", limit=10.0)
        check("the erasure VACUUMed subjects and identifiers (in the background)", ok)
        rows = psql("SELECT count(*) FROM subjects WHERE wrapped_dek IS NOT NULL AND "
                    "erased_at IS NOT NULL", db).strip()
        check("no erased subject keeps a wrapped key", rows == "0", rows)
        rows = psql(f"SELECT count(*) FROM identifiers i JOIN subjects s ON s.id = i.subject_id "
                    f"WHERE s.erased_at IS NOT NULL", db).strip()
        check("no erased subject keeps an identifier", rows == "0", rows)

        # an erasure by the CLI against the database
        dump = os.path.join(tmp, "before.dump")
        subprocess.run([os.path.join(PGBIN, "pg_dump"), "-h", "127.0.0.1", "-p", PGPORT, "-U",
                        "postgres", "-Fc", "-f", dump, db], check=True)
        p = subprocess.run([BIN, "subject", "erase", "--db", url_of(db), "--keyring", keyring,
                            "--erasure-journal", journal, "--tenant", "demo", subs[1]],
                           capture_output=True, text=True)
        check("patto subject erase on PostgreSQL", p.returncode == 0, p.stderr)
        for n in nodes:
            ok, t = until(lambda: n.reason(key, subs[1]), "subject_erased")
            check("both nodes answer subject_erased within 1 s of a CLI erasure", ok, t)
        check("the journal holds both erasures",
              sum(1 for ln in open(journal) if ln.startswith("erased ")) == 2)
        for n in nodes:
            check("node stops cleanly", n.stop() == 0)
        nodes = []

        # 2. a pg_dump from before the CLI erasure, restored: erased again at start
        psql(f"CREATE DATABASE {db2}")
        subprocess.run([os.path.join(PGBIN, "pg_restore"), "-h", "127.0.0.1", "-p", PGPORT, "-U",
                        "postgres", "-d", db2, dump], check=True, capture_output=True)
        held = psql("SELECT count(*) FROM subjects WHERE erased_at IS NULL", db2).strip()
        check("the restored dump holds the person erased after it", held == "3", held)
        nodes = [Node("C", url_of(db2), keyring, journal, tmp)]
        log = open(nodes[0].log).read()
        check("patto serve replays the journal at start", "erased again" in log, log[-300:])
        check("the person is erased again before the first request",
              nodes[0].reason(key, subs[1]) == "subject_erased")
        held = psql("SELECT count(*) FROM subjects WHERE erased_at IS NULL", db2).strip()
        check("the restored database holds two live people", held == "2", held)
        check("node stops cleanly", nodes[0].stop() == 0)
        nodes = []
        # KEK rotation on PostgreSQL
        p = subprocess.run([BIN, "keys", "rotate", "--db", url_of(db2), "--keyring", keyring],
                           capture_output=True, text=True)
        check("patto keys rotate on PostgreSQL re-wraps the two live people",
              p.returncode == 0 and "2 data keys re-wrapped under key epoch 2" in p.stderr,
              p.stderr)
        epochs = psql("SELECT DISTINCT kek_epoch FROM subjects WHERE erased_at IS NULL",
                      db2).split()
        check("every live subject is on epoch 2", epochs == ["2"], epochs)
        nodes = [Node("D", url_of(db2), keyring, journal, tmp)]
        st, doc = nodes[0].call(key, "GET", f"/v1/subjects/{subs[2]}")
        check("after the rotation the others decrypt", st == 200
              and doc["profile"]["name"] == "PG Person 2", (st, doc))
        check("node stops cleanly", nodes[0].stop() == 0)
        nodes = []
        p = subprocess.run([BIN, "backup", "--db", url_of(db2), os.path.join(tmp, "x.db")],
                           capture_output=True, text=True)
        check("patto backup refuses PostgreSQL and names pg_dump",
              p.returncode == 3 and "pg_dump" in p.stderr, p.stderr)
    finally:
        for n in nodes:
            try:
                n.stop()
            except Exception:
                n.proc.kill()
        for d in (db, db2):
            try:
                psql(f"DROP DATABASE IF EXISTS {d} WITH (FORCE)")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            subprocess.run([PG_SH, "stop"], stdout=subprocess.DEVNULL,
                           env=dict(os.environ, PATTO_PG_PORT=PGPORT))
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
