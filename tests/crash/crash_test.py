#!/usr/bin/env python3
"""Crash test: SIGKILL `patto serve` while many clients write, again and
again, and check that nothing acknowledged was lost.

Each round starts the real binary on the same database, runs concurrent
writers (keep-alive connections POSTing consent events), kills the server
with SIGKILL at a random moment, then checks with the store alone:
  - every event answered 201 is in `patto export` (durability);
  - SQLite's `PRAGMA integrity_check` answers ok;
  - the proof log holds: the root rebuilt here (independently, RFC 9162)
    from the stored leaves equals the signed head, whose checkpoint names
    the same size and root; it extends the previous round's tree (the old
    root is the root of the first old-size leaves); every acknowledged
    event has its leaf;
  - the server starts again on the database (recovery).

Usage: crash_test.py PATTO_BIN [ROUNDS]. Prints 'N passed, N failed'.
"""
import base64
import hashlib
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import patto_proc  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
WRITERS = 16


def mth(hashes):
    """RFC 9162 Merkle tree hash over leaf hashes."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def check_log(db, prev):
    """Returns (problem or None, {tenant: (size, root)}, logged event ids)."""
    con = sqlite3.connect(db)
    heads = {t: (size, root, cp) for t, size, root, cp in
             con.execute("SELECT tenant_id, size, root, checkpoint FROM log_heads")}
    state, events = {}, set()
    for t, (size, root, cp) in heads.items():
        rows = con.execute("SELECT idx, hash, data FROM log_leaves WHERE tenant_id = ? "
                           "ORDER BY idx", (t,)).fetchall()
        if [r[0] for r in rows] != list(range(len(rows))):
            return f"tenant {t}: leaf indexes have gaps", state, events
        hashes = []
        for _, h, data in rows:
            if hashlib.sha256(b"\x00" + data).digest() != h:
                return f"tenant {t}: a stored leaf hash is wrong", state, events
            hashes.append(h)
            leaf = json.loads(data)
            if leaf.get("kind") == "consent":
                events.add(leaf["event"])
        if len(hashes) != size or mth(hashes) != root:
            return f"tenant {t}: {len(hashes)} leaves, head says {size}; roots differ", state, events
        lines = cp.split("\n")
        if int(lines[1]) != size or base64.b64decode(lines[2]) != root:
            return f"tenant {t}: the checkpoint does not match the head", state, events
        if t in prev:
            psize, proot = prev[t]
            if size < psize or mth(hashes[:psize]) != proot:
                return f"tenant {t}: the tree does not extend the last round's", state, events
        state[t] = (size, root)
    con.close()
    return None, state, events


def start(db):
    return patto_proc.serve(BIN, db, "--threads", "4")


def writer(port, key, subject, acked, stop, errors):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        body_tpl = {"subject": subject, "purpose": "marketing", "channels": ["email"],
                    "notice": {"notice": "privacy", "version": "1"}, "collected_via": "api"}
        n = 0
        while not stop.is_set():
            body = dict(body_tpl, action="grant" if n % 2 == 0 else "withdraw")
            c.request("POST", "/v1/consents", json.dumps(body),
                      {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status == 201:
                acked.append(json.loads(data)["event"])
            else:
                errors.append(r.status)
                return
            n += 1
    except (OSError, http.client.HTTPException):
        return  # the server was killed under us: expected


def main():
    tmp = tempfile.mkdtemp(prefix="patto-crash-")
    db = os.path.join(tmp, "crash.db")
    key = patto_proc.init(BIN, db)
    # subjects first, so that each writer has its own
    p, port = start(db)
    subjects = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for i in range(WRITERS):
        c.request("POST", "/v1/subjects", json.dumps({"profile": {"n": i}}),
                  {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = c.getresponse()
        subjects.append(json.loads(r.read())["subject"])
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)

    passed = failed = 0
    all_acked = []
    log_state = {}
    rng = random.Random(int(os.environ.get("CRASH_SEED", "1")))
    for rnd in range(ROUNDS):
        p, port = start(db)
        acked, errors, stop = [], [], threading.Event()
        ts = [threading.Thread(target=writer, args=(port, key, subjects[i], acked, stop, errors))
              for i in range(WRITERS)]
        for t in ts:
            t.start()
        time.sleep(rng.uniform(0.05, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait()
        stop.set()
        for t in ts:
            t.join()
        all_acked.extend(acked)

        out = subprocess.run([BIN, "export", "--db", db, "--tenant", "demo"],
                             capture_output=True, text=True)
        ids = {json.loads(l)["event"] for l in out.stdout.splitlines() if l}
        lost = [e for e in all_acked if e not in ids]
        con = sqlite3.connect(db)
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        con.close()
        problem, log_state, logged = check_log(db, log_state)
        unlogged = [e for e in all_acked if e not in logged]
        ok = (out.returncode == 0 and not lost and integrity == "ok" and not errors
              and problem is None and not unlogged)
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"round {rnd}: export rc={out.returncode} lost={len(lost)} "
                  f"integrity={integrity} errors={errors[:3]} log={problem} "
                  f"unlogged={len(unlogged)}", file=sys.stderr)
    # the database still serves after the last kill
    p, port = start(db)
    p.send_signal(signal.SIGTERM)
    if p.wait(timeout=10) != 0:
        failed += 1
    print(f"crash: {ROUNDS} SIGKILL rounds, {len(all_acked)} acknowledged events, "
          "all checked against the store and the proof log after each kill; "
          f"log sizes {sorted(s for s, _ in log_state.values())}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
