#!/usr/bin/python3
"""Interop test: the weft client (through `weft connect`) against a Python `websockets`
server (Debian's python3-websockets 10.x) started by this script on 127.0.0.1.

usage: /usr/bin/python3 client_py_server.py PATH/TO/weft

Scenarios (one line each; exit 1 if any failed):
  echo       lines piped in come back in order; exit 0; the server saw close code 1000
  fragmented the server answers with a message in 3 fragments: printed whole
  1mib       a 1 MiB line is echoed intact
  ping       the server pings the client: the pong arrives (then "pong ok" is printed)
  close      the server closes with 4001 "custom": weft connect reports 4001 and exits 1
  linger     replies sent 0.3 s after each line, stdin closed at once: both replies arrive
             (websockets stops sending once it has our Close; --linger keeps the client
             reading until the server has been quiet), exit 0, close 1000; with --linger 0
             they are lost (the old behaviour, kept on request)
  negotiated with --deflate and --subprotocol: the one stderr line names what websockets
             agreed to (subprotocol chat.v1, permessage-deflate with websockets' default
             window of 12 bits both ways)
wss:// (a Python websockets server with an ssl context; certificates made at test time in a
temporary directory by tests/integration/tls_certs.sh, the openssl command):
  wss echo       `--cacert ca.pem wss://localhost:P/echo`: lines echoed, exit 0, close 1000,
                 the server saw one TLS connection with SNI "localhost"
  wss 1mib/ip    `wss://127.0.0.1:P/echo` (the certificate's IP name): a 1 MiB line and a
                 fragmented answer intact; no SNI for an IP address (RFC 6066)
  wss hostname   the same server reached as 127.0.0.2 (not in the certificate), and a server
                 whose certificate names only wrong.example: exit 1, stderr is exactly the
                 one line "weft connect: TLS certificate verify failed: hostname mismatch"
                 (plus " (IP address mismatch)" for the address), and the server never saw
                 a WebSocket connection
  wss unknown CA the same server without --cacert (system store), and a self-signed server
                 with --cacert ca.pem: exit 1, one-line verify failure naming the reason
  wss insecure   --insecure accepts the self-signed server: echo works
Every `weft connect` started is bounded in time and killed by its PID if it overstays.
"""
import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile

import websockets

STEP = 20  # seconds per weft connect run
HERE = os.path.dirname(os.path.abspath(__file__))
weft = sys.argv[1] if len(sys.argv) > 1 else sys.exit("usage: client_py_server.py PATH/TO/weft")
closes = []  # close codes the server received, in order
tls_conns = []  # per WebSocket connection: (the server's local address, TLS version or None)
snis = []  # server names sent by TLS clients (None when no SNI), in handshake order


async def handler(ws, path):
    ssl_object = ws.transport.get_extra_info("ssl_object")
    tls_conns.append((ws.local_address[0], ssl_object.version() if ssl_object else None))
    try:
        if path == "/echo":
            async for m in ws:
                await ws.send(m)
        elif path == "/frag":
            async for m in ws:
                await ws.send([m[:3], m[3:6], m[6:]])
        elif path == "/ping":
            waiter = await ws.ping(b"hi")
            await asyncio.wait_for(waiter, 5)
            await ws.send("pong ok")
            async for m in ws:
                pass
        elif path == "/late":
            async for m in ws:
                await asyncio.sleep(0.3)
                await ws.send("late " + m)
        elif path == "/close4001":
            await ws.close(4001, "custom")
    except websockets.ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        closes.append(ws.close_code)


async def run(url, data, extra=(), hold=None, until=None, quiet=True):
    """Runs weft connect URL with data on stdin. hold: keep stdin open until `until` appears
    on stdout. Returns (status, stdout, stderr)."""
    p = await asyncio.create_subprocess_exec(
        weft, "connect", *(("--quiet",) if quiet else ()), *extra, url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async def drive():
            out = b""
            if data:
                p.stdin.write(data)
                await p.stdin.drain()
            if until is not None:
                while until not in out:
                    chunk = await p.stdout.read(65536)
                    if not chunk:
                        break
                    out += chunk
            p.stdin.close()
            rest, err = await asyncio.gather(p.stdout.read(), p.stderr.read())
            await p.wait()
            return p.returncode, out + rest, err
        return await asyncio.wait_for(drive(), STEP)
    finally:
        if p.returncode is None:
            p.kill()
            await p.wait()


async def main():
    server = await websockets.serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None,
                                    subprotocols=["chat.v1"])
    port = server.sockets[0].getsockname()[1]
    base = f"ws://127.0.0.1:{port}"
    failed = 0

    def check(name, cond, detail=""):
        nonlocal failed
        print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail))
        failed += 0 if cond else 1

    # stdin stays open until the echoes are in: websockets stops sending once it has read our
    # close, even for messages it read before it (an async handler lags behind its reader).
    st, out, err = await run(base + "/echo", b"alpha\nbeta\n", until=b"beta\n")
    await asyncio.sleep(0.1)
    check("echo", st == 0 and out == b"alpha\nbeta\n" and closes[-1:] == [1000],
          f"status {st} out {out!r} err {err!r} closes {closes}")

    st, out, err = await run(base + "/frag", b"abcdefghij\n", until=b"\n")
    check("fragmented", st == 0 and out == b"abcdefghij\n", f"status {st} out {out!r} err {err!r}")

    big = b"x" * (1 << 20)
    st, out, err = await run(base + "/echo", big + b"\n", until=b"\n")
    check("1mib", st == 0 and out == big + b"\n", f"status {st} len {len(out)} err {err!r}")

    st, out, err = await run(base + "/ping", b"", until=b"pong ok")
    check("ping", st == 0 and out == b"pong ok\n", f"status {st} out {out!r} err {err!r}")

    st, out, err = await run(base + "/close4001", b"", until=b"never")
    check("close", st == 1 and b"4001" in err and b"custom" in err,
          f"status {st} err {err!r}")

    closes.clear()
    st, out, err = await run(base + "/late", b"one\ntwo\n")
    await asyncio.sleep(0.1)
    check("linger", st == 0 and out == b"late one\nlate two\n" and closes[-1:] == [1000],
          f"status {st} out {out!r} err {err!r} closes {closes}")
    st, out, err = await run(base + "/late", b"one\ntwo\n", extra=("--linger", "0"))
    check("linger 0", out == b"", f"status {st} out {out!r} err {err!r}")

    st, out, err = await run(base + "/echo", b"hi\n", quiet=False,
                             extra=("--deflate", "--subprotocol", "chat.v1"))
    want = (f"weft connect: connected to {base}/echo (subprotocol: chat.v1, extensions: "
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12)\n")
    check("negotiated", st == 0 and out == b"hi\n" and err.decode().startswith(want),
          f"status {st} out {out!r} err {err!r}")

    server.close()
    await server.wait_closed()
    await tls_scenarios(check)
    return 1 if failed else 0


def server_ctx(certs, name):
    """A TLS server context presenting certs/NAME.pem; records the SNI of each handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, name + ".pem"), os.path.join(certs, name + ".key"))
    ctx.sni_callback = lambda sslobj, sni, c: snis.append(sni)
    return ctx


async def tls_scenarios(check):
    """The wss:// scenarios (see the module comment). Returns nothing; reports via check."""
    certs = tempfile.mkdtemp(prefix="weft-client-tls-")
    started = []
    try:
        subprocess.run(["sh", os.path.join(HERE, "..", "integration", "tls_certs.sh"), certs],
                       check=True, timeout=60)
        ca = os.path.join(certs, "ca.pem")
        good = server_ctx(certs, "server")

        async def serve(ctx, host="127.0.0.1"):
            srv = await websockets.serve(handler, host, 0, ssl=ctx, max_size=None,
                                         ping_interval=None)
            started.append(srv)
            return srv.sockets[0].getsockname()[1]

        port = await serve(good)
        port2 = await serve(good, "127.0.0.2")  # the same server context, a name not in the cert
        wrong_port = await serve(server_ctx(certs, "wronghost"))
        self_port = await serve(server_ctx(certs, "selfsigned"))

        def fresh():
            closes.clear()
            tls_conns.clear()
            snis.clear()

        fresh()
        st, out, err = await run(f"wss://localhost:{port}/echo", b"alpha\nbeta\n",
                                 extra=("--cacert", ca), until=b"beta\n")
        await asyncio.sleep(0.1)
        check("wss echo", st == 0 and out == b"alpha\nbeta\n" and closes == [1000]
              and len(tls_conns) == 1 and tls_conns[0][1] in ("TLSv1.2", "TLSv1.3")
              and snis == ["localhost"],
              f"status {st} out {out!r} err {err!r} closes {closes} conns {tls_conns} sni {snis}")

        fresh()
        big = os.urandom(1 << 19).hex().encode()  # 1 MiB of text, no newline inside
        st, out, err = await run(f"wss://127.0.0.1:{port}/echo", big + b"\n",
                                 extra=("--cacert", ca), until=b"\n")
        check("wss 1mib by IP address", st == 0 and out == big + b"\n" and len(tls_conns) == 1
              and tls_conns[0][1] is not None and snis == [None],
              f"status {st} len {len(out)} err {err!r} conns {tls_conns} sni {snis}")

        st, out, err = await run(f"wss://localhost:{port}/frag", b"abcdefghij\n",
                                 extra=("--cacert", ca), until=b"\n")
        check("wss fragmented", st == 0 and out == b"abcdefghij\n",
              f"status {st} out {out!r} err {err!r}")

        mismatch = b"weft connect: TLS certificate verify failed: hostname mismatch"
        for name, url, detail in (("wss hostname: same server as 127.0.0.2",
                                   f"wss://127.0.0.2:{port2}/echo", b" (IP address mismatch)"),
                                  ("wss hostname: certificate for wrong.example",
                                   f"wss://localhost:{wrong_port}/echo", b"")):
            fresh()
            st, out, err = await run(url, b"never sent\n", extra=("--cacert", ca))
            check(name, st == 1 and err == mismatch + detail + b"\n" and out == b""
                  and tls_conns == [],
                  f"status {st} out {out!r} err {err!r} conns {tls_conns}")

        verify = b"weft connect: TLS certificate verify failed: "
        for name, url, extra, why in (
                ("wss unknown CA: same server, system store",
                 f"wss://localhost:{port}/echo", (), b"unknown CA"),
                ("wss unknown CA: self-signed server, --cacert",
                 f"wss://localhost:{self_port}/echo", ("--cacert", ca), b"self-signed")):
            fresh()
            st, out, err = await run(url, b"never sent\n", extra=extra)
            check(name, st == 1 and err.startswith(verify) and why in err
                  and err.count(b"\n") == 1 and err.endswith(b"\n") and tls_conns == [],
                  f"status {st} out {out!r} err {err!r} conns {tls_conns}")

        fresh()
        st, out, err = await run(f"wss://localhost:{self_port}/echo", b"gamma\n",
                                 extra=("--insecure",), until=b"gamma\n")
        check("wss insecure: self-signed accepted", st == 0 and out == b"gamma\n"
              and len(tls_conns) == 1 and tls_conns[0][1] is not None,
              f"status {st} out {out!r} err {err!r} conns {tls_conns}")
    finally:
        for srv in started:
            srv.close()
            await srv.wait_closed()
        shutil.rmtree(certs, ignore_errors=True)


sys.exit(asyncio.run(asyncio.wait_for(main(), 110)))
