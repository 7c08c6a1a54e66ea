#!/usr/bin/env python3
"""Erasure that really erases (GDPR Art. 17), end to end on the real binary.

People are created with distinctive e-mails, phones and names; one is
erased; then the database file, its -wal and -shm, the erasure journal and
the server's stderr are scanned byte by byte for that person's e-mail,
phone and name, and for the exact bytes the database held for them before
the erasure (wrapped data key, sealed profile, sealed identifier values,
blind-index entries): none may be left. Everyone else must still decrypt,
and `check` must answer subject_erased within a second. Then: an erasure
made by the CLI while the server runs reaches the server's cache; a backup
restored after an erasure erases the person again (patto restore, and
patto serve at start, replay the erasure journal); KEK rotation re-wraps
everyone, removes the old KEK from the keyring file, and a backup taken
before the rotation no longer opens with the new keyring.

Usage: erasure_test.py PATTO_BIN. Prints 'N passed, N failed'.
"""
import base64
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1])
results = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({info})"))
    return cond


tmp = tempfile.mkdtemp(prefix="patto-erasure-")
db = os.path.join(tmp, "p.db")
journal = db + ".erasures"
keyring = db + ".keyring"
log_path = os.path.join(tmp, "serve.log")
B32 = "0123456789abcdefghjkmnpqrstvwxyz"


def sub_bytes(sid):
    """The 16 bytes of a sub_... id (base32, most significant bits first)."""
    v = 0
    for ch in sid[4:]:
        v = v * 32 + B32.index(ch)
    return (v >> 2).to_bytes(16, "big")


def run(*args, check_rc=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"patto {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p


class Server:
    """patto serve with its stderr in a file (the file is scanned too)."""

    def __init__(self):
        self.log = open(log_path, "a")
        self.p = subprocess.Popen([BIN, "serve", "--db", db, "--listen", "127.0.0.1:0"],
                                  stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 15
        self.port = None
        start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        while time.time() < deadline and self.port is None:
            with open(log_path) as f:
                f.seek(start)
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            elif self.p.poll() is not None:
                raise RuntimeError("patto serve exited: " + open(log_path).read()[-500:])
            else:
                time.sleep(0.02)
        if self.port is None:
            raise RuntimeError("patto serve did not start")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)

    def call(self, method, path, body=None, key=None):
        h = {"Authorization": "Bearer " + (key or KEY)}
        if body is not None:
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, json.dumps(body) if body is not None else None, h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)

    def stop(self):
        self.conn.close()
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=20)
        self.log.close()
        return rc


def person(tag):
    """Distinctive personal data for one person."""
    r = secrets.token_hex(4)
    return {
        "email": f"{tag}.{r}@erasure-test.example.org",
        "phone": "+39333" + "".join(str(secrets.randbelow(10)) for _ in range(7)),
        "name": f"Zebulon{tag.capitalize()}{r} Quixote",
    }


def create(s, who):
    st, doc = s.call("POST", "/v1/subjects", {
        "identifiers": [{"type": "email", "value": who["email"]},
                        {"type": "phone", "value": who["phone"]}],
        "profile": {"name": who["name"], "city": "Trento"}})
    assert st == 201, (st, doc)
    sid = doc["subject"]
    st, doc = s.call("POST", "/v1/consents", {
        "subject": sid, "purpose": "marketing", "action": "grant", "channels": ["email"],
        "notice": {"notice": "privacy", "version": "1"}, "collected_via": "web_form",
        "evidence": {"ip": "203.0.113.7", "form": "newsletter " + who["name"]}})
    assert st == 201, (st, doc)
    return sid


def stored(sid, path=db):
    """The bytes the database holds for a subject: wrapped key, sealed
    profile, sealed identifier values, blind-index entries."""
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = []
        row = c.execute("SELECT wrapped_dek, profile, kek_epoch FROM subjects WHERE id = ?",
                        (sub_bytes(sid),)).fetchone()
        out += [("wrapped data key", row[0]), ("sealed profile", row[1])]
        for v, b in c.execute("SELECT value, blind FROM identifiers WHERE subject_id = ?",
                              (sub_bytes(sid),)):
            out += [("sealed identifier", v), ("blind index", b)]
        return [(k, bytes(v)) for k, v in out if v]
    finally:
        c.close()


def files():
    fs = [db, db + "-wal", db + "-shm", journal, log_path]
    return [f for f in fs if os.path.exists(f)]


def leftovers(who, blobs):
    """What of a person is still in the files: (what, file) pairs."""
    needles = [("e-mail", who["email"].encode()), ("e-mail (upper)", who["email"].upper().encode()),
               ("phone", who["phone"].encode()), ("phone digits", who["phone"][1:].encode()),
               ("name", who["name"].encode())] + blobs
    found = []
    for f in files():
        data = open(f, "rb").read()
        for what, n in needles:
            if n and n in data:
                found.append((what, os.path.basename(f)))
    return found


def decrypts(s, sid, who):
    st, doc = s.call("GET", f"/v1/subjects/{sid}")
    return (st == 200 and doc.get("profile", {}).get("name") == who["name"]
            and {"type": "email", "value": who["email"]} in doc.get("identifiers", []))


def check_answer(s, sid):
    st, doc = s.call("GET", f"/v1/check?subject={sid}&purpose=marketing&channel=email")
    return doc.get("reason") if st == 200 else f"HTTP {st}"


KEY = run("init", "--db", db).stdout.strip().splitlines()[-1]
s = Server()
people = {t: person(t) for t in ("victim", "alice", "bob", "carol", "dave", "erin", "frank")}
ids = {t: create(s, w) for t, w in people.items()}
check("everyone decrypts before", all(decrypts(s, ids[t], w) for t, w in people.items()))

# ---- 1. erasure through the API
v = people["victim"]
blobs = stored(ids["victim"])
check("the database holds the victim's wrapped key, profile and identifiers",
      len(blobs) == 6, [k for k, _ in blobs])
before = leftovers(v, blobs)
check("positive control: the scan finds the victim's stored bytes before the erasure",
      any(w == "wrapped data key" for w, _ in before), before)
t0 = time.monotonic()
st, receipt = s.call("DELETE", f"/v1/subjects/{ids['victim']}")
t_answer = time.monotonic()
reason = check_answer(s, ids["victim"])
t_check = time.monotonic()
check("DELETE answers 200 with an erasure receipt", st == 200 and receipt.get("subject") == ids["victim"],
      (st, receipt))
check("the receipt says what was destroyed",
      receipt.get("destroyed") == {"data_key": True, "profile": True, "identifiers": 2,
                                   "merged_subjects": 0}, receipt)
proof = receipt.get("proof") or {}
leaf = json.loads(base64.b64decode(proof.get("leaf", "")) or b"{}")
check("the receipt carries the proof of a subject.erased leaf",
      leaf.get("kind") == "subject.erased" and leaf.get("subject") == ids["victim"]
      and proof.get("checkpoint", "").count("\n") >= 3, proof)
check("check answers subject_erased within 1 s of the DELETE's answer",
      reason == "subject_erased" and t_check - t_answer < 1.0, (reason, t_check - t_answer))
print(f"     (DELETE answered in {1000 * (t_answer - t0):.1f} ms)")
left = leftovers(v, blobs)
check("no byte of the victim is left in the database, -wal, -shm, journal or log", not left, left)
check("the -wal file is empty after the erasure", os.path.getsize(db + "-wal") == 0,
      os.path.getsize(db + "-wal"))
check("everyone else still decrypts",
      all(decrypts(s, ids[t], w) for t, w in people.items() if t != "victim"))
st, doc = s.call("GET", f"/v1/subjects/{ids['victim']}")
check("GET answers the erased subject with erased_at and nothing personal",
      st == 200 and doc.get("erased_at") and doc.get("profile") is None and doc["identifiers"] == [],
      (st, doc))
st, doc = s.call("GET", f"/v1/subjects/{ids['victim']}/consents/history")
check("the history keeps the event, evidence null, its hash kept",
      st == 200 and len(doc["events"]) == 1 and doc["events"][0]["evidence"] is None
      and len(doc["events"][0]["evidence_sha256"]) == 64, doc)
st, doc = s.call("DELETE", f"/v1/subjects/{ids['victim']}")
check("a second erasure is 409", st == 409 and doc.get("field") == "subject", (st, doc))
st, doc = s.call("GET", "/v1/subjects?identifier_type=email&identifier=" + v["email"])
check("the e-mail finds nobody any more", st == 404, (st, doc))
lines = open(journal).read().splitlines()
check("the journal holds the erasure", any(ids["victim"] in ln for ln in lines), lines)

# ---- 1b. a person merged from two subjects: both keys go
g, h = person("grace"), person("heidi")
g_id, h_id = create(s, g), create(s, h)
st, doc = s.call("POST", f"/v1/subjects/{g_id}/merge", {"from": h_id})
check("heidi's subject is merged into grace's", st in (200, 201), (st, doc))
h_blobs = [b for b in stored(h_id) if b[0] == "wrapped data key"]
g_blobs = stored(g_id)
check("the merged subject keeps its own wrapped key", len(h_blobs) == 1, h_blobs)
st, doc = s.call("DELETE", f"/v1/subjects/{h_id}")
check("erasing the merged id erases the person",
      st == 200 and doc["subject"] == g_id and doc["destroyed"]["merged_subjects"] == 1, (st, doc))
left = leftovers(g, g_blobs) + leftovers(h, h_blobs)
check("no byte of either subject is left in the files", not left, left)
check("check answers subject_erased for both ids",
      check_answer(s, g_id) == "subject_erased" and check_answer(s, h_id) == "subject_erased")
check("the journal names both ids",
      sum(1 for ln in open(journal) if g_id in ln or h_id in ln) == 2)

# ---- 2. an erasure by the CLI while the server runs reaches its cache
a = people["alice"]
p = run("subject", "erase", "--db", db, "--tenant", "demo", ids["alice"])
t_cli = time.monotonic()
r = None
while time.monotonic() - t_cli < 1.0:
    r = check_answer(s, ids["alice"])
    if r == "subject_erased":
        break
    time.sleep(0.02)
check("an erasure by patto subject erase reaches the running server within 1 s",
      r == "subject_erased", r)
check("patto subject erase prints the receipt",
      json.loads(p.stdout).get("destroyed", {}).get("data_key") is True, p.stdout[:200])

# ---- 3. backup, erase, restore the old backup: erased again
b1 = os.path.join(tmp, "before.db")
run("backup", "--db", db, b1)
check("patto backup writes a 0600 copy while the server runs",
      os.path.exists(b1) and os.stat(b1).st_mode & 0o777 == 0o600)
bob = people["bob"]
bob_blobs = stored(ids["bob"], b1)
check("the backup holds bob", len(bob_blobs) == 6)
st, _ = s.call("DELETE", f"/v1/subjects/{ids['bob']}")
check("bob is erased", st == 200)
check("nothing of bob is left in the live files", not leftovers(bob, bob_blobs),
      leftovers(bob, bob_blobs))
check("the server exits 0", s.stop() == 0)
p = run("restore", "--db", db, b1)
check("patto restore replays the journal: bob erased again", "1 erased again" in p.stderr,
      p.stderr)
left = leftovers(bob, bob_blobs)
check("after the restore nothing of bob is in the database, -wal or -shm", not left, left)
s = Server()
check("after the restore bob is erased", check_answer(s, ids["bob"]) == "subject_erased")
check("after the restore the others decrypt",
      all(decrypts(s, ids[t], people[t]) for t in ("carol", "dave", "erin", "frank")))
check("the server exits 0", s.stop() == 0)

# the same with the journal left out of the restore: patto serve replays it at start
run("restore", "--db", db, "--erasure-journal", "none", b1)
left = leftovers(bob, bob_blobs)
check("control: a restore without the journal brings bob's bytes back", left, left)
s = Server()
log = open(log_path).read()
check("patto serve replays the journal at start", "erased again" in log, log[-300:])
check("...so bob is erased before the first request",
      check_answer(s, ids["bob"]) == "subject_erased")
left = leftovers(bob, bob_blobs)
check("...and his bytes are gone from the files", not left, left)

# ---- 4. KEK rotation
carol = people["carol"]
b2 = os.path.join(tmp, "before-rotation.db")
run("backup", "--db", db, b2)
old_keyring = open(keyring).read()
old_kek = re.search(r"^kek 1 (\S+)$", old_keyring, re.M).group(1)
shutil.copy(keyring, os.path.join(tmp, "old.keyring"))
st, _ = s.call("DELETE", f"/v1/subjects/{ids['carol']}")
check("carol is erased", st == 200)
check("the server exits 0", s.stop() == 0)
p = run("keys", "rotate", "--db", db)
check("patto keys rotate re-wraps every live data key",
      "3 data keys re-wrapped under key epoch 2" in p.stderr, p.stderr)
new_keyring = open(keyring).read()
check("the keyring file no longer holds the old KEK",
      old_kek not in new_keyring and re.findall(r"^kek (\d+) ", new_keyring, re.M) == ["2"],
      new_keyring)
check("the keyring file stays 0600", os.stat(keyring).st_mode & 0o777 == 0o600)
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
epochs = c.execute("SELECT DISTINCT kek_epoch FROM subjects WHERE erased_at IS NULL").fetchall()
c.close()
check("every live subject is wrapped under epoch 2", epochs == [(2,)], epochs)
s = Server()
check("after the rotation everyone left decrypts",
      all(decrypts(s, ids[t], people[t]) for t in ("dave", "erin", "frank")))
st, _ = s.call("POST", "/v1/subjects", {"profile": {"name": "after rotation"}})
check("new subjects are created after the rotation", st == 201)
check("the server exits 0", s.stop() == 0)
p = run("restore", "--db", os.path.join(tmp, "elsewhere.db"), "--keyring", keyring, b2,
        check_rc=False)
check("a backup taken before the rotation no longer opens with the new keyring",
      p.returncode == 3 and "no longer holds" in p.stderr, (p.returncode, p.stderr))
check("...and nothing was restored", not os.path.exists(os.path.join(tmp, "elsewhere.db"))
      or os.path.getsize(os.path.join(tmp, "elsewhere.db")) < 100000, "")
# with the old keyring (kept on purpose) the old backup opens, and the
# journal still erases carol in it
p = run("restore", "--db", os.path.join(tmp, "old.db"), "--keyring",
        os.path.join(tmp, "old.keyring"), "--erasure-journal", journal, b2, check_rc=False)
check("the old backup with the old keyring: carol erased again by the journal",
      p.returncode == 0 and "1 erased again" in p.stderr, (p.returncode, p.stderr))

# interrupted rotation: a keyring holding two epochs is finished, not rotated again
kr = open(keyring).read()
extra = base64.b64encode(secrets.token_bytes(32)).decode()
with open(keyring, "w") as f:
    f.write(kr + f"kek 3 {extra}\n")
p = run("keys", "rotate", "--db", db, check_rc=False)
kr2 = open(keyring).read()
check("a rotation interrupted after step 1 is finished by running it again",
      p.returncode == 0 and "finished an interrupted rotation" in p.stderr
      and re.findall(r"^kek (\d+) ", kr2, re.M) == ["3"], (p.returncode, p.stderr, kr2))
s = Server()
check("...and everyone left still decrypts",
      all(decrypts(s, ids[t], people[t]) for t in ("dave", "erin", "frank")))
check("the server exits 0", s.stop() == 0)

# ---- 4b. no journal, no erasure: an unwritable journal refuses the erasure
bad = subprocess.Popen([BIN, "serve", "--db", db, "--listen", "127.0.0.1:0", "--erasure-journal",
                        os.path.join(tmp, "no-such-dir", "erasures")],
                       stderr=subprocess.PIPE, text=True)
line = bad.stderr.readline()
while line and not line.startswith("listening on"):
    line = bad.stderr.readline()
bc = http.client.HTTPConnection("127.0.0.1", int(line.strip().rsplit(":", 1)[1]), timeout=10)
bc.request("DELETE", f"/v1/subjects/{ids['dave']}", None, {"Authorization": "Bearer " + KEY})
r = bc.getresponse()
body = json.loads(r.read())
check("an erasure whose journal cannot be written is a 503", r.status == 503, (r.status, body))
bc.request("GET", f"/v1/subjects/{ids['dave']}", None, {"Authorization": "Bearer " + KEY})
r = bc.getresponse()
body = json.loads(r.read())
check("...and erases nothing", r.status == 200 and body["profile"]["name"] == people["dave"]["name"],
      (r.status, body))
bc.close()
bad.send_signal(signal.SIGTERM)
check("the server exits 0", bad.wait(timeout=20) == 0)
bad.stderr.close()

# ---- 5. SIGKILL during erasures: the journal is written ahead
import threading  # noqa: E402
s = Server()
victims = []
for i in range(60):
    st, doc = s.call("POST", "/v1/subjects", {"profile": {"name": f"crash victim {i}"}})
    victims.append(doc["subject"])
s.conn.close()
acked = []


def eraser(part):
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    for sid in part:
        try:
            c.request("DELETE", f"/v1/subjects/{sid}", None, {"Authorization": "Bearer " + KEY})
            r = c.getresponse()
            r.read()
            if r.status == 200:
                acked.append(sid)
        except OSError:
            return


ts = [threading.Thread(target=eraser, args=(victims[i::4],)) for i in range(4)]
for t in ts:
    t.start()
time.sleep(0.15)
s.p.send_signal(signal.SIGKILL)
s.p.wait()
s.log.close()
for t in ts:
    t.join()
journaled = {ln.split()[1] for ln in open(journal) if ln.startswith("erased ")}
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
erased_db = {row[0] for row in c.execute("SELECT id FROM subjects WHERE erased_at IS NOT NULL")}
integrity = c.execute("PRAGMA integrity_check").fetchone()[0]
c.close()
erased_ids = {v for v in victims if sub_bytes(v) in erased_db}
check(f"after a SIGKILL mid-erasures ({len(acked)} acknowledged, {len(erased_ids)} in the "
      "database): every acknowledged erasure is durable", set(acked) <= erased_ids,
      set(acked) - erased_ids)
check("every erasure in the database is in the journal (written ahead)",
      erased_ids <= journaled, erased_ids - journaled)
check("integrity_check ok after the SIGKILL", integrity == "ok", integrity)
s = Server()
pending = [v for v in victims if v in journaled and v not in erased_ids]
check("the restart completes journaled erasures that never committed",
      all(check_answer(s, v) == "subject_erased" for v in pending), pending)
check("the server exits 0", s.stop() == 0)

shutil.rmtree(tmp, ignore_errors=True)
print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
