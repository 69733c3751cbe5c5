#!/usr/bin/python3
"""permessage-deflate interop: Python websockets (and raw sockets for the wire-level checks)
against a libweft server (tests/interop/deflate_server.c).

usage: deflate_py.py PATH/TO/deflate_server

Every client offer (server/client_no_context_takeover, server/client_max_window_bits) is
negotiated against several server configurations; payloads that compress well and badly from
0 bytes to 16 MiB are echoed and broadcast. Wire-level checks with a raw socket: RSV1 and a
real size reduction on server frames, inflation of client frames, a zip bomb closed with 1009,
a corrupt stream closed with 1007, RSV1 without negotiation closed with 1002, and a client that
offers nothing gets plain frames.
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


def send_frame(s, opcode, payload, rsv1=False):
    b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
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


def raw_checks(port):
    compressible = b"abcdefgh" * 4096  # 32 KiB
    # 1. server frames carry RSV1 and are smaller; they inflate back to the message
    s, head, buf = raw_connect(port, "permessage-deflate; client_max_window_bits")
    check("Sec-WebSocket-Extensions: permessage-deflate" in head, "raw: no extension in 101")
    send_frame(s, 2, compressible)
    b0, payload = read_frame(s, buf)
    check(b0 == 0xC2, "raw: server frame header %#x, expected FIN+RSV1+binary" % b0)
    check(len(payload) < len(compressible) // 10, "raw: %d bytes is not compressed" % len(payload))
    dec = zlib.decompressobj(-15)  # one per connection: the server may keep its context
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
    s, head, buf = raw_connect(port, "permessage-deflate")
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = [co.compress(chunk) for _ in range(1024)]
    z = b"".join(parts) + co.flush(zlib.Z_SYNC_FLUSH)
    t0 = time.time()
    send_frame(s, 2, z[:-4], rsv1=True)
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
