#!/usr/bin/python3
"""Runs one program of examples/ and talks to it over WebSocket (Python websockets).

usage: examples_test.py NAME BINDIR     (NAME: echo_server, chat_rooms, reconnecting_client,
                                          embed_poll, group_workers)
Every server listens on 127.0.0.1; the test stops exactly the processes it started.
Exits 0 when every check passed, 1 with the failed check otherwise.
"""
import asyncio
import os
import signal
import socket
import sys

import websockets

DEADLINE = 30  # seconds for any single wait


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


async def start(path, *args, stdin=None):
    """Starts a program; returns (process, port) once it printed 'listening on ...:PORT'."""
    proc = await asyncio.create_subprocess_exec(path, *args, stdin=stdin,
                                                stdout=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
    text = line.decode().strip()
    check(text.startswith("listening on 127.0.0.1:"), f"{path}: first line {text!r}")
    port = int(text.split(":")[1].split()[0])
    return proc, port


async def stop(proc, expect=0):
    """Sends SIGTERM to a process we started (still running: it waits for a signal) and checks
    its exit status."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), DEADLINE)
    check(code == expect, f"exit status {code}, expected {expect}")


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), DEADLINE)


async def echo_server(bindir):
    proc, port = await start(f"{bindir}/echo_server")
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as ws:
            await ws.send("héllo")
            check(await recv(ws) == "héllo", "text echoed as text")
            await ws.send(b"\x00\x01\xff")
            check(await recv(ws) == b"\x00\x01\xff", "binary echoed as binary")
            big = "x" * (1 << 20)
            await ws.send(big)
            check(await recv(ws) == big, "1 MiB echoed")
            # SIGTERM: the server closes us with 1001 and exits 0.
            proc.send_signal(signal.SIGTERM)
            try:
                await recv(ws)
                raise Failed("a message after SIGTERM")
            except websockets.ConnectionClosed as e:
                check(e.rcvd is not None and e.rcvd.code == 1001, f"close {e.rcvd}")
        # Only wait: signalling again could race with the exit (Popen.send_signal reaps a
        # process that has just exited, and asyncio's watcher then reports status 255).
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
        check(code == 0, f"exit status {code} after SIGTERM")
    finally:
        if proc.returncode is None:
            proc.kill()


async def chat_rooms(bindir):
    proc, port = await start(f"{bindir}/chat_rooms")
    url = f"ws://127.0.0.1:{port}/chat/"
    try:
        try:
            await websockets.connect(url)
            raise Failed("/chat/ without a room was accepted")
        except websockets.InvalidStatusCode as e:
            check(e.status_code == 404, f"/chat/ answered {e.status_code}, expected 404")
        a = await websockets.connect(url + "r1")
        b = await websockets.connect(url + "r1")
        c = await websockets.connect(url + "r2")
        d = await websockets.connect(url + "r2")
        await a.send("hi from a")
        check(await recv(b) == "hi from a", "b (same room) gets a's message")
        await d.send("x from d")
        check(await recv(c) == "x from d", "c gets d's message, and not r1's")
        await b.send(b"bin from b")
        check(await recv(a) == b"bin from b", "a gets b's binary, and not its own message")
        for ws in (a, b, c, d):
            await ws.close()
        await stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def reconnecting_client(bindir):
    port = free_port()
    count = 300
    client = await asyncio.create_subprocess_exec(
        f"{bindir}/reconnecting_client", f"ws://127.0.0.1:{port}/echo", str(count), "16384",
        stdout=asyncio.subprocess.PIPE)
    server = None
    try:
        # Nobody listens yet: the client must fail and schedule a reconnection.
        while True:
            line = (await asyncio.wait_for(client.stdout.readline(), DEADLINE)).decode()
            check(line, "the client ended before reconnecting")
            if line.startswith("reconnecting in"):
                break
        server, _ = await start(f"{bindir}/echo_server", str(port))
        out = (await asyncio.wait_for(client.stdout.read(), DEADLINE * 2)).decode()
        code = await asyncio.wait_for(client.wait(), DEADLINE)
        sys.stdout.write(out)
        check(code == 0, f"client exit status {code}")
        check(f"{count} of {count} messages echoed" in out, "every message echoed")
        check("open (after " in out, "the client reports its connection")
        await stop(server)
    finally:
        for p in (client, server):
            if p is not None and p.returncode is None:
                p.kill()


async def embed_poll(bindir):
    proc, port = await start(f"{bindir}/embed_poll", stdin=asyncio.subprocess.PIPE)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/feed") as ws:
            await ws.send("ping")
            check(await recv(ws) == "ping", "echo through the embedded loop")
            proc.stdin.write(b"news 1\nnews 2\n")
            await proc.stdin.drain()
            check(await recv(ws) == "news 1", "a stdin line published to the client")
            check(await recv(ws) == "news 2", "the next line, in order")
            proc.stdin.write(b"quit\n")
            await proc.stdin.drain()
            code = await asyncio.wait_for(proc.wait(), DEADLINE)
            check(code == 0, f"exit status {code} after quit")
    finally:
        if proc.returncode is None:
            proc.kill()


async def group_workers(bindir):
    proc, port = await start(f"{bindir}/group_workers", "0", "2")
    conns = {}  # worker id -> [connections]
    try:
        for _ in range(32):
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/room")
            hello = await recv(ws)
            check(hello.startswith("worker "), f"first message {hello!r}")
            conns.setdefault(int(hello.split()[1]), []).append(ws)
            if len(conns) == 2 and min(len(v) for v in conns.values()) >= 2:
                break
        check(len(conns) == 2, f"32 connections all landed on worker(s) {list(conns)}")
        every = [ws for v in conns.values() for ws in v]
        for wid in sorted(conns):
            sender = conns[wid][0]
            text = f"from a member on worker {wid}"
            await sender.send(text)
            for ws in every:
                if ws is not sender:
                    got = await recv(ws)
                    check(got == text, f"got {got!r}, expected {text!r}")
        for ws in every:
            await ws.close()
        await stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()


def main():
    name, bindir = sys.argv[1], sys.argv[2]
    tests = {f.__name__: f for f in (echo_server, chat_rooms, reconnecting_client, embed_poll,
                                     group_workers)}
    try:
        asyncio.run(asyncio.wait_for(tests[name](bindir), DEADLINE * 4))
    except (Failed, asyncio.TimeoutError, OSError, websockets.WebSocketException) as e:
        print(f"example {name}: FAILED: {type(e).__name__}: {e}")
        return 1
    print(f"example {name}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
