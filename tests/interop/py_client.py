#!/usr/bin/python3
"""Interop test: Python `websockets` (Debian's python3-websockets 10.x, asyncio API) as a
client of `weft serve`.

usage: /usr/bin/python3 py_client.py PATH/TO/weft

Starts `weft serve --host 127.0.0.1 --port 0` (and a second one with --max-message 1000),
learns each port from the "listening on 127.0.0.1:PORT" line on its stderr, runs the
scenarios below, prints one line per scenario and exits 1 if any failed. Only the servers
this script started are signalled (by PID): SIGTERM, then SIGKILL after 5 s.
"""
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

HARD_TIMEOUT = 100  # seconds for the whole script (CTest allows 120)
STEP_TIMEOUT = 15   # seconds for any single receive or handshake
QUIET = 0.3         # seconds of silence that mean "nothing more is coming"
SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]

servers = []  # every Server started, so the hard timeout can kill them


class Failure(Exception):
    pass


class Server:
    """One `weft serve` child process and its stderr log."""

    def __init__(self, weft, *extra):
        # A shutdown deadline well under the 5 s after which stop() kills the process.
        self.argv = [weft, "serve", "--host", "127.0.0.1", "--port", "0",
                     "--shutdown-timeout", "3", *extra]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        servers.append(self)
        self.lines = []
        self.port = None
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(STEP_TIMEOUT) or self.port is None:
            self.stop()
            raise Failure("server %s did not print 'listening on 127.0.0.1:PORT'; stderr:\n%s"
                          % (" ".join(self.argv[1:]), self.log()))

    def _read(self):
        # Keeps draining stderr for the whole run so the server never blocks on the pipe.
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.ready.set()
        self.ready.set()  # EOF: the process exited

    def log(self, last=40):
        return "\n".join("    | " + l for l in self.lines[-last:])

    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        """SIGTERM this PID, wait; SIGKILL after 5 s. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(2)
        return self.proc.returncode


def hard_timeout(signo, frame):
    print("FAIL hard timeout: the test did not finish in %d s" % HARD_TIMEOUT, flush=True)
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
    os._exit(1)


def text_of_size(n, seed):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1- to 4-byte characters."""
    rnd = random.Random(seed)
    alphabet = ["a", "Z", " ", "é", "ß", "€", "中", "😀", "\u07ff", "\uffff"]
    parts, size = [], 0
    while size < n:
        ch = rnd.choice(alphabet)
        b = len(ch.encode())
        if size + b > n:
            ch, b = "x", 1
        parts.append(ch)
        size += b
    s = "".join(parts)
    assert len(s.encode()) == n
    return s


def bytes_of_size(n, seed):
    return random.Random(seed).randbytes(n)


async def recv(ws, what):
    try:
        return await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure("%s: nothing received within %d s" % (what, STEP_TIMEOUT))
    except ConnectionClosed as e:
        raise Failure("%s: connection closed instead (%s)" % (what, e))


async def expect_silence(ws, what):
    """A ping round trip (the server answers in order, so anything queued before it arrives
    first), then QUIET seconds in which no message may arrive."""
    pong = await ws.ping()
    await asyncio.wait_for(pong, STEP_TIMEOUT)
    try:
        msg = await asyncio.wait_for(ws.recv(), QUIET)
    except asyncio.TimeoutError:
        return
    raise Failure("%s: unexpected message %r" % (what, describe(msg)))


def describe(msg):
    kind = "text" if isinstance(msg, str) else "binary"
    data = msg.encode() if isinstance(msg, str) else msg
    head = data[:24]
    return "%s(%d bytes, starts %r)" % (kind, len(data), head)


def same(got, want, what):
    if type(got) is not type(want):
        raise Failure("%s: got %s, sent %s" % (what, describe(got), describe(want)))
    if got != want:
        g = got.encode() if isinstance(got, str) else got
        w = want.encode() if isinstance(want, str) else want
        first = next((i for i in range(min(len(g), len(w))) if g[i] != w[i]), min(len(g), len(w)))
        raise Failure("%s: echo differs: got %d bytes, sent %d, first difference at byte %d"
                      % (what, len(g), len(w), first))


def connect(url, **kw):
    kw.setdefault("max_size", 4 << 20)
    kw.setdefault("open_timeout", STEP_TIMEOUT)
    kw.setdefault("close_timeout", 5)
    return websockets.connect(url, **kw)


async def wait_closed(ws, what):
    try:
        await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure("%s: the connection was not closed within %d s" % (what, STEP_TIMEOUT))


# ----------------------------------------------------------------------------- scenarios

async def sc_echo(srv, kind):
    async with connect(srv.url("/echo")) as ws:
        for n in SIZES:
            msg = text_of_size(n, n) if kind == "text" else bytes_of_size(n, n)
            await ws.send(msg)
            same(await recv(ws, "echo %s %d" % (kind, n)), msg, "echo %s %d" % (kind, n))
        await ws.close(1000)
    return "sizes " + ",".join(map(str, SIZES))


async def sc_fragmented(srv):
    async with connect(srv.url("/echo")) as ws:
        chunks = ["", "héllo ", "fragmented ", "wörld 😀", ""]
        await ws.send(chunks)
        same(await recv(ws, "fragmented text"), "".join(chunks), "fragmented text")
        bchunks = [bytes_of_size(n, n + 7) for n in (1, 125, 126, 65536, 0, 70000)]
        await ws.send(bchunks)
        same(await recv(ws, "fragmented binary"), b"".join(bchunks), "fragmented binary")
        # A message right after a fragmented one is still separate.
        await ws.send("after")
        same(await recv(ws, "message after fragments"), "after", "message after fragments")
        await ws.close(1000)
    return "text in 5 fragments, binary in 6 (136 KiB), each echoed as one message"


async def sc_rooms(srv):
    a = await connect(srv.url("/ws/r1"))
    b = await connect(srv.url("/ws/r1"))
    c = await connect(srv.url("/ws/r1"))
    d = await connect(srv.url("/ws/r2"))
    try:
        r1 = {"A": a, "B": b, "C": c}
        sent = []
        for name, ws in r1.items():
            text = "text from %s: héllo €" % name
            binary = bytes([0, 1, 0xFF, 0xFE]) + name.encode() + bytes_of_size(200, name)
            await ws.send(text)
            await ws.send(binary)
            sent.append((name, text, binary))
            for other, ows in r1.items():
                if other == name:
                    continue
                same(await recv(ows, "%s <- %s text" % (other, name)), text,
                     "%s <- %s text" % (other, name))
                same(await recv(ows, "%s <- %s binary" % (other, name)), binary,
                     "%s <- %s binary" % (other, name))
        await d.send("lonely in r2")
        for name, ws in list(r1.items()) + [("D(r2)", d)]:
            await expect_silence(ws, "%s after the room traffic" % name)
        # /ws and /ws/ are both the lobby.
        async with connect(srv.url("/ws")) as l1, connect(srv.url("/ws/")) as l2:
            await l1.send("to the lobby")
            same(await recv(l2, "lobby"), "to the lobby", "/ws -> /ws/ (lobby)")
            await expect_silence(l1, "lobby sender")
    finally:
        for ws in (a, b, c, d):
            await ws.close()
    return "3 in r1 + 1 in r2: each r1 message reached the 2 others once, text/binary kept; " \
           "nothing to the sender or r2; /ws = /ws/ = lobby"


async def sc_close(srv, code, reason):
    ws = await connect(srv.url("/echo"))
    await ws.send("before close")
    same(await recv(ws, "echo before close"), "before close", "echo before close")
    await ws.close(code, reason)
    await wait_closed(ws, "close %d" % code)
    if ws.close_code != code:
        raise Failure("closed with %d %r, server answered %s %r"
                      % (code, reason, ws.close_code, ws.close_reason))
    return "server echoed %d (reason %r)" % (ws.close_code, ws.close_reason)


async def expect_server_close(ws, want, what):
    """Reads until the server closes; the close code it sent must be `want`."""
    try:
        while True:
            msg = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
            raise Failure("%s: got %s instead of a close %d" % (what, describe(msg), want))
    except asyncio.TimeoutError:
        raise Failure("%s: server did not close within %d s" % (what, STEP_TIMEOUT))
    except ConnectionClosed:
        pass
    await wait_closed(ws, what)
    if ws.close_code != want:
        raise Failure("%s: expected close %d, got %s %r"
                      % (what, want, ws.close_code, ws.close_reason))
    return ws.close_reason


async def sc_invalid_utf8(srv):
    ws = await connect(srv.url("/echo"))
    # websockets refuses to send invalid text through send(); write the frame directly.
    await ws.write_frame(True, 0x1, b"abc\xff")
    reason = await expect_server_close(ws, 1007, "invalid UTF-8 text")
    # The server keeps serving others.
    async with connect(srv.url("/echo")) as ok:
        await ok.send("still alive")
        same(await recv(ok, "echo after 1007"), "still alive", "echo after 1007")
    return "closed with 1007 (%r); server still serving" % reason


async def sc_max_message(small):
    async with connect(small.url("/echo")) as ws:
        msg = bytes_of_size(1000, 1)
        await ws.send(msg)
        same(await recv(ws, "1000-byte message at --max-message 1000"), msg,
             "1000-byte message at --max-message 1000")
    ws = await connect(small.url("/echo"))
    await ws.send(bytes_of_size(1001, 2))
    reason = await expect_server_close(ws, 1009, "1001-byte message at --max-message 1000")
    ws = await connect(small.url("/echo"))
    await ws.send(["x" * 600, "y" * 600])
    await expect_server_close(ws, 1009, "1200 bytes in 2 fragments at --max-message 1000")
    return "1000 bytes echoed; 1001 bytes and 2x600 fragments closed with 1009 (%r)" % reason


async def sc_slow_consumer(srv, policy):
    """A room member that stops reading while another member sends 20 MiB in 16 KiB
    messages. With --slow-policy close (and --max-backpressure 65536) it is closed with 1008;
    with the default drop policy it loses messages but stays connected and gets new ones once
    it reads again. Meanwhile a member that reads gets every message, in order."""
    n, size = 1280, 16384  # 20 MiB: more than the kernel buffers can hide
    room = "/ws/slow-" + policy
    # max_queue=1 and a small read_limit: websockets stops reading the socket almost at once.
    slow = await connect(srv.url(room), max_queue=1, read_limit=4096)
    fast = await connect(srv.url(room))
    sender = await connect(srv.url(room))
    try:
        payload = bytes_of_size(size, 3)
        # Lockstep with the fast member (it is never more than one message behind), so only
        # the member that stopped reading can reach the backpressure limit.
        for i in range(n):
            await sender.send(i.to_bytes(4, "big") + payload)
            msg = await recv(fast, "fast member, message %d" % i)
            if msg[:4] != i.to_bytes(4, "big") or len(msg) != size + 4:
                raise Failure("fast member: message %d out of order or damaged" % i)
        # Now the slow member reads what the kernel and the server held.
        got, last = 0, -1
        try:
            while True:
                msg = await asyncio.wait_for(slow.recv(), 1 if policy == "drop" else STEP_TIMEOUT)
                seq = int.from_bytes(msg[:4], "big")
                if seq <= last:
                    raise Failure("slow member: message %d after %d" % (seq, last))
                got, last = got + 1, seq
        except asyncio.TimeoutError:
            if policy == "close":
                raise Failure("slow member: no close within %d s after %d messages"
                              % (STEP_TIMEOUT, got))
        except ConnectionClosed:
            if policy == "drop":
                raise Failure("slow member: closed (%s %r) under the drop policy after %d "
                              "messages" % (slow.close_code, slow.close_reason, got))
        if got >= n:
            raise Failure("slow member received all %d messages: no backpressure seen" % n)
        if policy == "close":
            await wait_closed(slow, "slow member")
            if slow.close_code != 1008:
                raise Failure("slow member: closed with %s %r after %d of %d messages, "
                              "expected 1008" % (slow.close_code, slow.close_reason, got, n))
            outcome = "was closed with 1008"
        else:
            await sender.send("after the flood")
            same(await recv(fast, "fast member, after the flood"), "after the flood",
                 "fast member, after the flood")
            same(await recv(slow, "slow member after draining"), "after the flood",
                 "slow member after draining")
            outcome = "stayed open and got new messages"
        await sender.send("still here")
        same(await recv(fast, "fast member after"), "still here", "room still working")
    finally:
        for ws in (slow, fast, sender):
            await ws.close()
    return "%s: slow reader got %d of %d x 16 KiB, then %s; fast reader got all, in order" \
        % (policy, got, n, outcome)


async def sc_peer_eof(srv):
    """The client sends a message and half-closes TCP at once, without a close frame (a peer
    that went away): the server must notice the EOF and close its side."""
    ws = await connect(srv.url("/echo"))
    # Frame and FIN in one TCP segment (corked: the FIN rides on the pending data), so the
    # server reads both at once.
    ws.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    ws.write_frame_sync(True, 0x1, "last words".encode())
    ws.transport.write_eof()
    try:
        msg = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
        same(msg, "last words", "echo before EOF")
    except ConnectionClosed:
        pass  # the server may close before echoing; either is fine
    try:
        await asyncio.wait_for(ws.wait_closed(), 5)
    except asyncio.TimeoutError:
        ws.transport.abort()
        raise Failure("message + FIN without a close frame: the server did not close the "
                      "TCP connection within 5 s (EOF not noticed)")
    return "server closed the TCP connection (client saw %s)" % ws.close_code


async def sc_http(srv):
    def get(path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (srv.port, path),
                                        timeout=STEP_TIMEOUT) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
    loop = asyncio.get_running_loop()
    status, body = await loop.run_in_executor(None, get, "/healthz")
    if status != 200 or body != b"ok\n":
        raise Failure("GET /healthz: %d %r, expected 200 'ok\\n'" % (status, body))
    status, _ = await loop.run_in_executor(None, get, "/nope")
    if status != 404:
        raise Failure("GET /nope: %d, expected 404" % status)
    try:
        ws = await connect(srv.url("/nope"))
        await ws.close()
        raise Failure("WebSocket upgrade to /nope was accepted, expected 404")
    except InvalidStatusCode as e:
        if e.status_code != 404:
            raise Failure("WebSocket upgrade to /nope: %d, expected 404" % e.status_code)
    return "GET /healthz 200 ok; GET /nope 404; upgrade to /nope 404"


async def sc_shutdown(srv):
    ws = await connect(srv.url("/echo"))
    await ws.send("hi")
    same(await recv(ws, "echo before shutdown"), "hi", "echo before shutdown")
    srv.proc.send_signal(signal.SIGTERM)
    await expect_server_close(ws, 1001, "SIGTERM with a client connected")
    loop = asyncio.get_running_loop()
    status = await loop.run_in_executor(None, srv.stop)
    if status != 0:
        raise Failure("server exit status %s after SIGTERM, expected 0" % status)
    return "client got 1001, server exited 0"


async def run(weft):
    failures = 0

    async def scenario(name, coro):
        nonlocal failures
        t0 = time.monotonic()
        try:
            detail = await coro
            print("ok   %-16s %s (%.2fs)" % (name, detail, time.monotonic() - t0), flush=True)
        except Exception as e:  # any exception is a failed scenario, reported clearly
            failures += 1
            msg = str(e) if isinstance(e, Failure) else "%s: %s" % (type(e).__name__, e)
            print("FAIL %-16s %s" % (name, msg), flush=True)

    srv = Server(weft)
    small = Server(weft, "--max-message", "1000")
    slow = Server(weft, "--max-backpressure", "65536", "--slow-policy", "close")
    print("# weft serve on ports %d, %d (--max-message 1000) and %d (--max-backpressure "
          "65536 --slow-policy close); websockets %s"
          % (srv.port, small.port, slow.port, websockets.__version__), flush=True)
    await scenario("echo-text", sc_echo(srv, "text"))
    await scenario("echo-binary", sc_echo(srv, "binary"))
    await scenario("fragmented", sc_fragmented(srv))
    await scenario("rooms", sc_rooms(srv))
    await scenario("close-1000", sc_close(srv, 1000, ""))
    await scenario("close-4001", sc_close(srv, 4001, "bye"))
    await scenario("invalid-utf8", sc_invalid_utf8(srv))
    await scenario("max-message", sc_max_message(small))
    await scenario("slow-drop", sc_slow_consumer(srv, "drop"))
    await scenario("slow-close", sc_slow_consumer(slow, "close"))
    await scenario("peer-eof", sc_peer_eof(srv))
    await scenario("http", sc_http(srv))
    await scenario("shutdown", sc_shutdown(srv))

    for s in (srv, small, slow):
        status = s.stop()
        crashed = [l for l in s.lines if "Sanitizer" in l or "runtime error:" in l]
        if status != 0 or crashed:
            failures += 1
            print("FAIL server-exit     %s exited %s%s\n%s"
                  % (" ".join(s.argv[1:]), status, " with sanitizer reports" if crashed else "",
                     s.log()), flush=True)
        elif failures:
            print("# server log (%s):\n%s" % (" ".join(s.argv[1:]), s.log()), flush=True)
    return failures


def main():
    if len(sys.argv) != 2:
        print("usage: py_client.py PATH/TO/weft", file=sys.stderr)
        return 2
    signal.signal(signal.SIGALRM, hard_timeout)
    signal.alarm(HARD_TIMEOUT)
    try:
        failures = asyncio.run(asyncio.wait_for(run(sys.argv[1]), HARD_TIMEOUT - 5))
    except Failure as e:
        print("FAIL setup: %s" % e, flush=True)
        failures = 1
    except asyncio.TimeoutError:
        print("FAIL timeout: scenarios did not finish in %d s" % (HARD_TIMEOUT - 5), flush=True)
        failures = 1
    finally:
        for s in servers:
            s.stop()
    print("python websockets interop: %s" % ("FAILED (%d)" % failures if failures else "all passed"),
          flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
