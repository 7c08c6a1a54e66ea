#!/usr/bin/env python3
"""Group commits on PostgreSQL, with the writer's deferred writes.

On PostgreSQL the writer sends the writes nobody waits for (consent
states, events numbered by the writer itself, proof-log leaves, subtree
hashes, heads) in libpq's pipeline mode and reads their answers with the
next statement that needs one (see "Deferred writes" in
src/store/postgres.c). This test mixes, in the same batches, from 16
threads:

  - valid subjects (POST /v1/subjects);
  - subjects whose second identifier belongs to someone else: they fail
    after writing their subject row and first identifier, so their op is
    rolled back to its savepoint while the ops before it in the batch have
    deferred writes in flight;
  - consents (grants and withdrawals) of existing subjects: deferred
    writes; some of an unknown purpose, refused before writing.

Then: every valid request answered 201 and is found again, the failing ones
409 or 422 and left nothing; every acknowledged consent is exported exactly
once with the id the node answered; a node's own writes are in its cache
(its checks agree with the store); the proof log's leaves follow the
events' seqs (the writer numbers events in commit order); every stored
subtree hash and the signed root hold; receipts from POST answers pass
`patto verify`.

Usage: group_commit_pg.py PATTO_BIN. Needs the cluster of scripts/pg.sh on
127.0.0.1:${PATTO_PG_PORT:-55432} (run.sh starts it). Prints 'N passed, N
failed'; exits non-zero on failure. Python 3 standard library only.
"""
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import import_test as it  # noqa: E402  (psql, id_hex, check_log)

BIN = os.path.abspath(sys.argv[1])
PGPORT = it.PGPORT
THREADS = 16
PER_THREAD = 45
results = []
tmp = tempfile.mkdtemp(prefix="patto-gc-")


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + (f"  ({info})" if info and not cond else ""),
          flush=True)
    return cond


def call(conn, key, method, path, body=None):
    h = {"Authorization": "Bearer " + key}
    if body is not None:
        h["Content-Type"] = "application/json"
    conn.request(method, path, json.dumps(body) if body is not None else None, h)
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def main(db, url):
    kr = os.path.join(tmp, "kr")
    r = subprocess.run([BIN, "init", "--db", url, "--keyring", kr], capture_output=True, text=True)
    check("init on postgres", r.returncode == 0, r.stderr)
    key = r.stdout.strip().splitlines()[-1]
    node = it.Node(url, kr, key)
    it.procs.append(node.p)
    c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    st, _ = call(c, key, "POST", "/v1/subjects",
                 {"identifiers": [{"type": "email", "value": "owner@example.com"}]})
    check("the owner is created", st == 201, st)
    people = []
    for i in range(40):
        st, d = call(c, key, "POST", "/v1/subjects",
                     {"identifiers": [{"type": "email", "value": f"p{i}@example.com"}]})
        if st == 201:
            people.append(d["subject"])
    check("40 people to record consents for", len(people) == 40, len(people))

    good, bad, consents, refused = {}, {}, {}, {}
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(t):
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
        rnd = random.Random(t)
        start.wait()
        for i in range(PER_THREAD):
            kind = (t + i) % 3
            if kind == 0:
                email = f"good{t}-{i}@example.com"
                res = call(conn, key, "POST", "/v1/subjects",
                           {"identifiers": [{"type": "email", "value": email}],
                            "profile": {"n": i}})
                with lock:
                    good[email] = res
            elif kind == 1:
                email = f"bad{t}-{i}@example.com"
                res = call(conn, key, "POST", "/v1/subjects",
                           {"identifiers": [{"type": "email", "value": email},
                                            {"type": "email", "value": "owner@example.com"}]})
                with lock:
                    bad[email] = res
            else:
                tag = f"c{t}-{i}"
                action = rnd.choice(["grant", "grant", "withdraw"])
                purpose = "no_such_purpose" if rnd.random() < 0.15 else \
                    rnd.choice(["marketing", "profiling"])
                body = {"subject": rnd.choice(people), "purpose": purpose, "action": action,
                        "collected_via": "api", "evidence": {"tag": tag}}
                if action == "grant":
                    body["notice"] = {"notice": "privacy", "version": "1"}
                res = call(conn, key, "POST", "/v1/consents", body)
                with lock:
                    (consents if purpose != "no_such_purpose" else refused)[tag] = (res, body)
        conn.close()

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

    check(f"every valid subject answered 201 ({len(good)})",
          all(st == 201 for st, _ in good.values()),
          [st for st, _ in good.values() if st != 201][:5])
    check(f"every conflicting subject answered 409 ({len(bad)})",
          all(st == 409 and d.get("field") == "identifiers[1].value" for st, d in bad.values()),
          [(st, d) for st, d in bad.values() if st != 409][:3])
    check(f"every consent answered 201 ({len(consents)})",
          all(st == 201 for (st, _), _ in consents.values()),
          [(st, d) for (st, d), _ in consents.values() if st != 201][:3])
    check(f"every unknown purpose answered 4xx ({len(refused)})",
          all(400 <= st < 500 for (st, _), _ in refused.values()),
          [st for (st, _), _ in refused.values()][:5])
    lost = [e for e, (st, d) in good.items()
            if call(c, key, "GET", f"/v1/subjects?identifier_type=email&identifier={e}")[1]
            .get("subject") != d.get("subject")]
    check("every valid subject is found again", not lost, lost[:3])
    left = [e for e in bad
            if call(c, key, "GET", f"/v1/subjects?identifier_type=email&identifier={e}")[0] != 404]
    check("a failed subject left none of its rows", not left, left[:3])

    r = subprocess.run([BIN, "export", "--db", url, "--keyring", kr, "--tenant", "demo"],
                       capture_output=True, text=True)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    by_tag = {}
    for e in events:
        tag = (e.get("evidence") or {}).get("tag")
        if tag:
            by_tag.setdefault(tag, []).append(e["event"])
    acked = {tag: d["event"] for tag, ((st, d), _) in consents.items() if st == 201}
    check("every acknowledged consent is exported once, with its id",
          all(by_tag.get(tag) == [evt] for tag, evt in acked.items()),
          [tag for tag, evt in acked.items() if by_tag.get(tag) != [evt]][:3])
    check("nothing refused was exported", not any(tag in by_tag for tag in refused))

    diff = []
    for sub in people[:20]:
        for pur in ("marketing", "profiling"):
            st, d = call(c, key, "GET", f"/v1/check?subject={sub}&purpose={pur}")
            p = subprocess.run([BIN, "consent", "check", "--db", url, "--keyring", kr,
                                "--tenant", "demo", "--subject", sub, "--purpose", pur],
                               capture_output=True, text=True)
            truth = json.loads(p.stdout)["allowed"] if p.stdout else None
            if st != 200 or d["allowed"] != truth:
                diff.append((sub, pur, d, truth))
    check("the node's checks agree with the store (40 checks)", not diff, diff[:2])

    # the log follows commit order: consent leaves by idx have increasing seqs
    rows = it.psql("SELECT l.idx, e.seq FROM log_leaves l JOIN events e ON e.id = l.ref "
                   "WHERE l.tenant_id = 1 ORDER BY l.idx", db)
    seqs = [int(s) for _, s in rows]
    check(f"leaves follow the events' seqs ({len(seqs)} consent leaves)",
          seqs == sorted(seqs) and len(set(seqs)) == len(seqs))
    nxt = int(it.psql("SELECT nextval(pg_get_serial_sequence('events', 'seq'))", db)[0][0])
    top = int(it.psql("SELECT max(seq) FROM events", db)[0][0])
    check("the sequence was moved past the writer's events", nxt == top + 1, f"{nxt} after {top}")
    it.check_log(db, check)
    ok = 0
    picks = [d for (st, d), _ in consents.values() if st == 201][:6]
    for d in picks:
        path = os.path.join(tmp, "answer.json")
        with open(path, "w") as f:
            json.dump(d, f)
        v = subprocess.run([BIN, "verify", path], capture_output=True, text=True)
        ok += v.returncode == 0
        if v.returncode != 0:
            print(f"     verify: {v.stdout} {v.stderr}")
    check(f"POST answers pass `patto verify` ({ok} of {len(picks)})", ok == len(picks) > 0)
    c.close()
    check("the node stops cleanly", node.stop() == 0)


db = f"patto_gc_{os.getpid()}_{random.randrange(1 << 30)}"
try:
    it.psql(f"CREATE DATABASE {db}")
    main(db, f"postgres://postgres@127.0.0.1:{PGPORT}/{db}")
except Exception as e:  # a crash of the harness is a failure, not a pass
    import traceback
    traceback.print_exc()
    check("test ran to the end", False, repr(e))
finally:
    for p in it.procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    try:
        it.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    except subprocess.CalledProcessError:
        print(f"could not drop database {db}", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)

passed = sum(results)
failed = len(results) - passed
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not results else 0)
