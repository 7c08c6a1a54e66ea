"""Starting the real `patto` in the Python tests (crash, fault, batch): one
place that knows the `init` and `serve` command lines and how to read the
port from "listening on HOST:PORT"."""
import os
import subprocess


def init(bin_path, db):
    """Creates db with the demo tenant; returns its admin API key."""
    out = subprocess.run([bin_path, "init", "--db", db], capture_output=True, text=True,
                         check=True).stdout
    return out.strip().splitlines()[-1]


def serve(bin_path, db, *extra, env=None):
    """Starts `patto serve` on a free loopback port; returns (process, port).
    The stderr lines written before "listening on" are kept in
    process.early_stderr."""
    p = subprocess.Popen([bin_path, "serve", "--db", db, "--listen", "127.0.0.1:0", *extra],
                         stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, **(env or {})))
    p.early_stderr = []
    line = p.stderr.readline()
    while line and not line.startswith("listening on"):
        p.early_stderr.append(line)
        line = p.stderr.readline()
    if not line:
        p.kill()
        raise RuntimeError("patto serve did not start: " + (p.stderr.read() or "no output"))
    return p, int(line.strip().rsplit(":", 1)[1])
