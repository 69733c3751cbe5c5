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
Every `weft connect` started is bounded in time and killed by its PID if it overstays.
"""
import asyncio
import sys

import websockets

STEP = 20  # seconds per weft connect run
weft = sys.argv[1] if len(sys.argv) > 1 else sys.exit("usage: client_py_server.py PATH/TO/weft")
closes = []  # close codes the server received, in order


async def handler(ws, path):
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
        elif path == "/close4001":
            await ws.close(4001, "custom")
    except websockets.ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        closes.append(ws.close_code)


async def run(url, data, extra=(), hold=None, until=None):
    """Runs weft connect URL with data on stdin. hold: keep stdin open until `until` appears
    on stdout. Returns (status, stdout, stderr)."""
    p = await asyncio.create_subprocess_exec(
        weft, "connect", "--quiet", *extra, url, stdin=asyncio.subprocess.PIPE,
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
    server = await websockets.serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None)
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

    server.close()
    await server.wait_closed()
    return 1 if failed else 0


sys.exit(asyncio.run(asyncio.wait_for(main(), 100)))
