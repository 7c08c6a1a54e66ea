#!/usr/bin/env python3
"""Group commit with failing ops: requests that fail after writing part of
their rows (a subject whose second identifier belongs to someone else)
land in the same batches as valid ones. The failing ones must leave
nothing behind; the valid ones must all be durable and readable.

Usage: batch_test.py PATTO_BIN. Prints 'N passed, N failed'.
"""
import http.client
import json
import os
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import patto_proc  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
results = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({info})"))


tmp = tempfile.mkdtemp(prefix="patto-batch-")
db = os.path.join(tmp, "b.db")
key = patto_proc.init(BIN, db)
p, port = patto_proc.serve(BIN, db)
H = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}


def call(conn, method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None, H)
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
st, _ = call(c, "POST", "/v1/subjects", {"identifiers": [{"type": "email", "value": "owner@example.com"}]})
check("the owner is created", st == 201, st)

good, bad = {}, {}
lock = threading.Lock()


def worker(t):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(40):
        if (t + i) % 2 == 0:
            email = f"good{t}-{i}@example.com"
            st, doc = call(conn, "POST", "/v1/subjects", {
                "identifiers": [{"type": "email", "value": email}], "profile": {"n": i}})
            with lock:
                good[email] = (st, doc)
        else:
            email = f"bad{t}-{i}@example.com"
            st, doc = call(conn, "POST", "/v1/subjects", {
                "identifiers": [{"type": "email", "value": email},
                                {"type": "email", "value": "owner@example.com"}]})
            with lock:
                bad[email] = (st, doc)


ts = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
for t in ts:
    t.start()
for t in ts:
    t.join()

check("every valid request answered 201", all(st == 201 for st, _ in good.values()),
      [st for st, _ in good.values() if st != 201][:5])
check("every conflicting request answered 409",
      all(st == 409 and d.get("field") == "identifiers[1].value" for st, d in bad.values()),
      [(st, d) for st, d in bad.values() if st != 409][:3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
lost = [e for e, (st, d) in good.items()
        if call(c, "GET", f"/v1/subjects?identifier_type=email&identifier={e}")[1].get("subject")
        != d.get("subject")]
check("every valid subject is found again", not lost, lost[:3])
left = [e for e in bad if call(c, "GET", f"/v1/subjects?identifier_type=email&identifier={e}")[0] != 404]
check("a failed request left none of its rows", not left, left[:3])
p.terminate()
check("server stops cleanly", p.wait(timeout=10) == 0)

# and after a restart, from the store alone
p, port = patto_proc.serve(BIN, db)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
some = list(good.items())[:20]
check("valid subjects survive a restart",
      all(call(c, "GET", f"/v1/subjects/{d['subject']}")[0] == 200 for _, (_, d) in some))
p.terminate()
p.wait(timeout=10)
passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
