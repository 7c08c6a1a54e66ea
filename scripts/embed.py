#!/usr/bin/env python3
"""Embeds a text file as a C byte array: embed.py SYMBOL INPUT OUTPUT.
Used for docs/openapi.yaml, so that the served contract is the file in the
repository and cannot drift from it."""
import sys

sym, src, dst = sys.argv[1:4]
data = open(src, "rb").read()
with open(dst, "w") as out:
    out.write("#include <stddef.h>\n")
    out.write(f"const char {sym}[] = {{\n")
    for i in range(0, len(data), 16):
        out.write("  " + ", ".join(str(b) for b in data[i:i + 16]) + ",\n")
    out.write("  0};\n")
    out.write(f"const size_t {sym}_len = {len(data)};\n")
