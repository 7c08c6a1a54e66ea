#!/usr/bin/env python3
"""The proof log seen from outside: a real `patto serve` records consents;
its signed checkpoints must verify with an independent Ed25519 signed-note
verifier (independent_note_check.py: no libsodium, openssl for the
signature), and its receipts with `patto verify`, offline, before and after
more writes (with the consistency proof as --checkpoint), while altered
copies are refused.

Usage: log_test.py PATTO_BIN. Prints 'N passed, N failed'.
"""
import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import independent_note_check as inc  # noqa: E402
import patto_proc  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
results = []


def check(name, cond, info=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({info})"))


tmp = tempfile.mkdtemp(prefix="patto-log-")
db = os.path.join(tmp, "l.db")
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
    return r.status, r.getheader("Content-Type", ""), data


def grant(i):
    st, _, data = call("POST", "/v1/consents", {
        "identifier": {"type": "email", "value": f"p{i}@example.com"}, "purpose": "marketing",
        "action": "grant", "channels": ["email"], "notice": {"notice": "privacy", "version": "1"},
        "collected_via": "web_form", "evidence": {"ip": "192.0.2.%d" % (i % 250 + 1)}})
    return st, json.loads(data) if data else None


def write(name, doc):
    path = os.path.join(tmp, name)
    with open(path, "w" if isinstance(doc, str) else "wb") as f:
        f.write(doc)
    return path


def verify(*args):
    r = subprocess.run([BIN, "verify", *args], capture_output=True, text=True)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


try:
    # 0. the independent verifier passes the C2SP example vector first
    r = subprocess.run([sys.executable, os.path.join(HERE, "independent_note_check.py"),
                        "--c2sp-vector"], capture_output=True, text=True)
    check("the independent verifier passes the C2SP signed-note vector", r.returncode == 0,
          r.stdout + r.stderr)

    # 1. a few consents
    answers = [grant(i) for i in range(5)]
    check("five grants answered 201", all(st == 201 for st, _ in answers),
          [st for st, _ in answers])
    answer = answers[-1][1]
    receipt = answer["receipt"]
    proof = receipt.get("proof", {})
    check("the receipt carries a proof", proof.get("format") == "patto-proof/1", receipt)

    # 2. the latest checkpoint and the keys
    st, ctype, cp = call("GET", "/v1/log/checkpoint")
    check("GET /v1/log/checkpoint is a text/plain note", st == 200 and
          ctype.startswith("text/plain"), (st, ctype))
    st, _, kd = call("GET", "/v1/log/keys")
    keys = [k["public_key"] for k in json.loads(kd)["keys"]] if st == 200 else []
    check("GET /v1/log/keys lists a verifier string", st == 200 and keys, (st, kd[:200]))
    vkey = proof.get("public_key", "")
    check("the receipt's public_key is listed", vkey in keys, (vkey, keys))

    # 3. the independent verifier accepts patto's checkpoints
    verified = []
    for k in keys:
        try:
            verified.append((k, inc.parse_checkpoint(inc.verify_note(cp, k))))
        except inc.NoteError:
            pass
    check("the latest checkpoint verifies independently with a listed key", verified, cp)
    if verified:
        origin, size, _ = verified[0][1]
        check("its origin is the tenant's log", origin.endswith("/demo"), origin)
        check("its size covers the five events", size >= 5, size)
    try:
        origin, size, root = inc.parse_checkpoint(
            inc.verify_note(proof["checkpoint"].encode(), vkey))
        ok = size == proof["tree_size"]
    except (inc.NoteError, KeyError) as e:
        ok, size = False, str(e)
    check("the receipt's checkpoint verifies independently", ok, size)
    r = subprocess.run([sys.executable, os.path.join(HERE, "independent_note_check.py"), vkey,
                        write("checkpoint.txt", cp)], capture_output=True, text=True)
    check("independent_note_check.py VERIFIER FILE exits 0", r.returncode == 0, r.stdout)
    forged = bytearray(cp)
    forged[cp.index(b"\n") + 1] ^= 1  # the size's first digit
    try:
        inc.verify_note(bytes(forged), vkey)
        check("an altered checkpoint is refused independently", False)
    except inc.NoteError:
        check("an altered checkpoint is refused independently", True)

    # 4. patto verify, offline
    rpath = write("receipt.json", json.dumps(receipt, indent=2))
    code, out, err = verify(rpath)
    check("patto verify accepts the receipt", code == 0, err)
    code, out, err = verify(rpath, "--key", vkey)
    check("patto verify accepts it with --key", code == 0 and out.startswith("verified:"), err)
    code, _, err = verify(write("answer.json", json.dumps(answer)), "--key", vkey)
    check("patto verify accepts the whole POST answer", code == 0, err)

    tampered = json.loads(json.dumps(receipt))
    tampered["subject"] = json.loads(json.dumps(answers[0][1]["receipt"]))["subject"]
    code, _, err = verify(write("tampered.json", json.dumps(tampered)), "--key", vkey)
    check("patto verify refuses a receipt naming another subject", code == 1 and
          "[subject]" in err and "\n" not in err, (code, err))
    tampered = json.loads(json.dumps(receipt))
    leaf = bytearray(base64.b64decode(tampered["proof"]["leaf"]))
    leaf[len(leaf) // 2] ^= 0x01
    tampered["proof"]["leaf"] = base64.b64encode(bytes(leaf)).decode()
    code, _, err = verify(write("tampered2.json", json.dumps(tampered)), "--key", vkey)
    check("patto verify refuses a flipped bit in the leaf", code == 1, (code, err))
    code, _, err = verify(rpath, "--key", "example.com/foo+530d903a+"
                          "AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
    check("patto verify refuses another trusted key", code == 1 and "[--key]" in err, err)

    # 5. more writes, then the consistency proof from the receipt's size
    more = [grant(i) for i in range(5, 12)]
    check("seven more grants answered 201", all(st == 201 for st, _ in more))
    n = proof["tree_size"]
    st, _, cons = call("GET", f"/v1/log/proof/consistency?from={n}")
    cdoc = json.loads(cons) if st == 200 else {}
    check("GET /v1/log/proof/consistency answers with a checkpoint", st == 200 and
          cdoc.get("from") == n and cdoc.get("to", 0) > n and "checkpoint" in cdoc, cons[:300])
    try:
        _, later_size, _ = inc.parse_checkpoint(
            inc.verify_note(cdoc.get("checkpoint", "").encode(), vkey))
        ok = later_size == cdoc.get("to")
    except inc.NoteError as e:
        ok, later_size = False, str(e)
    check("the later checkpoint verifies independently", ok, later_size)
    cpath = write("consistency.json", cons.decode())
    code, out, err = verify(rpath, "--checkpoint", cpath, "--key", vkey)
    check("patto verify accepts the consistency proof to the larger tree",
          code == 0 and "extends" in out, (code, out, err))
    bad = json.loads(cons)
    if bad.get("proof"):
        h = bytearray(base64.b64decode(bad["proof"][0]))
        h[0] ^= 0x80
        bad["proof"][0] = base64.b64encode(bytes(h)).decode()
    code, _, err = verify(rpath, "--checkpoint", write("bad_consistency.json", json.dumps(bad)))
    check("patto verify refuses a corrupted consistency proof", code == 1 and
          "[--checkpoint.proof]" in err, (code, err))
    st, _, latest = call("GET", "/v1/log/checkpoint")
    code, _, err = verify(rpath, "--checkpoint", write("latest.txt", latest.decode()))
    check("patto verify refuses a bare larger checkpoint (it proves no extension)",
          code == 1, (code, err))
    code, _, err = verify(rpath, "--checkpoint", write("same.txt", proof["checkpoint"]))
    check("patto verify accepts the same-size checkpoint", code == 0, err)

    # 6. a fresh receipt against the latest checkpoint
    st, _, fresh = call("GET", f"/v1/receipts/{receipt['receipt_id']}")
    check("GET /v1/receipts/{event} answers", st == 200, (st, fresh[:200]))
    if st == 200:
        fdoc = json.loads(fresh)
        code, _, err = verify(write("fresh.json", fresh.decode()), "--key", vkey)
        check("patto verify accepts the fresh receipt", code == 0, err)
        check("the fresh receipt is against the later tree",
              fdoc["proof"]["tree_size"] >= cdoc.get("to", 0), fdoc["proof"]["tree_size"])
finally:
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
