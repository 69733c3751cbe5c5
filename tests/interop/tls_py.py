#!/usr/bin/python3
"""Interop test: Python `websockets` (python3-websockets 10.x) and Python's ssl module as wss://
clients of `weft serve --tls-cert --tls-key`.

usage: /usr/bin/python3 tls_py.py PATH/TO/weft

Certificates are made in a temporary directory by tests/integration/tls_certs.sh (the openssl
command). Scenarios: echo of every length class over wss (verified against the test CA, with
the hostname "localhost"), rooms, ALPN http/1.1 and the served certificate's serial, a
certificate reload on SIGHUP seen by a new connection while an old one stays open, a bad file
at reload (old certificate kept, error logged), and bad or missing files at start (exit 1 with
a clear message). Only the servers this script started are signalled (by PID).
"""
import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import websockets

HARD_TIMEOUT = 100
STEP_TIMEOUT = 15
SIZES = [0, 1, 125, 126, 16384, 65535, 65536, 1 << 20]
HERE = os.path.dirname(os.path.abspath(__file__))

servers = []
failures = []


class Failure(Exception):
    pass


class Server:
    """One `weft serve` child process and its stderr lines."""

    def __init__(self, weft, *extra, expect_listen=True):
        self.argv = [weft, "serve", "--host", "127.0.0.1", "--port", "0",
                     "--shutdown-timeout", "3", "--log-format", "text", *extra]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        servers.append(self)
        self.lines = []
        self.port = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if expect_listen:
            if not self.ready.wait(STEP_TIMEOUT) or self.port is None:
                self.stop()
                raise Failure("server did not start; stderr:\n" + self.log())

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.ready.set()
        self.ready.set()

    def log(self):
        return "\n".join("    | " + l for l in self.lines[-30:])

    def wait_line(self, pattern, start, timeout=STEP_TIMEOUT):
        """Waits for a stderr line matching pattern among lines[start:]."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for l in self.lines[start:]:
                if re.search(pattern, l):
                    return l
            time.sleep(0.05)
        raise Failure("no log line matching %r; stderr:\n%s" % (pattern, self.log()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def client_ctx(certs):
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    ctx.check_hostname = True
    return ctx


def raw_tls(port, ctx):
    """A bare TLS connection: (selected ALPN, serial of the served certificate)."""
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.selected_alpn_protocol(), t.getpeercert()["serialNumber"], t.version()


def ws_serial(ws):
    return ws.transport.get_extra_info("ssl_object").getpeercert()["serialNumber"]


async def echo_sizes(port, ctx):
    async with websockets.connect("wss://localhost:%d/echo" % port, ssl=ctx,
                                  max_size=None, open_timeout=STEP_TIMEOUT) as ws:
        for n in SIZES:
            text = ("é" * (n // 2) + "a" * (n % 2))
            await ws.send(text)
            got = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
            if got != text:
                raise Failure("text echo of %d bytes differs" % n)
            data = os.urandom(n)
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
            if got != data:
                raise Failure("binary echo of %d bytes differs" % n)


async def rooms(port, ctx):
    url = "wss://localhost:%d/ws/tlsroom" % port
    async with websockets.connect(url, ssl=ctx) as a, websockets.connect(url, ssl=ctx) as b:
        await asyncio.sleep(0.2)
        await a.send("hello over tls")
        got = await asyncio.wait_for(b.recv(), STEP_TIMEOUT)
        if got != "hello over tls":
            raise Failure("room message: %r" % got)


async def reload(srv, certs, ctx):
    served_pem = os.path.join(certs, "served.pem")
    served_key = os.path.join(certs, "served.key")
    url = "wss://localhost:%d/echo" % srv.port
    async with websockets.connect(url, ssl=ctx) as old:
        if ws_serial(old) != "03E9":
            raise Failure("old connection serial %s, expected 03E9" % ws_serial(old))
        shutil.copy(os.path.join(certs, "server2.pem"), served_pem)
        shutil.copy(os.path.join(certs, "server2.key"), served_key)
        mark = len(srv.lines)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_line(r"TLS certificate reloaded", mark)
        async with websockets.connect(url, ssl=ctx) as new:
            if ws_serial(new) != "03EA":
                raise Failure("new connection serial %s, expected 03EA" % ws_serial(new))
            await new.send("new")
            if await asyncio.wait_for(new.recv(), STEP_TIMEOUT) != "new":
                raise Failure("echo on the new connection")
        await old.send("old")
        if await asyncio.wait_for(old.recv(), STEP_TIMEOUT) != "old":
            raise Failure("the old connection stopped echoing after the reload")
        # A broken file: logged, the current certificate stays.
        with open(served_pem, "w") as f:
            f.write("garbage\n")
        mark = len(srv.lines)
        srv.proc.send_signal(signal.SIGHUP)
        line = srv.wait_line(r"TLS reload failed", mark)
        if "served.pem" not in line:
            raise Failure("reload error does not name the file: " + line)
        async with websockets.connect(url, ssl=ctx) as again:
            if ws_serial(again) != "03EA":
                raise Failure("after a failed reload: serial %s" % ws_serial(again))
        await old.send("still")
        if await asyncio.wait_for(old.recv(), STEP_TIMEOUT) != "still":
            raise Failure("old connection after a failed reload")


def bad_start(weft, certs, cert, key, expect):
    """weft serve with a bad file: exit 1 and a message containing `expect`."""
    argv = [weft, "serve", "--host", "127.0.0.1", "--port", "0", "--log-format", "text",
            "--tls-cert", os.path.join(certs, cert), "--tls-key", os.path.join(certs, key)]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise Failure("weft serve with %s/%s kept running" % (cert, key))
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 1 or expect not in err:
        raise Failure("%s/%s: exit %d, expected 1 with %r; stderr:\n%s"
                      % (cert, key, p.returncode, expect, err))


def run(name, fn):
    try:
        fn()
        print("ok   " + name)
    except Exception as e:  # noqa: BLE001 — every failure is reported, the run goes on
        failures.append(name)
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    weft = sys.argv[1]
    timer = threading.Timer(HARD_TIMEOUT, lambda: (print("FAIL hard timeout"),
                                                   [s.proc.kill() for s in servers],
                                                   os._exit(1)))
    timer.daemon = True
    timer.start()
    certs = tempfile.mkdtemp(prefix="weft-tls-py-")
    try:
        subprocess.run(["sh", os.path.join(HERE, "..", "integration", "tls_certs.sh"), certs],
                       check=True, timeout=60)
        shutil.copy(os.path.join(certs, "server.pem"), os.path.join(certs, "served.pem"))
        shutil.copy(os.path.join(certs, "server.key"), os.path.join(certs, "served.key"))
        srv = Server(weft, "--tls-cert", os.path.join(certs, "served.pem"),
                     "--tls-key", os.path.join(certs, "served.key"))
        ctx = client_ctx(certs)

        def alpn():
            proto, serial, version = raw_tls(srv.port, client_ctx(certs))
            if proto != "http/1.1" or serial != "03E9" or version not in ("TLSv1.2", "TLSv1.3"):
                raise Failure("alpn %r serial %r version %r" % (proto, serial, version))

        async def try_connect(url, **kw):
            async with websockets.connect(url, open_timeout=STEP_TIMEOUT, **kw):
                pass

        def plain_rejected():
            ws_url = "ws://127.0.0.1:%d/echo" % srv.port
            try:
                asyncio.run(asyncio.wait_for(try_connect(ws_url), STEP_TIMEOUT))
            except (OSError, websockets.exceptions.InvalidHandshake, EOFError):
                return
            except asyncio.TimeoutError:
                raise Failure("plain ws:// to the TLS port hung")
            raise Failure("plain ws:// to the TLS port succeeded")

        def untrusted():
            ctx2 = ssl.create_default_context(cafile=os.path.join(certs, "selfsigned.pem"))
            try:
                asyncio.run(try_connect("wss://localhost:%d/echo" % srv.port, ssl=ctx2))
            except ssl.SSLCertVerificationError:
                return
            raise Failure("a client trusting another CA connected")

        def readyz():
            # /readyz over https: the self-check must itself complete a TLS + WebSocket
            # handshake with the server (a plain probe would always fail on a TLS port).
            with socket.create_connection(("127.0.0.1", srv.port), timeout=STEP_TIMEOUT) as raw:
                with client_ctx(certs).wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
            head = data.split(b"\r\n", 1)[0]
            if b" 200 " not in head or b"ready" not in data:
                raise Failure("/readyz over TLS answered %r" % data[:200])

        run("tls alpn http/1.1, serial, version", alpn)
        run("tls /readyz completes its own TLS self-check", readyz)
        run("tls echo sizes", lambda: asyncio.run(echo_sizes(srv.port, ctx)))
        run("tls rooms", lambda: asyncio.run(rooms(srv.port, ctx)))
        run("tls plain client refused", plain_rejected)
        run("tls untrusted CA refused by the client", untrusted)
        run("tls reload on SIGHUP", lambda: asyncio.run(reload(srv, certs, ctx)))
        run("tls clean exit", lambda: srv.stop() == 0 or (_ for _ in ()).throw(
            Failure("exit status %s; stderr:\n%s" % (srv.proc.returncode, srv.log()))))
        run("tls bad cert at start", lambda: bad_start(weft, certs, "garbage.pem", "server.key",
                                                       "garbage.pem"))
        run("tls missing key at start", lambda: bad_start(weft, certs, "server.pem",
                                                          "missing.key", "No such file"))
        run("tls mismatched key at start", lambda: bad_start(weft, certs, "server.pem",
                                                             "other.key", "does not match"))
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(certs, ignore_errors=True)
    print("%d failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
