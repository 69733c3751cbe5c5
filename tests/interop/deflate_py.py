#!/usr/bin/python3
"""permessage-deflate interop: Python websockets (and raw sockets for the wire-level checks)
against a libweft server (tests/interop/deflate_server.c).

usage: deflate_py.py PATH/TO/deflate_server

Every client offer (server/client_no_context_takeover, server/client_max_window_bits) is
negotiated against several server configurations; payloads that compress well and badly from
0 bytes to 16 MiB are echoed and broadcast. Wire-level checks with a raw socket: RSV1 and a
real size reduction on server frames, inflation of client frames, a zip bomb closed with 1009,
a corrupt stream closed with 1007, RSV1 without negotiation closed with 1002, a client that
offers nothing gets plain frames; a compressed message in 4 frames (RSV1 on the first only, a
ping and an empty fragment among them) echoed whole, RSV1 on a continuation closed with 1002.
The zip bomb (1 GiB inflated) against a 4 MiB server, whole
and fragmented, is closed with 1009 with the server's peak RSS and CPU time measured from
/proc/PID (bounded work, not only a prompt answer).
"""
import asyncio
import base64
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

SERVER = sys.argv[1]
failures = []


def start(*args):
    proc = subprocess.Popen([SERVER, *args], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise SystemExit("deflate_server did not start")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what, flush=True)


def payloads(big):
    text = b'{"type":"message","room":"lobby","data":"hello world"}'
    sizes = [0, 1, 125, 126, 70000, 1 << 20] + ([16 << 20] if big else [])
    for n in sizes:
        yield (text * (n // len(text) + 1))[:n].decode(), "text%d" % n
        yield os.urandom(n), "random%d" % n


async def echo_with_offer(port, offer, big, label):
    factory = ClientPerMessageDeflateFactory(**offer)
    async with websockets.connect("ws://127.0.0.1:%d/echo" % port, max_size=None,
                                  extensions=[factory], compression=None,
                                  open_timeout=5, close_timeout=5) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        check(ext.startswith("permessage-deflate"), "%s: not negotiated (%r)" % (label, ext))
        if offer.get("server_no_context_takeover"):
            check("server_no_context_takeover" in ext, "%s: snct not honoured" % label)
        smwb = offer.get("server_max_window_bits")
        if smwb:
            m = re.search(r"server_max_window_bits=(\d+)", ext)
            check(m is not None and int(m.group(1)) <= smwb, "%s: smwb %r" % (label, ext))
        for data, name in payloads(big):
            await ws.send(data)
            back = await ws.recv()
            check(back == data, "%s: echo of %s differs" % (label, name))
        await ws.close(1000)
        check(ws.close_code == 1000, "%s: close code %r" % (label, ws.close_code))


async def negotiation_matrix(port, big, label):
    n = 0
    for snct in (False, True):
        for cnct in (False, True):
            for smwb in (None, 9, 12):
                for cmwb in (None, True, 10):
                    offer = dict(server_no_context_takeover=snct, client_no_context_takeover=cnct,
                                 server_max_window_bits=smwb, client_max_window_bits=cmwb)
                    # only the first combination moves the 16 MiB payloads (time bound)
                    await echo_with_offer(port, offer, big and n == 0, "%s %s" % (label, offer))
                    n += 1
    return n


async def rooms(port, label):
    url = "ws://127.0.0.1:%d/room/r" % port
    a = await websockets.connect(url, max_size=None)
    b = await websockets.connect(url, max_size=None)                   # deflate
    c = await websockets.connect(url, max_size=None, compression=None)  # plain
    d = await websockets.connect(url, max_size=None, extensions=[
        ClientPerMessageDeflateFactory(server_max_window_bits=10)], compression=None)
    await asyncio.sleep(0.1)
    for i, data in enumerate(["hello " * 50, os.urandom(3000), "x" * 200000, ""]):
        await a.send(data)
        for who, ws in (("deflate", b), ("plain", c), ("w10", d)):
            got = await asyncio.wait_for(ws.recv(), 5)
            check(got == data, "%s: room message %d to %s client differs" % (label, i, who))
    for ws in (a, b, c, d):
        await ws.close()


# ------------------------------------------------------------------ raw-socket checks

class Inflater:
    """A client's inflater that keeps its context across messages and, like Chromium, starts a
    new stream after a block with BFINAL set (RFC 7692 section 7.2.3.4: weft's libdeflate
    compressor ends every message that way)."""

    def __init__(self):
        self.d = zlib.decompressobj(-15)

    def decompress(self, data):
        out = b""
        while data:
            out += self.d.decompress(data)
            if not self.d.eof:
                break
            data = self.d.unused_data
            self.d = zlib.decompressobj(-15)
        return out


def raw_connect(port, offer):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % key)
    if offer:
        req += "Sec-WebSocket-Extensions: %s\r\n" % offer
    s.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("closed during handshake")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    return s, head.decode(), bytearray(rest)


def send_frame(s, opcode, payload, rsv1=False, fin=True):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 100000 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    s.sendall(hdr + key + masked)


def read_frame(s, buf):
    def need(k):
        while len(buf) < k:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise EOFError
            buf.extend(chunk)
    need(2)
    b0, b1 = buf[0], buf[1]
    n, off = b1 & 0x7f, 2
    if n == 126:
        need(4)
        n, off = struct.unpack("!H", bytes(buf[2:4]))[0], 4
    elif n == 127:
        need(10)
        n, off = struct.unpack("!Q", bytes(buf[2:10]))[0], 10
    need(off + n)
    payload = bytes(buf[off:off + n])
    del buf[:off + n]
    return b0, payload


_bomb = []


def zip_bomb():
    """A compressed message (tail removed) of ~1 MiB that inflates to 1 GiB of zeros."""
    if not _bomb:
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = bytes(1 << 20)
        z = b"".join(co.compress(chunk) for _ in range(1024)) + co.flush(zlib.Z_SYNC_FLUSH)
        _bomb.append(z[:-4])
    return _bomb[0]


def peak_rss_kib(pid):
    """The process's peak resident set (VmHWM) in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM for %d" % pid)


def cpu_seconds(pid):
    """User + system CPU time the process has used (utime + stime of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_checks(port):
    compressible = b"abcdefgh" * 4096  # 32 KiB
    # 1. server frames carry RSV1 and are smaller; they inflate back to the message
    s, head, buf = raw_connect(port, "permessage-deflate; client_max_window_bits")
    check("Sec-WebSocket-Extensions: permessage-deflate" in head, "raw: no extension in 101")
    send_frame(s, 2, compressible)
    b0, payload = read_frame(s, buf)
    check(b0 == 0xC2, "raw: server frame header %#x, expected FIN+RSV1+binary" % b0)
    check(len(payload) < len(compressible) // 10, "raw: %d bytes is not compressed" % len(payload))
    dec = Inflater()  # one per connection: the server may keep its context
    inflated = dec.decompress(payload + b"\x00\x00\xff\xff")
    check(inflated == compressible, "raw: server frame does not inflate to the message")
    # 2. a compressed client frame is inflated (and echoed)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    z = co.compress(compressible) + co.flush(zlib.Z_SYNC_FLUSH)
    send_frame(s, 2, z[:-4], rsv1=True)
    b0, payload = read_frame(s, buf)
    back = dec.decompress(payload + b"\x00\x00\xff\xff") if b0 & 0x40 else payload
    check(back == compressible, "raw: compressed client frame not inflated correctly")
    s.close()

    # 3. zip bomb: ~1 MiB of compressed zeros that inflate to 1 GiB: closed with 1009 fast
    #    (the memory and CPU it costs the server are measured by zip_bomb_bounded)
    s, head, buf = raw_connect(port, "permessage-deflate")
    t0 = time.time()
    send_frame(s, 2, zip_bomb(), rsv1=True)
    b0, payload = read_frame(s, buf)
    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    check(b0 == 0x88 and code == 1009, "raw: zip bomb answered %#x %r, expected close 1009" % (b0, code))
    check(time.time() - t0 < 10, "raw: zip bomb took %.1f s" % (time.time() - t0))
    s.close()

    # 4. corrupt stream: 1007
    s, head, buf = raw_connect(port, "permessage-deflate")
    send_frame(s, 1, b"\xff\xff\xff\xff\xff", rsv1=True)
    b0, payload = read_frame(s, buf)
    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    check(b0 == 0x88 and code == 1007, "raw: corrupt stream answered %#x %r, expected 1007" % (b0, code))
    s.close()

    # 5. compressed text that inflates to invalid UTF-8: 1007
    s, head, buf = raw_connect(port, "permessage-deflate")
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    z = co.compress(b"abc\xff") + co.flush(zlib.Z_SYNC_FLUSH)
    send_frame(s, 1, z[:-4], rsv1=True)
    b0, payload = read_frame(s, buf)
    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    check(b0 == 0x88 and code == 1007, "raw: inflated invalid UTF-8 answered %r" % code)
    s.close()

    # 7. a compressed message in 4 frames (RSV1 on the first only; an empty fragment and a
    #    ping in between) is inflated whole and echoed; twice, so that with context takeover
    #    the second message refers back to the first
    s, head, buf = raw_connect(port, "permessage-deflate")
    fresh_each = "client_no_context_takeover" in head  # else our compressor keeps its window
    dec = Inflater()
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    for n, msg in enumerate((b"fragmented and compressed " * 400,
                             b"fragmented and compressed " * 300 + b"second")):
        if fresh_each:
            co = zlib.compressobj(9, zlib.DEFLATED, -15)
        z = (co.compress(msg) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]
        k = len(z) // 3
        check(k > 0, "raw: fragmented message too small to split")
        send_frame(s, 1, z[:k], rsv1=True, fin=False)
        send_frame(s, 0, z[k:2 * k], fin=False)
        send_frame(s, 9, b"mid")  # a control frame between fragments
        send_frame(s, 0, b"", fin=False)
        send_frame(s, 0, z[2 * k:])
        b0, payload = read_frame(s, buf)
        check(b0 == 0x8A and payload == b"mid", "raw: ping between fragments answered %#x" % b0)
        b0, payload = read_frame(s, buf)
        back = dec.decompress(payload + b"\x00\x00\xff\xff") if b0 & 0x40 else payload
        check(b0 & 0x0F == 1 and b0 & 0x80 and back == msg,
              "raw: fragmented compressed message %d echoed as %#x, %d bytes" % (n, b0, len(back)))
    s.close()

    # 8. RSV1 on a continuation frame (of a compressed and of a plain message): 1002
    for first_rsv1 in (True, False):
        s, head, buf = raw_connect(port, "permessage-deflate")
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        z = (co.compress(b"abc" * 100) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]
        first = z[:len(z) // 2] if first_rsv1 else b"plain start "
        send_frame(s, 1, first, rsv1=first_rsv1, fin=False)
        send_frame(s, 0, z[len(z) // 2:], rsv1=True)
        b0, payload = read_frame(s, buf)
        check(close_code(b0, payload) == 1002,
              "raw: RSV1 on a continuation (first frame %s) answered %#x %r"
              % ("compressed" if first_rsv1 else "plain", b0, close_code(b0, payload)))
        s.close()

    # 6. no offer: no extension, plain frames; RSV1 is then a protocol error
    s, head, buf = raw_connect(port, None)
    check("Sec-WebSocket-Extensions" not in head, "raw: extension sent without an offer")
    send_frame(s, 1, compressible)
    b0, payload = read_frame(s, buf)
    check(b0 == 0x81 and payload == compressible, "raw: plain client got %#x" % b0)
    send_frame(s, 1, b"x", rsv1=True)
    b0, payload = read_frame(s, buf)
    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    check(b0 == 0x88 and code == 1002, "raw: RSV1 without deflate answered %r" % code)
    s.close()


BOMB_MAX = 4 << 20  # max message of the zip-bomb server (the bomb itself is ~1 MiB)


def close_code(b0, payload):
    """The close code of a frame (None if it is not a close frame with a code)."""
    return struct.unpack("!H", payload[:2])[0] if b0 & 0x0F == 8 and len(payload) >= 2 else None


def zip_bomb_bounded():
    """The 1 GiB zip bomb, as one frame and as 4 frames (RSV1 on the first), against a server
    whose max message is BOMB_MAX: each is closed with 1009 while the server's peak RSS
    (VmHWM) grows by less than 8 x BOMB_MAX and it spends less than 0.5 s of CPU (utime +
    stime). Inflating the whole GiB needs over 1 GiB of memory, or seconds of CPU if it were
    streamed: with the inflate limit of src/ws/conn.c removed, all three checks fail (measured
    in the sanitizer build: +1.5 GiB, 5.5 s CPU, no answer within the 10 s socket timeout;
    with the limit: +15 MiB (ASan keeps freed blocks in quarantine), 0.02 s)."""
    bomb = zip_bomb()
    proc, port = start("--max-message", str(BOMB_MAX))
    try:
        # warm-up: a compressed echo, so the inflater and scratch buffers exist already
        s, head, buf = raw_connect(port, "permessage-deflate")
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        z = co.compress(b"warm-up " * 4096) + co.flush(zlib.Z_SYNC_FLUSH)
        send_frame(s, 2, z[:-4], rsv1=True)
        b0, payload = read_frame(s, buf)
        check(b0 == 0xC2, "bomb: warm-up echo answered %#x" % b0)
        s.close()
        for how in ("one frame", "4 frames"):
            hwm0, cpu0 = peak_rss_kib(proc.pid), cpu_seconds(proc.pid)
            s, head, buf = raw_connect(port, "permessage-deflate")
            if how == "one frame":
                send_frame(s, 2, bomb, rsv1=True)
            else:
                k = len(bomb) // 4
                for i in range(4):
                    send_frame(s, 2 if i == 0 else 0, bomb[i * k:len(bomb) if i == 3 else (i + 1) * k],
                               rsv1=i == 0, fin=i == 3)
            try:
                b0, payload = read_frame(s, buf)
                code = close_code(b0, payload)
            except (OSError, EOFError) as e:  # a timeout: the server is still inflating
                b0, code = None, repr(e)
            s.close()
            grew_kib = peak_rss_kib(proc.pid) - hwm0
            cpu = cpu_seconds(proc.pid) - cpu0
            before = len(failures)
            check(code == 1009, "bomb (%s): answered %r, expected close 1009" % (how, code))
            check(grew_kib < 8 * BOMB_MAX // 1024,
                  "bomb (%s): server peak RSS grew by %d KiB (limit %d KiB)"
                  % (how, grew_kib, 8 * BOMB_MAX // 1024))
            check(cpu < 0.5, "bomb (%s): the server spent %.2f s of CPU" % (how, cpu))
            if len(failures) == before:
                print("ok   zip bomb %-9s 1009, server peak RSS +%d KiB, %.2f s CPU "
                      "(max message %d KiB)" % (how, grew_kib, cpu, BOMB_MAX // 1024), flush=True)
    finally:
        stop(proc)


CONFIGS = [
    ("lean", []),
    ("takeover", ["--context-takeover"]),
    ("takeover-small", ["--context-takeover", "--window", "9", "--peer-window", "10",
                        "--mem-level", "1"]),
    ("lean-w10", ["--window", "10", "--peer-window", "9", "--threshold", "100"]),
]


async def main():
    total = 0
    for label, args in CONFIGS:
        proc, port = start(*args)
        try:
            t0 = time.time()
            n = await negotiation_matrix(port, big=(label in ("lean", "takeover")), label=label)
            await rooms(port, label)
            await asyncio.get_running_loop().run_in_executor(None, raw_checks, port)
            total += n
            print("ok   %-15s %d offers echoed, rooms, wire checks (%.1fs)" % (label, n, time.time() - t0),
                  flush=True)
        finally:
            stop(proc)
    await asyncio.get_running_loop().run_in_executor(None, zip_bomb_bounded)
    # the message limit holds for plain frames on a deflate connection too (the wire limits
    # are widened only for the growth of incompressible compressed data)
    proc, port = start("--max-message", "1000")
    try:
        def limits():
            s, head, buf = raw_connect(port, "permessage-deflate")
            check("permessage-deflate" in head, "limit: not negotiated")
            send_frame(s, 2, os.urandom(1000))
            b0, payload = read_frame(s, buf)
            check(b0 in (0x82, 0xC2), "limit: 1000 bytes not echoed (%#x)" % b0)
            send_frame(s, 2, os.urandom(1001))
            b0, payload = read_frame(s, buf)
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            check(b0 == 0x88 and code == 1009, "limit: plain 1001 bytes answered %r" % code)
            s.close()
            s, head, buf = raw_connect(port, "permessage-deflate")
            co = zlib.compressobj(9, zlib.DEFLATED, -15)
            z = co.compress(b"a" * 1001) + co.flush(zlib.Z_SYNC_FLUSH)
            send_frame(s, 1, z[:-4], rsv1=True)
            b0, payload = read_frame(s, buf)
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            check(b0 == 0x88 and code == 1009, "limit: 1001 inflated bytes answered %r" % code)
            s.close()
        await asyncio.get_running_loop().run_in_executor(None, limits)
        print("ok   max-message     plain and compressed messages held to 1000 bytes", flush=True)
    finally:
        stop(proc)
    # deflate disabled on the server: offers are declined, frames plain
    proc, port = start("--off")
    try:
        async with websockets.connect("ws://127.0.0.1:%d/echo" % port) as ws:
            check(ws.response_headers.get("Sec-WebSocket-Extensions") is None, "off: negotiated")
            await ws.send("hi")
            check(await ws.recv() == "hi", "off: echo")
        print("ok   off             offer declined", flush=True)
    finally:
        stop(proc)
    if failures:
        print("deflate interop (python): %d FAILED" % len(failures))
        sys.exit(1)
    print("deflate interop (python): all passed (%d negotiations)" % total)


asyncio.run(asyncio.wait_for(main(), 280))
