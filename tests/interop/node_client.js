#!/usr/bin/env node
// Interop test: Node `ws` (pinned in package-lock.json, with bufferutil) as a client of
// `weft serve`.
//
// usage: node node_client.js PATH/TO/weft
//
// Starts `weft serve --host 127.0.0.1 --port 0` (and a second one with --max-message 1000),
// learns each port from the "listening on 127.0.0.1:PORT" line on its stderr, runs the
// scenarios below, prints one line per scenario and exits 1 if any failed. Only the servers
// this script started are signalled (by PID): SIGTERM, then SIGKILL after 5 s.
'use strict';

const { spawn } = require('child_process');
const readline = require('readline');

let WebSocket;
try {
  WebSocket = require('ws');
  require('bufferutil');
} catch (e) {
  console.log(`FAIL setup: ${e.message.split('\n')[0]} (run scripts/setup, which runs ` +
              '`npm ci` in tests/interop)');
  process.exit(1);
}

const HARD_TIMEOUT = 100000; // ms for the whole script (CTest allows 120 s)
const STEP_TIMEOUT = 15000;  // ms for any single receive, handshake or close
const QUIET = 300;           // ms of silence that mean "nothing more is coming"
const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];

const servers = [];

class Failure extends Error {}

// ------------------------------------------------------------------------------ the server

class Server {
  constructor(weft, extra) {
    // A shutdown deadline well under the 5 s after which stop() kills the process.
    this.argv = ['serve', '--host', '127.0.0.1', '--port', '0', '--shutdown-timeout', '3', ...extra];
    this.lines = [];
    this.port = null;
    this.status = undefined; // exit code, or 'signal NAME'
    this.proc = spawn(weft, this.argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    servers.push(this);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, sig) => {
        this.status = code !== null ? code : `signal ${sig}`;
        resolve(this.status);
      });
      this.proc.on('error', (err) => {
        this.lines.push(`spawn failed: ${err.message}`);
        this.status = `spawn error ${err.code}`;
        resolve(this.status);
      });
    });
    // Keeps draining stderr for the whole run so the server never blocks on the pipe.
    const rl = readline.createInterface({ input: this.proc.stderr });
    this.ready = new Promise((resolve) => {
      rl.on('line', (line) => {
        this.lines.push(line);
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m && this.port === null) {
          this.port = Number(m[1]);
          resolve();
        }
      });
      rl.on('close', resolve);
      this.exited.then(resolve);
    });
  }

  async start() {
    await withTimeout(this.ready, STEP_TIMEOUT, 'server start');
    if (this.port === null) {
      await this.stop();
      throw new Failure(`server ${this.argv.join(' ')} did not print ` +
                        `'listening on 127.0.0.1:PORT'; stderr:\n${this.log()}`);
    }
    return this;
  }

  url(path) {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  log(last = 40) {
    return this.lines.slice(-last).map((l) => `    | ${l}`).join('\n');
  }

  // SIGTERM this PID, wait; SIGKILL after 5 s. Resolves to the exit status.
  async stop() {
    if (this.status === undefined) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => {
        if (this.status === undefined) this.proc.kill('SIGKILL');
      }, 5000);
      await this.exited;
      clearTimeout(t);
    }
    return this.status;
  }
}

// ------------------------------------------------------------------------------ helpers

function withTimeout(promise, ms, what) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Failure(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timer]).finally(() => clearTimeout(t));
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// A deterministic pseudo-random generator (xorshift32), so failures are reproducible.
function rng(seed) {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

function bytesOfSize(n, seed) {
  const r = rng(seed + 1);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = r() & 0xff;
  return b;
}

// A string whose UTF-8 encoding is exactly n bytes, mixing 1- to 4-byte characters.
function textOfSize(n, seed) {
  const r = rng(seed + 101);
  const alphabet = ['a', 'Z', ' ', 'é', 'ß', '€', '中', '😀', '\u07ff', '\uffff'];
  let s = '';
  let size = 0;
  while (size < n) {
    let ch = alphabet[r() % alphabet.length];
    let b = Buffer.byteLength(ch);
    if (size + b > n) { ch = 'x'; b = 1; }
    s += ch;
    size += b;
  }
  return s;
}

function describe(m) {
  return `${m.binary ? 'binary' : 'text'}(${m.data.length} bytes, starts ` +
         `${JSON.stringify(m.data.subarray(0, 24).toString('latin1'))})`;
}

// Checks a received message against what was sent (Buffer or string).
function same(got, want, what) {
  const wantBinary = typeof want !== 'string';
  const w = wantBinary ? want : Buffer.from(want);
  if (got.binary !== wantBinary) {
    throw new Failure(`${what}: got ${describe(got)}, sent ${describe({ binary: wantBinary, data: w })}`);
  }
  if (!got.data.equals(w)) {
    let i = 0;
    while (i < got.data.length && i < w.length && got.data[i] === w[i]) i++;
    throw new Failure(`${what}: echo differs: got ${got.data.length} bytes, sent ${w.length}, ` +
                      `first difference at byte ${i}`);
  }
}

// A client connection with a queue of received messages.
class Client {
  static async open(url, opts = {}) {
    const c = new Client(url, opts);
    await withTimeout(c.opened, STEP_TIMEOUT, `connect ${url}`);
    return c;
  }

  constructor(url, opts) {
    this.url = url;
    this.queue = [];
    this.waiters = [];
    this.closeInfo = null;
    this.ws = new WebSocket(url, { maxPayload: 4 << 20, handshakeTimeout: STEP_TIMEOUT, ...opts });
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', resolve);
      this.ws.on('unexpected-response', (req, res) => {
        reject(new Failure(`connect ${url}: HTTP ${res.statusCode}`));
        res.resume();
        req.destroy();
      });
      this.ws.on('error', (err) => reject(new Failure(`connect ${url}: ${err.message}`)));
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w();
      });
    });
    this.ws.on('error', (err) => { this.error = err; });
    this.ws.on('message', (data, isBinary) => {
      this.queue.push({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data), binary: isBinary });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  // Next message, or a Failure after `ms` or if the connection closes first.
  async recv(what, ms = STEP_TIMEOUT) {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.closeInfo) {
        throw new Failure(`${what}: connection closed instead (${this.closeInfo.code} ` +
                          `${JSON.stringify(this.closeInfo.reason)})`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Failure(`${what}: nothing received within ${ms} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  send(data, opts = {}) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, opts, (err) => (err ? reject(err) : resolve()));
    });
  }

  // A ping round trip (the server answers in order, so anything queued before arrives
  // first), then QUIET ms in which no message may arrive.
  async expectSilence(what) {
    const pong = new Promise((resolve) => this.ws.once('pong', resolve));
    this.ws.ping();
    await withTimeout(pong, STEP_TIMEOUT, `${what}: pong`);
    await delay(QUIET);
    if (this.queue.length) throw new Failure(`${what}: unexpected message ${describe(this.queue[0])}`);
  }

  async close(code, reason) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    return withTimeout(this.closed, STEP_TIMEOUT, `close ${this.url}`);
  }

  // Waits for the server to close; its close code must be `want`. Messages before it fail.
  async expectServerClose(want, what) {
    const info = await withTimeout(this.closed, STEP_TIMEOUT, `${what}: server close`);
    if (this.queue.length) throw new Failure(`${what}: got ${describe(this.queue[0])} before the close`);
    if (info.code !== want) {
      throw new Failure(`${what}: expected close ${want}, got ${info.code} ${JSON.stringify(info.reason)}`);
    }
    return info.reason;
  }
}

// ------------------------------------------------------------------------------ scenarios

async function scEcho(srv, kind) {
  const c = await Client.open(srv.url('/echo'));
  for (const n of SIZES) {
    const msg = kind === 'text' ? textOfSize(n, n) : bytesOfSize(n, n);
    await c.send(msg);
    same(await c.recv(`echo ${kind} ${n}`), msg, `echo ${kind} ${n}`);
  }
  await c.close(1000);
  return `sizes ${SIZES.join(',')}`;
}

async function scFragmented(srv) {
  const c = await Client.open(srv.url('/echo'));
  // Text whose fragments split multi-byte characters: "€" (E2 82 AC) and "😀" (F0 9F 98 80).
  const text = Buffer.from('frag € and 😀 end');
  const cuts = [0, 5, 6, 7, 11, 13, 14, text.length];
  for (let i = 0; i + 1 < cuts.length; i++) {
    await c.send(text.subarray(cuts[i], cuts[i + 1]), { binary: false, fin: i + 2 === cuts.length });
  }
  same(await c.recv('fragmented text'), text.toString(), 'fragmented text (UTF-8 split across fragments)');
  // Binary in fragments of assorted sizes, empty ones included.
  const parts = [1, 0, 125, 126, 65535, 65536, 0, 3].map((n, i) => bytesOfSize(n, 50 + i));
  for (let i = 0; i < parts.length; i++) {
    await c.send(parts[i], { binary: true, fin: i + 1 === parts.length });
  }
  same(await c.recv('fragmented binary'), Buffer.concat(parts), 'fragmented binary');
  // A ping between fragments is answered, and the message still arrives whole.
  await c.send(Buffer.from('ab'), { binary: false, fin: false });
  const pong = new Promise((resolve) => c.ws.once('pong', resolve));
  c.ws.ping('mid');
  await withTimeout(pong, STEP_TIMEOUT, 'pong between fragments');
  await c.send(Buffer.from('cd'), { binary: false, fin: true });
  same(await c.recv('fragments around a ping'), 'abcd', 'fragments around a ping');
  await c.close(1000);
  return 'text split inside UTF-8 sequences (7 fragments), binary in 8 (128 KiB), ping between fragments';
}

async function scRooms(srv) {
  const r1 = {
    A: await Client.open(srv.url('/ws/r1')),
    B: await Client.open(srv.url('/ws/r1')),
    C: await Client.open(srv.url('/ws/r1')),
  };
  const d = await Client.open(srv.url('/ws/r2'));
  try {
    for (const [name, c] of Object.entries(r1)) {
      const text = `text from ${name}: héllo €`;
      const binary = Buffer.concat([Buffer.from([0, 1, 0xff, 0xfe]), Buffer.from(name), bytesOfSize(200, name.charCodeAt(0))]);
      await c.send(text);
      await c.send(binary);
      for (const [other, oc] of Object.entries(r1)) {
        if (other === name) continue;
        same(await oc.recv(`${other} <- ${name} text`), text, `${other} <- ${name} text`);
        same(await oc.recv(`${other} <- ${name} binary`), binary, `${other} <- ${name} binary`);
      }
    }
    await d.send('lonely in r2');
    for (const [name, c] of [...Object.entries(r1), ['D(r2)', d]]) {
      await c.expectSilence(`${name} after the room traffic`);
    }
    // /ws and /ws/ are both the lobby.
    const l1 = await Client.open(srv.url('/ws'));
    const l2 = await Client.open(srv.url('/ws/'));
    await l2.send(Buffer.from([9, 8, 7]));
    same(await l1.recv('lobby'), Buffer.from([9, 8, 7]), '/ws/ -> /ws (lobby)');
    await l2.expectSilence('lobby sender');
    await l1.close(1000);
    await l2.close(1000);
  } finally {
    for (const c of [...Object.values(r1), d]) await c.close(1000).catch(() => {});
  }
  return '3 in r1 + 1 in r2: each r1 message reached the 2 others once, text/binary kept; ' +
         'nothing to the sender or r2; /ws = /ws/ = lobby';
}

async function scClose(srv, code, reason) {
  const c = await Client.open(srv.url('/echo'));
  await c.send('before close');
  same(await c.recv('echo before close'), 'before close', 'echo before close');
  const info = await c.close(code, reason);
  if (info.code !== code) {
    throw new Failure(`closed with ${code} ${JSON.stringify(reason)}, server answered ` +
                      `${info.code} ${JSON.stringify(info.reason)}`);
  }
  return `server echoed ${info.code} (reason ${JSON.stringify(info.reason)})`;
}

async function scInvalidUtf8(srv) {
  const c = await Client.open(srv.url('/echo'));
  // Node ws sends a Buffer with {binary:false} as a text frame without checking it.
  await c.send(Buffer.from([0x61, 0xff]), { binary: false });
  const reason = await c.expectServerClose(1007, 'invalid UTF-8 text');
  // Fail fast: invalid from the first fragment of a message that is not finished yet.
  const c2 = await Client.open(srv.url('/echo'));
  await c2.send(Buffer.from([0xc0, 0xaf]), { binary: false, fin: false }); // overlong '/'
  await c2.expectServerClose(1007, 'invalid UTF-8 in an unfinished fragmented text');
  // The server keeps serving others.
  const ok = await Client.open(srv.url('/echo'));
  await ok.send('still alive');
  same(await ok.recv('echo after 1007'), 'still alive', 'echo after 1007');
  await ok.close(1000);
  return `closed with 1007 (${JSON.stringify(reason)}), also mid-message; server still serving`;
}

async function scMaxMessage(small) {
  const a = await Client.open(small.url('/echo'));
  const msg = bytesOfSize(1000, 1);
  await a.send(msg);
  same(await a.recv('1000-byte message at --max-message 1000'), msg, '1000-byte message at --max-message 1000');
  await a.close(1000);
  const b = await Client.open(small.url('/echo'));
  await b.send(bytesOfSize(1001, 2));
  const reason = await b.expectServerClose(1009, '1001-byte message at --max-message 1000');
  const c = await Client.open(small.url('/echo'));
  await c.send(Buffer.alloc(600, 0x78), { binary: false, fin: false });
  await c.send(Buffer.alloc(600, 0x79), { binary: false, fin: true }).catch(() => {});
  await c.expectServerClose(1009, '1200 bytes in 2 fragments at --max-message 1000');
  return `1000 bytes echoed; 1001 bytes and 2x600 fragments closed with 1009 (${JSON.stringify(reason)})`;
}

// A room member that stops reading (ws.pause()) while another member sends 20 MiB in 16 KiB
// messages. With --slow-policy close (and --max-backpressure 65536) it is closed with 1008;
// with the default drop policy it loses messages but stays connected and gets new ones once
// it reads again. Meanwhile a member that reads gets every message, in order.
async function scSlowConsumer(srv, policy) {
  const n = 1280;
  const size = 16384; // 20 MiB: more than the kernel buffers can hide
  const room = `/ws/slow-${policy}`;
  const slow = await Client.open(srv.url(room));
  const fast = await Client.open(srv.url(room));
  const sender = await Client.open(srv.url(room));
  let got = 0;
  let outcome;
  try {
    slow.ws.pause();
    const payload = bytesOfSize(size, 3);
    // Lockstep with the fast member (never more than one message behind), so only the member
    // that stopped reading can reach the backpressure limit.
    for (let i = 0; i < n; i++) {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(i);
      await sender.send(Buffer.concat([head, payload]));
      const m = await fast.recv(`fast member, message ${i}`);
      if (m.data.length !== size + 4 || m.data.readUInt32BE(0) !== i) {
        throw new Failure(`fast member: message ${i} out of order or damaged`);
      }
    }
    // Now the slow member reads what the kernel and the server held.
    slow.ws.resume();
    let last = -1;
    for (;;) {
      let m;
      try {
        m = await slow.recv('slow member', policy === 'drop' ? 1000 : STEP_TIMEOUT);
      } catch (e) {
        if (slow.closeInfo) break;
        if (policy === 'drop') break; // a second of silence: drained
        throw new Failure(`slow member: no close within ${STEP_TIMEOUT} ms after ${got} messages`);
      }
      const seq = m.data.readUInt32BE(0);
      if (seq <= last) throw new Failure(`slow member: message ${seq} after ${last}`);
      last = seq;
      got++;
    }
    if (got >= n) throw new Failure(`slow member received all ${n} messages: no backpressure seen`);
    if (policy === 'close') {
      const info = await withTimeout(slow.closed, STEP_TIMEOUT, 'slow member close');
      if (info.code !== 1008) {
        throw new Failure(`slow member: closed with ${info.code} ${JSON.stringify(info.reason)} ` +
                          `after ${got} of ${n} messages, expected 1008`);
      }
      outcome = 'was closed with 1008';
    } else {
      if (slow.closeInfo) {
        throw new Failure(`slow member: closed (${slow.closeInfo.code}) under the drop policy ` +
                          `after ${got} messages`);
      }
      await sender.send('after the flood');
      same(await fast.recv('fast member, after the flood'), 'after the flood', 'fast member, after the flood');
      same(await slow.recv('slow member after draining'), 'after the flood', 'slow member after draining');
      outcome = 'stayed open and got new messages';
    }
    await sender.send('still here');
    same(await fast.recv('fast member after'), 'still here', 'room still working');
  } finally {
    for (const c of [slow, fast, sender]) await c.close(1000).catch(() => {});
  }
  return `${policy}: slow reader got ${got} of ${n} x 16 KiB, then ${outcome}; fast reader got all, in order`;
}

async function scShutdown(srv) {
  const c = await Client.open(srv.url('/echo'));
  await c.send('hi');
  same(await c.recv('echo before shutdown'), 'hi', 'echo before shutdown');
  srv.proc.kill('SIGTERM');
  await c.expectServerClose(1001, 'SIGTERM with a client connected');
  const status = await withTimeout(srv.stop(), 10000, 'server exit');
  if (status !== 0) throw new Failure(`server exit status ${status} after SIGTERM, expected 0`);
  return 'client got 1001, server exited 0';
}

// ------------------------------------------------------------------------------ main

async function run(weft) {
  let failures = 0;
  async function scenario(name, fn) {
    const t0 = Date.now();
    try {
      const detail = await fn();
      console.log(`ok   ${name.padEnd(16)} ${detail} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
    } catch (e) {
      failures++;
      console.log(`FAIL ${name.padEnd(16)} ${e instanceof Failure ? e.message : e.stack}`);
    }
  }

  const srv = await new Server(weft, []).start();
  const small = await new Server(weft, ['--max-message', '1000']).start();
  const slowSrv = await new Server(weft, ['--max-backpressure', '65536', '--slow-policy', 'close']).start();
  console.log(`# weft serve on ports ${srv.port}, ${small.port} (--max-message 1000) and ` +
              `${slowSrv.port} (--max-backpressure 65536 --slow-policy close); ` +
              `ws ${require('ws/package.json').version}`);
  await scenario('echo-text', () => scEcho(srv, 'text'));
  await scenario('echo-binary', () => scEcho(srv, 'binary'));
  await scenario('fragmented', () => scFragmented(srv));
  await scenario('rooms', () => scRooms(srv));
  await scenario('close-1000', () => scClose(srv, 1000, ''));
  await scenario('close-4001', () => scClose(srv, 4001, 'bye'));
  await scenario('invalid-utf8', () => scInvalidUtf8(srv));
  await scenario('max-message', () => scMaxMessage(small));
  await scenario('slow-drop', () => scSlowConsumer(srv, 'drop'));
  await scenario('slow-close', () => scSlowConsumer(slowSrv, 'close'));
  await scenario('shutdown', () => scShutdown(srv));

  for (const s of [srv, small, slowSrv]) {
    const status = await s.stop();
    const crashed = s.lines.some((l) => l.includes('Sanitizer') || l.includes('runtime error:'));
    if (status !== 0 || crashed) {
      failures++;
      console.log(`FAIL server-exit     ${s.argv.join(' ')} exited ${status}` +
                  `${crashed ? ' with sanitizer reports' : ''}\n${s.log()}`);
    } else if (failures) {
      console.log(`# server log (${s.argv.join(' ')}):\n${s.log()}`);
    }
  }
  return failures;
}

async function main() {
  if (process.argv.length !== 3) {
    console.error('usage: node node_client.js PATH/TO/weft');
    return 2;
  }
  const hard = setTimeout(() => {
    console.log(`FAIL hard timeout: the test did not finish in ${HARD_TIMEOUT / 1000} s`);
    for (const s of servers) if (s.status === undefined) s.proc.kill('SIGKILL');
    process.exit(1);
  }, HARD_TIMEOUT);
  let failures;
  try {
    failures = await run(process.argv[2]);
  } catch (e) {
    console.log(`FAIL setup: ${e instanceof Failure ? e.message : e.stack}`);
    failures = 1;
  } finally {
    for (const s of servers) await s.stop();
    clearTimeout(hard);
  }
  console.log(`node ws interop: ${failures ? `FAILED (${failures})` : 'all passed'}`);
  return failures ? 1 : 0;
}

main().then((code) => process.exit(code));
