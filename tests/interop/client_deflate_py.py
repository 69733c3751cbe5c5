#!/usr/bin/python3
"""Interop test: the weft client's permessage-deflate (tests/interop/deflate_client, a libweft
client) against Python `websockets` 10.x servers started here on 127.0.0.1.

usage: /usr/bin/python3 client_deflate_py.py PATH/TO/deflate_client

Client offers: the full product of the parameters the client can put in its offer --
client_no_context_takeover (--nct) x server_no_context_takeover (--peer-nct) x
client_max_window_bits (--bits: bare parameter, 9, 12) x server_max_window_bits (--peer-bits:
absent, 9, 12) = 36 offers; the settings that only shape what the client sends (--mem,
--level, --threshold) rotate over the offers. Every offer runs against every server factory.
(server_max_window_bits=8 is left to the Node test: Python's zlib refuses wbits=-8 for raw
deflate, so websockets answers 500, or fails its first send under no_context_takeover.)
Asserts, per (server factory x client offer) pair:
  - the client's echo check passes (compressible text and random binary, 0 B .. 64 KiB; up to
    1 MiB for one offer per server and 16 MiB for three pairs), i.e. what the server inflated
    is what we compressed and back;
  - the server negotiated permessage-deflate (or, for compression=None, did not) and the
    agreed parameters honour the client's offer (server_no_context_takeover when the client
    asked for it, client_no_context_takeover when the client offered it, the server's window
    no larger than the client asked for, the client's window no larger than it offered);
  - a room (4 clients, every message broadcast to all) delivers everything intact.
And against a raw server answering the upgrade with invalid or unoffered deflate parameters:
the client reports WEFT_ERR_PROTO and no connection opens.
Over wss:// (a websockets server with an ssl context, certificates made at test time by
tests/integration/tls_certs.sh): echo up to 1 MiB with deflate negotiated, trusting the test CA
(--cacert); without it the client fails with a certificate verification error, unconnected.
One line per check; exit 1 if any failed. Every client run is bounded in time.
"""
import asyncio
import base64
import hashlib
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

STEP = 120
client = sys.argv[1] if len(sys.argv) > 1 else sys.exit("usage: client_deflate_py.py CLIENT")
seen = []  # per connection: negotiated permessage-deflate object or None
room = set()
SERVERS_DONE = []  # servers whose offers have run (picks the 1 MiB offer of the next one)

SERVERS = {
    "default": dict(compression="deflate"),
    "nct-both": dict(extensions=[ServerPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True)]),
    "win9": dict(extensions=[ServerPerMessageDeflateFactory(
        server_max_window_bits=9, client_max_window_bits=9)]),
    "win10-11-cnct": dict(extensions=[ServerPerMessageDeflateFactory(
        server_max_window_bits=10, client_max_window_bits=11, client_no_context_takeover=True,
        compress_settings={"memLevel": 1})]),
    "require-cmwb": dict(extensions=[ServerPerMessageDeflateFactory(
        client_max_window_bits=8, require_client_max_window_bits=True)]),
    "off": dict(compression=None),
}


def client_offers():
    """(name, flags) for the product of every offer parameter; local settings rotate."""
    local = [[], ["--mem", "1"], ["--threshold", "100", "--level", "1"],
             ["--mem", "9", "--level", "9"], ["--threshold", "0", "--mem", "2"]]
    out = []
    for nct in (False, True):
        for pnct in (False, True):
            for bits in (None, 9, 12):
                for pbits in (None, 9, 12):
                    flags = (["--nct"] if nct else []) + (["--peer-nct"] if pnct else [])
                    flags += ["--bits", str(bits)] if bits else []
                    flags += ["--peer-bits", str(pbits)] if pbits else []
                    extra = local[len(out) % len(local)]
                    name = (" ".join(flags) or "(defaults)") + (" + " if extra else "")
                    out.append((name + " ".join(extra), flags + extra))
    return out


CLIENTS = client_offers()
# (server, offer without the local settings) pairs that echo up to 16 MiB
BIG = {("default", "(defaults)"), ("nct-both", "--nct --peer-nct"),
       ("win9", "--bits 9 --peer-bits 9")}
assert all(any(c.split(" + ")[0] == b for c, _ in CLIENTS) for _, b in BIG)


def flag(flags, name):
    """The integer value of option name in flags, or None."""
    return int(flags[flags.index(name) + 1]) if name in flags else None


async def handler(ws, path):
    ext = [e for e in ws.extensions if e.name == "permessage-deflate"]
    seen.append(ext[0] if ext else None)
    try:
        if path.startswith("/room"):
            room.add(ws)
            async for m in ws:
                for peer in list(room):
                    await peer.send(m)
        else:
            async for m in ws:
                await ws.send(m)
    except websockets.ConnectionClosed:
        pass
    finally:
        room.discard(ws)


async def run(args):
    p = await asyncio.create_subprocess_exec(client, *args, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(p.communicate(), STEP)
        return p.returncode, (out + err).decode(errors="replace").strip()
    finally:
        if p.returncode is None:
            p.kill()
            await p.wait()


def param_problems(name, flags, e):
    """What the server agreed that contradicts the client's offer (empty when fine)."""
    if e is None:
        return [] if name == "off" else ["deflate not negotiated"]
    if name == "off":
        return ["deflate negotiated by a server with compression=None"]
    bad = []
    if "--peer-nct" in flags and not e.local_no_context_takeover:
        bad.append("server_no_context_takeover asked for but not agreed")
    if "--nct" in flags and not e.remote_no_context_takeover:
        bad.append("client_no_context_takeover offered but not agreed")
    want = flag(flags, "--peer-bits")
    if want and e.local_max_window_bits > want:
        bad.append(f"server window {e.local_max_window_bits} > {want}")
    ours = flag(flags, "--bits")
    if ours and e.remote_max_window_bits > ours:
        bad.append(f"client window {e.remote_max_window_bits} > {ours}")
    return bad


async def bad_answer_server(answer):
    """A raw server: reads the upgrade request, answers 101 with `answer` as
    Sec-WebSocket-Extensions, then waits for the client to go."""
    async def serve(r, w):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await r.read(4096)
            if not chunk:
                w.close()
                return
            head += chunk
        key = ""
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("sec-websocket-key:"):
                key = line.split(":", 1)[1].strip()
        acc = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        w.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\n"
                 "Sec-WebSocket-Extensions: " + answer + "\r\n\r\n").encode())
        await w.drain()
        try:
            await r.read()
        except ConnectionError:
            pass
        w.close()
    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def main():
    failed = 0

    def check(name, cond, detail="", quiet_ok=False):
        nonlocal failed
        if not (cond and quiet_ok):
            print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail),
                  flush=True)
        failed += 0 if cond else 1

    for sname, kw in SERVERS.items():
        server = await websockets.serve(handler, "127.0.0.1", 0, max_size=None,
                                        ping_interval=None, **kw)
        port = server.sockets[0].getsockname()[1]
        t0, bad_pairs = time.monotonic(), 0
        for i, (cname, flags) in enumerate(CLIENTS):
            seen.clear()
            # big runs compress with memLevel 8 (the last --mem wins): zlib with memLevel 1
            # takes ~10 s for 16 MiB of random data
            big = ["--max", str(16 << 20), "--mem", "8"] \
                if (sname, cname.split(" + ")[0]) in BIG else \
                ["--max", str(1 << 20), "--mem", "8"] \
                if i == (7 * len(SERVERS_DONE)) % len(CLIENTS) else []
            name = f"{sname} x {cname}{' (' + ' '.join(big) + ')' if big else ''}"
            st, text = await run([f"ws://127.0.0.1:{port}/echo", *flags, *big])
            probs = param_problems(sname, flags, seen[0] if seen else None)
            ok = st == 0 and not probs and len(seen) == 1
            check(name, ok, f"status {st}: {text} {probs}", quiet_ok=not big)
            bad_pairs += 0 if ok else 1
        check(f"{sname}: {len(CLIENTS)} client offers ({time.monotonic() - t0:.1f}s)",
              bad_pairs == 0, f"{bad_pairs} failed")
        SERVERS_DONE.append(sname)
        seen.clear()
        st, text = await run([f"ws://127.0.0.1:{port}/room", "--room", "4"])
        check(f"{sname} room x4", st == 0 and len(seen) == 4, f"status {st}: {text}")
        server.close()
        await server.wait_closed()

    # Invalid or unoffered answers: the handshake must fail cleanly with WEFT_ERR_PROTO.
    bad = [
        ("window 16", "permessage-deflate; server_max_window_bits=16", []),
        ("window 7", "permessage-deflate; client_max_window_bits=7", []),
        ("unknown parameter", "permessage-deflate; foo=1", []),
        ("duplicate parameter",
         "permessage-deflate; server_no_context_takeover; server_no_context_takeover", []),
        ("bare server_max_window_bits", "permessage-deflate; server_max_window_bits", []),
        ("two answers", "permessage-deflate, permessage-deflate", []),
        ("unoffered extension", "x-webkit-deflate-frame", []),
        ("window above the offer", "permessage-deflate; server_max_window_bits=12",
         ["--peer-bits", "10"]),
        ("server_no_context_takeover refused", "permessage-deflate", ["--peer-nct"]),
        ("deflate when not offered", "permessage-deflate", ["--off"]),
    ]
    for name, answer, flags in bad:
        srv = await bad_answer_server(answer)
        port = srv.sockets[0].getsockname()[1]
        st, text = await run([f"ws://127.0.0.1:{port}/", "--expect-fail", *flags])
        check(f"bad answer: {name}", st == 0, f"status {st}: {text}")
        srv.close()
        await srv.wait_closed()

    # wss:// with deflate: the compressed frames travel inside TLS records.
    certs = tempfile.mkdtemp(prefix="weft-client-deflate-tls-")
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(["sh", os.path.join(here, "..", "integration", "tls_certs.sh"), certs],
                       check=True, timeout=60)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"))
        server = await websockets.serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=None,
                                        ping_interval=None, compression="deflate")
        port = server.sockets[0].getsockname()[1]
        for flags in ([], ["--nct", "--peer-nct", "--bits", "9", "--peer-bits", "12"]):
            seen.clear()
            st, text = await run([f"wss://localhost:{port}/echo", "--cacert",
                                  os.path.join(certs, "ca.pem"), "--max", str(1 << 20), *flags])
            probs = param_problems("default", flags, seen[0] if seen else None)
            check(f"wss echo {' '.join(flags) or '(defaults)'} --max 1048576",
                  st == 0 and not probs and len(seen) == 1, f"status {st}: {text} {probs}")
        seen.clear()
        st, text = await run([f"wss://localhost:{port}/echo"])
        check("wss without the test CA: verify failure",
              st == 1 and "TLS certificate verify failed" in text and not seen,
              f"status {st}: {text} seen {seen}")
        server.close()
        await server.wait_closed()
    finally:
        shutil.rmtree(certs, ignore_errors=True)
    return 1 if failed else 0


sys.exit(asyncio.run(asyncio.wait_for(main(), 280)))
