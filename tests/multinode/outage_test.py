#!/usr/bin/env python3
"""The database going away under `patto serve` (PostgreSQL storage faults).

Promise checked: "The database going away mid-request answers 503 with
nothing half-written; patto reconnects by itself".

  1. A node serves a fresh database; some consents are recorded (201).
  2. PostgreSQL is stopped (pg_ctl stop -m fast). While it is down every
     POST /v1/consents (for subjects kept for the outage) must answer 503
     with application/problem+json, never 2xx, and not hang; GET /v1/check
     must still answer 200 from the node's cache with the state from 1.
  3. PostgreSQL is started again; within a bounded time POSTs answer 201
     again without restarting patto.
  4. `patto export` holds every event acknowledged with 201 exactly once
     (per subject/action counts and event ids) and nothing for the
     subjects whose requests got 503.

Uses its own cluster of scripts/pg.sh on port ${PATTO_OUTAGE_PG_PORT:-55441}
(stopping it does not disturb other tests) and always stops it at the end.
Usage: outage_test.py PATTO_BIN. Prints 'N passed, N failed'; exits
non-zero on failure. Python 3 standard library only.
"""
import collections
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1])
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_SH = os.path.join(ROOT, "scripts", "pg.sh")
PGPORT = os.environ.get("PATTO_OUTAGE_PG_PORT", "55441")
PG_BIN = os.environ.get("PATTO_PG_BIN", "/usr/lib/postgresql/15/bin")
ENV = dict(os.environ, PATTO_PG_PORT=PGPORT)
POINTER = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"patto-pg-{PGPORT}.dir")
REQ_TIMEOUT = 15     # seconds; a request taking longer counts as a hang
RECONNECT_MAX = 10   # seconds allowed for patto to write again after PostgreSQL is back
BEFORE = 6           # consents recorded before the outage
DURING = 8           # consents attempted while PostgreSQL is down

results = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + (f"  ({info})" if info and not cond else ""),
          flush=True)
    return cond


def psql(sql, db="postgres"):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", "-d", db,
                           "-qtAc", sql], capture_output=True, text=True, check=True).stdout


def pg_ctl(*args):
    with open(POINTER) as f:
        d = f.read().strip()
    cmd = [os.path.join(PG_BIN, "pg_ctl"), "-D", os.path.join(d, "data")] + list(args)
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    if args[0] == "start":
        cmd += ["-l", os.path.join(d, "server.log")]
    return subprocess.run(cmd, capture_output=True, text=True)


def req(port, key, method, path, body=None):
    """One request on a fresh connection: (status, content type, document).
    Raises OSError / HTTPException on a connection failure or timeout."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=REQ_TIMEOUT)
    h = {"Authorization": "Bearer " + key}
    data = None
    if body is not None:
        h["Content-Type"] = "application/json"
        data = json.dumps(body)
    try:
        c.request(method, path, data, h)
        r = c.getresponse()
        raw = r.read()
        ctype = r.getheader("Content-Type", "")
    finally:
        c.close()
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = raw[:200]
    return r.status, ctype, doc


def consent(sub, purpose, action, tag):
    body = {"subject": sub, "purpose": purpose, "action": action, "collected_via": "api",
            "evidence": {"tag": tag}}
    if action in ("grant", "renew"):
        body["notice"] = {"notice": "privacy", "version": "1"}
        body["channels"] = ["email"]
    return body


def main():
    tmp = tempfile.mkdtemp(prefix="patto-outage-")
    db = f"patto_outage_{os.getpid()}"
    url = f"postgres://postgres@127.0.0.1:{PGPORT}/{db}"
    keyring = os.path.join(tmp, "kr")
    log = os.path.join(tmp, "serve.log")
    proc = None
    logf = None
    try:
        subprocess.run([PG_SH, "start"], check=True, stdout=subprocess.DEVNULL, env=ENV)
        psql(f"CREATE DATABASE {db}")
        p = subprocess.run([BIN, "init", "--db", url, "--keyring", keyring],
                           capture_output=True, text=True)
        if not check("init on postgres", p.returncode == 0, p.stderr.strip()):
            return
        key = p.stdout.strip().splitlines()[-1]

        logf = open(log, "w")
        proc = subprocess.Popen([BIN, "serve", "--db", url, "--keyring", keyring,
                                 "--listen", "127.0.0.1:0", "--threads", "4"],
                                stderr=logf, stdout=subprocess.DEVNULL)
        port = None
        deadline = time.time() + 30
        while port is None and time.time() < deadline and proc.poll() is None:
            with open(log) as f:
                for line in f:
                    if line.startswith("listening on"):
                        port = int(line.strip().rsplit(":", 1)[1])
            time.sleep(0.05)
        if not check("patto serve starts", port is not None, open(log).read()[-300:]):
            return

        # subjects: 'kept' ones get events before and after the outage, 'down' ones
        # only get requests while PostgreSQL is down (all of which must fail)
        subjects = {}
        for name in [f"kept{i}" for i in range(BEFORE)] + [f"down{i}" for i in range(DURING)]:
            st, _, doc = req(port, key, "POST", "/v1/subjects",
                             {"identifiers": [{"type": "email", "value": f"{name}@example.com"}]})
            if st == 201:
                subjects[name] = doc["subject"]
        if not check("subjects created", len(subjects) == BEFORE + DURING, f"{len(subjects)}"):
            return

        acked = {}                      # tag -> (subject id, action, event id)
        sent_down = []                  # subject ids of outage-time requests

        def post(name, action, tag):
            st, ctype, doc = req(port, key, "POST", "/v1/consents",
                                 consent(subjects[name], "marketing", action, tag))
            if st == 201:
                acked[tag] = (subjects[name], action, doc["event"])
            return st, ctype, doc

        bad = []
        for i in range(BEFORE):
            action = "grant" if i % 2 == 0 else "withdraw"
            st, _, doc = post(f"kept{i}", action, f"before{i}")
            if st != 201:
                bad.append((i, st, doc))
        check(f"{BEFORE} consents recorded before the outage (201)", not bad, f"{bad[:3]}")
        expect_allowed = {f"kept{i}": i % 2 == 0 for i in range(BEFORE)}

        # ---- PostgreSQL goes away
        r = pg_ctl("stop", "-m", "fast", "-w")
        if not check("PostgreSQL stopped", r.returncode == 0, r.stderr.strip()):
            return
        time.sleep(1.0)  # let the node's sync thread (200 ms polls) hit the dead connection too

        statuses = []
        not_problem = []
        t0 = time.time() - 1.0
        for i in range(DURING):
            name = f"down{i}"
            sent_down.append(subjects[name])
            t1 = time.time()
            try:
                st, ctype, doc = post(name, "grant" if i % 2 == 0 else "withdraw", f"down{i}")
            except socket.timeout:
                st, ctype, doc = "timeout", "", f"no answer in {REQ_TIMEOUT} s"
            except (OSError, http.client.HTTPException) as e:
                st, ctype, doc = "conn-error", "", repr(e)
            statuses.append((st, round(time.time() - t1, 2)))
            if st == 503 and not ctype.startswith("application/problem+json"):
                not_problem.append(ctype)
            if st == "timeout":
                break  # it hangs; do not wait the full timeout for every request
        print(f"     outage-time POSTs (status, seconds): {statuses}", flush=True)
        check(f"no POST answered 2xx while the database is down",
              not any(isinstance(s, int) and 200 <= s < 300 for s, _ in statuses), f"{statuses}")
        check(f"every POST answered 503 while the database is down ({len(statuses)} sent)",
              all(s == 503 for s, _ in statuses), f"{statuses}")
        check("503 answers are application/problem+json", not not_problem, f"{not_problem[:3]}")

        wrong = []
        for name, want in expect_allowed.items():
            try:
                st, _, doc = req(port, key, "GET",
                                 f"/v1/check?subject={subjects[name]}&purpose=marketing")
            except (OSError, http.client.HTTPException) as e:
                st, doc = "error", repr(e)
            if st != 200 or not isinstance(doc, dict) or doc.get("allowed") != want:
                wrong.append((name, st, doc))
        check("GET /v1/check answers 200 from the cache while the database is down",
              not wrong, f"{wrong[:3]}")
        print(f"     outage lasted {time.time() - t0:.1f} s", flush=True)

        # ---- PostgreSQL comes back
        r = pg_ctl("start", "-w", "-t", "60")
        if not check("PostgreSQL started again", r.returncode == 0, r.stderr.strip()):
            return
        t0 = time.time()
        first_ok = None
        seen = []
        n = 0
        while time.time() - t0 < RECONNECT_MAX:
            try:
                st, _, doc = post(f"kept{n % BEFORE}", "grant", f"retry{n}")
            except (OSError, http.client.HTTPException) as e:
                st = repr(e)
            n += 1
            if not seen or seen[-1] != st:
                seen.append(st)
            if st == 201:
                first_ok = time.time() - t0
                break
            time.sleep(0.2)
        alive = proc.poll() is None
        check(f"POSTs answer 201 again within {RECONNECT_MAX} s without restarting patto",
              first_ok is not None and alive,
              f"statuses seen: {seen}; patto {'running' if alive else 'exited'}")
        if first_ok is not None:
            print(f"     first 201 {first_ok:.2f} s after PostgreSQL was back "
                  f"({n} attempts, statuses {seen})", flush=True)
            bad = []
            for i in range(BEFORE):
                st, _, doc = post(f"kept{i}", "withdraw", f"after{i}")
                if st != 201:
                    bad.append((i, st, doc))
            check(f"{BEFORE} more consents recorded after the outage (201)", not bad, f"{bad[:3]}")

        # ---- what is in the database
        p = subprocess.run([BIN, "export", "--db", url, "--keyring", keyring, "--tenant", "demo"],
                           capture_output=True, text=True)
        if not check("patto export runs", p.returncode == 0, p.stderr.strip()):
            return
        events = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        got = collections.Counter((e.get("subject"), e.get("action")) for e in events)
        want = collections.Counter((s, a) for s, a, _ in acked.values())
        diff = {k: (got.get(k, 0), want.get(k, 0)) for k in set(got) | set(want)
                if got.get(k, 0) != want.get(k, 0)}
        check(f"export has exactly the acknowledged events per subject/action "
              f"({len(acked)} acknowledged, {len(events)} exported)", not diff,
              f"(exported, acknowledged): {list(diff.items())[:4]}")
        ids = collections.Counter(e.get("event") for e in events)
        missing = [t for t, (_, _, ev) in acked.items() if ids.get(ev, 0) != 1]
        check("every acknowledged event id is exported exactly once", not missing,
              f"{missing[:4]}")
        leaked = [e for e in events if e.get("subject") in sent_down]
        check("nothing from the requests answered 503 is in the database", not leaked,
              f"{len(leaked)} events, e.g. {leaked[:1]}")

        proc.terminate()
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        proc = None
        check("patto serve stops cleanly", rc == 0, f"exit {rc}")
    except Exception as e:  # a crash of the harness is a failure, not a pass
        check("harness ran to the end", False, repr(e))
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if logf is not None:
            logf.close()
        if results and not all(results) and os.path.exists(log):
            print("     serve log (tail):\n" + "".join(open(log).readlines()[-15:]), flush=True)
        subprocess.run([PG_SH, "stop"], env=ENV)  # removes the cluster and its databases
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)
