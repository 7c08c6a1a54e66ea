#!/usr/bin/env python3
"""The signer refuses to sign a checkpoint that does not extend the last one.

A real `patto serve` records consents; then, server stopped, the database is
altered the ways an operator (or a bug) could try to rewrite history:
  1. the signed head's root no longer matches the stored subtree hashes;
  2. a stored subtree hash is replaced (the tree behind the head is forked);
  3. the head's size is moved back (history would be rewritten from there).
Each must make the next write fail (5xx) with nothing written and no new
checkpoint. And a restart of an unaltered database neither shrinks nor
changes the tree.

Usage: signer_test.py PATTO_BIN. Prints 'N passed, N failed'.
"""
import http.client
import json
import os
import shutil
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import patto_proc  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
results = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({info})"))


def grant(port, key, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/consents", json.dumps({
        "identifier": {"type": "email", "value": f"s{i}@example.com"}, "purpose": "marketing",
        "action": "grant", "channels": ["email"], "notice": {"notice": "privacy", "version": "1"},
        "collected_via": "api"}),
        {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    return r.status, body


def head(db):
    con = sqlite3.connect(db)
    row = con.execute("SELECT size, root, checkpoint FROM log_heads").fetchone()
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    return row, events


def stop(p):
    p.terminate()
    p.wait(timeout=10)


tmp = tempfile.mkdtemp(prefix="patto-signer-")
try:
    db = os.path.join(tmp, "s.db")
    key = patto_proc.init(BIN, db)
    p, port = patto_proc.serve(BIN, db)
    for i in range(5):
        st, _ = grant(port, key, i)
        check(f"consent {i} recorded", st == 201, st)
    stop(p)
    (size0, root0, cp0), ev0 = head(db)
    p, port = patto_proc.serve(BIN, db)
    stop(p)
    (size1, root1, _), _ = head(db)
    check("a restart neither shrinks nor changes the tree", (size1, root1) == (size0, root0))

    pristine = os.path.join(tmp, "pristine.db")
    shutil.copy(db, pristine)

    def tampered(name, sql):
        shutil.copy(pristine, db)
        for ext in ("-wal", "-shm"):
            if os.path.exists(db + ext):
                os.remove(db + ext)
        con = sqlite3.connect(db)
        con.execute(sql)
        con.commit()
        con.close()
        (size_b, root_b, cp_b), ev_b = head(db)
        p, port = patto_proc.serve(BIN, db)
        st, body = grant(port, key, 100)
        stop(p)
        (size_a, root_a, cp_a), ev_a = head(db)
        check(f"{name}: the write is refused", st >= 500, f"{st} {body[:200]}")
        check(f"{name}: nothing written", ev_a == ev_b, f"{ev_b} -> {ev_a}")
        check(f"{name}: no checkpoint signed", (size_a, root_a, cp_a) == (size_b, root_b, cp_b))
        check(f"{name}: the reason names the log", b"log" in body or b"checkpoint" in body,
              body[:200])

    tampered("head root altered",
             "UPDATE log_heads SET root = zeroblob(32)")
    tampered("a subtree hash altered (forked tree)",
             "UPDATE log_nodes SET hash = zeroblob(32) WHERE level = "
             "(SELECT max(level) FROM log_nodes)")
    tampered("the head's size moved back",
             f"UPDATE log_heads SET size = {size0 - 2}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
