#!/usr/bin/env python3
"""Anonymisation end to end: people whose consent to `processing` lapsed
become k-anonymous statistics; everybody else is untouched.

A real `patto serve` holds 70 people with profiles (name, e-mail, birth
date, region, sex), all granted `processing`; 48 then withdraw or deny.
`patto anonymise` (run beside the server, as a scheduler would) must:
shred exactly those 48 (check answers subject_erased, their names and
e-mails are gone from the database files, the erasure journal names them),
store statistics in which every (age band, region, sex) group holds at
least 5 people, suppress what cannot reach 5, keep the 22 others intact,
and find nothing more to do on a second run. GET /v1/stats reads the
statistics back by region, sex, age and a purpose's state.

Usage: anonymise_test.py PATTO_BIN. Prints 'N passed, N failed'.
"""
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import patto_proc  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
results = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({info})"))


tmp = tempfile.mkdtemp(prefix="patto-anon-")
proc = None
try:
    db = os.path.join(tmp, "a.db")
    key = patto_proc.init(BIN, db)
    proc, port = patto_proc.serve(BIN, db)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(method, path, body=None):
        h = {"Authorization": "Bearer " + key}
        if body is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, json.dumps(body) if body is not None else None, h)
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None

    # who: (birth_date, region, sex, lapses?)
    people = []
    for i in range(26):  # a big group: women of Lombardia born 1991-1994, lapsed
        people.append(("%d-0%d-15" % (1991 + i % 4, 1 + i % 9), "Lombardia", "F", True))
    for i in range(14):  # men of Lazio across a decade: needs a wider band
        people.append(("%d-06-01" % (1976 + i % 10), "Lazio", "M", True))
    for i in range(5):  # unknown region and sex, lapsed: generalised to *
        people.append(("%d-01-01" % (1950 + 7 * i), "", "", True))
    for i in range(3):  # too few to hide anywhere near their own values
        people.append(("2001-02-02", "Molise", "X", True))
    for i in range(22):  # still consenting
        people.append(("1985-05-05", "Veneto", "F", False))

    ids, names, emails = [], [], []
    for i, (bd, region, sex, lapses) in enumerate(people):
        name, email = f"Persona Anonimanda{i:03d}", f"anon.person{i:03d}@example.org"
        profile = {"name": name, "birth_date": bd}
        if region:
            profile["region"] = region
        if sex:
            profile["sex"] = sex
        st, doc = call("POST", "/v1/subjects",
                       {"identifiers": [{"type": "email", "value": email}], "profile": profile})
        assert st == 201, (st, doc)
        sid = doc["subject"]
        st, doc = call("POST", "/v1/consents", {
            "subject": sid, "purpose": "processing", "action": "grant", "collected_via": "api",
            "notice": {"notice": "privacy", "version": "1"}})
        assert st == 201, (st, doc)
        if lapses:
            st, doc = call("POST", "/v1/consents", {
                "subject": sid, "purpose": "processing",
                "action": "withdraw" if i % 3 else "deny", "collected_via": "api"})
            assert st == 201, (st, doc)
        ids.append(sid)
        names.append(name)
        emails.append(email)
    lapsed = [i for i, p in enumerate(people) if p[3]]
    kept = [i for i, p in enumerate(people) if not p[3]]

    out = subprocess.run([BIN, "anonymise", "--db", db, "--tenant", "demo", "--k", "3"],
                         capture_output=True, text=True)
    check("k under 5 is refused", out.returncode == 2, out.stderr)

    out = subprocess.run([BIN, "anonymise", "--db", db, "--tenant", "demo"],
                         capture_output=True, text=True)
    check("anonymise exits 0", out.returncode == 0, out.stderr)
    check("it reports the 48 lapsed people", f"{len(lapsed)} anonymised" in out.stderr,
          out.stderr)

    deadline = time.time() + 5
    while time.time() < deadline:
        st, doc = call("GET", f"/v1/check?subject={ids[lapsed[0]]}&purpose=marketing")
        if doc.get("reason") == "subject_erased":
            break
        time.sleep(0.1)
    erased = 0
    for i in lapsed:
        st, doc = call("GET", f"/v1/check?subject={ids[i]}&purpose=processing")
        erased += doc.get("reason") == "subject_erased"
    check("every lapsed person is erased for check", erased == len(lapsed), erased)
    intact = 0
    for i in kept:
        st, doc = call("GET", f"/v1/subjects/{ids[i]}")
        intact += st == 200 and doc.get("profile", {}).get("name") == names[i]
    check("everybody else still decrypts", intact == len(kept), intact)

    con = sqlite3.connect(db)
    rows = con.execute("SELECT age, region, sex, count(*) FROM stats_records "
                       "GROUP BY age, region, sex").fetchall()
    total = sum(r[3] for r in rows)
    con.close()
    check("every stored group holds at least 5 people", rows and all(r[3] >= 5 for r in rows),
          rows)
    check("the big group keeps its 5-year band and region",
          any(r[0] in ("30-34", "35-39") and r[1] == "lombardia" and r[2] == "f" for r in rows),
          rows)
    check("no stored value is finer than the group allows: no molise, no lone ages",
          not any(r[1] == "molise" for r in rows), rows)
    suppressed = len(lapsed) - total
    check("what could not reach 5 was suppressed, nothing else", 0 <= suppressed < 5,
          (total, suppressed))

    st, doc = call("GET", "/v1/stats")
    check("GET /v1/stats: one total", st == 200 and doc["total"] == total
          and doc["groups"][0]["count"] == total, doc)
    st, doc = call("GET", "/v1/stats?by=region,sex,age")
    check("by region, sex and age: every cell >= 5, cells + hidden = total",
          st == 200 and all(g["count"] >= 5 for g in doc["groups"])
          and sum(g["count"] for g in doc["groups"]) + doc["hidden"] == total, doc)
    st, doc = call("GET", "/v1/stats?by=region,purpose&purpose=processing")
    states = {g.get("state") for g in doc.get("groups", [])}
    check("by a purpose's state", st == 200 and states <= {"withdrawn", "denied"}
          and sum(g["count"] for g in doc["groups"]) + doc["hidden"] == total, doc)
    st, doc = call("GET", "/v1/stats?by=shoe_size")
    check("an unknown dimension is a 400 naming 'by'", st == 400 and doc.get("field") == "by",
          doc)
    st, doc = call("GET", "/v1/stats?by=purpose")
    check("purpose state needs purpose=", st == 400 and doc.get("field") == "purpose", doc)

    journal = open(db + ".erasures").read() if os.path.exists(db + ".erasures") else ""
    check("the erasure journal names every anonymised person",
          all(ids[i] in journal for i in lapsed), journal[:200])

    out = subprocess.run([BIN, "anonymise", "--db", db, "--tenant", "demo"],
                         capture_output=True, text=True)
    check("a second run finds nobody", out.returncode == 0 and " 0 anonymised" in out.stderr,
          out.stderr)

    proc.terminate()
    proc.wait(timeout=10)
    proc = None
    blob = b""
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(db + ext):
            blob += open(db + ext, "rb").read()
    leaked = [i for i in lapsed if names[i].encode() in blob or emails[i].encode() in blob]
    check("no anonymised person's name or e-mail is left in the files", not leaked,
          [names[i] for i in leaked[:3]])
finally:
    if proc:
        proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
