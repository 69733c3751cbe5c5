'use strict';
// permessage-deflate interop: Node ws clients (every perMessageDeflate parameter
// combination) against a libweft server (tests/interop/deflate_server.c).
// usage: node deflate_node.js PATH/TO/deflate_server
const path = require('path');
const { spawn } = require('child_process');
const crypto = require('crypto');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));

const SERVER = process.argv[2];
const failures = [];
function check(cond, what) {
  if (!cond) {
    failures.push(what);
    console.log('FAIL ' + what);
  }
}

function start(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let buf = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('no listening line')); }, 10000);
    proc.stderr.on('data', (d) => {
      buf += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(buf);
      if (m) { clearTimeout(timer); resolve({ proc, port: Number(m[1]) }); }
    });
    proc.on('error', reject);
  });
}

function stop(proc) {
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.on('exit', () => { clearTimeout(t); resolve(); });
    proc.kill('SIGTERM');
  });
}

function open(url, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, Object.assign({ maxPayload: 0 }, opts));
    ws.queue = [];
    ws.waiters = [];
    ws.extHeader = '';
    ws.on('upgrade', (res) => { ws.extHeader = res.headers['sec-websocket-extensions'] || ''; });
    ws.on('message', (data, isBinary) => {
      const item = { data, isBinary };
      if (ws.waiters.length) ws.waiters.shift()(item); else ws.queue.push(item);
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function next(ws, ms = 10000) {
  if (ws.queue.length) return Promise.resolve(ws.queue.shift());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout waiting for a message')), ms);
    ws.waiters.push((item) => { clearTimeout(t); resolve(item); });
  });
}

function closeWs(ws, code) {
  return new Promise((resolve) => {
    ws.once('close', (c) => resolve(c));
    ws.close(code);
  });
}

function* payloads(big) {
  const unit = '{"type":"message","room":"lobby","data":"hello world"}';
  const sizes = [0, 1, 125, 126, 70000, 1 << 20].concat(big ? [16 << 20] : []);
  for (const n of sizes) {
    yield [unit.repeat(Math.ceil(n / unit.length) + 1).slice(0, n), false, 'text' + n];
    yield [crypto.randomBytes(n), true, 'random' + n];
  }
}

async function echoWithOffer(port, pmd, big, label) {
  const ws = await open(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: pmd });
  const ext = ws.extHeader;
  check(ext.startsWith('permessage-deflate'), `${label}: not negotiated (${ext})`);
  if (pmd.serverNoContextTakeover) check(ext.includes('server_no_context_takeover'), `${label}: snct`);
  for (const [data, binary, name] of payloads(big)) {
    ws.send(data, { binary });
    const got = await next(ws);
    const same = binary ? Buffer.compare(Buffer.from(got.data), data) === 0
                        : got.data.toString() === data;
    check(same && got.isBinary === binary, `${label}: echo of ${name} differs`);
  }
  const code = await closeWs(ws, 1000);
  check(code === 1000, `${label}: close ${code}`);
}

async function matrix(port, big, label) {
  let n = 0;
  // `undefined` rather than `false`: ws treats an explicit false as "refuse the parameter",
  // while a server may always impose client_no_context_takeover (RFC 7692 §7.1.1.2).
  for (const serverNoContextTakeover of [undefined, true]) {
    for (const clientNoContextTakeover of [undefined, true]) {
      for (const serverMaxWindowBits of [undefined, 9, 12]) {
        for (const clientMaxWindowBits of [undefined, true, 10]) {
          const pmd = { threshold: 0, serverNoContextTakeover, clientNoContextTakeover };
          if (serverMaxWindowBits !== undefined) pmd.serverMaxWindowBits = serverMaxWindowBits;
          if (clientMaxWindowBits !== undefined) pmd.clientMaxWindowBits = clientMaxWindowBits;
          await echoWithOffer(port, pmd, big && n === 0, `${label} ${JSON.stringify(pmd)}`);
          n++;
        }
      }
    }
  }
  return n;
}

async function rooms(port, label) {
  const url = `ws://127.0.0.1:${port}/room/r`;
  const a = await open(url, { perMessageDeflate: { threshold: 0 } });
  const b = await open(url, { perMessageDeflate: { threshold: 0 } });
  const c = await open(url, { perMessageDeflate: false });
  const d = await open(url, { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 10 } });
  await new Promise((r) => setTimeout(r, 100));
  const msgs = ['hello '.repeat(50), crypto.randomBytes(3000), 'x'.repeat(200000), ''];
  for (let i = 0; i < msgs.length; i++) {
    const binary = Buffer.isBuffer(msgs[i]);
    a.send(msgs[i], { binary });
    for (const [who, ws] of [['deflate', b], ['plain', c], ['w10', d]]) {
      const got = await next(ws);
      const same = binary ? Buffer.compare(Buffer.from(got.data), msgs[i]) === 0
                          : got.data.toString() === msgs[i];
      check(same, `${label}: room message ${i} to ${who} differs`);
    }
  }
  for (const ws of [a, b, c, d]) await closeWs(ws, 1000);
}

const CONFIGS = [
  ['lean', []],
  ['takeover', ['--context-takeover']],
  ['takeover-small', ['--context-takeover', '--window', '9', '--peer-window', '10', '--mem-level', '1']],
  ['lean-w10', ['--window', '10', '--peer-window', '9', '--threshold', '100']],
];

async function main() {
  let total = 0;
  for (const [label, args] of CONFIGS) {
    const { proc, port } = await start(args);
    try {
      const t0 = Date.now();
      const n = await matrix(port, label === 'lean' || label === 'takeover', label);
      await rooms(port, label);
      total += n;
      console.log(`ok   ${label.padEnd(15)} ${n} offers echoed, rooms (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    } finally {
      await stop(proc);
    }
  }
  if (failures.length) {
    console.log(`deflate interop (node): ${failures.length} FAILED`);
    process.exit(1);
  }
  console.log(`deflate interop (node): all passed (${total} negotiations)`);
}

const guard = setTimeout(() => { console.log('deflate interop (node): timed out'); process.exit(1); }, 280000);
main().then(() => clearTimeout(guard), (e) => { console.log('FAIL ' + e.stack); process.exit(1); });
