#!/usr/bin/env python3
"""An independent verifier of C2SP signed notes (c2sp.org/signed-note) with
Ed25519 keys, and of C2SP tlog-checkpoint bodies, that shares no code with
patto and does not use libsodium: it parses the note and the verifier string
itself and checks the signature with the `openssl` command line.

Usage:
  independent_note_check.py VERIFIER NOTE_FILE   verify one note ('-': stdin);
      prints "ok: ..." and, for a checkpoint, its origin, size and root, then
      exits 0; otherwise prints "FAIL: reason" and exits 1
  independent_note_check.py --c2sp-vector [DIR]  the example of signed-note.md
      (DIR defaults to $PATTO_SHARED_DATA/signed-note or ../shared/data/signed-note
      beside the repository): it must verify, and altered copies must not

As a module: verify_note(note_bytes, verifier_str) -> signed text (bytes), and
parse_checkpoint(text) -> (origin, size, root_hash); both raise NoteError.
"""
import base64
import binascii
import hashlib
import os
import re
import subprocess
import sys
import tempfile

ED25519 = 0x01
# DER of SubjectPublicKeyInfo { AlgorithmIdentifier { id-Ed25519 }, BIT STRING }
# up to the 32-byte key (RFC 8410).
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
EM_DASH = "\u2014 "


class NoteError(Exception):
    pass


def b64_strict(s):
    """Standard base64 with padding, canonical only."""
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", s) or len(s) % 4:
        raise NoteError("not standard padded base64")
    try:
        raw = base64.b64decode(s, validate=True)
    except binascii.Error as e:
        raise NoteError("bad base64: %s" % e)
    if base64.b64encode(raw).decode() != s:
        raise NoteError("non-canonical base64")
    return raw


def key_name_ok(name):
    return bool(name) and "+" not in name and not any(
        c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in name)


def key_id(name, pk):
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + pk).digest()[:4]


def parse_verifier(s):
    """'<name>+<hex key id>+<base64(0x01 || 32-byte key)>' -> (name, id, pk)."""
    parts = s.strip().split("+")
    # the base64 may hold '+' too: name and id are the first two fields
    if len(parts) < 3:
        raise NoteError("verifier is not NAME+KEYID+KEY")
    name, hexid, keyb64 = parts[0], parts[1], "+".join(parts[2:])
    if not key_name_ok(name):
        raise NoteError("bad key name in verifier")
    if not re.fullmatch(r"[0-9a-f]{8}", hexid):
        raise NoteError("key id is not 8 lowercase hex digits")
    key = b64_strict(keyb64)
    if len(key) != 33 or key[0] != ED25519:
        raise NoteError("not an Ed25519 verifier key (type 0x01 and 32 bytes)")
    pk = key[1:]
    if key_id(name, pk) != bytes.fromhex(hexid):
        raise NoteError("key id does not match the name and key")
    return name, bytes.fromhex(hexid), pk


def ed25519_verify(pk, msg, sig):
    """True when openssl says sig is pk's Ed25519 signature of msg."""
    pem = "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % \
        base64.b64encode(SPKI_PREFIX + pk).decode()
    with tempfile.TemporaryDirectory(prefix="notecheck-") as d:
        paths = {n: os.path.join(d, n) for n in ("pub.pem", "msg", "sig")}
        with open(paths["pub.pem"], "w") as f:
            f.write(pem)
        with open(paths["msg"], "wb") as f:
            f.write(msg)
        with open(paths["sig"], "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                            paths["pub.pem"], "-rawin", "-in", paths["msg"],
                            "-sigfile", paths["sig"]], capture_output=True, text=True)
        return r.returncode == 0 and "Signature Verified Successfully" in r.stdout


def verify_note(note, verifier):
    """Returns the signed text of note (bytes) if it carries a valid
    signature by verifier; raises NoteError otherwise."""
    name, kid, pk = parse_verifier(verifier)
    try:
        s = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the note is not UTF-8")
    if any(ord(c) < 0x20 and c != "\n" for c in s):
        raise NoteError("the note holds control characters")
    if not s.endswith("\n"):
        raise NoteError("the note does not end in a newline")
    split = s.rfind("\n\n")
    if split < 0:
        raise NoteError("no blank line before the signatures")
    text, sigs = s[:split + 1], s[split + 2:]
    if not sigs:
        raise NoteError("no signature lines")
    found = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith(EM_DASH):
            raise NoteError("a signature line does not start with an em dash")
        try:
            sname, sb64 = line[len(EM_DASH):].split(" ")
        except ValueError:
            raise NoteError("a signature line is not '\u2014 NAME SIGNATURE'")
        if not key_name_ok(sname):
            raise NoteError("bad key name in a signature line")
        raw = b64_strict(sb64)
        if len(raw) < 5:
            raise NoteError("a signature is too short")
        if sname != name or raw[:4] != kid:
            continue  # another signer's line
        if len(raw) != 4 + 64:
            raise NoteError("an Ed25519 signature is not 64 bytes")
        if not ed25519_verify(pk, text.encode(), raw[4:]):
            raise NoteError("the signature by %s+%s does not verify" % (name, kid.hex()))
        found = True
    if not found:
        raise NoteError("no signature by %s+%s" % (name, kid.hex()))
    return text.encode()


def parse_checkpoint(text):
    """C2SP tlog-checkpoint body -> (origin, size, 32-byte root hash)."""
    lines = text.decode().split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(l == "" for l in lines[:-1]):
        raise NoteError("not a checkpoint: origin, size and root lines, each ending in a newline")
    origin, size, root = lines[0], lines[1], lines[2]
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size) or int(size) >= 2 ** 64:
        raise NoteError("the checkpoint size is not a decimal number")
    h = b64_strict(root)
    if len(h) != 32:
        raise NoteError("the checkpoint root is not a 32-byte hash")
    return origin, int(size), h


def check(verifier, note):
    text = verify_note(note, verifier)
    try:
        origin, size, root = parse_checkpoint(text)
        return "ok: signed by %s; checkpoint origin %s size %d root %s" % (
            parse_verifier(verifier)[0], origin, size, base64.b64encode(root).decode())
    except NoteError:
        return "ok: signed by %s; text of %d bytes" % (parse_verifier(verifier)[0], len(text))


def c2sp_vector(folder):
    """The example of signed-note.md: verifier key and note, as published."""
    md = open(os.path.join(folder, "signed-note.md"), encoding="utf-8").read()
    ex = md[md.index("### Example"):]
    vkey = re.search(r"\n    (\S+\+[0-9a-f]{8}\+\S+)\n", ex).group(1)
    block = re.search(r"```\n(.*?)\n```", ex, re.S).group(1)
    return vkey, (block + "\n").encode()


def self_test(folder):
    vkey, note = c2sp_vector(folder)
    print("C2SP vector: %s" % vkey)
    print("  " + check(vkey, note))
    failures = 0

    def must_fail(what, v, n):
        nonlocal failures
        try:
            verify_note(n, v)
        except NoteError as e:
            print("  ok: %s refused (%s)" % (what, e))
            return
        print("  FAIL: %s verified" % what)
        failures += 1

    must_fail("altered text", vkey, note.replace(b"example message", b"example massage"))
    sigline = note.decode().rsplit("\n", 2)[-2]
    raw = bytearray(base64.b64decode(sigline.split(" ")[-1]))
    raw[10] ^= 1
    must_fail("flipped signature bit", vkey,
              note.replace(sigline.split(" ")[-1].encode(), base64.b64encode(bytes(raw))))
    name, kid, pk = parse_verifier(vkey)
    other = "%s+%s+%s" % ("example.com/bar", key_id("example.com/bar", pk).hex(),
                          base64.b64encode(bytes([ED25519]) + pk).decode())
    must_fail("the same key under another name", other, note)
    must_fail("no blank line", vkey, note.replace(b"\n\n", b"\n"))
    try:
        parse_verifier(vkey.replace("+530d903a+", "+530d903b+"))
        print("  FAIL: a wrong key id was accepted")
        failures += 1
    except NoteError:
        print("  ok: a verifier with a wrong key id refused")
    return failures == 0


def default_vector_dir():
    env = os.environ.get("PATTO_SHARED_DATA")
    if env:
        return os.path.join(env, "signed-note")
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data", "signed-note"))


def main(argv):
    if len(argv) >= 1 and argv[0] == "--c2sp-vector":
        ok = self_test(argv[1] if len(argv) > 1 else default_vector_dir())
        print("C2SP vector: %s" % ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    note = sys.stdin.buffer.read() if argv[1] == "-" else open(argv[1], "rb").read()
    try:
        print(check(argv[0], note))
    except NoteError as e:
        print("FAIL: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
