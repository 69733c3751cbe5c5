#!/usr/bin/env python3
"""log_lines.py PATH/TO/weft — every log line of `weft serve --workers 2` is whole.

Starts `weft serve --workers 2 --log-level info` on 127.0.0.1 (port 0, stderr to a temporary
file), drives a connect storm against it with `weft bench --mode connect` (many concurrent
open / 101 / close cycles, each logging an open and a close line from either worker) until at
least MIN_CONNS connections were logged, stops the server (SIGTERM to the PID started here)
and parses every line of its stderr as JSON: all must be valid objects. The same with
--log-format text: every line must start with "weft: ".
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

MIN_CONNS = 2000


class Failure(Exception):
    pass


def start(weft, log, *extra):
    """Starts weft serve with stderr to log; returns (process, port)."""
    argv = [weft, "serve", "--host", "127.0.0.1", "--port", "0", "--workers", "2",
            "--log-level", "info", *extra]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(log.name, "rb") as f:
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise Failure("weft serve did not report its port")


def storm(weft, port, log):
    """Runs connect-mode bench rounds until the log holds MIN_CONNS "open" lines (at most
    10 rounds). Returns the count."""
    opened = 0
    for _ in range(10):
        subprocess.run([weft, "bench", "--mode", "connect", "-c", "64", "-d", "2",
                        "--warmup", "0", "ws://127.0.0.1:%d/echo" % port],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                       check=False)
        with open(log.name, "rb") as f:
            opened = f.read().count(b"open /echo from")
        if opened >= MIN_CONNS:
            break
    return opened


def stop(proc):
    """SIGTERM to the process started here; SIGKILL after 20 s. Returns its exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise Failure("weft serve did not stop on SIGTERM")


def check(weft, fmt):
    """One run with --log-format fmt; raises Failure on a broken line."""
    with tempfile.NamedTemporaryFile(prefix="weft-loglines-", delete=False) as log:
        try:
            proc, port = start(weft, log, "--log-format", fmt)
            try:
                opened = storm(weft, port, log)
            finally:
                status = stop(proc)
            with open(log.name, "rb") as f:
                lines = f.read().split(b"\n")
        finally:
            os.unlink(log.name)
    if lines and lines[-1] == b"":
        lines.pop()
    if opened < MIN_CONNS:
        raise Failure("%s: only %d connections logged (need %d)" % (fmt, opened, MIN_CONNS))
    bad = []
    for n, line in enumerate(lines, 1):
        if fmt == "json":
            try:
                ok = isinstance(json.loads(line), dict)
            except ValueError:
                ok = False
        else:
            ok = line.startswith(b"weft: ") and line.count(b"weft: ") == 1
        if not ok:
            bad.append((n, line[:200]))
    if status != 0:
        raise Failure("%s: weft serve exited %d" % (fmt, status))
    if bad:
        raise Failure("%s: %d of %d lines broken, first: line %d: %r"
                      % (fmt, len(bad), len(lines), bad[0][0], bad[0][1]))
    print("ok   %s: %d lines, %d connections, all whole" % (fmt, len(lines), opened))


def main():
    weft = sys.argv[1]
    try:
        check(weft, "json")
        check(weft, "text")
    except Failure as e:
        print("FAIL", e)
        return 1
    print("log lines: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
