#!/usr/bin/env python3
"""Storage fault tests against the real binary, using the SQLite backend's
test-only fault hooks (PATTO_FAULT_FSYNC_AFTER, PATTO_FAULT_FULL_AFTER):

  fsync fails  -> the write answers 503 (never 2xx) and the server stops
                  with a non-zero status; nothing acknowledged is lost.
  disk full    -> writes answer 503 and change nothing; reads keep working;
                  the server stays up.

Usage: fault_test.py PATTO_BIN. Prints 'N passed, N failed'.
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import patto_proc  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
results = []


def check(name, cond, info=""):
    results.append(cond)
    print(("ok   " if cond else "FAIL ") + name + (f"  ({info})" if info and not cond else ""))


def start(db, env_extra):
    return patto_proc.serve(BIN, db, env=env_extra)


def req(port, key, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    h = {"Authorization": "Bearer " + key}
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body)
    c.request(method, path, body, h)
    r = c.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def setup():
    tmp = tempfile.mkdtemp(prefix="patto-fault-")
    db = os.path.join(tmp, "f.db")
    key = patto_proc.init(BIN, db)
    p, port = start(db, {})
    st, doc = req(port, key, "POST", "/v1/subjects", {"profile": {"a": 1}})
    sub = doc["subject"]
    p.terminate()
    p.wait()
    return db, key, sub


def grant(port, key, sub, action="grant"):
    return req(port, key, "POST", "/v1/consents",
               {"subject": sub, "purpose": "marketing", "action": action,
                "notice": {"notice": "privacy", "version": "1"}, "collected_via": "api"})


def test_fsync():
    db, key, sub = setup()
    p, port = start(db, {"PATTO_FAULT_FSYNC_AFTER": "3"})
    statuses, acked = [], []
    for i in range(10):
        try:
            st, doc = grant(port, key, sub, "grant" if i % 2 == 0 else "withdraw")
        except OSError:
            break
        statuses.append(st)
        if st == 201:
            acked.append(doc["event"])
        if st == 503:
            break
    check("fsync failure answers 503", 503 in statuses, statuses)
    first = statuses.index(503) if 503 in statuses else len(statuses)
    check("no 2xx after the failed fsync", all(s != 201 for s in statuses[first:]), statuses)
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    check("the server stops after a failed fsync", rc not in (None, 0), f"rc={rc}")
    out = subprocess.run([BIN, "export", "--db", db, "--tenant", "demo"], capture_output=True,
                         text=True)
    ids = {json.loads(l)["event"] for l in out.stdout.splitlines() if l}
    check("acknowledged events survive", all(e in ids for e in acked), f"{len(acked)} acked")


def test_full():
    db, key, sub = setup()
    p, port = start(db, {})
    st, _ = grant(port, key, sub)
    st, hist = req(port, key, "GET", f"/v1/subjects/{sub}/consents/history")
    before = len(hist["events"])
    p.terminate()
    p.wait()
    p, port = start(db, {"PATTO_FAULT_FULL_AFTER": "0"})
    codes = [grant(port, key, sub, "withdraw")[0] for _ in range(3)]
    check("disk full answers 503", codes == [503, 503, 503], codes)
    st, doc = req(port, key, "GET", f"/v1/check?subject={sub}&purpose=marketing")
    check("reads keep working when the disk is full", st == 200 and doc["allowed"] is True,
          f"{st} {doc}")
    st, hist = req(port, key, "GET", f"/v1/subjects/{sub}/consents/history")
    check("a refused write changed nothing", st == 200 and len(hist["events"]) == before)
    check("the server stays up on a full disk", p.poll() is None)
    p.terminate()
    check("and stops cleanly", p.wait(timeout=5) == 0)


test_fsync()
test_full()
passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
