#!/usr/bin/python3
"""py_server.py — Python `websockets` peer for `make bench` (Debian's python3-websockets),
the same routes as `weft serve`:

  /echo         echoes every message with its type (text/binary)
  /ws/<room>    each message goes to every other member of <room> (/ws alone: "lobby")

usage: /usr/bin/python3 bench/peers/py_server.py [--cert FILE --key FILE] [--deflate] [PORT]
  (PORT 0 or none = any free port)
  --cert, --key  serve wss:// (websockets.serve(ssl=...) with an ssl.SSLContext holding them)
  --deflate      compression="deflate", websockets' default: its permessage-deflate with the
                 library's own settings (server window 12 bits, memLevel 5, context takeover)
Listens on 127.0.0.1, 16 MiB messages; without the options plain ws:// and no compression.
Prints "python websockets VERSION: listening on 127.0.0.1:PORT" to stderr once ready; SIGTERM
stops it (default action).
"""
import argparse
import asyncio
import ssl
import sys

import websockets

ROOMS = {}  # name -> set of connections


async def handler(ws, path=None):
    """Serves one connection: echo, or membership of a room until it closes."""
    if path is None:  # websockets >= 10.1 also passes the path as ws.path
        path = ws.path
    path = path.split("?", 1)[0]
    if path == "/echo":
        async for msg in ws:
            await ws.send(msg)
        return
    if path == "/ws":
        name = "lobby"
    elif path.startswith("/ws/") and len(path) > 4:
        name = path[4:]
    else:
        await ws.close(1008, "unknown path")
        return
    room = ROOMS.setdefault(name, set())
    room.add(ws)
    try:
        async for msg in ws:
            websockets.broadcast([o for o in room if o is not ws], msg)
    finally:
        room.discard(ws)
        if not room:
            ROOMS.pop(name, None)


async def main():
    """Parses the options, listens and prints the port, then serves forever."""
    ap = argparse.ArgumentParser(prog="py_server.py")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--deflate", action="store_true")
    ap.add_argument("port", nargs="?", type=int, default=0)
    args = ap.parse_args()
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")
    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
    async with websockets.serve(handler, "127.0.0.1", args.port, ssl=tls,
                                compression="deflate" if args.deflate else None,
                                max_size=16 * 1024 * 1024, max_queue=None,
                                ping_interval=None) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"python websockets {websockets.__version__}: listening on 127.0.0.1:{bound}",
              file=sys.stderr, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
